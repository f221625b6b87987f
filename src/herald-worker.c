/* herald-worker.c: a worker thread and everything it owns.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include "herald-connection-table.h"
#include "herald-connection.h"
#include "herald-metrics.h"
#include "herald-worker-hold.h"
#include "herald-worker.h"

#define WHEEL_SLOTS 1024 /* seconds; farther deadlines are revisited when their slot comes */
#define SCRATCH_SIZE (64 * 1024)
#define SEND_BATCH_ENTRIES 256 /* socket writes per io_uring_enter() */

struct _HeraldWorker
{
  GObject parent_instance;

  const HeraldWorkerOwnerFuncs *owner_funcs; /* the hub, which owns its workers */
  gpointer owner;
  guint index;
  HeraldConnectionHost host; /* what the connections see of this worker */

  GThread *thread;
  GMainContext *context;
  GMainLoop *loop;
  HeraldLoop *epoll;
  HeraldLoopHandler inbox_handler; /* the inbox's eventfd in the epoll set */

  /* Startup hand-shake with the thread that called herald_worker_start(). */
  GMutex start_lock;
  GCond start_cond;
  gboolean started;
  GError *start_error;

  /* The front that feeds this shard (herald_worker_set_front()). */
  const HeraldWorkerFrontFuncs *front_funcs;
  gpointer front;
  GDestroyNotify front_free;

  /* Inbox: any thread pushes, the worker drains. */
  GAsyncQueue *inbox;
  int eventfd;
  gint wakeup_pending;
  gboolean self_posted; /* this thread posted to its own inbox: drain before sleeping */
  GPtrArray *to_wake;   /* other workers this thread posted to in this iteration (unowned) */

  GHashTable *connections; /* id → HeraldConnection (owned): herald-connection-table.h */
  GHashTable *users;       /* user id → GPtrArray of HeraldConnection (unowned) */
  GHashTable *channels;    /* name → HeraldChannel (owned) */
  GPtrArray *dead;         /* of HeraldConnection (owned refs), freed after the iteration */
  gint64 oldest_delivered; /* creation time of the oldest message delivered since the last
                            * flush (monotonic µs), 0 = none: the latency histogram */

  HeraldConnection *wheel[WHEEL_SLOTS];
  guint32 wheel_now;

  HeraldBackend *backend; /* [proxy] hooks, set by the front; NULL = none */

  HeraldStats stats;
  gboolean shutting_down;
  guint drain_ms;   /* the SIGTERM's drain window */
  gint64 drain_end; /* monotonic µs: when that window ends */
  gint drained;
};

G_DEFINE_FINAL_TYPE (HeraldWorker, herald_worker, G_TYPE_OBJECT)

/* The worker whose thread this is (NULL on other threads). */
static __thread HeraldWorker *current_worker;

void
herald_work_item_free (HeraldWorkItem *item)
{
  g_free (item->target);
  g_free (item->reason);
  g_clear_pointer (&item->message, herald_message_unref);
  g_free (item);
}

static void
herald_worker_finalize (GObject *object)
{
  HeraldWorker *self = HERALD_WORKER (object);
  HeraldWorkItem *item;

  while ((item = g_async_queue_try_pop (self->inbox)))
    herald_work_item_free (item);
  g_async_queue_unref (self->inbox);
  if (self->eventfd >= 0)
    close (self->eventfd);
  g_clear_pointer (&self->connections, g_hash_table_unref);
  g_clear_pointer (&self->users, g_hash_table_unref);
  g_clear_pointer (&self->channels, g_hash_table_unref);
  g_clear_pointer (&self->host.dirty, g_ptr_array_unref);
  g_clear_pointer (&self->dead, g_ptr_array_unref);
  g_clear_pointer (&self->to_wake, g_ptr_array_unref);
  g_clear_object (&self->backend);
  if (self->front_free)
    g_clear_pointer (&self->front, self->front_free);
  g_mutex_clear (&self->start_lock);
  g_cond_clear (&self->start_cond);
  G_OBJECT_CLASS (herald_worker_parent_class)->finalize (object);
}

static void
herald_worker_class_init (HeraldWorkerClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = herald_worker_finalize;
}

static void
herald_worker_init (HeraldWorker *self)
{
  g_mutex_init (&self->start_lock);
  g_cond_init (&self->start_cond);
  self->inbox = g_async_queue_new ();
  self->to_wake = g_ptr_array_new ();
  self->eventfd = eventfd (0, EFD_NONBLOCK | EFD_CLOEXEC);
  self->connections = herald_connection_table_new ();
  self->users
      = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify)g_ptr_array_unref);
  self->channels = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, g_object_unref);
  self->host.dirty = g_ptr_array_new_with_free_func (g_object_unref);
  self->dead = g_ptr_array_new_with_free_func (g_object_unref);
}

static const HeraldConnectionHostFuncs host_funcs;

