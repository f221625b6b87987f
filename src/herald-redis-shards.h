/* herald-redis-shards.h: one engine over several independent Redis servers
 * ([redis] shards): each channel, user and connection lives on one shard,
 * chosen by a stable (rendezvous) hash of its name.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "herald-config.h"
#include "herald-engine.h"

G_BEGIN_DECLS

#define HERALD_TYPE_REDIS_SHARDS (herald_redis_shards_get_type ())
G_DECLARE_FINAL_TYPE (HeraldRedisShards, herald_redis_shards, HERALD, REDIS_SHARDS, HeraldEngine)

/* One Redis engine per URL of @urls (at least one). Fails only on a
 * malformed URL, naming it. Create it in the main thread. */
HeraldEngine *herald_redis_shards_new (HeraldConfig *config, const char *const *urls,
                                       GError **error);

/* Connects every shard (asynchronously) as node @node_id. */
void herald_redis_shards_start (HeraldRedisShards *self, const char *node_id);

/* The shard (index into @names, n_names ≥ 1) that holds @key: highest
 * random weight of (name, key). Adding a name moves only the keys that the
 * new name wins, about 1/(n+1) of them. */
guint herald_redis_shards_pick (const char *const *names, guint n_names, const char *key);

G_END_DECLS
