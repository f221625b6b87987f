/* test-join-leave.c: per-connection join/leave events of join-leave=true
 * namespaces, on one in-process Herald (across nodes: test-redis-join-leave.c).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>

#include "herald-jwt.h"
#include "herald-test-server.h"

#define CONF                                                                                       \
  "[api]\nkey=k\n[auth]\njwt-secret=s3cret\nanonymous=true\nanonymous-channels=*\n"                \
  "[namespace.chat]\njoin-leave=true\n"
#define AUTH "Authorization: Bearer k\r\n"

static JsonObject *
expect_type (HeraldTestClient *client, const char *type)
{
  JsonObject *obj = herald_test_ws_read_json (client);

  g_assert_nonnull (obj);
  g_assert_cmpstr (herald_test_json_get_string (obj, "type"), ==, type);
  return obj;
}

static HeraldTestClient *
open_user (HeraldTestServer *server, const char *user, char **id)
{
  g_autoptr (GBytes) secret = g_bytes_new_static ("s3cret", 6);
  g_autofree char *claims = g_strdup_printf ("{\"sub\":\"%s\"}", user);
  g_autofree char *token = herald_jwt_sign_hs256 (secret, claims);
  g_autofree char *path = g_strdup_printf ("/ws?token=%s", token);

  return herald_test_ws_open (server, path, id);
}

static void
subscribe (HeraldTestClient *client, const char *channel)
{
  g_autofree char *text = g_strdup_printf ("{\"type\":\"subscribe\",\"channel\":\"%s\"}", channel);
  g_autoptr (JsonObject) reply = NULL;

  herald_test_ws_send_text (client, text);
  reply = expect_type (client, "subscribed");
}

static void
expect_event (HeraldTestClient *ws, const char *type, const char *channel, const char *user,
              const char *connection)
{
  g_autoptr (JsonObject) e = expect_type (ws, type);

  g_assert_cmpstr (herald_test_json_get_string (e, "channel"), ==, channel);
  g_assert_cmpstr (herald_test_json_get_string (e, "user_id"), ==, user);
  g_assert_cmpstr (herald_test_json_get_string (e, "connection_id"), ==, connection);
  g_assert_false (json_object_has_member (e, "offset"));
}

/* Publishes a marker on @channel and asserts it is the next frame of each
 * client: nothing else (no event about itself, none outside join-leave
 * namespaces) came before it. */
static void
expect_nothing_but_marker (HeraldTestServer *server, const char *channel,
                           HeraldTestClient **clients, guint n)
{
  g_autofree char *body = g_strdup_printf ("{\"channel\":\"%s\",\"data\":\"marker\"}", channel);
  g_autofree char *answer = NULL;
  guint status = 0;

  answer = herald_test_http (server, "POST", "/api/publish", AUTH, body, &status);
  g_assert_cmpuint (status, ==, 200);
  for (guint i = 0; i < n; i++)
    {
      g_autoptr (JsonObject) msg = expect_type (clients[i], "message");
      g_assert_cmpstr (herald_test_json_get_string (msg, "data"), ==, "marker");
    }
}

static void
test_one_node (void)
{
  HeraldTestServer *server = herald_test_server_start (CONF, 2);
  g_autofree char *a_id = NULL, *b_id = NULL, *b2_id = NULL, *anon_id = NULL;
  HeraldTestClient *a = open_user (server, "alice", &a_id);
  HeraldTestClient *b = open_user (server, "bob", &b_id);
  HeraldTestClient *b2 = open_user (server, "bob", &b2_id);
  HeraldTestClient *anon = herald_test_ws_open (server, "/ws", &anon_id);

  subscribe (a, "chat:room");
  {
    HeraldTestClient *alone[] = { a };
    expect_nothing_but_marker (server, "chat:room", alone, 1); /* not about itself */
  }
  subscribe (b, "chat:room");
  expect_event (a, "join", "chat:room", "bob", b_id);
  /* A second connection of the same user: one event per connection */
  subscribe (b2, "chat:room");
  expect_event (a, "join", "chat:room", "bob", b2_id);
  expect_event (b, "join", "chat:room", "bob", b2_id);
  {
    HeraldTestClient *all[] = { a, b, b2 };
    expect_nothing_but_marker (server, "chat:room", all, 3);
  }
  /* Anonymous connections are announced with an empty user id */
  subscribe (anon, "chat:room");
  expect_event (a, "join", "chat:room", "", anon_id);
  expect_event (b, "join", "chat:room", "", anon_id);
  expect_event (b2, "join", "chat:room", "", anon_id);

  /* unsubscribe */
  herald_test_ws_send_text (b, "{\"type\":\"unsubscribe\",\"channel\":\"chat:room\"}");
  json_object_unref (expect_type (b, "unsubscribed"));
  expect_event (a, "leave", "chat:room", "bob", b_id);
  expect_event (b2, "leave", "chat:room", "bob", b_id);
  expect_event (anon, "leave", "chat:room", "bob", b_id);
  /* close */
  herald_test_client_free (b2);
  expect_event (a, "leave", "chat:room", "bob", b2_id);
  expect_event (anon, "leave", "chat:room", "bob", b2_id);
  {
    HeraldTestClient *left[] = { a, anon };
    expect_nothing_but_marker (server, "chat:room", left, 2);
  }

  /* Outside join-leave namespaces: no events */
  subscribe (a, "room");
  subscribe (b, "room");
  herald_test_ws_send_text (b, "{\"type\":\"unsubscribe\",\"channel\":\"room\"}");
  json_object_unref (expect_type (b, "unsubscribed"));
  {
    HeraldTestClient *one[] = { a };
    expect_nothing_but_marker (server, "room", one, 1);
  }

  herald_test_client_free (anon);
  herald_test_client_free (b);
  herald_test_client_free (a);
  herald_test_server_stop (server);
}