HeraldWorker *
herald_worker_new (const HeraldWorkerOwnerFuncs *funcs, gpointer owner, guint index,
                   const HeraldStreamLimits *limits)
{
  HeraldWorker *self;

  g_return_val_if_fail (funcs != NULL && owner != NULL, NULL);
  g_return_val_if_fail (limits != NULL, NULL);

  self = g_object_new (HERALD_TYPE_WORKER, NULL);
  self->owner_funcs = funcs;
  self->owner = owner;
  self->index = index;
  self->host.funcs = &host_funcs;
  self->host.stats = &self->stats;
  self->host.limits = limits;
  return self;
}

/* ---- accessors (worker thread) ---- */

HeraldConnectionHost *
herald_worker_get_host (HeraldWorker *self)
{
  g_return_val_if_fail (HERALD_IS_WORKER (self), NULL);
  return &self->host;
}

guint
herald_worker_get_index (HeraldWorker *self)
{
  g_return_val_if_fail (HERALD_IS_WORKER (self), 0);

  return self->index;
}

GMainContext *
herald_worker_get_context (HeraldWorker *self)
{
  g_return_val_if_fail (HERALD_IS_WORKER (self), NULL);

  return self->context;
}

HeraldLoop *
herald_worker_get_loop (HeraldWorker *self)
{
  g_return_val_if_fail (HERALD_IS_WORKER (self), NULL);

  return self->epoll;
}

HeraldStats *
herald_worker_get_stats (HeraldWorker *self)
{
  g_return_val_if_fail (HERALD_IS_WORKER (self), NULL);

  return &self->stats;
}

gboolean
herald_worker_is_shutting_down (HeraldWorker *self)
{
  g_return_val_if_fail (HERALD_IS_WORKER (self), FALSE);

  return self->shutting_down;
}

guint
herald_worker_get_n_connections (HeraldWorker *self)
{
  g_return_val_if_fail (HERALD_IS_WORKER (self), 0);

  return g_hash_table_size (self->connections);
}

/* ---- connections ---- */

void
herald_worker_add_connection (HeraldWorker *self, HeraldConnection *connection)
{
  const char *user = herald_connection_get_user_id (connection);

  g_return_if_fail (HERALD_IS_WORKER (self));
  g_return_if_fail (HERALD_IS_CONNECTION (connection));

  herald_connection_table_add (self->connections, connection);
  if (user)
    {
      GPtrArray *list = g_hash_table_lookup (self->users, user);
      if (list == NULL)
        {
          list = g_ptr_array_new ();
          g_hash_table_insert (self->users, g_strdup (user), list);
        }
      g_ptr_array_add (list, connection);
    }
  self->stats.connections_opened++;
  if (herald_connection_get_transport (connection) == HERALD_TRANSPORT_SSE)
    self->stats.connections_sse++;
  else
    self->stats.connections_websocket++;
}

static void
wheel_unlink (HeraldWorker *self, HeraldConnection *connection)
{
  HeraldWheelLink *link = herald_connection_get_wheel_link (connection);

  if (!link->linked)
    return;
  if (link->prev)
    herald_connection_get_wheel_link (link->prev)->next = link->next;
  else
    self->wheel[link->slot] = link->next;
  if (link->next)
    herald_connection_get_wheel_link (link->next)->prev = link->prev;
  link->prev = link->next = NULL;
  link->linked = FALSE;
}

void
herald_worker_remove_connection (HeraldWorker *self, HeraldConnection *connection)
{
  const char *id = herald_connection_get_id (connection);
  const char *user = herald_connection_get_user_id (connection);
  HeraldConnection *owned;
  guint n;

  g_return_if_fail (HERALD_IS_WORKER (self));
  g_return_if_fail (HERALD_IS_CONNECTION (connection));

  owned = herald_connection_table_lookup (self->connections, id);
  if (owned != connection)
    return;

  while ((n = herald_connection_get_n_subscriptions (connection)) > 0)
    self->owner_funcs->unsubscribe (self->owner, self, connection,
                                    herald_connection_get_subscription (connection, n - 1));
  if (user)
    {
      GPtrArray *list = g_hash_table_lookup (self->users, user);
      if (list)
        {
          g_ptr_array_remove_fast (list, connection);
          if (list->len == 0)
            g_hash_table_remove (self->users, user);
        }
    }
  wheel_unlink (self, connection);
  if (herald_connection_get_transport (connection) == HERALD_TRANSPORT_SSE)
    self->stats.connections_sse--;
  else
    self->stats.connections_websocket--;

  /* Released from the hub only if close() did not do it already (EOF, reset). */
  self->owner_funcs->release (self->owner, id, 1006, "connection lost", FALSE);

  /* Keep the object alive until the end of this iteration: callers up the
   * stack may still hold it. */
  g_ptr_array_add (self->dead, g_object_ref (connection));
  herald_connection_table_steal (self->connections, connection);
  g_object_unref (connection);
}

