/* herald-redis-source.c: a GSource polling a hiredis asynchronous context.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "herald-redis-source.h"

typedef struct
{
  GSource source;
  redisAsyncContext *ac; /* NULL once hiredis cleaned up */
  GPollFD pfd;
} RedisSource;

static void
rs_add_read (void *data)
{
  ((RedisSource *)data)->pfd.events |= G_IO_IN;
}

static void
rs_del_read (void *data)
{
  ((RedisSource *)data)->pfd.events &= ~G_IO_IN;
}

static void
rs_add_write (void *data)
{
  ((RedisSource *)data)->pfd.events |= G_IO_OUT;
}

static void
rs_del_write (void *data)
{
  ((RedisSource *)data)->pfd.events &= ~G_IO_OUT;
}

static void
rs_cleanup (void *data)
{
  RedisSource *rs = data;

  rs->ac = NULL;
  rs->pfd.events = 0;
}

static gboolean
rs_prepare (GSource *source, gint *timeout)
{
  *timeout = -1;
  return FALSE;
}

static gboolean
rs_check (GSource *source)
{
  RedisSource *rs = (RedisSource *)source;
  return rs->ac != NULL && (rs->pfd.revents & (rs->pfd.events | G_IO_ERR | G_IO_HUP)) != 0;
}

static gboolean
rs_dispatch (GSource *source, GSourceFunc callback, gpointer user_data)
{
  RedisSource *rs = (RedisSource *)source;
  gushort revents = rs->pfd.revents;

  rs->pfd.revents = 0;
  /* Either call may free the context (disconnect): check before each. */
  if (rs->ac && (revents & (G_IO_OUT | G_IO_ERR | G_IO_HUP)) && (rs->pfd.events & G_IO_OUT))
    redisAsyncHandleWrite (rs->ac);
  if (rs->ac && (revents & (G_IO_IN | G_IO_ERR | G_IO_HUP)))
    redisAsyncHandleRead (rs->ac);
  return G_SOURCE_CONTINUE;
}

static GSourceFuncs rs_funcs = { rs_prepare, rs_check, rs_dispatch, NULL, NULL, NULL };

GSource *
herald_redis_source_attach (redisAsyncContext *ac, GMainContext *context)
{
  RedisSource *rs = (RedisSource *)g_source_new (&rs_funcs, sizeof (RedisSource));

  rs->ac = ac;
  rs->pfd.fd = ac->c.fd;
  g_source_add_poll ((GSource *)rs, &rs->pfd);
  ac->ev.addRead = rs_add_read;
  ac->ev.delRead = rs_del_read;
  ac->ev.addWrite = rs_add_write;
  ac->ev.delWrite = rs_del_write;
  ac->ev.cleanup = rs_cleanup;
  ac->ev.data = rs;
  g_source_set_name ((GSource *)rs, "herald-redis");
  g_source_attach ((GSource *)rs, context);
  return (GSource *)rs;
}

void
herald_redis_source_clear (GSource **source)
{
  if (*source)
    {
      g_source_destroy (*source);
      g_source_unref (*source);
      *source = NULL;
    }
}
