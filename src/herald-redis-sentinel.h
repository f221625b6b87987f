/* herald-redis-sentinel.h: finding and following a Redis master through
 * Redis Sentinel ([redis] sentinels + sentinel-master).
 *
 * One sentinel at a time is asked (SENTINEL get-master-addr-by-name, again
 * every second as a safety net) and listened to (+switch-master); when it is
 * unreachable, does not know the master or says something unusable, the next
 * one in the list is tried. The owner hears of every new master address.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _HeraldRedisSentinel HeraldRedisSentinel;

typedef struct
{
  /* The sentinels name @host:@port as the master of the watched name: the
   * first answer, and then every change (@switched: announced by
   * +switch-master rather than found by asking). In the owner's context. */
  void (*master) (gpointer owner, const char *host, int port, gboolean switched);
} HeraldRedisSentinelEvents;

/* @sentinels: HOST:PORT addresses; @password is sent to a sentinel only
 * when it asks for one (NOAUTH). Fails on a malformed address. */
HeraldRedisSentinel *herald_redis_sentinel_new (const char *const *sentinels,
                                                const char *master_name, const char *password,
                                                GMainContext *context,
                                                const HeraldRedisSentinelEvents *events,
                                                gpointer owner, GError **error);
void herald_redis_sentinel_free (HeraldRedisSentinel *self);

void herald_redis_sentinel_start (HeraldRedisSentinel *self);
/* The master did not work out (lost, READONLY): ask the sentinels again now. */
void herald_redis_sentinel_ask (HeraldRedisSentinel *self);
/* "HOST:PORT" of the sentinel in use, for logs and the engine state. */
const char *herald_redis_sentinel_current (HeraldRedisSentinel *self);

G_END_DECLS