HeraldConnection *
herald_worker_lookup_connection (HeraldWorker *self, const char *id)
{
  g_return_val_if_fail (HERALD_IS_WORKER (self), NULL);
  g_return_val_if_fail (id != NULL, NULL);

  return herald_connection_table_lookup (self->connections, id);
}

/* ---- the timer wheel ---- */

void
herald_worker_schedule (HeraldWorker *self, HeraldConnection *connection, guint32 when)
{
  HeraldWheelLink *link;
  guint32 now;

  g_return_if_fail (HERALD_IS_WORKER (self));
  g_return_if_fail (HERALD_IS_CONNECTION (connection));

  link = herald_connection_get_wheel_link (connection);
  now = self->wheel_now;
  wheel_unlink (self, connection);
  if (when == G_MAXUINT32)
    return;
  if (when <= now)
    when = now + 1;
  if (when - now >= WHEEL_SLOTS)
    when = now + WHEEL_SLOTS - 1;
  link->slot = when % WHEEL_SLOTS;
  link->prev = NULL;
  link->next = self->wheel[link->slot];
  if (link->next)
    herald_connection_get_wheel_link (link->next)->prev = connection;
  self->wheel[link->slot] = connection;
  link->linked = TRUE;
}

/* Subscriptions of subscription tokens end when the token does (on the
 * wheel, as the connection's other deadlines: no timer per subscription):
 * {"type":"unsubscribed","channel":…,"reason":"expired"}. Returns the next
 * expiry still ahead (G_MAXUINT32: none). */
static guint32
expire_subscriptions (HeraldWorker *self, HeraldConnection *conn, guint32 now)
{
  guint32 next = G_MAXUINT32;

  for (guint i = herald_connection_get_n_subscriptions (conn); i > 0; i--)
    {
      HeraldSubscription *sub;
      g_autofree char *name = NULL;
      g_autoptr (JsonBuilder) b = NULL;

      if (i > herald_connection_get_n_subscriptions (conn))
        break;
      sub = herald_connection_get_subscription (conn, i - 1);
      if (sub->expires == 0)
        continue;
      if (sub->expires > now)
        {
          next = MIN (next, sub->expires);
          continue;
        }
      name = g_strdup (herald_channel_get_name (sub->channel));
      self->owner_funcs->unsubscribe (self->owner, self, conn, sub);
      b = json_builder_new ();
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "type");
      json_builder_add_string_value (b, "unsubscribed");
      json_builder_set_member_name (b, "channel");
      json_builder_add_string_value (b, name);
      json_builder_set_member_name (b, "reason");
      json_builder_add_string_value (b, "expired");
      json_builder_end_object (b);
      herald_connection_send_json (conn, b);
    }
  return next;
}

static void
wheel_advance (HeraldWorker *self, guint32 now)
{
  /* Visit only the slots that came due: the cost is what is due, not N. */
  while (self->wheel_now < now)
    {
      guint slot;
      HeraldConnection *list;

      self->wheel_now++;
      slot = self->wheel_now % WHEEL_SLOTS;
      list = self->wheel[slot];
      self->wheel[slot] = NULL;
      while (list)
        {
          HeraldConnection *conn = list;
          HeraldWheelLink *link = herald_connection_get_wheel_link (conn);
          guint32 next;

          list = link->next;
          link->prev = link->next = NULL;
          link->linked = FALSE;
          if (list)
            herald_connection_get_wheel_link (list)->prev = NULL;
          next = herald_connection_sweep (conn, self->wheel_now);
          if (herald_connection_get_state (conn) == HERALD_CONNECTION_OPEN)
            next = MIN (next, expire_subscriptions (self, conn, self->wheel_now));
          if (herald_connection_get_state (conn) != HERALD_CONNECTION_CLOSED)
            herald_worker_schedule (self, conn, next);
        }
    }
}

void
herald_worker_reschedule_all (HeraldWorker *self)
{
  GHashTableIter iter;
  HeraldConnection *conn;

  g_return_if_fail (HERALD_IS_WORKER (self));

  g_hash_table_iter_init (&iter, self->connections);
  while (herald_connection_table_iter_next (&iter, &conn))
    herald_worker_schedule (self, conn, self->wheel_now + 1);
}

/* ---- channels ---- */

HeraldChannel *
herald_worker_lookup_channel (HeraldWorker *self, const char *name)
{
  g_return_val_if_fail (HERALD_IS_WORKER (self), NULL);
  g_return_val_if_fail (name != NULL, NULL);

  return g_hash_table_lookup (self->channels, name);
}

HeraldChannel *
herald_worker_ensure_channel (HeraldWorker *self, const char *name)
{
  HeraldChannel *channel;

  g_return_val_if_fail (HERALD_IS_WORKER (self), NULL);
  g_return_val_if_fail (name != NULL, NULL);

  channel = g_hash_table_lookup (self->channels, name);
  if (channel == NULL)
    {
      channel = herald_channel_new (name);
      g_hash_table_insert (self->channels, (gpointer)herald_channel_get_name (channel), channel);
      self->owner_funcs->channel_occupied (self->owner, self, name);
    }
  return channel;
}

