/* test-dbus.c: tests for the D-Bus control plane (HeraldDbus) on a private
 * bus, with an in-process engine and a hub without workers.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <signal.h>
#include <string.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <gio/gio.h>
#include <glib/gstdio.h>

#include "herald-dbus.h"
#include "herald-memory-engine.h"
#include "herald-test-dbus.h"
#include "herald-test-utils.h"

#define TIMEOUT_MS 5000
#define ERROR_PREFIX HERALD_DBUS_INTERFACE ".Error."
/* The connection id docs/dbus.md uses in its examples. */
#define DOC_CONNECTION_ID "Gx3Tf0cQy2bJ1aW9kR7vZA"

static GTestDBus *test_bus;

typedef struct
{
  HeraldTestBus bus; /* HeraldDbus is exported on bus.server */
  HeraldConfig *config;
  HeraldEngine *engine;
  HeraldHub *hub;
  HeraldDbus *dbus;
} Fixture;

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  const char *address = g_test_dbus_get_bus_address (test_bus);

  herald_test_bus_open (&f->bus, address);
  f->config = herald_config_new ();
  f->engine = herald_memory_engine_new (f->config);
  f->hub = herald_hub_new (f->config, f->engine);
  f->dbus = herald_dbus_new (f->hub);
  herald_test_bus_export (&f->bus, f->dbus);
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  herald_test_bus_unexport (&f->bus, f->dbus);
  g_clear_object (&f->dbus);
  g_clear_object (&f->hub);
  g_clear_object (&f->engine);
  g_clear_object (&f->config);
}

/* --- Methods --- */

static void
test_publish (Fixture *f, gconstpointer data)
{
  guint64 last = 0;

  for (int i = 0; i < 3; i++)
    {
      g_autoptr (GVariant) reply = herald_test_bus_call_ok (
          &f->bus, "Publish", g_variant_new ("(ss)", "news", "{\"hello\": 1}"), "(t)");
      guint64 offset;

      g_variant_get (reply, "(t)", &offset);
      if (i > 0)
        g_assert_cmpuint (offset, >, last);
      last = offset;
    }

  herald_test_bus_call_fails (&f->bus, "Publish", g_variant_new ("(ss)", "news", "{not json"),
                              ERROR_PREFIX "InvalidArgument");
  herald_test_bus_call_fails (&f->bus, "Publish", g_variant_new ("(ss)", "news", "1 2"),
                              ERROR_PREFIX "InvalidArgument");
  herald_test_bus_call_fails (&f->bus, "Publish", g_variant_new ("(ss)", "bad channel!", "{}"),
                              ERROR_PREFIX "InvalidArgument");
  herald_test_bus_call_fails (&f->bus, "Publish", g_variant_new ("(ss)", "", "{}"),
                              ERROR_PREFIX "InvalidArgument");

  /* A second value after the first (json-glib 1.6 took the first) and text
   * json-glib takes but JSON does not. */
  herald_test_bus_call_fails (&f->bus, "Publish",
                              g_variant_new ("(ss)", "news", "{\"a\":1}{\"b\":2}"),
                              ERROR_PREFIX "InvalidArgument");
  herald_test_bus_call_fails (&f->bus, "Publish", g_variant_new ("(ss)", "news", "{'a':01}"),
                              ERROR_PREFIX "InvalidArgument");
  herald_test_bus_call_fails (&f->bus, "Broadcast", g_variant_new ("(s)", "[1][2]"),
                              ERROR_PREFIX "InvalidArgument");
  herald_test_bus_call_fails (&f->bus, "SendToUser", g_variant_new ("(ss)", "alice", "1 2"),
                              ERROR_PREFIX "InvalidArgument");

  /* Numbers and strings are stored (and delivered) as sent. */
  {
    const char *sent = " { \"n\" : [18446744073709551615, -9223372036854775809, 1e308, 0.1],"
                       " \"s\" : \"a\\u0000b\" } ";
    g_autoptr (GVariant) reply = herald_test_bus_call_ok (
        &f->bus, "Publish", g_variant_new ("(ss)", "exact", sent), "(t)");
    g_autoptr (HeraldRecovery) history = herald_engine_recover (f->engine, "exact", 0, NULL);
    HeraldMessage *message;

    g_assert_cmpuint (history->messages->len, ==, 1);
    message = g_ptr_array_index (history->messages, 0);
    g_assert_true (g_str_has_suffix (herald_message_get_json (message, NULL),
                                     ",\"data\":{\"n\":[18446744073709551615,-9223372036854775809,"
                                     "1e308,0.1],\"s\":\"a\\u0000b\"}}"));
  }

  /* The error also maps back to HERALD_ERROR in this process. */
  {
    g_autoptr (GError) error = NULL;
    g_autoptr (GVariant) reply = herald_test_bus_call (
        &f->bus, "Publish", g_variant_new ("(ss)", "news", "nope"), NULL, &error);

    g_assert_error (error, HERALD_ERROR, HERALD_ERROR_INVALID_ARGUMENT);
  }

  /* Over max-message-size */
  {
    g_autofree char *big = NULL;
    GString *json = g_string_new ("\"");

    for (guint i = 0; i < herald_config_get_max_message_size (f->config) + 16; i++)
      g_string_append_c (json, 'x');
    g_string_append_c (json, '"');
    big = g_string_free (json, FALSE);
    herald_test_bus_call_fails (&f->bus, "Publish", g_variant_new ("(ss)", "news", big),
                                ERROR_PREFIX "LimitExceeded");
  }

  /* A wrong signature never reaches the adapter. */
  herald_test_bus_call_fails (&f->bus, "Publish", g_variant_new ("(s)", "news"),
                              "org.freedesktop.DBus.Error.InvalidArgs");
}

