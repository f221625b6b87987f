/* test-json.c: Herald's JSON reader (src/herald-json.c).
 *
 * The grammar is RFC 8259's, exactly: fixed cases of what it takes and
 * refuses. The compact text keeps every number and string as sent. The
 * one-pass publish reader of the HTTP fast path agrees with the general
 * path (herald_http_api_parse_body()) on every body it takes, and the
 * compact "data" means to json-glib what the body's "data" means (checked
 * on fixed cases and on many generated bodies — random JSON with random
 * whitespace, then mutated bytes — with a fixed seed).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>
#include <json-glib/json-glib.h>

#include "herald-error.h"
#include "herald-http-api.h"
#include "herald-json.h"

/* The general path: returns TRUE with channel, key and data for a valid
 * publish body. */
static gboolean
reference (const char *body, gsize len, char **channel, char **key, char **data)
{
  g_autoptr (JsonParser) parser = json_parser_new_immutable ();
  g_autoptr (JsonObject) request = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *text = NULL;
  const char *chan;
  JsonNode *k;

  request = herald_http_api_parse_body (parser, body, len, G_MAXSIZE, &text, &error);
  if (request == NULL)
    return FALSE;
  chan = herald_http_api_get_string_member (request, "channel", &error);
  if (chan == NULL || !herald_http_api_require_data (text, &error))
    return FALSE;
  k = json_object_get_member (request, "key");
  if (k != NULL && (!JSON_NODE_HOLDS_VALUE (k) || json_node_get_value_type (k) != G_TYPE_STRING))
    return FALSE;
  *data = g_steal_pointer (&text);
  *channel = g_strdup (chan);
  *key = k ? g_strdup (json_node_get_string (k)) : NULL;
  return TRUE;
}

/* json-glib's reading of @text, written back (its own lossy changes
 * included, so two texts of the same value give the same string). */
static char *
json_glib_reading (const char *text, gssize len)
{
  g_autoptr (JsonParser) parser = json_parser_new_immutable ();

  if (!json_parser_load_from_data (parser, text, len, NULL)
      || json_parser_get_root (parser) == NULL)
    return NULL;
  return json_to_string (json_parser_get_root (parser), FALSE);
}

/* Returns whether the scanner took @body; fails the test if it disagrees. */
static gboolean
check_agrees (const char *body, gsize len)
{
  g_autofree char *channel = NULL, *key = NULL, *data = NULL;
  g_autofree char *ref_channel = NULL, *ref_key = NULL, *ref_data = NULL;
  g_autofree char *body_reading = NULL, *data_reading = NULL;
  g_autoptr (JsonParser) parser = json_parser_new_immutable ();
  g_autoptr (JsonNode) body_data = NULL;

  if (!herald_json_scan_publish (body, len, &channel, &key, &data))
    return FALSE;
  if (!reference (body, len, &ref_channel, &ref_key, &ref_data))
    g_error ("scanner accepted what the general path refuses: %.*s", (int)len, body);
  if (g_strcmp0 (channel, ref_channel) != 0 || g_strcmp0 (data, ref_data) != 0
      || g_strcmp0 (key, ref_key) != 0)
    g_error ("scanner and general path differ on %.*s:\n  scanner %s %s\n  general %s %s", (int)len,
             body, channel, data, ref_channel, ref_data);
  /* The compact data is the body's data, to json-glib too. */
  g_assert_true (json_parser_load_from_data (parser, body, len, NULL));
  body_data = json_node_copy (
      json_object_get_member (json_node_get_object (json_parser_get_root (parser)), "data"));
  body_reading = json_to_string (body_data, FALSE);
  data_reading = json_glib_reading (data, -1);
  if (g_strcmp0 (body_reading, data_reading) != 0)
    g_error ("compact data changed the value of %.*s: %s", (int)len, body, data);
  g_assert_null (strpbrk (data, "\n\r"));
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
    /* Once left to json-glib, now read here too. */
    "{\"channel\":\"c\",\"data\":\"a\\nb\"}",
    "{\"channel\":\"c\",\"data\":1.5}",
    "{\"channel\":\"c\",\"data\":-0}",
    "{\"channel\":\"c\",\"data\":{\"a\":1,\"a\":2}}",
    "{\"channel\":\"c\",\"channel\":\"d\",\"data\":1}",
    "{\"channel\":\"c\",\"data\":\"\x7f\"}",
    "{\"data\":1,\"channel\":\"c\",\"data\":2}",
    "{\"channel\":\"c\",\"key\":\"EURUSD\",\"data\":1}",
    "{\"key\":\"a\",\"channel\":\"c\",\"data\":1,\"key\":\"b\"}",
  };
  for (guint i = 0; i < G_N_ELEMENTS (accepted); i++)
    g_assert_true (check_agrees (accepted[i], strlen (accepted[i])));
}

