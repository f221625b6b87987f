/* herald-redis-engine-recovery.c: the Redis engine's positions and history
 * for resumes: a channel's latest offset and epoch (sent in `subscribed`),
 * recovery after an offset or an SSE stream position, read from Redis through
 * the blocking connection (herald-redis-history.c) once this node hears the
 * channel live.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <glib/gi18n.h>

#include "herald-metrics.h"
#include "herald-redis-engine-private.h"
#include "herald-redis-history.h"
#include "herald-redis-pin.h"

#define PIN_MS 1000
#define SUBSCRIBE_WAIT_MS 1000

/* Before a history snapshot, this node must already hear the channel live,
 * or messages published between the snapshot and the SUBSCRIBE would be
 * lost. Keep the channel subscribed a second (the caller subscribes
 * its connection meanwhile) and wait, bounded, for Redis to confirm. */
static gboolean
pin_and_wait (HeraldRedisEngine *self, const char *channel)
{
  gint64 deadline = g_get_monotonic_time () + SUBSCRIBE_WAIT_MS * 1000;
  gboolean ok = FALSE;
  Chan *ch;

  herald_redis_pin_channel (G_OBJECT (self), self->context, channel, PIN_MS,
                            (HeraldRedisChannelRefFunc)herald_redis_engine_channel_ref);

  g_mutex_lock (&self->lock);
  while (self->up)
    {
      ch = g_hash_table_lookup (self->channels, channel);
      if (ch && ch->state == SUB_SUBSCRIBED)
        {
          ok = TRUE;
          break;
        }
      if (!g_cond_wait_until (&self->cond, &self->lock, deadline))
        break;
    }
  g_mutex_unlock (&self->lock);
  return ok;
}

static HeraldRecovery *
recovery_new (HeraldRedisEngine *self)
{
  HeraldRecovery *r;

  g_mutex_lock (&self->lock);
  r = herald_recovery_new (self->epoch);
  g_mutex_unlock (&self->lock);
  return r;
}

static guint64
local_offset (HeraldRedisEngine *self, const char *channel)
{
  guint64 offset = 0;
  Chan *ch;

  g_mutex_lock (&self->lock);
  ch = g_hash_table_lookup (self->channels, channel);
  if (ch)
    offset = ch->last_offset;
  g_mutex_unlock (&self->lock);
  return offset;
}

HeraldRecovery *
herald_redis_engine_recover (HeraldEngine *engine, const char *channel, guint64 since,
                             const char *epoch)
{
  HeraldRedisEngine *self = HERALD_REDIS_ENGINE (engine);
  HeraldRecovery *r = recovery_new (self);

  if (!pin_and_wait (self, channel)
      || !herald_redis_history_recover (self->sync, channel, since, epoch,
                                        herald_redis_engine_config (self), r))
    {
      /* Degraded: nothing can be recovered; live delivery still works. */
      r->recovered = FALSE;
      r->top_offset = local_offset (self, channel);
    }
  return r;
}

HeraldRecovery *
herald_redis_engine_recover_stream (HeraldEngine *engine, const char *const *channels,
                                    const char *epoch, guint64 since_seq)
{
  HeraldRedisEngine *self = HERALD_REDIS_ENGINE (engine);
  HeraldRecovery *r = recovery_new (self);
  gboolean ok = TRUE;

  for (guint i = 0; channels[i]; i++)
    ok = pin_and_wait (self, channels[i]) && ok;
  if (!ok
      || !herald_redis_history_recover_stream (self->sync, channels, epoch, since_seq,
                                               herald_redis_engine_config (self), r))
    r->recovered = FALSE;
  return r;
}

/* The offset the live stream of @channel starts after on this node: the
 * newest offset this node has handed to its workers. Once per subscription
 * of the node to the channel it is read from Redis (after the SUBSCRIBE is
 * confirmed, so every later message arrives live); then it is a lock. */
void
herald_redis_engine_get_position (HeraldEngine *engine, const char *channel, guint64 *offset,
                                  char **epoch)
{
  HeraldRedisEngine *self = HERALD_REDIS_ENGINE (engine);
  g_autofree char *read_epoch = NULL;
  guint64 read_offset = 0, top = 0;
  gboolean read = FALSE;
  Chan *ch;

  g_mutex_lock (&self->lock);
  ch = g_hash_table_lookup (self->channels, channel);
  if (!self->up || (ch && ch->state == SUB_SUBSCRIBED && ch->primed))
    {
      top = ch ? ch->last_offset : 0;
      goto out;
    }
  g_mutex_unlock (&self->lock);

  if (pin_and_wait (self, channel))
    read = herald_redis_history_read_position (self->sync, channel, &read_epoch, &read_offset);
  g_mutex_lock (&self->lock);
  ch = g_hash_table_lookup (self->channels, channel);
  herald_redis_engine_set_epoch_locked (self, read_epoch);
  if (read && ch)
    {
      ch->last_offset = MAX (ch->last_offset, read_offset);
      ch->primed = ch->state == SUB_SUBSCRIBED;
    }
  top = ch ? ch->last_offset : read_offset;

out:
  if (offset)
    *offset = top;
  if (epoch)
    *epoch = g_strdup (self->epoch);
  g_mutex_unlock (&self->lock);
}

/* The seq of the newest message handed to the workers: Redis delivers in
 * seq order, so later deliveries have higher ones. Unknown while degraded
 * (local seqs are provisional). */
gboolean
herald_redis_engine_get_stream_position (HeraldEngine *engine, guint64 *seq, char **epoch)
{
  HeraldRedisEngine *self = HERALD_REDIS_ENGINE (engine);
  gboolean ok;

  g_mutex_lock (&self->lock);
  ok = self->up && self->epoch != NULL;
  if (ok && seq)
    *seq = self->local_seq;
  if (ok && epoch)
    *epoch = g_strdup (self->epoch);
  g_mutex_unlock (&self->lock);
  return ok;
}

