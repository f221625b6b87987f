/* herald-redis-sync.c: the blocking connection (any thread, under its lock).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <errno.h>
#include <sys/time.h>

#include "herald-redis-sync.h"

#define SYNC_TIMEOUT_MS 1000

struct _HeraldRedisSync
{
  GMutex lock;
  const HeraldRedisUrl *url;
  char *host; /* when set, instead of the URL's host and port */
  int port;
  redisContext *c;
};

HeraldRedisSync *
herald_redis_sync_new (const HeraldRedisUrl *url)
{
  HeraldRedisSync *self = g_new0 (HeraldRedisSync, 1);

  g_mutex_init (&self->lock);
  self->url = url;
  return self;
}

void
herald_redis_sync_close (HeraldRedisSync *self)
{
  g_mutex_lock (&self->lock);
  g_clear_pointer (&self->c, redisFree);
  g_mutex_unlock (&self->lock);
}

void
herald_redis_sync_set_address (HeraldRedisSync *self, const char *host, int port)
{
  g_mutex_lock (&self->lock);
  g_free (self->host);
  self->host = g_strdup (host);
  self->port = port;
  g_clear_pointer (&self->c, redisFree);
  g_mutex_unlock (&self->lock);
}

void
herald_redis_sync_free (HeraldRedisSync *self)
{
  if (self == NULL)
    return;
  g_clear_pointer (&self->c, redisFree);
  g_free (self->host);
  g_mutex_clear (&self->lock);
  g_free (self);
}

static redisContext *
sync_get (HeraldRedisSync *self)
{
  struct timeval connect_tv = { 0, 500 * 1000 };
  struct timeval tv = { SYNC_TIMEOUT_MS / 1000, (SYNC_TIMEOUT_MS % 1000) * 1000 };
  redisContext *c;
  redisReply *reply;

  if (self->c)
    return self->c;
  if (self->host)
    c = redisConnectWithTimeout (self->host, self->port, connect_tv);
  else if (self->url->path)
    c = redisConnectUnixWithTimeout (self->url->path, connect_tv);
  else if (self->url->host)
    c = redisConnectWithTimeout (self->url->host, self->url->port, connect_tv);
  else
    return NULL; /* no address yet (Sentinel) */
  if (c == NULL || c->err)
    {
      g_debug ("redis: sync connect: %s", c ? c->errstr : "out of memory");
      if (c)
        redisFree (c);
      return NULL;
    }
  redisSetTimeout (c, tv);
  if (self->url->password)
    {
      const char *argv[] = { "AUTH", self->url->password };
      reply = redisCommandArgv (c, 2, argv, NULL);
      if (reply == NULL || reply->type == REDIS_REPLY_ERROR)
        goto fail;
      freeReplyObject (reply);
    }
  if (self->url->db)
    {
      g_autofree char *db = g_strdup_printf ("%d", self->url->db);
      const char *argv[] = { "SELECT", db };
      reply = redisCommandArgv (c, 2, argv, NULL);
      if (reply == NULL || reply->type == REDIS_REPLY_ERROR)
        goto fail;
      freeReplyObject (reply);
    }
  self->c = c;
  return c;

fail:
  if (reply)
    freeReplyObject (reply);
  redisFree (c);
  return NULL;
}

void
herald_redis_replies_free (redisReply **replies, guint n)
{
  if (replies == NULL)
    return;
  for (guint i = 0; i < n; i++)
    if (replies[i])
      freeReplyObject (replies[i]);
  g_free (replies);
}

redisReply **
herald_redis_sync_run (HeraldRedisSync *self, guint n, const char *const *const *argvs,
                       const int *argcs)
{
  redisReply **replies = g_new0 (redisReply *, n);
  gboolean reused;
  redisContext *c;

  g_mutex_lock (&self->lock);
again:
  reused = self->c != NULL;
  c = sync_get (self);
  if (c == NULL)
    goto fail;
  for (guint i = 0; i < n; i++)
    redisAppendCommandArgv (c, argcs[i], (const char **)argvs[i], NULL);
  for (guint i = 0; i < n; i++)
    if (redisGetReply (c, (void **)&replies[i]) != REDIS_OK)
      {
        /* A kept connection that Redis closed meanwhile (restart): the
         * commands never ran, so one retry on a fresh connection is safe. */
        int saved = errno;
        gboolean stale
            = reused && i == 0
              && (c->err == REDIS_ERR_EOF
                  || (c->err == REDIS_ERR_IO && (saved == EPIPE || saved == ECONNRESET)));

        g_debug ("redis: sync: %s%s", c->errstr, stale ? " (stale, retrying)" : "");
        redisFree (c);
        self->c = NULL;
        if (stale)
          goto again;
        goto fail;
      }
  g_mutex_unlock (&self->lock);
  return replies;

fail:
  g_mutex_unlock (&self->lock);
  herald_redis_replies_free (replies, n);
  return NULL;
}

guint64
herald_redis_reply_u64 (redisReply *r)
{
  if (r == NULL)
    return 0;
  if (r->type == REDIS_REPLY_INTEGER)
    return (guint64)r->integer;
  if (r->type == REDIS_REPLY_STRING)
    return g_ascii_strtoull (r->str, NULL, 10);
  return 0;
}

gint64
herald_redis_reply_time (redisReply *r)
{
  if (r && r->type == REDIS_REPLY_ARRAY && r->elements >= 1
      && r->element[0]->type == REDIS_REPLY_STRING)
    return g_ascii_strtoll (r->element[0]->str, NULL, 10);
  return g_get_real_time () / G_USEC_PER_SEC;
}
