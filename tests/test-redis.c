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
#include <glib/gstdio.h>
#include <hiredis/hiredis.h>
#include <json-glib/json-glib.h>

#include "herald-jwt.h"
#include "herald-redis-engine.h"
#include "herald-test-node.h"
#include "herald-test-server.h"
#include "herald-test-utils.h"

#define API_KEY "redis-test-key"
#define SECRET "s3cret"

static struct
{
  GSubprocess *redis;
  guint16 redis_port;
  char *dir;
  HeraldTestNode a, b;
} fx;

/* ---- processes (tests/herald-test-node.c) ---- */

static redisReply *
redis_cmd (const char *format, ...)
{
  redisReply *reply;
  va_list ap;

  va_start (ap, format);
  reply = herald_test_redis_vcmd (fx.redis_port, NULL, format, ap);
  va_end (ap);
  return reply;
}

static long long
redis_numsub (const char *topic)
{
  return herald_test_redis_numsub (fx.redis_port, NULL, topic);
}

static void
start_redis (void)
{
  fx.redis = herald_test_redis_start (fx.redis_port, NULL);
}

static void
stop_redis (void)
{
  herald_test_redis_stop (&fx.redis);
}

static void
start_node (HeraldTestNode *node)
{
  g_autofree char *redis_url = g_strdup_printf ("redis://127.0.0.1:%u", fx.redis_port);
  g_autofree char *conf = g_build_filename (fx.dir, "herald.conf", NULL);

  herald_test_node_start (node, conf, redis_url, API_KEY, SECRET);
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
  HeraldTestClient *on_a = herald_test_node_ws_open (&fx.a, NULL, NULL);
  HeraldTestClient *on_b = herald_test_node_ws_open (&fx.b, NULL, NULL);
  g_autoptr (JsonObject) m1 = NULL;
  g_autoptr (JsonObject) m2 = NULL;
  g_autoptr (JsonObject) b1 = NULL;
  g_autoptr (JsonObject) b2 = NULL;
  guint64 o1, o2;

  herald_test_ws_subscribe (on_a, "news");
  herald_test_ws_subscribe (on_b, "news");
  wait_numsub ("news", 2);

  o1 = herald_test_node_publish (&fx.b, "news", "{\"n\":1}");
  o2 = herald_test_node_publish (&fx.a, "news", "{\"n\":2}");
  g_assert_cmpuint (o2, ==, o1 + 1); /* one offset sequence for the cluster */

  /* Exactly once, in order, on both nodes: a duplicate of 1 would come before 2. */
  m1 = herald_test_ws_read_type (on_a, "message");
  m2 = herald_test_ws_read_type (on_a, "message");
  g_assert_cmpint (message_n (m1), ==, 1);
  g_assert_cmpint (json_object_get_int_member (m1, "offset"), ==, (gint64)o1);
  g_assert_cmpint (message_n (m2), ==, 2);
  b1 = herald_test_ws_read_type (on_b, "message");
  b2 = herald_test_ws_read_type (on_b, "message");
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
  HeraldTestClient *alice = herald_test_node_ws_open (&fx.a, "alice", &id);
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

  body = herald_test_node_api (&fx.b, "POST", "/api/users/alice/send", "{\"data\":{\"n\":10}}",
                               &status);
  g_assert_cmpuint (status, ==, 200);
  m = herald_test_ws_read_type (alice, "message");
  g_assert_cmpint (message_n (m), ==, 10);
  g_assert_false (json_object_has_member (m, "channel"));

  g_clear_pointer (&body, g_free);
  path = g_strdup_printf ("/api/connections/%s/send", id);
  body = herald_test_node_api (&fx.b, "POST", path, "{\"data\":{\"n\":11}}", &status);
  g_assert_cmpuint (status, ==, 200);
  c = herald_test_ws_read_type (alice, "message");
  g_assert_cmpint (message_n (c), ==, 11);

  g_clear_pointer (&body, g_free);
  body = herald_test_node_api (&fx.b, "POST", "/api/broadcast", "{\"data\":{\"n\":12}}", &status);
  g_assert_cmpuint (status, ==, 200);
  all = herald_test_ws_read_type (alice, "message");
  g_assert_cmpint (message_n (all), ==, 12);

  /* Unknown everywhere: 404 from either node. */
  g_clear_pointer (&body, g_free);
  body = herald_test_node_api (&fx.b, "POST", "/api/connections/nosuchconnection/send",
                               "{\"data\":1}", &status);
  g_assert_cmpuint (status, ==, 404);
  g_clear_pointer (&body, g_free);
  body = herald_test_node_api (&fx.b, "DELETE", "/api/connections/nosuchconnection", NULL, &status);
  g_assert_cmpuint (status, ==, 404);

  /* Closed from the other node with 4004. */
  g_clear_pointer (&path, g_free);
  path = g_strdup_printf ("/api/connections/%s", id);
  g_clear_pointer (&body, g_free);
  body = herald_test_node_api (&fx.b, "DELETE", path, NULL, &status);
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

  o1 = herald_test_node_publish (&fx.b, "hist", "{\"n\":1}");
  herald_test_node_publish (&fx.b, "hist", "{\"n\":2}");
  herald_test_node_publish (&fx.b, "hist", "{\"n\":3}");

  /* A client that saw message 1 on node B comes back on node A. */
  client = herald_test_node_ws_open (&fx.a, NULL, NULL);
  {
    g_autofree char *req = g_strdup_printf (
        "{\"type\":\"subscribe\",\"channel\":\"hist\",\"since\":%" G_GUINT64_FORMAT "}", o1);
    herald_test_ws_send_text (client, req);
  }
  m2 = herald_test_ws_read_type (client, "message");
  m3 = herald_test_ws_read_type (client, "message");
  done = herald_test_ws_read_type (client, "subscribed");
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
  guint64 o1 = herald_test_node_publish (&fx.b, "small:h", "{\"n\":1}");

  for (int n = 2; n <= 4; n++)
    herald_test_node_publish (&fx.b, "small:h", "{\"n\":0}");
  client = herald_test_node_ws_open (&fx.a, NULL, NULL);
  req = g_strdup_printf (
      "{\"type\":\"subscribe\",\"channel\":\"small:h\",\"since\":%" G_GUINT64_FORMAT "}", o1);
  herald_test_ws_send_text (client, req);
  done = herald_test_ws_read_type (client, "subscribed");
  g_assert_false (json_object_get_boolean_member (done, "recovered"));
  g_clear_pointer (&req, g_free);
  /* Since the second: the last two are all it needs */
  req = g_strdup_printf (
      "{\"type\":\"subscribe\",\"channel\":\"small:h\",\"since\":%" G_GUINT64_FORMAT "}", o1 + 2);
  herald_test_client_free (client);
  client = herald_test_node_ws_open (&fx.a, NULL, NULL);
  herald_test_ws_send_text (client, req);
  g_clear_pointer (&done, json_object_unref);
  done = herald_test_ws_read_type (client, "subscribed");
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
  herald_test_node_publish (&fx.a, "sse", "{\"n\":1}");
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

  herald_test_node_publish (&fx.a, "sse", "{\"n\":2}");

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

  herald_test_node_publish (&fx.b, "fresh", "{\"n\":1}");

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
  HeraldTestClient *bob = herald_test_node_ws_open (&fx.b, "bob", NULL);
  HeraldTestClient *alice = NULL;
  g_autoptr (JsonObject) joined = NULL;
  g_autoptr (JsonObject) left = NULL;
  g_autoptr (JsonNode) answer = NULL;
  g_autofree char *text = NULL;
  JsonArray *users;
  guint status = 0;

  herald_test_ws_send_text (bob, "{\"type\":\"subscribe\",\"channel\":\"room\",\"presence\":true}");
  json_object_unref (herald_test_ws_read_type (bob, "subscribed"));

  alice = herald_test_node_ws_open (&fx.a, "alice", NULL);
  herald_test_ws_subscribe (alice, "room");
  /* Through Redis, bob may also see his own join (it arrives after his
   * subscription asked for events); alice's must come. */
  do
    {
      g_clear_pointer (&joined, json_object_unref);
      joined = herald_test_ws_read_type (bob, "join");
    }
  while (g_strcmp0 (herald_test_json_get_string (joined, "user_id"), "bob") == 0);
  g_assert_cmpstr (herald_test_json_get_string (joined, "user_id"), ==, "alice");

  /* Asked on node B, presence counts node A's alice too. */
  text = herald_test_node_api (&fx.b, "GET", "/api/channels/room/presence", NULL, &status);
  g_assert_cmpuint (status, ==, 200);
  answer = json_from_string (text, NULL);
  users = json_object_get_array_member (json_node_get_object (answer), "users");
  g_assert_cmpuint (json_array_get_length (users), ==, 2);
  g_assert_cmpstr (json_array_get_string_element (users, 0), ==, "alice");
  g_assert_cmpstr (json_array_get_string_element (users, 1), ==, "bob");
  g_assert_cmpint (json_object_get_int_member (json_node_get_object (answer), "connections"), ==,
                   2);

  herald_test_client_free (alice);
  left = herald_test_ws_read_type (bob, "leave");
  g_assert_cmpstr (herald_test_json_get_string (left, "user_id"), ==, "alice");
  herald_test_client_free (bob);
}

