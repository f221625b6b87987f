/* test-redis-subs.c: presence at scale and subscriptions decided by the
 * server across two heraldd nodes sharing one real redis-server
 * (tests/herald-test-node.c): counters and member pages asked on either
 * node, the token's subs claim, the user subscribe API reaching the user's
 * connections on both nodes, subscription tokens.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>

#include "herald-jwt.h"
#include "herald-test-node.h"
#include "herald-test-server.h"
#include "herald-test-utils.h"

#define API_KEY "redis-subs-key"
#define SECRET "s3cret"
/* more [namespace.…] groups for the tests below */
#define SUBS_EXTRA_CONFIG "leeway=0\n[namespace.tok]\nsubscribe=token\n"

static struct
{
  GSubprocess *redis;
  guint16 redis_port;
  char *dir;
  HeraldTestNode a, b;
} fx;

static JsonObject *
api_json (HeraldTestNode *node, const char *method, const char *path, const char *body,
          guint expected)
{
  g_autofree char *text = NULL;
  g_autoptr (JsonNode) root = NULL;
  guint status = 0;

  text = herald_test_node_api (node, method, path, body, &status);
  if (status != expected)
    g_error ("%s %s: %u %s (expected %u)", method, path, status, text ? text : "", expected);
  root = json_from_string (text, NULL);
  g_assert_nonnull (root);
  return json_object_ref (json_node_get_object (root));
}

static gboolean
stats_are (HeraldTestNode *node, const char *channel, gint64 users, gint64 connections)
{
  g_autofree char *path = g_strdup_printf ("/api/channels/%s/presence-stats", channel);
  g_autoptr (JsonObject) r = api_json (node, "GET", path, NULL, 200);

  return json_object_get_int_member (r, "users") == users
         && json_object_get_int_member (r, "connections") == connections;
}

static HeraldTestClient *
ws_with (HeraldTestNode *node, const char *payload, JsonObject **connected)
{
  g_autoptr (GBytes) secret = g_bytes_new (SECRET, strlen (SECRET));
  g_autofree char *jwt = herald_jwt_sign_hs256 (secret, payload);
  g_autofree char *path = g_strdup_printf ("/ws?token=%s", jwt);
  HeraldTestClient *client = herald_test_client_connect (&node->srv);
  JsonObject *hello;

  g_assert_cmpuint (herald_test_ws_handshake (client, path, NULL, NULL), ==, 101);
  hello = herald_test_ws_read_type (client, "connected");
  if (connected)
    *connected = hello;
  else
    json_object_unref (hello);
  return client;
}

