/* herald-redis-cluster-pool.c: a Redis Cluster's masters, their wires and the slot map.
 *
 * Nodes are never removed (a node that stops being a master is only
 * disconnected), so an index into `nodes` stays valid for other threads,
 * which read the map under `lock`.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>
#include <glib/gi18n.h>

#include "herald-metrics.h"
#include "herald-redis-cluster-pool.h"
#include "herald-redis-slots.h"
#include "herald-redis-source.h"

#define NO_NODE 0xffff
#define TICK_MS 250
#define REFRESH_OK_MS 5000   /* map re-read this often anyway */
#define REFRESH_DOWN_MS 1000 /* … and this often while a master is down */
#define REFRESH_MIN_MS 200
#define COMMAND_TIMEOUT_MS 3000
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 2000
#define MAX_REDIRECTS 5
#define PING_MS 1000 /* an idle master is pinged: a hung one times out */

typedef struct
{
  HeraldRedisClusterPool *pool;
  guint index;
  char *addr, *host;
  int port;
  HeraldRedisWire *cmd, *sub;
  gboolean master;    /* in the current map */
  gboolean announced; /* node_ready was sent since the last loss */
  gboolean up;        /* both wires ready (read under lock by other threads) */
  char *why;          /* last failure */
  guint slots;        /* how many slots the map gives it */
  guint backoff_ms;
  GSource *retry_source;
  gint64 last_ping;
} Node;

struct _HeraldRedisClusterPool
{
  GMainContext *context;
  char **seeds;
  char *password;
  char **scripts;
  char **shas;       /* of the scripts, for a NOSCRIPT answer */
  char *client_name; /* CLIENT SETNAME <name>-cmd / -sub, or NULL */
  HeraldRedisClusterPoolEvents events;
  gpointer owner;
  gboolean closing;

  GMutex lock; /* guards nodes (growth), owner_of, up flags, state */
  GPtrArray *nodes;
  guint16 owner_of[HERALD_REDIS_SLOTS];
  gboolean map_known;
  char *state;
  gint refresh_wanted; /* atomic */
  /* atomic counters, for /metrics */
  gint moved, asked, map_changes, losses;

  GSource *tick_source;
  gboolean refreshing;
  gint64 last_refresh;
  guint probe_cursor;
  HeraldRedisWire *probe, *old_probe;
  char *asked_host; /* where the map being read comes from */
};

static void node_connect (Node *node);
static void refresh_start (HeraldRedisClusterPool *pool);

/* ---- state (main context) ---- */

static void
update_state (HeraldRedisClusterPool *pool)
{
  g_autoptr (GString) out = g_string_new (NULL);

  g_mutex_lock (&pool->lock);
  if (!pool->map_known)
    {
      g_autofree char *seeds = g_strjoinv (", ", pool->seeds);
      g_string_append_printf (out, "no cluster map yet (seeds %s)", seeds);
    }
  for (guint i = 0; pool->map_known && i < pool->nodes->len; i++)
    {
      Node *node = pool->nodes->pdata[i];

      if (node->master && !node->up)
        g_string_append_printf (out, "%smaster %s (%u slots) down: %s", out->len ? "; " : "",
                                node->addr, node->slots, node->why ? node->why : "connecting");
    }
  for (guint s = 0; pool->map_known && s < HERALD_REDIS_SLOTS; s++)
    if (pool->owner_of[s] == NO_NODE)
      {
        g_string_append_printf (out, "%sslot %u has no master", out->len ? "; " : "", s);
        break;
      }
  g_free (pool->state);
  pool->state = out->len ? g_strdup_printf ("degraded: %s", out->str) : g_strdup ("ok");
  g_mutex_unlock (&pool->lock);
}

/* ---- nodes ---- */

static Node *
node_find (HeraldRedisClusterPool *pool, const char *addr)
{
  for (guint i = 0; i < pool->nodes->len; i++)
    if (g_str_equal (((Node *)pool->nodes->pdata[i])->addr, addr))
      return pool->nodes->pdata[i];
  return NULL;
}