static gint64
presence_connections (HeraldTestNode *node, const char *channel)
{
  g_autofree char *path = g_strdup_printf ("/api/channels/%s/presence", channel);
  g_autofree char *text = NULL;
  g_autoptr (JsonNode) answer = NULL;
  guint status = 0;

  text = herald_test_node_api (node, "GET", path, NULL, &status);
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
  HeraldTestClient *a1 = herald_test_node_ws_open (&fx.a, NULL, NULL);
  HeraldTestClient *a2 = herald_test_node_ws_open (&fx.a, NULL, NULL);
  HeraldTestClient *b1 = herald_test_node_ws_open (&fx.b, NULL, NULL);
  g_autoptr (JsonObject) answer = NULL;

  herald_test_ws_subscribe (a1, "lobby");
  herald_test_ws_subscribe (a2, "lobby");
  herald_test_ws_subscribe (b1, "lobby");
  /* The counts reach Redis through each node's link: bounded wait. */
  HERALD_TEST_WAIT_UNTIL (presence_connections (&fx.a, "lobby") == 3, 5000);
  HERALD_TEST_WAIT_UNTIL (presence_connections (&fx.b, "lobby") == 3, 5000);
  herald_test_ws_send_text (b1, "{\"type\":\"presence\",\"channel\":\"lobby\",\"id\":1}");
  answer = herald_test_ws_read_type (b1, "presence");
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
  HeraldTestClient *on_a = herald_test_node_ws_open (&fx.a, NULL, NULL);
  HeraldTestClient *on_b = herald_test_node_ws_open (&fx.b, NULL, NULL);
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
  first = herald_test_ws_read_type (on_a, "subscribed");
  old_epoch = g_strdup (herald_test_json_get_string (first, "epoch"));
  g_assert_nonnull (old_epoch);
  herald_test_ws_subscribe (on_b, "live");
  wait_numsub ("live", 2);
  herald_test_node_publish (&fx.b, "live", "{\"n\":0}");
  json_object_unref (herald_test_ws_read_type (on_a, "message"));
  json_object_unref (herald_test_ws_read_type (on_b, "message"));

  stop_redis ();
  /* A publish racing the outage fails (503) or is delivered locally; no crash. */
  {
    g_autofree char *racing = herald_test_node_api (&fx.b, "POST", "/api/publish",
                                                    "{\"channel\":\"other\",\"data\":1}", &status);
    g_assert_true (status == 200 || status == 503);
  }
  HERALD_TEST_WAIT_UNTIL (!herald_test_node_healthy (&fx.a), 5000);
  health = herald_test_http (&fx.a.srv, "GET", "/healthz", NULL, NULL, &status);
  g_assert_cmpuint (status, ==, 503);
  g_assert_nonnull (strstr (health, "degraded"));

  /* Local delivery keeps working on each node. */
  herald_test_node_publish (&fx.a, "live", "{\"n\":1}");
  local = herald_test_ws_read_type (on_a, "message");
  g_assert_cmpint (message_n (local), ==, 1);
  HERALD_TEST_WAIT_UNTIL (strstr (fx.a.log->str, "Redis connection lost") != NULL, 5000);

  /* Redis back on the same port: cross-node delivery within 10 s. */
  start_redis ();
  HERALD_TEST_WAIT_UNTIL (herald_test_node_healthy (&fx.a) && herald_test_node_healthy (&fx.b),
                          10000);
  wait_numsub ("live", 2);
  herald_test_node_publish (&fx.b, "live", "{\"n\":2}");
  back = herald_test_ws_read_type (on_a, "message");
  g_assert_cmpint (message_n (back), ==, 2);
  back_b = herald_test_ws_read_type (on_b, "message"); /* n:1 stayed on node A */
  g_assert_cmpint (message_n (back_b), ==, 2);

  /* Recovery works at once after the restart (the kept blocking
   * connection to the old Redis is replaced on first use). */
  {
    guint64 o1 = herald_test_node_publish (&fx.b, "after", "{\"n\":1}");
    g_autofree char *since_req = NULL;
    g_autoptr (JsonObject) m = NULL;
    g_autoptr (JsonObject) ok = NULL;

    herald_test_node_publish (&fx.b, "after", "{\"n\":2}");
    since_req = g_strdup_printf (
        "{\"type\":\"subscribe\",\"channel\":\"after\",\"since\":%" G_GUINT64_FORMAT "}", o1);
    herald_test_ws_send_text (on_a, since_req);
    m = herald_test_ws_read_type (on_a, "message");
    ok = herald_test_ws_read_type (on_a, "subscribed");
    g_assert_cmpint (message_n (m), ==, 2);
    g_assert_true (json_object_get_boolean_member (ok, "recovered"));
  }

  /* Redis came back empty: a new epoch, so old positions don't recover. */
  req = g_strdup_printf (
      "{\"type\":\"subscribe\",\"channel\":\"live2\",\"since\":1,\"epoch\":\"%s\"}", old_epoch);
  herald_test_ws_send_text (on_a, req);
  again = herald_test_ws_read_type (on_a, "subscribed");
  g_assert_false (json_object_get_boolean_member (again, "recovered"));
  g_assert_cmpstr (herald_test_json_get_string (again, "epoch"), !=, old_epoch);

  herald_test_client_free (on_a);
  herald_test_client_free (on_b);
}

