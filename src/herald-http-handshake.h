/* herald-http-handshake.h: the decisions of a WebSocket or SSE handshake.
 *
 * Both readers of handshakes — libsoup's handlers (herald-http.c) and the
 * worker's own reader of the plain case (herald-http-upgrade.c) — decide
 * here, from the request's headers seen through a small accessor, so they
 * cannot drift: Origin, the token (query, Authorization, subprotocol,
 * cookie) and the anonymous rule, the RFC 6455 checks, the subprotocol and
 * permessage-deflate answers, the SSE request's channels and resume point,
 * draining, the connection id and the hub's limits. A refusal is described
 * (status, message, extra headers), and each reader writes it its own way.
 *
 * No libsoup here. Everything runs in the front's worker thread.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

#include "herald-connection.h"
#include "herald-hub.h"
#include "herald-jwt.h"
#include "herald-worker.h"

G_BEGIN_DECLS

/* A request's headers. get_one: the value of a header that occurs once (any
 * of them if repeated); get_list: all its values joined with ", ". Both
 * NULL when absent. */
typedef struct
{
  const char *(*get_one) (gpointer data, const char *name);
  const char *(*get_list) (gpointer data, const char *name);
  gpointer data;
  const char *query; /* the target's query, percent-encoded, or NULL */
} HeraldHandshakeHeaders;

/* Why a handshake was refused (status 0: it was not). */
typedef struct
{
  guint status;
  const char *message; /* static, or owned_message */
  char *owned_message;
  gboolean www_authenticate; /* 401: WWW-Authenticate: Bearer realm="herald" */
  gboolean retry_after;      /* 503 while draining: Retry-After: 1 */
  gboolean ws_version;       /* RFC 6455 4.4: Sec-WebSocket-Version: 13 */
} HeraldHandshakeRefusal;

void herald_handshake_refusal_clear (HeraldHandshakeRefusal *refusal);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (HeraldHandshakeRefusal, herald_handshake_refusal_clear)

/* One handshake in progress: what the decisions found. */
typedef struct
{
  HeraldHub *hub;
  HeraldWorker *worker;
  HeraldTransport transport;
  char *remote;
  HeraldJwtClaims *claims; /* NULL: anonymous */
  char *id;                /* once reserved */
  gboolean reserved;       /* released by clear() unless taken by setup() */
  char *protocol;          /* WebSocket: the subprotocol to answer, or NULL */
  char *extensions;        /* WebSocket: the Sec-WebSocket-Extensions answer, or NULL */
  gboolean deflate;
  char **channels;     /* SSE */
  char *last_event_id; /* SSE */
} HeraldHandshake;

void herald_handshake_init (HeraldHandshake *hs, HeraldHub *hub, HeraldWorker *worker,
                            HeraldTransport transport, const char *remote);
/* Releases the reservation when no connection took it. */
void herald_handshake_clear (HeraldHandshake *hs);

/* The order both readers follow: authenticate, then (WebSocket)
 * check_websocket or (SSE) check_sse, then reserve, then (WebSocket)
 * negotiate. Each returns FALSE with @refusal filled when refused. */
gboolean herald_handshake_origin_allowed (HeraldConfig *config, const HeraldHandshakeHeaders *h);
gboolean herald_handshake_authenticate (HeraldHandshake *hs, const HeraldHandshakeHeaders *h,
                                        HeraldHandshakeRefusal *refusal);
gboolean herald_handshake_check_websocket (HeraldHandshake *hs, const HeraldHandshakeHeaders *h,
                                           HeraldHandshakeRefusal *refusal);
gboolean herald_handshake_check_sse (HeraldHandshake *hs, const HeraldHandshakeHeaders *h,
                                     HeraldHandshakeRefusal *refusal);
/* @requested_id: the id of /ws/<id>, or NULL for a new one. */
gboolean herald_handshake_reserve (HeraldHandshake *hs, const char *requested_id,
                                   HeraldHandshakeRefusal *refusal);
/* Fills hs->protocol, hs->extensions and hs->deflate. */
void herald_handshake_negotiate (HeraldHandshake *hs, const HeraldHandshakeHeaders *h);

/* The offered subprotocols without the bearer.<token> entries, which carry
 * the token and are never a protocol to select (nor echoed back); NULL when
 * nothing else was offered. */
char **herald_handshake_offered_protocols (const char *header);

/* Hands the reservation and the claims to @setup (the connection owns them
 * from now on); the caller fills fd, tls and leftover. */
void herald_handshake_setup (HeraldHandshake *hs, HeraldConnectionSetup *setup);

/* Extracts a token: ?token=, Authorization: Bearer, the subprotocol entry
 * bearer.<token>, or the herald_token cookie (in that order). */
char *herald_handshake_find_token (const HeraldHandshakeHeaders *h);

/* All values of @key in a query string (repeated keys kept, percent-decoded). */
char **herald_http_query_get_all (const char *query, const char *key);

/* base64 (SHA-1 (key + RFC 6455 GUID)) into @out (29 bytes with the NUL). */
void herald_handshake_accept_key (const char *key, char out[29]);

G_END_DECLS
