/* test-subs.c: presence at scale (presence_stats, member pages and their
 * cursors) and subscriptions decided by the server (the token's subs claim,
 * the user subscribe API, subscription tokens), on one in-process node.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>

#include "herald-jwt.h"
#include "herald-test-server.h"

#define API "[api]\nkey=k\n"
#define AUTH "Authorization: Bearer k\r\n"
#define SECRET "s3cret"
#define TOKEN_NS "[namespace.tok]\nsubscribe=token\n"

static char *
token (const char *payload)
{
  g_autoptr (GBytes) secret = g_bytes_new_static (SECRET, strlen (SECRET));
  return herald_jwt_sign_hs256 (secret, payload);
}

static HeraldTestClient *
open_with (HeraldTestServer *server, const char *payload, JsonObject **connected)
{
  g_autofree char *jwt = token (payload);
  g_autofree char *path = g_strdup_printf ("/ws?token=%s", jwt);
  HeraldTestClient *client = herald_test_client_connect (server);
  JsonObject *hello;

  g_assert_cmpuint (herald_test_ws_handshake (client, path, NULL, NULL), ==, 101);
  hello = herald_test_ws_read_json (client);
  g_assert_nonnull (hello);
  g_assert_cmpstr (herald_test_json_get_string (hello, "type"), ==, "connected");
  if (connected)
    *connected = hello;
  else
    json_object_unref (hello);
  return client;
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
  g_autoptr (JsonObject) r = expect_type (client, "error");

  g_assert_cmpstr (herald_test_json_get_string (r, "code"), ==, code);
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

static JsonObject *
http_json (HeraldTestServer *server, const char *method, const char *path, const char *body,
           guint expected)
{
  g_autofree char *answer = NULL;
  g_autoptr (JsonParser) parser = json_parser_new ();
  guint status = 0;

  answer = herald_test_http (server, method, path, AUTH, body, &status);
  g_assert_nonnull (answer);
  if (status != expected)
    g_error ("%s %s: %u %s (expected %u)", method, path, status, answer, expected);
  g_assert_true (json_parser_load_from_data (parser, answer, -1, NULL));
  return json_object_ref (json_node_get_object (json_parser_get_root (parser)));
}

/* ---- presence at scale ---- */

/* presence_stats counts users and connections (anonymous ones included) as
 * they come and go, on WebSocket, HTTP; presence=false refuses both. */
