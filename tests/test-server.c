/* test-server.c: Herald end to end over real sockets — WebSocket protocol,
 * SSE, HTTP API delivery, limits and close codes.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>
#include <sys/socket.h>

#include "herald-jwt.h"
#include "herald-subscribe.h"
#include "herald-test-server.h"
#include "herald-worker.h"

#define API "[api]\nkey=k\n"
#define AUTH "Authorization: Bearer k\r\n"

static void
publish (HeraldTestServer *server, const char *channel, const char *data)
{
  g_autofree char *body = g_strdup_printf ("{\"channel\":\"%s\",\"data\":%s}", channel, data);
  g_autofree char *answer = NULL;
  guint status = 0;

  answer = herald_test_http (server, "POST", "/api/publish", AUTH, body, &status);
  g_assert_cmpuint (status, ==, 200);
  g_assert_nonnull (strstr (answer, "\"offset\""));
}

static JsonObject *
expect_type (HeraldTestClient *client, const char *type)
{
  JsonObject *obj = herald_test_ws_read_json (client);

  g_assert_nonnull (obj);
  g_assert_cmpstr (herald_test_json_get_string (obj, "type"), ==, type);
  return obj;
}

static void
subscribe (HeraldTestClient *client, const char *channel)
{
  g_autofree char *text = g_strdup_printf ("{\"type\":\"subscribe\",\"channel\":\"%s\"}", channel);
  g_autoptr (JsonObject) reply = NULL;

  herald_test_ws_send_text (client, text);
  reply = expect_type (client, "subscribed");
  g_assert_cmpstr (herald_test_json_get_string (reply, "channel"), ==, channel);
}

static void
test_connected_frame (void)
{
  HeraldTestServer *server = herald_test_server_start (NULL, 2);
  HeraldTestClient *client = herald_test_client_connect (server);
  g_autoptr (JsonObject) hello = NULL;
  const char *id;

  g_assert_cmpuint (herald_test_ws_handshake (client, "/ws", NULL, NULL), ==, 101);
  hello = expect_type (client, "connected");
  id = herald_test_json_get_string (hello, "connection_id");
  g_assert_nonnull (id);
  g_assert_cmpuint (strlen (id), >=, 16); /* ≥ 96 bits in base64url */
  g_assert_true (json_object_has_member (hello, "user_id"));
  g_assert_true (json_object_get_null_member (hello, "user_id"));
  g_assert_cmpint (json_object_get_int_member (hello, "heartbeat_interval"), ==, 30);
  herald_test_client_free (client);
  herald_test_server_stop (server);
}

static void
test_publish_reaches_ws_and_sse (void)
{
  HeraldTestServer *server = herald_test_server_start (API, 2);
  HeraldTestClient *ws = herald_test_ws_open (server, "/ws", NULL);
  HeraldTestClient *sse = herald_test_client_connect (server);
  g_autofree char *request = g_strdup ("GET /events?channel=news HTTP/1.1\r\nHost: x\r\n\r\n");
  g_autofree char *head = NULL;
  g_autofree char *ev = NULL;
  g_autoptr (JsonObject) msg = NULL;
  JsonObject *data;
  guint status = 0;

  subscribe (ws, "news");
  herald_test_client_send_raw (sse, request, strlen (request));
  g_assert_cmpuint (herald_test_client_read_head (sse, &head), ==, 200);
  g_assert_nonnull (strstr (head, "text/event-stream"));
  g_assert_nonnull (strstr (head, "Cache-Control: no-cache"));
  /* retry line, then the connected event */
  ev = herald_test_sse_read_event (sse);
  g_assert_nonnull (strstr (ev, "retry: "));
  g_clear_pointer (&ev, g_free);
  ev = herald_test_sse_read_event (sse);
  g_assert_nonnull (strstr (ev, "event: connected"));
  g_clear_pointer (&ev, g_free);
  /* wait until the SSE subscription is registered in its worker */
  for (int i = 0; i < 100; i++)
    {
      g_autofree char *p
          = herald_test_http (server, "GET", "/api/channels/news/presence", AUTH, NULL, &status);
      if (strstr (p, "\"connections\":2"))
        break;
      g_usleep (10000);
    }

  publish (server, "news", "{\"hello\":1}");

  msg = expect_type (ws, "message");
  g_assert_cmpstr (herald_test_json_get_string (msg, "channel"), ==, "news");
  g_assert_cmpint (json_object_get_int_member (msg, "offset"), ==, 1);
  data = json_object_get_object_member (msg, "data");
  g_assert_cmpint (json_object_get_int_member (data, "hello"), ==, 1);

  ev = herald_test_sse_read_event (sse);
  g_assert_nonnull (ev);
  g_assert_true (g_str_has_prefix (ev, "id: "));
  g_assert_nonnull (strstr (ev, "\nevent: message\n"));
  g_assert_nonnull (strstr (
      ev,
      "data: {\"type\":\"message\",\"channel\":\"news\",\"offset\":1,\"data\":{\"hello\":1}}\n\n"));

  herald_test_client_free (ws);
  herald_test_client_free (sse);
  herald_test_server_stop (server);
}

