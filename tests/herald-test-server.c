/* herald-test-server.c
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "herald-test-server.h"
#include "herald-test-timeout.h"

HeraldTestServer *
herald_test_server_start (const char *keyfile, guint workers)
{
  return herald_test_server_start_listen (keyfile, workers, "127.0.0.1:0");
}

void
herald_test_server_stop (HeraldTestServer *server)
{
  g_object_run_dispose (G_OBJECT (server->daemon));
  /* Deliver signals queued for the main context so nothing leaks. */
  while (g_main_context_iteration (NULL, FALSE))
    ;
  g_object_unref (server->daemon);
  g_object_unref (server->config);
  g_free (server->host);
  g_free (server->url);
  g_free (server);
}

HeraldTestClient *
herald_test_client_connect (HeraldTestServer *server)
{
  HeraldTestClient *client = g_new0 (HeraldTestClient, 1);
  g_autoptr (GInetAddress) address = g_inet_address_new_from_string (server->host);
  g_autoptr (GSocketAddress) sa = g_inet_socket_address_new (address, server->port);
  g_autoptr (GError) error = NULL;

  client->socket
      = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, &error);
  g_assert_no_error (error);
  g_socket_set_timeout (client->socket, 5 * herald_test_timeout_scale ());
  g_socket_connect (client->socket, sa, NULL, &error);
  g_assert_no_error (error);
  client->buffer = g_byte_array_new ();
  return client;
}

void
herald_test_client_free (HeraldTestClient *client)
{
  if (client == NULL)
    return;
  g_socket_close (client->socket, NULL);
  g_object_unref (client->socket);
  g_byte_array_unref (client->buffer);
  g_free (client->close_reason);
  g_free (client);
}

void
herald_test_client_send_raw (HeraldTestClient *client, const void *data, gsize len)
{
  g_autoptr (GError) error = NULL;
  gsize sent = 0;

  while (sent < len)
    {
      gssize n
          = g_socket_send (client->socket, (const char *)data + sent, len - sent, NULL, &error);
      if (n < 0)
        return; /* the server may have closed: the test checks what it read */
      sent += n;
    }
}

/* Reads more bytes into the buffer; FALSE on EOF, error or timeout. */
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

guint
herald_test_client_read_head (HeraldTestClient *client, char **head)
{
  const char *end;
  guint status = 0;
  gsize len;

  for (;;)
    {
      end = client->buffer->len
                ? g_strstr_len ((char *)client->buffer->data, client->buffer->len, "\r\n\r\n")
                : NULL;
      if (end)
        break;
      if (!fill (client))
        return 0;
    }
  len = end + 4 - (char *)client->buffer->data;
  if (head)
    *head = g_strndup ((char *)client->buffer->data, len);
  if (client->buffer->len > 12)
    status = (guint)g_ascii_strtoull ((char *)client->buffer->data + 9, NULL, 10);
  g_byte_array_remove_range (client->buffer, 0, len);
  return status;
}

char *
herald_test_client_read_response (HeraldTestClient *client, guint *status, char **head)
{
  g_autofree char *h = NULL;
  const char *cl;
  gsize length = 0;
  char *body;

  *status = herald_test_client_read_head (client, &h);
  if (*status == 0)
    return NULL;
  cl = g_strstr_len (h, -1, "Content-Length: ");
  if (cl)
    length = g_ascii_strtoull (cl + 16, NULL, 10);
  while (client->buffer->len < length)
    if (!fill (client))
      return NULL;
  body = g_strndup ((char *)client->buffer->data, length);
  g_byte_array_remove_range (client->buffer, 0, length);
  if (head)
    *head = g_steal_pointer (&h);
  return body;
}

guint
herald_test_ws_handshake (HeraldTestClient *client, const char *path, const char *extra_headers,
                          char **head)
{
  g_autofree char *request = g_strdup_printf ("GET %s HTTP/1.1\r\n"
                                              "Host: 127.0.0.1\r\n"
                                              "Upgrade: websocket\r\n"
                                              "Connection: Upgrade\r\n"
                                              "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                                              "Sec-WebSocket-Version: 13\r\n"
                                              "%s\r\n",
                                              path, extra_headers ? extra_headers : "");
  herald_test_client_send_raw (client, request, strlen (request));
  return herald_test_client_read_head (client, head);
}

