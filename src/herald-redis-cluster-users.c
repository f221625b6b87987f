/* herald-redis-cluster-users.c: each user's connections counted in a Redis
 * Cluster (see the header).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>

#include "herald-redis-cluster-keys.h"
#include "herald-redis-cluster-users.h"
#include "herald-redis-sync.h"

#define USERS_TTL_S "86400"

/* KEYS[1] = herald:{u:<user>}:c. ARGV: node, count ("0": none). */
static const char set_script[] = "if ARGV[2] == '0' then\n"
                                 "  redis.call('HDEL', KEYS[1], ARGV[1])\n"
                                 "else\n"
                                 "  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])\n"
                                 "  redis.call('EXPIRE', KEYS[1], " USERS_TTL_S ")\n"
                                 "end\n"
                                 "return 1\n";

static char *
users_key (const char *user_id)
{
  return g_strconcat ("herald:{u:", user_id, "}:c", NULL);
}

void
herald_rcu_adjust_locked (HeraldRedisClusterEngine *self, const char *user_id, int delta)
{
  gpointer value = NULL;
  guint count = 0;

  if (g_hash_table_lookup_extended (self->users, user_id, NULL, &value))
    count = GPOINTER_TO_UINT (value);
  if (delta < 0 && count < (guint)-delta)
    return;
  g_hash_table_insert (self->users, g_strdup (user_id), GUINT_TO_POINTER (count + delta));
}

void
herald_rcu_send (HeraldRedisClusterEngine *self, const char *user_id)
{
  g_autofree char *key = users_key (user_id);
  g_autofree char *count = NULL;
  gpointer value = NULL;
  gboolean known;

  g_mutex_lock (&self->lock);
  known = g_hash_table_lookup_extended (self->users, user_id, NULL, &value);
  g_mutex_unlock (&self->lock);
  if (!known)
    return; /* told already */
  count = g_strdup_printf ("%u", GPOINTER_TO_UINT (value));
  {
    const char *argv[] = { "EVAL", set_script, "1", key, self->node_id, count };

    if (!herald_redis_cluster_pool_command (self->pool, herald_rck_slot (key), G_N_ELEMENTS (argv),
                                            argv, NULL, NULL, NULL))
      return; /* the master's registration sends it */
  }
  g_mutex_lock (&self->lock);
  /* A 0 sent (and still 0): forgotten. A count that changed meanwhile has
   * its own write queued. */
  if (g_str_equal (count, "0") && g_hash_table_lookup_extended (self->users, user_id, NULL, &value)
      && value == NULL)
    g_hash_table_remove (self->users, user_id);
  g_mutex_unlock (&self->lock);
}

void
herald_rcu_register (HeraldRedisClusterEngine *self, const char *addr)
{
  g_autoptr (GPtrArray) users = g_ptr_array_new_with_free_func (g_free);
  GHashTableIter iter;
  gpointer key;

  g_mutex_lock (&self->lock);
  g_hash_table_iter_init (&iter, self->users);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    g_ptr_array_add (users, g_strdup (key));
  g_mutex_unlock (&self->lock);
  for (guint i = 0; i < users->len; i++)
    {
      g_autofree char *k = users_key (users->pdata[i]);
      g_autofree char *owner
          = addr ? herald_redis_cluster_pool_dup_owner (self->pool, herald_rck_slot (k)) : NULL;

      if (addr == NULL || g_strcmp0 (owner, addr) == 0)
        herald_rcu_send (self, users->pdata[i]);
    }
}

/* EXISTS herald:node:{N}: -1 when the cluster does not answer. */
static int
node_alive (HeraldRedisClusterEngine *self, const char *node)
{
  g_autofree char *nk = herald_rck_node_key (node);
  const char *argv[] = { "EXISTS", nk };
  const char *const *argvs[] = { argv };
  int argcs[] = { 2 };
  redisReply **r
      = herald_redis_cluster_sync_run (self->sync, herald_rck_slot (nk), 1, argvs, argcs);
  int alive;

  if (r == NULL)
    return -1;
  alive = r[0]->type == REDIS_REPLY_INTEGER ? r[0]->integer > 0 : -1;
  herald_redis_replies_free (r, 1);
  return alive;
}

/* This node's count (exact, at once) plus the live other nodes' fields. */
guint
herald_rcu_count (HeraldEngine *engine, const char *user_id)
{
  HeraldRedisClusterEngine *self = HERALD_REDIS_CLUSTER_ENGINE (engine);
  g_autofree char *key = users_key (user_id);
  const char *argv[] = { "HGETALL", key };
  const char *const *argvs[] = { argv };
  int argcs[] = { 2 };
  guint slot = herald_rck_slot (key);
  guint64 total;
  redisReply **r;

  g_mutex_lock (&self->lock);
  total = GPOINTER_TO_UINT (g_hash_table_lookup (self->users, user_id));
  g_mutex_unlock (&self->lock);
  r = herald_redis_cluster_sync_run (self->sync, slot, 1, argvs, argcs);
  for (gsize i = 0; r != NULL && r[0]->type == REDIS_REPLY_ARRAY && i + 1 < r[0]->elements; i += 2)
    {
      redisReply *node = r[0]->element[i];
      g_autofree char *name = NULL;
      int alive;

      if (node->type != REDIS_REPLY_STRING)
        continue;
      name = g_strndup (node->str, node->len);
      if (g_str_equal (name, self->node_id))
        continue; /* this node's: counted above */
      alive = node_alive (self, name);
      if (alive > 0)
        total += herald_redis_reply_u64 (r[0]->element[i + 1]);
      else if (alive == 0)
        {
          /* A dead node's share: reaped by whoever finds it */
          const char *hdel[] = { "HDEL", key, name };
          const char *const *hdels[] = { hdel };
          int hdelc[] = { 3 };

          herald_redis_replies_free (
              herald_redis_cluster_sync_run (self->sync, slot, 1, hdels, hdelc), 1);
        }
    }
  if (r != NULL)
    herald_redis_replies_free (r, 1);
  return (guint)MIN (total, (guint64)G_MAXUINT);
}
