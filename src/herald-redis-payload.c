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
  g_free (p->key);
}

char *
herald_redis_payload_body (const char *key, const char *data_json)
{
  if (key == NULL || *key == '\0')
    return g_strdup (data_json);
  return g_strdup_printf ("K%zu %s\n%s", strlen (key), key, data_json);
}

/* Splits @body into its key (NULL when none) and data; FALSE when malformed. */
static gboolean
split_body (const char *body, char **key, const char **data)
{
  guint64 n;
  char *end;

  *key = NULL;
  *data = body;
  if (*body != 'K')
    return TRUE;
  n = g_ascii_strtoull (body + 1, &end, 10);
  if (end == body + 1 || *end != ' ' || n == 0 || n > strlen (end + 1) || end[1 + n] != '\n')
    return FALSE;
  *key = g_strndup (end + 1, n);
  *data = end + 2 + n;
  return TRUE;
}

HeraldMessage *
herald_redis_payload_body_message (const char *channel, guint64 offset, guint64 seq,
                                   const char *epoch, const char *body)
{
  g_autofree char *key = NULL;
  const char *data;

  if (!split_body (body, &key, &data))
    g_return_val_if_reached (NULL);
  return herald_message_new_channel (channel, offset, seq, epoch, key, data);
}

char *
herald_redis_payload_format_event (const char *origin, HeraldMessage *event)
{
  gsize len;
  const char *json = herald_message_get_json (event, &len);

  return g_strdup_printf ("J %s %s %s\n%.*s", origin, herald_message_get_event (event),
                          herald_message_get_exclude (event), (int)len, json);
}

HeraldMessage *
herald_redis_payload_parse_event (const char *channel, const char *text, gsize len,
                                  const char *self_node)
{
  const char *nl = memchr (text, '\n', len);
  g_autofree char *head = NULL;
  g_auto (GStrv) parts = NULL;

  if (nl == NULL || !g_str_has_prefix (text, "J "))
    return NULL;
  head = g_strndup (text + 2, nl - text - 2);
  parts = g_strsplit (head, " ", 3);
  if (g_strv_length (parts) != 3 || g_strcmp0 (parts[0], self_node) == 0
      || (!g_str_equal (parts[1], "join") && !g_str_equal (parts[1], "leave")) || nl[1] != '{')
    return NULL;
  return herald_message_new_event (channel, parts[1], parts[2], nl + 1, len - (nl + 1 - text));
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
  if (!split_body (nl + 1, &p->key, &p->data))
    return FALSE;
  return *p->data != '\0';
}

HeraldMessage *
herald_redis_payload_message (const HeraldRedisPayload *p)
{
  return herald_message_new_channel (p->channel, p->offset, p->seq, p->epoch, p->key, p->data);
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
