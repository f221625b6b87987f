/* test-upgrade.c: the worker's own WebSocket and SSE handshakes
 * (src/herald-http-upgrade.c) against libsoup's (src/herald-http.c).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>

#include "herald-http-upgrade.h"
#include "herald-jwt.h"
#include "herald-test-server.h"
#include "herald-test-utils.h"

#define SECRET "s3cret"
#define KEY "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
#define UPGRADE "Upgrade: websocket\r\nConnection: Upgrade\r\n"
#define V13 "Sec-WebSocket-Version: 13\r\n"
#define WS_HEADERS UPGRADE KEY V13

static gboolean
has (const char *text, const char *part)
{
  return text != NULL && strstr (text, part) != NULL;
}

static char *
token_for (const char *sub)
{
  g_autoptr (GBytes) secret = g_bytes_new_static (SECRET, strlen (SECRET));
  g_autofree char *claims = g_strdup_printf ("{\"sub\":\"%s\"}", sub);

  return herald_jwt_sign_hs256 (secret, claims);
}

/* The response to @request on a fresh connection: a refusal whole, an
 * accepted handshake's head only; the Date line removed (it may tick). */
static char *
answer (HeraldTestServer *server, const char *request, guint *status)
{
  HeraldTestClient *client = herald_test_client_connect (server);
  g_autofree char *head = NULL;
  g_autofree char *body = NULL;
  GString *out;
  char *date;

  herald_test_client_send_raw (client, request, strlen (request));
  *status = herald_test_client_read_head (client, &head);
  g_assert_nonnull (head);
  out = g_string_new (head);
  if (*status >= 400)
    {
      /* The head was read: put it back and read the whole response. */
      g_byte_array_prepend (client->buffer, (const guint8 *)head, strlen (head));
      g_clear_pointer (&head, g_free);
      body = herald_test_client_read_response (client, status, &head);
      g_assert_nonnull (body);
      g_string_append (out, body);
    }
  date = strstr (out->str, "Date: ");
  if (date)
    g_string_erase (out, date - out->str, strstr (date, "\r\n") + 2 - date);
  herald_test_client_free (client);
  return g_string_free (out, FALSE);
}

/* Every head here is the plain case: the worker's reader answers it as
 * libsoup's path does, byte for byte (but the Date). */
