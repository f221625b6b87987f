/* herald-redis-engine.c: offsets, history and routing shared by many nodes through Redis.
 *
 * Threads. hiredis contexts are not thread-safe. Two asynchronous
 * connections (one for commands, one in SUBSCRIBE mode: herald-redis-link.c)
 * live in the main context the engine was created in; worker threads hand
 * work to it through a mutex-protected queue drained by an idle source.
 * Synchronous questions (recovery, "which node holds connection X") use a
 * third, blocking connection under a mutex with short timeouts
 * (herald-redis-sync.c; see docs/scaling.md).
 *
 * Wire format. A publish is one Lua script: it assigns the channel offset
 * and the global sequence number, stores the message in the channel's
 * history list and PUBLISHes it on `herald:ch:<channel>` as one payload
 * (herald-redis-payload.h) which every node parses once into one
 * HeraldMessage. Direct messages go on `herald:all` (users, broadcast: every
 * node checks its registry) or on `herald:node:<id>` (one connection, found
 * through the `herald:conns` hash: herald-redis-cluster.c). History is read
 * back by herald-redis-history.c.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>
#include <glib/gi18n.h>

#include "herald-error.h"
#include "herald-metrics.h"
#include "herald-redis-cluster.h"
#include "herald-redis-direct.h"
#include "herald-redis-engine-private.h"
#include "herald-redis-history.h"
#include "herald-redis-link.h"
#include "herald-redis-payload.h"
#include "herald-redis-presence.h"
#include "herald-redis-publish.h"
#include "herald-redis-sentinel.h"
#include "herald-redis-source.h"
#include "herald-redis-sync.h"
#include "herald-redis-users.h"

G_DEFINE_FINAL_TYPE (HeraldRedisEngine, herald_redis_engine, HERALD_TYPE_ENGINE)

/* ---- small helpers ---- */

static void
op_free (Op *op)
{
  g_clear_object (&op->task);
  g_free (op->a);
  g_free (op->b);
  g_free (op);
}

static void
set_degraded_locked (HeraldRedisEngine *self, const char *why)
{
  g_free (self->degraded);
  self->degraded = why ? g_strdup_printf ("degraded: %s", why) : NULL;
  self->up = why == NULL;
  g_cond_broadcast (&self->cond);
}

#define ns_of(self, channel)                                                                       \
  herald_config_namespace_for (herald_redis_engine_config (self), (channel))

static guint
deliver (HeraldRedisEngine *self, const HeraldDelivery *delivery)
{
  return herald_engine_deliver (HERALD_ENGINE (self), delivery);
}

/* ---- the work queue: any thread → main context ---- */

static void run_op (HeraldRedisEngine *self, Op *op);

static gboolean
drain_ops (gpointer user_data)
{
  HeraldRedisEngine *self = user_data;
  GQueue ops = G_QUEUE_INIT;
  Op *op;

  g_mutex_lock (&self->lock);
  ops = self->ops;
  g_queue_init (&self->ops);
  g_clear_pointer (&self->drain_source, g_source_unref);
  g_mutex_unlock (&self->lock);

  while ((op = g_queue_pop_head (&ops)) != NULL)
    {
      run_op (self, op);
      op_free (op);
    }
  return G_SOURCE_REMOVE;
}

static void
push_op (HeraldRedisEngine *self, Op *op)
{
  g_mutex_lock (&self->lock);
  g_queue_push_tail (&self->ops, op);
  if (self->drain_source == NULL && !self->disposed)
    {
      self->drain_source = g_idle_source_new ();
      g_source_set_priority (self->drain_source, G_PRIORITY_DEFAULT);
      g_source_set_callback (self->drain_source, drain_ops, g_object_ref (self), g_object_unref);
      g_source_attach (self->drain_source, self->context);
    }
  g_mutex_unlock (&self->lock);
}

void
herald_redis_engine_push_op (HeraldRedisEngine *self, Op *op)
{
  push_op (self, op);
}

static Op *
op_new (OpType type, const char *a, const char *b)
{
  Op *op = g_new0 (Op, 1);
  op->type = type;
  op->a = g_strdup (a);
  op->b = g_strdup (b);
  return op;
}

/* ---- channels and subscriptions (main thread) ---- */

static void
send_sub (HeraldRedisEngine *self, const char *verb, const char *name)
{
  g_autofree char *topic = g_strconcat ("herald:ch:", name, NULL);
  const char *argv[] = { verb, topic };

  herald_redis_link_subscribe (self->link, 2, argv);
}

static void
reconcile_channel (HeraldRedisEngine *self, const char *name)
{
  Chan *ch;
  const char *verb = NULL;

  g_mutex_lock (&self->lock);
  ch = g_hash_table_lookup (self->channels, name);
  if (ch && self->sub_ready)
    {
      if (ch->state == SUB_IDLE && ch->refs > 0)
        {
          ch->state = SUB_SUBSCRIBING;
          verb = "SUBSCRIBE";
        }
      else if (ch->state == SUB_SUBSCRIBED && ch->refs == 0)
        {
          ch->state = SUB_UNSUBSCRIBING;
          verb = "UNSUBSCRIBE";
        }
    }
  if (ch && ch->state == SUB_IDLE && ch->refs == 0)
    g_hash_table_remove (self->channels, name);
  g_mutex_unlock (&self->lock);

  if (verb)
    {
      g_debug ("redis: %s %s", verb, name);
      send_sub (self, verb, name);
    }
}

