/* herald-redis-history.h: what the Redis engine reads back about channels:
 * retained history for recovery (one channel, or an SSE stream of several
 * in seq order) and a channel's position. Each is one pipelined round trip
 * on the blocking connection; the caller makes sure this node already hears
 * the channels live (so nothing falls between the snapshot and the stream).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "herald-engine.h"
#include "herald-redis-sync.h"

G_BEGIN_DECLS

/* Fills @r (epoch, top_offset, recovered, messages) with @channel's history
 * after @since, checked against @epoch (NULL or "" = don't check); the
 * history ttl is the channel's namespace's in @config (0 = none). FALSE when Redis did not answer
 * (@r untouched). */
gboolean herald_redis_history_recover (HeraldRedisSync *sync, const char *channel, guint64 since,
                                       const char *epoch, HeraldConfig *config, HeraldRecovery *r);

/* The same for the stream of @channels after @since_seq: every message of
 * theirs newer than it, in seq order, or recovered = FALSE. */
gboolean herald_redis_history_recover_stream (HeraldRedisSync *sync, const char *const *channels,
                                              const char *epoch, guint64 since_seq,
                                              HeraldConfig *config, HeraldRecovery *r);

/* The epoch (NULL when Redis has none) and @channel's latest offset, read
 * together. FALSE when Redis did not answer. */
gboolean herald_redis_history_read_position (HeraldRedisSync *sync, const char *channel,
                                             char **epoch, guint64 *offset);

G_END_DECLS
