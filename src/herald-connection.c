/* herald-connection.c: the per-connection data path.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "herald-connection-private.h"
#include "herald-log.h"

#define SSE_RETRY_MS 3000 /* the reconnection delay SSE clients are given */
#define CLOSE_GRACE_S 3   /* how long a closing connection waits for its peer */
#define MAX_READS_PER_EVENT 4
#define MAX_TLS_READS_PER_EVENT 32 /* TLS reads return one record (<= 16 KiB) each */

G_DEFINE_FINAL_TYPE (HeraldConnection, herald_connection, G_TYPE_OBJECT)

enum
{
  PROP_0,
  PROP_ID,
  PROP_USER_ID,
  PROP_TRANSPORT,
  N_PROPS
};
static GParamSpec *props[N_PROPS];

static void queue_frame (HeraldConnection *self, GBytes *frame);

static void
herald_connection_finalize (GObject *object)
{
  HeraldConnection *self = HERALD_CONNECTION (object);

  herald_connection_queue_clear (&self->out);
  herald_ws_parser_clear (&self->parser);
  g_clear_pointer (&self->inbuf, g_byte_array_unref);
  if (self->subs_many)
    {
      for (guint i = 0; i < self->subs.many->len; i++)
        g_slice_free (HeraldSubscription, self->subs.many->items[i]);
      g_free (self->subs.many);
    }
  else if (self->subs.one)
    g_slice_free (HeraldSubscription, self->subs.one);
  if (self->rare)
    {
      g_clear_pointer (&self->rare->greeting_subs, json_node_unref);
      if (self->rare->tls)
        {
          /* close_notify would be a blocking write: a client that stopped
           * reading could stall the worker. Shut the socket first. */
          if (self->fd >= 0)
            shutdown (self->fd, SHUT_RDWR);
          g_io_stream_close (self->rare->tls, NULL, NULL);
          g_object_unref (self->rare->tls);
        }
      g_free (self->rare);
    }
  if (self->fd >= 0)
    close (self->fd);
  g_clear_pointer (&self->claims, herald_jwt_claims_free);
  if (self->id)
    g_slice_free1 (herald_connection_strings_size (self), self->id);
  G_OBJECT_CLASS (herald_connection_parent_class)->finalize (object);
}