static void
test_protocol_replies (void)
{
  HeraldTestServer *server = herald_test_server_start (API, 1);
  HeraldTestClient *ws = herald_test_ws_open (server, "/ws", NULL);
  JsonObject *r;

  herald_test_ws_send_text (ws, "{\"type\":\"ping\",\"id\":7}");
  r = expect_type (ws, "pong");
  g_assert_cmpint (json_object_get_int_member (r, "id"), ==, 7);
  json_object_unref (r);

  herald_test_ws_send_text (ws, "{\"type\":\"subscribe\",\"channel\":\"a\",\"id\":\"s1\"}");
  r = expect_type (ws, "subscribed");
  g_assert_cmpstr (herald_test_json_get_string (r, "id"), ==, "s1");
  json_object_unref (r);

  herald_test_ws_send_text (ws, "not json");
  r = expect_type (ws, "error");
  g_assert_cmpstr (herald_test_json_get_string (r, "code"), ==, "invalid_json");
  json_object_unref (r);

  herald_test_ws_send_text (ws, "{\"type\":\"dance\"}");
  r = expect_type (ws, "error");
  g_assert_cmpstr (herald_test_json_get_string (r, "code"), ==, "unknown_type");
  g_assert_cmpstr (herald_test_json_get_string (r, "message"), ==, "Unknown message type: dance");
  json_object_unref (r);

  herald_test_ws_send_text (ws, "{\"type\":\"subscribe\"}");
  r = expect_type (ws, "error");
  g_assert_cmpstr (herald_test_json_get_string (r, "code"), ==, "bad_request");
  json_object_unref (r);

  herald_test_ws_send_text (ws, "{\"type\":\"subscribe\",\"channel\":\"bad name!\"}");
  r = expect_type (ws, "error");
  g_assert_cmpstr (herald_test_json_get_string (r, "code"), ==, "bad_request");
  json_object_unref (r);

  herald_test_ws_send_text (ws, "[1,2]");
  r = expect_type (ws, "error");
  g_assert_cmpstr (herald_test_json_get_string (r, "code"), ==, "bad_request");
  json_object_unref (r);

  /* anonymous clients may not publish by default */
  herald_test_ws_send_text (ws, "{\"type\":\"message\",\"channel\":\"a\",\"data\":1}");
  r = expect_type (ws, "error");
  g_assert_cmpstr (herald_test_json_get_string (r, "code"), ==, "forbidden");
  json_object_unref (r);

  herald_test_ws_send_text (ws, "{\"type\":\"presence\",\"channel\":\"a\"}");
  r = expect_type (ws, "presence");
  g_assert_cmpint (json_object_get_int_member (r, "connections"), ==, 1);
  g_assert_cmpuint (json_array_get_length (json_object_get_array_member (r, "users")), ==, 0);
  json_object_unref (r);

  herald_test_ws_send_text (ws, "{\"type\":\"unsubscribe\",\"channel\":\"a\"}");
  r = expect_type (ws, "unsubscribed");
  json_object_unref (r);

  /* still open after every error: pong answers nothing, ping still works */
  herald_test_ws_send_text (ws, "{\"type\":\"pong\"}");
  herald_test_ws_send_text (ws, "{\"type\":\"ping\"}");
  r = expect_type (ws, "pong");
  json_object_unref (r);

  herald_test_client_free (ws);
  herald_test_server_stop (server);
}

/* The next text frame, as the server wrote it (heartbeat pings skipped). */
static char *
read_text (HeraldTestClient *client)
{
  for (;;)
    {
      g_autofree char *payload = NULL;
      gsize len = 0;
      int op = herald_test_ws_read_frame (client, &payload, &len);

      g_assert_cmpint (op, !=, -1);
      if (op == 0x1 && strstr (payload, "\"type\":\"ping\"") == NULL)
        return g_steal_pointer (&payload);
    }
}

/* Every number and string a publisher sends arrives as sent, by WebSocket
 * and SSE, published by WebSocket or by the HTTP API (json-glib 1.6 would
 * wrap the big integers, cut "a\u0000b" to "a" and turn 0.1 into
 * 0.10000000000000001). */
static void
test_publish_keeps_data_exactly (void)
{
  HeraldTestServer *server = herald_test_server_start (API "[auth]\nanonymous-publish=*\n", 2);
  HeraldTestClient *pub = herald_test_ws_open (server, "/ws", NULL);
  HeraldTestClient *sub = herald_test_ws_open (server, "/ws", NULL);
  HeraldTestClient *sse = herald_test_client_connect (server);
  const char *data[] = {
    "9223372036854775808",
    "18446744073709551615",
    "-9223372036854775809",
    "1e30",
    "1e308",
    "1e400",
    "0.1",
    "{\"big\":[123456789012345678901234567890,-0.0e-0,1E+2]}",
    "\"a\\u0000b\"",
    "\"\\u00e9\\/\\\"\"",
  };
  const char *sse_req = "GET /events?channel=n HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
  g_autofree char *head = NULL;
  g_autofree char *first = NULL;
  guint64 offset = 0;

  subscribe (sub, "n");
  herald_test_client_send_raw (sse, sse_req, strlen (sse_req));
  g_assert_cmpuint (herald_test_client_read_head (sse, &head), ==, 200);
  /* The stream's opening comment or retry line, before any message. */
  first = herald_test_sse_read_event (sse);
  g_assert_nonnull (first);
  for (guint i = 0; i < G_N_ELEMENTS (data); i++)
    for (guint by_api = 0; by_api < 2; by_api++)
      {
        g_autofree char *expected = NULL, *got = NULL, *event = NULL, *frame = NULL;

        if (by_api)
          publish (server, "n", data[i]);
        else
          {
            g_autofree char *text = g_strdup_printf (
                "{\"type\":\"message\",\"channel\":\"n\",\"data\": %s }", data[i]);
            g_autofree char *reply = NULL;

            herald_test_ws_send_text (pub, text);
            reply = read_text (pub);
            g_assert_true (g_str_has_prefix (reply, "{\"type\":\"published\""));
          }
        offset++;
        expected = g_strdup_printf (
            "{\"type\":\"message\",\"channel\":\"n\",\"offset\":%" G_GUINT64_FORMAT ",\"data\":%s}",
            offset, data[i]);
        frame = read_text (sub);
        g_assert_cmpstr (frame, ==, expected);
        do
          {
            g_free (event);
            event = herald_test_sse_read_event (sse);
            g_assert_nonnull (event);
          }
        while (strstr (event, "event: message") == NULL);
        got = g_strdup_printf ("data: %s\n", expected);
        g_assert_nonnull (strstr (event, got));
      }
  herald_test_client_free (sse);
  herald_test_client_free (pub);
  herald_test_client_free (sub);
  herald_test_server_stop (server);
}

