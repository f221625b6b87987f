/* herald-http-api.h: the HTTP server API for backends (/api/…), /healthz and
 * /metrics, as handlers on a worker's SoupServer.
 *
 * The handlers hold no logic of their own: they authenticate, validate and
 * convert the request, call the hub, and map its errors to status codes.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <json-glib/json-glib.h>
#include <libsoup/soup.h>
#include "herald-config.h"
#include "herald-http-respond.h"
#include "herald-hub.h"

G_BEGIN_DECLS

void herald_http_api_register (SoupServer *server, HeraldHub *hub);

void herald_http_apply_cors (SoupServerMessage *msg, HeraldConfig *config, gboolean allow_any);

char *herald_metrics_render (const HeraldStats *stats, const char *engine_name, const char *node_id,
                             const char *engine_state);

/* Shared with the keep-alive fast path for the hot endpoints (herald-http-fast.c),
 * so both answer alike. */
gboolean herald_http_api_key_matches (const char *given, const char *expected);
gboolean herald_http_api_headers_authorized (SoupMessageHeaders *headers, const char *api_key);
JsonObject *herald_http_api_parse_body (JsonParser *parser, const char *data, gsize length,
                                        gsize max, char **data_json, GError **error);
const char *herald_http_api_get_string_member (JsonObject *object, const char *name,
                                               GError **error);
gboolean herald_http_api_require_data (const char *data_json, GError **error);
gboolean herald_http_api_read_publish (JsonObject *request, const char *data_json,
                                       const char **channel, const char **key, GError **error);

G_END_DECLS
