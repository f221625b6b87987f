/* test-sentinel.c: [redis] sentinels — a master, a replica and a Redis
 * Sentinel (redis-server --sentinel: Debian's redis-sentinel package is
 * the same binary) on free loopback ports, and heraldd nodes following the
 * master through the sentinel.
 *
 * - failover: the master is killed under a steady publish stream; the new
 *   master is written to within 5 s of its promotion; a subscriber that
 *   resumes gets every stored message it missed, or recovered:false —
 *   never a gap with recovered:true; publishes that could not be stored
 *   answer "offset":null.
 * - lagged: a master whose history is behind what the nodes saw (as after
 *   the promotion of a replica that lagged) gets a new epoch, so an old
 *   position resumes with recovered:false instead of a silent gap.
 * - node-killed: a heraldd killed with SIGKILL; its client resumes on
 *   another node without a gap.
 * - live-gap: a subscriber that stays connected while its node misses
 *   messages (lost Redis connections) gets a reset notice, never a gap.
 * - readonly: a replica (a demoted master) is never written to.
 * - password: the master's password; a sentinel gets it only if it asks.
 * - sentinel-lost: without sentinels the known master is still used.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <signal.h>
#include <string.h>
#include <glib/gstdio.h>
#include <hiredis/hiredis.h>
#include <json-glib/json-glib.h>

#include "herald-test-node.h"
#include "herald-test-server.h"
#include "herald-test-utils.h"

#define API_KEY "sentinel-test-key"
#define SECRET "s3cret"
#define MASTER_NAME "herald-test"

static struct
{
  char *dir;
  GSubprocess *master, *replica, *sentinel;
  guint16 master_port, replica_port, sentinel_port;
  HeraldTestNode a, b;
} fx;

/* ---- processes ---- */

static GSubprocess *
spawn (const char *const *argv)
{
  g_autoptr (GSubprocessLauncher) launcher = g_subprocess_launcher_new (
      G_SUBPROCESS_FLAGS_STDOUT_SILENCE | G_SUBPROCESS_FLAGS_STDERR_SILENCE);
  g_autoptr (GError) error = NULL;
  GSubprocess *p;

  g_subprocess_launcher_set_child_setup (launcher, herald_test_die_with_parent, NULL, NULL);
  p = g_subprocess_launcher_spawnv (launcher, argv, &error);
  g_assert_no_error (error);
  return p;
}

static GSubprocess *
start_redis (guint16 port, guint16 master_of)
{
  g_autofree char *port_text = g_strdup_printf ("%u", port);
  g_autofree char *master_text = g_strdup_printf ("127.0.0.1 %u", master_of);
  g_autofree char *rdb = g_strdup_printf ("dump-%u.rdb", port);
  /* A replica writes the RDB it receives: into the test's directory, never
   * where a later redis-server would load it. */
  const char *argv[] = { "redis-server",
                         "--port",
                         port_text,
                         "--bind",
                         "127.0.0.1",
                         "--save",
                         "",
                         "--appendonly",
                         "no",
                         "--dir",
                         fx.dir,
                         "--dbfilename",
                         rdb,
                         "--repl-diskless-sync-delay",
                         "0",
                         master_of ? "--replicaof" : NULL,
                         master_text,
                         NULL };
  GSubprocess *p = spawn (argv);

  HERALD_TEST_WAIT_UNTIL (herald_test_redis_answers (port, NULL), 5000);
  return p;
}

/* redis-server --sentinel with @text as its (writable) configuration. */
static GSubprocess *
spawn_sentinel (guint16 port, const char *text, const char *password)
{
  g_autofree char *name = g_strdup_printf ("sentinel-%u.conf", port);
  g_autofree char *conf = g_build_filename (fx.dir, name, NULL);
  const char *argv[] = { "redis-server", conf, "--sentinel", NULL };
  GSubprocess *p;

  g_assert_true (g_file_set_contents (conf, text, -1, NULL));
  p = spawn (argv);
  HERALD_TEST_WAIT_UNTIL (herald_test_redis_answers (port, password), 5000);
  return p;
}

static GSubprocess *
start_sentinel (void)
{
  g_autofree char *text = g_strdup_printf ("port %u\nbind 127.0.0.1\n"
                                           "sentinel monitor " MASTER_NAME " 127.0.0.1 %u 1\n"
                                           "sentinel down-after-milliseconds " MASTER_NAME " 700\n"
                                           "sentinel failover-timeout " MASTER_NAME " 3000\n",
                                           fx.sentinel_port, fx.master_port);

  return spawn_sentinel (fx.sentinel_port, text, NULL);
}

static void
stop (GSubprocess **p)
{
  if (*p == NULL)
    return;
  g_subprocess_force_exit (*p);
  g_subprocess_wait (*p, NULL, NULL);
  g_clear_object (p);
}

static redisReply *
redis_cmd (guint16 port, const char *format, ...)
{
  redisReply *reply;
  va_list ap;

  va_start (ap, format);
  reply = herald_test_redis_vcmd (port, NULL, format, ap);
  va_end (ap);
  return reply;
}

