/* herald-redis-cluster-pool.h: the connections to a Redis Cluster's masters
 * and the slot map that routes to them, for the [redis] cluster engine.
 *
 * The map comes from CLUSTER SLOTS, asked of a connected master or of a
 * seed; it is asked again on a MOVED reply, when a master is lost, every
 * few seconds while one is down (to see a failover) and now and then
 * anyway. Each master gets two wires (herald-redis-wire.h): one for
 * commands, one for sharded pub/sub. Commands follow MOVED (map updated,
 * retried) and ASK (ASKING, retried once per redirect) by themselves.
 *
 * Main context only, except where said.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "herald-redis-wire.h"

G_BEGIN_DECLS

typedef struct _HeraldRedisClusterPool HeraldRedisClusterPool;

typedef struct
{
  /* A master's two wires are ready (first time, or again). */
  void (*node_ready) (gpointer owner, const char *addr);
  /* A master's wires were lost (@why); the pool reconnects by itself. */
  void (*node_down) (gpointer owner, const char *addr, const char *why);
  /* Some slot's master changed. */
  void (*map_changed) (gpointer owner);
  /* A push on a master's pub/sub wire (smessage, ssubscribe…). */
  void (*push) (gpointer owner, const char *addr, redisReply *reply);
} HeraldRedisClusterPoolEvents;

/* @seeds: HOST:PORT; @scripts: Lua scripts SCRIPT LOADed on every master's
 * command wire before anything else. */
HeraldRedisClusterPool *
herald_redis_cluster_pool_new (const char *const *seeds, const char *password,
                               const char *const *scripts, GMainContext *context,
                               const HeraldRedisClusterPoolEvents *events, gpointer owner);
/* Before start: the connections call themselves @name-cmd and @name-sub
 * (CLIENT SETNAME), for CLIENT LIST. */
void herald_redis_cluster_pool_set_client_name (HeraldRedisClusterPool *pool, const char *name);
void herald_redis_cluster_pool_start (HeraldRedisClusterPool *pool);
/* Pending callbacks get NULL replies; no events follow. */
void herald_redis_cluster_pool_free (HeraldRedisClusterPool *pool);

/* A command for @slot on its master: TRUE and @fn is called once (NULL:
 * lost), or FALSE (no master for the slot is connected; @fn never called). */
gboolean herald_redis_cluster_pool_command (HeraldRedisClusterPool *pool, guint slot, int argc,
                                            const char **argv, const size_t *lens,
                                            HeraldRedisWireReplyFn fn, gpointer privdata);
/* An SSUBSCRIBE/SUNSUBSCRIBE (@verb) of @topic on master @addr's pub/sub
 * wire; FALSE when that wire is not ready. */
gboolean herald_redis_cluster_pool_subscribe (HeraldRedisClusterPool *pool, const char *addr,
                                              const char *verb, const char *topic);

/* Any thread: the master of @slot (HOST:PORT, g_free() it), NULL when unknown. */
char *herald_redis_cluster_pool_dup_owner (HeraldRedisClusterPool *pool, guint slot);
/* Any thread: whether @slot's master is connected. */
gboolean herald_redis_cluster_pool_slot_ready (HeraldRedisClusterPool *pool, guint slot);
/* Any thread: "ok", or "degraded: …" naming each master that is down. */
char *herald_redis_cluster_pool_dup_state (HeraldRedisClusterPool *pool);
/* Any thread: the number of masters in the map and how many are up. */
void herald_redis_cluster_pool_count (HeraldRedisClusterPool *pool, guint *masters, guint *up);
/* Any thread: asks for a new map soon (a redirect was seen elsewhere). */
void herald_redis_cluster_pool_refresh (HeraldRedisClusterPool *pool);

/* Any thread: a redirect seen (by the blocking questions too). */
void herald_redis_cluster_pool_count_redirect (HeraldRedisClusterPool *pool, gboolean ask);
/* Any thread: the pool's /metrics samples (masters, each one's state,
 * map changes, losses, redirects). */
void herald_redis_cluster_pool_append_metrics (HeraldRedisClusterPool *pool, GString *out);

G_END_DECLS
