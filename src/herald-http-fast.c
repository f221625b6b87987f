/* herald-http-fast.c: HTTP/1.1 keep-alive fast path for the hot API calls.
 *
 * libsoup 3.2 cannot keep HTTP connections alive safely (it leaks idle
 * keep-alive connections the client closes), so through libsoup every
 * publish pays for a new TCP connection and libsoup's per-request objects.
 * Here the worker reads the request itself:
 *
 * - A new connection's first head is only peeked (MSG_PEEK) until
 *   "\r\n\r\n" is there, then read (herald_http_fast_request_decide(): a one-pass reader
 *   for the usual head, libsoup's parser for anything unusual). A request
 *   this module does not answer is handed to libsoup untouched.
 * - An eligible request is consumed: head and body are taken off the
 *   socket, the body read once, the hub called. Responses wait in a
 *   per-connection FIFO (publishing may be asynchronous) and are written at
 *   the end of the loop iteration, with the deliveries they caused.
 * - Once a connection has been answered here, its requests are read with
 *   plain recv() (direct mode, one syscall per request instead of a peek and
 *   a read). A later request libsoup must answer is handed over with the
 *   bytes already read, which libsoup reads first (HeraldPrefixInputStream).
 * - Deadlines are checked from the worker's 1 s tick over the list of
 *   connections owned here (no timer per connection): a started head or
 *   body, or a blocked write, must complete within [limits]
 *   handshake-timeout; an idle kept-alive connection is closed after
 *   IDLE_TIMEOUT seconds.
 *
 * Status codes, bodies and error messages are those of herald-http-api.c
 * (the helpers are shared); the messages were marked for translation there.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <errno.h>
#include <libintl.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <json-glib/json-glib.h>
#include <libsoup/soup.h>

#include "herald-error.h"
#include "herald-http-api.h"
#include "herald-http-fast-wire.h"
#include "herald-http-fast.h"
#include "herald-http-route.h"
#include "herald-http-upgrade.h"
#include "herald-json.h"
#include "herald-metrics.h"
#include "herald-names.h"

#define HEAD_MAX (64 * 1024)  /* request line, headers and the blank line (docs/security.md) */
#define PEEK_FIRST 4096       /* a longer head is taken off the socket (direct mode) */
#define IDLE_TIMEOUT 60       /* seconds a kept-alive connection may idle */
#define MAX_PENDING 64        /* responses queued before reading stops */
#define OUT_HIGH (256 * 1024) /* unwritten bytes before reading stops */
#define BUFFER_SIZE (HEAD_MAX + 64 * 1024)

typedef enum
{
  STATE_IDLE,   /* between requests */
  STATE_HEAD,   /* part of a head has arrived */
  STATE_BODY,   /* head consumed, reading the body */
  STATE_LINGER, /* last response written, write side shut: discarding input */
} State;

typedef struct _FastConn FastConn;

/* A response in the FIFO: ready once its bytes are set. */
typedef struct
{
  FastConn *conn; /* owned ref */
  char *data;
  gsize len;
  gboolean close;
  gboolean http10;
  gboolean orphan; /* the connection closed while the hub was busy */
} Pending;

struct _FastConn
{
  HeraldLoopHandler handler; /* first field: the worker's epoll set names it */
  gint ref;
  HeraldHttpFast *owner; /* NULL once closed or handed off */
  int fd;
  gpointer listener;
  GList link; /* in owner->conns */

  State state;
  guint32 deadline;
  gsize peek_size;
  gboolean closing;   /* answer what is pending, then close */
  gboolean hand_off;  /* give the next request to libsoup once flushed */
  gboolean throttled; /* stopped reading: too much pending */
  gboolean write_armed;
  gboolean flush_queued; /* in owner->to_flush */
  gboolean peer_done;    /* EPOLLRDHUP: the client sends nothing more */

  HeraldHttpFastRequest req; /* STATE_BODY */
  GByteArray *body;          /* STATE_BODY, reused */
  gsize body_got;

  /* Buffered mode (see read_buffered()): bytes taken off the socket but not
   * yet answered. */
  GByteArray *inbuf;
  gboolean buffered;
  guint64 served; /* requests answered here */

  GQueue pending; /* of Pending*, request order */
  GString *out;   /* unwritten response bytes */
  gsize out_pos;
};

struct _HeraldHttpFast
{
  HeraldHub *hub;
  HeraldConfig *config;
  HeraldLoop *loop;
  HeraldHttpFastHandOff hand_off;
  gpointer user_data;
  GQueue conns; /* of FastConn*, links embedded */
  char *buffer; /* peek/read scratch */
  SoupMessageHeaders *headers;
  JsonParser *parser;
  GPtrArray *graveyard; /* closed by close_all(), freed at the next sweep */
  GPtrArray *to_flush;  /* of FastConn* (refs): responses written at the end of the iteration */
  HeraldHttpUpgrade *upgrade; /* the plain handshakes, or NULL */
};

