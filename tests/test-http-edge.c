/* test-http-edge.c: HTTP edge cases answered right (issue 21): refusals from
 * the head, long heads, bad Content-Length, WebSocket version and
 * subprotocols, half-closed keep-alive clients. A real Herald, raw sockets.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>

#include "herald-jwt.h"
#include "herald-test-server.h"

#define API "[api]\nkey=k\n"
#define AUTH "Authorization: Bearer k\r\n"
#define JWT "[auth]\njwt-secret=s3cret\n"
#define ORIGIN "Origin: http://example.org\r\n" /* sends an API call to libsoup */

static void
send_str (HeraldTestClient *client, const char *text)
{
  herald_test_client_send_raw (client, text, strlen (text));
}

static char *
post (const char *path, const char *headers, const char *body)
{
  return g_strdup_printf ("POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%sContent-Type: "
                          "application/json\r\nContent-Length: %zu\r\n\r\n%s",
                          path, headers ? headers : "", strlen (body), body);
}

/* TRUE only for a real EOF (not a timeout or a reset) with nothing more sent. */
static gboolean
eof_next (HeraldTestClient *client)
{
  char buf[256];
  g_autoptr (GError) error = NULL;
  gssize n = g_socket_receive (client->socket, buf, sizeof buf, NULL, &error);

  if (error)
    g_test_message ("expected EOF: %s", error->message);
  return n == 0 && client->buffer->len == 0;
}

static gboolean
has (const char *text, const char *part)
{
  return text != NULL && g_strstr_len (text, -1, part) != NULL;
}

/* Sends @request_head only (its declared body never comes) and expects
 * @status at once, Connection: close, then EOF. */
static void
expect_refused_now (HeraldTestClient *client, const char *request_head, guint status)
{
  g_autofree char *head = NULL;
  g_autofree char *body = NULL;
  guint got;

  send_str (client, request_head);
  body = herald_test_client_read_response (client, &got, &head);
  g_assert_cmpuint (got, ==, status);
  g_assert_true (has (head, "Connection: close\r\n"));
  g_assert_true (eof_next (client));
}

/* Item 6: refusals decided from the head are answered before the body. */
static void
test_refused_from_head (void)
{
  HeraldTestServer *server = herald_test_server_start (API JWT, 1);
  const char *api_head = "POST /api/publish HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                         "Content-Type: application/json\r\nContent-Length: 60000\r\n\r\n";
  const char *soup_head
      = "POST /api/publish HTTP/1.1\r\nHost: 127.0.0.1\r\n" ORIGIN "Content-Length: 60000\r\n\r\n";
  const char *big_head = "POST /api/publish HTTP/1.1\r\nHost: 127.0.0.1\r\n" ORIGIN AUTH
                         "Content-Length: 99999999\r\n\r\n";
  const char *ws_head = "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                        "Sec-WebSocket-Version: 13\r\nContent-Length: 60000\r\n\r\n";
  const char *sse_head = "GET /events?channel=a HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                         "Content-Length: 60000\r\n\r\n";
  const char *page_head = "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 60000\r\n\r\n";
  g_autofree char *good = post ("/api/broadcast", AUTH, "{\"data\":1}");
  HeraldTestClient *client;
  guint status;

  /* The fast path, first request (peeked head). */
  client = herald_test_client_connect (server);
  expect_refused_now (client, api_head, 401);
  herald_test_client_free (client);

  /* The fast path in direct mode (after an answered request). */
  client = herald_test_client_connect (server);
  send_str (client, good);
  g_free (herald_test_client_read_response (client, &status, NULL));
  g_assert_cmpuint (status, ==, 200);
  expect_refused_now (client, api_head, 401);
  herald_test_client_free (client);

  /* Through libsoup: the API (401, 413), WebSocket, SSE, a page. */
  for (guint i = 0; i < 5; i++)
    {
      const char *heads[] = { soup_head, big_head, ws_head, sse_head, page_head };
      guint want[] = { 401, 413, 401, 401, 405 };

      client = herald_test_client_connect (server);
      expect_refused_now (client, heads[i], want[i]);
      herald_test_client_free (client);
    }
  herald_test_server_stop (server);
}

