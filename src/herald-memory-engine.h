/* herald-memory-engine.h: the in-process engine (one node, no Redis).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "herald-config.h"
#include "herald-engine.h"

G_BEGIN_DECLS

#define HERALD_TYPE_MEMORY_ENGINE (herald_memory_engine_get_type ())
G_DECLARE_FINAL_TYPE (HeraldMemoryEngine, herald_memory_engine, HERALD, MEMORY_ENGINE, HeraldEngine)

HeraldEngine *herald_memory_engine_new (HeraldConfig *config);

/* Drops history older than the configured ttl and forgets channels idle
 * (no subscriber, nothing published) that long; the daemon calls it every
 * 10 s. _at() takes the monotonic time to act at (tests). */
void herald_memory_engine_expire (HeraldMemoryEngine *self);
void herald_memory_engine_expire_at (HeraldMemoryEngine *self, gint64 now);

G_END_DECLS