static void conn_read (FastConn *c);
static void conn_flush (FastConn *c);
static gboolean over_limits (FastConn *c);
static void conn_ready (HeraldLoopHandler *handler, guint32 events);

/* ---- connections ---- */

static FastConn *
conn_ref (FastConn *c)
{
  c->ref++;
  return c;
}

static void
conn_unref (FastConn *c)
{
  if (--c->ref > 0)
    return;
  herald_http_fast_request_clear (&c->req);
  g_clear_pointer (&c->body, g_byte_array_unref);
  g_clear_pointer (&c->inbuf, g_byte_array_unref);
  if (c->out)
    g_string_free (c->out, TRUE);
  g_free (c);
}

static void
pending_free (Pending *p)
{
  FastConn *c = p->conn;

  g_free (p->data);
  g_free (p);
  conn_unref (c);
}

static guint32
timeout_s (HeraldHttpFast *self)
{
  return herald_config_get_handshake_timeout (self->config);
}

/* Leaves the fd to the caller (closed or handed off; watched unless @unwatch). */
static void
conn_detach (FastConn *c, gboolean unwatch)
{
  HeraldHttpFast *self = c->owner;
  GList *l;

  if (unwatch)
    herald_loop_remove (self->loop, c->fd);
  g_queue_unlink (&self->conns, &c->link);
  c->owner = NULL;
  /* Responses the hub still owes are dropped when they come. */
  while ((l = g_queue_peek_head_link (&c->pending)))
    {
      Pending *p = g_queue_pop_head (&c->pending);
      if (p->data)
        pending_free (p);
      else
        p->orphan = TRUE;
    }
}

static void
conn_close (FastConn *c)
{
  int fd = c->fd;

  if (c->owner == NULL)
    return;
  conn_detach (c, TRUE);
  c->fd = -1;
  close (fd);
  conn_unref (c); /* the owner's */
}

static void
conn_hand_off (FastConn *c)
{
  HeraldHttpFast *self = c->owner;
  g_autoptr (GBytes) prefix = NULL;
  int fd = c->fd;

  /* Direct mode read the next request's first bytes (or all of it). */
  if (c->inbuf && c->inbuf->len > 0)
    prefix = g_byte_array_free_to_bytes (g_steal_pointer (&c->inbuf));
  conn_detach (c, TRUE);
  c->fd = -1;
  self->hand_off (self->user_data, c->listener, fd, prefix);
  conn_unref (c);
}

void
herald_http_fast_accept (HeraldHttpFast *self, int fd, gpointer listener)
{
  FastConn *c = g_new0 (FastConn, 1);

  c->handler = (HeraldLoopHandler)HERALD_LOOP_HANDLER_INIT (conn_ready);
  c->ref = 1;
  c->owner = self;
  c->fd = fd;
  c->listener = listener;
  c->state = STATE_IDLE;
  c->peek_size = PEEK_FIRST;
  c->deadline = herald_loop_now () + timeout_s (self);
  c->out = g_string_sized_new (256);
  c->link.data = c;
  g_queue_push_tail_link (&self->conns, &c->link);
  /* Edge-triggered: peeking leaves the bytes readable, so a level-triggered
   * registration would wake the loop until the rest of the head came. */
  if (!herald_loop_add (self->loop, fd, EPOLLIN | EPOLLRDHUP | EPOLLET, c))
    {
      g_debug ("http-fast: epoll_ctl: %s", g_strerror (errno));
      conn_close (c);
    }
}

/* ---- responses ---- */

/* Moves ready responses at the head of the FIFO to the output buffer. */
static void
drain_pending (FastConn *c)
{
  Pending *p;

  while ((p = g_queue_peek_head (&c->pending)) && p->data)
    {
      g_queue_pop_head (&c->pending);
      g_string_append_len (c->out, p->data, p->len);
      pending_free (p);
    }
}

/* Queues a complete response (in order behind any still pending). */
static void
emit (FastConn *c, guint status, const char *body, gsize len, const HeraldHttpFastRequest *req,
      gboolean www_authenticate)
{
  if (req->close)
    c->closing = TRUE;
  if (g_queue_is_empty (&c->pending))
    {
      herald_http_fast_append_response (c->out, status, body, len, req->close, req->http10,
                                        www_authenticate);
      return;
    }
  {
    Pending *p = g_new0 (Pending, 1);
    GString *s = g_string_sized_new (len + 160);

    herald_http_fast_append_response (s, status, body, len, req->close, req->http10,
                                      www_authenticate);
    p->conn = conn_ref (c);
    p->len = s->len;
    p->data = g_string_free (s, FALSE);
    g_queue_push_tail (&c->pending, p);
  }
}

