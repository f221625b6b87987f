/* test-proxy.c: the [proxy] hooks against a backend played by a SoupServer
 * in this process (its own thread and main context, since the test client
 * blocks), with a real Herald (worker threads, loopback port): allow, deny,
 * disconnect, rewrite, RPC results, answers slower than the timeout, 500s,
 * invalid JSON, 10 MB answers, connection refused — each with the client's
 * view and Herald still serving others; frame order behind a pending
 * subscribe; refresh; /metrics.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <glib/gstdio.h>
#include <libsoup/soup.h>
#include <string.h>

#include "herald-jwt.h"
#include "herald-test-node.h"
#include "herald-test-server.h"
#include "herald-test-utils.h"

G_DEFINE_AUTOPTR_CLEANUP_FUNC (HeraldTestDeadline, herald_test_deadline_free)

#define SECRET "s3cret-s3cret-s3cret-s3cret-s3cret"

/* ---- the backend ---- */

typedef struct
{
  GThread *thread;
  GMainContext *context;
  GMainLoop *loop;
  SoupServer *server;
  guint16 port;
  GMutex lock;
  GCond cond;
  gboolean ready;
  /* under lock */
  guint calls[5];     /* connect, refresh, subscribe, publish, rpc */
  char *last_connect; /* the last connect body */
  char *refresh_mode; /* "extend", "error", "kick", "e500" */
} Backend;

static const char *const hooks[] = { "connect", "refresh", "subscribe", "publish", "rpc" };

typedef struct
{
  SoupServerMessage *msg;
  char *body;
  gsize length;
} Slow;

static gboolean
answer_slow (gpointer data)
{
  Slow *slow = data;

  soup_server_message_set_status (slow->msg, 200, NULL);
  soup_server_message_set_response (slow->msg, "application/json", SOUP_MEMORY_TAKE,
                                    g_steal_pointer (&slow->body), slow->length);
  soup_server_message_unpause (slow->msg);
  return G_SOURCE_REMOVE;
}

/* Also when the backend stops before the answer was due */
static void
slow_free (gpointer data)
{
  Slow *slow = data;

  g_clear_object (&slow->msg);
  g_free (slow->body);
  g_free (slow);
}

/* Answers @text, or the failure @mode names ("slow", "e500", "garbage", "deep", "huge",
 * "hugechunked") */
static void
answer (Backend *backend, SoupServerMessage *msg, const char *mode, char *text)
{
  if (g_strcmp0 (mode, "e500") == 0)
    {
      soup_server_message_set_status (msg, 500, NULL);
      soup_server_message_set_response (msg, "application/json", SOUP_MEMORY_TAKE, text,
                                        strlen (text));
      return;
    }
  if (g_strcmp0 (mode, "garbage") == 0)
    {
      g_free (text);
      text = g_strdup ("{\"result\":{\"user\":\"alice\"");
    }
  else if (g_strcmp0 (mode, "deep") == 0)
    {
      /* valid JSON, 200,000 arrays deep: under 1 MiB */
      GString *deep = g_string_new ("{\"result\":{\"user\":\"alice\",\"x\":");

      g_free (text);
      for (guint i = 0; i < 200000; i++)
        g_string_append_c (deep, '[');
      for (guint i = 0; i < 200000; i++)
        g_string_append_c (deep, ']');
      g_string_append (deep, "}}");
      text = g_string_free (deep, FALSE);
    }
  else if (g_strcmp0 (mode, "huge") == 0 || g_strcmp0 (mode, "hugechunked") == 0)
    {
      gsize size = 10 * 1024 * 1024;
      char *huge = g_malloc (size + 64);

      g_free (text);
      memset (huge, 'a', size + 64);
      memcpy (huge, "{\"result\":{\"user\":\"", 19);
      memcpy (huge + size + 64 - 4, "\"}}", 4);
      if (g_strcmp0 (mode, "hugechunked") == 0)
        {
          SoupMessageBody *body = soup_server_message_get_response_body (msg);

          soup_message_headers_set_encoding (soup_server_message_get_response_headers (msg),
                                             SOUP_ENCODING_CHUNKED);
          soup_server_message_set_status (msg, 200, NULL);
          soup_message_body_append_take (body, (guchar *)huge, size + 63);
          soup_message_body_complete (body);
          return;
        }
      text = huge;
    }
  else if (g_strcmp0 (mode, "slow") == 0)
    {
      Slow *slow = g_new0 (Slow, 1);
      GSource *source = g_timeout_source_new (1500);

      slow->msg = g_object_ref (msg);
      slow->body = text;
      slow->length = strlen (text);
      soup_server_message_pause (msg);
      g_source_set_callback (source, answer_slow, slow, slow_free);
      g_source_attach (source, backend->context);
      g_source_unref (source);
      return;
    }
  soup_server_message_set_status (msg, 200, NULL);
  soup_server_message_set_response (msg, "application/json", SOUP_MEMORY_TAKE, text, strlen (text));
}

/* A mode written into a name: "…mode=slow…" or "slow" as a part of it */
static const char *
mode_in (const char *text)
{
  static const char *const modes[] = { "hugechunked", "huge", "slow", "e500", "garbage", "deep",
                                       "deny",        "kick", "exp",  "anon", NULL };

  for (guint i = 0; text != NULL && modes[i] != NULL; i++)
    if (strstr (text, modes[i]) != NULL)
      return modes[i];
  return "allow";
}

