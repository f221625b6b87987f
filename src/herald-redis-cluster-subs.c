/* herald-redis-cluster-subs.c: the [redis] cluster engine's shard channels
 * (main thread): SSUBSCRIBE on the master of each one's slot, following
 * the map; receiving channel messages, presence events and direct
 * messages; catching up from history what a move or failover made this
 * node miss.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>
#include <glib/gi18n.h>

#include "herald-metrics.h"
#include "herald-redis-cluster-engine-private.h"
#include "herald-redis-cluster-keys.h"
#include "herald-redis-direct.h"
#include "herald-redis-payload.h"
#include "herald-redis-slots.h"
#include "herald-redis-sync.h"

void
herald_rce_topic_free (gpointer data)
{
  Topic *t = data;
  g_free (t->on);
  g_free (t->epoch);
  g_free (t->heard_epoch);
  g_clear_pointer (&t->held, g_ptr_array_unref);
  g_free (t);
}

/* Under the lock: @t is not subscribed any more (its master is gone, or the
 * slot moved); what it misses until it is again is caught up from history. */
static void
lose_locked (Topic *t)
{
  t->state = SUB_IDLE;
  t->primed = FALSE;
  g_clear_pointer (&t->on, g_free);
  /* Nothing heard yet: the position read when it was subscribed is the base */
  t->missed = (t->heard_epoch != NULL || t->epoch != NULL) && (t->refs > 0 || t->fixed);
}

void
herald_rce_reconcile (HeraldRedisClusterEngine *self, const char *name)
{
  g_autofree char *owner = NULL;
  g_autofree char *leave_on = NULL;
  gboolean join = FALSE;
  Topic *t;

  g_mutex_lock (&self->lock);
  t = g_hash_table_lookup (self->topics, name);
  if (t == NULL)
    {
      g_mutex_unlock (&self->lock);
      return;
    }
  owner = herald_redis_cluster_pool_dup_owner (self->pool, t->slot);
  if (t->state != SUB_IDLE && (g_strcmp0 (t->on, owner) != 0 || (t->refs == 0 && !t->fixed)))
    {
      /* Moved, or not needed any more: leave the old master. */
      leave_on = g_steal_pointer (&t->on);
      lose_locked (t);
    }
  if (t->state == SUB_IDLE && (t->refs > 0 || t->fixed) && owner != NULL
      && herald_redis_cluster_pool_slot_ready (self->pool, t->slot))
    {
      t->state = SUB_SUBSCRIBING;
      t->on = g_strdup (owner);
      join = TRUE;
    }
  if (t->state == SUB_IDLE && t->refs == 0 && !t->fixed)
    g_hash_table_remove (self->topics, name);
  g_cond_broadcast (&self->cond);
  g_mutex_unlock (&self->lock);

  if (leave_on)
    herald_redis_cluster_pool_subscribe (self->pool, leave_on, "SUNSUBSCRIBE", name);
  if (join && !herald_redis_cluster_pool_subscribe (self->pool, owner, "SSUBSCRIBE", name))
    {
      g_mutex_lock (&self->lock);
      t = g_hash_table_lookup (self->topics, name);
      if (t && t->state == SUB_SUBSCRIBING)
        {
          t->state = SUB_IDLE;
          g_clear_pointer (&t->on, g_free);
        }
      g_mutex_unlock (&self->lock);
    }
}

void
herald_rce_reconcile_all (HeraldRedisClusterEngine *self)
{
  g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  GHashTableIter iter;
  gpointer key;

  g_mutex_lock (&self->lock);
  g_hash_table_iter_init (&iter, self->topics);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    g_ptr_array_add (names, g_strdup (key));
  g_mutex_unlock (&self->lock);
  for (guint i = 0; i < names->len; i++)
    herald_rce_reconcile (self, g_ptr_array_index (names, i));
}

Topic *
herald_rce_topic_get_locked (HeraldRedisClusterEngine *self, const char *name)
{
  Topic *t = g_hash_table_lookup (self->topics, name);

  if (t == NULL)
    {
      t = g_new0 (Topic, 1);
      t->slot = herald_rck_slot (name);
      g_hash_table_insert (self->topics, g_strdup (name), t);
    }
  return t;
}

