/* test-log.c: herald_log_connection() gives journald the HERALD_* fields.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "herald-log.h"

typedef struct
{
  GHashTable *fields; /* name → value of the last record */
  guint n_records;
} Capture;

static GLogWriterOutput
capture_writer (GLogLevelFlags level, const GLogField *fields, gsize n_fields, gpointer user_data)
{
  Capture *capture = user_data;

  /* Records from elsewhere (GLib, soup) are not ours to check */
  if (g_log_writer_default_would_drop (level, "Herald-test"))
    return G_LOG_WRITER_HANDLED;
  g_hash_table_remove_all (capture->fields);
  for (gsize i = 0; i < n_fields; i++)
    g_hash_table_insert (capture->fields, g_strdup (fields[i].key),
                         fields[i].length < 0
                             ? g_strdup (fields[i].value)
                             : g_strndup (fields[i].value, fields[i].length));
  capture->n_records++;
  return G_LOG_WRITER_HANDLED;
}

static Capture capture;

static const char *
field (const char *name)
{
  return g_hash_table_lookup (capture.fields, name);
}

static void
test_close_fields (void)
{
  g_log_set_debug_enabled (TRUE);
  herald_log_connection (G_LOG_LEVEL_DEBUG, "c0nn-1", NULL, 4001, "slow consumer",
                         "connection %s closed: %u %s", "c0nn-1", 4001, "slow consumer");
  g_assert_cmpuint (capture.n_records, ==, 1);
  g_assert_cmpstr (field ("MESSAGE"), ==, "connection c0nn-1 closed: 4001 slow consumer");
  g_assert_cmpstr (field ("PRIORITY"), ==, "7");
  g_assert_cmpstr (field ("GLIB_DOMAIN"), ==, "Herald-test");
  g_assert_cmpstr (field ("HERALD_CONNECTION_ID"), ==, "c0nn-1");
  g_assert_cmpstr (field ("HERALD_CLOSE_CODE"), ==, "4001");
  g_assert_cmpstr (field ("HERALD_CLOSE_REASON"), ==, "slow consumer");
  g_assert_null (field ("HERALD_CHANNEL"));
  g_assert_nonnull (field ("CODE_FILE"));
  g_assert_nonnull (field ("CODE_FUNC"));
}

static void
test_channel_field (void)
{
  g_log_set_debug_enabled (TRUE);
  herald_log_connection (G_LOG_LEVEL_MESSAGE, "c0nn-2", "news", 0, NULL, "subscribed");
  g_assert_cmpstr (field ("PRIORITY"), ==, "5");
  g_assert_cmpstr (field ("HERALD_CONNECTION_ID"), ==, "c0nn-2");
  g_assert_cmpstr (field ("HERALD_CHANNEL"), ==, "news");
  g_assert_null (field ("HERALD_CLOSE_CODE"));
}

static void
test_debug_off (void)
{
  guint before = capture.n_records;

  /* Without --verbose, debug records are not even formatted */
  g_log_set_debug_enabled (FALSE);
  herald_log_connection (G_LOG_LEVEL_DEBUG, "c0nn-3", NULL, 0, NULL, "opened");
  g_assert_cmpuint (capture.n_records, ==, before);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_unsetenv ("G_MESSAGES_DEBUG");
  capture.fields = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  g_log_set_writer_func (capture_writer, &capture, NULL);

  g_test_add_func ("/log/close-fields", test_close_fields);
  g_test_add_func ("/log/channel-field", test_channel_field);
  g_test_add_func ("/log/debug-off", test_debug_off);
  return g_test_run ();
}
