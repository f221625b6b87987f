/* herald-redis-wire.c: one Redis connection on a GSocket, RESP parsed by redisReader.
 *
 * Main context only. The wire is reference counted inside so that the
 * asynchronous connect may finish after herald_redis_wire_free().
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>
#include <gio/gio.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <glib/gi18n.h>

#include "herald-redis-source.h"
#include "herald-redis-wire.h"

#define CONNECT_TIMEOUT_MS 2000
#define READ_CHUNK 16384
/* Unsent commands beyond this mean the server stopped reading: give up. */
#define MAX_UNSENT (64 * 1024 * 1024)

typedef struct
{
  HeraldRedisWireReplyFn fn;
  gpointer privdata;
  gint64 since;
} Pending;

struct _HeraldRedisWire
{
  guint refs;
  char *host;
  int port;
  char *password;
  gboolean pubsub;
  GMainContext *context;
  HeraldRedisWireEvents events;
  gpointer owner;

  GCancellable *cancellable;
  GSocketConnection *conn;
  GSocket *socket;
  GSource *in_source, *out_source, *timeout_source;
  GSource *flush_source; /* commands of one main loop iteration go out together */
  GByteArray *out;       /* formatted, not yet written */
  GQueue pending;        /* of Pending*, in the order of the commands */
  redisReader *reader;
  gboolean ready, dead, closed;
};

static HeraldRedisWire *
wire_ref (HeraldRedisWire *wire)
{
  wire->refs++;
  return wire;
}

static void
wire_unref (HeraldRedisWire *wire)
{
  if (--wire->refs > 0)
    return;
  g_assert (g_queue_is_empty (&wire->pending));
  g_free (wire->host);
  g_free (wire->password);
  g_main_context_unref (wire->context);
  g_clear_object (&wire->cancellable);
  g_byte_array_unref (wire->out);
  if (wire->reader)
    redisReaderFree (wire->reader);
  g_free (wire);
}

static void
wire_die (HeraldRedisWire *wire, const char *why)
{
  Pending *p;

  if (wire->dead)
    return;
  wire->dead = TRUE;
  wire->ready = FALSE;
  g_cancellable_cancel (wire->cancellable);
  herald_redis_source_clear (&wire->in_source);
  herald_redis_source_clear (&wire->out_source);
  herald_redis_source_clear (&wire->flush_source);
  herald_redis_source_clear (&wire->timeout_source);
  if (wire->conn)
    g_io_stream_close (G_IO_STREAM (wire->conn), NULL, NULL);
  g_clear_object (&wire->conn);
  wire->socket = NULL;
  g_byte_array_set_size (wire->out, 0);
  wire_ref (wire);
  while ((p = g_queue_pop_head (&wire->pending)) != NULL)
    {
      if (p->fn)
        p->fn (NULL, p->privdata);
      g_free (p);
    }
  if (!wire->closed && wire->events.down)
    wire->events.down (wire, why, wire->owner);
  wire_unref (wire);
}

void
herald_redis_wire_fail (HeraldRedisWire *wire, const char *why)
{
  g_return_if_fail (wire != NULL);
  wire_die (wire, why);
}

static gboolean on_writable (GSocket *socket, GIOCondition condition, gpointer user_data);

