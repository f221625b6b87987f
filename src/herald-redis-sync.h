/* herald-redis-sync.h: the Redis engine's blocking connection, for the
 * questions a caller waits for (recovery, positions, "which node holds
 * connection X"): any thread, one at a time, with short timeouts.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>
#include <hiredis/hiredis.h>

#include "herald-redis-url.h"

G_BEGIN_DECLS

typedef struct _HeraldRedisSync HeraldRedisSync;

/* Connects on first use; @url must outlive the connection. */
HeraldRedisSync *herald_redis_sync_new (const HeraldRedisUrl *url);
/* Closes the connection (the next run opens a new one). */
void herald_redis_sync_close (HeraldRedisSync *sync);
/* Another host and port than the URL's from now on (Sentinel: the master
 * moved); closes the connection. Any thread. */
void herald_redis_sync_set_address (HeraldRedisSync *sync, const char *host, int port);
void herald_redis_sync_free (HeraldRedisSync *sync);

/* Runs @n pipelined commands (@argvs[i] of @argcs[i] words); returns @n
 * replies (free with herald_redis_replies_free()), or %NULL when Redis did
 * not answer them all. */
redisReply **herald_redis_sync_run (HeraldRedisSync *sync, guint n, const char *const *const *argvs,
                                    const int *argcs);
void herald_redis_replies_free (redisReply **replies, guint n);

/* An integer or a decimal string reply as a number; 0 for anything else. */
guint64 herald_redis_reply_u64 (redisReply *r);
/* The seconds of a TIME reply, or this machine's clock. */
gint64 herald_redis_reply_time (redisReply *r);

G_END_DECLS
