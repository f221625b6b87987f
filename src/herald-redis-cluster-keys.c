/* herald-redis-cluster-keys.c: key names and the scripts of the [redis] cluster engine.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>

#include "herald-redis-cluster-keys.h"
#include "herald-redis-slots.h"

static const char publish_script[]
    = "local epoch = redis.call('HGET', KEYS[1], 'epoch')\n"
      "if not epoch then\n"
      "  epoch = ARGV[5]\n"
      "  redis.call('DEL', KEYS[1], KEYS[2])\n"
      "  redis.call('HSET', KEYS[1], 'epoch', epoch)\n"
      "end\n"
      "local off = redis.call('HINCRBY', KEYS[1], 'off', 1)\n"
      "redis.call('EXPIRE', KEYS[1], ARGV[6])\n"
      "local t = redis.call('TIME')[1]\n"
      "local p = off .. ' ' .. off .. ' ' .. (off - 1) .. ' ' .. t .. ' ' .. epoch .. ' ' .. "
      "ARGV[1] .. '\\n' .. ARGV[2]\n"
      "local size = tonumber(ARGV[3])\n"
      "if size > 0 then\n"
      "  redis.call('LPUSH', KEYS[2], p)\n"
      "  redis.call('LTRIM', KEYS[2], 0, size - 1)\n"
      "  if tonumber(ARGV[4]) > 0 then redis.call('EXPIRE', KEYS[2], ARGV[4]) end\n"
      "end\n"
      "redis.call('SPUBLISH', ARGV[7], p)\n"
      "return off\n";

static const char position_script[]
    = "if redis.call('HSETNX', KEYS[1], 'epoch', ARGV[1]) == 1 then\n"
      "  redis.call('DEL', KEYS[2])\n"
      "  redis.call('EXPIRE', KEYS[1], ARGV[2])\n"
      "end\n"
      "return redis.call('HMGET', KEYS[1], 'off', 'epoch')\n";

/* The presence scripts: KEYS pu pz pc pm (herald-redis-cluster-keys.h). A
 * node never takes back more than it added (after it was reaped, say). */
static const char presence_script[]
    = "local user, d = ARGV[1], tonumber(ARGV[2])\n"
      "local n = tonumber(redis.call('HGET', KEYS[4], user) or '0') + d\n"
      "if n < 0 then return -1 end\n"
      "if n == 0 then redis.call('HDEL', KEYS[4], user) else redis.call('HSET', KEYS[4], user, n) "
      "end\n"
      "if redis.call('INCRBY', KEYS[3], d) <= 0 then redis.call('DEL', KEYS[3]) end\n"
      "if user == '' then return 0 end\n"
      "local u = redis.call('HINCRBY', KEYS[1], user, d)\n"
      "if u <= 0 then\n"
      "  redis.call('HDEL', KEYS[1], user)\n"
      "  redis.call('ZREM', KEYS[2], user)\n"
      "elseif u == d then\n"
      "  redis.call('ZADD', KEYS[2], 0, user)\n"
      "end\n"
      "if (d > 0 and u == d) or (d < 0 and u <= 0) then\n"
      "  local kind = 'leave'\n"
      "  if d > 0 then kind = 'join' end\n"
      "  redis.call('SPUBLISH', ARGV[3], 'P ' .. kind .. ' ' .. user)\n"
      "end\n"
      "return u\n";

/* Takes the node's whole share (KEYS[4]) of the channel back: linear in
 * that share, run only when a node re-registers or is reaped. */
#define DROP_FUNCTION                                                                              \
  "local function drop()\n"                                                                        \
  "  local h = redis.call('HGETALL', KEYS[4])\n"                                                   \
  "  local total = 0\n"                                                                            \
  "  for i = 1, #h, 2 do\n"                                                                        \
  "    local n = tonumber(h[i + 1])\n"                                                             \
  "    total = total + n\n"                                                                        \
  "    if h[i] ~= '' and redis.call('HINCRBY', KEYS[1], h[i], -n) <= 0 then\n"                     \
  "      redis.call('HDEL', KEYS[1], h[i])\n"                                                      \
  "      redis.call('ZREM', KEYS[2], h[i])\n"                                                      \
  "    end\n"                                                                                      \
  "  end\n"                                                                                        \
  "  redis.call('DEL', KEYS[4])\n"                                                                 \
  "  if total > 0 and redis.call('INCRBY', KEYS[3], -total) <= 0 then\n"                           \
  "    redis.call('DEL', KEYS[3])\n"                                                               \
  "  end\n"                                                                                        \
  "end\n"

static const char presence_set_script[]
    = DROP_FUNCTION "drop()\n"
                    "for i = 1, #ARGV - 1, 2 do\n"
                    "  local user, n = ARGV[i], tonumber(ARGV[i + 1])\n"
                    "  if n and n > 0 then\n"
                    "    redis.call('HSET', KEYS[4], user, n)\n"
                    "    redis.call('INCRBY', KEYS[3], n)\n"
                    "    if user ~= '' and redis.call('HINCRBY', KEYS[1], user, n) == n then\n"
                    "      redis.call('ZADD', KEYS[2], 0, user)\n"
                    "    end\n"
                    "  end\n"
                    "end\n"
                    "return 1\n";