static void
test_presence_stats (void)
{
  HeraldTestServer *server = herald_test_server_start (
      API "[auth]\njwt-secret=" SECRET "\nanonymous=true\n[namespace.quiet]\npresence=false\n", 2);
  HeraldTestClient *a1 = open_with (server, "{\"sub\":\"alice\"}", NULL);
  HeraldTestClient *a2 = open_with (server, "{\"sub\":\"alice\"}", NULL);
  HeraldTestClient *b = open_with (server, "{\"sub\":\"bob\"}", NULL);
  HeraldTestClient *anon = herald_test_ws_open (server, "/ws", NULL);
  g_autoptr (JsonObject) r = NULL;

  subscribe (a1, "room");
  subscribe (a2, "room");
  subscribe (b, "room");
  subscribe (anon, "room");
  herald_test_ws_send_text (b, "{\"type\":\"presence_stats\",\"channel\":\"room\",\"id\":7}");
  r = expect_type (b, "presence_stats");
  g_assert_cmpint (json_object_get_int_member (r, "id"), ==, 7);
  g_assert_cmpstr (herald_test_json_get_string (r, "channel"), ==, "room");
  g_assert_cmpint (json_object_get_int_member (r, "users"), ==, 2);
  g_assert_cmpint (json_object_get_int_member (r, "connections"), ==, 4);
  g_clear_pointer (&r, json_object_unref);

  /* A user's last connection leaving takes the user away */
  herald_test_ws_send_text (a1, "{\"type\":\"unsubscribe\",\"channel\":\"room\"}");
  json_object_unref (expect_type (a1, "unsubscribed"));
  r = http_json (server, "GET", "/api/channels/room/presence-stats", NULL, 200);
  g_assert_cmpint (json_object_get_int_member (r, "users"), ==, 2);
  g_assert_cmpint (json_object_get_int_member (r, "connections"), ==, 3);
  g_clear_pointer (&r, json_object_unref);
  herald_test_client_free (a2);
  herald_test_client_free (anon);
  for (guint i = 0; i < 200; i++)
    {
      r = http_json (server, "GET", "/api/channels/room/presence-stats", NULL, 200);
      if (json_object_get_int_member (r, "connections") == 1)
        break;
      g_clear_pointer (&r, json_object_unref);
      g_usleep (10000);
    }
  g_assert_nonnull (r);
  g_assert_cmpint (json_object_get_int_member (r, "users"), ==, 1);
  g_clear_pointer (&r, json_object_unref);

  /* presence=false: forbidden / 403 for both questions */
  herald_test_ws_send_text (b, "{\"type\":\"presence_stats\",\"channel\":\"quiet:x\"}");
  expect_error (b, "forbidden");
  herald_test_ws_send_text (b, "{\"type\":\"presence\",\"channel\":\"quiet:x\"}");
  expect_error (b, "forbidden");
  json_object_unref (http_json (server, "GET", "/api/channels/quiet:x/presence-stats", NULL, 403));
  json_object_unref (http_json (server, "GET", "/api/channels/quiet:x/presence", NULL, 403));
  /* and an empty channel counts nothing */
  r = http_json (server, "GET", "/api/channels/empty/presence-stats", NULL, 200);
  g_assert_cmpint (json_object_get_int_member (r, "users"), ==, 0);
  g_assert_cmpint (json_object_get_int_member (r, "connections"), ==, 0);

  herald_test_client_free (a1);
  herald_test_client_free (b);
  herald_test_server_stop (server);
}

#define MEMBERS 20000

/* Pages walk 20,000 members exactly once, in order, on WebSocket (1,000 a
 * page, the clamp) and HTTP (limit=777); a cursor of another channel, a
 * forged one and a bad limit are refused. The members are joined through
 * the engine directly (as subscriptions do), to keep the test fast. */
