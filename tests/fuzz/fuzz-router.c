/* fuzz-router.c: client messages through the router and the protocol's
 * handlers (herald_router_dispatch with herald_router_new()'s table).
 *
 * A HeraldConnection belongs to a worker thread, so this runs a real daemon
 * with one worker (its listener is unused) and, for each input, asks the
 * worker to open a connection over a socketpair, dispatch the input as one
 * text message, and close it. Replies go to the socketpair and are dropped.
 * Anonymous clients may subscribe and publish everywhere, so the handlers
 * behind the envelope checks are reached.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "herald-connection.h"
#include "herald-daemon.h"
#include "herald-router.h"
#include "herald-subscribe.h"
#include "herald-worker.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

typedef struct
{
  const char *text;
  gsize length;
  gboolean done;
} Job;

static HeraldDaemon *daemon_;
static GMutex lock;
static GCond cond;
static guint counter;
static HeraldRouter *router; /* the worker's thread only */

static const char config_text[] = "[server]\n"
                                  "workers=1\n"
                                  "[auth]\n"
                                  "anonymous=true\n"
                                  "anonymous-channels=*\n"
                                  "anonymous-publish=*\n"
                                  "[history]\n"
                                  "size=4\n";

static void
dispatch_in_worker (HeraldWorker *worker, gpointer user_data)
{
  Job *job = user_data;
  HeraldHub *hub = herald_daemon_get_hub (daemon_);
  HeraldConnectionSetup setup = { 0 };
  g_autoptr (HeraldConnection) conn = NULL;
  g_autofree char *id = g_strdup_printf ("fuzz%u", counter++);
  int sv[2];

  /* Without a connection the input would not be exercised at all. */
  g_assert_cmpint (socketpair (AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), ==, 0);
  g_assert_true (herald_hub_reserve_connection (hub, id, NULL, "127.0.0.1",
                                                herald_worker_get_index (worker), NULL));
    {
      setup.id = id;
      setup.transport = HERALD_TRANSPORT_WEBSOCKET;
      setup.fd = sv[0];
      setup.remote_address = "127.0.0.1";
      conn = herald_hub_adopt (hub, worker, &setup, NULL);
      if (router == NULL)
        router = herald_router_new (hub, worker);
      herald_router_dispatch (router, conn, job->text, job->length);
      herald_connection_close (conn, 1000, "done");
      /* EOF from the peer: the connection finishes closing on its own. */
      close (sv[1]);
    }

  g_mutex_lock (&lock);
  job->done = TRUE;
  g_cond_signal (&cond);
  g_mutex_unlock (&lock);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  Job job = { (const char *)data, size, FALSE };

  if (daemon_ == NULL)
    {
      g_autoptr (HeraldConfig) config = herald_config_new ();
      g_autoptr (GError) error = NULL;
      const char *listen[] = { "127.0.0.1:0", NULL };

      if (!herald_config_load_data (config, config_text, -1, "fuzz.conf", &error)
          || !herald_config_set_listen_override (config, listen, &error))
        g_error ("fuzz-router: %s", error->message);
      daemon_ = herald_daemon_new (config);
      if (!herald_daemon_start (daemon_, &error))
        g_error ("fuzz-router: %s", error->message);
    }

  herald_hub_foreach_worker (herald_daemon_get_hub (daemon_), dispatch_in_worker, &job);
  g_mutex_lock (&lock);
  while (!job.done)
    g_cond_wait (&cond, &lock);
  g_mutex_unlock (&lock);
  /* Async replies (publish, presence) complete in the main context. */
  while (g_main_context_iteration (NULL, FALSE))
    ;
  return 0;
}
