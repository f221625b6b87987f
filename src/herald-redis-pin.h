/* herald-redis-pin.h: keeps a channel subscribed for a while (both Redis
 * engines, before a history snapshot: the node must already hear the channel
 * live, or messages published between the snapshot and the SUBSCRIBE would
 * be lost).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib-object.h>

G_BEGIN_DECLS

/* An engine's "this channel is needed (+1) / no longer (-1)" */
typedef void (*HeraldRedisChannelRefFunc) (gpointer engine, const char *channel, int delta);

/* Calls @ref (@engine, @channel, +1) now and (…, -1) after @ms in @context;
 * @engine is kept alive meanwhile. */
void herald_redis_pin_channel (GObject *engine, GMainContext *context, const char *channel,
                               guint ms, HeraldRedisChannelRefFunc ref);

G_END_DECLS
