/* test-redis-shards.c: [redis] shards, two real redis-server processes
 * behind two heraldd nodes, and the shard choice itself.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <glib/gstdio.h>
#include <hiredis/hiredis.h>
#include <json-glib/json-glib.h>

#include "herald-jwt.h"
#include "herald-redis-shards.h"
#include "herald-redis-slots.h"
#include "herald-test-server.h"
#include "herald-test-utils.h"

#define API_KEY "shards-test-key"
#define AUTH "Authorization: Bearer " API_KEY "\r\n"
#define SECRET "s3cret"
#define N_CHANNELS 8
#define REDIS_PASSWORD "shard-pass" /* [redis] password, for both shards */

typedef struct
{
  GSubprocess *process;
  GDataInputStream *stderr_lines;
  GString *log;
  HeraldTestServer srv; /* only host, port and url are used */
  gboolean eof;
} Node;

static struct
{
  GSubprocess *redis[2];
  guint16 redis_port[2];
  char *urls[3]; /* the shards' URLs, as configured; NULL-terminated */
  char *dir;
  Node a, b;
} fx;

/* ---- processes ---- */

/* Children die with the test, even when it aborts. */
static void
die_with_parent (gpointer data)
{
  prctl (PR_SET_PDEATHSIG, SIGKILL);
}

static guint16
free_port (void)
{
  g_autoptr (GSocket) socket
      = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, NULL);
  g_autoptr (GInetAddress) lo = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr (GSocketAddress) sa = g_inet_socket_address_new (lo, 0);
  g_autoptr (GSocketAddress) bound = NULL;

  g_assert_true (g_socket_bind (socket, sa, TRUE, NULL));
  bound = g_socket_get_local_address (socket, NULL);
  return g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound));
}

static redisContext *
redis_connect (guint shard)
{
  struct timeval tv = { 1, 0 };
  redisContext *c = redisConnectWithTimeout ("127.0.0.1", fx.redis_port[shard], tv);

  if (c && !c->err)
    {
      redisReply *auth;

      redisSetTimeout (c, tv);
      auth = redisCommand (c, "AUTH %s", REDIS_PASSWORD);
      if (auth)
        freeReplyObject (auth);
    }
  return c;
}

/* One command to the test's own Redis connection; NULL when Redis is down. */
static redisReply *
redis_cmd (guint shard, const char *format, ...)
{
  redisContext *c = redis_connect (shard);
  redisReply *reply = NULL;
  va_list ap;

  if (c && !c->err)
    {
      va_start (ap, format);
      reply = redisvCommand (c, format, ap);
      va_end (ap);
    }
  if (c)
    redisFree (c);
  return reply;
}

static gboolean
redis_answers (guint shard)
{
  redisReply *reply = redis_cmd (shard, "PING");
  gboolean ok = reply != NULL && reply->type == REDIS_REPLY_STATUS;

  if (reply)
    freeReplyObject (reply);
  return ok;
}

static long long
redis_numsub (guint shard, const char *topic)
{
  redisReply *reply = redis_cmd (shard, "PUBSUB NUMSUB %s", topic);
  long long n = -1;

  if (reply && reply->type == REDIS_REPLY_ARRAY && reply->elements == 2)
    n = reply->element[1]->integer;
  if (reply)
    freeReplyObject (reply);
  return n;
}

static void
start_redis (guint shard)
{
  g_autofree char *port = g_strdup_printf ("%u", fx.redis_port[shard]);
  g_autoptr (GError) error = NULL;

  g_autoptr (GSubprocessLauncher) launcher = g_subprocess_launcher_new (
      G_SUBPROCESS_FLAGS_STDOUT_SILENCE | G_SUBPROCESS_FLAGS_STDERR_SILENCE);

  g_subprocess_launcher_set_child_setup (launcher, die_with_parent, NULL, NULL);
  fx.redis[shard] = g_subprocess_launcher_spawn (
      launcher, &error, "redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "",
      "--appendonly", "no", "--requirepass", REDIS_PASSWORD, NULL);
  g_assert_no_error (error);
  HERALD_TEST_WAIT_UNTIL (redis_answers (shard), 5000);
}