char *
herald_redis_engine_dup_epoch (HeraldEngine *engine)
{
  HeraldRedisEngine *self = HERALD_REDIS_ENGINE (engine);
  char *epoch;

  g_mutex_lock (&self->lock);
  epoch = g_strdup (self->epoch);
  g_mutex_unlock (&self->lock);
  return epoch;
}

/* ---- gaps under live subscribers ----
 *
 * Redis pub/sub keeps nothing for a subscriber that is away: while the link
 * is down (a Redis restart, a Sentinel failover) messages published through
 * other nodes never reach this node's subscribers. When the channel is
 * subscribed again, its offset in Redis tells whether anything was
 * published meanwhile; if so, its subscribers get a reset notice
 * (herald_message_new_reset(): `subscribed` with `recovered:false` and the
 * position, SSE `event: reset`) instead of a silent gap, and resume or
 * reload from there. */

void
herald_redis_engine_resync_mark_locked (HeraldRedisEngine *self)
{
  GHashTableIter iter;
  Chan *ch;

  g_hash_table_iter_init (&iter, self->channels);
  while (g_hash_table_iter_next (&iter, NULL, (gpointer *)&ch))
    {
      if (ch->refs == 0)
        continue;
      if (!ch->resync)
        ch->resync_from = ch->last_offset;
      else if (ch->first_live > ch->resync_from + 1)
        ch->resync_from = 0; /* a gap is known already: any offset reports it */
      else if (ch->first_live > 0)
        ch->resync_from = ch->last_offset; /* heard without a gap until now */
      ch->resync = TRUE;
      ch->first_live = 0;
    }
}

static void
notify_reset_locked (HeraldRedisEngine *self, const char *name, guint64 offset)
{
  g_autoptr (HeraldMessage) notice = herald_message_new_reset (name, offset, self->epoch);

  /* Logged once per outage (a failover can touch every channel), counted each time. */
  if (self->resets++ == 0)
    g_message (_ ("Redis: messages of %s (and perhaps other channels) may be missing for this "
                  "node's subscribers: they are told to reload (reset at offset %" G_GUINT64_FORMAT
                  ")"),
               name, offset);
  else
    g_debug ("redis: reset notice for %s at offset %" G_GUINT64_FORMAT, name, offset);
  herald_metrics_count_redis_event (HERALD_REDIS_EVENT_RESET_NOTICE);
  herald_engine_deliver (HERALD_ENGINE (self),
                         &(HeraldDelivery){ .kind = HERALD_TARGET_CHANNEL, .message = notice });
}

/* A new epoch: positions of the old one mean nothing. Each channel's
 * subscribers hear it now (offset 0: a channel counts from 1 again in the
 * new epoch); a channel not heard live is checked once subscribed again. */
void
herald_redis_engine_resync_epoch_locked (HeraldRedisEngine *self)
{
  GHashTableIter iter;
  const char *name;
  Chan *ch;

  g_hash_table_iter_init (&iter, self->channels);
  while (g_hash_table_iter_next (&iter, (gpointer *)&name, (gpointer *)&ch))
    {
      if (ch->refs == 0)
        continue;
      notify_reset_locked (self, name, 0);
      if (ch->state != SUB_SUBSCRIBED || ch->resync)
        {
          ch->resync = TRUE;
          ch->resync_from = 0;
          ch->first_live = 0;
        }
    }
}

static void
on_resync_reply (redisAsyncContext *ac, void *r, void *privdata)
{
  HeraldRedisEngine *self = herald_redis_link_owner (ac);
  g_autofree char *name = privdata;
  redisReply *reply = r;
  guint64 offset;
  gboolean gap;
  Chan *ch;

  /* No answer: the link is down again, the next SUBSCRIBE checks. */
  if (self == NULL || reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2)
    return;
  g_mutex_lock (&self->lock);
  ch = g_hash_table_lookup (self->channels, name);
  if (ch && ch->resync && ch->state == SUB_SUBSCRIBED)
    {
      redisReply *ep = reply->element[1];

      offset = herald_redis_reply_u64 (reply->element[0]);
      if (ep->type == REDIS_REPLY_STRING && g_strcmp0 (ep->str, self->epoch) != 0)
        offset = 0; /* not published in this epoch yet */
      gap = ch->first_live > 0 ? ch->first_live > ch->resync_from + 1 : offset > ch->resync_from;
      ch->resync = FALSE;
      ch->first_live = 0;
      if (gap)
        {
          ch->last_offset = MAX (ch->last_offset, offset);
          notify_reset_locked (self, name, ch->last_offset);
        }
    }
  g_mutex_unlock (&self->lock);
}

/* @name is subscribed again: a marked channel's offset is read (on the
 * command connection, after the SUBSCRIBE was confirmed, so whatever is
 * published later arrives live). Main thread. */
void
herald_redis_engine_resync (HeraldRedisEngine *self, const char *name)
{
  g_autofree char *meta = g_strconcat ("herald:m:", name, NULL);
  const char *argv[] = { "HMGET", meta, "off", "ep" };
  gboolean check;
  Chan *ch;

  g_mutex_lock (&self->lock);
  ch = g_hash_table_lookup (self->channels, name);
  check = ch && ch->resync;
  g_mutex_unlock (&self->lock);
  if (check)
    {
      char *copy = g_strdup (name);

      if (herald_redis_link_command (self->link, on_resync_reply, copy, 4, argv, NULL) != REDIS_OK)
        g_free (copy); /* not connected: checked on the next SUBSCRIBE */
    }
}
