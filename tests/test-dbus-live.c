/* test-dbus-live.c: the D-Bus control plane end to end — a real Herald in
 * the test process (worker threads, loopback port), its HeraldDbus exported
 * on a private bus, raw WebSocket clients, and calls made over the bus
 * (GDBus and the busctl command line).
 *
 * The D-Bus adapter and the hub's signals run in this thread's main
 * context, so every call iterates it (bounded) until the reply arrives; the
 * workers deliver in their own threads, so the synchronous test clients can
 * block on their sockets (5 s timeout) meanwhile.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>
#include <gio/gio.h>
#include <glib/gstdio.h>

#include "herald-dbus.h"
#include "herald-jwt.h"
#include "herald-test-dbus.h"
#include "herald-test-node.h"
#include "herald-test-server.h"
#include "herald-test-utils.h"

#define TIMEOUT_MS 5000
#define ERROR_PREFIX HERALD_DBUS_INTERFACE ".Error."
#define OPERATOR_CLOSE 4004

static GTestDBus *test_bus;
/* The Redis of /dbus-live/user-subscriptions-redis (started by main). */
static GSubprocess *redis;
static guint16 redis_port;
static char *redis_config;

typedef struct
{
  HeraldTestServer *server;
  HeraldTestBus bus; /* HeraldDbus is exported on bus.server */
  HeraldDbus *dbus;
} Fixture;

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  const char *address = g_test_dbus_get_bus_address (test_bus);

  /* No token key unless @data names one: anonymous-only, on loopback. Two
   * worker threads. */
  f->server = herald_test_server_start (data, 2);
  herald_test_bus_open (&f->bus, address);
  f->dbus = herald_dbus_new (f->server->hub);
  herald_test_bus_export (&f->bus, f->dbus);
  /* The match rules are in place once the bus has answered a round trip
   * sent after them (AddMatch is sent first, messages stay in order). */
  herald_test_bus_round_trip (f->bus.client);
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  herald_test_bus_unexport (&f->bus, f->dbus);
  g_clear_object (&f->dbus);
  g_clear_pointer (&f->server, herald_test_server_stop);
}

/* Stores the result of an asynchronous call for HERALD_TEST_WAIT_UNTIL. */
static void
on_async_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  GAsyncResult **out = user_data;

  *out = g_object_ref (result);
}

/* --- WebSocket clients --- */

/* The next text frame that is not a heartbeat ping, as raw text. */
static char *
read_text (HeraldTestClient *client)
{
  for (;;)
    {
      g_autofree char *payload = NULL;
      int opcode = herald_test_ws_read_frame (client, &payload, NULL);

      g_assert_cmpint (opcode, !=, -1);
      g_assert_cmpint (opcode, !=, 0x8);
      if (opcode == 0x1 && !g_str_equal (payload, "{\"type\":\"ping\"}"))
        return g_steal_pointer (&payload);
    }
}

/* The subscribed reply may carry more members (offset, epoch): only
 * type and channel are checked. */
static void
subscribe (HeraldTestClient *client, const char *channel)
{
  g_autofree char *text = g_strdup_printf ("{\"type\":\"subscribe\",\"channel\":\"%s\"}", channel);
  g_autoptr (JsonObject) reply = NULL;

  herald_test_ws_send_text (client, text);
  reply = herald_test_ws_read_json (client);
  g_assert_nonnull (reply);
  g_assert_cmpstr (herald_test_json_get_string (reply, "type"), ==, "subscribed");
  g_assert_cmpstr (herald_test_json_get_string (reply, "channel"), ==, channel);
}

/* Opens a WebSocket on /ws, checks the connected frame and returns the
 * connection id in @id. */
