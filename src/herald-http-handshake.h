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

/* The steps, in the order both readers follow. Each returns FALSE (or
 * REFUSED) with @refusal filled when the handshake is refused. */

/* [server] allowed-origins against the Origin header (none: allowed). */
gboolean herald_handshake_origin_allowed (HeraldConfig *config, const HeraldHandshakeHeaders *h);
gboolean herald_handshake_check_origin (HeraldConfig *config, const HeraldHandshakeHeaders *h,
                                        HeraldHandshakeRefusal *refusal);

typedef enum
{
  HERALD_HANDSHAKE_TOKEN_REFUSED,  /* @refusal says why */
  HERALD_HANDSHAKE_TOKEN_VERIFIED, /* *claims_out is set */
  HERALD_HANDSHAKE_TOKEN_NONE,     /* no token: the anonymous rule (or a connect hook) decides */
} HeraldHandshakeToken;

/* Finds the token (herald_handshake_find_token()) and verifies it. */
HeraldHandshakeToken herald_handshake_verify_token (HeraldHub *hub, const HeraldHandshakeHeaders *h,
                                                    HeraldJwtClaims **claims_out,
                                                    HeraldHandshakeRefusal *refusal);
/* No token: [auth] anonymous decides. */
gboolean herald_handshake_check_anonymous (HeraldConfig *config, HeraldHandshakeRefusal *refusal);

/* RFC 6455 4.2.1 (Upgrade, Connection, Sec-WebSocket-Version and -Key) and
 * the subprotocol: *protocol_out gets the one to answer (NULL: none). */
gboolean herald_handshake_check_websocket (const HeraldHandshakeHeaders *h, char **protocol_out,
                                           HeraldHandshakeRefusal *refusal);
/* The Sec-WebSocket-Extensions answer (permessage-deflate), or NULL. */
char *herald_handshake_negotiate_deflate (HeraldConfig *config, const HeraldHandshakeHeaders *h);

/* An SSE request's channels (?channel=, with the server's: the subs claim;
 * deduplicated, checked against the limit, the names and @claims; the subs
 * need no permission) and resume point (Last-Event-ID, else ?lastEventId=).
 * Channels of a subscribe=proxy namespace are not checked but added to
 * @to_ask (pointers into *channels_out): the backend's subscribe hook
 * decides them. */
gboolean herald_handshake_check_sse (HeraldHub *hub, const HeraldHandshakeHeaders *h,
                                     const HeraldJwtClaims *claims, char ***channels_out,
                                     char **last_event_id_out, GPtrArray *to_ask,
                                     HeraldHandshakeRefusal *refusal);

/* /ws/<id>: whether the id a client asks for is one (NULL: none asked). */
gboolean herald_handshake_check_id (const char *requested_id, HeraldHandshakeRefusal *refusal);

/* Draining, the requested id (/ws/<id>, or NULL), then the hub's limits:
 * reserves *id (a new one when NULL) for @claims' user from @remote. */
gboolean herald_handshake_reserve (HeraldHub *hub, HeraldWorker *worker, const char *requested_id,
                                   const HeraldJwtClaims *claims, const char *remote, char **id,
                                   HeraldHandshakeRefusal *refusal);

/* The offered subprotocols without the bearer.<token> entries, which carry
 * the token and are never a protocol to select (nor echoed back); NULL when
 * nothing else was offered. */
char **herald_handshake_offered_protocols (const char *header);

/* Extracts a token: ?token=, Authorization: Bearer, the subprotocol entry
 * bearer.<token>, or the herald_token cookie (in that order). */
char *herald_handshake_find_token (const HeraldHandshakeHeaders *h);

/* All values of @key in a query string (repeated keys kept, percent-decoded). */
char **herald_http_query_get_all (const char *query, const char *key);

/* base64 (SHA-1 (key + RFC 6455 GUID)) into @out (29 bytes with the NUL). */
void herald_handshake_accept_key (const char *key, char out[29]);

G_END_DECLS
