/* test-conflate.c: the publish "key", conflation of a slow reader's queue
 * (conflate=true namespaces) and per-connection join/leave events
 * (join-leave=true namespaces), on one in-process Herald.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "herald-connection-queue.h"
#include "herald-hub.h"
#include "herald-redis-payload.h"
#include "herald-test-server.h"

#define API "[api]\nkey=k\n[auth]\nanonymous-publish=*\n"
#define AUTH "Authorization: Bearer k\r\n"

static JsonObject *
expect_type (HeraldTestClient *client, const char *type)
{
  JsonObject *obj = herald_test_ws_read_json (client);

  g_assert_nonnull (obj);
  if (g_strcmp0 (herald_test_json_get_string (obj, "type"), type) != 0)
    g_test_message ("got %s: %s", herald_test_json_get_string (obj, "type"),
                    herald_test_json_get_string (obj, "message"));
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

static char *
api_publish (HeraldTestServer *server, const char *body, guint *status)
{
  return herald_test_http (server, "POST", "/api/publish", AUTH, body, status);
}

/* The same through libsoup (a chunked body is libsoup's to read). */
static char *
api_publish_chunked (HeraldTestServer *server, const char *body, guint *status)
{
  HeraldTestClient *client = herald_test_client_connect (server);
  g_autofree char *request
      = g_strdup_printf ("POST /api/publish HTTP/1.1\r\nHost: 127.0.0.1\r\n" AUTH
                         "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
                         "Connection: close\r\n\r\n%zx\r\n%s\r\n0\r\n\r\n",
                         strlen (body), body);
  char *answer;

  herald_test_client_send_raw (client, request, strlen (request));
  answer = herald_test_client_read_response (client, status, NULL);
  herald_test_client_free (client);
  return answer;
}

/* Every publishing path carries the key into the delivered frame (the
 * scanned fast path, the general path for an escaped key, WebSocket); a
 * channel outside conflate namespaces is not conflated by it. */
static void
test_key_carried (void)
{
  HeraldTestServer *server = herald_test_server_start (API, 2);
  g_autoptr (JsonObject) hello = NULL;
  HeraldTestClient *sub = herald_test_ws_open (server, "/ws", NULL);
  HeraldTestClient *pub = herald_test_ws_open (server, "/ws", NULL);
  const char *bodies[] = {
    "{\"channel\":\"news\",\"key\":\"EURUSD\",\"data\":1}",
    "{\"channel\":\"news\",\"key\":\"a\\nb\",\"data\":2}",
    "{\"channel\":\"news\",\"data\":3}",
  };
  const char *keys[] = { "EURUSD", "a\nb", NULL };
  guint status = 0;

  subscribe (sub, "news");
  for (guint i = 0; i < G_N_ELEMENTS (bodies); i++)
    {
      for (guint chunked = 0; chunked < 2; chunked++)
        {
          g_autofree char *answer = chunked ? api_publish_chunked (server, bodies[i], &status)
                                            : api_publish (server, bodies[i], &status);
          g_autoptr (JsonObject) msg = NULL;

          g_assert_cmpuint (status, ==, 200);
          msg = expect_type (sub, "message");
          g_assert_cmpint (json_object_get_int_member (msg, "data"), ==, i + 1);
          if (keys[i])
            g_assert_cmpstr (herald_test_json_get_string (msg, "key"), ==, keys[i]);
          else
            g_assert_false (json_object_has_member (msg, "key"));
          g_assert_false (json_object_has_member (msg, "conflated"));
        }
    }

  herald_test_ws_send_text (
      pub, "{\"type\":\"message\",\"id\":1,\"channel\":\"news\",\"key\":\"GBP\",\"data\":4}");
  g_clear_pointer (&hello, json_object_unref);
  hello = expect_type (pub, "published");
  {
    g_autoptr (JsonObject) msg = expect_type (sub, "message");
    g_assert_cmpstr (herald_test_json_get_string (msg, "key"), ==, "GBP");
    g_assert_cmpint (json_object_get_int_member (msg, "offset"), ==, 7);
  }
  herald_test_client_free (pub);
  herald_test_client_free (sub);
  herald_test_server_stop (server);
}

