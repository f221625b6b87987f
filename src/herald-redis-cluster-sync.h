/* herald-redis-cluster-sync.h: blocking questions to a Redis Cluster (the
 * counterpart of herald-redis-sync.h for [redis] cluster): a pipeline of
 * commands on one slot's master, following MOVED and ASK. Any thread, one
 * at a time, short timeouts.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "herald-redis-cluster-pool.h"

G_BEGIN_DECLS

typedef struct _HeraldRedisClusterSync HeraldRedisClusterSync;

/* @pool (the slot map) must outlive it. */
HeraldRedisClusterSync *herald_redis_cluster_sync_new (HeraldRedisClusterPool *pool,
                                                       const char *password);
void herald_redis_cluster_sync_free (HeraldRedisClusterSync *sync);

/* Runs @n commands on @slot's master; @n replies (herald_redis_replies_free())
 * or NULL when the cluster did not answer them all. */
redisReply **herald_redis_cluster_sync_run (HeraldRedisClusterSync *sync, guint slot, guint n,
                                            const char *const *const *argvs, const int *argcs);

G_END_DECLS
