/* herald-connection-queue.h: a connection's output queue.
 *
 * A ring of references to shared frames (herald-message.h builds each
 * message's frames once; every subscriber queues the same bytes). The first
 * frame may be partly written (head_offset); the rest are untouched. A
 * frame may carry a tag: the channel message it delivers, so that a
 * conflate=true subscription can drop queued messages of the same channel
 * and key (herald_connection_queue_conflate()) without reading any bytes.
 *
 * Plain data owned by one HeraldConnection, in its worker's thread.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <sys/uio.h>

#include "herald-message.h"

G_BEGIN_DECLS

/* The ring and its counters, allocated with the first frame and freed when
 * the queue is empty again (herald_connection_queue_trim()): an idle
 * connection pays one pointer. */
typedef struct
{
  guint cap;
  guint head;
  guint len;
  gboolean keep_first;  /* drop_unstarted() keeps the first frame even unstarted (a
                         * handshake's answer); cleared once bytes are written */
  gsize head_offset;    /* bytes of the first frame already written */
  gsize bytes;          /* bytes queued, not yet written */
  HeraldMessage **tags; /* parallel to ring: a ref or NULL; NULL until a tag is pushed */
  GBytes *ring[];
} HeraldConnectionRing;

typedef struct
{
  HeraldConnectionRing *r; /* NULL while empty */
} HeraldConnectionQueue;

/* Frames queued. */
static inline guint
herald_connection_queue_len (const HeraldConnectionQueue *queue)
{
  return queue->r ? queue->r->len : 0;
}

/* Bytes queued, not yet written. */
static inline gsize
herald_connection_queue_bytes (const HeraldConnectionQueue *queue)
{
  return queue->r ? queue->r->bytes : 0;
}

/* Appends @frame (ownership taken) tagged with @tag (nullable, a ref is taken). */
void herald_connection_queue_push (HeraldConnectionQueue *queue, GBytes *frame, HeraldMessage *tag);
/* The first frame queued stays queued even unstarted (herald_connection_queue_drop_unstarted()). */
void herald_connection_queue_keep_first (HeraldConnectionQueue *queue);
/* Drops every frame not started on the wire (but a kept first one); returns how many. */
guint herald_connection_queue_drop_unstarted (HeraldConnectionQueue *queue);
/* Drops the unstarted frames tagged with a message of @message's channel and
 * key (a message without key matches nothing); returns how many. The order
 * of the others is kept. */
guint herald_connection_queue_conflate (HeraldConnectionQueue *queue, HeraldMessage *message);
/* Fills up to @max iovecs with what is to write next; returns the count. */
int herald_connection_queue_fill (HeraldConnectionQueue *queue, struct iovec *iov, int max);
/* @written bytes went out. */
void herald_connection_queue_consume (HeraldConnectionQueue *queue, gsize written);
/* Frees the storage of an empty queue (most connections are idle). */
void herald_connection_queue_trim (HeraldConnectionQueue *queue);
void herald_connection_queue_clear (HeraldConnectionQueue *queue);

G_END_DECLS