static Node *
node_get (HeraldRedisClusterPool *pool, const char *addr)
{
  Node *node = node_find (pool, addr);

  if (node != NULL || pool->nodes->len >= NO_NODE)
    return node;
  node = g_new0 (Node, 1);
  if (!herald_redis_split_addr (addr, &node->host, &node->port))
    {
      g_free (node);
      return NULL;
    }
  node->pool = pool;
  node->addr = g_strdup (addr);
  g_mutex_lock (&pool->lock);
  node->index = pool->nodes->len;
  g_ptr_array_add (pool->nodes, node);
  g_mutex_unlock (&pool->lock);
  return node;
}

static void
node_set_up (Node *node, gboolean up)
{
  g_mutex_lock (&node->pool->lock);
  node->up = up;
  g_mutex_unlock (&node->pool->lock);
}

static void
node_close (Node *node)
{
  g_clear_pointer (&node->cmd, herald_redis_wire_free);
  g_clear_pointer (&node->sub, herald_redis_wire_free);
  herald_redis_source_clear (&node->retry_source);
  node->announced = FALSE;
  node_set_up (node, FALSE);
}

static void
on_wire_ready (HeraldRedisWire *wire, gpointer owner)
{
  Node *node = owner;
  HeraldRedisClusterPool *pool = node->pool;

  if (!herald_redis_wire_is_ready (node->cmd) || !herald_redis_wire_is_ready (node->sub)
      || node->announced)
    return;
  node->announced = TRUE;
  node->backoff_ms = 0;
  g_clear_pointer (&node->why, g_free);
  node_set_up (node, TRUE);
  update_state (pool);
  pool->events.node_ready (pool->owner, node->addr);
}

static gboolean
on_retry (gpointer user_data)
{
  Node *node = user_data;

  g_clear_pointer (&node->retry_source, g_source_unref);
  g_clear_pointer (&node->cmd, herald_redis_wire_free);
  g_clear_pointer (&node->sub, herald_redis_wire_free);
  if (node->master)
    node_connect (node);
  return G_SOURCE_REMOVE;
}

static void
on_wire_down (HeraldRedisWire *wire, const char *why, gpointer owner)
{
  Node *node = owner;
  HeraldRedisClusterPool *pool = node->pool;
  gboolean was_up = node->announced;
  guint delay;

  if (pool->closing)
    return;
  /* Both wires go: the node is used only with both. */
  if (wire != node->cmd && !herald_redis_wire_is_dead (node->cmd))
    herald_redis_wire_fail (node->cmd, why);
  if (wire != node->sub && !herald_redis_wire_is_dead (node->sub))
    herald_redis_wire_fail (node->sub, why);
  if (node->retry_source != NULL)
    return; /* the other wire's loss was handled */
  g_free (node->why);
  node->why = g_strdup (why);
  node->announced = FALSE;
  node_set_up (node, FALSE);
  node->backoff_ms = CLAMP (node->backoff_ms * 2, BACKOFF_MIN_MS, BACKOFF_MAX_MS);
  delay = node->backoff_ms / 2 + g_random_int_range (0, node->backoff_ms / 2 + 1);
  node->retry_source = g_timeout_source_new (delay);
  g_source_set_callback (node->retry_source, on_retry, node, NULL);
  g_source_attach (node->retry_source, pool->context);
  update_state (pool);
  g_atomic_int_set (&pool->refresh_wanted, 1);
  if (was_up)
    {
      g_atomic_int_inc (&pool->losses);
      pool->events.node_down (pool->owner, node->addr, why);
    }
}

static void
on_wire_push (HeraldRedisWire *wire, redisReply *reply, gpointer owner)
{
  Node *node = owner;

  if (!node->pool->closing)
    node->pool->events.push (node->pool->owner, node->addr, reply);
}

static const HeraldRedisWireEvents wire_events = {
  .ready = on_wire_ready,
  .push = on_wire_push,
  .down = on_wire_down,
};

static void
on_checked (redisReply *reply, gpointer privdata)
{
  if (reply != NULL && reply->type == REDIS_REPLY_ERROR)
    g_warning (_ ("Redis Cluster node refused a setup command: %s"), reply->str);
}

