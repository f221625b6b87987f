/* test-hostile.c: clients that misbehave on purpose, over real sockets.
 *
 * Each test checks the answer Herald gives (close code or HTTP status), that
 * its memory stays bounded where a client tries to grow it, and that the
 * server still serves a fresh client afterwards. The slow consumer (a client
 * that never reads) is /server/slow-consumer in test-server.c.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <unistd.h>
#include <zlib.h>

#include "herald-test-server.h"

#define LIMITS "[limits]\nmax-message-size=65536\n[api]\nkey=k\n"

/* A masked client frame whose length field says @declared (G_MAXUINT64: the
 * payload's length) followed by @len bytes of @payload. */
static GByteArray *
build_frame (guint8 first, gboolean masked, const void *payload, gsize len, guint64 declared)
{
  GByteArray *frame = g_byte_array_new ();
  guint8 header[14];
  gsize hlen = 0;
  guint8 mask[4] = { 0x0f, 0xa5, 0x3c, 0x96 };
  guint8 mbit = masked ? 0x80 : 0;

  if (declared == G_MAXUINT64)
    declared = len;
  header[hlen++] = first;
  if (declared < 126)
    header[hlen++] = mbit | declared;
  else if (declared < 65536)
    {
      header[hlen++] = mbit | 126;
      header[hlen++] = declared >> 8;
      header[hlen++] = declared & 0xff;
    }
  else
    {
      header[hlen++] = mbit | 127;
      for (int i = 7; i >= 0; i--)
        header[hlen++] = (declared >> (8 * i)) & 0xff;
    }
  if (masked)
    {
      memcpy (header + hlen, mask, 4);
      hlen += 4;
    }
  g_byte_array_append (frame, header, hlen);
  for (gsize i = 0; i < len; i++)
    {
      guint8 b = ((const guint8 *)payload)[i] ^ (masked ? mask[i % 4] : 0);
      g_byte_array_append (frame, &b, 1);
    }
  return frame;
}

static void
send_frame (HeraldTestClient *client, guint8 first, gboolean masked, const void *payload, gsize len,
            guint64 declared)
{
  g_autoptr (GByteArray) frame = build_frame (first, masked, payload, len, declared);

  herald_test_client_send_raw (client, frame->data, frame->len);
}

/* Raw deflate, no context takeover, without the 00 00 ff ff tail (RFC 7692). */
static GByteArray *
deflate_bytes (const void *data, gsize len)
{
  GByteArray *out = g_byte_array_new ();
  z_stream z = { 0 };
  guint8 buf[16384];
  int r;

  g_assert_cmpint (deflateInit2 (&z, 9, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY), ==, Z_OK);
  z.next_in = (guint8 *)data;
  z.avail_in = len;
  do
    {
      z.next_out = buf;
      z.avail_out = sizeof buf;
      r = deflate (&z, Z_SYNC_FLUSH);
      g_assert_cmpint (r, !=, Z_STREAM_ERROR);
      g_byte_array_append (out, buf, sizeof buf - z.avail_out);
    }
  while (z.avail_out == 0);
  deflateEnd (&z);
  g_assert_cmpuint (out->len, >=, 4);
  g_byte_array_set_size (out, out->len - 4);
  return out;
}

/* ---- unbounded growth attempts ---- */

static void
test_endless_fragments (void)
{
  HeraldTestServer *server = herald_test_server_start (LIMITS, 1);
  HeraldTestClient *ws = herald_test_ws_open (server, "/ws", NULL);
  g_autofree char *chunk = g_strnfill (16384, 'a');
  gsize rss_before = herald_test_rss_kb ();

  /* A text message that never ends: 16 KiB fragments, 32 MiB in all unless
   * the server stops it first (the frames go out faster than a server that
   * closed would read them, so sends may fail: that is fine). */
  send_frame (ws, 0x01, TRUE, chunk, 16384, G_MAXUINT64);
  for (int i = 0; i < 2048 && !ws->closed; i++)
    {
      g_autoptr (GByteArray) frame = build_frame (0x00, TRUE, chunk, 16384, G_MAXUINT64);
      g_autoptr (GError) error = NULL;

      if (g_socket_send (ws->socket, (char *)frame->data, frame->len, NULL, &error) < 0)
        break;
    }
  g_assert_cmpuint (herald_test_ws_wait_close (ws), ==, 1009);
  herald_test_assert_rss_growth (rss_before, 8 * 1024);
  herald_test_client_free (ws);
  herald_test_assert_serving (server);
  herald_test_server_stop (server);
}

