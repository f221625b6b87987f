/* test-client-interop.c: Herald against libsoup's own WebSocket client — a
 * well-behaved third-party implementation — with and without
 * permessage-deflate, and graceful close.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>

#include "herald-test-server.h"
#include "herald-test-utils.h"

typedef struct
{
  SoupWebsocketConnection *ws;
  GError *error;
  GQueue messages; /* of char* */
  gboolean closed;
} Client;

static void
on_message (SoupWebsocketConnection *ws, gint type, GBytes *message, gpointer user_data)
{
  Client *c = user_data;
  gsize len;
  const char *data = g_bytes_get_data (message, &len);

  if (strstr (data, "\"type\":\"ping\""))
    return;
  g_queue_push_tail (&c->messages, g_strndup (data, len));
}

static void
on_closed (SoupWebsocketConnection *ws, gpointer user_data)
{
  ((Client *) user_data)->closed = TRUE;
}

static void
on_connected (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Client *c = user_data;

  c->ws = soup_session_websocket_connect_finish (SOUP_SESSION (source), result, &c->error);
  if (c->ws)
    {
      g_signal_connect (c->ws, "message", G_CALLBACK (on_message), c);
      g_signal_connect (c->ws, "closed", G_CALLBACK (on_closed), c);
    }
}

static Client *
client_connect (SoupSession *session, HeraldTestServer *server, gboolean deflate)
{
  Client *c = g_new0 (Client, 1);
  g_autofree char *url = g_strdup_printf ("ws://127.0.0.1:%u/ws", server->port);
  g_autoptr (SoupMessage) msg = soup_message_new ("GET", url);

  if (!deflate)
    soup_session_remove_feature_by_type (session, SOUP_TYPE_WEBSOCKET_EXTENSION_MANAGER);
  else if (!soup_session_has_feature (session, SOUP_TYPE_WEBSOCKET_EXTENSION_MANAGER))
    soup_session_add_feature_by_type (session, SOUP_TYPE_WEBSOCKET_EXTENSION_MANAGER);
  soup_session_websocket_connect_async (session, msg, NULL, NULL, G_PRIORITY_DEFAULT, NULL, on_connected, c);
  HERALD_TEST_WAIT_UNTIL (c->ws != NULL || c->error != NULL, 5000);
  g_assert_no_error (c->error);
  return c;
}

static void
client_free (Client *c)
{
  g_queue_clear_full (&c->messages, g_free);
  g_clear_object (&c->ws);
  g_free (c);
}

static char *
next_message (Client *c)
{
  HERALD_TEST_WAIT_UNTIL (!g_queue_is_empty (&c->messages) || c->closed, 5000);
  g_assert_false (g_queue_is_empty (&c->messages));
  return g_queue_pop_head (&c->messages);
}

static gboolean
has_deflate (SoupWebsocketConnection *ws)
{
  return soup_websocket_connection_get_extensions (ws) != NULL;
}

static void
run_roundtrip (gboolean deflate)
{
  HeraldTestServer *server = herald_test_server_start ("[api]\nkey=k\n", 2);
  g_autoptr (SoupSession) session = soup_session_new ();
  Client *c = client_connect (session, server, deflate);
  g_autofree char *hello = next_message (c);
  g_autofree char *sub = NULL;
  g_autofree char *big = g_strnfill (5000, 'z');
  g_autofree char *body = g_strdup_printf ("{\"channel\":\"news\",\"data\":{\"text\":\"%s\"}}", big);
  g_autofree char *answer = NULL;
  guint status;

  g_assert_cmpint (has_deflate (c->ws), ==, deflate);
  g_assert_nonnull (strstr (hello, "\"connected\""));

  soup_websocket_connection_send_text (c->ws, "{\"type\":\"subscribe\",\"channel\":\"news\",\"id\":1}");
  sub = next_message (c);
  g_assert_nonnull (strstr (sub, "\"subscribed\""));

  answer = herald_test_http (server, "POST", "/api/publish", "Authorization: Bearer k\r\n", body, &status);
  g_assert_cmpuint (status, ==, 200);
  for (int i = 0; i < 3; i++)
    {
      g_autofree char *m = next_message (c);
      g_assert_nonnull (strstr (m, big));
      g_assert_nonnull (strstr (m, "\"channel\":\"news\""));
      if (i < 2)
        {
          g_free (answer);
          answer = herald_test_http (server, "POST", "/api/publish", "Authorization: Bearer k\r\n", body, &status);
        }
    }

  /* A compressed client message of some size goes through the inflater. */
  {
    g_autofree char *ping = g_strdup_printf ("{\"type\":\"ping\",\"id\":\"%s\"}", big);
    g_autofree char *pong = NULL;
    soup_websocket_connection_send_text (c->ws, ping);
    pong = next_message (c);
    g_assert_nonnull (strstr (pong, "\"pong\""));
  }

  soup_websocket_connection_close (c->ws, 1000, "bye");
  HERALD_TEST_WAIT_UNTIL (c->closed, 5000);
  g_assert_cmpint (soup_websocket_connection_get_close_code (c->ws), ==, 1000);
  client_free (c);
  herald_test_server_stop (server);
}

static void
test_plain (void)
{
  run_roundtrip (FALSE);
}

static void
test_deflate (void)
{
  run_roundtrip (TRUE);
}

static void
test_server_close_code (void)
{
  HeraldTestServer *server = herald_test_server_start ("[api]\nkey=k\n", 1);
  g_autoptr (SoupSession) session = soup_session_new ();
  Client *c = client_connect (session, server, TRUE);
  g_autofree char *hello = next_message (c);
  g_autofree char *path = NULL;
  g_autofree char *answer = NULL;
  const char *id = strstr (hello, "\"connection_id\":\"") + 17;
  g_autofree char *conn_id = g_strndup (id, strchr (id, '"') - id);
  guint status;

  path = g_strdup_printf ("/api/connections/%s", conn_id);
  answer = herald_test_http (server, "DELETE", path, "Authorization: Bearer k\r\n", NULL, &status);
  g_assert_cmpuint (status, ==, 200);
  HERALD_TEST_WAIT_UNTIL (c->closed, 5000);
  g_assert_cmpint (soup_websocket_connection_get_close_code (c->ws), ==, 4004);
  client_free (c);
  herald_test_server_stop (server);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/interop/libsoup/plain", test_plain);
  g_test_add_func ("/interop/libsoup/deflate", test_deflate);
  g_test_add_func ("/interop/libsoup/server-close", test_server_close_code);
  return g_test_run ();
}