static void
node_connect (Node *node)
{
  HeraldRedisClusterPool *pool = node->pool;

  if (node->cmd != NULL || node->retry_source != NULL)
    return;
  node->cmd = herald_redis_wire_new (node->host, node->port, pool->password, FALSE, pool->context,
                                     &wire_events, node);
  node->sub = herald_redis_wire_new (node->host, node->port, pool->password, TRUE, pool->context,
                                     &wire_events, node);
  if (pool->client_name)
    {
      g_autofree char *cmd_name = g_strconcat (pool->client_name, "-cmd", NULL);
      g_autofree char *sub_name = g_strconcat (pool->client_name, "-sub", NULL);
      const char *name_cmd[] = { "CLIENT", "SETNAME", cmd_name };
      const char *name_sub[] = { "CLIENT", "SETNAME", sub_name };

      herald_redis_wire_command (node->cmd, 3, name_cmd, NULL, on_checked, NULL);
      herald_redis_wire_command (node->sub, 3, name_sub, NULL, on_checked, NULL);
    }
  for (guint i = 0; pool->scripts && pool->scripts[i]; i++)
    {
      const char *argv[] = { "SCRIPT", "LOAD", pool->scripts[i] };
      herald_redis_wire_command (node->cmd, 3, argv, NULL, on_checked, NULL);
    }
}

/* ---- commands ---- */

typedef struct
{
  HeraldRedisClusterPool *pool;
  guint slot;
  int argc;
  char **argv;
  size_t *lens;
  HeraldRedisWireReplyFn fn;
  gpointer privdata;
  guint redirects;
  gboolean reloaded;
} Cmd;

static void
cmd_free (Cmd *cmd)
{
  for (int i = 0; i < cmd->argc; i++)
    g_free (cmd->argv[i]);
  g_free (cmd->argv);
  g_free (cmd->lens);
  g_free (cmd);
}

static void on_cmd_reply (redisReply *reply, gpointer privdata);

/* EVALSHA of one of our scripts → EVAL of its text (once) */
static gboolean
cmd_to_eval (HeraldRedisClusterPool *pool, Cmd *cmd)
{
  if (cmd->argc < 2 || g_ascii_strcasecmp (cmd->argv[0], "EVALSHA") != 0)
    return FALSE;
  for (guint i = 0; pool->shas && pool->shas[i]; i++)
    if (g_str_equal (pool->shas[i], cmd->argv[1]))
      {
        g_free (cmd->argv[0]);
        g_free (cmd->argv[1]);
        cmd->argv[0] = g_strdup ("EVAL");
        cmd->argv[1] = g_strdup (pool->scripts[i]);
        cmd->lens[0] = 4;
        cmd->lens[1] = strlen (pool->scripts[i]);
        cmd->reloaded = TRUE;
        return TRUE;
      }
  return FALSE;
}

static gboolean
cmd_send (Cmd *cmd, Node *node, gboolean asking)
{
  if (node == NULL || node->cmd == NULL || herald_redis_wire_is_dead (node->cmd))
    return FALSE;
  if (asking)
    {
      const char *argv[] = { "ASKING" };
      herald_redis_wire_command (node->cmd, 1, argv, NULL, NULL, NULL);
    }
  return herald_redis_wire_command (node->cmd, cmd->argc, (const char **)cmd->argv, cmd->lens,
                                    on_cmd_reply, cmd);
}

static void
on_cmd_reply (redisReply *reply, gpointer privdata)
{
  Cmd *cmd = privdata;
  HeraldRedisClusterPool *pool = cmd->pool;
  g_autofree char *addr = NULL;
  gboolean ask = FALSE;
  guint slot = 0;

  if (reply != NULL && reply->type == REDIS_REPLY_ERROR && !pool->closing
      && cmd->redirects < MAX_REDIRECTS
      && herald_redis_parse_redirect (reply->str, &ask, &slot, &addr))
    {
      Node *target = node_get (pool, addr);

      cmd->redirects++;
      herald_redis_cluster_pool_count_redirect (pool, ask);
      if (target != NULL)
        {
          if (!ask)
            {
              g_debug ("redis cluster: slot %u moved to %s", slot, addr);
              g_mutex_lock (&pool->lock);
              pool->owner_of[slot] = (guint16)target->index;
              g_mutex_unlock (&pool->lock);
              target->master = TRUE;
              g_atomic_int_set (&pool->refresh_wanted, 1);
            }
          node_connect (target);
          if (cmd_send (cmd, target, ask))
            return;
        }
    }
  if (reply != NULL && reply->type == REDIS_REPLY_ERROR && !pool->closing && !cmd->reloaded
      && g_str_has_prefix (reply->str, "NOSCRIPT") && cmd_to_eval (pool, cmd))
    {
      Node *node = NULL;

      /* The master lost its script cache (SCRIPT FLUSH, a restart we did
       * not see): EVAL caches it again. */
      g_mutex_lock (&pool->lock);
      if (pool->owner_of[cmd->slot] != NO_NODE)
        node = pool->nodes->pdata[pool->owner_of[cmd->slot]];
      g_mutex_unlock (&pool->lock);
      if (cmd_send (cmd, node, FALSE))
        return;
    }
  if (cmd->fn)
    cmd->fn (reply, cmd->privdata);
  cmd_free (cmd);
}

