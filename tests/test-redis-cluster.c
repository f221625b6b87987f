/* test-redis-cluster.c: [redis] cluster, a real 3-master Redis Cluster
 * (redis-server --cluster-enabled yes, redis-cli --cluster create) behind
 * two heraldd nodes; and the cluster routing's small parsers.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <signal.h>
#include <string.h>
#include <glib/gstdio.h>
#include <hiredis/hiredis.h>
#include <json-glib/json-glib.h>

#include "herald-redis-cluster-keys.h"
#include "herald-redis-slots.h"
#include "herald-test-node.h"
#include "herald-test-server.h"
#include "herald-test-utils.h"

#define API_KEY "cluster-test-key"
#define SECRET "s3cret"
#define PASSWORD "cluster-pass"
#define N_MASTERS 3
#define REPLICA N_MASTERS /* fx.port[REPLICA]: a replica of master 1 */
#define N_CHANNELS 9

static struct
{
  GSubprocess *redis[N_MASTERS + 1];
  guint16 port[N_MASTERS + 1];
  char *dir;
  HeraldTestNode a, b;
} fx;

/* ---- the cluster ---- */

static redisReply *
redis_cmd (guint m, const char *format, ...)
{
  redisReply *reply;
  va_list ap;

  va_start (ap, format);
  reply = herald_test_redis_vcmd (fx.port[m], PASSWORD, format, ap);
  va_end (ap);
  return reply;
}

/* A string answer of master @m (NULL when none) */
static char *
redis_string (guint m, const char *format, ...)
{
  redisReply *reply;
  char *text = NULL;
  va_list ap;

  va_start (ap, format);
  reply = herald_test_redis_vcmd (fx.port[m], PASSWORD, format, ap);
  va_end (ap);
  if (reply && (reply->type == REDIS_REPLY_STRING || reply->type == REDIS_REPLY_STATUS))
    text = g_strdup (reply->str);
  if (reply)
    freeReplyObject (reply);
  return text;
}

static void
start_master (guint m)
{
  g_autofree char *port = g_strdup_printf ("%u", fx.port[m]);
  g_autofree char *conf = g_strdup_printf ("nodes-%u.conf", fx.port[m]);
  g_autoptr (GSubprocessLauncher) launcher = g_subprocess_launcher_new (
      G_SUBPROCESS_FLAGS_STDOUT_SILENCE | G_SUBPROCESS_FLAGS_STDERR_SILENCE);
  g_autoptr (GError) error = NULL;
  const char *argv[] = { "redis-server", "--port", port, "--bind", "127.0.0.1", "--dir", fx.dir,
                         "--save", "", "--appendonly", "no", "--cluster-enabled", "yes",
                         "--cluster-config-file", conf, "--cluster-node-timeout", "1000",
                         /* the other masters keep serving while one is down */
                         "--cluster-require-full-coverage", "no", "--requirepass", PASSWORD,
                         "--masterauth", PASSWORD, NULL };

  g_subprocess_launcher_set_child_setup (launcher, herald_test_die_with_parent, NULL, NULL);
  fx.redis[m] = g_subprocess_launcher_spawnv (launcher, argv, &error);
  g_assert_no_error (error);
  HERALD_TEST_WAIT_UNTIL (herald_test_redis_answers (fx.port[m], PASSWORD), 5000);
}

static gboolean
cluster_ok (guint m)
{
  g_autofree char *info = redis_string (m, "CLUSTER INFO");
  return info != NULL && strstr (info, "cluster_state:ok") != NULL;
}

static void
on_created (GObject *source, GAsyncResult *result, gpointer user_data)
{
  *(gboolean *)user_data
      = g_subprocess_wait_check_finish (G_SUBPROCESS (source), result, NULL) ? 1 : 2;
}

static void
create_cluster (void)
{
  g_autoptr (GPtrArray) argv = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GSubprocessLauncher) launcher = g_subprocess_launcher_new (
      G_SUBPROCESS_FLAGS_STDOUT_SILENCE | G_SUBPROCESS_FLAGS_STDERR_SILENCE);
  g_autoptr (GSubprocess) cli = NULL;
  g_autoptr (GError) error = NULL;
  gboolean done = 0;

  g_ptr_array_add (argv, g_strdup ("redis-cli"));
  g_ptr_array_add (argv, g_strdup ("--no-auth-warning"));
  g_ptr_array_add (argv, g_strdup ("-a"));
  g_ptr_array_add (argv, g_strdup (PASSWORD));
  g_ptr_array_add (argv, g_strdup ("--cluster"));
  g_ptr_array_add (argv, g_strdup ("create"));
  for (guint m = 0; m < N_MASTERS; m++)
    g_ptr_array_add (argv, g_strdup_printf ("127.0.0.1:%u", fx.port[m]));
  g_ptr_array_add (argv, g_strdup ("--cluster-yes"));
  g_ptr_array_add (argv, NULL);
  g_subprocess_launcher_set_child_setup (launcher, herald_test_die_with_parent, NULL, NULL);
  cli = g_subprocess_launcher_spawnv (launcher, (const char *const *)argv->pdata, &error);
  g_assert_no_error (error);
  g_subprocess_wait_check_async (cli, NULL, on_created, &done);
  HERALD_TEST_WAIT_UNTIL (done != 0, 15000);
  g_assert_cmpint (done, ==, 1);
  for (guint m = 0; m < N_MASTERS; m++)
    HERALD_TEST_WAIT_UNTIL (cluster_ok (m), 10000);
}

static gboolean
info_has (guint m, const char *section, const char *what)
{
  g_autofree char *info = redis_string (m, section);
  return info != NULL && strstr (info, what) != NULL;
}

static gboolean
replicate (const char *master_id)
{
  redisReply *r = redis_cmd (REPLICA, "CLUSTER REPLICATE %s", master_id);
  gboolean ok = r != NULL && r->type == REDIS_REPLY_STATUS;

  if (r)
    freeReplyObject (r);
  return ok;
}

