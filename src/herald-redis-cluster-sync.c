/* herald-redis-cluster-sync.c: blocking, slot-routed pipelines (one context per master).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <sys/time.h>

#include "herald-redis-cluster-sync.h"
#include "herald-redis-slots.h"
#include "herald-redis-sync.h"

#define SYNC_TIMEOUT_MS 1000
#define MAX_REDIRECTS 3

struct _HeraldRedisClusterSync
{
  GMutex lock;
  HeraldRedisClusterPool *pool;
  char *password;
  GHashTable *contexts; /* HOST:PORT → redisContext* */
};

HeraldRedisClusterSync *
herald_redis_cluster_sync_new (HeraldRedisClusterPool *pool, const char *password)
{
  HeraldRedisClusterSync *self = g_new0 (HeraldRedisClusterSync, 1);

  g_mutex_init (&self->lock);
  self->pool = pool;
  self->password = g_strdup (password);
  self->contexts
      = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify)redisFree);
  return self;
}

void
herald_redis_cluster_sync_free (HeraldRedisClusterSync *self)
{
  if (self == NULL)
    return;
  g_hash_table_unref (self->contexts);
  g_free (self->password);
  g_mutex_clear (&self->lock);
  g_free (self);
}

static redisContext *
context_for (HeraldRedisClusterSync *self, const char *addr)
{
  struct timeval connect_tv = { 0, 500 * 1000 };
  struct timeval tv = { SYNC_TIMEOUT_MS / 1000, (SYNC_TIMEOUT_MS % 1000) * 1000 };
  redisContext *c = g_hash_table_lookup (self->contexts, addr);
  g_autofree char *host = NULL;
  int port = 0;

  if (c != NULL)
    return c;
  if (!herald_redis_split_addr (addr, &host, &port))
    return NULL;
  c = redisConnectWithTimeout (host, port, connect_tv);
  if (c == NULL || c->err)
    {
      g_debug ("redis cluster: sync connect %s: %s", addr, c ? c->errstr : "out of memory");
      if (c)
        redisFree (c);
      return NULL;
    }
  redisSetTimeout (c, tv);
  if (self->password)
    {
      const char *argv[] = { "AUTH", self->password };
      redisReply *reply = redisCommandArgv (c, 2, argv, NULL);
      gboolean ok = reply != NULL && reply->type != REDIS_REPLY_ERROR;

      if (reply)
        freeReplyObject (reply);
      if (!ok)
        {
          redisFree (c);
          return NULL;
        }
    }
  g_hash_table_insert (self->contexts, g_strdup (addr), c);
  return c;
}

/* One attempt on @addr; NULL on a broken connection (then dropped). */
static redisReply **
run_on (HeraldRedisClusterSync *self, const char *addr, gboolean asking, guint n,
        const char *const *const *argvs, const int *argcs)
{
  redisContext *c = context_for (self, addr);
  redisReply **replies;

  if (c == NULL)
    return NULL;
  replies = g_new0 (redisReply *, n);
  for (guint i = 0; i < n; i++)
    {
      if (asking)
        redisAppendCommand (c, "ASKING");
      redisAppendCommandArgv (c, argcs[i], (const char **)argvs[i], NULL);
    }
  for (guint i = 0; i < n; i++)
    {
      void *r = NULL;

      if (asking)
        {
          if (redisGetReply (c, &r) != REDIS_OK)
            goto fail;
          freeReplyObject (r);
          r = NULL;
        }
      if (redisGetReply (c, &r) != REDIS_OK)
        goto fail;
      replies[i] = r;
    }
  return replies;

fail:
  g_debug ("redis cluster: sync %s: %s", addr, c->errstr);
  g_hash_table_remove (self->contexts, addr);
  herald_redis_replies_free (replies, n);
  return NULL;
}

redisReply **
herald_redis_cluster_sync_run (HeraldRedisClusterSync *self, guint slot, guint n,
                               const char *const *const *argvs, const int *argcs)
{
  g_autofree char *addr = herald_redis_cluster_pool_dup_owner (self->pool, slot);
  redisReply **replies = NULL;
  gboolean asking = FALSE;

  g_return_val_if_fail (n > 0, NULL);
  /* A master that is down would cost a connect timeout each time. */
  if (addr == NULL || !herald_redis_cluster_pool_slot_ready (self->pool, slot))
    return NULL;
  g_mutex_lock (&self->lock);
  for (guint attempt = 0; attempt <= MAX_REDIRECTS; attempt++)
    {
      char *next = NULL;
      gboolean ask = FALSE;

      replies = run_on (self, addr, asking, n, argvs, argcs);
      if (replies == NULL)
        break;
      for (guint i = 0; i < n && next == NULL; i++)
        if (replies[i]->type == REDIS_REPLY_ERROR)
          herald_redis_parse_redirect (replies[i]->str, &ask, NULL, &next);
      if (next == NULL)
        break;
      herald_redis_cluster_pool_count_redirect (self->pool, ask);
      if (!ask)
        herald_redis_cluster_pool_refresh (self->pool);
      herald_redis_replies_free (replies, n);
      replies = NULL;
      g_free (addr);
      addr = next;
      asking = ask;
    }
  g_mutex_unlock (&self->lock);
  return replies;
}
