/* herald-connection-strings.c: a connection's id, user id and remote
 * address in one small block (the address of an IP client in binary).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>

#include "herald-connection-private.h"
#include "herald-names.h"

/* How the id's block keeps the remote address (herald_connection_strings_init()). */
enum
{
  ADDRESS_NONE,
  ADDRESS_IPV4, /* 4 bytes */
  ADDRESS_IPV6, /* 16 bytes */
  ADDRESS_TEXT, /* a NUL-terminated string that is no IP address */
};

/* Where the address starts in the id's block. */
static const char *
address_bytes (HeraldConnection *self)
{
  const char *p = self->id + strlen (self->id) + 1;

  return self->has_user ? p + strlen (p) + 1 : p;
}

static gsize
address_size (HeraldConnection *self)
{
  switch (self->address)
    {
    case ADDRESS_IPV4:
      return 4;
    case ADDRESS_IPV6:
      return 16;
    case ADDRESS_TEXT:
      return strlen (address_bytes (self)) + 1;
    default:
      return 0;
    }
}

/* The size of the id's block: GSlice wants it back. */
gsize
herald_connection_strings_size (HeraldConnection *self)
{
  return (gsize)(address_bytes (self) - self->id) + address_size (self);
}

/* The id, the user id and the peer's address never change: one block,
 * "id\0user\0" then the address, an IP address in binary (4 or 16 bytes:
 * the block of an IPv4 client stays within 32 bytes). */
void
herald_connection_strings_init (HeraldConnection *self, const char *id, const char *user_id,
                                const char *remote_address)
{
  gsize id_len = strlen (id) + 1;
  gsize user_len = user_id ? strlen (user_id) + 1 : 0;
  guint8 ip[16];
  gsize addr_len = 0;

  self->address = ADDRESS_NONE;
  if (remote_address == NULL)
    ;
  else if ((addr_len = herald_address_pack (remote_address, ip)) != 0)
    self->address = addr_len == 4 ? ADDRESS_IPV4 : ADDRESS_IPV6;
  else
    self->address = ADDRESS_TEXT, addr_len = strlen (remote_address) + 1;

  self->id = g_slice_alloc (id_len + user_len + addr_len);
  memcpy (self->id, id, id_len);
  if (user_id)
    memcpy (self->id + id_len, user_id, user_len);
  self->has_user = user_id != NULL;
  memcpy (self->id + id_len + user_len,
          self->address == ADDRESS_TEXT ? (gconstpointer)remote_address : ip, addr_len);
}

/* Returns: (transfer full) (nullable): the remote address as given. */
char *
herald_connection_remote_address_dup (HeraldConnection *self)
{
  char text[HERALD_ADDRESS_TEXT_MAX];

  switch (self->address)
    {
    case ADDRESS_IPV4:
    case ADDRESS_IPV6:
      return g_strdup (
          herald_address_unpack ((const guint8 *)address_bytes (self), address_size (self), text));
    case ADDRESS_TEXT:
      return g_strdup (address_bytes (self));
    default:
      return NULL;
    }
}