static void
test_declines_uncommon (void)
{
  /* Left to the general path: an escaped channel, a missing member, a wrong
   * type, invalid JSON, and fields json-glib would misread. */
  const char *declined[] = {
    "{\"channel\":\"c\\u0041\",\"data\":1}",
    "{\"channel\":\"c\"}",
    "{\"data\":1}",
    "{\"channel\":5,\"data\":1}",
    "{\"channel\":\"c\",\"channel\":5,\"data\":1}",
    "{\"channel\":\"c\",\"data\":1} x",
    "{\"channel\":\"c\",\"data\":1}{\"channel\":\"d\",\"data\":2}",
    "{\"channel\":\"c\",\"data\":[1,]}",
    "{\"channel\":\"c\",\"data\":tru}",
    "{\"channel\":\"c\",\"data\":01}",
    "{\"channel\":\"c\",\"data\":1,\"n\":18446744073709551615}",
    "{\"channel\":\"c\",\"data\":1,\"s\":\"a\\u0000b\"}",
    "{\"channel\":\"c\",\"key\":5,\"data\":1}",
    "{\"channel\":\"c\",\"key\":\"a\\nb\",\"data\":1}",
    "{\"channel\":\"c\",\"key\":\"a\",\"key\":null,\"data\":1}",
    "[1]",
    "{}",
    "",
  };
  for (guint i = 0; i < G_N_ELEMENTS (declined); i++)
    {
      g_autofree char *channel = NULL, *key = NULL, *data = NULL;
      g_assert_false (
          herald_json_scan_publish (declined[i], strlen (declined[i]), &channel, &key, &data));
      g_assert_null (channel);
      g_assert_null (data);
    }
}

static void
test_refuses_deep (void)
{
  g_autoptr (GString) s = g_string_new ("{\"channel\":\"c\",\"data\":");
  g_autofree char *channel = NULL, *key = NULL, *data = NULL;
  g_autoptr (GError) error = NULL;

  for (int i = 0; i < 100000; i++)
    g_string_append_c (s, '[');
  for (int i = 0; i < 100000; i++)
    g_string_append_c (s, ']');
  g_string_append_c (s, '}');
  g_assert_false (herald_json_scan_publish (s->str, s->len, &channel, &key, &data));
  g_assert_null (herald_json_compact (s->str, s->len, NULL, &error));
  g_assert_error (error, HERALD_JSON_ERROR, HERALD_JSON_ERROR_SYNTAX);
  g_assert_nonnull (strstr (error->message, "nested too deeply"));
}

/* Exactly RFC 8259: what json-glib 1.6 also takes (a second value, single
 * quotes, leading zeros, octal escapes, …) is refused. */
