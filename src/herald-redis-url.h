/* herald-redis-url.h: Redis addresses.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

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

G_END_DECLS
