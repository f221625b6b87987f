/* herald-redis-history.c: recovery and positions read from Redis.
 *
 * Keys (written by the publish script, herald-redis-engine.c):
 * `herald:m:<channel>` a hash with the channel's latest offset ("off"),
 * seq ("seq") and the epoch they count in ("ep"), `herald:h:<channel>` its history list (newest
 * first), `herald:seq` the global sequence number, `herald:epoch` the epoch.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>

#include "herald-redis-history.h"
#include "herald-redis-payload.h"

static void
take_epoch (HeraldRecovery *r, redisReply *reply)
{
  if (reply->type == REDIS_REPLY_STRING)
    {
      g_free (r->epoch);
      r->epoch = g_strdup (reply->str);
    }
}

/* @meta: HMGET of a channel's hash, (off|seq) and ep. When "ep" names
 * another epoch than @epoch, the channel was not published in this epoch
 * yet (its first publish resets it): its offsets and history do not count. */
static gboolean
meta_stale (redisReply *epoch, redisReply *meta)
{
  redisReply *ep;

  if (meta->type != REDIS_REPLY_ARRAY || meta->elements != 2)
    return FALSE;
  ep = meta->element[1];
  return ep->type == REDIS_REPLY_STRING && epoch->type == REDIS_REPLY_STRING
         && strcmp (ep->str, epoch->str) != 0;
}

/* The first field of @meta (HMGET), 0 when stale. */
static guint64
meta_u64 (redisReply *epoch, redisReply *meta)
{
  if (meta->type != REDIS_REPLY_ARRAY || meta->elements != 2 || meta_stale (epoch, meta))
    return 0;
  return herald_redis_reply_u64 (meta->element[0]);
}

static const HeraldRedisPayload *
kept_at (GPtrArray *kept, guint i)
{
  return g_ptr_array_index (kept, i);
}

gboolean
herald_redis_history_recover (HeraldRedisSync *sync, const char *channel, guint64 since,
                              const char *epoch, HeraldConfig *config, HeraldRecovery *r)
{
  guint ttl = herald_config_namespace_for (config, channel)->history_ttl;
  g_autofree char *meta = g_strconcat ("herald:m:", channel, NULL);
  g_autofree char *history = g_strconcat ("herald:h:", channel, NULL);
  const char *a0[] = { "GET", "herald:epoch" };
  const char *a1[] = { "HMGET", meta, "off", "ep" };
  const char *a2[] = { "LRANGE", history, "0", "-1" };
  const char *a3[] = { "TIME" };
  const char *const *argvs[] = { a0, a1, a2, a3 };
  int argcs[] = { 2, 4, 4, 1 };
  g_autoptr (GPtrArray) kept = NULL;
  redisReply **replies;
  guint64 top;

  replies = herald_redis_sync_run (sync, 4, argvs, argcs);
  if (replies == NULL)
    return FALSE;
  take_epoch (r, replies[0]);
  top = meta_u64 (replies[0], replies[1]);
  kept = herald_redis_payload_parse_history (replies[2], herald_redis_reply_time (replies[3]), ttl);
  if (meta_stale (replies[0], replies[1]))
    g_ptr_array_set_size (kept, 0);
  /* A publish may run between HGET and LRANGE: the list is then newer. */
  if (kept->len > 0)
    top = MAX (top, kept_at (kept, kept->len - 1)->offset);
  r->top_offset = top;

  if (epoch != NULL && *epoch != '\0' && g_strcmp0 (epoch, r->epoch) != 0)
    r->recovered = FALSE; /* history of that epoch is gone */
  else if (since > top)
    r->recovered = FALSE;
  else if (since == top)
    r->recovered = TRUE;
  else if (kept->len == 0 || kept_at (kept, 0)->offset > since + 1)
    r->recovered = FALSE; /* some of the missed messages were dropped */
  else
    {
      r->recovered = TRUE;
      for (guint i = 0; i < kept->len; i++)
        if (kept_at (kept, i)->offset > since)
          g_ptr_array_add (r->messages, herald_redis_payload_message (kept_at (kept, i)));
    }
  herald_redis_replies_free (replies, 4);
  return TRUE;
}