/* Not JSON (json-glib 1.6 takes all of these), a second object after the
 * first, and a channel with U+0000 (json-glib would read "a"): refused on
 * every publish path, and nothing reaches subscribers. */
static void
test_publish_refuses_bad_json (void)
{
  HeraldTestServer *server = herald_test_server_start (API "[auth]\nanonymous-publish=*\n", 2);
  HeraldTestClient *pub = herald_test_ws_open (server, "/ws", NULL);
  HeraldTestClient *sub = herald_test_ws_open (server, "/ws", NULL);
  struct
  {
    const char *ws, *api, *code;
  } bad[] = {
    { "{\"type\":\"message\",\"channel\":\"n\",\"data\":\"\\377\"}",
      "{\"channel\":\"n\",\"data\":\"\\377\"}", "invalid_json" },
    { "{\"type\":\"message\",\"channel\":\"n\",\"data\":01}", "{\"channel\":\"n\",\"data\":01}",
      "invalid_json" },
    { "{\"type\":\"message\",\"channel\":\"n\",\"data\":'x'}", "{\"channel\":\"n\",\"data\":'x'}",
      "invalid_json" },
    { "{\"type\":\"message\",\"channel\":\"n\",\"data\":1}{\"type\":\"ping\"}",
      "{\"channel\":\"n\",\"data\":1}{\"channel\":\"m\",\"data\":2}", "invalid_json" },
    { "{\"type\":\"message\",\"channel\":\"n\",\"data\":1} []", "{\"channel\":\"n\",\"data\":1} []",
      "invalid_json" },
    { "{\"type\":\"message\",\"channel\":\"n\\u0000evil\",\"data\":1}",
      "{\"channel\":\"n\\u0000evil\",\"data\":1}", "bad_request" },
    { "{\"type\":\"subscribe\",\"channel\":\"n\\u0000x\"}", NULL, "bad_request" },
    { "{\"type\":\"message\",\"channel\":\"n\",\"data\":1,\"since\":18446744073709551615}",
      "{\"channel\":\"n\",\"data\":1,\"x\":-9223372036854775809}", "bad_request" },
  };
  JsonObject *r;

  subscribe (sub, "n");
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autofree char *answer = NULL;
      guint status = 0;

      herald_test_ws_send_text (pub, bad[i].ws);
      r = expect_type (pub, "error");
      g_assert_cmpstr (herald_test_json_get_string (r, "code"), ==, bad[i].code);
      json_object_unref (r);
      if (bad[i].api == NULL)
        continue;
      answer = herald_test_http (server, "POST", "/api/publish", AUTH, bad[i].api, &status);
      g_assert_cmpuint (status, ==, 400);
      g_assert_nonnull (strstr (answer, "\"error\""));
    }
  /* The subscriber got nothing but the next good message. */
  publish (server, "n", "1");
  r = expect_type (sub, "message");
  g_assert_cmpint (json_object_get_int_member (r, "offset"), ==, 1);
  json_object_unref (r);
  herald_test_client_free (pub);
  herald_test_client_free (sub);
  herald_test_server_stop (server);
}

static void
test_client_publish_allowed (void)
{
  HeraldTestServer *server = herald_test_server_start ("[auth]\nanonymous-publish=chat.*\n", 2);
  HeraldTestClient *a = herald_test_ws_open (server, "/ws", NULL);
  HeraldTestClient *b = herald_test_ws_open (server, "/ws", NULL);
  JsonObject *r;

  subscribe (b, "chat.room");
  herald_test_ws_send_text (
      a, "{\"type\":\"message\",\"channel\":\"chat.room\",\"data\":\"hi\",\"id\":1}");
  r = expect_type (a, "published");
  g_assert_cmpint (json_object_get_int_member (r, "offset"), ==, 1);
  json_object_unref (r);
  r = expect_type (b, "message");
  g_assert_cmpstr (json_object_get_string_member (r, "data"), ==, "hi");
  json_object_unref (r);

  herald_test_ws_send_text (a, "{\"type\":\"message\",\"channel\":\"other\",\"data\":\"hi\"}");
  r = expect_type (a, "error");
  g_assert_cmpstr (herald_test_json_get_string (r, "code"), ==, "forbidden");
  json_object_unref (r);

  herald_test_client_free (a);
  herald_test_client_free (b);
  herald_test_server_stop (server);
}

static void
test_connection_id_path (void)
{
  HeraldTestServer *server = herald_test_server_start (NULL, 2);
  g_autofree char *id = NULL;
  HeraldTestClient *a = herald_test_ws_open (server, "/ws/device-1", &id);
  HeraldTestClient *b = herald_test_client_connect (server);
  HeraldTestClient *c = herald_test_client_connect (server);

  g_assert_cmpstr (id, ==, "device-1");
  g_assert_cmpuint (herald_test_ws_handshake (b, "/ws/device-1", NULL, NULL), ==, 409);
  g_assert_cmpuint (herald_test_ws_handshake (c, "/ws/bad%20id", NULL, NULL), ==, 400);
  herald_test_client_free (a);
  herald_test_client_free (b);
  herald_test_client_free (c);
  herald_test_server_stop (server);
}

static void
test_max_connections (void)
{
  HeraldTestServer *server = herald_test_server_start ("[limits]\nmax-connections=1\n", 1);
  HeraldTestClient *a = herald_test_ws_open (server, "/ws", NULL);
  HeraldTestClient *b = herald_test_client_connect (server);
  HeraldTestClient *c = herald_test_client_connect (server);
  const char *req = "GET /events?channel=x HTTP/1.1\r\nHost: x\r\n\r\n";

  g_assert_cmpuint (herald_test_ws_handshake (b, "/ws", NULL, NULL), ==, 503);
  herald_test_client_send_raw (c, req, strlen (req));
  g_assert_cmpuint (herald_test_client_read_head (c, NULL), ==, 503);
  herald_test_client_free (a);
  herald_test_client_free (b);
  herald_test_client_free (c);
  herald_test_server_stop (server);
}