static HeraldTestClient *
open_client (Fixture *f, char **id)
{
  HeraldTestClient *client = herald_test_client_connect (f->server);
  g_autoptr (JsonObject) hello = NULL;

  g_assert_cmpuint (herald_test_ws_handshake (client, "/ws", NULL, NULL), ==, 101);
  hello = herald_test_ws_read_json (client);
  g_assert_nonnull (hello);
  g_assert_cmpstr (herald_test_json_get_string (hello, "type"), ==, "connected");
  g_assert_true (json_object_get_null_member (hello, "user_id"));
  /* The default: 30 s. */
  g_assert_cmpint (json_object_get_int_member (hello, "heartbeat_interval"), ==, 30);
  *id = g_strdup (herald_test_json_get_string (hello, "connection_id"));
  g_assert_nonnull (*id);
  return client;
}

/* Answers the server's close frame with @code, so the server can release
 * the connection at once. */
static void
echo_close (HeraldTestClient *client, guint16 code)
{
  guint8 payload[2] = { code >> 8, code & 0xff };

  herald_test_ws_send_frame (client, 0x88, payload, sizeof payload);
}

static gboolean
opened_has (Fixture *f, const char *id)
{
  for (guint i = 0; i < f->bus.opened->len; i++)
    {
      const char *got_id, *user_id, *transport;

      g_variant_get (g_ptr_array_index (f->bus.opened, i), "(&s&s&s)", &got_id, &user_id,
                     &transport);
      if (g_str_equal (got_id, id))
        {
          g_assert_cmpstr (user_id, ==, "");
          g_assert_cmpstr (transport, ==, "websocket");
          return TRUE;
        }
    }
  return FALSE;
}

static GVariant *
find_closed (Fixture *f, const char *id)
{
  for (guint i = 0; i < f->bus.closed->len; i++)
    {
      const char *got_id;

      g_variant_get (g_ptr_array_index (f->bus.closed, i), "(&sqs)", &got_id, NULL, NULL);
      if (g_str_equal (got_id, id))
        return g_ptr_array_index (f->bus.closed, i);
    }
  return NULL;
}

/* --- 1, 2: Publish, ListConnections, GetConnection, ListChannels --- */

static void
assert_connection_info (GVariant *info, const char *id, gint64 before, gint64 after)
{
  const char *got_id = NULL, *user_id = NULL, *transport = NULL, *remote = NULL;
  const char **channels = NULL;
  gint64 connected_at = 0;
  guint64 bytes_queued = G_MAXUINT64, sent = 0, received = 0;

  g_assert_true (g_variant_lookup (info, "id", "&s", &got_id));
  g_assert_cmpstr (got_id, ==, id);
  g_assert_true (g_variant_lookup (info, "user_id", "&s", &user_id));
  g_assert_cmpstr (user_id, ==, "");
  g_assert_true (g_variant_lookup (info, "transport", "&s", &transport));
  g_assert_cmpstr (transport, ==, "websocket");
  g_assert_true (g_variant_lookup (info, "remote_address", "&s", &remote));
  g_assert_true (g_str_has_prefix (remote, "127.0.0.1"));
  g_assert_true (g_variant_lookup (info, "connected_at", "x", &connected_at));
  g_assert_cmpint (connected_at, >=, before);
  g_assert_cmpint (connected_at, <=, after);
  g_assert_true (g_variant_lookup (info, "channels", "^a&s", &channels));
  g_assert_cmpuint (g_strv_length ((char **)channels), ==, 1);
  g_assert_cmpstr (channels[0], ==, "news");
  g_free (channels);
  g_assert_true (g_variant_lookup (info, "messages_sent", "t", &sent));
  g_assert_true (g_variant_lookup (info, "messages_received", "t", &received));
  g_assert_true (g_variant_lookup (info, "bytes_queued", "t", &bytes_queued));
  g_assert_cmpuint (bytes_queued, <, 65536);
  g_assert_cmpuint (g_variant_n_children (info), ==, 9);
}