static void
test_deflate_bomb (void)
{
  HeraldTestServer *server = herald_test_server_start (LIMITS, 1);
  g_autofree char *head = NULL;
  g_autofree guint8 *zeros = g_malloc0 (64 * 1024 * 1024);
  /* Made before connecting: under valgrind this takes longer than the
   * server's handshake-timeout. */
  g_autoptr (GByteArray) bomb = deflate_bytes (zeros, 64 * 1024 * 1024);
  HeraldTestClient *ws = herald_test_client_connect (server);
  gsize rss_before;

  g_assert_cmpuint (herald_test_ws_handshake (ws, "/ws",
                                              "Sec-WebSocket-Extensions: permessage-deflate\r\n",
                                              &head),
                    ==, 101);
  g_assert_nonnull (strstr (head, "permessage-deflate"));
  /* "connected" (compressed when large enough: not read as JSON here) */
  g_assert_cmpint (herald_test_ws_read_frame (ws, NULL, NULL), ==, 0x1);
  g_clear_pointer (&zeros, g_free);
  rss_before = herald_test_rss_kb ();

  /* 64 MiB of zeros in about 64 KiB of deflate: one RSV1 frame. */
  g_test_message ("bomb: %u bytes", bomb->len);
  send_frame (ws, 0xC2, TRUE, bomb->data, bomb->len, G_MAXUINT64);
  g_assert_cmpuint (herald_test_ws_wait_close (ws), ==, 1009);
  herald_test_assert_rss_growth (rss_before, 8 * 1024);
  herald_test_client_free (ws);

  /* The same bomb split over a fragmented message. */
  ws = herald_test_client_connect (server);
  g_assert_cmpuint (herald_test_ws_handshake (ws, "/ws",
                                              "Sec-WebSocket-Extensions: permessage-deflate\r\n",
                                              NULL),
                    ==, 101);
  g_assert_cmpint (herald_test_ws_read_frame (ws, NULL, NULL), ==, 0x1);
  send_frame (ws, 0x42, TRUE, bomb->data, 1000, G_MAXUINT64);
  send_frame (ws, 0x80, TRUE, bomb->data + 1000, MIN (bomb->len - 1000, 60000), G_MAXUINT64);
  g_assert_cmpuint (herald_test_ws_wait_close (ws), ==, 1009);
  herald_test_client_free (ws);

  herald_test_assert_serving (server);
  herald_test_server_stop (server);
}

/* ---- malformed input, one table ---- */

typedef enum
{
  WS_FRAME, /* after an upgrade: a frame; expect a close code */
  WS_TEXT,  /* after an upgrade: a text message; expect an error code in reply */
  HTTP_RAW, /* a fresh connection: raw bytes; expect an HTTP status (0: closed, no answer) */
} CaseKind;

typedef struct
{
  const char *name;
  CaseKind kind;
  guint8 first;
  gboolean unmasked;
  const char *data;
  gssize len; /* -1: strlen (data) */
  guint64 declared;
  guint expected;
  const char *error_code;
} HostileCase;

#define FRAME(n, f, d, l, c) { n, WS_FRAME, f, FALSE, d, l, G_MAXUINT64, c, NULL }
#define CLOSE(n, d, l, c) { n, WS_FRAME, 0x88, FALSE, d, l, G_MAXUINT64, c, NULL }
#define LENGTH(n, f, declared, c) { n, WS_FRAME, f, FALSE, "", 0, declared, c, NULL }
#define TEXT(n, d, e) { n, WS_TEXT, 0x81, FALSE, d, -1, G_MAXUINT64, 0, e }
#define HTTP(n, d, s) { n, HTTP_RAW, 0, FALSE, d, -1, 0, s, NULL }