static void
test_same_answers (void)
{
  HeraldTestServer *server = herald_test_server_start (
      "[auth]\njwt-secret=" SECRET "\n[server]\nallowed-origins=https://app.example\n"
      "[limits]\nmax-subscriptions-per-connection=2\n",
      1);
  g_autofree char *t = token_for ("alice");
  const char *ok_origin = "Origin: https://app.example\r\n";
  const char *bad_origin = "Origin: https://evil.example\r\n";
  g_autofree char *bearer = g_strdup_printf ("Authorization: Bearer %s\r\n", t);
  g_autofree char *cookie = g_strdup_printf ("Cookie: a=b; herald_token=%s\r\n", t);
  g_autofree char *protocols
      = g_strdup_printf ("Sec-WebSocket-Protocol: bearer.%s, chat, json\r\n", t);
  g_autofree char *spaced = g_strdup_printf ("Sec-WebSocket-Protocol: bearer.%s, a b\r\n", t);
  struct
  {
    const char *target;
    const char *headers;
    guint status;
  } cases[] = {
    { "/ws", WS_HEADERS, 401 },
    { "/ws?token=%T", WS_HEADERS, 101 },
    { "/ws?token=nonsense", WS_HEADERS, 401 },
    { "/ws", "%B" WS_HEADERS, 101 },
    { "/ws", "%C" WS_HEADERS, 101 },
    { "/ws", "%P" WS_HEADERS, 101 },
    { "/ws", "%S" WS_HEADERS, 400 },
    { "/ws?token=%T", "%O" WS_HEADERS, 101 },
    { "/ws?token=%T", "%E" WS_HEADERS, 403 },
    { "/ws?token=%T", UPGRADE "Sec-WebSocket-Key: short\r\n" V13, 400 },
    { "/ws?token=%T", UPGRADE KEY "Sec-WebSocket-Version: 12\r\n", 400 },
    { "/ws?token=%T", UPGRADE KEY, 400 },
    { "/ws?token=%T", "Connection: Upgrade\r\n" KEY V13, 400 },
    { "/ws?token=%T", "Upgrade: WebSocket\r\nConnection: keep-alive, upgrade\r\n" KEY V13, 101 },
    { "/ws?token=%T", WS_HEADERS "Sec-WebSocket-Extensions: permessage-deflate\r\n", 101 },
    { "/ws?token=%T",
      WS_HEADERS "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n", 101 },
    { "/ws/my-own-id?token=%T", WS_HEADERS, 101 },
    { "/ws/bad!id?token=%T", WS_HEADERS, 400 },
    { "/events?channel=a&token=%T", "", 200 },
    { "/events?channel=a&channel=a&token=%T", "%O", 200 },
    { "/events?channel=a&lastEventId=x-1&token=%T", "Last-Event-ID: y-2\r\n", 200 },
    { "/events?token=%T", "", 400 },
    { "/events?channel=a&channel=b&channel=c&token=%T", "", 400 },
    { "/events?channel=a%20b&token=%T", "%O", 400 },
    { "/events?channel=a&token=%T", "%E", 403 },
    { "/events?channel=a", "", 401 },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr (GString) request = g_string_new (NULL);
      g_autofree char *native = NULL;
      g_autofree char *soup = NULL;
      guint before, native_status = 0, soup_status = 0;

      g_string_printf (request, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s\r\n", cases[i].target,
                       cases[i].headers);
      g_string_replace (request, "%T", t, 0);
      g_string_replace (request, "%B", bearer, 0);
      g_string_replace (request, "%C", cookie, 0);
      g_string_replace (request, "%P", protocols, 0);
      g_string_replace (request, "%S", spaced, 0);
      g_string_replace (request, "%O", ok_origin, 0);
      g_string_replace (request, "%E", bad_origin, 0);
      g_test_message ("case %u: %s", i, cases[i].target);

      before = herald_http_upgrade_get_n_decided_for_test ();
      native = answer (server, request->str, &native_status);
      g_assert_cmpuint (herald_http_upgrade_get_n_decided_for_test (), ==, before + 1);
      herald_http_upgrade_set_enabled_for_test (FALSE);
      soup = answer (server, request->str, &soup_status);
      herald_http_upgrade_set_enabled_for_test (TRUE);
      g_assert_cmpuint (herald_http_upgrade_get_n_decided_for_test (), ==, before + 1);

      g_assert_cmpuint (native_status, ==, cases[i].status);
      g_assert_cmpuint (soup_status, ==, cases[i].status);
      g_assert_cmpstr (native, ==, soup);
    }
  herald_test_server_stop (server);
}

/* A connection through the worker's reader works like any other: frames
 * sent right behind the head, a publish delivered; the same for SSE. */