static void
test_publish_and_inspect (Fixture *f, gconstpointer data)
{
  g_autofree char *id = NULL;
  g_autofree char *text = NULL;
  g_autofree char *expected = NULL;
  g_autoptr (GVariant) reply = NULL;
  g_autoptr (GVariant) list = NULL;
  g_autoptr (GVariant) connections = NULL;
  g_autoptr (GVariant) one = NULL;
  g_autoptr (GVariant) info = NULL;
  g_autoptr (GVariant) first = NULL;
  g_autoptr (GVariant) channels = NULL;
  g_autoptr (GVariant) count = NULL;
  gint64 before = g_get_real_time ();
  HeraldTestClient *client = open_client (f, &id);
  gint64 after = g_get_real_time ();
  guint64 offset = 0;
  const char *name;
  guint subscribers;

  subscribe (client, "news");

  /* 1. Publish over the bus reaches the subscriber. */
  reply = herald_test_bus_call_ok (&f->bus, "Publish",
                                   g_variant_new ("(ss)", "news", "{\"hello\":1}"), "(t)");
  g_variant_get (reply, "(t)", &offset);
  g_assert_cmpuint (offset, >, 0);
  text = read_text (client);
  expected
      = g_strdup_printf ("{\"type\":\"message\",\"channel\":\"news\",\"offset\":%" G_GUINT64_FORMAT
                         ",\"data\":{\"hello\":1}}",
                         offset);
  g_assert_cmpstr (text, ==, expected);

  /* 2. The connection as the workers see it. */
  list = herald_test_bus_call_ok (&f->bus, "ListConnections", NULL, "(aa{sv})");
  connections = g_variant_get_child_value (list, 0);
  g_assert_cmpuint (g_variant_n_children (connections), ==, 1);
  first = g_variant_get_child_value (connections, 0);
  assert_connection_info (first, id, before, after);
  {
    guint64 sent = 0, received = 0;

    g_variant_lookup (first, "messages_sent", "t", &sent);
    g_variant_lookup (first, "messages_received", "t", &received);
    g_test_message ("messages_sent %" G_GUINT64_FORMAT ", messages_received %" G_GUINT64_FORMAT,
                    sent, received);
    g_assert_cmpuint (sent, >=, 1);     /* at least the published message */
    g_assert_cmpuint (received, >=, 1); /* the subscribe request */
  }

  one = herald_test_bus_call_ok (&f->bus, "GetConnection", g_variant_new ("(s)", id), "(a{sv})");
  info = g_variant_get_child_value (one, 0);
  assert_connection_info (info, id, before, after);
  g_assert_true (g_variant_equal (info, first));

  channels = herald_test_bus_call_ok (&f->bus, "ListChannels", NULL, "(a(su))");
  {
    g_autoptr (GVariant) array = g_variant_get_child_value (channels, 0);

    g_assert_cmpuint (g_variant_n_children (array), ==, 1);
    g_variant_get_child (array, 0, "(&su)", &name, &subscribers);
    g_assert_cmpstr (name, ==, "news");
    g_assert_cmpuint (subscribers, ==, 1);
  }

  count = herald_test_bus_get_property (&f->bus, "ConnectionCount");
  g_assert_cmpuint (g_variant_get_uint32 (count), ==, 1);

  herald_test_client_free (client);
}

/* --- 3. HeartbeatInterval applied to an open connection --- */