/* Item 6 over TLS: libsoup's connection, answered before the body too. */
static void
test_refused_from_head_tls (void)
{
  g_autofree char *cert = g_test_build_filename (G_TEST_DIST, "keys", "server-cert.pem", NULL);
  g_autofree char *key = g_test_build_filename (G_TEST_DIST, "keys", "server-key.pem", NULL);
  g_autofree char *conf
      = g_strdup_printf (API JWT "[server]\ntls-certificate=%s\ntls-key=%s\n", cert, key);
  HeraldTestServer *server = herald_test_server_start_listen (conf, 1, "https://127.0.0.1:0");
  HeraldTestClient *client = herald_test_client_connect_tls (server);
  g_autofree char *head = NULL;
  g_autofree char *body = NULL;
  guint status;

  send_str (client,
            "POST /api/publish HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 60000\r\n\r\n");
  body = herald_test_client_read_response (client, &status, &head);
  g_assert_cmpuint (status, ==, 401);
  g_assert_true (has (head, "Connection: close\r\n"));
  g_assert_cmpstr (body, ==, "{\"error\":\"Missing or invalid API key\"}");
  herald_test_client_free (client);
  herald_test_server_stop (server);
}

/* Item 6: many unauthenticated clients each sending a body cost no memory. */
static void
test_refused_bodies_memory (void)
{
  HeraldTestServer *server = herald_test_server_start (API, 1);
  g_autofree char *pad = g_strnfill (60000, 'x');
  g_autofree char *req = post ("/api/publish", NULL, pad);
  g_autofree char *soup_req = post ("/api/publish", ORIGIN, pad);
  GPtrArray *clients = g_ptr_array_new_with_free_func ((GDestroyNotify)herald_test_client_free);
  gsize before;

  /* Warm-up: the allocator's first use is not growth. */
  for (guint i = 0; i < 20; i++)
    {
      HeraldTestClient *c = herald_test_client_connect (server);
      g_assert_cmpuint (herald_test_ws_handshake (c, "/ws", NULL, NULL), !=, 0);
      herald_test_client_free (c);
    }
  before = herald_test_rss_kb ();
  for (guint i = 0; i < 400; i++)
    {
      HeraldTestClient *c = herald_test_client_connect (server);
      const char *r = i % 2 ? req : soup_req;

      /* The response comes before the client is done sending: do not wait
       * for the body to be taken (the server discards it). */
      g_socket_set_blocking (c->socket, FALSE);
      g_socket_send (c->socket, r, strlen (r), NULL, NULL);
      g_ptr_array_add (clients, c);
    }
  for (guint i = 0; i < clients->len; i++)
    {
      HeraldTestClient *c = g_ptr_array_index (clients, i);
      guint status;

      g_socket_set_blocking (c->socket, TRUE);
      g_free (herald_test_client_read_response (c, &status, NULL));
      g_assert_cmpuint (status, ==, 401);
    }
  herald_test_assert_rss_growth (before, 8 * 1024);
  g_ptr_array_unref (clients);
  herald_test_assert_serving (server);
  herald_test_server_stop (server);
}

static char *
cookie (gsize size)
{
  g_autofree char *pad = g_strnfill (size, 'c');

  return g_strdup_printf ("Cookie: big=%s\r\n", pad);
}

