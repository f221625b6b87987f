/* test-conflate.c: the publish "key", conflation of a slow reader's queue
 * (conflate=true namespaces) and per-connection join/leave events
 * (join-leave=true namespaces), on one in-process Herald.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>
#include <sys/socket.h>

#include "herald-test-server.h"

#define API "[api]\nkey=k\n[auth]\nanonymous-publish=*\n"
#define AUTH "Authorization: Bearer k\r\n"

static JsonObject *
expect_type (HeraldTestClient *client, const char *type)
{
  JsonObject *obj = herald_test_ws_read_json (client);

  g_assert_nonnull (obj);
  if (g_strcmp0 (herald_test_json_get_string (obj, "type"), type) != 0)
    g_test_message ("got %s: %s", herald_test_json_get_string (obj, "type"),
                    herald_test_json_get_string (obj, "message"));
  g_assert_cmpstr (herald_test_json_get_string (obj, "type"), ==, type);
  return obj;
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

static char *
api_publish (HeraldTestServer *server, const char *body, guint *status)
{
  return herald_test_http (server, "POST", "/api/publish", AUTH, body, status);
}

/* The same through libsoup (a chunked body is libsoup's to read). */
static char *
api_publish_chunked (HeraldTestServer *server, const char *body, guint *status)
{
  HeraldTestClient *client = herald_test_client_connect (server);
  g_autofree char *request
      = g_strdup_printf ("POST /api/publish HTTP/1.1\r\nHost: 127.0.0.1\r\n" AUTH
                         "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
                         "Connection: close\r\n\r\n%zx\r\n%s\r\n0\r\n\r\n",
                         strlen (body), body);
  char *answer;

  herald_test_client_send_raw (client, request, strlen (request));
  answer = herald_test_client_read_response (client, status, NULL);
  herald_test_client_free (client);
  return answer;
}

/* Every publishing path carries the key into the delivered frame (the
 * scanned fast path, the general path for an escaped key, WebSocket); a
 * channel outside conflate namespaces is not conflated by it. */
static void
test_key_carried (void)
{
  HeraldTestServer *server = herald_test_server_start (API, 2);
  g_autoptr (JsonObject) hello = NULL;
  HeraldTestClient *sub = herald_test_ws_open (server, "/ws", NULL);
  HeraldTestClient *pub = herald_test_ws_open (server, "/ws", NULL);
  const char *bodies[] = {
    "{\"channel\":\"news\",\"key\":\"EURUSD\",\"data\":1}",
    "{\"channel\":\"news\",\"key\":\"a\\nb\",\"data\":2}",
    "{\"channel\":\"news\",\"data\":3}",
  };
  const char *keys[] = { "EURUSD", "a\nb", NULL };
  guint status = 0;

  subscribe (sub, "news");
  for (guint i = 0; i < G_N_ELEMENTS (bodies); i++)
    {
      for (guint chunked = 0; chunked < 2; chunked++)
        {
          g_autofree char *answer = chunked ? api_publish_chunked (server, bodies[i], &status)
                                            : api_publish (server, bodies[i], &status);
          g_autoptr (JsonObject) msg = NULL;

          g_assert_cmpuint (status, ==, 200);
          msg = expect_type (sub, "message");
          g_assert_cmpint (json_object_get_int_member (msg, "data"), ==, i + 1);
          if (keys[i])
            g_assert_cmpstr (herald_test_json_get_string (msg, "key"), ==, keys[i]);
          else
            g_assert_false (json_object_has_member (msg, "key"));
          g_assert_false (json_object_has_member (msg, "conflated"));
        }
    }

  herald_test_ws_send_text (
      pub, "{\"type\":\"message\",\"id\":1,\"channel\":\"news\",\"key\":\"GBP\",\"data\":4}");
  g_clear_pointer (&hello, json_object_unref);
  hello = expect_type (pub, "published");
  {
    g_autoptr (JsonObject) msg = expect_type (sub, "message");
    g_assert_cmpstr (herald_test_json_get_string (msg, "key"), ==, "GBP");
    g_assert_cmpint (json_object_get_int_member (msg, "offset"), ==, 7);
  }
  herald_test_client_free (pub);
  herald_test_client_free (sub);
  herald_test_server_stop (server);
}

/* A key that is not a string (or too long): 400 on HTTP, bad_request on
 * WebSocket, nothing published, the server undisturbed. */
static void
test_key_bad (void)
{
  HeraldTestServer *server = herald_test_server_start (API, 2);
  HeraldTestClient *sub = herald_test_ws_open (server, "/ws", NULL);
  g_autofree char *long_key = g_strnfill (256, 'k');
  g_autofree char *too_long
      = g_strdup_printf ("{\"channel\":\"news\",\"key\":\"%s\",\"data\":1}", long_key);
  const char *bad[] = {
    "{\"channel\":\"news\",\"key\":5,\"data\":1}",
    "{\"channel\":\"news\",\"key\":null,\"data\":1}",
    "{\"channel\":\"news\",\"key\":{\"a\":1},\"data\":1}",
    "{\"channel\":\"news\",\"key\":[\"a\"],\"data\":1}",
    "{\"channel\":\"news\",\"key\":true,\"data\":1}",
    too_long,
  };
  const char *ws_bad[] = { "5", "null", "{}", "[]", "false" };
  guint status = 0;

  subscribe (sub, "news");
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autofree char *answer = api_publish (server, bad[i], &status);
      guint status2 = 0;
      g_autofree char *answer2 = api_publish_chunked (server, bad[i], &status2);

      g_assert_cmpuint (status, ==, 400);
      g_assert_cmpuint (status2, ==, 400);
      g_assert_nonnull (strstr (answer, "key"));
      g_assert_nonnull (strstr (answer2, "key"));
    }
  for (guint i = 0; i < G_N_ELEMENTS (ws_bad); i++)
    {
      g_autofree char *frame = g_strdup_printf (
          "{\"type\":\"message\",\"id\":7,\"channel\":\"news\",\"key\":%s,\"data\":1}", ws_bad[i]);
      g_autoptr (JsonObject) reply = NULL;

      herald_test_ws_send_text (sub, frame);
      reply = expect_type (sub, "error");
      g_assert_cmpstr (herald_test_json_get_string (reply, "code"), ==, "bad_request");
      g_assert_nonnull (strstr (herald_test_json_get_string (reply, "message"), "key"));
    }
  /* Nothing of that was published: the next message has offset 1. */
  {
    g_autofree char *answer
        = api_publish (server, "{\"channel\":\"news\",\"key\":\"k\",\"data\":9}", &status);
    g_autoptr (JsonObject) msg = NULL;

    g_assert_cmpuint (status, ==, 200);
    msg = expect_type (sub, "message");
    g_assert_cmpint (json_object_get_int_member (msg, "offset"), ==, 1);
  }
  herald_test_assert_serving (server);
  herald_test_client_free (sub);
  herald_test_server_stop (server);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/conflate/key/carried", test_key_carried);
  g_test_add_func ("/conflate/key/bad", test_key_bad);
  return g_test_run ();
}
