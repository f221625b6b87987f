/* herald-redis-publish.h: publishing a channel message through Redis.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>

#include "herald-redis-link.h"

G_BEGIN_DECLS

/* The publish script, loaded (SCRIPT LOAD) on every connect. KEYS: meta
 * hash, history list, seq, epoch. ARGV: channel, data, history size, ttl,
 * a fresh epoch, meta ttl. Returns the offset. */
extern const char herald_redis_publish_script[];

/* Runs the script for @data_json on @channel: @task (a GTask of the offset)
 * completes when Redis answers. FALSE when the link is not connected (@task
 * is then untouched). */
gboolean herald_redis_publish (HeraldRedisLink *link, const char *channel, const char *data_json,
                               guint history_size, guint history_ttl, GTask *task);
/* The same with the raw reply (an integer offset, an error, or NULL when
 * the link was lost) going to @fn with @privdata. */
gboolean herald_redis_publish_command (HeraldRedisLink *link, const char *channel,
                                       const char *data_json, guint history_size, guint history_ttl,
                                       redisCallbackFn *fn, void *privdata);

G_END_DECLS