static gboolean
presence_has (HeraldTestNode *node, const char *channel, const char *user)
{
  g_autofree char *path = g_strdup_printf ("/api/channels/%s/presence", channel);
  g_autofree char *text = NULL;
  g_autoptr (JsonNode) answer = NULL;
  JsonArray *users;
  guint status = 0;

  text = herald_test_node_api (node, "GET", path, NULL, &status);
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
  HeraldTestNode c = { 0 };
  g_autofree char *id = NULL;
  g_autofree char *path = NULL;
  g_autofree char *body = NULL;
  HeraldTestClient *carol;
  guint status = 0;

  start_node (&c);
  HERALD_TEST_WAIT_UNTIL (herald_test_node_healthy (&c), 10000);
  carol = herald_test_node_ws_open (&c, "carol", &id);
  herald_test_ws_subscribe (carol, "wake");
  HERALD_TEST_WAIT_UNTIL (presence_has (&fx.b, "wake", "carol"), 5000);

  herald_test_node_kill (&c);
  HERALD_TEST_WAIT_UNTIL (!presence_has (&fx.b, "wake", "carol"), 25000);
  path = g_strdup_printf ("/api/connections/%s", id);
  /* Within a second of the presence entries (both go at ~15 s). */
  HERALD_TEST_WAIT_UNTIL (({
                            g_free (body);
                            body = herald_test_node_api (&fx.b, "DELETE", path, NULL, &status);
                            status == 404;
                          }),
                          5000);

  herald_test_client_free (carol);
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
  fx.redis_port = herald_test_free_port ();
  start_redis ();
  start_node (&fx.a);
  start_node (&fx.b);
  HERALD_TEST_WAIT_UNTIL (herald_test_node_healthy (&fx.a) && herald_test_node_healthy (&fx.b),
                          10000);

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

  herald_test_node_stop (&fx.a);
  herald_test_node_stop (&fx.b);
  if (fx.redis)
    stop_redis ();
  g_unlink (conf);
  g_rmdir (fx.dir);
  g_free (fx.dir);
  return status;
}
