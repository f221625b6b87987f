/* herald-front.c: listeners, the fast path and libsoup for one shard.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <errno.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include <libsoup/soup.h>

#include "herald-front.h"
#include "herald-http-api.h"
#include "herald-http-early.h"
#include "herald-http-fast.h"
#include "herald-http-upgrade.h"
#include "herald-http.h"
#include "herald-prefix-input-stream.h"
#include "herald-proxy.h"
#include "herald-security.h"

#define ACCEPT_BATCH 64

/* A listening socket in the worker's epoll set. Herald accepts connections
 * itself, in batches, and hands each to libsoup with
 * soup_server_accept_iostream(): libsoup 3.2's own listener accepts one
 * connection per main-loop iteration and leaks a GSocket reference per
 * connection (fixed upstream in 3.3). */
typedef struct
{
  HeraldLoopHandler handler; /* first field */
  HeraldFront *front;
  GSocket *socket;
  gboolean tls;
  gboolean nodelay; /* TCP_NODELAY on the listener: accepted sockets inherit it */
} Listener;

struct _HeraldFront
{
  GObject parent_instance;

  HeraldHub *hub;       /* unowned: outlives the workers */
  HeraldWorker *worker; /* unowned: owns the front */
  GTlsCertificate *certificate;
  GPtrArray *sockets; /* of GSocket */

  /* Worker thread only, between start() and stop(). */
  SoupServer *server;
  HeraldHttpFast *fast;       /* plain-TCP connections until handed to libsoup */
  HeraldHttpUpgrade *upgrade; /* the fast path's plain handshakes */
  GPtrArray *listeners;       /* of Listener* */
  HeraldProxy *proxy;         /* [proxy] hooks of this worker, NULL = none */
};

G_DEFINE_FINAL_TYPE (HeraldFront, herald_front, G_TYPE_OBJECT)

static void
herald_front_finalize (GObject *object)
{
  HeraldFront *self = HERALD_FRONT (object);

  g_warn_if_fail (self->server == NULL && self->fast == NULL);
  g_clear_pointer (&self->sockets, g_ptr_array_unref);
  g_clear_object (&self->certificate);
  G_OBJECT_CLASS (herald_front_parent_class)->finalize (object);
}

static void
herald_front_class_init (HeraldFrontClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = herald_front_finalize;
}

static void
herald_front_init (HeraldFront *self)
{
}

/* ---- accepting ---- */

static void
hand_to_libsoup (HeraldFront *self, Listener *listener, int fd, GBytes *prefix)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GSocket) socket = g_socket_new_from_fd (fd, &error);
  g_autoptr (GSocketConnection) connection = NULL;
  g_autoptr (GIOStream) stream = NULL;
  g_autoptr (GSocketAddress) local = NULL;
  g_autoptr (GSocketAddress) remote = NULL;

  if (socket == NULL)
    {
      close (fd);
      g_debug ("accepted socket unusable: %s", error->message);
      return;
    }
  connection = g_socket_connection_factory_create_connection (socket);
  local = g_socket_get_local_address (socket, NULL);
  remote = g_socket_get_remote_address (socket, NULL);
  if (local == NULL || remote == NULL)
    return; /* the client is already gone */
  if (listener->tls)
    {
      stream = (GIOStream *)g_tls_server_connection_new (G_IO_STREAM (connection),
                                                         self->certificate, &error);
      if (stream == NULL)
        {
          g_warning ("TLS: %s", error->message);
          return;
        }
    }
  else if (prefix != NULL && g_bytes_get_size (prefix) > 0)
    {
      /* Bytes the fast path already read from this connection come first. */
      g_autoptr (GInputStream) in
          = herald_prefix_input_stream_new (g_io_stream_get_input_stream (G_IO_STREAM (connection)),
                                            prefix, G_IO_STREAM (connection));
      stream
          = g_simple_io_stream_new (in, g_io_stream_get_output_stream (G_IO_STREAM (connection)));
    }
  else
    stream = G_IO_STREAM (g_object_ref (connection));
  g_object_set_data (G_OBJECT (stream), "herald-fd", GINT_TO_POINTER (fd));
  herald_security_watch_socket (self->server, socket); /* handshake deadline */
  if (!soup_server_accept_iostream (self->server, stream, local, remote, &error))
    g_debug ("libsoup refused a connection: %s", error->message);
}

/* The keep-alive fast path gives a connection up at a request boundary. */
static void
fast_hand_off (gpointer user_data, gpointer listener, int fd, GBytes *prefix)
{
  hand_to_libsoup (user_data, listener, fd, prefix);
}

