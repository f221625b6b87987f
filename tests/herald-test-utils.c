/* herald-test-utils.c: helpers shared by Herald's tests.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>

#include "herald-test-timeout.h"
#include "herald-test-utils.h"

#define HERALD_TEST_HTTP_TIMEOUT_MS 10000

struct _HeraldTestDeadline
{
  GSource *source;
  gboolean expired;
};

static gboolean
deadline_expired_cb (gpointer user_data)
{
  HeraldTestDeadline *deadline = user_data;

  deadline->expired = TRUE;
  return G_SOURCE_REMOVE;
}

/**
 * herald_test_deadline_new:
 * @timeout_ms: how long until the deadline
 *
 * A timer in the thread-default main context; iterating that context blocks
 * no longer than until it fires.
 *
 * Returns: (transfer full): the deadline, for herald_test_deadline_free()
 */
HeraldTestDeadline *
herald_test_deadline_new (guint timeout_ms)
{
  HeraldTestDeadline *deadline = g_new0 (HeraldTestDeadline, 1);
  g_autoptr (GMainContext) context = g_main_context_ref_thread_default ();

  deadline->source = g_timeout_source_new (timeout_ms * herald_test_timeout_scale ());
  g_source_set_callback (deadline->source, deadline_expired_cb, deadline, NULL);
  g_source_attach (deadline->source, context);
  return deadline;
}

/**
 * herald_test_deadline_expired:
 * @deadline: a deadline
 *
 * Returns: %TRUE once the deadline has passed
 */
gboolean
herald_test_deadline_expired (HeraldTestDeadline *deadline)
{
  return deadline->expired;
}

/**
 * herald_test_deadline_free:
 * @deadline: a deadline
 *
 * Removes the timer and frees @deadline.
 */
void
herald_test_deadline_free (HeraldTestDeadline *deadline)
{
  g_source_destroy (deadline->source);
  g_source_unref (deadline->source);
  g_free (deadline);
}

/**
 * herald_test_server_new:
 * @base_uri: (out): the server's base URI
 *
 * Returns: (transfer full): a server listening on 127.0.0.1 on a free port
 */
SoupServer *
herald_test_server_new (GUri **base_uri)
{
  g_autoptr (SoupServer) server = soup_server_new (NULL, NULL);
  g_autoptr (GError) error = NULL;
  g_autoptr (GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr (GSocketAddress) address = g_inet_socket_address_new (loopback, 0);
  g_autoptr (GSocketAddress) local = NULL;
  GSList *listeners;

  soup_server_listen (server, address, 0, &error);
  g_assert_no_error (error);

  /* Not soup_server_get_uris(): it leaks an address in libsoup 3.2. */
  listeners = soup_server_get_listeners (server);
  g_assert_nonnull (listeners);
  local = g_socket_get_local_address (listeners->data, &error);
  g_assert_no_error (error);
  g_slist_free (listeners);
  *base_uri = g_uri_build (G_URI_FLAGS_NONE, "http", NULL, "127.0.0.1",
                           g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (local)), "/",
                           NULL, NULL);
  return g_steal_pointer (&server);
}

/**
 * herald_test_url:
 * @base_uri: a server's base URI
 * @path: an absolute path, already percent-encoded where needed
 *
 * Returns: (transfer full): the URL of @path on that server
 */
char *
herald_test_url (GUri *base_uri, const char *path)
{
  return g_strdup_printf ("http://%s:%d%s", g_uri_get_host (base_uri), g_uri_get_port (base_uri),
                          path);
}

typedef struct
{
  GBytes *body;
  GError *error;
  gboolean done;
} SendState;

static void
send_done_cb (GObject *source, GAsyncResult *result, gpointer user_data)
{
  SendState *state = user_data;

  state->body = soup_session_send_and_read_finish (SOUP_SESSION (source), result, &state->error);
  state->done = TRUE;
}

/**
 * herald_test_http_send:
 * @session: the client session
 * @msg: the request
 * @status: (out) (optional): the response status
 *
 * Sends @msg and iterates the thread-default main context until the whole
 * response is in (at most 10 s), so a server in the same context can answer.
 *
 * Returns: (transfer full): the response body, NUL-terminated
 */
char *
herald_test_http_send (SoupSession *session, SoupMessage *msg, guint *status)
{
  SendState state = { 0 };
  gsize length = 0;
  const char *data;
  char *text;

  soup_session_send_and_read_async (session, msg, G_PRIORITY_DEFAULT, NULL, send_done_cb, &state);
  HERALD_TEST_WAIT_UNTIL (state.done, HERALD_TEST_HTTP_TIMEOUT_MS);
  g_assert_no_error (state.error);

  data = g_bytes_get_data (state.body, &length);
  text = g_malloc (length + 1);
  if (length > 0)
    memcpy (text, data, length);
  text[length] = '\0';
  g_bytes_unref (state.body);

  if (status != NULL)
    *status = soup_message_get_status (msg);
  return text;
}

/**
 * herald_test_http_request:
 * @session: the client session
 * @method: the HTTP method
 * @url: the URL
 * @headers: (nullable): name, value, …, %NULL
 * @body: (nullable): a request body, sent as application/json
 * @status: (out) (optional): the response status
 * @response_headers: (out) (optional): the response headers
 *
 * Returns: (transfer full): the response body, NUL-terminated
 */
char *
herald_test_http_request (SoupSession *session, const char *method, const char *url,
                          const char *const *headers, const char *body, guint *status,
                          SoupMessageHeaders **response_headers)
{
  g_autoptr (SoupMessage) msg = soup_message_new (method, url);
  SoupMessageHeaders *request_headers;
  char *text;

  g_assert_nonnull (msg);
  request_headers = soup_message_get_request_headers (msg);
  for (guint i = 0; headers != NULL && headers[i] != NULL; i += 2)
    {
      g_assert_nonnull (headers[i + 1]);
      soup_message_headers_append (request_headers, headers[i], headers[i + 1]);
    }
  if (body != NULL)
    {
      g_autoptr (GBytes) bytes = g_bytes_new (body, strlen (body));

      soup_message_set_request_body_from_bytes (msg, "application/json", bytes);
    }

  text = herald_test_http_send (session, msg, status);
  if (response_headers != NULL)
    *response_headers = soup_message_headers_ref (soup_message_get_response_headers (msg));
  return text;
}