static void
reconcile_all (HeraldRedisEngine *self)
{
  g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  GHashTableIter iter;
  gpointer key;

  g_mutex_lock (&self->lock);
  g_hash_table_iter_init (&iter, self->channels);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    g_ptr_array_add (names, g_strdup (key));
  g_mutex_unlock (&self->lock);
  for (guint i = 0; i < names->len; i++)
    reconcile_channel (self, g_ptr_array_index (names, i));
}

void
herald_redis_engine_channel_ref (HeraldRedisEngine *self, const char *name, int delta)
{
  Chan *ch;

  g_mutex_lock (&self->lock);
  ch = g_hash_table_lookup (self->channels, name);
  if (ch == NULL)
    {
      ch = g_new0 (Chan, 1);
      ch->resync = !self->up; /* its subscribers were told a position Redis did not give */
      g_hash_table_insert (self->channels, g_strdup (name), ch);
    }
  if (delta > 0)
    ch->refs++;
  else if (ch->refs > 0)
    ch->refs--;
  g_mutex_unlock (&self->lock);
  push_op (self, op_new (OP_RECONCILE, name, NULL));
}

/* A new epoch: every channel's offsets start again from 1 (Redis resets a
 * channel on its first publish of the epoch: herald-redis-publish.c), so
 * what this node knew of them is forgotten. Under the lock. */
void
herald_redis_engine_set_epoch_locked (HeraldRedisEngine *self, const char *epoch)
{
  GHashTableIter iter;
  Chan *ch;

  gboolean had_one = self->epoch != NULL;

  if (epoch == NULL || g_strcmp0 (self->epoch, epoch) == 0)
    return;
  g_hash_table_iter_init (&iter, self->channels);
  while (g_hash_table_iter_next (&iter, NULL, (gpointer *)&ch))
    {
      ch->last_offset = 0;
      ch->primed = FALSE;
    }
  g_free (self->epoch);
  self->epoch = g_strdup (epoch);
  if (had_one)
    herald_redis_engine_resync_epoch_locked (self);
}

/* ---- receiving (main thread) ---- */

/* "join <user>" or "leave <user>" on a channel's topic. */
static void
receive_presence (HeraldRedisEngine *self, const char *channel, const char *text)
{
  g_autoptr (HeraldMessage) event = NULL;
  gboolean joined = g_str_has_prefix (text, "join ");

  if (!joined && !g_str_has_prefix (text, "leave "))
    return;
  event = herald_message_new_presence (channel, strchr (text, ' ') + 1, joined);
  deliver (self, &(HeraldDelivery){
                     .kind = HERALD_TARGET_PRESENCE, .target = channel, .message = event });
}

static void
receive_channel (HeraldRedisEngine *self, const char *name, const char *text, gsize len)
{
  g_autoptr (HeraldMessage) message = NULL;
  HeraldRedisPayload p;
  Chan *ch;

  if (g_str_has_prefix (text, "P "))
    {
      receive_presence (self, name, text + 2);
      return;
    }
  if (g_str_has_prefix (text, "J "))
    {
      g_autoptr (HeraldMessage) event
          = herald_redis_payload_parse_event (name, text, len, self->node_id);
      if (event)
        deliver (self, &(HeraldDelivery){
                           .kind = HERALD_TARGET_JOIN_LEAVE, .target = name, .message = event });
      return;
    }
  if (!herald_redis_payload_parse (text, len, &p))
    {
      g_debug ("redis: ignoring a malformed channel payload");
      herald_redis_payload_clear (&p);
      return;
    }
  g_mutex_lock (&self->lock);
  herald_redis_engine_set_epoch_locked (self, p.epoch);
  ch = g_hash_table_lookup (self->channels, p.channel);
  if (ch && ch->resync && ch->first_live == 0)
    ch->first_live = p.offset;
  if (ch)
    ch->last_offset = MAX (ch->last_offset, p.offset);
  self->local_seq = MAX (self->local_seq, p.seq);
  g_mutex_unlock (&self->lock);

  message = herald_redis_payload_message (&p);
  deliver (self, &(HeraldDelivery){ .kind = HERALD_TARGET_CHANNEL, .message = message });
  herald_redis_payload_clear (&p);
}

/* A direct message on herald:all (@to_all) or this node's topic. */
static void
receive_direct (HeraldRedisEngine *self, const char *text, gsize len, gboolean to_all)
{
  g_auto (HeraldRedisDirect) d;

  if (!herald_redis_direct_parse (text, len, to_all, &d)
      || g_strcmp0 (d.origin, self->node_id) == 0)
    return; /* malformed, or our own: delivered locally when sent */
  deliver (self, &d.delivery);
}

static void link_check_up (HeraldRedisEngine *self);