static void
test_send (Fixture *f, gconstpointer data)
{
  g_autoptr (GVariant) broadcast = NULL;
  g_autoptr (GVariant) to_user = NULL;
  guint delivered = 42;

  broadcast
      = herald_test_bus_call_ok (&f->bus, "Broadcast", g_variant_new ("(s)", "{\"a\":1}"), "(u)");
  g_variant_get (broadcast, "(u)", &delivered);
  g_assert_cmpuint (delivered, ==, 0);
  herald_test_bus_call_fails (&f->bus, "Broadcast", g_variant_new ("(s)", "{"),
                              ERROR_PREFIX "InvalidArgument");

  to_user = herald_test_bus_call_ok (&f->bus, "SendToUser",
                                     g_variant_new ("(ss)", "alice", "[1,2]"), "(u)");
  delivered = 42;
  g_variant_get (to_user, "(u)", &delivered);
  g_assert_cmpuint (delivered, ==, 0);
  herald_test_bus_call_fails (&f->bus, "SendToUser", g_variant_new ("(ss)", "", "[1]"),
                              ERROR_PREFIX "InvalidArgument");
  herald_test_bus_call_fails (&f->bus, "SendToUser", g_variant_new ("(ss)", "alice", "[1"),
                              ERROR_PREFIX "InvalidArgument");

  herald_test_bus_call_fails (&f->bus, "SendToConnection",
                              g_variant_new ("(ss)", "unknown-id", "{}"), ERROR_PREFIX "NotFound");
  herald_test_bus_call_fails (&f->bus, "SendToConnection", g_variant_new ("(ss)", "bad id!", "{}"),
                              ERROR_PREFIX "InvalidArgument");
}

static void
test_connections (Fixture *f, gconstpointer data)
{
  g_autoptr (GVariant) list
      = herald_test_bus_call_ok (&f->bus, "ListConnections", NULL, "(aa{sv})");
  g_autoptr (GVariant) channels
      = herald_test_bus_call_ok (&f->bus, "ListChannels", NULL, "(a(su))");
  g_autoptr (GVariant) connections = g_variant_get_child_value (list, 0);
  g_autofree char *long_reason = g_strnfill (124, 'r');
  g_autofree char *max_reason = g_strnfill (123, 'r');

  g_assert_cmpuint (g_variant_n_children (connections), ==, 0);

  herald_test_bus_call_fails (&f->bus, "GetConnection", g_variant_new ("(s)", "unknown-id"),
                              ERROR_PREFIX "NotFound");
  herald_test_bus_call_fails (&f->bus, "GetConnection", g_variant_new ("(s)", "no/slash"),
                              ERROR_PREFIX "InvalidArgument");
  herald_test_bus_call_fails (&f->bus, "CloseConnection",
                              g_variant_new ("(sqs)", "unknown-id", 4004, "bye"),
                              ERROR_PREFIX "NotFound");
  herald_test_bus_call_fails (&f->bus, "CloseConnection",
                              g_variant_new ("(sqs)", "unknown-id", 1000, max_reason),
                              ERROR_PREFIX "NotFound");
  /* Argument checks come before the lookup. */
  herald_test_bus_call_fails (&f->bus, "CloseConnection",
                              g_variant_new ("(sqs)", "unknown-id", 1001, "bye"),
                              ERROR_PREFIX "InvalidArgument");
  herald_test_bus_call_fails (&f->bus, "CloseConnection",
                              g_variant_new ("(sqs)", "unknown-id", 2999, "bye"),
                              ERROR_PREFIX "InvalidArgument");
  herald_test_bus_call_fails (&f->bus, "CloseConnection",
                              g_variant_new ("(sqs)", "unknown-id", 5000, "bye"),
                              ERROR_PREFIX "InvalidArgument");
  herald_test_bus_call_fails (&f->bus, "CloseConnection",
                              g_variant_new ("(sqs)", "unknown-id", 4004, long_reason),
                              ERROR_PREFIX "InvalidArgument");
  herald_test_bus_call_fails (&f->bus, "CloseConnection", g_variant_new ("(sqs)", "", 4004, "bye"),
                              ERROR_PREFIX "InvalidArgument");
}

