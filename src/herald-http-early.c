/* herald-http-early.c: answering requests libsoup reads from their head.
 *
 * See herald-http-early.h. A refused request's body would otherwise be
 * read (and, outside the API's own collector, kept in memory) before the
 * refusal goes out: thousands of unauthenticated clients each sending a
 * body cost the server memory and bandwidth. The response written here is
 * the one the early handlers built (status, headers, body), with
 * Connection: close.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>
#include <sys/socket.h>


#include "herald-http-early.h"
#include "herald-json.h"
#include "herald-security.h"

#define DISCARD_SIZE 2048

/* A refused connection: the response being written, then input discarded. */
typedef struct
{
  GIOStream *stream;
  GCancellable *cancellable;
  GSource *deadline;
  GBytes *response;
  guint8 buf[DISCARD_SIZE];
} Refusal;

static void
refusal_free (Refusal *r)
{
  if (r->deadline)
    {
      g_source_destroy (r->deadline);
      g_source_unref (r->deadline);
    }
  g_clear_object (&r->cancellable);
  g_clear_pointer (&r->response, g_bytes_unref);
  g_clear_object (&r->stream);
  g_free (r);
}

static void
closed_cb (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_io_stream_close_finish (G_IO_STREAM (source), result, NULL);
  refusal_free (user_data);
}

static void
refusal_finish (Refusal *r)
{
  if (r->deadline)
    {
      g_source_destroy (r->deadline);
      g_clear_pointer (&r->deadline, g_source_unref);
    }
  g_io_stream_close_async (r->stream, G_PRIORITY_DEFAULT, NULL, closed_cb, r);
}

static gboolean
deadline_cb (gpointer user_data)
{
  Refusal *r = user_data;

  g_cancellable_cancel (r->cancellable); /* the pending read ends, then the stream closes */
  return G_SOURCE_REMOVE;
}

static void
discard_cb (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Refusal *r = user_data;
  gssize n = g_input_stream_read_finish (G_INPUT_STREAM (source), result, NULL);

  if (n <= 0)
    {
      refusal_finish (r);
      return;
    }
  g_input_stream_read_async (G_INPUT_STREAM (source), r->buf, sizeof r->buf, G_PRIORITY_DEFAULT,
                             r->cancellable, discard_cb, r);
}

/* The fd of the socket under libsoup's stolen stream (herald-front.c sets it). */
static int
stream_fd (GIOStream *stolen, gboolean *tls)
{
  g_autoptr (GIOStream) base = NULL;

  if (g_object_class_find_property (G_OBJECT_GET_CLASS (stolen), "base-iostream"))
    g_object_get (stolen, "base-iostream", &base, NULL);
  if (base == NULL)
    base = g_object_ref (stolen);
  *tls = G_IS_TLS_CONNECTION (base);
  return GPOINTER_TO_INT (g_object_get_data (G_OBJECT (base), "herald-fd"));
}

static void
wrote_cb (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Refusal *r = user_data;
  gboolean tls = FALSE;
  int fd;

  if (!g_output_stream_write_all_finish (G_OUTPUT_STREAM (source), result, NULL, NULL))
    {
      refusal_finish (r);
      return;
    }
  /* Closing with unread input would reset the connection and could destroy
   * the response on its way: end the write side (plain TCP: the client sees
   * EOF after the response), then read until the client closes. */
  fd = stream_fd (r->stream, &tls);
  if (!tls && fd > 0)
    shutdown (fd, SHUT_WR);
  g_input_stream_read_async (g_io_stream_get_input_stream (r->stream), r->buf, sizeof r->buf,
                             G_PRIORITY_DEFAULT, r->cancellable, discard_cb, r);
}

static GBytes *
serialize_response (SoupServerMessage *msg)
{
  SoupMessageHeaders *headers = soup_server_message_get_response_headers (msg);
  g_autoptr (GBytes) body = soup_message_body_flatten (soup_server_message_get_response_body (msg));
  GString *out = g_string_sized_new (256 + g_bytes_get_size (body));
  guint status = soup_server_message_get_status (msg);
  const char *reason = soup_server_message_get_reason_phrase (msg);
  SoupMessageHeadersIter iter;
  const char *name, *value;

  soup_message_headers_replace (headers, "Connection", "close");
  soup_message_headers_set_content_length (headers, g_bytes_get_size (body));
  g_string_append_printf (out, "HTTP/1.%c %u %s\r\n",
                          soup_server_message_get_http_version (msg) == SOUP_HTTP_1_0 ? '0' : '1',
                          status, reason ? reason : soup_status_get_phrase (status));
  soup_message_headers_iter_init (&iter, headers);
  while (soup_message_headers_iter_next (&iter, &name, &value))
    g_string_append_printf (out, "%s: %s\r\n", name, value);
  g_string_append (out, "\r\n");
  g_string_append_len (out, g_bytes_get_data (body, NULL), g_bytes_get_size (body));
  return g_string_free_to_bytes (out);
}

