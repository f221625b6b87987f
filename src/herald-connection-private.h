/* herald-connection-private.h: the connection's fields, shared by the
 * files of the stream layer that implement it (herald-connection.c,
 * -subs.c, -table.c). Nothing else includes this.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "herald-connection.h"
#include "herald-connection-queue.h"
#include "herald-ws.h"

G_BEGIN_DECLS

/* What few connections need: a TLS stream, a greeting's subscriptions until
 * it is sent, a drain under way. Allocated on first use. */
typedef struct
{
  GIOStream *tls;
  JsonNode *greeting_subs; /* "subs" of the connected greeting, until it is sent */
  guint32 drain_at;        /* SIGTERM drain: when to hint and close, 0 = not draining */
  guint drain_after_ms;    /* the reconnect hint's "after" */
} ConnectionRare;

/* A list of subscriptions: one inline, more in an array. */
typedef struct
{
  guint len;
  guint cap;
  HeraldSubscription *items[];
} SubscriptionArray;

/* Kept small: an idle connection is mostly this instance (see "Memory per
 * connection" in docs/architecture.md). */
struct _HeraldConnection
{
  GObject parent_instance;

  HeraldConnectionHost *host; /* unowned: the worker outlives its connections */
  char *id;                   /* one block: id, then user id and remote address if set */
  HeraldJwtClaims *claims;
  gint64 connected_at;
  HeraldConnectionQueue out; /* frames to write (references to shared bytes) */

  /* Input: only a partial frame is kept between reads. */
  HeraldWsParser parser;
  GByteArray *inbuf;

  union
  {
    HeraldSubscription *one; /* subs_many == 0; NULL when none */
    SubscriptionArray *many; /* subs_many == 1 */
  } subs;                    /* owned */
  ConnectionRare *rare;      /* NULL until needed */

  HeraldWheelLink wheel;

  guint64 messages_sent;
  guint64 messages_received;

  int fd;
  guint32 last_seen;
  guint32 next_ping;
  guint32 close_deadline;
  guint32 expires_mono; /* token expiry on the loop clock (s), 0 = never */

  /* messages-per-second token bucket */
  gfloat tokens;
  guint32 tokens_at; /* monotonic ms (wraps after 49 days: only differences are used) */
  guint8 violations;
  guint8 forbidden;

  guint transport : 2; /* HeraldTransport */
  guint state : 2;     /* HeraldConnectionState */
  guint deflate : 1;
  guint write_armed : 1; /* EPOLLOUT in the epoll set */
  guint peer_closed : 1; /* close frame or EOF from the peer */
  guint wr_shutdown : 1; /* shutdown(SHUT_WR) done after the close frame */
  guint destroyed : 1;
  guint registered : 1; /* the fd was in the loop's epoll set before start() */
  guint proxied : 1;    /* claims from the backend: exact expiry, refreshed by it */
  guint has_user : 1;   /* id's block holds a user id */
  guint address : 2;    /* how id's block holds the remote address (herald-connection.c) */
  guint subs_many : 1;
  guint in_batch : 1; /* a write of this flush is queued in the host's send batch */
};

/* herald-connection-strings.c */
static inline GIOStream *
herald_connection_tls (HeraldConnection *self)
{
  return self->rare ? self->rare->tls : NULL;
}

/* The socket is gone (an error, EOF, or the close finished): out of the
 * loop and of the host's tables (herald-connection.c). */
void herald_connection_destroy_socket (HeraldConnection *self);
/* A closing connection whose output is all written shuts down its side
 * (herald-connection-write.c). */
void herald_connection_maybe_finish_close (HeraldConnection *self);

void herald_connection_strings_init (HeraldConnection *self, const char *id, const char *user_id,
                                     const char *remote_address);
gsize herald_connection_strings_size (HeraldConnection *self);
char *herald_connection_remote_address_dup (HeraldConnection *self);

G_END_DECLS
