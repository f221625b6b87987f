/* test-http-fast.c: the keep-alive fast path for the hot HTTP API calls,
 * against a real Herald (worker threads, loopback) over raw sockets.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>

#include "herald-http-fast.h"
#include "herald-memory-engine.h"
#include "herald-test-server.h"

#define API "[api]\nkey=k\n"
#define AUTH "Authorization: Bearer k\r\n"

/* One request as bytes: POST @path with @headers (may be NULL) and @body. */
static char *
post (const char *path, const char *headers, const char *body)
{
  return g_strdup_printf ("POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%sContent-Type: "
                          "application/json\r\nContent-Length: %zu\r\n\r\n%s",
                          path, headers ? headers : "", strlen (body), body);
}

static void
send_str (HeraldTestClient *client, const char *text)
{
  herald_test_client_send_raw (client, text, strlen (text));
}

static gboolean
fill (HeraldTestClient *client)
{
  char buf[65536];
  g_autoptr (GError) error = NULL;
  gssize n = g_socket_receive (client->socket, buf, sizeof buf, NULL, &error);

  if (n <= 0)
    {
      client->closed = TRUE;
      return FALSE;
    }
  g_byte_array_append (client->buffer, (guint8 *)buf, n);
  return TRUE;
}

/* TRUE when the server closes the connection (EOF) without sending more. */
static gboolean
wait_eof (HeraldTestClient *client)
{
  while (fill (client))
    ;
  return client->buffer->len == 0;
}

static gboolean
head_has (const char *head, const char *line)
{
  return g_strstr_len (head, -1, line) != NULL;
}

static guint64
offset_of (const char *body)
{
  g_assert_true (g_str_has_prefix (body, "{\"offset\":"));
  return g_ascii_strtoull (body + 10, NULL, 10);
}

/* The fast path's one-pass reader keeps every number and string as sent
 * (publish and broadcast) and refuses a second object after the first. */
static void
test_keeps_data_exactly (void)
{
  HeraldTestServer *server = herald_test_server_start (API, 2);
  HeraldTestClient *client = herald_test_client_connect (server);
  HeraldTestClient *sub = herald_test_ws_open (server, "/ws", NULL);
  const char *data[]
      = { "9223372036854775808", "18446744073709551615", "-9223372036854775809", "1e308", "0.1",
          "\"a\\u0000b\"",       "{\"k\":[1e30, 2]}" };
  const char *expected[]
      = { "9223372036854775808", "18446744073709551615", "-9223372036854775809", "1e308", "0.1",
          "\"a\\u0000b\"",       "{\"k\":[1e30,2]}" };
  const char *refused[] = {
    "{\"channel\":\"news\",\"data\":1}{\"channel\":\"news\",\"data\":2}",
    "{\"channel\":\"news\\u0000x\",\"data\":1}",
    "{\"channel\":\"news\",\"data\":1,\"n\":18446744073709551615}",
  };
  g_autoptr (JsonObject) reply = NULL;

  herald_test_ws_send_text (sub, "{\"type\":\"subscribe\",\"channel\":\"news\"}");
  reply = herald_test_ws_read_json (sub);
  g_assert_cmpstr (herald_test_json_get_string (reply, "type"), ==, "subscribed");
  for (guint i = 0; i < G_N_ELEMENTS (data); i++)
    for (guint broadcast = 0; broadcast < 2; broadcast++)
      {
        g_autofree char *body
            = broadcast ? g_strdup_printf ("{\"data\":%s}", data[i])
                        : g_strdup_printf ("{\"channel\":\"news\",\"data\":%s}", data[i]);
        g_autofree char *req = post (broadcast ? "/api/broadcast" : "/api/publish", AUTH, body);
        g_autofree char *answer = NULL, *frame = NULL, *want = NULL;
        guint status;
        gsize len;

        send_str (client, req);
        answer = herald_test_client_read_response (client, &status, NULL);
        g_assert_cmpuint (status, ==, 200);
        do
          {
            g_clear_pointer (&frame, g_free);
            g_assert_cmpint (herald_test_ws_read_frame (sub, &frame, &len), ==, 0x1);
          }
        while (strstr (frame, "\"type\":\"ping\""));
        want = g_strdup_printf (",\"data\":%s}", expected[i]);
        g_assert_true (g_str_has_suffix (frame, want));
      }
  for (guint i = 0; i < G_N_ELEMENTS (refused); i++)
    {
      g_autofree char *req = post ("/api/publish", AUTH, refused[i]);
      g_autofree char *answer = NULL;
      guint status;

      send_str (client, req);
      answer = herald_test_client_read_response (client, &status, NULL);
      g_assert_cmpuint (status, ==, 400);
    }
  herald_test_client_free (sub);
  herald_test_client_free (client);
  herald_test_server_stop (server);
}