/* A key that is not a string (or too long): 400 on HTTP, bad_request on
 * WebSocket, nothing published, the server undisturbed. */
static void
test_key_bad (void)
{
  HeraldTestServer *server = herald_test_server_start (API, 2);
  HeraldTestClient *sub = herald_test_ws_open (server, "/ws", NULL);
  g_autofree char *long_key = g_strnfill (256, 'k');
  g_autofree char *too_long
      = g_strdup_printf ("{\"channel\":\"news\",\"key\":\"%s\",\"data\":1}", long_key);
  const char *bad[] = {
    "{\"channel\":\"news\",\"key\":5,\"data\":1}",
    "{\"channel\":\"news\",\"key\":null,\"data\":1}",
    "{\"channel\":\"news\",\"key\":{\"a\":1},\"data\":1}",
    "{\"channel\":\"news\",\"key\":[\"a\"],\"data\":1}",
    "{\"channel\":\"news\",\"key\":true,\"data\":1}",
    too_long,
  };
  const char *ws_bad[] = { "5", "null", "{}", "[]", "false" };
  guint status = 0;

  subscribe (sub, "news");
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autofree char *answer = api_publish (server, bad[i], &status);
      guint status2 = 0;
      g_autofree char *answer2 = api_publish_chunked (server, bad[i], &status2);

      g_assert_cmpuint (status, ==, 400);
      g_assert_cmpuint (status2, ==, 400);
      g_assert_nonnull (strstr (answer, "key"));
      g_assert_nonnull (strstr (answer2, "key"));
    }
  for (guint i = 0; i < G_N_ELEMENTS (ws_bad); i++)
    {
      g_autofree char *frame = g_strdup_printf (
          "{\"type\":\"message\",\"id\":7,\"channel\":\"news\",\"key\":%s,\"data\":1}", ws_bad[i]);
      g_autoptr (JsonObject) reply = NULL;

      herald_test_ws_send_text (sub, frame);
      reply = expect_type (sub, "error");
      g_assert_cmpstr (herald_test_json_get_string (reply, "code"), ==, "bad_request");
      g_assert_nonnull (strstr (herald_test_json_get_string (reply, "message"), "key"));
    }
  /* Nothing of that was published: the next message has offset 1. */
  {
    g_autofree char *answer
        = api_publish (server, "{\"channel\":\"news\",\"key\":\"k\",\"data\":9}", &status);
    g_autoptr (JsonObject) msg = NULL;

    g_assert_cmpuint (status, ==, 200);
    msg = expect_type (sub, "message");
    g_assert_cmpint (json_object_get_int_member (msg, "offset"), ==, 1);
  }
  herald_test_assert_serving (server);
  herald_test_client_free (sub);
  herald_test_server_stop (server);
}

/* ---- conflation ---- */

#define TICKER_KEYS 10
#define TICKER_ROUNDS ticker_rounds ()

/* Enough rounds (~4.7 KB each) to overflow the kernel's socket buffers
 * twice over whatever their size (tcp_wmem's maximum), 2,000 at least. */
static guint
ticker_rounds (void)
{
  static guint rounds;

  if (rounds == 0)
    {
      g_autofree char *text = NULL;
      g_auto (GStrv) parts = NULL;
      guint64 wmem_max = 4194304;

      if (g_file_get_contents ("/proc/sys/net/ipv4/tcp_wmem", &text, NULL, NULL)
          && (parts = g_strsplit_set (g_strstrip (text), " \t", -1)) != NULL
          && g_strv_length (parts) >= 3)
        wmem_max = g_ascii_strtoull (parts[g_strv_length (parts) - 1], NULL, 10);
      rounds = MAX (2000, (guint)((2 * wmem_max + 1048576) / 4700));
    }
  return rounds;
}

/* A WebSocket with a small receive buffer (set before connect, so the
 * window stays small), subscribed to @channel, that the test then stops
 * reading. */