static void
test_heartbeat (Fixture *f, gconstpointer data)
{
  g_autofree char *id = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) reply = NULL;
  g_autoptr (GVariant) value = NULL;
  HeraldTestClient *client = open_client (f, &id);
  gboolean json_ping = FALSE, ws_ping = FALSE;
  gint64 start;
  double elapsed;

  reply = herald_test_bus_call_full (
      &f->bus, "org.freedesktop.DBus.Properties", "Set",
      g_variant_new ("(ssv)", HERALD_DBUS_INTERFACE, "HeartbeatInterval", g_variant_new_uint32 (1)),
      "()", &error);
  g_assert_no_error (error);
  start = g_get_monotonic_time ();
  value = herald_test_bus_get_property (&f->bus, "HeartbeatInterval");
  g_assert_cmpuint (g_variant_get_uint32 (value), ==, 1);
  g_assert_cmpuint (herald_config_get_heartbeat_interval (f->server->config), ==, 1);

  /* The client connected with 30 s; the new interval applies at once. */
  while (!json_ping || !ws_ping)
    {
      g_autofree char *payload = NULL;
      int opcode = herald_test_ws_read_frame (client, &payload, NULL);

      g_assert_cmpint (opcode, !=, -1);
      if (opcode == 0x1)
        {
          g_assert_cmpstr (payload, ==, "{\"type\":\"ping\"}");
          json_ping = TRUE;
        }
      else if (opcode == 0x9)
        ws_ping = TRUE;
      else
        g_error ("unexpected opcode %d", opcode);
    }
  elapsed = (double)(g_get_monotonic_time () - start) / G_USEC_PER_SEC;
  g_test_message ("heartbeat 1 s: pings after %.3f s", elapsed);
  g_assert_cmpfloat (elapsed, <, 3.0);

  HERALD_TEST_WAIT_UNTIL (herald_test_bus_changed_has (&f->bus, "HeartbeatInterval", 1),
                          TIMEOUT_MS);
  herald_test_client_free (client);
}

/* --- 4. SendToUser, SendToConnection, CloseConnection, the signals --- */

static void
test_send_and_close (Fixture *f, gconstpointer data)
{
  g_autofree char *id = NULL;
  g_autofree char *text = NULL;
  g_autoptr (GVariant) to_user = NULL;
  g_autoptr (GVariant) to_connection = NULL;
  g_autoptr (GVariant) closed = NULL;
  g_autoptr (GVariant) count = NULL;
  HeraldTestClient *client = open_client (f, &id);
  guint delivered = 42;
  const char *closed_id, *reason;
  guint16 code;

  HERALD_TEST_WAIT_UNTIL (opened_has (f, id), TIMEOUT_MS);
  /* ConnectionCount is announced too (at most once a second). */
  HERALD_TEST_WAIT_UNTIL (herald_test_bus_changed_has (&f->bus, "ConnectionCount", 1),
                          2 * TIMEOUT_MS);

  /* Anonymous-only: nobody has a user id. */
  to_user = herald_test_bus_call_ok (&f->bus, "SendToUser",
                                     g_variant_new ("(ss)", "alice", "{\"unread\":3}"), "(u)");
  g_variant_get (to_user, "(u)", &delivered);
  g_assert_cmpuint (delivered, ==, 0);

  /* The client gets the direct message and nothing before it. */
  to_connection = herald_test_bus_call_ok (&f->bus, "SendToConnection",
                                           g_variant_new ("(ss)", id, "{\"ping\":true}"), "()");
  text = read_text (client);
  g_assert_cmpstr (text, ==, "{\"type\":\"message\",\"data\":{\"ping\":true}}");

  closed = herald_test_bus_call_ok (&f->bus, "CloseConnection",
                                    g_variant_new ("(sqs)", id, OPERATOR_CLOSE, "bye"), "()");
  g_assert_cmpuint (herald_test_ws_wait_close (client), ==, OPERATOR_CLOSE);
  g_assert_cmpstr (client->close_reason, ==, "bye");
  echo_close (client, OPERATOR_CLOSE);

  HERALD_TEST_WAIT_UNTIL (find_closed (f, id) != NULL, TIMEOUT_MS);
  g_variant_get (find_closed (f, id), "(&sq&s)", &closed_id, &code, &reason);
  g_assert_cmpuint (code, ==, OPERATOR_CLOSE);
  g_assert_cmpstr (reason, ==, "bye");
  g_assert_cmpuint (f->bus.opened->len, ==, 1);
  g_assert_cmpuint (f->bus.closed->len, ==, 1);

  /* Gone: the connection is unknown now. */
  herald_test_bus_call_fails (&f->bus, "GetConnection", g_variant_new ("(s)", id),
                              ERROR_PREFIX "NotFound");
  herald_test_bus_call_fails (&f->bus, "SendToConnection", g_variant_new ("(ss)", id, "{}"),
                              ERROR_PREFIX "NotFound");
  herald_test_bus_call_fails (&f->bus, "CloseConnection",
                              g_variant_new ("(sqs)", id, OPERATOR_CLOSE, "bye"),
                              ERROR_PREFIX "NotFound");
  count = herald_test_bus_get_property (&f->bus, "ConnectionCount");
  g_assert_cmpuint (g_variant_get_uint32 (count), ==, 0);
  HERALD_TEST_WAIT_UNTIL (herald_test_bus_changed_has (&f->bus, "ConnectionCount", 0),
                          2 * TIMEOUT_MS);

  herald_test_client_free (client);
}