/* SSE streams get event: join / leave too, and their own connection is
 * announced to the others. */
static void
test_sse (void)
{
  HeraldTestServer *server = herald_test_server_start (CONF, 2);
  g_autofree char *a_id = NULL, *b_id = NULL;
  HeraldTestClient *a = open_user (server, "alice", &a_id);
  HeraldTestClient *sse = herald_test_client_connect (server);
  const char *req = "GET /events?channel=chat:room HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
  g_autofree char *head = NULL;
  g_autofree char *sse_id = NULL;
  HeraldTestClient *b;

  subscribe (a, "chat:room");
  herald_test_client_send_raw (sse, req, strlen (req));
  g_assert_cmpuint (herald_test_client_read_head (sse, &head), ==, 200);
  for (;;)
    {
      g_autofree char *event = herald_test_sse_read_event (sse);
      const char *at;

      g_assert_nonnull (event);
      if (!strstr (event, "event: connected"))
        continue;
      at = strstr (event, "\"connection_id\":\"");
      g_assert_nonnull (at);
      at += strlen ("\"connection_id\":\"");
      sse_id = g_strndup (at, strchr (at, '"') - at);
      break;
    }
  expect_event (a, "join", "chat:room", "", sse_id);

  b = open_user (server, "bob", &b_id);
  subscribe (b, "chat:room");
  expect_event (a, "join", "chat:room", "bob", b_id);
  {
    g_autofree char *event = herald_test_sse_read_event (sse);
    g_autofree char *expected = g_strdup_printf (
        "event: join\ndata: {\"type\":\"join\",\"channel\":\"chat:room\",\"user_id\":\"bob\","
        "\"connection_id\":\"%s\"}\n\n",
        b_id);
    g_assert_cmpstr (event, ==, expected);
  }
  herald_test_client_free (b);
  expect_event (a, "leave", "chat:room", "bob", b_id);
  {
    g_autofree char *event = herald_test_sse_read_event (sse);
    g_assert_nonnull (strstr (event, "event: leave\n"));
  }
  herald_test_client_free (sse);
  expect_event (a, "leave", "chat:room", "", sse_id);
  herald_test_client_free (a);
  herald_test_server_stop (server);
}

/* GET /api/namespaces (the admin page's list): the default namespace
 * first, then the configured ones, with their rules. */
static void
test_api_namespaces (void)
{
  HeraldTestServer *server
      = herald_test_server_start (CONF "[namespace.ticker]\nconflate=true\npublish=none\n", 2);
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autofree char *body = NULL;
  JsonArray *list;
  JsonObject *ns;
  guint status = 0;

  body = herald_test_http (server, "GET", "/api/namespaces", NULL, NULL, &status);
  g_assert_cmpuint (status, ==, 401);
  g_free (body);
  body = herald_test_http (server, "GET", "/api/namespaces", AUTH, NULL, &status);
  g_assert_cmpuint (status, ==, 200);
  g_assert_true (json_parser_load_from_data (parser, body, -1, NULL));
  list = json_object_get_array_member (json_node_get_object (json_parser_get_root (parser)),
                                       "namespaces");
  g_assert_cmpuint (json_array_get_length (list), ==, 3);
  ns = json_array_get_object_element (list, 0);
  g_assert_cmpstr (json_object_get_string_member (ns, "name"), ==, "default");
  g_assert_cmpint (json_object_get_int_member (ns, "history_size"), ==, 100);
  g_assert_false (json_object_get_boolean_member (ns, "join_leave"));
  ns = json_array_get_object_element (list, 1);
  g_assert_cmpstr (json_object_get_string_member (ns, "name"), ==, "chat");
  g_assert_true (json_object_get_boolean_member (ns, "join_leave"));
  g_assert_false (json_object_get_boolean_member (ns, "conflate"));
  ns = json_array_get_object_element (list, 2);
  g_assert_cmpstr (json_object_get_string_member (ns, "name"), ==, "ticker");
  g_assert_true (json_object_get_boolean_member (ns, "conflate"));
  g_assert_cmpstr (json_object_get_string_member (ns, "publish"), ==, "none");
  g_assert_cmpstr (json_object_get_string_member (ns, "subscribe"), ==, "claims");
  g_assert_true (json_object_get_boolean_member (ns, "presence"));
  herald_test_server_stop (server);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/join-leave/one-node", test_one_node);
  g_test_add_func ("/join-leave/sse", test_sse);
  g_test_add_func ("/join-leave/api-namespaces", test_api_namespaces);
  return g_test_run ();
}