/* Counters and pages are cluster-wide: asked on either node, the same. */
static void
test_presence_cluster (void)
{
  HeraldTestClient *a1 = herald_test_node_ws_open (&fx.a, "alice", NULL);
  HeraldTestClient *a2 = herald_test_node_ws_open (&fx.b, "alice", NULL);
  HeraldTestClient *b = herald_test_node_ws_open (&fx.b, "bob", NULL);
  HeraldTestClient *c = herald_test_node_ws_open (&fx.a, "carol", NULL);
  HeraldTestClient *anon = herald_test_node_ws_open (&fx.b, NULL, NULL);
  HeraldTestClient *clients[] = { a1, a2, b, c, anon };
  g_autoptr (GPtrArray) seen = g_ptr_array_new_with_free_func (g_free);
  g_autofree char *next = NULL;
  g_autofree char *first_cursor = NULL;
  g_autoptr (JsonObject) r = NULL;

  for (gsize i = 0; i < G_N_ELEMENTS (clients); i++)
    herald_test_ws_subscribe (clients[i], "hall");
  HERALD_TEST_WAIT_UNTIL (stats_are (&fx.a, "hall", 3, 5), 5000);
  HERALD_TEST_WAIT_UNTIL (stats_are (&fx.b, "hall", 3, 5), 5000);
  herald_test_ws_send_text (c, "{\"type\":\"presence_stats\",\"channel\":\"hall\"}");
  r = herald_test_ws_read_type (c, "presence_stats");
  g_assert_cmpint (json_object_get_int_member (r, "users"), ==, 3);
  g_assert_cmpint (json_object_get_int_member (r, "connections"), ==, 5);
  g_clear_pointer (&r, json_object_unref);

  /* Pages of one user, alternating nodes: a cursor of one node works on the other */
  for (guint page = 0;; page++)
    {
      g_autofree char *path
          = next ? g_strdup_printf ("/api/channels/hall/presence?limit=1&cursor=%s", next)
                 : g_strdup ("/api/channels/hall/presence?limit=1");
      JsonArray *users;

      r = api_json (page % 2 ? &fx.b : &fx.a, "GET", path, NULL, 200);
      users = json_object_get_array_member (r, "users");
      g_assert_cmpint (json_object_get_int_member (r, "connections"), ==, 5);
      for (guint i = 0; i < json_array_get_length (users); i++)
        g_ptr_array_add (seen, g_strdup (json_array_get_string_element (users, i)));
      g_clear_pointer (&next, g_free);
      if (!JSON_NODE_HOLDS_NULL (json_object_get_member (r, "next")))
        next = g_strdup (herald_test_json_get_string (r, "next"));
      if (page == 0)
        first_cursor = g_strdup (next);
      g_clear_pointer (&r, json_object_unref);
      if (next == NULL)
        break;
      g_assert_cmpuint (page, <, 5);
    }
  g_assert_cmpuint (seen->len, ==, 3);
  g_assert_cmpstr (seen->pdata[0], ==, "alice");
  g_assert_cmpstr (seen->pdata[1], ==, "bob");
  g_assert_cmpstr (seen->pdata[2], ==, "carol");
  /* A cursor of "hall" is not one of "other" */
  {
    g_autofree char *path
        = g_strdup_printf ("/api/channels/other/presence?cursor=%s", first_cursor);
    g_autofree char *text = g_strdup_printf (
        "{\"type\":\"presence\",\"channel\":\"other\",\"cursor\":\"%s\"}", first_cursor);

    json_object_unref (api_json (&fx.b, "GET", path, NULL, 400));
    herald_test_ws_send_text (b, text);
    r = herald_test_ws_read_type (b, "error");
    g_assert_cmpstr (herald_test_json_get_string (r, "code"), ==, "bad_request");
    g_clear_pointer (&r, json_object_unref);
  }

  /* Leaving counts on every node */
  herald_test_client_free (a1);
  herald_test_client_free (anon);
  HERALD_TEST_WAIT_UNTIL (stats_are (&fx.a, "hall", 3, 3), 5000);
  herald_test_client_free (a2);
  HERALD_TEST_WAIT_UNTIL (stats_are (&fx.a, "hall", 2, 2), 5000);
  herald_test_client_free (b);
  herald_test_client_free (c);
  HERALD_TEST_WAIT_UNTIL (stats_are (&fx.b, "hall", 0, 0), 5000);
}

/* The token's subs claim on node B: positions of messages published on A. */
static void
test_subs_claim_cluster (void)
{
  g_autoptr (JsonObject) hello = NULL;
  g_autoptr (JsonObject) r = NULL;
  HeraldTestClient *ws;
  JsonObject *pos;

  herald_test_node_publish (&fx.a, "feed", "1");
  herald_test_node_publish (&fx.a, "feed", "2");
  ws = ws_with (&fx.b, "{\"sub\":\"dave\",\"channels\":[],\"subs\":[\"feed\"]}", &hello);
  pos = json_object_get_object_member (json_object_get_object_member (hello, "subs"), "feed");
  g_assert_cmpint (json_object_get_int_member (pos, "offset"), ==, 2);
  g_assert_cmpstr (herald_test_json_get_string (pos, "epoch"), !=, "");
  herald_test_node_publish (&fx.a, "feed", "3");
  r = herald_test_ws_read_type (ws, "message");
  g_assert_cmpint (json_object_get_int_member (r, "offset"), ==, 3);
  herald_test_client_free (ws);
}

/* POST /api/users/{id}/subscribe on node A reaches the user's connections on
 * A and B; /unsubscribe asked on B too. */