static void
test_keep_alive_publishes (void)
{
  HeraldTestServer *server = herald_test_server_start (API, 2);
  HeraldTestClient *client = herald_test_client_connect (server);
  guint64 last = 0;

  for (guint i = 0; i < 5; i++)
    {
      g_autofree char *req
          = post ("/api/publish", AUTH, "{\"channel\":\"news\",\"data\":{\"n\":1}}");
      g_autofree char *head = NULL;
      g_autofree char *body = NULL;
      guint status;

      send_str (client, req);
      body = herald_test_client_read_response (client, &status, &head);
      g_assert_cmpuint (status, ==, 200);
      g_assert_true (g_str_has_prefix (head, "HTTP/1.1 200 OK\r\n"));
      g_assert_true (head_has (head, "Content-Type: application/json\r\n"));
      g_assert_true (head_has (head, "Server: herald/" PACKAGE_VERSION "\r\n"));
      g_assert_false (head_has (head, "Connection: close"));
      if (i > 0)
        g_assert_cmpuint (offset_of (body), >, last);
      last = offset_of (body);
    }
  herald_test_client_free (client);
  herald_test_server_stop (server);
}

static void
test_pipelined (void)
{
  HeraldTestServer *server = herald_test_server_start (API, 2);
  HeraldTestClient *client = herald_test_client_connect (server);
  g_autofree char *r1 = post ("/api/publish", AUTH, "{\"channel\":\"a\",\"data\":1}");
  g_autofree char *r2 = post ("/api/broadcast", AUTH, "{\"data\":2}");
  g_autofree char *r3 = post ("/api/publish", AUTH, "{nope");
  g_autofree char *r4 = post ("/api/publish", AUTH, "{\"channel\":\"a\",\"data\":4}");
  g_autofree char *r5 = post ("/api/users/alice/send", AUTH, "{\"data\":5}");
  g_autofree char *all = g_strconcat (r1, r2, r3, r4, r5, NULL);
  g_autofree char *b1 = NULL, *b2 = NULL, *b3 = NULL, *b4 = NULL, *b5 = NULL;
  guint s1, s2, s3, s4, s5;

  send_str (client, all);
  b1 = herald_test_client_read_response (client, &s1, NULL);
  b2 = herald_test_client_read_response (client, &s2, NULL);
  b3 = herald_test_client_read_response (client, &s3, NULL);
  b4 = herald_test_client_read_response (client, &s4, NULL);
  b5 = herald_test_client_read_response (client, &s5, NULL);
  g_assert_cmpuint (s1, ==, 200);
  g_assert_cmpuint (s2, ==, 200);
  g_assert_cmpstr (b2, ==, "{\"delivered\":0}");
  g_assert_cmpuint (s3, ==, 400);
  g_assert_true (g_str_has_prefix (b3, "{\"error\":\"Request body is not valid JSON"));
  g_assert_cmpuint (s4, ==, 200);
  g_assert_cmpuint (offset_of (b4), >, offset_of (b1));
  g_assert_cmpuint (s5, ==, 200);
  g_assert_cmpstr (b5, ==, "{\"delivered\":0}");
  herald_test_client_free (client);
  herald_test_server_stop (server);
}

/* One request on a fresh keep-alive connection, then one more on the same
 * connection to show it stayed open. */
static void
check_status_kept (HeraldTestServer *server, const char *request, guint expected,
                   const char *expected_body, const char *header)
{
  HeraldTestClient *client = herald_test_client_connect (server);
  g_autofree char *again = post ("/api/broadcast", AUTH, "{\"data\":1}");
  g_autofree char *head = NULL;
  g_autofree char *body = NULL;
  g_autofree char *body2 = NULL;
  guint status;

  send_str (client, request);
  body = herald_test_client_read_response (client, &status, &head);
  g_assert_cmpuint (status, ==, expected);
  g_assert_cmpstr (body, ==, expected_body);
  if (header)
    g_assert_true (head_has (head, header));
  g_assert_false (head_has (head, "Connection: close"));
  send_str (client, again);
  body2 = herald_test_client_read_response (client, &status, NULL);
  g_assert_cmpuint (status, !=, 0);
  herald_test_client_free (client);
}