/* --- Properties --- */

static void
test_properties (Fixture *f, gconstpointer data)
{
  static const char *const read_write[]
      = { "HeartbeatInterval", "ConnectionTimeout", "MaxConnections", "MaxMessageSize",
          "SendQueueMaxBytes" };
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) reply = NULL;
  g_autoptr (GVariant) all = NULL;
  g_autoptr (GVariant) all_props = NULL;
  g_autoptr (GVariant) version = herald_test_bus_get_property (&f->bus, "Version");
  g_autoptr (GVariant) engine = herald_test_bus_get_property (&f->bus, "Engine");
  g_autoptr (GVariant) node_id = herald_test_bus_get_property (&f->bus, "NodeId");
  g_autoptr (GVariant) count = herald_test_bus_get_property (&f->bus, "ConnectionCount");
  g_autoptr (GVariant) suppressed = herald_test_bus_get_property (&f->bus, "SuppressedSignals");

  g_assert_cmpstr (g_variant_get_string (version, NULL), ==, PACKAGE_VERSION);
  g_assert_true (
      g_str_has_prefix (g_variant_get_string (engine, NULL), herald_engine_get_name (f->engine)));
  g_assert_cmpstr (g_variant_get_string (node_id, NULL), ==, herald_hub_get_node_id (f->hub));
  g_assert_cmpuint (g_variant_get_uint32 (count), ==, 0);
  g_assert_cmpuint (g_variant_get_uint64 (suppressed), ==, 0);

  /* Defaults from the config */
  for (gsize i = 0; i < G_N_ELEMENTS (read_write); i++)
    {
      g_autoptr (GVariant) value = herald_test_bus_get_property (&f->bus, read_write[i]);

      g_assert_true (g_variant_is_of_type (value, G_VARIANT_TYPE_UINT32));
    }
  {
    g_autoptr (GVariant) heartbeat = herald_test_bus_get_property (&f->bus, "HeartbeatInterval");

    g_assert_cmpuint (g_variant_get_uint32 (heartbeat), ==,
                      herald_config_get_heartbeat_interval (f->config));
  }

  /* Round trip, announced with PropertiesChanged */
  reply = herald_test_bus_set_property (&f->bus, "HeartbeatInterval", g_variant_new_uint32 (20),
                                        &error);
  g_assert_no_error (error);
  g_clear_pointer (&reply, g_variant_unref);
  g_assert_cmpuint (herald_config_get_heartbeat_interval (f->config), ==, 20);
  {
    g_autoptr (GVariant) heartbeat = herald_test_bus_get_property (&f->bus, "HeartbeatInterval");

    g_assert_cmpuint (g_variant_get_uint32 (heartbeat), ==, 20);
  }
  HERALD_TEST_WAIT_UNTIL (herald_test_bus_changed_has (&f->bus, "HeartbeatInterval", 20),
                          TIMEOUT_MS);

  reply = herald_test_bus_set_property (&f->bus, "SendQueueMaxBytes", g_variant_new_uint32 (65536),
                                        &error);
  g_assert_no_error (error);
  g_clear_pointer (&reply, g_variant_unref);
  g_assert_cmpuint (herald_config_get_send_queue_max_bytes (f->config), ==, 65536);

  /* Out of range: a named error, nothing changed */
  reply
      = herald_test_bus_set_property (&f->bus, "MaxConnections", g_variant_new_uint32 (0), &error);
  g_assert_null (reply);
  herald_test_bus_assert_remote_error (error, ERROR_PREFIX "InvalidArgument");
  g_clear_error (&error);
  g_assert_cmpuint (herald_config_get_max_connections (f->config), ==, 10000);
  reply = herald_test_bus_set_property (&f->bus, "HeartbeatInterval", g_variant_new_uint32 (100000),
                                        &error);
  herald_test_bus_assert_remote_error (error, ERROR_PREFIX "InvalidArgument");
  g_clear_error (&error);
  g_assert_cmpuint (herald_config_get_heartbeat_interval (f->config), ==, 20);

  /* Wrong type, read-only */
  reply = herald_test_bus_set_property (&f->bus, "HeartbeatInterval", g_variant_new_string ("20"),
                                        &error);
  herald_test_bus_assert_remote_error (error, "org.freedesktop.DBus.Error.InvalidArgs");
  g_clear_error (&error);
  reply = herald_test_bus_set_property (&f->bus, "Version", g_variant_new_string ("9"), &error);
  g_assert_null (reply);
  g_assert_nonnull (error);
  g_clear_error (&error);

  /* A change from elsewhere (SIGHUP reload) is announced too. */
  g_assert_true (herald_config_set_connection_timeout (f->config, 120, &error));
  g_assert_no_error (error);
  HERALD_TEST_WAIT_UNTIL (herald_test_bus_changed_has (&f->bus, "ConnectionTimeout", 120),
                          TIMEOUT_MS);

  all = herald_test_bus_call_full (&f->bus, "org.freedesktop.DBus.Properties", "GetAll",
                                   g_variant_new ("(s)", HERALD_DBUS_INTERFACE), "(a{sv})", &error);
  g_assert_no_error (error);
  all_props = g_variant_get_child_value (all, 0);
  g_assert_cmpuint (g_variant_n_children (all_props), ==, 10);
}

