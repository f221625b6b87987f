/* herald-redis-cluster-engine.h: many Herald nodes behave as one, through a
 * Redis Cluster ([redis] cluster): channel traffic on sharded pub/sub, each
 * channel's history, offsets, epoch and presence in its own slot.
 * (herald-redis-cluster.c is about Herald nodes in one Redis, not this.)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "herald-config.h"
#include "herald-engine.h"

G_BEGIN_DECLS

#define HERALD_TYPE_REDIS_CLUSTER_ENGINE (herald_redis_cluster_engine_get_type ())
G_DECLARE_FINAL_TYPE (HeraldRedisClusterEngine, herald_redis_cluster_engine, HERALD,
                      REDIS_CLUSTER_ENGINE, HeraldEngine)

/* @seeds: HOST:PORT of some cluster nodes (at least one). Fails only on a
 * malformed seed, naming it; the cluster being down is not an error (the
 * engine starts degraded). Create it in the main thread. */
HeraldEngine *herald_redis_cluster_engine_new (HeraldConfig *config, const char *const *seeds,
                                               GError **error);

/* Connects (asynchronously) as node @node_id. */
void herald_redis_cluster_engine_start (HeraldRedisClusterEngine *self, const char *node_id);

G_END_DECLS