/* ---- receiving (main thread) ---- */

/* Under the lock: records @m as heard on @t; with @once, FALSE when it
 * was already (catching up, history and held messages overlap; live ones
 * never repeat). */
static gboolean
heard_locked (Topic *t, HeraldMessage *m, gboolean once)
{
  const char *epoch = herald_message_get_epoch (m);
  guint64 offset = herald_message_get_offset (m);

  if (once && g_strcmp0 (t->heard_epoch, epoch) == 0 && offset <= t->heard)
    return FALSE;
  if (g_strcmp0 (t->epoch, epoch) != 0)
    {
      g_free (t->epoch);
      t->epoch = g_strdup (epoch);
      t->last_offset = offset;
    }
  t->last_offset = MAX (t->last_offset, offset);
  if (g_strcmp0 (t->heard_epoch, epoch) != 0)
    {
      g_free (t->heard_epoch);
      t->heard_epoch = g_strdup (epoch);
    }
  t->heard = offset;
  return TRUE;
}

typedef struct
{
  HeraldRedisClusterEngine *self;
  char *topic, *channel;
  guint64 off;   /* the channel's offset on its (new) master… */
  char *epoch;   /* … in this epoch (NULL: it has none) */
  guint64 heard; /* what this node heard before (the script's arguments) */
  char *heard_epoch;
  guint attempts;
} CatchUp;

#define CATCH_UP_RETRY_MS 200
#define CATCH_UP_ATTEMPTS 50 /* a master that just came back may say CLUSTERDOWN a while */

static void send_catch_up (CatchUp *c);

static void
catch_up_free (CatchUp *c)
{
  g_object_unref (c->self);
  g_free (c->topic);
  g_free (c->channel);
  g_free (c->epoch);
  g_free (c->heard_epoch);
  g_free (c);
}

/* Under the lock: @t's position became @offset of @epoch under its
 * subscribers (they may have missed messages): their reset notice
 * (herald_message_new_reset(): `subscribed` with recovered:false, SSE
 * `event: reset`), and what is heard from now on is counted from there. */
static HeraldMessage *
reset_locked (Topic *t, const char *channel, guint64 offset, const char *epoch)
{
  g_free (t->heard_epoch);
  t->heard_epoch = g_strdup (epoch);
  t->heard = offset;
  g_free (t->epoch);
  t->epoch = g_strdup (epoch);
  t->last_offset = offset;
  herald_metrics_count_redis_event (HERALD_REDIS_EVENT_RESET_NOTICE);
  return herald_message_new_reset (channel, offset, epoch);
}

static void
on_reset (redisReply *reply, gpointer privdata)
{
  CatchUp *c = privdata;
  HeraldRedisClusterEngine *self = c->self;
  g_autoptr (HeraldMessage) notice = NULL;
  Topic *t;

  if (reply != NULL && reply->type == REDIS_REPLY_ARRAY && reply->elements == 2
      && reply->element[1]->type == REDIS_REPLY_STRING)
    {
      g_mutex_lock (&self->lock);
      t = self->disposed ? NULL : g_hash_table_lookup (self->topics, c->topic);
      if (t != NULL)
        notice = reset_locked (t, c->channel, herald_redis_reply_u64 (reply->element[0]),
                               reply->element[1]->str);
      g_mutex_unlock (&self->lock);
    }
  if (notice)
    herald_engine_deliver (HERALD_ENGINE (self),
                           &(HeraldDelivery){ .kind = HERALD_TARGET_CHANNEL, .message = notice });
  catch_up_free (c);
}

/* The channel's master has fewer messages of the epoch than this node heard
 * (a replica promoted before it had them all): its history is not the one
 * clients saw. It gets a new epoch (resumes of the old one are told
 * recovered:false instead of getting a gap) and this node's subscribers a
 * reset notice at its start. */