static void
test_user_subscribe_cluster (void)
{
  HeraldTestClient *on_a = ws_with (&fx.a, "{\"sub\":\"erin\",\"channels\":[]}", NULL);
  HeraldTestClient *on_b = ws_with (&fx.b, "{\"sub\":\"erin\",\"channels\":[]}", NULL);
  HeraldTestClient *clients[] = { on_a, on_b };
  g_autoptr (JsonObject) r = NULL;

  r = api_json (&fx.a, "POST", "/api/users/erin/subscribe", "{\"channel\":\"ops\"}", 200);
  g_assert_cmpint (json_object_get_int_member (r, "connections"), >=, 1);
  g_clear_pointer (&r, json_object_unref);
  for (gsize i = 0; i < G_N_ELEMENTS (clients); i++)
    {
      r = herald_test_ws_read_type (clients[i], "subscribed");
      g_assert_cmpstr (herald_test_json_get_string (r, "channel"), ==, "ops");
      g_assert_true (json_object_get_boolean_member (r, "server"));
      g_clear_pointer (&r, json_object_unref);
    }
  HERALD_TEST_WAIT_UNTIL (stats_are (&fx.a, "ops", 1, 2), 5000);
  herald_test_node_publish (&fx.b, "ops", "{\"x\":1}");
  for (gsize i = 0; i < G_N_ELEMENTS (clients); i++)
    {
      r = herald_test_ws_read_type (clients[i], "message");
      g_assert_cmpstr (herald_test_json_get_string (r, "channel"), ==, "ops");
      g_clear_pointer (&r, json_object_unref);
    }

  r = api_json (&fx.b, "POST", "/api/users/erin/unsubscribe", "{\"channel\":\"ops\"}", 200);
  g_clear_pointer (&r, json_object_unref);
  for (gsize i = 0; i < G_N_ELEMENTS (clients); i++)
    {
      r = herald_test_ws_read_type (clients[i], "unsubscribed");
      g_assert_cmpstr (herald_test_json_get_string (r, "channel"), ==, "ops");
      g_clear_pointer (&r, json_object_unref);
    }
  HERALD_TEST_WAIT_UNTIL (stats_are (&fx.b, "ops", 0, 0), 5000);
  herald_test_client_free (on_a);
  herald_test_client_free (on_b);
}

/* The answer of the user subscribe API, asked on @node. */
static gint64
user_count (HeraldTestNode *node, const char *user)
{
  g_autofree char *path = g_strdup_printf ("/api/users/%s/subscribe", user);
  g_autoptr (JsonObject) r = api_json (node, "POST", path, "{\"channel\":\"counted\"}", 200);

  return json_object_get_int_member (r, "connections");
}

/* An SSE stream of @user on @node (channel "home"), "connected" read. */
static HeraldTestClient *
sse_as (HeraldTestNode *node, const char *user)
{
  g_autoptr (GBytes) secret = g_bytes_new (SECRET, strlen (SECRET));
  g_autofree char *payload = g_strdup_printf ("{\"sub\":\"%s\"}", user);
  g_autofree char *jwt = herald_jwt_sign_hs256 (secret, payload);
  g_autofree char *request
      = g_strdup_printf ("GET /events?token=%s&channel=home HTTP/1.1\r\nHost: x\r\n\r\n", jwt);
  HeraldTestClient *sse = herald_test_client_connect (&node->srv);
  g_autofree char *head = NULL;

  herald_test_client_send_raw (sse, request, strlen (request));
  g_assert_cmpuint (herald_test_client_read_head (sse, &head), ==, 200);
  for (guint i = 0;; i++)
    {
      g_autofree char *ev = herald_test_sse_read_event (sse);

      g_assert_nonnull (ev);
      g_assert_cmpuint (i, <, 3);
      if (strstr (ev, "event: connected") != NULL)
        break;
    }
  return sse;
}

/* {"connections":N} counts the user's connections on every node: opened
 * and closed ones, and a node killed with SIGKILL stops counting once it
 * is reaped. */