typedef struct
{
  HeraldTestClient *client;
  char *data;
} SendJob;

static gpointer
send_thread (gpointer user_data)
{
  SendJob *job = user_data;

  send_str (job->client, job->data);
  return NULL;
}

/* Thousands of pipelined requests sent while the responses are not read:
 * reading stops and resumes, and a head split across reads is not left
 * pinning the receive window (the kernel charges the whole segment). */
static void
test_pipelined_many (void)
{
  HeraldTestServer *server = herald_test_server_start (API, 1);
  HeraldTestClient *client = herald_test_client_connect (server);
  g_autofree char *one = post ("/api/broadcast", AUTH, "{\"data\":1}");
  GString *all = g_string_new (NULL);
  SendJob job = { client, NULL };
  GThread *thread;
  guint n = 6000;

  for (guint i = 0; i < n; i++)
    g_string_append (all, one);
  job.data = g_string_free (all, FALSE);
  thread = g_thread_new ("sender", send_thread, &job);
  g_usleep (200 * 1000);
  for (guint i = 0; i < n; i++)
    {
      guint status = 0;
      g_autofree char *body = herald_test_client_read_response (client, &status, NULL);

      g_assert_cmpuint (status, ==, 200);
      g_assert_cmpstr (body, ==, "{\"delivered\":0}");
    }
  g_thread_join (thread);
  g_free (job.data);
  herald_test_client_free (client);
  herald_test_server_stop (server);
}

static void
test_errors (void)
{
  HeraldTestServer *server = herald_test_server_start (API "[limits]\nmax-message-size=1024\n", 1);
  g_autofree char *no_auth = post ("/api/publish", NULL, "{\"channel\":\"a\",\"data\":1}");
  g_autofree char *bad_auth
      = post ("/api/publish", "Authorization: Bearer x\r\n", "{\"channel\":\"a\",\"data\":1}");
  g_autofree char *bad_json = post ("/api/publish", AUTH, "[1]");
  g_autofree char *empty = post ("/api/publish", AUTH, "");
  g_autofree char *no_channel = post ("/api/publish", AUTH, "{\"data\":1}");
  g_autofree char *bad_channel = post ("/api/publish", AUTH, "{\"channel\":\"a b\",\"data\":1}");
  g_autofree char *no_data = post ("/api/broadcast", AUTH, "{}");
  g_autofree char *no_conn
      = post ("/api/connections/0123456789abcdef0123456789abcdef/send", AUTH, "{\"data\":1}");
  g_autofree char *big_body = g_strnfill (2000, ' ');
  g_autofree char *too_big = post ("/api/publish", AUTH, big_body);
  g_autofree char *head = NULL;
  g_autofree char *body = NULL;
  HeraldTestClient *client;
  guint status;

  check_status_kept (server, no_auth, 401, "{\"error\":\"Missing or invalid API key\"}",
                     "WWW-Authenticate: Bearer\r\n");
  check_status_kept (server, bad_auth, 401, "{\"error\":\"Missing or invalid API key\"}",
                     "WWW-Authenticate: Bearer\r\n");
  check_status_kept (server, bad_json, 400, "{\"error\":\"Request body must be a JSON object\"}",
                     NULL);
  check_status_kept (server, empty, 400, "{\"error\":\"Request body is empty\"}", NULL);
  check_status_kept (server, no_channel, 400, "{\"error\":\"Missing field “channel”\"}", NULL);
  check_status_kept (server, bad_channel, 400, "{\"error\":\"Invalid channel name “a b”\"}", NULL);
  check_status_kept (server, no_data, 400, "{\"error\":\"Missing field “data”\"}", NULL);

  /* 404 from the hub for an unknown connection: same as the libsoup path. */
  {
    HeraldTestClient *c = herald_test_client_connect (server);
    g_autofree char *b = NULL;
    g_autofree char *via_soup = NULL;
    guint s2;

    send_str (c, no_conn);
    b = herald_test_client_read_response (c, &status, NULL);
    g_assert_cmpuint (status, ==, 404);
    herald_test_client_free (c);
    via_soup = herald_test_http (server, "POST",
                                 "/api/connections/0123456789abcdef0123456789abcdef/send",
                                 AUTH "Origin: http://example.org\r\n", "{\"data\":1}", &s2);
    g_assert_cmpuint (s2, ==, 404);
    g_assert_cmpstr (b, ==, via_soup);
  }

  /* 413: answered before the body, then the connection closes. */
  client = herald_test_client_connect (server);
  send_str (client, too_big);
  body = herald_test_client_read_response (client, &status, &head);
  g_assert_cmpuint (status, ==, 413);
  g_assert_cmpstr (body, ==, "{\"error\":\"Request body exceeds max-message-size\"}");
  g_assert_true (head_has (head, "Connection: close\r\n"));
  g_assert_true (wait_eof (client));
  herald_test_client_free (client);

  herald_test_server_stop (server);

  /* API disabled: 404, still kept alive. */
  server = herald_test_server_start (NULL, 1);
  check_status_kept (server, no_auth, 404,
                     "{\"error\":\"HTTP API disabled: no API key configured\"}", NULL);
  herald_test_server_stop (server);
}

