/* herald-names.c: channel names and connection ids.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <string.h>
#include <sys/random.h>

#include "herald-base64url.h"
#include "herald-names.h"

/* 1–@max bytes, each alphanumeric or one of @extra. */
static gboolean
is_name (const char *name, gsize max, const char *extra)
{
  gsize n = 0;

  if (name == NULL)
    return FALSE;
  for (const char *p = name; *p; p++, n++)
    if (n >= max || (!g_ascii_isalnum (*p) && strchr (extra, *p) == NULL))
      return FALSE;
  return n > 0;
}

gboolean
herald_channel_name_is_valid (const char *name)
{
  return is_name (name, 255, "_.:@/-#,");
}

gboolean
herald_channel_user_allowed (const char *channel, const char *user_id)
{
  const char *p;
  gsize len;

  g_return_val_if_fail (channel != NULL, FALSE);

  p = strchr (channel, '#');
  if (p == NULL || user_id == NULL || (len = strlen (user_id)) == 0)
    return FALSE;
  for (p++; *p != '\0';)
    {
      const char *end = strchr (p, ',');
      gsize n = end != NULL ? (gsize)(end - p) : strlen (p);

      if (n == len && memcmp (p, user_id, n) == 0)
        return TRUE;
      if (end == NULL)
        break;
      p = end + 1;
    }
  return FALSE;
}

gboolean
herald_connection_id_is_valid (const char *id)
{
  return is_name (id, 64, "_-");
}

/* Random bytes for ids, taken from the kernel a batch at a time per thread
 * (an accept storm asks for thousands a second: one getrandom() per 64 ids
 * instead of one per id). Each byte is handed out once; no process forks. */
#define ID_POOL 1024

static void
random_bytes (guint8 *out, gsize len)
{
  static __thread guint8 pool[ID_POOL];
  static __thread gsize pos = ID_POOL;

  g_assert (len <= ID_POOL);
  if (pos + len > ID_POOL)
    {
      gsize got = 0;

      while (got < ID_POOL)
        {
          ssize_t r = getrandom (pool + got, ID_POOL - got, 0);
          if (r < 0)
            {
              if (errno == EINTR)
                continue;
              g_error ("getrandom failed: %s", g_strerror (errno));
            }
          got += r;
        }
      pos = 0;
    }
  memcpy (out, pool + pos, len);
  memset (pool + pos, 0, len); /* not kept once handed out */
  pos += len;
}

char *
herald_connection_id_new (void)
{
  guint8 raw[16];

  random_bytes (raw, sizeof raw);
  /* 128 random bits → 22 characters. */
  return herald_base64url_encode (raw, sizeof raw);
}

gsize
herald_address_pack (const char *text, guint8 out[16])
{
  char again[HERALD_ADDRESS_TEXT_MAX];
  gsize len;

  if (text == NULL)
    return 0;
  if (inet_pton (AF_INET, text, out) == 1)
    len = 4;
  else if (inet_pton (AF_INET6, text, out) == 1)
    len = 16;
  else
    return 0;
  /* Only forms that come back the same ("::FFFF:…" would not). */
  if (g_strcmp0 (herald_address_unpack (out, len, again), text) != 0)
    return 0;
  return len;
}

const char *
herald_address_unpack (const guint8 *packed, gsize len, char buf[HERALD_ADDRESS_TEXT_MAX])
{
  g_return_val_if_fail (len == 4 || len == 16, NULL);

  return inet_ntop (len == 4 ? AF_INET : AF_INET6, packed, buf, HERALD_ADDRESS_TEXT_MAX);
}