void
herald_worker_release_channel (HeraldWorker *self, HeraldChannel *channel)
{
  g_return_if_fail (HERALD_IS_WORKER (self));
  g_return_if_fail (HERALD_IS_CHANNEL (channel));

  if (herald_channel_get_n_subscribers (channel) == 0)
    {
      self->owner_funcs->channel_vacated (self->owner, self, herald_channel_get_name (channel));
      g_hash_table_remove (self->channels, herald_channel_get_name (channel));
    }
}

/* ---- deliveries ---- */

static void
deliver_channel (HeraldWorker *self, HeraldMessage *message)
{
  HeraldChannel *channel
      = g_hash_table_lookup (self->channels, herald_message_get_channel (message));
  guint64 offset = herald_message_get_offset (message);
  guint n;

  if (channel == NULL)
    return;
  /* Closing connections stay in the array until the end of the iteration,
   * so the array does not change under this loop. */
  n = herald_channel_get_n_subscribers (channel);
  for (guint i = 0; i < n; i++)
    {
      HeraldSubscription *sub = herald_channel_get_subscriber (channel, i);
      if (offset != 0 && offset <= sub->skip_until) /* 0: not stored, never replayed */
        continue;
      /* Past the replay (or reset): later offsets only grow, unless a new
       * epoch starts them again at 1 — which must not be skipped. */
      if (offset != 0 || herald_message_is_reset (message))
        sub->skip_until = 0;
      herald_connection_deliver_full (sub->connection, message, sub->conflate);
    }
}

/* Join/leave events go only to subscriptions that asked for them. */
static void
deliver_presence (HeraldWorker *self, const char *name, HeraldMessage *message)
{
  HeraldChannel *channel = name ? g_hash_table_lookup (self->channels, name) : NULL;
  guint n;

  if (channel == NULL)
    return;
  n = herald_channel_get_n_subscribers (channel);
  for (guint i = 0; i < n; i++)
    {
      HeraldSubscription *sub = herald_channel_get_subscriber (channel, i);
      if (sub->presence)
        herald_connection_deliver (sub->connection, message);
    }
}

/* Per-connection join/leave events: every subscriber but the connection the
 * event is about. */
static void
deliver_join_leave (HeraldWorker *self, const char *name, HeraldMessage *message)
{
  HeraldChannel *channel = name ? g_hash_table_lookup (self->channels, name) : NULL;
  const char *exclude = herald_message_get_exclude (message);
  guint n = channel ? herald_channel_get_n_subscribers (channel) : 0;

  for (guint i = 0; i < n; i++)
    {
      HeraldConnection *conn = herald_channel_get_subscriber (channel, i)->connection;
      if (g_strcmp0 (herald_connection_get_id (conn), exclude) != 0)
        herald_connection_deliver (conn, message);
    }
}

static void
process_item (HeraldWorker *self, HeraldWorkItem *item)
{
  HeraldConnection *conn;
  GHashTableIter iter;

  switch (item->type)
    {
    case HERALD_WORK_DELIVER:
      if (item->message != NULL
          && (self->oldest_delivered == 0
              || herald_message_get_time (item->message) < self->oldest_delivered))
        self->oldest_delivered = herald_message_get_time (item->message);
      switch (item->kind)
        {
        case HERALD_TARGET_CHANNEL:
          deliver_channel (self, item->message);
          break;
        case HERALD_TARGET_ALL:
          g_hash_table_iter_init (&iter, self->connections);
          while (herald_connection_table_iter_next (&iter, &conn))
            herald_connection_deliver (conn, item->message);
          break;
        case HERALD_TARGET_USER:
          {
            GPtrArray *list = g_hash_table_lookup (self->users, item->target);
            for (guint i = 0; list && i < list->len; i++)
              herald_connection_deliver (g_ptr_array_index (list, i), item->message);
          }
          break;
        case HERALD_TARGET_CONNECTION:
          conn = herald_connection_table_lookup (self->connections, item->target);
          if (conn)
            herald_connection_deliver (conn, item->message);
          break;
        case HERALD_TARGET_PRESENCE:
          deliver_presence (self, item->target, item->message);
          break;
        case HERALD_TARGET_USER_SUBSCRIPTION:
          {
            GPtrArray *list = g_hash_table_lookup (self->users, item->target);
            /* A copy: the owner may close a connection (and change the list) */
            g_autoptr (GPtrArray) copy = g_ptr_array_new_with_free_func (g_object_unref);

            for (guint i = 0; list && i < list->len; i++)
              g_ptr_array_add (copy, g_object_ref (g_ptr_array_index (list, i)));
            for (guint i = 0; i < copy->len; i++)
              self->owner_funcs->server_subscription (self->owner, self, copy->pdata[i],
                                                      item->message);
          }
          break;
        case HERALD_TARGET_JOIN_LEAVE:
          deliver_join_leave (self, item->target, item->message);
          break;
        case HERALD_TARGET_CLOSE:
          break;
        }
      break;
    case HERALD_WORK_CLOSE:
      conn = herald_connection_table_lookup (self->connections, item->target);
      if (conn)
        herald_connection_close (conn, item->code, item->reason);
      break;
    case HERALD_WORK_CALL:
      item->func (self, item->data);
      break;
    }
}

