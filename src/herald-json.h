/* herald-json.h: Herald's own strict JSON reader.
 *
 * Client data is carried as the client's own JSON text, checked here and
 * compacted (whitespace outside strings dropped, every other byte kept), so
 * a number or a string arrives exactly as it was sent. json-glib 1.6 is too
 * lenient for that (it takes a second value after the first, single quotes,
 * leading zeros, octal escapes) and changes values (big integers wrap,
 * "\u0000" cuts a string, 0.1 becomes 0.10000000000000001).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define HERALD_JSON_ERROR (herald_json_error_quark ())
typedef enum
{
  HERALD_JSON_ERROR_SYNTAX, /* not exactly one valid JSON value */
  HERALD_JSON_ERROR_FIELD,  /* valid JSON, but a field Herald reads holds U+0000 or a
                             * number Herald cannot keep exactly */
} HeraldJsonError;
GQuark herald_json_error_quark (void);

/* Nesting deeper than this is refused (the reader is recursive). */
#define HERALD_JSON_MAX_DEPTH 128

void herald_json_append_uint (GString *out, guint64 value);

/* {"error":"@message"}, the body of every HTTP error Herald answers (the
 * HTTP API, the fast path and the handshake refusals write the same). */
char *herald_json_error_body (const char *message, gsize *length);

/* Checks that @text (valid UTF-8 or not) is exactly one JSON value (RFC 8259)
 * with optional whitespace around it, and returns it compacted: whitespace
 * outside strings dropped, everything else byte for byte. */
char *herald_json_compact (const char *text, gsize length, gsize *out_length, GError **error);

/* herald_json_compact() for client data: the same text, or %NULL with a
 * HERALD_ERROR_INVALID_ARGUMENT error (so a delivered frame never carries
 * newlines or trailing garbage). */
char *herald_json_normalize (const char *json, gssize length, GError **error);

/* herald_json_compact() without the copy, for texts Herald reads whole
 * (token headers and claims): besides syntax, refuses any string containing
 * U+0000 and any integer outside gint64 (HERALD_JSON_ERROR_FIELD). */
gboolean herald_json_check_strict (const char *text, gsize length, GError **error);

/* A request: one JSON value; when it is an object, the compact text of its
 * top-level "data" and "id" members (the last one of each name). Everything
 * outside "data" is checked as herald_json_check_strict() does, so a field
 * that json-glib reads afterwards holds what the client sent. */
typedef struct
{
  char *data; /* NULL when absent */
  char *id;   /* NULL when absent */
} HeraldJsonEnvelope;

gboolean herald_json_read_envelope (const char *text, gsize length, HeraldJsonEnvelope *envelope,
                                    GError **error);
void herald_json_envelope_clear (HeraldJsonEnvelope *envelope);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (HeraldJsonEnvelope, herald_json_envelope_clear)

/* The HTTP fast path: reads {"channel":"…","key":"…","data":…} in one pass.
 * TRUE with all set (@key NULL when absent) when the body is valid, has a
 * string "channel" without escapes, a "data" member, no "key" or a string one
 * without escapes, and passes herald_json_read_envelope()'s checks; FALSE
 * (nothing set) otherwise — the caller then takes the general path, which
 * gives the error. */
gboolean herald_json_scan_publish (const char *body, gsize length, char **channel, char **key,
                                   char **data);

G_END_DECLS
