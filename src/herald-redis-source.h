/* herald-redis-source.h: a hiredis asynchronous context driven by a GMainContext.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>
#include <hiredis/async.h>

G_BEGIN_DECLS

/* Hooks @ac's read/write events to a new source attached to @context; the
 * source stays inert once hiredis cleans the context up. */
GSource *herald_redis_source_attach (redisAsyncContext *ac, GMainContext *context);

/* Destroys and unrefs *@source (any GSource), if set, and clears it. */
void herald_redis_source_clear (GSource **source);

G_END_DECLS