/* --- 5. Broadcast --- */

static void
test_broadcast (Fixture *f, gconstpointer data)
{
  g_autofree char *id_a = NULL;
  g_autofree char *id_b = NULL;
  g_autoptr (GVariant) reply = NULL;
  g_autoptr (GVariant) count = NULL;
  HeraldTestClient *a = open_client (f, &id_a);
  HeraldTestClient *b = open_client (f, &id_b);
  HeraldTestClient *clients[] = { a, b };
  guint delivered = 0;

  g_assert_cmpstr (id_a, !=, id_b);
  count = herald_test_bus_get_property (&f->bus, "ConnectionCount");
  g_assert_cmpuint (g_variant_get_uint32 (count), ==, 2);

  reply = herald_test_bus_call_ok (
      &f->bus, "Broadcast", g_variant_new ("(s)", "{\"maintenance\":\"in 5 minutes\"}"), "(u)");
  g_variant_get (reply, "(u)", &delivered);
  g_assert_cmpuint (delivered, ==, 2);
  for (gsize i = 0; i < G_N_ELEMENTS (clients); i++)
    {
      g_autofree char *text = read_text (clients[i]);

      g_assert_cmpstr (text, ==,
                       "{\"type\":\"message\",\"data\":{\"maintenance\":\"in 5 minutes\"}}");
    }

  herald_test_client_free (a);
  herald_test_client_free (b);
}

/* --- 6. The busctl command lines of docs/dbus.md --- */

/* Runs @argv with DBUS_SESSION_BUS_ADDRESS set to the private bus, without
 * blocking the main context, which has to answer the calls. */
static int
run_busctl (const char *const *argv, char **out)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GSubprocessLauncher) launcher = NULL;
  g_autoptr (GSubprocess) process = NULL;
  g_autoptr (GAsyncResult) result = NULL;
  g_autofree char *err = NULL;
  g_auto (GStrv) env = g_get_environ ();
  g_autofree char *line = g_strjoinv (" ", (char **)argv);

  env = g_environ_setenv (env, "DBUS_SESSION_BUS_ADDRESS", g_test_dbus_get_bus_address (test_bus),
                          TRUE);
  launcher
      = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE);
  g_subprocess_launcher_set_environ (launcher, env);
  process = g_subprocess_launcher_spawnv (launcher, argv, &error);
  g_assert_no_error (error);
  g_subprocess_communicate_utf8_async (process, NULL, NULL, on_async_done, &result);
  HERALD_TEST_WAIT_UNTIL (result != NULL, TIMEOUT_MS);
  g_subprocess_communicate_utf8_finish (process, result, out, &err, &error);
  g_assert_no_error (error);
  g_test_message ("%s\n-> %d %s%s", line, g_subprocess_get_exit_status (process), *out, err);
  return g_subprocess_get_exit_status (process);
}