static void
reset_channel (HeraldRedisClusterEngine *self, CatchUp *c, guint64 heard)
{
  g_autofree char *m = herald_rck_channel_key (c->channel, ":m");
  g_autofree char *h = herald_rck_channel_key (c->channel, ":h");
  g_autofree char *fresh = herald_engine_new_epoch ();
  g_autofree char *meta_ttl = g_strdup_printf ("%d", HERALD_RCK_META_TTL_S);
  const char *argv[]
      = { "EVALSHA", herald_rck_sha (HERALD_RCK_RESET), "2", m, h, c->epoch, fresh, meta_ttl };
  CatchUp *again = g_new0 (CatchUp, 1);

  g_warning (_ ("Redis Cluster: channel “%s” lost messages in a failover (its new master has "
                "offset %" G_GUINT64_FORMAT ", this node saw %" G_GUINT64_FORMAT
                "): it starts a new epoch, resumes of the old one get recovered:false"),
             c->channel, c->off, heard);
  again->self = g_object_ref (self);
  again->topic = g_strdup (c->topic);
  again->channel = g_strdup (c->channel);
  if (!herald_redis_cluster_pool_command (self->pool, herald_rck_slot (m), G_N_ELEMENTS (argv),
                                          argv, NULL, on_reset, again))
    catch_up_free (again);
}

static gboolean
still_catching_up (CatchUp *c)
{
  gboolean yes;
  Topic *t;

  g_mutex_lock (&c->self->lock);
  t = c->self->disposed ? NULL : g_hash_table_lookup (c->self->topics, c->topic);
  yes = t != NULL && t->held != NULL;
  g_mutex_unlock (&c->self->lock);
  return yes;
}

static gboolean
retry_catch_up (gpointer user_data)
{
  send_catch_up (user_data);
  return G_SOURCE_REMOVE;
}

/* The catch-up script answered { offset, epoch, what this node missed }.
 * Nothing missing: those, then what was held back meanwhile, each message
 * once and in order. Some gone (past the history, or the master came back
 * empty with a new epoch): a reset notice at the master's position, then
 * the held messages after it. */
