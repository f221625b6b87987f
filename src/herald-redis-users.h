/* herald-redis-users.h: each user's connections counted in Redis, over
 * every node, as connections open and close — the answer of the user
 * subscribe API (`{"connections":N}`, D-Bus SubscribeUser).
 *
 * Keys: `herald:uc:<user>` (a hash: node → that node's connections of the
 * user) and `herald:un:<node>` (a set: the users the node counted, so that
 * its share can be taken back). Every change is one Lua call. A node
 * registers its whole count after every (re)connect (what it had counted
 * before is taken back first); a node silent for HERALD_REDIS_NODE_DEAD_S
 * seconds is reaped with its presence share (herald-redis-presence.c, the
 * same `herald:pagg` liveness) by the next heartbeat of any node.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "herald-redis-link.h"
#include "herald-redis-sync.h"

G_BEGIN_DECLS

/* Lua: drop_users(node) takes a node's whole share back (for the reaper). */
#define HERALD_REDIS_USERS_DROP_FUNCTION                                                           \
  "local function drop_users(node)\n"                                                              \
  "  local k = 'herald:un:' .. node\n"                                                             \
  "  for _, u in ipairs(redis.call('SMEMBERS', k)) do\n"                                           \
  "    redis.call('HDEL', 'herald:uc:' .. u, node)\n"                                              \
  "  end\n"                                                                                        \
  "  redis.call('DEL', k)\n"                                                                       \
  "end\n"

/* On the command connection (main context): @user_id's connections on this
 * node changed by @delta. */
void herald_redis_users_update (HeraldRedisLink *link, const char *node_id, const char *user_id,
                                int delta);
/* After a (re)connect: @users (user id → GUINT count) as they are now. */
void herald_redis_users_register (HeraldRedisLink *link, const char *node_id, GHashTable *users);
/* Blocking, any thread: the connections of @user_id on the nodes other than
 * @node_id; FALSE when Redis does not answer. */
gboolean herald_redis_users_query (HeraldRedisSync *sync, const char *node_id, const char *user_id,
                                   guint64 *others);

G_END_DECLS
