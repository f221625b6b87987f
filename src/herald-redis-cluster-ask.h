/* herald-redis-cluster-ask.h: the [redis] cluster engine's blocking
 * questions (each one round trip on a slot's master, over
 * herald-redis-cluster-sync.h: any thread, bounded) and its presence
 * registrations (main context, over the pool). Keys and scripts:
 * herald-redis-cluster-keys.h.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "herald-engine.h"
#include "herald-redis-cluster-sync.h"

G_BEGIN_DECLS

/* PUBLISHes @payload (SPUBLISH on the node's shard channel) to the live
 * node other than @self_node holding connection @id ("" only asks);
 * returns the receivers (0: none known, or its node is gone). */
guint herald_rck_ask_route (HeraldRedisClusterSync *sync, const char *self_node, const char *id,
                            const char *payload);

/* The counts of @channel (constant time) and up to @limit users after
 * @after (NULL: from the first) in byte order, O(log N + @limit); *@more
 * when users follow. */
char **herald_rck_ask_presence (HeraldRedisClusterSync *sync, const char *channel,
                                const char *after, guint limit, guint *users, guint *connections,
                                gboolean *more, GError **error);

/* @channel's epoch (given one if it has none) and latest offset. */
gboolean herald_rck_ask_position (HeraldRedisClusterSync *sync, const char *channel, char **epoch,
                                  guint64 *offset);

/* Fills @r (epoch, top_offset, recovered, messages) with @channel's
 * history after @since, checked against @epoch (NULL or "": don't check);
 * @ttl is the channel's history ttl (0: none). FALSE when its master did
 * not answer (@r untouched). */
gboolean herald_rck_ask_recover (HeraldRedisClusterSync *sync, const char *channel, guint64 since,
                                 const char *epoch, guint ttl, HeraldRecovery *r);

/* Main context: runs the publish script for @data_json on @channel's
 * master; @fn gets its answer (the offset, an error, or NULL). FALSE when
 * the master is not connected (@fn is then never called). */
gboolean herald_rck_publish (HeraldRedisClusterPool *pool, const char *channel,
                             const char *data_json, guint history_size, guint history_ttl,
                             HeraldRedisWireReplyFn fn, gpointer privdata);

/* A node's presence table ("channel\nuser" or "channel" → count) as
 * channel → pairs for herald_rck_send_presence(). */
GHashTable *herald_rck_group_presence (GHashTable *presence);

/* Main context: this node's share of @channel's presence replaced by
 * @pairs (user, count, user, count…; user "" = anonymous) or, @pairs NULL,
 * taken back. FALSE when the channel's master is not connected. */
gboolean herald_rck_send_presence (HeraldRedisClusterPool *pool, const char *self_node,
                                   const char *channel, GPtrArray *pairs);
/* Main context: @delta connections of @user_id (NULL: anonymous) on
 * @channel, this node's. */
gboolean herald_rck_update_presence (HeraldRedisClusterPool *pool, const char *self_node,
                                     const char *channel, const char *user_id, int delta);
/* Main context: @verb ("SADD", "SREM") @channels to/from this node's
 * list (herald:pn:{N}). */
void herald_rck_send_channel_list (HeraldRedisClusterPool *pool, const char *self_node,
                                   const char *verb, GPtrArray *channels);
/* Main context: reaps the nodes of @dead (the reap script's list; NULL:
 * none): up to HERALD_RCK_REAP_CHANNELS channels of each are taken back;
 * a node whose list is empty is forgotten. */
#define HERALD_RCK_REAP_CHANNELS 32
void herald_rck_reap_nodes (HeraldRedisClusterPool *pool, const char *self_node, redisReply *dead);

/* Main context: the node's liveness key and the keys of connections @ids,
 * for those whose slots @addr holds (NULL: all). */
void herald_rck_send_registration (HeraldRedisClusterPool *pool, const char *self_node,
                                   GPtrArray *ids, const char *addr);

G_END_DECLS
