/* herald-redis-cluster-keys.h: the [redis] cluster engine's keys, shard
 * channels and Lua scripts.
 *
 * Every key of a channel has the channel as its {hash tag}, so they share
 * the channel's slot and each script touches one slot only:
 *   herald:{C}:m   hash: "off" (latest offset), "epoch" (the channel's own)
 *   herald:{C}:h   list: history payloads (herald-redis-payload.h), newest first
 *   herald:{C}:pu  hash: user → the user's connections on C, all nodes
 *                  (HLEN: presence_stats' users, constant time)
 *   herald:{C}:pz  zset: the same users, score 0 (pages: ZRANGEBYLEX)
 *   herald:{C}:pc  the connections on C (users' and anonymous), all nodes
 *   herald:{C}:pm:<N>  hash: node N's share: user → count, "" → anonymous,
 *                  so that it can be taken back when N re-registers or dies
 *   herald:{C}     the shard channel of C's messages and join/leave events
 * Herald's own traffic uses fixed tags:
 *   herald:direct:{all}  shard channel: broadcasts and sends to users
 *   herald:node:{N}      shard channel of node N (sends to its connections),
 *                        and a key that exists while N is alive
 *   herald:conn:{ID}     key: the node holding connection ID
 *   herald:pn:{N}        set: the channels node N added presence to (N's
 *                        slot; read to reap N)
 *   herald:pagg:{nodes}  zset: node → its last heartbeat; a node silent for
 *                        HERALD_RCK_NODE_DEAD_S is reaped by the others
 * Offsets count from 1 per channel and epoch; a channel's seq (SSE ids) is
 * its offset.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define HERALD_RCK_DIRECT_TOPIC "herald:direct:{all}"
#define HERALD_RCK_NODE_DEAD_S 15
#define HERALD_RCK_HEARTBEAT_S 3
#define HERALD_RCK_META_TTL_S 86400
#define HERALD_RCK_NODES_KEY "herald:pagg:{nodes}"

typedef enum
{
  HERALD_RCK_PUBLISH,  /* KEYS m h; ARGV channel data size ttl fresh meta-ttl topic */
  HERALD_RCK_POSITION, /* KEYS m h; ARGV fresh meta-ttl → {off, epoch} */
  /* KEYS pu pz pc pm; ARGV user ('' = anonymous) delta topic → the user's
   * total (-1: refused, more than the node added); SPUBLISHes "P join|leave
   * USER" on the first join / last leave */
  HERALD_RCK_PRESENCE,
  HERALD_RCK_PRESENCE_SET,    /* KEYS pu pz pc pm; ARGV [user count]…: replaces the share */
  HERALD_RCK_PRESENCE_DROP,   /* KEYS pu pz pc pm: takes the share back */
  HERALD_RCK_PRESENCE_QUERY,  /* KEYS pu pz pc; ARGV after limit → {users, conns, page} */
  HERALD_RCK_PRESENCE_REAP,   /* KEYS pagg; ARGV node dead max → {was dead, {dead nodes}} */
  HERALD_RCK_PRESENCE_FORGET, /* KEYS pagg; ARGV node dead: removes it if still dead */
  HERALD_RCK_RESET,    /* KEYS m h; ARGV epoch fresh meta-ttl: a new epoch if still in it → {off,
                          epoch} */
  HERALD_RCK_CATCH_UP, /* KEYS m h; ARGV heard epoch fresh meta-ttl → {off, epoch, messages after
                          heard} */
  HERALD_RCK_N_SCRIPTS,
} HeraldRckScript;

/* NULL-terminated, for SCRIPT LOAD */
const char *const *herald_rck_scripts (void);
const char *herald_rck_sha (HeraldRckScript script);

/* "herald:{C}" + @suffix (":m", ":h", ":pu", ":pz", ":pc" or "" for the topic) */
char *herald_rck_channel_key (const char *channel, const char *suffix);
char *herald_rck_node_key (const char *node_id);
char *herald_rck_conn_key (const char *id);
/* "herald:{C}:pm:N": node @node_id's share of @channel's presence */
char *herald_rck_share_key (const char *channel, const char *node_id);
/* "herald:pn:{N}": the channels of node @node_id */
char *herald_rck_node_channels_key (const char *node_id);
/* The channel whose topic @topic is ("herald:{C}"), or NULL. */
char *herald_rck_topic_channel (const char *topic);
/* The slot of a key or shard channel */
guint herald_rck_slot (const char *key);

G_END_DECLS