static void
test_message_too_big (void)
{
  HeraldTestServer *server = herald_test_server_start ("[limits]\nmax-message-size=1024\n", 1);
  HeraldTestClient *ws = herald_test_ws_open (server, "/ws", NULL);
  HeraldTestClient *frag = herald_test_ws_open (server, "/ws", NULL);
  char big[2000];

  memset (big, 'a', sizeof big);
  herald_test_ws_send_frame (ws, 0x81, big, sizeof big);
  g_assert_cmpuint (herald_test_ws_wait_close (ws), ==, 1009);

  /* a fragmented message whose total passes the limit */
  herald_test_ws_send_frame (frag, 0x01, big, 600);
  herald_test_ws_send_frame (frag, 0x00, big, 600);
  g_assert_cmpuint (herald_test_ws_wait_close (frag), ==, 1009);

  herald_test_client_free (ws);
  herald_test_client_free (frag);
  herald_test_server_stop (server);
}

static void
test_protocol_errors (void)
{
  HeraldTestServer *server = herald_test_server_start (NULL, 1);
  struct
  {
    guint8 first;
    gboolean masked;
    const char *payload;
    gsize len;
    guint16 code;
  } cases[] = {
    { 0x81, FALSE, "hi", 2, 1002 },      /* unmasked */
    { 0x83, TRUE, "hi", 2, 1002 },       /* reserved opcode */
    { 0xC1, TRUE, "hi", 2, 1002 },       /* RSV1 without deflate */
    { 0x81, TRUE, "\xff\xfe", 2, 1007 }, /* invalid UTF-8 */
    { 0x80, TRUE, "hi", 2, 1002 },       /* continuation without start */
    { 0x09, TRUE, "", 0, 1002 },         /* fragmented control frame */
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      HeraldTestClient *ws = herald_test_ws_open (server, "/ws", NULL);
      if (cases[i].masked)
        herald_test_ws_send_frame (ws, cases[i].first, cases[i].payload, cases[i].len);
      else
        {
          guint8 frame[16] = { cases[i].first, (guint8)cases[i].len };
          memcpy (frame + 2, cases[i].payload, cases[i].len);
          herald_test_client_send_raw (ws, frame, 2 + cases[i].len);
        }
      g_assert_cmpuint (herald_test_ws_wait_close (ws), ==, cases[i].code);
      herald_test_client_free (ws);
    }

  /* the server keeps serving fresh clients */
  {
    HeraldTestClient *ws = herald_test_ws_open (server, "/ws", NULL);
    herald_test_ws_send_text (ws, "{\"type\":\"ping\"}");
    json_object_unref (expect_type (ws, "pong"));
    herald_test_client_free (ws);
  }
  herald_test_server_stop (server);
}

static void
test_close_handshake (void)
{
  HeraldTestServer *server = herald_test_server_start (NULL, 1);
  HeraldTestClient *ws = herald_test_ws_open (server, "/ws", NULL);
  guint8 payload[] = { 0x03, 0xe8, 'b', 'y', 'e' };

  herald_test_ws_send_frame (ws, 0x88, payload, sizeof payload);
  g_assert_cmpuint (herald_test_ws_wait_close (ws), ==, 1000);
  herald_test_client_free (ws);
  herald_test_server_stop (server);
}

static void
test_ping_frames_and_pong (void)
{
  HeraldTestServer *server = herald_test_server_start (NULL, 1);
  HeraldTestClient *ws = herald_test_ws_open (server, "/ws", NULL);
  g_autofree char *payload = NULL;
  int opcode;

  herald_test_ws_send_frame (ws, 0x89, "abc", 3);
  opcode = herald_test_ws_read_frame (ws, &payload, NULL);
  g_assert_cmpint (opcode, ==, 0xA);
  g_assert_cmpstr (payload, ==, "abc");
  herald_test_client_free (ws);
  herald_test_server_stop (server);
}

static void
test_fragmented_message_with_ping (void)
{
  HeraldTestServer *server = herald_test_server_start (NULL, 1);
  HeraldTestClient *ws = herald_test_ws_open (server, "/ws", NULL);
  g_autofree char *payload = NULL;
  JsonObject *r;

  herald_test_ws_send_frame (ws, 0x01, "{\"type\":", 8);
  herald_test_ws_send_frame (ws, 0x89, "x", 1);
  herald_test_ws_send_frame (ws, 0x80, "\"ping\"}", 7);
  g_assert_cmpint (herald_test_ws_read_frame (ws, &payload, NULL), ==, 0xA);
  r = expect_type (ws, "pong");
  json_object_unref (r);
  herald_test_client_free (ws);
  herald_test_server_stop (server);
}

static void
test_heartbeat_and_idle_timeout (void)
{
  HeraldTestServer *server
      = herald_test_server_start ("[limits]\nheartbeat-interval=1\nconnection-timeout=3\n", 1);
  HeraldTestClient *ws = herald_test_ws_open (server, "/ws", NULL);
  gboolean json_ping = FALSE, frame_ping = FALSE;
  gint64 start = g_get_monotonic_time ();

  /* A client that never answers: JSON pings and ping frames, then 4002. */
  for (;;)
    {
      g_autofree char *payload = NULL;
      int opcode = herald_test_ws_read_frame (ws, &payload, NULL);
      if (opcode < 0 || opcode == 0x8)
        break;
      if (opcode == 0x9)
        frame_ping = TRUE;
      if (opcode == 0x1 && strstr (payload, "\"ping\""))
        json_ping = TRUE;
    }
  g_assert_true (json_ping);
  g_assert_true (frame_ping);
  g_assert_cmpuint (ws->close_code, ==, 4002);
  g_assert_cmpint (g_get_monotonic_time () - start, <, 8 * G_USEC_PER_SEC);
  herald_test_client_free (ws);
  herald_test_server_stop (server);
}