/* ROLE's first word: "master", "slave", or NULL when it does not answer. */
static gboolean
is_master (guint16 port)
{
  redisReply *r = redis_cmd (port, "ROLE");
  gboolean master = r && r->type == REDIS_REPLY_ARRAY && r->elements > 0
                    && r->element[0]->type == REDIS_REPLY_STRING
                    && g_str_equal (r->element[0]->str, "master");

  if (r)
    freeReplyObject (r);
  return master;
}

/* A replica in sync with its master. */
static gboolean
replica_synced (guint16 port)
{
  redisReply *info = redis_cmd (port, "INFO replication");
  gboolean ok = info && info->type == REDIS_REPLY_STRING
                && strstr (info->str, "master_link_status:up") != NULL;

  if (info)
    freeReplyObject (info);
  return ok;
}

/* The sentinel knows the replica and it is in sync (so it can fail over). */
static gboolean
replica_ready (void)
{
  redisReply *r = redis_cmd (fx.sentinel_port, "SENTINEL replicas %s", MASTER_NAME);
  redisReply *info = redis_cmd (fx.replica_port, "INFO replication");
  gboolean ok = r && r->type == REDIS_REPLY_ARRAY && r->elements == 1 && info
                && info->type == REDIS_REPLY_STRING
                && strstr (info->str, "master_link_status:up") != NULL;

  if (r)
    freeReplyObject (r);
  if (info)
    freeReplyObject (info);
  return ok;
}

/* The port the sentinel names as the master. */
static guint16
sentinel_master_port (void)
{
  redisReply *r = redis_cmd (fx.sentinel_port, "SENTINEL get-master-addr-by-name %s", MASTER_NAME);
  guint16 port = 0;

  if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2)
    port = (guint16)g_ascii_strtoull (r->element[1]->str, NULL, 10);
  if (r)
    freeReplyObject (r);
  return port;
}

static void
start_node (HeraldTestNode *node)
{
  g_autofree char *conf = g_build_filename (fx.dir, "herald.conf", NULL);

  herald_test_node_start (node, conf, NULL, API_KEY, SECRET);
}

/* ---- helpers ---- */

/* POST /api/publish {"n":@n}: the offset, 0 for "offset":null (not stored).
 * @libsoup: with an Origin header, which leaves the fast path
 * (herald-http-fast.c) to libsoup's (herald-http-api.c). */
static guint64
publish_via (HeraldTestNode *node, const char *channel, gint64 n, gboolean libsoup)
{
  g_autofree char *body
      = g_strdup_printf ("{\"channel\":\"%s\",\"data\":{\"n\":%" G_GINT64_FORMAT "}}", channel, n);
  g_autofree char *headers
      = g_strconcat (node->auth, libsoup ? "Origin: http://127.0.0.1\r\n" : "", NULL);
  g_autofree char *text = NULL;
  g_autoptr (JsonNode) answer = NULL;
  JsonObject *obj;
  guint status = 0;

  text = herald_test_http (&node->srv, "POST", "/api/publish", headers, body, &status);
  g_assert_cmpuint (status, ==, 200);
  answer = json_from_string (text, NULL);
  g_assert_nonnull (answer);
  obj = json_node_get_object (answer);
  g_assert_true (json_object_has_member (obj, "offset"));
  if (json_object_get_null_member (obj, "offset"))
    return 0;
  g_assert_cmpint (json_object_get_int_member (obj, "offset"), >, 0);
  return (guint64)json_object_get_int_member (obj, "offset");
}

static guint64
publish (HeraldTestNode *node, const char *channel, gint64 n)
{
  return publish_via (node, channel, n, FALSE);
}

static gint64
message_n (JsonObject *msg)
{
  return json_object_get_int_member (json_object_get_object_member (msg, "data"), "n");
}

static gint64
message_offset (JsonObject *msg)
{
  return json_object_get_null_member (msg, "offset") ? 0
                                                     : json_object_get_int_member (msg, "offset");
}

static guint64
metric (HeraldTestNode *node, const char *sample)
{
  guint status = 0;
  g_autofree char *text = herald_test_http (&node->srv, "GET", "/metrics", NULL, NULL, &status);
  const char *at = text ? strstr (text, sample) : NULL;

  g_assert_nonnull (at);
  return g_ascii_strtoull (at + strlen (sample), NULL, 10);
}

/* The next channel frame: a message, or a reset notice (a "subscribed"
 * with "server":true the client did not ask for). */
static JsonObject *
read_channel_frame (HeraldTestClient *client)
{
  for (;;)
    {
      JsonObject *obj = herald_test_ws_read_json (client);
      const char *type;

      g_assert_nonnull (obj);
      type = herald_test_json_get_string (obj, "type");
      if (g_strcmp0 (type, "message") == 0 || g_strcmp0 (type, "subscribed") == 0)
        return obj;
      json_object_unref (obj);
    }
}

