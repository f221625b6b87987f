/* herald-security.h: the handshake deadline.
 *
 * Herald's slowloris defence: libsoup 3.2's SoupServer has no request
 * timeout of its own, so every connection libsoup still handles (TLS
 * handshake, request head and body, idle keep-alive) must make progress
 * within [limits] handshake-timeout, checked by the front's 1 s tick. (Token
 * refresh, once part of this file, is a protocol handler: herald-protocol.c.)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <libsoup/soup.h>

#include "herald-config.h"

G_BEGIN_DECLS

/* Watches @server's connections until their request is complete (worker thread). */
void herald_security_watch_server (SoupServer *server, HeraldConfig *config);
/* A connection the front accepted itself (before handing it to @server). */
void herald_security_watch_socket (SoupServer *server, GSocket *socket);
/* The connection of @msg was taken over by Herald: no more deadline. */
void herald_security_forget (SoupServer *server, SoupServerMessage *msg);
/* Drops the connections past their deadline; called from the front's tick. */
void herald_security_sweep (SoupServer *server, guint32 now);

G_END_DECLS
