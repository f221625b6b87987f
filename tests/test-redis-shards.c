/* test-redis-shards.c: [redis] shards, two real redis-server processes
 * behind two heraldd nodes, and the shard choice itself.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <signal.h>
#include <string.h>
#include <glib/gstdio.h>
#include <hiredis/hiredis.h>
#include <json-glib/json-glib.h>

#include "herald-jwt.h"
#include "herald-redis-shards.h"
#include "herald-redis-slots.h"
#include "herald-test-node.h"
#include "herald-test-server.h"
#include "herald-test-utils.h"

#define API_KEY "shards-test-key"
#define SECRET "s3cret"
#define N_CHANNELS 8
#define REDIS_PASSWORD "shard-pass" /* [redis] password, for both shards */

static struct
{
  GSubprocess *redis[2];
  guint16 redis_port[2];
  char *urls[3]; /* the shards' URLs, as configured; NULL-terminated */
  char *dir;
  HeraldTestNode a, b;
} fx;

/* ---- processes (tests/herald-test-node.c) ---- */

static redisReply *
redis_cmd (guint shard, const char *format, ...)
{
  redisReply *reply;
  va_list ap;

  va_start (ap, format);
  reply = herald_test_redis_vcmd (fx.redis_port[shard], REDIS_PASSWORD, format, ap);
  va_end (ap);
  return reply;
}

static long long
redis_numsub (guint shard, const char *topic)
{
  return herald_test_redis_numsub (fx.redis_port[shard], REDIS_PASSWORD, topic);
}

static void
start_redis (guint shard)
{
  fx.redis[shard] = herald_test_redis_start (fx.redis_port[shard], REDIS_PASSWORD);
}

static void
stop_redis (guint shard)
{
  herald_test_redis_stop (&fx.redis[shard]);
}

/* The shards come from the config file: REDIS_URL would override them. */
static void
start_node (HeraldTestNode *node)
{
  g_autofree char *conf = g_build_filename (fx.dir, "herald.conf", NULL);

  herald_test_node_start (node, conf, NULL, API_KEY, SECRET);
}

/* Each node subscribes to a channel's topic on its shard once its first
 * local subscriber appears. */
static void
wait_numsub (guint shard, const char *channel, long long n)
{
  g_autofree char *topic = g_strconcat ("herald:ch:", channel, NULL);
  HERALD_TEST_WAIT_UNTIL (redis_numsub (shard, topic) == n, 5000);
}

static gint64
message_n (JsonObject *msg)
{
  return json_object_get_int_member (json_object_get_object_member (msg, "data"), "n");
}

/* ---- tests ---- */

/* Rendezvous hashing: spread evenly, order-free, and a new shard takes
 * about 1/N of the keys, all of them for itself. */
static void
test_pick (void)
{
  const char *three[] = { "redis://a:6379", "redis://b:6379", "redis://c:6379" };
  const char *reordered[] = { "redis://c:6379", "redis://a:6379", "redis://b:6379" };
  const char *four[] = { "redis://a:6379", "redis://b:6379", "redis://c:6379", "redis://d:6379" };
  guint count[3] = { 0 };
  guint moved = 0;
  const guint n = 10000;

  for (guint i = 0; i < n; i++)
    {
      g_autofree char *key = g_strdup_printf ("channel-%u", i);
      guint before = herald_redis_shards_pick (three, 3, key);
      guint after = herald_redis_shards_pick (four, 4, key);

      count[before]++;
      g_assert_cmpstr (three[before], ==, reordered[herald_redis_shards_pick (reordered, 3, key)]);
      g_assert_cmpuint (herald_redis_shards_pick (three, 3, key), ==, before); /* stable */
      if (after != before)
        {
          g_assert_cmpuint (after, ==, 3); /* only ever to the new shard */
          moved++;
        }
    }
  for (guint s = 0; s < 3; s++)
    g_assert_cmpuint (count[s], >, n / 3 - n / 20);
  /* About a quarter moves, not all */
  g_assert_cmpuint (moved, >, n / 4 - n / 20);
  g_assert_cmpuint (moved, <, n / 4 + n / 20);
  g_assert_cmpuint (herald_redis_shards_pick (three, 1, "anything"), ==, 0);
}

