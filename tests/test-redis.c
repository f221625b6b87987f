/* test-redis.c: two heraldd processes sharing one real redis-server.
 *
 * One redis-server (loopback, free port, no persistence) and two heraldd
 * nodes (the built binary, $HERALDD) are started once for the whole file;
 * each test talks to both nodes over raw sockets and to Redis with hiredis.
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
#include "herald-redis-engine.h"
#include "herald-test-server.h"
#include "herald-test-utils.h"

#define API_KEY "redis-test-key"
#define AUTH "Authorization: Bearer " API_KEY "\r\n"
#define SECRET "s3cret"

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
  GSubprocess *redis;
  guint16 redis_port;
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
redis_connect (void)
{
  struct timeval tv = { 1, 0 };
  redisContext *c = redisConnectWithTimeout ("127.0.0.1", fx.redis_port, tv);

  if (c && !c->err)
    redisSetTimeout (c, tv);
  return c;
}

/* One command to the test's own Redis connection; NULL when Redis is down. */
static redisReply *
redis_cmd (const char *format, ...)
{
  redisContext *c = redis_connect ();
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
redis_answers (void)
{
  redisReply *reply = redis_cmd ("PING");
  gboolean ok = reply != NULL && reply->type == REDIS_REPLY_STATUS;

  if (reply)
    freeReplyObject (reply);
  return ok;
}

static long long
redis_numsub (const char *topic)
{
  redisReply *reply = redis_cmd ("PUBSUB NUMSUB %s", topic);
  long long n = -1;

  if (reply && reply->type == REDIS_REPLY_ARRAY && reply->elements == 2)
    n = reply->element[1]->integer;
  if (reply)
    freeReplyObject (reply);
  return n;
}

static void
start_redis (void)
{
  g_autofree char *port = g_strdup_printf ("%u", fx.redis_port);
  g_autoptr (GError) error = NULL;

  g_autoptr (GSubprocessLauncher) launcher = g_subprocess_launcher_new (
      G_SUBPROCESS_FLAGS_STDOUT_SILENCE | G_SUBPROCESS_FLAGS_STDERR_SILENCE);

  g_subprocess_launcher_set_child_setup (launcher, die_with_parent, NULL, NULL);
  fx.redis
      = g_subprocess_launcher_spawn (launcher, &error, "redis-server", "--port", port, "--bind",
                                     "127.0.0.1", "--save", "", "--appendonly", "no", NULL);
  g_assert_no_error (error);
  HERALD_TEST_WAIT_UNTIL (redis_answers (), 5000);
}

static void
stop_redis (void)
{
  g_subprocess_force_exit (fx.redis);
  g_subprocess_wait (fx.redis, NULL, NULL);
  g_clear_object (&fx.redis);
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
  g_autofree char *redis_url = g_strdup_printf ("redis://127.0.0.1:%u", fx.redis_port);
  g_autofree char *conf = g_build_filename (fx.dir, "herald.conf", NULL);
  const char *heraldd = g_getenv ("HERALDD");
  g_autoptr (GError) error = NULL;

  g_assert_nonnull (heraldd);
  g_subprocess_launcher_setenv (launcher, "REDIS_URL", redis_url, TRUE);
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

/* Each node subscribes to a channel's topic once its first local subscriber appears. */
static void
wait_numsub (const char *channel, long long n)
{
  g_autofree char *topic = g_strconcat ("herald:ch:", channel, NULL);
  HERALD_TEST_WAIT_UNTIL (redis_numsub (topic) == n, 5000);
}

static gint64
message_n (JsonObject *msg)
{
  return json_object_get_int_member (json_object_get_object_member (msg, "data"), "n");
}

/* ---- tests ---- */

static void
test_url (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (HeraldRedisUrl) u = herald_redis_url_parse ("redis://:pw@example.org:6380/3", &error);
  g_autoptr (HeraldRedisUrl) d = NULL;
  g_autoptr (HeraldRedisUrl) s = NULL;
  HeraldRedisUrl *bad;

  g_assert_no_error (error);
  g_assert_cmpstr (u->host, ==, "example.org");
  g_assert_cmpint (u->port, ==, 6380);
  g_assert_cmpstr (u->password, ==, "pw");
  g_assert_cmpint (u->db, ==, 3);

  d = herald_redis_url_parse ("redis://localhost", &error);
  g_assert_no_error (error);
  g_assert_cmpint (d->port, ==, 6379);
  g_assert_cmpint (d->db, ==, 0);
  g_assert_null (d->password);

  s = herald_redis_url_parse ("unix:///run/redis/redis.sock?db=2&password=x", &error);
  g_assert_no_error (error);
  g_assert_null (s->host);
  g_assert_cmpstr (s->path, ==, "/run/redis/redis.sock");
  g_assert_cmpint (s->db, ==, 2);
  g_assert_cmpstr (s->password, ==, "x");

  bad = herald_redis_url_parse ("rediss://host", &error);
  g_assert_null (bad);
  g_assert_error (error, HERALD_ERROR, HERALD_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  bad = herald_redis_url_parse ("redis://host/notanumber", &error);
  g_assert_null (bad);
  g_assert_error (error, HERALD_ERROR, HERALD_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  bad = herald_redis_url_parse ("http://host", &error);
  g_assert_null (bad);
  g_clear_error (&error);
}

static void
test_channel (void)
{
  HeraldTestClient *on_a = ws_open (&fx.a, NULL, NULL);
  HeraldTestClient *on_b = ws_open (&fx.b, NULL, NULL);
  g_autoptr (JsonObject) m1 = NULL;
  g_autoptr (JsonObject) m2 = NULL;
  g_autoptr (JsonObject) b1 = NULL;
  g_autoptr (JsonObject) b2 = NULL;
  guint64 o1, o2;

  subscribe (on_a, "news");
  subscribe (on_b, "news");
  wait_numsub ("news", 2);

  o1 = publish (&fx.b, "news", "{\"n\":1}");
  o2 = publish (&fx.a, "news", "{\"n\":2}");
  g_assert_cmpuint (o2, ==, o1 + 1); /* one offset sequence for the cluster */

  /* Exactly once, in order, on both nodes: a duplicate of 1 would come before 2. */
  m1 = read_type (on_a, "message");
  m2 = read_type (on_a, "message");
  g_assert_cmpint (message_n (m1), ==, 1);
  g_assert_cmpint (json_object_get_int_member (m1, "offset"), ==, (gint64)o1);
  g_assert_cmpint (message_n (m2), ==, 2);
  b1 = read_type (on_b, "message");
  b2 = read_type (on_b, "message");
  g_assert_cmpint (message_n (b1), ==, 1);
  g_assert_cmpint (message_n (b2), ==, 2);

  herald_test_client_free (on_a);
  herald_test_client_free (on_b);
  /* The last local subscriber left: the nodes stop listening. */
  wait_numsub ("news", 0);
}

static void
test_direct (void)
{
  g_autofree char *id = NULL;
  HeraldTestClient *alice = ws_open (&fx.a, "alice", &id);
  g_autofree char *path = NULL;
  g_autofree char *body = NULL;
  g_autoptr (JsonObject) m = NULL;
  g_autoptr (JsonObject) c = NULL;
  g_autoptr (JsonObject) all = NULL;
  guint status = 0;

  /* The registry entry is written asynchronously after the open. */
  HERALD_TEST_WAIT_UNTIL (({
                            redisReply *r = redis_cmd ("HEXISTS herald:conns %s", id);
                            gboolean ok = r && r->type == REDIS_REPLY_INTEGER && r->integer == 1;
                            if (r)
                              freeReplyObject (r);
                            ok;
                          }),
                          5000);

  body = api (&fx.b, "POST", "/api/users/alice/send", "{\"data\":{\"n\":10}}", &status);
  g_assert_cmpuint (status, ==, 200);
  m = read_type (alice, "message");
  g_assert_cmpint (message_n (m), ==, 10);
  g_assert_false (json_object_has_member (m, "channel"));

  g_clear_pointer (&body, g_free);
  path = g_strdup_printf ("/api/connections/%s/send", id);
  body = api (&fx.b, "POST", path, "{\"data\":{\"n\":11}}", &status);
  g_assert_cmpuint (status, ==, 200);
  c = read_type (alice, "message");
  g_assert_cmpint (message_n (c), ==, 11);

  g_clear_pointer (&body, g_free);
  body = api (&fx.b, "POST", "/api/broadcast", "{\"data\":{\"n\":12}}", &status);
  g_assert_cmpuint (status, ==, 200);
  all = read_type (alice, "message");
  g_assert_cmpint (message_n (all), ==, 12);

  /* Unknown everywhere: 404 from either node. */
  g_clear_pointer (&body, g_free);
  body = api (&fx.b, "POST", "/api/connections/nosuchconnection/send", "{\"data\":1}", &status);
  g_assert_cmpuint (status, ==, 404);
  g_clear_pointer (&body, g_free);
  body = api (&fx.b, "DELETE", "/api/connections/nosuchconnection", NULL, &status);
  g_assert_cmpuint (status, ==, 404);

  /* Closed from the other node with 4004. */
  g_clear_pointer (&path, g_free);
  path = g_strdup_printf ("/api/connections/%s", id);
  g_clear_pointer (&body, g_free);
  body = api (&fx.b, "DELETE", path, NULL, &status);
  g_assert_cmpuint (status, <, 300);
  g_assert_cmpuint (herald_test_ws_wait_close (alice), ==, 4004);
  herald_test_client_free (alice);
}

static void
test_recovery (void)
{
  HeraldTestClient *client = NULL;
  g_autoptr (JsonObject) m2 = NULL;
  g_autoptr (JsonObject) m3 = NULL;
  g_autoptr (JsonObject) done = NULL;
  guint64 o1;

  o1 = publish (&fx.b, "hist", "{\"n\":1}");
  publish (&fx.b, "hist", "{\"n\":2}");
  publish (&fx.b, "hist", "{\"n\":3}");

  /* A client that saw message 1 on node B comes back on node A. */
  client = ws_open (&fx.a, NULL, NULL);
  {
    g_autofree char *req = g_strdup_printf (
        "{\"type\":\"subscribe\",\"channel\":\"hist\",\"since\":%" G_GUINT64_FORMAT "}", o1);
    herald_test_ws_send_text (client, req);
  }
  m2 = read_type (client, "message");
  m3 = read_type (client, "message");
  done = read_type (client, "subscribed");
  g_assert_cmpint (message_n (m2), ==, 2);
  g_assert_cmpint (message_n (m3), ==, 3);
  g_assert_true (json_object_get_boolean_member (done, "recovered"));
  g_assert_cmpint (json_object_get_int_member (done, "offset"), ==, (gint64)o1 + 2);
  herald_test_client_free (client);
}

/* [namespace.small] history-size=2 holds in Redis too: of 4 messages
 * published on node B, node A recovers only the last 2, so a client that
 * saw the first one is told it missed some. */
static void
test_namespace_history (void)
{
  HeraldTestClient *client = NULL;
  g_autoptr (JsonObject) done = NULL;
  g_autofree char *req = NULL;
  guint64 o1 = publish (&fx.b, "small:h", "{\"n\":1}");

  for (int n = 2; n <= 4; n++)
    publish (&fx.b, "small:h", "{\"n\":0}");
  client = ws_open (&fx.a, NULL, NULL);
  req = g_strdup_printf (
      "{\"type\":\"subscribe\",\"channel\":\"small:h\",\"since\":%" G_GUINT64_FORMAT "}", o1);
  herald_test_ws_send_text (client, req);
  done = read_type (client, "subscribed");
  g_assert_false (json_object_get_boolean_member (done, "recovered"));
  g_clear_pointer (&req, g_free);
  /* Since the second: the last two are all it needs */
  req = g_strdup_printf (
      "{\"type\":\"subscribe\",\"channel\":\"small:h\",\"since\":%" G_GUINT64_FORMAT "}", o1 + 2);
  herald_test_client_free (client);
  client = ws_open (&fx.a, NULL, NULL);
  herald_test_ws_send_text (client, req);
  g_clear_pointer (&done, json_object_unref);
  done = read_type (client, "subscribed");
  g_assert_true (json_object_get_boolean_member (done, "recovered"));
  herald_test_client_free (client);
}

static void
test_sse_resume (void)
{
  HeraldTestClient *client = herald_test_client_connect (&fx.b.srv);
  g_autofree char *head = NULL;
  g_autofree char *first = NULL;
  g_autofree char *again = NULL;
  g_autofree char *request = NULL;
  g_autofree char *last_id = NULL;
  const char *id_line;
  guint status;

  request = g_strdup ("GET /events?channel=sse HTTP/1.1\r\nHost: x\r\n\r\n");
  herald_test_client_send_raw (client, request, strlen (request));
  g_clear_pointer (&request, g_free);
  status = herald_test_client_read_head (client, &head);
  g_assert_cmpuint (status, ==, 200);
  wait_numsub ("sse", 1);
  publish (&fx.a, "sse", "{\"n\":1}");
  do
    {
      g_free (first);
      first = herald_test_sse_read_event (client);
      g_assert_nonnull (first);
    }
  while (strstr (first, "event: message") == NULL);
  id_line = strstr (first, "id: ");
  g_assert_nonnull (id_line);
  last_id = g_strndup (id_line + 4, strcspn (id_line + 4, "\n"));
  herald_test_client_free (client);

  publish (&fx.a, "sse", "{\"n\":2}");

  /* Reconnect to the other node with Last-Event-ID: message 2 is replayed. */
  client = herald_test_client_connect (&fx.a.srv);
  request = g_strdup_printf ("GET /events?channel=sse HTTP/1.1\r\nHost: x\r\n"
                             "Last-Event-ID: %s\r\n\r\n",
                             last_id);
  herald_test_client_send_raw (client, request, strlen (request));
  g_clear_pointer (&head, g_free);
  status = herald_test_client_read_head (client, &head);
  g_assert_cmpuint (status, ==, 200);
  do
    {
      g_free (again);
      again = herald_test_sse_read_event (client);
      g_assert_nonnull (again);
      g_assert_null (strstr (again, "event: reset"));
    }
  while (strstr (again, "event: message") == NULL);
  g_assert_nonnull (strstr (again, "\"n\":2"));
  herald_test_client_free (client);
}

/* A fresh stream's first id resumes on another node before any message came. */
static void
test_sse_fresh (void)
{
  HeraldTestClient *client = herald_test_client_connect (&fx.b.srv);
  g_autofree char *request = g_strdup ("GET /events?channel=fresh HTTP/1.1\r\nHost: x\r\n\r\n");
  g_autofree char *head = NULL;
  g_autofree char *event = NULL;
  g_autofree char *last_id = NULL;
  const char *id_line = NULL;

  herald_test_client_send_raw (client, request, strlen (request));
  g_assert_cmpuint (herald_test_client_read_head (client, &head), ==, 200);
  while (id_line == NULL)
    {
      g_free (event);
      event = herald_test_sse_read_event (client);
      g_assert_nonnull (event);
      id_line = strstr (event, "id: ");
    }
  last_id = g_strndup (id_line + 4, strcspn (id_line + 4, "\n"));
  herald_test_client_free (client);

  publish (&fx.b, "fresh", "{\"n\":1}");

  client = herald_test_client_connect (&fx.a.srv);
  g_free (request);
  request = g_strdup_printf ("GET /events?channel=fresh HTTP/1.1\r\nHost: x\r\n"
                             "Last-Event-ID: %s\r\n\r\n",
                             last_id);
  herald_test_client_send_raw (client, request, strlen (request));
  g_clear_pointer (&head, g_free);
  g_assert_cmpuint (herald_test_client_read_head (client, &head), ==, 200);
  do
    {
      g_free (event);
      event = herald_test_sse_read_event (client);
      g_assert_nonnull (event);
      g_assert_null (strstr (event, "event: reset"));
    }
  while (strstr (event, "event: message") == NULL);
  g_assert_nonnull (strstr (event, "\"n\":1"));
  herald_test_client_free (client);
}

static void
test_presence (void)
{
  HeraldTestClient *bob = ws_open (&fx.b, "bob", NULL);
  HeraldTestClient *alice = NULL;
  g_autoptr (JsonObject) joined = NULL;
  g_autoptr (JsonObject) left = NULL;
  g_autoptr (JsonNode) answer = NULL;
  g_autofree char *text = NULL;
  JsonArray *users;
  guint status = 0;

  herald_test_ws_send_text (bob, "{\"type\":\"subscribe\",\"channel\":\"room\",\"presence\":true}");
  json_object_unref (read_type (bob, "subscribed"));

  alice = ws_open (&fx.a, "alice", NULL);
  subscribe (alice, "room");
  /* Through Redis, bob may also see his own join (it arrives after his
   * subscription asked for events); alice's must come. */
  do
    {
      g_clear_pointer (&joined, json_object_unref);
      joined = read_type (bob, "join");
    }
  while (g_strcmp0 (herald_test_json_get_string (joined, "user_id"), "bob") == 0);
  g_assert_cmpstr (herald_test_json_get_string (joined, "user_id"), ==, "alice");

  /* Asked on node B, presence counts node A's alice too. */
  text = api (&fx.b, "GET", "/api/channels/room/presence", NULL, &status);
  g_assert_cmpuint (status, ==, 200);
  answer = json_from_string (text, NULL);
  users = json_object_get_array_member (json_node_get_object (answer), "users");
  g_assert_cmpuint (json_array_get_length (users), ==, 2);
  g_assert_cmpstr (json_array_get_string_element (users, 0), ==, "alice");
  g_assert_cmpstr (json_array_get_string_element (users, 1), ==, "bob");
  g_assert_cmpint (json_object_get_int_member (json_node_get_object (answer), "connections"), ==,
                   2);

  herald_test_client_free (alice);
  left = read_type (bob, "leave");
  g_assert_cmpstr (herald_test_json_get_string (left, "user_id"), ==, "alice");
  herald_test_client_free (bob);
}

static gint64
presence_connections (Node *node, const char *channel)
{
  g_autofree char *path = g_strdup_printf ("/api/channels/%s/presence", channel);
  g_autofree char *text = NULL;
  g_autoptr (JsonNode) answer = NULL;
  guint status = 0;

  text = api (node, "GET", path, NULL, &status);
  g_assert_cmpuint (status, ==, 200);
  answer = json_from_string (text, NULL);
  g_assert_nonnull (answer);
  return json_object_get_int_member (json_node_get_object (answer), "connections");
}

/* Anonymous subscribers count on every node: two on A and one on B are 3
 * asked anywhere (HTTP API and the WebSocket presence request). */
static void
test_presence_anonymous (void)
{
  HeraldTestClient *a1 = ws_open (&fx.a, NULL, NULL);
  HeraldTestClient *a2 = ws_open (&fx.a, NULL, NULL);
  HeraldTestClient *b1 = ws_open (&fx.b, NULL, NULL);
  g_autoptr (JsonObject) answer = NULL;

  subscribe (a1, "lobby");
  subscribe (a2, "lobby");
  subscribe (b1, "lobby");
  /* The counts reach Redis through each node's link: bounded wait. */
  HERALD_TEST_WAIT_UNTIL (presence_connections (&fx.a, "lobby") == 3, 5000);
  HERALD_TEST_WAIT_UNTIL (presence_connections (&fx.b, "lobby") == 3, 5000);
  herald_test_ws_send_text (b1, "{\"type\":\"presence\",\"channel\":\"lobby\",\"id\":1}");
  answer = read_type (b1, "presence");
  g_assert_cmpint (json_object_get_int_member (answer, "connections"), ==, 3);
  g_assert_cmpuint (json_array_get_length (json_object_get_array_member (answer, "users")), ==, 0);

  /* Leaving counts too. */
  herald_test_client_free (a2);
  HERALD_TEST_WAIT_UNTIL (presence_connections (&fx.b, "lobby") == 2, 5000);
  herald_test_client_free (a1);
  HERALD_TEST_WAIT_UNTIL (presence_connections (&fx.b, "lobby") == 1, 5000);
  herald_test_client_free (b1);
  HERALD_TEST_WAIT_UNTIL (presence_connections (&fx.a, "lobby") == 0, 5000);
}

static void
test_redis_down (void)
{
  HeraldTestClient *on_a = ws_open (&fx.a, NULL, NULL);
  HeraldTestClient *on_b = ws_open (&fx.b, NULL, NULL);
  g_autoptr (JsonObject) local = NULL;
  g_autoptr (JsonObject) back = NULL;
  g_autoptr (JsonObject) back_b = NULL;
  g_autoptr (JsonObject) first = NULL;
  g_autoptr (JsonObject) again = NULL;
  g_autofree char *health = NULL;
  g_autofree char *old_epoch = NULL;
  g_autofree char *req = NULL;
  guint status = 0;

  herald_test_ws_send_text (on_a, "{\"type\":\"subscribe\",\"channel\":\"live\"}");
  first = read_type (on_a, "subscribed");
  old_epoch = g_strdup (herald_test_json_get_string (first, "epoch"));
  g_assert_nonnull (old_epoch);
  subscribe (on_b, "live");
  wait_numsub ("live", 2);
  publish (&fx.b, "live", "{\"n\":0}");
  json_object_unref (read_type (on_a, "message"));
  json_object_unref (read_type (on_b, "message"));

  stop_redis ();
  /* A publish racing the outage fails (503) or is delivered locally; no crash. */
  {
    g_autofree char *racing
        = api (&fx.b, "POST", "/api/publish", "{\"channel\":\"other\",\"data\":1}", &status);
    g_assert_true (status == 200 || status == 503);
  }
  HERALD_TEST_WAIT_UNTIL (!node_healthy (&fx.a), 5000);
  health = herald_test_http (&fx.a.srv, "GET", "/healthz", NULL, NULL, &status);
  g_assert_cmpuint (status, ==, 503);
  g_assert_nonnull (strstr (health, "degraded"));

  /* Local delivery keeps working on each node. */
  publish (&fx.a, "live", "{\"n\":1}");
  local = read_type (on_a, "message");
  g_assert_cmpint (message_n (local), ==, 1);
  HERALD_TEST_WAIT_UNTIL (strstr (fx.a.log->str, "Redis connection lost") != NULL, 5000);

  /* Redis back on the same port: cross-node delivery within 10 s. */
  start_redis ();
  HERALD_TEST_WAIT_UNTIL (node_healthy (&fx.a) && node_healthy (&fx.b), 10000);
  wait_numsub ("live", 2);
  publish (&fx.b, "live", "{\"n\":2}");
  back = read_type (on_a, "message");
  g_assert_cmpint (message_n (back), ==, 2);
  back_b = read_type (on_b, "message"); /* n:1 stayed on node A */
  g_assert_cmpint (message_n (back_b), ==, 2);

  /* Recovery works at once after the restart (the kept blocking
   * connection to the old Redis is replaced on first use). */
  {
    guint64 o1 = publish (&fx.b, "after", "{\"n\":1}");
    g_autofree char *since_req = NULL;
    g_autoptr (JsonObject) m = NULL;
    g_autoptr (JsonObject) ok = NULL;

    publish (&fx.b, "after", "{\"n\":2}");
    since_req = g_strdup_printf (
        "{\"type\":\"subscribe\",\"channel\":\"after\",\"since\":%" G_GUINT64_FORMAT "}", o1);
    herald_test_ws_send_text (on_a, since_req);
    m = read_type (on_a, "message");
    ok = read_type (on_a, "subscribed");
    g_assert_cmpint (message_n (m), ==, 2);
    g_assert_true (json_object_get_boolean_member (ok, "recovered"));
  }

  /* Redis came back empty: a new epoch, so old positions don't recover. */
  req = g_strdup_printf (
      "{\"type\":\"subscribe\",\"channel\":\"live2\",\"since\":1,\"epoch\":\"%s\"}", old_epoch);
  herald_test_ws_send_text (on_a, req);
  again = read_type (on_a, "subscribed");
  g_assert_false (json_object_get_boolean_member (again, "recovered"));
  g_assert_cmpstr (herald_test_json_get_string (again, "epoch"), !=, old_epoch);

  herald_test_client_free (on_a);
  herald_test_client_free (on_b);
}

static gboolean
presence_has (Node *node, const char *channel, const char *user)
{
  g_autofree char *path = g_strdup_printf ("/api/channels/%s/presence", channel);
  g_autofree char *text = NULL;
  g_autoptr (JsonNode) answer = NULL;
  JsonArray *users;
  guint status = 0;

  text = api (node, "GET", path, NULL, &status);
  g_assert_cmpuint (status, ==, 200);
  answer = json_from_string (text, NULL);
  users = json_object_get_array_member (json_node_get_object (answer), "users");
  for (guint i = 0; i < json_array_get_length (users); i++)
    if (g_str_equal (json_array_get_string_element (users, i), user))
      return TRUE;
  return FALSE;
}

/* A node that dies without saying goodbye: its users leave presence and its
 * connections are unknown once its heartbeat is older than 15 s. */
static void
test_dead_node (void)
{
  Node c = { 0 };
  g_autofree char *id = NULL;
  g_autofree char *path = NULL;
  g_autofree char *body = NULL;
  HeraldTestClient *carol;
  guint status = 0;

  start_node (&c);
  HERALD_TEST_WAIT_UNTIL (node_healthy (&c), 10000);
  carol = ws_open (&c, "carol", &id);
  subscribe (carol, "wake");
  HERALD_TEST_WAIT_UNTIL (presence_has (&fx.b, "wake", "carol"), 5000);

  g_subprocess_force_exit (c.process);
  HERALD_TEST_WAIT_UNTIL (c.eof, 5000);
  HERALD_TEST_WAIT_UNTIL (!presence_has (&fx.b, "wake", "carol"), 25000);
  path = g_strdup_printf ("/api/connections/%s", id);
  /* Within a second of the presence entries (both go at ~15 s). */
  HERALD_TEST_WAIT_UNTIL (({
                            g_free (body);
                            body = api (&fx.b, "DELETE", path, NULL, &status);
                            status == 404;
                          }),
                          5000);

  herald_test_client_free (carol);
  g_subprocess_wait (c.process, NULL, NULL);
  g_clear_object (&c.process);
  g_clear_object (&c.stderr_lines);
  g_string_free (c.log, TRUE);
  g_free (c.srv.host);
  g_free (c.srv.url);
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
  int status;

  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/redis/url", test_url);
  if (redis_server == NULL)
    {
      g_printerr ("redis-server not found (scripts/install-deps.sh installs it)\n");
      return g_test_run ();
    }

  g_timeout_add (20, tick, NULL);
  fx.dir = g_dir_make_tmp ("herald-redis-XXXXXX", &error);
  g_assert_no_error (error);
  conf = g_build_filename (fx.dir, "herald.conf", NULL);
  g_assert_true (g_file_set_contents (conf,
                                      "[auth]\njwt-secret=" SECRET
                                      "\nanonymous=true\n[history]\nsize=10\nttl=60\n"
                                      "[namespace.small]\nhistory-size=2\n",
                                      -1, NULL));
  fx.redis_port = free_port ();
  start_redis ();
  start_node (&fx.a);
  start_node (&fx.b);
  HERALD_TEST_WAIT_UNTIL (node_healthy (&fx.a) && node_healthy (&fx.b), 10000);

  g_test_add_func ("/redis/channel", test_channel);
  g_test_add_func ("/redis/direct", test_direct);
  g_test_add_func ("/redis/recovery", test_recovery);
  g_test_add_func ("/redis/namespace-history", test_namespace_history);
  g_test_add_func ("/redis/sse-resume", test_sse_resume);
  g_test_add_func ("/redis/sse-fresh", test_sse_fresh);
  g_test_add_func ("/redis/presence", test_presence);
  g_test_add_func ("/redis/presence-anonymous", test_presence_anonymous);
  g_test_add_func ("/redis/dead-node", test_dead_node);
  g_test_add_func ("/redis/redis-down", test_redis_down);
  status = g_test_run ();

  stop_node (&fx.a);
  stop_node (&fx.b);
  if (fx.redis)
    stop_redis ();
  g_unlink (conf);
  g_rmdir (fx.dir);
  g_free (fx.dir);
  return status;
}
