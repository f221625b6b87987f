/* herald-error.c: error domain and small validators shared by all layers.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>
#include <glib/gi18n.h>
#include "herald-error.h"
#include "herald-json.h"

G_DEFINE_QUARK (herald - error - quark, herald_error)

gboolean
herald_channel_name_is_valid (const char *name)
{
  gsize n = 0;

  if (name == NULL)
    return FALSE;
  for (const char *p = name; *p; p++, n++)
    {
      if (n >= 255)
        return FALSE;
      if (!g_ascii_isalnum (*p) && strchr ("_.:@/-", *p) == NULL)
        return FALSE;
    }
  return n > 0;
}

gboolean
herald_connection_id_is_valid (const char *id)
{
  gsize n = 0;

  if (id == NULL)
    return FALSE;
  for (const char *p = id; *p; p++, n++)
    {
      if (n >= 64)
        return FALSE;
      if (!g_ascii_isalnum (*p) && *p != '_' && *p != '-')
        return FALSE;
    }
  return n > 0;
}

char *
herald_connection_id_new (void)
{
  static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  guint8 raw[16];
  gsize got = 0;
  char *out;

  while (got < sizeof raw)
    {
      ssize_t r = getrandom (raw + got, sizeof raw - got, 0);
      if (r < 0)
        {
          if (errno == EINTR)
            continue;
          g_error ("getrandom failed: %s", g_strerror (errno));
        }
      got += r;
    }

  /* 128 random bits → 22 characters of 6 bits (the last one carries 2). */
  out = g_malloc (23);
  for (guint i = 0, bit = 0; i < 22; i++, bit += 6)
    {
      guint byte = bit / 8, shift = bit % 8;
      guint v = raw[byte] << 8 | (byte + 1 < sizeof raw ? raw[byte + 1] : 0);
      out[i] = alphabet[(v >> (10 - shift)) & 0x3f];
    }
  out[22] = '\0';
  return out;
}

/**
 * herald_json_normalize:
 *
 * Checks that @json is exactly one JSON value and returns it compacted
 * (herald_json_compact(): whitespace outside strings dropped, every other
 * byte kept, so numbers and strings arrive as sent).
 *
 * Returns: (transfer full): the JSON text, or %NULL with @error set
 * (HERALD_ERROR_INVALID_ARGUMENT).
 */
char *
herald_json_normalize (const char *json, gssize length, GError **error)
{
  g_autoptr (GError) local_error = NULL;
  char *out;

  if (length < 0)
    length = strlen (json);
  out = herald_json_compact (json, length, NULL, &local_error);
  if (out == NULL)
    g_set_error (error, HERALD_ERROR, HERALD_ERROR_INVALID_ARGUMENT,
                 _ ("data is not valid JSON: %s"), local_error->message);
  return out;
}
