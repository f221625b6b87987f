/* herald-loop.h: one epoll-backed GSource per worker main context.
 *
 * GLib polls every fd it knows on every iteration, so tens of thousands of
 * idle connections would make each iteration cost O(N). Instead the worker
 * registers its sockets in one epoll set, and GLib sees a single fd. Each
 * dispatch handles ready sockets, then flushes every connection that got
 * output during the iteration (writes are coalesced: one writev per
 * connection per iteration), then runs the 1-second sweep when due.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct
{
  /* A socket in the epoll set is ready: @ptr is what it was registered with. */
  void (*ready) (gpointer ptr, guint32 epoll_events, gpointer user_data);
  /* Called after ready events, every dispatch: flush pending output. Returns
   * TRUE when more work is pending right away. */
  gboolean (*flush) (gpointer user_data);
  /* TRUE when output is pending (a non-blocking check made in prepare). */
  gboolean (*has_pending) (gpointer user_data);
  /* Called about once a second with the monotonic time in seconds. */
  void (*tick) (guint32 now_s, gpointer user_data);
} HeraldLoopFuncs;

typedef struct _HeraldLoop HeraldLoop;

/* Whatever else an owner keeps in its set beside its main kind of object
 * (the inbox's eventfd, listening sockets, the HTTP fast path's
 * connections) begins with this, so one pointer comparison tells them
 * apart and the source's own function handles its events. */
typedef struct _HeraldLoopHandler HeraldLoopHandler;
struct _HeraldLoopHandler
{
  const char *marker; /* == herald_loop_handler_marker */
  void (*ready) (HeraldLoopHandler *handler, guint32 epoll_events);
};
extern const char herald_loop_handler_marker[];
#define HERALD_LOOP_HANDLER_INIT(ready_func)                                                       \
  {                                                                                                \
    herald_loop_handler_marker, (ready_func)                                                       \
  }
/* TRUE when @ptr (what the set returned) is a HeraldLoopHandler. */
#define HERALD_IS_LOOP_HANDLER(ptr) (*(const char *const *)(ptr) == herald_loop_handler_marker)

/* Creates the source and attaches it to @context. */
HeraldLoop *herald_loop_new (GMainContext *context, const HeraldLoopFuncs *funcs,
                             gpointer user_data);
void herald_loop_free (HeraldLoop *loop);

gboolean herald_loop_add (HeraldLoop *loop, int fd, guint32 events, gpointer ptr);
gboolean herald_loop_modify (HeraldLoop *loop, int fd, guint32 events, gpointer ptr);
void herald_loop_remove (HeraldLoop *loop, int fd);
/* Makes the next iteration dispatch at once (after output was queued). */
void herald_loop_wakeup (HeraldLoop *loop);

/* Monotonic seconds, the clock the sweep uses. */
guint32 herald_loop_now (void);

G_END_DECLS
