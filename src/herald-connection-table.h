/* herald-connection-table.h: a worker's connections by id.
 *
 * A GHashTable used as a set whose keys live inside the connections (the
 * address of each one's id pointer): no value array and no copy of the id,
 * 12 bytes a slot instead of 20 for an id → connection map. Each entry owns
 * a reference. Worker thread only, like the connections.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "herald-connection.h"

G_BEGIN_DECLS

GHashTable *herald_connection_table_new (void);
/* Takes a reference; replaces nothing (ids are unique). */
void herald_connection_table_add (GHashTable *table, HeraldConnection *connection);
HeraldConnection *herald_connection_table_lookup (GHashTable *table, const char *id);
/* Removes @connection without dropping its reference (the caller takes it). */
gboolean herald_connection_table_steal (GHashTable *table, HeraldConnection *connection);
gboolean herald_connection_table_iter_next (GHashTableIter *iter, HeraldConnection **connection);

G_END_DECLS