static void
test_native_streams (void)
{
  HeraldTestServer *server
      = herald_test_server_start ("[auth]\nanonymous=true\nanonymous-publish=*\n[api]\nkey=k\n", 1);
  const char *ws_req = "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\n" WS_HEADERS "\r\n";
  const char *sse_req = "GET /events?channel=news HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
  const char *sub = "{\"type\":\"subscribe\",\"channel\":\"news\",\"id\":1}";
  guint8 frame[128] = { 0x81, 0x80 | (guint8)strlen (sub), 0, 0, 0, 0 }; /* zero mask */
  guint before = herald_http_upgrade_get_n_decided_for_test ();
  g_autoptr (GByteArray) both = g_byte_array_new ();
  HeraldTestClient *ws = herald_test_client_connect (server);
  HeraldTestClient *sse = herald_test_client_connect (server);
  g_autoptr (JsonObject) hello = NULL;
  g_autoptr (JsonObject) reply = NULL;
  g_autoptr (JsonObject) msg = NULL;
  g_autofree char *event = NULL;
  g_autofree char *answer_body = NULL;
  guint status;

  /* The subscribe frame in the same segment as the head. */
  memcpy (frame + 6, sub, strlen (sub));
  g_byte_array_append (both, (const guint8 *)ws_req, strlen (ws_req));
  g_byte_array_append (both, frame, 6 + strlen (sub));
  herald_test_client_send_raw (ws, both->data, both->len);
  g_assert_cmpuint (herald_test_client_read_head (ws, NULL), ==, 101);
  hello = herald_test_ws_read_json (ws);
  g_assert_cmpstr (herald_test_json_get_string (hello, "type"), ==, "connected");
  reply = herald_test_ws_read_json (ws);
  g_assert_cmpstr (herald_test_json_get_string (reply, "type"), ==, "subscribed");

  herald_test_client_send_raw (sse, sse_req, strlen (sse_req));
  g_assert_cmpuint (herald_test_client_read_head (sse, NULL), ==, 200);
  g_free (herald_test_sse_read_event (sse)); /* retry: */
  event = herald_test_sse_read_event (sse);
  g_assert_true (has (event, "connected"));
  g_clear_pointer (&event, g_free);
  g_assert_cmpuint (herald_http_upgrade_get_n_decided_for_test (), ==, before + 2);

  answer_body = herald_test_http (server, "POST", "/api/publish", "Authorization: Bearer k\r\n",
                                  "{\"channel\":\"news\",\"data\":{\"n\":7}}", &status);
  g_assert_cmpuint (status, ==, 200);
  msg = herald_test_ws_read_json (ws);
  g_assert_cmpstr (herald_test_json_get_string (msg, "type"), ==, "message");
  event = herald_test_sse_read_event (sse);
  g_assert_true (has (event, "\"n\":7"));

  herald_test_client_free (ws);
  herald_test_client_free (sse);
  herald_test_server_stop (server);
}

/* Over max-connections: 503 from the worker's reader, and the refused
 * handshake holds no reservation (the slot is free again once the first
 * connection is gone). */
static void
test_native_connection_limit (void)
{
  HeraldTestServer *server
      = herald_test_server_start ("[auth]\nanonymous=true\n[limits]\nmax-connections=1\n", 1);
  const char *req = "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\n" WS_HEADERS "\r\n";
  HeraldTestClient *first = herald_test_ws_open (server, "/ws", NULL);
  guint before = herald_http_upgrade_get_n_decided_for_test ();
  g_autofree char *text = NULL;
  guint status = 0;

  text = answer (server, req, &status);
  g_assert_cmpuint (status, ==, 503);
  g_assert_true (has (text, "Connection: close\r\n"));
  g_assert_cmpuint (herald_http_upgrade_get_n_decided_for_test (), ==, before + 1);
  herald_test_client_free (first);

  /* The first one's slot comes back when the server notices it left. */
  for (guint tries = 0; tries < 200; tries++)
    {
      g_clear_pointer (&text, g_free);
      text = answer (server, req, &status);
      if (status == 101)
        break;
      g_usleep (10000);
    }
  g_assert_cmpuint (status, ==, 101);
  herald_test_server_stop (server);
}

/* Two connections asking for the same id: the second gets 409. */
static void
test_native_id_in_use (void)
{
  HeraldTestServer *server = herald_test_server_start ("[auth]\nanonymous=true\n", 1);
  const char *req = "GET /ws/taken HTTP/1.1\r\nHost: 127.0.0.1\r\n" WS_HEADERS "\r\n";
  HeraldTestClient *first = herald_test_ws_open (server, "/ws/taken", NULL);
  g_autofree char *text = NULL;
  guint status = 0;

  text = answer (server, req, &status);
  g_assert_cmpuint (status, ==, 409);
  herald_test_client_free (first);
  herald_test_server_stop (server);
}

