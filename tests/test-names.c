/* test-names.c: channel names, connection ids, the base64url codec and the
 * names of Herald's error domains.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>

#include "herald-base64url.h"
#include "herald-config.h"
#include "herald-error.h"
#include "herald-json.h"
#include "herald-jwt.h"
#include "herald-names.h"

/* GLib's encoder with the URL-safe alphabet and the padding cut: the oracle. */
static char *
reference_encode (const guint8 *data, gsize length)
{
  char *text = g_base64_encode (data, length);

  g_strdelimit (text, "+", '-');
  g_strdelimit (text, "/", '_');
  g_strdelimit (text, "=", '\0');
  return text;
}

static void
test_base64url_round_trip (void)
{
  g_autoptr (GRand) rand = g_rand_new_with_seed (14);

  for (gsize length = 0; length < 200; length++)
    {
      g_autofree guint8 *data = g_malloc (length + 1);
      g_autofree char *text = NULL;
      g_autofree char *expected = NULL;
      g_autofree guint8 *back = NULL;
      gsize back_length = G_MAXSIZE;

      for (gsize i = 0; i < length; i++)
        data[i] = (guint8)g_rand_int_range (rand, 0, 256);
      text = herald_base64url_encode (data, length);
      expected = reference_encode (data, length);
      g_assert_cmpstr (text, ==, expected);
      back = herald_base64url_decode (text, strlen (text), &back_length);
      g_assert_nonnull (back);
      g_assert_cmpuint (back_length, ==, length);
      g_assert_cmpmem (back, back_length, data, length);
      g_assert_cmpuint (back[back_length], ==, 0);
    }
}

static void
test_base64url_strict (void)
{
  static const char *const refused[] = {
    "A",        /* a length of 1 mod 4 is never valid */
    "QQ==",     /* padding */
    "QQ=",      /* padding */
    "Q Q",      /* whitespace */
    "Q+Q",      /* the standard alphabet */
    "Q/Q",      /* the standard alphabet */
    "QR",       /* trailing bits set: "QQ" is the one spelling of "A" */
    "QUJ",      /* likewise: "QUI" is "AB" */
    "\xc3\xa9", /* not ASCII */
  };
  gsize length = 0;

  for (gsize i = 0; i < G_N_ELEMENTS (refused); i++)
    {
      g_autofree guint8 *out = herald_base64url_decode (refused[i], strlen (refused[i]), &length);
      g_assert_null (out);
    }
  {
    g_autofree guint8 *out = herald_base64url_decode ("QUI", 3, &length);
    g_assert_cmpmem (out, length, "AB", 2);
  }
  {
    g_autofree guint8 *out = herald_base64url_decode ("", 0, &length);
    g_assert_nonnull (out);
    g_assert_cmpuint (length, ==, 0);
  }
}

static void
test_connection_id_new (void)
{
  g_autoptr (GHashTable) seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);

  for (guint i = 0; i < 1000; i++)
    {
      char *id = herald_connection_id_new ();
      gsize length = 0;
      g_autofree guint8 *raw = herald_base64url_decode (id, strlen (id), &length);

      g_assert_cmpuint (strlen (id), ==, 22);
      g_assert_true (herald_connection_id_is_valid (id));
      g_assert_nonnull (raw);
      g_assert_cmpuint (length, ==, 16);
      g_assert_false (g_hash_table_contains (seen, id));
      g_hash_table_add (seen, id);
    }
}

static void
test_names (void)
{
  g_autofree char *name255 = g_strnfill (255, 'a');
  g_autofree char *name256 = g_strnfill (256, 'a');
  g_autofree char *id64 = g_strnfill (64, 'x');
  g_autofree char *id65 = g_strnfill (65, 'x');

  g_assert_true (herald_channel_name_is_valid ("news"));
  g_assert_true (herald_channel_name_is_valid ("a_b.c:d@e/f-g"));
  g_assert_true (herald_channel_name_is_valid ("dm:chat#alice,bob"));
  g_assert_true (herald_channel_user_allowed ("dm:chat#alice,bob", "alice"));
  g_assert_true (herald_channel_user_allowed ("dm:chat#alice,bob", "bob"));
  g_assert_false (herald_channel_user_allowed ("dm:chat#alice,bob", "ali"));
  g_assert_false (herald_channel_user_allowed ("dm:chat#alice,bob", "alice,bob"));
  g_assert_false (herald_channel_user_allowed ("dm:chat#alice,bob", NULL));
  g_assert_false (herald_channel_user_allowed ("dm:chat#", ""));
  g_assert_false (herald_channel_user_allowed ("dm:chat", "alice"));
  g_assert_true (herald_channel_name_is_valid (name255));
  g_assert_false (herald_channel_name_is_valid (name256));
  g_assert_false (herald_channel_name_is_valid (""));
  g_assert_false (herald_channel_name_is_valid (NULL));
  g_assert_false (herald_channel_name_is_valid ("a b"));
  g_assert_false (herald_channel_name_is_valid ("caf\xc3\xa9"));

  g_assert_true (herald_connection_id_is_valid ("abc_DEF-123"));
  g_assert_true (herald_connection_id_is_valid (id64));
  g_assert_false (herald_connection_id_is_valid (id65));
  g_assert_false (herald_connection_id_is_valid (""));
  g_assert_false (herald_connection_id_is_valid (NULL));
  g_assert_false (herald_connection_id_is_valid ("a.b"));
  g_assert_false (herald_connection_id_is_valid ("a/b"));
}

/* The domains' names as GLib and D-Bus show them (G_DEFINE_QUARK spells the
 * name it is given; a formatter once spaced it out to "herald - error - quark"). */
static void
test_error_quarks (void)
{
  g_assert_cmpstr (g_quark_to_string (HERALD_ERROR), ==, "herald-error-quark");
  g_assert_cmpstr (g_quark_to_string (HERALD_CONFIG_ERROR), ==, "herald-config-error-quark");
  g_assert_cmpstr (g_quark_to_string (HERALD_JSON_ERROR), ==, "herald-json-error-quark");
  g_assert_cmpstr (g_quark_to_string (HERALD_JWT_ERROR), ==, "herald-jwt-error-quark");
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/names/base64url/round-trip", test_base64url_round_trip);
  g_test_add_func ("/names/base64url/strict", test_base64url_strict);
  g_test_add_func ("/names/connection-id/new", test_connection_id_new);
  g_test_add_func ("/names/valid", test_names);
  g_test_add_func ("/names/error-quarks", test_error_quarks);
  return g_test_run ();
}
