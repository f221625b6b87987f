/* herald-redis-payload.h: a channel message as Redis carries and keeps it,
 *   "<offset> <seq> <prev-seq> <unix-time> <epoch> <channel>\n<data JSON>"
 * (PUBLISHed on `herald:ch:<channel>` and stored in its history list).
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
  const char *data; /* points into the parsed text */
} HeraldRedisPayload;

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