/* Redis Cluster's key slots: the spec's CRC16 vector and its hash-tag rules */
static void
test_key_slot (void)
{
  g_assert_cmphex (herald_redis_crc16 ("123456789", 9), ==, 0x31c3);
  g_assert_cmpuint (herald_redis_key_slot ("foo", 3), ==, 12182);
  g_assert_cmpuint (herald_redis_key_slot ("somekey", 7), ==, 11058);
  /* A channel's stream and offset keys share the channel's slot */
  g_assert_cmpuint (herald_redis_key_slot ("herald:stream:{news}", 20), ==,
                    herald_redis_key_slot ("herald:off:{news}", 17));
  g_assert_cmpuint (herald_redis_key_slot ("x{news}", 7), ==, herald_redis_key_slot ("news", 4));
  /* Only the first tag counts; an empty tag means the whole key */
  g_assert_cmpuint (herald_redis_key_slot ("foo{bar}{zap}", 13), ==,
                    herald_redis_key_slot ("bar", 3));
  g_assert_cmpuint (herald_redis_key_slot ("foo{{bar}}zap", 13), ==,
                    herald_redis_key_slot ("{bar", 4));
  g_assert_cmpuint (herald_redis_key_slot ("foo{}{bar}", 10), ==,
                    herald_redis_crc16 ("foo{}{bar}", 10) % HERALD_REDIS_SLOTS);
  g_assert_cmpuint (herald_redis_key_slot ("{unclosed", 9), ==,
                    herald_redis_crc16 ("{unclosed", 9) % HERALD_REDIS_SLOTS);
  g_assert_cmpuint (herald_redis_key_slot ("", 0), ==, 0);
}

static guint
shard_of (const char *channel)
{
  return herald_redis_shards_pick ((const char *const *)fx.urls, 2, channel);
}

static void
test_channels (void)
{
  HeraldTestClient *on_a = herald_test_node_ws_open (&fx.a, NULL, NULL);
  HeraldTestClient *on_b = herald_test_node_ws_open (&fx.b, NULL, NULL);
  guint on_shard[2] = { 0 };
  gboolean seen_a[N_CHANNELS] = { FALSE }, seen_b[N_CHANNELS] = { FALSE };

  for (guint i = 0; i < N_CHANNELS; i++)
    {
      g_autofree char *channel = g_strdup_printf ("sh%u", i);

      herald_test_ws_subscribe (on_a, channel);
      herald_test_ws_subscribe (on_b, channel);
      on_shard[shard_of (channel)]++;
    }
  /* The channels land on both shards, each on its own only */
  g_assert_cmpuint (on_shard[0], >, 0);
  g_assert_cmpuint (on_shard[1], >, 0);
  for (guint i = 0; i < N_CHANNELS; i++)
    {
      g_autofree char *channel = g_strdup_printf ("sh%u", i);

      wait_numsub (shard_of (channel), channel, 2);
      wait_numsub (1 - shard_of (channel), channel, 0);
    }

  for (guint i = 0; i < N_CHANNELS; i++)
    {
      g_autofree char *channel = g_strdup_printf ("sh%u", i);
      g_autofree char *data = g_strdup_printf ("{\"n\":%u}", i);

      g_assert_cmpuint (herald_test_node_publish (i % 2 ? &fx.a : &fx.b, channel, data), ==, 1);
    }
  /* Exactly once on both nodes: every channel's message, then nothing else */
  for (guint i = 0; i < N_CHANNELS; i++)
    {
      g_autoptr (JsonObject) ma = herald_test_ws_read_type (on_a, "message");
      g_autoptr (JsonObject) mb = herald_test_ws_read_type (on_b, "message");

      g_assert_false (seen_a[message_n (ma)]);
      g_assert_false (seen_b[message_n (mb)]);
      seen_a[message_n (ma)] = seen_b[message_n (mb)] = TRUE;
    }
  herald_test_node_publish (&fx.a, "sh0", "{\"n\":100}");
  {
    g_autoptr (JsonObject) ma = herald_test_ws_read_type (on_a, "message");
    g_autoptr (JsonObject) mb = herald_test_ws_read_type (on_b, "message");

    g_assert_cmpint (message_n (ma), ==, 100);
    g_assert_cmpint (message_n (mb), ==, 100);
  }
  herald_test_client_free (on_a);
  herald_test_client_free (on_b);
}