/* Writes @msg's response now, takes the connection from libsoup and closes
 * it once the client is done (or the handshake deadline passes). */
typedef struct
{
  SoupServer *server; /* unowned: owns this */
  HeraldConfig *config;
} Watch;

static void
watch_free (Watch *watch)
{
  g_object_unref (watch->config);
  g_free (watch);
}

static void
answer_now (Watch *watch, SoupServerMessage *msg)
{
  HeraldConfig *config = watch->config;
  Refusal *r = g_new0 (Refusal, 1);
  gsize len;
  gconstpointer data;

  r->response = serialize_response (msg);
  g_object_ref (msg);
  herald_security_forget (watch->server, msg);
  r->stream = soup_server_message_steal_connection (msg);
  g_object_unref (msg);
  if (r->stream == NULL)
    {
      refusal_free (r);
      return;
    }
  r->cancellable = g_cancellable_new ();
  r->deadline = g_timeout_source_new_seconds (herald_config_get_handshake_timeout (config));
  g_source_set_callback (r->deadline, deadline_cb, r, NULL);
  g_source_attach (r->deadline, g_main_context_get_thread_default ());
  data = g_bytes_get_data (r->response, &len);
  g_output_stream_write_all_async (g_io_stream_get_output_stream (r->stream), data, len,
                                   G_PRIORITY_DEFAULT, r->cancellable, wrote_cb, r);
}

gboolean
herald_http_content_length_valid (SoupMessageHeaders *headers, guint64 *length)
{
  const char *list = soup_message_headers_get_list (headers, "Content-Length");
  g_auto (GStrv) items = NULL;
  gboolean have = FALSE;

  *length = 0;
  if (list == NULL)
    return TRUE;
  items = g_strsplit (list, ",", -1);
  for (guint i = 0; items[i]; i++)
    {
      const char *item = g_strstrip (items[i]);
      guint64 value = 0;

      if (*item == '\0')
        return FALSE;
      for (const char *p = item; *p; p++)
        {
          if (!g_ascii_isdigit (*p) || value > ((guint64)G_MAXINT64 - (guint64)(*p - '0')) / 10)
            return FALSE; /* a sign, a non-digit, or more than a goffset holds */
          value = value * 10 + (*p - '0');
        }
      if (have && value != *length)
        return FALSE;
      *length = value;
      have = TRUE;
    }
  return TRUE;
}

static void
refuse_now (Watch *watch, SoupServerMessage *msg, guint status, const char *text)
{
  gsize length = 0;
  char *body = herald_json_error_body (text, &length);

  soup_server_message_set_status (msg, status, NULL);
  soup_server_message_set_response (msg, "application/json", SOUP_MEMORY_TAKE, body, length);
  answer_now (watch, msg);
}

static gboolean
path_is_api (SoupServerMessage *msg)
{
  const char *path = g_uri_get_path (soup_server_message_get_uri (msg));

  return g_str_equal (path, "/api") || g_str_has_prefix (path, "/api/");
}

/* After libsoup's own got-headers handler, which ran the early handlers. */
static void
on_got_headers (SoupServerMessage *msg, gpointer user_data)
{
  Watch *watch = user_data;
  SoupMessageHeaders *headers = soup_server_message_get_request_headers (msg);
  SoupEncoding encoding = soup_message_headers_get_encoding (headers);
  guint64 length = 0;

  if (!herald_http_content_length_valid (headers, &length))
    {
      /* RFC 9112 6.3: the body's end is unknown, so answer and close. */
      refuse_now (watch, msg, SOUP_STATUS_BAD_REQUEST, "Invalid Content-Length");
      return;
    }
  if (encoding != SOUP_ENCODING_CHUNKED
      && (encoding != SOUP_ENCODING_CONTENT_LENGTH || length == 0))
    return; /* no body to wait for */
  /* Only the API reads bodies: elsewhere keep none of it in memory. */
  if (!path_is_api (msg))
    soup_message_body_set_accumulate (soup_server_message_get_request_body (msg), FALSE);
  if (soup_server_message_get_status (msg) >= 400)
    answer_now (watch, msg);
}

static void
on_request_started (SoupServer *server, SoupServerMessage *msg, gpointer user_data)
{
  g_signal_connect (msg, "got-headers", G_CALLBACK (on_got_headers), user_data);
}

void
herald_http_early_watch (SoupServer *server, HeraldConfig *config)
{
  Watch *watch;

  g_return_if_fail (SOUP_IS_SERVER (server));
  g_return_if_fail (HERALD_IS_CONFIG (config));

  watch = g_new0 (Watch, 1);
  watch->server = server;
  watch->config = g_object_ref (config);
  g_object_set_data_full (G_OBJECT (server), "herald-http-early", watch,
                          (GDestroyNotify)watch_free);
  g_signal_connect (server, "request-started", G_CALLBACK (on_request_started), watch);
}