static void
process_inbox (HeraldWorker *self)
{
  HeraldWorkItem *item;

  self->self_posted = FALSE;
  while ((item = g_async_queue_try_pop (self->inbox)))
    {
      process_item (self, item);
      herald_work_item_free (item);
    }
}

static void
drain_inbox (HeraldLoopHandler *handler, guint32 events)
{
  HeraldWorker *self = G_STRUCT_MEMBER_P (handler, -G_STRUCT_OFFSET (HeraldWorker, inbox_handler));
  guint64 value;

  if (read (self->eventfd, &value, sizeof value) < 0 && errno != EAGAIN)
    g_warning ("eventfd read: %s", g_strerror (errno));
  g_atomic_int_set (&self->wakeup_pending, 0);
  process_inbox (self);
}

static void
wake (HeraldWorker *self)
{
  /* Once per batch, not once per item: the flag is cleared when the worker
   * reads its eventfd. */
  if (g_atomic_int_compare_and_exchange (&self->wakeup_pending, 0, 1))
    {
      guint64 one = 1;
      if (write (self->eventfd, &one, sizeof one) < 0 && errno != EAGAIN)
        g_warning ("eventfd write: %s", g_strerror (errno));
    }
}

/* Wakes the workers this one posted to during the iteration that ends. */
static void
wake_posted (HeraldWorker *self)
{
  for (guint i = 0; i < self->to_wake->len; i++)
    wake (g_ptr_array_index (self->to_wake, i));
  g_ptr_array_set_size (self->to_wake, 0);
}

/**
 * herald_worker_run_posted:
 *
 * On a worker thread, processes now what this thread posted to its own
 * inbox (e.g. the local deliveries of a publish it just made), so they are
 * queued on their connections before anything the caller sends next.
 */
void
herald_worker_run_posted (void)
{
  HeraldWorker *self = current_worker;

  if (self != NULL && self->self_posted)
    process_inbox (self);
}

/**
 * herald_worker_post:
 *
 * Queues @item for @self (any thread). The cheap cases first: a worker
 * posting to itself needs no wake-up at all (it drains its inbox before it
 * sleeps), and a worker posting to another wakes it once at the end of its
 * own loop iteration, however many items it posted there; other threads
 * wake the worker at once.
 */
void
herald_worker_post (HeraldWorker *self, HeraldWorkItem *item)
{
  HeraldWorker *poster = current_worker;

  g_return_if_fail (HERALD_IS_WORKER (self));
  g_return_if_fail (item != NULL);

  g_async_queue_push (self->inbox, item);
  if (poster == self)
    self->self_posted = TRUE;
  else if (poster != NULL)
    {
      guint i;
      for (i = 0; i < poster->to_wake->len; i++)
        if (g_ptr_array_index (poster->to_wake, i) == self)
          break;
      if (i == poster->to_wake->len)
        g_ptr_array_add (poster->to_wake, self);
    }
  else
    wake (self);
}

/* ---- what the connections report ---- */

static HeraldWorker *
host_worker (HeraldConnectionHost *host)
{
  return G_STRUCT_MEMBER_P (host, -G_STRUCT_OFFSET (HeraldWorker, host));
}

static void
host_received (HeraldConnectionHost *host, HeraldConnection *connection, const char *text,
               gsize length)
{
  HeraldWorker *self = host_worker (host);

  /* Behind a pending backend call: later, in order */
  if (!herald_hold_take (connection, text, length))
    self->owner_funcs->received (self->owner, self, connection, text, length);
}

static void
dispatch_held (gpointer data, HeraldConnection *connection, const char *text, gsize length)
{
  HeraldWorker *self = data;

  self->owner_funcs->received (self->owner, self, connection, text, length);
}

/**
 * herald_worker_hold_input:
 *
 * From now on @connection's messages wait (in order) until
 * herald_worker_release_input(): a frame after a pending backend call is
 * answered after it.
 */
void
herald_worker_hold_input (HeraldWorker *self, HeraldConnection *connection)
{
  g_return_if_fail (HERALD_IS_WORKER (self));
  herald_hold_start (connection);
}

/**
 * herald_worker_release_input:
 *
 * Handles @connection's held messages in order, until one of them holds its
 * input again (the rest then wait behind that one).
 */
void
herald_worker_release_input (HeraldWorker *self, HeraldConnection *connection)
{
  g_return_if_fail (HERALD_IS_WORKER (self));
  herald_hold_release (connection, dispatch_held, self);
}

void
herald_worker_set_backend (HeraldWorker *self, HeraldBackend *backend)
{
  g_return_if_fail (HERALD_IS_WORKER (self));
  g_set_object (&self->backend, backend);
}

