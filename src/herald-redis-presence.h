/* herald-redis-presence.h: the cluster's presence counted in Redis as members
 * come and go, so presence_stats is constant time and member pages are
 * O(log N + page) whatever the channel's size.
 *
 * Keys, per channel: `herald:pu:<channel>` (a hash: user → connections of
 * the user on the channel, over every node; HLEN is the user count),
 * `herald:pz:<channel>` (the same users in a zset of score 0, paged with
 * ZRANGEBYLEX), `herald:pc:<channel>` (the connections, users' and anonymous
 * ones). Per node, what it added, so that it can be taken back:
 * `herald:pm:<node>:<channel>` (user → count), `herald:pma:<node>:<channel>`
 * (anonymous count), `herald:pn:<node>` (its channels), and `herald:pagg`
 * (a zset: node → last heartbeat). A node silent for
 * HERALD_REDIS_NODE_DEAD_S seconds is reaped by the next heartbeat of any
 * node: its share is subtracted. A node re-registers its whole table after
 * every (re)connect (what it had added before is taken back first).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "herald-redis-link.h"
#include "herald-redis-sync.h"

G_BEGIN_DECLS

/* On the command connection (main context), like herald-redis-cluster.h. */
void herald_redis_presence_update (HeraldRedisLink *link, const char *node_id, const char *channel,
                                   const char *user_id, int delta);
/* @presence: "channel\nuser" → count, "channel" → anonymous count. */
void herald_redis_presence_register (HeraldRedisLink *link, const char *node_id,
                                     GHashTable *presence);
/* Reaps nodes silent for @dead_after seconds (HERALD_REDIS_NODE_DEAD_S). */
void herald_redis_presence_heartbeat (HeraldRedisLink *link, const char *node_id, guint dead_after);

/* Blocking, any thread (@sync NULL: Redis is down, HERALD_ERROR_UNAVAILABLE):
 * the counts of @channel and up to @limit users after @after (NULL: from the
 * first) in byte order; *@more when users follow. */
char **herald_redis_presence_query (HeraldRedisSync *sync, const char *channel, const char *after,
                                    guint limit, guint *users, guint *connections, gboolean *more,
                                    GError **error);

G_END_DECLS
