/* herald-redis-cluster-engine.c: the [redis] cluster engine.
 *
 * Threads, as in herald-redis-engine.c: the cluster's wires live in the main
 * context the engine was created in (herald-redis-cluster-pool.c); workers
 * hand work to it through a mutex-protected queue drained by an idle
 * source; questions a caller waits for (recovery, positions, presence, "which
 * node holds connection X") go over blocking, slot-routed connections
 * (herald-redis-cluster-sync.c).
 *
 * Traffic. A publish is one script on the channel's slot: it assigns the
 * offset (per channel and epoch), keeps the payload in the channel's
 * history and SPUBLISHes it on the channel's shard channel, which every node
 * with subscribers SSUBSCRIBEs on the slot's master. Keys, channels and
 * scripts: herald-redis-cluster-keys.h. A master down or failing over
 * degrades only its slots' channels (delivered locally) until the map shows
 * a master for them again.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <glib/gi18n.h>

#include "herald-error.h"
#include "herald-metrics.h"
#include "herald-redis-cluster-ask.h"
#include "herald-redis-cluster-engine-private.h"
#include "herald-redis-cluster-keys.h"
#include "herald-redis-cluster-pool.h"
#include "herald-redis-cluster-sync.h"
#include "herald-redis-cluster-users.h"
#include "herald-redis-direct.h"
#include "herald-redis-payload.h"
#include "herald-redis-pin.h"
#include "herald-redis-slots.h"
#include "herald-redis-source.h"
#include "herald-redis-sync.h"

#define PIN_MS 1000
#define SUBSCRIBE_WAIT_MS 1000

typedef enum
{
  OP_PUBLISH,
  OP_RECONCILE,
  OP_SEND,
  OP_CONN_OPEN,
  OP_CONN_CLOSE,
  OP_PRESENCE,
  OP_USERS, /* a = user: this node's count of its connections changed */
} OpType;

typedef struct
{
  OpType type;
  GTask *task;
  char *a; /* channel, topic, connection id */
  char *b; /* data, payload, user id */
  int delta;
  guint64 gen;                     /* presence: when queued */
  HeraldRedisClusterEngine *owner; /* publish: while Redis answers */
} Op;

G_DEFINE_FINAL_TYPE (HeraldRedisClusterEngine, herald_redis_cluster_engine, HERALD_TYPE_ENGINE)

