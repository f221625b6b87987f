/* herald-redis-cluster.c: this node's liveness, connections and presence in Redis.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>
#include <glib/gi18n.h>

#include "herald-redis-cluster.h"
#include "herald-redis-presence.h"

/* KEYS: conns hash, nodes zset. ARGV: connection id, payload ("" = only
 * ask), seconds after which a silent node is dead. Returns receivers. */
static const char route_script[]
    = "local node = redis.call('HGET', KEYS[1], ARGV[1])\n"
      "if not node then return 0 end\n"
      "local seen = redis.call('ZSCORE', KEYS[2], node)\n"
      "local now = tonumber(redis.call('TIME')[1])\n"
      "if not seen or tonumber(seen) < now - tonumber(ARGV[3]) then\n"
      "  redis.call('HDEL', KEYS[1], ARGV[1])\n"
      "  return 0\n"
      "end\n"
      "if ARGV[2] == '' then return 1 end\n"
      "return redis.call('PUBLISH', 'herald:node:' .. node, ARGV[2])\n";

/* KEYS: this node's presence hash for the channel, nodes zset. ARGV: user,
 * delta, channel, dead after, key ttl. Publishes a join/leave event on the
 * channel's topic when the user's count over live nodes becomes 1 / 0. */
static const char presence_script[]
    = "local n = redis.call('HINCRBY', KEYS[1], ARGV[1], ARGV[2])\n"
      "if n <= 0 then redis.call('HDEL', KEYS[1], ARGV[1]) end\n"
      "redis.call('EXPIRE', KEYS[1], ARGV[5])\n"
      "local now = tonumber(redis.call('TIME')[1])\n"
      "local nodes = redis.call('ZRANGEBYSCORE', KEYS[2], now - tonumber(ARGV[4]), '+inf')\n"
      "local total = 0\n"
      "for _, node in ipairs(nodes) do\n"
      "  local c = redis.call('HGET', 'herald:p:' .. node .. ':' .. ARGV[3], ARGV[1])\n"
      "  if c then total = total + tonumber(c) end\n"
      "end\n"
      "local d = tonumber(ARGV[2])\n"
      "if (d > 0 and total == d) or (d < 0 and total == 0) then\n"
      "  local kind = 'leave'\n"
      "  if d > 0 then kind = 'join' end\n"
      "  redis.call('PUBLISH', 'herald:ch:' .. ARGV[3], 'P ' .. kind .. ' ' .. ARGV[1])\n"
      "end\n"
      "return total\n";

/* KEYS: this node's anonymous count for the channel. ARGV: delta, key ttl. */
static const char presence_anonymous_script[]
    = "local n = redis.call('INCRBY', KEYS[1], ARGV[1])\n"
      "if n <= 0 then redis.call('DEL', KEYS[1]) else redis.call('EXPIRE', KEYS[1], ARGV[2]) end\n"
      "return n\n";

/* KEYS: nodes zset. ARGV: node id, dead after. */
static const char heartbeat_script[]
    = "local now = tonumber(redis.call('TIME')[1])\n"
      "redis.call('ZADD', KEYS[1], now, ARGV[1])\n"
      "redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - 10 * tonumber(ARGV[2]))\n"
      "return now\n";

static char *
node_key (const char *prefix, const char *node_id, const char *channel)
{
  return g_strconcat (prefix, node_id, ":", channel, NULL);
}

void
herald_redis_cluster_heartbeat (HeraldRedisLink *link, const char *node_id, GHashTable *presence)
{
  g_autofree char *dead = g_strdup_printf ("%d", HERALD_REDIS_NODE_DEAD_S);
  const char *argv[] = { "EVAL", heartbeat_script, "1", "herald:nodes", node_id, dead };
  g_autoptr (GHashTable) channels = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  GHashTableIter iter;
  gpointer key, kinds_ptr;

  herald_redis_link_command_checked (link, "heartbeat", G_N_ELEMENTS (argv), argv);
  herald_redis_presence_heartbeat (link, node_id, HERALD_REDIS_NODE_DEAD_S);

  /* This node's presence entries live as long as it does. */
  g_hash_table_iter_init (&iter, presence);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    {
      gsize len = strcspn (key, "\n");
      char *channel = g_strndup (key, len);
      /* 1: users' entries, 2: an anonymous count */
      guint kinds = GPOINTER_TO_UINT (g_hash_table_lookup (channels, channel));

      g_hash_table_replace (channels, channel,
                            GUINT_TO_POINTER (kinds | (((const char *)key)[len] ? 1 : 2)));
    }
  g_hash_table_iter_init (&iter, channels);
  while (g_hash_table_iter_next (&iter, &key, &kinds_ptr))
    {
      guint kinds = GPOINTER_TO_UINT (kinds_ptr);
      g_autofree char *pkey = node_key ("herald:p:", node_id, key);
      g_autofree char *akey = node_key ("herald:pa:", node_id, key);
      const char *expire[] = { "EXPIRE", pkey, dead };
      const char *expire_anon[] = { "EXPIRE", akey, dead };

      if (kinds & 1)
        herald_redis_link_command (link, NULL, NULL, 3, expire, NULL);
      if (kinds & 2)
        herald_redis_link_command (link, NULL, NULL, 3, expire_anon, NULL);
    }
}