static void
herald_connection_get_property (GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
  HeraldConnection *self = HERALD_CONNECTION (object);

  switch (prop_id)
    {
    case PROP_ID:
      g_value_set_string (value, self->id);
      break;
    case PROP_USER_ID:
      g_value_set_string (value, herald_connection_get_user_id (self));
      break;
    case PROP_TRANSPORT:
      g_value_set_uint (value, self->transport);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
herald_connection_class_init (HeraldConnectionClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->finalize = herald_connection_finalize;
  object_class->get_property = herald_connection_get_property;

  props[PROP_ID]
      = g_param_spec_string ("id", NULL, NULL, NULL, G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  props[PROP_USER_ID] = g_param_spec_string ("user-id", NULL, NULL, NULL,
                                             G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  props[PROP_TRANSPORT] = g_param_spec_uint ("transport", NULL, NULL, 0, HERALD_TRANSPORT_SSE, 0,
                                             G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties (object_class, N_PROPS, props);
}

static void
herald_connection_init (HeraldConnection *self)
{
  self->fd = -1;
}

/* The token's exp on the monotonic clock (0 = never). The leeway that let the
 * token in at the handshake also applies here, or a token accepted thanks to
 * it would be closed at once. */
static guint32
expiry_mono (const HeraldJwtClaims *claims, const HeraldStreamLimits *limits, guint32 now,
             gboolean exact)
{
  gint64 left;

  if (claims == NULL || claims->exp <= 0)
    return 0;
  left = claims->exp + (exact ? 0 : g_atomic_int_get (&limits->leeway))
         - g_get_real_time () / G_USEC_PER_SEC;
  return (guint32)MIN ((gint64)now + MAX (left, 0), (gint64)G_MAXUINT32);
}

static ConnectionRare *
rare (HeraldConnection *self)
{
  if (self->rare == NULL)
    self->rare = g_new0 (ConnectionRare, 1);
  return self->rare;
}

static inline guint32
drain_at (HeraldConnection *self)
{
  return self->rare ? self->rare->drain_at : 0;
}

static inline guint32
now_ms (void)
{
  return (guint32)(g_get_monotonic_time () / 1000);
}

/**
 * herald_connection_new:
 *
 * Returns: (transfer full): a connection owning @setup's fd and streams.
 */
HeraldConnection *
herald_connection_new (HeraldConnectionHost *host, HeraldConnectionSetup *setup)
{
  HeraldConnection *self;
  const HeraldStreamLimits *limits;
  guint32 now = herald_loop_now ();

  g_return_val_if_fail (host != NULL && host->funcs != NULL && host->limits != NULL, NULL);
  g_return_val_if_fail (setup != NULL && setup->id != NULL, NULL);

  self = g_object_new (HERALD_TYPE_CONNECTION, NULL);
  limits = host->limits;
  self->host = host;
  herald_connection_strings_init (self, setup->id, setup->claims ? setup->claims->sub : NULL,
                                  setup->remote_address);
  self->transport = setup->transport;
  self->fd = setup->fd;
  if (setup->tls)
    rare (self)->tls = g_object_ref (setup->tls);
  self->deflate = setup->deflate;
  self->claims = g_steal_pointer (&setup->claims);
  self->proxied = setup->proxied;
  self->expires_mono = expiry_mono (self->claims, limits, now, self->proxied);
  self->connected_at = g_get_real_time ();
  self->last_seen = now;
  self->next_ping = now + g_atomic_int_get (&limits->heartbeat_interval);
  self->tokens = g_atomic_int_get (&limits->messages_per_second);
  self->tokens_at = now_ms ();
  herald_ws_parser_init (&self->parser);

  self->registered = setup->registered;
  if (setup->prelude)
    {
      /* The handshake's answer goes first, whatever is dropped later. */
      queue_frame (self, g_bytes_ref (setup->prelude));
      herald_connection_queue_keep_first (&self->out);
    }
  if (setup->leftover && g_bytes_get_size (setup->leftover) > 0)
    {
      gsize len;
      const guint8 *data = g_bytes_get_data (setup->leftover, &len);
      self->inbuf = g_byte_array_sized_new (len);
      g_byte_array_append (self->inbuf, data, len);
    }
  return self;
}

const char *
herald_connection_get_id (HeraldConnection *self)
{
  return self->id;
}

const char *
herald_connection_get_user_id (HeraldConnection *self)
{
  return self->has_user ? self->id + strlen (self->id) + 1 : NULL;
}

HeraldTransport
herald_connection_get_transport (HeraldConnection *self)
{
  return self->transport;
}

HeraldConnectionState
herald_connection_get_state (HeraldConnection *self)
{
  return self->state;
}

HeraldConnectionHost *
herald_connection_get_host (HeraldConnection *self)
{
  return self->host;
}

const HeraldJwtClaims *
herald_connection_get_claims (HeraldConnection *self)
{
  return self->claims;
}

/**
 * herald_connection_set_claims:
 * @claims: (transfer full): verified claims of a refreshed token, same subject
 *
 * Replaces the connection's permissions and expiry; the sweep is rescheduled
 * so the new expiry takes effect.
 */
void
herald_connection_set_claims (HeraldConnection *self, HeraldJwtClaims *claims)
{
  g_return_if_fail (claims != NULL);
  g_return_if_fail (g_strcmp0 (claims->sub, herald_connection_get_user_id (self)) == 0);

  g_clear_pointer (&self->claims, herald_jwt_claims_free);
  self->claims = claims;
  self->expires_mono = expiry_mono (claims, self->host->limits, herald_loop_now (), self->proxied);
  if (self->state == HERALD_CONNECTION_OPEN)
    self->host->funcs->schedule (self->host, self, 0); /* next tick recomputes the visit */
}

void
herald_connection_set_expiry (HeraldConnection *self, gint64 expire_at)
{
  g_return_if_fail (HERALD_IS_CONNECTION (self));

  if (self->claims != NULL)
    self->claims->exp = expire_at;
  self->expires_mono = expiry_mono (self->claims, self->host->limits, herald_loop_now (), TRUE);
  if (expire_at > 0 && self->expires_mono == 0)
    self->expires_mono = herald_loop_now (); /* anonymous: due now */
  if (self->state == HERALD_CONNECTION_OPEN)
    self->host->funcs->schedule (self->host, self, 0);
}

gboolean
herald_connection_is_proxied (HeraldConnection *self)
{
  return self->proxied;
}

gint64
herald_connection_get_expiry (HeraldConnection *self)
{
  return self->expires_mono;
}

int
herald_connection_get_fd (HeraldConnection *self)
{
  return self->fd;
}

HeraldWheelLink *
herald_connection_get_wheel_link (HeraldConnection *self)
{
  return &self->wheel;
}

/**
 * herald_connection_get_info:
 *
 * Returns: (transfer full): a snapshot for ListConnections and the HTTP API.
 */
HeraldConnectionInfo *
herald_connection_get_info (HeraldConnection *self)
{
  HeraldConnectionInfo *info = g_new0 (HeraldConnectionInfo, 1);
  guint n = herald_connection_get_n_subscriptions (self);

  info->id = g_strdup (self->id);
  info->user_id = g_strdup (herald_connection_get_user_id (self));
  info->transport = self->transport;
  info->remote_address = herald_connection_remote_address_dup (self);
  info->connected_at = self->connected_at;
  info->channels = g_new0 (char *, n + 1);
  for (guint i = 0; i < n; i++)
    {
      HeraldSubscription *sub = herald_connection_get_subscription (self, i);
      info->channels[i] = g_strdup (herald_channel_get_name (sub->channel));
    }
  info->messages_sent = self->messages_sent;
  info->messages_received = self->messages_received;
  info->bytes_queued = herald_connection_queue_bytes (&self->out);
  return info;
}

/* ---- output ---- */

/* Flushed by the host at the end of the iteration. A connection appears at
 * most a few times; flushing twice is harmless. */
static inline void
mark_dirty (HeraldConnection *self)
{
  GPtrArray *dirty = self->host->dirty;

  if (dirty->len > 0 && g_ptr_array_index (dirty, dirty->len - 1) == self)
    return;
  g_ptr_array_add (dirty, g_object_ref (self));
}

static void
queue_frame (HeraldConnection *self, GBytes *frame)
{
  herald_connection_queue_push (&self->out, frame, NULL);
  mark_dirty (self);
}

/* Queues @frame (a reference is taken) tagged with @tag; past
 * send-queue-max-bytes closes 4001 instead. */
static void
enqueue_tagged (HeraldConnection *self, GBytes *frame, HeraldMessage *tag)
{
  gsize size = g_bytes_get_size (frame);

  if (self->state != HERALD_CONNECTION_OPEN)
    return;
  if (herald_connection_queue_bytes (&self->out) + size
      > (gsize)g_atomic_int_get (&self->host->limits->send_queue_max_bytes))
    {
      self->host->stats->dropped++;
      g_debug ("connection %s: send queue over %zu bytes, closing as a slow consumer", self->id,
               herald_connection_queue_bytes (&self->out));
      herald_connection_close (self, 4001, "slow consumer");
      return;
    }
  herald_connection_queue_push (&self->out, g_bytes_ref (frame), tag);
  mark_dirty (self);
}

void
herald_connection_enqueue (HeraldConnection *self, GBytes *frame)
{
  enqueue_tagged (self, frame, NULL);
}

void
herald_connection_deliver (HeraldConnection *self, HeraldMessage *message)
{
  herald_connection_deliver_full (self, message, FALSE);
}

/**
 * herald_connection_deliver_full:
 * @conflate: the subscription is of a conflate=true namespace
 *
 * Delivers @message; with @conflate, once the queue is past half of
 * send-queue-max-bytes, the queued (unstarted) messages of its channel with
 * its key are dropped and it goes at the end as the frame variant marked
 * "conflated":true. Frames stay the message's shared bytes either way.
 */
void
herald_connection_deliver_full (HeraldConnection *self, HeraldMessage *message, gboolean conflate)
{
  gsize half = (gsize)g_atomic_int_get (&self->host->limits->send_queue_max_bytes) / 2;
  HeraldFrameKind kind;
  GBytes *frame;

  if (self->state != HERALD_CONNECTION_OPEN)
    return;
  if (self->transport == HERALD_TRANSPORT_SSE)
    kind = HERALD_FRAME_SSE;
  else
    kind = self->deflate ? HERALD_FRAME_WS_DEFLATE : HERALD_FRAME_WS;
  frame = herald_message_get_frame (message, kind);
  if (conflate && herald_connection_queue_bytes (&self->out) + g_bytes_get_size (frame) > half)
    {
      guint dropped = herald_connection_queue_conflate (&self->out, message);

      if (dropped > 0)
        {
          self->messages_sent -= MIN (self->messages_sent, dropped);
          self->host->stats->conflated += dropped;
          frame = herald_message_get_frame_full (message, kind, TRUE);
        }
    }
  enqueue_tagged (self, frame, conflate ? message : NULL);
  if (self->state == HERALD_CONNECTION_OPEN)
    {
      self->messages_sent++;
      self->host->stats->deliveries++;
    }
}

static GBytes *
text_frame (HeraldConnection *self, const char *text, gsize len)
{
  if (self->deflate && len > 64)
    return herald_ws_frame_new_deflated (HERALD_WS_OPCODE_TEXT, text, len);
  return herald_ws_frame_new (HERALD_WS_OPCODE_TEXT, text, len);
}

static void
send_text (HeraldConnection *self, const char *text, gsize len)
{
  g_autoptr (GBytes) frame = NULL;

  if (self->state != HERALD_CONNECTION_OPEN || self->transport != HERALD_TRANSPORT_WEBSOCKET)
    return;
  frame = text_frame (self, text, len);
  herald_connection_enqueue (self, frame);
}

void
herald_connection_send_json (HeraldConnection *self, JsonBuilder *builder)
{
  g_autoptr (JsonNode) root = json_builder_get_root (builder);
  g_autoptr (JsonGenerator) gen = json_generator_new ();
  g_autofree char *text = NULL;
  gsize len;

  json_generator_set_root (gen, root);
  text = json_generator_to_data (gen, &len);
  send_text (self, text, len);
}

void
herald_connection_send_error (HeraldConnection *self, const char *code, const char *message,
                              JsonNode *id)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "type");
  json_builder_add_string_value (b, "error");
  if (id)
    {
      json_builder_set_member_name (b, "id");
      json_builder_add_value (b, json_node_copy (id));
    }
  json_builder_set_member_name (b, "code");
  json_builder_add_string_value (b, code);
  json_builder_set_member_name (b, "message");
  json_builder_add_string_value (b, message);
  json_builder_end_object (b);
  herald_connection_send_json (self, b);

  if (g_str_equal (code, "forbidden") && self->forbidden < G_MAXUINT8 && ++self->forbidden > 10)
    herald_connection_close (self, 1008, "forbidden action repeated");
}

/* ---- closing ---- */

void
herald_connection_destroy_socket (HeraldConnection *self)
{
  if (self->destroyed)
    return;
  self->destroyed = TRUE;
  if (self->state != HERALD_CONNECTION_CLOSED)
    {
      if (self->state == HERALD_CONNECTION_OPEN)
        self->host->stats->closes[herald_close_code_index (1006)]++;
      self->state = HERALD_CONNECTION_CLOSED;
    }
  herald_loop_remove (self->host->loop, self->fd);
  self->host->funcs->finished (self->host, self);
}

void
herald_connection_close (HeraldConnection *self, guint16 code, const char *reason)
{
  if (self->state != HERALD_CONNECTION_OPEN)
    return;
  g_debug ("connection %s: closing with %u (%s)", self->id, code, reason);
  /* Overflowed: memory comes back at once and the close frame goes next. */
  if (code == 4001 || code == 1009)
    self->host->stats->dropped += herald_connection_queue_drop_unstarted (&self->out);
  if (self->transport == HERALD_TRANSPORT_WEBSOCKET)
    queue_frame (self, herald_ws_close_frame_new (code, reason));
  self->state = HERALD_CONNECTION_CLOSING;
  self->close_deadline = herald_loop_now () + CLOSE_GRACE_S;
  self->host->stats->closes[herald_close_code_index (code)]++;
  self->host->funcs->closing (self->host, self, code, reason);
  self->host->funcs->schedule (self->host, self, self->close_deadline);
  mark_dirty (self);
}

/**
 * herald_connection_drain:
 * @self: an open connection
 * @after_ms: how long the client should wait before reconnecting
 *
 * The drain's goodbye: the reconnect hint (a WebSocket text frame, or an SSE
 * reconnect event with the same delay as its retry:), then a 1001 close.
 */
void
herald_connection_drain (HeraldConnection *self, guint after_ms)
{
  g_autofree char *text = NULL;

  g_return_if_fail (HERALD_IS_CONNECTION (self));

  if (self->state != HERALD_CONNECTION_OPEN)
    return;
  if (self->transport == HERALD_TRANSPORT_SSE)
    {
      g_autoptr (GBytes) bytes = NULL;

      text = g_strdup_printf ("event: reconnect\ndata: {\"type\":\"reconnect\",\"after\":%u}\n"
                              "retry: %u\n\n",
                              after_ms, after_ms);
      bytes = g_bytes_new (text, strlen (text));
      herald_connection_enqueue (self, bytes);
    }
  else
    {
      text = g_strdup_printf ("{\"type\":\"reconnect\",\"after\":%u}", after_ms);
      send_text (self, text, strlen (text));
    }
  herald_connection_close (self, 1001, "server shutting down");
}

/**
 * herald_connection_schedule_drain:
 * @self: an open connection
 * @delay_ms: when, from now, to send the hint and close
 * @after_ms: the hint's reconnect delay
 *
 * Puts the drain on the worker's timer wheel (one-second steps): the sweep
 * at that second calls herald_connection_drain().
 */
void
herald_connection_schedule_drain (HeraldConnection *self, guint delay_ms, guint after_ms)
{
  g_return_if_fail (HERALD_IS_CONNECTION (self));

  if (self->state != HERALD_CONNECTION_OPEN)
    return;
  rare (self)->drain_at = herald_loop_now () + 1 + delay_ms / 1000;
  self->rare->drain_after_ms = after_ms;
  /* One wheel slot per connection: keep an earlier heartbeat or expiry. */
  self->host->funcs->schedule (
      self->host, self,
      MIN (self->rare->drain_at, self->expires_mono > 0
                                     ? MIN (self->next_ping, (guint32)self->expires_mono)
                                     : self->next_ping));
}

/* ---- input ---- */

gboolean
herald_connection_take_token (HeraldConnection *self)
{
  guint rate = g_atomic_int_get (&self->host->limits->messages_per_second);
  guint32 now;

  if (rate == 0)
    return TRUE;
  now = now_ms ();
  /* Unsigned difference: right across the 32-bit wrap. */
  self->tokens = MIN ((gdouble)rate,
                      self->tokens + (gdouble)(guint32)(now - self->tokens_at) * rate / 1000.0);
  self->tokens_at = now;
  if (self->tokens >= 1.0f)
    {
      self->tokens -= 1.0f;
      self->violations = 0;
      return TRUE;
    }
  if (self->violations < G_MAXUINT8)
    self->violations++;
  return FALSE;
}

static gboolean
on_ws_event (const HeraldWsEvent *event, gpointer user_data)
{
  HeraldConnection *self = user_data;

  switch (event->type)
    {
    case HERALD_WS_EVENT_MESSAGE:
      if (self->state != HERALD_CONNECTION_OPEN)
        return TRUE;
      self->messages_received++;
      self->host->stats->messages_received++;
      if (!herald_connection_take_token (self))
        {
          if (self->violations > 20)
            herald_connection_close (self, 4029, "rate limited");
          else
            herald_connection_send_error (self, "rate_limited", "Too many messages: slow down",
                                          NULL);
          return self->state == HERALD_CONNECTION_OPEN;
        }
      if (event->opcode != HERALD_WS_OPCODE_TEXT)
        {
          herald_connection_send_error (self, "bad_request", "Binary frames are not supported",
                                        NULL);
          return TRUE;
        }
      self->host->funcs->received (self->host, self, (const char *)event->payload, event->length);
      return self->state == HERALD_CONNECTION_OPEN;

    case HERALD_WS_EVENT_PING:
      if (self->state == HERALD_CONNECTION_OPEN)
        {
          GBytes *pong = herald_ws_frame_new (HERALD_WS_OPCODE_PONG, event->payload, event->length);
          herald_connection_enqueue (self, pong);
          g_bytes_unref (pong);
        }
      return TRUE;

    case HERALD_WS_EVENT_PONG:
      return TRUE;

    case HERALD_WS_EVENT_CLOSE:
      self->peer_closed = TRUE;
      if (self->state == HERALD_CONNECTION_OPEN)
        {
          guint16 code = event->close_code == HERALD_WS_CLOSE_NO_STATUS ? 1000 : event->close_code;
          /* Echo the peer's code, as RFC 6455 §5.5.1 suggests. */
          herald_connection_close (self, code, event->close_reason ? event->close_reason : "");
        }
      else
        herald_connection_maybe_finish_close (self);
      return FALSE;
    }
  return TRUE;
}

static void
process_ws_input (HeraldConnection *self, const guint8 *data, gsize len)
{
  gsize max = g_atomic_int_get (&self->host->limits->max_message_size);
  HeraldWsLimits ws_limits = {
    .max_frame_size = max,
    .max_message_size = max,
    .deflate = self->deflate,
    .inflater = self->host->inflater,
  };
  const HeraldWsLimits *limits = &ws_limits;
  const guint8 *buf = data;
  gsize buflen = len;
  guint16 code = 0;
  const char *reason = NULL;
  gssize consumed;

  if (self->inbuf)
    {
      g_byte_array_append (self->inbuf, data, len);
      buf = self->inbuf->data;
      buflen = self->inbuf->len;
    }

  consumed = herald_ws_parser_feed (&self->parser, limits, buf, buflen, on_ws_event, self, &code,
                                    &reason);
  if (consumed < 0)
    {
      g_debug ("connection %s: protocol error %u: %s", self->id, code, reason);
      g_clear_pointer (&self->inbuf, g_byte_array_unref);
      herald_connection_close (self, code, reason);
      return;
    }
  if (self->destroyed || self->state != HERALD_CONNECTION_OPEN || self->parser.close_received)
    {
      g_clear_pointer (&self->inbuf, g_byte_array_unref);
      return;
    }

  if ((gsize)consumed == buflen)
    g_clear_pointer (&self->inbuf, g_byte_array_unref);
  else if (self->inbuf)
    g_byte_array_remove_range (self->inbuf, 0, consumed);
  else
    {
      self->inbuf = g_byte_array_sized_new (buflen - consumed);
      g_byte_array_append (self->inbuf, buf + consumed, buflen - consumed);
    }
}

static gssize
conn_read (HeraldConnection *self, guint8 *buf, gsize size)
{
  if (herald_connection_tls (self))
    {
      GInputStream *in = g_io_stream_get_input_stream (herald_connection_tls (self));
      g_autoptr (GError) error = NULL;
      gssize n = g_pollable_input_stream_read_nonblocking (G_POLLABLE_INPUT_STREAM (in), buf, size,
                                                           NULL, &error);
      if (n < 0)
        errno = g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK) ? EAGAIN : ECONNRESET;
      return n;
    }
  return recv (self->fd, buf, size, MSG_DONTWAIT);
}

void
herald_connection_handle_events (HeraldConnection *self, guint32 epoll_events)
{
  g_autoptr (HeraldConnection) hold = g_object_ref (self);

  if (epoll_events & EPOLLOUT)
    herald_connection_flush (self);

  if (epoll_events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
    {
      gsize size = self->host->scratch_size;
      guint8 *scratch = self->host->scratch;

      /* TLS: a short read says nothing about what GnuTLS still holds, so a
       * TLS connection reads on until WOULD_BLOCK (one record per read),
       * bounded so that one fast sender cannot starve the worker. */
      for (int i = 0;
           i < (herald_connection_tls (self) ? MAX_TLS_READS_PER_EVENT : MAX_READS_PER_EVENT)
           && !self->destroyed;
           i++)
        {
          gssize n = conn_read (self, scratch, size);

          if (n > 0)
            {
              self->last_seen = herald_loop_now ();
              if (self->transport == HERALD_TRANSPORT_WEBSOCKET
                  && self->state == HERALD_CONNECTION_OPEN)
                process_ws_input (self, scratch, n);
              /* SSE clients have nothing to say; a closing socket's input is drained. */
              if ((gsize)n < size && !herald_connection_tls (self))
                break;
              continue;
            }
          if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
          if (n < 0 && errno == EINTR)
            continue;
          /* EOF or a reset: the peer is gone. */
          self->peer_closed = TRUE;
          herald_connection_destroy_socket (self);
          break;
        }
    }
}

/* ---- start and sweep ---- */

/* The "connected" greeting both transports send (WebSocket adds the
 * heartbeat interval, @heartbeat >= 0): the connection's id, the token's
 * user or null, the server's subscriptions (subs claim). Written directly in
 * the usual case (a user id needing no escapes, no subs: no JsonBuilder once
 * per connection), else by json-glib; the same text either way. */
static char *
connected_json (HeraldConnection *self, gint heartbeat, gsize *len)
{
  g_autoptr (GString) out = g_string_sized_new (128);
  g_autoptr (JsonBuilder) b = NULL;
  g_autoptr (JsonGenerator) gen = NULL;
  g_autoptr (JsonNode) root = NULL;
  const char *user_id = herald_connection_get_user_id (self);
  gboolean plain = self->rare == NULL || self->rare->greeting_subs == NULL;

  for (const char *c = user_id; plain && c && *c; c++)
    plain = (guchar)*c >= 0x20 && (guchar)*c < 0x7f && *c != '"' && *c != '\\';
  if (plain)
    {
      /* the id is A-Z a-z 0-9 _ - (herald-names.c) */
      g_string_append_printf (
          out, "{\"type\":\"connected\",\"connection_id\":\"%s\",\"user_id\":", self->id);
      if (user_id)
        g_string_append_printf (out, "\"%s\"", user_id);
      else
        g_string_append (out, "null");
      if (heartbeat >= 0)
        g_string_append_printf (out, ",\"heartbeat_interval\":%d", heartbeat);
      g_string_append_c (out, '}');
      *len = out->len;
      return g_string_free (g_steal_pointer (&out), FALSE);
    }
  b = json_builder_new ();
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "type");
  json_builder_add_string_value (b, "connected");
  json_builder_set_member_name (b, "connection_id");
  json_builder_add_string_value (b, self->id);
  json_builder_set_member_name (b, "user_id");
  if (self->has_user)
    json_builder_add_string_value (b, herald_connection_get_user_id (self));
  else
    json_builder_add_null_value (b);
  if (self->rare && self->rare->greeting_subs)
    {
      json_builder_set_member_name (b, "subs");
      json_builder_add_value (b, g_steal_pointer (&self->rare->greeting_subs));
    }
  if (heartbeat >= 0)
    {
      json_builder_set_member_name (b, "heartbeat_interval");
      json_builder_add_int_value (b, heartbeat);
    }
  json_builder_end_object (b);
  root = json_builder_get_root (b);
  gen = json_generator_new ();
  json_generator_set_root (gen, root);
  return json_generator_to_data (gen, len);
}

/**
 * herald_connection_set_greeting_subs:
 * @subs: (transfer full): a JSON object, channel → {"offset","epoch"}
 *
 * The subscriptions the server made as the connection opened (the token's
 * subs claim), for the "connected" greeting; call before it is sent.
 */
void
herald_connection_set_greeting_subs (HeraldConnection *self, JsonNode *subs)
{
  g_return_if_fail (HERALD_IS_CONNECTION (self));

  if (subs == NULL && self->rare == NULL)
    return;
  g_clear_pointer (&rare (self)->greeting_subs, json_node_unref);
  self->rare->greeting_subs = subs;
}

void
herald_connection_start (HeraldConnection *self)
{
  guint heartbeat = g_atomic_int_get (&self->host->limits->heartbeat_interval);

  /* A socket the front watched already changes hands in one epoll_ctl. */
  if (!self->registered
      || !herald_loop_modify (self->host->loop, self->fd, EPOLLIN | EPOLLRDHUP, self))
    herald_loop_add (self->host->loop, self->fd, EPOLLIN | EPOLLRDHUP, self);

  if (self->transport == HERALD_TRANSPORT_WEBSOCKET)
    {
      gsize len;
      g_autofree char *text = connected_json (self, (gint)MIN (heartbeat, G_MAXINT), &len);
      send_text (self, text, len);
    }

  self->host->funcs->schedule (self->host, self,
                               self->expires_mono > 0
                                   ? MIN (self->next_ping, (guint32)self->expires_mono)
                                   : self->next_ping);

  /* Bytes the client sent right behind its request (already in inbuf). */
  if (self->inbuf && self->transport == HERALD_TRANSPORT_WEBSOCKET)
    {
      g_autoptr (GByteArray) pending = g_steal_pointer (&self->inbuf);
      process_ws_input (self, pending->data, pending->len);
    }
  else
    g_clear_pointer (&self->inbuf, g_byte_array_unref);
}

/**
 * herald_connection_send_sse_greeting:
 * @id: (nullable): the event id the stream starts at
 * @reset: the client's Last-Event-ID could not be resumed: a "reset" event
 *
 * The start of an SSE stream: the reconnection delay, then the reset event or
 * the id, then the "connected" event.
 */
void
herald_connection_send_sse_greeting (HeraldConnection *self, const char *id, gboolean reset)
{
  g_autoptr (GString) head = g_string_new (NULL);
  g_autoptr (GBytes) bytes = NULL;

  g_return_if_fail (HERALD_IS_CONNECTION (self));
  g_return_if_fail (self->transport == HERALD_TRANSPORT_SSE);

  g_string_append_printf (head, "retry: %u\n\n", SSE_RETRY_MS);
  if (reset)
    g_string_append_printf (head, "id: %s\nevent: reset\ndata: {\"type\":\"reset\"}\n\n",
                            id ? id : "");
  else if (id != NULL)
    g_string_append_printf (head, "id: %s\n", id);
  {
    /* As the WebSocket's connected frame: the user the token named, or null. */
    gsize len;
    g_autofree char *connected = connected_json (self, -1, &len);

    g_string_append (head, "event: connected\ndata: ");
    g_string_append_len (head, connected, len);
    g_string_append (head, "\n\n");
  }
  bytes = g_string_free_to_bytes (g_steal_pointer (&head));
  herald_connection_enqueue (self, bytes);
}

static void
send_heartbeat (HeraldConnection *self)
{
  static GBytes *json_ping, *ws_ping, *sse_ping;

  /* Built once per process and shared by every connection and thread. */
  if (g_once_init_enter (&json_ping))
    g_once_init_leave (&json_ping,
                       herald_ws_frame_new (HERALD_WS_OPCODE_TEXT, "{\"type\":\"ping\"}", 15));
  if (g_once_init_enter (&ws_ping))
    g_once_init_leave (&ws_ping, herald_ws_frame_new (HERALD_WS_OPCODE_PING, NULL, 0));
  if (g_once_init_enter (&sse_ping))
    g_once_init_leave (&sse_ping, g_bytes_new_static (": ping\n\n", 8));

  if (self->transport == HERALD_TRANSPORT_SSE)
    herald_connection_enqueue (self, sse_ping);
  else
    {
      herald_connection_enqueue (self, json_ping);
      herald_connection_enqueue (self, ws_ping);
    }
}

guint32
herald_connection_sweep (HeraldConnection *self, guint32 now)
{
  guint heartbeat, timeout;
  guint32 next;

  if (self->destroyed)
    return G_MAXUINT32;
  if (self->state == HERALD_CONNECTION_CLOSING)
    {
      if (now >= self->close_deadline)
        {
          herald_connection_destroy_socket (self);
          return G_MAXUINT32;
        }
      return self->close_deadline;
    }

  if (drain_at (self) != 0 && now >= drain_at (self))
    {
      herald_connection_drain (self, self->rare->drain_after_ms);
      return self->close_deadline;
    }
  heartbeat = g_atomic_int_get (&self->host->limits->heartbeat_interval);
  timeout = g_atomic_int_get (&self->host->limits->connection_timeout);

  if (self->expires_mono > 0 && now >= self->expires_mono)
    {
      /* The backend may extend it: nothing is due until it answers */
      self->expires_mono = 0;
      if (self->proxied && self->host->funcs->expired != NULL
          && self->host->funcs->expired (self->host, self))
        return MIN (self->next_ping, self->last_seen + timeout);
      herald_connection_close (self, 4003, "token expired");
      return self->close_deadline;
    }
  /* SSE clients never speak: their liveness shows as write errors instead. */
  if (self->transport == HERALD_TRANSPORT_WEBSOCKET && now >= self->last_seen + timeout)
    {
      herald_connection_close (self, 4002, "idle timeout");
      return self->close_deadline;
    }
  /* A shorter interval set at run time takes effect at once. */
  if (self->next_ping > now + heartbeat)
    self->next_ping = now + heartbeat;
  if (now >= self->next_ping)
    {
      send_heartbeat (self);
      self->next_ping = now + heartbeat;
      if (self->state != HERALD_CONNECTION_OPEN)
        return self->close_deadline;
    }

  next = self->next_ping;
  if (self->transport == HERALD_TRANSPORT_WEBSOCKET)
    next = MIN (next, self->last_seen + timeout);
  if (self->expires_mono > 0)
    next = MIN (next, (guint32)self->expires_mono);
  if (drain_at (self) != 0)
    next = MIN (next, drain_at (self));
  return next;
}