static void
test_presence_pages (void)
{
  HeraldTestServer *server = herald_test_server_start (API "[auth]\njwt-secret=" SECRET "\n", 2);
  HeraldEngine *engine = herald_hub_get_engine (server->hub);
  HeraldTestClient *ws = open_with (server, "{\"sub\":\"watcher\"}", NULL);
  g_autoptr (GHashTable) seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_autofree char *next = NULL;
  g_autofree char *other_cursor = NULL;
  g_autofree char *previous = NULL;
  guint pages = 0;

  for (guint i = 0; i < MEMBERS; i++)
    {
      g_autofree char *user = g_strdup_printf ("user-%05u", (i * 7919) % MEMBERS);
      herald_engine_presence_join (engine, "big", user);
    }
  herald_engine_presence_join (engine, "small", "x");
  herald_engine_presence_join (engine, "small", "y");

  /* WebSocket, limit above the maximum: pages of 1,000 */
  do
    {
      g_autofree char *text
          = next ? g_strdup_printf (
                "{\"type\":\"presence\",\"channel\":\"big\",\"limit\":5000,\"cursor\":\"%s\"}",
                next)
                 : g_strdup ("{\"type\":\"presence\",\"channel\":\"big\",\"limit\":5000}");
      g_autoptr (JsonObject) r = NULL;
      JsonArray *users;
      JsonNode *next_node;

      herald_test_ws_send_text (ws, text);
      r = expect_type (ws, "presence");
      users = json_object_get_array_member (r, "users");
      g_assert_cmpint (json_object_get_int_member (r, "connections"), ==, MEMBERS);
      g_assert_cmpuint (json_array_get_length (users), ==, 1000);
      for (guint i = 0; i < json_array_get_length (users); i++)
        {
          const char *user = json_array_get_string_element (users, i);
          g_assert_true (previous == NULL || strcmp (previous, user) < 0);
          g_free (previous);
          previous = g_strdup (user);
          g_assert_true (g_hash_table_add (seen, g_strdup (user)));
        }
      g_clear_pointer (&next, g_free);
      next_node = json_object_get_member (r, "next");
      g_assert_nonnull (next_node);
      if (!JSON_NODE_HOLDS_NULL (next_node))
        next = g_strdup (json_node_get_string (next_node));
      pages++;
    }
  while (next != NULL);
  g_assert_cmpuint (pages, ==, MEMBERS / 1000);
  g_assert_cmpuint (g_hash_table_size (seen), ==, MEMBERS);

  /* HTTP, limit=777 */
  g_hash_table_remove_all (seen);
  pages = 0;
  do
    {
      g_autofree char *path
          = next ? g_strdup_printf ("/api/channels/big/presence?limit=777&cursor=%s", next)
                 : g_strdup ("/api/channels/big/presence?limit=777");
      g_autoptr (JsonObject) r = http_json (server, "GET", path, NULL, 200);
      JsonArray *users = json_object_get_array_member (r, "users");
      JsonNode *next_node = json_object_get_member (r, "next");

      g_assert_cmpuint (json_array_get_length (users), <=, 777);
      for (guint i = 0; i < json_array_get_length (users); i++)
        g_assert_true (
            g_hash_table_add (seen, g_strdup (json_array_get_string_element (users, i))));
      g_clear_pointer (&next, g_free);
      if (!JSON_NODE_HOLDS_NULL (next_node))
        next = g_strdup (json_node_get_string (next_node));
      pages++;
      if (pages == 1)
        other_cursor = g_strdup (next);
    }
  while (next != NULL);
  g_assert_cmpuint (pages, ==, (MEMBERS + 776) / 777);
  g_assert_cmpuint (g_hash_table_size (seen), ==, MEMBERS);

  /* A cursor "big" gave is not one of "small": bad_request / 400 */
  {
    g_autofree char *text = g_strdup_printf (
        "{\"type\":\"presence\",\"channel\":\"small\",\"cursor\":\"%s\"}", other_cursor);
    g_autofree char *path
        = g_strdup_printf ("/api/channels/small/presence?cursor=%s", other_cursor);

    herald_test_ws_send_text (ws, text);
    expect_error (ws, "bad_request");
    json_object_unref (http_json (server, "GET", path, NULL, 400));
  }
  herald_test_ws_send_text (ws,
                            "{\"type\":\"presence\",\"channel\":\"small\",\"cursor\":\"nope\"}");
  expect_error (ws, "bad_request");
  herald_test_ws_send_text (ws, "{\"type\":\"presence\",\"channel\":\"small\",\"limit\":0}");
  expect_error (ws, "bad_request");
  herald_test_ws_send_text (ws, "{\"type\":\"presence\",\"channel\":\"small\",\"limit\":\"2\"}");
  expect_error (ws, "bad_request");
  json_object_unref (http_json (server, "GET", "/api/channels/small/presence?limit=-1", NULL, 400));
  json_object_unref (http_json (server, "GET", "/api/channels/small/presence?limit=x", NULL, 400));
  /* The small channel in one page, next null; default limit */
  {
    g_autoptr (JsonObject) r = http_json (server, "GET", "/api/channels/small/presence", NULL, 200);
    g_assert_cmpuint (json_array_get_length (json_object_get_array_member (r, "users")), ==, 2);
    g_assert_true (JSON_NODE_HOLDS_NULL (json_object_get_member (r, "next")));
  }
  /* The stats stay constant-time counters: */
  {
    g_autoptr (JsonObject) r
        = http_json (server, "GET", "/api/channels/big/presence-stats", NULL, 200);
    g_assert_cmpint (json_object_get_int_member (r, "users"), ==, MEMBERS);
  }
  for (guint i = 0; i < MEMBERS; i++)
    {
      g_autofree char *user = g_strdup_printf ("user-%05u", i);
      herald_engine_presence_leave (engine, "big", user);
    }
  herald_engine_presence_leave (engine, "small", "x");
  herald_engine_presence_leave (engine, "small", "y");
  herald_test_client_free (ws);
  herald_test_server_stop (server);
}