/* --- Signals --- */

static void
test_signals (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  const char *id, *user_id, *transport, *reason;
  guint16 code;

  g_assert_true (herald_hub_reserve_connection (f->hub, "conn-1", "alice", "127.0.0.1", 0, &error));
  g_assert_no_error (error);
  herald_hub_connection_opened (f->hub, "conn-1", "alice", HERALD_TRANSPORT_WEBSOCKET);
  HERALD_TEST_WAIT_UNTIL (f->bus.opened->len == 1, TIMEOUT_MS);
  g_variant_get (g_ptr_array_index (f->bus.opened, 0), "(&s&s&s)", &id, &user_id, &transport);
  g_assert_cmpstr (id, ==, "conn-1");
  g_assert_cmpstr (user_id, ==, "alice");
  g_assert_cmpstr (transport, ==, "websocket");

  g_assert_true (herald_hub_reserve_connection (f->hub, "conn-2", NULL, "127.0.0.1", 0, &error));
  g_assert_no_error (error);
  herald_hub_connection_opened (f->hub, "conn-2", NULL, HERALD_TRANSPORT_SSE);
  HERALD_TEST_WAIT_UNTIL (f->bus.opened->len == 2, TIMEOUT_MS);
  g_variant_get (g_ptr_array_index (f->bus.opened, 1), "(&s&s&s)", &id, &user_id, &transport);
  g_assert_cmpstr (id, ==, "conn-2");
  g_assert_cmpstr (user_id, ==, "");
  g_assert_cmpstr (transport, ==, "sse");

  herald_hub_release_connection (f->hub, "conn-1", 4004, "bye", TRUE);
  HERALD_TEST_WAIT_UNTIL (f->bus.closed->len == 1, TIMEOUT_MS);
  g_variant_get (g_ptr_array_index (f->bus.closed, 0), "(&sq&s)", &id, &code, &reason);
  g_assert_cmpstr (id, ==, "conn-1");
  g_assert_cmpuint (code, ==, 4004);
  g_assert_cmpstr (reason, ==, "bye");

  herald_hub_release_connection (f->hub, "conn-2", 1000, "", TRUE);
  HERALD_TEST_WAIT_UNTIL (f->bus.closed->len == 2, TIMEOUT_MS);
}

static gboolean
changed_suppressed (Fixture *f, guint64 value)
{
  for (guint i = 0; i < f->bus.changed->len; i++)
    {
      guint64 got;

      if (g_variant_lookup (g_ptr_array_index (f->bus.changed, i), "SuppressedSignals", "t", &got)
          && got == value)
        return TRUE;
    }
  return FALSE;
}

static void
test_signal_flood (Fixture *f, gconstpointer data)
{
  const guint n = 1000;
  gint64 start = g_get_monotonic_time ();
  guint64 suppressed;
  double elapsed;
  guint allowed;

  for (guint i = 0; i < n; i++)
    {
      g_autofree char *id = g_strdup_printf ("flood-%u", i);
      g_autoptr (GError) error = NULL;

      g_assert_true (herald_hub_reserve_connection (f->hub, id, "bob", "127.0.0.1", 0, &error));
      g_assert_no_error (error);
      herald_hub_connection_opened (f->hub, id, "bob", HERALD_TRANSPORT_WEBSOCKET);
    }
  /* Everything the hub emits from here on happens in this main context. */
  HERALD_TEST_WAIT_UNTIL (herald_dbus_get_suppressed_signals (f->dbus) + f->bus.opened->len >= n
                              || f->bus.opened->len >= n,
                          TIMEOUT_MS);
  elapsed = (double)(g_get_monotonic_time () - start) / G_USEC_PER_SEC;
  suppressed = herald_dbus_get_suppressed_signals (f->dbus);
  g_assert_cmpuint (suppressed, >, 0);

  /* The summary comes after every signal the adapter let through (messages
   * from one sender arrive in order), so the count is final here. */
  HERALD_TEST_WAIT_UNTIL (changed_suppressed (f, suppressed), TIMEOUT_MS);
  g_assert_cmpuint (f->bus.opened->len + suppressed, ==, n);
  allowed = HERALD_DBUS_SIGNAL_RATE + (guint)(elapsed * HERALD_DBUS_SIGNAL_RATE) + 1;
  g_test_message ("%u of %u ConnectionOpened signals sent in %.3f s", f->bus.opened->len, n,
                  elapsed);
  g_assert_cmpuint (f->bus.opened->len, <=, allowed);
  g_assert_cmpuint (f->bus.opened->len, >=, HERALD_DBUS_SIGNAL_RATE);

  {
    g_autoptr (GVariant) value = herald_test_bus_get_property (&f->bus, "SuppressedSignals");

    g_assert_cmpuint (g_variant_get_uint64 (value), ==, suppressed);
  }
}