void
herald_redis_cluster_register_presence (HeraldRedisLink *link, const char *node_id,
                                        GHashTable *presence)
{
  g_autoptr (GHashTable) cleared = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_autofree char *ttl = g_strdup_printf ("%d", HERALD_REDIS_NODE_DEAD_S);
  GHashTableIter iter;
  gpointer key, value;

  g_hash_table_iter_init (&iter, presence);
  while (g_hash_table_iter_next (&iter, &key, &value))
    {
      g_autofree char *channel = g_strndup (key, strcspn (key, "\n"));
      const char *user = (const char *)key + strlen (channel) + 1;
      g_autofree char *pkey = node_key ("herald:p:", node_id, channel);
      g_autofree char *count = g_strdup_printf ("%u", GPOINTER_TO_UINT (value));
      const char *del[] = { "DEL", pkey };
      const char *hset[] = { "HSET", pkey, user, count };
      const char *expire[] = { "EXPIRE", pkey, ttl };

      if (((const char *)key)[strlen (channel)] == '\0')
        {
          /* This node's anonymous connections on the channel. */
          g_autofree char *akey = node_key ("herald:pa:", node_id, channel);
          const char *set[] = { "SET", akey, count, "EX", ttl };

          herald_redis_link_command (link, NULL, NULL, 5, set, NULL);
          continue;
        }
      if (!g_hash_table_contains (cleared, channel))
        {
          herald_redis_link_command (link, NULL, NULL, 2, del, NULL);
          g_hash_table_add (cleared, g_strdup (channel));
        }
      herald_redis_link_command (link, NULL, NULL, 4, hset, NULL);
      herald_redis_link_command (link, NULL, NULL, 3, expire, NULL);
    }
  herald_redis_presence_register (link, node_id, presence);
}

void
herald_redis_cluster_update_presence (HeraldRedisLink *link, const char *node_id,
                                      const char *channel, const char *user_id, int delta)
{
  g_autofree char *delta_text = g_strdup_printf ("%d", delta);
  g_autofree char *dead = g_strdup_printf ("%d", HERALD_REDIS_NODE_DEAD_S);

  if (user_id == NULL)
    {
      g_autofree char *akey = node_key ("herald:pa:", node_id, channel);
      const char *argv[] = { "EVAL", presence_anonymous_script, "1", akey, delta_text, dead };
      herald_redis_link_command_checked (link, "presence", G_N_ELEMENTS (argv), argv);
    }
  else
    {
      g_autofree char *pkey = node_key ("herald:p:", node_id, channel);
      const char *argv[] = { "EVAL",  presence_script, "2",     pkey, "herald:nodes",
                             user_id, delta_text,      channel, dead, dead };
      herald_redis_link_command_checked (link, "presence", G_N_ELEMENTS (argv), argv);
    }
  herald_redis_presence_update (link, node_id, channel, user_id, delta);
}

void
herald_redis_cluster_register_connection (HeraldRedisLink *link, const char *node_id,
                                          const char *id)
{
  const char *argv[] = { "HSET", "herald:conns", id, node_id };
  herald_redis_link_command (link, NULL, NULL, 4, argv, NULL);
}

void
herald_redis_cluster_unregister_connection (HeraldRedisLink *link, const char *id)
{
  const char *argv[] = { "HDEL", "herald:conns", id };
  herald_redis_link_command (link, NULL, NULL, 3, argv, NULL);
}

guint
herald_redis_cluster_route (HeraldRedisSync *sync, const char *id, const char *payload)
{
  g_autofree char *dead = g_strdup_printf ("%d", HERALD_REDIS_NODE_DEAD_S);
  const char *argv[]
      = { "EVAL", route_script, "2", "herald:conns", "herald:nodes", id, payload, dead };
  const char *const *argvs[] = { argv };
  int argcs[] = { G_N_ELEMENTS (argv) };
  redisReply **r = herald_redis_sync_run (sync, 1, argvs, argcs);
  guint n = 0;

  if (r && r[0]->type == REDIS_REPLY_INTEGER)
    n = (guint)r[0]->integer;
  else if (r && r[0]->type == REDIS_REPLY_ERROR)
    g_warning (_ ("Redis: %s"), r[0]->str);
  herald_redis_replies_free (r, 1);
  return n;
}
