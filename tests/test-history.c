/* test-history.c: history, recovery and presence end to end — recovery while
 * publishing continues (WebSocket since/epoch, SSE Last-Event-ID over two
 * channels), the cases that cannot recover, and presence events and queries
 * with several users, several connections per user and two workers.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>

#include "herald-jwt.h"
#include "herald-memory-engine.h"
#include "herald-test-server.h"

#define API "[api]\nkey=k\n"
#define AUTH "Authorization: Bearer k\r\n"
#define ROUNDS 4

static guint64
publish (HeraldTestServer *server, const char *channel, const char *data)
{
  g_autofree char *body = g_strdup_printf ("{\"channel\":\"%s\",\"data\":%s}", channel, data);
  g_autofree char *answer = NULL;
  const char *offset;
  guint status = 0;

  answer = herald_test_http (server, "POST", "/api/publish", AUTH, body, &status);
  g_assert_cmpuint (status, ==, 200);
  offset = strstr (answer, "\"offset\":");
  g_assert_nonnull (offset);
  return g_ascii_strtoull (offset + 9, NULL, 10);
}

static JsonObject *
expect_type (HeraldTestClient *client, const char *type)
{
  JsonObject *obj = herald_test_ws_read_json (client);

  g_assert_nonnull (obj);
  g_assert_cmpstr (herald_test_json_get_string (obj, "type"), ==, type);
  return obj;
}

static JsonObject *
subscribe (HeraldTestClient *client, const char *request)
{
  herald_test_ws_send_text (client, request);
  return expect_type (client, "subscribed");
}

/* ---- a publisher thread: HTTP publishes round-robin over channels ---- */

typedef struct
{
  HeraldTestServer *server;
  const char *channels[3];
  guint n_channels;
  gint stop;
  gint published;
  guint64 last[2]; /* last offset per channel; read after the join */
  GThread *thread;
} Publisher;

static gpointer
publisher_run (gpointer data)
{
  Publisher *p = data;

  for (guint n = 0; !g_atomic_int_get (&p->stop); n++)
    {
      g_autofree char *value = g_strdup_printf ("%u", n);
      guint which = n % p->n_channels;
      p->last[which] = publish (p->server, p->channels[which], value);
      g_atomic_int_inc (&p->published);
    }
  return NULL;
}

static void
publisher_start (Publisher *p, HeraldTestServer *server, const char *a, const char *b)
{
  memset (p, 0, sizeof *p);
  p->server = server;
  p->channels[0] = a;
  p->channels[1] = b;
  p->n_channels = b ? 2 : 1;
  p->thread = g_thread_new ("publisher", publisher_run, p);
}

static void
publisher_stop (Publisher *p)
{
  g_atomic_int_set (&p->stop, 1);
  g_thread_join (p->thread);
}

/* Waits (bounded) until @count messages in all were published. */
static void
publisher_wait (Publisher *p, gint count)
{
  gint64 deadline = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;

  while (g_atomic_int_get (&p->published) < count)
    {
      g_assert_cmpint (g_get_monotonic_time (), <, deadline);
      g_usleep (1000);
    }
}

/* ---- WebSocket ---- */

/* Every subscribed reply carries the position the live stream starts after. */
static void
test_subscribed_position (void)
{
  HeraldTestServer *server = herald_test_server_start (API, 2);
  HeraldTestClient *ws = herald_test_ws_open (server, "/ws", NULL);
  g_autoptr (JsonObject) r = NULL;
  g_autofree char *epoch = NULL;

  r = subscribe (ws, "{\"type\":\"subscribe\",\"channel\":\"p\"}");
  g_assert_cmpint (json_object_get_int_member (r, "offset"), ==, 0);
  epoch = g_strdup (herald_test_json_get_string (r, "epoch"));
  g_assert_nonnull (epoch);
  g_assert_cmpuint (strlen (epoch), >, 0);
  g_assert_false (json_object_has_member (r, "recovered"));
  g_clear_pointer (&r, json_object_unref);
  herald_test_client_free (ws);

  publish (server, "p", "1");
  publish (server, "p", "2");
  ws = herald_test_ws_open (server, "/ws", NULL);
  r = subscribe (ws, "{\"type\":\"subscribe\",\"channel\":\"p\"}");
  g_assert_cmpint (json_object_get_int_member (r, "offset"), ==, 2);
  g_assert_cmpstr (herald_test_json_get_string (r, "epoch"), ==, epoch);
  g_clear_pointer (&r, json_object_unref);
  publish (server, "p", "3");
  r = expect_type (ws, "message");
  g_assert_cmpint (json_object_get_int_member (r, "offset"), ==, 3);
  g_clear_pointer (&r, json_object_unref);

  /* that position resumes exactly */
  herald_test_client_free (ws);
  publish (server, "p", "4");
  ws = herald_test_ws_open (server, "/ws", NULL);
  herald_test_ws_send_text (ws, "{\"type\":\"subscribe\",\"channel\":\"p\",\"since\":3}");
  r = expect_type (ws, "message");
  g_assert_cmpint (json_object_get_int_member (r, "offset"), ==, 4);
  g_clear_pointer (&r, json_object_unref);
  r = expect_type (ws, "subscribed");
  g_assert_true (json_object_get_boolean_member (r, "recovered"));
  g_assert_cmpint (json_object_get_int_member (r, "offset"), ==, 4);
  herald_test_client_free (ws);
  herald_test_server_stop (server);
}