gboolean
herald_redis_cluster_pool_command (HeraldRedisClusterPool *pool, guint slot, int argc,
                                   const char **argv, const size_t *lens, HeraldRedisWireReplyFn fn,
                                   gpointer privdata)
{
  Cmd *cmd;
  Node *node = NULL;

  g_return_val_if_fail (pool != NULL && slot < HERALD_REDIS_SLOTS && argc > 0, FALSE);
  g_mutex_lock (&pool->lock);
  if (pool->owner_of[slot] != NO_NODE)
    node = pool->nodes->pdata[pool->owner_of[slot]];
  g_mutex_unlock (&pool->lock);
  if (node == NULL || !node->up)
    return FALSE;
  cmd = g_new0 (Cmd, 1);
  cmd->pool = pool;
  cmd->slot = slot;
  cmd->argc = argc;
  cmd->argv = g_new0 (char *, argc + 1);
  cmd->lens = g_new0 (size_t, argc);
  for (int i = 0; i < argc; i++)
    {
      cmd->lens[i] = lens ? lens[i] : strlen (argv[i]);
      cmd->argv[i] = g_malloc (cmd->lens[i] + 1);
      memcpy (cmd->argv[i], argv[i], cmd->lens[i]);
      cmd->argv[i][cmd->lens[i]] = '\0';
    }
  cmd->fn = fn;
  cmd->privdata = privdata;
  if (cmd_send (cmd, node, FALSE))
    return TRUE;
  cmd_free (cmd);
  return FALSE;
}

gboolean
herald_redis_cluster_pool_subscribe (HeraldRedisClusterPool *pool, const char *addr,
                                     const char *verb, const char *topic)
{
  Node *node = node_find (pool, addr);
  const char *argv[] = { verb, topic };

  if (node == NULL || !node->up || !herald_redis_wire_is_ready (node->sub))
    return FALSE;
  return herald_redis_wire_send (node->sub, 2, argv);
}

/* ---- the map ---- */

/* CLUSTER SLOTS: [[start, end, [host, port, id, …], replicas…], …]. */
static gboolean
parse_slots (HeraldRedisClusterPool *pool, redisReply *reply, const char *asked_host,
             guint16 *owner_of)
{
  if (reply->type != REDIS_REPLY_ARRAY || reply->elements == 0)
    return FALSE;
  for (guint s = 0; s < HERALD_REDIS_SLOTS; s++)
    owner_of[s] = NO_NODE;
  for (gsize i = 0; i < reply->elements; i++)
    {
      redisReply *range = reply->element[i];
      redisReply *master;
      g_autofree char *addr = NULL;
      const char *host;
      Node *node;

      if (range->type != REDIS_REPLY_ARRAY || range->elements < 3
          || range->element[0]->type != REDIS_REPLY_INTEGER
          || range->element[1]->type != REDIS_REPLY_INTEGER
          || range->element[2]->type != REDIS_REPLY_ARRAY || range->element[2]->elements < 2
          || range->element[2]->element[0]->type != REDIS_REPLY_STRING
          || range->element[2]->element[1]->type != REDIS_REPLY_INTEGER)
        return FALSE;
      master = range->element[2];
      host = master->element[0]->str;
      if (*host == '\0' || g_str_equal (host, "?"))
        host = asked_host;
      addr = strchr (host, ':') ? g_strdup_printf ("[%s]:%lld", host, master->element[1]->integer)
                                : g_strdup_printf ("%s:%lld", host, master->element[1]->integer);
      node = node_get (pool, addr);
      if (node == NULL)
        return FALSE;
      for (long long s = range->element[0]->integer;
           s <= range->element[1]->integer && s < HERALD_REDIS_SLOTS; s++)
        if (s >= 0)
          owner_of[s] = (guint16)node->index;
    }
  return TRUE;
}

