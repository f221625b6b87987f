/* presence-stats — what presence_stats costs the server at scale.
 *
 * Starts Herald in this process (tests/herald-test-server.c: worker
 * threads, a loopback listener; the in-process engine, or Redis with
 * --redis URL), puts --members users (default 20,000) on one channel through
 * the engine's presence table (the path every subscription takes), then asks
 * --queries times (default 1,000):
 *
 *   engine   herald_engine_query_presence() for the counts alone: the server's
 *            own work (CPU time of the asking thread, and wall time: with
 *            Redis one round trip);
 *   ws       {"type":"presence_stats"} over a WebSocket, one at a time: round
 *            trip (wall) and the process's CPU per request (server and this
 *            small client together);
 *   page     {"type":"presence","limit":1000}: the first member page, for
 *            comparison.
 *
 * Prints one RESULT line. Not run by `meson test`; bench/README.md.
 *
 *   build/bench/presence-stats [--members N] [--queries K] [--redis redis://HOST:PORT]
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "herald-test-server.h"

static double
thread_cpu_us (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static double
process_cpu_us (void)
{
  struct rusage ru;

  getrusage (RUSAGE_SELF, &ru);
  return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 + ru.ru_utime.tv_usec
         + ru.ru_stime.tv_usec;
}

static guint
users_now (HeraldEngine *engine)
{
  g_auto (GStrv) page = NULL;
  guint users = 0, connections = 0;
  gboolean more = FALSE;

  page = herald_engine_query_presence (engine, "bench", NULL, 0, &users, &connections, &more, NULL);
  return page ? users : 0;
}

/* Answers of @type, skipping heartbeats; FALSE on a close or timeout. */
static gboolean
ask (HeraldTestClient *ws, const char *request, const char *type)
{
  g_autoptr (JsonObject) answer = NULL;

  herald_test_ws_send_text (ws, request);
  answer = herald_test_ws_read_json (ws);
  return answer != NULL && g_strcmp0 (herald_test_json_get_string (answer, "type"), type) == 0;
}

int
main (int argc, char **argv)
{
  gint members = 20000, queries = 1000;
  g_autofree char *redis = NULL;
  GOptionEntry entries[] = {
    { "members", 0, 0, G_OPTION_ARG_INT, &members, "Users on the channel (20000)", "N" },
    { "queries", 0, 0, G_OPTION_ARG_INT, &queries, "Questions of each kind (1000)", "K" },
    { "redis", 0, 0, G_OPTION_ARG_STRING, &redis, "Use the Redis engine at URL", "URL" },
    { NULL },
  };
  g_autoptr (GOptionContext) options = g_option_context_new ("— presence_stats at scale");
  g_autoptr (GError) error = NULL;
  g_autofree char *conf = NULL;
  HeraldTestServer *server;
  HeraldEngine *engine;
  HeraldTestClient *ws;
  double cpu0, wall0, engine_cpu, engine_wall, ws_wall, ws_cpu, page_wall;
  gint64 deadline;

  g_option_context_add_main_entries (options, entries, NULL);
  if (!g_option_context_parse (options, &argc, &argv, &error) || members < 1 || queries < 1)
    {
      g_printerr ("%s\n", error ? error->message : "--members and --queries must be positive");
      return 2;
    }
  g_log_set_always_fatal (G_LOG_FATAL_MASK);
  conf = g_strdup_printf ("[auth]\nanonymous=true\n%s%s%s", redis ? "[redis]\nurl=" : "",
                          redis ? redis : "", redis ? "\n" : "");
  server = herald_test_server_start (conf, 2);
  engine = herald_hub_get_engine (server->hub);

  for (gint i = 0; i < members; i++)
    {
      g_autofree char *user = g_strdup_printf ("user-%06d", i);
      herald_engine_presence_join (engine, "bench", user);
    }
  /* With Redis the counters arrive through the engine's link: bounded wait */
  deadline = g_get_monotonic_time () + 60 * G_USEC_PER_SEC;
  while (users_now (engine) != (guint)members && g_get_monotonic_time () < deadline)
    if (!g_main_context_iteration (NULL, FALSE))
      g_usleep (10000);
  if (users_now (engine) != (guint)members)
    {
      g_printerr ("the counters never reached %d users\n", members);
      return 1;
    }

  cpu0 = thread_cpu_us ();
  wall0 = g_get_monotonic_time ();
  for (gint i = 0; i < queries; i++)
    users_now (engine);
  engine_cpu = (thread_cpu_us () - cpu0) / queries;
  engine_wall = (g_get_monotonic_time () - wall0) / queries;

  ws = herald_test_ws_open (server, "/ws", NULL);
  cpu0 = process_cpu_us ();
  wall0 = g_get_monotonic_time ();
  for (gint i = 0; i < queries; i++)
    if (!ask (ws, "{\"type\":\"presence_stats\",\"channel\":\"bench\"}", "presence_stats"))
      {
        g_printerr ("presence_stats got no answer\n");
        return 1;
      }
  ws_cpu = (process_cpu_us () - cpu0) / queries;
  ws_wall = (g_get_monotonic_time () - wall0) / queries;

  wall0 = g_get_monotonic_time ();
  for (gint i = 0; i < MAX (queries / 10, 1); i++)
    if (!ask (ws, "{\"type\":\"presence\",\"channel\":\"bench\",\"limit\":1000}", "presence"))
      {
        g_printerr ("presence got no answer\n");
        return 1;
      }
  page_wall = (g_get_monotonic_time () - wall0) / MAX (queries / 10, 1);

  printf ("RESULT presence_stats engine=%s members=%d queries=%d engine_cpu_us=%.2f "
          "engine_wall_us=%.2f ws_rtt_us=%.1f ws_process_cpu_us=%.1f page1000_rtt_us=%.1f\n",
          redis ? "redis" : "memory", members, queries, engine_cpu, engine_wall, ws_wall, ws_cpu,
          page_wall);

  herald_test_client_free (ws);
  for (gint i = 0; i < members; i++)
    {
      g_autofree char *user = g_strdup_printf ("user-%06d", i);
      herald_engine_presence_leave (engine, "bench", user);
    }
  herald_test_server_stop (server);
  return 0;
}
