/* herald-redis-payload.c: the channel payload format (see herald-redis-payload.h).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>

#include "herald-names.h"
#include "herald-redis-payload.h"

void
herald_redis_payload_clear (HeraldRedisPayload *p)
{
  g_free (p->epoch);
  g_free (p->channel);
}

static void
payload_clear_free (gpointer data)
{
  herald_redis_payload_clear (data);
  g_free (data);
}

gboolean
herald_redis_payload_parse (const char *text, gsize len, HeraldRedisPayload *p)
{
  const char *nl = memchr (text, '\n', len);
  g_auto (GStrv) parts = NULL;
  g_autofree char *head = NULL;

  memset (p, 0, sizeof *p);
  if (nl == NULL || text[len] != '\0')
    return FALSE;
  head = g_strndup (text, nl - text);
  parts = g_strsplit (head, " ", 6);
  if (g_strv_length (parts) != 6)
    return FALSE;
  p->offset = g_ascii_strtoull (parts[0], NULL, 10);
  p->seq = g_ascii_strtoull (parts[1], NULL, 10);
  p->prev = g_ascii_strtoull (parts[2], NULL, 10);
  p->time = g_ascii_strtoll (parts[3], NULL, 10);
  if (p->offset == 0 || p->seq == 0 || !herald_channel_name_is_valid (parts[5]))
    return FALSE;
  p->epoch = g_strdup (parts[4]);
  p->channel = g_strdup (parts[5]);
  p->data = nl + 1;
  return *p->data != '\0';
}

HeraldMessage *
herald_redis_payload_message (const HeraldRedisPayload *p)
{
  return herald_message_new_channel (p->channel, p->offset, p->seq, p->epoch, p->data);
}

GPtrArray *
herald_redis_payload_parse_history (redisReply *list, gint64 now, guint ttl)
{
  GPtrArray *out = g_ptr_array_new_with_free_func ((GDestroyNotify)payload_clear_free);

  if (list == NULL || list->type != REDIS_REPLY_ARRAY)
    return out;
  for (gsize i = list->elements; i > 0; i--)
    {
      redisReply *e = list->element[i - 1];
      HeraldRedisPayload *p = g_new0 (HeraldRedisPayload, 1);

      if (e->type != REDIS_REPLY_STRING || !herald_redis_payload_parse (e->str, e->len, p)
          || (ttl > 0 && now - p->time >= (gint64)ttl))
        {
          /* Expired (or unreadable): what came before it is gone too. */
          payload_clear_free (p);
          g_ptr_array_set_size (out, 0);
          continue;
        }
      g_ptr_array_add (out, p);
    }
  return out;
}