/* @obj is a reset notice: position @offset, not recovered. */
static void
assert_notice (JsonObject *obj, gint64 offset)
{
  g_assert_cmpstr (herald_test_json_get_string (obj, "type"), ==, "subscribed");
  g_assert_true (json_object_get_boolean_member (obj, "server"));
  g_assert_false (json_object_get_boolean_member (obj, "recovered"));
  g_assert_cmpint (json_object_get_int_member (obj, "offset"), ==, offset);
}

/* A subscriber on @node of @channel, resuming after @since of @epoch (NULL:
 * fresh). Returns the subscribed answer; @replayed gets the messages that
 * came before it. */
static JsonObject *
resume (HeraldTestClient *client, const char *channel, guint64 since, const char *epoch,
        GPtrArray *replayed)
{
  g_autofree char *req = NULL;

  if (epoch)
    req = g_strdup_printf ("{\"type\":\"subscribe\",\"channel\":\"%s\",\"since\":%" G_GUINT64_FORMAT
                           ",\"epoch\":\"%s\"}",
                           channel, since, epoch);
  else
    req = g_strdup_printf ("{\"type\":\"subscribe\",\"channel\":\"%s\"}", channel);
  herald_test_ws_send_text (client, req);
  for (;;)
    {
      JsonObject *obj = herald_test_ws_read_json (client);
      const char *type;

      g_assert_nonnull (obj);
      type = herald_test_json_get_string (obj, "type");
      if (g_strcmp0 (type, "subscribed") == 0)
        return obj;
      if (g_strcmp0 (type, "message") == 0 && replayed)
        g_ptr_array_add (replayed, json_object_ref (obj));
      json_object_unref (obj);
    }
}

/* ---- tests ---- */

static void
test_discovery (void)
{
  g_autofree char *health = NULL;
  guint status = 0;

  g_autofree char *via = g_strdup_printf ("via Redis Sentinel 127.0.0.1:%u", fx.sentinel_port);

  /* Both nodes found the master through the sentinel and say so (node B
   * after its first sentinel did not answer). */
  HERALD_TEST_WAIT_UNTIL (strstr (fx.a.log->str, via) && strstr (fx.b.log->str, via), 5000);
  health = herald_test_http (&fx.a.srv, "GET", "/healthz", NULL, NULL, &status);
  g_assert_cmpuint (status, ==, 200);
  g_assert_nonnull (strstr (health, "\"engine\":\"ok\""));
  g_assert_cmpuint (metric (&fx.a, "herald_redis_events_total{event=\"connected\"} "), >=, 1);
  g_assert_cmpuint (publish (&fx.a, "hello", 1), ==, 1);
}

/* History behind what the nodes saw (a promoted replica that lagged):
 * simulated on the master by rolling the channel and the seq back and
 * dropping the nodes' connections. Without the epoch check the old position
 * would "recover" over a gap: offsets 4..6 are reused by new messages. In
 * the new epoch the channel's offsets count from 1 again, and a subscriber
 * that stayed connected receives them. */
static void
test_lagged (void)
{
  guint16 port = sentinel_master_port ();
  HeraldTestClient *c = herald_test_node_ws_open (&fx.b, NULL, NULL);
  HeraldTestClient *live = herald_test_node_ws_open (&fx.b, NULL, NULL);
  g_autoptr (GPtrArray) replayed
      = g_ptr_array_new_with_free_func ((GDestroyNotify)json_object_unref);
  g_autoptr (JsonObject) first = NULL;
  g_autoptr (JsonObject) live_first = NULL;
  g_autoptr (JsonObject) again = NULL;
  g_autofree char *epoch = NULL;
  guint64 lost_before = metric (&fx.b, "herald_redis_events_total{event=\"history_lost\"} ");
  redisReply *r;
  gint64 seq;

  first = resume (c, "lag", 0, NULL, NULL);
  epoch = g_strdup (herald_test_json_get_string (first, "epoch"));
  for (int i = 1; i <= 6; i++)
    {
      g_autoptr (JsonObject) m = NULL;

      if (i == 4)
        {
          live_first = resume (live, "lag", 0, NULL, NULL);
          g_assert_cmpint (json_object_get_int_member (live_first, "offset"), ==, 3);
        }
      g_assert_cmpuint (publish (&fx.a, "lag", i), ==, (guint64)i);
      m = herald_test_ws_read_type (c, "message");
      g_assert_cmpint (message_offset (m), ==, i);
      if (i >= 4)
        {
          g_autoptr (JsonObject) l = herald_test_ws_read_type (live, "message");
          g_assert_cmpint (message_offset (l), ==, i);
        }
    }
  herald_test_client_free (c);

  /* The last three writes "never reached the replica". */
  r = redis_cmd (port, "GET herald:seq");
  seq = g_ascii_strtoll (r->str, NULL, 10);
  freeReplyObject (r);
  freeReplyObject (redis_cmd (port, "SET herald:seq %lld", (long long)(seq - 3)));
  freeReplyObject (redis_cmd (port, "HSET herald:m:lag off 3"));
  freeReplyObject (redis_cmd (port, "LTRIM herald:h:lag 3 -1"));
  freeReplyObject (redis_cmd (port, "CLIENT KILL TYPE normal"));
  freeReplyObject (redis_cmd (port, "CLIENT KILL TYPE pubsub"));
  HERALD_TEST_WAIT_UNTIL (
      metric (&fx.b, "herald_redis_events_total{event=\"history_lost\"} ") > lost_before, 10000);
  HERALD_TEST_WAIT_UNTIL (herald_test_node_healthy (&fx.a) && herald_test_node_healthy (&fx.b),
                          10000);
  HERALD_TEST_WAIT_UNTIL (strstr (fx.b.log->str, "Redis history was lost") != NULL, 5000);
  HERALD_TEST_WAIT_UNTIL (herald_test_redis_numsub (port, NULL, "herald:ch:lag") == 1, 5000);

  /* A new epoch: the live subscriber is told (its position is reset), the
   * channel counts from 1 again, and it gets every message. */
  {
    g_autoptr (JsonObject) notice = read_channel_frame (live);

    assert_notice (notice, 0);
    g_assert_cmpstr (herald_test_json_get_string (notice, "epoch"), !=, epoch);
  }
  for (int i = 7; i <= 9; i++)
    {
      g_autoptr (JsonObject) l = NULL;

      g_assert_cmpuint (publish (&fx.a, "lag", i), ==, (guint64)(i - 6));
      l = read_channel_frame (live);
      g_assert_cmpint (message_offset (l), ==, i - 6);
      g_assert_cmpint (message_n (l), ==, i);
    }
  herald_test_client_free (live);

  c = herald_test_node_ws_open (&fx.b, NULL, NULL);
  again = resume (c, "lag", 6, epoch, replayed);
  g_assert_false (json_object_get_boolean_member (again, "recovered"));
  g_assert_cmpstr (herald_test_json_get_string (again, "epoch"), !=, epoch);
  g_assert_cmpint (json_object_get_int_member (again, "offset"), ==, 3);
  g_assert_cmpuint (replayed->len, ==, 0);
  herald_test_client_free (c);
}

