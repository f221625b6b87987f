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
#include "herald-proxy.h"
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
  /* [proxy] connect hook */
  gboolean proxied;        /* the claims are the backend's */
  guint16 disconnect_code; /* its "disconnect": upgraded, then closed with it */
  char *disconnect_reason;
  SoupServerMessage *msg; /* while the backend is asked: paused, owned */
  SoupServer *server;     /* from the first backend call on: p->handlers' owner, owned */
  gulong disconnected_id;
  gboolean gone;       /* the client left while the backend was asked */
  guint asking;        /* SSE: subscribe hook calls pending */
  guint refuse_status; /* SSE: what their answers refuse with (0 = allowed) */
  char *refusal;
} Pending;

static void
pending_free (Pending *p)
{
  if (p->reserved)
    herald_hub_release_connection (p->handlers->hub, p->id, 1006, "handshake not completed", FALSE);
  g_free (p->id);
  g_clear_pointer (&p->claims, herald_jwt_claims_free);
  g_free (p->remote);
  g_strfreev (p->channels);
  g_free (p->last_event_id);
  g_free (p->disconnect_reason);
  g_free (p->refusal);
  if (p->msg != NULL)
    {
      g_clear_signal_handler (&p->disconnected_id, p->msg);
      g_object_unref (p->msg);
    }
  /* Last: it keeps p->handlers alive while the backend is asked */
  g_clear_object (&p->server);
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

typedef enum
{
  AUTH_REFUSED,     /* answered */
  AUTH_OK,          /* a verified token, or anonymous */
  AUTH_ASK_BACKEND, /* no token: the connect hook decides */
} AuthResult;

/* Checks Origin and token; answers when refused. The steps are
 * herald-http-handshake.c's, which the worker's own reader calls too. */
static AuthResult
authenticate (HeraldHub *hub, HeraldWorker *worker, SoupServerMessage *msg,
              HeraldJwtClaims **claims_out)
{
  HeraldConfig *config = herald_hub_get_config (hub);
  HeraldHandshakeHeaders h = request_headers (msg);
  g_auto (HeraldHandshakeRefusal) refusal = { 0 };

  if (!herald_handshake_check_origin (config, &h, &refusal))
    goto refused;
  switch (herald_handshake_verify_token (hub, &h, claims_out, &refusal))
    {
    case HERALD_HANDSHAKE_TOKEN_VERIFIED:
      return AUTH_OK;
    case HERALD_HANDSHAKE_TOKEN_REFUSED:
      goto refused;
    case HERALD_HANDSHAKE_TOKEN_NONE:
    default:
      break;
    }
  /* No token: the backend knows the session (its cookie, say) */
  if (herald_config_get_proxy_url (config, HERALD_HOOK_CONNECT) != NULL)
    {
      if (herald_worker_get_backend (worker) == NULL)
        {
          refuse (msg, SOUP_STATUS_SERVICE_UNAVAILABLE, "The backend is unavailable");
          return AUTH_REFUSED;
        }
      return AUTH_ASK_BACKEND;
    }
  if (herald_handshake_check_anonymous (config, &refusal))
    return AUTH_OK;
refused:
  refuse_as (msg, &refusal);
  return AUTH_REFUSED;
}

/* Draining: answers 503 and returns TRUE */
static gboolean
refuse_if_draining (Pending *p, SoupServerMessage *msg)
{
  if (!herald_worker_is_shutting_down (p->worker) && !herald_hub_is_draining (p->handlers->hub))
    return FALSE;
  /* Try again (another node, or this one restarted) shortly. */
  soup_message_headers_replace (soup_server_message_get_response_headers (msg), "Retry-After", "1");
  refuse (msg, SOUP_STATUS_SERVICE_UNAVAILABLE, "Server shutting down");
  return TRUE;
}

/* Reserves the connection id (p->id, the /ws/{id} one, checked; or a new
 * one) in the hub; answers 409/503 when refused. */
static gboolean
reserve (Pending *p, SoupServerMessage *msg)
{
  g_auto (HeraldHandshakeRefusal) refusal = { 0 };

  if (!herald_handshake_reserve (p->handlers->hub, p->worker, NULL, p->claims, p->remote, &p->id,
                                 &refusal))
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
  setup.proxied = p->proxied;
  p->reserved = FALSE; /* the connection owns the reservation now */
  conn = herald_hub_adopt (p->handlers->hub, p->worker, &setup, subscribe);
  g_clear_pointer (&setup.claims, herald_jwt_claims_free);
  return conn;
}

/* ---- the connect hook ---- */

typedef void (*ResumeFunc) (Pending *p, SoupServerMessage *msg);

typedef struct
{
  Pending *p;
  ResumeFunc resume;
} Asking;

/* The forwarded headers: lower-case names, repeated ones joined with ", " */
static void
add_forwarded_headers (JsonBuilder *b, HeraldConfig *config, SoupServerMessage *msg)
{
  SoupMessageHeaders *headers = soup_server_message_get_request_headers (msg);
  const char *const *names = herald_config_get_proxy_forward_headers (config);

  json_builder_begin_object (b);
  for (guint i = 0; names[i] != NULL; i++)
    {
      /* get_list joins repeated headers with ", " */
      const char *value = soup_message_headers_get_list (headers, names[i]);
      g_autofree char *lower = NULL;

      if (value == NULL)
        continue;
      lower = g_ascii_strdown (names[i], -1);
      json_builder_set_member_name (b, lower);
      json_builder_add_string_value (b, value);
    }
  json_builder_end_object (b);
}

static void
on_asked_client_gone (SoupServerMessage *msg, gpointer data)
{
  ((Pending *)data)->gone = TRUE;
}

static void
on_connect_answer (GObject *source, GAsyncResult *result, gpointer data)
{
  Asking *asking = data;
  Pending *p = asking->p;
  ResumeFunc resume = asking->resume;
  g_autoptr (SoupServerMessage) msg = g_steal_pointer (&p->msg);
  g_autoptr (GError) error = NULL;
  g_autoptr (HeraldBackendReply) reply
      = herald_backend_call_finish (HERALD_BACKEND (source), result, &error);

  g_free (asking);
  g_clear_signal_handler (&p->disconnected_id, msg);
  if (p->gone)
    {
      pending_free (p);
      return;
    }
  soup_server_message_unpause (msg);
  if (reply == NULL)
    {
      g_debug ("connection %s: %s", p->id, error->message);
      soup_message_headers_replace (soup_server_message_get_response_headers (msg), "Retry-After",
                                    "1");
      refuse (msg, SOUP_STATUS_SERVICE_UNAVAILABLE, "The backend is unavailable");
      pending_free (p);
      return;
    }
  switch (reply->answer)
    {
    case HERALD_BACKEND_ERROR:
      refuse (msg, SOUP_STATUS_FORBIDDEN,
              *reply->message ? reply->message : "Refused by the backend");
      pending_free (p);
      return;
    case HERALD_BACKEND_DISCONNECT:
      if (p->transport == HERALD_TRANSPORT_SSE)
        {
          refuse (msg, SOUP_STATUS_FORBIDDEN,
                  *reply->message ? reply->message : "Refused by the backend");
          pending_free (p);
          return;
        }
      p->disconnect_code = (guint16)reply->code;
      p->disconnect_reason = g_strdup (reply->message);
      break;
    case HERALD_BACKEND_RESULT:
    default:
      /* Its "subs" act as the token claim: subscribed at open, in "connected" */
      p->claims = herald_proxy_claims_from_result (reply->result);
      p->proxied = TRUE;
      break;
    }
  resume (p, msg);
}

/* Pauses @msg and asks the connect hook; @resume finishes the handshake
 * with the backend's claims (or its disconnect). */
static void
ask_backend (Pending *p, SoupServerMessage *msg, ResumeFunc resume)
{
  HeraldConfig *config = herald_hub_get_config (p->handlers->hub);
  g_autoptr (JsonBuilder) b = json_builder_new ();
  g_autoptr (JsonNode) body = NULL;
  Asking *asking;

  /* Nothing to ask the backend about while draining */
  if (refuse_if_draining (p, msg))
    {
      pending_free (p);
      return;
    }
  asking = g_new0 (Asking, 1);

  if (p->id == NULL)
    p->id = herald_connection_id_new ();
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "client");
  json_builder_add_string_value (b, p->id);
  json_builder_set_member_name (b, "transport");
  json_builder_add_string_value (b, p->transport == HERALD_TRANSPORT_SSE ? "sse" : "websocket");
  json_builder_set_member_name (b, "remote_addr");
  json_builder_add_string_value (b, p->remote != NULL ? p->remote : "");
  json_builder_set_member_name (b, "headers");
  add_forwarded_headers (b, config, msg);
  json_builder_end_object (b);
  body = json_builder_get_root (b);

  asking->p = p;
  asking->resume = resume;
  g_set_object (&p->server, p->handlers->server);
  p->msg = g_object_ref (msg);
  p->disconnected_id = g_signal_connect (msg, "disconnected", G_CALLBACK (on_asked_client_gone), p);
  soup_server_message_pause (msg);
  herald_backend_call_async (herald_worker_get_backend (p->worker), HERALD_HOOK_CONNECT, body, NULL,
                             on_connect_answer, asking);
}

