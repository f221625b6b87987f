/* herald-engine-presence.c: a presence table with counters (see the header).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>

#include "herald-engine-presence.h"

typedef struct
{
  GTree *users; /* user id → connection count (GUINT_TO_POINTER), in strcmp order */
  guint connections;
} PresenceChannel;

struct _HeraldPresenceTable
{
  GHashTable *channels; /* name → PresenceChannel */
};

static int
compare_names (gconstpointer a, gconstpointer b, gpointer unused)
{
  return strcmp (a, b);
}

static void
presence_channel_free (PresenceChannel *ch)
{
  g_tree_unref (ch->users);
  g_free (ch);
}

HeraldPresenceTable *
herald_presence_table_new (void)
{
  HeraldPresenceTable *table = g_new0 (HeraldPresenceTable, 1);

  table->channels = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                           (GDestroyNotify)presence_channel_free);
  return table;
}

void
herald_presence_table_free (HeraldPresenceTable *table)
{
  if (table == NULL)
    return;
  g_hash_table_unref (table->channels);
  g_free (table);
}

int
herald_presence_table_adjust (HeraldPresenceTable *table, const char *channel, const char *user_id,
                              int delta)
{
  PresenceChannel *ch;
  guint count = 0;

  g_return_val_if_fail (table != NULL && channel != NULL, -1);

  ch = g_hash_table_lookup (table->channels, channel);
  if (ch == NULL)
    {
      if (delta < 0)
        return -1;
      ch = g_new0 (PresenceChannel, 1);
      ch->users = g_tree_new_full (compare_names, NULL, g_free, NULL);
      g_hash_table_insert (table->channels, g_strdup (channel), ch);
    }
  if (user_id != NULL)
    {
      count = GPOINTER_TO_UINT (g_tree_lookup (ch->users, user_id));
      if (delta < 0 && count == 0)
        return -1;
      count += delta;
      if (count == 0)
        g_tree_remove (ch->users, user_id);
      else
        g_tree_replace (ch->users, g_strdup (user_id), GUINT_TO_POINTER (count));
    }
  if (delta < 0 && ch->connections == 0)
    return user_id ? (int)count : -1;
  ch->connections += delta;
  if (ch->connections == 0 && g_tree_nnodes (ch->users) == 0)
    g_hash_table_remove (table->channels, channel);
  return (int)count;
}

void
herald_presence_table_count (HeraldPresenceTable *table, const char *channel, guint *users,
                             guint *connections)
{
  PresenceChannel *ch;

  g_return_if_fail (table != NULL && channel != NULL);

  ch = g_hash_table_lookup (table->channels, channel);
  if (users)
    *users = ch ? (guint)g_tree_nnodes (ch->users) : 0;
  if (connections)
    *connections = ch ? ch->connections : 0;
}

char **
herald_presence_table_page (HeraldPresenceTable *table, const char *channel, const char *after,
                            guint limit, gboolean *more)
{
  PresenceChannel *ch;
  GPtrArray *out = g_ptr_array_new ();
  GTreeNode *node = NULL;

  g_return_val_if_fail (table != NULL && channel != NULL, NULL);

  ch = g_hash_table_lookup (table->channels, channel);
  if (ch != NULL)
    node = after ? g_tree_upper_bound (ch->users, after) : g_tree_node_first (ch->users);
  for (; node != NULL && out->len < limit; node = g_tree_node_next (node))
    g_ptr_array_add (out, g_strdup (g_tree_node_key (node)));
  if (more)
    *more = node != NULL;
  g_ptr_array_add (out, NULL);
  return (char **)g_ptr_array_free (out, FALSE);
}
