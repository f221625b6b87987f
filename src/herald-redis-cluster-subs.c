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

#include "herald-redis-cluster-engine-private.h"
#include "herald-redis-cluster-keys.h"
#include "herald-redis-direct.h"
#include "herald-redis-payload.h"
#include "herald-redis-slots.h"

void
herald_rce_topic_free (gpointer data)
{
  Topic *t = data;
  g_free (t->on);
  g_free (t->epoch);
  g_free (t);
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
      t->state = SUB_IDLE;
      t->primed = FALSE;
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
  if (!herald_redis_payload_parse (text, len, &p) || g_strcmp0 (p.channel, channel) != 0)
    {
      g_debug ("redis cluster: ignoring a malformed channel payload");
      herald_redis_payload_clear (&p);
      return;
    }
  g_mutex_lock (&self->lock);
  t = g_hash_table_lookup (self->topics, topic);
  if (t)
    {
      if (g_strcmp0 (t->epoch, p.epoch) != 0)
        {
          g_free (t->epoch);
          t->epoch = g_strdup (p.epoch);
          t->last_offset = p.offset;
        }
      t->last_offset = MAX (t->last_offset, p.offset);
    }
  g_mutex_unlock (&self->lock);
  message = herald_redis_payload_message (&p);
  herald_engine_deliver (HERALD_ENGINE (self),
                         &(HeraldDelivery){ .kind = HERALD_TARGET_CHANNEL, .message = message });
  herald_redis_payload_clear (&p);
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
  gboolean again = FALSE;
  Topic *t;

  g_mutex_lock (&self->lock);
  t = g_hash_table_lookup (self->topics, topic);
  if (t && g_strcmp0 (t->on, addr) == 0)
    {
      if (subscribed && t->state == SUB_SUBSCRIBING)
        t->state = SUB_SUBSCRIBED;
      else if (!subscribed)
        {
          /* The slot moved away: hear it where it lives now. */
          t->state = SUB_IDLE;
          t->primed = FALSE;
          g_clear_pointer (&t->on, g_free);
          again = TRUE;
        }
    }
  g_cond_broadcast (&self->cond);
  g_mutex_unlock (&self->lock);
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

  g_warning (_ ("Redis Cluster master %s lost (%s): its channels are delivered locally until "
                "it or a promoted replica answers"),
             addr, why);
  g_mutex_lock (&self->lock);
  g_hash_table_iter_init (&iter, self->topics);
  while (g_hash_table_iter_next (&iter, NULL, (gpointer *)&t))
    if (g_strcmp0 (t->on, addr) == 0)
      {
        t->state = SUB_IDLE;
        t->primed = FALSE;
        g_clear_pointer (&t->on, g_free);
      }
  g_cond_broadcast (&self->cond);
  g_mutex_unlock (&self->lock);
}