static void
backend_handler (SoupServer *server, SoupServerMessage *msg, const char *path, GHashTable *query,
                 gpointer user_data)
{
  Backend *backend = user_data;
  SoupMessageBody *request = soup_server_message_get_request_body (msg);
  g_autoptr (GBytes) bytes = soup_message_body_flatten (request);
  g_autoptr (JsonParser) parser = json_parser_new ();
  JsonObject *body;
  const char *mode = "allow";
  char *text = NULL;
  guint hook;

  for (hook = 0; hook < G_N_ELEMENTS (hooks); hook++)
    if (g_str_equal (path + 1, hooks[hook]))
      break;
  g_assert_cmpuint (hook, <, G_N_ELEMENTS (hooks));
  g_assert_cmpstr (soup_server_message_get_method (msg), ==, "POST");
  g_assert_true (json_parser_load_from_data (parser, g_bytes_get_data (bytes, NULL),
                                             (gssize)g_bytes_get_size (bytes), NULL));
  body = json_node_get_object (json_parser_get_root (parser));
  g_mutex_lock (&backend->lock);
  backend->calls[hook]++;
  if (hook == 0)
    {
      g_free (backend->last_connect);
      backend->last_connect = g_strndup (g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes));
    }
  g_mutex_unlock (&backend->lock);

  switch (hook)
    {
    case 0: /* connect: the mode is in the cookie */
      {
        JsonObject *headers = json_object_get_object_member (body, "headers");

        mode = mode_in (json_object_get_string_member_with_default (headers, "cookie", NULL));
        if (g_str_equal (mode, "deny"))
          text = g_strdup ("{\"error\":{\"code\":1000,\"message\":\"no session\"}}");
        else if (g_str_equal (mode, "kick"))
          text = g_strdup ("{\"disconnect\":{\"code\":4500,\"reason\":\"banned\"}}");
        else if (g_str_equal (mode, "exp"))
          text = g_strdup_printf ("{\"result\":{\"user\":\"bob\",\"expire_at\":%" G_GINT64_FORMAT
                                  ",\"channels\":[\"news\"]}}",
                                  g_get_real_time () / G_USEC_PER_SEC + 1);
        else if (g_str_equal (mode, "anon"))
          text = g_strdup ("{\"result\":{\"user\":\"\"}}");
        else
          text = g_strdup ("{\"result\":{\"user\":\"alice\",\"channels\":[\"news\"],"
                           "\"publish\":[\"news\"],\"subs\":[\"inbox:alice\"]}}");
        break;
      }
    case 1: /* refresh */
      g_mutex_lock (&backend->lock);
      mode = backend->refresh_mode;
      if (g_strcmp0 (mode, "error") == 0)
        text = g_strdup ("{\"error\":{\"code\":1,\"message\":\"session ended\"}}");
      else if (g_strcmp0 (mode, "kick") == 0)
        text = g_strdup ("{\"disconnect\":{\"code\":4321,\"reason\":\"logged out\"}}");
      else
        text = g_strdup_printf ("{\"result\":{\"expire_at\":%" G_GINT64_FORMAT "}}",
                                g_get_real_time () / G_USEC_PER_SEC + 1);
      g_mutex_unlock (&backend->lock);
      break;
    case 2: /* subscribe: the mode is in the channel */
      mode = mode_in (json_object_get_string_member (body, "channel"));
      if (g_str_equal (mode, "deny"))
        text = g_strdup ("{\"error\":{\"code\":403,\"message\":\"not a member\"}}");
      else
        text = g_strdup ("{\"result\":{}}");
      break;
    case 3: /* publish: rewritten, the sender named */
      {
        g_autoptr (JsonNode) data = json_node_copy (json_object_get_member (body, "data"));
        g_autofree char *data_text = json_to_string (data, FALSE);

        mode = mode_in (json_object_get_string_member (body, "channel"));
        if (g_str_equal (mode, "deny"))
          text = g_strdup ("{\"error\":{\"code\":403,\"message\":\"read-only\"}}");
        else
          text = g_strdup_printf ("{\"result\":{\"data\":{\"from\":\"%s\",\"said\":%s}}}",
                                  json_object_get_string_member (body, "user"), data_text);
        break;
      }
    case 4: /* rpc: the mode is the method */
    default:
      {
        g_autoptr (JsonNode) data = json_node_copy (json_object_get_member (body, "data"));
        g_autofree char *data_text = json_to_string (data, FALSE);

        mode = mode_in (json_object_get_string_member (body, "method"));
        if (g_str_equal (mode, "deny"))
          text = g_strdup ("{\"error\":{\"code\":42,\"message\":\"no such thing\"}}");
        else
          text = g_strdup_printf ("{\"result\":{\"data\":{\"method\":\"%s\",\"echo\":%s}}}",
                                  json_object_get_string_member (body, "method"), data_text);
        break;
      }
    }
  answer (backend, msg, mode, text);
}

static gpointer
backend_thread (gpointer data)
{
  Backend *backend = data;
  g_autoptr (GError) error = NULL;
  GSList *uris;

  g_main_context_push_thread_default (backend->context);
  backend->server = soup_server_new (NULL, NULL);
  soup_server_add_handler (backend->server, NULL, backend_handler, backend, NULL);
  g_assert_true (
      soup_server_listen_local (backend->server, 0, SOUP_SERVER_LISTEN_IPV4_ONLY, &error));
  g_assert_no_error (error);
  uris = soup_server_get_uris (backend->server);
  g_mutex_lock (&backend->lock);
  backend->port = (guint16)g_uri_get_port (uris->data);
  backend->ready = TRUE;
  g_cond_signal (&backend->cond);
  g_mutex_unlock (&backend->lock);
  g_slist_free_full (uris, (GDestroyNotify)g_uri_unref);
  g_main_loop_run (backend->loop);
  soup_server_disconnect (backend->server);
  g_clear_object (&backend->server);
  g_main_context_pop_thread_default (backend->context);
  return NULL;
}

static Backend *
backend_start (void)
{
  Backend *backend = g_new0 (Backend, 1);

  g_mutex_init (&backend->lock);
  g_cond_init (&backend->cond);
  backend->context = g_main_context_new ();
  backend->loop = g_main_loop_new (backend->context, FALSE);
  backend->refresh_mode = g_strdup ("extend");
  backend->thread = g_thread_new ("backend", backend_thread, backend);
  g_mutex_lock (&backend->lock);
  while (!backend->ready)
    g_cond_wait (&backend->cond, &backend->lock);
  g_mutex_unlock (&backend->lock);
  return backend;
}

static gboolean
quit_loop (gpointer data)
{
  g_main_loop_quit (data);
  return G_SOURCE_REMOVE;
}

