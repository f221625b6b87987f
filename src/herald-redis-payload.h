/* herald-redis-payload.h: a channel message as Redis carries and keeps it,
 *   "<offset> <seq> <prev-seq> <unix-time> <epoch> <channel>\n<body>"
 * (PUBLISHed on `herald:ch:<channel>` and stored in its history list), the
 * body being the data JSON, or "K<key-bytes> <key>\n<data JSON>" for a
 * publish with a key (JSON never starts with K). Channel events (join/leave
 * of join-leave=true namespaces) go on the same topic, not stored, as
 *   "J <origin-node> <event> <connection>\n<JSON text>".
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>
#include <hiredis/hiredis.h>

#include "herald-message.h"

G_BEGIN_DECLS

typedef struct
{
  guint64 offset, seq, prev;
  gint64 time;
  char *epoch;
  char *channel;
  char *key;        /* NULL when none */
  const char *data; /* points into the parsed text */
} HeraldRedisPayload;

/* The body for @data_json published with @key (NULL: none). */
char *herald_redis_payload_body (const char *key, const char *data_json);
/* A message from a body made by herald_redis_payload_body() (a local publish
 * while Redis is down). */
HeraldMessage *herald_redis_payload_body_message (const char *channel, guint64 offset, guint64 seq,
                                                  const char *epoch, const char *body);

/* The payload announcing @event (herald_message_new_join_leave()) from @origin. */
char *herald_redis_payload_format_event (const char *origin, HeraldMessage *event);
/* The event in @text ("J …", NUL-terminated at @len) received on @channel's
 * topic, or NULL when malformed or sent by @self_node (delivered there when
 * sent). */
HeraldMessage *herald_redis_payload_parse_event (const char *channel, const char *text, gsize len,
                                                 const char *self_node);

/* FALSE when @text (NUL-terminated at @len) is not a well-formed payload;
 * clear @p with herald_redis_payload_clear() either way. */
gboolean herald_redis_payload_parse (const char *text, gsize len, HeraldRedisPayload *p);
void herald_redis_payload_clear (HeraldRedisPayload *p);
HeraldMessage *herald_redis_payload_message (const HeraldRedisPayload *p);

/* A history list (LRANGE, newest first) as HeraldRedisPayload*s, oldest
 * first, without what is older than @ttl seconds at @now (0 = no ttl) or
 * unreadable, and without anything older than that. The payloads point into
 * @list. */
GPtrArray *herald_redis_payload_parse_history (redisReply *list, gint64 now, guint ttl);

G_END_DECLS