/* The same requests through libsoup (an Origin header sends them there)
 * get the same status and body. */
static void
test_same_as_libsoup (void)
{
  HeraldTestServer *server = herald_test_server_start (API, 1);
  const char *bodies[]
      = { "{\"data\":[1,2]}",   "nope", "{\"data\":1", "\"x\"", "{}", "{\"data\":1e999}",
          "{\"data\":\"\xff\"}" };
  const char *paths[]
      = { "/api/broadcast", "/api/users/bob/send", "/api/users/b%C3%B6b/send", "/api/publish" };

  for (guint p = 0; p < G_N_ELEMENTS (paths); p++)
    for (guint i = 0; i < G_N_ELEMENTS (bodies); i++)
      {
        HeraldTestClient *client = herald_test_client_connect (server);
        g_autofree char *req = post (paths[p], AUTH, bodies[i]);
        g_autofree char *fast = NULL;
        g_autofree char *slow = NULL;
        guint fast_status, slow_status;

        send_str (client, req);
        fast = herald_test_client_read_response (client, &fast_status, NULL);
        herald_test_client_free (client);
        slow = herald_test_http (server, "POST", paths[p], AUTH "Origin: http://example.org\r\n",
                                 bodies[i], &slow_status);
        if (g_utf8_validate (bodies[i], -1, NULL))
          g_test_message ("%s %s: %u %s / %u %s", paths[p], bodies[i], fast_status, fast,
                          slow_status, slow);
        g_assert_cmpuint (fast_status, ==, slow_status);
        g_assert_cmpstr (fast, ==, slow);
      }
  herald_test_server_stop (server);
}

static void
test_connection_close (void)
{
  HeraldTestServer *server = herald_test_server_start (API, 1);
  HeraldTestClient *client = herald_test_client_connect (server);
  g_autofree char *req
      = post ("/api/publish", AUTH "Connection: close\r\n", "{\"channel\":\"a\",\"data\":1}");
  g_autofree char *head = NULL;
  g_autofree char *body = NULL;
  guint status;

  send_str (client, req);
  body = herald_test_client_read_response (client, &status, &head);
  g_assert_cmpuint (status, ==, 200);
  g_assert_true (head_has (head, "Connection: close\r\n"));
  g_assert_true (wait_eof (client));
  herald_test_client_free (client);

  /* HTTP/1.0 without keep-alive closes; with it, stays open. */
  client = herald_test_client_connect (server);
  send_str (client, "POST /api/broadcast HTTP/1.0\r\nHost: h\r\n" AUTH
                    "Content-Length: 10\r\n\r\n{\"data\":1}");
  g_clear_pointer (&body, g_free);
  g_clear_pointer (&head, g_free);
  body = herald_test_client_read_response (client, &status, &head);
  g_assert_cmpuint (status, ==, 200);
  g_assert_true (head_has (head, "Connection: close\r\n"));
  g_assert_true (wait_eof (client));
  herald_test_client_free (client);

  client = herald_test_client_connect (server);
  for (guint i = 0; i < 2; i++)
    {
      send_str (client, "POST /api/broadcast HTTP/1.0\r\nHost: h\r\nConnection: keep-alive\r\n" AUTH
                        "Content-Length: 10\r\n\r\n{\"data\":1}");
      g_clear_pointer (&body, g_free);
      g_clear_pointer (&head, g_free);
      body = herald_test_client_read_response (client, &status, &head);
      g_assert_cmpuint (status, ==, 200);
      g_assert_true (head_has (head, "Connection: keep-alive\r\n"));
    }
  herald_test_client_free (client);
  herald_test_server_stop (server);
}