static const HostileCase cases[] = {
  { "unmasked", WS_FRAME, 0x81, TRUE, "hi", 2, G_MAXUINT64, 1002, NULL },
  FRAME ("opcode-3", 0x83, "x", 1, 1002),
  FRAME ("opcode-4", 0x84, "x", 1, 1002),
  FRAME ("opcode-5", 0x85, "x", 1, 1002),
  FRAME ("opcode-6", 0x86, "x", 1, 1002),
  FRAME ("opcode-7", 0x87, "x", 1, 1002),
  FRAME ("opcode-b", 0x8B, "x", 1, 1002),
  FRAME ("opcode-c", 0x8C, "x", 1, 1002),
  FRAME ("opcode-d", 0x8D, "x", 1, 1002),
  FRAME ("opcode-e", 0x8E, "x", 1, 1002),
  FRAME ("opcode-f", 0x8F, "x", 1, 1002),
  FRAME ("rsv1-without-deflate", 0xC1, "x", 1, 1002),
  FRAME ("rsv2", 0xA1, "x", 1, 1002),
  FRAME ("rsv3", 0x91, "x", 1, 1002),
  FRAME ("rsv-on-ping", 0xC9, "", 0, 1002),
  FRAME ("utf8-ff", 0x81, "\xff", 1, 1007),
  FRAME ("utf8-bad-continuation", 0x81, "\xc3\x28", 2, 1007),
  FRAME ("utf8-overlong", 0x81, "\xc0\xaf", 2, 1007),
  FRAME ("utf8-surrogate", 0x81, "\xed\xa0\x80", 3, 1007),
  FRAME ("utf8-truncated", 0x81, "ok\xe2\x82", 4, 1007),
  FRAME ("utf8-above-10ffff", 0x81, "\xf4\x90\x80\x80", 4, 1007),
  FRAME ("continuation-first", 0x80, "x", 1, 1002),
  FRAME ("fragmented-ping", 0x09, "", 0, 1002),
  FRAME ("fragmented-close", 0x08, "\x03\xe8", 2, 1002),
  FRAME ("ping-126-bytes", 0x89,
         "0123456789012345678901234567890123456789012345678901234567890123456789"
         "01234567890123456789012345678901234567890123456789012345",
         126, 1002),
  CLOSE ("close-one-byte", "\x03", 1, 1002),
  CLOSE ("close-code-0", "\x00\x00", 2, 1002),
  CLOSE ("close-code-999", "\x03\xe7", 2, 1002),
  CLOSE ("close-code-1004", "\x03\xec", 2, 1002),
  CLOSE ("close-code-1005", "\x03\xed", 2, 1002),
  CLOSE ("close-code-1006", "\x03\xee", 2, 1002),
  CLOSE ("close-code-1015", "\x03\xf7", 2, 1002),
  CLOSE ("close-code-1016", "\x03\xf8", 2, 1002),
  CLOSE ("close-code-2999", "\x0b\xb7", 2, 1002),
  CLOSE ("close-code-5000", "\x13\x88", 2, 1002),
  CLOSE ("close-code-65535", "\xff\xff", 2, 1002),
  CLOSE ("close-reason-bad-utf8", "\x03\xe8\xff", 3, 1007),
  CLOSE ("close-1000", "\x03\xe8", 2, 1000),
  CLOSE ("close-empty", "", 0, 1000),
  CLOSE ("close-4000-echoed", "\x0f\xa0" "bye", 5, 4000),
  LENGTH ("length-2^63", 0x82, G_GUINT64_CONSTANT (0x8000000000000000), 1002),
  LENGTH ("length-2^64-2", 0x82, G_MAXUINT64 - 1, 1002),
  LENGTH ("length-1TiB", 0x82, G_GUINT64_CONSTANT (1) << 40, 1009),
  LENGTH ("length-64MiB-text", 0x81, 64 * 1024 * 1024, 1009),
  LENGTH ("length-65537", 0x81, 65537, 1009),
  FRAME ("data-during-fragments", 0x01, "a", 1, 1002), /* followed by a second start, below */
  TEXT ("not-json", "hello", "invalid_json"),
  TEXT ("json-array", "[1,2,3]", "bad_request"),
  TEXT ("json-truncated", "{\"type\":\"subscr", "invalid_json"),
  TEXT ("no-type", "{\"channel\":\"x\"}", "bad_request"),
  TEXT ("type-number", "{\"type\":5}", "bad_request"),
  TEXT ("id-object", "{\"type\":\"ping\",\"id\":{}}", "bad_request"),
  TEXT ("unknown-type", "{\"type\":\"launch\"}", "unknown_type"),
  TEXT ("bad-channel", "{\"type\":\"subscribe\",\"channel\":\"a b\"}", "bad_request"),
  TEXT ("channel-336-bytes", "{\"type\":\"subscribe\",\"channel\":\""
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
        "\"}", "bad_request"),
  TEXT ("deep-json", "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["
        "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
        "bad_request"),
  HTTP ("garbage", "GARBAGE\r\n\r\n", 400),
  HTTP ("tls-hello", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 0),
  HTTP ("http-9", "GET /ws HTTP/9.9\r\nHost: x\r\n\r\n", 505),
  HTTP ("no-key", "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n", 400),
  HTTP ("bad-key", "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: short\r\nSec-WebSocket-Version: 13\r\n\r\n", 400),
  HTTP ("version-12", "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 12\r\n\r\n", 400),
  HTTP ("no-upgrade", "GET /ws HTTP/1.1\r\nHost: x\r\n\r\n", 400),
  HTTP ("post-ws", "POST /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        "Content-Length: 0\r\n\r\n", 405),
  HTTP ("header-without-colon", "GET /ws HTTP/1.1\r\nHost x\r\n\r\n", 400),
  /* libsoup drops this without an answer (0) */
  HTTP ("nul-in-header", "GET /ws HTTP/1.1\r\nHost: a\0b\r\n\r\n", 0),
  /* RFC 9112 6.3: 400, then close (herald-http-early.c) */
  HTTP ("content-length-negative", "POST /api/publish HTTP/1.1\r\nHost: x\r\n"
        "Authorization: Bearer k\r\nContent-Length: -1\r\n\r\n", 400),
  HTTP ("bad-chunk", "POST /api/publish HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k\r\n"
        "Transfer-Encoding: chunked\r\n\r\nzz\r\nxx\r\n0\r\n\r\n", 400),
  HTTP ("api-no-key", "POST /api/publish HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}", 401),
  HTTP ("api-body-not-json", "POST /api/publish HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k\r\n"
        "Content-Length: 5\r\n\r\nhello", 400),
  HTTP ("sse-bad-channel", "GET /events?channel=a%20b HTTP/1.1\r\nHost: x\r\n\r\n", 400),
};

static void
run_case (HeraldTestServer *server, const HostileCase *c)
{
  HeraldTestClient *client;
  gsize len = c->len < 0 ? strlen (c->data) : (gsize)c->len;

  g_test_message ("case %s", c->name);
  if (c->kind == HTTP_RAW)
    {
      g_autofree char *head = NULL;
      guint status;

      client = herald_test_client_connect (server);
      herald_test_client_send_raw (client, c->data, len);
      status = herald_test_client_read_head (client, &head);
      if (status != c->expected)
        g_error ("case %s: HTTP %u, expected %u", c->name, status, c->expected);
      herald_test_client_free (client);
      return;
    }

  client = herald_test_ws_open (server, "/ws", NULL);
  if (c->kind == WS_TEXT)
    {
      g_autoptr (JsonObject) reply = NULL;

      send_frame (client, c->first, TRUE, c->data, len, G_MAXUINT64);
      reply = herald_test_ws_read_json (client);
      g_assert_nonnull (reply);
      g_assert_cmpstr (herald_test_json_get_string (reply, "type"), ==, "error");
      if (g_strcmp0 (herald_test_json_get_string (reply, "code"), c->error_code) != 0)
        g_error ("case %s: error %s, expected %s", c->name,
                 herald_test_json_get_string (reply, "code"), c->error_code);
    }
  else
    {
      guint16 code;

      send_frame (client, c->first, !c->unmasked, c->data, len, c->declared);
      if (g_str_equal (c->name, "data-during-fragments"))
        send_frame (client, 0x81, TRUE, "b", 1, G_MAXUINT64);
      code = herald_test_ws_wait_close (client);
      if (code != c->expected)
        g_error ("case %s: close %u, expected %u", c->name, code, c->expected);
    }
  herald_test_client_free (client);
}

static void
test_malformed (void)
{
  HeraldTestServer *server = herald_test_server_start (LIMITS, 2);

  g_assert_cmpuint (G_N_ELEMENTS (cases), >=, 50);
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      run_case (server, &cases[i]);
      herald_test_assert_serving (server);
    }

  /* Oversize heads: one 256 KiB header line, 5000 headers, a 256 KiB path. */
  for (int i = 0; i < 3; i++)
    {
      HeraldTestClient *client = herald_test_client_connect (server);
      g_autoptr (GString) req = g_string_new ("GET /ws");
      g_autofree char *head = NULL;
      guint status;

      if (i == 2)
        {
          g_string_append_c (req, '?');
          for (int j = 0; j < 256 * 1024; j++)
            g_string_append_c (req, 'p');
        }
      g_string_append (req, " HTTP/1.1\r\nHost: x\r\n");
      if (i == 0)
        {
          g_string_append (req, "X-Big: ");
          for (int j = 0; j < 256 * 1024; j++)
            g_string_append_c (req, 'h');
          g_string_append (req, "\r\n");
        }
      else if (i == 1)
        for (int j = 0; j < 5000; j++)
          g_string_append_printf (req, "X-H%d: v\r\n", j);
      g_string_append (req, "\r\n");
      herald_test_client_send_raw (client, req->str, req->len);
      status = herald_test_client_read_head (client, &head);
      g_test_message ("oversize head %d: HTTP %u", i, status);
      /* Refused (4xx) or dropped (0), never accepted. */
      g_assert_true (status == 0 || (status >= 400 && status < 500));
      herald_test_client_free (client);
      herald_test_assert_serving (server);
    }
  herald_test_server_stop (server);
}

