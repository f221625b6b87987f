/* test-metrics.c: what operators graph first, from a real Herald (worker
 * threads, loopback port): process CPU, memory and fds, the
 * publish-to-write latency histogram, HTTP API responses by status, the
 * engine state; and the [server] metrics and admin-page switches.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>
#include <time.h>

#include "herald-test-server.h"

#define API "[api]\nkey=k\n"
#define AUTH "Authorization: Bearer k\r\n"

/* The value of the sample @key ("name" or "name{labels}"); fails when absent */
static double
sample (const char *text, const char *key)
{
  g_auto (GStrv) lines = g_strsplit (text, "\n", -1);

  for (guint i = 0; lines[i] != NULL; i++)
    if (g_str_has_prefix (lines[i], key) && lines[i][strlen (key)] == ' ')
      return g_ascii_strtod (lines[i] + strlen (key) + 1, NULL);
  g_error ("no sample %s in:\n%s", key, text);
}

static char *
get_metrics (HeraldTestServer *server)
{
  guint status = 0;
  char *text = herald_test_http (server, "GET", "/metrics", NULL, NULL, &status);

  g_assert_cmpuint (status, ==, 200);
  return text;
}

/* Spends @seconds of CPU time (bounded: CPU time only grows) */
static void
burn_cpu (double seconds)
{
  clock_t start = clock ();
  volatile guint64 x = 0;

  while ((double)(clock () - start) / CLOCKS_PER_SEC < seconds)
    x++;
}

static void
test_process (void)
{
  HeraldTestServer *server = herald_test_server_start (API, 2);
  g_autofree char *text = NULL;
  double start, now;

  /* Herald runs in this process: make its CPU time visible (10 ms ticks) */
  burn_cpu (0.05);
  text = get_metrics (server);
  start = sample (text, "process_start_time_seconds");
  now = (double)g_get_real_time () / G_USEC_PER_SEC;

  g_assert_cmpfloat (sample (text, "process_cpu_seconds_total"), >, 0);
  /* RSS of this test process, which Herald runs in: some MiB */
  g_assert_cmpfloat (sample (text, "process_resident_memory_bytes"), >, 1024 * 1024);
  g_assert_cmpfloat (sample (text, "process_virtual_memory_bytes"), >=,
                     sample (text, "process_resident_memory_bytes"));
  /* at least the listening sockets, the epoll and event fds */
  g_assert_cmpfloat (sample (text, "process_open_fds"), >, 3);
  g_assert_cmpfloat (sample (text, "process_max_fds"), >=, sample (text, "process_open_fds"));
  g_assert_cmpfloat (start, <=, now + 1);
  g_assert_cmpfloat (start, >, now - 3600);
  g_assert_nonnull (strstr (text, "# TYPE process_cpu_seconds_total counter\n"));
  g_assert_nonnull (strstr (text, "# TYPE process_open_fds gauge\n"));

  /* The in-process engine is always fine */
  g_assert_cmpfloat (sample (text, "herald_engine_up"), ==, 1);
  g_assert_cmpfloat (sample (text, "herald_engine_state{state=\"ok\"}"), ==, 1);
  g_assert_cmpfloat (sample (text, "herald_engine_state{state=\"degraded\"}"), ==, 0);
  herald_test_server_stop (server);
}