/* A fourth server joins as master 1's replica, in sync before it returns */
static void
add_replica (void)
{
  g_autofree char *master_id = redis_string (1, "CLUSTER MYID");

  fx.port[REPLICA] = herald_test_free_port ();
  start_master (REPLICA);
  freeReplyObject (redis_cmd (REPLICA, "CLUSTER MEET 127.0.0.1 %u", fx.port[0]));
  HERALD_TEST_WAIT_UNTIL (info_has (REPLICA, "CLUSTER INFO", "cluster_known_nodes:4"), 10000);
  HERALD_TEST_WAIT_UNTIL (replicate (master_id), 10000);
  HERALD_TEST_WAIT_UNTIL (info_has (REPLICA, "INFO replication", "master_link_status:up"), 10000);
}

/* The master (index) that owns @key's slot, as the cluster says */
static guint
master_of (const char *key)
{
  g_autofree char *id = NULL;
  redisReply *r = redis_cmd (fx.redis[0] ? 0 : 2, "CLUSTER SLOTS");
  guint slot = herald_rck_slot (key);
  guint found = REPLICA + 1;

  g_assert_nonnull (r);
  for (gsize i = 0; i < r->elements; i++)
    {
      redisReply *range = r->element[i];

      if (slot >= (guint)range->element[0]->integer && slot <= (guint)range->element[1]->integer)
        for (guint m = 0; m <= REPLICA; m++)
          if (range->element[2]->element[1]->integer == fx.port[m])
            found = m;
    }
  freeReplyObject (r);
  g_assert_cmpuint (found, <=, REPLICA);
  return found;
}

/* Whether master @m's PUBSUB SHARDCHANNELS lists @topic */
static gboolean
has_shardchannel (guint m, const char *topic)
{
  redisReply *r = redis_cmd (m, "PUBSUB SHARDCHANNELS %s", topic);
  gboolean found = r && r->type == REDIS_REPLY_ARRAY && r->elements == 1;

  if (r)
    freeReplyObject (r);
  return found;
}

static long long
shardnumsub (guint m, const char *topic)
{
  redisReply *r = redis_cmd (m, "PUBSUB SHARDNUMSUB %s", topic);
  long long n = -1;

  if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2)
    n = r->element[1]->integer;
  if (r)
    freeReplyObject (r);
  return n;
}

/* The value of the sample @name (with its labels) in @node's /metrics */
static gint64
metric (HeraldTestNode *node, const char *name)
{
  guint status = 0;
  g_autofree char *text = herald_test_node_api (node, "GET", "/metrics", NULL, &status);
  g_autofree char *line = g_strconcat ("\n", name, " ", NULL);
  const char *at = text ? strstr (text, line) : NULL;

  g_assert_cmpuint (status, ==, 200);
  return at ? g_ascii_strtoll (at + strlen (line), NULL, 10) : -1;
}

static gint64
message_n (JsonObject *msg)
{
  return json_object_get_int_member (json_object_get_object_member (msg, "data"), "n");
}

/* A name "<prefix><i>" whose channel lives on master @m */
static char *
channel_on (const char *prefix, guint m)
{
  for (guint i = 0; i < 10000; i++)
    {
      g_autofree char *channel = g_strdup_printf ("%s%u", prefix, i);
      g_autofree char *topic = herald_rck_channel_key (channel, "");

      if (master_of (topic) == m)
        return g_steal_pointer (&channel);
    }
  g_assert_not_reached ();
}

/* ---- tests ---- */

static void
test_parse (void)
{
  g_autofree char *addr = NULL;
  g_autofree char *host = NULL;
  gboolean ask = TRUE;
  guint slot = 0;
  int port = 0;

  g_assert_true (herald_redis_parse_redirect ("MOVED 3999 127.0.0.1:6381", &ask, &slot, &addr));
  g_assert_false (ask);
  g_assert_cmpuint (slot, ==, 3999);
  g_assert_cmpstr (addr, ==, "127.0.0.1:6381");
  g_clear_pointer (&addr, g_free);
  g_assert_true (herald_redis_parse_redirect ("ASK 0 ::1:7000", &ask, &slot, &addr));
  g_assert_true (ask);
  g_assert_cmpstr (addr, ==, "::1:7000");
  g_assert_false (herald_redis_parse_redirect ("MOVED 16384 a:1", NULL, NULL, NULL));
  g_assert_false (herald_redis_parse_redirect ("MOVED x a:1", NULL, NULL, NULL));
  g_assert_false (herald_redis_parse_redirect ("MOVED 1 a", NULL, NULL, NULL));
  g_assert_false (herald_redis_parse_redirect ("ERR unknown", NULL, NULL, NULL));
  g_assert_false (herald_redis_parse_redirect (NULL, NULL, NULL, NULL));
  g_assert_true (herald_redis_split_addr ("[::1]:6379", &host, &port));
  g_assert_cmpstr (host, ==, "::1");
  g_assert_cmpint (port, ==, 6379);
  g_assert_false (herald_redis_split_addr ("host:0", NULL, NULL));
  g_assert_false (herald_redis_split_addr (":1", NULL, NULL));
  g_assert_false (herald_redis_split_addr ("host", NULL, NULL));

  /* A channel's keys and shard channel share its slot */
  {
    g_autofree char *m = herald_rck_channel_key ("news:a#b,c", ":m");
    g_autofree char *h = herald_rck_channel_key ("news:a#b,c", ":h");
    g_autofree char *t = herald_rck_channel_key ("news:a#b,c", "");
    g_autofree char *back = herald_rck_topic_channel (t);

    g_assert_cmpuint (herald_rck_slot (m), ==, herald_rck_slot (h));
    g_assert_cmpuint (herald_rck_slot (m), ==, herald_rck_slot (t));
    g_assert_cmpuint (herald_rck_slot (t), ==, herald_redis_key_slot ("news:a#b,c", 10));
    g_assert_cmpstr (back, ==, "news:a#b,c");
    g_assert_null (herald_rck_topic_channel (HERALD_RCK_DIRECT_TOPIC));
  }
}