HeraldBackend *
herald_worker_get_backend (HeraldWorker *self)
{
  g_return_val_if_fail (HERALD_IS_WORKER (self), NULL);
  return self->backend;
}

static gboolean
host_expired (HeraldConnectionHost *host, HeraldConnection *connection)
{
  HeraldWorker *self = host_worker (host);

  if (self->owner_funcs->expired == NULL)
    return FALSE;
  return self->owner_funcs->expired (self->owner, self, connection);
}

static void
host_closing (HeraldConnectionHost *host, HeraldConnection *connection, guint16 code,
              const char *reason)
{
  HeraldWorker *self = host_worker (host);
  self->owner_funcs->release (self->owner, herald_connection_get_id (connection), code, reason,
                              TRUE);
}

static void
host_finished (HeraldConnectionHost *host, HeraldConnection *connection)
{
  herald_worker_remove_connection (host_worker (host), connection);
}

static void
host_schedule (HeraldConnectionHost *host, HeraldConnection *connection, guint32 when)
{
  herald_worker_schedule (host_worker (host), connection, when);
}

static const HeraldConnectionHostFuncs host_funcs = {
  .received = host_received,
  .closing = host_closing,
  .finished = host_finished,
  .schedule = host_schedule,
  .expired = host_expired,
};

/* ---- loop callbacks ---- */

static void
on_ready (gpointer ptr, guint32 events, gpointer user_data)
{
  /* A connection, or the inbox and what the front keeps in the set. */
  if (G_UNLIKELY (HERALD_IS_LOOP_HANDLER (ptr)))
    ((HeraldLoopHandler *)ptr)->ready (ptr, events);
  else
    herald_connection_handle_events (ptr, events);
}

static gboolean
on_flush (gpointer user_data)
{
  HeraldWorker *self = user_data;
  gboolean delivered;

  /* Deliveries this thread posted to itself, in inbox order behind what
   * other threads queued earlier (sequence order is kept). */
  if (self->self_posted)
    process_inbox (self);
  /* Other workers start on what this iteration posted them before this one
   * spends its time writing. */
  wake_posted (self);
  /* HTTP answers first (publishes among them): a publisher learns its
   * message was taken before this thread spends its time writing to the
   * subscribers, and its next message is already on its way. */
  if (self->front)
    self->front_funcs->flush (self->front);

  /* Once per batch, not per delivery: how long the oldest message of the
   * batch took from its publish to the kernel (herald-metrics.h). */
  delivered = self->oldest_delivered != 0 && self->host.dirty->len > 0;

  /* Flushing may close connections, which may queue nothing new; take the
   * list first so additions during the walk land in a fresh one. */
  while (self->host.dirty->len > 0)
    {
      g_autoptr (GPtrArray) dirty = self->host.dirty;
      self->host.dirty = g_ptr_array_new_with_free_func (g_object_unref);
      herald_connection_flush_many (&self->host, dirty);
    }
  if (delivered)
    herald_metrics_observe_write_latency (g_get_monotonic_time () - self->oldest_delivered);
  self->oldest_delivered = 0;
  if (self->front)
    self->front_funcs->flush (self->front);
  g_ptr_array_set_size (self->dead, 0);
  wake_posted (self);
  return FALSE;
}

static gboolean
has_pending (gpointer user_data)
{
  HeraldWorker *self = user_data;
  return self->host.dirty->len > 0 || self->dead->len > 0 || self->self_posted
         || self->to_wake->len > 0 || (self->front && self->front_funcs->has_pending (self->front));
}

static void finish_shutdown (HeraldWorker *self);

static void
on_tick (guint32 now, gpointer user_data)
{
  HeraldWorker *self = user_data;

  wheel_advance (self, now);
  if (self->front)
    self->front_funcs->tick (self->front, now);
  if (self->shutting_down && !g_atomic_int_get (&self->drained)
      && g_hash_table_size (self->connections) == 0)
    finish_shutdown (self);
}

static const HeraldLoopFuncs loop_funcs = {
  .ready = on_ready,
  .flush = on_flush,
  .has_pending = has_pending,
  .tick = on_tick,
};

/* ---- queries ---- */

GPtrArray *
herald_worker_list_connections (HeraldWorker *self)
{
  GPtrArray *out = g_ptr_array_new_with_free_func ((GDestroyNotify)herald_connection_info_free);
  GHashTableIter iter;
  HeraldConnection *conn;

  g_return_val_if_fail (HERALD_IS_WORKER (self), NULL);

  g_hash_table_iter_init (&iter, self->connections);
  while (herald_connection_table_iter_next (&iter, &conn))
    if (herald_connection_get_state (conn) == HERALD_CONNECTION_OPEN)
      g_ptr_array_add (out, herald_connection_get_info (conn));
  return out;
}

