/* herald-redis-engine.h: many Herald nodes behave as one, through Redis.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "herald-config.h"
#include "herald-engine.h"

G_BEGIN_DECLS

/* A parsed `redis://[:password@]host[:port][/db]` or
 * `unix:///path[?db=N&password=P]` address. */
typedef struct
{
  char *host; /* NULL for a Unix socket */
  int port;
  char *path; /* Unix socket path, or NULL */
  char *password;
  int db;
} HeraldRedisUrl;

HeraldRedisUrl *herald_redis_url_parse (const char *url, GError **error);
void herald_redis_url_free (HeraldRedisUrl *url);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (HeraldRedisUrl, herald_redis_url_free)

#define HERALD_TYPE_REDIS_ENGINE (herald_redis_engine_get_type ())
G_DECLARE_FINAL_TYPE (HeraldRedisEngine, herald_redis_engine, HERALD, REDIS_ENGINE, GObject)

/* Fails only on a malformed URL; Redis being down is not an error (the
 * engine starts degraded and keeps reconnecting). Create it in the main
 * thread: it runs its Redis connections in that thread's main context. */
HeraldEngine *herald_redis_engine_new (HeraldConfig *config, const char *url, GError **error);

/* Connects (asynchronously) as node @node_id. */
void herald_redis_engine_start (HeraldRedisEngine *self, const char *node_id);

G_END_DECLS