static void
publish (HeraldTestServer *server, const char *channel, const char *data)
{
  g_autofree char *body = g_strdup_printf ("{\"channel\":\"%s\",\"data\":%s}", channel, data);
  json_object_unref (http_json (server, "POST", "/api/publish", body, 200));
}

static JsonObject *
expect_message (HeraldTestClient *client, const char *channel)
{
  JsonObject *r = expect_type (client, "message");

  g_assert_cmpstr (herald_test_json_get_string (r, "channel"), ==, channel);
  return r;
}

/* ---- the token's subs claim ---- */

/* WebSocket: subscribed at open whatever the channels claim says (and to a
 * user-limited channel of someone else), positions in "connected". */
static void
test_subs_claim_ws (void)
{
  HeraldTestServer *server
      = herald_test_server_start (API "[auth]\njwt-secret=" SECRET "\n" TOKEN_NS, 2);
  g_autoptr (JsonObject) hello = NULL;
  HeraldTestClient *ws;
  JsonObject *subs, *news;
  JsonObject *r;

  publish (server, "news", "1");
  publish (server, "news", "2");
  ws = open_with (server,
                  "{\"sub\":\"alice\",\"channels\":[\"other\"],"
                  "\"subs\":[\"news\",\"tok:feed\",\"dm:x#bob\"]}",
                  &hello);
  subs = json_object_get_object_member (hello, "subs");
  g_assert_nonnull (subs);
  g_assert_cmpuint (json_object_get_size (subs), ==, 3);
  news = json_object_get_object_member (subs, "news");
  g_assert_cmpint (json_object_get_int_member (news, "offset"), ==, 2);
  g_assert_nonnull (herald_test_json_get_string (news, "epoch"));
  g_assert_cmpint (
      json_object_get_int_member (json_object_get_object_member (subs, "tok:feed"), "offset"), ==,
      0);
  publish (server, "news", "3");
  r = expect_message (ws, "news");
  g_assert_cmpint (json_object_get_int_member (r, "offset"), ==, 3);
  json_object_unref (r);
  publish (server, "tok:feed", "4");
  json_object_unref (expect_message (ws, "tok:feed"));
  publish (server, "dm:x#bob", "5");
  json_object_unref (expect_message (ws, "dm:x#bob"));
  /* A refreshed token without subs keeps them (the server's decision) */
  {
    g_autofree char *fresh = token ("{\"sub\":\"alice\",\"channels\":[\"other\"]}");
    g_autofree char *text = g_strdup_printf ("{\"type\":\"refresh\",\"token\":\"%s\"}", fresh);

    herald_test_ws_send_text (ws, text);
    json_object_unref (expect_type (ws, "refreshed"));
    publish (server, "news", "6");
    json_object_unref (expect_message (ws, "news"));
  }
  /* the channels claim still rules what the client asks for itself */
  herald_test_ws_send_text (ws, "{\"type\":\"subscribe\",\"channel\":\"elsewhere\"}");
  expect_error (ws, "forbidden");
  subscribe (ws, "other");
  herald_test_client_free (ws);

  /* Without subs: no "subs" member */
  ws = open_with (server, "{\"sub\":\"bob\"}", &r);
  g_assert_false (json_object_has_member (r, "subs"));
  json_object_unref (r);
  herald_test_client_free (ws);
  herald_test_server_stop (server);
}