/* ---- connections that end badly ---- */

static void
reset_socket (HeraldTestClient *client)
{
  struct linger lg = { 1, 0 };

  setsockopt (g_socket_get_fd (client->socket), SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  herald_test_client_free (client);
}

static void
test_abrupt_ends (void)
{
  HeraldTestServer *server = herald_test_server_start (LIMITS, 1);
  g_autofree char *payload = g_strnfill (40000, 'z');

  for (int round = 0; round < 20; round++)
    {
      HeraldTestClient *ws = herald_test_ws_open (server, "/ws", NULL);
      g_autoptr (GByteArray) frame = build_frame (0x81, TRUE, payload, 40000, G_MAXUINT64);

      switch (round % 5)
        {
        case 0: /* RST in the middle of a frame */
          herald_test_client_send_raw (ws, frame->data, frame->len / 2);
          reset_socket (ws);
          break;
        case 1: /* EOF in the middle of a frame */
          herald_test_client_send_raw (ws, frame->data, frame->len / 2);
          herald_test_client_free (ws);
          break;
        case 2: /* truncated header, then EOF */
          herald_test_client_send_raw (ws, frame->data, 3);
          herald_test_client_free (ws);
          break;
        case 3: /* RST with subscriptions and a message being delivered */
          herald_test_ws_send_text (ws, "{\"type\":\"subscribe\",\"channel\":\"x\"}");
          herald_test_ws_send_text (ws, "{\"type\":\"ping\"}");
          reset_socket (ws);
          break;
        default: /* RST during the handshake */
          herald_test_client_free (ws);
          ws = herald_test_client_connect (server);
          herald_test_client_send_raw (ws, "GET /ws HTTP/1.1\r\nHost: x\r\nUpg", 31);
          reset_socket (ws);
          break;
        }
    }
  herald_test_assert_serving (server);
  herald_test_server_stop (server);
}

/* Slowloris: handshakes that trickle in are dropped after handshake-timeout,
 * and a well-behaved client is served meanwhile. */
static void
test_slowloris (void)
{
  HeraldTestServer *server = herald_test_server_start ("[limits]\nhandshake-timeout=1\n", 1);
  HeraldTestClient *slow[30];
  gint64 start = g_get_monotonic_time ();

  for (guint i = 0; i < G_N_ELEMENTS (slow); i++)
    {
      slow[i] = herald_test_client_connect (server);
      herald_test_client_send_raw (slow[i], "GET /ws HTTP/1.1\r\n", 18);
    }
  /* 3 s of one header line every 200 ms each: never a complete request. */
  for (int round = 0; round < 15; round++)
    {
      g_usleep (200 * 1000);
      for (guint i = 0; i < G_N_ELEMENTS (slow); i++)
        {
          g_autoptr (GError) error = NULL;
          g_socket_send (slow[i]->socket, "X-Slow: 1\r\n", 11, NULL, &error);
        }
      if (round == 7)
        herald_test_assert_serving (server);
    }
  for (guint i = 0; i < G_N_ELEMENTS (slow); i++)
    {
      char buf[4096];
      gssize n;

      /* EOF (or a reset), not our 5 s receive timeout. */
      do
        {
          g_autoptr (GError) error = NULL;
          n = g_socket_receive (slow[i]->socket, buf, sizeof buf, NULL, &error);
          if (n < 0)
            g_assert_false (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT));
        }
      while (n > 0);
      herald_test_client_free (slow[i]);
    }
  g_assert_cmpint (g_get_monotonic_time () - start, <, 10 * G_USEC_PER_SEC);
  herald_test_assert_serving (server);
  herald_test_server_stop (server);
}