static void
backend_stop (Backend *backend)
{
  g_main_context_invoke (backend->context, quit_loop, backend->loop);
  g_thread_join (backend->thread);
  g_main_loop_unref (backend->loop);
  g_main_context_unref (backend->context);
  g_free (backend->last_connect);
  g_free (backend->refresh_mode);
  g_mutex_clear (&backend->lock);
  g_cond_clear (&backend->cond);
  g_free (backend);
}

static guint
backend_calls (Backend *backend, guint hook)
{
  guint n;

  g_mutex_lock (&backend->lock);
  n = backend->calls[hook];
  g_mutex_unlock (&backend->lock);
  return n;
}

static void
backend_set_refresh (Backend *backend, const char *mode)
{
  g_mutex_lock (&backend->lock);
  g_free (backend->refresh_mode);
  backend->refresh_mode = g_strdup (mode);
  g_mutex_unlock (&backend->lock);
}

/* A configuration with every hook pointing at @backend ([namespace.p]:
 * subscribe=proxy, publish-proxy) */
static char *
herald_conf (Backend *backend, const char *extra)
{
  return g_strdup_printf (
      "[auth]\njwt-secret=" SECRET "\n"
      "[api]\nkey=k\n"
      "[proxy]\nconnect-url=http://127.0.0.1:%u/connect\nrefresh-url=http://127.0.0.1:%u/refresh\n"
      "subscribe-url=http://127.0.0.1:%u/subscribe\npublish-url=http://127.0.0.1:%u/publish\n"
      "rpc-url=http://127.0.0.1:%u/rpc\ntimeout=0.5\n"
      "forward-headers=Cookie;X-Session;User-Agent\n"
      "[namespace.p]\nsubscribe=proxy\npublish-proxy=true\n%s",
      backend->port, backend->port, backend->port, backend->port, backend->port,
      extra != NULL ? extra : "");
}

static HeraldTestServer *
start_herald (Backend *backend, const char *extra)
{
  g_autofree char *conf = herald_conf (backend, extra);

  return herald_test_server_start (conf, 2);
}

/* A WebSocket handshake with @cookie: the status, the head in @head */
static HeraldTestClient *
ws_with_cookie (HeraldTestServer *server, const char *cookie, guint *status)
{
  HeraldTestClient *client = herald_test_client_connect (server);
  g_autofree char *headers = g_strdup_printf ("Cookie: %s\r\n", cookie);

  *status = herald_test_ws_handshake (client, "/ws", headers, NULL);
  return client;
}

/* @connected carries "subs":{"@channel":{"offset":N,"epoch":"…"}} */
static void
assert_connected_subs (JsonObject *connected, const char *channel)
{
  JsonObject *subs = json_object_get_object_member (connected, "subs");
  JsonObject *position;

  g_assert_nonnull (subs);
  g_assert_cmpuint (json_object_get_size (subs), ==, 1);
  position = json_object_get_object_member (subs, channel);
  g_assert_nonnull (position);
  g_assert_true (json_object_has_member (position, "offset"));
  g_assert_true (json_object_has_member (position, "epoch"));
}

/* A connection the backend accepts as alice: its "connected" read */
static HeraldTestClient *
ws_alice (HeraldTestServer *server)
{
  guint status = 0;
  HeraldTestClient *client = ws_with_cookie (server, "sid=allow", &status);
  g_autoptr (JsonObject) connected = NULL;

  g_assert_cmpuint (status, ==, 101);
  connected = herald_test_ws_read_json (client);
  g_assert_nonnull (connected);
  g_assert_cmpstr (herald_test_json_get_string (connected, "type"), ==, "connected");
  g_assert_cmpstr (herald_test_json_get_string (connected, "user_id"), ==, "alice");
  /* the backend's "subs" act as the token claim: subscribed, in "connected" */
  assert_connected_subs (connected, "inbox:alice");
  return client;
}

static JsonObject *
request (HeraldTestClient *client, const char *text)
{
  herald_test_ws_send_text (client, text);
  return herald_test_ws_read_json (client);
}

static void
assert_reply (JsonObject *reply, const char *type, const char *code)
{
  g_assert_nonnull (reply);
  g_assert_cmpstr (herald_test_json_get_string (reply, "type"), ==, type);
  if (code != NULL)
    g_assert_cmpstr (herald_test_json_get_string (reply, "code"), ==, code);
}

/* The close code within @ms (0: none) */
static guint16
wait_close_within (HeraldTestClient *client, guint ms)
{
  g_autoptr (HeraldTestDeadline) deadline = herald_test_deadline_new (ms);
  guint16 code = 0;

  /* A read timeout (5 s) also marks the client closed: try again until @ms */
  while (code == 0 && !herald_test_deadline_expired (deadline))
    {
      client->closed = FALSE;
      code = herald_test_ws_wait_close (client);
      if (code == 0)
        g_usleep (10 * 1000);
    }
  return code;
}

static void
publish (HeraldTestServer *server, const char *channel)
{
  g_autofree char *body = g_strdup_printf ("{\"channel\":\"%s\",\"data\":{\"n\":1}}", channel);
  g_autofree char *answer = NULL;
  guint status = 0;

  answer = herald_test_http (server, "POST", "/api/publish", "Authorization: Bearer k\r\n", body,
                             &status);
  g_assert_cmpuint (status, ==, 200);
}

/* Herald still answers others: a refusal and a whole connection */
static void
assert_serving_with_token (HeraldTestServer *server)
{
  HeraldTestClient *client = herald_test_client_connect (server);
  g_autoptr (JsonObject) reply = NULL;
  guint status;

  status = herald_test_ws_handshake (client, "/ws", "Cookie: sid=deny\r\n", NULL);
  g_assert_cmpuint (status, ==, 403);
  herald_test_client_free (client);
  client = ws_alice (server);
  reply = request (client, "{\"type\":\"ping\",\"id\":1}");
  assert_reply (reply, "pong", NULL);
  herald_test_client_free (client);
}

/* ---- connect ---- */