static void
test_user_count_cluster (void)
{
  g_autofree char *conf = g_build_filename (fx.dir, "herald.conf", NULL);
  g_autofree char *redis_url = g_strdup_printf ("redis://127.0.0.1:%u", fx.redis_port);
  HeraldTestNode c = { 0 };
  HeraldTestClient *a1 = herald_test_node_ws_open (&fx.a, "frank", NULL);
  HeraldTestClient *a2 = herald_test_node_ws_open (&fx.a, "frank", NULL);
  HeraldTestClient *b1 = herald_test_node_ws_open (&fx.b, "frank", NULL);
  HeraldTestClient *other = herald_test_node_ws_open (&fx.b, "grace", NULL);
  HeraldTestClient *on_c;

  HERALD_TEST_WAIT_UNTIL (user_count (&fx.a, "frank") == 3, 5000);
  HERALD_TEST_WAIT_UNTIL (user_count (&fx.b, "frank") == 3, 5000);
  g_assert_cmpint (user_count (&fx.a, "grace"), ==, 1);
  g_assert_cmpint (user_count (&fx.a, "nobody"), ==, 0);
  /* SSE streams count too */
  {
    HeraldTestClient *sse = sse_as (&fx.b, "frank");

    HERALD_TEST_WAIT_UNTIL (user_count (&fx.a, "frank") == 4, 5000);
    herald_test_client_free (sse);
    HERALD_TEST_WAIT_UNTIL (user_count (&fx.a, "frank") == 3, 5000);
  }
  /* every connection got the subscription, whichever node was asked */
  json_object_unref (herald_test_ws_read_type (a2, "subscribed"));
  json_object_unref (herald_test_ws_read_type (b1, "subscribed"));

  herald_test_client_free (a2);
  HERALD_TEST_WAIT_UNTIL (user_count (&fx.b, "frank") == 2, 5000);
  HERALD_TEST_WAIT_UNTIL (user_count (&fx.a, "frank") == 2, 5000);
  herald_test_client_free (b1);
  HERALD_TEST_WAIT_UNTIL (user_count (&fx.a, "frank") == 1, 5000);

  /* A third node's connection counts until the node is killed and reaped
   * (silent for 15 s, then the next heartbeat of a live node) */
  herald_test_node_start (&c, conf, redis_url, API_KEY, SECRET);
  HERALD_TEST_WAIT_UNTIL (herald_test_node_healthy (&c), 10000);
  on_c = herald_test_node_ws_open (&c, "frank", NULL);
  HERALD_TEST_WAIT_UNTIL (user_count (&fx.a, "frank") == 2, 5000);
  HERALD_TEST_WAIT_UNTIL (user_count (&c, "frank") == 2, 5000);
  herald_test_node_kill (&c);
  herald_test_client_free (on_c);
  g_assert_cmpint (user_count (&fx.b, "frank"), ==, 2); /* not reaped yet */
  HERALD_TEST_WAIT_UNTIL (user_count (&fx.b, "frank") == 1, 40000);
  g_assert_cmpint (user_count (&fx.a, "frank"), ==, 1);

  /* A node that stops (SIGTERM) takes its connections back as they close
   * (at once: drain-seconds=0) */
  {
    g_autofree char *text = NULL;
    g_autofree char *quick = NULL;

    g_assert_true (g_file_get_contents (conf, &text, NULL, NULL));
    quick = g_strconcat ("[server]\ndrain-seconds=0\n", text, NULL);
    g_free (conf);
    conf = g_build_filename (fx.dir, "herald-quick.conf", NULL);
    g_assert_true (g_file_set_contents (conf, quick, -1, NULL));
  }
  herald_test_node_start (&c, conf, redis_url, API_KEY, SECRET);
  HERALD_TEST_WAIT_UNTIL (herald_test_node_healthy (&c), 10000);
  on_c = herald_test_node_ws_open (&c, "frank", NULL);
  HERALD_TEST_WAIT_UNTIL (user_count (&fx.a, "frank") == 2, 5000);
  herald_test_node_stop (&c);
  herald_test_client_free (on_c);
  HERALD_TEST_WAIT_UNTIL (user_count (&fx.a, "frank") == 1, 5000);

  herald_test_client_free (a1);
  herald_test_client_free (other);
  HERALD_TEST_WAIT_UNTIL (user_count (&fx.b, "frank") == 0, 5000);
  g_unlink (conf);
}

/* A subscription token on node B: messages published on A come; the
 * subscription ends with reason "expired". */
static void
test_subscription_token_cluster (void)
{
  g_autoptr (GBytes) secret = g_bytes_new (SECRET, strlen (SECRET));
  gint64 now = g_get_real_time () / G_USEC_PER_SEC;
  g_autofree char *claims = g_strdup_printf (
      "{\"sub\":\"frank\",\"channel\":\"tok:x\",\"exp\":%" G_GINT64_FORMAT "}", now + 2);
  g_autofree char *jwt = herald_jwt_sign_hs256 (secret, claims);
  g_autofree char *text
      = g_strdup_printf ("{\"type\":\"subscribe\",\"channel\":\"tok:x\",\"token\":\"%s\"}", jwt);
  HeraldTestClient *ws = ws_with (&fx.b, "{\"sub\":\"frank\"}", NULL);
  g_autoptr (JsonObject) r = NULL;

  herald_test_ws_send_text (ws, "{\"type\":\"subscribe\",\"channel\":\"tok:x\"}");
  r = herald_test_ws_read_type (ws, "error");
  g_assert_cmpstr (herald_test_json_get_string (r, "code"), ==, "forbidden");
  g_clear_pointer (&r, json_object_unref);
  herald_test_ws_send_text (ws, text);
  json_object_unref (herald_test_ws_read_type (ws, "subscribed"));
  HERALD_TEST_WAIT_UNTIL (stats_are (&fx.a, "tok:x", 1, 1), 5000);
  herald_test_node_publish (&fx.a, "tok:x", "1");
  json_object_unref (herald_test_ws_read_type (ws, "message"));
  r = herald_test_ws_read_type (ws, "unsubscribed");
  g_assert_cmpstr (herald_test_json_get_string (r, "reason"), ==, "expired");
  HERALD_TEST_WAIT_UNTIL (stats_are (&fx.a, "tok:x", 0, 0), 5000);
  herald_test_client_free (ws);
}