static const char presence_drop_script[] = DROP_FUNCTION "drop()\n"
                                                         "return 1\n";

static const char presence_query_script[]
    = "local lim = tonumber(ARGV[2])\n"
      "local users = redis.call('HLEN', KEYS[1])\n"
      "local conns = tonumber(redis.call('GET', KEYS[3]) or '0')\n"
      "local page = {}\n"
      "if lim > 0 then\n"
      "  local from = '-'\n"
      "  if ARGV[1] ~= '' then from = '(' .. ARGV[1] end\n"
      "  page = redis.call('ZRANGEBYLEX', KEYS[2], from, '+', 'LIMIT', 0, lim + 1)\n"
      "end\n"
      "return {users, conns, page}\n";

static const char presence_reap_script[]
    = "local now = tonumber(redis.call('TIME')[1])\n"
      "local cut = now - tonumber(ARGV[2])\n"
      "local old = redis.call('ZSCORE', KEYS[1], ARGV[1])\n"
      "redis.call('ZADD', KEYS[1], now, ARGV[1])\n"
      "local was = 0\n"
      "if old and tonumber(old) < cut then was = 1 end\n"
      "return {was, redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', cut, 'LIMIT', 0, "
      "tonumber(ARGV[3]))}\n";

static const char presence_forget_script[]
    = "local s = redis.call('ZSCORE', KEYS[1], ARGV[1])\n"
      "if s and tonumber(s) < tonumber(redis.call('TIME')[1]) - tonumber(ARGV[2]) then\n"
      "  redis.call('ZREM', KEYS[1], ARGV[1])\n"
      "  return 1\n"
      "end\n"
      "return 0\n";

/* A new epoch if the channel is still in ARGV[1]; its position either way. */
static const char reset_script[] = "if redis.call('HGET', KEYS[1], 'epoch') == ARGV[1] then\n"
                                   "  redis.call('DEL', KEYS[1], KEYS[2])\n"
                                   "  redis.call('HSET', KEYS[1], 'epoch', ARGV[2])\n"
                                   "  redis.call('EXPIRE', KEYS[1], ARGV[3])\n"
                                   "end\n"
                                   "return redis.call('HMGET', KEYS[1], 'off', 'epoch')\n";

/* Atomic, so nothing falls between the position and the history; a channel
 * without an epoch (its master came back empty) gets one. */
static const char catch_up_script[]
    = "if redis.call('HSETNX', KEYS[1], 'epoch', ARGV[3]) == 1 then\n"
      "  redis.call('DEL', KEYS[2])\n"
      "  redis.call('EXPIRE', KEYS[1], ARGV[4])\n"
      "end\n"
      "local v = redis.call('HMGET', KEYS[1], 'off', 'epoch')\n"
      "local off = tonumber(v[1]) or 0\n"
      "local after = tonumber(ARGV[1])\n"
      "local out = {}\n"
      "if v[2] == ARGV[2] and off > after then\n"
      "  out = redis.call('LRANGE', KEYS[2], 0, off - after - 1)\n"
      "end\n"
      "return {v[1], v[2], out}\n";

static const char *const scripts[] = {
  publish_script,
  position_script,
  presence_script,
  presence_set_script,
  presence_drop_script,
  presence_query_script,
  presence_reap_script,
  presence_forget_script,
  reset_script,
  catch_up_script,
  NULL,
};

G_STATIC_ASSERT (G_N_ELEMENTS (scripts) == HERALD_RCK_N_SCRIPTS + 1);

const char *const *
herald_rck_scripts (void)
{
  return scripts;
}

const char *
herald_rck_sha (HeraldRckScript script)
{
  static char *shas[HERALD_RCK_N_SCRIPTS];
  static gsize done;

  g_return_val_if_fail (script < HERALD_RCK_N_SCRIPTS, NULL);
  if (g_once_init_enter (&done))
    {
      for (guint i = 0; i < HERALD_RCK_N_SCRIPTS; i++)
        shas[i] = g_compute_checksum_for_string (G_CHECKSUM_SHA1, scripts[i], -1);
      g_once_init_leave (&done, 1);
    }
  return shas[script];
}

char *
herald_rck_channel_key (const char *channel, const char *suffix)
{
  return g_strconcat ("herald:{", channel, "}", suffix, NULL);
}

char *
herald_rck_node_key (const char *node_id)
{
  return g_strconcat ("herald:node:{", node_id, "}", NULL);
}

char *
herald_rck_share_key (const char *channel, const char *node_id)
{
  return g_strconcat ("herald:{", channel, "}:pm:", node_id, NULL);
}

char *
herald_rck_node_channels_key (const char *node_id)
{
  return g_strconcat ("herald:pn:{", node_id, "}", NULL);
}

char *
herald_rck_conn_key (const char *id)
{
  return g_strconcat ("herald:conn:{", id, "}", NULL);
}

char *
herald_rck_topic_channel (const char *topic)
{
  gsize len = strlen (topic);

  if (!g_str_has_prefix (topic, "herald:{") || len < 10 || topic[len - 1] != '}')
    return NULL;
  return g_strndup (topic + 8, len - 9);
}

guint
herald_rck_slot (const char *key)
{
  return herald_redis_key_slot (key, strlen (key));
}
