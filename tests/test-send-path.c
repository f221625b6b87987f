/* test-send-path.c: the workers' write path, end to end — fan-out to many
 * WebSocket and SSE subscribers, some of them too slow to keep up (their
 * sockets fill: EAGAIN, partial writes, EPOLLOUT), every message arriving
 * whole and in order. tests/meson.build runs it twice: through io_uring
 * batches when the kernel allows them, and with HERALD_TEST_SENDMSG=1
 * (`[server] io-uring=false`) through one sendmsg per socket; /metrics
 * says which path carried the writes and the test checks it is the one
 * asked for.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>
#include <sys/socket.h>

#include "herald-send-batch.h"
#include "herald-test-server.h"

#define API "[api]\nkey=k\n"
#define AUTH "Authorization: Bearer k\r\n"
#define N_FAST 12
#define N_SLOW 2
#define N_SSE 3
#define N_MESSAGES 300
#define PAD 32000 /* 300 × 32 kB: more than a slow reader's socket buffers hold */

static gboolean
want_sendmsg (void)
{
  return g_strcmp0 (g_getenv ("HERALD_TEST_SENDMSG"), "1") == 0;
}

/* Whether this kernel lets the test process (and so the in-process
 * server) use io_uring at all. */
static gboolean
io_uring_usable (void)
{
  g_autoptr (GError) error = NULL;
  HeraldSendBatch *batch = herald_send_batch_new (8, &error);

  if (batch == NULL)
    {
      g_test_message ("io_uring unusable here: %s", error->message);
      return FALSE;
    }
  herald_send_batch_free (batch);
  return TRUE;
}

static guint64
metric (HeraldTestServer *server, const char *name)
{
  guint status = 0;
  g_autofree char *text = herald_test_http (server, "GET", "/metrics", NULL, NULL, &status);
  g_autofree char *prefix = g_strdup_printf ("\n%s ", name);
  const char *at;

  g_assert_cmpuint (status, ==, 200);
  at = strstr (text, prefix);
  g_assert_nonnull (at);
  return g_ascii_strtoull (at + strlen (prefix), NULL, 10);
}

static JsonObject *
expect_type (HeraldTestClient *client, const char *type)
{
  JsonObject *obj = herald_test_ws_read_json (client);

  if (obj == NULL)
    g_test_message ("no %s: closed %d code %u (%s)", type, client->closed, client->close_code,
                    client->close_reason ? client->close_reason : "");
  g_assert_nonnull (obj);
  g_assert_cmpstr (json_object_get_string_member (obj, "type"), ==, type);
  return obj;
}

static void
subscribe (HeraldTestClient *client, const char *channel)
{
  g_autofree char *text = g_strdup_printf ("{\"type\":\"subscribe\",\"channel\":\"%s\"}", channel);
  g_autoptr (JsonObject) reply = NULL;

  herald_test_ws_send_text (client, text);
  reply = expect_type (client, "subscribed");
}

/* Message @i of the run: its number and a pad whose letter depends on it. */
static void
check_ws_message (HeraldTestClient *client, int i)
{
  g_autoptr (JsonObject) msg = NULL;
  JsonObject *data;
  const char *pad;

  if (g_test_verbose ())
    g_test_message ("message %d", i);
  msg = expect_type (client, "message");
  data = json_object_get_object_member (msg, "data");
  pad = json_object_get_string_member (data, "pad");

  g_assert_cmpint (json_object_get_int_member (msg, "offset"), ==, i + 1);
  g_assert_cmpint (json_object_get_int_member (data, "n"), ==, i);
  g_assert_cmpuint (strlen (pad), ==, PAD);
  g_assert_cmpint (pad[0], ==, 'a' + i % 26);
  g_assert_cmpint (pad[PAD - 1], ==, 'a' + i % 26);
}

static void
check_sse_message (HeraldTestClient *client, int i)
{
  g_autofree char *ev = herald_test_sse_read_event (client);
  g_autofree char *want
      = g_strdup_printf ("\"offset\":%d,\"data\":{\"n\":%d,\"pad\":\"%c", i + 1, i, 'a' + i % 26);

  g_assert_nonnull (ev);
  g_assert_nonnull (strstr (ev, "event: message\n"));
  g_assert_nonnull (strstr (ev, want));
}

static HeraldTestClient *
sse_open (HeraldTestServer *server)
{
  HeraldTestClient *sse = herald_test_client_connect (server);
  const char *request = "GET /events?channel=fan HTTP/1.1\r\nHost: x\r\n\r\n";
  g_autofree char *head = NULL;
  g_autofree char *retry = NULL;
  g_autofree char *connected = NULL;

  herald_test_client_send_raw (sse, request, strlen (request));
  g_assert_cmpuint (herald_test_client_read_head (sse, &head), ==, 200);
  retry = herald_test_sse_read_event (sse);
  connected = herald_test_sse_read_event (sse);
  g_assert_nonnull (strstr (connected, "event: connected"));
  return sse;
}