static void
test_slow_consumer (void)
{
  HeraldTestServer *server
      = herald_test_server_start (API "[limits]\nsend-queue-max-bytes=65536\n", 1);
  HeraldTestClient *ws = herald_test_ws_open (server, "/ws", NULL);
  g_autofree char *pad = g_strnfill (16000, 'x');
  g_autofree char *data = g_strdup_printf ("\"%s\"", pad);
  guint16 code;
  g_autofree char *metrics = NULL;
  guint status;

  gsize rss_before;

  subscribe (ws, "flood");
  rss_before = herald_test_rss_kb ();
  /* Up to 19 MB: more than both kernels' socket buffers can hold (tcp_wmem and
   * tcp_rmem top out at 4 and 6 MiB), while the client reads nothing. Stop
   * once the server gave up on the client: it waits only CLOSE_GRACE_S for the
   * client's close, so on a slow (sanitizer) build publishing on would let it
   * reset the connection before the client reads the close frame. */
  for (int i = 0; i < 1200; i++)
    {
      publish (server, "flood", data);
      if (i % 50 == 49)
        {
          g_free (metrics);
          metrics = herald_test_http (server, "GET", "/metrics", NULL, NULL, &status);
          if (strstr (metrics, "herald_closes_total{code=\"4001\"} 1"))
            break;
        }
    }
  /* The server's memory stays bounded by send-queue-max-bytes. */
  herald_test_assert_rss_growth (rss_before, 8 * 1024);
  code = herald_test_ws_wait_close (ws);
  g_assert_cmpuint (code, ==, 4001);
  g_free (metrics);
  metrics = herald_test_http (server, "GET", "/metrics", NULL, NULL, &status);
  g_assert_nonnull (strstr (metrics, "herald_closes_total{code=\"4001\"} 1"));
  herald_test_client_free (ws);
  herald_test_server_stop (server);
}

static void
test_api_targets (void)
{
  g_autofree char *conf = g_strdup (API "[auth]\njwt-secret=s3cret\nanonymous=true\n");
  HeraldTestServer *server = herald_test_server_start (conf, 2);
  g_autoptr (GBytes) secret = g_bytes_new_static ("s3cret", 6);
  g_autofree char *token = herald_jwt_sign_hs256 (secret, "{\"sub\":\"alice\"}");
  g_autofree char *path = g_strdup_printf ("/ws?token=%s", token);
  g_autofree char *id = NULL;
  HeraldTestClient *alice1 = herald_test_ws_open (server, path, &id);
  HeraldTestClient *alice2 = herald_test_ws_open (server, path, NULL);
  HeraldTestClient *anon = herald_test_ws_open (server, "/ws", NULL);
  g_autofree char *answer = NULL;
  g_autofree char *url = NULL;
  JsonObject *r;
  guint status;

  answer = herald_test_http (server, "POST", "/api/users/alice/send", AUTH, "{\"data\":{\"n\":1}}",
                             &status);
  g_assert_cmpuint (status, ==, 200);
  g_assert_nonnull (strstr (answer, "\"delivered\":2"));
  r = expect_type (alice1, "message");
  g_assert_false (json_object_has_member (r, "channel"));
  json_object_unref (r);
  json_object_unref (expect_type (alice2, "message"));
  g_free (answer);

  url = g_strdup_printf ("/api/connections/%s/send", id);
  answer = herald_test_http (server, "POST", url, AUTH, "{\"data\":2}", &status);
  g_assert_cmpuint (status, ==, 200);
  r = expect_type (alice1, "message");
  g_assert_cmpint (json_object_get_int_member (r, "data"), ==, 2);
  json_object_unref (r);
  g_free (answer);

  answer = herald_test_http (server, "POST", "/api/connections/nobody/send", AUTH, "{\"data\":2}",
                             &status);
  g_assert_cmpuint (status, ==, 404);
  g_free (answer);

  answer = herald_test_http (server, "POST", "/api/broadcast", AUTH, "{\"data\":3}", &status);
  g_assert_cmpuint (status, ==, 200);
  g_assert_nonnull (strstr (answer, "\"delivered\":3"));
  json_object_unref (expect_type (alice1, "message"));
  json_object_unref (expect_type (alice2, "message"));
  json_object_unref (expect_type (anon, "message"));
  g_free (answer);

  answer = herald_test_http (server, "GET", "/api/connections", AUTH, NULL, &status);
  g_assert_cmpuint (status, ==, 200);
  g_assert_nonnull (strstr (answer, id));
  g_assert_nonnull (strstr (answer, "\"alice\""));
  g_free (answer);

  g_free (url);
  url = g_strdup_printf ("/api/connections/%s", id);
  answer = herald_test_http (server, "DELETE", url, AUTH, NULL, &status);
  g_assert_cmpuint (status, ==, 200);
  g_assert_cmpuint (herald_test_ws_wait_close (alice1), ==, 4004);

  herald_test_client_free (alice1);
  herald_test_client_free (alice2);
  herald_test_client_free (anon);
  herald_test_server_stop (server);
}