gboolean
herald_redis_history_recover_stream (HeraldRedisSync *sync, const char *const *channels,
                                     const char *epoch, guint64 since_seq, HeraldConfig *config,
                                     HeraldRecovery *r)
{
  guint n_channels = g_strv_length ((char **)channels);
  guint n = 3 + 2 * n_channels;
  g_autofree const char ***argvs = g_new0 (const char **, n);
  g_autofree int *argcs = g_new0 (int, n);
  g_autoptr (GPtrArray) keys = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GPtrArray) argv_store = g_ptr_array_new_with_free_func (g_free);
  redisReply **replies = NULL;
  gint64 now;

#define ARGV(...)                                                                                  \
  ({                                                                                               \
    const char *tmp_[] = { __VA_ARGS__ };                                                          \
    const char **v_ = g_memdup2 (tmp_, sizeof tmp_);                                               \
    g_ptr_array_add (argv_store, v_);                                                              \
    v_;                                                                                            \
  })
  argvs[0] = ARGV ("GET", "herald:epoch");
  argcs[0] = 2;
  argvs[1] = ARGV ("GET", "herald:seq");
  argcs[1] = 2;
  argvs[2] = ARGV ("TIME");
  argcs[2] = 1;
  for (guint i = 0; channels[i]; i++)
    {
      char *meta = g_strconcat ("herald:m:", channels[i], NULL);
      char *history = g_strconcat ("herald:h:", channels[i], NULL);
      g_ptr_array_add (keys, meta);
      g_ptr_array_add (keys, history);
      argvs[3 + 2 * i] = ARGV ("HMGET", meta, "seq", "ep");
      argcs[3 + 2 * i] = 4;
      argvs[4 + 2 * i] = ARGV ("LRANGE", history, "0", "-1");
      argcs[4 + 2 * i] = 4;
    }
#undef ARGV

  replies = herald_redis_sync_run (sync, n, (const char *const *const *)argvs, argcs);
  if (replies == NULL)
    return FALSE;
  take_epoch (r, replies[0]);
  r->top_offset = herald_redis_reply_u64 (replies[1]);
  now = herald_redis_reply_time (replies[2]);
  r->recovered = g_strcmp0 (epoch, r->epoch) == 0 && since_seq <= r->top_offset;
  for (guint i = 0; r->recovered && channels[i]; i++)
    {
      guint64 last_seq = meta_u64 (replies[0], replies[3 + 2 * i]);
      g_autoptr (GPtrArray) kept = herald_redis_payload_parse_history (
          replies[4 + 2 * i], now, herald_config_namespace_for (config, channels[i])->history_ttl);

      if (meta_stale (replies[0], replies[3 + 2 * i]))
        g_ptr_array_set_size (kept, 0);

      /* Every message of the channel newer than since_seq must be kept: the
       * one before the oldest kept (or the newest, if none) must be older. */
      if ((kept->len == 0 && last_seq > since_seq)
          || (kept->len > 0 && kept_at (kept, 0)->prev > since_seq))
        {
          r->recovered = FALSE;
          break;
        }
      for (guint j = 0; j < kept->len; j++)
        if (kept_at (kept, j)->seq > since_seq)
          g_ptr_array_add (r->messages, herald_redis_payload_message (kept_at (kept, j)));
    }
  if (!r->recovered)
    g_ptr_array_set_size (r->messages, 0);
  herald_recovery_sort_by_seq (r);
  herald_redis_replies_free (replies, n);
  return TRUE;
}

gboolean
herald_redis_history_read_position (HeraldRedisSync *sync, const char *channel, char **epoch,
                                    guint64 *offset)
{
  g_autofree char *meta = g_strconcat ("herald:m:", channel, NULL);
  const char *a0[] = { "GET", "herald:epoch" };
  const char *a1[] = { "HMGET", meta, "off", "ep" };
  const char *const *argvs[] = { a0, a1 };
  int argcs[] = { 2, 4 };
  redisReply **replies = herald_redis_sync_run (sync, 2, argvs, argcs);

  if (replies == NULL)
    return FALSE;
  *epoch = replies[0]->type == REDIS_REPLY_STRING ? g_strdup (replies[0]->str) : NULL;
  *offset = meta_u64 (replies[0], replies[1]);
  herald_redis_replies_free (replies, 2);
  return TRUE;
}