static void
shutdown_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  herald_hub_shutdown_finish (HERALD_HUB (source), result, NULL);
  *(gboolean *)user_data = TRUE;
}

/* Draining: a new handshake gets 503 and Retry-After from the worker's reader. */
static void
test_native_draining (void)
{
  HeraldTestServer *server
      = herald_test_server_start ("[auth]\nanonymous=true\n[server]\ndrain-seconds=2\n", 1);
  const char *ws_req = "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\n" WS_HEADERS "\r\n";
  const char *sse_req = "GET /events?channel=a HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
  HeraldTestClient *open = herald_test_ws_open (server, "/ws", NULL);
  guint before = herald_http_upgrade_get_n_decided_for_test ();
  g_autofree char *ws_text = NULL;
  g_autofree char *sse_text = NULL;
  gboolean done = FALSE;
  guint status = 0;

  herald_hub_shutdown_async (server->hub, 5000, shutdown_done, &done);
  ws_text = answer (server, ws_req, &status);
  g_assert_cmpuint (status, ==, 503);
  g_assert_true (has (ws_text, "Retry-After: 1\r\n"));
  g_assert_true (has (ws_text, "Server shutting down"));
  sse_text = answer (server, sse_req, &status);
  g_assert_cmpuint (status, ==, 503);
  g_assert_true (has (sse_text, "Retry-After: 1\r\n"));
  g_assert_cmpuint (herald_http_upgrade_get_n_decided_for_test (), ==, before + 2);
  HERALD_TEST_WAIT_UNTIL (done, 8000);
  herald_test_client_free (open);
  herald_test_server_stop (server);
}

/* Heads that are not the plain case still work, through libsoup. */
static void
test_unusual_heads_via_libsoup (void)
{
  HeraldTestServer *server = herald_test_server_start ("[auth]\nanonymous=true\n", 1);
  const char *heads[] = {
    /* a header that matters, twice */
    "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: a=1\r\nCookie: b=2\r\n" WS_HEADERS "\r\n",
    /* a body (empty) */
    "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n" WS_HEADERS "\r\n",
    /* percent-encoding in the path */
    "GET /ws/ab%63 HTTP/1.1\r\nHost: 127.0.0.1\r\n" WS_HEADERS "\r\n",
    /* a folded header line */
    "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Long: a\r\n b\r\n" WS_HEADERS "\r\n",
    /* HTTP/1.0 SSE */
    "GET /events?channel=a HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n",
    /* a malformed escape, characters outside RFC 3986 in the query */
    "GET /ws?x=%zz HTTP/1.1\r\nHost: 127.0.0.1\r\n" WS_HEADERS "\r\n",
    "GET /events?channel=a&x={\"y\"} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    /* an OPTIONS preflight */
    "OPTIONS /events HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: https://a.example\r\n\r\n",
  };
  guint want[] = { 101, 101, 101, 101, 200, 0, 0, 204 };

  for (guint i = 0; i < G_N_ELEMENTS (heads); i++)
    {
      guint before = herald_http_upgrade_get_n_decided_for_test ();
      g_autofree char *text = NULL;
      guint status = 0;

      g_test_message ("head %u", i);
      text = answer (server, heads[i], &status);
      g_test_message ("%u: %s", status, text);
      if (want[i] != 0) /* 0: whatever libsoup says */
        g_assert_cmpuint (status, ==, want[i]);
      g_assert_cmpuint (herald_http_upgrade_get_n_decided_for_test (), ==, before);
    }
  herald_test_assert_serving (server);
  herald_test_server_stop (server);
}

/* A frame over max-message-size right behind the head: the connection
 * closes with 1009 before its first write, and the 101 still goes first
 * (the handshake's answer is never dropped with the unsent frames). */