static HeraldTestClient *
small_window_connect (HeraldTestServer *server)
{
  HeraldTestClient *client = g_new0 (HeraldTestClient, 1);
  g_autoptr (GInetAddress) address = g_inet_address_new_from_string (server->host);
  g_autoptr (GSocketAddress) sa = g_inet_socket_address_new (address, server->port);
  g_autoptr (GError) error = NULL;

  client->socket
      = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, &error);
  g_assert_no_error (error);
  g_assert_true (g_socket_set_option (client->socket, SOL_SOCKET, SO_RCVBUF, 4096, &error));
  g_socket_set_timeout (client->socket, 10);
  g_assert_true (g_socket_connect (client->socket, sa, NULL, &error));
  client->buffer = g_byte_array_new ();
  return client;
}

static HeraldTestClient *
slow_reader_open (HeraldTestServer *server, const char *channel)
{
  HeraldTestClient *client = small_window_connect (server);
  g_autoptr (JsonObject) hello = NULL;

  g_assert_cmpuint (herald_test_ws_handshake (client, "/ws", NULL, NULL), ==, 101);
  hello = expect_type (client, "connected");
  subscribe (client, channel);
  return client;
}

/* How many connections were closed with 4001 so far (/metrics). */
static guint
closed_4001 (HeraldTestServer *server)
{
  guint status = 0;
  g_autofree char *metrics = herald_test_http (server, "GET", "/metrics", NULL, NULL, &status);
  const char *at = metrics ? strstr (metrics, "herald_closes_total{code=\"4001\"} ") : NULL;

  g_assert_cmpuint (status, ==, 200);
  g_assert_nonnull (at);
  return (guint)g_ascii_strtoull (at + strlen ("herald_closes_total{code=\"4001\"} "), NULL, 10);
}

/* A fast ticker: @rounds rounds of one message per key (k0…k9, value =
 * round), about a millisecond apart (ten times the 1,000 msg/s of the
 * issue, so the test is short). It stops early once a connection was closed
 * 4001, so that the reader, which has not read anything yet, gets to read
 * the close frame within the server's close grace. */
static void
run_ticker (HeraldTestServer *server, const char *channel, guint rounds)
{
  g_autofree char *pad = g_strnfill (400, 'x');

  for (guint r = 0; r < rounds; r++)
    {
      for (guint k = 0; k < TICKER_KEYS; k++)
        {
          g_autofree char *key = g_strdup_printf ("k%u", k);
          g_autofree char *data = g_strdup_printf ("{\"v\":%u,\"pad\":\"%s\"}", r, pad);
          g_autoptr (GError) error = NULL;
          guint64 offset = 0;

          g_assert_true (
              herald_hub_publish_text_now (server->hub, channel, key, data, &offset, &error));
          g_assert_no_error (error);
        }
      if (r % 100 == 99 && closed_4001 (server) > 0)
        return;
      g_usleep (1000);
    }
}

/* The slow reader of a conflate=true ticker keeps up: it receives the latest
 * value of every key, in order (offsets increasing, each key's values
 * increasing), frames that replaced others marked "conflated":true, and is
 * never closed. */