static HeraldTestClient *
sse_open (HeraldTestServer *server, const char *query, guint expected, char **connected)
{
  HeraldTestClient *sse = herald_test_client_connect (server);
  g_autofree char *request = g_strdup_printf ("GET /events?%s HTTP/1.1\r\nHost: x\r\n\r\n", query);
  g_autofree char *head = NULL;
  g_autofree char *ev = NULL;

  herald_test_client_send_raw (sse, request, strlen (request));
  if (expected != 200)
    {
      guint status = 0;
      char *body = herald_test_client_read_response (sse, &status, NULL);

      g_assert_cmpuint (status, ==, expected);
      if (connected)
        *connected = body;
      else
        g_free (body);
      herald_test_client_free (sse);
      return NULL;
    }
  g_assert_cmpuint (herald_test_client_read_head (sse, &head), ==, 200);
  ev = herald_test_sse_read_event (sse);
  g_assert_nonnull (strstr (ev, "retry: "));
  g_clear_pointer (&ev, g_free);
  ev = herald_test_sse_read_event (sse);
  g_assert_nonnull (strstr (ev, "event: connected"));
  if (connected)
    *connected = g_steal_pointer (&ev);
  return sse;
}

/* SSE: the subs join the stream's channels; no channel= needed. */
static void
test_subs_claim_sse (void)
{
  HeraldTestServer *server = herald_test_server_start (API "[auth]\njwt-secret=" SECRET "\n", 2);
  g_autofree char *jwt = token ("{\"sub\":\"carol\",\"channels\":[],\"subs\":[\"alerts\"]}");
  g_autofree char *query = g_strdup_printf ("token=%s", jwt);
  g_autofree char *query2 = g_strdup_printf ("token=%s&channel=alerts&channel=x", jwt);
  g_autofree char *connected = NULL;
  g_autofree char *ev = NULL;
  HeraldTestClient *sse;

  publish (server, "alerts", "1");
  sse = sse_open (server, query, 200, &connected);
  g_assert_nonnull (strstr (connected, "\"subs\":{\"alerts\":{\"offset\":1,\"epoch\":\""));
  for (guint i = 0; i < 200; i++)
    {
      g_autoptr (JsonObject) r
          = http_json (server, "GET", "/api/channels/alerts/presence-stats", NULL, 200);
      if (json_object_get_int_member (r, "connections") == 1)
        break;
      g_usleep (10000);
    }
  publish (server, "alerts", "{\"level\":2}");
  ev = herald_test_sse_read_event (sse);
  g_assert_nonnull (strstr (ev, "\"channel\":\"alerts\",\"offset\":2"));
  herald_test_client_free (sse);
  /* channel= beyond the subs still needs the channels claim ([] allows none) */
  g_assert_null (sse_open (server, query2, 403, NULL));
  herald_test_server_stop (server);
}

/* A malformed subs claim: 401 with a clear message, WebSocket and SSE. */
static void
test_subs_claim_malformed (void)
{
  HeraldTestServer *server
      = herald_test_server_start (API "[auth]\njwt-secret=" SECRET "\nanonymous=true\n", 2);
  const char *payloads[] = {
    "{\"sub\":\"a\",\"subs\":\"news\"}",
    "{\"sub\":\"a\",\"subs\":[1]}",
    "{\"sub\":\"a\",\"subs\":[\"bad name\"]}",
    "{\"sub\":\"a\",\"subs\":[\"news*\"]}",
  };

  for (gsize i = 0; i < G_N_ELEMENTS (payloads); i++)
    {
      g_autofree char *jwt = token (payloads[i]);
      g_autofree char *path = g_strdup_printf ("/ws?token=%s", jwt);
      g_autofree char *query = g_strdup_printf ("token=%s&channel=news", jwt);
      g_autofree char *head = NULL;
      g_autofree char *body = NULL;
      HeraldTestClient *client = herald_test_client_connect (server);

      g_assert_cmpuint (herald_test_ws_handshake (client, path, NULL, &head), ==, 401);
      herald_test_client_free (client);
      g_assert_null (sse_open (server, query, 401, &body));
      g_assert_nonnull (strstr (body, "subs"));
    }
  herald_test_assert_serving (server);
  herald_test_server_stop (server);

  /* More subs than [limits] max-subscriptions-per-connection: a WebSocket
   * opens and is closed 1008 with the limit's message; SSE gets 400 */
  server = herald_test_server_start (
      API "[auth]\njwt-secret=" SECRET "\n[limits]\nmax-subscriptions-per-connection=2\n", 2);
  {
    g_autofree char *jwt = token ("{\"sub\":\"a\",\"subs\":[\"x\",\"y\",\"z\"]}");
    g_autofree char *query = g_strdup_printf ("token=%s", jwt);
    HeraldTestClient *ws = open_with (server, "{\"sub\":\"a\",\"subs\":[\"x\",\"y\",\"z\"]}", NULL);

    g_assert_cmpuint (herald_test_ws_wait_close (ws), ==, 1008);
    g_assert_nonnull (strstr (ws->close_reason, "max-subscriptions-per-connection"));
    herald_test_client_free (ws);
    g_assert_null (sse_open (server, query, 400, NULL));
  }
  herald_test_server_stop (server);
}

