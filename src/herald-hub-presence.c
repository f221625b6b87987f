/* herald-hub-presence.c: presence at scale — the engine's counters and
 * member pages, and the cursors that walk them.
 *
 * A cursor is "<channel tag>.<base64url of the last user of the page>", the
 * tag the first 8 hex digits of the SHA-256 of the channel's name: a cursor
 * is bound to its channel (another channel's is refused) and means the same
 * on every node. Pages are in byte order of the user ids; a walk returns
 * every user present from its start to its end exactly once (users that come
 * or go meanwhile may or may not appear).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>

#include "herald-base64url.h"
#include "herald-hub.h"

#define CURSOR_TAG_LEN 8

static char *
cursor_tag (const char *channel)
{
  g_autofree char *sum = g_compute_checksum_for_string (G_CHECKSUM_SHA256, channel, -1);

  return g_strndup (sum, CURSOR_TAG_LEN);
}

static char *
cursor_format (const char *channel, const char *user)
{
  g_autofree char *tag = cursor_tag (channel);
  g_autofree char *encoded = herald_base64url_encode (user, strlen (user));

  return g_strconcat (tag, ".", encoded, NULL);
}

/* The user a cursor of @channel stands after, or NULL when it is not one. */
static char *
cursor_parse (const char *channel, const char *cursor)
{
  g_autofree char *tag = cursor_tag (channel);
  gsize len = 0;
  g_autofree guint8 *user = NULL;

  if (strlen (cursor) <= CURSOR_TAG_LEN + 1 || strncmp (cursor, tag, CURSOR_TAG_LEN) != 0
      || cursor[CURSOR_TAG_LEN] != '.')
    return NULL;
  user = herald_base64url_decode (cursor + CURSOR_TAG_LEN + 1, strlen (cursor + CURSOR_TAG_LEN + 1),
                                  &len);
  if (user == NULL || len == 0 || memchr (user, '\0', len) != NULL
      || !g_utf8_validate ((const char *)user, (gssize)len, NULL))
    return NULL;
  return (char *)g_steal_pointer (&user);
}

typedef struct
{
  char *channel;
  char *after;
  guint limit;
} Query;

static void
query_free (Query *query)
{
  g_free (query->channel);
  g_free (query->after);
  g_free (query);
}

static void
query_in_thread (GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
  HeraldHub *hub = source;
  Query *query = task_data;
  g_autoptr (HeraldPresence) presence = g_new0 (HeraldPresence, 1);
  GError *error = NULL;
  gboolean more = FALSE;

  presence->users = herald_engine_query_presence (herald_hub_get_engine (hub), query->channel,
                                                  query->after, query->limit, &presence->n_users,
                                                  &presence->connections, &more, &error);
  if (presence->users == NULL)
    {
      g_task_return_error (task, error);
      return;
    }
  presence->channel = g_strdup (query->channel);
  if (more && presence->users[0] != NULL)
    presence->next
        = cursor_format (query->channel, presence->users[g_strv_length (presence->users) - 1]);
  g_task_return_pointer (task, g_steal_pointer (&presence), (GDestroyNotify)herald_presence_free);
}

void
herald_hub_get_presence_async (HeraldHub *self, const char *channel, gboolean stats_only,
                               guint limit, const char *cursor, GAsyncReadyCallback callback,
                               gpointer user_data)
{
  g_autoptr (GTask) task = NULL;
  Query *query;

  g_return_if_fail (HERALD_IS_HUB (self));
  g_return_if_fail (channel != NULL);

  task = g_task_new (self, NULL, callback, user_data);
  g_task_set_source_tag (task, herald_hub_get_presence_async);
  query = g_new0 (Query, 1);
  query->channel = g_strdup (channel);
  query->limit = stats_only   ? 0
                 : limit == 0 ? HERALD_PRESENCE_PAGE_MAX
                              : MIN (limit, HERALD_PRESENCE_PAGE_MAX);
  g_task_set_task_data (task, query, (GDestroyNotify)query_free);
  if (cursor != NULL && !stats_only)
    {
      query->after = cursor_parse (channel, cursor);
      if (query->after == NULL)
        {
          g_task_return_new_error (task, HERALD_ERROR, HERALD_ERROR_INVALID_ARGUMENT,
                                   "Invalid cursor: not one a presence page of %s gave", channel);
          return;
        }
    }
  /* The engine may wait for Redis: never in a worker's (or the main) thread. */
  g_task_run_in_thread (task, query_in_thread);
}

HeraldPresence *
herald_hub_get_presence_finish (HeraldHub *self, GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (HERALD_IS_HUB (self), NULL);
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}