static void
test_auth_rejections (void)
{
  HeraldTestServer *server = herald_test_server_start (
      "[auth]\njwt-secret=s3cret\n[server]\nallowed-origins=https://good.example\n", 1);
  HeraldTestClient *c;
  g_autoptr (GBytes) secret = g_bytes_new_static ("s3cret", 6);
  g_autoptr (GBytes) wrong = g_bytes_new_static ("nope", 4);
  g_autofree char *good = herald_jwt_sign_hs256 (secret, "{\"sub\":\"bob\"}");
  g_autofree char *bad = herald_jwt_sign_hs256 (wrong, "{\"sub\":\"bob\"}");
  g_autofree char *path = NULL;
  g_autofree char *head = NULL;
  g_autofree char *hdr = NULL;

  c = herald_test_client_connect (server);
  g_assert_cmpuint (herald_test_ws_handshake (c, "/ws", NULL, &head), ==, 401);
  g_assert_nonnull (strstr (head, "WWW-Authenticate"));
  herald_test_client_free (c);

  path = g_strdup_printf ("/ws?token=%s", bad);
  c = herald_test_client_connect (server);
  g_assert_cmpuint (herald_test_ws_handshake (c, path, NULL, NULL), ==, 401);
  herald_test_client_free (c);

  c = herald_test_client_connect (server);
  g_assert_cmpuint (herald_test_ws_handshake (c, "/ws", "Origin: https://evil.example\r\n", NULL),
                    ==, 403);
  herald_test_client_free (c);

  /* token in the subprotocol list: answered with the other protocol, never the token */
  g_clear_pointer (&head, g_free);
  hdr = g_strdup_printf ("Sec-WebSocket-Protocol: herald.v1, bearer.%s\r\n", good);
  c = herald_test_client_connect (server);
  g_assert_cmpuint (herald_test_ws_handshake (c, "/ws", hdr, &head), ==, 101);
  g_assert_nonnull (strstr (head, "herald.v1"));
  g_assert_null (strstr (head, good));
  herald_test_client_free (c);

  g_free (hdr);
  hdr = g_strdup_printf ("Authorization: Bearer %s\r\n", good);
  c = herald_test_client_connect (server);
  g_assert_cmpuint (herald_test_ws_handshake (c, "/ws", hdr, NULL), ==, 101);
  herald_test_client_free (c);

  g_free (hdr);
  hdr = g_strdup_printf ("Cookie: a=b; herald_token=%s\r\n", good);
  c = herald_test_client_connect (server);
  g_assert_cmpuint (herald_test_ws_handshake (c, "/ws", hdr, NULL), ==, 101);
  herald_test_client_free (c);

  herald_test_server_stop (server);
}

static void
test_sse_resume (void)
{
  HeraldTestServer *server = herald_test_server_start (API, 2);
  const char *req = "GET /events?channel=a&channel=b HTTP/1.1\r\nHost: x\r\n\r\n";
  HeraldTestClient *sse = herald_test_client_connect (server);
  g_autofree char *last_id = NULL;
  g_autofree char *req2 = NULL;
  guint status;
  char *ev;

  herald_test_client_send_raw (sse, req, strlen (req));
  g_assert_cmpuint (herald_test_client_read_head (sse, NULL), ==, 200);
  g_free (herald_test_sse_read_event (sse)); /* retry */
  g_free (herald_test_sse_read_event (sse)); /* connected */
  for (int i = 0; i < 100; i++)
    {
      g_autofree char *p
          = herald_test_http (server, "GET", "/api/channels/b/presence", AUTH, NULL, &status);
      if (strstr (p, "\"connections\":1"))
        break;
      g_usleep (10000);
    }
  publish (server, "a", "1");
  publish (server, "b", "2");
  ev = herald_test_sse_read_event (sse);
  g_assert_nonnull (strstr (ev, "\"data\":1"));
  g_free (ev);
  ev = herald_test_sse_read_event (sse);
  g_assert_nonnull (strstr (ev, "\"data\":2"));
  last_id = g_strndup (ev + 4, strchr (ev, '\n') - ev - 4);
  g_free (ev);
  herald_test_client_free (sse);

  /* missed while away, on both channels */
  publish (server, "b", "3");
  publish (server, "a", "4");
  publish (server, "c", "5");

  req2 = g_strdup_printf (
      "GET /events?channel=a&channel=b HTTP/1.1\r\nHost: x\r\nLast-Event-ID: %s\r\n\r\n", last_id);
  sse = herald_test_client_connect (server);
  herald_test_client_send_raw (sse, req2, strlen (req2));
  g_assert_cmpuint (herald_test_client_read_head (sse, NULL), ==, 200);
  g_free (herald_test_sse_read_event (sse)); /* retry */
  g_free (herald_test_sse_read_event (sse)); /* connected */
  ev = herald_test_sse_read_event (sse);
  g_assert_nonnull (strstr (ev, "\"data\":3"));
  g_free (ev);
  ev = herald_test_sse_read_event (sse);
  g_assert_nonnull (strstr (ev, "\"data\":4"));
  g_free (ev);
  herald_test_client_free (sse);

  /* an id from another epoch: reset */
  sse = herald_test_client_connect (server);
  req = "GET /events?channel=a HTTP/1.1\r\nHost: x\r\nLast-Event-ID: zzzz-3\r\n\r\n";
  herald_test_client_send_raw (sse, req, strlen (req));
  g_assert_cmpuint (herald_test_client_read_head (sse, NULL), ==, 200);
  ev = herald_test_sse_read_event (sse);
  g_assert_nonnull (strstr (ev, "retry: "));
  g_free (ev);
  ev = herald_test_sse_read_event (sse);
  g_assert_nonnull (strstr (ev, "event: reset"));
  g_free (ev);
  herald_test_client_free (sse);
  herald_test_server_stop (server);
}

