/* test-redis-join-leave.c: join/leave events (join-leave=true namespaces)
 * and the publish "key" across two heraldd nodes sharing one redis-server.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>
#include <glib/gstdio.h>

#include "herald-test-node.h"
#include "herald-test-utils.h"

#define API_KEY "redis-join-leave-key"
#define SECRET "s3cret"

static struct
{
  GSubprocess *redis;
  guint16 redis_port;
  char *dir;
  HeraldTestNode a, b;
} fx;

static void
start_node (HeraldTestNode *node)
{
  g_autofree char *redis_url = g_strdup_printf ("redis://127.0.0.1:%u", fx.redis_port);
  g_autofree char *conf = g_build_filename (fx.dir, "herald.conf", NULL);

  herald_test_node_start (node, conf, redis_url, API_KEY, SECRET);
}

static void
wait_numsub (const char *channel, long long n)
{
  g_autofree char *topic = g_strconcat ("herald:ch:", channel, NULL);
  HERALD_TEST_WAIT_UNTIL (herald_test_redis_numsub (fx.redis_port, NULL, topic) == n, 5000);
}

static void
expect_event (HeraldTestClient *ws, const char *type, const char *user, const char *connection)
{
  g_autoptr (JsonObject) e = herald_test_ws_read_json (ws);

  g_assert_nonnull (e);
  g_assert_cmpstr (herald_test_json_get_string (e, "type"), ==, type);
  g_assert_cmpstr (herald_test_json_get_string (e, "channel"), ==, "chat:room");
  g_assert_cmpstr (herald_test_json_get_string (e, "user_id"), ==, user);
  g_assert_cmpstr (herald_test_json_get_string (e, "connection_id"), ==, connection);
}

/* A marker published on node B is the next frame of each client: no event
 * came twice, none about the client itself. */
static void
expect_marker (HeraldTestClient **clients, guint n)
{
  herald_test_node_publish (&fx.b, "chat:room", "\"marker\"");
  for (guint i = 0; i < n; i++)
    {
      g_autoptr (JsonObject) msg = herald_test_ws_read_json (clients[i]);
      g_assert_nonnull (msg);
      g_assert_cmpstr (herald_test_json_get_string (msg, "type"), ==, "message");
      g_assert_cmpstr (herald_test_json_get_string (msg, "data"), ==, "marker");
    }
}

/* Subscribers on both nodes hear of each other's connections joining and
 * leaving (unsubscribe, close), once each, never of themselves. */
static void
test_events (void)
{
  g_autofree char *a1_id = NULL, *a2_id = NULL, *b1_id = NULL;
  HeraldTestClient *a1 = herald_test_node_ws_open (&fx.a, "alice", &a1_id);
  HeraldTestClient *b1 = herald_test_node_ws_open (&fx.b, "bob", &b1_id);
  HeraldTestClient *a2;

  herald_test_ws_subscribe (a1, "chat:room");
  wait_numsub ("chat:room", 1);
  herald_test_ws_subscribe (b1, "chat:room");
  expect_event (a1, "join", "bob", b1_id);
  {
    HeraldTestClient *both[] = { a1, b1 };
    expect_marker (both, 2);
  }
  wait_numsub ("chat:room", 2);

  /* Alice's second connection, on node A: both nodes hear it */
  a2 = herald_test_node_ws_open (&fx.a, "alice", &a2_id);
  herald_test_ws_subscribe (a2, "chat:room");
  expect_event (a1, "join", "alice", a2_id);
  expect_event (b1, "join", "alice", a2_id);
  {
    HeraldTestClient *all[] = { a1, a2, b1 };
    expect_marker (all, 3);
  }

  herald_test_ws_send_text (a2, "{\"type\":\"unsubscribe\",\"channel\":\"chat:room\"}");
  json_object_unref (herald_test_ws_read_type (a2, "unsubscribed"));
  expect_event (a1, "leave", "alice", a2_id);
  expect_event (b1, "leave", "alice", a2_id);

  herald_test_client_free (b1); /* close on node B */
  expect_event (a1, "leave", "bob", b1_id);
  {
    HeraldTestClient *left[] = { a1 };
    expect_marker (left, 1);
  }
  herald_test_client_free (a2);
  herald_test_client_free (a1);
}