static void
test_close_before_first_write (void)
{
  HeraldTestServer *server
      = herald_test_server_start ("[auth]\nanonymous=true\n[limits]\nmax-message-size=1024\n", 1);
  const char *req = "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\n" WS_HEADERS "\r\n";
  guint8 header[8] = { 0x81, 0x80 | 126, 2000 >> 8, 2000 & 0xff, 0, 0, 0, 0 }; /* zero mask */
  g_autoptr (GByteArray) both = g_byte_array_new ();
  HeraldTestClient *client = herald_test_client_connect (server);
  guint before = herald_http_upgrade_get_n_decided_for_test ();
  guint8 payload[2000];

  memset (payload, 'a', sizeof payload);
  g_byte_array_append (both, (const guint8 *)req, strlen (req));
  g_byte_array_append (both, header, sizeof header);
  g_byte_array_append (both, payload, sizeof payload);
  herald_test_client_send_raw (client, both->data, both->len);
  g_assert_cmpuint (herald_test_client_read_head (client, NULL), ==, 101);
  g_assert_cmpuint (herald_test_ws_wait_close (client), ==, 1009);
  g_assert_cmpuint (herald_http_upgrade_get_n_decided_for_test (), ==, before + 1);
  herald_test_client_free (client);
  herald_test_server_stop (server);
}

/* The connected greeting names the token's user exactly, whether it is
 * written directly (plain) or by json-glib (escapes needed). */
static void
test_connected_greeting (void)
{
  HeraldTestServer *server = herald_test_server_start ("[auth]\njwt-secret=" SECRET "\n", 1);
  const char *users[] = { "alice", "al\\\"ice/\\u00e9\\n" };
  const char *want[] = { "alice", "al\"ice/\xc3\xa9\n" };

  for (guint i = 0; i < G_N_ELEMENTS (users); i++)
    {
      g_autofree char *t = token_for (users[i]);
      g_autofree char *path = g_strdup_printf ("/ws?token=%s", t);
      HeraldTestClient *client = herald_test_client_connect (server);
      g_autofree char *text = NULL;
      g_autofree char *expected = NULL;
      g_autoptr (JsonParser) parser = json_parser_new ();
      JsonObject *hello;
      gsize len = 0;

      g_assert_cmpuint (herald_test_ws_handshake (client, path, NULL, NULL), ==, 101);
      g_assert_cmpint (herald_test_ws_read_frame (client, &text, &len), ==, 0x1);
      g_assert_true (json_parser_load_from_data (parser, text, len, NULL));
      hello = json_node_get_object (json_parser_get_root (parser));
      g_assert_cmpstr (herald_test_json_get_string (hello, "user_id"), ==, want[i]);
      if (i == 0)
        {
          expected
              = g_strdup_printf ("{\"type\":\"connected\",\"connection_id\":\"%s\",\"user_id\":"
                                 "\"alice\",\"heartbeat_interval\":30}",
                                 herald_test_json_get_string (hello, "connection_id"));
          g_assert_cmpstr (text, ==, expected);
        }
      herald_test_client_free (client);
    }
  herald_test_server_stop (server);
}

/* Generated heads, usual and not: whatever the worker's reader takes it
 * answers exactly as libsoup's path does. */
