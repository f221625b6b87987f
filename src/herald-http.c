/* herald-http.c
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "herald-connection.h"
#include "herald-http-api.h"
#include "herald-http-early.h"
#include "herald-http-handshake.h"
#include "herald-http.h"
#include "herald-json.h"
#include "herald-names.h"
#include "herald-resources.h"
#include "herald-security.h"
#include "herald-subscribe.h"

/* The front's context of the handlers: one per SoupServer. */
typedef struct
{
  SoupServer *server; /* unowned: owns this */
  HeraldHub *hub;
  HeraldWorker *worker;
} HttpHandlers;

typedef struct
{
  HttpHandlers *handlers;
  HeraldWorker *worker;
  char *id;
  HeraldTransport transport;
  HeraldJwtClaims *claims;
  char *remote;
  gboolean deflate;
  char **channels; /* SSE */
  char *last_event_id;
  gboolean reserved;
} Pending;

static void
pending_free (Pending *p)
{
  HeraldHub *hub = p->handlers->hub;

  if (p->reserved)
    herald_hub_release_connection (hub, p->id, 1006, "handshake not completed", FALSE);
  g_free (p->id);
  g_clear_pointer (&p->claims, herald_jwt_claims_free);
  g_free (p->remote);
  g_strfreev (p->channels);
  g_free (p->last_event_id);
  g_free (p);
}

static void
pending_closure_free (gpointer data, GClosure *closure)
{
  pending_free (data);
}

/* The request's headers for the decisions (herald-http-handshake.c, which
 * the worker's own reader of handshakes, herald-http-upgrade.c, calls too). */
static const char *
headers_get_one (gpointer data, const char *name)
{
  return soup_message_headers_get_one (data, name);
}

static const char *
headers_get_list (gpointer data, const char *name)
{
  return soup_message_headers_get_list (data, name);
}

static HeraldHandshakeHeaders
request_headers (SoupServerMessage *msg)
{
  HeraldHandshakeHeaders h = {
    .get_one = headers_get_one,
    .get_list = headers_get_list,
    .data = soup_server_message_get_request_headers (msg),
    .query = g_uri_get_query (soup_server_message_get_uri (msg)),
  };
  return h;
}

char *
herald_http_find_token (SoupServerMessage *msg)
{
  HeraldHandshakeHeaders h = request_headers (msg);

  return herald_handshake_find_token (&h);
}

static void
refuse (SoupServerMessage *msg, guint status, const char *text)
{
  SoupMessageHeaders *headers = soup_server_message_get_response_headers (msg);
  gsize length = 0;
  char *body = herald_json_error_body (text, &length);

  /* Without Connection: close a refused upgrade leaves clients waiting. */
  soup_message_headers_replace (headers, "Connection", "close");
  if (status == SOUP_STATUS_UNAUTHORIZED)
    soup_message_headers_replace (headers, "WWW-Authenticate", "Bearer realm=\"herald\"");
  soup_server_message_set_status (msg, status, NULL);
  soup_server_message_set_response (msg, "application/json", SOUP_MEMORY_TAKE, body, length);
}

/* Answers a refusal the decisions described. */
static void
refuse_as (SoupServerMessage *msg, const HeraldHandshakeRefusal *refusal)
{
  SoupMessageHeaders *headers = soup_server_message_get_response_headers (msg);

  if (refusal->retry_after)
    soup_message_headers_replace (headers, "Retry-After", "1");
  refuse (msg, refusal->status, refusal->message);
  if (refusal->ws_version)
    soup_message_headers_replace (headers, "Sec-WebSocket-Version", "13");
}

static gboolean
origin_allowed (HeraldConfig *config, SoupServerMessage *msg)
{
  HeraldHandshakeHeaders h = request_headers (msg);

  return herald_handshake_origin_allowed (config, &h);
}

