/* herald-proxy.h: the [proxy] hooks over libsoup's HTTP client.
 *
 * A HeraldBackend (herald-backend.h) for one worker: its SoupSession lives
 * in the worker's main context, so calls never block the worker and answer
 * in its thread. Each call is bounded by [proxy] timeout, the answer by
 * 1 MiB, the pending calls by [proxy] max-in-flight; every call is counted
 * in /metrics.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "herald-backend.h"
#include "herald-jwt.h"
#include "herald-metrics.h"

G_BEGIN_DECLS

#define HERALD_TYPE_PROXY (herald_proxy_get_type ())
G_DECLARE_FINAL_TYPE (HeraldProxy, herald_proxy, HERALD, PROXY, GObject)

/* In the worker thread that will call it. NULL when @config has no hook. */
HeraldProxy *herald_proxy_new (HeraldConfig *config);

/* Pending calls fail (the worker is stopping). */
void herald_proxy_abort (HeraldProxy *self);

/* A backend's answer to @hook, checked (fuzzed by tests/fuzz/fuzz-proxy.c) */
HeraldBackendReply *herald_proxy_parse_answer (HeraldHook hook, const char *text, gsize length,
                                               HeraldProxyResult *result);

/* The claims a connect hook's result grants: "user" as sub, "expire_at" as
 * exp, "channels" and "publish" (absent = none). */
HeraldJwtClaims *herald_proxy_claims_from_result (JsonObject *result);

/* The largest answer read (bytes) */
#define HERALD_PROXY_MAX_ANSWER (1024 * 1024)

G_END_DECLS
