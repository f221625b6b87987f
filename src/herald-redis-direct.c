/* herald-redis-direct.c: the direct message formats (see herald-redis-direct.h).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>

#include "herald-redis-direct.h"

char *
herald_redis_direct_format (HeraldTargetKind kind, const char *origin, const char *target,
                            const char *data_json)
{
  switch (kind)
    {
    case HERALD_TARGET_ALL:
      return g_strdup_printf ("%s A\n%s", origin, data_json);
    case HERALD_TARGET_USER:
      return g_strdup_printf ("%s U %zu\n%s%s", origin, strlen (target), target, data_json);
    case HERALD_TARGET_USER_SUBSCRIPTION:
      return g_strdup_printf ("%s S %zu\n%s%s", origin, strlen (target), target, data_json);
    case HERALD_TARGET_CONNECTION:
      return g_strdup_printf ("C %s\n%s", target, data_json);
    default:
      g_return_val_if_reached (NULL);
    }
}

char *
herald_redis_direct_format_close (const char *id, guint16 code, const char *reason)
{
  g_autofree char *clean = g_strdup (reason ? reason : "");

  g_strdelimit (clean, "\n", ' ');
  return g_strdup_printf ("X %u %s\n%s", code, id, clean);
}

/* "<origin> A\n<data>", "<origin> U|S <user-len>\n<user><data>" */
static gboolean
parse_all (const char *text, gsize len, const char *nl, char **parts, HeraldRedisDirect *d)
{
  if (g_strv_length (parts) < 2)
    return FALSE;
  d->origin = g_strdup (parts[0]);
  if (g_str_equal (parts[1], "A"))
    {
      d->message = herald_message_new_direct (nl + 1);
      d->delivery.kind = HERALD_TARGET_ALL;
    }
  else if ((g_str_equal (parts[1], "U") || g_str_equal (parts[1], "S")) && parts[2])
    {
      guint64 ulen = g_ascii_strtoull (parts[2], NULL, 10);

      if (ulen == 0 || ulen >= (guint64)(len - (nl + 1 - text)))
        return FALSE;
      d->target = g_strndup (nl + 1, ulen);
      d->message = herald_message_new_direct (nl + 1 + ulen);
      d->delivery.kind = parts[1][0] == 'S' ? HERALD_TARGET_USER_SUBSCRIPTION : HERALD_TARGET_USER;
    }
  else
    return FALSE;
  return TRUE;
}

/* "C <id>\n<data>" or "X <code> <id>\n<reason>" */
static gboolean
parse_node (const char *nl, char **parts, HeraldRedisDirect *d)
{
  if (g_strv_length (parts) == 2 && g_str_equal (parts[0], "C"))
    {
      d->target = g_strdup (parts[1]);
      d->message = herald_message_new_direct (nl + 1);
      d->delivery.kind = HERALD_TARGET_CONNECTION;
    }
  else if (g_strv_length (parts) == 3 && g_str_equal (parts[0], "X"))
    {
      d->target = g_strdup (parts[2]);
      d->delivery.kind = HERALD_TARGET_CLOSE;
      d->delivery.close_code = (guint16)g_ascii_strtoull (parts[1], NULL, 10);
      d->delivery.close_reason = nl + 1;
    }
  else
    return FALSE;
  return TRUE;
}

gboolean
herald_redis_direct_parse (const char *text, gsize len, gboolean to_all, HeraldRedisDirect *d)
{
  const char *nl = memchr (text, '\n', len);
  g_autofree char *head = NULL;
  g_auto (GStrv) parts = NULL;

  memset (d, 0, sizeof *d);
  if (nl == NULL)
    return FALSE;
  head = g_strndup (text, nl - text);
  parts = g_strsplit (head, " ", 3);
  if (!(to_all ? parse_all (text, len, nl, parts, d) : parse_node (nl, parts, d)))
    return FALSE;
  d->delivery.target = d->target;
  d->delivery.message = d->message;
  return TRUE;
}

void
herald_redis_direct_clear (HeraldRedisDirect *d)
{
  g_clear_pointer (&d->origin, g_free);
  g_clear_pointer (&d->target, g_free);
  g_clear_pointer (&d->message, herald_message_unref);
}