static void
test_generated_heads (void)
{
  static const char *lines[] = {
    "GET /ws HTTP/1.1",
    "GET /ws?token=%T HTTP/1.1",
    "GET /ws?token=bad HTTP/1.1",
    "GET /ws/own_id-1 HTTP/1.1",
    "GET /ws/a!b HTTP/1.1",
    "GET /ws/ HTTP/1.1",
    "GET /ws?x=%zz HTTP/1.1",
    "GET /ws?token=%T&x=%41 HTTP/1.1",
    "GET /wsx HTTP/1.1",
    "GET /ws HTTP/1.0",
    "GET /events?channel=a HTTP/1.1",
    "GET /events?channel=a&channel=b&channel=c HTTP/1.1",
    "GET /events?channel=a%2Fb&token=%T HTTP/1.1",
    "GET /events?channel=a+b HTTP/1.1",
    "GET /events?channel=a&lastEventId=e-1 HTTP/1.1",
    "GET /events HTTP/1.1",
    "GET /events/x HTTP/1.1",
  };
  static const char *headers[] = {
    "Upgrade: websocket",
    "Upgrade: WebSocket",
    "Upgrade: websocket2",
    "upgrade:websocket",
    "Connection: Upgrade",
    "Connection: keep-alive, Upgrade",
    "Connection: close",
    "connection:upgrade",
    KEY,
    "Sec-WebSocket-Key: short",
    "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAA!==",
    "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==",
    V13,
    "Sec-WebSocket-Version: 12",
    "Sec-WebSocket-Version:  13 ",
    "Sec-WebSocket-Protocol: bearer.%T",
    "Sec-WebSocket-Protocol: chat, json",
    "Sec-WebSocket-Protocol: a b",
    "Sec-WebSocket-Protocol: bearer.%T, chat",
    "Sec-WebSocket-Protocol:",
    "Sec-WebSocket-Extensions: permessage-deflate",
    "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits",
    "Sec-WebSocket-Extensions: x-foo",
    "Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=10",
    "Origin: https://app.example",
    "Origin: https://evil.example",
    "Origin: null",
    "Authorization: Bearer %T",
    "Authorization: Bearer bad",
    "Authorization: Basic x",
    "Cookie: herald_token=%T",
    "Cookie: a=b",
    "Last-Event-ID: e-2",
    "X-Other: \xc3\xa9",
    "X-Tab:\tv\t",
    " folded",
    "Content-Length: 0",
    "Host: other",
  };
  HeraldTestServer *server
      = herald_test_server_start ("[auth]\njwt-secret=" SECRET "\nanonymous=true\n"
                                  "[server]\nallowed-origins=https://app.example\n"
                                  "[limits]\nmax-subscriptions-per-connection=2\n",
                                  1);
  g_autofree char *t = token_for ("bob");
  g_autoptr (GRand) r = g_rand_new_with_seed (2020);
  guint native_decided = 0, accepted = 0;

  for (guint i = 0; i < 600; i++)
    {
      g_autoptr (GString) request = g_string_new (NULL);
      g_autofree char *native = NULL;
      g_autofree char *soup = NULL;
      guint before, native_status = 0, soup_status = 0;
      int n = g_rand_int_range (r, 0, 7);

      g_string_append (request, lines[g_rand_int_range (r, 0, G_N_ELEMENTS (lines))]);
      g_string_append (request, "\r\nHost: 127.0.0.1\r\n");
      /* usually the headers a WebSocket client sends, sometimes not */
      if (g_rand_int_range (r, 0, 4) > 0)
        g_string_append (request, WS_HEADERS);
      for (int j = 0; j < n; j++)
        {
          g_string_append (request, headers[g_rand_int_range (r, 0, G_N_ELEMENTS (headers))]);
          g_string_append (request, "\r\n");
        }
      g_string_append (request, "\r\n");
      g_string_replace (request, "%T", t, 0);

      before = herald_http_upgrade_get_n_decided_for_test ();
      native = answer (server, request->str, &native_status);
      native_decided += herald_http_upgrade_get_n_decided_for_test () - before;
      herald_http_upgrade_set_enabled_for_test (FALSE);
      soup = answer (server, request->str, &soup_status);
      herald_http_upgrade_set_enabled_for_test (TRUE);
      if (native_status != soup_status || g_strcmp0 (native, soup) != 0)
        g_error ("answered differently:\n%s\nworker:\n%s\nlibsoup:\n%s", request->str, native,
                 soup);
      accepted += native_status < 300;
    }
  g_test_message ("%u of 600 heads decided without libsoup, %u accepted", native_decided, accepted);
  g_assert_cmpuint (native_decided, >, 100);
  herald_test_server_stop (server);
}