static void
on_sub_reply (gpointer owner, redisReply *reply)
{
  HeraldRedisEngine *self = owner;
  const char *kind, *topic;

  if (reply->type == REDIS_REPLY_ERROR)
    {
      g_warning (_ ("Redis: %s"), reply->str);
      return;
    }
  if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 3
      || reply->element[0]->type != REDIS_REPLY_STRING
      || reply->element[1]->type != REDIS_REPLY_STRING)
    return;
  kind = reply->element[0]->str;
  topic = reply->element[1]->str;

  if (g_str_equal (kind, "message") && reply->element[2]->type == REDIS_REPLY_STRING)
    {
      const char *text = reply->element[2]->str;
      gsize len = reply->element[2]->len;

      if (g_str_has_prefix (topic, "herald:ch:"))
        receive_channel (self, topic + strlen ("herald:ch:"), text, len);
      else if (g_str_equal (topic, "herald:all"))
        receive_direct (self, text, len, TRUE);
      else if (g_str_has_prefix (topic, "herald:node:"))
        receive_direct (self, text, len, FALSE);
    }
  else if (g_str_equal (kind, "subscribe") || g_str_equal (kind, "unsubscribe"))
    {
      gboolean subscribed = g_str_equal (kind, "subscribe");

      if (g_str_has_prefix (topic, "herald:ch:"))
        {
          const char *name = topic + strlen ("herald:ch:");
          Chan *ch;

          g_mutex_lock (&self->lock);
          ch = g_hash_table_lookup (self->channels, name);
          if (ch)
            {
              ch->state = subscribed ? SUB_SUBSCRIBED : SUB_IDLE;
              ch->primed = ch->primed && subscribed;
            }
          g_cond_broadcast (&self->cond);
          g_mutex_unlock (&self->lock);
          if (subscribed)
            herald_redis_engine_resync (self, name);
          reconcile_channel (self, name);
        }
      else if (subscribed && g_str_has_prefix (topic, "herald:node:"))
        {
          self->sub_ready = TRUE;
          link_check_up (self);
        }
    }
}

/* ---- the link's life (main thread) ---- */

static GHashTable *
presence_snapshot_locked (HeraldRedisEngine *self)
{
  GHashTable *copy = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  GHashTableIter iter;
  gpointer key, value;

  g_hash_table_iter_init (&iter, self->presence);
  while (g_hash_table_iter_next (&iter, &key, &value))
    g_hash_table_insert (copy, g_strdup (key), value);
  return copy;
}

static void
heartbeat (HeraldRedisEngine *self)
{
  g_autoptr (GHashTable) presence = NULL;

  g_mutex_lock (&self->lock);
  presence = presence_snapshot_locked (self);
  g_mutex_unlock (&self->lock);
  herald_redis_cluster_heartbeat (self->link, self->node_id, presence);
}

static gboolean
on_heartbeat (gpointer user_data)
{
  heartbeat (user_data);
  return G_SOURCE_CONTINUE;
}

/* Run first on every (re)connect, before any channel is subscribed on this
 * link: ARGV = a fresh epoch, the newest seq this node has seen. A missing
 * epoch (a Redis without the data) or a seq behind the one this node saw
 * (a promoted replica that lagged, a restart from an old snapshot) means
 * writes may be lost: a new epoch, and the seq moves past what was seen.
 * Returns {epoch, seq, 1 when writes were lost}. */
static const char check_script[]
    = "local seq = tonumber(redis.call('GET', KEYS[1]) or '0')\n"
      "local epoch = redis.call('GET', KEYS[2])\n"
      "local seen = tonumber(ARGV[2])\n"
      "local lost = 0\n"
      "if not epoch or seq < seen then\n"
      "  if epoch then lost = 1 end\n"
      "  epoch = ARGV[1]\n"
      "  redis.call('SET', KEYS[2], epoch)\n"
      "end\n"
      "if seq < seen then seq = seen; redis.call('SET', KEYS[1], ARGV[2]) end\n"
      "return {epoch, tostring(seq), lost}\n";

/* ROLE, before the epoch check: a replica (a demoted master, a sentinel
 * behind the times) is not used even when the check would not write. An
 * error (ROLE renamed away) is no verdict. */
static void
on_role_reply (redisAsyncContext *ac, void *r, void *privdata)
{
  HeraldRedisEngine *self = herald_redis_link_owner (ac);
  redisReply *reply = r;

  if (self == NULL || reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements == 0
      || reply->element[0]->type != REDIS_REPLY_STRING
      || g_str_equal (reply->element[0]->str, "master"))
    return;
  herald_metrics_count_redis_event (HERALD_REDIS_EVENT_READONLY);
  herald_redis_link_fail (self->link, _ ("the server is a replica, not a master"));
}

/* Every message this node receives from now on has a higher seq than the
 * answer's, so fresh SSE streams can start there. */
static void
on_check_reply (redisAsyncContext *ac, void *r, void *privdata)
{
  HeraldRedisEngine *self = herald_redis_link_owner (ac);
  redisReply *reply = r;
  const char *epoch;

  if (self == NULL || reply == NULL)
    return;
  if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 3
      || reply->element[0]->type != REDIS_REPLY_STRING)
    {
      if (reply->type == REDIS_REPLY_ERROR && g_str_has_prefix (reply->str, "READONLY"))
        herald_metrics_count_redis_event (HERALD_REDIS_EVENT_READONLY);
      herald_redis_link_fail (self->link, reply->type == REDIS_REPLY_ERROR
                                              ? reply->str
                                              : _ ("cannot read herald:epoch"));
      return;
    }
  epoch = reply->element[0]->str;
  g_mutex_lock (&self->lock);
  self->local_seq = MAX (self->local_seq, herald_redis_reply_u64 (reply->element[1]));
  if (self->epoch && !g_str_equal (self->epoch, epoch))
    {
      g_warning (_ ("Redis history was lost (epoch was %s, now %s%s): clients will recover "
                    "with recovered:false"),
                 self->epoch, epoch,
                 herald_redis_reply_u64 (reply->element[2]) ? _ (": Redis is behind what this "
                                                                 "node saw")
                                                            : "");
      herald_metrics_count_redis_event (HERALD_REDIS_EVENT_HISTORY_LOST);
    }
  herald_redis_engine_set_epoch_locked (self, epoch);
  g_mutex_unlock (&self->lock);
  self->cmd_ready = TRUE;
  link_check_up (self);
}