/* Reads messages of @channel until offset @until, checking each is @*next. */
static void
read_ws_until (HeraldTestClient *ws, guint64 *next, guint64 until)
{
  while (*next <= until)
    {
      g_autoptr (JsonObject) m = expect_type (ws, "message");
      g_assert_cmpint (json_object_get_int_member (m, "offset"), ==, *next);
      (*next)++;
    }
}

/* A client resumes with since/epoch in the middle of a publishing stream:
 * every offset exactly once, in order, replayed then live. */
static void
test_ws_recovery_while_publishing (void)
{
  HeraldTestServer *server = herald_test_server_start (API "[history]\nsize=10000\n", 2);

  for (int round = 0; round < ROUNDS; round++)
    {
      g_autofree char *channel = g_strdup_printf ("race%d", round);
      g_autofree char *request = NULL;
      g_autofree char *epoch = NULL;
      g_autoptr (JsonObject) r = NULL;
      HeraldTestClient *ws = herald_test_ws_open (server, "/ws", NULL);
      Publisher pub;
      guint64 next, top, marker;
      gint seen;

      /* Subscribing while publishing: the live stream starts right after
       * the offset in the reply. */
      publisher_start (&pub, server, channel, NULL);
      publisher_wait (&pub, 5);
      request = g_strdup_printf ("{\"type\":\"subscribe\",\"channel\":\"%s\"}", channel);
      r = subscribe (ws, request);
      next = json_object_get_int_member (r, "offset") + 1;
      g_assert_cmpuint (next, >, 1);
      epoch = g_strdup (herald_test_json_get_string (r, "epoch"));
      g_clear_pointer (&r, json_object_unref);
      read_ws_until (ws, &next, next + 19);
      herald_test_client_free (ws);

      /* missed while away: at least 20 more */
      publisher_wait (&pub, (gint)next + 20);
      ws = herald_test_ws_open (server, "/ws", NULL);
      g_clear_pointer (&request, g_free);
      request = g_strdup_printf (
          "{\"type\":\"subscribe\",\"channel\":\"%s\",\"since\":%" G_GUINT64_FORMAT
          ",\"epoch\":\"%s\"}",
          channel, next - 1, epoch);
      herald_test_ws_send_text (ws, request);
      seen = 0;
      for (;;)
        {
          g_autoptr (JsonObject) m = herald_test_ws_read_json (ws);
          g_assert_nonnull (m);
          if (g_strcmp0 (herald_test_json_get_string (m, "type"), "subscribed") == 0)
            {
              r = g_steal_pointer (&m);
              break;
            }
          g_assert_cmpstr (herald_test_json_get_string (m, "type"), ==, "message");
          g_assert_cmpint (json_object_get_int_member (m, "offset"), ==, next);
          next++;
          seen++;
        }
      g_assert_cmpint (seen, >=, 20); /* the replay */
      g_assert_true (json_object_get_boolean_member (r, "recovered"));
      g_assert_cmpstr (herald_test_json_get_string (r, "epoch"), ==, epoch);
      top = json_object_get_int_member (r, "offset");
      g_assert_cmpuint (top, ==, next - 1);

      /* then live, while the publisher still runs */
      read_ws_until (ws, &next, next + 49);
      publisher_stop (&pub);
      g_assert_cmpuint (pub.last[0], >=, next - 1);
      read_ws_until (ws, &next, pub.last[0]);

      /* nothing more than the marker: a duplicate would come before it */
      marker = publish (server, channel, "\"end\"");
      read_ws_until (ws, &next, marker);
      herald_test_client_free (ws);
    }
  herald_test_server_stop (server);
}