static void
op_free (Op *op)
{
  g_clear_object (&op->owner);
  g_clear_object (&op->task);
  g_free (op->a);
  g_free (op->b);
  g_free (op);
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

static guint
deliver (HeraldRedisClusterEngine *self, const HeraldDelivery *delivery)
{
  return herald_engine_deliver (HERALD_ENGINE (self), delivery);
}

#define slot_up(self, slot) herald_redis_cluster_pool_slot_ready ((self)->pool, (slot))

/* ---- the work queue: any thread → main context ---- */

static gboolean run_op (HeraldRedisClusterEngine *self, Op *op);

static gboolean
drain_ops (gpointer user_data)
{
  HeraldRedisClusterEngine *self = user_data;
  GQueue ops = G_QUEUE_INIT;
  Op *op;

  g_mutex_lock (&self->lock);
  ops = self->ops;
  g_queue_init (&self->ops);
  g_clear_pointer (&self->drain_source, g_source_unref);
  g_mutex_unlock (&self->lock);
  while ((op = g_queue_pop_head (&ops)) != NULL)
    if (!run_op (self, op))
      op_free (op);
  return G_SOURCE_REMOVE;
}

static void
push_op (HeraldRedisClusterEngine *self, Op *op)
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

/* ---- subscriptions (main thread) ---- */

/* ---- subscriptions (herald-redis-cluster-subs.c) ---- */

static void
channel_ref (HeraldRedisClusterEngine *self, const char *channel, int delta)
{
  g_autofree char *name = herald_rck_channel_key (channel, "");
  Topic *t;

  g_mutex_lock (&self->lock);
  t = herald_rce_topic_get_locked (self, name);
  if (delta > 0)
    t->refs++;
  else if (t->refs > 0)
    t->refs--;
  g_mutex_unlock (&self->lock);
  push_op (self, op_new (OP_RECONCILE, name, NULL));
}

/* ---- registration with the masters (main thread) ---- */

static void
command (HeraldRedisClusterEngine *self, const char *key, int argc, const char **argv)
{
  herald_redis_cluster_pool_command (self->pool, herald_rck_slot (key), argc, argv, NULL, NULL,
                                     NULL);
}

/* This node's list of channels (herald:pn:{N}, idempotent). */
static void
send_channel_list (HeraldRedisClusterEngine *self)
{
  g_autoptr (GPtrArray) channels = g_ptr_array_new ();
  GHashTableIter iter;
  gpointer key;

  g_hash_table_iter_init (&iter, self->registered);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    g_ptr_array_add (channels, key);
  herald_rck_send_channel_list (self->pool, self->node_id, "SADD", channels);
}

/* This node's share of presence for the channels whose slots @addr holds
 * (NULL: all) replaced by its table; the shares of channels it no longer
 * has are taken back. */
static void
send_presence (HeraldRedisClusterEngine *self, const char *addr)
{
  g_autoptr (GHashTable) by_channel = NULL;
  g_autoptr (GPtrArray) gone = g_ptr_array_new_with_free_func (g_free);
  GHashTableIter iter;
  gpointer key, value;
  guint64 gen;

  g_mutex_lock (&self->lock);
  by_channel = herald_rck_group_presence (self->presence);
  gen = self->presence_gen;
  g_mutex_unlock (&self->lock);
  if (addr != NULL)
    g_hash_table_replace (self->snapshot_gen, g_strdup (addr), g_memdup2 (&gen, sizeof gen));

  g_hash_table_iter_init (&iter, by_channel);
  while (g_hash_table_iter_next (&iter, &key, &value))
    g_hash_table_add (self->registered, g_strdup (key));
  g_hash_table_iter_init (&iter, self->registered);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    {
      g_autofree char *topic = herald_rck_channel_key (key, "");
      g_autofree char *owner
          = herald_redis_cluster_pool_dup_owner (self->pool, herald_rck_slot (topic));
      GPtrArray *pairs = g_hash_table_lookup (by_channel, key);

      if (addr != NULL && g_strcmp0 (owner, addr) != 0)
        continue;
      if (addr == NULL && owner != NULL)
        g_hash_table_replace (self->snapshot_gen, g_strdup (owner), g_memdup2 (&gen, sizeof gen));
      if (herald_rck_send_presence (self->pool, self->node_id, key, pairs) && pairs == NULL)
        g_ptr_array_add (gone, g_strdup (key));
    }
  for (guint i = 0; i < gone->len; i++)
    g_hash_table_remove (self->registered, gone->pdata[i]);
  send_channel_list (self);
}

/* The reap script's answer: {was this node taken for dead, {dead nodes}}.
 * @privdata is not a reference: a real answer means the pool, hence the
 * engine, is alive; NULL (lost, or the pool freed in dispose) is ignored. */
static void
on_reaped (redisReply *reply, gpointer privdata)
{
  HeraldRedisClusterEngine *self = privdata;

  if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2
      || reply->element[1]->type != REDIS_REPLY_ARRAY)
    return;
  /* Silent too long (the others may have reaped it): all again, and once
   * more at the next heartbeat, after any reaping still under way. */
  if (herald_redis_reply_u64 (reply->element[0]) == 1 || self->reregister)
    {
      self->reregister = herald_redis_reply_u64 (reply->element[0]) == 1;
      send_presence (self, NULL);
    }
  herald_rck_reap_nodes (self->pool, self->node_id, reply->element[1]);
}

static void
send_reap (HeraldRedisClusterEngine *self)
{
  g_autofree char *dead = g_strdup_printf ("%d", HERALD_RCK_NODE_DEAD_S);
  const char *argv[] = { "EVALSHA",
                         herald_rck_sha (HERALD_RCK_PRESENCE_REAP),
                         "1",
                         HERALD_RCK_NODES_KEY,
                         self->node_id,
                         dead,
                         "4" };

  herald_redis_cluster_pool_command (self->pool, herald_rck_slot (HERALD_RCK_NODES_KEY),
                                     G_N_ELEMENTS (argv), argv, NULL, on_reaped, self);
}

/* This node's liveness and its connections, where @addr (NULL: any
 * master) holds their slots. */
static void
send_registration (HeraldRedisClusterEngine *self, const char *addr, gboolean connections)
{
  g_autoptr (GPtrArray) ids = g_ptr_array_new_with_free_func (g_free);
  GHashTableIter iter;
  gpointer key;

  g_mutex_lock (&self->lock);
  g_hash_table_iter_init (&iter, self->local_conns);
  while (connections && g_hash_table_iter_next (&iter, &key, NULL))
    g_ptr_array_add (ids, g_strdup (key));
  g_mutex_unlock (&self->lock);
  herald_rck_send_registration (self->pool, self->node_id, ids, addr);
}

/* Channels this node has no presence on any more: their (empty) shares
 * taken back and off its list, so that neither grows with every channel it
 * ever had. Ordered before any later join of the channel (same wires). */
static void
prune_registered (HeraldRedisClusterEngine *self)
{
  g_autoptr (GPtrArray) gone = g_ptr_array_new_with_free_func (g_free);
  GHashTableIter iter;
  gpointer key;

  g_mutex_lock (&self->lock);
  g_hash_table_iter_init (&iter, self->registered);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    if (!g_hash_table_contains (self->channel_counts, key))
      g_ptr_array_add (gone, g_strdup (key));
  g_mutex_unlock (&self->lock);
  for (guint i = 0; i < gone->len;)
    if (herald_rck_send_presence (self->pool, self->node_id, gone->pdata[i], NULL))
      g_hash_table_remove (self->registered, gone->pdata[i++]);
    else
      g_ptr_array_remove_index_fast (gone, i);
  herald_rck_send_channel_list (self->pool, self->node_id, "SREM", gone);
}