static void
on_catch_up (redisReply *reply, gpointer privdata)
{
  CatchUp *c = privdata;
  HeraldRedisClusterEngine *self = c->self;
  g_autoptr (GPtrArray) out = g_ptr_array_new_with_free_func ((GDestroyNotify)herald_message_unref);
  g_autoptr (GPtrArray) held = NULL;
  g_autoptr (GPtrArray) kept = NULL;
  guint from_history = 0;
  guint64 heard = 0;
  gboolean lost = FALSE, gap = FALSE;
  Topic *t;

  if ((reply == NULL
       || (reply->type == REDIS_REPLY_ERROR && !g_str_has_prefix (reply->str, "ERR")
           && !g_str_has_prefix (reply->str, "NOSCRIPT")))
      && c->attempts < CATCH_UP_ATTEMPTS && c->channel != NULL && still_catching_up (c))
    {
      /* Not served yet (CLUSTERDOWN while it rejoins, connection lost): again soon */
      GSource *source = g_timeout_source_new (CATCH_UP_RETRY_MS);

      g_debug ("redis cluster: catching up %s: %s, again", c->channel,
               reply ? reply->str : "no answer");
      g_source_set_callback (source, retry_catch_up, c, NULL);
      g_source_attach (source, self->context);
      g_source_unref (source);
      return;
    }
  if (reply != NULL && reply->type == REDIS_REPLY_ARRAY && reply->elements == 3)
    {
      c->off = herald_redis_reply_u64 (reply->element[0]);
      if (reply->element[1]->type == REDIS_REPLY_STRING)
        c->epoch = g_strdup (reply->element[1]->str);
      if (reply->element[2]->type == REDIS_REPLY_ARRAY)
        kept = herald_redis_payload_parse_history (reply->element[2], 0, 0);
    }
  else if (reply != NULL && reply->type == REDIS_REPLY_ERROR)
    g_warning (_ ("Redis Cluster: channel “%s”: catching up: %s"), c->channel, reply->str);
  g_mutex_lock (&self->lock);
  t = self->disposed ? NULL : g_hash_table_lookup (self->topics, c->topic);
  if (t != NULL && t->held != NULL)
    {
      held = g_steal_pointer (&t->held);
      heard = t->heard;
      if (c->epoch != NULL && g_strcmp0 (c->epoch, t->heard_epoch) == 0)
        {
          lost = c->off < heard;
          for (guint i = 0; !lost && kept != NULL && i < kept->len; i++)
            {
              g_autoptr (HeraldMessage) m = herald_redis_payload_message (kept->pdata[i]);

              if (g_strcmp0 (herald_message_get_epoch (m), t->heard_epoch) == 0
                  && heard_locked (t, m, TRUE))
                {
                  g_ptr_array_add (out, g_steal_pointer (&m));
                  from_history++;
                }
            }
          /* Past the history: not all of them came back */
          gap = !lost && from_history < c->off - heard;
        }
      else
        gap = c->epoch != NULL; /* its state was lost: a new epoch */
      if (gap)
        {
          /* Where the held messages start, if they do in that epoch: they
           * follow the notice */
          guint64 at = c->off;

          for (guint i = 0; i < held->len; i++)
            if (g_strcmp0 (herald_message_get_epoch (held->pdata[i]), c->epoch) == 0)
              {
                at = MIN (at, herald_message_get_offset (held->pdata[i]) - 1);
                break;
              }
          c->off = at;
          g_ptr_array_set_size (out, 0);
          from_history = 0;
          g_ptr_array_add (out, reset_locked (t, c->channel, at, c->epoch));
        }
      for (guint i = 0; i < held->len; i++)
        if (heard_locked (t, held->pdata[i], !lost))
          g_ptr_array_add (out, herald_message_ref (held->pdata[i]));
    }
  g_mutex_unlock (&self->lock);
  if (lost)
    {
      g_atomic_int_inc (&self->epoch_resets);
      herald_metrics_count_redis_event (HERALD_REDIS_EVENT_HISTORY_LOST);
      reset_channel (self, c, heard);
    }
  else if (gap)
    g_message (_ ("Redis Cluster: channel “%s”: messages published while it moved are gone; "
                  "its subscribers here are told to reload (reset at offset %" G_GUINT64_FORMAT
                  ")"),
               c->channel, c->off);
  g_atomic_int_add (&self->caught_up, (gint)from_history);
  if (from_history > 0)
    g_message (_ ("Redis Cluster: channel “%s”: %u message(s) published while it moved "
                  "delivered from history"),
               c->channel, from_history);
  for (guint i = 0; i < out->len; i++)
    herald_engine_deliver (HERALD_ENGINE (self), &(HeraldDelivery){ .kind = HERALD_TARGET_CHANNEL,
                                                                    .message = out->pdata[i] });
  g_clear_pointer (&kept, g_ptr_array_unref);
  catch_up_free (c);
}

static void on_catch_up (redisReply *reply, gpointer privdata);

static void
send_catch_up (CatchUp *c)
{
  g_autofree char *m = herald_rck_channel_key (c->channel, ":m");
  g_autofree char *h = herald_rck_channel_key (c->channel, ":h");
  g_autofree char *after = g_strdup_printf ("%" G_GUINT64_FORMAT, c->heard);
  g_autofree char *fresh = herald_engine_new_epoch ();
  g_autofree char *meta_ttl = g_strdup_printf ("%d", HERALD_RCK_META_TTL_S);
  const char *argv[]
      = { "EVALSHA", herald_rck_sha (HERALD_RCK_CATCH_UP), "2", m, h, after, c->heard_epoch, fresh,
          meta_ttl };

  c->attempts++;
  if (!still_catching_up (c))
    c->attempts = CATCH_UP_ATTEMPTS; /* the topic went, or the engine: just free it */
  if (c->attempts >= CATCH_UP_ATTEMPTS
      || !herald_redis_cluster_pool_command (c->self->pool, herald_rck_slot (m),
                                             G_N_ELEMENTS (argv), argv, NULL, on_catch_up, c))
    on_catch_up (NULL, c); /* tries again, or releases what was held */
}

/* Resubscribed after a loss, having heard @channel up to @heard of @epoch:
 * one script on its master reads its position and the history after that. */
