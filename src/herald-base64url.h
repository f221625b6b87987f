/* herald-base64url.h: base64url without padding (RFC 4648 §5, as JWS uses it).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* @length bytes of @data as base64url, no padding. */
char *herald_base64url_encode (const void *data, gsize length);

/* Strict: only the URL-safe alphabet, no padding, no whitespace, and the
 * unused trailing bits zero, so every byte string has exactly one accepted
 * spelling. Returns the bytes NUL-terminated (for parsers that want text)
 * and their count in @out_length, or %NULL when @text is not canonical. */
guint8 *herald_base64url_decode (const char *text, gsize length, gsize *out_length);

G_END_DECLS