static gboolean
on_heartbeat (gpointer user_data)
{
  HeraldRedisClusterEngine *self = user_data;

  send_registration (self, NULL, FALSE);
  send_reap (self);
  prune_registered (self);
  return G_SOURCE_CONTINUE;
}

static void
on_node_ready (gpointer owner, const char *addr)
{
  HeraldRedisClusterEngine *self = owner;

  g_message (_ ("Redis Cluster master %s connected (node %s)"), addr, self->node_id);
  herald_metrics_count_redis_event (HERALD_REDIS_EVENT_CONNECTED);
  send_registration (self, addr, TRUE);
  send_presence (self, addr);
  send_reap (self); /* on the nodes' list before a first heartbeat */
  herald_rcu_register (self, addr);
  herald_rce_reconcile_all (self);
}

static void
on_map_changed (gpointer owner)
{
  HeraldRedisClusterEngine *self = owner;

  /* Registrations follow the slots to their new masters. */
  send_registration (self, NULL, TRUE);
  send_presence (self, NULL);
  herald_rcu_register (self, NULL);
  herald_rce_reconcile_all (self);
}

static const HeraldRedisClusterPoolEvents pool_events = {
  .node_ready = on_node_ready,
  .node_down = herald_rce_on_node_down,
  .map_changed = on_map_changed,
  .push = herald_rce_on_push,
};

/* ---- operations (main thread) ---- */

/* The channel's master is unreachable: this node's subscribers still get
 * the message, which is not stored: its offset is null (0), never invented. */
static void
publish_locally (HeraldRedisClusterEngine *self, Op *op)
{
  g_autofree char *name = herald_rck_channel_key (op->a, "");
  g_autoptr (HeraldMessage) message = NULL;
  g_autofree char *epoch = NULL;
  Topic *t;

  g_mutex_lock (&self->lock);
  t = g_hash_table_lookup (self->topics, name);
  epoch = g_strdup (t && t->epoch ? t->epoch : self->local_epoch);
  g_mutex_unlock (&self->lock);
  herald_metrics_count_redis_event (HERALD_REDIS_EVENT_PUBLISH_UNSTORED);
  if (t)
    {
      message = herald_redis_payload_body_message (op->a, 0, 0, epoch, op->b);
      deliver (self, &(HeraldDelivery){ .kind = HERALD_TARGET_CHANNEL, .message = message });
    }
  g_task_return_int (op->task, 0);
}

/* Errors that mean "not served here now": the message is still delivered
 * on this node. Others (a script error, OOM) go back to the publisher. */
static gboolean
is_unavailable (const char *error)
{
  static const char *const kinds[]
      = { "CLUSTERDOWN", "TRYAGAIN", "MOVED", "ASK", "MASTERDOWN", "LOADING", "READONLY", NULL };

  for (guint i = 0; kinds[i] != NULL; i++)
    if (g_str_has_prefix (error, kinds[i]))
      return TRUE;
  return FALSE;
}

