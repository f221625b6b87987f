/* herald-http-route.h: the one route table of the HTTP API.
 *
 * Both readers of API requests — the libsoup handlers (herald-http-api.c)
 * and the keep-alive fast path (herald-http-fast.c) — find a request's route
 * and its path argument here, so a path means the same on both.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef enum
{
  HERALD_API_ROUTE_NONE,
  HERALD_API_ROUTE_PUBLISH,                /* POST /api/publish */
  HERALD_API_ROUTE_BROADCAST,              /* POST /api/broadcast */
  HERALD_API_ROUTE_USER_SEND,              /* POST /api/users/{user_id}/send */
  HERALD_API_ROUTE_USER_SUBSCRIBE,         /* POST /api/users/{user_id}/subscribe */
  HERALD_API_ROUTE_USER_UNSUBSCRIBE,       /* POST /api/users/{user_id}/unsubscribe */
  HERALD_API_ROUTE_CONNECTION_SEND,        /* POST /api/connections/{id}/send */
  HERALD_API_ROUTE_CONNECTIONS,            /* GET /api/connections */
  HERALD_API_ROUTE_CONNECTION,             /* GET, DELETE /api/connections/{id} */
  HERALD_API_ROUTE_CHANNELS,               /* GET /api/channels */
  HERALD_API_ROUTE_CHANNEL_PRESENCE,       /* GET /api/channels/{channel}/presence */
  HERALD_API_ROUTE_CHANNEL_PRESENCE_STATS, /* GET /api/channels/{channel}/presence-stats */
  HERALD_API_ROUTE_NAMESPACES,             /* GET /api/namespaces */
} HeraldApiRoute;

typedef struct
{
  HeraldApiRoute route;
  const char *allow; /* methods for the Allow header */
  char *arg;         /* decoded {user_id}, {id} or {channel}, or NULL */
} HeraldApiMatch;

void herald_api_match_clear (HeraldApiMatch *match);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (HeraldApiMatch, herald_api_match_clear)

/* Finds the route of the percent-decoded @path. FALSE (route NONE) when no
 * route has it; a connection id that no connection can have is no route. */
gboolean herald_api_route_parse (const char *path, HeraldApiMatch *match);

/* Whether @match's route answers @method (one of libsoup's interned
 * SOUP_METHOD_* strings or any equal string). */
gboolean herald_api_route_allows (const HeraldApiMatch *match, const char *method);

G_END_DECLS