/* --- Export, name ownership --- */

static void
test_unexport (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) reply = NULL;

  g_assert_false (herald_dbus_export (f->dbus, f->bus.server, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_EXISTS);
  g_clear_error (&error);

  herald_dbus_unexport (f->dbus);
  reply = herald_test_bus_call (&f->bus, "ListChannels", NULL, NULL, &error);
  g_assert_null (reply);
  g_assert_error (error, G_DBUS_ERROR, G_DBUS_ERROR_UNKNOWN_METHOD);
  herald_dbus_unexport (f->dbus);

  /* Can be exported again */
  g_clear_error (&error);
  g_assert_true (herald_dbus_export (f->dbus, f->bus.server, &error));
  g_assert_no_error (error);
  reply = herald_test_bus_call_ok (&f->bus, "ListChannels", NULL, "(a(su))");
}

static void
count_emission (HeraldDbus *dbus, gpointer user_data)
{
  (*(guint *)user_data)++;
}

static char *
name_owner (Fixture *f)
{
  g_autoptr (GVariant) reply = NULL;
  char *owner = NULL;

  reply = g_dbus_connection_call_sync (
      f->bus.client, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
      "GetNameOwner", g_variant_new ("(s)", HERALD_DBUS_NAME), G_VARIANT_TYPE ("(s)"),
      G_DBUS_CALL_FLAGS_NONE, TIMEOUT_MS, NULL, NULL);
  if (reply != NULL)
    g_variant_get (reply, "(s)", &owner);
  return owner;
}

static void
test_own_name (Fixture *f, gconstpointer data)
{
  g_autoptr (HeraldDbus) first = herald_dbus_new (f->hub);
  g_autoptr (HeraldDbus) second = herald_dbus_new (f->hub);
  guint ready = 0, lost = 0, second_ready = 0, second_lost = 0;

  /* The fixture's connection holds the name without allowing replacement. */
  g_signal_connect (first, "ready", G_CALLBACK (count_emission), &ready);
  g_signal_connect (first, "name-lost", G_CALLBACK (count_emission), &lost);
  g_test_expect_message ("Herald", G_LOG_LEVEL_WARNING, "*another instance holds it*");
  g_assert_cmpuint (herald_dbus_own_name (first, G_BUS_TYPE_SESSION, FALSE), !=, 0);
  HERALD_TEST_WAIT_UNTIL (lost == 1, TIMEOUT_MS);
  g_test_assert_expected_messages ();
  g_assert_cmpuint (ready, ==, 0);
  herald_dbus_unexport (first);

  /* Free name: ready, owned by the session connection */
  herald_test_bus_name_request (f->bus.server, "ReleaseName", 0);
  g_signal_connect (second, "ready", G_CALLBACK (count_emission), &second_ready);
  g_signal_connect (second, "name-lost", G_CALLBACK (count_emission), &second_lost);
  herald_dbus_own_name (second, G_BUS_TYPE_SESSION, FALSE);
  HERALD_TEST_WAIT_UNTIL (second_ready == 1, TIMEOUT_MS);
  {
    g_autoptr (GDBusConnection) session = g_bus_get_sync (G_BUS_TYPE_SESSION, NULL, NULL);
    g_autofree char *owner = name_owner (f);

    g_assert_cmpstr (owner, ==, g_dbus_connection_get_unique_name (session));
  }

  /* Another instance with --replace takes it over: name-lost */
  g_test_expect_message ("Herald", G_LOG_LEVEL_MESSAGE, "*Lost the D-Bus name*");
  /* 2 = REPLACE_EXISTING, 4 = DO_NOT_QUEUE */
  g_assert_cmpuint (herald_test_bus_name_request (f->bus.server, "RequestName", 2 | 4), ==, 1);
  HERALD_TEST_WAIT_UNTIL (second_lost == 1, TIMEOUT_MS);
  g_test_assert_expected_messages ();

  /* Unexporting after that must not warn (GLib 2.74 would, on releasing a
   * name it no longer holds); the fixture's teardown releases the name. */
  herald_dbus_unexport (second);
}

/* --- docs/dbus.md --- */

static char *
read_doc (void)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *path = g_test_build_filename (G_TEST_DIST, "..", "docs", "dbus.md", NULL);
  char *text = NULL;

  g_file_get_contents (path, &text, NULL, &error);
  g_assert_no_error (error);
  return text;
}

static void
on_communicated (GObject *source, GAsyncResult *result, gpointer user_data)
{
  GAsyncResult **out = user_data;

  *out = g_object_ref (result);
}

/* Runs @script with sh in the test's environment (DBUS_SESSION_BUS_ADDRESS
 * points at the private bus) without blocking the main context, which has
 * to answer the calls. Returns the exit status. */