/* The backend's disconnect for a WebSocket: upgraded, then closed with its
 * code at once, without "connected". The close frame is tiny: one
 * non-blocking write on a fresh socket. */
static void
close_upgraded (Pending *p, SoupServerMessage *msg)
{
  g_autoptr (GIOStream) tls = NULL;
  g_autoptr (GBytes) leftover = NULL;
  g_autoptr (GBytes) frame = herald_ws_close_frame_new (p->disconnect_code, p->disconnect_reason);
  gsize length;
  const void *data = g_bytes_get_data (frame, &length);
  int fd;

  herald_security_forget (p->handlers->server, msg);
  fd = steal_socket (msg, &tls, &leftover);
  if (fd < 0)
    return;
  if (tls != NULL)
    g_pollable_output_stream_write_nonblocking (
        G_POLLABLE_OUTPUT_STREAM (g_io_stream_get_output_stream (tls)), data, length, NULL, NULL);
  else if (send (fd, data, length, MSG_NOSIGNAL) < 0)
    g_debug ("connection %s: close frame not sent", p->id);
  shutdown (fd, SHUT_WR);
  if (tls != NULL)
    g_io_stream_close (tls, NULL, NULL);
  close (fd);
}

/* ---- WebSocket ---- */

static void
on_ws_upgraded (SoupServerMessage *msg, gpointer user_data)
{
  Pending *p = user_data;
  g_autoptr (HeraldConnection) conn = NULL;

  if (soup_server_message_get_status (msg) != SOUP_STATUS_SWITCHING_PROTOCOLS)
    return;
  if (p->disconnect_code != 0)
    {
      close_upgraded (p, msg);
      return;
    }
  conn = adopt (p, msg, NULL);
}