static void
emit_error (FastConn *c, guint status, const char *message, const HeraldHttpFastRequest *req)
{
  gsize len = 0;
  g_autofree char *body = herald_json_error_body (message, &len);

  emit (c, status, body, len, req, status == SOUP_STATUS_UNAUTHORIZED);
}

static void
emit_gerror (FastConn *c, const GError *error, const HeraldHttpFastRequest *req)
{
  emit_error (c, herald_http_api_status_for_error (error, TRUE), error->message, req);
}

static void
emit_uint (FastConn *c, const char *name, guint64 value, const HeraldHttpFastRequest *req)
{
  g_autoptr (GString) body = herald_http_fast_uint_body (name, value);

  emit (c, SOUP_STATUS_OK, body->str, body->len, req, FALSE);
}

/* The answer to a publish made synchronously. */
static void
emit_published (FastConn *c, const HeraldHttpFastRequest *req, gboolean ok, guint64 offset,
                const GError *error)
{
  if (ok)
    emit_uint (c, NULL, offset, req); /* null when not stored */
  else
    emit_gerror (c, error, req);
}

static void
set_write_armed (FastConn *c, gboolean armed)
{
  guint32 events = EPOLLIN | EPOLLRDHUP | EPOLLET | (armed ? EPOLLOUT : 0);

  if (c->write_armed == armed)
    return;
  c->write_armed = armed;
  herald_loop_modify (c->owner->loop, c->fd, events, c);
}

static void
begin_linger (FastConn *c)
{
  /* Closing with unread input would reset the connection and could destroy
   * the response on its way: shut the write side, then read what the client
   * still sends (a refused body) until it closes or the deadline. */
  shutdown (c->fd, SHUT_WR);
  c->state = STATE_LINGER;
  c->deadline = herald_loop_now () + timeout_s (c->owner);
  conn_read (c);
}

/* Writes what is ready; then closes, lingers or hands off when due. */
static void
conn_flush (FastConn *c)
{
  while (c->out_pos < c->out->len)
    {
      ssize_t n = send (c->fd, c->out->str + c->out_pos, c->out->len - c->out_pos,
                        MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n < 0)
        {
          if (errno == EINTR)
            continue;
          if (errno == EAGAIN || errno == EWOULDBLOCK)
            {
              if (!c->write_armed)
                c->deadline = herald_loop_now () + timeout_s (c->owner);
              set_write_armed (c, TRUE);
              return;
            }
          conn_close (c);
          return;
        }
      c->out_pos += n;
      /* The write deadline is for a client that stops reading, not a slow one. */
      if (c->write_armed)
        c->deadline = herald_loop_now () + timeout_s (c->owner);
    }
  g_string_truncate (c->out, 0);
  c->out_pos = 0;
  set_write_armed (c, FALSE);

  if (!g_queue_is_empty (&c->pending))
    return;
  if (c->closing && c->state != STATE_LINGER)
    begin_linger (c);
  else if (c->hand_off)
    conn_hand_off (c);
}

/* ---- requests ---- */

static void
publish_cb (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Pending *p = user_data;
  FastConn *c = p->conn;
  g_autoptr (GError) error = NULL;
  GString *s;
  guint64 offset = 0;
  HeraldHttpFastRequest req = { 0 };

  if (p->orphan)
    {
      herald_hub_publish_finish (HERALD_HUB (source), result, NULL, NULL);
      pending_free (p);
      return;
    }

  req.close = p->close;
  req.http10 = p->http10;
  s = g_string_sized_new (200);
  if (herald_hub_publish_finish (HERALD_HUB (source), result, &offset, &error))
    {
      g_autoptr (GString) body = herald_http_fast_uint_body (NULL, offset);
      herald_http_fast_append_response (s, SOUP_STATUS_OK, body->str, body->len, req.close,
                                        req.http10, FALSE);
    }
  else
    {
      gsize len = 0;
      g_autofree char *body = herald_json_error_body (error->message, &len);
      herald_http_fast_append_response (s, herald_http_api_status_for_error (error, TRUE), body,
                                        len, req.close, req.http10, FALSE);
    }
  p->len = s->len;
  p->data = g_string_free (s, FALSE);

  conn_ref (c);
  if (g_queue_peek_head (&c->pending) == p)
    {
      gboolean resume = c->throttled;

      drain_pending (c);
      conn_flush (c);
      if (resume && c->owner && c->state != STATE_LINGER)
        {
          c->throttled = FALSE;
          conn_read (c);
        }
    }
  conn_unref (c);
}

/* The common publish body, read in one pass by herald_json_scan_publish()
 * without json-glib (in-process engine only). FALSE: not handled, nothing
 * done (the general path answers, errors included). */
