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

gboolean
herald_redis_split_addr (const char *addr, char **host, int *port)
{
  const char *colon;
  g_autofree char *h = NULL;
  guint64 p = 0;

  g_return_val_if_fail (addr != NULL, FALSE);
  colon = strrchr (addr, ':');
  if (colon == NULL || colon == addr || colon[1] == '\0')
    return FALSE;
  if (!g_ascii_string_to_unsigned (colon + 1, 10, 1, 65535, &p, NULL))
    return FALSE;
  h = g_strndup (addr, (gsize)(colon - addr));
  if (h[0] == '[' && h[strlen (h) - 1] == ']')
    {
      char *inner = g_strndup (h + 1, strlen (h) - 2);
      g_free (h);
      h = inner;
    }
  if (*h == '\0')
    return FALSE;
  if (host)
    *host = g_steal_pointer (&h);
  if (port)
    *port = (int)p;
  return TRUE;
}

gboolean
herald_redis_parse_redirect (const char *error, gboolean *ask, guint *slot, char **addr)
{
  g_auto (GStrv) words = NULL;
  guint64 s = 0;

  if (error == NULL)
    return FALSE;
  words = g_strsplit (error, " ", 4);
  if (g_strv_length (words) != 3
      || (strcmp (words[0], "MOVED") != 0 && strcmp (words[0], "ASK") != 0))
    return FALSE;
  if (!g_ascii_string_to_unsigned (words[1], 10, 0, HERALD_REDIS_SLOTS - 1, &s, NULL))
    return FALSE;
  if (!herald_redis_split_addr (words[2], NULL, NULL))
    return FALSE;
  if (ask)
    *ask = words[0][0] == 'A';
  if (slot)
    *slot = (guint)s;
  if (addr)
    *addr = g_strdup (words[2]);
  return TRUE;
}