/* recovered:false beyond history, beyond the top, and from another epoch;
 * the live stream then continues after the offset in the reply. */
static void
test_ws_not_recovered (void)
{
  HeraldTestServer *server = herald_test_server_start (API "[history]\nsize=3\n", 2);
  HeraldTestClient *ws;
  g_autoptr (JsonObject) r = NULL;
  g_autofree char *epoch = NULL;
  const char *requests[] = {
    "{\"type\":\"subscribe\",\"channel\":\"h\",\"since\":1}",  /* dropped from history */
    "{\"type\":\"subscribe\",\"channel\":\"h\",\"since\":99}", /* never existed */
    "{\"type\":\"subscribe\",\"channel\":\"h\",\"since\":4,\"epoch\":\"0ther\"}",
  };

  for (int i = 1; i <= 5; i++)
    {
      g_autofree char *d = g_strdup_printf ("%d", i);
      publish (server, "h", d);
    }
  for (guint i = 0; i < G_N_ELEMENTS (requests); i++)
    {
      ws = herald_test_ws_open (server, "/ws", NULL);
      r = subscribe (ws, requests[i]); /* nothing replayed before it */
      g_assert_false (json_object_get_boolean_member (r, "recovered"));
      g_assert_cmpint (json_object_get_int_member (r, "offset"), ==, 5 + i);
      g_clear_pointer (&epoch, g_free);
      epoch = g_strdup (herald_test_json_get_string (r, "epoch"));
      g_clear_pointer (&r, json_object_unref);
      publish (server, "h", "0");
      r = expect_type (ws, "message");
      g_assert_cmpint (json_object_get_int_member (r, "offset"), ==, 6 + i);
      g_clear_pointer (&r, json_object_unref);
      herald_test_client_free (ws);
    }

  /* the right epoch, since equal to the top: recovered, nothing replayed */
  ws = herald_test_ws_open (server, "/ws", NULL);
  {
    g_autofree char *req = g_strdup_printf (
        "{\"type\":\"subscribe\",\"channel\":\"h\",\"since\":8,\"epoch\":\"%s\"}", epoch);
    r = subscribe (ws, req);
  }
  g_assert_true (json_object_get_boolean_member (r, "recovered"));
  g_assert_cmpint (json_object_get_int_member (r, "offset"), ==, 8);
  herald_test_client_free (ws);
  herald_test_server_stop (server);
}

/* A channel the in-process engine forgot (no subscriber, idle for the ttl:
 * simulated with expire_at) comes back at offset 1 in a new epoch; resuming
 * with the old epoch is not recovered, and live delivery works. */
static void
test_ws_forgotten_channel (void)
{
  HeraldTestServer *server = herald_test_server_start (API, 2);
  HeraldEngine *engine = herald_hub_get_engine (server->hub);
  HeraldTestClient *ws = herald_test_ws_open (server, "/ws", NULL);
  g_autoptr (JsonObject) r = NULL;
  g_autofree char *epoch = NULL;
  g_autofree char *req = NULL;
  gint64 deadline;

  r = subscribe (ws, "{\"type\":\"subscribe\",\"channel\":\"gone\"}");
  epoch = g_strdup (herald_test_json_get_string (r, "epoch"));
  g_clear_pointer (&r, json_object_unref);
  for (int i = 1; i <= 3; i++)
    {
      g_assert_cmpuint (publish (server, "gone", "0"), ==, (guint64)i);
      r = expect_type (ws, "message");
      g_clear_pointer (&r, json_object_unref);
    }
  herald_test_client_free (ws);

  /* Once the worker let go of it, a sweep 301 s later forgets it. */
  deadline = g_get_monotonic_time () + 5 * G_USEC_PER_SEC;
  while (herald_engine_count_channels (engine) != 0 && g_get_monotonic_time () < deadline)
    {
      herald_memory_engine_expire_at (HERALD_MEMORY_ENGINE (engine),
                                      g_get_monotonic_time () + 301 * G_USEC_PER_SEC);
      g_usleep (10 * G_TIME_SPAN_MILLISECOND);
    }
  g_assert_cmpint (herald_engine_count_channels (engine), ==, 0);

  ws = herald_test_ws_open (server, "/ws", NULL);
  req = g_strdup_printf (
      "{\"type\":\"subscribe\",\"channel\":\"gone\",\"since\":3,\"epoch\":\"%s\"}", epoch);
  r = subscribe (ws, req);
  g_assert_false (json_object_get_boolean_member (r, "recovered"));
  g_assert_cmpint (json_object_get_int_member (r, "offset"), ==, 0);
  g_assert_cmpstr (herald_test_json_get_string (r, "epoch"), !=, epoch);
  g_clear_pointer (&r, json_object_unref);
  g_assert_cmpuint (publish (server, "gone", "1"), ==, 1);
  r = expect_type (ws, "message");
  g_assert_cmpint (json_object_get_int_member (r, "offset"), ==, 1);
  herald_test_client_free (ws);
  herald_test_server_stop (server);
}

