/* herald-redis-presence.c: presence counters in Redis (see the header).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>

#include "herald-error.h"
#include "herald-redis-presence.h"
#include "herald-redis-users.h"

/* ARGV: node, channel, user ('' = anonymous), delta. A node never takes back
 * more than it added (after it was reaped, say). */
static const char update_script[]
    = "local node, ch, user, d = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])\n"
      "if user == '' then\n"
      "  local k = 'herald:pma:' .. node .. ':' .. ch\n"
      "  local n = tonumber(redis.call('GET', k) or '0') + d\n"
      "  if n < 0 then return 0 end\n"
      "  if n == 0 then redis.call('DEL', k) else redis.call('SET', k, n) end\n"
      "else\n"
      "  local k = 'herald:pm:' .. node .. ':' .. ch\n"
      "  local n = tonumber(redis.call('HGET', k, user) or '0') + d\n"
      "  if n < 0 then return 0 end\n"
      "  if n == 0 then redis.call('HDEL', k, user) else redis.call('HSET', k, user, n) end\n"
      "  local u = redis.call('HINCRBY', 'herald:pu:' .. ch, user, d)\n"
      "  if u <= 0 then\n"
      "    redis.call('HDEL', 'herald:pu:' .. ch, user)\n"
      "    redis.call('ZREM', 'herald:pz:' .. ch, user)\n"
      "  else\n"
      "    redis.call('ZADD', 'herald:pz:' .. ch, 0, user)\n"
      "  end\n"
      "end\n"
      "redis.call('SADD', 'herald:pn:' .. node, ch)\n"
      "local c = redis.call('INCRBY', 'herald:pc:' .. ch, d)\n"
      "if c <= 0 then redis.call('DEL', 'herald:pc:' .. ch) end\n"
      "return 1\n";

/* Takes a node's whole share of one channel back. */
#define DROP_FUNCTION                                                                              \
  "local function drop(node, ch)\n"                                                                \
  "  local k = 'herald:pm:' .. node .. ':' .. ch\n"                                                \
  "  local h = redis.call('HGETALL', k)\n"                                                         \
  "  local total = 0\n"                                                                            \
  "  for i = 1, #h, 2 do\n"                                                                        \
  "    local n = tonumber(h[i + 1])\n"                                                             \
  "    total = total + n\n"                                                                        \
  "    if redis.call('HINCRBY', 'herald:pu:' .. ch, h[i], -n) <= 0 then\n"                         \
  "      redis.call('HDEL', 'herald:pu:' .. ch, h[i])\n"                                           \
  "      redis.call('ZREM', 'herald:pz:' .. ch, h[i])\n"                                           \
  "    end\n"                                                                                      \
  "  end\n"                                                                                        \
  "  redis.call('DEL', k)\n"                                                                       \
  "  local ak = 'herald:pma:' .. node .. ':' .. ch\n"                                              \
  "  total = total + tonumber(redis.call('GET', ak) or '0')\n"                                     \
  "  redis.call('DEL', ak)\n"                                                                      \
  "  if total > 0 and redis.call('INCRBY', 'herald:pc:' .. ch, -total) <= 0 then\n"                \
  "    redis.call('DEL', 'herald:pc:' .. ch)\n"                                                    \
  "  end\n"                                                                                        \
  "end\n"                                                                                          \
  "local function drop_node(node)\n"                                                               \
  "  for _, ch in ipairs(redis.call('SMEMBERS', 'herald:pn:' .. node)) do drop(node, ch) end\n"    \
  "  redis.call('DEL', 'herald:pn:' .. node)\n"                                                    \
  "end\n"

/* ARGV: node. Before a node registers its table again. */
static const char reset_script[] = DROP_FUNCTION "drop_node(ARGV[1])\n"
                                                 "return 1\n";

/* ARGV: node, dead after. Marks the node alive and reaps a few dead ones
 * (their presence and their users' connections, herald-redis-users.h). */
static const char reap_script[] = DROP_FUNCTION HERALD_REDIS_USERS_DROP_FUNCTION
    "local now = tonumber(redis.call('TIME')[1])\n"
    "redis.call('ZADD', 'herald:pagg', now, ARGV[1])\n"
    "local dead = redis.call('ZRANGEBYSCORE', 'herald:pagg', '-inf', now - tonumber(ARGV[2]),\n"
    "                        'LIMIT', 0, 8)\n"
    "for _, node in ipairs(dead) do\n"
    "  drop_node(node)\n"
    "  drop_users(node)\n"
    "  redis.call('ZREM', 'herald:pagg', node)\n"
    "end\n"
    "return #dead\n";