static void
test_hand_off_to_libsoup (void)
{
  HeraldTestServer *server = herald_test_server_start (API, 1);
  HeraldTestClient *client = herald_test_client_connect (server);
  g_autofree char *req = post ("/api/publish", AUTH, "{\"channel\":\"a\",\"data\":1}");
  g_autofree char *both = NULL;
  g_autofree char *body = NULL;
  g_autofree char *body2 = NULL;
  g_autofree char *body3 = NULL;
  g_autofree char *id = NULL;
  guint status;

  /* A publish, then a GET on the same connection: libsoup answers it. */
  send_str (client, req);
  body = herald_test_client_read_response (client, &status, NULL);
  g_assert_cmpuint (status, ==, 200);
  send_str (client, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  body2 = herald_test_client_read_response (client, &status, NULL);
  g_assert_cmpuint (status, ==, 200);
  g_assert_true (g_str_has_prefix (body2, "{\"status\":\"ok\""));
  herald_test_client_free (client);

  /* Pipelined: the GET waits for the publish's answer, then goes to libsoup. */
  client = herald_test_client_connect (server);
  both = g_strconcat (req, "GET /api/channels HTTP/1.1\r\nHost: 127.0.0.1\r\n" AUTH "\r\n", NULL);
  send_str (client, both);
  g_clear_pointer (&body, g_free);
  body = herald_test_client_read_response (client, &status, NULL);
  g_assert_cmpuint (status, ==, 200);
  g_assert_true (g_str_has_prefix (body, "{\"offset\":"));
  body3 = herald_test_client_read_response (client, &status, NULL);
  g_assert_cmpuint (status, ==, 200);
  g_assert_true (g_str_has_prefix (body3, "{\"channels\":"));
  herald_test_client_free (client);

  /* Upgrades on a fresh connection still work, and a fast publish reaches them. */
  client = herald_test_ws_open (server, "/ws", &id);
  {
    HeraldTestClient *pub = herald_test_client_connect (server);
    g_autofree char *r = post ("/api/publish", AUTH, "{\"channel\":\"news\",\"data\":{\"x\":7}}");
    g_autofree char *b = NULL;
    g_autoptr (JsonObject) msg = NULL;

    herald_test_ws_send_text (client, "{\"type\":\"subscribe\",\"channel\":\"news\",\"id\":1}");
    while ((msg = herald_test_ws_read_json (client)) != NULL
           && g_strcmp0 (herald_test_json_get_string (msg, "type"), "subscribed") != 0)
      g_clear_pointer (&msg, json_object_unref);
    g_assert_nonnull (msg);
    g_clear_pointer (&msg, json_object_unref);
    send_str (pub, r);
    b = herald_test_client_read_response (pub, &status, NULL);
    g_assert_cmpuint (status, ==, 200);
    while ((msg = herald_test_ws_read_json (client)) != NULL
           && g_strcmp0 (herald_test_json_get_string (msg, "type"), "message") != 0)
      g_clear_pointer (&msg, json_object_unref);
    g_assert_nonnull (msg);
    g_assert_cmpstr (herald_test_json_get_string (msg, "channel"), ==, "news");
    herald_test_client_free (pub);
  }
  herald_test_client_free (client);

  /* Chunked bodies go to libsoup too. */
  client = herald_test_client_connect (server);
  send_str (client, "POST /api/broadcast HTTP/1.1\r\nHost: h\r\n" AUTH
                    "Transfer-Encoding: chunked\r\n\r\na\r\n{\"data\":1}\r\n0\r\n\r\n");
  g_clear_pointer (&body, g_free);
  body = herald_test_client_read_response (client, &status, NULL);
  g_assert_cmpuint (status, ==, 200);
  g_assert_true (g_str_has_prefix (body, "{\"delivered\":"));
  herald_test_client_free (client);

  herald_test_server_stop (server);
}

static void
test_partial_head_and_body (void)
{
  HeraldTestServer *server = herald_test_server_start (API, 1);
  HeraldTestClient *client = herald_test_client_connect (server);
  g_autofree char *req = post ("/api/publish", AUTH, "{\"channel\":\"a\",\"data\":\"partial\"}");
  gsize len = strlen (req);
  const char *split_body = strstr (req, "\r\n\r\n") + 6;
  g_autofree char *body = NULL;
  g_autofree char *big = NULL;
  g_autofree char *pad = NULL;
  guint status;

  /* In three pieces: half a head, the rest of the head and part of the body, the rest. */
  herald_test_client_send_raw (client, req, 20);
  g_usleep (100 * 1000);
  herald_test_client_send_raw (client, req + 20, split_body - req - 20);
  g_usleep (100 * 1000);
  herald_test_client_send_raw (client, split_body, len - (split_body - req));
  body = herald_test_client_read_response (client, &status, NULL);
  g_assert_cmpuint (status, ==, 200);

  /* A head longer than the first peek but within the limit. */
  pad = g_strnfill (8000, 'a');
  big = g_strdup_printf ("POST /api/broadcast HTTP/1.1\r\nHost: h\r\nX-Pad: %s\r\n" AUTH
                         "Content-Length: 10\r\n\r\n{\"data\":1}",
                         pad);
  send_str (client, big);
  g_clear_pointer (&body, g_free);
  body = herald_test_client_read_response (client, &status, NULL);
  g_assert_cmpuint (status, ==, 200);
  herald_test_client_free (client);

  /* A head over 64 KiB: 431 and close. */
  client = herald_test_client_connect (server);
  g_clear_pointer (&pad, g_free);
  g_clear_pointer (&big, g_free);
  pad = g_strnfill (66000, 'a');
  big = g_strdup_printf ("POST /api/broadcast HTTP/1.1\r\nHost: h\r\nX-Pad: %s\r\n\r\n", pad);
  send_str (client, big);
  g_clear_pointer (&body, g_free);
  body = herald_test_client_read_response (client, &status, NULL);
  g_assert_cmpuint (status, ==, 431);
  g_assert_true (wait_eof (client));
  herald_test_client_free (client);

  herald_test_server_stop (server);
}

static void
test_slow_head_dropped (void)
{
  HeraldTestServer *server = herald_test_server_start (API "[limits]\nhandshake-timeout=1\n", 1);
  HeraldTestClient *client = herald_test_client_connect (server);
  HeraldTestClient *slow_body = herald_test_client_connect (server);
  HeraldTestClient *fine = NULL;
  g_autofree char *req = post ("/api/broadcast", AUTH, "{\"data\":1}");
  g_autofree char *body = NULL;
  gint64 start = g_get_monotonic_time ();
  guint status;

  send_str (client, "POST /api/publish HTTP/1.1\r\nHost: h\r\n");
  herald_test_client_send_raw (slow_body, req, strlen (req) - 3);
  /* Both are dropped after the deadline (1 s, checked once a second). */
  g_assert_true (wait_eof (client));
  g_assert_true (wait_eof (slow_body));
  g_assert_cmpint (g_get_monotonic_time () - start, <, 4 * G_USEC_PER_SEC);
  /* A connection that makes its request in time is answered. */
  fine = herald_test_client_connect (server);
  send_str (fine, req);
  body = herald_test_client_read_response (fine, &status, NULL);
  g_assert_cmpuint (status, ==, 200);
  herald_test_client_free (client);
  herald_test_client_free (slow_body);
  herald_test_client_free (fine);
  herald_test_server_stop (server);
}

/* A new connection that has had one publish answered by the fast path (so
 * it is in direct mode). */
static HeraldTestClient *
connect_answered (HeraldTestServer *server, const char *req)
{
  HeraldTestClient *client = herald_test_client_connect (server);
  g_autofree char *body = NULL;
  guint status;

  send_str (client, req);
  body = herald_test_client_read_response (client, &status, NULL);
  g_assert_cmpuint (status, ==, 200);
  g_assert_true (g_str_has_prefix (body, "{\"offset\":"));
  return client;
}

/* Direct mode: once a connection was answered here, its requests are read
 * without peeking; a later request for libsoup goes there with the bytes
 * already read (HeraldPrefixInputStream). */
static void
test_direct_then_libsoup (void)
{
  HeraldTestServer *server = herald_test_server_start (API, 1);
  g_autofree char *req = post ("/api/publish", AUTH, "{\"channel\":\"news\",\"data\":{\"x\":1}}");
  HeraldTestClient *client;
  g_autoptr (JsonObject) hello = NULL;
  g_autofree char *body = NULL;
  guint status;

  /* A publish, then a WebSocket upgrade on the same connection. */
  client = connect_answered (server, req);
  g_assert_cmpuint (herald_test_ws_handshake (client, "/ws", NULL, NULL), ==, 101);
  hello = herald_test_ws_read_json (client);
  g_assert_nonnull (hello);
  g_assert_cmpstr (herald_test_json_get_string (hello, "type"), ==, "connected");
  herald_test_ws_send_text (client, "{\"type\":\"ping\",\"id\":1}");
  {
    g_autoptr (JsonObject) pong = herald_test_ws_read_json (client);
    g_assert_nonnull (pong);
    g_assert_cmpstr (herald_test_json_get_string (pong, "type"), ==, "pong");
  }
  herald_test_client_free (client);

  /* A publish, then a GET whose head arrives in two pieces: the first piece
   * is held until the head is complete, then all of it goes to libsoup. */
  client = connect_answered (server, req);
  send_str (client, "GET /api/chan");
  g_usleep (50 * 1000);
  send_str (client, "nels HTTP/1.1\r\nHost: 127.0.0.1\r\n" AUTH "\r\n");
  g_clear_pointer (&body, g_free);
  body = herald_test_client_read_response (client, &status, NULL);
  g_assert_cmpuint (status, ==, 200);
  g_assert_true (g_str_has_prefix (body, "{\"channels\":"));
  herald_test_client_free (client);

  /* A publish, then a chunked publish (libsoup reads chunked bodies) with
   * another request pipelined behind it in the same write. */
  client = connect_answered (server, req);
  {
    g_autofree char *chunked
        = g_strdup_printf ("POST /api/publish HTTP/1.1\r\nHost: 127.0.0.1\r\n" AUTH
                           "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                           "%x\r\n%s\r\n0\r\n\r\n%s",
                           (guint)strlen ("{\"channel\":\"news\",\"data\":2}"),
                           "{\"channel\":\"news\",\"data\":2}", req);
    send_str (client, chunked);
  }
  {
    g_autofree char *head = NULL;

    g_clear_pointer (&body, g_free);
    body = herald_test_client_read_response (client, &status, &head);
    g_assert_cmpuint (status, ==, 200);
    g_assert_true (g_str_has_prefix (body, "{\"offset\":"));
    /* libsoup answers with Connection: close (herald-http-api.c): the
     * pipelined request after it is for a new connection. */
    g_assert_true (head_has (head, "Connection: close"));
  }
  herald_test_client_free (client);

  /* The limits hold in direct mode too: a Content-Length over
   * max-message-size gets 413 before the body, a head over 64 KiB 431; both
   * close the connection. */
  {
    g_autofree char *pad = g_strnfill (66000, 'a');
    g_autofree char *big_head
        = g_strdup_printf ("POST /api/publish HTTP/1.1\r\nHost: h\r\nX-Pad: %s\r\n\r\n", pad);
    g_autofree char *head = NULL;

    client = connect_answered (server, req);
    send_str (client, "POST /api/publish HTTP/1.1\r\nHost: 127.0.0.1\r\n" AUTH
                      "Content-Length: 99999999\r\n\r\n{");
    g_clear_pointer (&body, g_free);
    body = herald_test_client_read_response (client, &status, &head);
    g_assert_cmpuint (status, ==, 413);
    g_assert_true (head_has (head, "Connection: close\r\n"));
    g_assert_true (wait_eof (client));
    herald_test_client_free (client);

    client = connect_answered (server, req);
    send_str (client, big_head);
    g_clear_pointer (&body, g_free);
    body = herald_test_client_read_response (client, &status, NULL);
    g_assert_cmpuint (status, ==, 431);
    g_assert_true (wait_eof (client));
    herald_test_client_free (client);
  }

  herald_test_assert_serving (server);
  herald_test_server_stop (server);
}

/* ---- the one-pass head reader against libsoup's parser ---- */

static void
check_head_agrees (HeraldHttpFast *fast, const char *head, guint *sure)
{
  HeraldHttpFastHead a, b;
  int simple = herald_http_fast_read_head_for_test (fast, head, strlen (head), TRUE, &a);
  int soup = herald_http_fast_read_head_for_test (fast, head, strlen (head), FALSE, &b);

  if (simple < 0)
    {
      g_free (b.arg);
      return;
    }
  (*sure)++;
  if (simple != soup)
    g_error ("head read as %d by the one-pass reader, %d by libsoup:\n%s", simple, soup, head);
  if (simple == 1
      && (a.route != b.route || g_strcmp0 (a.arg, b.arg) != 0 || a.length != b.length
          || a.early != b.early || a.close != b.close || a.http10 != b.http10))
    g_error ("head read differently (route %d/%d length %zu/%zu early %u/%u close %d/%d "
             "http10 %d/%d):\n%s",
             a.route, b.route, a.length, b.length, a.early, b.early, a.close, b.close, a.http10,
             b.http10, head);
  g_free (a.arg);
  g_free (b.arg);
}

static void
test_head_reader_agrees (void)
{
  static const char *lines[] = {
    "POST /api/publish HTTP/1.1",
    "POST /api/publish HTTP/1.0",
    "POST /api/broadcast HTTP/1.1",
    "POST /api/users/alice/send HTTP/1.1",
    "POST /api/users/a%20b/send HTTP/1.1",
    "POST /api/connections/AAAAAAAAAAAAAAAAAAAAAA/send HTTP/1.1",
    "POST /api/channels/x HTTP/1.1",
    "GET /api/publish HTTP/1.1",
    "POST  /api/publish HTTP/1.1",
    "POST /api/publish HTTP/2.0",
    "post /api/publish HTTP/1.1",
    "POST http://h/api/publish HTTP/1.1",
    "POST /other HTTP/1.1",
  };
  static const char *headers[] = {
    "Host: 127.0.0.1:8080",
    "host:localhost",
    "Host: a b",
    "Host:",
    "Host: [::1]:80",
    "Content-Length: 10",
    "content-length:0",
    "Content-Length: 1 0",
    "Content-Length: -1",
    "Content-Length: 10, 10",
    "Content-Length: 1234567890123456",
    "Content-Length:",
    "Authorization: Bearer k",
    "authorization: bearer  k",
    "Authorization: Bearer kk",
    "Authorization: Basic k",
    "Authorization: Bearer",
    "Connection: close",
    "Connection: keep-alive",
    "connection: Keep-Alive, Upgrade",
    "Connection: foo , CLOSE ",
    "Transfer-Encoding: chunked",
    "Expect: 100-continue",
    "Origin: http://x",
    "Upgrade: x",
    "X-Thing: \xc3\xa9",
    "X-Tab:\tv\t",
    " folded",
    "Bad Name: x",
    "X:",
    ": empty",
    "Content-Type: application/json",
  };
  g_autoptr (HeraldConfig) config = herald_config_new ();
  g_autoptr (HeraldEngine) engine = NULL;
  g_autoptr (HeraldHub) hub = NULL;
  g_autoptr (GRand) r = g_rand_new_with_seed (4242);
  g_autoptr (GError) error = NULL;
  g_autoptr (GString) head = g_string_new (NULL);
  HeraldHttpFast *fast;
  guint sure = 0;

  g_assert_true (herald_config_load_data (config, "[api]\nkey=k\n", -1, "test", &error));
  g_assert_no_error (error);
  engine = herald_memory_engine_new (config);
  hub = herald_hub_new (config, engine);
  fast = herald_http_fast_new (hub, NULL, NULL, NULL);

  for (guint i = 0; i < 20000; i++)
    {
      int n = g_rand_int_range (r, 0, 6);

      g_string_assign (head, lines[g_rand_int_range (r, 0, G_N_ELEMENTS (lines))]);
      g_string_append (head, "\r\n");
      /* usually the headers a client sends, sometimes not */
      if (g_rand_int_range (r, 0, 4) > 0)
        g_string_append (head, "Host: 127.0.0.1\r\nContent-Length: 12\r\n");
      if (g_rand_int_range (r, 0, 3) > 0)
        g_string_append (head, "Authorization: Bearer k\r\n");
      for (int j = 0; j < n; j++)
        {
          g_string_append (head, headers[g_rand_int_range (r, 0, G_N_ELEMENTS (headers))]);
          g_string_append (head, "\r\n");
        }
      g_string_append (head, "\r\n");
      check_head_agrees (fast, head->str, &sure);
    }
  g_test_message ("%u of 20000 heads read without libsoup", sure);
  g_assert_cmpuint (sure, >, 2000);
  herald_http_fast_free (fast);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/http-fast/keep-alive-publishes", test_keep_alive_publishes);
  g_test_add_func ("/http-fast/keeps-data-exactly", test_keeps_data_exactly);
  g_test_add_func ("/http-fast/pipelined", test_pipelined);
  g_test_add_func ("/http-fast/pipelined-many", test_pipelined_many);
  g_test_add_func ("/http-fast/errors", test_errors);
  g_test_add_func ("/http-fast/same-as-libsoup", test_same_as_libsoup);
  g_test_add_func ("/http-fast/connection-close", test_connection_close);
  g_test_add_func ("/http-fast/hand-off-to-libsoup", test_hand_off_to_libsoup);
  g_test_add_func ("/http-fast/partial-head-and-body", test_partial_head_and_body);
  g_test_add_func ("/http-fast/slow-head-dropped", test_slow_head_dropped);
  g_test_add_func ("/http-fast/head-reader-agrees", test_head_reader_agrees);
  g_test_add_func ("/http-fast/direct-then-libsoup", test_direct_then_libsoup);
  return g_test_run ();
}