static gboolean
publish_scanned (FastConn *c, const HeraldHttpFastRequest *req, const char *body, gsize len)
{
  HeraldHttpFast *self = c->owner;
  g_autoptr (GError) error = NULL;
  g_autofree char *channel = NULL;
  g_autofree char *key = NULL;
  g_autofree char *data = NULL;
  guint64 offset = 0;
  gboolean ok;

  if (!herald_hub_can_publish_now (self->hub) || len == 0
      || len > herald_config_get_max_message_size (self->config)
      || !g_utf8_validate_len (body, len, NULL)
      || !herald_json_scan_publish (body, len, &channel, &key, &data))
    return FALSE;
  /* herald-http-api.c's wording for a bad channel; the hub checks it too. */
  if (!herald_channel_name_is_valid (channel))
    g_set_error (&error, HERALD_ERROR, HERALD_ERROR_INVALID_ARGUMENT,
                 gettext ("Invalid channel name “%s”"), channel);
  ok = error == NULL
       && herald_hub_publish_text_now (self->hub, channel, key, data, &offset, &error);
  emit_published (c, req, ok, offset, error);
  return TRUE;
}

static void
handle_request (FastConn *c, const HeraldHttpFastRequest *req, const char *body, gsize len)
{
  HeraldHttpFast *self = c->owner;
  g_autoptr (JsonObject) request = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *data = NULL;
  guint delivered = 0;
  gboolean ok = FALSE;

  c->served++;
  if (req->early == SOUP_STATUS_NOT_FOUND)
    {
      emit_error (c, SOUP_STATUS_NOT_FOUND, gettext ("HTTP API disabled: no API key configured"),
                  req);
      return;
    }
  if (req->early == SOUP_STATUS_UNAUTHORIZED)
    {
      emit_error (c, SOUP_STATUS_UNAUTHORIZED, gettext ("Missing or invalid API key"), req);
      return;
    }

  if (req->route == HERALD_API_ROUTE_PUBLISH && publish_scanned (c, req, body, len))
    return;
  request = herald_http_api_parse_body (
      self->parser, body, len, herald_config_get_max_message_size (self->config), &data, &error);
  if (request == NULL)
    {
      emit_gerror (c, error, req);
      return;
    }

  if (req->route == HERALD_API_ROUTE_PUBLISH)
    {
      const char *channel, *key;
      Pending *p;

      if (!herald_http_api_read_publish (request, data, &channel, &key, &error))
        {
          emit_gerror (c, error, req);
          return;
        }
      if (herald_hub_can_publish_now (self->hub))
        {
          /* In-process engine: answer in this iteration, coalesced with the
           * other responses of the batch. */
          guint64 offset = 0;
          gboolean done
              = herald_hub_publish_text_now (self->hub, channel, key, data, &offset, &error);

          emit_published (c, req, done, offset, error);
          return;
        }
      p = g_new0 (Pending, 1);
      p->conn = conn_ref (c);
      p->close = req->close;
      p->http10 = req->http10;
      if (req->close)
        c->closing = TRUE;
      g_queue_push_tail (&c->pending, p);
      herald_hub_publish_text_async (self->hub, channel, key, data, NULL, publish_cb, p);
      return;
    }

  if (!herald_http_api_require_data (data, &error))
    {
      emit_gerror (c, error, req);
      return;
    }
  switch (req->route)
    {
    case HERALD_API_ROUTE_BROADCAST:
      ok = herald_hub_broadcast (self->hub, data, &delivered, &error);
      break;
    case HERALD_API_ROUTE_USER_SEND:
      if (!g_utf8_validate (req->arg, -1, NULL))
        {
          emit_error (c, SOUP_STATUS_BAD_REQUEST, gettext ("Invalid user id"), req);
          return;
        }
      ok = herald_hub_send_to_user (self->hub, req->arg, data, &delivered, &error);
      break;
    case HERALD_API_ROUTE_CONNECTION_SEND:
      ok = herald_hub_send_to_connection (self->hub, req->arg, data, &error);
      delivered = 1;
      break;
    case HERALD_API_ROUTE_PUBLISH:
    case HERALD_API_ROUTE_NONE:
    default:
      g_assert_not_reached ();
    }
  if (ok)
    emit_uint (c, "delivered", delivered, req);
  else
    emit_gerror (c, error, req);
}

/* The request target, if it is one of the routes answered here and plain
 * enough that libsoup would see the same path: origin form, no query or
 * fragment, no dot segments, valid percent-escapes. */
/**
 * herald_http_fast_read_head_for_test:
 *
 * Reads @head with the one-pass reader (@simple) or with libsoup's parser,
 * so a test can check they agree. Returns 1 (answered here, @out filled),
 * 0 (left to libsoup) or -1 (the one-pass reader is unsure).
 */