/* A live subscriber across lost Redis connections: nothing missed, nothing
 * said; messages published meanwhile that its node never heard (simulated:
 * the channel's offset moved on in Redis), a reset notice with the
 * position instead of a silent gap. */
static void
test_live_gap (void)
{
  guint16 port = sentinel_master_port ();
  HeraldTestClient *live = herald_test_node_ws_open (&fx.b, NULL, NULL);
  HeraldTestClient *sse = herald_test_client_connect (&fx.b.srv);
  const char *request = "GET /events?channel=gap HTTP/1.1\r\nHost: x\r\n\r\n";
  g_autoptr (JsonObject) first = resume (live, "gap", 0, NULL, NULL);
  g_autofree char *head = NULL;

  herald_test_client_send_raw (sse, request, strlen (request));
  g_assert_cmpuint (herald_test_client_read_head (sse, &head), ==, 200);

  for (int round = 0; round < 2; round++)
    {
      guint64 before = metric (&fx.b, "herald_redis_events_total{event=\"connected\"} ");
      guint64 o = publish (&fx.a, "gap", 1);
      g_autoptr (JsonObject) m = read_channel_frame (live);
      g_autoptr (JsonObject) next = NULL;

      g_assert_cmpint (message_offset (m), ==, o);
      if (round == 1)
        freeReplyObject (redis_cmd (port, "HINCRBY herald:m:gap off 2"));
      freeReplyObject (redis_cmd (port, "CLIENT KILL TYPE pubsub"));
      HERALD_TEST_WAIT_UNTIL (
          metric (&fx.b, "herald_redis_events_total{event=\"connected\"} ") > before, 10000);
      HERALD_TEST_WAIT_UNTIL (herald_test_node_healthy (&fx.a) && herald_test_node_healthy (&fx.b),
                              10000);
      HERALD_TEST_WAIT_UNTIL (herald_test_redis_numsub (port, NULL, "herald:ch:gap") == 1, 5000);
      if (round == 1)
        {
          g_autoptr (JsonObject) notice = read_channel_frame (live);

          assert_notice (notice, (gint64)o + 2);
          g_assert_cmpuint (metric (&fx.b, "herald_redis_events_total{event=\"reset_notice\"} "),
                            >=, 1);
          g_assert_cmpstr (herald_test_json_get_string (notice, "epoch"), ==,
                           herald_test_json_get_string (first, "epoch"));
          o += 2;
          /* The SSE stream's: an event "reset" naming the channel, no id. */
          for (;;)
            {
              g_autofree char *event = herald_test_sse_read_event (sse);

              g_assert_nonnull (event);
              if (strstr (event, "event: reset\n") == NULL)
                continue;
              g_assert_nonnull (strstr (event, "data: {\"type\":\"reset\",\"channel\":\"gap\"}"));
              g_assert_null (strstr (event, "id:"));
              break;
            }
        }
      /* The next frame is the next message: no notice when nothing was missed. */
      g_assert_cmpuint (publish (&fx.a, "gap", 2), ==, o + 1);
      next = read_channel_frame (live);
      g_assert_cmpstr (herald_test_json_get_string (next, "type"), ==, "message");
      g_assert_cmpint (message_offset (next), ==, o + 1);
    }
  herald_test_client_free (live);
  herald_test_client_free (sse);
}