static void
test_grammar (void)
{
  const char *refused[] = {
    "{\"a\":1}{\"b\":2}",
    "{\"a\":1} {\"b\":2}",
    "[1][2]",
    "1 2",
    "{'a':1}",
    "{\"a\":01}",
    "{\"a\":1,}",
    "[1,]",
    "{a:1}",
    "\"\\222\"",
    "\"\\x41\"",
    "\"\\u12\"",
    "\"tab\there\"",
    "\"a\nb\"",
    "+1",
    ".5",
    "1.",
    "1e",
    "1e+",
    "-",
    "--1",
    "0x10",
    "NaN",
    "Infinity",
    "True",
    "nul",
    "\"unterminated",
    "{\"a\"}",
    "{\"a\" 1}",
    "[",
    "",
    "   ",
    "\"\xc3\"",
    "/* */ 1",
    "\"\\ude3A\"",
    "\"\\ud83d\"",
    "\"\\ud83dx\"",
    "\"\\ud83d\\u0041\"",
    "\"\\ud83d\\ud83d\"",
    "\"\\ud83d\\u",
  };
  const char *taken[][2] = {
    { " {\"a\" : [ 1 , 2 ] }\n", "{\"a\":[1,2]}" },
    { "9223372036854775808", "9223372036854775808" },
    { "18446744073709551615", "18446744073709551615" },
    { "-9223372036854775809", "-9223372036854775809" },
    { "123456789012345678901234567890", "123456789012345678901234567890" },
    { "1e30", "1e30" },
    { "1E+308", "1E+308" },
    { "1e400", "1e400" },
    { "0.1", "0.1" },
    { "-0.0e-0", "-0.0e-0" },
    { "\"a\\u0000b\"", "\"a\\u0000b\"" },
    { "\"\\u00e9 \\/ \\\" \\\\ \\b\\f\\n\\r\\t\"", "\"\\u00e9 \\/ \\\" \\\\ \\b\\f\\n\\r\\t\"" },
    { "\"\xf0\x9f\x98\x80 \x7f\"", "\"\xf0\x9f\x98\x80 \x7f\"" },
    { "[ true , false , null ]", "[true,false,null]" },
    { "{ }", "{}" },
    { "\" spaces stay \"", "\" spaces stay \"" },
    { "\"\\ud83d\\ude00\"", "\"\\ud83d\\ude00\"" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (refused); i++)
    {
      g_autoptr (GError) error = NULL;
      g_autofree char *out = herald_json_compact (refused[i], strlen (refused[i]), NULL, &error);

      if (out != NULL)
        g_error ("took %s as %s", refused[i], out);
      g_assert_error (error, HERALD_JSON_ERROR, HERALD_JSON_ERROR_SYNTAX);
    }
  for (guint i = 0; i < G_N_ELEMENTS (taken); i++)
    {
      g_autoptr (GError) error = NULL;
      gsize len = 0;
      g_autofree char *out = herald_json_compact (taken[i][0], strlen (taken[i][0]), &len, &error);

      g_assert_no_error (error);
      g_assert_cmpstr (out, ==, taken[i][1]);
      g_assert_cmpuint (len, ==, strlen (taken[i][1]));
    }
}

static void
test_second_value_message (void)
{
  g_autoptr (GError) error = NULL;

  g_assert_null (herald_json_compact ("{\"a\":1}{\"b\":2}", 14, NULL, &error));
  g_assert_cmpstr (error->message, ==, "more than one JSON value at byte 7");
}

/* Outside "data", what json-glib would misread is a field error; inside, the
 * client's text is kept as it is. */
static void
test_envelope (void)
{
  struct
  {
    const char *text;
    gboolean field_error;
    const char *data, *id;
  } cases[] = {
    { "{\"type\":\"subscribe\",\"channel\":\"a\\u0000x\"}", TRUE, NULL, NULL },
    { "{\"sub\\u0000\":1}", TRUE, NULL, NULL },
    { "{\"x\":{\"y\":[\"\\u0000\"]}}", TRUE, NULL, NULL },
    { "{\"since\":18446744073709551615}", TRUE, NULL, NULL },
    { "{\"since\":-9223372036854775809}", TRUE, NULL, NULL },
    { "{\"id\":9223372036854775808}", TRUE, NULL, NULL },
    { "{\"since\":9223372036854775807,\"id\":-9223372036854775808}", FALSE, NULL,
      "-9223372036854775808" },
    { "{\"data\":{\"n\":18446744073709551615,\"s\":\"a\\u0000b\"}}", FALSE,
      "{\"n\":18446744073709551615,\"s\":\"a\\u0000b\"}", NULL },
    { "{\"data\":1, \"data\" : [ 2 ] ,\"id\":\"x\"}", FALSE, "[2]", "\"x\"" },
    { "{\"d\\u0061ta\":1}", FALSE, NULL, NULL },
    { "[\"\\u0000\"]", TRUE, NULL, NULL },
    { "\"not an object\"", FALSE, NULL, NULL },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_auto (HeraldJsonEnvelope) env = { 0 };
      g_autoptr (GError) error = NULL;
      gboolean ok = herald_json_read_envelope (cases[i].text, strlen (cases[i].text), &env, &error);

      if (cases[i].field_error)
        {
          g_assert_false (ok);
          g_assert_error (error, HERALD_JSON_ERROR, HERALD_JSON_ERROR_FIELD);
          g_assert_null (env.data);
          continue;
        }
      g_assert_no_error (error);
      g_assert_true (ok);
      g_assert_cmpstr (env.data, ==, cases[i].data);
      g_assert_cmpstr (env.id, ==, cases[i].id);
    }
}

static gboolean
strict (const char *text, GError **error)
{
  return herald_json_check_strict (text, strlen (text), error);
}

static void
test_check_strict (void)
{
  g_autoptr (GError) nul = NULL, big = NULL, syntax = NULL;

  g_assert_true (strict ("{\"sub\":\"admin\",\"exp\":9223372036854775807}", NULL));
  g_assert_false (strict ("{\"sub\":\"admin\\u0000-attacker\"}", &nul));
  g_assert_error (nul, HERALD_JSON_ERROR, HERALD_JSON_ERROR_FIELD);
  g_assert_false (strict ("{\"exp\":-9223372036854775809}", &big));
  g_assert_error (big, HERALD_JSON_ERROR, HERALD_JSON_ERROR_FIELD);
  g_assert_false (strict ("{\"sub\":\"a\"}{}", &syntax));
  g_assert_error (syntax, HERALD_JSON_ERROR, HERALD_JSON_ERROR_SYNTAX);
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
      = { "a",    "Z",       "0",    " ",    "/", "é", "日本",         "😀",      "\\n",
          "\\\"", "\\u00e9", "\\\\", "\x7f", "'", "<", "\xe2\x80\xa8", "\\u0000" };
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
                                   "1e400",
                                   "9223372036854775808",
                                   "18446744073709551615",
                                   "-9223372036854775809",
                                   "0.1",
                                   "1e308" };
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
  g_test_add_func ("/json/scan/refuses-deep", test_refuses_deep);
  g_test_add_func ("/json/grammar", test_grammar);
  g_test_add_func ("/json/second-value", test_second_value_message);
  g_test_add_func ("/json/envelope", test_envelope);
  g_test_add_func ("/json/check-strict", test_check_strict);
  g_test_add_func ("/json/scan/generated", test_generated);
  return g_test_run ();
}