static void
on_published (redisReply *reply, gpointer privdata)
{
  Op *op = privdata;
  HeraldRedisClusterEngine *self = op->owner;
  gboolean disposed;

  g_mutex_lock (&self->lock);
  disposed = self->disposed;
  g_mutex_unlock (&self->lock);
  if (reply != NULL && reply->type == REDIS_REPLY_INTEGER)
    g_task_return_int (op->task, (gssize)reply->integer);
  else if (disposed)
    g_task_return_new_error (op->task, HERALD_ERROR, HERALD_ERROR_UNAVAILABLE, _ ("shutting down"));
  else if (reply != NULL && (reply->type != REDIS_REPLY_ERROR || !is_unavailable (reply->str)))
    g_task_return_new_error (op->task, HERALD_ERROR, HERALD_ERROR_UNAVAILABLE, _ ("Redis: %s"),
                             reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply");
  else
    {
      /* Its master went away before it answered: local delivery goes on. */
      g_debug ("redis cluster: publish on %s: %s", op->a, reply ? reply->str : "connection lost");
      publish_locally (self, op);
    }
  op_free (op);
}

/* @op is taken when it was sent (FALSE: handled here, the caller frees it). */
static gboolean
run_publish (HeraldRedisClusterEngine *self, Op *op)
{
  const HeraldNamespace *ns
      = herald_config_namespace_for (herald_engine_get_config (HERALD_ENGINE (self)), op->a);

  op->owner = g_object_ref (self);
  if (herald_rck_publish (self->pool, op->a, op->b, ns->history_size, ns->history_ttl, on_published,
                          op))
    return TRUE; /* the reply completes and frees it */
  g_clear_object (&op->owner);
  publish_locally (self, op);
  return FALSE;
}

static void
run_presence (HeraldRedisClusterEngine *self, Op *op)
{
  g_autofree char *topic = herald_rck_channel_key (op->a, "");
  g_autofree char *owner
      = herald_redis_cluster_pool_dup_owner (self->pool, herald_rck_slot (topic));
  const guint64 *snap = owner ? g_hash_table_lookup (self->snapshot_gen, owner) : NULL;

  /* A change from before the master's registration is in that snapshot. */
  if (snap != NULL && op->gen <= *snap)
    return;
  herald_rck_update_presence (self->pool, self->node_id, op->a, op->b, op->delta);
  if (op->delta > 0 && !g_hash_table_contains (self->registered, op->a))
    {
      g_autoptr (GPtrArray) one = g_ptr_array_new ();

      /* On the node's list before it can die with a share here */
      g_hash_table_add (self->registered, g_strdup (op->a));
      g_ptr_array_add (one, op->a);
      herald_rck_send_channel_list (self->pool, self->node_id, "SADD", one);
    }
}

/* TRUE when @op was taken (a publish waiting for its answer). */
static gboolean
run_op (HeraldRedisClusterEngine *self, Op *op)
{
  switch (op->type)
    {
    case OP_PUBLISH:
      return run_publish (self, op);
    case OP_RECONCILE:
      herald_rce_reconcile (self, op->a);
      break;
    case OP_SEND:
      {
        const char *argv[] = { "SPUBLISH", op->a, op->b };
        command (self, op->a, 3, argv);
      }
      break;
    case OP_CONN_OPEN:
      {
        g_autofree char *k = herald_rck_conn_key (op->a);
        const char *argv[] = { "SET", k, self->node_id };
        command (self, k, 3, argv);
      }
      break;
    case OP_CONN_CLOSE:
      {
        g_autofree char *k = herald_rck_conn_key (op->a);
        const char *argv[] = { "DEL", k };
        command (self, k, 2, argv);
      }
      break;
    case OP_USERS:
      herald_rcu_send (self, op->a);
      break;
    case OP_PRESENCE:
      run_presence (self, op);
      break;
    }
  return FALSE;
}

/* ---- questions to the cluster (any thread) ---- */

/* ---- HeraldEngine ---- */

static const char *
cluster_get_name (HeraldEngine *engine)
{
  return "redis";
}

static char *
cluster_dup_state (HeraldEngine *engine)
{
  return herald_redis_cluster_pool_dup_state (HERALD_REDIS_CLUSTER_ENGINE (engine)->pool);
}

static void
cluster_publish_async (HeraldEngine *engine, const char *channel, const char *key,
                       const char *data_json, GCancellable *cancellable,
                       GAsyncReadyCallback callback, gpointer user_data)
{
  HeraldRedisClusterEngine *self = HERALD_REDIS_CLUSTER_ENGINE (engine);
  Op *op = op_new (OP_PUBLISH, channel, NULL);

  op->task = g_task_new (self, cancellable, callback, user_data);
  op->b = herald_redis_payload_body (key, data_json);
  g_task_set_source_tag (op->task, cluster_publish_async);
  push_op (self, op);
}

/* A join/leave event: here at once; the other nodes with subscribers hear
 * it on the channel's shard topic (and skip what comes from this node). */
static void
cluster_announce (HeraldEngine *engine, HeraldMessage *event)
{
  HeraldRedisClusterEngine *self = HERALD_REDIS_CLUSTER_ENGINE (engine);
  const char *channel = herald_message_get_channel (event);
  Op *op = op_new (OP_SEND, NULL, NULL);

  deliver (self, &(HeraldDelivery){
                     .kind = HERALD_TARGET_JOIN_LEAVE, .target = channel, .message = event });
  op->a = herald_rck_channel_key (channel, "");
  op->b = herald_redis_payload_format_event (self->node_id, event);
  push_op (self, op);
}

static guint
cluster_send (HeraldEngine *engine, HeraldTargetKind kind, const char *target,
              const char *data_json)
{
  HeraldRedisClusterEngine *self = HERALD_REDIS_CLUSTER_ENGINE (engine);
  g_autoptr (HeraldMessage) message = herald_message_new_direct (data_json);
  guint reached;

  reached = deliver (self, &(HeraldDelivery){ .kind = kind, .target = target, .message = message });
  switch (kind)
    {
    case HERALD_TARGET_ALL:
    case HERALD_TARGET_USER:
    case HERALD_TARGET_USER_SUBSCRIPTION:
      {
        Op *op = op_new (OP_SEND, HERALD_RCK_DIRECT_TOPIC, NULL);
        op->b = herald_redis_direct_format (kind, self->node_id, target, data_json);
        push_op (self, op);
      }
      return reached;
    case HERALD_TARGET_CONNECTION:
      if (reached == 0)
        {
          g_autofree char *p = herald_redis_direct_format (kind, self->node_id, target, data_json);
          reached = herald_rck_ask_route (self->sync, self->node_id, target, p);
        }
      return reached;
    default:
      return reached;
    }
}

static void
cluster_close_connection (HeraldEngine *engine, const char *id, guint16 code, const char *reason)
{
  HeraldRedisClusterEngine *self = HERALD_REDIS_CLUSTER_ENGINE (engine);
  g_autofree char *payload = NULL;

  if (deliver (self, &(HeraldDelivery){ .kind = HERALD_TARGET_CLOSE,
                                        .target = id,
                                        .close_code = code,
                                        .close_reason = reason })
      > 0)
    return;
  payload = herald_redis_direct_format_close (id, code, reason);
  herald_rck_ask_route (self->sync, self->node_id, id, payload);
}

static gboolean
cluster_has_connection (HeraldEngine *engine, const char *id)
{
  HeraldRedisClusterEngine *self = HERALD_REDIS_CLUSTER_ENGINE (engine);

  return herald_rck_ask_route (self->sync, self->node_id, id, "") > 0;
}

static void
cluster_connection_opened (HeraldEngine *engine, const char *id, const char *user_id)
{
  HeraldRedisClusterEngine *self = HERALD_REDIS_CLUSTER_ENGINE (engine);

  g_mutex_lock (&self->lock);
  g_hash_table_replace (self->local_conns, g_strdup (id), g_strdup (user_id));
  if (user_id != NULL && *user_id != '\0')
    herald_rcu_adjust_locked (self, user_id, +1);
  g_mutex_unlock (&self->lock);
  push_op (self, op_new (OP_CONN_OPEN, id, NULL));
  if (user_id != NULL && *user_id != '\0')
    push_op (self, op_new (OP_USERS, user_id, NULL));
}

static void
cluster_connection_closed (HeraldEngine *engine, const char *id)
{
  HeraldRedisClusterEngine *self = HERALD_REDIS_CLUSTER_ENGINE (engine);

  g_autofree char *key = NULL, *user_id = NULL;

  g_mutex_lock (&self->lock);
  g_hash_table_steal_extended (self->local_conns, id, (gpointer *)&key, (gpointer *)&user_id);
  if (user_id != NULL && *user_id != '\0')
    herald_rcu_adjust_locked (self, user_id, -1);
  g_mutex_unlock (&self->lock);
  push_op (self, op_new (OP_CONN_CLOSE, id, NULL));
  if (user_id != NULL && *user_id != '\0')
    push_op (self, op_new (OP_USERS, user_id, NULL));
}

static void
cluster_channel_occupied (HeraldEngine *engine, const char *channel)
{
  channel_ref (HERALD_REDIS_CLUSTER_ENGINE (engine), channel, +1);
}

static void
cluster_channel_vacated (HeraldEngine *engine, const char *channel)
{
  channel_ref (HERALD_REDIS_CLUSTER_ENGINE (engine), channel, -1);
}

/* This node's table of presence gives its first/last connection of a user
 * (or counts anonymous ones, @user_id NULL); the cluster-wide join/leave
 * events come back on the channel's shard channel (or, while its master is
 * down, are delivered locally). */
static gboolean
presence_adjust (HeraldRedisClusterEngine *self, const char *channel, const char *user_id,
                 int delta)
{
  g_autofree char *key = user_id ? g_strconcat (channel, "\n", user_id, NULL) : g_strdup (channel);
  g_autofree char *topic = herald_rck_channel_key (channel, "");
  gboolean changed, up = slot_up (self, herald_rck_slot (topic));
  Op *op = op_new (OP_PRESENCE, channel, user_id);
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
  {
    guint total = GPOINTER_TO_UINT (g_hash_table_lookup (self->channel_counts, channel)) + delta;

    if (total == 0)
      g_hash_table_remove (self->channel_counts, channel);
    else
      g_hash_table_insert (self->channel_counts, g_strdup (channel), GUINT_TO_POINTER (total));
  }
  op->delta = delta;
  op->gen = ++self->presence_gen;
  if (changed && !up && user_id != NULL)
    {
      g_autoptr (HeraldMessage) event = herald_message_new_presence (channel, user_id, delta > 0);
      deliver (self, &(HeraldDelivery){
                         .kind = HERALD_TARGET_PRESENCE, .target = channel, .message = event });
    }
  g_mutex_unlock (&self->lock);
  push_op (self, op);
  return changed;
}

static gboolean
cluster_presence_join (HeraldEngine *engine, const char *channel, const char *user_id)
{
  return presence_adjust (HERALD_REDIS_CLUSTER_ENGINE (engine), channel, user_id, +1);
}

static gboolean
cluster_presence_leave (HeraldEngine *engine, const char *channel, const char *user_id)
{
  return presence_adjust (HERALD_REDIS_CLUSTER_ENGINE (engine), channel, user_id, -1);
}

static void
cluster_presence_anonymous (HeraldEngine *engine, const char *channel, int delta)
{
  presence_adjust (HERALD_REDIS_CLUSTER_ENGINE (engine), channel, NULL, delta);
}

/* Counters kept as members come and go (herald-redis-cluster-keys.h):
 * the counts in constant time, a page in O(log N + limit). */
static char **
cluster_query_presence (HeraldEngine *engine, const char *channel, const char *after, guint limit,
                        guint *users, guint *connections, gboolean *more, GError **error)
{
  HeraldRedisClusterEngine *self = HERALD_REDIS_CLUSTER_ENGINE (engine);

  return herald_rck_ask_presence (self->sync, channel, after, limit, users, connections, more,
                                  error);
}

/* Before a history snapshot, this node must already hear the channel live
 * (herald-redis-engine.c explains why): keep it subscribed a second and
 * wait, bounded, for its master to confirm. */
static gboolean
pin_and_wait (HeraldRedisClusterEngine *self, const char *channel)
{
  g_autofree char *name = herald_rck_channel_key (channel, "");
  gint64 deadline = g_get_monotonic_time () + SUBSCRIBE_WAIT_MS * 1000;
  guint slot = herald_rck_slot (name);
  gboolean ok = FALSE;

  herald_redis_pin_channel (G_OBJECT (self), self->context, channel, PIN_MS,
                            (HeraldRedisChannelRefFunc)channel_ref);

  g_mutex_lock (&self->lock);
  while (!self->disposed)
    {
      Topic *t = g_hash_table_lookup (self->topics, name);

      if (t && t->state == SUB_SUBSCRIBED)
        {
          ok = TRUE;
          break;
        }
      g_mutex_unlock (&self->lock);
      if (!slot_up (self, slot))
        return FALSE;
      g_mutex_lock (&self->lock);
      if (!g_cond_wait_until (&self->cond, &self->lock,
                              MIN (deadline, g_get_monotonic_time () + 100 * 1000))
          && g_get_monotonic_time () >= deadline)
        break;
    }
  g_mutex_unlock (&self->lock);
  return ok;
}

static void
remember_position (HeraldRedisClusterEngine *self, const char *channel, const char *epoch,
                   guint64 offset)
{
  g_autofree char *name = herald_rck_channel_key (channel, "");
  Topic *t;

  g_mutex_lock (&self->lock);
  t = g_hash_table_lookup (self->topics, name);
  if (t)
    {
      if (g_strcmp0 (t->epoch, epoch) != 0)
        {
          g_free (t->epoch);
          t->epoch = g_strdup (epoch);
          t->last_offset = offset;
        }
      t->last_offset = MAX (t->last_offset, offset);
      t->primed = t->state == SUB_SUBSCRIBED;
    }
  g_mutex_unlock (&self->lock);
}

/* What this node knows of @channel without asking (its master is down). */
static void
local_position (HeraldRedisClusterEngine *self, const char *channel, guint64 *offset, char **epoch)
{
  g_autofree char *name = herald_rck_channel_key (channel, "");
  Topic *t;

  g_mutex_lock (&self->lock);
  t = g_hash_table_lookup (self->topics, name);
  *offset = t ? t->last_offset : 0;
  *epoch = g_strdup (t && t->epoch ? t->epoch : self->local_epoch);
  g_mutex_unlock (&self->lock);
}

static HeraldRecovery *
cluster_recover (HeraldEngine *engine, const char *channel, guint64 since, const char *epoch)
{
  HeraldRedisClusterEngine *self = HERALD_REDIS_CLUSTER_ENGINE (engine);
  guint ttl = herald_config_namespace_for (herald_engine_get_config (HERALD_ENGINE (self)), channel)
                  ->history_ttl;
  g_autofree char *current = NULL;
  HeraldRecovery *r = herald_recovery_new (NULL);
  guint64 top = 0;

  if (pin_and_wait (self, channel)
      && herald_rck_ask_recover (self->sync, channel, since, epoch, ttl, r))
    {
      remember_position (self, channel, r->epoch, r->top_offset);
      return r;
    }
  /* Degraded: nothing can be recovered; live delivery still works. */
  local_position (self, channel, &top, &current);
  g_free (r->epoch);
  r->epoch = g_steal_pointer (&current);
  r->top_offset = top;
  return r;
}

/* SSE ids carry one position: a channel's offset. A stream of one channel
 * resumes exactly; one of several cannot and is told so. */
static HeraldRecovery *
cluster_recover_stream (HeraldEngine *engine, const char *const *channels, const char *epoch,
                        guint64 since_seq)
{
  HeraldRedisClusterEngine *self = HERALD_REDIS_CLUSTER_ENGINE (engine);

  if (channels != NULL && channels[0] != NULL && channels[1] == NULL)
    return cluster_recover (engine, channels[0], since_seq, epoch != NULL ? epoch : "-");
  return herald_recovery_new (self->local_epoch);
}

static void
cluster_get_position (HeraldEngine *engine, const char *channel, guint64 *offset, char **epoch)
{
  HeraldRedisClusterEngine *self = HERALD_REDIS_CLUSTER_ENGINE (engine);
  g_autofree char *name = herald_rck_channel_key (channel, "");
  g_autofree char *read_epoch = NULL;
  guint64 top = 0;
  Topic *t;

  g_mutex_lock (&self->lock);
  t = g_hash_table_lookup (self->topics, name);
  if (t && t->state == SUB_SUBSCRIBED && t->primed && t->epoch)
    {
      if (offset)
        *offset = t->last_offset;
      if (epoch)
        *epoch = g_strdup (t->epoch);
      g_mutex_unlock (&self->lock);
      return;
    }
  g_mutex_unlock (&self->lock);

  if (pin_and_wait (self, channel)
      && herald_rck_ask_position (self->sync, channel, &read_epoch, &top))
    remember_position (self, channel, read_epoch, top);
  g_clear_pointer (&read_epoch, g_free);
  local_position (self, channel, &top, &read_epoch);
  if (offset)
    *offset = top;
  if (epoch)
    *epoch = g_steal_pointer (&read_epoch);
}

/* A one-channel stream starts at the channel's position (its SSE ids are
 * the channel's offsets); one of several has none. */
static gboolean
cluster_get_stream_position_of (HeraldEngine *engine, const char *const *channels, guint64 *seq,
                                char **epoch)
{
  if (channels == NULL || channels[0] == NULL || channels[1] != NULL)
    return FALSE;
  cluster_get_position (engine, channels[0], seq, epoch);
  return TRUE;
}

static char *
cluster_dup_epoch (HeraldEngine *engine)
{
  return g_strdup (HERALD_REDIS_CLUSTER_ENGINE (engine)->local_epoch);
}

static gint64
cluster_count_channels (HeraldEngine *engine)
{
  HeraldRedisClusterEngine *self = HERALD_REDIS_CLUSTER_ENGINE (engine);
  GHashTableIter iter;
  Topic *t;
  gint64 n = 0;

  g_mutex_lock (&self->lock);
  g_hash_table_iter_init (&iter, self->topics);
  while (g_hash_table_iter_next (&iter, NULL, (gpointer *)&t))
    n += t->fixed ? 0 : 1;
  g_mutex_unlock (&self->lock);
  return n;
}

static void
cluster_append_metrics (HeraldEngine *engine, GString *out)
{
  HeraldRedisClusterEngine *self = HERALD_REDIS_CLUSTER_ENGINE (engine);

  herald_redis_cluster_pool_append_metrics (self->pool, out);
  herald_metrics_append_single (
      out, "herald_redis_cluster_caught_up_total", "counter",
      "Messages delivered from history after a channel moved or failed over.",
      (guint64)g_atomic_int_get (&self->caught_up));
  herald_metrics_append_single (
      out, "herald_redis_cluster_epoch_resets_total", "counter",
      "Channels given a new epoch because their new master lacked messages.",
      (guint64)g_atomic_int_get (&self->epoch_resets));
}

/* ---- GObject ---- */

static void
herald_redis_cluster_engine_dispose (GObject *object)
{
  HeraldRedisClusterEngine *self = HERALD_REDIS_CLUSTER_ENGINE (object);
  Op *op;

  g_mutex_lock (&self->lock);
  self->disposed = TRUE;
  g_cond_broadcast (&self->cond);
  g_mutex_unlock (&self->lock);
  herald_redis_source_clear (&self->heartbeat_source);
  g_clear_pointer (&self->sync, herald_redis_cluster_sync_free);
  g_clear_pointer (&self->pool, herald_redis_cluster_pool_free);
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
  G_OBJECT_CLASS (herald_redis_cluster_engine_parent_class)->dispose (object);
}

static void
herald_redis_cluster_engine_finalize (GObject *object)
{
  HeraldRedisClusterEngine *self = HERALD_REDIS_CLUSTER_ENGINE (object);

  g_strfreev (self->seeds);
  g_free (self->node_id);
  g_free (self->local_epoch);
  g_hash_table_unref (self->topics);
  g_hash_table_unref (self->local_conns);
  g_hash_table_unref (self->users);
  g_hash_table_unref (self->presence);
  g_hash_table_unref (self->snapshot_gen);
  g_hash_table_unref (self->registered);
  g_hash_table_unref (self->channel_counts);
  g_main_context_unref (self->context);
  g_mutex_clear (&self->lock);
  g_cond_clear (&self->cond);
  G_OBJECT_CLASS (herald_redis_cluster_engine_parent_class)->finalize (object);
}

static void
herald_redis_cluster_engine_class_init (HeraldRedisClusterEngineClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  HeraldEngineClass *engine_class = HERALD_ENGINE_CLASS (klass);

  object_class->dispose = herald_redis_cluster_engine_dispose;
  object_class->finalize = herald_redis_cluster_engine_finalize;
  engine_class->get_name = cluster_get_name;
  engine_class->dup_state = cluster_dup_state;
  engine_class->publish_async = cluster_publish_async;
  engine_class->announce = cluster_announce;
  engine_class->send = cluster_send;
  engine_class->close_connection = cluster_close_connection;
  engine_class->recover = cluster_recover;
  engine_class->recover_stream = cluster_recover_stream;
  engine_class->dup_epoch = cluster_dup_epoch;
  engine_class->get_position = cluster_get_position;
  engine_class->get_stream_position_of = cluster_get_stream_position_of;
  engine_class->presence_join = cluster_presence_join;
  engine_class->presence_leave = cluster_presence_leave;
  engine_class->query_presence = cluster_query_presence;
  engine_class->presence_anonymous = cluster_presence_anonymous;
  engine_class->channel_occupied = cluster_channel_occupied;
  engine_class->channel_vacated = cluster_channel_vacated;
  engine_class->connection_opened = cluster_connection_opened;
  engine_class->connection_closed = cluster_connection_closed;
  engine_class->has_connection = cluster_has_connection;
  engine_class->count_user_connections = herald_rcu_count;
  engine_class->count_channels = cluster_count_channels;
  engine_class->append_metrics = cluster_append_metrics;
}

static void
herald_redis_cluster_engine_init (HeraldRedisClusterEngine *self)
{
  g_mutex_init (&self->lock);
  g_cond_init (&self->cond);
  self->topics = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, herald_rce_topic_free);
  self->local_conns = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  self->users = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  self->presence = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  self->snapshot_gen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  self->registered = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  self->channel_counts = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  self->context = g_main_context_ref_thread_default ();
  self->local_epoch = herald_engine_new_epoch ();
}