int
herald_http_fast_read_head_for_test (HeraldHttpFast *self, const char *head, gsize head_len,
                                     gboolean simple, HeraldHttpFastHead *out)
{
  return herald_http_fast_wire_read_head_for_test (self->config, self->headers, head, head_len,
                                                   simple, out);
}

/* Consumes exactly @len bytes already known to be queued on the socket. */
static gboolean
consume (FastConn *c, gsize len)
{
  while (len > 0)
    {
      /* MSG_TRUNC: TCP discards the bytes without copying them (the peek
       * already did). */
      ssize_t n = recv (c->fd, NULL, len, MSG_TRUNC);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        return FALSE;
      len -= n;
    }
  return TRUE;
}

/* A first head that may be a WebSocket or SSE handshake (herald-http-upgrade.h). */
static gboolean
read_upgrade (FastConn *c, gsize head_len, gsize n)
{
  g_auto (HeraldHttpUpgradeCall) call = { 0 };
  HeraldHttpUpgrade *upgrade = c->owner->upgrade;
  int fd = c->fd;

  switch (herald_http_upgrade_decide (upgrade, fd, c->owner->buffer, head_len, n, &call))
    {
    case HERALD_HTTP_UPGRADE_REFUSED: /* answered, then a lingering close */
      c->closing = TRUE;
      g_string_append_len (c->out, call.response->str, call.response->len);
      if (!consume (c, head_len))
        conn_close (c);
      return FALSE;
    case HERALD_HTTP_UPGRADE_ACCEPTED:
      if (!consume (c, n))
        return conn_close (c), FALSE;
      conn_detach (c, FALSE); /* the connection takes over its epoll entry */
      c->fd = -1;
      herald_http_upgrade_adopt (upgrade, &call, fd);
      conn_unref (c); /* the owner's */
      return FALSE;
    default:
      c->hand_off = TRUE;
      return FALSE;
    }
}

/* Reads one request head. Returns TRUE when the caller should go on reading. */
static gboolean
read_head (FastConn *c)
{
  HeraldHttpFast *self = c->owner;
  gsize head_len = 0;
  gboolean bare = FALSE;
  gboolean more;
  ssize_t n;

  n = recv (c->fd, self->buffer, c->peek_size, MSG_PEEK);
  if (n < 0)
    {
      if (errno == EINTR)
        return TRUE;
      if (errno != EAGAIN && errno != EWOULDBLOCK)
        conn_close (c);
      return FALSE;
    }
  if (n == 0)
    {
      /* The client is done: drop a partial head, answer what is pending. */
      if (c->state == STATE_HEAD || (g_queue_is_empty (&c->pending) && c->out->len == 0))
        conn_close (c);
      else
        c->closing = TRUE;
      return FALSE;
    }

  if (!herald_http_fast_find_head_end (self->buffer, n, &head_len, &bare))
    {
      if ((gsize)n < c->peek_size && c->peer_done)
        {
          conn_close (c); /* half a head, and the client sends nothing more */
          return FALSE;
        }
      if (c->state == STATE_IDLE)
        {
          c->state = STATE_HEAD;
          c->deadline = herald_loop_now () + timeout_s (self);
        }
      if (c->served > 0 || (gsize)n == c->peek_size)
        {
          /* A pipelining client: the kernel charges a receive buffer for the
           * whole of a partly read segment, so a partial head left behind
           * the requests just consumed can pin the receive window at zero
           * and the rest never comes. A long head (up to HEAD_MAX, a big
           * cookie) might not fit the receive window either. Take it off the
           * socket: direct mode reads the rest, and hands it to libsoup with
           * the bytes read if libsoup must answer. */
          if (c->inbuf == NULL)
            c->inbuf = g_byte_array_new ();
          n = recv (c->fd, self->buffer, n, 0);
          if (n <= 0)
            {
              conn_close (c);
              return FALSE;
            }
          g_byte_array_append (c->inbuf, (const guint8 *)self->buffer, n);
          c->buffered = TRUE;
          return TRUE;
        }
      return FALSE;
    }

  if (!bare && self->upgrade && herald_http_upgrade_wants (self->buffer, head_len))
    return read_upgrade (c, head_len, n);
  herald_http_fast_request_clear (&c->req);
  if (bare
      || !herald_http_fast_request_decide (self->config, self->headers, self->buffer, head_len,
                                           &c->req))
    {
      c->hand_off = TRUE;
      return FALSE;
    }

  if (c->req.length > herald_config_get_max_message_size (self->config)
      || (c->req.early != 0 && head_len + c->req.length > (gsize)n))
    {
      /* The body is not read (too large, or not needed for the answer and
       * not here yet): answer now and close (lingering drains it). */
      HeraldHttpFastRequest *req = &c->req;

      req->close = TRUE;
      if (!consume (c, head_len))
        {
          conn_close (c);
          return FALSE;
        }
      if (req->early == SOUP_STATUS_NOT_FOUND || req->early == SOUP_STATUS_UNAUTHORIZED)
        handle_request (c, req, NULL, 0);
      else
        emit_error (c, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE,
                    gettext ("Request body exceeds max-message-size"), req);
      return FALSE;
    }

  if (head_len + c->req.length <= (gsize)n)
    {
      /* Head and body are both here: take them in one read. */
      if (!consume (c, head_len + c->req.length))
        {
          conn_close (c);
          return FALSE;
        }
      handle_request (c, &c->req, self->buffer + head_len, c->req.length);
      /* Answered here once: from now on requests are read without peeking. */
      c->buffered = TRUE;
      /* The peek saw the socket's whole queue (it did not fill the buffer)
       * and that is now consumed: anything newer raises a fresh edge, so
       * save the peek that would only say EAGAIN. */
      more = (gsize)n > head_len + c->req.length || (gsize)n == c->peek_size || c->peer_done;
      herald_http_fast_request_clear (&c->req);
      c->state = STATE_IDLE;
      c->peek_size = PEEK_FIRST;
      c->deadline = herald_loop_now () + IDLE_TIMEOUT;
      return more;
    }

  if (!consume (c, head_len))
    {
      conn_close (c);
      return FALSE;
    }
  if (c->state == STATE_IDLE)
    c->deadline = herald_loop_now () + timeout_s (self);
  c->state = STATE_BODY;
  if (c->body == NULL)
    c->body = g_byte_array_new ();
  g_byte_array_set_size (c->body, c->req.length);
  c->body_got = 0;
  return TRUE;
}