static void
link_check_up (HeraldRedisEngine *self)
{
  g_autoptr (GPtrArray) ids = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GHashTable) presence = NULL;
  g_autoptr (GHashTable) users = NULL;
  GHashTableIter iter;
  gpointer key;

  if (!self->cmd_ready || !self->sub_ready)
    return;
  herald_redis_link_up (self->link);
  g_mutex_lock (&self->lock);
  if (self->degraded)
    g_message (_ ("Redis connection established (%s), node %s"), self->url_text, self->node_id);
  herald_metrics_count_redis_event (HERALD_REDIS_EVENT_CONNECTED);
  set_degraded_locked (self, NULL);
  g_hash_table_iter_init (&iter, self->local_conns);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    g_ptr_array_add (ids, g_strdup (key));
  /* Presence changes queued before this point are in the snapshot. */
  self->link_gen++;
  self->resets = 0;
  presence = presence_snapshot_locked (self);
  users = herald_redis_engine_users_snapshot_locked (self);
  g_mutex_unlock (&self->lock);
  herald_redis_cluster_register_presence (self->link, self->node_id, presence);
  herald_redis_users_register (self->link, self->node_id, users);

  heartbeat (self);
  self->heartbeat_source = g_timeout_source_new_seconds (HERALD_REDIS_HEARTBEAT_S);
  g_source_set_callback (self->heartbeat_source, on_heartbeat, self, NULL);
  g_source_attach (self->heartbeat_source, self->context);
  for (guint i = 0; i < ids->len; i++)
    herald_redis_cluster_register_connection (self->link, self->node_id,
                                              g_ptr_array_index (ids, i));
  reconcile_all (self);
}

static void
on_link_down (gpointer owner, const char *why)
{
  HeraldRedisEngine *self = owner;
  gboolean was_up;
  GHashTableIter iter;
  Chan *ch;

  g_mutex_lock (&self->lock);
  was_up = self->up;
  set_degraded_locked (self, why);
  g_hash_table_iter_init (&iter, self->channels);
  while (g_hash_table_iter_next (&iter, NULL, (gpointer *)&ch))
    {
      ch->state = SUB_IDLE;
      ch->primed = FALSE;
    }
  herald_redis_engine_resync_mark_locked (self);
  g_mutex_unlock (&self->lock);
  if (was_up)
    {
      g_warning (_ ("Redis connection lost (%s): delivering locally, reconnecting"), why);
      herald_metrics_count_redis_event (HERALD_REDIS_EVENT_DISCONNECTED);
    }
  else
    g_debug ("redis: link down: %s", why);
  self->cmd_ready = self->sub_ready = FALSE;
  herald_redis_source_clear (&self->heartbeat_source);
  if (self->sentinel)
    herald_redis_sentinel_ask (self->sentinel); /* a failover, perhaps */
}

/* Both connections are open: the epoch check and the script on one, the
 * node's own topics on the other; link_check_up() once both answered. */
static void
on_link_connected (gpointer owner)
{
  HeraldRedisEngine *self = owner;
  g_autofree char *fresh = herald_engine_new_epoch ();
  g_autofree char *node_topic = g_strconcat ("herald:node:", self->node_id, NULL);
  g_autofree char *seen = NULL;
  const char *load[] = { "SCRIPT", "LOAD", herald_redis_publish_script };
  const char *subscribe[] = { "SUBSCRIBE", "herald:all", node_topic };
  const char *role[] = { "ROLE" };

  g_mutex_lock (&self->lock);
  seen = g_strdup_printf ("%" G_GUINT64_FORMAT, self->local_seq);
  g_mutex_unlock (&self->lock);
  herald_redis_link_command_checked (self->link, "SCRIPT LOAD", 3, load);
  herald_redis_link_command (self->link, on_role_reply, NULL, 1, role, NULL);
  {
    const char *check[] = { "EVAL", check_script, "2", "herald:seq", "herald:epoch", fresh, seen };

    herald_redis_link_command (self->link, on_check_reply, NULL, 7, check, NULL);
  }
  herald_redis_link_subscribe (self->link, 3, subscribe);
}

static const HeraldRedisLinkEvents link_events = {
  .connected = on_link_connected,
  .down = on_link_down,
  .sub_reply = on_sub_reply,
};

/* ---- operations (main thread) ---- */

/* Not stored (Redis unreachable, or it refused): this node's subscribers
 * still get it, without an offset (none is invented: "offset":null). */