/* Checks Origin and token; answers and returns FALSE when refused. */
static gboolean
authenticate (HeraldHub *hub, SoupServerMessage *msg, HeraldJwtClaims **claims_out)
{
  HeraldConfig *config = herald_hub_get_config (hub);
  HeraldHandshakeHeaders h = request_headers (msg);
  g_auto (HeraldHandshakeRefusal) refusal = { 0 };

  if (!herald_handshake_check_origin (config, &h, &refusal))
    goto refused;
  switch (herald_handshake_verify_token (hub, &h, claims_out, &refusal))
    {
    case HERALD_HANDSHAKE_TOKEN_VERIFIED:
      return TRUE;
    case HERALD_HANDSHAKE_TOKEN_REFUSED:
      goto refused;
    case HERALD_HANDSHAKE_TOKEN_NONE:
    default:
      break;
    }
  /* No token. */
  if (herald_handshake_check_anonymous (config, &refusal))
    return TRUE;
refused:
  refuse_as (msg, &refusal);
  return FALSE;
}

/* Reserves the connection id in the hub; answers 400/409/503 when refused. */
static gboolean
reserve (Pending *p, SoupServerMessage *msg, const char *requested_id)
{
  g_auto (HeraldHandshakeRefusal) refusal = { 0 };

  if (!herald_handshake_reserve (p->handlers->hub, p->worker, requested_id, p->claims, p->remote,
                                 &p->id, &refusal))
    {
      refuse_as (msg, &refusal);
      return FALSE;
    }
  p->reserved = TRUE;
  return TRUE;
}

/* Takes the socket from libsoup. Returns the fd (owned) or -1. */
/* The stream Herald handed to libsoup (herald-front.c accept path), under
 * libsoup's stolen wrapper: it carries the socket's fd. */
static GIOStream *
base_stream (GIOStream *stolen)
{
  GIOStream *base = NULL;

  if (g_object_class_find_property (G_OBJECT_GET_CLASS (stolen), "base-iostream"))
    g_object_get (stolen, "base-iostream", &base, NULL);
  return base ? base : g_object_ref (stolen);
}

