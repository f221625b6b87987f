/* herald-info.h: what Herald reports about itself — connection and channel
 * snapshots, presence, counters, close codes.
 *
 * Plain values, filled in by the stream and the shards and gathered by the
 * hub; every layer may read them.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef enum
{
  HERALD_TRANSPORT_WEBSOCKET,
  HERALD_TRANSPORT_SSE,
} HeraldTransport;

const char *herald_transport_to_string (HeraldTransport transport); /* "websocket" | "sse" */

/* A snapshot of one connection, gathered from its worker. */
typedef struct
{
  char *id;
  char *user_id; /* NULL for anonymous */
  HeraldTransport transport;
  char *remote_address;
  gint64 connected_at; /* unix µs */
  char **channels;
  guint64 messages_sent;
  guint64 messages_received;
  guint64 bytes_queued;
} HeraldConnectionInfo;
void herald_connection_info_free (HeraldConnectionInfo *info);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (HeraldConnectionInfo, herald_connection_info_free)

typedef struct
{
  char *name;
  guint subscribers; /* connections on this node */
} HeraldChannelInfo;
void herald_channel_info_free (HeraldChannelInfo *info);

typedef struct
{
  char *channel;
  char **users;      /* one page, sorted, unique (empty for stats) */
  guint n_users;     /* the channel's distinct users */
  guint connections; /* subscribed connections, users' and anonymous */
  char *next;        /* the cursor of the next page, NULL after the last */
} HeraldPresence;
void herald_presence_free (HeraldPresence *presence);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (HeraldPresence, herald_presence_free)

/* Counters for /metrics, summed over workers. */
typedef struct
{
  guint connections_websocket;
  guint connections_sse;
  guint64 connections_opened;
  guint64 messages_received; /* frames/messages from clients */
  guint64 messages_published;
  guint64 deliveries;     /* messages queued to connections */
  guint64 bytes_written;  /* bytes written to sockets */
  guint64 writes_sendmsg; /* socket writes by one sendmsg() (or TLS) each */
  guint64 writes_batched; /* socket writes queued in an io_uring batch */
  guint64 batch_submits;  /* io_uring_enter() calls that carried them */
  guint64 bytes_queued;   /* now */
  guint64 dropped;        /* deliveries dropped (slow consumers closed) */
  guint64 conflated;      /* queued messages replaced by a newer one of their key */
  guint64 closes[16];     /* by close code, indexes from herald_close_code_index() */
  gint64 engine_channels; /* channels the engine keeps state for; -1 = not counted */
} HeraldStats;

/* Close codes counted in HeraldStats.closes, in index order. */
extern const guint16 herald_close_codes[16];
guint herald_close_code_index (guint16 code);

G_END_DECLS