static void
test_ws_recovery (void)
{
  HeraldTestServer *server = herald_test_server_start (API "[history]\nsize=3\n", 2);
  HeraldTestClient *ws;
  JsonObject *r;

  for (int i = 1; i <= 5; i++)
    {
      g_autofree char *d = g_strdup_printf ("%d", i);
      publish (server, "h", d);
    }
  ws = herald_test_ws_open (server, "/ws", NULL);
  herald_test_ws_send_text (ws, "{\"type\":\"subscribe\",\"channel\":\"h\",\"since\":3}");
  for (int i = 4; i <= 5; i++)
    {
      r = expect_type (ws, "message");
      g_assert_cmpint (json_object_get_int_member (r, "offset"), ==, i);
      json_object_unref (r);
    }
  r = expect_type (ws, "subscribed");
  g_assert_true (json_object_get_boolean_member (r, "recovered"));
  json_object_unref (r);

  herald_test_ws_send_text (ws, "{\"type\":\"subscribe\",\"channel\":\"h2\",\"since\":0}");
  r = expect_type (ws, "subscribed");
  g_assert_true (json_object_get_boolean_member (r, "recovered"));
  json_object_unref (r);
  herald_test_client_free (ws);

  ws = herald_test_ws_open (server, "/ws", NULL);
  herald_test_ws_send_text (ws, "{\"type\":\"subscribe\",\"channel\":\"h\",\"since\":1}");
  r = expect_type (ws, "subscribed");
  g_assert_false (json_object_get_boolean_member (r, "recovered"));
  json_object_unref (r);
  herald_test_client_free (ws);
  herald_test_server_stop (server);
}

static void
test_leftover_bytes_after_handshake (void)
{
  HeraldTestServer *server = herald_test_server_start (NULL, 1);
  HeraldTestClient *c = herald_test_client_connect (server);
  const char *req
      = "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
  g_autoptr (GByteArray) both = g_byte_array_new ();
  const char *ping = "{\"type\":\"ping\"}";
  guint8 mask[4] = { 1, 2, 3, 4 };
  guint8 hdr[6] = { 0x81, 0x80 | 15, 1, 2, 3, 4 };
  guint8 body[15];

  /* The request and the first frame in one write: libsoup reads both. */
  for (int i = 0; i < 15; i++)
    body[i] = ping[i] ^ mask[i % 4];
  g_byte_array_append (both, (guint8 *)req, strlen (req));
  g_byte_array_append (both, hdr, 6);
  g_byte_array_append (both, body, 15);
  herald_test_client_send_raw (c, both->data, both->len);
  g_assert_cmpuint (herald_test_client_read_head (c, NULL), ==, 101);
  json_object_unref (expect_type (c, "connected"));
  json_object_unref (expect_type (c, "pong"));
  herald_test_client_free (c);
  herald_test_server_stop (server);
}

/* [namespace.NAME] publish and presence, for clients; the HTTP API still publishes */
static void
test_namespace_rules (void)
{
  HeraldTestServer *server = herald_test_server_start (
      API "[auth]\nanonymous=true\nanonymous-publish=ro:*;a\n"
          "[namespace.open]\npublish=all\n[namespace.ro]\npublish=none\n"
          "[namespace.quiet]\npresence=false\n",
      2);
  HeraldTestClient *ws = herald_test_ws_open (server, "/ws", NULL);
  g_autofree char *answer = NULL;
  JsonObject *r;
  guint status = 0;

  /* all: even an anonymous connection without anonymous-publish */
  herald_test_ws_send_text (ws, "{\"type\":\"message\",\"channel\":\"open:x\",\"data\":1}");
  r = expect_type (ws, "published");
  json_object_unref (r);
  /* none: whatever anonymous-publish (or the claims) say */
  herald_test_ws_send_text (ws, "{\"type\":\"message\",\"channel\":\"ro:x\",\"data\":1}");
  r = expect_type (ws, "error");
  g_assert_cmpstr (herald_test_json_get_string (r, "code"), ==, "forbidden");
  json_object_unref (r);
  /* claims (default namespace): as before */
  herald_test_ws_send_text (ws, "{\"type\":\"message\",\"channel\":\"a\",\"data\":1}");
  r = expect_type (ws, "published");
  json_object_unref (r);
  /* The HTTP API still publishes to a publish=none namespace */
  publish (server, "ro:x", "2");

  /* presence=false: forbidden over WebSocket, 403 over HTTP */
  herald_test_ws_send_text (ws, "{\"type\":\"presence\",\"channel\":\"quiet:x\"}");
  r = expect_type (ws, "error");
  g_assert_cmpstr (herald_test_json_get_string (r, "code"), ==, "forbidden");
  json_object_unref (r);
  answer = herald_test_http (server, "GET", "/api/channels/quiet:x/presence", AUTH, NULL, &status);
  g_assert_cmpuint (status, ==, 403);
  g_clear_pointer (&answer, g_free);
  answer = herald_test_http (server, "GET", "/api/channels/open:x/presence", AUTH, NULL, &status);
  g_assert_cmpuint (status, ==, 200);
  herald_test_ws_send_text (ws, "{\"type\":\"presence\",\"channel\":\"open:x\"}");
  r = expect_type (ws, "presence");
  json_object_unref (r);
  subscribe (ws, "open:x");

  herald_test_client_free (ws);
  herald_test_server_stop (server);
}

/* User-limited channels: only the listed users, whatever the claims say */
static void
test_user_limited_channel (void)
{
  HeraldTestServer *server
      = herald_test_server_start (API "[auth]\njwt-secret=s3cret\nanonymous=true\n", 2);
  g_autoptr (GBytes) secret = g_bytes_new_static ("s3cret", 6);
  g_autofree char *alice
      = herald_jwt_sign_hs256 (secret, "{\"sub\":\"alice\",\"channels\":[\"x\"]}");
  g_autofree char *eve = herald_jwt_sign_hs256 (secret, "{\"sub\":\"eve\"}");
  g_autofree char *alice_path = g_strdup_printf ("/ws?token=%s", alice);
  g_autofree char *eve_path = g_strdup_printf ("/ws?token=%s", eve);
  HeraldTestClient *clients[]
      = { herald_test_ws_open (server, "/ws", NULL), herald_test_ws_open (server, eve_path, NULL) };
  HeraldTestClient *ws = herald_test_ws_open (server, alice_path, NULL);
  JsonObject *r;

  subscribe (ws, "dm:chat#alice,bob");
  /* eve has no channels claim (all channels), anonymous has anonymous-channels=* */
  for (gsize i = 0; i < G_N_ELEMENTS (clients); i++)
    {
      herald_test_ws_send_text (clients[i],
                                "{\"type\":\"subscribe\",\"channel\":\"dm:chat#alice,bob\"}");
      r = expect_type (clients[i], "error");
      g_assert_cmpstr (herald_test_json_get_string (r, "code"), ==, "forbidden");
      json_object_unref (r);
      herald_test_client_free (clients[i]);
    }
  herald_test_client_free (ws);
  herald_test_server_stop (server);
}