/* The key survives the wire format (live, across nodes) and history. */
static void
test_key (void)
{
  HeraldTestClient *sub = herald_test_node_ws_open (&fx.a, NULL, NULL);
  const char *bodies[] = {
    "{\"channel\":\"keyed\",\"key\":\"EURUSD\",\"data\":{\"n\":1}}",
    "{\"channel\":\"keyed\",\"key\":\"two\\nlines K5 x\",\"data\":{\"n\":2}}",
    "{\"channel\":\"keyed\",\"data\":{\"n\":3}}",
  };
  const char *keys[] = { "EURUSD", "two\nlines K5 x", NULL };
  guint64 first = 0;

  herald_test_ws_subscribe (sub, "keyed");
  wait_numsub ("keyed", 1);
  for (guint i = 0; i < G_N_ELEMENTS (bodies); i++)
    {
      guint status = 0;
      g_autofree char *answer
          = herald_test_node_api (&fx.b, "POST", "/api/publish", bodies[i], &status);
      g_autoptr (JsonObject) msg = herald_test_ws_read_type (sub, "message");

      g_assert_cmpuint (status, ==, 200);
      if (i == 0)
        first = json_object_get_int_member (msg, "offset");
      if (keys[i])
        g_assert_cmpstr (herald_test_json_get_string (msg, "key"), ==, keys[i]);
      else
        g_assert_false (json_object_has_member (msg, "key"));
    }
  herald_test_client_free (sub);

  /* From Redis history, on the other node */
  sub = herald_test_node_ws_open (&fx.b, NULL, NULL);
  {
    g_autofree char *req = g_strdup_printf (
        "{\"type\":\"subscribe\",\"channel\":\"keyed\",\"since\":%" G_GUINT64_FORMAT "}",
        first - 1);
    herald_test_ws_send_text (sub, req);
  }
  for (guint i = 0; i < G_N_ELEMENTS (bodies); i++)
    {
      g_autoptr (JsonObject) msg = herald_test_ws_read_type (sub, "message");

      if (keys[i])
        g_assert_cmpstr (herald_test_json_get_string (msg, "key"), ==, keys[i]);
      else
        g_assert_false (json_object_has_member (msg, "key"));
    }
  {
    g_autoptr (JsonObject) done = herald_test_ws_read_type (sub, "subscribed");
    g_assert_true (json_object_get_boolean_member (done, "recovered"));
  }
  herald_test_client_free (sub);
}

static gboolean
tick (gpointer data)
{
  return G_SOURCE_CONTINUE; /* wakes bounded waits that poll Redis */
}

int
main (int argc, char **argv)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *conf = NULL;
  g_autofree char *redis_server = g_find_program_in_path ("redis-server");
  int status;

  g_test_init (&argc, &argv, NULL);
  if (redis_server == NULL)
    {
      g_printerr ("redis-server not found (scripts/install-deps.sh installs it)\n");
      return g_test_run ();
    }

  g_timeout_add (20, tick, NULL);
  fx.dir = g_dir_make_tmp ("herald-redis-jl-XXXXXX", &error);
  g_assert_no_error (error);
  conf = g_build_filename (fx.dir, "herald.conf", NULL);
  g_assert_true (g_file_set_contents (conf,
                                      "[auth]\njwt-secret=" SECRET "\nanonymous=true\n"
                                      "[namespace.chat]\njoin-leave=true\n",
                                      -1, NULL));
  fx.redis_port = herald_test_free_port ();
  fx.redis = herald_test_redis_start (fx.redis_port, NULL);
  start_node (&fx.a);
  start_node (&fx.b);
  HERALD_TEST_WAIT_UNTIL (herald_test_node_healthy (&fx.a) && herald_test_node_healthy (&fx.b),
                          10000);

  g_test_add_func ("/redis-join-leave/events", test_events);
  g_test_add_func ("/redis-join-leave/key", test_key);
  status = g_test_run ();

  herald_test_node_stop (&fx.a);
  herald_test_node_stop (&fx.b);
  herald_test_redis_stop (&fx.redis);
  g_unlink (conf);
  g_rmdir (fx.dir);
  g_free (fx.dir);
  return status;
}