void
herald_test_ws_send_frame (HeraldTestClient *client, guint8 first_byte, const void *payload,
                           gsize len)
{
  g_autoptr (GByteArray) frame = g_byte_array_new ();
  guint8 header[14];
  gsize hlen = 0;
  guint8 mask[4] = { 0x12, 0x34, 0x56, 0x78 };

  header[hlen++] = first_byte;
  if (len < 126)
    header[hlen++] = 0x80 | len;
  else if (len < 65536)
    {
      header[hlen++] = 0x80 | 126;
      header[hlen++] = len >> 8;
      header[hlen++] = len & 0xff;
    }
  else
    {
      header[hlen++] = 0x80 | 127;
      for (int i = 7; i >= 0; i--)
        header[hlen++] = ((guint64)len >> (8 * i)) & 0xff;
    }
  memcpy (header + hlen, mask, 4);
  hlen += 4;
  g_byte_array_append (frame, header, hlen);
  for (gsize i = 0; i < len; i++)
    {
      guint8 b = ((const guint8 *)payload)[i] ^ mask[i % 4];
      g_byte_array_append (frame, &b, 1);
    }
  herald_test_client_send_raw (client, frame->data, frame->len);
}

void
herald_test_ws_send_text (HeraldTestClient *client, const char *text)
{
  herald_test_ws_send_frame (client, 0x81, text, strlen (text));
}

int
herald_test_ws_read_frame (HeraldTestClient *client, char **payload, gsize *len)
{
  for (;;)
    {
      guint8 *d = client->buffer->data;
      gsize have = client->buffer->len;
      guint64 plen;
      gsize hlen = 2;

      if (have >= 2)
        {
          plen = d[1] & 0x7f;
          if (plen == 126)
            hlen = 4;
          else if (plen == 127)
            hlen = 10;
          if (have >= hlen)
            {
              if (plen == 126)
                plen = (d[2] << 8) | d[3];
              else if (plen == 127)
                {
                  plen = 0;
                  for (int i = 0; i < 8; i++)
                    plen = (plen << 8) | d[2 + i];
                }
              if (have >= hlen + plen)
                {
                  int opcode = d[0] & 0x0f;
                  if (payload)
                    *payload = g_strndup ((char *)d + hlen, plen);
                  if (len)
                    *len = plen;
                  if (opcode == 0x8)
                    {
                      client->close_code = plen >= 2 ? (d[hlen] << 8) | d[hlen + 1] : 1005;
                      g_free (client->close_reason);
                      client->close_reason
                          = plen > 2 ? g_strndup ((char *)d + hlen + 2, plen - 2) : g_strdup ("");
                    }
                  g_byte_array_remove_range (client->buffer, 0, hlen + plen);
                  return opcode;
                }
            }
        }
      if (!fill (client))
        return -1;
    }
}

JsonObject *
herald_test_ws_read_json (HeraldTestClient *client)
{
  for (;;)
    {
      g_autofree char *payload = NULL;
      g_autoptr (JsonParser) parser = NULL;
      g_autoptr (GError) error = NULL;
      JsonObject *obj;
      int opcode = herald_test_ws_read_frame (client, &payload, NULL);

      if (opcode < 0 || opcode == 0x8)
        return NULL;
      if (opcode != 0x1)
        continue;
      parser = json_parser_new ();
      json_parser_load_from_data (parser, payload, -1, &error);
      g_assert_no_error (error);
      g_assert_true (JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)));
      obj = json_node_get_object (json_parser_get_root (parser));
      if (g_strcmp0 (json_object_get_string_member_with_default (obj, "type", ""), "ping") == 0)
        continue;
      return json_object_ref (obj);
    }
}

guint16
herald_test_ws_wait_close (HeraldTestClient *client)
{
  for (;;)
    {
      int opcode = herald_test_ws_read_frame (client, NULL, NULL);
      if (opcode < 0)
        return client->close_code;
      if (opcode == 0x8)
        return client->close_code;
    }
}

HeraldTestClient *
herald_test_ws_open (HeraldTestServer *server, const char *path, char **connection_id)
{
  HeraldTestClient *client = herald_test_client_connect (server);
  g_autoptr (JsonObject) hello = NULL;

  g_assert_cmpuint (herald_test_ws_handshake (client, path, NULL, NULL), ==, 101);
  hello = herald_test_ws_read_json (client);
  g_assert_nonnull (hello);
  g_assert_cmpstr (json_object_get_string_member (hello, "type"), ==, "connected");
  if (connection_id)
    *connection_id = g_strdup (json_object_get_string_member (hello, "connection_id"));
  return client;
}

char *
herald_test_sse_read_event (HeraldTestClient *client)
{
  for (;;)
    {
      const char *end = client->buffer->len ? g_strstr_len ((char *)client->buffer->data,
                                                            client->buffer->len, "\n\n")
                                            : NULL;
      if (end)
        {
          gsize len = end + 2 - (char *)client->buffer->data;
          char *event = g_strndup ((char *)client->buffer->data, len);
          g_byte_array_remove_range (client->buffer, 0, len);
          return event;
        }
      if (!fill (client))
        return NULL;
    }
}