/* Redis restarts empty: every node registers its table again and the
 * counters come back; nothing is counted twice. */
static void
test_presence_after_redis_restart (void)
{
  HeraldTestClient *alice = herald_test_node_ws_open (&fx.a, "alice", NULL);
  HeraldTestClient *anon = herald_test_node_ws_open (&fx.b, NULL, NULL);

  herald_test_ws_subscribe (alice, "keep");
  herald_test_ws_subscribe (anon, "keep");
  HERALD_TEST_WAIT_UNTIL (stats_are (&fx.b, "keep", 1, 2), 5000);
  herald_test_redis_stop (&fx.redis);
  fx.redis = herald_test_redis_start (fx.redis_port, NULL);
  HERALD_TEST_WAIT_UNTIL (herald_test_node_healthy (&fx.a) && herald_test_node_healthy (&fx.b),
                          20000);
  HERALD_TEST_WAIT_UNTIL (stats_are (&fx.b, "keep", 1, 2), 10000);
  HERALD_TEST_WAIT_UNTIL (stats_are (&fx.a, "keep", 1, 2), 5000);
  herald_test_client_free (alice);
  herald_test_client_free (anon);
  HERALD_TEST_WAIT_UNTIL (stats_are (&fx.a, "keep", 0, 0), 5000);
}

static gboolean
tick (gpointer data)
{
  return G_SOURCE_CONTINUE; /* wakes bounded waits that poll Redis or the nodes */
}

int
main (int argc, char **argv)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *conf = NULL;
  g_autofree char *redis_server = g_find_program_in_path ("redis-server");
  g_autofree char *redis_url = NULL;
  int status;

  g_test_init (&argc, &argv, NULL);
  if (redis_server == NULL)
    {
      g_printerr ("redis-server not found (scripts/install-deps.sh installs it)\n");
      g_test_skip ("no redis-server");
      return g_test_run ();
    }

  g_timeout_add (20, tick, NULL);
  fx.dir = g_dir_make_tmp ("herald-redis-subs-XXXXXX", &error);
  g_assert_no_error (error);
  conf = g_build_filename (fx.dir, "herald.conf", NULL);
  g_assert_true (g_file_set_contents (
      conf, "[auth]\njwt-secret=" SECRET "\nanonymous=true\n" SUBS_EXTRA_CONFIG, -1, NULL));
  fx.redis_port = herald_test_free_port ();
  fx.redis = herald_test_redis_start (fx.redis_port, NULL);
  redis_url = g_strdup_printf ("redis://127.0.0.1:%u", fx.redis_port);
  herald_test_node_start (&fx.a, conf, redis_url, API_KEY, SECRET);
  herald_test_node_start (&fx.b, conf, redis_url, API_KEY, SECRET);
  HERALD_TEST_WAIT_UNTIL (herald_test_node_healthy (&fx.a) && herald_test_node_healthy (&fx.b),
                          10000);

  g_test_add_func ("/redis-subs/presence", test_presence_cluster);
  g_test_add_func ("/redis-subs/subs-claim", test_subs_claim_cluster);
  g_test_add_func ("/redis-subs/user-subscribe", test_user_subscribe_cluster);
  g_test_add_func ("/redis-subs/user-count", test_user_count_cluster);
  g_test_add_func ("/redis-subs/subscription-token", test_subscription_token_cluster);
  g_test_add_func ("/redis-subs/presence-after-redis-restart", test_presence_after_redis_restart);
  status = g_test_run ();

  herald_test_node_stop (&fx.a);
  herald_test_node_stop (&fx.b);
  herald_test_redis_stop (&fx.redis);
  g_unlink (conf);
  g_rmdir (fx.dir);
  g_free (fx.dir);
  return status;
}