static void
publish_locally (HeraldRedisEngine *self, Op *op)
{
  g_autoptr (HeraldMessage) message = NULL;
  g_autofree char *epoch = NULL;
  gboolean here;

  g_mutex_lock (&self->lock);
  here = g_hash_table_contains (self->channels, op->a);
  epoch = g_strdup (self->epoch);
  g_mutex_unlock (&self->lock);
  herald_metrics_count_redis_event (HERALD_REDIS_EVENT_PUBLISH_UNSTORED);
  if (here)
    {
      message = herald_redis_payload_body_message (op->a, 0, 0, epoch, op->b);
      deliver (self, &(HeraldDelivery){ .kind = HERALD_TARGET_CHANNEL, .message = message });
    }
  g_task_return_int (op->task, 0);
}

/* The publish script's answer: the offset; no answer (the link was lost:
 * it may or may not have run) or an error: delivered here only. READONLY
 * means a demoted master: the link is dropped and the master looked up. */
static void
on_publish_reply (redisAsyncContext *ac, void *r, void *privdata)
{
  Op *op = privdata;
  HeraldRedisEngine *self = g_task_get_source_object (op->task);
  redisReply *reply = r;
  gboolean disposed;

  g_mutex_lock (&self->lock);
  disposed = self->disposed;
  g_mutex_unlock (&self->lock);
  if (reply && reply->type == REDIS_REPLY_INTEGER)
    g_task_return_int (op->task, (gssize)reply->integer);
  else if (disposed)
    g_task_return_new_error (op->task, HERALD_ERROR, HERALD_ERROR_UNAVAILABLE, _ ("shutting down"));
  else
    {
      if (reply && reply->type == REDIS_REPLY_ERROR)
        g_debug ("redis: publish on %s not stored: %s", op->a, reply->str);
      publish_locally (self, op);
      if (reply && reply->type == REDIS_REPLY_ERROR && g_str_has_prefix (reply->str, "READONLY")
          && herald_redis_link_owner (ac) != NULL)
        {
          herald_metrics_count_redis_event (HERALD_REDIS_EVENT_READONLY);
          herald_redis_link_fail (self->link, reply->str);
        }
    }
  op_free (op);
}

static void
run_publish (HeraldRedisEngine *self, Op *op)
{
  Op *pending;

  if (!self->cmd_ready || !self->sub_ready)
    {
      publish_locally (self, op);
      return;
    }
  pending = op_new (OP_PUBLISH, op->a, op->b);
  pending->task = g_steal_pointer (&op->task);
  if (!herald_redis_publish_command (self->link, op->a, op->b, ns_of (self, op->a)->history_size,
                                     ns_of (self, op->a)->history_ttl, on_publish_reply, pending))
    {
      publish_locally (self, pending);
      op_free (pending);
    }
}

static void
run_op (HeraldRedisEngine *self, Op *op)
{
  gboolean up = self->cmd_ready && self->sub_ready;

  switch (op->type)
    {
    case OP_PUBLISH:
      run_publish (self, op);
      break;
    case OP_RECONCILE:
      reconcile_channel (self, op->a);
      break;
    case OP_SEND:
      if (up)
        {
          const char *argv[] = { "PUBLISH", op->a, op->b };
          herald_redis_link_command (self->link, NULL, NULL, 3, argv, NULL);
        }
      break;
    case OP_CONN_OPEN:
      if (up)
        herald_redis_cluster_register_connection (self->link, self->node_id, op->a);
      break;
    case OP_PRESENCE:
      /* A change from before the link came up is in the registered snapshot. */
      if (up && op->gen == self->link_gen)
        herald_redis_cluster_update_presence (self->link, self->node_id, op->a, op->b, op->delta);
      break;
    case OP_USERS:
      if (up && op->gen == self->link_gen)
        herald_redis_users_update (self->link, self->node_id, op->a, op->delta);
      break;
    case OP_CONN_CLOSE:
      if (up)
        herald_redis_cluster_unregister_connection (self->link, op->a);
      break;
    }
}

/* ---- questions to Redis (any thread) ---- */

gboolean
herald_redis_engine_is_up (HeraldRedisEngine *self)
{
  gboolean up;

  g_mutex_lock (&self->lock);
  up = self->up;
  g_mutex_unlock (&self->lock);
  return up;
}

/* Routes a payload to the node holding @id; "" only asks. Returns receivers. */
static guint
route_to_connection (HeraldRedisEngine *self, const char *id, const char *payload)
{
  return herald_redis_engine_is_up (self) ? herald_redis_cluster_route (self->sync, id, payload)
                                          : 0;
}

/* ---- HeraldEngine ---- */

static const char *
redis_get_name (HeraldEngine *engine)
{
  return "redis";
}

static char *
redis_dup_state (HeraldEngine *engine)
{
  HeraldRedisEngine *self = HERALD_REDIS_ENGINE (engine);
  char *state;

  g_mutex_lock (&self->lock);
  state = g_strdup (self->degraded ? self->degraded : "ok");
  g_mutex_unlock (&self->lock);
  return state;
}

static void
redis_publish_async (HeraldEngine *engine, const char *channel, const char *key,
                     const char *data_json, GCancellable *cancellable, GAsyncReadyCallback callback,
                     gpointer user_data)
{
  HeraldRedisEngine *self = HERALD_REDIS_ENGINE (engine);
  Op *op = op_new (OP_PUBLISH, channel, NULL);

  op->b = herald_redis_payload_body (key, data_json);
  /* Created here: it completes in the caller's thread-default context. */
  op->task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (op->task, redis_publish_async);
  push_op (self, op);
}