/* Direct mode (a connection that was already answered here): requests are
 * read with recv(), without peeking, and answered from the bytes read;
 * bytes of an incomplete request wait in c->inbuf. A request libsoup must
 * answer is handed to it with the bytes already read (see
 * HeraldHttpFastHandOff), once the earlier responses are out.
 *
 * Answers the complete requests at the front of @data; returns the bytes
 * used. Sets *stop when reading must stop (hand-off, closing, throttling);
 * when the rest is to be dropped, all of @len counts as used. */
static gsize
answer_buffered (FastConn *c, const char *data, gsize len, gboolean *stop)
{
  HeraldHttpFast *self = c->owner;
  HeraldHttpFastRequest *req = &c->req;
  gsize used = 0;

  while (used < len && c->owner != NULL)
    {
      const char *at = data + used;
      gsize head_len = 0;
      gboolean bare = FALSE, found;

      if (c->closing || c->hand_off)
        {
          *stop = TRUE;
          break;
        }
      if (over_limits (c))
        {
          c->throttled = TRUE;
          *stop = TRUE;
          break;
        }
      found = herald_http_fast_find_head_end (at, len - used, &head_len, &bare);
      /* Complete or not, a head may not pass HEAD_MAX. */
      if (found ? head_len > HEAD_MAX : len - used >= HEAD_MAX)
        {
          HeraldHttpFastRequest too_long = { .close = TRUE };
          emit_error (c, 431, "Request header fields too large", &too_long);
          *stop = TRUE;
          return len;
        }
      if (!found)
        break; /* wait for the rest of the head */
      herald_http_fast_request_clear (req);
      if (bare || !herald_http_fast_request_decide (self->config, self->headers, at, head_len, req))
        {
          herald_http_fast_request_clear (req);
          c->hand_off = TRUE;
          *stop = TRUE;
          break;
        }
      /* A body too large, or not needed for the answer and not all here:
       * answered now, then the connection closes (lingering drains it). */
      if (req->length > herald_config_get_max_message_size (self->config)
          || (req->early != 0 && head_len + req->length > len - used))
        {
          req->close = TRUE;
          if (req->early == SOUP_STATUS_NOT_FOUND || req->early == SOUP_STATUS_UNAUTHORIZED)
            handle_request (c, req, NULL, 0);
          else
            emit_error (c, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE,
                        gettext ("Request body exceeds max-message-size"), req);
          herald_http_fast_request_clear (req);
          *stop = TRUE;
          return len;
        }
      if (head_len + req->length > len - used)
        {
          herald_http_fast_request_clear (req);
          break; /* wait for the rest of the body */
        }
      handle_request (c, req, at + head_len, req->length);
      used += head_len + req->length;
      herald_http_fast_request_clear (req);
    }
  return used;
}

static gsize
held (FastConn *c)
{
  return c->inbuf ? c->inbuf->len : 0;
}

/* Answers the complete requests in c->inbuf and drops them from it.
 * Returns FALSE when the connection went away. */