/* A user's and a connection's messages go through the shard of their id,
 * whichever node sends them; the connection is registered there only */
static void
test_direct (void)
{
  for (guint shard = 0; shard < 2; shard++)
    {
      g_autofree char *user = NULL;
      g_autofree char *id = NULL;
      g_autofree char *path = NULL;
      g_autofree char *body = NULL;
      g_autofree char *send = NULL;
      HeraldTestClient *client;
      guint status = 0;

      for (guint i = 0; user == NULL || shard_of (user) != shard; i++)
        {
          g_free (user);
          user = g_strdup_printf ("user%u", i);
          g_assert_cmpuint (i, <, 1000);
        }
      client = herald_test_node_ws_open (&fx.a, user, &id);
      HERALD_TEST_WAIT_UNTIL (({
                                redisReply *r
                                    = redis_cmd (shard_of (id), "HEXISTS herald:conns %s", id);
                                gboolean ok
                                    = r && r->type == REDIS_REPLY_INTEGER && r->integer == 1;
                                if (r)
                                  freeReplyObject (r);
                                ok;
                              }),
                              5000);
      {
        redisReply *r = redis_cmd (1 - shard_of (id), "HEXISTS herald:conns %s", id);

        g_assert_nonnull (r);
        g_assert_cmpint (r->integer, ==, 0);
        freeReplyObject (r);
      }

      send = g_strdup_printf ("/api/users/%s/send", user);
      body = herald_test_node_api (&fx.b, "POST", send, "{\"data\":{\"n\":10}}", &status);
      g_assert_cmpuint (status, ==, 200);
      {
        g_autoptr (JsonObject) m = herald_test_ws_read_type (client, "message");
        g_assert_cmpint (message_n (m), ==, 10);
      }
      g_clear_pointer (&body, g_free);
      path = g_strdup_printf ("/api/connections/%s/send", id);
      body = herald_test_node_api (&fx.b, "POST", path, "{\"data\":{\"n\":11}}", &status);
      g_assert_cmpuint (status, ==, 200);
      {
        g_autoptr (JsonObject) m = herald_test_ws_read_type (client, "message");
        g_assert_cmpint (message_n (m), ==, 11);
      }
      g_clear_pointer (&body, g_free);
      body = herald_test_node_api (&fx.b, "POST", "/api/broadcast", "{\"data\":{\"n\":12}}",
                                   &status);
      g_assert_cmpuint (status, ==, 200);
      {
        g_autoptr (JsonObject) m = herald_test_ws_read_type (client, "message");
        g_assert_cmpint (message_n (m), ==, 12);
      }
      g_clear_pointer (&path, g_free);
      path = g_strdup_printf ("/api/connections/%s", id);
      g_clear_pointer (&body, g_free);
      body = herald_test_node_api (&fx.b, "DELETE", path, NULL, &status);
      g_assert_cmpuint (status, <, 300);
      g_assert_cmpuint (herald_test_ws_wait_close (client), ==, 4004);
      herald_test_client_free (client);
    }
}

/* The answer of the user subscribe API, asked on @node. */
static gint64
user_count (HeraldTestNode *node, const char *user)
{
  g_autofree char *path = g_strdup_printf ("/api/users/%s/subscribe", user);
  g_autofree char *text = NULL;
  g_autoptr (JsonNode) root = NULL;
  guint status = 0;

  text = herald_test_node_api (node, "POST", path, "{\"channel\":\"counted\"}", &status);
  g_assert_cmpuint (status, ==, 200);
  root = json_from_string (text, NULL);
  g_assert_nonnull (root);
  return json_object_get_int_member (json_node_get_object (root), "connections");
}