static void
test_busctl (Fixture *f, gconstpointer data)
{
  static const char *const publish[] = { "busctl",
                                         "--user",
                                         "call",
                                         HERALD_DBUS_NAME,
                                         HERALD_DBUS_PATH,
                                         HERALD_DBUS_INTERFACE,
                                         "Publish",
                                         "ss",
                                         "news",
                                         "{\"hello\":1}",
                                         NULL };
  static const char *const set[] = { "busctl",
                                     "--user",
                                     "set-property",
                                     HERALD_DBUS_NAME,
                                     HERALD_DBUS_PATH,
                                     HERALD_DBUS_INTERFACE,
                                     "HeartbeatInterval",
                                     "u",
                                     "5",
                                     NULL };
  static const char *const get[] = { "busctl",
                                     "--user",
                                     "get-property",
                                     HERALD_DBUS_NAME,
                                     HERALD_DBUS_PATH,
                                     HERALD_DBUS_INTERFACE,
                                     "HeartbeatInterval",
                                     NULL };
  g_autofree char *busctl = g_find_program_in_path ("busctl");
  g_autofree char *id = NULL;
  g_autofree char *out = NULL;
  g_autofree char *text = NULL;
  g_autofree char *expected = NULL;
  g_autoptr (GVariant) value = NULL;
  HeraldTestClient *client;
  guint64 offset;

  if (busctl == NULL)
    {
      if (g_strcmp0 (g_getenv ("CI"), "true") == 0)
        g_error ("busctl is needed by this test");
      g_test_skip ("busctl not found");
      return;
    }

  client = open_client (f, &id);
  subscribe (client, "news");

  g_assert_cmpint (run_busctl (publish, &out), ==, 0);
  g_assert_true (g_str_has_prefix (out, "t "));
  offset = g_ascii_strtoull (out + 2, NULL, 10);
  g_assert_cmpuint (offset, >, 0);
  text = read_text (client);
  expected
      = g_strdup_printf ("{\"type\":\"message\",\"channel\":\"news\",\"offset\":%" G_GUINT64_FORMAT
                         ",\"data\":{\"hello\":1}}",
                         offset);
  g_assert_cmpstr (text, ==, expected);

  g_clear_pointer (&out, g_free);
  g_assert_cmpint (run_busctl (set, &out), ==, 0);
  value = herald_test_bus_get_property (&f->bus, "HeartbeatInterval");
  g_assert_cmpuint (g_variant_get_uint32 (value), ==, 5);
  g_assert_cmpuint (herald_config_get_heartbeat_interval (f->server->config), ==, 5);
  HERALD_TEST_WAIT_UNTIL (herald_test_bus_changed_has (&f->bus, "HeartbeatInterval", 5),
                          TIMEOUT_MS);
  g_clear_pointer (&out, g_free);
  g_assert_cmpint (run_busctl (get, &out), ==, 0);
  g_assert_cmpstr (out, ==, "u 5\n");

  herald_test_client_free (client);
}

/* PresenceStats, SubscribeUser and UnsubscribeUser (presence at scale and
 * subscriptions decided by the server). */
#define SUBS_CONFIG "[auth]\njwt-secret=s3cret\nanonymous=true\n[namespace.quiet]\npresence=false\n"