static void
stop_redis (guint shard)
{
  g_subprocess_force_exit (fx.redis[shard]);
  g_subprocess_wait (fx.redis[shard], NULL, NULL);
  g_clear_object (&fx.redis[shard]);
}

static void read_next_line (Node *node);

static void
on_line (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Node *node = user_data;
  g_autofree char *line = g_data_input_stream_read_line_finish_utf8 (G_DATA_INPUT_STREAM (source),
                                                                     result, NULL, NULL);
  const char *url;

  if (line == NULL)
    {
      node->eof = TRUE;
      return;
    }
  g_string_append_printf (node->log, "%s\n", line);
  if (g_test_verbose ())
    g_printerr ("[%p] %s\n", node, line);
  url = strstr (line, "listening on http://");
  if (url && node->srv.port == 0)
    {
      const char *colon = strrchr (url, ':');
      node->srv.port = (guint16)g_ascii_strtoull (colon + 1, NULL, 10);
      node->srv.url = g_strdup (url + strlen ("listening on "));
    }
  read_next_line (node);
}

static void
read_next_line (Node *node)
{
  g_data_input_stream_read_line_async (node->stderr_lines, G_PRIORITY_DEFAULT, NULL, on_line, node);
}

static void
start_node (Node *node)
{
  g_autoptr (GSubprocessLauncher) launcher = g_subprocess_launcher_new (
      G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_MERGE);
  g_autofree char *conf = g_build_filename (fx.dir, "herald.conf", NULL);
  const char *heraldd = g_getenv ("HERALDD");
  g_autoptr (GError) error = NULL;

  g_assert_nonnull (heraldd);
  g_subprocess_launcher_unsetenv (launcher, "REDIS_URL");
  g_subprocess_launcher_setenv (launcher, "HERALD_API_KEY", API_KEY, TRUE);
  g_subprocess_launcher_unsetenv (launcher, "HERALD_JWT_SECRET");
  g_subprocess_launcher_set_child_setup (launcher, die_with_parent, NULL, NULL);
  node->process = g_subprocess_launcher_spawn (launcher, &error, heraldd, "--config", conf,
                                               "--listen", "127.0.0.1:0", "--bus", "none",
                                               "--workers", "2", "--verbose", NULL);
  g_assert_no_error (error);
  node->log = g_string_new (NULL);
  node->stderr_lines = g_data_input_stream_new (g_subprocess_get_stdout_pipe (node->process));
  node->srv.host = g_strdup ("127.0.0.1");
  node->srv.port = 0;
  read_next_line (node);
  HERALD_TEST_WAIT_UNTIL (node->srv.port != 0 || node->eof, 10000);
  g_assert_cmpuint (node->srv.port, !=, 0);
}

static void
stop_node (Node *node)
{
  g_subprocess_send_signal (node->process, SIGTERM);
  HERALD_TEST_WAIT_UNTIL (node->eof, 10000);
  g_subprocess_wait (node->process, NULL, NULL);
  g_clear_object (&node->process);
  g_clear_object (&node->stderr_lines);
  g_string_free (node->log, TRUE);
  g_free (node->srv.host);
  g_free (node->srv.url);
}

/* ---- talking to nodes ---- */

static char *
api (Node *node, const char *method, const char *path, const char *body, guint *status)
{
  return herald_test_http (&node->srv, method, path, AUTH, body, status);
}

static gboolean
node_healthy (Node *node)
{
  guint status = 0;
  g_autofree char *body = herald_test_http (&node->srv, "GET", "/healthz", NULL, NULL, &status);
  return status == 200;
}

