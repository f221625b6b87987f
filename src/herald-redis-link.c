/* herald-redis-link.c: two asynchronous Redis connections and their upkeep.
 *
 * Main context only. hiredis frees a context itself after a failed connect
 * or a disconnect; everywhere else the link frees it, which runs the pending
 * callbacks with NULL replies while `tearing_down` is set.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <glib/gi18n.h>

#include "herald-redis-link.h"
#include "herald-redis-source.h"

#define CONNECT_TIMEOUT_MS 2000
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 4000

struct _HeraldRedisLink
{
  const HeraldRedisUrl *url;
  GMainContext *context;
  HeraldRedisLinkEvents events;
  gpointer owner;

  redisAsyncContext *cmd, *sub;
  GSource *cmd_source, *sub_source;
  gboolean tearing_down, closed;
  guint backoff_ms;
  GSource *reconnect_source, *timeout_source;
};

static void link_down (HeraldRedisLink *link, const char *why);

HeraldRedisLink *
herald_redis_link_new (const HeraldRedisUrl *url, GMainContext *context,
                       const HeraldRedisLinkEvents *events, gpointer owner)
{
  HeraldRedisLink *link = g_new0 (HeraldRedisLink, 1);

  link->url = url;
  link->context = g_main_context_ref (context);
  link->events = *events;
  link->owner = owner;
  return link;
}

gpointer
herald_redis_link_owner (const redisAsyncContext *ac)
{
  HeraldRedisLink *link = ac->data;

  return link == NULL || link->tearing_down ? NULL : link->owner;
}

static gboolean
on_reconnect (gpointer user_data)
{
  HeraldRedisLink *link = user_data;

  g_clear_pointer (&link->reconnect_source, g_source_unref);
  herald_redis_link_connect (link);
  return G_SOURCE_REMOVE;
}

static void
schedule_reconnect (HeraldRedisLink *link)
{
  guint delay;

  if (link->reconnect_source || link->closed)
    return;
  link->backoff_ms = CLAMP (link->backoff_ms * 2, BACKOFF_MIN_MS, BACKOFF_MAX_MS);
  /* Jitter: between half and all of the backoff, so nodes don't reconnect in step. */
  delay = link->backoff_ms / 2 + g_random_int_range (0, link->backoff_ms / 2 + 1);
  g_debug ("redis: reconnecting in %u ms", delay);
  link->reconnect_source = g_timeout_source_new (delay);
  g_source_set_callback (link->reconnect_source, on_reconnect, link, NULL);
  g_source_attach (link->reconnect_source, link->context);
}

static void
free_async (redisAsyncContext **ac, GSource **source)
{
  redisAsyncContext *c = *ac;

  *ac = NULL;
  if (c)
    {
      c->onDisconnect = NULL;
      redisAsyncFree (c); /* runs pending callbacks with NULL replies */
    }
  herald_redis_source_clear (source);
}

static void
link_down (HeraldRedisLink *link, const char *why)
{
  if (link->tearing_down)
    return;
  link->tearing_down = TRUE;
  link->events.down (link->owner, why);
  free_async (&link->cmd, &link->cmd_source);
  free_async (&link->sub, &link->sub_source);
  herald_redis_source_clear (&link->timeout_source);
  link->tearing_down = FALSE;
  schedule_reconnect (link);
}

void
herald_redis_link_fail (HeraldRedisLink *link, const char *why)
{
  link_down (link, why);
}

void
herald_redis_link_reconnect_now (HeraldRedisLink *link, const char *why)
{
  if (link->closed)
    return;
  if (link->cmd || link->sub || link->timeout_source)
    link_down (link, why);
  herald_redis_source_clear (&link->reconnect_source);
  link->backoff_ms = 0;
  herald_redis_link_connect (link);
}

/* hiredis frees @ac itself after this: forget it. */
static void
forget_context (HeraldRedisLink *link, const redisAsyncContext *ac)
{
  if (ac == link->cmd)
    {
      link->cmd = NULL;
      herald_redis_source_clear (&link->cmd_source);
    }
  else if (ac == link->sub)
    {
      link->sub = NULL;
      herald_redis_source_clear (&link->sub_source);
    }
}

static void
on_disconnect (const redisAsyncContext *ac, int status)
{
  HeraldRedisLink *link = ac->data;

  if (link == NULL)
    return;
  forget_context (link, ac);
  link_down (link, ac->errstr[0] ? ac->errstr : _ ("connection closed"));
}

static void
on_connect (const redisAsyncContext *ac, int status)
{
  HeraldRedisLink *link = ac->data;

  if (link == NULL || status == REDIS_OK)
    return;
  forget_context (link, ac);
  link_down (link, ac->errstr[0] ? ac->errstr : _ ("cannot connect"));
}