static void
flush (HeraldRedisWire *wire)
{
  g_autoptr (GError) error = NULL;

  while (wire->socket != NULL && wire->out->len > 0)
    {
      gssize n = g_socket_send (wire->socket, (const char *)wire->out->data, wire->out->len, NULL,
                                &error);

      if (n < 0 && g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
        {
          if (wire->out_source == NULL)
            {
              wire->out_source = g_socket_create_source (wire->socket, G_IO_OUT, NULL);
              g_source_set_callback (wire->out_source, (GSourceFunc)(void (*) (void))on_writable,
                                     wire, NULL);
              g_source_attach (wire->out_source, wire->context);
            }
          return;
        }
      if (n < 0)
        {
          wire_die (wire, error->message);
          return;
        }
      g_byte_array_remove_range (wire->out, 0, (guint)n);
    }
  herald_redis_source_clear (&wire->out_source);
}

static gboolean
on_writable (GSocket *socket, GIOCondition condition, gpointer user_data)
{
  HeraldRedisWire *wire = user_data;

  g_clear_pointer (&wire->out_source, g_source_unref);
  flush (wire);
  return G_SOURCE_REMOVE;
}

static gboolean
on_flush (gpointer user_data)
{
  HeraldRedisWire *wire = user_data;

  g_clear_pointer (&wire->flush_source, g_source_unref);
  flush (wire);
  return G_SOURCE_REMOVE;
}

/* Writes soon: what else is queued in this iteration of the loop joins it. */
static void
flush_soon (HeraldRedisWire *wire)
{
  if (wire->socket == NULL || wire->flush_source != NULL || wire->out_source != NULL)
    return;
  wire->flush_source = g_idle_source_new ();
  g_source_set_priority (wire->flush_source, G_PRIORITY_DEFAULT);
  g_source_set_callback (wire->flush_source, on_flush, wire, NULL);
  g_source_attach (wire->flush_source, wire->context);
}

static gboolean
is_push (redisReply *r)
{
  static const char *const kinds[]
      = { "smessage", "ssubscribe", "sunsubscribe", "message", "subscribe", "unsubscribe", NULL };

  if (r->type != REDIS_REPLY_ARRAY || r->elements < 3 || r->element[0]->type != REDIS_REPLY_STRING)
    return FALSE;
  return g_strv_contains (kinds, r->element[0]->str);
}

static void
dispatch (HeraldRedisWire *wire, redisReply *r)
{
  if (wire->pubsub && is_push (r))
    {
      if (wire->events.push)
        wire->events.push (wire, r, wire->owner);
    }
  else if (!g_queue_is_empty (&wire->pending))
    {
      Pending *p = g_queue_pop_head (&wire->pending);

      if (p->fn)
        p->fn (r, p->privdata);
      g_free (p);
    }
  else if (wire->pubsub && wire->events.push)
    wire->events.push (wire, r, wire->owner);
}

static gboolean
on_readable (GSocket *socket, GIOCondition condition, gpointer user_data)
{
  HeraldRedisWire *wire = user_data;
  char buf[READ_CHUNK];

  wire_ref (wire);
  while (!wire->dead)
    {
      g_autoptr (GError) error = NULL;
      gssize n = g_socket_receive (socket, buf, sizeof buf, NULL, &error);
      void *reply = NULL;

      if (n < 0 && g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
        break;
      if (n <= 0)
        {
          wire_die (wire, n == 0 ? _ ("connection closed") : error->message);
          break;
        }
      redisReaderFeed (wire->reader, buf, (size_t)n);
      while (!wire->dead)
        {
          if (redisReaderGetReply (wire->reader, &reply) != REDIS_OK)
            {
              wire_die (wire, _ ("protocol error"));
              break;
            }
          if (reply == NULL)
            break;
          dispatch (wire, reply);
          freeReplyObject (reply);
        }
    }
  wire_unref (wire);
  return G_SOURCE_CONTINUE; /* a dead wire has destroyed this source already */
}

static void
on_auth_reply (redisReply *reply, gpointer privdata)
{
  HeraldRedisWire *wire = privdata;

  if (reply == NULL)
    return;
  if (reply->type == REDIS_REPLY_ERROR)
    {
      g_autofree char *why = g_strdup_printf ("AUTH: %s", reply->str);
      wire_die (wire, why);
      return;
    }
  herald_redis_source_clear (&wire->timeout_source);
  wire->ready = TRUE;
  if (wire->events.ready)
    wire->events.ready (wire, wire->owner);
}

static void
format_into (GByteArray *out, gboolean front, int argc, const char **argv, const size_t *lens)
{
  char *cmd = NULL;
  int len = redisFormatCommandArgv (&cmd, argc, argv, lens);

  if (len <= 0)
    return;
  if (front)
    g_byte_array_prepend (out, (const guint8 *)cmd, (guint)len);
  else
    g_byte_array_append (out, (const guint8 *)cmd, (guint)len);
  redisFreeCommand (cmd);
}

static void
on_connected (GObject *source, GAsyncResult *result, gpointer user_data)
{
  HeraldRedisWire *wire = user_data;
  g_autoptr (GError) error = NULL;
  GSocketConnection *conn
      = g_socket_client_connect_finish (G_SOCKET_CLIENT (source), result, &error);

  if (wire->dead)
    {
      if (conn)
        g_io_stream_close (G_IO_STREAM (conn), NULL, NULL);
      g_clear_object (&conn);
      wire_unref (wire);
      return;
    }
  if (conn == NULL)
    {
      wire_die (wire, error->message);
      wire_unref (wire);
      return;
    }
  wire->conn = conn;
  wire->socket = g_socket_connection_get_socket (conn);
  g_socket_set_blocking (wire->socket, FALSE);
  g_socket_set_option (wire->socket, IPPROTO_TCP, TCP_NODELAY, 1, NULL);
  wire->in_source = g_socket_create_source (wire->socket, G_IO_IN | G_IO_HUP | G_IO_ERR, NULL);
  g_source_set_callback (wire->in_source, (GSourceFunc)(void (*) (void))on_readable, wire, NULL);
  g_source_attach (wire->in_source, wire->context);
  if (wire->password)
    {
      const char *argv[] = { "AUTH", wire->password };
      Pending *p = g_new0 (Pending, 1);

      p->fn = on_auth_reply;
      p->privdata = wire;
      p->since = g_get_monotonic_time ();
      format_into (wire->out, TRUE, 2, argv, NULL);
      g_queue_push_head (&wire->pending, p);
      flush (wire);
    }
  else
    {
      flush (wire);
      if (!wire->dead)
        {
          herald_redis_source_clear (&wire->timeout_source);
          wire->ready = TRUE;
          if (wire->events.ready)
            wire->events.ready (wire, wire->owner);
        }
    }
  wire_unref (wire);
}

static gboolean
on_connect_timeout (gpointer user_data)
{
  HeraldRedisWire *wire = user_data;

  g_clear_pointer (&wire->timeout_source, g_source_unref);
  wire_die (wire, _ ("connect timeout"));
  return G_SOURCE_REMOVE;
}

HeraldRedisWire *
herald_redis_wire_new (const char *host, int port, const char *password, gboolean pubsub,
                       GMainContext *context, const HeraldRedisWireEvents *events, gpointer owner)
{
  HeraldRedisWire *wire = g_new0 (HeraldRedisWire, 1);
  g_autoptr (GSocketClient) client = g_socket_client_new ();
  g_autoptr (GSocketConnectable) address = NULL;

  g_socket_client_set_enable_proxy (client, FALSE);

  g_return_val_if_fail (host != NULL && events != NULL, NULL);
  wire->refs = 1;
  wire->host = g_strdup (host);
  wire->port = port;
  wire->password = g_strdup (password);
  wire->pubsub = pubsub;
  wire->context = g_main_context_ref (context);
  wire->events = *events;
  wire->owner = owner;
  wire->cancellable = g_cancellable_new ();
  wire->out = g_byte_array_new ();
  g_queue_init (&wire->pending);
  wire->reader = redisReaderCreate ();

  wire->timeout_source = g_timeout_source_new (CONNECT_TIMEOUT_MS);
  g_source_set_callback (wire->timeout_source, on_connect_timeout, wire, NULL);
  g_source_attach (wire->timeout_source, context);
  g_main_context_push_thread_default (context);
  address = g_network_address_new (host, (guint16)port);
  g_socket_client_connect_async (client, address, wire->cancellable, on_connected, wire_ref (wire));
  g_main_context_pop_thread_default (context);
  return wire;
}

void
herald_redis_wire_free (HeraldRedisWire *wire)
{
  if (wire == NULL)
    return;
  wire->closed = TRUE;
  wire_die (wire, "closed");
  wire_unref (wire);
}

gboolean
herald_redis_wire_is_ready (HeraldRedisWire *wire)
{
  return wire != NULL && wire->ready && !wire->dead;
}

gboolean
herald_redis_wire_is_dead (HeraldRedisWire *wire)
{
  return wire == NULL || wire->dead;
}

gboolean
herald_redis_wire_command (HeraldRedisWire *wire, int argc, const char **argv, const size_t *lens,
                           HeraldRedisWireReplyFn fn, gpointer privdata)
{
  Pending *p;

  g_return_val_if_fail (wire != NULL && argc > 0, FALSE);
  if (wire->dead)
    return FALSE;
  p = g_new0 (Pending, 1);
  p->fn = fn;
  p->privdata = privdata;
  p->since = g_get_monotonic_time ();
  g_queue_push_tail (&wire->pending, p);
  format_into (wire->out, FALSE, argc, argv, lens);
  if (wire->out->len > MAX_UNSENT)
    {
      /* @fn gets NULL like every pending command; the caller sees TRUE. */
      wire_die (wire, _ ("too much unsent"));
      return TRUE;
    }
  flush_soon (wire);
  return TRUE;
}

gboolean
herald_redis_wire_send (HeraldRedisWire *wire, int argc, const char **argv)
{
  g_return_val_if_fail (wire != NULL && argc > 0, FALSE);
  if (wire->dead)
    return FALSE;
  format_into (wire->out, FALSE, argc, argv, NULL);
  flush_soon (wire);
  return TRUE;
}

gint64
herald_redis_wire_wait_ms (HeraldRedisWire *wire)
{
  Pending *p;

  if (wire == NULL || wire->dead || (p = g_queue_peek_head (&wire->pending)) == NULL)
    return 0;
  return (g_get_monotonic_time () - p->since) / 1000;
}