static gboolean
answer_held (FastConn *c, gboolean *stop)
{
  gsize used = answer_buffered (c, (const char *)c->inbuf->data, c->inbuf->len, stop);

  if (c->owner == NULL)
    return FALSE;
  g_byte_array_remove_range (c->inbuf, 0, used);
  return TRUE;
}

/* Reads and answers in direct mode. Returns TRUE when the caller should go
 * on reading. c->inbuf is NULL whenever nothing is held. */
static gboolean
read_buffered (FastConn *c)
{
  HeraldHttpFast *self = c->owner;
  gboolean stop = FALSE;
  gboolean was_empty = held (c) == 0;
  gsize used;
  ssize_t n;

  /* What is held first (the rest of a batch read before throttling). */
  if (!was_empty && (!answer_held (c, &stop) || stop))
    return FALSE;

  n = recv (c->fd, self->buffer, BUFFER_SIZE, 0);
  if (n < 0)
    {
      if (errno == EINTR)
        return TRUE;
      if (errno != EAGAIN && errno != EWOULDBLOCK)
        conn_close (c);
      return FALSE;
    }
  if (n == 0)
    {
      /* The client is done: drop a partial request, answer what is pending. */
      if (held (c) > 0 || (g_queue_is_empty (&c->pending) && c->out->len == 0))
        conn_close (c);
      else
        c->closing = TRUE;
      return FALSE;
    }

  if (held (c) == 0)
    {
      /* The usual case: whole requests, answered from the scratch buffer. */
      used = answer_buffered (c, self->buffer, n, &stop);
      if (c->owner == NULL)
        return FALSE;
      if (used < (gsize)n)
        {
          if (c->inbuf == NULL)
            c->inbuf = g_byte_array_new ();
          g_byte_array_append (c->inbuf, (const guint8 *)self->buffer + used, n - used);
        }
    }
  else
    {
      g_byte_array_append (c->inbuf, (const guint8 *)self->buffer, n);
      if (!answer_held (c, &stop))
        return FALSE;
    }

  if (held (c) == 0)
    {
      g_clear_pointer (&c->inbuf, g_byte_array_unref);
      c->state = STATE_IDLE;
      c->deadline = herald_loop_now () + IDLE_TIMEOUT;
    }
  else if (was_empty)
    {
      /* A partial request must complete in time (not renewed by each byte). */
      c->state = STATE_HEAD;
      c->deadline = herald_loop_now () + timeout_s (self);
    }
  if (stop)
    return FALSE;
  /* Edge-triggered: a short read drained the socket. A client that shut
   * its side after these requests sends no new edge for its EOF: read on
   * to see it. */
  return (gsize)n == BUFFER_SIZE || c->peer_done;
}

static gboolean
read_body (FastConn *c)
{
  while (c->body_got < c->req.length)
    {
      ssize_t n = recv (c->fd, c->body->data + c->body_got, c->req.length - c->body_got, 0);
      if (n < 0)
        {
          if (errno == EINTR)
            continue;
          if (errno != EAGAIN && errno != EWOULDBLOCK)
            conn_close (c);
          return FALSE;
        }
      if (n == 0)
        {
          conn_close (c);
          return FALSE;
        }
      c->body_got += n;
    }
  handle_request (c, &c->req, (const char *)c->body->data, c->req.length);
  herald_http_fast_request_clear (&c->req);
  c->buffered = TRUE;
  if (c->body->len > 64 * 1024)
    g_byte_array_set_size (c->body, 0);
  c->state = STATE_IDLE;
  c->peek_size = PEEK_FIRST;
  c->deadline = herald_loop_now () + IDLE_TIMEOUT;
  return TRUE;
}

static void
linger_read (FastConn *c)
{
  for (;;)
    {
      ssize_t n = recv (c->fd, c->owner->buffer, BUFFER_SIZE, 0);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return;
      if (n <= 0)
        {
          conn_close (c);
          return;
        }
    }
}

static gboolean
over_limits (FastConn *c)
{
  return g_queue_get_length (&c->pending) >= MAX_PENDING || c->out->len - c->out_pos >= OUT_HIGH;
}

/* Responses go out at the end of the loop iteration, with the deliveries the
 * requests caused: the client is woken once for all of them, not once per
 * write (a wake-up is the costliest part of a loopback send). */
static void
queue_flush (FastConn *c)
{
  if (c->flush_queued || c->owner == NULL)
    return;
  c->flush_queued = TRUE;
  g_ptr_array_add (c->owner->to_flush, conn_ref (c));
}

/**
 * herald_http_fast_flush:
 *
 * Writes the responses queued in this loop iteration; the worker calls it
 * after flushing its connections.
 */