static void
test_conflate_slow_reader (void)
{
  HeraldTestServer *server = herald_test_server_start (
      API "[limits]\nsend-queue-max-bytes=16384\n[namespace.ticker]\nconflate=true\n", 2);
  HeraldTestClient *slow = slow_reader_open (server, "ticker:fx");
  gint64 last[TICKER_KEYS];
  guint64 last_offset = 0;
  guint done = 0, conflated = 0, received = 0;

  for (guint k = 0; k < TICKER_KEYS; k++)
    last[k] = -1;
  run_ticker (server, "ticker:fx", TICKER_ROUNDS);
  g_assert_cmpuint (closed_4001 (server), ==, 0);

  while (done < TICKER_KEYS)
    {
      g_autoptr (JsonObject) msg = herald_test_ws_read_json (slow);
      JsonObject *data;
      guint64 offset;
      gint64 v;
      guint k;

      g_assert_nonnull (msg); /* not closed, not timed out */
      g_assert_cmpstr (herald_test_json_get_string (msg, "type"), ==, "message");
      offset = json_object_get_int_member (msg, "offset");
      g_assert_cmpuint (offset, >, last_offset);
      last_offset = offset;
      g_assert_true (sscanf (herald_test_json_get_string (msg, "key"), "k%u", &k) == 1);
      g_assert_cmpuint (k, <, TICKER_KEYS);
      data = json_object_get_object_member (msg, "data");
      v = json_object_get_int_member (data, "v");
      g_assert_cmpint (v, >, last[k]);
      last[k] = v;
      if (v == TICKER_ROUNDS - 1)
        done++;
      if (json_object_has_member (msg, "conflated"))
        {
          g_assert_true (json_object_get_boolean_member (msg, "conflated"));
          conflated++;
        }
      received++;
    }
  g_test_message ("received %u of %u messages, %u marked conflated", received,
                  TICKER_ROUNDS * TICKER_KEYS, conflated);
  g_assert_cmpuint (conflated, >, 0);
  g_assert_cmpuint (received, <, TICKER_ROUNDS * TICKER_KEYS);
  {
    /* Counted in /metrics */
    guint status = 0;
    g_autofree char *metrics = herald_test_http (server, "GET", "/metrics", NULL, NULL, &status);
    g_assert_nonnull (strstr (metrics, "herald_conflated_total "));
    g_assert_null (strstr (metrics, "herald_conflated_total 0\n"));
  }
  herald_test_client_free (slow);
  herald_test_server_stop (server);
}

/* The same load and reader without conflate: closed with 4001. */
static void
test_no_conflate_slow_reader (void)
{
  HeraldTestServer *server
      = herald_test_server_start (API "[limits]\nsend-queue-max-bytes=16384\n", 2);
  HeraldTestClient *slow = slow_reader_open (server, "ticker:fx");

  run_ticker (server, "ticker:fx", TICKER_ROUNDS);
  g_assert_cmpuint (closed_4001 (server), ==, 1);
  g_assert_cmpuint (herald_test_ws_wait_close (slow), ==, 4001);
  herald_test_client_free (slow);
  herald_test_server_stop (server);
}

/* SSE streams conflate too. */
static void
test_conflate_sse (void)
{
  HeraldTestServer *server = herald_test_server_start (
      API "[limits]\nsend-queue-max-bytes=16384\n[namespace.ticker]\nconflate=true\n", 2);
  HeraldTestClient *sse = small_window_connect (server);
  const char *req = "GET /events?channel=ticker:fx HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
  g_autofree char *head = NULL;
  gint64 last[TICKER_KEYS];
  guint done = 0, conflated = 0, received = 0;

  for (guint k = 0; k < TICKER_KEYS; k++)
    last[k] = -1;
  herald_test_client_send_raw (sse, req, strlen (req));
  g_assert_cmpuint (herald_test_client_read_head (sse, &head), ==, 200);
  /* up to "connected" */
  for (;;)
    {
      g_autofree char *event = herald_test_sse_read_event (sse);
      g_assert_nonnull (event);
      if (strstr (event, "event: connected"))
        break;
    }
  run_ticker (server, "ticker:fx", TICKER_ROUNDS);
  g_assert_cmpuint (closed_4001 (server), ==, 0);
  while (done < TICKER_KEYS)
    {
      g_autofree char *event = herald_test_sse_read_event (sse);
      const char *data;
      g_autoptr (JsonParser) parser = json_parser_new ();
      JsonObject *msg;
      guint k;
      gint64 v;

      received++;
      g_assert_nonnull (event);
      if (!strstr (event, "event: message"))
        continue;
      data = strstr (event, "data: ");
      g_assert_nonnull (data);
      g_assert_true (json_parser_load_from_data (parser, data + 6, -1, NULL));
      msg = json_node_get_object (json_parser_get_root (parser));
      g_assert_true (sscanf (herald_test_json_get_string (msg, "key"), "k%u", &k) == 1);
      v = json_object_get_int_member (json_object_get_object_member (msg, "data"), "v");
      g_assert_cmpint (v, >, last[k]);
      last[k] = v;
      done += v == TICKER_ROUNDS - 1;
      conflated += json_object_has_member (msg, "conflated");
    }
  g_test_message ("SSE: %u events, %u marked conflated", received, conflated);
  g_assert_cmpuint (conflated, >, 0);
  herald_test_client_free (sse);
  herald_test_server_stop (server);
}