/* ARGV: channel, after ('' = from the first), limit. Returns {users,
 * connections, {limit + 1 users at most}}. */
static const char query_script[]
    = "local ch, lim = ARGV[1], tonumber(ARGV[3])\n"
      "local users = redis.call('HLEN', 'herald:pu:' .. ch)\n"
      "local conns = tonumber(redis.call('GET', 'herald:pc:' .. ch) or '0')\n"
      "local page = {}\n"
      "if lim > 0 then\n"
      "  local from = '-'\n"
      "  if ARGV[2] ~= '' then from = '(' .. ARGV[2] end\n"
      "  page = redis.call('ZRANGEBYLEX', 'herald:pz:' .. ch, from, '+', 'LIMIT', 0, lim + 1)\n"
      "end\n"
      "return {users, conns, page}\n";

void
herald_redis_presence_update (HeraldRedisLink *link, const char *node_id, const char *channel,
                              const char *user_id, int delta)
{
  g_autofree char *delta_text = g_strdup_printf ("%d", delta);
  const char *argv[]
      = { "EVAL", update_script, "0", node_id, channel, user_id ? user_id : "", delta_text };

  herald_redis_link_command_checked (link, "presence counters", G_N_ELEMENTS (argv), argv);
}

void
herald_redis_presence_register (HeraldRedisLink *link, const char *node_id, GHashTable *presence)
{
  const char *reset[] = { "EVAL", reset_script, "0", node_id };
  GHashTableIter iter;
  gpointer key, value;

  herald_redis_link_command_checked (link, "presence counters", G_N_ELEMENTS (reset), reset);
  g_hash_table_iter_init (&iter, presence);
  while (g_hash_table_iter_next (&iter, &key, &value))
    {
      gsize len = strcspn (key, "\n");
      g_autofree char *channel = g_strndup (key, len);
      const char *user = ((const char *)key)[len] ? (const char *)key + len + 1 : NULL;

      herald_redis_presence_update (link, node_id, channel, user, (int)GPOINTER_TO_UINT (value));
    }
}

void
herald_redis_presence_heartbeat (HeraldRedisLink *link, const char *node_id, guint dead_after)
{
  g_autofree char *dead = g_strdup_printf ("%u", dead_after);
  const char *argv[] = { "EVAL", reap_script, "0", node_id, dead };

  herald_redis_link_command_checked (link, "presence counters", G_N_ELEMENTS (argv), argv);
}

char **
herald_redis_presence_query (HeraldRedisSync *sync, const char *channel, const char *after,
                             guint limit, guint *users, guint *connections, gboolean *more,
                             GError **error)
{
  g_autofree char *limit_text = g_strdup_printf ("%u", limit);
  const char *argv[] = { "EVAL", query_script, "0", channel, after ? after : "", limit_text };
  const char *const *argvs[] = { argv };
  int argcs[] = { G_N_ELEMENTS (argv) };
  redisReply **r = sync ? herald_redis_sync_run (sync, 1, argvs, argcs) : NULL;
  GPtrArray *page;

  if (r == NULL || r[0]->type != REDIS_REPLY_ARRAY || r[0]->elements != 3
      || r[0]->element[2]->type != REDIS_REPLY_ARRAY)
    {
      g_set_error_literal (error, HERALD_ERROR, HERALD_ERROR_UNAVAILABLE,
                           r != NULL && r[0]->type == REDIS_REPLY_ERROR
                               ? r[0]->str
                               : "Presence is unknown while Redis is unreachable");
      if (r != NULL)
        herald_redis_replies_free (r, 1);
      return NULL;
    }
  *users = (guint)herald_redis_reply_u64 (r[0]->element[0]);
  *connections = (guint)herald_redis_reply_u64 (r[0]->element[1]);
  page = g_ptr_array_new ();
  for (gsize i = 0; i < r[0]->element[2]->elements && page->len < limit; i++)
    {
      redisReply *user = r[0]->element[2]->element[i];
      if (user->type == REDIS_REPLY_STRING)
        g_ptr_array_add (page, g_strndup (user->str, user->len));
    }
  *more = r[0]->element[2]->elements > limit;
  g_ptr_array_add (page, NULL);
  herald_redis_replies_free (r, 1);
  return (char **)g_ptr_array_free (page, FALSE);
}