/* Channels spread over the masters, each heard on its own master only
 * (sharded pub/sub), every message delivered once on both nodes */
static void
test_channels (void)
{
  HeraldTestClient *on_a = herald_test_node_ws_open (&fx.a, NULL, NULL);
  HeraldTestClient *on_b = herald_test_node_ws_open (&fx.b, NULL, NULL);
  gboolean seen_a[N_CHANNELS] = { FALSE }, seen_b[N_CHANNELS] = { FALSE };
  guint used[N_MASTERS] = { 0 };
  guint masters_used = 0;

  for (guint i = 0; i < N_CHANNELS; i++)
    {
      g_autofree char *channel = channel_on ("ch", i % N_MASTERS);

      herald_test_ws_subscribe (on_a, channel);
      herald_test_ws_subscribe (on_b, channel);
    }
  for (guint i = 0; i < N_CHANNELS; i++)
    {
      g_autofree char *channel = channel_on ("ch", i % N_MASTERS);
      g_autofree char *topic = herald_rck_channel_key (channel, "");
      guint m = master_of (topic);

      HERALD_TEST_WAIT_UNTIL (shardnumsub (m, topic) == 2, 5000);
      g_assert_true (has_shardchannel (m, topic));
      for (guint other = 0; other < N_MASTERS; other++)
        if (other != m)
          g_assert_false (has_shardchannel (other, topic));
      used[m]++;
    }
  for (guint m = 0; m < N_MASTERS; m++)
    masters_used += used[m] > 0;
  g_assert_cmpuint (masters_used, >=, 2);

  for (guint i = 0; i < N_CHANNELS; i++)
    {
      g_autofree char *channel = channel_on ("ch", i % N_MASTERS);
      g_autofree char *data = g_strdup_printf ("{\"n\":%u}", i);

      herald_test_node_publish (i % 2 ? &fx.a : &fx.b, channel, data);
    }
  for (guint i = 0; i < N_CHANNELS; i++)
    {
      g_autoptr (JsonObject) ma = herald_test_ws_read_type (on_a, "message");
      g_autoptr (JsonObject) mb = herald_test_ws_read_type (on_b, "message");

      g_assert_false (seen_a[message_n (ma)]);
      g_assert_false (seen_b[message_n (mb)]);
      seen_a[message_n (ma)] = seen_b[message_n (mb)] = TRUE;
    }
  {
    /* Nothing else came: the next one is the next one */
    g_autofree char *channel = channel_on ("ch", 0);
    g_autoptr (JsonObject) ma = NULL;
    g_autoptr (JsonObject) mb = NULL;

    herald_test_node_publish (&fx.a, channel, "{\"n\":100}");
    ma = herald_test_ws_read_type (on_a, "message");
    mb = herald_test_ws_read_type (on_b, "message");
    g_assert_cmpint (message_n (ma), ==, 100);
    g_assert_cmpint (message_n (mb), ==, 100);
  }
  herald_test_client_free (on_a);
  herald_test_client_free (on_b);
}

/* Users, connections and broadcasts cross nodes; a connection is
 * registered in its own slot */
static void
test_direct (void)
{
  g_autofree char *id = NULL;
  g_autofree char *path = NULL;
  g_autofree char *body = NULL;
  g_autofree char *key = NULL;
  HeraldTestClient *client = herald_test_node_ws_open (&fx.a, "ann", &id);
  guint status = 0;

  key = herald_rck_conn_key (id);
  HERALD_TEST_WAIT_UNTIL (({
                            g_autofree char *node = redis_string (master_of (key), "GET %s", key);
                            node != NULL;
                          }),
                          5000);
  body = herald_test_node_api (&fx.b, "POST", "/api/users/ann/send", "{\"data\":{\"n\":10}}",
                               &status);
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
  body = herald_test_node_api (&fx.b, "POST", "/api/broadcast", "{\"data\":{\"n\":12}}", &status);
  g_assert_cmpuint (status, ==, 200);
  {
    g_autoptr (JsonObject) m = herald_test_ws_read_type (client, "message");
    g_assert_cmpint (message_n (m), ==, 12);
  }
  /* An unknown connection is unknown everywhere */
  g_clear_pointer (&body, g_free);
  body = herald_test_node_api (&fx.b, "POST", "/api/connections/nosuchconnection/send",
                               "{\"data\":{}}", &status);
  g_assert_cmpuint (status, ==, 404);
  g_clear_pointer (&path, g_free);
  path = g_strdup_printf ("/api/connections/%s", id);
  g_clear_pointer (&body, g_free);
  body = herald_test_node_api (&fx.b, "DELETE", path, NULL, &status);
  g_assert_cmpuint (status, <, 300);
  g_assert_cmpuint (herald_test_ws_wait_close (client), ==, 4004);
  herald_test_client_free (client);
  HERALD_TEST_WAIT_UNTIL (({
                            g_autofree char *node = redis_string (master_of (key), "GET %s", key);
                            node == NULL;
                          }),
                          5000);
}

/* The answer of the user subscribe API, asked on @node. */
static gint64
user_count (HeraldTestNode *node, const char *user)
{
  g_autofree char *path = g_strdup_printf ("/api/users/%s/subscribe", user);
  g_autofree char *text = NULL;
  g_autoptr (JsonNode) answer = NULL;
  guint status = 0;

  text = herald_test_node_api (node, "POST", path, "{\"channel\":\"counted\"}", &status);
  g_assert_cmpuint (status, ==, 200);
  answer = json_from_string (text, NULL);
  g_assert_nonnull (answer);
  return json_object_get_int_member (json_node_get_object (answer), "connections");
}

static long long
hlen (const char *key)
{
  redisReply *r = redis_cmd (master_of (key), "HLEN %s", key);
  long long n = r && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;

  if (r)
    freeReplyObject (r);
  return n;
}