/* The queue itself: only unstarted frames of the same channel and key go;
 * other channels' keys, key-less messages, untagged frames and a frame
 * being written stay, in order. */
static void
test_queue_conflate (void)
{
  HeraldConnectionQueue q = { 0 };
  g_autoptr (HeraldMessage) head = herald_message_new_channel ("c", 1, 1, "e", "k", "1");
  g_autoptr (HeraldMessage) same = herald_message_new_channel ("c", 2, 2, "e", "k", "2");
  g_autoptr (HeraldMessage) other_channel = herald_message_new_channel ("d", 1, 3, "e", "k", "3");
  g_autoptr (HeraldMessage) no_key = herald_message_new_channel ("c", 3, 4, "e", NULL, "4");
  g_autoptr (HeraldMessage) other_key = herald_message_new_channel ("c", 4, 5, "e", "j", "5");
  g_autoptr (HeraldMessage) same2 = herald_message_new_channel ("c", 5, 6, "e", "k", "6");
  g_autoptr (HeraldMessage) newest = herald_message_new_channel ("c", 6, 7, "e", "k", "7");
  HeraldMessage *order[] = { head, same, other_channel, no_key, other_key, NULL, same2 };
  const char *kept[] = { "1", "3", "4", "5", "untagged" };
  struct iovec iov[16];
  gsize total = 0;
  int n;

  for (guint i = 0; i < G_N_ELEMENTS (order); i++)
    {
      GBytes *frame = order[i] ? g_bytes_ref (herald_message_get_frame (order[i], HERALD_FRAME_WS))
                               : g_bytes_new_static ("untagged", 8);
      total += g_bytes_get_size (frame);
      herald_connection_queue_push (&q, frame, order[i]);
    }
  g_assert_cmpuint (herald_connection_queue_bytes (&q), ==, total);
  /* The head frame is partly on the wire */
  herald_connection_queue_consume (&q, 3);
  g_assert_cmpuint (herald_connection_queue_conflate (&q, newest), ==, 2);
  g_assert_cmpuint (herald_connection_queue_conflate (&q, no_key), ==, 0);
  g_assert_cmpuint (herald_connection_queue_len (&q), ==, 5);
  n = herald_connection_queue_fill (&q, iov, G_N_ELEMENTS (iov));
  g_assert_cmpint (n, ==, 5);
  total = 0;
  for (int i = 0; i < n; i++)
    {
      g_autofree char *text = g_strndup (iov[i].iov_base, iov[i].iov_len);
      total += iov[i].iov_len;
      if (i == 0)
        g_assert_cmpuint (iov[0].iov_len, ==,
                          g_bytes_get_size (herald_message_get_frame (head, HERALD_FRAME_WS)) - 3);
      g_assert_nonnull (g_strrstr (text, kept[i]));
    }
  g_assert_cmpuint (herald_connection_queue_bytes (&q), ==, total);
  /* The conflated variant is a second shared frame, built once, for every wire variant */
  g_assert_true (herald_message_get_frame_full (newest, HERALD_FRAME_WS_DEFLATE, TRUE)
                 != herald_message_get_frame (newest, HERALD_FRAME_WS_DEFLATE));
  g_assert_true (herald_message_get_frame_full (newest, HERALD_FRAME_WS_DEFLATE, TRUE)
                 == herald_message_get_frame_full (newest, HERALD_FRAME_WS_DEFLATE, TRUE));
  /* Messages without data (events, direct messages) have only the plain variant */
  {
    g_autoptr (HeraldMessage) direct = herald_message_new_direct ("1");
    g_assert_true (herald_message_get_frame_full (direct, HERALD_FRAME_WS, TRUE)
                   == herald_message_get_frame (direct, HERALD_FRAME_WS));
  }
  g_assert_true (herald_message_get_frame_full (newest, HERALD_FRAME_WS, TRUE)
                 == herald_message_get_frame_full (newest, HERALD_FRAME_WS, TRUE));
  g_assert_nonnull (g_strstr_len (
      g_bytes_get_data (herald_message_get_frame_full (newest, HERALD_FRAME_SSE, TRUE), NULL), -1,
      "\"key\":\"k\",\"conflated\":true,\"data\":7}"));
  herald_connection_queue_consume (&q, total);
  g_assert_cmpuint (herald_connection_queue_len (&q), ==, 0);
  g_assert_cmpuint (herald_connection_queue_bytes (&q), ==, 0);
  herald_connection_queue_clear (&q);
}

