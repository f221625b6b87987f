/* fuzz-json-scan.c: Herald's JSON reader on arbitrary bytes.
 *
 * herald_json_scan_publish() (the HTTP fast path) may decline any body; when
 * it takes one, the general path (herald_http_api_parse_body()) must read the
 * same channel and "data", and that compact "data" must mean to json-glib
 * what the body's "data" means (tests/test-json.c does the same on generated
 * bodies). Whatever herald_json_compact() takes, json-glib takes too, and
 * compacting again changes nothing.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdint.h>
#include <string.h>
#include <json-glib/json-glib.h>

#include "herald-error.h"
#include "herald-http-api.h"
#include "herald-json.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static char *
reading (const char *text, gssize len)
{
  g_autoptr (JsonParser) parser = json_parser_new_immutable ();

  g_assert_true (json_parser_load_from_data (parser, text, len, NULL));
  return json_to_string (json_parser_get_root (parser), FALSE);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  const char *body = (const char *)data;
  g_autofree char *channel = NULL, *key = NULL, *text = NULL, *ref_text = NULL, *compact = NULL;
  g_autoptr (JsonParser) parser = NULL;
  g_autoptr (JsonObject) request = NULL;
  g_autoptr (GError) error = NULL;
  const char *ref_channel;
  gsize compact_len = 0;

  compact = herald_json_compact (body, size, &compact_len, NULL);
  if (compact != NULL)
    {
      g_autofree char *again = herald_json_compact (compact, compact_len, NULL, NULL);
      g_autofree char *a = reading (body, size), *b = reading (compact, compact_len);

      g_assert_cmpstr (again, ==, compact);
      g_assert_cmpstr (a, ==, b);
    }

  if (!herald_json_scan_publish (body, size, &channel, &key, &text))
    return 0;
  parser = json_parser_new_immutable ();
  request = herald_http_api_parse_body (parser, body, size, G_MAXSIZE, &ref_text, &error);
  g_assert_no_error (error);
  ref_channel = herald_http_api_get_string_member (request, "channel", &error);
  g_assert_no_error (error);
  g_assert_cmpstr (channel, ==, ref_channel);
  g_assert_cmpstr (text, ==, ref_text);
  /* A "key" the scanner took is the string json-glib reads */
  {
    JsonNode *ref_key = json_object_get_member (request, "key");
    g_assert_cmpstr (key, ==, ref_key ? json_node_get_string (ref_key) : NULL);
  }
  return 0;
}
