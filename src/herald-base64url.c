/* herald-base64url.c: the one base64url codec (JWT parts, connection ids).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "herald-base64url.h"

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

char *
herald_base64url_encode (const void *data, gsize length)
{
  const guint8 *in = data;
  char *out = g_malloc (length / 3 * 4 + 4);
  char *p = out;
  gsize i = 0;

  g_return_val_if_fail (data != NULL || length == 0, NULL);

  for (; i + 3 <= length; i += 3)
    {
      guint32 v = (guint32)in[i] << 16 | (guint32)in[i + 1] << 8 | in[i + 2];
      *p++ = alphabet[v >> 18];
      *p++ = alphabet[(v >> 12) & 0x3f];
      *p++ = alphabet[(v >> 6) & 0x3f];
      *p++ = alphabet[v & 0x3f];
    }
  if (length - i == 1)
    {
      *p++ = alphabet[in[i] >> 2];
      *p++ = alphabet[(in[i] & 0x03) << 4];
    }
  else if (length - i == 2)
    {
      guint32 v = (guint32)in[i] << 8 | in[i + 1];
      *p++ = alphabet[v >> 10];
      *p++ = alphabet[(v >> 4) & 0x3f];
      *p++ = alphabet[(v & 0x0f) << 2];
    }
  *p = '\0';
  return out;
}

static int
base64url_value (guchar c)
{
  if (c >= 'A' && c <= 'Z')
    return c - 'A';
  if (c >= 'a' && c <= 'z')
    return c - 'a' + 26;
  if (c >= '0' && c <= '9')
    return c - '0' + 52;
  if (c == '-')
    return 62;
  if (c == '_')
    return 63;
  return -1;
}

guint8 *
herald_base64url_decode (const char *text, gsize length, gsize *out_length)
{
  g_autofree guint8 *out = NULL;
  guint32 acc = 0;
  guint bits = 0;
  gsize n = 0;

  g_return_val_if_fail (text != NULL || length == 0, NULL);
  g_return_val_if_fail (out_length != NULL, NULL);

  if (length % 4 == 1)
    return NULL;

  out = g_malloc (length / 4 * 3 + 3);
  for (gsize i = 0; i < length; i++)
    {
      int v = base64url_value ((guchar)text[i]);

      if (v < 0)
        return NULL;
      acc = (acc << 6) | (guint32)v;
      bits += 6;
      if (bits >= 8)
        {
          bits -= 8;
          out[n++] = (guint8)(acc >> bits);
          acc &= (1u << bits) - 1;
        }
    }
  if (acc != 0)
    return NULL;

  out[n] = '\0';
  *out_length = n;
  return g_steal_pointer (&out);
}
