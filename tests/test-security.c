/* test-security.c: authentication and abuse limits end to end — token
 * refresh and expiry, channel and publish permissions, RS256/ES256, TLS
 * (wss:// and https SSE), per-IP and rate limits, header size, slowloris.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>

#include "herald-jwt.h"
#include "herald-test-server.h"
#include "herald-test-tokens.h"

#define SECRET "s3cret"
#define HS256 "[auth]\njwt-secret=" SECRET "\nleeway=0\n"

/* ---- helpers ---- */

static gint64
now_s (void)
{
  return g_get_real_time () / G_USEC_PER_SEC;
}

static char *
token (const char *claims_json)
{
  g_autoptr (GBytes) secret = g_bytes_new_static (SECRET, strlen (SECRET));
  return herald_jwt_sign_hs256 (secret, claims_json);
}

static char *
key_path (const char *name)
{
  return g_test_build_filename (G_TEST_DIST, "keys", name, NULL);
}

/* A JWT signed with a private key from tests/keys (RS256 or ES256). */
static char *
token_signed (const char *key_file, gboolean ec, const char *claims_json)
{
  const char *header_json
      = ec ? "{\"alg\":\"ES256\",\"typ\":\"JWT\"}" : "{\"alg\":\"RS256\",\"typ\":\"JWT\"}";

  return herald_test_token_sign (key_file, ec, header_json, claims_json);
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
expect_error (HeraldTestClient *client, const char *code)
{
  g_autoptr (JsonObject) obj = expect_type (client, "error");

  g_assert_cmpstr (herald_test_json_get_string (obj, "code"), ==, code);
  g_assert_nonnull (herald_test_json_get_string (obj, "message"));
}

/* Connects a WebSocket with @tok in the query (NULL: none); returns the
 * client after the "connected" frame, asserting 101. */
static HeraldTestClient *
ws_open_token (HeraldTestServer *server, const char *tok)
{
  HeraldTestClient *c = herald_test_client_connect (server);
  g_autofree char *path = tok ? g_strdup_printf ("/ws?token=%s", tok) : g_strdup ("/ws");
  g_autoptr (JsonObject) hello = NULL;

  g_assert_cmpuint (herald_test_ws_handshake (c, path, NULL, NULL), ==, 101);
  hello = expect_type (c, "connected");
  return c;
}

static guint
ws_status (HeraldTestServer *server, const char *path)
{
  HeraldTestClient *c = herald_test_client_connect (server);
  guint status = herald_test_ws_handshake (c, path, NULL, NULL);

  herald_test_client_free (c);
  return status;
}

static guint
sse_status (HeraldTestServer *server, const char *path_and_query)
{
  HeraldTestClient *c = herald_test_client_connect (server);
  g_autofree char *req
      = g_strdup_printf ("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", path_and_query);
  guint status;

  herald_test_client_send_raw (c, req, strlen (req));
  status = herald_test_client_read_head (c, NULL);
  herald_test_client_free (c);
  return status;
}

static void send_fmt (HeraldTestClient *c, const char *format, ...) G_GNUC_PRINTF (2, 3);

static void
send_fmt (HeraldTestClient *c, const char *format, ...)
{
  g_autofree char *text = NULL;
  va_list args;

  va_start (args, format);
  text = g_strdup_vprintf (format, args);
  va_end (args);
  herald_test_ws_send_text (c, text);
}

static void
subscribe_ok (HeraldTestClient *c, const char *channel)
{
  g_autoptr (JsonObject) reply = NULL;

  send_fmt (c, "{\"type\":\"subscribe\",\"channel\":\"%s\"}", channel);
  reply = expect_type (c, "subscribed");
  g_assert_cmpstr (herald_test_json_get_string (reply, "channel"), ==, channel);
}

/* ---- token refresh ---- */

static void
test_refresh (void)
{
  HeraldTestServer *server = herald_test_server_start (HS256, 1);
  g_autofree char *t1 = NULL, *t2 = NULL, *t3 = NULL, *other = NULL, *claims = NULL;
  g_autoptr (JsonObject) reply = NULL;
  HeraldTestClient *c;
  gint64 exp2 = now_s () + 3600;
  gint64 start;

  claims = g_strdup_printf (
      "{\"sub\":\"alice\",\"exp\":%" G_GINT64_FORMAT ",\"channels\":[\"a\",\"b\"]}", now_s () + 2);
  t1 = token (claims);
  g_free (claims);
  claims = g_strdup_printf (
      "{\"sub\":\"alice\",\"exp\":%" G_GINT64_FORMAT ",\"channels\":[\"a\",\"c\"]}", exp2);
  t2 = token (claims);
  other = token ("{\"sub\":\"mallory\"}");
  t3 = token ("{\"sub\":\"alice\",\"exp\":1000}");

  c = ws_open_token (server, t1);
  subscribe_ok (c, "a");
  subscribe_ok (c, "b");
  send_fmt (c, "{\"type\":\"subscribe\",\"channel\":\"c\"}");
  expect_error (c, "forbidden");

  /* bad requests leave the connection open */
  herald_test_ws_send_text (c, "{\"type\":\"refresh\",\"id\":1}");
  expect_error (c, "bad_request");
  send_fmt (c, "{\"type\":\"refresh\",\"token\":\"not.a.token\"}");
  expect_error (c, "bad_request");
  send_fmt (c, "{\"type\":\"refresh\",\"token\":\"%s\"}", t3);
  expect_error (c, "bad_request"); /* expired */
  send_fmt (c, "{\"type\":\"refresh\",\"token\":\"%s\"}", other);
  expect_error (c, "forbidden"); /* another user */

  /* the good one: new expiry and permissions; "b" is no longer allowed */
  send_fmt (c, "{\"type\":\"refresh\",\"id\":\"r1\",\"token\":\"%s\"}", t2);
  reply = expect_type (c, "unsubscribed");
  g_assert_cmpstr (herald_test_json_get_string (reply, "channel"), ==, "b");
  g_clear_pointer (&reply, json_object_unref);
  reply = expect_type (c, "refreshed");
  g_assert_cmpstr (herald_test_json_get_string (reply, "id"), ==, "r1");
  g_assert_cmpint (json_object_get_int_member (reply, "exp"), ==, exp2);
  subscribe_ok (c, "c");

  /* the first token's expiry passes: still open */
  start = g_get_monotonic_time ();
  while (g_get_monotonic_time () - start < 3 * G_USEC_PER_SEC)
    g_usleep (100 * 1000);
  herald_test_ws_send_text (c, "{\"type\":\"ping\"}");
  g_clear_pointer (&reply, json_object_unref);
  reply = expect_type (c, "pong");
  herald_test_client_free (c);

  /* an anonymous connection cannot become someone */
  herald_test_server_stop (server);
  server = herald_test_server_start ("[auth]\njwt-secret=" SECRET "\nanonymous=true\n", 1);
  c = ws_open_token (server, NULL);
  send_fmt (c, "{\"type\":\"refresh\",\"token\":\"%s\"}", t2);
  expect_error (c, "forbidden");
  herald_test_client_free (c);
  herald_test_server_stop (server);
}

/* ---- expiry ---- */

static void
test_expiry (void)
{
  HeraldTestServer *server = herald_test_server_start (HS256, 2);
  g_autofree char *claims
      = g_strdup_printf ("{\"sub\":\"bob\",\"exp\":%" G_GINT64_FORMAT "}", now_s () + 2);
  g_autofree char *tok = token (claims);
  g_autofree char *expired = NULL, *future = NULL, *path = NULL, *req = NULL;
  HeraldTestClient *ws, *sse, *refreshed;
  gint64 start = g_get_monotonic_time ();
  char *ev;
  guint16 code;

  ws = ws_open_token (server, tok);
  /* a token without exp refreshed to one with exp: the new expiry applies
   * (the connection was due for its next visit only at the heartbeat) */
  {
    g_autofree char *forever = token ("{\"sub\":\"bob\"}");
    g_autoptr (JsonObject) reply = NULL;
    refreshed = ws_open_token (server, forever);
    send_fmt (refreshed, "{\"type\":\"refresh\",\"token\":\"%s\"}", tok);
    reply = expect_type (refreshed, "refreshed");
  }
  sse = herald_test_client_connect (server);
  req = g_strdup_printf ("GET /events?channel=x HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                         "Authorization: Bearer %s\r\n\r\n",
                         tok);
  herald_test_client_send_raw (sse, req, strlen (req));
  g_assert_cmpuint (herald_test_client_read_head (sse, NULL), ==, 200);

  code = herald_test_ws_wait_close (ws);
  g_assert_cmpuint (code, ==, 4003);
  g_assert_cmpstr (ws->close_reason, ==, "token expired");
  /* the SSE stream ends too */
  while ((ev = herald_test_sse_read_event (sse)))
    g_free (ev);
  g_assert_true (sse->closed);
  code = herald_test_ws_wait_close (refreshed);
  g_assert_cmpuint (code, ==, 4003);
  g_assert_cmpint (g_get_monotonic_time () - start, <, 4500 * 1000);
  herald_test_client_free (ws);
  herald_test_client_free (refreshed);
  herald_test_client_free (sse);

  /* expired and not-yet-valid tokens never get in */
  g_free (claims);
  claims = g_strdup_printf ("{\"sub\":\"bob\",\"exp\":%" G_GINT64_FORMAT "}", now_s () - 5);
  expired = token (claims);
  g_free (claims);
  claims = g_strdup_printf ("{\"sub\":\"bob\",\"nbf\":%" G_GINT64_FORMAT "}", now_s () + 60);
  future = token (claims);
  path = g_strdup_printf ("/ws?token=%s", expired);
  g_assert_cmpuint (ws_status (server, path), ==, 401);
  g_free (path);
  path = g_strdup_printf ("/ws?token=%s", future);
  g_assert_cmpuint (ws_status (server, path), ==, 401);
  g_free (path);
  path = g_strdup_printf ("/events?channel=x&token=%s", expired);
  g_assert_cmpuint (sse_status (server, path), ==, 401);
  herald_test_server_stop (server);
}

/* ---- permissions ---- */

static void
test_permissions (void)
{
  HeraldTestServer *server = herald_test_server_start (HS256, 1);
  g_autofree char *tok = token ("{\"sub\":\"carol\",\"channels\":[\"news\",\"room.*\"],"
                                "\"publish\":[\"room.*\"]}");
  g_autofree char *nopub = token ("{\"sub\":\"dave\"}");
  g_autofree char *path = NULL;
  g_autoptr (JsonObject) reply = NULL;
  HeraldTestClient *c;

  c = ws_open_token (server, tok);
  subscribe_ok (c, "news");
  subscribe_ok (c, "room.1");
  send_fmt (c, "{\"type\":\"subscribe\",\"channel\":\"newsroom\"}");
  expect_error (c, "forbidden");
  send_fmt (c, "{\"type\":\"subscribe\",\"channel\":\"room\"}");
  expect_error (c, "forbidden");
  send_fmt (c, "{\"type\":\"message\",\"channel\":\"room.1\",\"data\":{\"x\":1}}");
  /* the subscriber may see its own message before the answer */
  for (;;)
    {
      g_autoptr (JsonObject) obj = herald_test_ws_read_json (c);
      g_assert_nonnull (obj);
      if (g_str_equal (herald_test_json_get_string (obj, "type"), "published"))
        break;
      g_assert_cmpstr (herald_test_json_get_string (obj, "type"), ==, "message");
    }
  send_fmt (c, "{\"type\":\"message\",\"channel\":\"news\",\"data\":1}");
  expect_error (c, "forbidden");
  herald_test_client_free (c);

  /* no "channels" claim: any channel; no "publish" claim: no publishing */
  c = ws_open_token (server, nopub);
  subscribe_ok (c, "anything");
  send_fmt (c, "{\"type\":\"message\",\"channel\":\"anything\",\"data\":1}");
  expect_error (c, "forbidden");
  herald_test_client_free (c);

  /* SSE: 403 for a channel outside the claim */
  path = g_strdup_printf ("/events?channel=room.7&channel=secret&token=%s", tok);
  g_assert_cmpuint (sse_status (server, path), ==, 403);
  g_free (path);
  path = g_strdup_printf ("/events?channel=room.7&channel=news&token=%s", tok);
  g_assert_cmpuint (sse_status (server, path), ==, 200);
  herald_test_server_stop (server);

  /* anonymous access with its own lists */
  server = herald_test_server_start ("[auth]\njwt-secret=" SECRET "\nanonymous=true\n"
                                     "anonymous-channels=public.*;lobby\n"
                                     "anonymous-publish=lobby\n",
                                     1);
  c = ws_open_token (server, NULL);
  subscribe_ok (c, "public.a");
  subscribe_ok (c, "lobby");
  send_fmt (c, "{\"type\":\"subscribe\",\"channel\":\"private\"}");
  expect_error (c, "forbidden");
  send_fmt (c, "{\"type\":\"message\",\"channel\":\"public.a\",\"data\":1}");
  expect_error (c, "forbidden");
  send_fmt (c, "{\"type\":\"message\",\"channel\":\"lobby\",\"data\":2}");
  for (;;)
    {
      g_autoptr (JsonObject) obj = herald_test_ws_read_json (c);
      g_assert_nonnull (obj);
      if (g_str_equal (herald_test_json_get_string (obj, "type"), "published"))
        break;
    }
  herald_test_client_free (c);
  g_assert_cmpuint (sse_status (server, "/events?channel=private"), ==, 403);
  g_assert_cmpuint (sse_status (server, "/events?channel=public.b"), ==, 200);
  herald_test_server_stop (server);

  /* anonymous off while a key is set: 401 without a token */
  server = herald_test_server_start (HS256, 1);
  g_assert_cmpuint (ws_status (server, "/ws"), ==, 401);
  g_assert_cmpuint (sse_status (server, "/events?channel=a"), ==, 401);
  herald_test_server_stop (server);
}

/* [auth] issuer/audience: the running daemon refuses tokens without them
 * (HTTP 401 before the WebSocket upgrade or the SSE stream) */
static void
test_issuer_audience (void)
{
  HeraldTestServer *server = herald_test_server_start (HS256 "issuer=idp\naudience=herald\n", 1);
  const char *refused[] = {
    "{\"sub\":\"ann\"}",
    "{\"sub\":\"ann\",\"iss\":\"idp\"}",
    "{\"sub\":\"ann\",\"aud\":\"herald\"}",
    "{\"sub\":\"ann\",\"iss\":\"other\",\"aud\":\"herald\"}",
    "{\"sub\":\"ann\",\"iss\":\"idp\",\"aud\":[\"api\"]}",
  };
  g_autofree char *good = token ("{\"sub\":\"ann\",\"iss\":\"idp\",\"aud\":[\"api\",\"herald\"]}");
  g_autofree char *good_ws = g_strdup_printf ("/ws?token=%s", good);
  g_autofree char *good_sse = g_strdup_printf ("/events?channel=a&token=%s", good);

  for (guint i = 0; i < G_N_ELEMENTS (refused); i++)
    {
      g_autofree char *bad = token (refused[i]);
      g_autofree char *ws = g_strdup_printf ("/ws?token=%s", bad);
      g_autofree char *sse = g_strdup_printf ("/events?channel=a&token=%s", bad);

      g_assert_cmpuint (ws_status (server, ws), ==, 401);
      g_assert_cmpuint (sse_status (server, sse), ==, 401);
    }
  g_assert_cmpuint (ws_status (server, good_ws), ==, 101);
  g_assert_cmpuint (sse_status (server, good_sse), ==, 200);
  herald_test_server_stop (server);
}

static void
check_public_key (const char *alg, const char *public_key, const char *private_key, gboolean ec)
{
  g_autofree char *pub = key_path (public_key);
  g_autofree char *conf
      = g_strdup_printf ("[auth]\njwt-public-key-file=%s\njwt-algorithm=%s\n", pub, alg);
  HeraldTestServer *server = herald_test_server_start (conf, 1);
  g_autofree char *tok = token_signed (private_key, ec, "{\"sub\":\"erin\",\"channels\":[\"k\"]}");
  g_autofree char *hs = token ("{\"sub\":\"erin\"}");
  g_autofree char *path = g_strdup_printf ("/ws?token=%s", tok);
  g_autofree char *hs_path = g_strdup_printf ("/ws?token=%s", hs);
  HeraldTestClient *c = herald_test_client_connect (server);
  g_autoptr (JsonObject) hello = NULL;

  g_assert_cmpuint (herald_test_ws_handshake (c, path, NULL, NULL), ==, 101);
  hello = expect_type (c, "connected");
  g_assert_cmpstr (herald_test_json_get_string (hello, "user_id"), ==, "erin");
  subscribe_ok (c, "k");
  send_fmt (c, "{\"type\":\"subscribe\",\"channel\":\"j\"}");
  expect_error (c, "forbidden");
  herald_test_client_free (c);
  /* the algorithm is pinned: an HS256 token is refused */
  g_assert_cmpuint (ws_status (server, hs_path), ==, 401);
  herald_test_server_stop (server);
}

static void
test_public_keys (void)
{
  check_public_key ("RS256", "rsa-public.pem", "rsa-private.pem", FALSE);
  check_public_key ("ES256", "ec-public.pem", "ec-private.pem", TRUE);
}

/* SSE from browsers: the token in the herald_token cookie, the Origin checked. */
static void
test_sse_token_sources (void)
{
  HeraldTestServer *server
      = herald_test_server_start (HS256 "[server]\nallowed-origins=https://app.example\n", 1);
  g_autofree char *tok = token ("{\"sub\":\"fay\"}");
  g_autofree char *req = NULL;
  g_autofree char *head = NULL;
  HeraldTestClient *c;
  gboolean seen = FALSE;

  req = g_strdup_printf ("GET /events?channel=a HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                         "Origin: https://app.example\r\nCookie: x=1; herald_token=%s\r\n\r\n",
                         tok);
  c = herald_test_client_connect (server);
  herald_test_client_send_raw (c, req, strlen (req));
  g_assert_cmpuint (herald_test_client_read_head (c, &head), ==, 200);
  g_assert_nonnull (strstr (head, "Access-Control-Allow-Origin: https://app.example"));
  g_assert_nonnull (strstr (head, "Access-Control-Allow-Credentials: true"));
  /* The connected event names the token's user, as the WebSocket's does. */
  for (guint i = 0; i < 4 && !seen; i++)
    {
      g_autofree char *ev = herald_test_sse_read_event (c);

      g_assert_nonnull (ev);
      if (strstr (ev, "event: connected") == NULL)
        continue;
      g_assert_nonnull (strstr (ev, "\"user_id\":\"fay\""));
      seen = TRUE;
    }
  g_assert_true (seen);
  herald_test_client_free (c);

  g_free (req);
  req = g_strdup_printf ("GET /events?channel=a HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                         "Origin: https://evil.example\r\nCookie: herald_token=%s\r\n\r\n",
                         tok);
  c = herald_test_client_connect (server);
  herald_test_client_send_raw (c, req, strlen (req));
  g_assert_cmpuint (herald_test_client_read_head (c, NULL), ==, 403);
  herald_test_client_free (c);
  herald_test_server_stop (server);
}

/* ---- TLS ---- */

static char *
tls_config (const char *extra)
{
  g_autofree char *cert = key_path ("server-cert.pem");
  g_autofree char *key = key_path ("server-key.pem");

  return g_strdup_printf ("[server]\ntls-certificate=%s\ntls-key=%s\n%s", cert, key,
                          extra ? extra : "");
}

static void
test_tls (void)
{
  g_autofree char *conf = tls_config ("[auth]\nanonymous=true\nanonymous-publish=*\n"
                                      "[limits]\nhandshake-timeout=2\n");
  HeraldTestServer *server = herald_test_server_start_listen (conf, 2, "https://127.0.0.1:0");
  HeraldTestClient *sub, *pub, *sse;
  g_autoptr (JsonObject) hello = NULL;
  g_autofree char *big = g_strnfill (3000, 'x');
  const char *req = "GET /events?channel=t HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
  char *ev;
  int got = 0;

  g_assert_true (g_str_has_prefix (server->url, "https://"));

  sub = herald_test_client_connect_tls (server);
  g_assert_cmpuint (herald_test_ws_handshake (sub, "/ws", NULL, NULL), ==, 101);
  hello = expect_type (sub, "connected");
  subscribe_ok (sub, "t");

  sse = herald_test_client_connect_tls (server);
  herald_test_client_send_raw (sse, req, strlen (req));
  g_assert_cmpuint (herald_test_client_read_head (sse, NULL), ==, 200);
  g_free (herald_test_sse_read_event (sse)); /* retry */
  ev = herald_test_sse_read_event (sse);     /* connected */
  g_assert_nonnull (ev);
  g_free (ev);

  /* many requests in one burst: TLS records GnuTLS reads ahead must not wait
   * for the next socket event */
  pub = herald_test_client_connect_tls (server);
  g_assert_cmpuint (herald_test_ws_handshake (pub, "/ws", NULL, NULL), ==, 101);
  g_clear_pointer (&hello, json_object_unref);
  hello = expect_type (pub, "connected");
  for (int i = 0; i < 40; i++)
    send_fmt (pub, "{\"type\":\"message\",\"channel\":\"t\",\"data\":{\"i\":%d,\"pad\":\"%s\"}}", i,
              big);
  for (int i = 0; i < 40; i++)
    {
      g_autoptr (JsonObject) ans = expect_type (pub, "published");
    }
  for (int i = 0; i < 40; i++)
    {
      g_autoptr (JsonObject) msg = expect_type (sub, "message");
      JsonObject *data = json_object_get_object_member (msg, "data");
      g_assert_cmpint (json_object_get_int_member (data, "i"), ==, i);
    }
  while (got < 40 && (ev = herald_test_sse_read_event (sse)))
    {
      if (strstr (ev, "event: message"))
        got++;
      g_free (ev);
    }
  g_assert_cmpint (got, ==, 40);

  /* the connections outlive the handshake deadline */
  g_usleep (2500 * 1000);
  herald_test_ws_send_text (sub, "{\"type\":\"ping\"}");
  g_clear_pointer (&hello, json_object_unref);
  hello = expect_type (sub, "pong");

  herald_test_client_free (sub);
  herald_test_client_free (pub);
  herald_test_client_free (sse);
  herald_test_server_stop (server);
}

/* A TLS client that stops reading is closed 4001 like any slow consumer, and
 * closing its TLS stream never blocks the worker: another client on the same
 * worker is still served at once. */
static void
test_tls_slow_consumer (void)
{
  g_autofree char *conf = tls_config ("[auth]\nanonymous=true\nanonymous-publish=*\n"
                                      "[limits]\nsend-queue-max-bytes=65536\n");
  HeraldTestServer *server = herald_test_server_start_listen (conf, 1, "https://127.0.0.1:0");
  g_autoptr (GIOStream) slow = herald_test_tls_connect (server, TRUE);
  GOutputStream *out = g_io_stream_get_output_stream (slow);
  GInputStream *in = g_io_stream_get_input_stream (slow);
  const char *req = "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                    "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                    "Sec-WebSocket-Version: 13\r\n\r\n";
  const char *sub = "{\"type\":\"subscribe\",\"channel\":\"flood\"}";
  g_autofree char *pad = g_strnfill (30000, 'p');
  g_autoptr (GByteArray) frame = g_byte_array_new ();
  guint8 hdr[6] = { 0x81, 0x80, 0, 0, 0, 0 }; /* zero mask: payload as is */
  HeraldTestClient *pub;
  g_autoptr (JsonObject) obj = NULL;
  char head[1024];
  gsize got = 0;
  gint64 start;

  g_assert_true (g_output_stream_write_all (out, req, strlen (req), NULL, NULL, NULL));
  /* read just the 101 head; nothing after it is ever read */
  while (got < sizeof head - 1 && (got < 4 || memcmp (head + got - 4, "\r\n\r\n", 4) != 0))
    {
      gssize n = g_input_stream_read (in, head + got, 1, NULL, NULL);
      g_assert_cmpint (n, ==, 1);
      got++;
    }
  g_assert_true (g_str_has_prefix (head, "HTTP/1.1 101"));
  hdr[1] |= strlen (sub);
  g_byte_array_append (frame, hdr, sizeof hdr);
  g_byte_array_append (frame, (const guint8 *)sub, strlen (sub));
  g_assert_true (g_output_stream_write_all (out, frame->data, frame->len, NULL, NULL, NULL));

  pub = herald_test_client_connect_tls (server);
  g_assert_cmpuint (herald_test_ws_handshake (pub, "/ws", NULL, NULL), ==, 101);
  obj = expect_type (pub, "connected");
  /* ~12 MB: more than the kernel buffers and the 64 KiB queue together */
  for (int i = 0; i < 400; i++)
    {
      g_autoptr (JsonObject) ans = NULL;
      send_fmt (pub, "{\"type\":\"message\",\"channel\":\"flood\",\"data\":\"%s\"}", pad);
      ans = expect_type (pub, "published");
    }
  /* the slow one is closing (grace 3 s), then gone; the worker keeps serving */
  start = g_get_monotonic_time ();
  while (g_get_monotonic_time () - start < 4500 * 1000)
    {
      g_autoptr (JsonObject) pong = NULL;
      herald_test_ws_send_text (pub, "{\"type\":\"ping\"}");
      pong = expect_type (pub, "pong");
      g_usleep (250 * 1000);
    }
  g_assert_cmpuint (herald_hub_get_connection_count (server->hub), ==, 1);
  herald_test_client_free (pub);
  herald_test_server_stop (server);
}

/* A TLS client that connects and never completes its handshake is dropped. */
static void
test_tls_handshake_timeout (void)
{
  g_autofree char *conf = tls_config ("[limits]\nhandshake-timeout=1\n");
  HeraldTestServer *server = herald_test_server_start_listen (conf, 1, "https://127.0.0.1:0");
  HeraldTestClient *raw = herald_test_client_connect (server); /* plain TCP: no ClientHello */
  gint64 start = g_get_monotonic_time ();
  char buf[64];
  gssize n;

  n = g_socket_receive (raw->socket, buf, sizeof buf, NULL, NULL);
  g_assert_cmpint (n, <=, 0);
  g_assert_cmpint (g_get_monotonic_time () - start, <, 3500 * 1000);
  herald_test_client_free (raw);
  herald_test_server_stop (server);
}

/* ---- slowloris on plain HTTP ---- */

static void
test_handshake_timeout (void)
{
  HeraldTestServer *server
      = herald_test_server_start ("[limits]\nhandshake-timeout=1\n[auth]\nanonymous=true\n", 1);
  HeraldTestClient *idle = herald_test_client_connect (server);
  HeraldTestClient *partial = herald_test_client_connect (server);
  HeraldTestClient *ws = ws_open_token (server, NULL);
  const char *part = "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ";
  gint64 start = g_get_monotonic_time ();
  g_autoptr (JsonObject) pong = NULL;
  char buf[256];

  herald_test_client_send_raw (partial, part, strlen (part));
  g_assert_cmpint (g_socket_receive (idle->socket, buf, sizeof buf, NULL, NULL), <=, 0);
  /* the partial request may get an error answer, then EOF */
  while (g_socket_receive (partial->socket, buf, sizeof buf, NULL, NULL) > 0)
    ;
  g_assert_cmpint (g_get_monotonic_time () - start, <, 3500 * 1000);

  /* an established WebSocket is not subject to it */
  g_usleep (1200 * 1000);
  herald_test_ws_send_text (ws, "{\"type\":\"ping\"}");
  pong = expect_type (ws, "pong");

  herald_test_client_free (idle);
  herald_test_client_free (partial);
  herald_test_client_free (ws);
  herald_test_server_stop (server);
}

/* ---- abuse limits ---- */

static void
test_per_ip (void)
{
  HeraldTestServer *server = herald_test_server_start (
      "[limits]\nmax-connections-per-ip=2\n[auth]\nanonymous=true\n", 2);
  HeraldTestClient *a = ws_open_token (server, NULL);
  HeraldTestClient *b = ws_open_token (server, NULL);
  const char *req = "GET /events?channel=x HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
  HeraldTestClient *c;
  guint16 code;

  g_assert_cmpuint (ws_status (server, "/ws"), ==, 503);
  g_assert_cmpuint (sse_status (server, "/events?channel=x"), ==, 503);
  /* a slot frees when a connection goes */
  herald_test_ws_send_frame (a, 0x88, "\x03\xe8", 2);
  code = herald_test_ws_wait_close (a);
  g_assert_cmpuint (code, ==, 1000);
  herald_test_client_free (a);
  for (int i = 0; i < 50; i++)
    {
      c = herald_test_client_connect (server);
      herald_test_client_send_raw (c, req, strlen (req));
      if (herald_test_client_read_head (c, NULL) == 200)
        break;
      herald_test_client_free (c);
      c = NULL;
      g_usleep (20 * 1000);
    }
  g_assert_nonnull (c);
  herald_test_client_free (c);
  herald_test_client_free (b);
  herald_test_server_stop (server);
}

static void
test_rate_limit (void)
{
  HeraldTestServer *server
      = herald_test_server_start ("[limits]\nmessages-per-second=5\n[auth]\nanonymous=true\n", 1);
  HeraldTestClient *c = ws_open_token (server, NULL);
  int pongs = 0, limited = 0;
  guint16 code;

  for (int i = 0; i < 10; i++)
    herald_test_ws_send_text (c, "{\"type\":\"ping\"}");
  for (int i = 0; i < 10; i++)
    {
      g_autoptr (JsonObject) obj = herald_test_ws_read_json (c);
      const char *type;
      g_assert_nonnull (obj);
      type = herald_test_json_get_string (obj, "type");
      if (g_str_equal (type, "pong"))
        pongs++;
      else
        {
          g_assert_cmpstr (type, ==, "error");
          g_assert_cmpstr (herald_test_json_get_string (obj, "code"), ==, "rate_limited");
          limited++;
        }
    }
  g_assert_cmpint (pongs, >=, 5);
  g_assert_cmpint (limited, >=, 1);

  /* sustained abuse: closed 4029 */
  for (int i = 0; i < 60; i++)
    herald_test_ws_send_text (c, "{\"type\":\"ping\"}");
  code = herald_test_ws_wait_close (c);
  g_assert_cmpuint (code, ==, 4029);
  herald_test_client_free (c);
  herald_test_server_stop (server);
}

/* ---- [limits] max-subscriptions-per-connection ---- */

static void
api_publish (HeraldTestServer *server, const char *channel, const char *data)
{
  g_autofree char *body = g_strdup_printf ("{\"channel\":\"%s\",\"data\":%s}", channel, data);
  g_autofree char *answer = NULL;
  guint status = 0;

  answer = herald_test_http (server, "POST", "/api/publish", "Authorization: Bearer k\r\n", body,
                             &status);
  g_assert_cmpuint (status, ==, 200);
}

/* Waits (bounded, polling: the workers release channels on their own
 * threads) until the engine keeps @n channels. */
static void
wait_engine_channels (HeraldTestServer *server, gint64 n)
{
  HeraldEngine *engine = herald_hub_get_engine (server->hub);
  gint64 deadline = g_get_monotonic_time () + 5 * G_USEC_PER_SEC;

  while (herald_engine_count_channels (engine) != n && g_get_monotonic_time () < deadline)
    {
      while (g_main_context_iteration (NULL, FALSE))
        ;
      g_usleep (10 * G_TIME_SPAN_MILLISECOND);
    }
  g_assert_cmpint (herald_engine_count_channels (engine), ==, n);
}

/* The default cap (128) counts the connection's subscriptions: the 129th is
 * refused with limit_exceeded and changes nothing, an unsubscribe frees a
 * slot, re-subscribing a channel the connection has is no new one, and the
 * count is per connection. */
static void
test_max_subscriptions (void)
{
  HeraldTestServer *server = herald_test_server_start ("[auth]\nanonymous=true\n[api]\nkey=k\n", 1);
  HeraldTestClient *c = ws_open_token (server, NULL);
  HeraldTestClient *other = ws_open_token (server, NULL);
  g_autoptr (JsonObject) refused = NULL;
  g_autoptr (JsonObject) unsubscribed = NULL;
  g_autoptr (JsonObject) pong = NULL;
  g_autoptr (JsonObject) message = NULL;

  g_assert_cmpuint (herald_config_get_max_subscriptions_per_connection (server->config), ==, 128);
  for (int i = 0; i < 128; i++)
    {
      g_autofree char *name = g_strdup_printf ("cap.%d", i);
      subscribe_ok (c, name);
    }

  send_fmt (c, "{\"type\":\"subscribe\",\"channel\":\"cap.128\",\"id\":7}");
  refused = expect_type (c, "error");
  g_assert_cmpstr (herald_test_json_get_string (refused, "code"), ==, "limit_exceeded");
  g_assert_cmpint (json_object_get_int_member (refused, "id"), ==, 7);
  g_assert_nonnull (strstr (herald_test_json_get_string (refused, "message"), "at most 128"));
  g_assert_nonnull (strstr (herald_test_json_get_string (refused, "message"),
                            "max-subscriptions-per-connection"));

  /* The refused subscribe changed nothing: its channel's messages do not
   * arrive (the pong comes first, and nothing else after it). */
  api_publish (server, "cap.128", "1");
  herald_test_ws_send_text (c, "{\"type\":\"ping\"}");
  pong = expect_type (c, "pong");

  /* A channel the connection already has is not a new subscription. */
  subscribe_ok (c, "cap.5");

  /* Another connection has its own count. */
  subscribe_ok (other, "cap.128");

  /* An unsubscribe frees exactly one slot. */
  herald_test_ws_send_text (c, "{\"type\":\"unsubscribe\",\"channel\":\"cap.0\"}");
  unsubscribed = expect_type (c, "unsubscribed");
  subscribe_ok (c, "cap.128");
  send_fmt (c, "{\"type\":\"subscribe\",\"channel\":\"cap.129\"}");
  expect_error (c, "limit_exceeded");

  api_publish (server, "cap.128", "2");
  message = expect_type (c, "message");
  g_assert_cmpstr (herald_test_json_get_string (message, "channel"), ==, "cap.128");
  g_assert_cmpint (json_object_get_int_member (message, "data"), ==, 2);

  herald_test_client_free (other);
  herald_test_client_free (c);

  /* Nothing per subscription stays after close: no channel in the workers'
   * tables, and the engine keeps only the channel that has offsets
   * (cap.128, until its history would have expired). */
  wait_engine_channels (server, 1);
  {
    guint status = 0;
    g_autofree char *channels = herald_test_http (server, "GET", "/api/channels",
                                                  "Authorization: Bearer k\r\n", NULL, &status);
    g_assert_cmpuint (status, ==, 200);
    g_assert_cmpstr (channels, ==, "{\"channels\":[]}");
  }
  herald_test_server_stop (server);
}

/* 0 = no limit. */
static void
test_max_subscriptions_off (void)
{
  HeraldTestServer *server = herald_test_server_start (
      "[limits]\nmax-subscriptions-per-connection=0\n[auth]\nanonymous=true\n", 1);
  HeraldTestClient *c = ws_open_token (server, NULL);

  for (int i = 0; i < 200; i++)
    {
      g_autofree char *name = g_strdup_printf ("many.%d", i);
      subscribe_ok (c, name);
    }
  herald_test_client_free (c);
  herald_test_server_stop (server);
}

static char *
sse_query (guint first, guint n, guint duplicates)
{
  GString *q = g_string_new ("/events?");

  for (guint i = first; i < first + n; i++)
    g_string_append_printf (q, "channel=sse.%u&", i);
  for (guint i = 0; i < duplicates; i++)
    g_string_append_printf (q, "channel=sse.%u&", first + i % n);
  g_string_truncate (q, q->len - 1);
  return g_string_free (q, FALSE);
}

/* An SSE stream's channels count against the same cap: more distinct
 * channel= parameters than it is 400 with a clear error; duplicates count
 * once. */
static void
test_max_subscriptions_sse (void)
{
  HeraldTestServer *server = herald_test_server_start (
      "[limits]\nmax-subscriptions-per-connection=5\n[auth]\nanonymous=true\n", 1);
  g_autofree char *too_many = sse_query (0, 6, 0);
  g_autofree char *enough = sse_query (0, 5, 20);
  g_autofree char *req = g_strdup_printf ("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", too_many);
  g_autofree char *body = NULL;
  g_autofree char *head = NULL;
  g_autoptr (JsonNode) node = NULL;
  HeraldTestClient *c = herald_test_client_connect (server);
  guint status = 0;

  herald_test_client_send_raw (c, req, strlen (req));
  body = herald_test_client_read_response (c, &status, &head);
  g_assert_cmpuint (status, ==, 400);
  g_assert_nonnull (body);
  node = json_from_string (body, NULL);
  g_assert_nonnull (node);
  g_assert_cmpstr (
      json_object_get_string_member (json_node_get_object (node), "error"), ==,
      "Too many channels: at most 5 per stream ([limits] max-subscriptions-per-connection)");
  herald_test_client_free (c);

  g_assert_cmpuint (sse_status (server, enough), ==, 200);
  herald_test_server_stop (server);
}

static void
test_repeated_forbidden (void)
{
  HeraldTestServer *server
      = herald_test_server_start ("[auth]\nanonymous=true\nanonymous-channels=open\n", 1);
  HeraldTestClient *c = ws_open_token (server, NULL);
  guint16 code;

  for (int i = 0; i < 10; i++)
    {
      herald_test_ws_send_text (c, "{\"type\":\"subscribe\",\"channel\":\"closed\"}");
      expect_error (c, "forbidden");
    }
  herald_test_ws_send_text (c, "{\"type\":\"subscribe\",\"channel\":\"closed\"}");
  code = herald_test_ws_wait_close (c);
  g_assert_cmpuint (code, ==, 1008);
  herald_test_client_free (c);
  herald_test_server_stop (server);
}

static void
test_header_size (void)
{
  HeraldTestServer *server = herald_test_server_start ("[auth]\nanonymous=true\n", 1);
  HeraldTestClient *c = herald_test_client_connect (server);
  g_autoptr (GString) req = g_string_new ("GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\n");
  g_autofree char *filler = g_strnfill (1000, 'a');
  guint status;

  for (int i = 0; i < 70; i++)
    g_string_append_printf (req, "X-Fill-%d: %s\r\n", i, filler);
  g_string_append (req, "\r\n");
  herald_test_client_send_raw (c, req->str, req->len);
  status = herald_test_client_read_head (c, NULL);
  g_assert_true (status == 400 || status == 431 || (status == 0 && c->closed));
  herald_test_client_free (c);

  /* still serving */
  c = ws_open_token (server, NULL);
  herald_test_client_free (c);
  herald_test_server_stop (server);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/security/refresh", test_refresh);
  g_test_add_func ("/security/expiry", test_expiry);
  g_test_add_func ("/security/permissions", test_permissions);
  g_test_add_func ("/security/public-keys", test_public_keys);
  g_test_add_func ("/security/sse-token-sources", test_sse_token_sources);
  g_test_add_func ("/security/tls", test_tls);
  g_test_add_func ("/security/tls-slow-consumer", test_tls_slow_consumer);
  g_test_add_func ("/security/tls-handshake-timeout", test_tls_handshake_timeout);
  g_test_add_func ("/security/handshake-timeout", test_handshake_timeout);
  g_test_add_func ("/security/per-ip", test_per_ip);
  g_test_add_func ("/security/rate-limit", test_rate_limit);
  g_test_add_func ("/security/repeated-forbidden", test_repeated_forbidden);
  g_test_add_func ("/security/max-subscriptions", test_max_subscriptions);
  g_test_add_func ("/security/max-subscriptions-off", test_max_subscriptions_off);
  g_test_add_func ("/security/max-subscriptions-sse", test_max_subscriptions_sse);
  g_test_add_func ("/security/header-size", test_header_size);
  g_test_add_func ("/security/issuer-audience", test_issuer_audience);
  return g_test_run ();
}