static void
test_connect (void)
{
  Backend *backend = backend_start ();
  HeraldTestServer *server = start_herald (backend, NULL);
  HeraldTestClient *client;
  g_autoptr (JsonParser) parser = json_parser_new ();
  JsonObject *body, *headers;
  g_autofree char *head = NULL;
  g_autofree char *text = NULL;
  g_autofree char *payload = NULL;
  guint status = 0;
  gsize len = 0;

  /* allow: the backend's user, channels and subs; the headers forwarded */
  client = herald_test_client_connect (server);
  status = herald_test_ws_handshake (
      client, "/ws/conn-1",
      "Cookie: sid=allow\r\nCookie: theme=dark\r\nX-Session: abc\r\nAuthorization-X: no\r\n"
      "User-Agent: tester\r\n",
      NULL);
  g_assert_cmpuint (status, ==, 101);
  {
    g_autoptr (JsonObject) connected = herald_test_ws_read_json (client);
    g_autoptr (JsonObject) reply = NULL;

    g_assert_cmpstr (herald_test_json_get_string (connected, "user_id"), ==, "alice");
    g_assert_cmpstr (herald_test_json_get_string (connected, "connection_id"), ==, "conn-1");
    assert_connected_subs (connected, "inbox:alice");
    /* channels ["news"] act as the channels claim */
    reply = request (client, "{\"type\":\"subscribe\",\"channel\":\"news\",\"id\":1}");
    assert_reply (reply, "subscribed", NULL);
    g_clear_pointer (&reply, json_object_unref);
    reply = request (client, "{\"type\":\"subscribe\",\"channel\":\"other\",\"id\":2}");
    assert_reply (reply, "error", "forbidden");
    g_clear_pointer (&reply, json_object_unref);
    /* publish ["news"] as the publish claim */
    reply = request (client, "{\"type\":\"message\",\"channel\":\"other\",\"data\":1,\"id\":3}");
    assert_reply (reply, "error", "forbidden");
    g_clear_pointer (&reply, json_object_unref);
    reply = request (client, "{\"type\":\"message\",\"channel\":\"news\",\"data\":1,\"id\":4}");
    /* its own delivery first, then the answer */
    assert_reply (reply, "message", NULL);
    g_clear_pointer (&reply, json_object_unref);
    reply = herald_test_ws_read_json (client);
    assert_reply (reply, "published", NULL);
  }
  herald_test_client_free (client);
  g_mutex_lock (&backend->lock);
  g_assert_true (json_parser_load_from_data (parser, backend->last_connect, -1, NULL));
  g_mutex_unlock (&backend->lock);
  body = json_node_get_object (json_parser_get_root (parser));
  g_assert_cmpstr (json_object_get_string_member (body, "client"), ==, "conn-1");
  g_assert_cmpstr (json_object_get_string_member (body, "transport"), ==, "websocket");
  g_assert_cmpstr (json_object_get_string_member (body, "remote_addr"), ==, "127.0.0.1");
  headers = json_object_get_object_member (body, "headers");
  g_assert_cmpstr (json_object_get_string_member (headers, "cookie"), ==, "sid=allow, theme=dark");
  g_assert_cmpstr (json_object_get_string_member (headers, "x-session"), ==, "abc");
  g_assert_cmpstr (json_object_get_string_member (headers, "user-agent"), ==, "tester");
  g_assert_cmpuint (json_object_get_size (headers), ==, 3);

  /* error: 403 before the upgrade */
  client = herald_test_client_connect (server);
  status = herald_test_ws_handshake (client, "/ws", "Cookie: sid=deny\r\n", &head);
  g_assert_cmpuint (status, ==, 403);
  text = herald_test_client_read_response (client, &status, NULL);
  herald_test_client_free (client);

  /* disconnect: upgraded, then closed with the code, no "connected" */
  client = herald_test_client_connect (server);
  status = herald_test_ws_handshake (client, "/ws", "Cookie: sid=kick\r\n", NULL);
  g_assert_cmpuint (status, ==, 101);
  g_assert_cmpint (herald_test_ws_read_frame (client, &payload, &len), ==, 0x8);
  g_assert_cmpuint (len, ==, 8);
  g_assert_cmpuint (((guint8)payload[0] << 8) | (guint8)payload[1], ==, 4500);
  g_assert_cmpstr (payload + 2, ==, "banned");
  herald_test_client_free (client);

  /* An empty user: accepted without a user id */
  client = ws_with_cookie (server, "sid=anon", &status);
  g_assert_cmpuint (status, ==, 101);
  {
    g_autoptr (JsonObject) connected = herald_test_ws_read_json (client);

    g_assert_cmpstr (herald_test_json_get_string (connected, "type"), ==, "connected");
    g_assert_false (json_object_has_member (connected, "user_id")
                    && !JSON_NODE_HOLDS_NULL (json_object_get_member (connected, "user_id")));
  }
  herald_test_client_free (client);

  /* A token is verified as before: the backend is not asked */
  {
    guint before = backend_calls (backend, 0);
    g_autoptr (GBytes) secret = g_bytes_new_static (SECRET, strlen (SECRET));
    g_autofree char *token = herald_jwt_sign_hs256 (secret, "{\"sub\":\"tok\"}");
    g_autofree char *path = g_strdup_printf ("/ws?token=%s", token);
    g_autofree char *id = NULL;
    HeraldTestClient *with_token = herald_test_ws_open (server, path, &id);

    g_assert_cmpuint (backend_calls (backend, 0), ==, before);
    herald_test_client_free (with_token);
  }

  herald_test_server_stop (server);
  backend_stop (backend);
}