static int
run_shell (const char *script, char **out, char **err)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GSubprocess) process = NULL;
  g_autoptr (GAsyncResult) result = NULL;

  process = g_subprocess_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE,
                              &error, "/bin/sh", "-c", script, NULL);
  g_assert_no_error (error);
  g_subprocess_communicate_utf8_async (process, NULL, NULL, on_communicated, &result);
  HERALD_TEST_WAIT_UNTIL (result != NULL, TIMEOUT_MS);
  g_subprocess_communicate_utf8_finish (process, result, out, err, &error);
  g_assert_no_error (error);
  return g_subprocess_get_exit_status (process);
}

static void
assert_program (const char *name)
{
  g_autofree char *path = g_find_program_in_path (name);

  if (path == NULL)
    g_error ("%s is needed by this test", name);
}

/* Every busctl and gdbus command line in a code block of the doc runs against the private
 * bus and must succeed; one about a connection id may instead fail with
 * NotFound since no such connection exists here. Monitors never end and are
 * left out. */
static void
test_doc_commands (Fixture *f, gconstpointer data)
{
  g_autofree char *doc = read_doc ();
  g_auto (GStrv) lines = g_strsplit (doc, "\n", -1);
  guint n_busctl = 0, n_gdbus = 0;
  gboolean in_block = FALSE;

  assert_program ("busctl");
  assert_program ("gdbus");
  for (guint i = 0; lines[i] != NULL; i++)
    {
      const char *line = lines[i];
      g_autofree char *out = NULL;
      g_autofree char *err = NULL;
      gboolean busctl = g_str_has_prefix (line, "busctl ");
      int status;

      if (g_str_has_prefix (line, "```"))
        in_block = !in_block;
      if (!in_block || (!busctl && !g_str_has_prefix (line, "gdbus "))
          || strstr (line, " monitor ") != NULL)
        continue;
      g_assert_true (busctl ? g_str_has_prefix (line, "busctl --user ")
                            : g_str_has_prefix (line, "gdbus call --session ")
                                  || g_str_has_prefix (line, "gdbus introspect --session "));
      busctl ? n_busctl++ : n_gdbus++;
      status = run_shell (line, &out, &err);
      g_test_message ("%s\n-> %d %s%s", line, status, out, err);
      if (status != 0)
        {
          /* gdbus names the error; busctl prints only the hub's message
           * ("no connection with id …", "no such connection"). */
          g_assert_nonnull (strstr (line, DOC_CONNECTION_ID));
          if (busctl)
            g_assert_nonnull (strstr (err, "no such connection")
                                  ?: strstr (err, DOC_CONNECTION_ID));
          else
            g_assert_nonnull (strstr (err, ERROR_PREFIX "NotFound"));
        }
    }
  /* Every method has both examples, plus the property commands. */
  g_assert_cmpuint (n_busctl, >=, 11);
  g_assert_cmpuint (n_gdbus, >=, 12);
  /* The doc's set-property examples went through. */
  g_assert_cmpuint (herald_config_get_heartbeat_interval (f->config), ==, 20);
  g_assert_cmpuint (herald_config_get_max_connections (f->config), ==, 5000);
}

static void
test_doc_script (Fixture *f, gconstpointer data)
{
  g_autofree char *doc = read_doc ();
  const char *start = strstr (doc, "<!-- tested: script -->\n```sh\n");
  const char *end;
  g_autofree char *script = NULL;
  g_autofree char *full = NULL;
  g_autofree char *out = NULL;
  g_autofree char *err = NULL;
  int status;

  assert_program ("jq");
  g_assert_nonnull (start);
  start = strchr (strchr (start, '\n') + 1, '\n') + 1;
  end = strstr (start, "```");
  g_assert_nonnull (end);
  script = g_strndup (start, end - start);
  full = g_strdup_printf ("HERALD_BUS=--user\nexport HERALD_BUS\n%s", script);

  status = run_shell (full, &out, &err);
  g_test_message ("%s%s", out, err);
  g_assert_cmpint (status, ==, 0);
  g_assert_true (g_str_has_prefix (out, "published as offset "));
  g_assert_cmpuint (g_ascii_strtoull (out + strlen ("published as offset "), NULL, 10), >, 0);
}

/* --- data/ --- */

static void
test_data_files_valid (void)
{
  static const char *const files[]
      = { "io.github.herald.Herald1.conf", "io.github.herald.Herald1.xml" };

  assert_program ("xmllint");
  for (gsize i = 0; i < G_N_ELEMENTS (files); i++)
    {
      g_autofree char *path = g_test_build_filename (G_TEST_DIST, "..", "data", files[i], NULL);
      g_autofree char *err = NULL;
      g_autoptr (GError) error = NULL;
      int status = 0;
      const char *argv[] = { "xmllint", "--noout", path, NULL };

      g_spawn_sync (NULL, (char **)argv, NULL, G_SPAWN_SEARCH_PATH | G_SPAWN_STDOUT_TO_DEV_NULL,
                    NULL, NULL, NULL, &err, &status, &error);
      g_assert_no_error (error);
      g_assert_true (g_spawn_check_wait_status (status, NULL));
      g_assert_cmpstr (err, ==, "");
    }
}

