/* herald-security.h: token refresh and the handshake deadline.
 *
 * The refresh handler lets a client swap its token for a new one without
 * reconnecting. The handshake deadline is Herald's slowloris defence: libsoup
 * 3.2's SoupServer has no request timeout of its own, so every connection
 * libsoup still handles (TLS handshake, request head and body, idle
 * keep-alive) must make progress within [limits] handshake-timeout, checked
 * by the worker's 1 s tick.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <json-glib/json-glib.h>
#include <libsoup/soup.h>

#include "herald-connection.h"

G_BEGIN_DECLS

/* {"type":"refresh","token":"…"} → {"type":"refreshed","exp":N} */
void herald_security_handle_refresh (HeraldConnection *connection, JsonObject *request,
                                     JsonNode *id);

/* Watches @server's connections until their request is complete (worker thread). */
void herald_security_watch_server (SoupServer *server, HeraldWorker *worker);
/* A connection the worker accepted itself (before handing it to libsoup). */
void herald_security_watch_socket (HeraldWorker *worker, GSocket *socket);
/* The connection of @msg was taken over by Herald: no more deadline. */
void herald_security_forget (HeraldWorker *worker, SoupServerMessage *msg);
/* Drops the connections past their deadline; called from the worker's tick. */
void herald_security_sweep (HeraldWorker *worker, guint32 now);

G_END_DECLS
