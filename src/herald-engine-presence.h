/* herald-engine-presence.h: a presence table kept as members come and go,
 * for engines: per channel, each user's connection count (users in name
 * order) and the channel's connection count, so the counts are read in
 * constant time and member pages in O(log N + page). Not thread-safe: the
 * engine holds its lock around every call.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _HeraldPresenceTable HeraldPresenceTable;

HeraldPresenceTable *herald_presence_table_new (void);
void herald_presence_table_free (HeraldPresenceTable *table);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (HeraldPresenceTable, herald_presence_table_free)

/* One connection of @user_id (NULL: an anonymous one) joined (+1) or left
 * (-1) @channel. Returns the user's connection count on @channel after the
 * change (0 for anonymous ones); a leave that was never joined changes
 * nothing and returns -1. */
int herald_presence_table_adjust (HeraldPresenceTable *table, const char *channel,
                                  const char *user_id, int delta);

/* The distinct users and the connections (users' and anonymous) of @channel. */
void herald_presence_table_count (HeraldPresenceTable *table, const char *channel, guint *users,
                                  guint *connections);

/* Up to @limit users of @channel in name order, each after @after (NULL:
 * from the first). *@more: whether users follow the last one returned.
 * Returns: (transfer full): a NULL-terminated array. */
char **herald_presence_table_page (HeraldPresenceTable *table, const char *channel,
                                   const char *after, guint limit, gboolean *more);

G_END_DECLS