char *
herald_test_http (HeraldTestServer *server, const char *method, const char *path,
                  const char *headers, const char *body, guint *status)
{
  HeraldTestClient *client = herald_test_client_connect (server);
  g_autofree char *request = NULL;
  g_autofree char *head = NULL;
  const char *cl;
  gsize length = 0;
  char *out;

  request = g_strdup_printf ("%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%s"
                             "Content-Length: %zu\r\n%s\r\n%s",
                             method, path, headers ? headers : "", body ? strlen (body) : 0,
                             body ? "Content-Type: application/json\r\n" : "", body ? body : "");
  herald_test_client_send_raw (client, request, strlen (request));
  *status = herald_test_client_read_head (client, &head);
  cl = head ? strstr (head, "Content-Length: ") : NULL;
  if (cl)
    length = g_ascii_strtoull (cl + 16, NULL, 10);
  while (client->buffer->len < length && fill (client))
    ;
  out = g_strndup ((char *)client->buffer->data, client->buffer->len);
  herald_test_client_free (client);
  return out;
}

const char *
herald_test_json_get_string (JsonObject *obj, const char *member)
{
  return json_object_get_string_member_with_default (obj, member, NULL);
}

/* ---- TLS (appended for tests/test-security.c) ---- */

HeraldTestServer *
herald_test_server_start_listen (const char *keyfile, guint workers, const char *listen_address)
{
  HeraldTestServer *server = g_new0 (HeraldTestServer, 1);
  g_autoptr (GError) error = NULL;
  const char *listen[] = { listen_address, NULL };
  const char *url;
  const char *colon;

  g_autofree char *with_sendmsg = NULL;

  /* HERALD_TEST_SENDMSG=1 (tests/meson.build's *-sendmsg tests): the same
   * tests through the write path without io_uring. */
  if (g_strcmp0 (g_getenv ("HERALD_TEST_SENDMSG"), "1") == 0)
    {
      const char *group = keyfile ? strstr (keyfile, "[server]\n") : NULL;

      if (group)
        with_sendmsg = g_strdup_printf ("%.*s[server]\nio-uring=false\n%s", (int)(group - keyfile),
                                        keyfile, group + strlen ("[server]\n"));
      else
        with_sendmsg = g_strdup_printf ("[server]\nio-uring=false\n%s", keyfile ? keyfile : "");
      keyfile = with_sendmsg;
    }
  server->config = herald_config_new ();
  if (keyfile)
    herald_config_load_data (server->config, keyfile, -1, "test.conf", &error);
  g_assert_no_error (error);
  herald_config_set_listen_override (server->config, listen, &error);
  g_assert_no_error (error);
  herald_config_set_workers_override (server->config, workers, &error);
  g_assert_no_error (error);
  server->daemon = herald_daemon_new (server->config);
  herald_daemon_start (server->daemon, &error);
  g_assert_no_error (error);
  server->hub = herald_daemon_get_hub (server->daemon);
  url = g_ptr_array_index (herald_daemon_get_urls (server->daemon), 0);
  server->url = g_strdup (url);
  colon = strrchr (url, ':');
  server->port = (guint16)g_ascii_strtoull (colon + 1, NULL, 10);
  server->host = g_strdup ("127.0.0.1");
  return server;
}

/* One direction of the TLS relay: copies until EOF or error, then shuts the
 * other side so the peer sees the end too. */
typedef struct
{
  GInputStream *in;
  GOutputStream *out;
  GSocket *shut; /* shut for writing at the end (NULL: close @out) */
  GIOStream *hold;
  GSocket *hold_socket;
} Relay;

static gpointer
relay_thread (gpointer data)
{
  Relay *r = data;
  char buf[16384];

  for (;;)
    {
      gssize n = g_input_stream_read (r->in, buf, sizeof buf, NULL, NULL);
      if (n <= 0 || !g_output_stream_write_all (r->out, buf, n, NULL, NULL, NULL))
        break;
    }
  if (r->shut)
    g_socket_shutdown (r->shut, FALSE, TRUE, NULL);
  else
    g_io_stream_close (r->hold, NULL, NULL);
  g_object_unref (r->hold);
  g_object_unref (r->hold_socket);
  g_free (r);
  return NULL;
}

static gboolean
accept_any_certificate (GTlsConnection *conn, GTlsCertificate *cert, GTlsCertificateFlags errors,
                        gpointer user_data)
{
  return TRUE; /* the test certificate is self-signed */
}

