/* herald-redis-url.c: Redis addresses (redis://, unix://).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <glib/gi18n.h>

#include "herald-error.h"
#include "herald-redis-url.h"

void
herald_redis_url_free (HeraldRedisUrl *url)
{
  if (url == NULL)
    return;
  g_free (url->host);
  g_free (url->path);
  g_free (url->password);
  g_free (url);
}

/**
 * herald_redis_url_parse:
 * @url: `redis://[[user]:password@]host[:port][/db]` or `unix:///path[?db=N&password=P]`
 *
 * Returns: (transfer full): the parsed address, or %NULL with @error set.
 */
HeraldRedisUrl *
herald_redis_url_parse (const char *url, GError **error)
{
  g_autoptr (HeraldRedisUrl) out = g_new0 (HeraldRedisUrl, 1);
  g_autoptr (GUri) uri = NULL;
  g_autoptr (GHashTable) params = NULL;
  const char *scheme, *path, *query, *db = NULL;
  char *end = NULL;

  uri = g_uri_parse (url, G_URI_FLAGS_HAS_PASSWORD, error);
  if (uri == NULL)
    {
      g_prefix_error (error, _ ("invalid Redis URL: "));
      return NULL;
    }
  scheme = g_uri_get_scheme (uri);
  path = g_uri_get_path (uri);
  query = g_uri_get_query (uri);
  if (query)
    {
      params = g_uri_parse_params (query, -1, "&", G_URI_PARAMS_NONE, error);
      if (params == NULL)
        {
          g_prefix_error (error, _ ("invalid Redis URL: "));
          return NULL;
        }
      db = g_hash_table_lookup (params, "db");
      out->password = g_strdup (g_hash_table_lookup (params, "password"));
    }
  if (g_uri_get_password (uri) && *g_uri_get_password (uri))
    {
      g_free (out->password);
      out->password = g_strdup (g_uri_get_password (uri));
    }

  if (g_ascii_strcasecmp (scheme, "rediss") == 0)
    {
      g_set_error (error, HERALD_ERROR, HERALD_ERROR_INVALID_ARGUMENT,
                   _ ("rediss:// (TLS) is not supported by hiredis 0.14: use a local Redis, or "
                      "stunnel/spiped to a redis:// address"));
      return NULL;
    }
  if (g_ascii_strcasecmp (scheme, "unix") == 0)
    {
      if (path == NULL || path[0] != '/')
        {
          g_set_error (
              error, HERALD_ERROR, HERALD_ERROR_INVALID_ARGUMENT,
              _ ("invalid Redis URL: unix:// needs an absolute path (unix:///run/redis.sock)"));
          return NULL;
        }
      out->path = g_strdup (path);
    }
  else if (g_ascii_strcasecmp (scheme, "redis") == 0)
    {
      const char *host = g_uri_get_host (uri);
      out->host = g_strdup (host && *host ? host : "127.0.0.1");
      out->port = g_uri_get_port (uri) > 0 ? g_uri_get_port (uri) : 6379;
      if (path && path[0] == '/' && path[1] != '\0')
        db = path + 1;
    }
  else
    {
      g_set_error (error, HERALD_ERROR, HERALD_ERROR_INVALID_ARGUMENT,
                   _ ("invalid Redis URL: scheme must be redis:// or unix://"));
      return NULL;
    }
  if (db)
    {
      guint64 n = g_ascii_strtoull (db, &end, 10);
      if (end == db || *end != '\0' || n > 65535)
        {
          g_set_error (error, HERALD_ERROR, HERALD_ERROR_INVALID_ARGUMENT,
                       _ ("invalid Redis URL: database “%s” is not a number"), db);
          return NULL;
        }
      out->db = (int)n;
    }
  return g_steal_pointer (&out);
}