static void
on_slots (redisReply *reply, gpointer privdata)
{
  HeraldRedisClusterPool *pool = privdata;
  g_autofree guint16 *owner_of = NULL;
  g_autofree char *asked = NULL;
  gboolean changed = FALSE, first;

  if (pool->closing)
    return;
  pool->refreshing = FALSE;
  if (reply == NULL || reply->type == REDIS_REPLY_ERROR)
    {
      g_debug ("redis cluster: CLUSTER SLOTS failed: %s", reply ? reply->str : "connection lost");
      g_atomic_int_set (&pool->refresh_wanted, 1);
      return;
    }
  owner_of = g_new (guint16, HERALD_REDIS_SLOTS);
  asked = g_strdup (pool->asked_host ? pool->asked_host : "127.0.0.1");
  if (!parse_slots (pool, reply, asked, owner_of))
    {
      g_warning (_ ("Redis Cluster: unreadable CLUSTER SLOTS answer"));
      return;
    }
  g_mutex_lock (&pool->lock);
  first = !pool->map_known;
  changed = first || memcmp (owner_of, pool->owner_of, sizeof pool->owner_of) != 0;
  memcpy (pool->owner_of, owner_of, sizeof pool->owner_of);
  pool->map_known = TRUE;
  for (guint i = 0; i < pool->nodes->len; i++)
    ((Node *)pool->nodes->pdata[i])->slots = 0;
  for (guint s = 0; s < HERALD_REDIS_SLOTS; s++)
    if (owner_of[s] != NO_NODE)
      ((Node *)pool->nodes->pdata[owner_of[s]])->slots++;
  g_mutex_unlock (&pool->lock);
  for (guint i = 0; i < pool->nodes->len; i++)
    {
      Node *node = pool->nodes->pdata[i];
      gboolean master = node->slots > 0;

      if (master && !node->master)
        g_message (_ ("Redis Cluster: %s is a master (%u slots)"), node->addr, node->slots);
      node->master = master;
      if (master)
        node_connect (node); /* the others are closed by the tick */
    }
  update_state (pool);
  if (changed)
    {
      if (!first)
        {
          g_message (_ ("Redis Cluster: the slot map changed"));
          g_atomic_int_inc (&pool->map_changes);
        }
      pool->events.map_changed (pool->owner);
    }
}

static void
on_probe_down (HeraldRedisWire *wire, const char *why, gpointer owner)
{
  g_debug ("redis cluster: seed: %s", why);
}

static const HeraldRedisWireEvents probe_events = { .down = on_probe_down };

static void
refresh_start (HeraldRedisClusterPool *pool)
{
  const char *argv[] = { "CLUSTER", "SLOTS" };
  guint n_seeds = g_strv_length (pool->seeds);

  g_atomic_int_set (&pool->refresh_wanted, 0);
  pool->last_refresh = g_get_monotonic_time ();
  g_clear_pointer (&pool->old_probe, herald_redis_wire_free);
  for (guint i = 0; i < pool->nodes->len; i++)
    {
      Node *node = pool->nodes->pdata[i];

      if (node->master && node->up
          && herald_redis_wire_command (node->cmd, 2, argv, NULL, on_slots, pool))
        {
          g_free (pool->asked_host);
          pool->asked_host = g_strdup (node->host);
          pool->refreshing = TRUE;
          return;
        }
    }
  /* No master answers: ask the seeds and the nodes we knew, in turn. */
  {
    guint n = n_seeds + pool->nodes->len;
    guint k = pool->probe_cursor++ % n;
    const char *addr
        = k < n_seeds ? pool->seeds[k] : ((Node *)pool->nodes->pdata[k - n_seeds])->addr;
    g_autofree char *host = NULL;
    int port = 0;

    pool->old_probe = g_steal_pointer (&pool->probe);
    if (!herald_redis_split_addr (addr, &host, &port))
      return;
    g_free (pool->asked_host);
    pool->asked_host = g_strdup (host);
    pool->probe = herald_redis_wire_new (host, port, pool->password, FALSE, pool->context,
                                         &probe_events, pool);
    pool->refreshing = herald_redis_wire_command (pool->probe, 2, argv, NULL, on_slots, pool);
  }
}