/* [history] size=0: nothing to replay, so only "nothing missed" recovers. */
static void
test_ws_no_history (void)
{
  HeraldTestServer *server = herald_test_server_start (API "[history]\nsize=0\n", 1);
  HeraldTestClient *ws;
  g_autoptr (JsonObject) r = NULL;

  publish (server, "n", "1");
  publish (server, "n", "2");
  ws = herald_test_ws_open (server, "/ws", NULL);
  r = subscribe (ws, "{\"type\":\"subscribe\",\"channel\":\"n\",\"since\":1}");
  g_assert_false (json_object_get_boolean_member (r, "recovered"));
  g_clear_pointer (&r, json_object_unref);
  r = subscribe (ws, "{\"type\":\"subscribe\",\"channel\":\"n2\",\"since\":0}");
  g_assert_true (json_object_get_boolean_member (r, "recovered"));
  g_clear_pointer (&r, json_object_unref);
  herald_test_client_free (ws);
  ws = herald_test_ws_open (server, "/ws", NULL);
  r = subscribe (ws, "{\"type\":\"subscribe\",\"channel\":\"n\",\"since\":2}");
  g_assert_true (json_object_get_boolean_member (r, "recovered"));
  herald_test_client_free (ws);
  herald_test_server_stop (server);
}

/* ---- SSE ---- */

typedef struct
{
  char *id;
  char *event;
  JsonObject *data;
} SseEvent;

