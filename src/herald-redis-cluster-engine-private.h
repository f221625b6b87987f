/* herald-redis-cluster-engine-private.h: what herald-redis-cluster-engine.c
 * (the HeraldEngine side) and herald-redis-cluster-subs.c (its shard
 * channels) share. Not for other files.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "herald-redis-cluster-engine.h"
#include "herald-redis-cluster-pool.h"
#include "herald-redis-cluster-sync.h"

G_BEGIN_DECLS

typedef enum
{
  SUB_IDLE,
  SUB_SUBSCRIBING,
  SUB_SUBSCRIBED,
} SubState;

/* A shard channel this node listens to: a Herald channel's, or one of
 * Herald's own (fixed). */
typedef struct
{
  guint slot;
  guint refs; /* workers (and recoveries) that need it */
  gboolean fixed;
  SubState state;
  char *on;            /* the master it is (being) subscribed on */
  guint64 last_offset; /* newest offset seen here */
  char *epoch;         /* the channel's epoch as last seen */
  gboolean primed;     /* last_offset was read since we subscribed */
  /* Messages heard from the cluster, to catch up after a move or a
   * failover without a gap or a repeat: */
  guint64 heard;     /* the newest offset received */
  char *heard_epoch; /* … of this epoch (NULL: nothing heard yet) */
  gboolean missed;   /* the subscription was lost while needed */
  GPtrArray *held;   /* catching up: live HeraldMessages held back */
} Topic;

struct _HeraldRedisClusterEngine
{
  HeraldEngine parent_instance;

  char **seeds;
  char *node_id;
  char *local_epoch; /* for what no slot tells us */
  GMainContext *context;

  GMutex lock; /* guards everything down to the next comment */
  GCond cond;
  GHashTable *topics;      /* shard channel → Topic */
  GHashTable *local_conns; /* connection id → user id or NULL */
  GHashTable *presence;    /* "channel\nuser", or "channel" (anonymous) → GUINT count */
  guint64 presence_gen;    /* bumped by each presence change */
  GHashTable *users;       /* user id → GUINT count of local connections (0: to tell Redis) */
  GQueue ops;
  GSource *drain_source;
  gboolean disposed;

  /* main thread only */
  HeraldRedisClusterPool *pool;
  GHashTable *snapshot_gen; /* master → presence_gen of its last registration */
  GSource *heartbeat_source;

  HeraldRedisClusterSync *sync; /* any thread */

  /* atomic counters, for /metrics */
  gint caught_up, epoch_resets, local_publishes;
};

void herald_rce_topic_free (gpointer data);
/* Under the lock: the topic of shard channel @name, created idle. */
Topic *herald_rce_topic_get_locked (HeraldRedisClusterEngine *self, const char *name);
/* Main thread: (un)subscribes @name where its slot lives, as its refs say. */
void herald_rce_reconcile (HeraldRedisClusterEngine *self, const char *name);
void herald_rce_reconcile_all (HeraldRedisClusterEngine *self);
/* Main thread: the pool's push and node_down events. */
void herald_rce_on_push (gpointer owner, const char *addr, redisReply *reply);
void herald_rce_on_node_down (gpointer owner, const char *addr, const char *why);

G_END_DECLS
