/* test-json.c: the fast publish-body scanner against json-glib.
 *
 * herald_json_scan_publish() may decline any body, but when it accepts one,
 * json-glib must accept it too, with the same channel and the same compact
 * "data" text. Checked on fixed cases and on many generated bodies (random
 * JSON with random whitespace, then mutated bytes), with a fixed seed.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>
#include <json-glib/json-glib.h>

#include "herald-error.h"
#include "herald-http-api.h"
#include "herald-json.h"

/* The reference: what the HTTP API did before the scanner. Returns TRUE with
 * channel and data when json-glib reads a valid publish body. */
static gboolean
reference (const char *body, gsize len, char **channel, char **data)
{
  g_autoptr (JsonParser) parser = json_parser_new_immutable ();
  g_autoptr (JsonObject) request = NULL;
  g_autoptr (GError) error = NULL;
  const char *chan;
  JsonNode *node;

  request = herald_http_api_parse_body (parser, body, len, G_MAXSIZE, &error);
  if (request == NULL)
    return FALSE;
  chan = herald_http_api_get_string_member (request, "channel", &error);
  if (chan == NULL)
    return FALSE;
  node = herald_http_api_get_data_member (request, &error);
  if (node == NULL)
    return FALSE;
  *data = herald_json_node_to_data (node, &error);
  if (*data == NULL)
    return FALSE;
  *channel = g_strdup (chan);
  return TRUE;
}

/* Returns whether the scanner took @body; fails the test if it disagrees. */
static gboolean
check_agrees (const char *body, gsize len)
{
  g_autofree char *channel = NULL, *data = NULL;
  g_autofree char *ref_channel = NULL, *ref_data = NULL;

  if (!g_utf8_validate_len (body, len, NULL))
    return FALSE; /* the caller validates first */
  if (!herald_json_scan_publish (body, len, &channel, &data))
    return FALSE;
  if (!reference (body, len, &ref_channel, &ref_data))
    g_error ("scanner accepted what json-glib refuses: %.*s", (int)len, body);
  if (g_strcmp0 (channel, ref_channel) != 0 || g_strcmp0 (data, ref_data) != 0)
    g_error ("scanner and json-glib differ on %.*s:\n  scanner %s %s\n  json-glib %s %s", (int)len,
             body, channel, data, ref_channel, ref_data);
  return TRUE;
}

static void
test_accepts_common (void)
{
  const char *accepted[] = {
    "{\"channel\":\"news\",\"data\":{\"t\":1,\"s\":2,\"p\":\"xxxx\"}}",
    " {\n \"data\" : [ 1 , -2 , 0 , true , false , null , \"\" ] ,\t\"channel\" : \"a/b\" }\r\n",
    "{\"channel\":\"c\",\"data\":\"plain text\"}",
    "{\"channel\":\"c\",\"data\":{}}",
    "{\"channel\":\"c\",\"data\":[]}",
    "{\"channel\":\"c\",\"data\":null,\"extra\":{\"x\":[1,{\"y\":2}]}}",
    "{\"channel\":\"c\",\"data\":{\"emoji\":\"h\xc3\xa9llo \xf0\x9f\x98\x80\"}}",
    "{\"channel\":\"c\",\"data\":-123456789012345678}",
    "{\"channel\":\"c\",\"data\":{\"a\":{\"b\":{\"c\":[[[]]]}}}}",
  };
  for (guint i = 0; i < G_N_ELEMENTS (accepted); i++)
    g_assert_true (check_agrees (accepted[i], strlen (accepted[i])));
}

