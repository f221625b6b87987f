/* herald-metrics.c: process-wide measurements for /metrics (see the header).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "herald-config.h"
#include "herald-metrics.h"

#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

/* Upper bounds of the latency buckets, in microseconds (+Inf implied) */
static const gint64 latency_bounds[]
    = { 100,   250,    500,    1000,   2500,    5000,    10000,  25000,
        50000, 100000, 250000, 500000, 1000000, 2500000, 5000000 };
#define N_LATENCY_BUCKETS (G_N_ELEMENTS (latency_bounds) + 1)

static guint64 latency_buckets[N_LATENCY_BUCKETS]; /* not cumulative; atomic */
static guint64 latency_sum_usec;                   /* atomic */

#define STATUS_MIN 100
#define STATUS_MAX 599
static guint64 api_responses[STATUS_MAX - STATUS_MIN + 1]; /* atomic */

static guint64 redis_events[HERALD_N_REDIS_EVENTS]; /* atomic */
static const char *const redis_event_names[HERALD_N_REDIS_EVENTS]
    = { "connected",    "disconnected",     "master_changed", "readonly",
        "history_lost", "publish_unstored", "sentinel_lost",  "reset_notice" };
static guint64 proxy_requests[HERALD_N_HOOKS][HERALD_PROXY_N_RESULTS]; /* atomic */
static guint64 proxy_buckets[HERALD_N_HOOKS][N_LATENCY_BUCKETS];       /* not cumulative; atomic */
static guint64 proxy_sum_usec[HERALD_N_HOOKS];                         /* atomic */
static const char *const proxy_results[HERALD_PROXY_N_RESULTS] = {
  "ok", "error", "disconnect", "timeout", "unreachable", "http_error", "invalid", "overloaded"
};
static guint64 jwks_fetches_ok, jwks_fetches_error; /* atomic */
static guint64 jwks_keys, jwks_last_success;        /* atomic: keys in use, unix seconds */

static void
atomic_add (guint64 *where, guint64 value)
{
  __atomic_add_fetch (where, value, __ATOMIC_RELAXED);
}

static guint64
atomic_get (const guint64 *where)
{
  return __atomic_load_n (where, __ATOMIC_RELAXED);
}

void
herald_metrics_count_api_response (guint status)
{
  if (status >= STATUS_MIN && status <= STATUS_MAX)
    atomic_add (&api_responses[status - STATUS_MIN], 1);
}

void
herald_metrics_observe_write_latency (gint64 usec)
{
  guint i = 0;

  if (usec < 0)
    usec = 0;
  while (i < G_N_ELEMENTS (latency_bounds) && usec > latency_bounds[i])
    i++;
  atomic_add (&latency_buckets[i], 1);
  atomic_add (&latency_sum_usec, (guint64)usec);
}

void
herald_metrics_observe_proxy (guint hook, HeraldProxyResult result, gint64 usec)
{
  guint i = 0;

  g_return_if_fail (hook < HERALD_N_HOOKS && result < HERALD_PROXY_N_RESULTS);
  if (usec < 0)
    usec = 0;
  atomic_add (&proxy_requests[hook][result], 1);
  while (i < G_N_ELEMENTS (latency_bounds) && usec > latency_bounds[i])
    i++;
  atomic_add (&proxy_buckets[hook][i], 1);
  atomic_add (&proxy_sum_usec[hook], (guint64)usec);
}

void
herald_metrics_count_jwks_fetch (gboolean ok, guint n_keys)
{
  if (ok)
    {
      __atomic_store_n (&jwks_last_success, (guint64)(g_get_real_time () / G_USEC_PER_SEC),
                        __ATOMIC_RELAXED);
      atomic_add (&jwks_fetches_ok, 1);
    }
  else
    atomic_add (&jwks_fetches_error, 1);
  __atomic_store_n (&jwks_keys, (guint64)n_keys, __ATOMIC_RELAXED);
}