/* The Redis wire format keeps the key; malformed payloads are refused,
 * never misread. */
static void
test_redis_payload (void)
{
  g_autofree char *plain = herald_redis_payload_body (NULL, "{\"n\":1}");
  g_autofree char *keyed = herald_redis_payload_body ("a b\nc", "{\"n\":1}");
  const char *bad[] = {
    "3 7 6 100 ep ch\nK9 k\n1",  "3 7 6 100 ep ch\nKx k\n1", "3 7 6 100 ep ch\nK1 kX1",
    "3 7 6 100 ep ch\nK0 \n1",   "3 7 6 100 ep ch\nK1 k\n",  "3 7 6 100 ep ch\nK",
    "3 7 6 100 ep ch\nK-1 k\n1",
  };

  g_assert_cmpstr (plain, ==, "{\"n\":1}");
  g_assert_cmpstr (keyed, ==, "K5 a b\nc\n{\"n\":1}");
  {
    g_autofree char *text = g_strconcat ("3 7 6 100 ep ch\n", keyed, NULL);
    HeraldRedisPayload p;
    g_autoptr (HeraldMessage) m = NULL;

    g_assert_true (herald_redis_payload_parse (text, strlen (text), &p));
    g_assert_cmpstr (p.key, ==, "a b\nc");
    g_assert_cmpstr (p.data, ==, "{\"n\":1}");
    m = herald_redis_payload_message (&p);
    g_assert_cmpstr (herald_message_get_key (m), ==, "a b\nc");
    herald_redis_payload_clear (&p);
  }
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      HeraldRedisPayload p;

      g_assert_false (herald_redis_payload_parse (bad[i], strlen (bad[i]), &p));
      herald_redis_payload_clear (&p);
    }

  /* Events */
  {
    g_autoptr (HeraldMessage) event = herald_message_new_join_leave ("c", "bob", "conn1", TRUE);
    g_autofree char *wire = herald_redis_payload_format_event ("nodeA", event);
    g_autoptr (HeraldMessage) back = NULL;
    const char *bad_events[] = { "J nodeB join\n{}", "J nodeB hop conn1\n{}", "J nodeB join conn1",
                                 "J nodeB join conn1\nx", "P join bob" };
    gsize len = 0;

    g_assert_null (herald_redis_payload_parse_event ("c", wire, strlen (wire), "nodeA"));
    back = herald_redis_payload_parse_event ("c", wire, strlen (wire), "nodeB");
    g_assert_nonnull (back);
    g_assert_cmpstr (herald_message_get_exclude (back), ==, "conn1");
    g_assert_cmpstr (herald_message_get_event (back), ==, "join");
    g_assert_cmpstr (herald_message_get_json (back, &len), ==,
                     herald_message_get_json (event, NULL));
    for (guint i = 0; i < G_N_ELEMENTS (bad_events); i++)
      g_assert_null (
          herald_redis_payload_parse_event ("c", bad_events[i], strlen (bad_events[i]), "nodeA"));
  }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/conflate/queue", test_queue_conflate);
  g_test_add_func ("/conflate/redis-payload", test_redis_payload);
  g_test_add_func ("/conflate/key/carried", test_key_carried);
  g_test_add_func ("/conflate/key/bad", test_key_bad);
  g_test_add_func ("/conflate/slow-reader", test_conflate_slow_reader);
  g_test_add_func ("/conflate/slow-reader-without", test_no_conflate_slow_reader);
  g_test_add_func ("/conflate/sse", test_conflate_sse);
  return g_test_run ();
}