static void
test_declines_uncommon (void)
{
  /* Each is left to json-glib: an escape, a fraction, an exponent, a long
   * integer, -0, leading zeros, a duplicate key, a missing member, a wrong
   * type, trailing garbage, invalid JSON, a DEL character. */
  const char *declined[] = {
    "{\"channel\":\"c\",\"data\":\"a\\nb\"}",
    "{\"channel\":\"c\\u0041\",\"data\":1}",
    "{\"channel\":\"c\",\"data\":1.5}",
    "{\"channel\":\"c\",\"data\":1e5}",
    "{\"channel\":\"c\",\"data\":1234567890123456789}",
    "{\"channel\":\"c\",\"data\":-0}",
    "{\"channel\":\"c\",\"data\":01}",
    "{\"channel\":\"c\",\"data\":{\"a\":1,\"a\":2}}",
    "{\"channel\":\"c\",\"channel\":\"d\",\"data\":1}",
    "{\"channel\":\"c\"}",
    "{\"data\":1}",
    "{\"channel\":5,\"data\":1}",
    "{\"channel\":\"c\",\"data\":1} x",
    "{\"channel\":\"c\",\"data\":[1,]}",
    "{\"channel\":\"c\",\"data\":tru}",
    "{\"channel\":\"c\",\"data\":\"\x7f\"}",
    "[1]",
    "{}",
    "",
  };
  for (guint i = 0; i < G_N_ELEMENTS (declined); i++)
    {
      g_autofree char *channel = NULL, *data = NULL;
      g_assert_false (
          herald_json_scan_publish (declined[i], strlen (declined[i]), &channel, &data));
      g_assert_null (channel);
      g_assert_null (data);
    }
}

static void
test_declines_deep (void)
{
  g_autoptr (GString) s = g_string_new ("{\"channel\":\"c\",\"data\":");
  g_autofree char *channel = NULL, *data = NULL;

  for (int i = 0; i < 100; i++)
    g_string_append_c (s, '[');
  for (int i = 0; i < 100; i++)
    g_string_append_c (s, ']');
  g_string_append_c (s, '}');
  g_assert_false (herald_json_scan_publish (s->str, s->len, &channel, &data));
}

/* ---- generated bodies ---- */

static void
gen_ws (GRand *r, GString *s)
{
  static const char ws[] = " \t\n\r";
  while (g_rand_int_range (r, 0, 4) == 0)
    g_string_append_c (s, ws[g_rand_int_range (r, 0, 4)]);
}

static void
gen_string (GRand *r, GString *s)
{
  static const char *pieces[]
      = { "a",   "Z",    "0",       " ",    "/",    "é", "日本", "😀",
          "\\n", "\\\"", "\\u00e9", "\\\\", "\x7f", "'", "<",    "\xe2\x80\xa8" };
  int n = g_rand_int_range (r, 0, 6);

  g_string_append_c (s, '"');
  for (int i = 0; i < n; i++)
    g_string_append (s, pieces[g_rand_int_range (r, 0, G_N_ELEMENTS (pieces))]);
  g_string_append_c (s, '"');
}

static void
gen_number (GRand *r, GString *s)
{
  static const char *numbers[] = { "0",
                                   "-1",
                                   "7",
                                   "42",
                                   "-0",
                                   "1.5",
                                   "1e3",
                                   "01",
                                   "2E-2",
                                   "-0.0",
                                   "123456789012345678",
                                   "1234567890123456789",
                                   "9223372036854775807",
                                   "-9223372036854775808",
                                   "1e400" };
  if (g_rand_boolean (r))
    g_string_append_printf (s, "%d", g_rand_int_range (r, -100000, 100000));
  else
    g_string_append (s, numbers[g_rand_int_range (r, 0, G_N_ELEMENTS (numbers))]);
}