/* HLEN herald:uc:<user> on @shard: the nodes that count the user there. */
static long long
count_nodes (guint shard, const char *user)
{
  redisReply *r = redis_cmd (shard, "HLEN herald:uc:%s", user);
  long long n = r && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;

  if (r)
    freeReplyObject (r);
  return n;
}

/* A user's connections are counted on the user's shard, whichever shard
 * their ids live on: the subscribe API answers them all from either node;
 * a killed node stops counting once its shard reaps it. */
static void
test_user_count (void)
{
  g_autofree char *conf = g_build_filename (fx.dir, "herald.conf", NULL);
  HeraldTestNode c = { 0 };
  HeraldTestClient *on_c[2];
  char *users[2] = { NULL, NULL };

  for (guint i = 0; users[0] == NULL || users[1] == NULL; i++)
    {
      g_autofree char *user = g_strdup_printf ("counted%u", i);

      g_assert_cmpuint (i, <, 1000);
      if (users[shard_of (user)] == NULL)
        users[shard_of (user)] = g_steal_pointer (&user);
    }
  for (guint shard = 0; shard < 2; shard++)
    {
      const char *user = users[shard];
      HeraldTestClient *a1 = herald_test_node_ws_open (&fx.a, user, NULL);
      HeraldTestClient *a2 = herald_test_node_ws_open (&fx.a, user, NULL);
      HeraldTestClient *b1 = herald_test_node_ws_open (&fx.b, user, NULL);

      HERALD_TEST_WAIT_UNTIL (user_count (&fx.a, user) == 3, 5000);
      HERALD_TEST_WAIT_UNTIL (user_count (&fx.b, user) == 3, 5000);
      HERALD_TEST_WAIT_UNTIL (count_nodes (shard, user) == 2, 5000);
      g_assert_cmpint (count_nodes (1 - shard, user), ==, 0);
      herald_test_client_free (a1);
      HERALD_TEST_WAIT_UNTIL (user_count (&fx.b, user) == 2, 5000);
      HERALD_TEST_WAIT_UNTIL (user_count (&fx.a, user) == 2, 5000);
      herald_test_client_free (a2);
      herald_test_client_free (b1);
      HERALD_TEST_WAIT_UNTIL (user_count (&fx.a, user) == 0, 5000);
      HERALD_TEST_WAIT_UNTIL (count_nodes (shard, user) == 0, 5000);
    }

  /* node C, killed: each shard reaps its share (silent for 15 s) */
  herald_test_node_start (&c, conf, NULL, API_KEY, SECRET);
  HERALD_TEST_WAIT_UNTIL (herald_test_node_healthy (&c), 10000);
  for (guint shard = 0; shard < 2; shard++)
    {
      on_c[shard] = herald_test_node_ws_open (&c, users[shard], NULL);
      HERALD_TEST_WAIT_UNTIL (user_count (&fx.a, users[shard]) == 1, 5000);
    }
  herald_test_node_kill (&c);
  for (guint shard = 0; shard < 2; shard++)
    {
      herald_test_client_free (on_c[shard]);
      HERALD_TEST_WAIT_UNTIL (user_count (&fx.b, users[shard]) == 0, 40000);
      g_assert_cmpint (count_nodes (shard, users[shard]), ==, 0);
      g_free (users[shard]);
    }
}

/* History and offsets live on the channel's shard: a client that saw
 * message 1 on node B recovers the rest on node A */