/**
 * herald_redis_cluster_engine_new:
 * @config: the configuration (history, [redis] password)
 * @seeds: HOST:PORT of cluster nodes, at least one
 *
 * Returns: (transfer full): the engine, not yet connected, or %NULL when a
 *   seed is malformed
 */
HeraldEngine *
herald_redis_cluster_engine_new (HeraldConfig *config, const char *const *seeds, GError **error)
{
  HeraldRedisClusterEngine *self;

  g_return_val_if_fail (seeds != NULL, NULL);
  if (seeds[0] == NULL)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, _ ("no seed given"));
      return NULL;
    }
  for (gsize i = 0; seeds[i] != NULL; i++)
    if (!herald_redis_split_addr (seeds[i], NULL, NULL))
      {
        g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, _ ("“%s” is not HOST:PORT"),
                     seeds[i]);
        return NULL;
      }
  self = g_object_new (HERALD_TYPE_REDIS_CLUSTER_ENGINE, "config", config, NULL);
  self->seeds = g_strdupv ((char **)seeds);
  self->pool
      = herald_redis_cluster_pool_new (seeds, herald_config_get_redis_password (config),
                                       herald_rck_scripts (), self->context, &pool_events, self);
  self->sync
      = herald_redis_cluster_sync_new (self->pool, herald_config_get_redis_password (config));
  return HERALD_ENGINE (self);
}

