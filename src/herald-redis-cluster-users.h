/* herald-redis-cluster-users.h: each user's connections counted in a Redis
 * Cluster (the [redis] cluster counterpart of herald-redis-users.h), for the
 * user subscribe API's `{"connections":N}`.
 *
 * Key: `herald:{u:<user>}:c`, a hash: node → that node's connections of
 * the user (one slot per user: the {hash tag}). Each node writes its own
 * field, the absolute count read when the write goes out (so a repeat or a
 * re-registration after a failover counts nothing twice), in one Lua call;
 * the key expires a day after its last write. A node counts while its
 * `herald:node:{N}` key lives (15 s after its last heartbeat); a reader
 * that finds a dead node's field deletes it.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "herald-redis-cluster-engine-private.h"

G_BEGIN_DECLS

/* Under the engine's lock: this node's count of @user_id changed by
 * @delta (a count of 0 stays as a mark until Redis has been told). */
void herald_rcu_adjust_locked (HeraldRedisClusterEngine *self, const char *user_id, int delta);
/* Main thread: writes this node's count of @user_id to its slot's master. */
void herald_rcu_send (HeraldRedisClusterEngine *self, const char *user_id);
/* Main thread: every count whose slot @addr holds (NULL: all), after a
 * master connected or the slot map changed. */
void herald_rcu_register (HeraldRedisClusterEngine *self, const char *addr);
/* HeraldEngine.count_user_connections: any thread, blocking (bounded). */
guint herald_rcu_count (HeraldEngine *engine, const char *user_id);

G_END_DECLS