static guint64
publish (Node *node, const char *channel, const char *data)
{
  g_autofree char *body = g_strdup_printf ("{\"channel\":\"%s\",\"data\":%s}", channel, data);
  g_autoptr (JsonNode) answer = NULL;
  g_autofree char *text = NULL;
  guint status = 0;

  text = api (node, "POST", "/api/publish", body, &status);
  g_assert_cmpuint (status, ==, 200);
  answer = json_from_string (text, NULL);
  g_assert_nonnull (answer);
  return json_object_get_int_member (json_node_get_object (answer), "offset");
}

static HeraldTestClient *
ws_open (Node *node, const char *user, char **connection_id)
{
  g_autoptr (GBytes) secret = g_bytes_new_static (SECRET, strlen (SECRET));
  g_autofree char *claims = g_strdup_printf ("{\"sub\":\"%s\"}", user ? user : "");
  g_autofree char *token = user ? herald_jwt_sign_hs256 (secret, claims) : NULL;
  g_autofree char *path = token ? g_strdup_printf ("/ws?token=%s", token) : g_strdup ("/ws");

  return herald_test_ws_open (&node->srv, path, connection_id);
}

static JsonObject *
read_type (HeraldTestClient *client, const char *type)
{
  for (;;)
    {
      JsonObject *obj = herald_test_ws_read_json (client);
      g_assert_nonnull (obj);
      if (g_strcmp0 (herald_test_json_get_string (obj, "type"), type) == 0)
        return obj;
      json_object_unref (obj);
    }
}

static void
subscribe (HeraldTestClient *client, const char *channel)
{
  g_autofree char *req = g_strdup_printf ("{\"type\":\"subscribe\",\"channel\":\"%s\"}", channel);
  g_autoptr (JsonObject) reply = NULL;

  herald_test_ws_send_text (client, req);
  reply = read_type (client, "subscribed");
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
  HeraldTestClient *on_a = ws_open (&fx.a, NULL, NULL);
  HeraldTestClient *on_b = ws_open (&fx.b, NULL, NULL);
  guint on_shard[2] = { 0 };
  gboolean seen_a[N_CHANNELS] = { FALSE }, seen_b[N_CHANNELS] = { FALSE };

  for (guint i = 0; i < N_CHANNELS; i++)
    {
      g_autofree char *channel = g_strdup_printf ("sh%u", i);

      subscribe (on_a, channel);
      subscribe (on_b, channel);
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

      g_assert_cmpuint (publish (i % 2 ? &fx.a : &fx.b, channel, data), ==, 1);
    }
  /* Exactly once on both nodes: every channel's message, then nothing else */
  for (guint i = 0; i < N_CHANNELS; i++)
    {
      g_autoptr (JsonObject) ma = read_type (on_a, "message");
      g_autoptr (JsonObject) mb = read_type (on_b, "message");

      g_assert_false (seen_a[message_n (ma)]);
      g_assert_false (seen_b[message_n (mb)]);
      seen_a[message_n (ma)] = seen_b[message_n (mb)] = TRUE;
    }
  publish (&fx.a, "sh0", "{\"n\":100}");
  {
    g_autoptr (JsonObject) ma = read_type (on_a, "message");
    g_autoptr (JsonObject) mb = read_type (on_b, "message");

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
      client = ws_open (&fx.a, user, &id);
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
      body = api (&fx.b, "POST", send, "{\"data\":{\"n\":10}}", &status);
      g_assert_cmpuint (status, ==, 200);
      {
        g_autoptr (JsonObject) m = read_type (client, "message");
        g_assert_cmpint (message_n (m), ==, 10);
      }
      g_clear_pointer (&body, g_free);
      path = g_strdup_printf ("/api/connections/%s/send", id);
      body = api (&fx.b, "POST", path, "{\"data\":{\"n\":11}}", &status);
      g_assert_cmpuint (status, ==, 200);
      {
        g_autoptr (JsonObject) m = read_type (client, "message");
        g_assert_cmpint (message_n (m), ==, 11);
      }
      g_clear_pointer (&body, g_free);
      body = api (&fx.b, "POST", "/api/broadcast", "{\"data\":{\"n\":12}}", &status);
      g_assert_cmpuint (status, ==, 200);
      {
        g_autoptr (JsonObject) m = read_type (client, "message");
        g_assert_cmpint (message_n (m), ==, 12);
      }
      g_clear_pointer (&path, g_free);
      path = g_strdup_printf ("/api/connections/%s", id);
      g_clear_pointer (&body, g_free);
      body = api (&fx.b, "DELETE", path, NULL, &status);
      g_assert_cmpuint (status, <, 300);
      g_assert_cmpuint (herald_test_ws_wait_close (client), ==, 4004);
      herald_test_client_free (client);
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
      o1 = publish (&fx.b, channel, "{\"n\":1}");
      publish (&fx.b, channel, "{\"n\":2}");
      publish (&fx.b, channel, "{\"n\":3}");

      client = ws_open (&fx.a, NULL, NULL);
      req = g_strdup_printf (
          "{\"type\":\"subscribe\",\"channel\":\"%s\",\"since\":%" G_GUINT64_FORMAT "}", channel,
          o1);
      herald_test_ws_send_text (client, req);
      m2 = read_type (client, "message");
      m3 = read_type (client, "message");
      done = read_type (client, "subscribed");
      g_assert_cmpint (message_n (m2), ==, 2);
      g_assert_cmpint (message_n (m3), ==, 3);
      g_assert_true (json_object_get_boolean_member (done, "recovered"));
      g_assert_cmpint (json_object_get_int_member (done, "offset"), ==, (gint64)o1 + 2);
      herald_test_client_free (client);
    }
}

