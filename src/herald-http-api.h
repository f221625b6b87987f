/* herald-http-api.h: the HTTP server API for backends (/api/…), /healthz and
 * /metrics, as handlers on a worker's SoupServer.
 *
 * The handlers hold no logic of their own: they authenticate, validate and
 * convert the request, call the hub, and map its errors to status codes.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <libsoup/soup.h>
#include "herald-config.h"
#include "herald-hub.h"

G_BEGIN_DECLS

void herald_http_api_register (SoupServer *server, HeraldHub *hub);

void herald_http_apply_cors (SoupServerMessage *msg, HeraldConfig *config, gboolean allow_any);

char *herald_metrics_render (const HeraldStats *stats, const char *engine_name,
                             const char *node_id);

G_END_DECLS