/* Item 7: heads up to 64 KiB are served everywhere; longer ones get 431. */
static void
test_long_heads (void)
{
  HeraldTestServer *server = herald_test_server_start (API "[auth]\nanonymous=true\n", 1);
  gsize sizes[] = { 17 * 1024, 60 * 1024 };

  for (guint s = 0; s < G_N_ELEMENTS (sizes); s++)
    {
      g_autofree char *c = cookie (sizes[s]);
      g_autofree char *headers = g_strconcat (c, AUTH, NULL);
      g_autofree char *soup_headers = g_strconcat (c, AUTH, ORIGIN, NULL);
      g_autofree char *api = post ("/api/broadcast", headers, "{\"data\":1}");
      g_autofree char *api_soup = post ("/api/broadcast", soup_headers, "{\"data\":1}");
      g_autofree char *sse
          = g_strdup_printf ("GET /events?channel=a HTTP/1.1\r\nHost: 127.0.0.1\r\n%s\r\n", c);
      HeraldTestClient *client;
      g_autofree char *body = NULL;
      g_autoptr (JsonObject) hello = NULL;
      guint status;

      g_test_message ("head with a %zu-byte cookie", sizes[s]);
      /* API, first request (fast path), then again in direct mode. */
      client = herald_test_client_connect (server);
      for (guint i = 0; i < 2; i++)
        {
          g_clear_pointer (&body, g_free);
          send_str (client, api);
          body = herald_test_client_read_response (client, &status, NULL);
          g_assert_cmpuint (status, ==, 200);
          g_assert_cmpstr (body, ==, "{\"delivered\":0}");
        }
      /* Direct mode, then a WebSocket upgrade handed to libsoup. */
      g_assert_cmpuint (herald_test_ws_handshake (client, "/ws", c, NULL), ==, 101);
      hello = herald_test_ws_read_json (client);
      g_assert_nonnull (hello);
      herald_test_client_free (client);

      /* API through libsoup. */
      client = herald_test_client_connect (server);
      g_clear_pointer (&body, g_free);
      send_str (client, api_soup);
      body = herald_test_client_read_response (client, &status, NULL);
      g_assert_cmpuint (status, ==, 200);
      herald_test_client_free (client);

      /* WebSocket upgrade as the first request. */
      client = herald_test_client_connect (server);
      g_assert_cmpuint (herald_test_ws_handshake (client, "/ws", c, NULL), ==, 101);
      g_clear_pointer (&hello, json_object_unref);
      hello = herald_test_ws_read_json (client);
      g_assert_nonnull (hello);
      herald_test_client_free (client);

      /* SSE. */
      client = herald_test_client_connect (server);
      send_str (client, sse);
      g_assert_cmpuint (herald_test_client_read_head (client, NULL), ==, 200);
      herald_test_client_free (client);
    }

  /* Over 64 KiB: 431, then close; first request and direct mode. */
  {
    g_autofree char *c = cookie (64 * 1024);
    g_autofree char *headers = g_strconcat (c, AUTH, NULL);
    g_autofree char *api = post ("/api/broadcast", headers, "{\"data\":1}");
    g_autofree char *good = post ("/api/broadcast", AUTH, "{\"data\":1}");
    HeraldTestClient *client = herald_test_client_connect (server);
    guint status;

    send_str (client, api);
    g_free (herald_test_client_read_response (client, &status, NULL));
    g_assert_cmpuint (status, ==, 431);
    g_assert_true (eof_next (client));
    herald_test_client_free (client);

    client = herald_test_client_connect (server);
    send_str (client, good);
    g_free (herald_test_client_read_response (client, &status, NULL));
    g_assert_cmpuint (status, ==, 200);
    send_str (client, api);
    g_free (herald_test_client_read_response (client, &status, NULL));
    g_assert_cmpuint (status, ==, 431);
    g_assert_true (eof_next (client));
    herald_test_client_free (client);
  }
  herald_test_server_stop (server);
}

/* Item 9: a Content-Length that cannot be trusted: 400, then close. */
static void
test_bad_content_length (void)
{
  HeraldTestServer *server = herald_test_server_start (API, 1);
  const char *lengths[] = {
    "Content-Length: -1\r\n",
    "Content-Length: 100000000000000000000\r\n",
    "Content-Length: 9223372036854775808\r\n",
    "Content-Length: 2\r\nContent-Length: 3\r\n",
    "Content-Length: 2, 3\r\n",
    "Content-Length: +2\r\n",
  };
  const char *extra[] = { "", ORIGIN };
  g_autofree char *good = post ("/api/broadcast", AUTH, "{\"data\":1}");

  for (guint i = 0; i < G_N_ELEMENTS (lengths); i++)
    for (guint e = 0; e < G_N_ELEMENTS (extra); e++)
      for (guint direct = 0; direct < 2; direct++)
        {
          HeraldTestClient *client = herald_test_client_connect (server);
          g_autofree char *req = g_strdup_printf (
              "POST /api/publish HTTP/1.1\r\nHost: 127.0.0.1\r\n" AUTH "%s%s\r\n{}", extra[e],
              lengths[i]);
          g_autofree char *head = NULL;
          g_autofree char *body = NULL;
          guint status;

          g_test_message ("%s%s%s", extra[e], lengths[i], direct ? " (direct mode)" : "");
          if (direct)
            {
              send_str (client, good);
              g_free (herald_test_client_read_response (client, &status, NULL));
              g_assert_cmpuint (status, ==, 200);
            }
          send_str (client, req);
          body = herald_test_client_read_response (client, &status, &head);
          g_assert_cmpuint (status, ==, 400);
          /* libsoup's own parser refuses some with an empty body. */
          if (*body)
            g_assert_cmpstr (body, ==, "{\"error\":\"Invalid Content-Length\"}");
          g_assert_true (eof_next (client));
          herald_test_client_free (client);
        }

  /* The same value twice is one value. */
  {
    HeraldTestClient *client = herald_test_client_connect (server);
    guint status;
    g_autofree char *body = NULL;

    send_str (client, "POST /api/broadcast HTTP/1.1\r\nHost: 127.0.0.1\r\n" AUTH
                      "Content-Length: 10\r\nContent-Length: 10\r\n\r\n{\"data\":1}");
    body = herald_test_client_read_response (client, &status, NULL);
    g_assert_cmpuint (status, ==, 200);
    g_assert_cmpstr (body, ==, "{\"delivered\":0}");
    herald_test_client_free (client);
  }
  herald_test_server_stop (server);
}