static gboolean
on_connect_timeout (gpointer user_data)
{
  HeraldRedisLink *link = user_data;

  g_clear_pointer (&link->timeout_source, g_source_unref);
  link_down (link, _ ("connect timeout"));
  return G_SOURCE_REMOVE;
}

/* Replies to AUTH, SELECT, SCRIPT LOAD and friends: any error takes the link down. */
static void
on_checked_reply (redisAsyncContext *ac, void *r, void *privdata)
{
  HeraldRedisLink *link = ac->data;
  redisReply *reply = r;

  if (herald_redis_link_owner (ac) == NULL || reply == NULL)
    return;
  if (reply->type == REDIS_REPLY_ERROR)
    {
      g_autofree char *why = g_strdup_printf ("%s: %s", (char *)privdata, reply->str);
      g_warning (_ ("Redis refused %s"), why);
      link_down (link, why);
    }
}

static void
on_sub_reply (redisAsyncContext *ac, void *r, void *privdata)
{
  HeraldRedisLink *link = ac->data;

  if (herald_redis_link_owner (ac) == NULL || r == NULL)
    return;
  link->events.sub_reply (link->owner, r);
}

static void
send_auth_select (redisAsyncContext *ac, const HeraldRedisUrl *url)
{
  if (url->password)
    {
      const char *argv[] = { "AUTH", url->password };
      redisAsyncCommandArgv (ac, on_checked_reply, (char *)"AUTH", 2, argv, NULL);
    }
  if (url->db)
    {
      g_autofree char *db = g_strdup_printf ("%d", url->db);
      const char *argv[] = { "SELECT", db };
      redisAsyncCommandArgv (ac, on_checked_reply, (char *)"SELECT", 2, argv, NULL);
    }
}

static redisAsyncContext *
async_connect (HeraldRedisLink *link, GSource **source)
{
  redisAsyncContext *ac = link->url->path ? redisAsyncConnectUnix (link->url->path)
                                          : redisAsyncConnect (link->url->host, link->url->port);

  if (ac == NULL)
    return NULL;
  if (ac->err)
    {
      g_debug ("redis: connect: %s", ac->errstr);
      redisAsyncFree (ac);
      return NULL;
    }
  ac->data = link;
  redisAsyncSetConnectCallback (ac, on_connect);
  redisAsyncSetDisconnectCallback (ac, on_disconnect);
  *source = herald_redis_source_attach (ac, link->context);
  return ac;
}

void
herald_redis_link_connect (HeraldRedisLink *link)
{
  if (link->closed)
    return;
  link->cmd = async_connect (link, &link->cmd_source);
  link->sub = link->cmd ? async_connect (link, &link->sub_source) : NULL;
  if (link->cmd == NULL || link->sub == NULL)
    {
      free_async (&link->cmd, &link->cmd_source);
      link_down (link, _ ("cannot connect"));
      return;
    }
  link->timeout_source = g_timeout_source_new (CONNECT_TIMEOUT_MS);
  g_source_set_callback (link->timeout_source, on_connect_timeout, link, NULL);
  g_source_attach (link->timeout_source, link->context);

  send_auth_select (link->cmd, link->url);
  send_auth_select (link->sub, link->url);
  link->events.connected (link->owner);
}

void
herald_redis_link_up (HeraldRedisLink *link)
{
  herald_redis_source_clear (&link->timeout_source);
  link->backoff_ms = 0;
}

int
herald_redis_link_command (HeraldRedisLink *link, redisCallbackFn *fn, void *privdata, int argc,
                           const char **argv, const size_t *lens)
{
  if (link->cmd == NULL)
    return REDIS_ERR;
  return redisAsyncCommandArgv (link->cmd, fn, privdata, argc, argv, lens);
}

void
herald_redis_link_command_checked (HeraldRedisLink *link, const char *what, int argc,
                                   const char **argv)
{
  herald_redis_link_command (link, on_checked_reply, (char *)what, argc, argv, NULL);
}

void
herald_redis_link_subscribe (HeraldRedisLink *link, int argc, const char **argv)
{
  if (link->sub)
    redisAsyncCommandArgv (link->sub, on_sub_reply, NULL, argc, argv, NULL);
}

void
herald_redis_link_free (HeraldRedisLink *link)
{
  if (link == NULL)
    return;
  link->closed = TRUE;
  link->tearing_down = TRUE;
  free_async (&link->cmd, &link->cmd_source);
  free_async (&link->sub, &link->sub_source);
  herald_redis_source_clear (&link->timeout_source);
  herald_redis_source_clear (&link->reconnect_source);
  g_main_context_unref (link->context);
  g_free (link);
}