static guint
redis_send (HeraldEngine *engine, HeraldTargetKind kind, const char *target, const char *data_json)
{
  HeraldRedisEngine *self = HERALD_REDIS_ENGINE (engine);
  g_autoptr (HeraldMessage) message = herald_message_new_direct (data_json);
  guint reached;

  /* Local connections get it at once (and still do when Redis is down);
   * other nodes skip what they see coming from us. */
  reached = deliver (self, &(HeraldDelivery){ .kind = kind, .target = target, .message = message });
  switch (kind)
    {
    case HERALD_TARGET_ALL:
    case HERALD_TARGET_USER:
    case HERALD_TARGET_USER_SUBSCRIPTION:
      {
        Op *op = op_new (OP_SEND, "herald:all", NULL);
        op->b = herald_redis_direct_format (kind, self->node_id, target, data_json);
        push_op (self, op);
      }
      return reached;
    case HERALD_TARGET_CONNECTION:
      if (reached == 0)
        {
          g_autofree char *p = herald_redis_direct_format (kind, self->node_id, target, data_json);
          reached = route_to_connection (self, target, p);
        }
      return reached;
    default:
      return reached;
    }
}

/* Here at once; the other nodes with subscribers hear it on the channel's
 * topic (and skip what they see coming from us). */
static void
redis_announce (HeraldEngine *engine, HeraldMessage *event)
{
  HeraldRedisEngine *self = HERALD_REDIS_ENGINE (engine);
  const char *channel = herald_message_get_channel (event);
  Op *op = op_new (OP_SEND, NULL, NULL);

  deliver (self, &(HeraldDelivery){
                     .kind = HERALD_TARGET_JOIN_LEAVE, .target = channel, .message = event });
  op->a = g_strconcat ("herald:ch:", channel, NULL);
  op->b = herald_redis_payload_format_event (self->node_id, event);
  push_op (self, op);
}

static void
redis_close_connection (HeraldEngine *engine, const char *id, guint16 code, const char *reason)
{
  HeraldRedisEngine *self = HERALD_REDIS_ENGINE (engine);
  g_autofree char *payload = NULL;

  if (deliver (self, &(HeraldDelivery){ .kind = HERALD_TARGET_CLOSE,
                                        .target = id,
                                        .close_code = code,
                                        .close_reason = reason })
      > 0)
    return;
  payload = herald_redis_direct_format_close (id, code, reason);
  route_to_connection (self, id, payload);
}

static gboolean
redis_has_connection (HeraldEngine *engine, const char *id)
{
  return route_to_connection (HERALD_REDIS_ENGINE (engine), id, "") > 0;
}

static void
redis_connection_opened (HeraldEngine *engine, const char *id, const char *user_id)
{
  HeraldRedisEngine *self = HERALD_REDIS_ENGINE (engine);

  g_mutex_lock (&self->lock);
  g_hash_table_replace (self->local_conns, g_strdup (id), g_strdup (user_id));
  g_mutex_unlock (&self->lock);
  push_op (self, op_new (OP_CONN_OPEN, id, NULL));
  herald_redis_engine_users_connection (self, user_id, +1);
}

static void
redis_connection_closed (HeraldEngine *engine, const char *id)
{
  HeraldRedisEngine *self = HERALD_REDIS_ENGINE (engine);
  g_autofree char *key = NULL, *user_id = NULL;

  g_mutex_lock (&self->lock);
  g_hash_table_steal_extended (self->local_conns, id, (gpointer *)&key, (gpointer *)&user_id);
  g_mutex_unlock (&self->lock);
  push_op (self, op_new (OP_CONN_CLOSE, id, NULL));
  herald_redis_engine_users_connection (self, user_id, -1);
}

static void
redis_channel_occupied (HeraldEngine *engine, const char *channel)
{
  herald_redis_engine_channel_ref (HERALD_REDIS_ENGINE (engine), channel, +1);
}

static void
redis_channel_vacated (HeraldEngine *engine, const char *channel)
{
  herald_redis_engine_channel_ref (HERALD_REDIS_ENGINE (engine), channel, -1);
}

/* The local table gives this node's first/last connection of a user; the
 * cluster-wide join/leave events come back from Redis on the channel's topic
 * (or, while Redis is down, are delivered locally). */
static gboolean
presence_adjust (HeraldRedisEngine *self, const char *channel, const char *user_id, int delta)
{
  g_autofree char *key = g_strconcat (channel, "\n", user_id, NULL);
  Op *op = op_new (OP_PRESENCE, channel, user_id);
  gboolean changed, up;
  guint count;

  g_mutex_lock (&self->lock);
  count = GPOINTER_TO_UINT (g_hash_table_lookup (self->presence, key));
  if (delta < 0 && count == 0)
    {
      g_mutex_unlock (&self->lock);
      op_free (op);
      return FALSE;
    }
  count += delta;
  changed = delta > 0 ? count == 1 : count == 0;
  if (count == 0)
    g_hash_table_remove (self->presence, key);
  else
    g_hash_table_insert (self->presence, g_steal_pointer (&key), GUINT_TO_POINTER (count));
  op->delta = delta;
  op->gen = self->link_gen;
  up = self->up;
  if (changed && !up)
    {
      g_autoptr (HeraldMessage) event = herald_message_new_presence (channel, user_id, delta > 0);
      deliver (self, &(HeraldDelivery){
                         .kind = HERALD_TARGET_PRESENCE, .target = channel, .message = event });
    }
  g_mutex_unlock (&self->lock);
  push_op (self, op);
  return changed;
}