static void
append_jwks (GString *out)
{
  guint64 ok = atomic_get (&jwks_fetches_ok);
  guint64 failed = atomic_get (&jwks_fetches_error);

  if (ok == 0 && failed == 0)
    return;
  herald_metrics_append_header (out, "herald_jwks_fetches_total", "counter",
                                "Fetches of [auth] jwks-url, by result (error: the last good "
                                "key set was kept).");
  g_string_append_printf (out, "herald_jwks_fetches_total{result=\"ok\"} %" G_GUINT64_FORMAT "\n",
                          ok);
  g_string_append_printf (
      out, "herald_jwks_fetches_total{result=\"error\"} %" G_GUINT64_FORMAT "\n", failed);
  herald_metrics_append_single (out, "herald_jwks_keys", "gauge",
                                "Keys in the key set tokens are verified with.",
                                atomic_get (&jwks_keys));
  herald_metrics_append_single (out, "herald_jwks_last_success_timestamp_seconds", "gauge",
                                "When the key set was last fetched successfully (0: never).",
                                atomic_get (&jwks_last_success));
}

/* Label values escape '\\', '"' and newlines (text format 0.0.4). */
void
herald_metrics_append_label_value (GString *out, const char *value)
{
  for (const char *p = value != NULL ? value : ""; *p; p++)
    {
      if (*p == '\\')
        g_string_append (out, "\\\\");
      else if (*p == '"')
        g_string_append (out, "\\\"");
      else if (*p == '\n')
        g_string_append (out, "\\n");
      else
        g_string_append_c (out, *p);
    }
}

