/* test-sdk.c: heraldd serves the client SDK (clients/js/herald.js) at
 * /herald.js, as text/javascript, with the CORS rules of /events (issue 18).
 * A real Herald, raw sockets.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>

#include "herald-test-server.h"

/* GET (or @method) /herald.js with @headers; returns the body, the head in @head. */
static char *
get_sdk (HeraldTestServer *server, const char *method, const char *headers, guint *status,
         char **head)
{
  HeraldTestClient *client = herald_test_client_connect (server);
  g_autofree char *request
      = g_strdup_printf ("%s /herald.js HTTP/1.1\r\nHost: 127.0.0.1\r\n%sConnection: close\r\n\r\n",
                         method, headers ? headers : "");
  char *body;

  herald_test_client_send_raw (client, request, strlen (request));
  body = herald_test_client_read_response (client, status, head);
  herald_test_client_free (client);
  g_assert_nonnull (body);
  return body;
}

static gboolean
head_has (const char *head, const char *line)
{
  g_autofree char *lower_head = g_ascii_strdown (head, -1);
  g_autofree char *lower_line = g_ascii_strdown (line, -1);
  return strstr (lower_head, lower_line) != NULL;
}

static void
test_any_origin (void)
{
  HeraldTestServer *server = herald_test_server_start (NULL, 1);
  g_autofree char *path
      = g_test_build_filename (G_TEST_DIST, "..", "clients", "js", "herald.js", NULL);
  g_autofree char *source = NULL;
  g_autofree char *body = NULL;
  g_autofree char *head = NULL;
  g_autoptr (GError) error = NULL;
  guint status = 0;

  g_assert_true (g_file_get_contents (path, &source, NULL, &error));
  g_assert_no_error (error);
  body = get_sdk (server, "GET", "Origin: https://app.example\r\n", &status, &head);
  g_assert_cmpuint (status, ==, 200);
  g_assert_true (head_has (head, "\r\nContent-Type: text/javascript"));
  g_assert_true (head_has (head, "\r\nAccess-Control-Allow-Origin: *\r\n"));
  g_assert_cmpstr (body, ==, source);
  g_assert_nonnull (strstr (body, "export class Herald"));
  herald_test_server_stop (server);
}

static void
test_allowed_origins (void)
{
  HeraldTestServer *server
      = herald_test_server_start ("[server]\nallowed-origins=https://app.example\n", 1);
  guint status = 0;
  char *head = NULL;
  char *body;

  body = get_sdk (server, "GET", "Origin: https://app.example\r\n", &status, &head);
  g_assert_cmpuint (status, ==, 200);
  g_assert_true (head_has (head, "\r\nAccess-Control-Allow-Origin: https://app.example\r\n"));
  g_assert_true (head_has (head, "\r\nAccess-Control-Allow-Credentials: true\r\n"));
  g_assert_true (head_has (head, "\r\nVary: Origin\r\n"));
  g_free (body);
  g_free (head);

  /* Another origin: refused, as /events refuses it. */
  body = get_sdk (server, "GET", "Origin: https://evil.example\r\n", &status, &head);
  g_assert_cmpuint (status, ==, 403);
  g_assert_false (head_has (head, "Access-Control-Allow-Origin"));
  g_assert_null (strstr (body, "export class Herald"));
  g_free (body);
  g_free (head);

  /* No Origin (a same-origin <script type=module>, curl): served. */
  body = get_sdk (server, "GET", NULL, &status, &head);
  g_assert_cmpuint (status, ==, 200);
  g_free (body);
  g_free (head);

  /* The preflight. */
  body = get_sdk (server, "OPTIONS",
                  "Origin: https://app.example\r\n"
                  "Access-Control-Request-Method: GET\r\n",
                  &status, &head);
  g_assert_cmpuint (status, ==, 204);
  g_assert_true (head_has (head, "\r\nAccess-Control-Allow-Methods: GET, OPTIONS\r\n"));
  g_assert_true (head_has (head, "\r\nAccess-Control-Allow-Origin: https://app.example\r\n"));
  g_free (body);
  g_free (head);

  /* Other methods are still refused. */
  body = get_sdk (server, "DELETE", "Origin: https://app.example\r\n", &status, &head);
  g_assert_cmpuint (status, ==, 405);
  g_free (body);
  g_free (head);
  herald_test_server_stop (server);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/sdk/any-origin", test_any_origin);
  g_test_add_func ("/sdk/allowed-origins", test_allowed_origins);
  return g_test_run ();
}