/* Item 10: RFC 6455 4.4, a version this server does not speak. */
static void
test_ws_version (void)
{
  HeraldTestServer *server = herald_test_server_start ("[auth]\nanonymous=true\n", 1);
  const char *versions[] = { "Sec-WebSocket-Version: 8\r\n", "" };

  for (guint i = 0; i < G_N_ELEMENTS (versions); i++)
    {
      HeraldTestClient *client = herald_test_client_connect (server);
      g_autofree char *req = g_strdup_printf (
          "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
          "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n%s\r\n",
          versions[i]);
      g_autofree char *head = NULL;
      guint status;

      send_str (client, req);
      status = herald_test_client_read_head (client, &head);
      g_assert_true (status == 400 || status == 426);
      g_assert_true (has (head, "Sec-WebSocket-Version: 13\r\n"));
      herald_test_client_free (client);
    }
  herald_test_server_stop (server);
}

/* Item 11: a client that offers only bearer.<token> as subprotocol. */
static void
test_bearer_only_subprotocol (void)
{
  HeraldTestServer *server = herald_test_server_start (JWT, 1);
  g_autoptr (GBytes) secret = g_bytes_new_static ("s3cret", 6);
  g_autofree char *token = herald_jwt_sign_hs256 (secret, "{\"sub\":\"alice\"}");
  g_autofree char *only = g_strdup_printf ("Sec-WebSocket-Protocol: bearer.%s\r\n", token);
  g_autofree char *with_chat
      = g_strdup_printf ("Sec-WebSocket-Protocol: bearer.%s, chat\r\n", token);
  HeraldTestClient *client;
  g_autofree char *head = NULL;
  g_autoptr (JsonObject) hello = NULL;

  client = herald_test_client_connect (server);
  g_assert_cmpuint (herald_test_ws_handshake (client, "/ws", only, &head), ==, 101);
  g_assert_false (has (head, "Sec-WebSocket-Protocol"));
  g_assert_false (has (head, token));
  hello = herald_test_ws_read_json (client);
  g_assert_cmpstr (json_object_get_string_member (hello, "type"), ==, "connected");
  herald_test_client_free (client);

  client = herald_test_client_connect (server);
  g_clear_pointer (&head, g_free);
  g_assert_cmpuint (herald_test_ws_handshake (client, "/ws", with_chat, &head), ==, 101);
  g_assert_true (has (head, "Sec-WebSocket-Protocol: chat\r\n"));
  g_assert_false (has (head, token));
  herald_test_client_free (client);
  herald_test_server_stop (server);
}

/* Sends @text and the FIN in one segment (TCP_CORK holds the data until
 * the shutdown), as a client that writes its last request and shuts down. */
static void
send_with_fin (HeraldTestClient *client, const char *text)
{
  int fd = g_socket_get_fd (client->socket);
  int on = 1, off = 0;

  g_assert_cmpint (setsockopt (fd, IPPROTO_TCP, TCP_CORK, &on, sizeof on), ==, 0);
  send_str (client, text);
  g_assert_cmpint (shutdown (fd, SHUT_WR), ==, 0);
  setsockopt (fd, IPPROTO_TCP, TCP_CORK, &off, sizeof off);
}

/* Item 12: a keep-alive client that half-closes after its last request is
 * answered, then closed at once (not after the 60 s idle timeout). */
static void
test_half_close (void)
{
  HeraldTestServer *server = herald_test_server_start (API, 1);
  g_autofree char *good = post ("/api/broadcast", AUTH, "{\"data\":1}");

  for (guint direct = 0; direct < 2; direct++)
    {
      HeraldTestClient *client = herald_test_client_connect (server);
      guint status;

      if (direct)
        {
          send_str (client, good);
          g_free (herald_test_client_read_response (client, &status, NULL));
          g_assert_cmpuint (status, ==, 200);
        }
      send_with_fin (client, good);
      g_free (herald_test_client_read_response (client, &status, NULL));
      g_assert_cmpuint (status, ==, 200);
      g_assert_true (eof_next (client));
      herald_test_client_free (client);
    }
  herald_test_server_stop (server);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/http-edge/refused-from-head", test_refused_from_head);
  g_test_add_func ("/http-edge/refused-from-head-tls", test_refused_from_head_tls);
  g_test_add_func ("/http-edge/refused-bodies-memory", test_refused_bodies_memory);
  g_test_add_func ("/http-edge/long-heads", test_long_heads);
  g_test_add_func ("/http-edge/bad-content-length", test_bad_content_length);
  g_test_add_func ("/http-edge/ws-version", test_ws_version);
  g_test_add_func ("/http-edge/bearer-only-subprotocol", test_bearer_only_subprotocol);
  g_test_add_func ("/http-edge/half-close", test_half_close);
  return g_test_run ();
}
