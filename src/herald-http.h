/* herald-http.h: the transport's HTTP side — WebSocket and SSE handshakes, demo page.
 *
 * libsoup parses requests and performs the WebSocket handshake; these
 * handlers decide (auth, Origin, limits, ids) and answer 4xx/5xx before any
 * upgrade. Once the 101 or the SSE headers are written the socket is taken
 * from libsoup and handed to a HeraldConnection.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <libsoup/soup.h>

#include "herald-hub.h"
#include "herald-worker.h"

G_BEGIN_DECLS

/* Adds the handshake handlers of @worker's front to @server. */
void herald_http_register (SoupServer *server, HeraldHub *hub, HeraldWorker *worker);

/* Extracts a token: ?token=, Authorization: Bearer, the subprotocol entry
 * bearer.<token>, or the herald_token cookie (in that order). */
char *herald_http_find_token (SoupServerMessage *msg);

/* herald_http_query_get_all(): herald-http-handshake.h */

G_END_DECLS