/* Anonymous connections: counted, never an event (they are not users). */
static void
redis_presence_anonymous (HeraldEngine *engine, const char *channel, int delta)
{
  HeraldRedisEngine *self = HERALD_REDIS_ENGINE (engine);
  Op *op = op_new (OP_PRESENCE, channel, NULL);
  guint count;

  g_mutex_lock (&self->lock);
  count = GPOINTER_TO_UINT (g_hash_table_lookup (self->presence, channel));
  if (delta < 0 && count == 0)
    {
      g_mutex_unlock (&self->lock);
      op_free (op);
      return;
    }
  count += delta;
  if (count == 0)
    g_hash_table_remove (self->presence, channel);
  else
    g_hash_table_insert (self->presence, g_strdup (channel), GUINT_TO_POINTER (count));
  op->delta = delta;
  op->gen = self->link_gen;
  g_mutex_unlock (&self->lock);
  push_op (self, op);
}

static gboolean
redis_presence_join (HeraldEngine *engine, const char *channel, const char *user_id)
{
  return presence_adjust (HERALD_REDIS_ENGINE (engine), channel, user_id, +1);
}

static gboolean
redis_presence_leave (HeraldEngine *engine, const char *channel, const char *user_id)
{
  return presence_adjust (HERALD_REDIS_ENGINE (engine), channel, user_id, -1);
}

static char **
redis_query_presence (HeraldEngine *engine, const char *channel, const char *after, guint limit,
                      guint *users, guint *connections, gboolean *more, GError **error)
{
  HeraldRedisEngine *self = HERALD_REDIS_ENGINE (engine);

  return herald_redis_presence_query (herald_redis_engine_is_up (self) ? self->sync : NULL, channel,
                                      after, limit, users, connections, more, error);
}

/* ---- GObject ---- */

static void
herald_redis_engine_dispose (GObject *object)
{
  HeraldRedisEngine *self = HERALD_REDIS_ENGINE (object);
  Op *op;

  g_mutex_lock (&self->lock);
  self->disposed = TRUE;
  g_mutex_unlock (&self->lock);
  g_clear_pointer (&self->sentinel, herald_redis_sentinel_free);
  g_clear_pointer (&self->link, herald_redis_link_free);
  herald_redis_source_clear (&self->heartbeat_source);
  g_mutex_lock (&self->lock);
  herald_redis_source_clear (&self->drain_source);
  while ((op = g_queue_pop_head (&self->ops)) != NULL)
    {
      if (op->task)
        g_task_return_new_error (op->task, HERALD_ERROR, HERALD_ERROR_UNAVAILABLE,
                                 _ ("shutting down"));
      op_free (op);
    }
  g_mutex_unlock (&self->lock);
  if (self->sync)
    herald_redis_sync_close (self->sync);
  G_OBJECT_CLASS (herald_redis_engine_parent_class)->dispose (object);
}

static void
herald_redis_engine_finalize (GObject *object)
{
  HeraldRedisEngine *self = HERALD_REDIS_ENGINE (object);

  g_clear_pointer (&self->sync, herald_redis_sync_free);
  g_clear_pointer (&self->url, herald_redis_url_free);
  g_free (self->url_text);
  g_free (self->node_id);
  g_free (self->epoch);
  g_free (self->degraded);
  g_hash_table_unref (self->channels);
  g_hash_table_unref (self->local_conns);
  g_hash_table_unref (self->presence);
  g_hash_table_unref (self->users);
  g_main_context_unref (self->context);
  g_mutex_clear (&self->lock);
  g_cond_clear (&self->cond);
  G_OBJECT_CLASS (herald_redis_engine_parent_class)->finalize (object);
}

static void
herald_redis_engine_class_init (HeraldRedisEngineClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  HeraldEngineClass *engine_class = HERALD_ENGINE_CLASS (klass);

  object_class->dispose = herald_redis_engine_dispose;
  object_class->finalize = herald_redis_engine_finalize;
  engine_class->get_name = redis_get_name;
  engine_class->dup_state = redis_dup_state;
  engine_class->publish_async = redis_publish_async;
  engine_class->announce = redis_announce;
  engine_class->send = redis_send;
  engine_class->close_connection = redis_close_connection;
  engine_class->recover = herald_redis_engine_recover;
  engine_class->recover_stream = herald_redis_engine_recover_stream;
  engine_class->dup_epoch = herald_redis_engine_dup_epoch;
  engine_class->get_position = herald_redis_engine_get_position;
  engine_class->get_stream_position = herald_redis_engine_get_stream_position;
  engine_class->presence_join = redis_presence_join;
  engine_class->presence_leave = redis_presence_leave;
  engine_class->query_presence = redis_query_presence;
  engine_class->presence_anonymous = redis_presence_anonymous;
  engine_class->channel_occupied = redis_channel_occupied;
  engine_class->channel_vacated = redis_channel_vacated;
  engine_class->connection_opened = redis_connection_opened;
  engine_class->connection_closed = redis_connection_closed;
  engine_class->has_connection = redis_has_connection;
  engine_class->count_user_connections = herald_redis_engine_count_user_connections;
}