/* A connection whose handshake finished after the SIGTERM's drain began is
 * drained too, within what is left of the window: the reconnect hint, then
 * 1001 (herald_worker_drain_late()). Without it nothing would ever close it. */
typedef struct
{
  HeraldHub *hub;
  int fd;
} LateAdopt;

static void
begin_drain_then_adopt (HeraldWorker *worker, gpointer user_data)
{
  LateAdopt *late = user_data;
  HeraldConnectionSetup setup = { .id = "late-adopted",
                                  .transport = HERALD_TRANSPORT_WEBSOCKET,
                                  .fd = late->fd,
                                  .remote_address = "127.0.0.1" };
  g_autoptr (HeraldConnection) conn = NULL;

  herald_worker_begin_shutdown (worker, 2000);
  conn = herald_hub_adopt (late->hub, worker, &setup, NULL);
}

/* One server frame from @fd (unmasked, payload < 64 KiB): its opcode, or -1. */
static int
read_server_frame (int fd, char *payload, gsize size, gsize *len)
{
  guint8 head[4];
  gsize n;

  if (recv (fd, head, 2, MSG_WAITALL) != 2)
    return -1;
  n = head[1] & 0x7f;
  if (n == 126)
    {
      if (recv (fd, head + 2, 2, MSG_WAITALL) != 2)
        return -1;
      n = ((gsize)head[2] << 8) | head[3];
    }
  g_assert_cmpuint (n, <, size);
  if (n > 0 && recv (fd, payload, n, MSG_WAITALL) != (gssize)n)
    return -1;
  payload[n] = '\0';
  *len = n;
  return head[0] & 0x0f;
}

static void
test_drain_late_adoption (void)
{
  HeraldTestServer *server = herald_test_server_start (NULL, 1);
  LateAdopt late = { .hub = server->hub };
  struct timeval timeout = { .tv_sec = 5 };
  char payload[4096];
  gsize len = 0;
  int fds[2];
  gint64 start;
  HeraldTestClient *early;

  /* An open connection keeps the worker draining (an idle one just ends) */
  early = herald_test_ws_open (server, "/ws", NULL);
  g_assert_cmpint (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), ==, 0);
  g_assert_cmpint (setsockopt (fds[1], SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout), ==, 0);
  late.fd = fds[0];
  start = g_get_monotonic_time ();
  herald_hub_foreach_worker (server->hub, begin_drain_then_adopt, &late);

  g_assert_cmpint (read_server_frame (fds[1], payload, sizeof payload, &len), ==, 1);
  g_assert_nonnull (strstr (payload, "\"type\":\"connected\""));
  g_assert_cmpint (read_server_frame (fds[1], payload, sizeof payload, &len), ==, 1);
  g_assert_nonnull (strstr (payload, "\"type\":\"reconnect\""));
  g_assert_cmpint (read_server_frame (fds[1], payload, sizeof payload, &len), ==, 8);
  g_assert_cmpuint (len, >=, 2);
  g_assert_cmpuint (((guint8)payload[0] << 8) | (guint8)payload[1], ==, 1001);
  /* within the window (2 s, one-second wheel steps) */
  g_assert_cmpint (g_get_monotonic_time () - start, <, 4 * G_USEC_PER_SEC);
  close (fds[1]);
  herald_test_client_free (early);
  herald_test_server_stop (server);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/server/connected-frame", test_connected_frame);
  g_test_add_func ("/server/publish-reaches-ws-and-sse", test_publish_reaches_ws_and_sse);
  g_test_add_func ("/server/protocol-replies", test_protocol_replies);
  g_test_add_func ("/server/client-publish", test_client_publish_allowed);
  g_test_add_func ("/server/publish-keeps-data-exactly", test_publish_keeps_data_exactly);
  g_test_add_func ("/server/publish-refuses-bad-json", test_publish_refuses_bad_json);
  g_test_add_func ("/server/connection-id-path", test_connection_id_path);
  g_test_add_func ("/server/max-connections", test_max_connections);
  g_test_add_func ("/server/message-too-big", test_message_too_big);
  g_test_add_func ("/server/protocol-errors", test_protocol_errors);
  g_test_add_func ("/server/close-handshake", test_close_handshake);
  g_test_add_func ("/server/ping-frame", test_ping_frames_and_pong);
  g_test_add_func ("/server/fragmented-with-ping", test_fragmented_message_with_ping);
  g_test_add_func ("/server/heartbeat-idle-timeout", test_heartbeat_and_idle_timeout);
  g_test_add_func ("/server/slow-consumer", test_slow_consumer);
  g_test_add_func ("/server/api-targets", test_api_targets);
  g_test_add_func ("/server/auth-rejections", test_auth_rejections);
  g_test_add_func ("/server/sse-resume", test_sse_resume);
  g_test_add_func ("/server/ws-recovery", test_ws_recovery);
  g_test_add_func ("/server/leftover-bytes", test_leftover_bytes_after_handshake);
  g_test_add_func ("/server/namespace-rules", test_namespace_rules);
  g_test_add_func ("/server/user-limited-channel", test_user_limited_channel);
  g_test_add_func ("/server/drain-late-adoption", test_drain_late_adoption);
  return g_test_run ();
}
