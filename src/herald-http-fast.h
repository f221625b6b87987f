/* herald-http-fast.h: HTTP/1.1 keep-alive fast path for the hot API calls.
 *
 * Plain-TCP connections accepted by a worker are first owned by this small
 * reader, in the worker's epoll set. It peeks at each request head: the
 * publishing calls (POST /api/publish, /api/broadcast, /api/users/{id}/send,
 * /api/connections/{id}/send with a Content-Length body) are answered here and
 * the connection is kept for the next request; anything else is handed to
 * libsoup at the request boundary, with nothing of that request consumed.
 *
 * Everything here runs in the worker's thread.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

#include "herald-hub.h"
#include "herald-http-fast-wire.h"
#include "herald-http-upgrade.h"
#include "herald-loop.h"

G_BEGIN_DECLS

typedef struct _HeraldHttpFast HeraldHttpFast;

/* Gives @fd to libsoup (@listener is the one passed to
 * herald_http_fast_accept()). @prefix (may be NULL): bytes of the next
 * request already read from @fd, to be read before it. Takes ownership of @fd. */
typedef void (*HeraldHttpFastHandOff) (gpointer user_data, gpointer listener, int fd,
                                       GBytes *prefix);

HeraldHttpFast *herald_http_fast_new (HeraldHub *hub, HeraldLoop *loop,
                                      HeraldHttpFastHandOff hand_off, gpointer user_data);
/* Closes every connection still owned here. */
void herald_http_fast_free (HeraldHttpFast *self);
/* First heads that are plain WebSocket or SSE handshakes go to @upgrade
 * (herald-http-upgrade.h; unowned, NULL: all to libsoup). */
void herald_http_fast_set_upgrade (HeraldHttpFast *self, HeraldHttpUpgrade *upgrade);

/* Takes ownership of the accepted, non-blocking @fd; its events come
 * through a HeraldLoopHandler (herald-loop.h). */
void herald_http_fast_accept (HeraldHttpFast *self, int fd, gpointer listener);
/* Writes the responses of this iteration; call once per loop iteration. */
void herald_http_fast_flush (HeraldHttpFast *self);
gboolean herald_http_fast_has_pending (HeraldHttpFast *self);
/* Drops connections past their deadline; call from the worker's 1 s tick. */
void herald_http_fast_sweep (HeraldHttpFast *self, guint32 now);
/* Closes every connection (server shutting down). */
void herald_http_fast_close_all (HeraldHttpFast *self);
guint herald_http_fast_get_n_connections (HeraldHttpFast *self);

int herald_http_fast_read_head_for_test (HeraldHttpFast *self, const char *head, gsize head_len,
                                         gboolean simple, HeraldHttpFastHead *out);

G_END_DECLS
