/* herald-redis-publish.c: a publish is one Lua script run in Redis.
 *
 * It assigns the channel offset (`herald:m:<channel>` "off") and the global
 * seq (`herald:seq`), remembers the channel's newest seq ("seq"), keeps the
 * payload in the channel's history list `herald:h:<channel>` (trimmed to the
 * history size, expiring after the history ttl) and PUBLISHes it on
 * `herald:ch:<channel>`; the first publish of an epoch sets `herald:epoch`.
 * The hash also names the epoch its offsets belong to ("ep"): the first
 * publish on a channel in a new epoch drops the channel's old offsets and
 * history, so offsets count from 1 again within each epoch (a hash without
 * "ep", from an older Herald, is adopted as it is).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <glib/gi18n.h>

#include "herald-error.h"
#include "herald-engine.h"
#include "herald-redis-publish.h"

#define META_TTL_S 86400

/* KEYS: meta hash, history list, seq, epoch. ARGV: channel, data, size, ttl,
 * fresh epoch, meta ttl. */
const char herald_redis_publish_script[]
    = "local epoch = redis.call('GET', KEYS[4])\n"
      "if not epoch then epoch = ARGV[5]; redis.call('SET', KEYS[4], epoch) end\n"
      "local ep = redis.call('HGET', KEYS[1], 'ep')\n"
      "if ep ~= epoch then\n"
      "  if ep then redis.call('DEL', KEYS[1], KEYS[2]) end\n"
      "  redis.call('HSET', KEYS[1], 'ep', epoch)\n"
      "end\n"
      "local prev = redis.call('HGET', KEYS[1], 'seq') or '0'\n"
      "local off = redis.call('HINCRBY', KEYS[1], 'off', 1)\n"
      "local seq = redis.call('INCR', KEYS[3])\n"
      "redis.call('HSET', KEYS[1], 'seq', seq)\n"
      "redis.call('EXPIRE', KEYS[1], ARGV[6])\n"
      "local t = redis.call('TIME')[1]\n"
      "local p = off .. ' ' .. seq .. ' ' .. prev .. ' ' .. t .. ' ' .. epoch .. ' ' .. ARGV[1]"
      " .. '\\n' .. ARGV[2]\n"
      "local size = tonumber(ARGV[3])\n"
      "if size > 0 then\n"
      "  redis.call('LPUSH', KEYS[2], p)\n"
      "  redis.call('LTRIM', KEYS[2], 0, size - 1)\n"
      "  if tonumber(ARGV[4]) > 0 then redis.call('EXPIRE', KEYS[2], ARGV[4]) end\n"
      "end\n"
      "redis.call('PUBLISH', 'herald:ch:' .. ARGV[1], p)\n"
      "return off\n";

static const char *
script_sha (void)
{
  static char *sha;

  if (g_once_init_enter (&sha))
    g_once_init_leave (
        &sha, g_compute_checksum_for_string (G_CHECKSUM_SHA1, herald_redis_publish_script, -1));
  return sha;
}

static void
on_publish_reply (redisAsyncContext *ac, void *r, void *privdata)
{
  GTask *task = privdata;
  redisReply *reply = r;

  if (reply == NULL)
    g_task_return_new_error (task, HERALD_ERROR, HERALD_ERROR_UNAVAILABLE,
                             _ ("Redis connection lost during publish"));
  else if (reply->type == REDIS_REPLY_INTEGER)
    g_task_return_int (task, (gssize)reply->integer);
  else
    g_task_return_new_error (task, HERALD_ERROR, HERALD_ERROR_UNAVAILABLE, _ ("Redis: %s"),
                             reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply");
  g_object_unref (task);
}

gboolean
herald_redis_publish (HeraldRedisLink *link, const char *channel, const char *data_json,
                      guint history_size, guint history_ttl, GTask *task)
{
  return herald_redis_publish_command (link, channel, data_json, history_size, history_ttl,
                                       on_publish_reply, task);
}

gboolean
herald_redis_publish_command (HeraldRedisLink *link, const char *channel, const char *data_json,
                              guint history_size, guint history_ttl, redisCallbackFn *fn,
                              void *privdata)
{
  g_autofree char *meta = g_strconcat ("herald:m:", channel, NULL);
  g_autofree char *history = g_strconcat ("herald:h:", channel, NULL);
  g_autofree char *size = g_strdup_printf ("%u", history_size);
  g_autofree char *ttl = g_strdup_printf ("%u", history_ttl);
  g_autofree char *fresh = herald_engine_new_epoch ();
  g_autofree char *meta_ttl = g_strdup_printf ("%d", META_TTL_S);
  const char *argv[]
      = { "EVALSHA", script_sha (), "4",  meta, history, "herald:seq", "herald:epoch",
          channel,   data_json,     size, ttl,  fresh,   meta_ttl };

  return herald_redis_link_command (link, fn, privdata, G_N_ELEMENTS (argv), argv, NULL)
         == REDIS_OK;
}