typedef struct
{
  gint64 n;
  guint64 offset; /* 0: not stored */
} Sent;

static void
test_failover (void)
{
  HeraldTestClient *c = herald_test_node_ws_open (&fx.b, NULL, NULL);
  HeraldTestClient *live = herald_test_node_ws_open (&fx.b, NULL, NULL);
  g_autoptr (GArray) sent = g_array_new (FALSE, FALSE, sizeof (Sent));
  g_autoptr (GPtrArray) replayed
      = g_ptr_array_new_with_free_func ((GDestroyNotify)json_object_unref);
  g_autoptr (JsonObject) first = NULL;
  g_autoptr (JsonObject) again = NULL;
  g_autofree char *epoch = NULL;
  guint64 seen = 0, unstored = 0;
  gint64 n = 0, promoted_at = 0, written_at = 0;
  guint16 old_master = sentinel_master_port ();
  guint16 new_master = old_master == fx.master_port ? fx.replica_port : fx.master_port;

  first = resume (c, "feed", 0, NULL, NULL);
  epoch = g_strdup (herald_test_json_get_string (first, "epoch"));
  json_object_unref (resume (live, "feed", 0, NULL, NULL));
  for (int i = 0; i < 10; i++)
    {
      Sent s = { ++n, publish (&fx.a, "feed", n) };
      g_array_append_val (sent, s);
    }
  for (int i = 0; i < 10; i++)
    {
      g_autoptr (JsonObject) m = herald_test_ws_read_type (c, "message");
      seen = (guint64)message_offset (m);
    }
  g_assert_cmpuint (seen, ==, 10);
  herald_test_client_free (c); /* the subscriber goes away, to resume later */

  /* Kill the master under a steady stream (every 50 ms) until the nodes
   * store publishes again on the promoted replica. */
  if (old_master == fx.master_port)
    stop (&fx.master);
  else
    stop (&fx.replica);
  HERALD_TEST_WAIT_UNTIL (({
                            Sent s = { ++n, publish (&fx.a, "feed", n) };
                            g_array_append_val (sent, s);
                            if (promoted_at == 0 && is_master (new_master))
                              promoted_at = g_get_monotonic_time ();
                            if (s.offset == 0)
                              unstored++;
                            g_usleep (50 * 1000);
                            promoted_at != 0 && s.offset != 0;
                          }),
                          20000);
  written_at = g_get_monotonic_time ();
  g_test_message ("stored on the new master %.2f s after its promotion, %" G_GUINT64_FORMAT
                  " publishes answered offset:null meanwhile",
                  (written_at - promoted_at) / 1e6, unstored);
  g_assert_cmpint (written_at - promoted_at, <, 5 * G_USEC_PER_SEC);
  g_assert_cmpuint (unstored, >, 0);
  g_assert_cmpuint (metric (&fx.a, "herald_redis_events_total{event=\"master_changed\"} "), >=, 1);
  g_assert_cmpuint (metric (&fx.a, "herald_redis_events_total{event=\"publish_unstored\"} "), >=,
                    unstored);
  HERALD_TEST_WAIT_UNTIL (herald_test_node_healthy (&fx.b), 10000);
  /* Node B hears the channel again (its live subscriber), so it gets these. */
  HERALD_TEST_WAIT_UNTIL (herald_test_redis_numsub (new_master, NULL, "herald:ch:feed") == 1, 5000);
  for (int i = 0; i < 5; i++)
    {
      Sent s = { ++n, publish (&fx.a, "feed", n) };
      g_assert_cmpuint (s.offset, >, 0);
      g_array_append_val (sent, s);
    }

  /* The subscriber resumes on node B: every stored message after its
   * position, in order, or an honest recovered:false. */
  c = herald_test_node_ws_open (&fx.b, NULL, NULL);
  again = resume (c, "feed", seen, epoch, replayed);
  if (json_object_get_boolean_member (again, "recovered"))
    {
      guint64 top = (guint64)json_object_get_int_member (again, "offset");
      guint j = 0;

      g_test_message ("recovered:true over the failover: %u messages", replayed->len);
      g_assert_cmpstr (herald_test_json_get_string (again, "epoch"), ==, epoch);
      g_assert_cmpuint (replayed->len, ==, top - seen);
      for (guint i = 0; i < replayed->len; i++)
        g_assert_cmpint (message_offset (g_ptr_array_index (replayed, i)), ==, seen + 1 + i);
      /* ... and they are the stored publishes, the same data at the same offsets. */
      for (guint i = 0; i < sent->len; i++)
        {
          Sent *s = &g_array_index (sent, Sent, i);
          if (s->offset <= seen)
            continue;
          while (j < replayed->len
                 && (guint64)message_offset (g_ptr_array_index (replayed, j)) < s->offset)
            j++;
          g_assert_cmpuint (j, <, replayed->len);
          g_assert_cmpint (message_n (g_ptr_array_index (replayed, j)), ==, s->n);
        }
    }
  else
    {
      g_test_message ("recovered:false: the promoted replica had lagged");
      g_assert_cmpstr (herald_test_json_get_string (again, "epoch"), !=, epoch);
    }
  herald_test_client_free (c);

  /* The subscriber that stayed connected on node B: consecutive offsets,
   * except where a reset notice follows a jump (what its node missed while
   * it had no Redis), until the last stored publish. */
  {
    Sent *last_sent = &g_array_index (sent, Sent, sent->len - 1);
    gint64 last = 0;
    gboolean jump = FALSE, done = FALSE;
    guint notices = 0;

    while (!done || jump)
      {
        g_autoptr (JsonObject) f = read_channel_frame (live);

        if (g_str_equal (herald_test_json_get_string (f, "type"), "subscribed"))
          {
            g_assert_true (json_object_get_boolean_member (f, "server"));
            g_assert_false (json_object_get_boolean_member (f, "recovered"));
            if (json_object_get_int_member (f, "offset") == 0)
              last = 0; /* a new epoch */
            else
              last = MAX (last, json_object_get_int_member (f, "offset"));
            jump = FALSE;
            notices++;
            continue;
          }
        if (message_offset (f) == 0)
          continue; /* not stored: the other node's, never here */
        if (message_offset (f) != last + 1)
          jump = TRUE;
        last = message_offset (f);
        done = message_n (f) == last_sent->n;
      }
    g_test_message ("the live subscriber got %u reset notices", notices);
  }
  herald_test_client_free (live);
}