/**
 * herald_redis_cluster_engine_start:
 * @node_id: this node's id (the hub's)
 *
 * Starts reading the slot map and connecting; until the masters answer,
 * the engine is degraded.
 */
void
herald_redis_cluster_engine_start (HeraldRedisClusterEngine *self, const char *node_id)
{
  const char *fixed[2] = { HERALD_RCK_DIRECT_TOPIC, NULL };
  g_autofree char *node_topic = NULL;

  g_return_if_fail (HERALD_IS_REDIS_CLUSTER_ENGINE (self) && self->node_id == NULL);
  self->node_id = g_strdup (node_id);
  node_topic = herald_rck_node_key (node_id);
  fixed[1] = node_topic;
  g_mutex_lock (&self->lock);
  for (guint i = 0; i < G_N_ELEMENTS (fixed); i++)
    herald_rce_topic_get_locked (self, fixed[i])->fixed = TRUE;
  g_mutex_unlock (&self->lock);
  self->heartbeat_source = g_timeout_source_new_seconds (HERALD_RCK_HEARTBEAT_S);
  g_source_set_callback (self->heartbeat_source, on_heartbeat, self, NULL);
  g_source_attach (self->heartbeat_source, self->context);
  {
    g_autofree char *name = g_strconcat ("herald-", node_id, NULL);

    herald_redis_cluster_pool_set_client_name (self->pool, name);
  }
  herald_redis_cluster_pool_start (self->pool);
}