static void
start_catch_up (HeraldRedisClusterEngine *self, const char *topic, guint64 heard, const char *epoch)
{
  CatchUp *c = g_new0 (CatchUp, 1);

  c->self = g_object_ref (self);
  c->topic = g_strdup (topic);
  c->channel = herald_rck_topic_channel (topic);
  c->heard = heard;
  c->heard_epoch = g_strdup (epoch);
  if (c->channel != NULL)
    send_catch_up (c);
  else
    on_catch_up (NULL, c); /* releases what was held */
}

static void
receive_channel (HeraldRedisClusterEngine *self, const char *topic, const char *channel,
                 const char *text, gsize len)
{
  g_autoptr (HeraldMessage) message = NULL;
  HeraldRedisPayload p;
  Topic *t;

  if (g_str_has_prefix (text, "P "))
    {
      g_autoptr (HeraldMessage) event = NULL;
      gboolean joined = g_str_has_prefix (text + 2, "join ");

      if (!joined && !g_str_has_prefix (text + 2, "leave "))
        return;
      event = herald_message_new_presence (channel, strchr (text + 2, ' ') + 1, joined);
      herald_engine_deliver (
          HERALD_ENGINE (self),
          &(HeraldDelivery){ .kind = HERALD_TARGET_PRESENCE, .target = channel, .message = event });
      return;
    }
  /* A join-leave=true namespace's per-connection event (another node's) */
  if (g_str_has_prefix (text, "J "))
    {
      g_autoptr (HeraldMessage) event
          = herald_redis_payload_parse_event (channel, text, len, self->node_id);

      if (event)
        herald_engine_deliver (HERALD_ENGINE (self),
                               &(HeraldDelivery){ .kind = HERALD_TARGET_JOIN_LEAVE,
                                                  .target = channel,
                                                  .message = event });
      return;
    }
  if (!herald_redis_payload_parse (text, len, &p) || g_strcmp0 (p.channel, channel) != 0)
    {
      g_debug ("redis cluster: ignoring a malformed channel payload");
      herald_redis_payload_clear (&p);
      return;
    }
  message = herald_redis_payload_message (&p);
  herald_redis_payload_clear (&p);
  g_mutex_lock (&self->lock);
  t = g_hash_table_lookup (self->topics, topic);
  if (t && t->held != NULL)
    {
      /* After what the history has, in order. */
      g_ptr_array_add (t->held, g_steal_pointer (&message));
      g_mutex_unlock (&self->lock);
      return;
    }
  if (t)
    heard_locked (t, message, FALSE);
  g_mutex_unlock (&self->lock);
  herald_engine_deliver (HERALD_ENGINE (self),
                         &(HeraldDelivery){ .kind = HERALD_TARGET_CHANNEL, .message = message });
}

static void
receive_direct (HeraldRedisClusterEngine *self, const char *text, gsize len, gboolean to_all)
{
  g_auto (HeraldRedisDirect) d;

  if (!herald_redis_direct_parse (text, len, to_all, &d)
      || g_strcmp0 (d.origin, self->node_id) == 0)
    return; /* malformed, or our own: delivered locally when sent */
  herald_engine_deliver (HERALD_ENGINE (self), &d.delivery);
}

/* An SSUBSCRIBE confirmation, or a SUNSUBSCRIBE (ours, or the master's
 * when the slot left it). */