/* A heraldd killed with SIGKILL: its client resumes on another node. */
static void
test_node_killed (void)
{
  HeraldTestNode c = { 0 };
  HeraldTestClient *client;
  g_autoptr (GPtrArray) replayed
      = g_ptr_array_new_with_free_func ((GDestroyNotify)json_object_unref);
  g_autoptr (JsonObject) first = NULL;
  g_autoptr (JsonObject) again = NULL;
  g_autofree char *epoch = NULL;
  guint64 seen = 0, last = 0;

  start_node (&c);
  HERALD_TEST_WAIT_UNTIL (herald_test_node_healthy (&c), 10000);
  client = herald_test_node_ws_open (&c, NULL, NULL);
  first = resume (client, "kill", 0, NULL, NULL);
  epoch = g_strdup (herald_test_json_get_string (first, "epoch"));
  for (int i = 1; i <= 5; i++)
    publish (&fx.a, "kill", i);
  for (int i = 1; i <= 5; i++)
    {
      g_autoptr (JsonObject) m = herald_test_ws_read_type (client, "message");
      seen = (guint64)message_offset (m);
    }
  herald_test_node_kill (&c);
  herald_test_client_free (client);
  for (int i = 6; i <= 12; i++)
    last = publish (&fx.a, "kill", i);

  client = herald_test_node_ws_open (&fx.b, NULL, NULL);
  again = resume (client, "kill", seen, epoch, replayed);
  g_assert_true (json_object_get_boolean_member (again, "recovered"));
  g_assert_cmpuint ((guint64)json_object_get_int_member (again, "offset"), ==, last);
  g_assert_cmpuint (replayed->len, ==, last - seen);
  for (guint i = 0; i < replayed->len; i++)
    {
      g_assert_cmpint (message_offset (g_ptr_array_index (replayed, i)), ==, seen + 1 + i);
      g_assert_cmpint (message_n (g_ptr_array_index (replayed, i)), ==, 6 + i);
    }
  herald_test_client_free (client);
}

/* A server that answers READONLY (a replica; a demoted master): the node
 * stays degraded, delivers locally with "offset":null, and uses the server
 * as soon as it is a master. (Plain REDIS_URL: with sentinels the same drop
 * also asks the sentinels.) */
