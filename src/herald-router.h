/* herald-router.h: routes client messages to handlers by their "type".
 *
 * A table of handlers, one per message type, as the seed's MessageRouter:
 * registering a new type is one herald_router_register() call. The router
 * parses and checks the envelope; handlers see a JSON object and the request
 * "id" to echo. One router per worker thread (its JSON parser is reused).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <json-glib/json-glib.h>

#include "herald-connection.h"
#include "herald-hub.h"

G_BEGIN_DECLS

#define HERALD_TYPE_ROUTER (herald_router_get_type ())
G_DECLARE_FINAL_TYPE (HeraldRouter, herald_router, HERALD, ROUTER, GObject)

typedef void (*HeraldRouteFunc) (HeraldRouter *router, HeraldConnection *connection,
                                 JsonObject *request, JsonNode *id);

/* A router for the connections of @worker with Herald's protocol registered
 * (subscribe, unsubscribe, message, ping, pong, presence, presence_stats,
 * refresh). The hub
 * makes one per worker. */
HeraldRouter *herald_router_new (HeraldHub *hub, HeraldWorker *worker);
/* An empty router (tests). */
HeraldRouter *herald_router_new_empty (HeraldHub *hub, HeraldWorker *worker);

/* The hub and worker the handlers act through. */
HeraldHub *herald_router_get_hub (HeraldRouter *self);
HeraldWorker *herald_router_get_worker (HeraldRouter *self);

void herald_router_register (HeraldRouter *self, const char *type, HeraldRouteFunc func);
gboolean herald_router_has_route (HeraldRouter *self, const char *type);

/* Parses @text and calls the handler, or answers with the protocol's error:
 * invalid_json, bad_request (not an object, no string "type", bad "id"),
 * unknown_type ("Unknown message type: <type>"). */
void herald_router_dispatch (HeraldRouter *self, HeraldConnection *connection, const char *text,
                             gsize length);

/* The "data" member of the request being dispatched (for handlers), as
 * checked compact JSON text exactly as sent; NULL when absent. */
const char *herald_router_get_data (HeraldRouter *self);

/* The built-in protocol handlers (herald-protocol.c). */
void herald_protocol_register (HeraldRouter *router);
/* presence and presence_stats (herald-protocol-presence.c). */
void herald_protocol_register_presence (HeraldRouter *router);

/* A proxied connection's backend-given expiry passed (herald-protocol.c
 * registers the refresh hook): TRUE when the backend is asked. */
typedef gboolean (*HeraldExpiredFunc) (HeraldRouter *router, HeraldConnection *connection);
void herald_router_set_expired (HeraldRouter *self, HeraldExpiredFunc func);
gboolean herald_router_expired (HeraldRouter *self, HeraldConnection *connection);

/* Small helpers for handlers: a reply object {"type": @type, "id": @id?, …}.
 * Call json_builder_end_object() and herald_connection_send_json() after adding members. */
JsonBuilder *herald_reply_begin (const char *type, JsonNode *id);

G_END_DECLS