GIOStream *
herald_test_tls_connect (HeraldTestServer *server, gboolean handshake)
{
  g_autoptr (GSocketClient) sc = g_socket_client_new ();
  g_autoptr (GSocketConnection) tcp = NULL;
  g_autoptr (GSocketConnectable) identity = NULL;
  GIOStream *tls;
  g_autoptr (GError) error = NULL;

  g_socket_client_set_timeout (sc, 5 * herald_test_timeout_scale ());
  tcp = g_socket_client_connect_to_host (sc, server->host, server->port, NULL, &error);
  g_assert_no_error (error);
  /* No Nagle: small frames go at once, as on the plain test clients' loopback. */
  g_socket_set_option (g_socket_connection_get_socket (tcp), IPPROTO_TCP, TCP_NODELAY, TRUE, NULL);
  identity = g_network_address_new (server->host, server->port);
  tls = g_tls_client_connection_new (G_IO_STREAM (tcp), identity, &error);
  g_assert_no_error (error);
  g_signal_connect (tls, "accept-certificate", G_CALLBACK (accept_any_certificate), NULL);
  if (handshake)
    {
      g_tls_connection_handshake (G_TLS_CONNECTION (tls), NULL, &error);
      g_assert_no_error (error);
    }
  return tls;
}

HeraldTestClient *
herald_test_client_connect_tls (HeraldTestServer *server)
{
  HeraldTestClient *client = g_new0 (HeraldTestClient, 1);
  g_autoptr (GIOStream) tls = herald_test_tls_connect (server, TRUE);
  g_autoptr (GError) error = NULL;
  g_autoptr (GSocket) relay_end = NULL;
  int pair[2];
  Relay *up, *down;

  g_assert_cmpint (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), ==, 0);
  client->socket = g_socket_new_from_fd (pair[0], &error);
  g_assert_no_error (error);
  g_socket_set_timeout (client->socket, 5 * herald_test_timeout_scale ());
  client->buffer = g_byte_array_new ();
  relay_end = g_socket_new_from_fd (pair[1], &error);
  g_assert_no_error (error);

  {
    g_autoptr (GSocketConnection) local = g_socket_connection_factory_create_connection (relay_end);

    up = g_new0 (Relay, 1); /* test client → server */
    up->in = g_io_stream_get_input_stream (G_IO_STREAM (local));
    up->out = g_io_stream_get_output_stream (tls);
    up->hold = g_object_ref (tls);
    up->hold_socket = g_object_ref (relay_end);
    g_object_set_data_full (G_OBJECT (tls), "herald-test-local", g_object_ref (local),
                            g_object_unref);

    down = g_new0 (Relay, 1); /* server → test client */
    down->in = g_io_stream_get_input_stream (tls);
    down->out = g_io_stream_get_output_stream (G_IO_STREAM (local));
    down->shut = relay_end;
    down->hold = g_object_ref (tls);
    down->hold_socket = g_object_ref (relay_end);
  }
  g_thread_unref (g_thread_new ("tls-up", relay_thread, up));
  g_thread_unref (g_thread_new ("tls-down", relay_thread, down));
  return client;
}

/* ---- reliability helpers ---- */

gsize
herald_test_rss_kb (void)
{
  g_autofree char *status = NULL;
  const char *line;

  if (!g_file_get_contents ("/proc/self/status", &status, NULL, NULL))
    return 0;
  line = strstr (status, "\nVmRSS:");
  return line ? (gsize)g_ascii_strtoull (line + 7, NULL, 10) : 0;
}

#if defined(__SANITIZE_ADDRESS__)
#define RSS_MEANINGFUL FALSE
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define RSS_MEANINGFUL FALSE
#endif
#endif
#ifndef RSS_MEANINGFUL
#define RSS_MEANINGFUL TRUE
#endif

void
herald_test_assert_rss_growth (gsize before_kb, gsize max_growth_kb)
{
  gsize now = herald_test_rss_kb ();

  g_test_message ("RSS %zu KiB, was %zu KiB", now, before_kb);
  if (!RSS_MEANINGFUL || g_getenv ("VALGRIND"))
    return;
  g_assert_cmpuint (now, <, before_kb + max_growth_kb);
}

void
herald_test_assert_serving (HeraldTestServer *server)
{
  HeraldTestClient *client = herald_test_ws_open (server, "/ws", NULL);
  g_autoptr (JsonObject) reply = NULL;

  herald_test_ws_send_text (client, "{\"type\":\"ping\",\"id\":1}");
  reply = herald_test_ws_read_json (client);
  g_assert_nonnull (reply);
  g_assert_cmpstr (herald_test_json_get_string (reply, "type"), ==, "pong");
  herald_test_client_free (client);
}