/* The system-bus policy, enforced by a real dbus-daemon: root may do
 * everything, another user only read properties and introspect. Needs root
 * to run the client as "nobody". */
static const char bus_config[]
    = "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN\"\n"
      " \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n"
      "<busconfig>\n"
      "  <listen>unix:path=%s/bus</listen>\n"
      "  <auth>EXTERNAL</auth>\n"
      "  <policy context=\"default\">\n"
      /* The defaults of /usr/share/dbus-1/system.conf */
      "    <allow user=\"*\"/>\n"
      "    <deny own=\"*\"/>\n"
      "    <deny send_type=\"method_call\"/>\n"
      "    <allow send_type=\"signal\"/>\n"
      "    <allow send_requested_reply=\"true\" send_type=\"method_return\"/>\n"
      "    <allow send_requested_reply=\"true\" send_type=\"error\"/>\n"
      "    <allow receive_type=\"method_call\"/>\n"
      "    <allow receive_type=\"method_return\"/>\n"
      "    <allow receive_type=\"error\"/>\n"
      "    <allow receive_type=\"signal\"/>\n"
      "    <allow send_destination=\"org.freedesktop.DBus\"/>\n"
      "  </policy>\n"
      "  <include>%s</include>\n"
      "</busconfig>\n";

static void
on_line_read (GObject *source, GAsyncResult *result, gpointer user_data)
{
  char **line = user_data;

  *line = g_data_input_stream_read_line_finish_utf8 (G_DATA_INPUT_STREAM (source), result, NULL,
                                                     NULL);
  if (*line == NULL)
    *line = g_strdup ("");
}

static void
die_with_parent (gpointer user_data)
{
  prctl (PR_SET_PDEATHSIG, SIGTERM);
}

