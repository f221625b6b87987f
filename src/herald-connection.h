/* herald-connection.h: one established WebSocket or SSE stream.
 *
 * After the handshake Herald owns the socket: the connection parses client
 * frames itself, keeps a bounded queue of references to shared frames, and
 * writes everything queued with one writev per loop iteration. A connection
 * lives and dies in one worker thread; nothing else touches it.
 *
 * The connection is the bottom of the stack: it knows neither its worker nor
 * the hub. It lives in a HeraldConnectionHost, which gives it the epoll set,
 * the list of connections to flush, counters, a read buffer and a snapshot
 * of its limits, and takes its reports upward (a message received, closing,
 * gone, the next visit) through HeraldConnectionHostFuncs.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>
#include <json-glib/json-glib.h>

#include "herald-channel.h"
#include "herald-info.h"
#include "herald-jwt.h"
#include "herald-loop.h"
#include "herald-message.h"
#include "herald-send-batch.h"
#include "herald-ws.h"

G_BEGIN_DECLS

#define HERALD_TYPE_CONNECTION (herald_connection_get_type ())
G_DECLARE_FINAL_TYPE (HeraldConnection, herald_connection, HERALD, CONNECTION, GObject)

typedef enum
{
  HERALD_CONNECTION_OPEN,
  HERALD_CONNECTION_CLOSING, /* close frame queued; waiting for flush and the peer */
  HERALD_CONNECTION_CLOSED,
} HeraldConnectionState;

typedef struct
{
  const char *id;
  HeraldTransport transport;
  int fd;           /* owned: closed with the connection */
  GIOStream *tls;   /* TLS stream to use instead of fd (NULL on plain TCP) */
  GBytes *leftover; /* bytes libsoup read past the request */
  gboolean deflate; /* permessage-deflate negotiated */
  const char *remote_address;
  HeraldJwtClaims *claims; /* transfer full; NULL for anonymous */
  gboolean proxied;        /* @claims came from the backend: exp is exact, expiry asks it */
  GBytes *prelude;         /* written before anything else (the handshake's answer), or NULL */
  gboolean registered;     /* fd is in the worker's epoll set already (the front's handler) */
} HeraldConnectionSetup;

/* The limits a connection reads, kept current by whoever owns the
 * configuration (written with g_atomic_int_set(), read with g_atomic_int_get()). */
typedef struct
{
  gint heartbeat_interval;   /* s */
  gint connection_timeout;   /* s */
  gint leeway;               /* s, on token expiry */
  gint messages_per_second;  /* 0 = unlimited */
  gint send_queue_max_bytes; /* past it: closed 4001 */
  gint max_message_size;     /* bytes of one client frame and message */
  gint io_uring; /* batch socket writes with io_uring when the kernel allows (read at start) */
} HeraldStreamLimits;

typedef struct _HeraldConnectionHost HeraldConnectionHost;

/* Reports upward, in the worker thread. */
typedef struct
{
  /* A complete text message from the client (WebSocket). */
  void (*received) (HeraldConnectionHost *host, HeraldConnection *connection, const char *text,
                    gsize length);
  /* The connection began closing with @code (it stays until flushed). */
  void (*closing) (HeraldConnectionHost *host, HeraldConnection *connection, guint16 code,
                   const char *reason);
  /* The socket is gone: drop the connection from every table. */
  void (*finished) (HeraldConnectionHost *host, HeraldConnection *connection);
  /* Visit the connection (herald_connection_sweep()) at @when (monotonic
   * seconds; 0 = next tick, G_MAXUINT32 = never). */
  void (*schedule) (HeraldConnectionHost *host, HeraldConnection *connection, guint32 when);
  /* A proxied connection's expiry passed: TRUE when the host asks the
   * backend (herald_connection_set_expiry() or a close follows), FALSE to
   * close with 4003. */
  gboolean (*expired) (HeraldConnectionHost *host, HeraldConnection *connection);
} HeraldConnectionHostFuncs;

struct _HeraldConnectionHost
{
  const HeraldConnectionHostFuncs *funcs;
  HeraldLoop *loop;
  GPtrArray *dirty;   /* connections with output this iteration (owned refs) */
  HeraldStats *stats; /* the host's counters */
  guint8 *scratch;    /* a read buffer shared by the host's connections */
  gsize scratch_size;
  HeraldWsInflater *inflater;
  const HeraldStreamLimits *limits;
  HeraldSendBatch *batch; /* the flush's writes in few system calls; NULL: one sendmsg each */
};

HeraldConnection *herald_connection_new (HeraldConnectionHost *host, HeraldConnectionSetup *setup);