GPtrArray *
herald_worker_list_channels (HeraldWorker *self)
{
  GPtrArray *out = g_ptr_array_new_with_free_func ((GDestroyNotify)herald_channel_info_free);
  GHashTableIter iter;
  HeraldChannel *channel;

  g_return_val_if_fail (HERALD_IS_WORKER (self), NULL);

  g_hash_table_iter_init (&iter, self->channels);
  while (g_hash_table_iter_next (&iter, NULL, (gpointer *)&channel))
    {
      HeraldChannelInfo *info = g_new0 (HeraldChannelInfo, 1);
      info->name = g_strdup (herald_channel_get_name (channel));
      info->subscribers = herald_channel_get_n_subscribers (channel);
      g_ptr_array_add (out, info);
    }
  return out;
}

void
herald_worker_add_stats (HeraldWorker *self, HeraldStats *stats)
{
  GHashTableIter iter;
  HeraldConnection *conn;

  g_return_if_fail (HERALD_IS_WORKER (self));
  g_return_if_fail (stats != NULL);

  stats->connections_websocket += self->stats.connections_websocket;
  stats->connections_sse += self->stats.connections_sse;
  stats->connections_opened += self->stats.connections_opened;
  stats->messages_received += self->stats.messages_received;
  stats->deliveries += self->stats.deliveries;
  stats->bytes_written += self->stats.bytes_written;
  stats->writes_sendmsg += self->stats.writes_sendmsg;
  stats->writes_batched += self->stats.writes_batched;
  stats->batch_submits += self->stats.batch_submits;
  stats->dropped += self->stats.dropped;
  stats->conflated += self->stats.conflated;
  for (guint i = 0; i < G_N_ELEMENTS (stats->closes); i++)
    stats->closes[i] += self->stats.closes[i];
  g_hash_table_iter_init (&iter, self->connections);
  while (herald_connection_table_iter_next (&iter, &conn))
    {
      HeraldConnectionInfo *info = herald_connection_get_info (conn);
      stats->bytes_queued += info->bytes_queued;
      herald_connection_info_free (info);
    }
}

/* The last connection is gone: stop listening and end the thread. */
static void
finish_shutdown (HeraldWorker *self)
{
  if (self->front)
    self->front_funcs->stop_accepting (self->front);
  g_atomic_int_set (&self->drained, 1);
  g_main_loop_quit (self->loop);
}

/* Each connection gets its reconnect hint and 1001 at a moment drawn
 * uniformly from [0, drain_ms), put on the timer wheel (one-second steps);
 * the hint's "after" is a second, independent draw over the same window so
 * that clients spread their reconnects. Listeners stay open meanwhile: new
 * upgrades are refused with 503 (herald-http.c) and /healthz says draining. */
void
herald_worker_begin_shutdown (HeraldWorker *self, guint drain_ms)
{
  g_autoptr (GPtrArray) conns = g_ptr_array_new_with_free_func (g_object_unref);
  GHashTableIter iter;
  HeraldConnection *conn;

  g_return_if_fail (HERALD_IS_WORKER (self));

  g_hash_table_iter_init (&iter, self->connections);
  while (herald_connection_table_iter_next (&iter, &conn))
    g_ptr_array_add (conns, g_object_ref (conn));

  self->shutting_down = TRUE;
  self->drain_ms = drain_ms;
  self->drain_end = g_get_monotonic_time () + (gint64)drain_ms * 1000;
  for (guint i = 0; i < conns->len; i++)
    {
      HeraldConnection *c = g_ptr_array_index (conns, i);
      if (drain_ms == 0)
        herald_connection_drain (c, 0);
      else
        herald_connection_schedule_drain (c, (guint)g_random_int_range (0, (gint32)drain_ms),
                                          (guint)g_random_int_range (0, (gint32)drain_ms));
    }
  if (g_hash_table_size (self->connections) == 0)
    finish_shutdown (self);
}

/* A connection adopted after the SIGTERM (its handshake was under way, e.g.
 * waiting for the backend's connect hook) is drained like the others, in
 * what is left of the window: its close is drawn from the remaining time,
 * its hint's "after" from the whole window. Past the window it goes at once. */
void
herald_worker_drain_late (HeraldWorker *self, HeraldConnection *connection)
{
  gint64 left_ms;

  g_return_if_fail (HERALD_IS_WORKER (self));
  g_return_if_fail (HERALD_IS_CONNECTION (connection));

  if (!self->shutting_down)
    return;
  left_ms = (self->drain_end - g_get_monotonic_time ()) / 1000;
  if (left_ms <= 0 || self->drain_ms == 0)
    herald_connection_drain (connection, 0);
  else
    herald_connection_schedule_drain (
        connection, (guint)g_random_int_range (0, (gint32)MIN (left_ms, G_MAXINT32)),
        (guint)g_random_int_range (0, (gint32)self->drain_ms));
}

/* Any thread: TRUE once a shutting-down worker has closed every connection
 * (close frames flushed and peers answered, or their grace ran out). */
gboolean
herald_worker_is_drained (HeraldWorker *self)
{
  g_return_val_if_fail (HERALD_IS_WORKER (self), FALSE);

  return g_atomic_int_get (&self->drained);
}