/* A user's connections on both nodes are counted in the user's slot
 * (herald:{u:<user>}:c, a field per node) and answered from either node */
static void
test_user_count (void)
{
  HeraldTestClient *a1 = herald_test_node_ws_open (&fx.a, "uma", NULL);
  HeraldTestClient *a2 = herald_test_node_ws_open (&fx.a, "uma", NULL);
  HeraldTestClient *b1 = herald_test_node_ws_open (&fx.b, "uma", NULL);

  HERALD_TEST_WAIT_UNTIL (user_count (&fx.a, "uma") == 3, 5000);
  HERALD_TEST_WAIT_UNTIL (user_count (&fx.b, "uma") == 3, 5000);
  HERALD_TEST_WAIT_UNTIL (hlen ("herald:{u:uma}:c") == 2, 5000);
  json_object_unref (herald_test_ws_read_type (b1, "subscribed"));
  herald_test_client_free (a2);
  HERALD_TEST_WAIT_UNTIL (user_count (&fx.b, "uma") == 2, 5000);
  herald_test_client_free (b1);
  HERALD_TEST_WAIT_UNTIL (user_count (&fx.a, "uma") == 1, 5000);
  HERALD_TEST_WAIT_UNTIL (hlen ("herald:{u:uma}:c") == 1, 5000);
  herald_test_client_free (a1);
  HERALD_TEST_WAIT_UNTIL (user_count (&fx.b, "uma") == 0, 5000);
  HERALD_TEST_WAIT_UNTIL (hlen ("herald:{u:uma}:c") == 0, 5000);
}

static gint64
presence_connections (HeraldTestNode *node, const char *channel, guint *n_users)
{
  g_autofree char *path = g_strdup_printf ("/api/channels/%s/presence", channel);
  g_autofree char *text = NULL;
  g_autoptr (JsonNode) answer = NULL;
  guint status = 0;

  text = herald_test_node_api (node, "GET", path, NULL, &status);
  g_assert_cmpuint (status, ==, 200);
  answer = json_from_string (text, NULL);
  g_assert_nonnull (answer);
  if (n_users)
    *n_users = json_array_get_length (
        json_object_get_array_member (json_node_get_object (answer), "users"));
  return json_object_get_int_member (json_node_get_object (answer), "connections");
}

/* Presence is cluster-wide, in the channel's slot: users and anonymous
 * connections of both nodes, join and leave events */
static void
test_presence (void)
{
  HeraldTestClient *bob = herald_test_node_ws_open (&fx.b, "bob", NULL);
  HeraldTestClient *alice = herald_test_node_ws_open (&fx.a, "alice", NULL);
  HeraldTestClient *anon = herald_test_node_ws_open (&fx.a, NULL, NULL);
  g_autoptr (JsonObject) joined = NULL;
  g_autoptr (JsonObject) left = NULL;
  g_autofree char *sub = NULL;
  g_autofree char *room = channel_on ("room", 2);
  guint users = 0;

  sub = g_strdup_printf ("{\"type\":\"subscribe\",\"channel\":\"%s\",\"presence\":true}", room);
  herald_test_ws_send_text (bob, sub);
  json_object_unref (herald_test_ws_read_type (bob, "subscribed"));
  herald_test_ws_subscribe (alice, room);
  herald_test_ws_subscribe (anon, room);
  do
    {
      g_clear_pointer (&joined, json_object_unref);
      joined = herald_test_ws_read_type (bob, "join");
    }
  while (g_strcmp0 (herald_test_json_get_string (joined, "user_id"), "bob") == 0);
  g_assert_cmpstr (herald_test_json_get_string (joined, "user_id"), ==, "alice");
  HERALD_TEST_WAIT_UNTIL (presence_connections (&fx.b, room, &users) == 3, 5000);
  g_assert_cmpuint (users, ==, 2);
  HERALD_TEST_WAIT_UNTIL (presence_connections (&fx.a, room, &users) == 3, 5000);
  g_assert_cmpuint (users, ==, 2);

  herald_test_client_free (alice);
  left = herald_test_ws_read_type (bob, "leave");
  g_assert_cmpstr (herald_test_json_get_string (left, "user_id"), ==, "alice");
  herald_test_client_free (anon);
  HERALD_TEST_WAIT_UNTIL (presence_connections (&fx.a, room, &users) == 1, 5000);
  herald_test_client_free (bob);
}

/* join-leave=true across nodes on the channel's shard topic, and the
 * publish key through the cluster's wire format */
static void
test_join_leave_and_key (void)
{
  g_autofree char *room = channel_on ("jl:room", 0);
  g_autofree char *body
      = g_strdup_printf ("{\"channel\":\"%s\",\"key\":\"EURUSD\",\"data\":{\"bid\":1}}", room);
  g_autofree char *answer = NULL;
  g_autofree char *alice_id = NULL;
  HeraldTestClient *bob = herald_test_node_ws_open (&fx.b, "bob", NULL);
  HeraldTestClient *alice = herald_test_node_ws_open (&fx.a, "alice", &alice_id);
  g_autoptr (JsonObject) joined = NULL;
  g_autoptr (JsonObject) message = NULL;
  g_autoptr (JsonObject) left = NULL;
  guint status = 0;

  herald_test_ws_subscribe (bob, room);
  herald_test_ws_subscribe (alice, room);
  joined = herald_test_ws_read_type (bob, "join");
  g_assert_cmpstr (herald_test_json_get_string (joined, "user_id"), ==, "alice");
  g_assert_cmpstr (herald_test_json_get_string (joined, "connection_id"), ==, alice_id);
  g_assert_cmpstr (herald_test_json_get_string (joined, "channel"), ==, room);

  answer = herald_test_node_api (&fx.a, "POST", "/api/publish", body, &status);
  g_assert_cmpuint (status, ==, 200);
  message = herald_test_ws_read_type (bob, "message");
  g_assert_cmpstr (herald_test_json_get_string (message, "key"), ==, "EURUSD");
  {
    /* alice heard no join about herself: the message is her next frame */
    g_autoptr (JsonObject) own = herald_test_ws_read_json (alice);
    g_assert_cmpstr (herald_test_json_get_string (own, "type"), ==, "message");
    g_assert_cmpstr (herald_test_json_get_string (own, "key"), ==, "EURUSD");
  }

  herald_test_client_free (alice);
  left = herald_test_ws_read_type (bob, "leave");
  g_assert_cmpstr (herald_test_json_get_string (left, "user_id"), ==, "alice");
  g_assert_cmpstr (herald_test_json_get_string (left, "connection_id"), ==, alice_id);
  herald_test_client_free (bob);
}