/* ---- faults, with heraldd as a process ($HERALDD) ---- */

typedef struct
{
  HeraldTestServer server; /* only host and port: enough for the client helpers */
  GPid pid;
  char *config;
  volatile gint stop;
  volatile gint published;
  volatile gint publish_errors;
  GThread *publisher;
  const char *channel;
} Heraldd;

static guint16
free_port (void)
{
  int fd = socket (AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
  socklen_t len = sizeof sa;

  g_assert_cmpint (bind (fd, (struct sockaddr *)&sa, sizeof sa), ==, 0);
  g_assert_cmpint (getsockname (fd, (struct sockaddr *)&sa, &len), ==, 0);
  close (fd);
  return ntohs (sa.sin_port);
}

/* Starts heraldd; its stdout and stderr go to *@stdout_fd and *@stderr_fd
 * when not NULL (pipes the caller may never read), else to /dev/null. */
static Heraldd *
heraldd_start (gboolean verbose, int *stdout_fd, int *stderr_fd)
{
  Heraldd *d = g_new0 (Heraldd, 1);
  g_autoptr (GError) error = NULL;
  g_autofree char *listen = NULL;
  g_auto (GStrv) envp = g_environ_setenv (g_get_environ (), "HERALD_API_KEY", "k", TRUE);
  const char *heraldd = g_getenv ("HERALDD");
  gint64 deadline = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;
  int fd;

  if (heraldd == NULL)
    {
      g_test_skip ("HERALDD is not set");
      g_free (d);
      return NULL;
    }
  d->server.host = g_strdup ("127.0.0.1");
  d->server.port = free_port ();
  listen = g_strdup_printf ("127.0.0.1:%u", d->server.port);
  fd = g_file_open_tmp ("herald-hostile-XXXXXX.conf", &d->config, &error);
  g_assert_no_error (error);
  close (fd);
  /* The drain itself is tested in test-daemon.c; here the closes come at once. */
  g_file_set_contents (d->config, "[auth]\nanonymous=true\n[server]\ndrain-seconds=0\n", -1,
                       &error);
  g_assert_no_error (error);
  {
    const char *argv[] = { heraldd, "--config", d->config, "--listen", listen, "--bus", "none",
                           "--workers", "2", verbose ? "--verbose" : NULL, NULL };
    g_spawn_async_with_pipes (NULL, (char **)argv, envp,
                              G_SPAWN_DO_NOT_REAP_CHILD
                                  | (stderr_fd ? 0 : G_SPAWN_STDERR_TO_DEV_NULL)
                                  | (stdout_fd ? 0 : G_SPAWN_STDOUT_TO_DEV_NULL),
                              NULL, NULL, &d->pid, NULL, stdout_fd, stderr_fd, &error);
    g_assert_no_error (error);
  }
  /* Ready when it accepts connections. */
  for (;;)
    {
      g_autoptr (GSocketClient) sc = g_socket_client_new ();
      g_autoptr (GSocketConnection) c
          = g_socket_client_connect_to_host (sc, d->server.host, d->server.port, NULL, NULL);
      if (c)
        break;
      g_assert_cmpint (g_get_monotonic_time (), <, deadline);
      g_usleep (50 * 1000);
    }
  return d;
}

/* Exit status of heraldd, waiting up to @seconds; -1 if it did not exit normally. */
static int
heraldd_wait (Heraldd *d, int seconds)
{
  gint64 deadline = g_get_monotonic_time () + seconds * G_USEC_PER_SEC;
  int status = 0;

  while (waitpid (d->pid, &status, WNOHANG) == 0)
    {
      if (g_get_monotonic_time () > deadline)
        {
          kill (d->pid, SIGKILL);
          waitpid (d->pid, &status, 0);
          g_test_message ("heraldd did not exit in %d s", seconds);
          return -2;
        }
      g_usleep (20 * 1000);
    }
  g_spawn_close_pid (d->pid);
  if (WIFSIGNALED (status))
    g_test_message ("heraldd killed by signal %d", WTERMSIG (status));
  return WIFEXITED (status) ? WEXITSTATUS (status) : -1;
}

static void
heraldd_free (Heraldd *d)
{
  unlink (d->config);
  g_free (d->config);
  g_free (d->server.host);
  g_free (d);
}

/* One publish on a fresh connection; FALSE on any failure (the server may be gone). */
static gboolean
raw_publish (Heraldd *d, const char *channel, int n)
{
  g_autoptr (GSocketClient) sc = g_socket_client_new ();
  g_autoptr (GSocketConnection) c = NULL;
  g_autofree char *body = g_strdup_printf ("{\"channel\":\"%s\",\"data\":{\"n\":%d}}", channel, n);
  g_autofree char *req = NULL;
  char buf[512];
  gssize got;

  g_socket_client_set_timeout (sc, 5);
  c = g_socket_client_connect_to_host (sc, d->server.host, d->server.port, NULL, NULL);
  if (c == NULL)
    return FALSE;
  req = g_strdup_printf ("POST /api/publish HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k\r\n"
                         "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                         strlen (body), body);
  if (!g_output_stream_write_all (g_io_stream_get_output_stream (G_IO_STREAM (c)), req,
                                  strlen (req), NULL, NULL, NULL))
    return FALSE;
  got = g_input_stream_read (g_io_stream_get_input_stream (G_IO_STREAM (c)), buf, sizeof buf - 1,
                             NULL, NULL);
  if (got < 12)
    return FALSE;
  buf[got] = '\0';
  return g_str_has_prefix (buf, "HTTP/1.1 200");
}

static gpointer
publisher_thread (gpointer data)
{
  Heraldd *d = data;

  for (int n = 1; !g_atomic_int_get (&d->stop); n++)
    {
      if (raw_publish (d, d->channel, n))
        g_atomic_int_inc (&d->published);
      else
        {
          g_atomic_int_inc (&d->publish_errors);
          g_usleep (10 * 1000);
        }
    }
  return NULL;
}

static HeraldTestClient *
open_subscriber (Heraldd *d, const char *channel)
{
  HeraldTestClient *ws = herald_test_ws_open (&d->server, "/ws", NULL);
  g_autofree char *text = g_strdup_printf ("{\"type\":\"subscribe\",\"channel\":\"%s\"}", channel);

  herald_test_ws_send_text (ws, text);
  for (;;)
    {
      g_autoptr (JsonObject) reply = herald_test_ws_read_json (ws);
      g_assert_nonnull (reply);
      if (g_strcmp0 (herald_test_json_get_string (reply, "type"), "subscribed") == 0)
        break;
    }
  return ws;
}

static gpointer
wait_close_thread (gpointer data)
{
  return GUINT_TO_POINTER (herald_test_ws_wait_close (data));
}

static void
test_sigterm_under_load (void)
{
  Heraldd *d = heraldd_start (FALSE, NULL, NULL);
  HeraldTestClient *clients[80];
  GThread *readers[G_N_ELEMENTS (clients)];
  HeraldTestClient *sse[8];

  if (d == NULL)
    return;
  for (guint i = 0; i < G_N_ELEMENTS (clients); i++)
    clients[i] = open_subscriber (d, "load");
  for (guint i = 0; i < G_N_ELEMENTS (sse); i++)
    {
      const char *req = "GET /events?channel=load HTTP/1.1\r\nHost: x\r\n\r\n";
      sse[i] = herald_test_client_connect (&d->server);
      herald_test_client_send_raw (sse[i], req, strlen (req));
      g_assert_cmpuint (herald_test_client_read_head (sse[i], NULL), ==, 200);
    }
  d->channel = "load";
  d->publisher = g_thread_new ("publisher", publisher_thread, d);
  while (g_atomic_int_get (&d->published) < 200)
    g_usleep (10 * 1000);

  /* SIGTERM while publishing goes on. Every client reads at once, as real
   * ones do: a client nobody reads cannot get its close frame before
   * heraldd's shutdown deadline. */
  kill (d->pid, SIGTERM);
  for (guint i = 0; i < G_N_ELEMENTS (clients); i++)
    readers[i] = g_thread_new ("reader", wait_close_thread, clients[i]);
  for (guint i = 0; i < G_N_ELEMENTS (clients); i++)
    {
      g_assert_cmpuint (GPOINTER_TO_UINT (g_thread_join (readers[i])), ==, 1001);
      herald_test_client_free (clients[i]);
    }
  for (guint i = 0; i < G_N_ELEMENTS (sse); i++)
    {
      for (char *event; (event = herald_test_sse_read_event (sse[i])) != NULL;)
        g_free (event);
      g_assert_true (sse[i]->closed);
      herald_test_client_free (sse[i]);
    }
  g_assert_cmpint (heraldd_wait (d, 15), ==, 0);
  g_atomic_int_set (&d->stop, 1);
  g_thread_join (d->publisher);
  g_test_message ("published %d before and during shutdown", g_atomic_int_get (&d->published));
  heraldd_free (d);
}

/* Reads deliveries on "log" until data.n == @n; FALSE on close, EOF or timeout. */
static gboolean
read_until (HeraldTestClient *ws, int n)
{
  for (;;)
    {
      g_autoptr (JsonObject) msg = herald_test_ws_read_json (ws);
      JsonObject *data;

      if (msg == NULL)
        return FALSE;
      if (g_strcmp0 (herald_test_json_get_string (msg, "type"), "message") != 0)
        continue;
      data = json_object_get_object_member (msg, "data");
      if (data && json_object_get_int_member (data, "n") >= n)
        return TRUE;
    }
}

static void
test_unwritable_log (void)
{
  int out_fd = -1, err_fd = -1;
  Heraldd *d = heraldd_start (TRUE, &out_fd, &err_fd);
  HeraldTestClient *ws;
  int n = 0;

  if (d == NULL)
    return;
  ws = open_subscriber (d, "log");
  /* --verbose logs every request and connection (debug lines go to stdout,
   * warnings and messages to stderr): far more than a pipe's 64 KiB, and
   * nobody reads either pipe. Delivery must go on regardless. */
  for (int round = 0; round < 3; round++)
    {
      for (int i = 0; i < 300; i++)
        {
          HeraldTestClient *churn = herald_test_ws_open (&d->server, "/ws", NULL);
          herald_test_client_free (churn);
          g_assert_true (raw_publish (d, "log", ++n));
        }
      g_assert_true (read_until (ws, n));
      {
        int pending = 0;

        ioctl (out_fd, FIONREAD, &pending);
        g_test_message ("round %d: %d delivered, %d bytes of log unread", round, n, pending);
        /* The pipe is full (Linux: 64 KiB), so heraldd's log writes block or fail. */
        if (round == 2)
          g_assert_cmpint (pending, >=, 60 * 1024);
      }
    }
  /* Then both closed altogether (EPIPE; SIGPIPE is ignored). */
  close (out_fd);
  close (err_fd);
  for (int i = 0; i < 300; i++)
    g_assert_true (raw_publish (d, "log", ++n));
  g_assert_true (read_until (ws, n));

  kill (d->pid, SIGTERM);
  g_assert_cmpuint (herald_test_ws_wait_close (ws), ==, 1001);
  herald_test_client_free (ws);
  g_assert_cmpint (heraldd_wait (d, 15), ==, 0);
  heraldd_free (d);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/hostile/endless-fragments", test_endless_fragments);
  g_test_add_func ("/hostile/deflate-bomb", test_deflate_bomb);
  g_test_add_func ("/hostile/malformed", test_malformed);
  g_test_add_func ("/hostile/abrupt-ends", test_abrupt_ends);
  g_test_add_func ("/hostile/slowloris", test_slowloris);
  g_test_add_func ("/hostile/sigterm-under-load", test_sigterm_under_load);
  g_test_add_func ("/hostile/unwritable-log", test_unwritable_log);
  return g_test_run ();
}