/* ---- the thread ---- */

static gpointer
worker_thread (gpointer data)
{
  HeraldWorker *self = data;
  g_autoptr (GError) error = NULL;
  GHashTableIter iter;
  HeraldConnection *conn;

  g_main_context_push_thread_default (self->context);
  current_worker = self;

  self->host.scratch = g_malloc (SCRATCH_SIZE);
  self->host.scratch_size = SCRATCH_SIZE;
  self->host.inflater = herald_ws_inflater_new ();
  self->epoll = herald_loop_new (self->context, &loop_funcs, self);
  self->host.loop = self->epoll;
  self->wheel_now = herald_loop_now ();
  self->inbox_handler = (HeraldLoopHandler)HERALD_LOOP_HANDLER_INIT (drain_inbox);
  herald_loop_add (self->epoll, self->eventfd, EPOLLIN, &self->inbox_handler);
  if (g_atomic_int_get (&self->host.limits->io_uring))
    {
      g_autoptr (GError) batch_error = NULL;

      self->host.batch = herald_send_batch_new (SEND_BATCH_ENTRIES, &batch_error);
      if (self->host.batch == NULL && self->index == 0)
        g_message ("io_uring not available (%s): writing to each socket with sendmsg",
                   batch_error->message);
    }
  if (self->front)
    self->front_funcs->start (self->front);

  g_mutex_lock (&self->start_lock);
  self->started = TRUE;
  self->start_error = g_steal_pointer (&error);
  g_cond_signal (&self->start_cond);
  g_mutex_unlock (&self->start_lock);

  if (self->start_error == NULL)
    g_main_loop_run (self->loop);

  /* Tear down in this thread: the objects belong to its context. */
  if (self->front)
    self->front_funcs->stop (self->front);
  g_hash_table_iter_init (&iter, self->connections);
  while (herald_connection_table_iter_next (&iter, &conn))
    self->owner_funcs->release (self->owner, herald_connection_get_id (conn), 1001,
                                "server shutting down", FALSE);
  g_hash_table_remove_all (self->connections);
  g_hash_table_remove_all (self->users);
  g_hash_table_remove_all (self->channels);
  g_ptr_array_set_size (self->host.dirty, 0);
  g_ptr_array_set_size (self->dead, 0);
  g_clear_pointer (&self->epoll, herald_loop_free);
  self->host.loop = NULL;
  g_clear_pointer (&self->host.batch, herald_send_batch_free);
  g_clear_pointer (&self->host.inflater, herald_ws_inflater_free);
  g_clear_pointer (&self->host.scratch, g_free);

  /* Let pending sources (closures of libsoup) run their finalizers. */
  while (g_main_context_iteration (self->context, FALSE))
    ;
  wake_posted (self);
  current_worker = NULL;
  g_main_context_pop_thread_default (self->context);
  return NULL;
}

void
herald_worker_set_front (HeraldWorker *self, const HeraldWorkerFrontFuncs *funcs, gpointer front,
                         GDestroyNotify front_free)
{
  g_return_if_fail (HERALD_IS_WORKER (self));
  g_return_if_fail (self->thread == NULL && self->front == NULL);
  g_return_if_fail (funcs != NULL && front != NULL);

  self->front_funcs = funcs;
  self->front = front;
  self->front_free = front_free;
}

gboolean
herald_worker_start (HeraldWorker *self, GError **error)
{
  g_autofree char *name = NULL;

  g_return_val_if_fail (HERALD_IS_WORKER (self), FALSE);
  g_return_val_if_fail (self->thread == NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  name = g_strdup_printf ("herald-worker-%u", self->index);
  self->context = g_main_context_new ();
  self->loop = g_main_loop_new (self->context, FALSE);
  self->thread = g_thread_new (name, worker_thread, self);

  g_mutex_lock (&self->start_lock);
  while (!self->started)
    g_cond_wait (&self->start_cond, &self->start_lock);
  g_mutex_unlock (&self->start_lock);

  if (self->start_error)
    {
      g_propagate_error (error, g_steal_pointer (&self->start_error));
      herald_worker_stop (self);
      return FALSE;
    }
  return TRUE;
}

static void
quit_worker (HeraldWorker *self, gpointer data)
{
  g_main_loop_quit (self->loop);
}

void
herald_worker_stop (HeraldWorker *self)
{
  g_return_if_fail (HERALD_IS_WORKER (self));

  if (self->thread == NULL)
    return;
  if (self->start_error == NULL)
    {
      HeraldWorkItem *item = g_new0 (HeraldWorkItem, 1);
      item->type = HERALD_WORK_CALL;
      item->func = quit_worker;
      herald_worker_post (self, item);
    }
  g_thread_join (self->thread);
  self->thread = NULL;
  g_clear_pointer (&self->loop, g_main_loop_unref);
  g_clear_pointer (&self->context, g_main_context_unref);
}