static gboolean
on_tick (gpointer user_data)
{
  HeraldRedisClusterPool *pool = user_data;
  gint64 now = g_get_monotonic_time ();
  gint64 since_ms = (now - pool->last_refresh) / 1000;
  gboolean some_down = !pool->map_known;

  for (guint i = 0; i < pool->nodes->len; i++)
    {
      Node *node = pool->nodes->pdata[i];

      if (!node->master && (node->cmd != NULL || node->retry_source != NULL))
        {
          g_debug ("redis cluster: %s is no master any more", node->addr);
          node_close (node);
          continue;
        }
      if (node->master && !node->up)
        some_down = TRUE;
      if (herald_redis_wire_wait_ms (node->cmd) > COMMAND_TIMEOUT_MS)
        herald_redis_wire_fail (node->cmd, _ ("command timeout"));
      else if (node->up && (now - node->last_ping) / 1000 >= PING_MS)
        {
          const char *ping[] = { "PING" };

          node->last_ping = now;
          herald_redis_wire_command (node->cmd, 1, ping, NULL, NULL, NULL);
        }
    }
  if (pool->refreshing && since_ms > COMMAND_TIMEOUT_MS)
    {
      pool->refreshing = FALSE; /* that answer is not coming */
      if (pool->probe)
        herald_redis_wire_fail (pool->probe, "timeout");
    }
  if (!pool->refreshing
      && ((g_atomic_int_get (&pool->refresh_wanted) && since_ms >= REFRESH_MIN_MS)
          || since_ms >= (some_down ? REFRESH_DOWN_MS : REFRESH_OK_MS)))
    refresh_start (pool);
  return G_SOURCE_CONTINUE;
}

/* ---- life ---- */

HeraldRedisClusterPool *
herald_redis_cluster_pool_new (const char *const *seeds, const char *password,
                               const char *const *scripts, GMainContext *context,
                               const HeraldRedisClusterPoolEvents *events, gpointer owner)
{
  HeraldRedisClusterPool *pool = g_new0 (HeraldRedisClusterPool, 1);

  g_return_val_if_fail (seeds != NULL && seeds[0] != NULL, NULL);
  pool->context = g_main_context_ref (context);
  pool->seeds = g_strdupv ((char **)seeds);
  pool->password = g_strdup (password);
  pool->scripts = g_strdupv ((char **)scripts);
  pool->shas = g_new0 (char *, (pool->scripts ? g_strv_length (pool->scripts) : 0) + 1);
  for (guint i = 0; pool->scripts && pool->scripts[i]; i++)
    pool->shas[i] = g_compute_checksum_for_string (G_CHECKSUM_SHA1, pool->scripts[i], -1);
  pool->events = *events;
  pool->owner = owner;
  g_mutex_init (&pool->lock);
  pool->nodes = g_ptr_array_new ();
  for (guint s = 0; s < HERALD_REDIS_SLOTS; s++)
    pool->owner_of[s] = NO_NODE;
  update_state (pool);
  return pool;
}

void
herald_redis_cluster_pool_set_client_name (HeraldRedisClusterPool *pool, const char *name)
{
  g_free (pool->client_name);
  pool->client_name = g_strdup (name);
}

void
herald_redis_cluster_pool_start (HeraldRedisClusterPool *pool)
{
  g_return_if_fail (pool->tick_source == NULL);
  pool->tick_source = g_timeout_source_new (TICK_MS);
  g_source_set_callback (pool->tick_source, on_tick, pool, NULL);
  g_source_attach (pool->tick_source, pool->context);
  refresh_start (pool);
}

void
herald_redis_cluster_pool_free (HeraldRedisClusterPool *pool)
{
  if (pool == NULL)
    return;
  pool->closing = TRUE;
  herald_redis_source_clear (&pool->tick_source);
  g_clear_pointer (&pool->probe, herald_redis_wire_free);
  g_clear_pointer (&pool->old_probe, herald_redis_wire_free);
  for (guint i = 0; i < pool->nodes->len; i++)
    {
      Node *node = pool->nodes->pdata[i];

      node_close (node);
      g_free (node->addr);
      g_free (node->host);
      g_free (node->why);
      g_free (node);
    }
  g_ptr_array_unref (pool->nodes);
  g_strfreev (pool->seeds);
  g_strfreev (pool->scripts);
  g_strfreev (pool->shas);
  g_free (pool->client_name);
  g_free (pool->password);
  g_free (pool->state);
  g_free (pool->asked_host);
  g_mutex_clear (&pool->lock);
  g_main_context_unref (pool->context);
  g_free (pool);
}

