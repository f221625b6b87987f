/* herald-front.h: the network front of one shard.
 *
 * A front owns what a worker's thread needs to speak HTTP: the listening
 * sockets (accepted in batches), the keep-alive fast path for the hot API
 * calls (herald-http-fast.h) and the SoupServer with the WebSocket and SSE
 * handshakes (herald-http.h), the HTTP API (herald-http-api.h), the early
 * refusals and the handshake deadline. It turns requests into hub calls; a
 * finished handshake goes to the hub with herald_hub_adopt(), which hands
 * the socket to the front's worker. The worker knows the front only through
 * HeraldWorkerFrontFuncs.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>

#include "herald-hub.h"
#include "herald-worker.h"

G_BEGIN_DECLS

#define HERALD_TYPE_FRONT (herald_front_get_type ())
G_DECLARE_FINAL_TYPE (HeraldFront, herald_front, HERALD, FRONT, GObject)

/* A front for @worker (before herald_worker_start()): it listens on
 * @sockets (GSocket, bound and listening; those with the "herald-tls" data
 * set speak TLS with @certificate). The worker keeps the front. */
HeraldFront *herald_front_attach (HeraldHub *hub, HeraldWorker *worker, GPtrArray *sockets,
                                  GTlsCertificate *certificate);

G_END_DECLS
