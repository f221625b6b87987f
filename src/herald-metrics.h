/* herald-metrics.h: process-wide measurements for /metrics that no single
 * worker owns — the process itself (CPU, memory, file descriptors), the
 * publish-to-write latency histogram, HTTP API responses by status — and
 * their text.
 *
 * The recording calls are lock-free (atomic adds) and may be called from
 * any thread; they run once per API response and once per worker flush
 * that wrote deliveries, never once per delivery.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* An HTTP API response (/api/…) with @status was sent. */
void herald_metrics_count_api_response (guint status);

/* A worker handed deliveries to the kernel @usec microseconds after the
 * oldest of their messages was published (received by this node). */
void herald_metrics_observe_write_latency (gint64 usec);

/* What happened to a Redis engine's connections, for
 * herald_redis_events_total{event} (the names: herald_metrics_redis_event_name()). */
typedef enum
{
  HERALD_REDIS_EVENT_CONNECTED,        /* a link came up (first time or again) */
  HERALD_REDIS_EVENT_DISCONNECTED,     /* a working link was lost */
  HERALD_REDIS_EVENT_MASTER_CHANGED,   /* Sentinel named another master */
  HERALD_REDIS_EVENT_READONLY,         /* a server answered READONLY (a demoted master) */
  HERALD_REDIS_EVENT_HISTORY_LOST,     /* the epoch changed: Redis may have lost writes */
  HERALD_REDIS_EVENT_PUBLISH_UNSTORED, /* a publish delivered locally only, offset null */
  HERALD_REDIS_EVENT_SENTINEL_LOST,    /* a sentinel that answered went away */
  HERALD_REDIS_EVENT_RESET_NOTICE,     /* a channel's live subscribers told of a gap */
  HERALD_N_REDIS_EVENTS
} HeraldRedisEvent;

void herald_metrics_count_redis_event (HeraldRedisEvent event);
const char *herald_metrics_redis_event_name (HeraldRedisEvent event);
/* herald_redis_events_total, every event (Redis engines only). */
void herald_metrics_append_redis (GString *out);
/* How a backend call ([proxy] hooks) ended */
typedef enum
{
  HERALD_PROXY_RESULT_OK,          /* {"result":…} */
  HERALD_PROXY_RESULT_ERROR,       /* {"error":…}: the backend refused */
  HERALD_PROXY_RESULT_DISCONNECT,  /* {"disconnect":…} */
  HERALD_PROXY_RESULT_TIMEOUT,     /* slower than [proxy] timeout */
  HERALD_PROXY_RESULT_UNREACHABLE, /* refused, reset, DNS … */
  HERALD_PROXY_RESULT_HTTP_ERROR,  /* a status other than 2xx */
  HERALD_PROXY_RESULT_INVALID,     /* not the hook's JSON, or over 1 MiB */
  HERALD_PROXY_RESULT_OVERLOADED,  /* max-in-flight calls were pending */
  HERALD_PROXY_N_RESULTS
} HeraldProxyResult;

/* A call of hook @hook (a HeraldHook) ended with @result after @usec. */
void herald_metrics_observe_proxy (guint hook, HeraldProxyResult result, gint64 usec);
/* [auth] jwks-url: a fetch of the key set ended (@ok: a usable set came),
 * and the set in use now holds @n_keys keys. */
void herald_metrics_count_jwks_fetch (gboolean ok, guint n_keys);

/* Appends, in the text format 0.0.4 with HELP and TYPE lines:
 * process_cpu_seconds_total, process_resident_memory_bytes,
 * process_virtual_memory_bytes, process_open_fds, process_max_fds,
 * process_start_time_seconds (Prometheus' process collector names);
 * herald_publish_write_latency_seconds (histogram);
 * herald_http_api_requests_total{code};
 * herald_proxy_requests_total{hook,result} and
 * herald_proxy_duration_seconds{hook} (histogram); and, when @engine_state is not
 * NULL, herald_engine_state{state="ok"|"degraded"} (1 for the current one)
 * and herald_engine_up; once a key set was fetched,
 * herald_jwks_fetches_total{result="ok"|"error"}, herald_jwks_keys and
 * herald_jwks_last_success_timestamp_seconds. */
/* The text format's pieces: "# HELP"/"# TYPE" lines, one unlabelled
 * sample with its header, an escaped label value */
void herald_metrics_append_header (GString *out, const char *name, const char *type,
                                   const char *help);
void herald_metrics_append_single (GString *out, const char *name, const char *type,
                                   const char *help, guint64 value);
void herald_metrics_append_label_value (GString *out, const char *value);

void herald_metrics_append_process (GString *out);
void herald_metrics_append_herald (GString *out, const char *engine_state);

G_END_DECLS