/* ---- subscriptions by the API ---- */

static void
wait_connections (HeraldTestServer *server, const char *channel, gint64 n)
{
  g_autofree char *path = g_strdup_printf ("/api/channels/%s/presence-stats", channel);

  for (guint i = 0; i < 500; i++)
    {
      g_autoptr (JsonObject) r = http_json (server, "GET", path, NULL, 200);
      if (json_object_get_int_member (r, "connections") == n)
        return;
      g_usleep (10000);
    }
  g_error ("%s never had %" G_GINT64_FORMAT " connections", channel, n);
}

/* POST /api/users/{id}/subscribe|unsubscribe: every connection of the user,
 * WebSocket and SSE, whatever the claims; it outlives a token refresh. */
static void
test_user_subscribe_api (void)
{
  HeraldTestServer *server = herald_test_server_start (API "[auth]\njwt-secret=" SECRET "\n", 2);
  g_autofree char *jwt = token ("{\"sub\":\"alice\",\"channels\":[\"home\"]}");
  g_autofree char *query = g_strdup_printf ("token=%s&channel=home", jwt);
  g_autofree char *refresh = NULL;
  HeraldTestClient *ws = open_with (server, "{\"sub\":\"alice\",\"channels\":[]}", NULL);
  HeraldTestClient *other = open_with (server, "{\"sub\":\"bob\"}", NULL);
  HeraldTestClient *sse = sse_open (server, query, 200, NULL);
  g_autoptr (JsonObject) r = NULL;
  g_autofree char *ev = NULL;

  wait_connections (server, "home", 1);
  r = http_json (server, "POST", "/api/users/alice/subscribe", "{\"channel\":\"vip\"}", 200);
  g_assert_cmpint (json_object_get_int_member (r, "connections"), ==, 2);
  g_clear_pointer (&r, json_object_unref);
  r = expect_type (ws, "subscribed");
  g_assert_cmpstr (herald_test_json_get_string (r, "channel"), ==, "vip");
  g_assert_true (json_object_get_boolean_member (r, "server"));
  g_assert_cmpint (json_object_get_int_member (r, "offset"), ==, 0);
  g_assert_true (json_object_has_member (r, "epoch"));
  g_clear_pointer (&r, json_object_unref);
  ev = herald_test_sse_read_event (sse);
  g_assert_nonnull (strstr (ev, "event: subscribed\n"));
  g_assert_nonnull (strstr (ev, "\"channel\":\"vip\",\"server\":true"));
  g_clear_pointer (&ev, g_free);

  publish (server, "vip", "1");
  json_object_unref (expect_message (ws, "vip"));
  ev = herald_test_sse_read_event (sse);
  g_assert_nonnull (strstr (ev, "\"channel\":\"vip\",\"offset\":1"));
  g_clear_pointer (&ev, g_free);

  /* A refreshed token that allows nothing keeps the server's subscription */
  {
    g_autofree char *nothing = token ("{\"sub\":\"alice\",\"channels\":[]}");
    refresh = g_strdup_printf ("{\"type\":\"refresh\",\"token\":\"%s\"}", nothing);
  }
  herald_test_ws_send_text (ws, refresh);
  json_object_unref (expect_type (ws, "refreshed"));
  publish (server, "vip", "2");
  json_object_unref (expect_message (ws, "vip"));
  ev = herald_test_sse_read_event (sse);
  g_clear_pointer (&ev, g_free);

  r = http_json (server, "POST", "/api/users/alice/unsubscribe", "{\"channel\":\"vip\"}", 200);
  g_assert_cmpint (json_object_get_int_member (r, "connections"), ==, 2);
  g_clear_pointer (&r, json_object_unref);
  r = expect_type (ws, "unsubscribed");
  g_assert_cmpstr (herald_test_json_get_string (r, "channel"), ==, "vip");
  g_assert_true (json_object_get_boolean_member (r, "server"));
  g_clear_pointer (&r, json_object_unref);
  ev = herald_test_sse_read_event (sse);
  g_assert_nonnull (strstr (ev, "event: unsubscribed\n"));
  g_clear_pointer (&ev, g_free);
  /* gone: the next vip message does not come, the home one does */
  publish (server, "vip", "3");
  publish (server, "home", "4");
  ev = herald_test_sse_read_event (sse);
  g_assert_nonnull (strstr (ev, "\"channel\":\"home\""));
  g_clear_pointer (&ev, g_free);

  /* bob was never touched */
  herald_test_ws_send_text (other, "{\"type\":\"ping\"}");
  json_object_unref (expect_type (other, "pong"));

  /* Bad input: a clear 400 each; a user without connections reaches 0 */
  json_object_unref (http_json (server, "POST", "/api/users/alice/subscribe", "{}", 400));
  json_object_unref (
      http_json (server, "POST", "/api/users/alice/subscribe", "{\"channel\":7}", 400));
  json_object_unref (
      http_json (server, "POST", "/api/users/alice/subscribe", "{\"channel\":\"a b\"}", 400));
  json_object_unref (http_json (server, "POST", "/api/users/alice/subscribe", "[1]", 400));
  json_object_unref (http_json (server, "GET", "/api/users/alice/subscribe", NULL, 405));
  r = http_json (server, "POST", "/api/users/nobody/subscribe", "{\"channel\":\"vip\"}", 200);
  g_assert_cmpint (json_object_get_int_member (r, "connections"), ==, 0);
  g_clear_pointer (&r, json_object_unref);

  /* The answer counts the connections as they are: one more, one fewer */
  {
    HeraldTestClient *second = open_with (server, "{\"sub\":\"alice\"}", NULL);

    r = http_json (server, "POST", "/api/users/alice/subscribe", "{\"channel\":\"vip2\"}", 200);
    g_assert_cmpint (json_object_get_int_member (r, "connections"), ==, 3);
    g_clear_pointer (&r, json_object_unref);
    herald_test_client_free (sse);
    sse = NULL;
    for (guint i = 0;; i++)
      {
        g_autoptr (JsonObject) n = http_json (server, "POST", "/api/users/alice/unsubscribe",
                                              "{\"channel\":\"vip2\"}", 200);
        if (json_object_get_int_member (n, "connections") == 2)
          break;
        g_assert_cmpuint (i, <, 500); /* 5 s */
        g_usleep (10000);
      }
    herald_test_client_free (second);
  }

  herald_test_client_free (other);
  herald_test_client_free (ws);
  herald_test_server_stop (server);
}

