/* herald-redis-engine.h: many Herald nodes behave as one, through Redis.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "herald-config.h"
#include "herald-engine.h"
#include "herald-redis-url.h"

G_BEGIN_DECLS

#define HERALD_TYPE_REDIS_ENGINE (herald_redis_engine_get_type ())
G_DECLARE_FINAL_TYPE (HeraldRedisEngine, herald_redis_engine, HERALD, REDIS_ENGINE, HeraldEngine)

/* Fails only on a malformed URL; Redis being down is not an error (the
 * engine starts degraded and keeps reconnecting). Create it in the main
 * thread: it runs its Redis connections in that thread's main context. */
HeraldEngine *herald_redis_engine_new (HeraldConfig *config, const char *url, GError **error);

/* [redis] sentinels: the master of @master_name, found and followed through
 * @sentinels (HOST:PORT). Fails only on a malformed address. */
HeraldEngine *herald_redis_engine_new_sentinel (HeraldConfig *config, const char *const *sentinels,
                                                const char *master_name, GError **error);

/* Connects (asynchronously) as node @node_id. */
void herald_redis_engine_start (HeraldRedisEngine *self, const char *node_id);

/* Users' connections counted in this engine's Redis (herald-redis-users.c):
 * by default as connections open and close here; [redis] shards turn that
 * off and count each user on the user's shard. */
void herald_redis_engine_set_counts_users (HeraldRedisEngine *self, gboolean counts);
void herald_redis_engine_count_user (HeraldRedisEngine *self, const char *user_id, int delta);
char *herald_redis_engine_dup_connection_user (HeraldRedisEngine *self, const char *id);

G_END_DECLS