static void
test_connect_sse (void)
{
  Backend *backend = backend_start ();
  HeraldTestServer *server = start_herald (backend, NULL);
  HeraldTestClient *client;
  g_autofree char *head = NULL;
  g_autofree char *event = NULL;
  g_autofree char *body = NULL;
  guint status;

  /* allow: the backend's subs join the stream, no channel= needed */
  client = herald_test_client_connect (server);
  herald_test_client_send_raw (client,
                               "GET /events HTTP/1.1\r\nHost: x\r\nCookie: sid=allow\r\n\r\n", 52);
  status = herald_test_client_read_head (client, &head);
  g_assert_cmpuint (status, ==, 200);
  /* retry, then the id, then "connected" */
  while ((event = herald_test_sse_read_event (client)) != NULL
         && strstr (event, "connected") == NULL)
    g_free (event);
  g_assert_nonnull (event);
  g_assert_nonnull (strstr (event, "\"user_id\":\"alice\""));
  g_clear_pointer (&event, g_free);
  publish (server, "inbox:alice");
  event = herald_test_sse_read_event (client);
  g_assert_nonnull (event);
  g_assert_nonnull (strstr (event, "inbox:alice"));
  herald_test_client_free (client);

  /* channels the backend did not grant: 403 */
  body = herald_test_http (server, "GET", "/events?channel=other", "Cookie: sid=allow\r\n", NULL,
                           &status);
  g_assert_cmpuint (status, ==, 403);
  g_clear_pointer (&body, g_free);
  /* error and disconnect: 403 with the reason */
  body = herald_test_http (server, "GET", "/events?channel=news", "Cookie: sid=deny\r\n", NULL,
                           &status);
  g_assert_cmpuint (status, ==, 403);
  g_assert_nonnull (strstr (body, "no session"));
  g_clear_pointer (&body, g_free);
  body = herald_test_http (server, "GET", "/events?channel=news", "Cookie: sid=kick\r\n", NULL,
                           &status);
  g_assert_cmpuint (status, ==, 403);
  g_assert_nonnull (strstr (body, "banned"));
  g_clear_pointer (&body, g_free);
  /* a backend that cannot answer: 503, never a stream */
  body = herald_test_http (server, "GET", "/events?channel=news", "Cookie: sid=e500\r\n", NULL,
                           &status);
  g_assert_cmpuint (status, ==, 503);
  g_clear_pointer (&body, g_free);

  /* subscribe=proxy channels: the subscribe hook is asked before the stream */
  {
    guint before = backend_calls (backend, 2);
    const char *get = "GET /events?channel=p:room&channel=p:other HTTP/1.1\r\nHost: x\r\n"
                      "Cookie: sid=allow\r\n\r\n";

    client = herald_test_client_connect (server);
    herald_test_client_send_raw (client, get, strlen (get));
    g_clear_pointer (&head, g_free);
    g_assert_cmpuint (herald_test_client_read_head (client, &head), ==, 200);
    herald_test_client_free (client);
    g_assert_cmpuint (backend_calls (backend, 2), ==, before + 2);
  }
  body = herald_test_http (server, "GET", "/events?channel=p:room&channel=p:deny",
                           "Cookie: sid=allow\r\n", NULL, &status);
  g_assert_cmpuint (status, ==, 403);
  g_assert_nonnull (strstr (body, "not a member"));
  g_clear_pointer (&body, g_free);
  body = herald_test_http (server, "GET", "/events?channel=p:e500", "Cookie: sid=allow\r\n", NULL,
                           &status);
  g_assert_cmpuint (status, ==, 503);

  herald_test_server_stop (server);
  backend_stop (backend);
}

/* Down, slow, 5xx, garbage, 10 MB: 503 before the upgrade; Herald serves on */
static void
test_connect_failures (void)
{
  static const char *const modes[] = { "e500", "garbage", "deep", "huge", "hugechunked", "slow" };
  Backend *backend = backend_start ();
  HeraldTestServer *server = start_herald (backend, NULL);
  g_autofree char *conf = NULL;

  for (guint i = 0; i < G_N_ELEMENTS (modes); i++)
    {
      g_autofree char *cookie = g_strdup_printf ("sid=%s", modes[i]);
      guint status = 0;
      HeraldTestClient *client = ws_with_cookie (server, cookie, &status);

      if (status != 503)
        g_error ("%s: HTTP %u", modes[i], status);
      herald_test_client_free (client);
      assert_serving_with_token (server);
    }

  /* While a connect waits for a slow backend, the worker serves others */
  {
    HeraldTestClient *slow = herald_test_client_connect (server);
    const char *upgrade = "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                          "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                          "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nCookie: sid=slow\r\n\r\n";
    g_autoptr (GBytes) secret = g_bytes_new_static (SECRET, strlen (SECRET));
    g_autofree char *token = herald_jwt_sign_hs256 (secret, "{\"sub\":\"tok\"}");
    g_autofree char *path = g_strdup_printf ("/ws?token=%s", token);
    HeraldTestClient *other;
    g_autoptr (JsonObject) pong = NULL;

    herald_test_client_send_raw (slow, upgrade, strlen (upgrade));
    g_usleep (100 * 1000);
    for (guint w = 0; w < 4; w++) /* both workers, whichever took the slow one */
      {
        other = herald_test_ws_open (server, path, NULL);
        pong = request (other, "{\"type\":\"ping\",\"id\":1}");
        assert_reply (pong, "pong", NULL);
        g_clear_pointer (&pong, json_object_unref);
        herald_test_client_free (other);
      }
    g_assert_cmpuint (herald_test_client_read_head (slow, NULL), ==, 503);
    herald_test_client_free (slow);
  }
  herald_test_server_stop (server);

  /* connection refused */
  conf = g_strdup_printf ("[proxy]\nconnect-url=http://127.0.0.1:%u/connect\n",
                          herald_test_free_port ());
  server = herald_test_server_start (conf, 1);
  {
    guint status = 0;
    HeraldTestClient *client = ws_with_cookie (server, "sid=allow", &status);

    g_assert_cmpuint (status, ==, 503);
    herald_test_client_free (client);
  }
  herald_test_server_stop (server);
  backend_stop (backend);
}