/* The offered subprotocols without the bearer.<token> entries, which carry
 * the token and are never a protocol to select (nor echoed back). The
 * request's header is rewritten to that list, or removed when nothing else
 * was offered: a client that sends only its token (Python, Node ws, curl)
 * then gets no Sec-WebSocket-Protocol, as RFC 6455 4.2.2 allows. */
static char **
offered_protocols (SoupServerMessage *msg)
{
  SoupMessageHeaders *headers = soup_server_message_get_request_headers (msg);
  const char *header = soup_message_headers_get_list (headers, "Sec-WebSocket-Protocol");
  g_autoptr (GStrvBuilder) out = g_strv_builder_new ();
  g_auto (GStrv) list = NULL;
  g_auto (GStrv) kept = NULL;
  g_autofree char *joined = NULL;

  if (header == NULL)
    return NULL;
  list = g_strsplit (header, ",", -1);
  for (guint i = 0; list[i]; i++)
    {
      g_strstrip (list[i]);
      if (*list[i] && !g_str_has_prefix (list[i], "bearer."))
        g_strv_builder_add (out, list[i]);
    }
  kept = g_strv_builder_end (out);
  if (kept[0] == NULL)
    {
      soup_message_headers_remove (headers, "Sec-WebSocket-Protocol");
      return NULL;
    }
  joined = g_strjoinv (", ", kept);
  soup_message_headers_replace (headers, "Sec-WebSocket-Protocol", joined);
  return g_steal_pointer (&kept);
}