/* ---- subscription tokens ---- */

static void
token_subscribe (HeraldTestClient *ws, const char *channel, const char *payload,
                 const char *error_code)
{
  g_autofree char *jwt = payload ? token (payload) : NULL;
  g_autofree char *text
      = jwt ? g_strdup_printf ("{\"type\":\"subscribe\",\"channel\":\"%s\",\"token\":\"%s\"}",
                               channel, jwt)
            : g_strdup_printf ("{\"type\":\"subscribe\",\"channel\":\"%s\"}", channel);

  herald_test_ws_send_text (ws, text);
  if (error_code)
    expect_error (ws, error_code);
  else
    json_object_unref (expect_type (ws, "subscribed"));
}

/* subscribe=token: the token decides (sub, channel, exp required); at its
 * end the subscription ends with reason "expired" unless renewed. */
static void
test_subscription_tokens (void)
{
  HeraldTestServer *server
      = herald_test_server_start (API "[auth]\njwt-secret=" SECRET "\nleeway=0\n" TOKEN_NS, 2);
  HeraldTestClient *ws = open_with (server, "{\"sub\":\"alice\"}", NULL);
  gint64 now = g_get_real_time () / G_USEC_PER_SEC;
  g_autofree char *soon = g_strdup_printf (
      "{\"sub\":\"alice\",\"channel\":\"tok:a\",\"exp\":%" G_GINT64_FORMAT "}", now + 2);
  g_autofree char *later = g_strdup_printf (
      "{\"sub\":\"alice\",\"channel\":\"tok:b\",\"exp\":%" G_GINT64_FORMAT "}", now + 2);
  g_autofree char *renewed = g_strdup_printf (
      "{\"sub\":\"alice\",\"channel\":\"tok:b\",\"exp\":%" G_GINT64_FORMAT "}", now + 600);
  g_autofree char *for_bob = g_strdup_printf (
      "{\"sub\":\"bob\",\"channel\":\"tok:a\",\"exp\":%" G_GINT64_FORMAT "}", now + 60);
  g_autofree char *other_channel = g_strdup_printf (
      "{\"sub\":\"alice\",\"channel\":\"tok:z\",\"exp\":%" G_GINT64_FORMAT "}", now + 60);
  g_autofree char *expired = g_strdup_printf (
      "{\"sub\":\"alice\",\"channel\":\"tok:a\",\"exp\":%" G_GINT64_FORMAT "}", now - 5);
  g_autoptr (JsonObject) r = NULL;
  gint64 deadline;

  /* Missing or wrong: forbidden, nothing else disturbed */
  token_subscribe (ws, "tok:a", NULL, "forbidden");
  token_subscribe (ws, "tok:a", for_bob, "forbidden");
  token_subscribe (ws, "tok:a", other_channel, "forbidden");
  token_subscribe (ws, "tok:a", expired, "forbidden");
  token_subscribe (ws, "tok:a", "{\"sub\":\"alice\",\"channel\":\"tok:a\"}", "forbidden");
  herald_test_ws_send_text (
      ws, "{\"type\":\"subscribe\",\"channel\":\"tok:a\",\"token\":\"not.a.jwt\"}");
  expect_error (ws, "forbidden");

  /* Good ones; tok:b renewed by a fresh token */
  token_subscribe (ws, "tok:a", soon, NULL);
  token_subscribe (ws, "tok:b", later, NULL);
  token_subscribe (ws, "tok:b", renewed, NULL);
  publish (server, "tok:a", "1");
  json_object_unref (expect_message (ws, "tok:a"));

  /* tok:a ends (within the token's second and the wheel's tick) */
  deadline = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;
  r = expect_type (ws, "unsubscribed");
  g_assert_cmpint (g_get_monotonic_time (), <, deadline);
  g_assert_cmpstr (herald_test_json_get_string (r, "channel"), ==, "tok:a");
  g_assert_cmpstr (herald_test_json_get_string (r, "reason"), ==, "expired");
  g_clear_pointer (&r, json_object_unref);
  /* tok:a gone, tok:b still there */
  publish (server, "tok:a", "2");
  publish (server, "tok:b", "3");
  r = expect_message (ws, "tok:b");
  g_clear_pointer (&r, json_object_unref);

  herald_test_client_free (ws);
  herald_test_server_stop (server);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/subs/presence-stats", test_presence_stats);
  g_test_add_func ("/subs/presence-pages", test_presence_pages);
  g_test_add_func ("/subs/subs-claim-ws", test_subs_claim_ws);
  g_test_add_func ("/subs/subs-claim-sse", test_subs_claim_sse);
  g_test_add_func ("/subs/subs-claim-malformed", test_subs_claim_malformed);
  g_test_add_func ("/subs/user-subscribe-api", test_user_subscribe_api);
  g_test_add_func ("/subs/subscription-tokens", test_subscription_tokens);
  return g_test_run ();
}
