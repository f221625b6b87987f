/* herald-protocol.h: what the protocol's handlers share
 * (herald-protocol.c, and herald-protocol-proxy.c for the [proxy] hooks).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "herald-router.h"
#include "herald-subscribe.h"

G_BEGIN_DECLS

/* The answering halves of subscribe and publish, once permission is
 * decided (herald-protocol.c) */
void herald_protocol_subscribe (HeraldRouter *router, HeraldConnection *conn,
                                const HeraldSubscribeRequest *sub, JsonNode *id);
void herald_protocol_publish (HeraldRouter *router, HeraldConnection *conn, const char *channel,
                              const char *key, const char *data_json, JsonNode *id);
/* …and calls @done (@done_data) once it answered */
void herald_protocol_publish_then (HeraldRouter *router, HeraldConnection *conn,
                                   const char *channel, const char *key, const char *data_json,
                                   JsonNode *id, GDestroyNotify done, gpointer done_data);

/* [proxy] (herald-protocol-proxy.c): the backend decides a subscribe
 * (subscribe=proxy) or publish (publish-proxy=true); the connection's later
 * frames wait for its answer. "rpc" frames; a proxied connection's expiry
 * (TRUE when the backend is asked). */
void herald_protocol_proxy_subscribe (HeraldRouter *router, HeraldConnection *conn,
                                      const HeraldSubscribeRequest *sub, JsonNode *id);
void herald_protocol_proxy_publish (HeraldRouter *router, HeraldConnection *conn,
                                    const char *channel, const char *key, const char *data_json,
                                    JsonNode *id);
void herald_protocol_proxy_rpc (HeraldRouter *router, HeraldConnection *conn, JsonObject *request,
                                JsonNode *id);
gboolean herald_protocol_proxy_refresh (HeraldRouter *router, HeraldConnection *conn);

G_END_DECLS