static void
accept_batch (HeraldLoopHandler *handler, guint32 events)
{
  Listener *listener = (Listener *)handler;
  HeraldFront *self = listener->front;
  int lfd = g_socket_get_fd (listener->socket);

  if (self->server == NULL)
    return;
  /* Reconnect storms: take what is waiting, a batch per wakeup. */
  for (int i = 0; i < ACCEPT_BATCH; i++)
    {
      int one = 1;
      int fd = accept4 (lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

      if (fd < 0)
        {
          if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ECONNABORTED)
            g_warning ("accept: %s", g_strerror (errno));
          break;
        }
      if (!listener->nodelay)
        setsockopt (fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      /* Plain HTTP first goes to the keep-alive fast path for the hot API calls. */
      if (!listener->tls && self->fast)
        herald_http_fast_accept (self->fast, fd, listener);
      else
        hand_to_libsoup (self, listener, fd, NULL);
    }
}

/* ---- the worker's hooks (its thread) ---- */

static void
front_start (gpointer data)
{
  HeraldFront *self = data;
  HeraldLoop *loop = herald_worker_get_loop (self->worker);
  int one = 1;

  /* In the worker's context: the backend's answers come back in this thread */
  self->proxy = herald_proxy_new (herald_hub_get_config (self->hub));
  herald_worker_set_backend (self->worker, HERALD_BACKEND (self->proxy));
  herald_hub_defer_signals (self->hub, TRUE);
  self->fast = herald_http_fast_new (self->hub, loop, fast_hand_off, self);
  self->upgrade = herald_http_upgrade_new (self->hub, self->worker);
  herald_http_fast_set_upgrade (self->fast, self->upgrade);
  self->server = soup_server_new ("server-header", "herald/" PACKAGE_VERSION, "tls-certificate",
                                  self->certificate, NULL);
  herald_http_register (self->server, self->hub, self->worker);
  herald_http_api_register (self->server, self->hub);
  self->listeners = g_ptr_array_new_with_free_func (g_free);
  for (guint i = 0; i < self->sockets->len; i++)
    {
      Listener *listener = g_new0 (Listener, 1);
      listener->handler = (HeraldLoopHandler)HERALD_LOOP_HANDLER_INIT (accept_batch);
      listener->front = self;
      listener->socket = g_ptr_array_index (self->sockets, i);
      listener->tls = g_object_get_data (G_OBJECT (listener->socket), "herald-tls") != NULL;
      /* Set once here instead of once per accepted connection (Linux copies
       * it to the sockets accept() returns). */
      listener->nodelay = setsockopt (g_socket_get_fd (listener->socket), IPPROTO_TCP, TCP_NODELAY,
                                      &one, sizeof one)
                          == 0;
      g_ptr_array_add (self->listeners, listener);
      herald_loop_add (loop, g_socket_get_fd (listener->socket), EPOLLIN, listener);
    }
}

static void
front_flush (gpointer data)
{
  HeraldFront *self = data;

  if (self->fast)
    herald_http_fast_flush (self->fast);
  herald_hub_flush_signals (self->hub);
}

static gboolean
front_has_pending (gpointer data)
{
  HeraldFront *self = data;

  return (self->fast && herald_http_fast_has_pending (self->fast))
         || herald_hub_has_deferred_signals (self->hub);
}

static void
front_tick (gpointer data, guint32 now)
{
  HeraldFront *self = data;

  if (self->server)
    herald_security_sweep (self->server, now);
  if (self->fast)
    herald_http_fast_sweep (self->fast, now);
}

static void
remove_listeners (HeraldFront *self)
{
  HeraldLoop *loop = herald_worker_get_loop (self->worker);

  for (guint i = 0; self->listeners && i < self->listeners->len; i++)
    {
      Listener *listener = g_ptr_array_index (self->listeners, i);
      herald_loop_remove (loop, g_socket_get_fd (listener->socket));
    }
}

static void
front_stop_accepting (gpointer data)
{
  HeraldFront *self = data;

  remove_listeners (self);
  if (self->server)
    soup_server_disconnect (self->server);
  g_clear_object (&self->server);
  if (self->fast)
    herald_http_fast_close_all (self->fast);
}

static void
front_stop (gpointer data)
{
  HeraldFront *self = data;

  if (self->server)
    soup_server_disconnect (self->server);
  g_clear_object (&self->server);
  remove_listeners (self);
  g_clear_pointer (&self->listeners, g_ptr_array_unref);
  g_clear_pointer (&self->fast, herald_http_fast_free);
  g_clear_pointer (&self->upgrade, herald_http_upgrade_free);
  if (self->proxy != NULL)
    herald_proxy_abort (self->proxy);
  herald_worker_set_backend (self->worker, NULL);
  g_clear_object (&self->proxy);
  /* What the thread still reports (its connections released) wakes the main context at once */
  herald_hub_defer_signals (self->hub, FALSE);
}

static const HeraldWorkerFrontFuncs front_funcs = {
  .start = front_start,
  .flush = front_flush,
  .has_pending = front_has_pending,
  .tick = front_tick,
  .stop_accepting = front_stop_accepting,
  .stop = front_stop,
};

HeraldFront *
herald_front_attach (HeraldHub *hub, HeraldWorker *worker, GPtrArray *sockets,
                     GTlsCertificate *certificate)
{
  HeraldFront *self;

  g_return_val_if_fail (HERALD_IS_HUB (hub), NULL);
  g_return_val_if_fail (HERALD_IS_WORKER (worker), NULL);
  g_return_val_if_fail (sockets != NULL, NULL);
  g_return_val_if_fail (certificate == NULL || G_IS_TLS_CERTIFICATE (certificate), NULL);

  self = g_object_new (HERALD_TYPE_FRONT, NULL);
  self->hub = hub;
  self->worker = worker;
  self->sockets = g_ptr_array_ref (sockets);
  self->certificate = certificate ? g_object_ref (certificate) : NULL;
  herald_worker_set_front (worker, &front_funcs, self, g_object_unref);
  return self;
}