static JsonObject *
resume (HeraldTestNode *node, const char *channel, guint64 since, const char *epoch,
        HeraldTestClient **out, GPtrArray *messages)
{
  HeraldTestClient *client = herald_test_node_ws_open (node, NULL, NULL);
  g_autofree char *req
      = g_strdup_printf ("{\"type\":\"subscribe\",\"channel\":\"%s\",\"since\":%" G_GUINT64_FORMAT
                         ",\"epoch\":\"%s\"}",
                         channel, since, epoch);
  JsonObject *done = NULL;

  herald_test_ws_send_text (client, req);
  while (done == NULL)
    {
      g_autoptr (JsonObject) frame = herald_test_ws_read_json (client);
      const char *type = herald_test_json_get_string (frame, "type");

      if (g_strcmp0 (type, "message") == 0)
        g_ptr_array_add (messages, json_object_ref (frame));
      else if (g_strcmp0 (type, "subscribed") == 0)
        done = json_object_ref (frame);
    }
  *out = client;
  return done;
}

/* History, offsets and the epoch live in the channel's slot: a client that
 * saw message 1 on node B recovers the rest on node A; each channel has its
 * own epoch; a wrong epoch is not recovered */
static void
test_recovery (void)
{
  char *epochs[N_MASTERS] = { NULL };

  for (guint m = 0; m < N_MASTERS; m++)
    {
      g_autofree char *channel = channel_on ("hist", m);
      g_autoptr (GPtrArray) messages
          = g_ptr_array_new_with_free_func ((GDestroyNotify)json_object_unref);
      g_autoptr (JsonObject) done = NULL;
      g_autoptr (JsonObject) other = NULL;
      HeraldTestClient *client = NULL;
      guint64 o1;

      o1 = herald_test_node_publish (&fx.b, channel, "{\"n\":1}");
      g_assert_cmpuint (o1, ==, 1);
      g_assert_cmpuint (herald_test_node_publish (&fx.a, channel, "{\"n\":2}"), ==, 2);
      g_assert_cmpuint (herald_test_node_publish (&fx.b, channel, "{\"n\":3}"), ==, 3);
      {
        g_autofree char *meta = herald_rck_channel_key (channel, ":m");
        epochs[m] = redis_string (master_of (meta), "HGET %s epoch", meta);
        g_assert_nonnull (epochs[m]);
      }
      done = resume (&fx.a, channel, o1, epochs[m], &client, messages);
      g_assert_true (json_object_get_boolean_member (done, "recovered"));
      g_assert_cmpint (json_object_get_int_member (done, "offset"), ==, 3);
      g_assert_cmpstr (herald_test_json_get_string (done, "epoch"), ==, epochs[m]);
      g_assert_cmpuint (messages->len, ==, 2);
      g_assert_cmpint (message_n (messages->pdata[0]), ==, 2);
      g_assert_cmpint (message_n (messages->pdata[1]), ==, 3);
      herald_test_client_free (client);

      g_ptr_array_set_size (messages, 0);
      other = resume (&fx.b, channel, o1, "someother", &client, messages);
      g_assert_false (json_object_get_boolean_member (other, "recovered"));
      g_assert_cmpuint (messages->len, ==, 0);
      herald_test_client_free (client);
    }
  g_assert_cmpstr (epochs[0], !=, epochs[1]);
  for (guint m = 0; m < N_MASTERS; m++)
    g_free (epochs[m]);
}

/* CLUSTER SETSLOT moves a channel's slot (keys migrated) to another
 * master: publishes follow MOVED, subscriptions follow the map, and history
 * continues there */