static void
test_policy (void)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *dir = NULL;
  g_autofree char *config_path = NULL;
  g_autofree char *config = NULL;
  g_autofree char *policy = NULL;
  g_autofree char *address = NULL;
  g_autoptr (GSubprocessLauncher) launcher = NULL;
  g_autoptr (GSubprocess) daemon = NULL;
  g_autoptr (GDataInputStream) daemon_out = NULL;
  g_autoptr (GDBusConnection) connection = NULL;
  g_autoptr (HeraldConfig) herald_config = NULL;
  g_autoptr (HeraldEngine) engine = NULL;
  g_autoptr (HeraldHub) hub = NULL;
  g_autoptr (HeraldDbus) dbus = NULL;
  g_autoptr (GVariant) reply = NULL;
  static const struct
  {
    gboolean as_nobody;
    const char *command;
    gboolean allowed;
  } cases[] = {
    { FALSE,
      "busctl --address=%s call " HERALD_DBUS_NAME " " HERALD_DBUS_PATH " " HERALD_DBUS_INTERFACE
      " Publish ss news '{}'",
      TRUE },
    { FALSE,
      "busctl --address=%s set-property " HERALD_DBUS_NAME " " HERALD_DBUS_PATH
      " " HERALD_DBUS_INTERFACE " HeartbeatInterval u 20",
      TRUE },
    { TRUE,
      "busctl --address=%s call " HERALD_DBUS_NAME " " HERALD_DBUS_PATH " " HERALD_DBUS_INTERFACE
      " Publish ss news '{}'",
      FALSE },
    { TRUE,
      "busctl --address=%s call " HERALD_DBUS_NAME " " HERALD_DBUS_PATH " " HERALD_DBUS_INTERFACE
      " ListConnections",
      FALSE },
    { TRUE,
      "busctl --address=%s set-property " HERALD_DBUS_NAME " " HERALD_DBUS_PATH
      " " HERALD_DBUS_INTERFACE " HeartbeatInterval u 21",
      FALSE },
    { TRUE,
      "busctl --address=%s get-property " HERALD_DBUS_NAME " " HERALD_DBUS_PATH
      " " HERALD_DBUS_INTERFACE " Version HeartbeatInterval",
      TRUE },
    { TRUE,
      "gdbus call --address %s --dest " HERALD_DBUS_NAME " --object-path " HERALD_DBUS_PATH
      " --method org.freedesktop.DBus.Properties.GetAll " HERALD_DBUS_INTERFACE,
      TRUE },
    { TRUE, "busctl --address=%s introspect " HERALD_DBUS_NAME " " HERALD_DBUS_PATH, TRUE },
    { TRUE,
      "gdbus call --address %s --dest org.freedesktop.DBus --object-path /org/freedesktop/DBus"
      " --method org.freedesktop.DBus.RequestName " HERALD_DBUS_NAME " 4",
      FALSE },
  };

  if (getuid () != 0)
    {
      g_test_skip ("needs root to run clients as another user");
      return;
    }
  assert_program ("dbus-daemon");
  assert_program ("setpriv");
  assert_program ("busctl");

  dir = g_dir_make_tmp ("herald-dbus-policy-XXXXXX", &error);
  g_assert_no_error (error);
  g_assert_cmpint (g_chmod (dir, 0755), ==, 0);
  policy = g_test_build_filename (G_TEST_DIST, "..", "data", "io.github.herald.Herald1.conf", NULL);
  config = g_strdup_printf (bus_config, dir, policy);
  config_path = g_build_filename (dir, "bus.conf", NULL);
  g_file_set_contents (config_path, config, -1, &error);
  g_assert_no_error (error);

  /* The daemon dies with us, even when an assertion ends the test early. */
  launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE
                                        | G_SUBPROCESS_FLAGS_STDERR_SILENCE);
  g_subprocess_launcher_set_child_setup (launcher, die_with_parent, NULL, NULL);
  daemon = g_subprocess_launcher_spawn (launcher, &error, "dbus-daemon", "--nofork",
                                        "--print-address=1", "--config-file", config_path, NULL);
  g_assert_no_error (error);
  daemon_out = g_data_input_stream_new (g_subprocess_get_stdout_pipe (daemon));
  g_data_input_stream_read_line_async (daemon_out, G_PRIORITY_DEFAULT, NULL, on_line_read,
                                       &address);
  HERALD_TEST_WAIT_UNTIL (address != NULL, TIMEOUT_MS);
  g_assert_true (g_str_has_prefix (address, "unix:"));

  connection = herald_test_bus_connect (address);
  herald_config = herald_config_new ();
  engine = herald_memory_engine_new (herald_config);
  hub = herald_hub_new (herald_config, engine);
  dbus = herald_dbus_new (hub);
  g_assert_true (herald_dbus_export (dbus, connection, &error));
  g_assert_no_error (error);
  reply = g_dbus_connection_call_sync (
      connection, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
      "RequestName", g_variant_new ("(su)", HERALD_DBUS_NAME, 4), G_VARIANT_TYPE ("(u)"),
      G_DBUS_CALL_FLAGS_NONE, TIMEOUT_MS, NULL, &error);
  g_assert_no_error (error);

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *command = g_strdup_printf (cases[i].command, address);
      g_autofree char *line = g_strdup_printf (
          "%s%s", cases[i].as_nobody ? "setpriv --reuid=65534 --regid=65534 --clear-groups " : "",
          command);
      g_autofree char *out = NULL;
      g_autofree char *err = NULL;
      int status = run_shell (line, &out, &err);

      g_test_message ("%s\n-> %d %s%s", line, status, out, err);
      if (cases[i].allowed)
        g_assert_cmpint (status, ==, 0);
      else
        {
          g_assert_cmpint (status, !=, 0);
          g_assert_true (strstr (err, "Access denied") != NULL
                         || strstr (err, "AccessDenied") != NULL
                         || strstr (err, "not allowed") != NULL);
        }
    }
  g_assert_cmpuint (herald_config_get_heartbeat_interval (herald_config), ==, 20);

  herald_dbus_unexport (dbus);
  g_dbus_connection_close_sync (connection, NULL, NULL);
  g_subprocess_send_signal (daemon, SIGTERM);
  g_subprocess_wait (daemon, NULL, NULL);
  g_remove (config_path);
  g_rmdir (dir);
}

int
main (int argc, char **argv)
{
  int ret;

  g_setenv ("LC_ALL", "C.UTF-8", TRUE);
  g_test_init (&argc, &argv, NULL);

  /* One private bus for the whole program; g_test_dbus_up() points
   * DBUS_SESSION_BUS_ADDRESS at it, for G_BUS_TYPE_SESSION and the
   * busctl/gdbus children alike. */
  test_bus = g_test_dbus_new (G_TEST_DBUS_NONE);
  g_test_dbus_up (test_bus);

#define ADD(path, func) g_test_add (path, Fixture, NULL, fixture_setup, func, fixture_teardown)
  ADD ("/dbus/publish", test_publish);
  ADD ("/dbus/send", test_send);
  ADD ("/dbus/connections", test_connections);
  ADD ("/dbus/properties", test_properties);
  ADD ("/dbus/signals", test_signals);
  ADD ("/dbus/signal-flood", test_signal_flood);
  ADD ("/dbus/unexport", test_unexport);
  ADD ("/dbus/own-name", test_own_name);
  ADD ("/dbus/doc-commands", test_doc_commands);
  ADD ("/dbus/doc-script", test_doc_script);
#undef ADD
  g_test_add_func ("/dbus/data-files-valid", test_data_files_valid);
  g_test_add_func ("/dbus/policy", test_policy);

  ret = g_test_run ();
  g_test_dbus_down (test_bus);
  g_object_unref (test_bus);
  return ret;
}