static guint16
closed_port (void)
{
  g_autoptr (GSocket) socket
      = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, NULL);
  g_autoptr (GInetAddress) lo = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr (GSocketAddress) any = g_inet_socket_address_new (lo, 0);
  g_autoptr (GSocketAddress) bound = NULL;

  g_assert_true (g_socket_bind (socket, any, FALSE, NULL));
  bound = g_socket_get_local_address (socket, NULL);
  return g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound));
}

/* Where the backend would be asked (a connect hook and no token, an SSE
 * channel of a subscribe=proxy namespace) libsoup's path answers; with a
 * token, and for the token's subs claim, the worker's reader answers as it. */
static void
test_backend_heads (void)
{
  guint16 port = closed_port ();
  g_autofree char *conf = g_strdup_printf (
      "[auth]\njwt-secret=" SECRET "\n[proxy]\nconnect-url=http://127.0.0.1:%u/connect\n"
      "subscribe-url=http://127.0.0.1:%u/subscribe\n[namespace.p]\nsubscribe=proxy\n",
      port, port);
  HeraldTestServer *server;
  g_autoptr (GBytes) secret = g_bytes_new_static (SECRET, strlen (SECRET));
  g_autofree char *t = token_for ("carol");
  g_autofree char *subs = herald_jwt_sign_hs256 (secret, "{\"sub\":\"dave\",\"subs\":[\"news\"]}");
  struct
  {
    const char *target;
    const char *token;
    gboolean native;
  } cases[] = {
    { "/ws", NULL, FALSE },
    { "/ws?token=%s", t, TRUE },
    { "/events?channel=p:x&token=%s", t, FALSE },
    { "/events?channel=a&token=%s", t, TRUE },
    { "/events?channel=a&token=%s", subs, TRUE },
    { "/events?token=%s", subs, TRUE },
  };

  /* The backend is unreachable on purpose: Herald warns about it (the last
   * test: warnings stay non-fatal from here on, as in test-proxy.c) */
  g_log_set_always_fatal (G_LOG_FATAL_MASK | G_LOG_LEVEL_CRITICAL);
  server = herald_test_server_start (conf, 1);
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *target = g_strdup_printf (cases[i].target, cases[i].token);
      g_autofree char *request
          = g_strdup_printf ("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s\r\n", target,
                             g_str_has_prefix (target, "/ws") ? WS_HEADERS : "");
      g_autofree char *native = NULL;
      g_autofree char *soup = NULL;
      guint before = herald_http_upgrade_get_n_decided_for_test ();
      guint native_status = 0, soup_status = 0;

      g_test_message ("case %u", i);
      native = answer (server, request, &native_status);
      g_assert_cmpuint (herald_http_upgrade_get_n_decided_for_test (), ==,
                        before + (cases[i].native ? 1 : 0));
      herald_http_upgrade_set_enabled_for_test (FALSE);
      soup = answer (server, request, &soup_status);
      herald_http_upgrade_set_enabled_for_test (TRUE);
      g_assert_cmpuint (native_status, ==, soup_status);
      g_assert_cmpstr (native, ==, soup);
    }
  herald_test_server_stop (server);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/upgrade/same-answers", test_same_answers);
  g_test_add_func ("/upgrade/streams", test_native_streams);
  g_test_add_func ("/upgrade/connection-limit", test_native_connection_limit);
  g_test_add_func ("/upgrade/id-in-use", test_native_id_in_use);
  g_test_add_func ("/upgrade/draining", test_native_draining);
  g_test_add_func ("/upgrade/unusual-heads", test_unusual_heads_via_libsoup);
  g_test_add_func ("/upgrade/close-before-first-write", test_close_before_first_write);
  g_test_add_func ("/upgrade/connected-greeting", test_connected_greeting);
  g_test_add_func ("/upgrade/generated-heads", test_generated_heads);
  g_test_add_func ("/upgrade/backend-heads", test_backend_heads);
  return g_test_run ();
}