static void
test_latency_and_api_codes (void)
{
  HeraldTestServer *server = herald_test_server_start (API, 2);
  HeraldTestClient *ws = herald_test_ws_open (server, "/ws", NULL);
  HeraldTestClient *more[5];
  g_autofree char *before = NULL;
  g_autofree char *after = NULL;
  g_autofree char *answer = NULL;
  g_autoptr (JsonObject) reply = NULL;
  g_autoptr (JsonObject) message = NULL;
  const char *inf = "herald_publish_write_latency_seconds_bucket{le=\"+Inf\"}";
  const char *ok = "herald_http_api_requests_total{code=\"200\"}";
  const char *unauthorized = "herald_http_api_requests_total{code=\"401\"}";
  const char *not_found = "herald_http_api_requests_total{code=\"404\"}";
  double unauthorized_before = 0, not_found_before = 0;
  guint status = 0;

  herald_test_ws_send_text (ws, "{\"type\":\"subscribe\",\"channel\":\"m\"}");
  reply = herald_test_ws_read_json (ws);
  g_assert_cmpstr (herald_test_json_get_string (reply, "type"), ==, "subscribed");
  for (guint i = 0; i < G_N_ELEMENTS (more); i++)
    {
      g_autoptr (JsonObject) r = NULL;

      more[i] = herald_test_ws_open (server, "/ws", NULL);
      herald_test_ws_send_text (more[i], "{\"type\":\"subscribe\",\"channel\":\"m\"}");
      r = herald_test_ws_read_json (more[i]);
      g_assert_cmpstr (herald_test_json_get_string (r, "type"), ==, "subscribed");
    }

  before = get_metrics (server);
  if (strstr (before, unauthorized) != NULL)
    unauthorized_before = sample (before, unauthorized);
  if (strstr (before, not_found) != NULL)
    not_found_before = sample (before, not_found);

  /* One publish delivered and written; one refused (401), one unknown (404) */
  answer = herald_test_http (server, "POST", "/api/publish", AUTH, "{\"channel\":\"m\",\"data\":1}",
                             &status);
  g_assert_cmpuint (status, ==, 200);
  message = herald_test_ws_read_json (ws);
  g_assert_cmpstr (herald_test_json_get_string (message, "type"), ==, "message");
  for (guint i = 0; i < G_N_ELEMENTS (more); i++)
    {
      g_autoptr (JsonObject) m = herald_test_ws_read_json (more[i]);

      g_assert_cmpstr (herald_test_json_get_string (m, "type"), ==, "message");
    }
  g_free (answer);
  answer = herald_test_http (server, "POST", "/api/publish", NULL, "{\"channel\":\"m\",\"data\":1}",
                             &status);
  g_assert_cmpuint (status, ==, 401);
  g_free (answer);
  answer = herald_test_http (server, "GET", "/api/connections/nobody", AUTH, NULL, &status);
  g_free (answer);
  answer = herald_test_http (server, "DELETE", "/api/connections/nobody", AUTH, NULL, &status);
  g_assert_cmpuint (status, ==, 404);

  after = get_metrics (server);
  /* Observed once per worker write batch (two workers), not once for each
   * of the six deliveries */
  g_assert_cmpfloat (sample (after, inf), >=, sample (before, inf) + 1);
  g_assert_cmpfloat (sample (after, inf), <=, sample (before, inf) + 2);
  g_assert_cmpfloat (sample (after, "herald_publish_write_latency_seconds_count"), ==,
                     sample (after, inf));
  g_assert_cmpfloat (sample (after, "herald_publish_write_latency_seconds_sum"), >,
                     sample (before, "herald_publish_write_latency_seconds_sum"));
  /* Buckets are cumulative */
  g_assert_cmpfloat (
      sample (after, "herald_publish_write_latency_seconds_bucket{le=\"0.000100\"}"), <=,
      sample (after, "herald_publish_write_latency_seconds_bucket{le=\"5.000000\"}"));
  g_assert_cmpfloat (sample (after, ok), >=, sample (before, ok) + 1);
  g_assert_cmpfloat (sample (after, unauthorized), ==, unauthorized_before + 1);
  g_assert_cmpfloat (sample (after, not_found), >=, not_found_before + 1);
  g_assert_nonnull (strstr (after, "# TYPE herald_publish_write_latency_seconds histogram\n"));
  g_assert_nonnull (strstr (after, "# TYPE herald_http_api_requests_total counter\n"));

  herald_test_client_free (ws);
  for (guint i = 0; i < G_N_ELEMENTS (more); i++)
    herald_test_client_free (more[i]);
  herald_test_server_stop (server);
}

static void
test_switches (void)
{
  guint status = 0;

  {
    /* Loopback only, switches unset: both served */
    HeraldTestServer *server = herald_test_server_start (API, 1);
    g_autofree char *metrics = herald_test_http (server, "GET", "/metrics", NULL, NULL, &status);
    g_autofree char *admin = NULL;

    g_assert_cmpuint (status, ==, 200);
    admin = herald_test_http (server, "GET", "/admin.html", NULL, NULL, &status);
    g_assert_cmpuint (status, ==, 200);
    herald_test_server_stop (server);
  }
  {
    /* Switched off: 404, as if there were no such page; the rest still works */
    HeraldTestServer *server
        = herald_test_server_start (API "[server]\nmetrics=false\nadmin-page=false\n", 1);
    g_autofree char *metrics = herald_test_http (server, "GET", "/metrics", NULL, NULL, &status);
    g_autofree char *admin = NULL;
    g_autofree char *script = NULL;
    g_autofree char *demo = NULL;
    g_autofree char *health = NULL;

    g_assert_cmpuint (status, ==, 404);
    admin = herald_test_http (server, "GET", "/admin.html", NULL, NULL, &status);
    g_assert_cmpuint (status, ==, 404);
    script = herald_test_http (server, "GET", "/admin.js", NULL, NULL, &status);
    g_assert_cmpuint (status, ==, 404);
    demo = herald_test_http (server, "GET", "/", NULL, NULL, &status);
    g_assert_cmpuint (status, ==, 200);
    health = herald_test_http (server, "GET", "/healthz", NULL, NULL, &status);
    g_assert_cmpuint (status, ==, 200);
    herald_test_server_stop (server);
  }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/metrics/process-and-engine", test_process);
  g_test_add_func ("/metrics/latency-and-api-codes", test_latency_and_api_codes);
  g_test_add_func ("/metrics/switches", test_switches);
  return g_test_run ();
}