/* Over TLS: the handshake waits for the backend the same way */
static void
test_connect_tls (void)
{
  Backend *backend = backend_start ();
  g_autofree char *cert = g_test_build_filename (G_TEST_DIST, "keys", "server-cert.pem", NULL);
  g_autofree char *key = g_test_build_filename (G_TEST_DIST, "keys", "server-key.pem", NULL);
  g_autofree char *tls = g_strdup_printf ("[server]\ntls-certificate=%s\ntls-key=%s\n", cert, key);
  g_autofree char *conf = herald_conf (backend, tls);
  HeraldTestServer *server = herald_test_server_start_listen (conf, 1, "https://127.0.0.1:0");
  HeraldTestClient *client;
  g_autoptr (JsonObject) connected = NULL;
  g_autoptr (JsonObject) pong = NULL;

  client = herald_test_client_connect_tls (server);
  g_assert_cmpuint (herald_test_ws_handshake (client, "/ws", "Cookie: sid=allow\r\n", NULL), ==,
                    101);
  connected = herald_test_ws_read_json (client);
  assert_reply (connected, "connected", NULL);
  g_assert_cmpstr (herald_test_json_get_string (connected, "user_id"), ==, "alice");
  pong = request (client, "{\"type\":\"ping\",\"id\":1}");
  assert_reply (pong, "pong", NULL);
  herald_test_client_free (client);

  /* disconnect: the close frame goes through TLS too */
  client = herald_test_client_connect_tls (server);
  g_assert_cmpuint (herald_test_ws_handshake (client, "/ws", "Cookie: sid=kick\r\n", NULL), ==,
                    101);
  g_assert_cmpuint (herald_test_ws_wait_close (client), ==, 4500);
  herald_test_client_free (client);

  client = herald_test_client_connect_tls (server);
  g_assert_cmpuint (herald_test_ws_handshake (client, "/ws", "Cookie: sid=deny\r\n", NULL), ==,
                    403);
  herald_test_client_free (client);

  herald_test_server_stop (server);
  backend_stop (backend);
}

/* ---- subscribe, publish, rpc ---- */

static void
test_subscribe_publish (void)
{
  Backend *backend = backend_start ();
  HeraldTestServer *server = start_herald (backend, NULL);
  HeraldTestClient *client = ws_alice (server);
  g_autoptr (JsonObject) reply = NULL;
  JsonObject *data;

  /* allowed by the backend, not by the channels claim */
  reply = request (client, "{\"type\":\"subscribe\",\"channel\":\"p:room\",\"id\":1,"
                           "\"data\":{\"invite\":\"x\"}}");
  assert_reply (reply, "subscribed", NULL);
  g_clear_pointer (&reply, json_object_unref);
  reply = request (client, "{\"type\":\"subscribe\",\"channel\":\"p:deny\",\"id\":2}");
  assert_reply (reply, "error", "forbidden");
  g_assert_cmpstr (herald_test_json_get_string (reply, "message"), ==, "not a member");
  g_clear_pointer (&reply, json_object_unref);
  reply = request (client, "{\"type\":\"subscribe\",\"channel\":\"p:e500\",\"id\":3}");
  assert_reply (reply, "error", "unavailable");
  g_assert_cmpint (json_object_get_int_member (reply, "id"), ==, 3);
  g_clear_pointer (&reply, json_object_unref);

  /* publish: the backend rewrites data (no publish claim needed) */
  reply = request (
      client, "{\"type\":\"message\",\"channel\":\"p:room\",\"data\":{\"t\":\"hi\"},\"id\":4}");
  assert_reply (reply, "message", NULL);
  data = json_object_get_object_member (reply, "data");
  g_assert_cmpstr (json_object_get_string_member (data, "from"), ==, "alice");
  g_assert_cmpstr (
      json_object_get_string_member (json_object_get_object_member (data, "said"), "t"), ==, "hi");
  g_clear_pointer (&reply, json_object_unref);
  reply = herald_test_ws_read_json (client);
  assert_reply (reply, "published", NULL);
  g_clear_pointer (&reply, json_object_unref);
  reply = request (client, "{\"type\":\"message\",\"channel\":\"p:deny\",\"data\":1,\"id\":5}");
  assert_reply (reply, "error", "forbidden");
  g_clear_pointer (&reply, json_object_unref);
  reply = request (client, "{\"type\":\"message\",\"channel\":\"p:slow\",\"data\":1,\"id\":6}");
  assert_reply (reply, "error", "unavailable");
  g_clear_pointer (&reply, json_object_unref);

  /* the backend's yes covers the channel's presence; without it, forbidden */
  reply = request (client, "{\"type\":\"presence\",\"channel\":\"p:room\",\"id\":11}");
  assert_reply (reply, "presence", NULL);
  g_clear_pointer (&reply, json_object_unref);
  reply = request (client, "{\"type\":\"presence\",\"channel\":\"p:deny\",\"id\":12}");
  assert_reply (reply, "error", "forbidden");
  g_clear_pointer (&reply, json_object_unref);

  /* frames after a pending proxied subscribe are answered after it */
  herald_test_ws_send_text (client, "{\"type\":\"subscribe\",\"channel\":\"p:slow2\",\"id\":7}");
  herald_test_ws_send_text (client, "{\"type\":\"ping\",\"id\":8}");
  herald_test_ws_send_text (client, "{\"type\":\"subscribe\",\"channel\":\"p:next\",\"id\":9}");
  herald_test_ws_send_text (client, "{\"type\":\"ping\",\"id\":10}");
  /* and after a pending proxied publish */
  herald_test_ws_send_text (client,
                            "{\"type\":\"message\",\"channel\":\"p:slow3\",\"data\":1,\"id\":11}");
  herald_test_ws_send_text (client, "{\"type\":\"ping\",\"id\":12}");
  for (gint64 want = 7; want <= 12; want++)
    {
      reply = herald_test_ws_read_json (client);
      g_assert_nonnull (reply);
      g_assert_cmpint (json_object_get_int_member (reply, "id"), ==, want);
      g_clear_pointer (&reply, json_object_unref);
    }
  herald_test_client_free (client);

  herald_test_server_stop (server);
  backend_stop (backend);
}