static void
test_recovery (void)
{
  for (guint shard = 0; shard < 2; shard++)
    {
      g_autofree char *channel = NULL;
      HeraldTestClient *client;
      g_autoptr (JsonObject) m2 = NULL;
      g_autoptr (JsonObject) m3 = NULL;
      g_autoptr (JsonObject) done = NULL;
      g_autofree char *req = NULL;
      guint64 o1;

      for (guint i = 0; channel == NULL || shard_of (channel) != shard; i++)
        {
          g_free (channel);
          channel = g_strdup_printf ("hist%u", i);
          g_assert_cmpuint (i, <, 1000);
        }
      o1 = herald_test_node_publish (&fx.b, channel, "{\"n\":1}");
      herald_test_node_publish (&fx.b, channel, "{\"n\":2}");
      herald_test_node_publish (&fx.b, channel, "{\"n\":3}");

      client = herald_test_node_ws_open (&fx.a, NULL, NULL);
      req = g_strdup_printf (
          "{\"type\":\"subscribe\",\"channel\":\"%s\",\"since\":%" G_GUINT64_FORMAT "}", channel,
          o1);
      herald_test_ws_send_text (client, req);
      m2 = herald_test_ws_read_type (client, "message");
      m3 = herald_test_ws_read_type (client, "message");
      done = herald_test_ws_read_type (client, "subscribed");
      g_assert_cmpint (message_n (m2), ==, 2);
      g_assert_cmpint (message_n (m3), ==, 3);
      g_assert_true (json_object_get_boolean_member (done, "recovered"));
      g_assert_cmpint (json_object_get_int_member (done, "offset"), ==, (gint64)o1 + 2);
      herald_test_client_free (client);
    }
}

/* One shard down: the other shard's channels still cross nodes, and local
 * delivery on the dead shard's channels goes on */
/* join-leave=true events travel on the channel's shard, whichever shard it
 * is: two channels, one on each */
static void
test_join_leave (void)
{
  for (guint shard = 0; shard < 2; shard++)
    {
      g_autofree char *channel = NULL;
      g_autofree char *b_id = NULL;
      HeraldTestClient *a = herald_test_node_ws_open (&fx.a, "alice", NULL);
      HeraldTestClient *b = herald_test_node_ws_open (&fx.b, "bob", &b_id);

      for (guint i = 0; channel == NULL || shard_of (channel) != shard; i++)
        {
          g_free (channel);
          channel = g_strdup_printf ("chat:room%u", i);
        }
      herald_test_ws_subscribe (a, channel);
      wait_numsub (shard, channel, 1);
      herald_test_ws_subscribe (b, channel);
      {
        g_autoptr (JsonObject) e = herald_test_ws_read_type (a, "join");
        g_assert_cmpstr (herald_test_json_get_string (e, "user_id"), ==, "bob");
        g_assert_cmpstr (herald_test_json_get_string (e, "connection_id"), ==, b_id);
      }
      wait_numsub (shard, channel, 2);
      herald_test_client_free (b);
      {
        g_autoptr (JsonObject) e = herald_test_ws_read_type (a, "leave");
        g_assert_cmpstr (herald_test_json_get_string (e, "connection_id"), ==, b_id);
      }
      herald_test_client_free (a);
    }
}