static int
steal_socket (SoupServerMessage *msg, GIOStream **tls_out, GBytes **leftover_out)
{
  g_autoptr (GIOStream) stream = soup_server_message_steal_connection (msg);
  g_autoptr (GIOStream) base = base_stream (stream);
  GInputStream *in = g_io_stream_get_input_stream (stream);
  g_autoptr (GByteArray) leftover = g_byte_array_new ();
  gboolean tls = G_IS_TLS_CONNECTION (base);
  int base_fd = GPOINTER_TO_INT (g_object_get_data (G_OBJECT (base), "herald-fd"));
  int one = 1;
  int fd;

  /* libsoup may have read bytes the client sent right after its request. */
  if (G_IS_POLLABLE_INPUT_STREAM (in)
      && g_pollable_input_stream_can_poll (G_POLLABLE_INPUT_STREAM (in)))
    {
      guint8 buf[4096];
      for (;;)
        {
          gssize n = g_pollable_input_stream_read_nonblocking (G_POLLABLE_INPUT_STREAM (in), buf,
                                                               sizeof buf, NULL, NULL);
          if (n <= 0)
            break;
          g_byte_array_append (leftover, buf, n);
        }
    }
  *leftover_out = g_byte_array_free_to_bytes (g_steal_pointer (&leftover));

  if (base_fd <= 0 && G_IS_SOCKET_CONNECTION (base))
    base_fd = g_socket_get_fd (g_socket_connection_get_socket (G_SOCKET_CONNECTION (base)));
  fd = base_fd > 0 ? fcntl (base_fd, F_DUPFD_CLOEXEC, 0) : -1;
  if (fd < 0)
    {
      g_io_stream_close (stream, NULL, NULL);
      return -1;
    }
  setsockopt (fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  fcntl (fd, F_SETFL, fcntl (fd, F_GETFL) | O_NONBLOCK);

  if (tls)
    *tls_out = g_steal_pointer (&stream); /* the fd only tells readiness */
  else
    {
      /* Plain TCP: keep just the fd; libsoup's stream objects cost memory for nothing. */
      *tls_out = NULL;
      g_io_stream_close (stream, NULL, NULL);
    }
  return fd;
}

/* Takes the socket from libsoup and hands it to the hub, which builds the
 * connection (and, for SSE, subscribes it). */
static HeraldConnection *
adopt (Pending *p, SoupServerMessage *msg, const HeraldSubscribeRequest *subscribe)
{
  g_autoptr (GIOStream) tls = NULL;
  g_autoptr (GBytes) leftover = NULL;
  HeraldConnectionSetup setup = { 0 };
  HeraldConnection *conn;
  int fd;

  herald_security_forget (p->handlers->server, msg);
  fd = steal_socket (msg, &tls, &leftover);
  if (fd < 0)
    return NULL;
  setup.id = p->id;
  setup.transport = p->transport;
  setup.fd = fd;
  setup.tls = tls;
  setup.leftover = leftover;
  setup.deflate = p->deflate;
  setup.remote_address = p->remote;
  setup.claims = g_steal_pointer (&p->claims);
  p->reserved = FALSE; /* the connection owns the reservation now */
  conn = herald_hub_adopt (p->handlers->hub, p->worker, &setup, subscribe);
  g_clear_pointer (&setup.claims, herald_jwt_claims_free);
  return conn;
}

/* ---- WebSocket ---- */

static void
on_ws_upgraded (SoupServerMessage *msg, gpointer user_data)
{
  Pending *p = user_data;
  g_autoptr (HeraldConnection) conn = NULL;

  if (soup_server_message_get_status (msg) != SOUP_STATUS_SWITCHING_PROTOCOLS)
    return;
  conn = adopt (p, msg, NULL);
}

/* The 101 of a handshake the decisions accepted. */
static void
answer_upgrade (SoupServerMessage *msg, const char *protocol, const char *extensions)
{
  SoupMessageHeaders *headers = soup_server_message_get_response_headers (msg);
  char accept[29];

  herald_handshake_accept_key (
      soup_message_headers_get_one (soup_server_message_get_request_headers (msg),
                                    "Sec-WebSocket-Key"),
      accept);
  soup_server_message_set_status (msg, SOUP_STATUS_SWITCHING_PROTOCOLS, NULL);
  soup_message_headers_replace (headers, "Upgrade", "websocket");
  soup_message_headers_append (headers, "Connection", "Upgrade");
  soup_message_headers_append (headers, "Sec-WebSocket-Accept", accept);
  if (protocol)
    soup_message_headers_append (headers, "Sec-WebSocket-Protocol", protocol);
  if (extensions)
    soup_message_headers_replace (headers, "Sec-WebSocket-Extensions", extensions);
}

static void
ws_handler (SoupServer *server, SoupServerMessage *msg, const char *path, GHashTable *query,
            gpointer user_data)
{
  HttpHandlers *handlers = user_data;
  HeraldWorker *worker = handlers->worker;
  HeraldHub *hub = handlers->hub;
  HeraldConfig *config = herald_hub_get_config (hub);
  HeraldHandshakeHeaders h = request_headers (msg);
  g_auto (HeraldHandshakeRefusal) refusal = { 0 };
  g_autofree char *protocol = NULL;
  g_autofree char *extensions = NULL;
  const char *requested_id = NULL;
  Pending *p;

  if (soup_server_message_get_method (msg) != SOUP_METHOD_GET)
    {
      soup_message_headers_replace (soup_server_message_get_response_headers (msg), "Allow", "GET");
      refuse (msg, SOUP_STATUS_METHOD_NOT_ALLOWED, "Use GET with a WebSocket upgrade");
      return;
    }
  if (g_str_has_prefix (path, "/ws/"))
    requested_id = path + 4;
  else if (!g_str_equal (path, "/ws"))
    {
      refuse (msg, SOUP_STATUS_NOT_FOUND, "Not found");
      return;
    }

  p = g_new0 (Pending, 1);
  p->handlers = handlers;
  p->worker = worker;
  p->transport = HERALD_TRANSPORT_WEBSOCKET;
  p->remote = g_strdup (soup_server_message_get_remote_host (msg));

  if (!authenticate (hub, msg, &p->claims))
    goto refused;

  /* RFC 6455 and the subprotocol: herald-http-handshake.c decides. */
  if (!herald_handshake_check_websocket (&h, &protocol, &refusal))
    {
      refuse_as (msg, &refusal);
      goto refused;
    }
  if (!reserve (p, msg, requested_id))
    goto refused;

  extensions = herald_handshake_negotiate_deflate (config, &h);
  p->deflate = extensions != NULL;
  answer_upgrade (msg, protocol, extensions);
  g_signal_connect_data (msg, "wrote-informational", G_CALLBACK (on_ws_upgraded), p,
                         pending_closure_free, 0);
  return;

refused:
  pending_free (p);
}

/* ---- SSE ---- */

static void
on_sse_headers (SoupServerMessage *msg, gpointer user_data)
{
  Pending *p = user_data;
  HeraldSubscribeRequest request = {
    .channels = (const char *const *)p->channels,
    .from = HERALD_SUBSCRIBE_STREAM,
    .last_event_id = p->last_event_id,
    .presence = -1,
  };
  g_autoptr (HeraldConnection) conn = adopt (p, msg, &request);
}

static void
sse_handler (SoupServer *server, SoupServerMessage *msg, const char *path, GHashTable *query,
             gpointer user_data)
{
  HttpHandlers *handlers = user_data;
  HeraldWorker *worker = handlers->worker;
  HeraldHub *hub = handlers->hub;
  HeraldConfig *config = herald_hub_get_config (hub);
  SoupMessageHeaders *headers = soup_server_message_get_response_headers (msg);
  const char *method = soup_server_message_get_method (msg);
  HeraldHandshakeHeaders h = request_headers (msg);
  g_auto (HeraldHandshakeRefusal) refusal = { 0 };
  Pending *p;

  if (!g_str_equal (path, "/events"))
    {
      refuse (msg, SOUP_STATUS_NOT_FOUND, "Not found");
      return;
    }
  herald_http_apply_cors (msg, config, TRUE);
  if (method == SOUP_METHOD_OPTIONS)
    {
      soup_message_headers_replace (headers, "Access-Control-Allow-Methods", "GET, OPTIONS");
      soup_message_headers_replace (headers, "Access-Control-Allow-Headers",
                                    "Authorization, Last-Event-ID, Cache-Control");
      soup_message_headers_replace (headers, "Access-Control-Max-Age", "600");
      soup_server_message_set_status (msg, SOUP_STATUS_NO_CONTENT, NULL);
      return;
    }
  if (method != SOUP_METHOD_GET)
    {
      soup_message_headers_replace (headers, "Allow", "GET, OPTIONS");
      refuse (msg, SOUP_STATUS_METHOD_NOT_ALLOWED, "Use GET");
      return;
    }

  p = g_new0 (Pending, 1);
  p->handlers = handlers;
  p->worker = worker;
  p->transport = HERALD_TRANSPORT_SSE;
  p->remote = g_strdup (soup_server_message_get_remote_host (msg));

  if (!authenticate (hub, msg, &p->claims))
    goto refused;

  /* The channels and the resume point: herald-http-handshake.c decides. */
  if (!herald_handshake_check_sse (hub, &h, p->claims, &p->channels, &p->last_event_id, &refusal))
    {
      refuse_as (msg, &refusal);
      goto refused;
    }

  if (!reserve (p, msg, NULL))
    goto refused;

  soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
  soup_message_headers_replace (headers, "Content-Type", "text/event-stream; charset=utf-8");
  soup_message_headers_replace (headers, "Cache-Control", "no-cache");
  soup_message_headers_replace (headers, "X-Accel-Buffering", "no");
  soup_message_headers_replace (headers, "Connection", "close");
  soup_message_headers_set_encoding (headers, SOUP_ENCODING_EOF);
  g_signal_connect_data (msg, "wrote-headers", G_CALLBACK (on_sse_headers), p, pending_closure_free,
                         0);
  return;

refused:
  pending_free (p);
}

/* ---- demo page ---- */

/* CORS for /herald.js, as for /events: any origin when allowed-origins is
 * unset, else only the listed ones (others get 403); the preflight is
 * answered here. Returns FALSE when the request has been answered. */
static gboolean
sdk_cors (SoupServerMessage *msg, HeraldConfig *config)
{
  SoupMessageHeaders *headers = soup_server_message_get_response_headers (msg);

  if (!origin_allowed (config, msg))
    {
      refuse (msg, SOUP_STATUS_FORBIDDEN, "Origin not allowed");
      return FALSE;
    }
  herald_http_apply_cors (msg, config, TRUE);
  if (soup_server_message_get_method (msg) == SOUP_METHOD_OPTIONS)
    {
      soup_message_headers_replace (headers, "Access-Control-Allow-Methods", "GET, OPTIONS");
      soup_message_headers_replace (headers, "Access-Control-Max-Age", "600");
      soup_server_message_set_status (msg, SOUP_STATUS_NO_CONTENT, NULL);
      return FALSE;
    }
  return TRUE;
}

static void
page_handler (SoupServer *server, SoupServerMessage *msg, const char *path, GHashTable *query,
              gpointer user_data)
{
  g_autofree char *resource = NULL;
  g_autoptr (GBytes) bytes = NULL;
  const char *type = "text/html; charset=utf-8";
  gsize size;

  /* The client SDK is imported by pages of other origins: the CORS rules of /events. */
  if (g_str_equal (path, "/herald.js")
      && !sdk_cors (msg, herald_hub_get_config (((HttpHandlers *)user_data)->hub)))
    return;
  if (soup_server_message_get_method (msg) != SOUP_METHOD_GET
      && soup_server_message_get_method (msg) != SOUP_METHOD_HEAD)
    {
      refuse (msg, SOUP_STATUS_METHOD_NOT_ALLOWED, "Use GET");
      return;
    }
  if (g_str_equal (path, "/"))
    path = "/index.html";
  /* [server] admin-page=false: as if there were no such page */
  if (strstr (path, "..") != NULL
      || (g_str_has_prefix (path, "/admin.")
          && !herald_config_get_admin_page (
              herald_hub_get_config (((HttpHandlers *)user_data)->hub))))
    {
      refuse (msg, SOUP_STATUS_NOT_FOUND, "Not found");
      return;
    }
  resource = g_strconcat ("/io/github/herald/web", path, NULL);
  bytes = g_resources_lookup_data (resource, 0, NULL);
  if (bytes == NULL)
    {
      refuse (msg, SOUP_STATUS_NOT_FOUND, "Not found");
      return;
    }
  if (g_str_has_suffix (path, ".js"))
    type = "text/javascript; charset=utf-8";
  else if (g_str_has_suffix (path, ".css"))
    type = "text/css; charset=utf-8";
  else if (g_str_has_suffix (path, ".svg"))
    type = "image/svg+xml";
  soup_message_headers_replace (soup_server_message_get_response_headers (msg), "Cache-Control",
                                "no-cache");
  soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
  soup_server_message_set_response (msg, type, SOUP_MEMORY_COPY, g_bytes_get_data (bytes, &size),
                                    g_bytes_get_size (bytes));
}

void
herald_http_register (SoupServer *server, HeraldHub *hub, HeraldWorker *worker)
{
  static gsize pages_registered = 0;
  HttpHandlers *handlers;

  g_return_if_fail (SOUP_IS_SERVER (server));
  g_return_if_fail (HERALD_IS_HUB (hub));
  g_return_if_fail (HERALD_IS_WORKER (worker));

  /* The pages are compiled with --manual-register (see src/meson.build). */
  if (g_once_init_enter (&pages_registered))
    {
      herald_register_resource ();
      g_once_init_leave (&pages_registered, 1);
    }
  handlers = g_new0 (HttpHandlers, 1);
  handlers->server = server;
  handlers->hub = hub;
  handlers->worker = worker;
  g_object_set_data_full (G_OBJECT (server), "herald-http", handlers, g_free);
  herald_security_watch_server (server, herald_hub_get_config (hub));
  herald_http_early_watch (server, herald_hub_get_config (hub));
  /* Early handlers: WebSocket, SSE and the pages need no request body, so
   * they decide from the head (a refusal is then answered at once,
   * herald-http-early.c). */
  soup_server_add_early_handler (server, "/ws", ws_handler, handlers, NULL);
  soup_server_add_early_handler (server, "/events", sse_handler, handlers, NULL);
  soup_server_add_early_handler (server, NULL, page_handler, handlers, NULL);
}