static void
test_moved (void)
{
  g_autofree char *channel = channel_on ("mig", 0);
  g_autofree char *topic = herald_rck_channel_key (channel, "");
  g_autofree char *src_id = redis_string (0, "CLUSTER MYID");
  g_autofree char *dst_id = redis_string (1, "CLUSTER MYID");
  HeraldTestClient *on_a = herald_test_node_ws_open (&fx.a, NULL, NULL);
  HeraldTestClient *on_b = herald_test_node_ws_open (&fx.b, NULL, NULL);
  guint slot = herald_rck_slot (topic);
  redisReply *keys;

  herald_test_ws_subscribe (on_a, channel);
  herald_test_ws_subscribe (on_b, channel);
  HERALD_TEST_WAIT_UNTIL (shardnumsub (0, topic) == 2, 5000);
  g_assert_cmpuint (herald_test_node_publish (&fx.a, channel, "{\"n\":1}"), ==, 1);
  json_object_unref (herald_test_ws_read_type (on_a, "message"));
  json_object_unref (herald_test_ws_read_type (on_b, "message"));

  freeReplyObject (redis_cmd (1, "CLUSTER SETSLOT %u IMPORTING %s", slot, src_id));
  freeReplyObject (redis_cmd (0, "CLUSTER SETSLOT %u MIGRATING %s", slot, dst_id));
  keys = redis_cmd (0, "CLUSTER GETKEYSINSLOT %u 100", slot);
  g_assert_nonnull (keys);
  for (gsize i = 0; i < keys->elements; i++)
    {
      redisReply *r = redis_cmd (0, "MIGRATE 127.0.0.1 %u %s 0 5000 AUTH %s", fx.port[1],
                                 keys->element[i]->str, PASSWORD);
      g_assert_nonnull (r);
      g_assert_cmpint (r->type, !=, REDIS_REPLY_ERROR);
      freeReplyObject (r);
    }
  freeReplyObject (keys);
  /* Mid-migration the keys are gone from the source: ASK, then ASKING on
   * the target */
  g_assert_cmpuint (herald_test_node_publish (&fx.b, channel, "{\"n\":2}"), ==, 2);
  for (guint m = 0; m < N_MASTERS; m++)
    freeReplyObject (redis_cmd (m, "CLUSTER SETSLOT %u NODE %s", slot, dst_id));
  g_assert_cmpuint (master_of (topic), ==, 1);

  /* The map is stale: MOVED, followed */
  g_assert_cmpuint (herald_test_node_publish (&fx.a, channel, "{\"n\":3}"), ==, 3);
  HERALD_TEST_WAIT_UNTIL (shardnumsub (1, topic) == 2, 5000);
  g_assert_false (has_shardchannel (0, topic));
  /* n=2 went out on the target while everyone listened on the source: the
   * nodes catch it up from history when they resubscribe, in order, once */
  for (guint n = 2; n <= 3; n++)
    {
      g_autoptr (JsonObject) ma = herald_test_ws_read_type (on_a, "message");
      g_autoptr (JsonObject) mb = herald_test_ws_read_type (on_b, "message");

      g_assert_cmpint (message_n (ma), ==, n);
      g_assert_cmpint (message_n (mb), ==, n);
      g_assert_cmpint (json_object_get_int_member (ma, "offset"), ==, n);
    }
  g_assert_cmpint (metric (&fx.b, "herald_redis_cluster_redirects_total{kind=\"ask\"}"), >=, 1);
  g_assert_cmpint (metric (&fx.a, "herald_redis_cluster_caught_up_total")
                       + metric (&fx.b, "herald_redis_cluster_caught_up_total"),
                   >=, 1);
  g_assert_cmpuint (herald_test_node_publish (&fx.a, channel, "{\"n\":4}"), ==, 4);
  {
    g_autoptr (JsonObject) ma = herald_test_ws_read_type (on_a, "message");
    g_autoptr (JsonObject) mb = herald_test_ws_read_type (on_b, "message");

    g_assert_cmpint (message_n (ma), ==, 4);
    g_assert_cmpint (message_n (mb), ==, 4);
  }
  {
    g_autoptr (GPtrArray) messages
        = g_ptr_array_new_with_free_func ((GDestroyNotify)json_object_unref);
    g_autoptr (JsonObject) done = NULL;
    HeraldTestClient *client = NULL;
    g_autofree char *meta = herald_rck_channel_key (channel, ":m");
    g_autofree char *epoch = redis_string (1, "HGET %s epoch", meta);

    done = resume (&fx.a, channel, 1, epoch, &client, messages);
    g_assert_true (json_object_get_boolean_member (done, "recovered"));
    g_assert_cmpuint (messages->len, ==, 3);
    herald_test_client_free (client);
  }
  herald_test_client_free (on_a);
  herald_test_client_free (on_b);
}

/* A master down: /healthz names it; the other masters' channels still
 * cross nodes; its channels are delivered locally; when it comes back
 * (empty) everything resumes by itself, with a new epoch for its channels */
static void
test_master_down (void)
{
  g_autofree char *alive = channel_on ("up", 0);
  g_autofree char *dead = channel_on ("down", 2);
  g_autofree char *where = g_strdup_printf ("master 127.0.0.1:%u", fx.port[2]);
  g_autofree char *meta = herald_rck_channel_key (dead, ":m");
  g_autofree char *old_epoch = NULL;
  HeraldTestClient *on_a = herald_test_node_ws_open (&fx.a, NULL, NULL);
  HeraldTestClient *on_b = herald_test_node_ws_open (&fx.b, NULL, NULL);

  herald_test_ws_subscribe (on_a, alive);
  herald_test_ws_subscribe (on_b, alive);
  herald_test_ws_subscribe (on_a, dead);
  herald_test_ws_subscribe (on_b, dead);
  herald_test_node_publish (&fx.a, dead, "{\"n\":1}");
  json_object_unref (herald_test_ws_read_type (on_a, "message"));
  json_object_unref (herald_test_ws_read_type (on_b, "message"));
  old_epoch = redis_string (2, "HGET %s epoch", meta);

  herald_test_redis_stop (&fx.redis[2]);
  HERALD_TEST_WAIT_UNTIL (({
                            guint code = 0;
                            g_autofree char *health = herald_test_http (
                                &fx.a.srv, "GET", "/healthz", NULL, NULL, &code);
                            code == 503 && health != NULL &&strstr (health, where) != NULL;
                          }),
                          5000);
  {
    g_autofree char *sample
        = g_strdup_printf ("herald_redis_cluster_master_up{master=\"127.0.0.1:%u\"}", fx.port[2]);
    g_autofree char *alive_sample
        = g_strdup_printf ("herald_redis_cluster_master_up{master=\"127.0.0.1:%u\"}", fx.port[0]);

    g_assert_cmpint (metric (&fx.a, sample), ==, 0);
    g_assert_cmpint (metric (&fx.a, alive_sample), ==, 1);
    g_assert_cmpint (metric (&fx.a, "herald_redis_cluster_masters"), ==, 3);
    g_assert_cmpint (metric (&fx.a, "herald_engine_up"), ==, 0);
  }
  {
    g_autoptr (JsonObject) ma = NULL;
    g_autoptr (JsonObject) mb = NULL;
    g_autoptr (JsonObject) local = NULL;
    g_autofree char *body = g_strdup_printf ("{\"channel\":\"%s\",\"data\":{\"n\":7}}", dead);
    g_autofree char *text = NULL;
    guint status = 0;

    herald_test_node_publish (&fx.a, alive, "{\"n\":5}");
    ma = herald_test_ws_read_type (on_a, "message");
    mb = herald_test_ws_read_type (on_b, "message");
    g_assert_cmpint (message_n (ma), ==, 5);
    g_assert_cmpint (message_n (mb), ==, 5);
    text = herald_test_node_api (&fx.a, "POST", "/api/publish", body, &status);
    g_assert_cmpuint (status, ==, 200);
    local = herald_test_ws_read_type (on_a, "message");
    g_assert_cmpint (message_n (local), ==, 7);
    g_assert_cmpint (metric (&fx.a, "herald_redis_cluster_local_publishes_total"), >=, 1);
  }

  start_master (2);
  HERALD_TEST_WAIT_UNTIL (cluster_ok (2), 10000);
  HERALD_TEST_WAIT_UNTIL (herald_test_node_healthy (&fx.a) && herald_test_node_healthy (&fx.b),
                          10000);
  {
    g_autofree char *topic = herald_rck_channel_key (dead, "");
    g_autoptr (JsonObject) mb = NULL;
    g_autoptr (GPtrArray) messages
        = g_ptr_array_new_with_free_func ((GDestroyNotify)json_object_unref);
    g_autoptr (JsonObject) done = NULL;
    HeraldTestClient *client = NULL;

    HERALD_TEST_WAIT_UNTIL (shardnumsub (2, topic) == 2, 5000);
    herald_test_node_publish (&fx.a, dead, "{\"n\":8}");
    do
      {
        g_clear_pointer (&mb, json_object_unref);
        mb = herald_test_ws_read_type (on_b, "message");
      }
    while (message_n (mb) != 8);
    /* Its history was lost with it: the old epoch is not recovered */
    done = resume (&fx.b, dead, 1, old_epoch, &client, messages);
    g_assert_false (json_object_get_boolean_member (done, "recovered"));
    g_assert_cmpstr (herald_test_json_get_string (done, "epoch"), !=, old_epoch);
    herald_test_client_free (client);
  }
  herald_test_client_free (on_a);
  herald_test_client_free (on_b);
}

