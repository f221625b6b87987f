/* herald-redis-cluster-keys.h: the [redis] cluster engine's keys, shard
 * channels and Lua scripts.
 *
 * Every key of a channel has the channel as its {hash tag}, so they share
 * the channel's slot and each script touches one slot only:
 *   herald:{C}:m   hash: "off" (latest offset), "epoch" (the channel's own)
 *   herald:{C}:h   list: history payloads (herald-redis-payload.h), newest first
 *   herald:{C}:p   hash: "<node>\n<user>" → that node's connections of the
 *                  user on C; "<node>\n" → its anonymous ones
 *   herald:{C}:n   zset: node → last heartbeat (who may count in :p)
 *   herald:{C}     the shard channel of C's messages and join/leave events
 * Herald's own traffic uses fixed tags:
 *   herald:direct:{all}  shard channel: broadcasts and sends to users
 *   herald:node:{N}      shard channel of node N (sends to its connections),
 *                        and a key that exists while N is alive
 *   herald:conn:{ID}     key: the node holding connection ID
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

typedef enum
{
  HERALD_RCK_PUBLISH,        /* KEYS m h; ARGV channel data size ttl fresh meta-ttl topic */
  HERALD_RCK_POSITION,       /* KEYS m h; ARGV fresh meta-ttl → {off, epoch} */
  HERALD_RCK_PRESENCE,       /* KEYS p n; ARGV node user delta dead ttl topic → total */
  HERALD_RCK_PRESENCE_SET,   /* KEYS p n; ARGV node ttl [user count]… */
  HERALD_RCK_PRESENCE_ALIVE, /* KEYS p n; ARGV node ttl */
  HERALD_RCK_PRESENCE_QUERY, /* KEYS p n; ARGV node dead → {{user, count…}, anonymous} */
  HERALD_RCK_RESET,    /* KEYS m h; ARGV epoch fresh meta-ttl: a new epoch if still in it → {off,
                          epoch} */
  HERALD_RCK_CATCH_UP, /* KEYS m h; ARGV heard epoch fresh meta-ttl → {off, epoch, messages after
                          heard} */
  HERALD_RCK_N_SCRIPTS,
} HeraldRckScript;

/* NULL-terminated, for SCRIPT LOAD */
const char *const *herald_rck_scripts (void);
const char *herald_rck_sha (HeraldRckScript script);

/* "herald:{C}" + @suffix (":m", ":h", ":p", ":n" or "" for the topic) */
char *herald_rck_channel_key (const char *channel, const char *suffix);
char *herald_rck_node_key (const char *node_id);
char *herald_rck_conn_key (const char *id);
/* The channel whose topic @topic is ("herald:{C}"), or NULL. */
char *herald_rck_topic_channel (const char *topic);
/* The slot of a key or shard channel */
guint herald_rck_slot (const char *key);

G_END_DECLS