static void
test_readonly (void)
{
  guint16 port = herald_test_free_port ();
  GSubprocess *x = NULL;
  g_autofree char *url = g_strdup_printf ("redis://127.0.0.1:%u", port);
  g_autofree char *conf = g_build_filename (fx.dir, "herald.conf", NULL);
  guint16 master_port = sentinel_master_port ();
  HeraldTestNode c = { 0 };
  HeraldTestClient *client;
  guint64 readonly;

  x = start_redis (port, master_port);
  /* In sync: it has the epoch, so only the role tells it is no master. */
  HERALD_TEST_WAIT_UNTIL (replica_synced (port), 10000);
  herald_test_node_start (&c, conf, url, API_KEY, SECRET);
  HERALD_TEST_WAIT_UNTIL (metric (&c, "herald_redis_events_total{event=\"readonly\"} ") >= 1,
                          10000);
  g_assert_false (herald_test_node_healthy (&c));
  client = herald_test_node_ws_open (&c, NULL, NULL);
  json_object_unref (resume (client, "ro", 0, NULL, NULL));
  /* Both HTTP readers answer null. */
  for (int i = 0; i < 2; i++)
    {
      g_autoptr (JsonObject) m = NULL;

      g_assert_cmpuint (publish_via (&c, "ro", 1, i == 1), ==, 0);
      m = herald_test_ws_read_type (client, "message");
      g_assert_cmpint (message_n (m), ==, 1);
      g_assert_true (json_object_get_null_member (m, "offset"));
    }
  /* ... and so does the WebSocket "published" reply. */
  {
    g_autoptr (JsonObject) m = NULL;
    g_autoptr (JsonObject) ack = NULL;

    herald_test_ws_send_text (
        client, "{\"type\":\"message\",\"channel\":\"ro\",\"data\":{\"n\":1},\"id\":7}");
    ack = herald_test_ws_read_type (client, "published");
    g_assert_true (json_object_has_member (ack, "offset"));
    g_assert_true (json_object_get_null_member (ack, "offset"));
  }

  /* Promoted: used at once. */
  freeReplyObject (redis_cmd (port, "REPLICAOF NO ONE"));
  HERALD_TEST_WAIT_UNTIL (herald_test_node_healthy (&c), 10000);
  HERALD_TEST_WAIT_UNTIL (herald_test_redis_numsub (port, NULL, "herald:ch:ro") == 1, 5000);
  g_assert_cmpuint (publish (&c, "ro", 2), ==, 1);
  json_object_unref (herald_test_ws_read_type (client, "message"));

  /* Demoted under the node: the publish answers READONLY, is delivered
   * here without an offset, and the node drops the connection. */
  readonly = metric (&c, "herald_redis_events_total{event=\"readonly\"} ");
  freeReplyObject (redis_cmd (port, "REPLICAOF 127.0.0.1 %u", (guint)master_port));
  g_assert_cmpuint (publish (&c, "ro", 3), ==, 0);
  {
    g_autoptr (JsonObject) m = herald_test_ws_read_type (client, "message");
    g_assert_cmpint (message_n (m), ==, 3);
    g_assert_true (json_object_get_null_member (m, "offset"));
  }
  HERALD_TEST_WAIT_UNTIL (!herald_test_node_healthy (&c), 5000);
  g_assert_cmpuint (metric (&c, "herald_redis_events_total{event=\"readonly\"} "), >, readonly);

  herald_test_client_free (client);
  herald_test_node_stop (&c);
  stop (&x);
}

/* [redis] password: the master's; a sentinel gets it only when it asks
 * (NOAUTH), one without a password never gets AUTH (an error there). */
static void
test_password (void)
{
  guint16 master = herald_test_free_port (), open_port = herald_test_free_port (),
          locked_port = herald_test_free_port ();
  g_autofree char *master_text = g_strdup_printf ("%u", master);
  const char *argv[]
      = { "redis-server", "--port", master_text, "--bind", "127.0.0.1",     "--save", "",
          "--appendonly", "no",     "--dir",     fx.dir,   "--requirepass", "pw",     NULL };
  g_autofree char *monitor = g_strdup_printf ("sentinel monitor pwm 127.0.0.1 %u 1\n"
                                              "sentinel auth-pass pwm pw\n",
                                              master);
  g_autofree char *open_text = g_strdup_printf ("port %u\nbind 127.0.0.1\n%s", open_port, monitor);
  g_autofree char *locked_text
      = g_strdup_printf ("port %u\nbind 127.0.0.1\nrequirepass pw\n%s", locked_port, monitor);
  GSubprocess *m = spawn (argv), *open_s = NULL, *locked_s = NULL;
  HeraldTestNode d = { 0 }, e = { 0 }, f = { 0 };
  /* f's first sentinel does not know "pwm": the next one does. */
  const struct
  {
    HeraldTestNode *node;
    guint16 sentinel, before;
  } nodes[] = { { &d, open_port, 0 }, { &e, locked_port, 0 }, { &f, open_port, fx.sentinel_port } };

  HERALD_TEST_WAIT_UNTIL (herald_test_redis_answers (master, "pw"), 5000);
  open_s = spawn_sentinel (open_port, open_text, NULL);
  locked_s = spawn_sentinel (locked_port, locked_text, "pw");
  for (guint i = 0; i < G_N_ELEMENTS (nodes); i++)
    {
      g_autofree char *name = g_strdup_printf ("herald-pw-%u.conf", i);
      g_autofree char *conf = g_build_filename (fx.dir, name, NULL);
      g_autofree char *list = nodes[i].before ? g_strdup_printf ("127.0.0.1:%u;127.0.0.1:%u",
                                                                 nodes[i].before, nodes[i].sentinel)
                                              : g_strdup_printf ("127.0.0.1:%u", nodes[i].sentinel);
      g_autofree char *text = g_strdup_printf (
          "[server]\ndrain-seconds=0\n[auth]\njwt-secret=" SECRET "\nanonymous=true\n"
          "[redis]\nsentinels=%s\nsentinel-master=pwm\npassword=pw\n",
          list);
      g_autofree char *via = g_strdup_printf ("via Redis Sentinel 127.0.0.1:%u", nodes[i].sentinel);

      g_assert_true (g_file_set_contents (conf, text, -1, NULL));
      herald_test_node_start (nodes[i].node, conf, NULL, API_KEY, SECRET);
      /* A sentinel that refuses (NOAUTH) or does not know the master costs a
       * failed attempt; the link's backoff doubles up to 4 s, so a few
       * attempts can take ~10 s on a slow runner */
      HERALD_TEST_WAIT_UNTIL (herald_test_node_healthy (nodes[i].node), 30000);
      HERALD_TEST_WAIT_UNTIL (strstr (nodes[i].node->log->str, via) != NULL, 5000);
      g_assert_cmpuint (publish (nodes[i].node, "pw", 1), ==, i + 1);
      /* Only the sentinel with a password was sent one, after it asked. */
      g_assert_true ((strstr (nodes[i].node->log->str, "wants a password") != NULL) == (i == 1));
      if (nodes[i].before)
        g_assert_nonnull (strstr (nodes[i].node->log->str, "does not know the master"));
      herald_test_node_stop (nodes[i].node);
    }
  stop (&locked_s);
  stop (&open_s);
  stop (&m);
}

