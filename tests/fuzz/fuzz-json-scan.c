/* fuzz-json-scan.c: the one-pass publish-body reader against json-glib.
 *
 * herald_json_scan_publish() (the HTTP fast path) may decline any body; when
 * it takes one, json-glib must read the same channel and write the same
 * compact "data" (tests/test-json.c does the same on generated bodies).
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

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  const char *body = (const char *)data;
  g_autofree char *channel = NULL, *text = NULL, *ref_text = NULL;
  g_autoptr (JsonParser) parser = NULL;
  g_autoptr (JsonObject) request = NULL;
  g_autoptr (GError) error = NULL;
  const char *ref_channel;
  JsonNode *node;

  if (!g_utf8_validate_len (body, size, NULL)
      || !herald_json_scan_publish (body, size, &channel, &text))
    return 0;
  parser = json_parser_new_immutable ();
  request = herald_http_api_parse_body (parser, body, size, G_MAXSIZE, &error);
  g_assert_no_error (error);
  ref_channel = herald_http_api_get_string_member (request, "channel", &error);
  g_assert_no_error (error);
  node = herald_http_api_get_data_member (request, &error);
  g_assert_no_error (error);
  ref_text = herald_json_node_to_data (node, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (channel, ==, ref_channel);
  g_assert_cmpstr (text, ==, ref_text);
  return 0;
}
