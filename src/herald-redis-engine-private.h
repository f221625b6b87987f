/* herald-redis-engine-private.h: the Redis engine's state, shared by its
 * parts: herald-redis-engine.c (links, receiving, publishing, routing) and
 * herald-redis-engine-recovery.c (positions and history for resumes).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "herald-redis-engine.h"
#include "herald-redis-link.h"
#include "herald-redis-sentinel.h"
#include "herald-redis-sync.h"

G_BEGIN_DECLS

typedef enum
{
  SUB_IDLE,
  SUB_SUBSCRIBING,
  SUB_SUBSCRIBED,
  SUB_UNSUBSCRIBING,
} SubState;

typedef struct
{
  guint refs; /* workers (and recoveries) that need this channel */
  SubState state;
  guint64 last_offset; /* newest offset seen here */
  gboolean primed;     /* last_offset was read from Redis since we subscribed */
  /* The gap check after this node did not hear the channel for a while
   * (herald-redis-engine-recovery.c): */
  gboolean resync;     /* on the next SUBSCRIBE, compare Redis's offset with... */
  guint64 resync_from; /* ...the newest offset delivered before, */
  guint64 first_live;  /* and the first one heard since (0: none yet) */
} Chan;

typedef enum
{
  OP_PUBLISH,
  OP_RECONCILE, /* a channel's refs changed */
  OP_SEND,      /* PUBLISH payload on topic */
  OP_CONN_OPEN,
  OP_CONN_CLOSE,
  OP_PRESENCE, /* a = channel, b = user (NULL: anonymous), delta */
  OP_USERS,    /* a = user, delta: this node's connections of the user */
} OpType;

typedef struct
{
  OpType type;
  GTask *task;
  char *a; /* channel, topic, connection id */
  char *b; /* data, payload, user id */
  int delta;
  guint gen; /* presence, users: link generation when queued */
} Op;

struct _HeraldRedisEngine
{
  HeraldEngine parent_instance;

  HeraldRedisUrl *url;
  char *url_text;
  char *node_id;
  GMainContext *context;

  GMutex lock; /* guards everything down to the next comment */
  GCond cond;
  char *epoch;
  char *degraded; /* NULL when ok */
  gboolean up;
  GHashTable *channels;    /* name → Chan */
  GHashTable *local_conns; /* connection id → user id or NULL */
  GHashTable *presence;    /* "channel\nuser", or "channel" for anonymous ones → GUINT
                              count of local connections */
  GHashTable *users;       /* user id → GUINT count of local connections counted here */
  gboolean counts_users;   /* connection_opened/closed count their users here */
  GQueue ops;
  GSource *drain_source;
  guint64 local_seq; /* newest seq seen here */
  guint link_gen;    /* bumped when the link comes up (presence re-registered) */
  guint resets;      /* reset notices since the link came up (the first is logged) */

  gboolean disposed;

  /* main thread only */
  HeraldRedisLink *link;
  HeraldRedisSentinel *sentinel; /* [redis] sentinels, or NULL */
  gboolean cmd_ready, sub_ready;
  GSource *heartbeat_source;

  HeraldRedisSync *sync; /* the blocking connection, any thread */
};

static inline HeraldConfig *
herald_redis_engine_config (HeraldRedisEngine *self)
{
  return herald_engine_get_config (HERALD_ENGINE (self));
}

/* herald-redis-engine.c */
void herald_redis_engine_channel_ref (HeraldRedisEngine *self, const char *name, int delta);
gboolean herald_redis_engine_is_up (HeraldRedisEngine *self);
void herald_redis_engine_set_epoch_locked (HeraldRedisEngine *self, const char *epoch);
void herald_redis_engine_push_op (HeraldRedisEngine *self, Op *op);

/* herald-redis-users.c: users' connections counted in Redis */
GHashTable *herald_redis_engine_users_snapshot_locked (HeraldRedisEngine *self);
void herald_redis_engine_users_connection (HeraldRedisEngine *self, const char *user_id, int delta);
guint herald_redis_engine_count_user_connections (HeraldEngine *engine, const char *user_id);

/* herald-redis-engine-recovery.c: the HeraldEngine methods of positions and history */
HeraldRecovery *herald_redis_engine_recover (HeraldEngine *engine, const char *channel,
                                             guint64 since, const char *epoch);
HeraldRecovery *herald_redis_engine_recover_stream (HeraldEngine *engine,
                                                    const char *const *channels, const char *epoch,
                                                    guint64 since_seq);
void herald_redis_engine_get_position (HeraldEngine *engine, const char *channel, guint64 *offset,
                                       char **epoch);
gboolean herald_redis_engine_get_stream_position (HeraldEngine *engine, guint64 *seq, char **epoch);
char *herald_redis_engine_dup_epoch (HeraldEngine *engine);
/* Gaps under live subscribers: the link was lost (mark every channel with
 * subscribers), the epoch changed from @old (a reset notice to each one's
 * subscribers, then a check), a channel was subscribed again (check it). */
void herald_redis_engine_resync_mark_locked (HeraldRedisEngine *self);
void herald_redis_engine_resync_epoch_locked (HeraldRedisEngine *self);
void herald_redis_engine_resync (HeraldRedisEngine *self, const char *name);

G_END_DECLS
