/* herald-redis-users.c: each user's connections counted in Redis (see the
 * header), and the Redis engine's side of it: this node's count, kept as
 * connections open and close, sent to Redis in order with the engine's
 * other changes and registered again after every reconnect.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>

#include "herald-redis-engine-private.h"
#include "herald-redis-users.h"

/* ARGV: node, user, delta. A node never takes back more than it added
 * (after it was reaped, say). */
static const char update_script[] = "local node, user, d = ARGV[1], ARGV[2], tonumber(ARGV[3])\n"
                                    "local k = 'herald:uc:' .. user\n"
                                    "local n = tonumber(redis.call('HGET', k, node) or '0') + d\n"
                                    "if n < 0 then return 0 end\n"
                                    "if n == 0 then\n"
                                    "  redis.call('HDEL', k, node)\n"
                                    "  redis.call('SREM', 'herald:un:' .. node, user)\n"
                                    "else\n"
                                    "  redis.call('HSET', k, node, n)\n"
                                    "  redis.call('SADD', 'herald:un:' .. node, user)\n"
                                    "end\n"
                                    "return n\n";

/* ARGV: node. Before a node registers its count again. */
static const char reset_script[] = HERALD_REDIS_USERS_DROP_FUNCTION "drop_users(ARGV[1])\n"
                                                                    "return 1\n";

void
herald_redis_users_update (HeraldRedisLink *link, const char *node_id, const char *user_id,
                           int delta)
{
  g_autofree char *delta_text = g_strdup_printf ("%d", delta);
  const char *argv[] = { "EVAL", update_script, "0", node_id, user_id, delta_text };

  herald_redis_link_command_checked (link, "user connection counts", G_N_ELEMENTS (argv), argv);
}

void
herald_redis_users_register (HeraldRedisLink *link, const char *node_id, GHashTable *users)
{
  const char *reset[] = { "EVAL", reset_script, "0", node_id };
  GHashTableIter iter;
  gpointer key, value;

  herald_redis_link_command_checked (link, "user connection counts", G_N_ELEMENTS (reset), reset);
  g_hash_table_iter_init (&iter, users);
  while (g_hash_table_iter_next (&iter, &key, &value))
    herald_redis_users_update (link, node_id, key, (int)GPOINTER_TO_UINT (value));
}

gboolean
herald_redis_users_query (HeraldRedisSync *sync, const char *node_id, const char *user_id,
                          guint64 *others)
{
  g_autofree char *key = g_strconcat ("herald:uc:", user_id, NULL);
  const char *argv[] = { "HGETALL", key };
  const char *const *argvs[] = { argv };
  int argcs[] = { G_N_ELEMENTS (argv) };
  redisReply **r = herald_redis_sync_run (sync, 1, argvs, argcs);
  gboolean ok;

  if (r == NULL)
    return FALSE;
  ok = r[0]->type == REDIS_REPLY_ARRAY;
  *others = 0;
  for (gsize i = 0; ok && i + 1 < r[0]->elements; i += 2)
    {
      redisReply *node = r[0]->element[i];

      if (node->type == REDIS_REPLY_STRING && strlen (node_id) == node->len
          && memcmp (node->str, node_id, node->len) == 0)
        continue; /* this node's: the engine knows them better */
      *others += herald_redis_reply_u64 (r[0]->element[i + 1]);
    }
  herald_redis_replies_free (r, 1);
  return ok;
}

/* ---- the engine's side ---- */

/**
 * herald_redis_engine_count_user:
 * @user_id: a user (not NULL, not empty)
 * @delta: +1 when a connection of the user opened here, -1 when one closed
 *
 * Counts this node's connections of @user_id in this engine's Redis. The
 * engine calls it itself as connections open and close, unless
 * herald_redis_engine_set_counts_users() said another engine (the shards')
 * picks the Redis that counts the user. Any thread.
 */
void
herald_redis_engine_count_user (HeraldRedisEngine *self, const char *user_id, int delta)
{
  Op *op;
  guint count;

  g_return_if_fail (HERALD_IS_REDIS_ENGINE (self));
  g_return_if_fail (user_id != NULL && delta != 0);

  g_mutex_lock (&self->lock);
  count = GPOINTER_TO_UINT (g_hash_table_lookup (self->users, user_id));
  if (delta < 0 && count < (guint)-delta)
    {
      g_mutex_unlock (&self->lock);
      return;
    }
  count += delta;
  if (count == 0)
    g_hash_table_remove (self->users, user_id);
  else
    g_hash_table_insert (self->users, g_strdup (user_id), GUINT_TO_POINTER (count));
  op = g_new0 (Op, 1);
  op->type = OP_USERS;
  op->a = g_strdup (user_id);
  op->delta = delta;
  op->gen = self->link_gen; /* a change before the link came up is in its snapshot */
  g_mutex_unlock (&self->lock);
  herald_redis_engine_push_op (self, op);
}

/* For the engine, under its lock: this node's count, for the registration. */
GHashTable *
herald_redis_engine_users_snapshot_locked (HeraldRedisEngine *self)
{
  GHashTable *copy = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  GHashTableIter iter;
  gpointer key, value;

  g_hash_table_iter_init (&iter, self->users);
  while (g_hash_table_iter_next (&iter, &key, &value))
    g_hash_table_insert (copy, g_strdup (key), value);
  return copy;
}

/* The engine's connection_opened/closed: @user_id NULL or "" (anonymous)
 * is not counted. */
void
herald_redis_engine_users_connection (HeraldRedisEngine *self, const char *user_id, int delta)
{
  if (self->counts_users && user_id != NULL && *user_id != '\0')
    herald_redis_engine_count_user (self, user_id, delta);
}

void
herald_redis_engine_set_counts_users (HeraldRedisEngine *self, gboolean counts)
{
  g_return_if_fail (HERALD_IS_REDIS_ENGINE (self));
  self->counts_users = counts;
}

/**
 * herald_redis_engine_dup_connection_user:
 * @id: a connection of this node the engine heard of (connection_opened)
 *
 * Returns: (transfer full) (nullable): its user, NULL when anonymous or unknown
 */
char *
herald_redis_engine_dup_connection_user (HeraldRedisEngine *self, const char *id)
{
  char *user;

  g_return_val_if_fail (HERALD_IS_REDIS_ENGINE (self), NULL);
  g_mutex_lock (&self->lock);
  user = g_strdup (g_hash_table_lookup (self->local_conns, id));
  g_mutex_unlock (&self->lock);
  return user;
}

/* HeraldEngine.count_user_connections: this node's count (exact, at once)
 * plus the other nodes' in Redis; this node's alone while Redis is away
 * (those are the only ones a send reaches then). */
guint
herald_redis_engine_count_user_connections (HeraldEngine *engine, const char *user_id)
{
  HeraldRedisEngine *self = HERALD_REDIS_ENGINE (engine);
  guint64 others = 0;
  guint local;

  g_mutex_lock (&self->lock);
  local = GPOINTER_TO_UINT (g_hash_table_lookup (self->users, user_id));
  g_mutex_unlock (&self->lock);
  if (!herald_redis_engine_is_up (self)
      || !herald_redis_users_query (self->sync, self->node_id, user_id, &others))
    others = 0;
  return (guint)MIN ((guint64)local + others, (guint64)G_MAXUINT);
}
