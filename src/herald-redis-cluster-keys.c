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

static const char presence_script[]
    = "local f = ARGV[1] .. '\\n' .. ARGV[2]\n"
      "local c = redis.call('HINCRBY', KEYS[1], f, ARGV[3])\n"
      "if c <= 0 then redis.call('HDEL', KEYS[1], f) end\n"
      "local now = tonumber(redis.call('TIME')[1])\n"
      "redis.call('ZADD', KEYS[2], now, ARGV[1])\n"
      "redis.call('EXPIRE', KEYS[1], ARGV[5])\n"
      "redis.call('EXPIRE', KEYS[2], ARGV[5])\n"
      "if ARGV[2] == '' then return 0 end\n"
      "local nodes = redis.call('ZRANGEBYSCORE', KEYS[2], now - tonumber(ARGV[4]), '+inf')\n"
      "local total = 0\n"
      "for _, node in ipairs(nodes) do\n"
      "  local x = redis.call('HGET', KEYS[1], node .. '\\n' .. ARGV[2])\n"
      "  if x then total = total + tonumber(x) end\n"
      "end\n"
      "local d = tonumber(ARGV[3])\n"
      "if (d > 0 and total == d) or (d < 0 and total == 0) then\n"
      "  local kind = 'leave'\n"
      "  if d > 0 then kind = 'join' end\n"
      "  redis.call('SPUBLISH', ARGV[6], 'P ' .. kind .. ' ' .. ARGV[2])\n"
      "end\n"
      "return total\n";

static const char presence_set_script[]
    = "local prefix = ARGV[1] .. '\\n'\n"
      "local h = redis.call('HKEYS', KEYS[1])\n"
      "for _, f in ipairs(h) do\n"
      "  if string.sub(f, 1, #prefix) == prefix then redis.call('HDEL', KEYS[1], f) end\n"
      "end\n"
      "for i = 3, #ARGV, 2 do redis.call('HSET', KEYS[1], prefix .. ARGV[i], ARGV[i + 1]) end\n"
      "redis.call('ZADD', KEYS[2], tonumber(redis.call('TIME')[1]), ARGV[1])\n"
      "redis.call('EXPIRE', KEYS[1], ARGV[2])\n"
      "redis.call('EXPIRE', KEYS[2], ARGV[2])\n"
      "return 1\n";

/* Also forgets the entries of nodes silent for ten times the dead time
 * (they crashed): rare, so the scan of the hash is too. */
static const char presence_alive_script[]
    = "local now = tonumber(redis.call('TIME')[1])\n"
      "redis.call('ZADD', KEYS[2], now, ARGV[1])\n"
      "local gone = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now - 10 * tonumber(ARGV[2]))\n"
      "if #gone > 0 then\n"
      "  local dead = {}\n"
      "  for _, n in ipairs(gone) do dead[n] = true; redis.call('ZREM', KEYS[2], n) end\n"
      "  for _, f in ipairs(redis.call('HKEYS', KEYS[1])) do\n"
      "    local cut = string.find(f, '\\n', 1, true)\n"
      "    if cut and dead[string.sub(f, 1, cut - 1)] then redis.call('HDEL', KEYS[1], f) end\n"
      "  end\n"
      "end\n"
      "redis.call('EXPIRE', KEYS[1], ARGV[2])\n"
      "redis.call('EXPIRE', KEYS[2], ARGV[2])\n"
      "return 1\n";

static const char presence_query_script[]
    = "local now = tonumber(redis.call('TIME')[1])\n"
      "local live = {}\n"
      "for _, n in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], now - tonumber(ARGV[2]), "
      "'+inf')) do live[n] = true end\n"
      "local h = redis.call('HGETALL', KEYS[1])\n"
      "local out = {}\n"
      "local anon = 0\n"
      "for i = 1, #h, 2 do\n"
      "  local cut = string.find(h[i], '\\n', 1, true)\n"
      "  if cut then\n"
      "    local node = string.sub(h[i], 1, cut - 1)\n"
      "    local user = string.sub(h[i], cut + 1)\n"
      "    if node ~= ARGV[1] and live[node] then\n"
      "      if user == '' then anon = anon + tonumber(h[i + 1])\n"
      "      else out[#out + 1] = user; out[#out + 1] = h[i + 1] end\n"
      "    end\n"
      "  end\n"
      "end\n"
      "return {out, anon}\n";

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
  publish_script,      position_script,       presence_script,
  presence_set_script, presence_alive_script, presence_query_script,
  reset_script,        catch_up_script,       NULL,
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