static void ws_finish (Pending *p, SoupServerMessage *msg);

static void
ws_handler (SoupServer *server, SoupServerMessage *msg, const char *path, GHashTable *query,
            gpointer user_data)
{
  HttpHandlers *handlers = user_data;
  HeraldWorker *worker = handlers->worker;
  HeraldHub *hub = handlers->hub;
  HeraldHandshakeHeaders h = request_headers (msg);
  g_auto (HeraldHandshakeRefusal) refusal = { 0 };
  g_autofree char *protocol = NULL;
  const char *requested_id = NULL;
  AuthResult auth;
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

  auth = authenticate (hub, worker, msg, &p->claims);
  if (auth == AUTH_REFUSED)
    goto refused;

  /* The request's header loses its bearer.* entries (never forwarded, never echoed) */
  g_strfreev (offered_protocols (msg));
  /* RFC 6455, the subprotocol and the id: herald-http-handshake.c decides */
  if (!herald_handshake_check_websocket (&h, &protocol, &refusal)
      || !herald_handshake_check_id (requested_id, &refusal))
    {
      refuse_as (msg, &refusal);
      goto refused;
    }
  if (requested_id != NULL)
    p->id = g_strdup (requested_id);
  if (auth == AUTH_ASK_BACKEND)
    {
      ask_backend (p, msg, ws_finish);
      return;
    }
  ws_finish (p, msg);
  return;

refused:
  pending_free (p);
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

/* After authentication: reserves the id and accepts the upgrade */
static void
ws_finish (Pending *p, SoupServerMessage *msg)
{
  HeraldConfig *config = herald_hub_get_config (p->handlers->hub);
  HeraldHandshakeHeaders h = request_headers (msg);
  g_auto (HeraldHandshakeRefusal) refusal = { 0 };
  g_autofree char *protocol = NULL;
  g_autofree char *extensions = NULL;

  /* Checked before the backend was asked: this only finds the subprotocol again */
  herald_handshake_check_websocket (&h, &protocol, &refusal);
  if (p->disconnect_code == 0 && !reserve (p, msg))
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
    /* every channel was checked by sse_finish() (or the backend) */
    .allowed = TRUE,
  };
  g_autoptr (HeraldConnection) conn = adopt (p, msg, &request);
}

static void sse_finish (Pending *p, SoupServerMessage *msg);
static void sse_start (Pending *p, SoupServerMessage *msg);

/* An SSE stream cannot wait for "subscribed": the subscribe hook is asked
 * about each subscribe=proxy channel before the stream starts. A refusal
 * answers 403, a backend that cannot answer 503 (a refusal wins). */
static void
on_sse_subscribe_answer (GObject *source, GAsyncResult *result, gpointer data)
{
  Pending *p = data;
  g_autoptr (GError) error = NULL;
  g_autoptr (HeraldBackendReply) reply
      = herald_backend_call_finish (HERALD_BACKEND (source), result, &error);
  g_autoptr (SoupServerMessage) msg = NULL;

  if (reply == NULL && p->refuse_status == 0)
    {
      p->refuse_status = SOUP_STATUS_SERVICE_UNAVAILABLE;
      p->refusal = g_strdup ("The backend is unavailable");
    }
  else if (reply != NULL && reply->answer != HERALD_BACKEND_RESULT
           && p->refuse_status != SOUP_STATUS_FORBIDDEN)
    {
      p->refuse_status = SOUP_STATUS_FORBIDDEN;
      g_free (p->refusal);
      p->refusal = g_strdup (*reply->message != '\0' ? reply->message
                                                     : "Not allowed to subscribe to this channel");
    }
  if (--p->asking > 0)
    return;
  msg = g_steal_pointer (&p->msg);
  g_clear_signal_handler (&p->disconnected_id, msg);
  if (p->gone)
    {
      pending_free (p);
      return;
    }
  soup_server_message_unpause (msg);
  if (p->refuse_status != 0)
    {
      if (p->refuse_status == SOUP_STATUS_SERVICE_UNAVAILABLE)
        soup_message_headers_replace (soup_server_message_get_response_headers (msg), "Retry-After",
                                      "1");
      refuse (msg, p->refuse_status, p->refusal);
      pending_free (p);
      return;
    }
  sse_start (p, msg);
}