static void
test_rpc (void)
{
  Backend *backend = backend_start ();
  HeraldTestServer *server = start_herald (backend, NULL);
  HeraldTestClient *client = ws_alice (server);
  g_autoptr (JsonObject) reply = NULL;
  JsonObject *data;

  reply = request (client, "{\"type\":\"rpc\",\"id\":\"r1\",\"method\":\"echo\",\"data\":[1,2]}");
  assert_reply (reply, "rpc_result", NULL);
  g_assert_cmpstr (herald_test_json_get_string (reply, "id"), ==, "r1");
  data = json_object_get_object_member (reply, "data");
  g_assert_cmpstr (json_object_get_string_member (data, "method"), ==, "echo");
  g_assert_cmpuint (json_array_get_length (json_object_get_array_member (data, "echo")), ==, 2);
  g_clear_pointer (&reply, json_object_unref);

  reply = request (client, "{\"type\":\"rpc\",\"id\":2,\"method\":\"deny\"}");
  assert_reply (reply, "error", "rpc_error");
  g_assert_cmpstr (herald_test_json_get_string (reply, "message"), ==, "no such thing");
  g_assert_cmpint (json_object_get_int_member (reply, "rpc_code"), ==, 42);
  g_clear_pointer (&reply, json_object_unref);

  reply = request (client, "{\"type\":\"rpc\",\"id\":3,\"method\":\"garbage\"}");
  assert_reply (reply, "error", "unavailable");
  g_assert_cmpint (json_object_get_int_member (reply, "id"), ==, 3);
  g_clear_pointer (&reply, json_object_unref);
  reply = request (client, "{\"type\":\"rpc\",\"id\":4,\"method\":\"huge\"}");
  assert_reply (reply, "error", "unavailable");
  g_clear_pointer (&reply, json_object_unref);
  reply = request (client, "{\"type\":\"rpc\",\"id\":5,\"method\":\"slow\"}");
  assert_reply (reply, "error", "unavailable");
  g_clear_pointer (&reply, json_object_unref);
  reply = request (client, "{\"type\":\"rpc\",\"id\":6}");
  assert_reply (reply, "error", "bad_request");
  g_clear_pointer (&reply, json_object_unref);
  reply = request (client, "{\"type\":\"ping\",\"id\":7}");
  assert_reply (reply, "pong", NULL);
  g_clear_pointer (&reply, json_object_unref);
  herald_test_client_free (client);
  herald_test_server_stop (server);

  /* max-in-flight=1 (per worker): a second call while one waits fails at once */
  server = start_herald (backend, "[proxy]\nmax-in-flight=1\n");
  client = ws_alice (server);
  herald_test_ws_send_text (client, "{\"type\":\"rpc\",\"id\":1,\"method\":\"slow\"}");
  herald_test_ws_send_text (client, "{\"type\":\"rpc\",\"id\":2,\"method\":\"echo\"}");
  reply = herald_test_ws_read_json (client);
  assert_reply (reply, "error", "unavailable");
  g_assert_cmpint (json_object_get_int_member (reply, "id"), ==, 2);
  g_clear_pointer (&reply, json_object_unref);
  reply = herald_test_ws_read_json (client);
  assert_reply (reply, "error", "unavailable");
  g_assert_cmpint (json_object_get_int_member (reply, "id"), ==, 1);
  g_clear_pointer (&reply, json_object_unref);
  /* and once it ended, calls go through again */
  reply = request (client, "{\"type\":\"rpc\",\"id\":3,\"method\":\"echo\"}");
  assert_reply (reply, "rpc_result", NULL);
  herald_test_client_free (client);
  herald_test_server_stop (server);

  /* without rpc-url: an unknown message type, as before the hooks */
  {
    g_autofree char *conf
        = g_strdup_printf ("[proxy]\nconnect-url=http://127.0.0.1:%u/connect\n", backend->port);

    server = herald_test_server_start (conf, 1);
    client = ws_alice (server);
    g_clear_pointer (&reply, json_object_unref);
    reply = request (client, "{\"type\":\"rpc\",\"id\":1,\"method\":\"echo\"}");
    assert_reply (reply, "error", "unknown_type");
    herald_test_client_free (client);
    herald_test_server_stop (server);
  }
  backend_stop (backend);
}

/* ---- refresh ---- */

static void
test_refresh (void)
{
  Backend *backend = backend_start ();
  HeraldTestServer *server = start_herald (backend, NULL);
  HeraldTestClient *client;
  guint status = 0;
  g_autoptr (JsonObject) connected = NULL;
  g_autoptr (HeraldTestDeadline) deadline = NULL;

  /* expire_at in a second: extended each time it passes */
  client = ws_with_cookie (server, "sid=exp", &status);
  g_assert_cmpuint (status, ==, 101);
  connected = herald_test_ws_read_json (client);
  assert_reply (connected, "connected", NULL);
  deadline = herald_test_deadline_new (8000);
  while (backend_calls (backend, 1) < 2 && !herald_test_deadline_expired (deadline))
    g_usleep (50 * 1000);
  g_assert_cmpuint (backend_calls (backend, 1), >=, 2);
  {
    g_autoptr (JsonObject) pong = request (client, "{\"type\":\"ping\",\"id\":1}");
    assert_reply (pong, "pong", NULL);
  }

  /* unreachable: kept, asked again 5 s later */
  backend_set_refresh (backend, "e500");
  {
    guint before = backend_calls (backend, 1);
    g_autoptr (HeraldTestDeadline) later = herald_test_deadline_new (12000);
    g_autoptr (JsonObject) pong = NULL;

    while (backend_calls (backend, 1) < before + 2 && !herald_test_deadline_expired (later))
      g_usleep (50 * 1000);
    g_assert_cmpuint (backend_calls (backend, 1), >=, before + 2);
    pong = request (client, "{\"type\":\"ping\",\"id\":2}");
    assert_reply (pong, "pong", NULL);
  }

  /* error: closed 4003 */
  backend_set_refresh (backend, "error");
  g_assert_cmpuint (wait_close_within (client, 10000), ==, 4003);
  herald_test_client_free (client);

  /* disconnect: closed with its code */
  backend_set_refresh (backend, "kick");
  client = ws_with_cookie (server, "sid=exp", &status);
  g_assert_cmpuint (status, ==, 101);
  g_assert_cmpuint (wait_close_within (client, 6000), ==, 4321);
  herald_test_client_free (client);

  herald_test_server_stop (server);
  backend_stop (backend);
}

/* ---- /metrics ---- */

/* The value of the sample @key; 0 when absent (a result not seen yet) */
static double
sample (const char *text, const char *key)
{
  g_auto (GStrv) lines = g_strsplit (text, "\n", -1);

  for (guint i = 0; lines[i] != NULL; i++)
    if (g_str_has_prefix (lines[i], key) && lines[i][strlen (key)] == ' ')
      return g_ascii_strtod (lines[i] + strlen (key) + 1, NULL);
  return 0;
}