static void
receive_confirmation (HeraldRedisClusterEngine *self, const char *addr, const char *topic,
                      gboolean subscribed)
{
  gboolean again = FALSE, catch_up = FALSE;
  g_autofree char *heard_epoch = NULL;
  guint64 heard = 0;
  Topic *t;

  g_mutex_lock (&self->lock);
  t = g_hash_table_lookup (self->topics, topic);
  if (t && g_strcmp0 (t->on, addr) == 0)
    {
      if (subscribed && t->state == SUB_SUBSCRIBING)
        {
          t->state = SUB_SUBSCRIBED;
          catch_up = t->missed && t->held == NULL;
          if (catch_up)
            {
              t->missed = FALSE;
              t->held = g_ptr_array_new_with_free_func ((GDestroyNotify)herald_message_unref);
              if (t->heard_epoch == NULL)
                {
                  t->heard_epoch = g_strdup (t->epoch);
                  t->heard = t->last_offset;
                }
              heard = t->heard;
              heard_epoch = g_strdup (t->heard_epoch);
            }
        }
      else if (!subscribed)
        {
          /* The slot moved away: hear it where it lives now. */
          lose_locked (t);
          again = TRUE;
        }
    }
  g_cond_broadcast (&self->cond);
  g_mutex_unlock (&self->lock);
  if (catch_up)
    start_catch_up (self, topic, heard, heard_epoch);
  if (again)
    {
      g_debug ("redis cluster: %s unsubscribed by %s", topic, addr);
      herald_redis_cluster_pool_refresh (self->pool);
      herald_rce_reconcile (self, topic);
    }
}

/* An error on a pub/sub wire: an SSUBSCRIBE the master refused (MOVED). */
static void
receive_error (HeraldRedisClusterEngine *self, const char *addr, const char *error)
{
  GHashTableIter iter;
  gpointer key;
  Topic *t;
  guint slot = 0;
  gboolean redirect = herald_redis_parse_redirect (error, NULL, &slot, NULL);

  if (!redirect)
    {
      g_warning (_ ("Redis Cluster %s: %s"), addr, error);
      return;
    }
  g_mutex_lock (&self->lock);
  g_hash_table_iter_init (&iter, self->topics);
  while (g_hash_table_iter_next (&iter, &key, (gpointer *)&t))
    if (t->slot == slot && t->state == SUB_SUBSCRIBING && g_strcmp0 (t->on, addr) == 0)
      {
        t->state = SUB_IDLE;
        g_clear_pointer (&t->on, g_free);
      }
  g_mutex_unlock (&self->lock);
  herald_redis_cluster_pool_refresh (self->pool);
}

void
herald_rce_on_push (gpointer owner, const char *addr, redisReply *reply)
{
  HeraldRedisClusterEngine *self = owner;
  const char *kind, *topic;
  g_autofree char *channel = NULL;

  if (reply->type == REDIS_REPLY_ERROR)
    {
      receive_error (self, addr, reply->str);
      return;
    }
  if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 3
      || reply->element[0]->type != REDIS_REPLY_STRING
      || reply->element[1]->type != REDIS_REPLY_STRING)
    return;
  kind = reply->element[0]->str;
  topic = reply->element[1]->str;
  if (g_str_equal (kind, "ssubscribe") || g_str_equal (kind, "sunsubscribe"))
    {
      receive_confirmation (self, addr, topic, kind[1] == 's');
      return;
    }
  if (!g_str_equal (kind, "smessage") || reply->element[2]->type != REDIS_REPLY_STRING)
    return;
  if (g_str_equal (topic, HERALD_RCK_DIRECT_TOPIC))
    receive_direct (self, reply->element[2]->str, reply->element[2]->len, TRUE);
  else if (g_str_has_prefix (topic, "herald:node:"))
    receive_direct (self, reply->element[2]->str, reply->element[2]->len, FALSE);
  else if ((channel = herald_rck_topic_channel (topic)) != NULL)
    receive_channel (self, topic, channel, reply->element[2]->str, reply->element[2]->len);
}

void
herald_rce_on_node_down (gpointer owner, const char *addr, const char *why)
{
  HeraldRedisClusterEngine *self = owner;
  GHashTableIter iter;
  Topic *t;

  herald_metrics_count_redis_event (HERALD_REDIS_EVENT_DISCONNECTED);
  g_warning (_ ("Redis Cluster master %s lost (%s): its channels are delivered locally until "
                "it or a promoted replica answers"),
             addr, why);
  g_mutex_lock (&self->lock);
  g_hash_table_iter_init (&iter, self->topics);
  while (g_hash_table_iter_next (&iter, NULL, (gpointer *)&t))
    if (g_strcmp0 (t->on, addr) == 0)
      lose_locked (t);
  g_cond_broadcast (&self->cond);
  g_mutex_unlock (&self->lock);
}