static void
test_fan_out_with_slow_readers (void)
{
  HeraldTestServer *server
      = herald_test_server_start (API "[limits]\nsend-queue-max-bytes=67108864\n", 1);
  HeraldTestClient *fast[N_FAST], *slow[N_SLOW], *sse[N_SSE];
  guint64 batched, single, queued;
  guint status = 0;

  for (int i = 0; i < N_FAST; i++)
    {
      fast[i] = herald_test_ws_open (server, "/ws", NULL);
      subscribe (fast[i], "fan");
    }
  for (int i = 0; i < N_SLOW; i++)
    {
      /* Well above the loopback MSS (64 kB): a window smaller than one
       * segment stalls the connection in TCP itself. */
      int small = 256 * 1024;

      slow[i] = herald_test_ws_open (server, "/ws", NULL);
      subscribe (slow[i], "fan");
      /* A smaller receive window (and no autotuning): with the send buffer's
       * 4 MiB, less than the 9.6 MB published, so the server must queue. */
      g_assert_true (g_socket_set_option (slow[i]->socket, SOL_SOCKET, SO_RCVBUF, small, NULL));
    }
  for (int i = 0; i < N_SSE; i++)
    sse[i] = sse_open (server);
  for (int tries = 0; tries < 200; tries++)
    {
      g_autofree char *p
          = herald_test_http (server, "GET", "/api/channels/fan/presence", AUTH, NULL, &status);
      g_autofree char *want = g_strdup_printf ("\"connections\":%d", N_FAST + N_SLOW + N_SSE);
      if (strstr (p, want))
        break;
      g_usleep (10000);
    }

  /* The fast readers read as the messages come; the slow ones not at all yet. */
  for (int i = 0; i < N_MESSAGES; i++)
    {
      g_autofree char *pad = g_strnfill (PAD, 'a' + i % 26);
      g_autofree char *body
          = g_strdup_printf ("{\"channel\":\"fan\",\"data\":{\"n\":%d,\"pad\":\"%s\"}}", i, pad);
      g_autofree char *answer
          = herald_test_http (server, "POST", "/api/publish", AUTH, body, &status);

      g_assert_cmpuint (status, ==, 200);
      for (int j = 0; j < N_FAST; j++)
        check_ws_message (fast[j], i);
      for (int j = 0; j < N_SSE; j++)
        check_sse_message (sse[j], i);
    }
  /* What the slow readers' sockets could not take waits in their queues. */
  queued = metric (server, "herald_send_queue_bytes");
  g_assert_cmpuint (queued, >, 0);
  for (int j = 0; j < N_SLOW; j++)
    for (int i = 0; i < N_MESSAGES; i++)
      check_ws_message (slow[j], i);

  batched = metric (server, "herald_socket_writes_total{path=\"io_uring\"}");
  single = metric (server, "herald_socket_writes_total{path=\"sendmsg\"}");
  g_test_message ("writes: %" G_GUINT64_FORMAT " batched, %" G_GUINT64_FORMAT
                  " by sendmsg; %" G_GUINT64_FORMAT " bytes were queued",
                  batched, single, queued);
  if (want_sendmsg () || !herald_send_batch_supported () || !io_uring_usable ())
    {
      g_assert_cmpuint (batched, ==, 0);
      g_assert_cmpuint (metric (server, "herald_io_uring_submits_total"), ==, 0);
      g_assert_cmpuint (single, >=, (guint64)N_MESSAGES * (N_FAST + N_SSE));
    }
  else
    {
      /* One write per subscriber and message, nearly all in batches. */
      g_assert_cmpuint (batched, >=, (guint64)N_MESSAGES * (N_FAST + N_SSE));
      g_assert_cmpuint (metric (server, "herald_io_uring_submits_total"), >=, N_MESSAGES);
      g_assert_cmpuint (metric (server, "herald_io_uring_submits_total"), <, batched / 4);
    }

  for (int i = 0; i < N_FAST; i++)
    herald_test_client_free (fast[i]);
  for (int i = 0; i < N_SLOW; i++)
    herald_test_client_free (slow[i]);
  for (int i = 0; i < N_SSE; i++)
    herald_test_client_free (sse[i]);
  herald_test_server_stop (server);
}

/* A client that vanishes (RST) while writes to it are batched with others'
 * ends alone; the others get everything. */
static void
test_reset_peer_among_many (void)
{
  HeraldTestServer *server = herald_test_server_start (API, 1);
  HeraldTestClient *ws[8];
  guint status = 0;

  for (int i = 0; i < 8; i++)
    {
      ws[i] = herald_test_ws_open (server, "/ws", NULL);
      subscribe (ws[i], "fan");
    }
  for (int i = 0; i < 40; i++)
    {
      g_autofree char *pad = g_strnfill (PAD, 'a' + i % 26);
      g_autofree char *body
          = g_strdup_printf ("{\"channel\":\"fan\",\"data\":{\"n\":%d,\"pad\":\"%s\"}}", i, pad);
      g_autofree char *answer
          = herald_test_http (server, "POST", "/api/publish", AUTH, body, &status);

      g_assert_cmpuint (status, ==, 200);
      if (i == 3)
        {
          /* SO_LINGER 0: close sends RST; the server's next write fails. */
          struct linger lg = { 1, 0 };
          setsockopt (g_socket_get_fd (ws[0]->socket), SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
          g_clear_pointer (&ws[0], herald_test_client_free);
        }
      for (int j = 1; j < 8; j++)
        check_ws_message (ws[j], i);
    }
  for (int tries = 0; tries < 200; tries++)
    {
      g_autofree char *p
          = herald_test_http (server, "GET", "/api/channels/fan/presence", AUTH, NULL, &status);
      if (strstr (p, "\"connections\":7"))
        break;
      g_usleep (10000);
    }
  {
    g_autofree char *p
        = herald_test_http (server, "GET", "/api/channels/fan/presence", AUTH, NULL, &status);
    g_assert_nonnull (strstr (p, "\"connections\":7"));
  }
  for (int j = 1; j < 8; j++)
    herald_test_client_free (ws[j]);
  herald_test_server_stop (server);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/send-path/fan-out-with-slow-readers", test_fan_out_with_slow_readers);
  g_test_add_func ("/send-path/reset-peer-among-many", test_reset_peer_among_many);
  return g_test_run ();
}