static void
test_presence_and_user_subscriptions (Fixture *f, gconstpointer data)
{
  g_autoptr (GBytes) secret = g_bytes_new_static ("s3cret", 6);
  g_autofree char *jwt
      = herald_jwt_sign_hs256 (secret, "{\"sub\":\"alice\",\"channels\":[\"room\"]}");
  g_autofree char *path = g_strdup_printf ("/ws?token=%s", jwt);
  g_autofree char *anon_id = NULL;
  HeraldTestClient *alice = herald_test_client_connect (f->server);
  HeraldTestClient *anon = open_client (f, &anon_id);
  g_autoptr (JsonObject) hello = NULL;
  g_autoptr (JsonObject) frame = NULL;
  guint users = 0, connections = 0;

  g_assert_cmpuint (herald_test_ws_handshake (alice, path, NULL, NULL), ==, 101);
  hello = herald_test_ws_read_json (alice);
  subscribe (alice, "room");
  subscribe (anon, "room");
  for (guint i = 0; i < 100 && connections != 2; i++)
    {
      g_autoptr (GVariant) reply = herald_test_bus_call_ok (&f->bus, "PresenceStats",
                                                            g_variant_new ("(s)", "room"), "(uu)");
      g_variant_get (reply, "(uu)", &users, &connections);
    }
  g_assert_cmpuint (users, ==, 1);
  g_assert_cmpuint (connections, ==, 2);
  herald_test_bus_call_fails (&f->bus, "PresenceStats", g_variant_new ("(s)", "quiet:x"),
                              ERROR_PREFIX "Forbidden");
  herald_test_bus_call_fails (&f->bus, "PresenceStats", g_variant_new ("(s)", "a b"),
                              ERROR_PREFIX "InvalidArgument");

  {
    g_autoptr (GVariant) reply = herald_test_bus_call_ok (
        &f->bus, "SubscribeUser", g_variant_new ("(ss)", "alice", "vip"), "(u)");
    g_variant_get (reply, "(u)", &connections);
    g_assert_cmpuint (connections, ==, 1);
  }
  frame = herald_test_ws_read_json (alice);
  g_assert_cmpstr (herald_test_json_get_string (frame, "type"), ==, "subscribed");
  g_assert_cmpstr (herald_test_json_get_string (frame, "channel"), ==, "vip");
  g_assert_true (json_object_get_boolean_member (frame, "server"));
  g_clear_pointer (&frame, json_object_unref);
  {
    g_autoptr (GVariant) reply = herald_test_bus_call_ok (
        &f->bus, "UnsubscribeUser", g_variant_new ("(ss)", "alice", "vip"), "(u)");
    g_variant_get (reply, "(u)", &connections);
    g_assert_cmpuint (connections, ==, 1);
  }
  frame = herald_test_ws_read_json (alice);
  g_assert_cmpstr (herald_test_json_get_string (frame, "type"), ==, "unsubscribed");
  herald_test_bus_call_fails (&f->bus, "SubscribeUser", g_variant_new ("(ss)", "", "vip"),
                              ERROR_PREFIX "InvalidArgument");
  herald_test_bus_call_fails (&f->bus, "UnsubscribeUser", g_variant_new ("(ss)", "alice", "a b"),
                              ERROR_PREFIX "InvalidArgument");
  herald_test_client_free (alice);
  herald_test_client_free (anon);
}

static gboolean
tick (gpointer data)
{
  return G_SOURCE_CONTINUE; /* wakes bounded waits on the Redis engine's main context */
}

static guint
subscribe_user_over_bus (Fixture *f, const char *method, const char *user, const char *channel)
{
  g_autoptr (GVariant) reply
      = herald_test_bus_call_ok (&f->bus, method, g_variant_new ("(ss)", user, channel), "(u)");
  guint connections = 0;

  g_variant_get (reply, "(u)", &connections);
  return connections;
}

static HeraldTestClient *
open_user (HeraldTestServer *server, const char *user)
{
  g_autoptr (GBytes) secret = g_bytes_new_static ("s3cret", 6);
  g_autofree char *payload = g_strdup_printf ("{\"sub\":\"%s\",\"channels\":[]}", user);
  g_autofree char *jwt = herald_jwt_sign_hs256 (secret, payload);
  g_autofree char *path = g_strdup_printf ("/ws?token=%s", jwt);
  HeraldTestClient *client = herald_test_client_connect (server);
  g_autoptr (JsonObject) hello = NULL;

  g_assert_cmpuint (herald_test_ws_handshake (client, path, NULL, NULL), ==, 101);
  hello = herald_test_ws_read_type (client, "connected");
  return client;
}

/* With Redis, SubscribeUser answers the user's connections on every node:
 * one here (the Herald in this process), two on a heraldd process. */
