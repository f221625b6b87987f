/* herald-hub-entry.h: the hub registry's entries (herald-hub.c).
 *
 * One small block per connection, from GSlice (kept apart from the
 * handshakes' short-lived allocations): a 4-byte header, the id (the
 * registry's key), the user id if any, then the address (4 or 16 bytes for
 * an IP address, herald_address_pack(), or text). An anonymous IPv4 client's
 * entry with a generated id is 32 bytes.
 *
 * The registry is a set of the entries' ids (12 bytes a slot, not 20):
 * HERALD_HUB_ENTRY_OF() finds the entry of a key. Under the hub's lock.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "herald-names.h"

G_BEGIN_DECLS

enum
{
  HERALD_HUB_ADDRESS_NONE,
  HERALD_HUB_ADDRESS_PACKED4,
  HERALD_HUB_ADDRESS_PACKED16,
  HERALD_HUB_ADDRESS_TEXT,
};

typedef struct
{
  guint worker : 24; /* index: --workers is far below 16 million */
  guint opened : 1;
  guint has_user : 1;
  guint address : 2;
  char id[];
} HeraldHubEntry;

#define HERALD_HUB_ENTRY_OF(key)                                                                   \
  ((HeraldHubEntry *)((char *)(key)-G_STRUCT_OFFSET (HeraldHubEntry, id)))

HeraldHubEntry *herald_hub_entry_new (const char *id, const char *user_id, const char *ip,
                                      guint worker);
/* The registry's key destroy function. */
void herald_hub_entry_free_by_id (gpointer key);
HeraldHubEntry *herald_hub_entry_lookup (GHashTable *registry, const char *id);
const char *herald_hub_entry_user_id (HeraldHubEntry *entry);
/* The address as given to herald_hub_entry_new(), in @buf or the entry. */
const char *herald_hub_entry_ip (HeraldHubEntry *entry, char buf[HERALD_ADDRESS_TEXT_MAX]);

G_END_DECLS