/* The sentinels gone: logged and counted, the known master still used. */
static void
test_sentinel_lost (void)
{
  stop (&fx.sentinel);
  HERALD_TEST_WAIT_UNTIL (
      metric (&fx.a, "herald_redis_events_total{event=\"sentinel_lost\"} ") >= 1, 10000);
  HERALD_TEST_WAIT_UNTIL (
      strstr (fx.a.log->str, "Redis Sentinel 127.0.0.1") && strstr (fx.a.log->str, "lost ("), 5000);
  g_assert_true (herald_test_node_healthy (&fx.a));
  g_assert_cmpuint (publish (&fx.a, "after-sentinel", 1), ==, 1);
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
  g_autofree char *conf_b = NULL;
  g_autofree char *conf_text_b = NULL;
  g_autofree char *redis_server = g_find_program_in_path ("redis-server");
  int status;

  g_test_init (&argc, &argv, NULL);
  if (redis_server == NULL)
    {
      g_printerr ("redis-server not found (scripts/install-deps.sh installs it)\n");
      if (g_strcmp0 (g_getenv ("CI"), "true") == 0)
        return 1;
      g_test_add_func ("/sentinel/skipped", (GTestFunc)g_test_incomplete);
      return g_test_run ();
    }

  g_timeout_add (20, tick, NULL);
  fx.dir = g_dir_make_tmp ("herald-sentinel-XXXXXX", &error);
  g_assert_no_error (error);
  fx.master_port = herald_test_free_port ();
  fx.replica_port = herald_test_free_port ();
  fx.sentinel_port = herald_test_free_port ();
  fx.master = start_redis (fx.master_port, 0);
  fx.replica = start_redis (fx.replica_port, fx.master_port);
  fx.sentinel = start_sentinel ();
  HERALD_TEST_WAIT_UNTIL (replica_ready (), 15000);

  conf = g_build_filename (fx.dir, "herald.conf", NULL);
  conf_text = g_strdup_printf ("[server]\ndrain-seconds=0\n[auth]\njwt-secret=" SECRET
                               "\nanonymous=true\nanonymous-publish=ro\n"
                               "[history]\nsize=100\nttl=300\n"
                               "[redis]\nsentinels=127.0.0.1:%u\nsentinel-master=" MASTER_NAME "\n",
                               fx.sentinel_port);
  g_assert_true (g_file_set_contents (conf, conf_text, -1, NULL));
  start_node (&fx.a);
  /* Node B's first sentinel is not there: it moves on to the next one. */
  conf_b = g_build_filename (fx.dir, "herald-b.conf", NULL);
  conf_text_b = g_strdup_printf ("[server]\ndrain-seconds=0\n[auth]\njwt-secret=" SECRET
                                 "\nanonymous=true\n"
                                 "[history]\nsize=100\nttl=300\n"
                                 "[redis]\nsentinels=127.0.0.1:%u;127.0.0.1:%u\n"
                                 "sentinel-master=" MASTER_NAME "\n",
                                 herald_test_free_port (), fx.sentinel_port);
  g_assert_true (g_file_set_contents (conf_b, conf_text_b, -1, NULL));
  herald_test_node_start (&fx.b, conf_b, NULL, API_KEY, SECRET);
  HERALD_TEST_WAIT_UNTIL (herald_test_node_healthy (&fx.a) && herald_test_node_healthy (&fx.b),
                          10000);

  g_test_add_func ("/sentinel/discovery", test_discovery);
  g_test_add_func ("/sentinel/lagged", test_lagged);
  g_test_add_func ("/sentinel/node-killed", test_node_killed);
  g_test_add_func ("/sentinel/live-gap", test_live_gap);
  g_test_add_func ("/sentinel/failover", test_failover);
  g_test_add_func ("/sentinel/readonly", test_readonly);
  g_test_add_func ("/sentinel/password", test_password);
  g_test_add_func ("/sentinel/sentinel-lost", test_sentinel_lost);
  status = g_test_run ();

  herald_test_node_stop (&fx.a);
  herald_test_node_stop (&fx.b);
  stop (&fx.sentinel);
  stop (&fx.replica);
  stop (&fx.master);
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
