/* herald-subscribe.h: the hub's side of connections — its one way in for a
 * connection and its subscriptions, and the owner of its workers.
 *
 * A front that finished a handshake hands the socket over with
 * herald_hub_adopt(); every subscription — a WebSocket "subscribe", the
 * channels of an SSE request, and whatever comes later (a token's channels,
 * the API, a backend's answer) — enters through herald_hub_subscribe(). The
 * snapshot, the history replay, recovery, epochs, presence and the
 * permission check live here and nowhere else. Worker thread only.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "herald-connection.h"
#include "herald-hub.h"
#include "herald-worker.h"

G_BEGIN_DECLS

typedef enum
{
  HERALD_SUBSCRIBE_LIVE,   /* from now on (WebSocket, no "since") */
  HERALD_SUBSCRIBE_SINCE,  /* after one channel's offset and epoch (WebSocket "since") */
  HERALD_SUBSCRIBE_STREAM, /* a whole stream of channels after an SSE event id */
} HeraldSubscribeFrom;

typedef struct
{
  const char *const *channels; /* NULL-terminated; LIVE and SINCE name exactly one */
  HeraldSubscribeFrom from;
  guint64 since;             /* SINCE */
  const char *epoch;         /* SINCE; NULL = any */
  const char *last_event_id; /* STREAM; NULL or "" = a fresh stream */
  int presence;              /* join/leave events: -1 unchanged, 0 no, 1 yes */
  gboolean allowed;          /* permission already decided (the backend's answer, "subs") */
  gboolean server;           /* decided by the server: no permission check */
  guint32 expires;           /* a verified subscription token's end (loop seconds), 0 = none */
} HeraldSubscribeRequest;

typedef struct
{
  gboolean with_recovery; /* SINCE: @recovered is meaningful */
  gboolean recovered;     /* every message after "since" was replayed */
  guint64 offset;         /* LIVE, SINCE: the offset the live stream starts after */
  char *epoch;            /* LIVE, SINCE: the channel's epoch ("" when unknown) */
} HeraldSubscribeResult;
void herald_subscribe_result_clear (HeraldSubscribeResult *result);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (HeraldSubscribeResult, herald_subscribe_result_clear)

/* Whether @claims (NULL: anonymous) may subscribe to (or see the presence of) @channel. */
gboolean herald_hub_may_subscribe (HeraldHub *self, const HeraldJwtClaims *claims,
                                   const char *channel);

/* A subscription token for @channel (subscribe=token namespaces): signed
 * with the connection-token key, sub = the connection's user, channel =
 * @channel, exp required ([auth] leeway applies). Returns its end on
 * herald_loop_now()'s clock, or 0 with HERALD_ERROR_FORBIDDEN. */
guint32 herald_hub_verify_subscription_token (HeraldHub *self, HeraldConnection *connection,
                                              const char *channel, const char *token,
                                              GError **error);

/* Subscribes @connection (of @worker) to @request's channels, replays what
 * the request asks for and fills @result. HERALD_ERROR_INVALID_ARGUMENT for a
 * bad request, HERALD_ERROR_FORBIDDEN when a channel is not allowed (nothing
 * is subscribed then). For STREAM the SSE greeting (retry, id or reset,
 * "connected") is queued before the replay. */
gboolean herald_hub_subscribe (HeraldHub *self, HeraldWorker *worker, HeraldConnection *connection,
                               const HeraldSubscribeRequest *request, HeraldSubscribeResult *result,
                               GError **error);

/* Ends one subscription (presence leave, the worker's table). */
void herald_hub_unsubscribe (HeraldHub *self, HeraldWorker *worker, HeraldConnection *connection,
                             HeraldSubscription *subscription);

/* A front finished a handshake whose id herald_hub_reserve_connection()
 * reserved: builds the connection from @setup (its fd, streams and claims
 * pass to it), registers it with @worker and the hub, starts it and, when
 * @subscribe is not NULL, subscribes it. Returns: (transfer full) (nullable)
 * the connection, NULL when @setup->fd is -1. */
HeraldConnection *herald_hub_adopt (HeraldHub *self, HeraldWorker *worker,
                                    HeraldConnectionSetup *setup,
                                    const HeraldSubscribeRequest *subscribe);

/* The hub's next worker (not started yet; a front attaches to it with
 * herald_front_attach()): its connections' reports come to the hub, their
 * messages to a router of their own. Returns: (transfer none): owned by the hub. */
HeraldWorker *herald_hub_new_worker (HeraldHub *self);

G_END_DECLS
