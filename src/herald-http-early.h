/* herald-http-early.h: answering requests libsoup reads from their head.
 *
 * libsoup 3.2 reads a request's whole body before it writes any response,
 * even one an early handler set from the head (401, 404, 413, …). For
 * requests refused from the head this module writes the response itself at
 * once, on the connection taken from libsoup, and then discards what the
 * client still sends until it closes or the handshake deadline passes. It
 * also refuses a Content-Length libsoup would misread (negative, too large
 * for 63 bits, or repeated with different values) with 400.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <libsoup/soup.h>

#include "herald-config.h"

G_BEGIN_DECLS

/* Watches every request of @server (call before adding handlers is not needed). */
void herald_http_early_watch (SoupServer *server, HeraldConfig *config);

/* Whether the Content-Length header(s) of @headers are absent or one valid
 * value (repeated equal values count as one); @length gets it (0 when absent). */
gboolean herald_http_content_length_valid (SoupMessageHeaders *headers, guint64 *length);

G_END_DECLS