static void
sse_ask_subscribe (Pending *p, SoupServerMessage *msg, GPtrArray *channels)
{
  HeraldConfig *config = herald_hub_get_config (p->handlers->hub);
  HeraldBackend *backend = herald_worker_get_backend (p->worker);

  if (backend == NULL || herald_config_get_proxy_url (config, HERALD_HOOK_SUBSCRIBE) == NULL)
    {
      refuse (msg, SOUP_STATUS_SERVICE_UNAVAILABLE, "The backend is unavailable");
      pending_free (p);
      return;
    }
  if (p->id == NULL)
    p->id = herald_connection_id_new ();
  g_set_object (&p->server, p->handlers->server);
  p->msg = g_object_ref (msg);
  p->disconnected_id = g_signal_connect (msg, "disconnected", G_CALLBACK (on_asked_client_gone), p);
  soup_server_message_pause (msg);
  p->asking = channels->len;
  for (guint i = 0; i < channels->len; i++)
    {
      g_autoptr (JsonBuilder) b = json_builder_new ();
      g_autoptr (JsonNode) body = NULL;

      json_builder_begin_object (b);
      json_builder_set_member_name (b, "client");
      json_builder_add_string_value (b, p->id);
      json_builder_set_member_name (b, "user");
      json_builder_add_string_value (b, p->claims != NULL && p->claims->sub != NULL ? p->claims->sub
                                                                                    : "");
      json_builder_set_member_name (b, "channel");
      json_builder_add_string_value (b, g_ptr_array_index (channels, i));
      json_builder_set_member_name (b, "data");
      json_builder_add_null_value (b);
      json_builder_end_object (b);
      body = json_builder_get_root (b);
      herald_backend_call_async (backend, HERALD_HOOK_SUBSCRIBE, body, NULL,
                                 on_sse_subscribe_answer, p);
    }
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

  switch (authenticate (hub, worker, msg, &p->claims))
    {
    case AUTH_REFUSED:
      pending_free (p);
      return;
    case AUTH_ASK_BACKEND:
      ask_backend (p, msg, sse_finish);
      return;
    case AUTH_OK:
    default:
      sse_finish (p, msg);
    }
}

/* After authentication: the channels (with the server's "subs"), the id,
 * then the stream's head */
static void
sse_finish (Pending *p, SoupServerMessage *msg)
{
  HeraldHandshakeHeaders h = request_headers (msg);
  g_auto (HeraldHandshakeRefusal) refusal = { 0 };
  g_autoptr (GPtrArray) to_ask = g_ptr_array_new ();

  /* The channels and the resume point: herald-http-handshake.c decides */
  if (!herald_handshake_check_sse (p->handlers->hub, &h, p->claims, &p->channels, &p->last_event_id,
                                   to_ask, &refusal))
    {
      refuse_as (msg, &refusal);
      goto refused;
    }
  if (to_ask->len > 0)
    {
      sse_ask_subscribe (p, msg, to_ask);
      return;
    }
  sse_start (p, msg);
  return;

refused:
  pending_free (p);
}

/* Every channel allowed: reserves the id and starts the stream */
static void
sse_start (Pending *p, SoupServerMessage *msg)
{
  SoupMessageHeaders *headers = soup_server_message_get_response_headers (msg);

  if (!reserve (p, msg))
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
