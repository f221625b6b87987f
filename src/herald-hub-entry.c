/* herald-hub-entry.c: the hub registry's entries (see the header).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>

#include "herald-hub-entry.h"

const char *
herald_hub_entry_user_id (HeraldHubEntry *entry)
{
  return entry->has_user ? entry->id + strlen (entry->id) + 1 : NULL;
}

static const char *
entry_tail (HeraldHubEntry *entry)
{
  const char *user = herald_hub_entry_user_id (entry);

  return user ? user + strlen (user) + 1 : entry->id + strlen (entry->id) + 1;
}

static gsize
entry_address_size (HeraldHubEntry *entry)
{
  switch (entry->address)
    {
    case HERALD_HUB_ADDRESS_PACKED4:
      return 4;
    case HERALD_HUB_ADDRESS_PACKED16:
      return 16;
    case HERALD_HUB_ADDRESS_TEXT:
      return strlen (entry_tail (entry)) + 1;
    default:
      return 0;
    }
}

const char *
herald_hub_entry_ip (HeraldHubEntry *entry, char buf[HERALD_ADDRESS_TEXT_MAX])
{
  if (entry->address == HERALD_HUB_ADDRESS_TEXT)
    return entry_tail (entry);
  if (entry->address == HERALD_HUB_ADDRESS_NONE)
    return NULL;
  return herald_address_unpack ((const guint8 *)entry_tail (entry), entry_address_size (entry),
                                buf);
}

void
herald_hub_entry_free_by_id (gpointer key)
{
  HeraldHubEntry *entry = HERALD_HUB_ENTRY_OF (key);

  g_slice_free1 ((gsize)(entry_tail (entry) - (const char *)entry) + entry_address_size (entry),
                 entry);
}

HeraldHubEntry *
herald_hub_entry_lookup (GHashTable *registry, const char *id)
{
  char *key = g_hash_table_lookup (registry, id);

  return key ? HERALD_HUB_ENTRY_OF (key) : NULL;
}

HeraldHubEntry *
herald_hub_entry_new (const char *id, const char *user_id, const char *ip, guint worker)
{
  gsize id_len = strlen (id) + 1;
  gsize user_len = user_id ? strlen (user_id) + 1 : 0;
  guint8 packed[16];
  gsize packed_len = herald_address_pack (ip, packed);
  gsize ip_len = packed_len ? packed_len : ip ? strlen (ip) + 1 : 0;
  HeraldHubEntry *entry;

  entry = g_slice_alloc (sizeof (HeraldHubEntry) + id_len + user_len + ip_len);
  memcpy (entry->id, id, id_len);
  if (user_id)
    memcpy (entry->id + id_len, user_id, user_len);
  entry->has_user = user_id != NULL;
  if (ip == NULL)
    entry->address = HERALD_HUB_ADDRESS_NONE;
  else if (packed_len == 4)
    entry->address = HERALD_HUB_ADDRESS_PACKED4;
  else if (packed_len == 16)
    entry->address = HERALD_HUB_ADDRESS_PACKED16;
  else
    entry->address = HERALD_HUB_ADDRESS_TEXT;
  memcpy (entry->id + id_len + user_len,
          entry->address == HERALD_HUB_ADDRESS_TEXT ? (gconstpointer)ip : packed, ip_len);
  entry->worker = worker;
  entry->opened = FALSE;
  return entry;
}
