/* herald-connection-table.c: a worker's connections by id (see the header).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "herald-connection-private.h"
#include "herald-connection-table.h"

/* A key is a `const char *const *`: &connection->id in the table, the
 * address of a local pointer to the wanted id in a lookup. */
static guint
key_hash (gconstpointer key)
{
  return g_str_hash (*(const char *const *)key);
}

static gboolean
key_equal (gconstpointer a, gconstpointer b)
{
  return g_str_equal (*(const char *const *)a, *(const char *const *)b);
}

static HeraldConnection *
from_key (gconstpointer key)
{
  return (HeraldConnection *)((const char *)key - G_STRUCT_OFFSET (HeraldConnection, id));
}

static void
key_unref (gpointer key)
{
  g_object_unref (from_key (key));
}

GHashTable *
herald_connection_table_new (void)
{
  return g_hash_table_new_full (key_hash, key_equal, key_unref, NULL);
}

void
herald_connection_table_add (GHashTable *table, HeraldConnection *connection)
{
  g_return_if_fail (HERALD_IS_CONNECTION (connection));

  g_object_ref (connection);
  g_hash_table_add (table, &connection->id);
}

HeraldConnection *
herald_connection_table_lookup (GHashTable *table, const char *id)
{
  gpointer key;

  g_return_val_if_fail (id != NULL, NULL);

  key = g_hash_table_lookup (table, &id);
  return key ? from_key (key) : NULL;
}

gboolean
herald_connection_table_steal (GHashTable *table, HeraldConnection *connection)
{
  g_return_val_if_fail (HERALD_IS_CONNECTION (connection), FALSE);

  return g_hash_table_steal (table, &connection->id);
}

gboolean
herald_connection_table_iter_next (GHashTableIter *iter, HeraldConnection **connection)
{
  gpointer key;

  if (!g_hash_table_iter_next (iter, &key, NULL))
    return FALSE;
  *connection = from_key (key);
  return TRUE;
}
