/* herald-message.h: one published message, serialised once, framed once per wire variant.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib-object.h>

G_BEGIN_DECLS

/* Where a message goes (the engine's deliveries, the workers' inboxes). */
typedef enum
{
  HERALD_TARGET_CHANNEL,
  HERALD_TARGET_ALL,
  HERALD_TARGET_USER,
  HERALD_TARGET_CONNECTION,
  HERALD_TARGET_CLOSE, /* close a connection: code + reason */
  /* A join/leave event (herald_message_new_presence()): target = channel; only
   * subscriptions that asked for presence receive it. */
  HERALD_TARGET_PRESENCE,
  /* The server subscribes or unsubscribes a user's connections: target =
   * user, message = the direct frame {"type":"subscribed"|"unsubscribed",
   * "channel":…,"server":true} (herald-hub-subs.c). */
  HERALD_TARGET_USER_SUBSCRIPTION,
  /* A per-connection join/leave event (herald_message_new_join_leave()) of a
   * join-leave=true namespace: target = channel; every subscriber but the
   * connection it is about (herald_message_get_exclude()) receives it. */
  HERALD_TARGET_JOIN_LEAVE,
} HeraldTargetKind;

typedef enum
{
  HERALD_FRAME_WS,         /* plain WebSocket text frame */
  HERALD_FRAME_WS_DEFLATE, /* permessage-deflate frame, no context takeover: same bytes for all */
  HERALD_FRAME_SSE,        /* "id: …\nevent: message\ndata: …\n\n" */
  HERALD_N_FRAMES,
} HeraldFrameKind;

/**
 * HeraldMessage:
 *
 * An immutable, reference-counted message. The JSON text of the delivered
 * frame is built once when the message is created; each wire frame is built
 * the first time a subscriber of that variant needs it (from any thread: the
 * first builder wins, atomically) and then shared by reference.
 */
typedef struct _HeraldMessage HeraldMessage;

#define HERALD_TYPE_MESSAGE (herald_message_get_type ())
GType herald_message_get_type (void) G_GNUC_CONST;

/* A channel message: @data_json is valid JSON text (already validated);
 * @key (nullable, "" = none) the publish's conflation key, carried as "key". */
HeraldMessage *herald_message_new_channel (const char *channel, guint64 offset, guint64 seq,
                                           const char *epoch, const char *key,
                                           const char *data_json);
/* A direct message (to a user, a connection, or everybody): no channel, no offset. */
HeraldMessage *herald_message_new_direct (const char *data_json);
/* A presence event: {"type":"join"|"leave","channel":…,"user_id":…} (no offset). */
HeraldMessage *herald_message_new_presence (const char *channel, const char *user_id,
                                            gboolean joined);
/* @channel's position was reset under its subscribers (the engine may have
 * missed or lost messages of it): WebSocket `{"type":"subscribed",
 * "channel":…,"server":true,"recovered":false,"offset":@offset,"epoch":…}`,
 * SSE `event: reset`. Delivered like a channel message, never skipped; no
 * offset of its own (not history). */
HeraldMessage *herald_message_new_reset (const char *channel, guint64 offset, const char *epoch);
gboolean herald_message_is_reset (const HeraldMessage *message);

/* A join/leave event of connection @connection_id (@user_id NULL: anonymous)
 * {"type":"join"|"leave","channel":…,"user_id":…,"connection_id":…}; SSE
 * event join / leave; not delivered to @connection_id itself. */
HeraldMessage *herald_message_new_join_leave (const char *channel, const char *user_id,
                                              const char *connection_id, gboolean joined);
/* The same from its parts (as another node sent them). */
HeraldMessage *herald_message_new_event (const char *channel, const char *event,
                                         const char *exclude, const char *json, gsize json_len);

HeraldMessage *herald_message_ref (HeraldMessage *message);
void herald_message_unref (HeraldMessage *message);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (HeraldMessage, herald_message_unref)

const char *herald_message_get_channel (const HeraldMessage *message); /* NULL for direct */
guint64 herald_message_get_offset (const HeraldMessage *message);
guint64 herald_message_get_seq (const HeraldMessage *message);
const char *herald_message_get_epoch (const HeraldMessage *message);
gint64 herald_message_get_time (const HeraldMessage *message);     /* monotonic µs at creation */
const char *herald_message_get_key (const HeraldMessage *message); /* NULL when none */
const char *herald_message_get_exclude (const HeraldMessage *message); /* NULL when none */
const char *herald_message_get_event (const HeraldMessage *message);   /* the SSE event name */
/* The delivered JSON text: {"type":"message","channel":…,"offset":…,"data":…} */
const char *herald_message_get_json (const HeraldMessage *message, gsize *length);

/* The frame of @kind, built on first use. Never NULL. */
GBytes *herald_message_get_frame (HeraldMessage *message, HeraldFrameKind kind);
/* With @conflated, the variant with "conflated":true (a channel message that
 * replaced queued ones: herald-connection.c), also built once and shared. */
GBytes *herald_message_get_frame_full (HeraldMessage *message, HeraldFrameKind kind,
                                       gboolean conflated);

/* SSE event ids: "<epoch>-<seq>" — opaque to clients. */
char *herald_sse_id_format (const char *epoch, guint64 seq);
gboolean herald_sse_id_parse (const char *id, char **epoch, guint64 *seq);

/* Builds an SSE event block; @id and @event may be NULL; @data must not contain newlines. */
GBytes *herald_sse_event_new (const char *id, const char *event, const char *data, gsize data_len);

G_END_DECLS