/* Master 1 dies; its replica is promoted: the nodes follow the failover
 * by themselves, and since the replica had every write, the channel keeps
 * its epoch and offsets and a resume is recovered across it */
static void
test_failover (void)
{
  g_autofree char *channel = channel_on ("fo", 1);
  g_autofree char *topic = herald_rck_channel_key (channel, "");
  g_autofree char *meta = herald_rck_channel_key (channel, ":m");
  g_autofree char *epoch = NULL;
  HeraldTestClient *on_a = herald_test_node_ws_open (&fx.a, NULL, NULL);
  HeraldTestClient *on_b = herald_test_node_ws_open (&fx.b, NULL, NULL);
  g_autoptr (GPtrArray) messages
      = g_ptr_array_new_with_free_func ((GDestroyNotify)json_object_unref);
  g_autoptr (JsonObject) done = NULL;
  HeraldTestClient *client = NULL;

  add_replica ();
  herald_test_ws_subscribe (on_a, channel);
  herald_test_ws_subscribe (on_b, channel);
  for (guint i = 1; i <= 3; i++)
    {
      g_autofree char *data = g_strdup_printf ("{\"n\":%u}", i);
      g_assert_cmpuint (herald_test_node_publish (&fx.a, channel, data), ==, i);
      json_object_unref (herald_test_ws_read_type (on_a, "message"));
      json_object_unref (herald_test_ws_read_type (on_b, "message"));
    }
  epoch = redis_string (1, "HGET %s epoch", meta);
  freeReplyObject (redis_cmd (1, "WAIT 1 2000"));

  herald_test_redis_stop (&fx.redis[1]);
  HERALD_TEST_WAIT_UNTIL (info_has (REPLICA, "INFO replication", "role:master"), 15000);
  HERALD_TEST_WAIT_UNTIL (herald_test_node_healthy (&fx.a) && herald_test_node_healthy (&fx.b),
                          10000);
  HERALD_TEST_WAIT_UNTIL (shardnumsub (REPLICA, topic) == 2, 5000);
  g_assert_cmpuint (herald_test_node_publish (&fx.b, channel, "{\"n\":4}"), ==, 4);
  {
    g_autoptr (JsonObject) ma = herald_test_ws_read_type (on_a, "message");
    g_autoptr (JsonObject) mb = herald_test_ws_read_type (on_b, "message");

    g_assert_cmpint (message_n (ma), ==, 4);
    g_assert_cmpint (message_n (mb), ==, 4);
  }
  done = resume (&fx.b, channel, 1, epoch, &client, messages);
  g_assert_true (json_object_get_boolean_member (done, "recovered"));
  g_assert_cmpstr (herald_test_json_get_string (done, "epoch"), ==, epoch);
  g_assert_cmpuint (messages->len, ==, 3);
  herald_test_client_free (client);
  herald_test_client_free (on_a);
  herald_test_client_free (on_b);
}

/* The old master 1 comes back as the replica of its successor; stopped
 * while two more messages go out, it is promoted without them when its
 * master dies. The nodes see that the new master is behind what they
 * delivered: the channel starts a new epoch, and a resume of the old one is
 * told recovered:false, not given a silent gap */