static void
gen_value (GRand *r, GString *s, int depth)
{
  int kind = g_rand_int_range (r, 0, depth > 4 ? 4 : 7);

  switch (kind)
    {
    case 0:
      gen_string (r, s);
      break;
    case 1:
      gen_number (r, s);
      break;
    case 2:
      g_string_append (s, g_rand_boolean (r) ? "true" : "false");
      break;
    case 3:
      g_string_append (s, "null");
      break;
    case 4:
    case 5:
      {
        int n = g_rand_int_range (r, 0, 4);
        g_string_append_c (s, '{');
        for (int i = 0; i < n; i++)
          {
            if (i)
              g_string_append_c (s, ',');
            gen_ws (r, s);
            /* few key names: duplicates happen */
            g_string_append_printf (s, "\"k%d\"", g_rand_int_range (r, 0, 4));
            gen_ws (r, s);
            g_string_append_c (s, ':');
            gen_ws (r, s);
            gen_value (r, s, depth + 1);
            gen_ws (r, s);
          }
        g_string_append_c (s, '}');
      }
      break;
    default:
      {
        int n = g_rand_int_range (r, 0, 4);
        g_string_append_c (s, '[');
        for (int i = 0; i < n; i++)
          {
            if (i)
              g_string_append_c (s, ',');
            gen_ws (r, s);
            gen_value (r, s, depth + 1);
            gen_ws (r, s);
          }
        g_string_append_c (s, ']');
      }
    }
}

static void
gen_body (GRand *r, GString *s)
{
  gboolean data_first = g_rand_boolean (r);

  g_string_truncate (s, 0);
  gen_ws (r, s);
  g_string_append_c (s, '{');
  gen_ws (r, s);
  if (data_first)
    {
      g_string_append (s, "\"data\":");
      gen_value (r, s, 1);
      g_string_append_c (s, ',');
    }
  g_string_append (s, "\"channel\"");
  gen_ws (r, s);
  g_string_append_c (s, ':');
  gen_ws (r, s);
  if (g_rand_int_range (r, 0, 10) == 0)
    gen_value (r, s, 1);
  else
    g_string_append (s, "\"news.1\"");
  if (g_rand_int_range (r, 0, 4) == 0)
    {
      g_string_append (s, ",\"other\":");
      gen_value (r, s, 1);
    }
  if (!data_first)
    {
      g_string_append_c (s, ',');
      gen_ws (r, s);
      g_string_append (s, "\"data\"");
      gen_ws (r, s);
      g_string_append_c (s, ':');
      gen_ws (r, s);
      gen_value (r, s, 1);
    }
  gen_ws (r, s);
  g_string_append_c (s, '}');
  gen_ws (r, s);
}

static void
test_generated (void)
{
  g_autoptr (GRand) r = g_rand_new_with_seed (20261205);
  g_autoptr (GString) s = g_string_new (NULL);
  guint accepted = 0, mutated_accepted = 0;
  const guint n = g_test_slow () ? 200000 : 20000;

  for (guint i = 0; i < n; i++)
    {
      gen_body (r, s);
      if (check_agrees (s->str, s->len))
        accepted++;
      /* The same with a few bytes changed, dropped or cut short. */
      for (int m = g_rand_int_range (r, 1, 4); m > 0 && s->len > 0; m--)
        {
          guint at = g_rand_int_range (r, 0, s->len);
          switch (g_rand_int_range (r, 0, 3))
            {
            case 0:
              s->str[at] = "{}[]\",:0-e. \\atn"[g_rand_int_range (r, 0, 16)];
              break;
            case 1:
              g_string_erase (s, at, 1);
              break;
            default:
              g_string_truncate (s, at);
            }
        }
      if (check_agrees (s->str, s->len))
        mutated_accepted++;
    }
  /* Both kinds of input must really exercise the accepting path. */
  g_test_message ("accepted %u generated and %u mutated of %u", accepted, mutated_accepted, n);
  g_assert_cmpuint (accepted, >, n / 10);
  g_assert_cmpuint (mutated_accepted, >, 0);
}

int
main (int argc, char *argv[])
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/json/scan/accepts-common", test_accepts_common);
  g_test_add_func ("/json/scan/declines-uncommon", test_declines_uncommon);
  g_test_add_func ("/json/scan/declines-deep", test_declines_deep);
  g_test_add_func ("/json/scan/generated", test_generated);
  return g_test_run ();
}