static void
test_user_subscriptions_redis (Fixture *f, gconstpointer data)
{
  g_autofree char *dir = g_dir_make_tmp ("herald-dbus-live-XXXXXX", NULL);
  g_autofree char *conf = g_build_filename (dir, "herald.conf", NULL);
  g_autofree char *url = g_strdup_printf ("redis://127.0.0.1:%u", redis_port);
  HeraldTestNode other = { 0 };
  HeraldTestClient *here, *there1, *there2;
  guint source = g_timeout_add (20, tick, NULL);

  if (redis == NULL)
    {
      g_test_skip ("no redis-server");
      return;
    }
  g_assert_true (g_file_set_contents (conf, "[auth]\njwt-secret=s3cret\n", -1, NULL));
  herald_test_node_start (&other, conf, url, "dbus-live-key", "s3cret");
  HERALD_TEST_WAIT_UNTIL (herald_test_node_healthy (&other), 10000);
  HERALD_TEST_WAIT_UNTIL (({
                            guint code = 0;
                            g_autofree char *h = herald_test_http (f->server, "GET", "/healthz",
                                                                   NULL, NULL, &code);
                            code == 200;
                          }),
                          10000);
  here = open_user (f->server, "alice");
  there1 = herald_test_node_ws_open (&other, "alice", NULL);
  there2 = herald_test_node_ws_open (&other, "alice", NULL);

  HERALD_TEST_WAIT_UNTIL (subscribe_user_over_bus (f, "SubscribeUser", "alice", "vip") == 3, 5000);
  json_object_unref (herald_test_ws_read_type (there1, "subscribed"));
  json_object_unref (herald_test_ws_read_type (there2, "subscribed"));
  json_object_unref (herald_test_ws_read_type (here, "subscribed"));
  herald_test_client_free (there2);
  HERALD_TEST_WAIT_UNTIL (subscribe_user_over_bus (f, "UnsubscribeUser", "alice", "vip") == 2,
                          5000);
  json_object_unref (herald_test_ws_read_type (there1, "unsubscribed"));
  g_assert_cmpuint (subscribe_user_over_bus (f, "UnsubscribeUser", "bob", "vip"), ==, 0);

  herald_test_client_free (here);
  herald_test_client_free (there1);
  herald_test_node_stop (&other);
  g_source_remove (source);
  g_unlink (conf);
  g_rmdir (dir);
}

int
main (int argc, char **argv)
{
  g_autofree char *redis_server = g_find_program_in_path ("redis-server");
  int ret;

  g_setenv ("LC_ALL", "C.UTF-8", TRUE);
  g_test_init (&argc, &argv, NULL);

  /* One private bus for the whole program. */
  test_bus = g_test_dbus_new (G_TEST_DBUS_NONE);
  g_test_dbus_up (test_bus);

#define ADD(path, func) g_test_add (path, Fixture, NULL, fixture_setup, func, fixture_teardown)
  ADD ("/dbus-live/publish-and-inspect", test_publish_and_inspect);
  ADD ("/dbus-live/heartbeat", test_heartbeat);
  ADD ("/dbus-live/send-and-close", test_send_and_close);
  ADD ("/dbus-live/broadcast", test_broadcast);
  ADD ("/dbus-live/busctl", test_busctl);
#undef ADD
  g_test_add ("/dbus-live/presence-and-user-subscriptions", Fixture, SUBS_CONFIG, fixture_setup,
              test_presence_and_user_subscriptions, fixture_teardown);
  if (redis_server != NULL)
    {
      redis_port = herald_test_free_port ();
      redis = herald_test_redis_start (redis_port, NULL);
    }
  redis_config = g_strdup_printf ("[auth]\njwt-secret=s3cret\n[redis]\nurl=redis://127.0.0.1:%u\n",
                                  redis_port);
  g_test_add ("/dbus-live/user-subscriptions-redis", Fixture, redis_config, fixture_setup,
              test_user_subscriptions_redis, fixture_teardown);

  ret = g_test_run ();
  if (redis != NULL)
    herald_test_redis_stop (&redis);
  g_free (redis_config);
  g_test_dbus_down (test_bus);
  g_object_unref (test_bus);
  return ret;
}