static void
test_failover_lagging (void)
{
  g_autofree char *channel = channel_on ("lag", REPLICA);
  g_autofree char *topic = herald_rck_channel_key (channel, "");
  g_autofree char *meta = herald_rck_channel_key (channel, ":m");
  g_autofree char *epoch = NULL;
  HeraldTestClient *on_a = herald_test_node_ws_open (&fx.a, NULL, NULL);
  HeraldTestClient *on_b = herald_test_node_ws_open (&fx.b, NULL, NULL);
  g_autoptr (GPtrArray) messages
      = g_ptr_array_new_with_free_func ((GDestroyNotify)json_object_unref);
  g_autoptr (JsonObject) done = NULL;
  HeraldTestClient *client = NULL;

  start_master (1);
  HERALD_TEST_WAIT_UNTIL (info_has (1, "INFO replication", "master_link_status:up"), 15000);
  herald_test_ws_subscribe (on_a, channel);
  herald_test_ws_subscribe (on_b, channel);
  g_assert_cmpuint (herald_test_node_publish (&fx.a, channel, "{\"n\":1}"), ==, 1);
  freeReplyObject (redis_cmd (REPLICA, "WAIT 1 2000"));
  epoch = redis_string (REPLICA, "HGET %s epoch", meta);
  /* Stopped, and cut off: what follows never reaches it */
  g_subprocess_send_signal (fx.redis[1], SIGSTOP);
  freeReplyObject (redis_cmd (REPLICA, "CLIENT KILL TYPE replica"));
  for (guint n = 1; n <= 3; n++)
    {
      g_autofree char *data = g_strdup_printf ("{\"n\":%u}", n);

      if (n > 1)
        g_assert_cmpuint (herald_test_node_publish (&fx.b, channel, data), ==, n);
      json_object_unref (herald_test_ws_read_type (on_a, "message"));
      json_object_unref (herald_test_ws_read_type (on_b, "message"));
    }
  herald_test_redis_stop (&fx.redis[REPLICA]);
  g_subprocess_send_signal (fx.redis[1], SIGCONT);
  HERALD_TEST_WAIT_UNTIL (info_has (1, "INFO replication", "role:master"), 15000);
  HERALD_TEST_WAIT_UNTIL (herald_test_node_healthy (&fx.a) && herald_test_node_healthy (&fx.b),
                          10000);
  /* The nodes re-read the slot map every 5 s while no master is down: allow
   * for one such period plus the catch-up on a busy machine. */
  HERALD_TEST_WAIT_UNTIL (shardnumsub (1, topic) == 2, 15000);
  HERALD_TEST_WAIT_UNTIL (({
                            g_autofree char *now = redis_string (1, "HGET %s epoch", meta);
                            g_strcmp0 (now, epoch) != 0;
                          }),
                          15000);
  g_assert_cmpuint (herald_test_node_publish (&fx.a, channel, "{\"n\":4}"), ==, 1);
  {
    g_autoptr (JsonObject) ma = herald_test_ws_read_type (on_a, "message");
    g_autoptr (JsonObject) mb = herald_test_ws_read_type (on_b, "message");

    g_assert_cmpint (message_n (ma), ==, 4);
    g_assert_cmpint (message_n (mb), ==, 4);
  }
  g_assert_cmpint (metric (&fx.a, "herald_redis_cluster_epoch_resets_total")
                       + metric (&fx.b, "herald_redis_cluster_epoch_resets_total"),
                   >=, 1);
  done = resume (&fx.b, channel, 3, epoch, &client, messages);
  g_assert_false (json_object_get_boolean_member (done, "recovered"));
  g_assert_cmpstr (herald_test_json_get_string (done, "epoch"), !=, epoch);
  herald_test_client_free (client);
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
  g_autofree char *redis_cli = g_find_program_in_path ("redis-cli");
  int status;

  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/redis-cluster/parse", test_parse);
  if (redis_server == NULL || redis_cli == NULL)
    {
      g_printerr ("redis-server or redis-cli not found (scripts/install-deps.sh installs them)\n");
      return g_test_run ();
    }

  g_timeout_add (20, tick, NULL);
  fx.dir = g_dir_make_tmp ("herald-cluster-XXXXXX", &error);
  g_assert_no_error (error);
  for (guint m = 0; m < N_MASTERS; m++)
    {
      fx.port[m] = herald_test_free_port ();
      start_master (m);
    }
  create_cluster ();
  conf = g_build_filename (fx.dir, "herald.conf", NULL);
  /* One seed is enough: the map names the others */
  conf_text = g_strdup_printf ("[auth]\njwt-secret=" SECRET "\nanonymous=true\n[history]\n"
                               "size=10\nttl=60\n[namespace.jl]\njoin-leave=true\nconflate=true\n"
                               "[redis]\ncluster=127.0.0.1:%u\n"
                               "password=" PASSWORD "\n",
                               fx.port[1]);
  g_assert_true (g_file_set_contents (conf, conf_text, -1, NULL));
  herald_test_node_start (&fx.a, conf, NULL, API_KEY, SECRET);
  herald_test_node_start (&fx.b, conf, NULL, API_KEY, SECRET);
  HERALD_TEST_WAIT_UNTIL (herald_test_node_healthy (&fx.a) && herald_test_node_healthy (&fx.b),
                          10000);

  g_test_add_func ("/redis-cluster/channels", test_channels);
  g_test_add_func ("/redis-cluster/direct", test_direct);
  g_test_add_func ("/redis-cluster/user-count", test_user_count);
  g_test_add_func ("/redis-cluster/presence", test_presence);
  g_test_add_func ("/redis-cluster/join-leave-key", test_join_leave_and_key);
  g_test_add_func ("/redis-cluster/recovery", test_recovery);
  g_test_add_func ("/redis-cluster/moved", test_moved);
  g_test_add_func ("/redis-cluster/master-down", test_master_down);
  g_test_add_func ("/redis-cluster/failover", test_failover);
  g_test_add_func ("/redis-cluster/failover-lagging", test_failover_lagging);
  status = g_test_run ();

  herald_test_node_stop (&fx.a);
  herald_test_node_stop (&fx.b);
  for (guint m = 0; m <= REPLICA; m++)
    if (fx.redis[m] != NULL)
      herald_test_redis_stop (&fx.redis[m]);
  {
    g_autoptr (GDir) dir = g_dir_open (fx.dir, 0, NULL);
    const char *name;

    while (dir && (name = g_dir_read_name (dir)) != NULL)
      {
        g_autofree char *path = g_build_filename (fx.dir, name, NULL);
        g_unlink (path);
      }
  }
  g_rmdir (fx.dir);
  g_free (fx.dir);
  return status;
}