const char *herald_connection_get_id (HeraldConnection *self);
const char *herald_connection_get_user_id (HeraldConnection *self); /* NULL when anonymous */
HeraldTransport herald_connection_get_transport (HeraldConnection *self);
HeraldConnectionState herald_connection_get_state (HeraldConnection *self);
HeraldConnectionHost *herald_connection_get_host (HeraldConnection *self);
const HeraldJwtClaims *herald_connection_get_claims (HeraldConnection *self);
/* After a token refresh: new permissions and expiry (the subject must not change). */
void herald_connection_set_claims (HeraldConnection *self, HeraldJwtClaims *claims);
/* Token expiry on herald_loop_now()'s clock, 0 = never. */
gint64 herald_connection_get_expiry (HeraldConnection *self);
/* A proxied connection's new expiry, unix seconds (exact; 0 = never) */
void herald_connection_set_expiry (HeraldConnection *self, gint64 expire_at);
gboolean herald_connection_is_proxied (HeraldConnection *self);
HeraldConnectionInfo *herald_connection_get_info (HeraldConnection *self);
int herald_connection_get_fd (HeraldConnection *self);

/* The "subs" member of the "connected" greeting (the token's subs claim). */
void herald_connection_set_greeting_subs (HeraldConnection *self, JsonNode *subs);
/* Starts I/O: registers with the worker's loop, sends the greeting. */
void herald_connection_start (HeraldConnection *self);

/* Queues a shared frame (a reference is taken). Past send-queue-max-bytes the
 * connection is closed 4001 and the frame dropped. */
void herald_connection_enqueue (HeraldConnection *self, GBytes *frame);
/* Delivers @message in the connection's wire variant. */
void herald_connection_deliver (HeraldConnection *self, HeraldMessage *message);
/* The same, conflating by key when @conflate (a conflate=true namespace). */
void herald_connection_deliver_full (HeraldConnection *self, HeraldMessage *message,
                                     gboolean conflate);
/* Sends a JSON object built for this connection only (replies, errors). */
void herald_connection_send_json (HeraldConnection *self, JsonBuilder *builder);
/* {"type":"error","code":…,"message":…} (+ "id" when @id is not NULL) */
void herald_connection_send_error (HeraldConnection *self, const char *code, const char *message,
                                   JsonNode *id);

/* SSE: the stream's first bytes (retry, the id or a reset event, "connected"). */
void herald_connection_send_sse_greeting (HeraldConnection *self, const char *id, gboolean reset);

/* Writes what is queued (one writev). */
void herald_connection_flush (HeraldConnection *self);
/* Writes what @connections (the host's dirty list) have queued, through the
 * host's send batch when it has one; called by the worker after each iteration. */
void herald_connection_flush_many (HeraldConnectionHost *host, GPtrArray *connections);
/* Socket readiness from the loop. */
void herald_connection_handle_events (HeraldConnection *self, guint32 epoll_events);

/* Closes with @code: queues a close frame (WebSocket) or ends the stream (SSE). */
void herald_connection_close (HeraldConnection *self, guint16 code, const char *reason);
void herald_connection_drain (HeraldConnection *self, guint after_ms);
void herald_connection_schedule_drain (HeraldConnection *self, guint delay_ms, guint after_ms);

/* Sweep: heartbeats, idle timeout, token expiry, close deadline. Returns the
 * next time (monotonic seconds) this connection needs a visit. */
guint32 herald_connection_sweep (HeraldConnection *self, guint32 now);

/* Subscriptions (worker thread). The hub keeps presence and the worker's
 * table in step (herald_hub_subscribe(), herald_hub_unsubscribe()). */
guint herald_connection_get_n_subscriptions (HeraldConnection *self);
HeraldSubscription *herald_connection_get_subscription (HeraldConnection *self, guint index);
HeraldSubscription *herald_connection_find_subscription (HeraldConnection *self,
                                                         const char *channel);
HeraldSubscription *herald_connection_add_subscription (HeraldConnection *self,
                                                        HeraldChannel *channel);
void herald_connection_remove_subscription (HeraldConnection *self,
                                            HeraldSubscription *subscription);

/* Rate limiting: TRUE when the client may send another message now. */
gboolean herald_connection_take_token (HeraldConnection *self);

/* Wheel links, owned by the worker's timer wheel. */
typedef struct
{
  HeraldConnection *prev, *next;
  guint slot;
  gboolean linked;
} HeraldWheelLink;
HeraldWheelLink *herald_connection_get_wheel_link (HeraldConnection *self);

G_END_DECLS