void
herald_metrics_append_header (GString *out, const char *name, const char *type, const char *help)
{
  g_string_append_printf (out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void
herald_metrics_append_single (GString *out, const char *name, const char *type, const char *help,
                              guint64 value)
{
  herald_metrics_append_header (out, name, type, help);
  g_string_append_printf (out, "%s %" G_GUINT64_FORMAT "\n", name, value);
}

/* Seconds from microseconds, in plain decimal (no exponent) */
static void
append_seconds (GString *out, guint64 usec)
{
  g_string_append_printf (out, "%" G_GUINT64_FORMAT ".%06u", usec / G_USEC_PER_SEC,
                          (guint)(usec % G_USEC_PER_SEC));
}

/* Fields of /proc/self/stat after the command name (field 3 is [0]) */
static gboolean
read_proc_stat (char ***fields)
{
  g_autofree char *text = NULL;
  const char *paren;

  if (!g_file_get_contents ("/proc/self/stat", &text, NULL, NULL))
    return FALSE;
  /* The command name may hold spaces and parentheses: skip to the last ')' */
  paren = strrchr (text, ')');
  if (paren == NULL || paren[1] != ' ')
    return FALSE;
  *fields = g_strsplit (g_strstrip ((char *)paren + 2), " ", -1);
  return g_strv_length (*fields) >= 22;
}

static guint64
boot_time (void)
{
  g_autofree char *text = NULL;
  const char *line;

  if (!g_file_get_contents ("/proc/stat", &text, NULL, NULL))
    return 0;
  line = strstr (text, "\nbtime ");
  return line != NULL ? g_ascii_strtoull (line + strlen ("\nbtime "), NULL, 10) : 0;
}

static guint
count_open_fds (void)
{
  g_autoptr (GDir) dir = g_dir_open ("/proc/self/fd", 0, NULL);
  guint n = 0;

  if (dir == NULL)
    return 0;
  while (g_dir_read_name (dir) != NULL)
    n++;
  /* The directory being read is one of them */
  return n > 0 ? n - 1 : 0;
}

void
herald_metrics_append_process (GString *out)
{
  g_auto (GStrv) stat = NULL;
  struct rlimit limit;

  g_return_if_fail (out != NULL);

  if (read_proc_stat (&stat))
    {
      /* stat[11], [12]: utime, stime (ticks); [19]: starttime (ticks since
       * boot); [20]: vsize (bytes); [21]: rss (pages) */
      long ticks = sysconf (_SC_CLK_TCK);
      long page = sysconf (_SC_PAGESIZE);
      guint64 cpu = g_ascii_strtoull (stat[11], NULL, 10) + g_ascii_strtoull (stat[12], NULL, 10);
      guint64 start = g_ascii_strtoull (stat[19], NULL, 10);

      if (ticks <= 0)
        ticks = 100;
      herald_metrics_append_header (out, "process_cpu_seconds_total", "counter",
                                    "User and system CPU time spent in seconds.");
      g_string_append (out, "process_cpu_seconds_total ");
      append_seconds (out, cpu * G_USEC_PER_SEC / (guint64)ticks);
      g_string_append_c (out, '\n');
      herald_metrics_append_header (out, "process_resident_memory_bytes", "gauge",
                                    "Resident memory size in bytes.");
      g_string_append_printf (out, "process_resident_memory_bytes %" G_GUINT64_FORMAT "\n",
                              g_ascii_strtoull (stat[21], NULL, 10) * (guint64)MAX (page, 1));
      herald_metrics_append_header (out, "process_virtual_memory_bytes", "gauge",
                                    "Virtual memory size in bytes.");
      g_string_append_printf (out, "process_virtual_memory_bytes %" G_GUINT64_FORMAT "\n",
                              g_ascii_strtoull (stat[20], NULL, 10));
      herald_metrics_append_header (out, "process_start_time_seconds", "gauge",
                                    "Start time of the process since unix epoch in seconds.");
      g_string_append (out, "process_start_time_seconds ");
      append_seconds (out, boot_time () * G_USEC_PER_SEC + start * G_USEC_PER_SEC / (guint64)ticks);
      g_string_append_c (out, '\n');
    }
  herald_metrics_append_header (out, "process_open_fds", "gauge",
                                "Number of open file descriptors.");
  g_string_append_printf (out, "process_open_fds %u\n", count_open_fds ());
  if (getrlimit (RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY)
    {
      herald_metrics_append_header (out, "process_max_fds", "gauge",
                                    "Maximum number of open file descriptors.");
      g_string_append_printf (out, "process_max_fds %" G_GUINT64_FORMAT "\n",
                              (guint64)limit.rlim_cur);
    }
}

void
herald_metrics_append_herald (GString *out, const char *engine_state)
{
  guint64 cumulative = 0;

  g_return_if_fail (out != NULL);

  herald_metrics_append_header (
      out, "herald_publish_write_latency_seconds", "histogram",
      "Time from a publish received to its deliveries handed to the kernel, once per "
      "worker write batch.");
  for (guint i = 0; i < N_LATENCY_BUCKETS; i++)
    {
      cumulative += atomic_get (&latency_buckets[i]);
      g_string_append (out, "herald_publish_write_latency_seconds_bucket{le=\"");
      if (i < G_N_ELEMENTS (latency_bounds))
        append_seconds (out, (guint64)latency_bounds[i]);
      else
        g_string_append (out, "+Inf");
      g_string_append_printf (out, "\"} %" G_GUINT64_FORMAT "\n", cumulative);
    }
  g_string_append (out, "herald_publish_write_latency_seconds_sum ");
  append_seconds (out, atomic_get (&latency_sum_usec));
  g_string_append_printf (
      out, "\nherald_publish_write_latency_seconds_count %" G_GUINT64_FORMAT "\n", cumulative);

  herald_metrics_append_header (out, "herald_http_api_requests_total", "counter",
                                "HTTP API (/api/…) responses sent, by status code.");
  for (guint status = STATUS_MIN; status <= STATUS_MAX; status++)
    {
      guint64 n = atomic_get (&api_responses[status - STATUS_MIN]);

      /* 200 always, so the series exists before the first call */
      if (n > 0 || status == 200)
        g_string_append_printf (
            out, "herald_http_api_requests_total{code=\"%u\"} %" G_GUINT64_FORMAT "\n", status, n);
    }

  herald_metrics_append_header (out, "herald_proxy_requests_total", "counter",
                                "Backend ([proxy]) calls, by hook and how they ended.");
  for (guint h = 0; h < HERALD_N_HOOKS; h++)
    for (guint r = 0; r < HERALD_PROXY_N_RESULTS; r++)
      {
        guint64 n = atomic_get (&proxy_requests[h][r]);

        /* ok always, so each hook's series exists before its first call */
        if (n > 0 || r == HERALD_PROXY_RESULT_OK)
          g_string_append_printf (out,
                                  "herald_proxy_requests_total{hook=\"%s\",result=\"%s\"} "
                                  "%" G_GUINT64_FORMAT "\n",
                                  herald_hook_name (h), proxy_results[r], n);
      }
  herald_metrics_append_header (out, "herald_proxy_duration_seconds", "histogram",
                                "Time a backend ([proxy]) call took, by hook.");
  for (guint h = 0; h < HERALD_N_HOOKS; h++)
    {
      const char *hook = herald_hook_name (h);

      cumulative = 0;
      for (guint i = 0; i < N_LATENCY_BUCKETS; i++)
        {
          cumulative += atomic_get (&proxy_buckets[h][i]);
          g_string_append_printf (out, "herald_proxy_duration_seconds_bucket{hook=\"%s\",le=\"",
                                  hook);
          if (i < G_N_ELEMENTS (latency_bounds))
            append_seconds (out, (guint64)latency_bounds[i]);
          else
            g_string_append (out, "+Inf");
          g_string_append_printf (out, "\"} %" G_GUINT64_FORMAT "\n", cumulative);
        }
      g_string_append_printf (out, "herald_proxy_duration_seconds_sum{hook=\"%s\"} ", hook);
      append_seconds (out, atomic_get (&proxy_sum_usec[h]));
      g_string_append_printf (
          out, "\nherald_proxy_duration_seconds_count{hook=\"%s\"} %" G_GUINT64_FORMAT "\n", hook,
          cumulative);
    }
  append_jwks (out);

  if (engine_state != NULL)
    {
      gboolean ok = strcmp (engine_state, "ok") == 0;

      herald_metrics_append_header (
          out, "herald_engine_up", "gauge",
          "1 when the engine (in-process, or Redis) works normally, 0 when degraded.");
      g_string_append_printf (out, "herald_engine_up %d\n", ok ? 1 : 0);
      herald_metrics_append_header (out, "herald_engine_state", "gauge",
                                    "The engine's state: 1 for the current one.");
      g_string_append_printf (out, "herald_engine_state{state=\"ok\"} %d\n", ok ? 1 : 0);
      g_string_append_printf (out, "herald_engine_state{state=\"degraded\"} %d\n", ok ? 0 : 1);
    }
}

void
herald_metrics_count_redis_event (HeraldRedisEvent event)
{
  g_return_if_fail (event < HERALD_N_REDIS_EVENTS);
  atomic_add (&redis_events[event], 1);
}

const char *
herald_metrics_redis_event_name (HeraldRedisEvent event)
{
  g_return_val_if_fail (event < HERALD_N_REDIS_EVENTS, NULL);
  return redis_event_names[event];
}

void
herald_metrics_append_redis (GString *out)
{
  herald_metrics_append_header (out, "herald_redis_events_total", "counter",
                                "Redis connection events: links up and lost, Sentinel master "
                                "changes, READONLY answers, epochs changed for lost writes, "
                                "publishes delivered locally only, sentinels lost, channels "
                                "whose live subscribers were told of a gap.");
  for (guint i = 0; i < HERALD_N_REDIS_EVENTS; i++)
    g_string_append_printf (out, "herald_redis_events_total{event=\"%s\"} %" G_GUINT64_FORMAT "\n",
                            redis_event_names[i], atomic_get (&redis_events[i]));
}
