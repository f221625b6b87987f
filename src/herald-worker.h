/* herald-worker.h: a shard — one thread, one GMainContext, its connections.
 *
 * A worker owns every connection handed to it: their sockets sit in its epoll
 * set, their subscriptions in its channel table, their deadlines in its timer
 * wheel. Other threads talk to it only through herald_worker_post(). It knows
 * no HTTP: a front (herald-front.h) plugs in with herald_worker_set_front()
 * and hands finished handshakes to the hub (herald_hub_adopt()).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>

#include "herald-backend.h"
#include "herald-channel.h"
#include "herald-connection.h"
#include "herald-info.h"
#include "herald-loop.h"
#include "herald-message.h"

G_BEGIN_DECLS

#define HERALD_TYPE_WORKER (herald_worker_get_type ())
G_DECLARE_FINAL_TYPE (HeraldWorker, herald_worker, HERALD, WORKER, GObject)

/* A function run in a worker's thread (herald_hub_foreach_worker()). */
typedef void (*HeraldWorkerFunc) (HeraldWorker *worker, gpointer user_data);

/* What the worker reports to its owner (the hub), in the worker's thread
 * except release(), which may run on the thread that stops the worker. */
typedef struct
{
  /* The worker's channel table gained its first / lost its last subscriber. */
  void (*channel_occupied) (gpointer owner, HeraldWorker *worker, const char *channel);
  void (*channel_vacated) (gpointer owner, HeraldWorker *worker, const char *channel);
  /* A client's text message. */
  void (*received) (gpointer owner, HeraldWorker *worker, HeraldConnection *connection,
                    const char *text, gsize length);
  /* End @subscription of a finished connection (herald_hub_unsubscribe()). */
  void (*unsubscribe) (gpointer owner, HeraldWorker *worker, HeraldConnection *connection,
                       HeraldSubscription *subscription);
  /* The server subscribes or unsubscribes @connection (a
   * HERALD_TARGET_USER_SUBSCRIPTION delivery of @message). */
  void (*server_subscription) (gpointer owner, HeraldWorker *worker, HeraldConnection *connection,
                               HeraldMessage *message);
  /* The connection @id is closing (@was_open) or gone (herald_hub_release_connection()). */
  void (*release) (gpointer owner, const char *id, guint16 code, const char *reason,
                   gboolean was_open);
  /* The backend-given expiry of @connection passed: TRUE when the owner asks
   * the backend (and later sets a new expiry or closes), FALSE to close 4003. */
  gboolean (*expired) (gpointer owner, HeraldWorker *worker, HeraldConnection *connection);
} HeraldWorkerOwnerFuncs;

typedef enum
{
  HERALD_WORK_DELIVER, /* HeraldDelivery-like: kind, target, message */
  HERALD_WORK_CLOSE,   /* target, code, reason */
  HERALD_WORK_CALL,    /* func(worker, data) */
} HeraldWorkType;

typedef struct
{
  HeraldWorkType type;
  HeraldTargetKind kind;
  char *target;
  HeraldMessage *message;
  guint16 code;
  char *reason;
  HeraldWorkerFunc func;
  gpointer data;
} HeraldWorkItem;

/* A worker at position @index of @owner's, its connections reading @limits
 * (kept current by the owner). */
HeraldWorker *herald_worker_new (const HeraldWorkerOwnerFuncs *funcs, gpointer owner, guint index,
                                 const HeraldStreamLimits *limits);

/* What a front does in the worker's thread, each called with the front. */
typedef struct
{
  void (*start) (gpointer front);               /* before the loop runs */
  void (*flush) (gpointer front);               /* each iteration, after the connections */
  gboolean (*has_pending) (gpointer front);     /* output waits for flush */
  void (*tick) (gpointer front, guint32 now_s); /* about once a second */
  void (*stop_accepting) (gpointer front);      /* graceful shutdown began */
  void (*stop) (gpointer front);                /* the thread ends */
} HeraldWorkerFrontFuncs;

/* Before herald_worker_start(): @front (freed with @front_free with the
 * worker) feeds this shard. */
void herald_worker_set_front (HeraldWorker *self, const HeraldWorkerFrontFuncs *funcs,
                              gpointer front, GDestroyNotify front_free);

/* Starts the thread (the front's start() runs in it) and returns once it runs. */
gboolean herald_worker_start (HeraldWorker *self, GError **error);
/* Stops the thread (after herald_hub_shutdown_async drained it) and joins it. */
void herald_worker_stop (HeraldWorker *self);

/* A worker thread: process what it posted to itself, now. */
void herald_worker_run_posted (void);
/* Any thread: hand work to the worker (ownership of @item passes). */
void herald_worker_post (HeraldWorker *self, HeraldWorkItem *item);
void herald_work_item_free (HeraldWorkItem *item);

/* --- worker thread only --- */
/* What a new connection of this worker lives in (herald_connection_new()). */
HeraldConnectionHost *herald_worker_get_host (HeraldWorker *self);
guint herald_worker_get_index (HeraldWorker *self);
GMainContext *herald_worker_get_context (HeraldWorker *self);
HeraldLoop *herald_worker_get_loop (HeraldWorker *self);
gboolean herald_worker_is_shutting_down (HeraldWorker *self);

void herald_worker_add_connection (HeraldWorker *self, HeraldConnection *connection);
/* The connection is finished: unsubscribe, unregister, free after this iteration. */
void herald_worker_remove_connection (HeraldWorker *self, HeraldConnection *connection);
HeraldConnection *herald_worker_lookup_connection (HeraldWorker *self, const char *id);
void herald_worker_schedule (HeraldWorker *self, HeraldConnection *connection, guint32 when);

/* [proxy]: the worker's backend (set by its front; NULL = no hooks) */
void herald_worker_set_backend (HeraldWorker *self, HeraldBackend *backend);
HeraldBackend *herald_worker_get_backend (HeraldWorker *self);
/* A connection's messages wait behind a pending backend call, in order */
void herald_worker_hold_input (HeraldWorker *self, HeraldConnection *connection);
void herald_worker_release_input (HeraldWorker *self, HeraldConnection *connection);

HeraldChannel *herald_worker_lookup_channel (HeraldWorker *self, const char *name);
HeraldChannel *herald_worker_ensure_channel (HeraldWorker *self, const char *name);
/* Drops the channel from the table once it has no subscribers. */
void herald_worker_release_channel (HeraldWorker *self, HeraldChannel *channel);

/* Queries answered in the worker thread. */
GPtrArray *herald_worker_list_connections (HeraldWorker *self); /* of HeraldConnectionInfo* */
GPtrArray *herald_worker_list_channels (HeraldWorker *self);    /* of HeraldChannelInfo* */
void herald_worker_add_stats (HeraldWorker *self, HeraldStats *stats);
HeraldStats *herald_worker_get_stats (HeraldWorker *self); /* the worker's own counters */

/* Re-evaluates every connection's deadlines on the next sweep (limits changed). */
void herald_worker_reschedule_all (HeraldWorker *self);
/* Closes every connection with 1001 and stops accepting new ones. */
void herald_worker_begin_shutdown (HeraldWorker *self, guint drain_ms);
void herald_worker_drain_late (HeraldWorker *self, HeraldConnection *connection);
gboolean herald_worker_is_drained (HeraldWorker *self);
guint herald_worker_get_n_connections (HeraldWorker *self);

G_END_DECLS