static void
sse_event_free (SseEvent *ev)
{
  g_free (ev->id);
  g_free (ev->event);
  g_clear_pointer (&ev->data, json_object_unref);
  g_free (ev);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC (SseEvent, sse_event_free)

/* Next event (comments skipped); asserts one arrived. */
static SseEvent *
sse_next (HeraldTestClient *sse)
{
  for (;;)
    {
      g_autofree char *text = herald_test_sse_read_event (sse);
      g_auto (GStrv) lines = NULL;
      SseEvent *ev;

      g_assert_nonnull (text);
      if (text[0] == ':')
        continue;
      ev = g_new0 (SseEvent, 1);
      lines = g_strsplit (text, "\n", -1);
      for (guint i = 0; lines[i]; i++)
        {
          if (g_str_has_prefix (lines[i], "id: "))
            ev->id = g_strdup (lines[i] + 4);
          else if (g_str_has_prefix (lines[i], "event: "))
            ev->event = g_strdup (lines[i] + 7);
          else if (g_str_has_prefix (lines[i], "data: "))
            {
              g_autoptr (JsonParser) parser = json_parser_new ();
              g_assert_true (json_parser_load_from_data (parser, lines[i] + 6, -1, NULL));
              ev->data = json_object_ref (json_node_get_object (json_parser_get_root (parser)));
            }
        }
      return ev;
    }
}

static guint64
sse_id_seq (const char *id)
{
  const char *dash = strrchr (id, '-');

  g_assert_nonnull (dash);
  return g_ascii_strtoull (dash + 1, NULL, 10);
}

/* Opens /events?@query with Last-Event-ID @last_id (may be NULL); reads the
 * retry block and returns the client. */
static HeraldTestClient *
sse_open (HeraldTestServer *server, const char *query, const char *last_id)
{
  HeraldTestClient *sse = herald_test_client_connect (server);
  g_autofree char *req = NULL;
  g_autofree char *retry = NULL;

  req = g_strdup_printf ("GET /events?%s HTTP/1.1\r\nHost: x\r\n%s%s%s\r\n", query,
                         last_id ? "Last-Event-ID: " : "", last_id ? last_id : "",
                         last_id ? "\r\n" : "");
  herald_test_client_send_raw (sse, req, strlen (req));
  g_assert_cmpuint (herald_test_client_read_head (sse, NULL), ==, 200);
  retry = herald_test_sse_read_event (sse);
  g_assert_nonnull (strstr (retry, "retry: "));
  return sse;
}

typedef struct
{
  const char *channels[2];
  guint64 next[2]; /* next expected offset per channel (0 = not known yet) */
  guint64 last_seq;
  char *last_id;
  guint count;
} SseTrack;

/* Reads one message event and checks it continues its channel and the stream. */
static void
sse_track_one (HeraldTestClient *sse, SseTrack *t)
{
  g_autoptr (SseEvent) ev = sse_next (sse);
  const char *channel;
  guint64 offset, seq;
  guint which;

  g_assert_cmpstr (ev->event, ==, "message");
  g_assert_nonnull (ev->id);
  channel = herald_test_json_get_string (ev->data, "channel");
  which = g_strcmp0 (channel, t->channels[0]) == 0 ? 0 : 1;
  g_assert_cmpstr (channel, ==, t->channels[which]);
  offset = json_object_get_int_member (ev->data, "offset");
  if (t->next[which] != 0)
    g_assert_cmpuint (offset, ==, t->next[which]);
  t->next[which] = offset + 1;
  seq = sse_id_seq (ev->id);
  g_assert_cmpuint (seq, >, t->last_seq);
  t->last_seq = seq;
  g_free (t->last_id);
  t->last_id = g_strdup (ev->id);
  t->count++;
}

/* An EventSource on two channels reconnects with Last-Event-ID while
 * publishing continues: each channel's offsets exactly once, in order, and
 * the ids keep increasing across the reconnect. */
static void
test_sse_resume_while_publishing (void)
{
  HeraldTestServer *server = herald_test_server_start (API "[history]\nsize=10000\n", 2);

  for (int round = 0; round < ROUNDS; round++)
    {
      g_autofree char *a = g_strdup_printf ("sa%d", round);
      g_autofree char *b = g_strdup_printf ("sb%d", round);
      g_autofree char *query = g_strdup_printf ("channel=%s&channel=%s", a, b);
      SseTrack t = { { a, b }, { 0, 0 }, 0, NULL, 0 };
      HeraldTestClient *sse = sse_open (server, query, NULL);
      g_autoptr (SseEvent) connected = sse_next (sse);
      Publisher pub;
      guint64 marker_a, marker_b;
      gint published;

      g_assert_cmpstr (connected->event, ==, "connected");
      /* The first events of a fresh stream start wherever the publisher is:
       * mark the start known once both channels were seen. */
      publisher_start (&pub, server, a, b);
      while (t.count < 30)
        sse_track_one (sse, &t);
      herald_test_client_free (sse);

      published = g_atomic_int_get (&pub.published);
      publisher_wait (&pub, published + 30);
      sse = sse_open (server, query, t.last_id);
      g_clear_pointer (&connected, sse_event_free);
      connected = sse_next (sse);
      g_assert_cmpstr (connected->event, ==, "connected"); /* no reset */
      while (t.count < 130)
        sse_track_one (sse, &t);
      publisher_stop (&pub);

      marker_a = publish (server, a, "\"end\"");
      marker_b = publish (server, b, "\"end\"");
      while (t.next[0] <= marker_a || t.next[1] <= marker_b)
        sse_track_one (sse, &t);
      g_assert_cmpuint (t.next[0], ==, marker_a + 1);
      g_assert_cmpuint (t.next[1], ==, marker_b + 1);
      g_free (t.last_id);
      herald_test_client_free (sse);
    }
  herald_test_server_stop (server);
}

/* History lost: event reset, whose id resumes from the reset point. */
static void
test_sse_reset (void)
{
  HeraldTestServer *server = herald_test_server_start (API "[history]\nsize=2\n", 2);
  HeraldTestClient *sse = sse_open (server, "channel=r", NULL);
  g_autoptr (SseEvent) ev = sse_next (sse);
  g_autofree char *last_id = NULL;
  g_autofree char *reset_id = NULL;
  guint64 reset_seq;

  g_assert_cmpstr (ev->event, ==, "connected");
  g_clear_pointer (&ev, sse_event_free);
  for (int i = 0; i < 100; i++)
    {
      guint status;
      g_autofree char *p
          = herald_test_http (server, "GET", "/api/channels/r/presence", AUTH, NULL, &status);
      if (strstr (p, "\"connections\":1"))
        break;
      g_usleep (10000);
    }
  publish (server, "r", "1");
  ev = sse_next (sse);
  last_id = g_strdup (ev->id);
  g_clear_pointer (&ev, sse_event_free);
  herald_test_client_free (sse);

  /* three missed, two kept */
  publish (server, "r", "2");
  publish (server, "r", "3");
  publish (server, "other", "0");
  publish (server, "r", "4");
  sse = sse_open (server, "channel=r", last_id);
  ev = sse_next (sse);
  g_assert_cmpstr (ev->event, ==, "reset");
  reset_id = g_strdup (ev->id);
  reset_seq = sse_id_seq (reset_id);
  g_assert_cmpuint (reset_seq, ==, 5); /* the stream position when it reset */
  g_clear_pointer (&ev, sse_event_free);
  ev = sse_next (sse);
  g_assert_cmpstr (ev->event, ==, "connected");
  g_clear_pointer (&ev, sse_event_free);
  herald_test_client_free (sse);

  /* resuming from the reset: nothing replayed from before it, no second reset */
  publish (server, "r", "5");
  sse = sse_open (server, "channel=r", reset_id);
  ev = sse_next (sse);
  g_assert_cmpstr (ev->event, ==, "connected");
  g_clear_pointer (&ev, sse_event_free);
  ev = sse_next (sse);
  g_assert_cmpstr (ev->event, ==, "message");
  g_assert_cmpint (json_object_get_int_member (ev->data, "offset"), ==, 5);
  g_assert_cmpuint (sse_id_seq (ev->id), ==, 6);
  g_clear_pointer (&ev, sse_event_free);
  herald_test_client_free (sse);

  /* an id that is not Herald's: reset at the current position too */
  sse = sse_open (server, "channel=r", "not an id");
  ev = sse_next (sse);
  g_assert_cmpstr (ev->event, ==, "reset");
  {
    /* same epoch as before, position 6 */
    g_autofree char *expected
        = g_strdup_printf ("%.*s-6", (int)(strrchr (reset_id, '-') - reset_id), reset_id);
    g_assert_cmpstr (ev->id, ==, expected);
  }
  herald_test_client_free (sse);
  herald_test_server_stop (server);
}

/* A fresh stream starts with a position: a reconnect before its first
 * message still gets what was published in between. */
static void
test_sse_fresh_stream_id (void)
{
  HeraldTestServer *server = herald_test_server_start (API, 2);
  HeraldTestClient *sse;
  g_autoptr (SseEvent) ev = NULL;
  g_autofree char *id = NULL;

  publish (server, "f", "1");
  publish (server, "other", "2");
  sse = sse_open (server, "channel=f", NULL);
  ev = sse_next (sse);
  g_assert_cmpstr (ev->event, ==, "connected");
  g_assert_nonnull (ev->id);
  g_assert_cmpuint (sse_id_seq (ev->id), ==, 2);
  id = g_strdup (ev->id);
  g_clear_pointer (&ev, sse_event_free);
  herald_test_client_free (sse);

  publish (server, "f", "3");
  publish (server, "other", "4");
  publish (server, "f", "5");
  sse = sse_open (server, "channel=f", id);
  ev = sse_next (sse);
  g_assert_cmpstr (ev->event, ==, "connected"); /* no reset */
  g_assert_null (ev->id);                       /* a resumed stream's position is its last id */
  for (int offset = 2; offset <= 3; offset++)
    {
      g_clear_pointer (&ev, sse_event_free);
      ev = sse_next (sse);
      g_assert_cmpstr (ev->event, ==, "message");
      g_assert_cmpint (json_object_get_int_member (ev->data, "offset"), ==, offset);
      g_assert_cmpint (json_object_get_int_member (ev->data, "data"), ==, 2 * offset - 1);
    }
  herald_test_client_free (sse);
  herald_test_server_stop (server);
}

/* ---- presence ---- */

#define PRESENCE_CONF API "[auth]\njwt-secret=s3cret\nanonymous=true\n"

static HeraldTestClient *
open_user (HeraldTestServer *server, const char *user)
{
  g_autoptr (GBytes) secret = g_bytes_new_static ("s3cret", 6);
  g_autofree char *claims = g_strdup_printf ("{\"sub\":\"%s\"}", user);
  g_autofree char *token = herald_jwt_sign_hs256 (secret, claims);
  g_autofree char *path = g_strdup_printf ("/ws?token=%s", token);

  return herald_test_ws_open (server, path, NULL);
}

static void
expect_presence_event (HeraldTestClient *ws, const char *type, const char *user)
{
  g_autoptr (JsonObject) e = expect_type (ws, type);

  g_assert_cmpstr (herald_test_json_get_string (e, "channel"), ==, "room");
  g_assert_cmpstr (herald_test_json_get_string (e, "user_id"), ==, user);
  g_assert_false (json_object_has_member (e, "offset"));
}

typedef struct
{
  GPtrArray *channels;
  gboolean done;
} ListData;

static void
on_channels (GObject *source, GAsyncResult *result, gpointer user_data)
{
  ListData *data = user_data;
  g_autoptr (GError) error = NULL;

  data->channels = herald_hub_list_channels_finish (HERALD_HUB (source), result, &error);
  g_assert_no_error (error);
  data->done = TRUE;
}

static guint
channel_subscribers (HeraldTestServer *server, const char *name)
{
  ListData data = { NULL, FALSE };
  gint64 deadline = g_get_monotonic_time () + 5 * G_USEC_PER_SEC;
  guint n = 0;

  herald_hub_list_channels_async (server->hub, on_channels, &data);
  while (!data.done)
    {
      g_assert_cmpint (g_get_monotonic_time (), <, deadline);
      g_main_context_iteration (NULL, FALSE);
      g_usleep (1000);
    }
  for (guint i = 0; i < data.channels->len; i++)
    {
      HeraldChannelInfo *info = g_ptr_array_index (data.channels, i);
      if (g_str_equal (info->name, name))
        n = info->subscribers;
    }
  g_ptr_array_unref (data.channels);
  return n;
}

static void
assert_presence (HeraldTestServer *server, HeraldTestClient *ws, const char *users,
                 guint connections)
{
  g_autofree char *expected = g_strdup_printf (
      "{\"channel\":\"room\",\"users\":%s,\"connections\":%u,\"next\":null}", users, connections);
  g_autoptr (JsonObject) r = NULL;
  g_autoptr (JsonNode) node = NULL;
  g_autofree char *users_json = NULL;
  g_autofree char *body = NULL;
  guint status = 0;

  body = herald_test_http (server, "GET", "/api/channels/room/presence", AUTH, NULL, &status);
  g_assert_cmpuint (status, ==, 200);
  g_assert_cmpstr (body, ==, expected);

  herald_test_ws_send_text (ws, "{\"type\":\"presence\",\"channel\":\"room\",\"id\":7}");
  r = expect_type (ws, "presence");
  g_assert_cmpint (json_object_get_int_member (r, "connections"), ==, connections);
  node = json_node_init_array (json_node_alloc (), json_object_get_array_member (r, "users"));
  users_json = json_to_string (node, FALSE);
  g_assert_cmpstr (users_json, ==, users);

  g_assert_cmpuint (channel_subscribers (server, "room"), ==, connections);
}

/* Join/leave per user, not per connection; only for subscriptions that asked. */
static void
test_presence_events (void)
{
  HeraldTestServer *server = herald_test_server_start (PRESENCE_CONF, 2);
  HeraldTestClient *watcher = herald_test_ws_open (server, "/ws", NULL); /* anonymous */
  HeraldTestClient *plain = herald_test_ws_open (server, "/ws", NULL);
  HeraldTestClient *alice1 = open_user (server, "alice");
  HeraldTestClient *alice2 = open_user (server, "alice");
  HeraldTestClient *bob = open_user (server, "bob");
  g_autoptr (JsonObject) r = NULL;
  const char *sub = "{\"type\":\"subscribe\",\"channel\":\"room\"}";

  r = subscribe (watcher, "{\"type\":\"subscribe\",\"channel\":\"room\",\"presence\":true}");
  g_clear_pointer (&r, json_object_unref);
  r = subscribe (plain, sub);
  g_clear_pointer (&r, json_object_unref);
  assert_presence (server, watcher, "[]", 2); /* anonymous: connections, no users */

  r = subscribe (alice1, sub);
  g_clear_pointer (&r, json_object_unref);
  expect_presence_event (watcher, "join", "alice");
  r = subscribe (alice2, sub); /* second connection of the same user: no event */
  g_clear_pointer (&r, json_object_unref);
  r = subscribe (bob, sub);
  g_clear_pointer (&r, json_object_unref);
  expect_presence_event (watcher, "join", "bob");
  assert_presence (server, watcher, "[\"alice\",\"bob\"]", 5);

  herald_test_ws_send_text (alice1, "{\"type\":\"unsubscribe\",\"channel\":\"room\"}");
  r = expect_type (alice1, "unsubscribed");
  g_clear_pointer (&r, json_object_unref);
  assert_presence (server, watcher, "[\"alice\",\"bob\"]", 4);
  herald_test_client_free (alice2); /* the last one leaves: by closing */
  expect_presence_event (watcher, "leave", "alice");
  assert_presence (server, watcher, "[\"bob\"]", 3);

  /* a user back on the channel joins again */
  r = subscribe (alice1, sub);
  g_clear_pointer (&r, json_object_unref);
  expect_presence_event (watcher, "join", "alice");
  herald_test_client_free (bob);
  expect_presence_event (watcher, "leave", "bob");
  herald_test_client_free (alice1);
  expect_presence_event (watcher, "leave", "alice");
  assert_presence (server, watcher, "[]", 2);

  /* the subscription without presence got none of it: first frame is the message */
  publish (server, "room", "42");
  r = expect_type (plain, "message");
  g_assert_cmpint (json_object_get_int_member (r, "data"), ==, 42);
  g_clear_pointer (&r, json_object_unref);
  r = expect_type (watcher, "message");
  g_clear_pointer (&r, json_object_unref);

  /* a user's SSE connection is a connection of that user too */
  {
    g_autoptr (GBytes) secret = g_bytes_new_static ("s3cret", 6);
    g_autofree char *token = herald_jwt_sign_hs256 (secret, "{\"sub\":\"carol\"}");
    g_autofree char *query = g_strdup_printf ("channel=room&token=%s", token);
    HeraldTestClient *sse = sse_open (server, query, NULL);

    expect_presence_event (watcher, "join", "carol");
    assert_presence (server, watcher, "[\"carol\"]", 3);
    herald_test_client_free (sse);
    expect_presence_event (watcher, "leave", "carol");
  }

  /* presence can be turned off again */
  r = subscribe (watcher, "{\"type\":\"subscribe\",\"channel\":\"room\",\"presence\":false}");
  g_clear_pointer (&r, json_object_unref);
  bob = open_user (server, "bob");
  r = subscribe (bob, sub);
  g_clear_pointer (&r, json_object_unref);
  publish (server, "room", "43");
  r = expect_type (watcher, "message");
  g_assert_cmpint (json_object_get_int_member (r, "data"), ==, 43);
  /* stopping with users still on the channel */
  herald_test_server_stop (server);
  herald_test_client_free (bob);
  herald_test_client_free (plain);
  herald_test_client_free (watcher);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/history/subscribed-position", test_subscribed_position);
  g_test_add_func ("/history/ws-recovery-while-publishing", test_ws_recovery_while_publishing);
  g_test_add_func ("/history/ws-not-recovered", test_ws_not_recovered);
  g_test_add_func ("/history/ws-no-history", test_ws_no_history);
  g_test_add_func ("/history/ws-forgotten-channel", test_ws_forgotten_channel);
  g_test_add_func ("/history/sse-resume-while-publishing", test_sse_resume_while_publishing);
  g_test_add_func ("/history/sse-reset", test_sse_reset);
  g_test_add_func ("/history/sse-fresh-stream-id", test_sse_fresh_stream_id);
  g_test_add_func ("/history/presence-events", test_presence_events);
  return g_test_run ();
}