static void
herald_redis_engine_init (HeraldRedisEngine *self)
{
  g_mutex_init (&self->lock);
  g_cond_init (&self->cond);
  self->channels = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  self->local_conns = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  self->presence = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  self->users = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  self->counts_users = TRUE;
  self->context = g_main_context_ref_thread_default ();
  self->degraded = g_strdup ("degraded: connecting to Redis");
}

/**
 * herald_redis_engine_new:
 * @config: the configuration (history size and ttl)
 * @url: the Redis address
 *
 * Returns: (transfer full): the Redis engine, not yet connected, or %NULL
 *   when @url is malformed.
 */
HeraldEngine *
herald_redis_engine_new (HeraldConfig *config, const char *url, GError **error)
{
  g_autoptr (HeraldRedisUrl) parsed = herald_redis_url_parse (url, error);
  HeraldRedisEngine *self;

  if (parsed == NULL)
    return NULL;
  self = g_object_new (HERALD_TYPE_REDIS_ENGINE, "config", config, NULL);
  if (parsed->password == NULL && herald_config_get_redis_password (config) != NULL)
    parsed->password = g_strdup (herald_config_get_redis_password (config));
  self->url = g_steal_pointer (&parsed);
  self->link = herald_redis_link_new (self->url, self->context, &link_events, self);
  self->sync = herald_redis_sync_new (self->url);
  self->url_text = self->url->path ? g_strdup_printf ("unix:%s", self->url->path)
                                   : g_strdup_printf ("%s:%d", self->url->host, self->url->port);
  return HERALD_ENGINE (self);
}

/* The sentinels name a (new) master: connect there at once. */
static void
on_sentinel_master (gpointer owner, const char *host, int port, gboolean switched)
{
  HeraldRedisEngine *self = owner;
  g_autofree char *why = NULL;

  if (self->url->host)
    herald_metrics_count_redis_event (HERALD_REDIS_EVENT_MASTER_CHANGED);
  if (self->url->host)
    g_message (_ ("Redis Sentinel: master “%s” is now %s:%d (was %s:%d)%s"),
               herald_config_get_redis_sentinel_master (herald_redis_engine_config (self)), host,
               port, self->url->host, self->url->port, switched ? ", +switch-master" : "");
  /* The sync connection first: from then on it never reads self->url's host. */
  herald_redis_sync_set_address (self->sync, host, port);
  g_free (self->url->host);
  self->url->host = g_strdup (host);
  self->url->port = port;
  g_free (self->url_text);
  self->url_text = g_strdup_printf (
      "%s:%d, master “%s” via Redis Sentinel %s", host, port,
      herald_config_get_redis_sentinel_master (herald_redis_engine_config (self)),
      herald_redis_sentinel_current (self->sentinel));
  why = g_strdup_printf (_ ("the master moved to %s:%d"), host, port);
  herald_redis_link_reconnect_now (self->link, why);
}

static const HeraldRedisSentinelEvents sentinel_events = {
  .master = on_sentinel_master,
};

/**
 * herald_redis_engine_new_sentinel:
 * @config: the configuration (history, [redis] password)
 * @sentinels: HOST:PORT of the sentinels
 * @master_name: the name they watch the master under
 *
 * Returns: (transfer full): the Redis engine following the master the
 *   sentinels name, not yet connected, or %NULL on a malformed address.
 */
HeraldEngine *
herald_redis_engine_new_sentinel (HeraldConfig *config, const char *const *sentinels,
                                  const char *master_name, GError **error)
{
  g_autoptr (HeraldRedisEngine) self = NULL;
  const char *password = herald_config_get_redis_password (config);

  g_return_val_if_fail (sentinels != NULL && master_name != NULL, NULL);
  self = g_object_new (HERALD_TYPE_REDIS_ENGINE, "config", config, NULL);
  self->url = g_new0 (HeraldRedisUrl, 1); /* host and port: the sentinels say */
  self->url->password = g_strdup (password);
  self->sentinel = herald_redis_sentinel_new (sentinels, master_name, password, self->context,
                                              &sentinel_events, self, error);
  if (self->sentinel == NULL)
    return NULL;
  self->link = herald_redis_link_new (self->url, self->context, &link_events, self);
  self->sync = herald_redis_sync_new (self->url);
  self->url_text = g_strdup_printf ("master “%s” via Redis Sentinel", master_name);
  g_free (self->degraded);
  self->degraded = g_strdup (_ ("degraded: asking the Redis Sentinels for the master"));
  return HERALD_ENGINE (g_steal_pointer (&self));
}

/**
 * herald_redis_engine_start:
 * @node_id: this node's id (the hub's)
 *
 * Starts connecting; until Redis answers, the engine is degraded.
 */
void
herald_redis_engine_start (HeraldRedisEngine *self, const char *node_id)
{
  g_return_if_fail (self->node_id == NULL);
  self->node_id = g_strdup (node_id);
  if (self->sentinel)
    herald_redis_sentinel_start (self->sentinel);
  else
    herald_redis_link_connect (self->link);
}