/* One shard down: the other shard's channels still cross nodes, and local
 * delivery on the dead shard's channels goes on */
static void
test_shard_down (void)
{
  HeraldTestClient *on_a = ws_open (&fx.a, NULL, NULL);
  HeraldTestClient *on_b = ws_open (&fx.b, NULL, NULL);
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
  subscribe (on_a, alive);
  subscribe (on_b, alive);
  subscribe (on_a, dead);
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

    publish (&fx.a, alive, "{\"n\":5}");
    mb = read_type (on_b, "message");
    ma = read_type (on_a, "message");
    g_assert_cmpint (message_n (mb), ==, 5);
    g_assert_cmpint (message_n (ma), ==, 5);
    text = api (&fx.a, "POST", "/api/publish", body, &status);
    g_assert_cmpuint (status, ==, 200);
    local = read_type (on_a, "message");
    g_assert_cmpint (message_n (local), ==, 7);
  }
  start_redis (1);
  HERALD_TEST_WAIT_UNTIL (node_healthy (&fx.a) && node_healthy (&fx.b), 10000);
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
      fx.redis_port[s] = free_port ();
      fx.urls[s] = g_strdup_printf ("redis://127.0.0.1:%u", fx.redis_port[s]);
      start_redis (s);
    }
  conf = g_build_filename (fx.dir, "herald.conf", NULL);
  conf_text = g_strdup_printf ("[auth]\njwt-secret=" SECRET "\nanonymous=true\n[history]\n"
                               "size=10\nttl=60\n[redis]\nshards=%s;%s\n"
                               "password=" REDIS_PASSWORD "\n",
                               fx.urls[0], fx.urls[1]);
  g_assert_true (g_file_set_contents (conf, conf_text, -1, NULL));
  start_node (&fx.a);
  start_node (&fx.b);
  HERALD_TEST_WAIT_UNTIL (node_healthy (&fx.a) && node_healthy (&fx.b), 10000);

  g_test_add_func ("/redis-shards/channels", test_channels);
  g_test_add_func ("/redis-shards/direct", test_direct);
  g_test_add_func ("/redis-shards/recovery", test_recovery);
  g_test_add_func ("/redis-shards/shard-down", test_shard_down);
  status = g_test_run ();

  stop_node (&fx.a);
  stop_node (&fx.b);
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