/* Metrics are per process: what this test added */
static double
delta (const char *before, const char *after, const char *key)
{
  return sample (after, key) - sample (before, key);
}

static void
test_metrics (void)
{
  Backend *backend = backend_start ();
  HeraldTestServer *server = start_herald (backend, NULL);
  HeraldTestClient *client;
  g_autofree char *before = NULL;
  g_autofree char *after = NULL;
  guint status = 0;

  before = herald_test_http (server, "GET", "/metrics", NULL, NULL, &status);
  g_assert_cmpuint (status, ==, 200);
  /* every hook's series exists before its first call */
  g_assert_nonnull (strstr (before, "herald_proxy_requests_total{hook=\"rpc\",result=\"ok\"} "));
  g_assert_nonnull (strstr (before, "herald_proxy_duration_seconds_count{hook=\"refresh\"} "));
  client = ws_alice (server);
  herald_test_client_free (client);
  client = ws_with_cookie (server, "sid=e500", &status);
  herald_test_client_free (client);
  client = ws_with_cookie (server, "sid=slow", &status);
  herald_test_client_free (client);
  client = ws_with_cookie (server, "sid=deny", &status);
  herald_test_client_free (client);
  client = ws_with_cookie (server, "sid=garbage", &status);
  herald_test_client_free (client);
  after = herald_test_http (server, "GET", "/metrics", NULL, NULL, &status);
#define CONNECT(result) "herald_proxy_requests_total{hook=\"connect\",result=\"" result "\"}"
  g_assert_cmpfloat (delta (before, after, CONNECT ("ok")), ==, 1);
  g_assert_cmpfloat (delta (before, after, CONNECT ("http_error")), ==, 1);
  g_assert_cmpfloat (delta (before, after, CONNECT ("timeout")), ==, 1);
  g_assert_cmpfloat (delta (before, after, CONNECT ("error")), ==, 1);
  g_assert_cmpfloat (delta (before, after, CONNECT ("invalid")), ==, 1);
#undef CONNECT
  g_assert_cmpfloat (delta (before, after, "herald_proxy_duration_seconds_count{hook=\"connect\"}"),
                     ==, 5);
  g_assert_cmpfloat (
      delta (before, after, "herald_proxy_duration_seconds_bucket{hook=\"connect\",le=\"+Inf\"}"),
      ==, 5);
  /* the slow one waited the whole timeout */
  g_assert_cmpfloat (delta (before, after, "herald_proxy_duration_seconds_sum{hook=\"connect\"}"),
                     >=, 0.5);

  herald_test_server_stop (server);
  backend_stop (backend);
}

/* ---- the Redis engine: publishing answers later ---- */

static void
test_redis (void)
{
  guint16 port = herald_test_free_port ();
  GSubprocess *redis = herald_test_redis_start (port, NULL);
  Backend *backend = backend_start ();
  g_autofree char *redis_url = g_strdup_printf ("redis://127.0.0.1:%u", port);
  g_autofree char *conf = herald_conf (backend, NULL);
  g_autofree char *dir = g_dir_make_tmp ("herald-proxy-XXXXXX", NULL);
  g_autofree char *path = g_build_filename (dir, "herald.conf", NULL);
  HeraldTestNode node = { 0 };
  HeraldTestClient *client;
  g_autoptr (JsonObject) reply = NULL;
  guint published = 0, pong = 0, seen = 0;

  /* heraldd as a process: the Redis engine needs a main loop, which this
   * test's blocking client would stop */
  g_assert_true (g_file_set_contents (path, conf, -1, NULL));
  herald_test_node_start (&node, path, redis_url, "k", SECRET);
  client = ws_alice (&node.srv);
  reply = request (client, "{\"type\":\"subscribe\",\"channel\":\"p:room\",\"id\":1}");
  assert_reply (reply, "subscribed", NULL);
  g_clear_pointer (&reply, json_object_unref);
  /* the frame after a proxied publish waits for "published", after Redis answered */
  herald_test_ws_send_text (client,
                            "{\"type\":\"message\",\"channel\":\"p:room\",\"data\":2,\"id\":2}");
  herald_test_ws_send_text (client, "{\"type\":\"ping\",\"id\":3}");
  while (pong == 0 && (reply = herald_test_ws_read_json (client)) != NULL)
    {
      const char *type = herald_test_json_get_string (reply, "type");

      seen++;
      if (g_str_equal (type, "published"))
        published = seen;
      else if (g_str_equal (type, "pong"))
        pong = seen;
      else
        {
          /* the delivery, rewritten by the backend */
          assert_reply (reply, "message", NULL);
          g_assert_cmpstr (
              json_object_get_string_member (json_object_get_object_member (reply, "data"), "from"),
              ==, "alice");
        }
      g_clear_pointer (&reply, json_object_unref);
    }
  g_assert_cmpuint (published, >, 0);
  g_assert_cmpuint (pong, >, published);
  herald_test_client_free (client);

  herald_test_node_stop (&node);
  g_unlink (path);
  g_rmdir (dir);
  backend_stop (backend);
  herald_test_redis_stop (&redis);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  /* Herald warns (once per 10 s a worker) that the backend fails: here on purpose */
  g_log_set_always_fatal (G_LOG_FATAL_MASK | G_LOG_LEVEL_CRITICAL);
  g_test_add_func ("/proxy/connect", test_connect);
  g_test_add_func ("/proxy/connect-sse", test_connect_sse);
  g_test_add_func ("/proxy/connect-failures", test_connect_failures);
  g_test_add_func ("/proxy/connect-tls", test_connect_tls);
  g_test_add_func ("/proxy/subscribe-publish", test_subscribe_publish);
  g_test_add_func ("/proxy/rpc", test_rpc);
  g_test_add_func ("/proxy/refresh", test_refresh);
  g_test_add_func ("/proxy/metrics", test_metrics);
  g_test_add_func ("/proxy/redis", test_redis);
  return g_test_run ();
}
