/* herald-http-route.c
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>

#include "herald-error.h"
#include "herald-http-route.h"
#include "herald-names.h"

/* In the order tried: exact paths first, then {arg} between a prefix and a
 * suffix, parsed from both ends so '/' stays inside channel names. */
static const struct
{
  const char *prefix;
  const char *suffix; /* NULL: @prefix is the whole path */
  HeraldApiRoute route;
  const char *allow;
  const char *methods[3];
} routes[] = {
  { "/api/publish", NULL, HERALD_API_ROUTE_PUBLISH, "POST, OPTIONS", { "POST" } },
  { "/api/broadcast", NULL, HERALD_API_ROUTE_BROADCAST, "POST, OPTIONS", { "POST" } },
  { "/api/connections", NULL, HERALD_API_ROUTE_CONNECTIONS, "GET, OPTIONS", { "GET" } },
  { "/api/channels", NULL, HERALD_API_ROUTE_CHANNELS, "GET, OPTIONS", { "GET" } },
  { "/api/namespaces", NULL, HERALD_API_ROUTE_NAMESPACES, "GET, OPTIONS", { "GET" } },
  { "/api/users/", "/send", HERALD_API_ROUTE_USER_SEND, "POST, OPTIONS", { "POST" } },
  { "/api/users/", "/subscribe", HERALD_API_ROUTE_USER_SUBSCRIBE, "POST, OPTIONS", { "POST" } },
  { "/api/users/", "/unsubscribe", HERALD_API_ROUTE_USER_UNSUBSCRIBE, "POST, OPTIONS", { "POST" } },
  { "/api/channels/", "/presence", HERALD_API_ROUTE_CHANNEL_PRESENCE, "GET, OPTIONS", { "GET" } },
  { "/api/channels/",
    "/presence-stats",
    HERALD_API_ROUTE_CHANNEL_PRESENCE_STATS,
    "GET, OPTIONS",
    { "GET" } },
  { "/api/connections/", "/send", HERALD_API_ROUTE_CONNECTION_SEND, "POST, OPTIONS", { "POST" } },
  { "/api/connections/",
    "",
    HERALD_API_ROUTE_CONNECTION,
    "GET, DELETE, OPTIONS",
    { "GET", "DELETE" } },
};

void
herald_api_match_clear (HeraldApiMatch *match)
{
  g_clear_pointer (&match->arg, g_free);
}

/* "/api/users/{x}/send" → "{x}" when @path has @prefix and @suffix around a
 * non-empty middle. */
static char *
path_middle (const char *path, const char *prefix, const char *suffix)
{
  gsize len = strlen (path), prefix_len = strlen (prefix), suffix_len = strlen (suffix);

  if (len <= prefix_len + suffix_len || !g_str_has_prefix (path, prefix)
      || !g_str_has_suffix (path, suffix))
    return NULL;
  return g_strndup (path + prefix_len, len - prefix_len - suffix_len);
}

gboolean
herald_api_route_parse (const char *path, HeraldApiMatch *match)
{
  g_return_val_if_fail (path != NULL, FALSE);
  g_return_val_if_fail (match != NULL, FALSE);

  memset (match, 0, sizeof *match);
  for (guint i = 0; i < G_N_ELEMENTS (routes); i++)
    {
      char *arg = NULL;

      if (routes[i].suffix == NULL
              ? !g_str_equal (path, routes[i].prefix)
              : (arg = path_middle (path, routes[i].prefix, routes[i].suffix)) == NULL)
        continue;
      /* No connection can have an invalid id (with '/', say): unknown path. */
      if ((routes[i].route == HERALD_API_ROUTE_CONNECTION
           || routes[i].route == HERALD_API_ROUTE_CONNECTION_SEND)
          && !herald_connection_id_is_valid (arg))
        {
          g_free (arg);
          return FALSE;
        }
      match->route = routes[i].route;
      match->allow = routes[i].allow;
      match->arg = arg;
      return TRUE;
    }
  return FALSE;
}

gboolean
herald_api_route_allows (const HeraldApiMatch *match, const char *method)
{
  g_return_val_if_fail (match != NULL, FALSE);

  for (guint i = 0; method && i < G_N_ELEMENTS (routes); i++)
    if (routes[i].route == match->route)
      return g_strv_contains (routes[i].methods, method);
  return FALSE;
}
