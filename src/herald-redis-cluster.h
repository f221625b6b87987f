/* herald-redis-cluster.h: what a node tells Redis about itself — that it is
 * alive, which connections it holds, its presence table — and what it asks
 * about the others.
 *
 * Keys: `herald:nodes` (a zset: node → last heartbeat), `herald:conns` (a
 * hash: connection id → node), `herald:p:<node>:<channel>` (a hash: user →
 * that node's connections of the user on the channel) and
 * `herald:pa:<node>:<channel>` (that node's anonymous ones). A node silent
 * for HERALD_REDIS_NODE_DEAD_S seconds counts as gone; its keys expire.
 * The cluster-wide presence counters: herald-redis-presence.h.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "herald-redis-link.h"
#include "herald-redis-sync.h"

G_BEGIN_DECLS

#define HERALD_REDIS_HEARTBEAT_S 3
#define HERALD_REDIS_NODE_DEAD_S 15

/* On the command connection (main context). @presence is a snapshot of the
 * node's table: "channel\nuser" → count, "channel" → anonymous count. */
void herald_redis_cluster_heartbeat (HeraldRedisLink *link, const char *node_id,
                                     GHashTable *presence);
/* After a (re)connect: Redis gets the node's presence table as it is now. */
void herald_redis_cluster_register_presence (HeraldRedisLink *link, const char *node_id,
                                             GHashTable *presence);
/* One change of the node's presence table: @user_id's connections on
 * @channel (NULL: the anonymous ones) changed by @delta. Redis publishes the
 * cluster-wide join/leave event on the channel's topic. */
void herald_redis_cluster_update_presence (HeraldRedisLink *link, const char *node_id,
                                           const char *channel, const char *user_id, int delta);
void herald_redis_cluster_register_connection (HeraldRedisLink *link, const char *node_id,
                                               const char *id);
void herald_redis_cluster_unregister_connection (HeraldRedisLink *link, const char *id);

/* Blocking, any thread. PUBLISHes @payload to the live node holding
 * connection @id ("" only asks); returns the receivers (0: no such node). */
guint herald_redis_cluster_route (HeraldRedisSync *sync, const char *id, const char *payload);

G_END_DECLS