char *
herald_redis_cluster_pool_dup_owner (HeraldRedisClusterPool *pool, guint slot)
{
  char *addr = NULL;

  g_return_val_if_fail (pool != NULL && slot < HERALD_REDIS_SLOTS, NULL);
  g_mutex_lock (&pool->lock);
  if (pool->owner_of[slot] != NO_NODE)
    addr = g_strdup (((Node *)pool->nodes->pdata[pool->owner_of[slot]])->addr);
  g_mutex_unlock (&pool->lock);
  return addr;
}

gboolean
herald_redis_cluster_pool_slot_ready (HeraldRedisClusterPool *pool, guint slot)
{
  gboolean up = FALSE;

  g_return_val_if_fail (pool != NULL && slot < HERALD_REDIS_SLOTS, FALSE);
  g_mutex_lock (&pool->lock);
  if (pool->owner_of[slot] != NO_NODE)
    up = ((Node *)pool->nodes->pdata[pool->owner_of[slot]])->up;
  g_mutex_unlock (&pool->lock);
  return up;
}

char *
herald_redis_cluster_pool_dup_state (HeraldRedisClusterPool *pool)
{
  char *state;

  g_mutex_lock (&pool->lock);
  state = g_strdup (pool->state);
  g_mutex_unlock (&pool->lock);
  return state;
}

void
herald_redis_cluster_pool_count (HeraldRedisClusterPool *pool, guint *masters, guint *up)
{
  guint m = 0, u = 0;

  g_mutex_lock (&pool->lock);
  for (guint i = 0; i < pool->nodes->len; i++)
    {
      Node *node = pool->nodes->pdata[i];
      if (node->slots > 0)
        {
          m++;
          u += node->up ? 1 : 0;
        }
    }
  g_mutex_unlock (&pool->lock);
  if (masters)
    *masters = m;
  if (up)
    *up = u;
}

void
herald_redis_cluster_pool_refresh (HeraldRedisClusterPool *pool)
{
  g_atomic_int_set (&pool->refresh_wanted, 1);
}

void
herald_redis_cluster_pool_count_redirect (HeraldRedisClusterPool *pool, gboolean ask)
{
  g_atomic_int_inc (ask ? &pool->asked : &pool->moved);
}

void
herald_redis_cluster_pool_append_metrics (HeraldRedisClusterPool *pool, GString *out)
{
  guint masters = 0;

  herald_redis_cluster_pool_count (pool, &masters, NULL);
  herald_metrics_append_single (out, "herald_redis_cluster_masters", "gauge",
                                "Masters in the Redis Cluster's slot map.", masters);
  herald_metrics_append_header (out, "herald_redis_cluster_master_up", "gauge",
                                "1 while this node is connected to the master, by address.");
  g_mutex_lock (&pool->lock);
  for (guint i = 0; i < pool->nodes->len; i++)
    {
      Node *node = pool->nodes->pdata[i];

      if (node->slots == 0)
        continue;
      g_string_append (out, "herald_redis_cluster_master_up{master=\"");
      herald_metrics_append_label_value (out, node->addr);
      g_string_append_printf (out, "\"} %d\n", node->up ? 1 : 0);
    }
  g_mutex_unlock (&pool->lock);
  herald_metrics_append_single (out, "herald_redis_cluster_map_changes_total", "counter",
                                "Times the slot map read from the cluster changed.",
                                (guint64)g_atomic_int_get (&pool->map_changes));
  herald_metrics_append_single (out, "herald_redis_cluster_master_losses_total", "counter",
                                "Times a connected master was lost.",
                                (guint64)g_atomic_int_get (&pool->losses));
  herald_metrics_append_header (out, "herald_redis_cluster_redirects_total", "counter",
                                "MOVED and ASK redirections followed.");
  g_string_append_printf (out, "herald_redis_cluster_redirects_total{kind=\"moved\"} %d\n",
                          g_atomic_int_get (&pool->moved));
  g_string_append_printf (out, "herald_redis_cluster_redirects_total{kind=\"ask\"} %d\n",
                          g_atomic_int_get (&pool->asked));
}