static void
test_shard_down (void)
{
  HeraldTestClient *on_a = herald_test_node_ws_open (&fx.a, NULL, NULL);
  HeraldTestClient *on_b = herald_test_node_ws_open (&fx.b, NULL, NULL);
  g_autofree char *alive = NULL, *dead = NULL;

  for (guint i = 0; alive == NULL || dead == NULL; i++)
    {
      g_autofree char *channel = g_strdup_printf ("down%u", i);

      g_assert_cmpuint (i, <, 1000);
      if (shard_of (channel) == 0 && alive == NULL)
        alive = g_steal_pointer (&channel);
      else if (shard_of (channel) == 1 && dead == NULL)
        dead = g_steal_pointer (&channel);
    }
  herald_test_ws_subscribe (on_a, alive);
  herald_test_ws_subscribe (on_b, alive);
  herald_test_ws_subscribe (on_a, dead);
  wait_numsub (0, alive, 2);
  stop_redis (1);
  {
    /* /healthz names the shard that is down, and only it */
    g_autofree char *where = g_strdup_printf ("shard 2/2 (127.0.0.1:%u)", fx.redis_port[1]);

    HERALD_TEST_WAIT_UNTIL (
        ({
          guint code = 0;
          g_autofree char *health
              = herald_test_http (&fx.a.srv, "GET", "/healthz", NULL, NULL, &code);
          health != NULL &&strstr (health, where) != NULL &&strstr (health, "shard 1/2") == NULL;
        }),
        5000);
  }
  {
    g_autoptr (JsonObject) mb = NULL;
    g_autoptr (JsonObject) ma = NULL;
    g_autoptr (JsonObject) local = NULL;
    g_autofree char *body = g_strdup_printf ("{\"channel\":\"%s\",\"data\":{\"n\":7}}", dead);
    guint status = 0;
    g_autofree char *text = NULL;

    herald_test_node_publish (&fx.a, alive, "{\"n\":5}");
    mb = herald_test_ws_read_type (on_b, "message");
    ma = herald_test_ws_read_type (on_a, "message");
    g_assert_cmpint (message_n (mb), ==, 5);
    g_assert_cmpint (message_n (ma), ==, 5);
    text = herald_test_node_api (&fx.a, "POST", "/api/publish", body, &status);
    g_assert_cmpuint (status, ==, 200);
    local = herald_test_ws_read_type (on_a, "message");
    g_assert_cmpint (message_n (local), ==, 7);
  }
  start_redis (1);
  HERALD_TEST_WAIT_UNTIL (herald_test_node_healthy (&fx.a) && herald_test_node_healthy (&fx.b),
                          10000);
  herald_test_client_free (on_a);
  herald_test_client_free (on_b);
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
  g_autofree char *conf_text = NULL;
  g_autofree char *redis_server = g_find_program_in_path ("redis-server");
  int status;

  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/redis-shards/pick", test_pick);
  g_test_add_func ("/redis-shards/key-slot", test_key_slot);
  if (redis_server == NULL)
    {
      g_printerr ("redis-server not found (scripts/install-deps.sh installs it)\n");
      return g_test_run ();
    }

  g_timeout_add (20, tick, NULL);
  fx.dir = g_dir_make_tmp ("herald-shards-XXXXXX", &error);
  g_assert_no_error (error);
  for (guint s = 0; s < 2; s++)
    {
      fx.redis_port[s] = herald_test_free_port ();
      fx.urls[s] = g_strdup_printf ("redis://127.0.0.1:%u", fx.redis_port[s]);
      start_redis (s);
    }
  conf = g_build_filename (fx.dir, "herald.conf", NULL);
  conf_text = g_strdup_printf ("[auth]\njwt-secret=" SECRET "\nanonymous=true\n[history]\n"
                               "size=10\nttl=60\n[redis]\nshards=%s;%s\n"
                               "password=" REDIS_PASSWORD "\n[namespace.chat]\njoin-leave=true\n",
                               fx.urls[0], fx.urls[1]);
  g_assert_true (g_file_set_contents (conf, conf_text, -1, NULL));
  start_node (&fx.a);
  start_node (&fx.b);
  HERALD_TEST_WAIT_UNTIL (herald_test_node_healthy (&fx.a) && herald_test_node_healthy (&fx.b),
                          10000);

  g_test_add_func ("/redis-shards/channels", test_channels);
  g_test_add_func ("/redis-shards/direct", test_direct);
  g_test_add_func ("/redis-shards/user-count", test_user_count);
  g_test_add_func ("/redis-shards/recovery", test_recovery);
  g_test_add_func ("/redis-shards/join-leave", test_join_leave);
  g_test_add_func ("/redis-shards/shard-down", test_shard_down);
  status = g_test_run ();

  herald_test_node_stop (&fx.a);
  herald_test_node_stop (&fx.b);
  for (guint s = 0; s < 2; s++)
    {
      if (fx.redis[s] != NULL)
        stop_redis (s);
      g_free (fx.urls[s]);
    }
  g_unlink (conf);
  g_rmdir (fx.dir);
  g_free (fx.dir);
  return status;
}
