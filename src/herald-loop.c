/* herald-loop.c
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <errno.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "herald-loop.h"

const char herald_loop_handler_marker[] = "herald-loop-source";

#define MAX_EVENTS 256

typedef struct
{
  GSource source;
  HeraldLoop *loop;
} HeraldLoopSource;

struct _HeraldLoop
{
  HeraldLoopSource *source;
  int epfd;
  gpointer tag;
  HeraldLoopFuncs funcs;
  gpointer user_data;
  guint32 next_tick;
};

guint32
herald_loop_now (void)
{
  return (guint32)(g_get_monotonic_time () / G_USEC_PER_SEC);
}

static gboolean
loop_prepare (GSource *source, gint *timeout)
{
  HeraldLoop *loop = ((HeraldLoopSource *)source)->loop;
  gint64 now_us = g_get_monotonic_time ();
  gint64 tick_us = (gint64)loop->next_tick * G_USEC_PER_SEC;

  if (loop->funcs.has_pending (loop->user_data) || now_us >= tick_us)
    {
      *timeout = 0;
      return TRUE;
    }
  *timeout = (gint)((tick_us - now_us + 999) / 1000);
  return FALSE;
}

static gboolean
loop_check (GSource *source)
{
  HeraldLoop *loop = ((HeraldLoopSource *)source)->loop;

  if (g_source_query_unix_fd (source, loop->tag) & G_IO_IN)
    return TRUE;
  return loop->funcs.has_pending (loop->user_data)
         || g_get_monotonic_time () >= (gint64)loop->next_tick * G_USEC_PER_SEC;
}

static gboolean
loop_dispatch (GSource *source, GSourceFunc callback, gpointer user_data)
{
  HeraldLoop *loop = ((HeraldLoopSource *)source)->loop;
  struct epoll_event events[MAX_EVENTS];
  int n;
  guint32 now;

  /* Bounded batches keep one iteration's latency predictable under load. */
  for (int round = 0; round < 4; round++)
    {
      n = epoll_wait (loop->epfd, events, MAX_EVENTS, 0);
      if (n < 0 && errno != EINTR)
        g_warning ("epoll_wait: %s", g_strerror (errno));
      for (int i = 0; i < n; i++)
        loop->funcs.ready (events[i].data.ptr, events[i].events, loop->user_data);
      if (n < MAX_EVENTS)
        break;
    }

  loop->funcs.flush (loop->user_data);

  now = herald_loop_now ();
  if (now >= loop->next_tick)
    {
      loop->next_tick = now + 1;
      loop->funcs.tick (now, loop->user_data);
    }
  return G_SOURCE_CONTINUE;
}

static GSourceFuncs loop_source_funcs = {
  .prepare = loop_prepare,
  .check = loop_check,
  .dispatch = loop_dispatch,
};

HeraldLoop *
herald_loop_new (GMainContext *context, const HeraldLoopFuncs *funcs, gpointer user_data)
{
  HeraldLoop *loop = g_new0 (HeraldLoop, 1);

  loop->epfd = epoll_create1 (EPOLL_CLOEXEC);
  if (loop->epfd < 0)
    g_error ("epoll_create1: %s", g_strerror (errno));
  loop->funcs = *funcs;
  loop->user_data = user_data;
  loop->next_tick = herald_loop_now () + 1;
  loop->source = (HeraldLoopSource *)g_source_new (&loop_source_funcs, sizeof (HeraldLoopSource));
  loop->source->loop = loop;
  g_source_set_name ((GSource *)loop->source, "herald-loop");
  /* Same priority as libsoup's I/O sources: GLib dispatches only the highest
   * ready priority per iteration, so a lower one would starve under load. */
  g_source_set_priority ((GSource *)loop->source, G_PRIORITY_DEFAULT);
  loop->tag = g_source_add_unix_fd ((GSource *)loop->source, loop->epfd, G_IO_IN);
  /* GLib blocks a source while it is dispatched unless it may recurse, and
   * blocking a source with a file descriptor removes and re-adds that fd:
   * two writes to the context's wake-up eventfd and a read of it in every
   * iteration. Dispatching never iterates the context again, so allow it. */
  g_source_set_can_recurse ((GSource *)loop->source, TRUE);
  g_source_attach ((GSource *)loop->source, context);
  return loop;
}

void
herald_loop_free (HeraldLoop *loop)
{
  if (loop == NULL)
    return;
  g_source_destroy ((GSource *)loop->source);
  g_source_unref ((GSource *)loop->source);
  close (loop->epfd);
  g_free (loop);
}

gboolean
herald_loop_add (HeraldLoop *loop, int fd, guint32 events, gpointer ptr)
{
  struct epoll_event ev = { .events = events, .data.ptr = ptr };
  return epoll_ctl (loop->epfd, EPOLL_CTL_ADD, fd, &ev) == 0;
}

gboolean
herald_loop_modify (HeraldLoop *loop, int fd, guint32 events, gpointer ptr)
{
  struct epoll_event ev = { .events = events, .data.ptr = ptr };
  return epoll_ctl (loop->epfd, EPOLL_CTL_MOD, fd, &ev) == 0;
}

void
herald_loop_remove (HeraldLoop *loop, int fd)
{
  epoll_ctl (loop->epfd, EPOLL_CTL_DEL, fd, NULL);
}

void
herald_loop_wakeup (HeraldLoop *loop)
{
  g_main_context_wakeup (g_source_get_context ((GSource *)loop->source));
}