void
herald_http_fast_flush (HeraldHttpFast *self)
{
  /* By index: a flush may queue more (they are taken in the same pass). */
  for (guint i = 0; i < self->to_flush->len; i++)
    {
      FastConn *c = g_ptr_array_index (self->to_flush, i);

      c->flush_queued = FALSE;
      if (c->owner != NULL)
        conn_flush (c);
      conn_unref (c);
    }
  g_ptr_array_set_size (self->to_flush, 0);
}

gboolean
herald_http_fast_has_pending (HeraldHttpFast *self)
{
  return self->to_flush->len > 0;
}

static void
conn_read (FastConn *c)
{
  conn_ref (c);
  for (;;)
    {
      while (c->owner != NULL)
        {
          if (c->state == STATE_LINGER)
            {
              linger_read (c);
              break;
            }
          if (c->state == STATE_BODY)
            {
              if (!read_body (c))
                break;
              continue;
            }
          if (c->closing || c->hand_off)
            break;
          if (over_limits (c))
            {
              c->throttled = TRUE;
              break;
            }
          if (c->buffered)
            {
              if (!read_buffered (c))
                break;
              continue;
            }
          if (!read_head (c))
            break;
        }
      if (c->owner == NULL || c->state == STATE_LINGER)
        break;
      drain_pending (c);
      /* Hand-offs and closes at once, as before responses were batched. */
      if (c->throttled || c->hand_off || c->closing)
        conn_flush (c);
      else
        queue_flush (c);
      /* Edge-triggered: what was left unread while throttled gets no new
       * event, so go on here once the responses are out. */
      if (c->owner == NULL || !c->throttled || over_limits (c) || c->state == STATE_LINGER)
        break;
      c->throttled = FALSE;
    }
  conn_unref (c);
}

static void
conn_ready (HeraldLoopHandler *handler, guint32 events)
{
  FastConn *c = (FastConn *)handler;

  /* Closed earlier in this batch of events (herald_http_fast_close_all()). */
  if (c->owner == NULL)
    return;
  conn_ref (c);
  if (events & (EPOLLRDHUP | EPOLLHUP))
    c->peer_done = TRUE;
  if (events & EPOLLOUT)
    {
      conn_flush (c);
      if (c->owner && c->throttled && c->out->len - c->out_pos < OUT_HIGH)
        {
          c->throttled = FALSE;
          conn_read (c);
        }
    }
  if (c->owner && (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
    conn_read (c);
  conn_unref (c);
}

/* ---- the owner ---- */

void
herald_http_fast_sweep (HeraldHttpFast *self, guint32 now)
{
  GList *l = self->conns.head;

  g_ptr_array_set_size (self->graveyard, 0);
  while (l)
    {
      FastConn *c = l->data;

      l = l->next;
      /* Waiting for the hub is not the client's fault. */
      if (!g_queue_is_empty (&c->pending) && !c->write_armed)
        continue;
      if (now >= c->deadline)
        {
          g_debug ("http-fast: closing a connection past its deadline (state %d)", c->state);
          conn_close (c);
        }
    }
}

HeraldHttpFast *
herald_http_fast_new (HeraldHub *hub, HeraldLoop *loop, HeraldHttpFastHandOff hand_off,
                      gpointer user_data)
{
  HeraldHttpFast *self = g_new0 (HeraldHttpFast, 1);

  self->hub = hub;
  self->config = herald_hub_get_config (hub);
  self->loop = loop;
  self->hand_off = hand_off;
  self->user_data = user_data;
  g_queue_init (&self->conns);
  self->buffer = g_malloc (BUFFER_SIZE);
  self->headers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_REQUEST);
  self->parser = json_parser_new_immutable ();
  self->graveyard = g_ptr_array_new_with_free_func ((GDestroyNotify)conn_unref);
  self->to_flush = g_ptr_array_new ();
  return self;
}

void
herald_http_fast_set_upgrade (HeraldHttpFast *self, HeraldHttpUpgrade *upgrade)
{
  self->upgrade = upgrade;
}

void
herald_http_fast_close_all (HeraldHttpFast *self)
{
  /* Called from the worker's inbox, in the middle of a batch of epoll
   * events that may still name these connections: keep them allocated
   * until the next sweep. */
  while (self->conns.head)
    {
      FastConn *c = self->conns.head->data;

      g_ptr_array_add (self->graveyard, conn_ref (c));
      conn_close (c);
    }
}

void
herald_http_fast_free (HeraldHttpFast *self)
{
  if (self == NULL)
    return;
  herald_http_fast_close_all (self);
  herald_http_fast_flush (self);
  g_ptr_array_unref (self->to_flush);
  g_ptr_array_unref (self->graveyard);
  g_free (self->buffer);
  soup_message_headers_unref (self->headers);
  g_object_unref (self->parser);
  g_free (self);
}

guint
herald_http_fast_get_n_connections (HeraldHttpFast *self)
{
  return self->conns.length;
}
