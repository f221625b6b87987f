/* herald-http-api-app.h: the HTTP API's calls of the application layer —
 * presence pages and stats (and server-side subscriptions) — on libsoup,
 * called by herald-http-api.c's router once the request is authorised and
 * routed. Adapters only: they validate, call the hub and map its errors.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <json-glib/json-glib.h>
#include <libsoup/soup.h>

#include "herald-hub.h"

G_BEGIN_DECLS

/* GET /api/channels/{channel}/presence?limit=&cursor= (@stats FALSE) and
 * GET /api/channels/{channel}/presence-stats (@stats TRUE). */
void herald_http_api_presence (HeraldHub *hub, SoupServerMessage *msg, const char *channel,
                               GHashTable *query, gboolean stats);

/* POST /api/users/{user_id}/subscribe (@subscribe) and /unsubscribe with
 * the body @request {"channel":"c"} → {"connections":N}. */
void herald_http_api_user_subscription (HeraldHub *hub, SoupServerMessage *msg, const char *user_id,
                                        JsonObject *request, gboolean subscribe);

G_END_DECLS
