/* herald-http-respond.h: the HTTP API's JSON answers (herald-http-respond.c).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <json-glib/json-glib.h>
#include <libsoup/soup.h>

G_BEGIN_DECLS

/* A hub error's status; @sends_data: the failed call carried a message, so
 * LIMIT_EXCEEDED means too large (413) rather than a capacity limit (503). */
guint herald_http_api_status_for_error (const GError *error, gboolean sends_data);
/* {"error":@message} with @status */
void herald_http_api_respond_error (SoupServerMessage *msg, guint status, const char *message);
/* The builder's root as the body, with @status */
void herald_http_api_respond_builder (SoupServerMessage *msg, guint status, JsonBuilder *builder);
/* A hub error as its status and message */
void herald_http_api_respond_gerror (SoupServerMessage *msg, const GError *error,
                                     gboolean sends_data);

G_END_DECLS
