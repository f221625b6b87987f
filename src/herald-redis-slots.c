/* herald-redis-slots.c: Redis Cluster key slots.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "herald-redis-slots.h"

#include <string.h>

guint16
herald_redis_crc16 (const char *data, gsize len)
{
  guint16 crc = 0;

  for (gsize i = 0; i < len; i++)
    {
      crc ^= (guint16)((guchar)data[i] << 8);
      for (int bit = 0; bit < 8; bit++)
        crc = (crc & 0x8000) ? (guint16)((crc << 1) ^ 0x1021) : (guint16)(crc << 1);
    }
  return crc;
}

guint
herald_redis_key_slot (const char *key, gsize len)
{
  const char *open;

  g_return_val_if_fail (key != NULL || len == 0, 0);
  open = len > 0 ? memchr (key, '{', len) : NULL;
  if (open != NULL)
    {
      gsize rest = len - (gsize)(open - key) - 1;
      const char *close = memchr (open + 1, '}', rest);

      if (close != NULL && close > open + 1)
        return herald_redis_crc16 (open + 1, (gsize)(close - open - 1)) % HERALD_REDIS_SLOTS;
    }
  return herald_redis_crc16 (key, len) % HERALD_REDIS_SLOTS;
}
