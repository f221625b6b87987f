/* herald-redis-cluster-ask.c: the cluster engine's questions and presence registrations.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>
#include <glib/gi18n.h>

#include "herald-error.h"
#include "herald-redis-cluster-ask.h"
#include "herald-redis-cluster-keys.h"
#include "herald-redis-payload.h"
#include "herald-redis-sync.h"

static redisReply **
ask (HeraldRedisClusterSync *sync, const char *key, guint n, const char *const *const *argvs,
     const int *argcs)
{
  return herald_redis_cluster_sync_run (sync, herald_rck_slot (key), n, argvs, argcs);
}

guint
herald_rck_ask_route (HeraldRedisClusterSync *sync, const char *self_node, const char *id,
                      const char *payload)
{
  g_autofree char *ck = herald_rck_conn_key (id);
  g_autofree char *nk = NULL;
  g_autofree char *node = NULL;
  const char *get[] = { "GET", ck };
  const char *const *argvs[] = { get };
  int argcs[] = { 2 };
  redisReply **r = ask (sync, ck, 1, argvs, argcs);
  guint n = 0;

  if (r == NULL)
    return 0;
  if (r[0]->type == REDIS_REPLY_STRING)
    node = g_strdup (r[0]->str);
  herald_redis_replies_free (r, 1);
  if (node == NULL || g_str_equal (node, self_node))
    return 0;
  nk = herald_rck_node_key (node);
  {
    const char *exists[] = { "EXISTS", nk };
    const char *spublish[] = { "SPUBLISH", nk, payload };
    const char *const *argvs2[] = { exists, spublish };
    int argcs2[] = { 2, 3 };
    guint count = *payload != '\0' ? 2 : 1;

    r = ask (sync, nk, count, argvs2, argcs2);
    if (r == NULL)
      return 0;
    if (herald_redis_reply_u64 (r[0]) == 0)
      {
        /* Its node is gone: forget it. */
        const char *del[] = { "DEL", ck };
        const char *const *argvs3[] = { del };
        int argcs3[] = { 2 };

        herald_redis_replies_free (ask (sync, ck, 1, argvs3, argcs3), 1);
      }
    else
      n = count == 1 ? 1 : (guint)herald_redis_reply_u64 (r[1]);
    herald_redis_replies_free (r, count);
  }
  return n;
}

gboolean
herald_rck_ask_presence (HeraldRedisClusterSync *sync, const char *self_node, const char *channel,
                         GHashTable *users, guint *connections, GError **error)
{
  g_autofree char *p = herald_rck_channel_key (channel, ":p");
  g_autofree char *n = herald_rck_channel_key (channel, ":n");
  g_autofree char *dead = g_strdup_printf ("%d", HERALD_RCK_NODE_DEAD_S);
  const char *argv[]
      = { "EVALSHA", herald_rck_sha (HERALD_RCK_PRESENCE_QUERY), "2", p, n, self_node, dead };
  const char *const *argvs[] = { argv };
  int argcs[] = { G_N_ELEMENTS (argv) };
  redisReply **r = ask (sync, p, 1, argvs, argcs);
  gboolean ok = FALSE;

  if (r == NULL)
    {
      g_set_error (error, HERALD_ERROR, HERALD_ERROR_UNAVAILABLE,
                   _ ("Redis Cluster: the master of the channel's slot cannot be reached"));
      return FALSE;
    }
  if (r[0]->type == REDIS_REPLY_ARRAY && r[0]->elements == 2
      && r[0]->element[0]->type == REDIS_REPLY_ARRAY)
    {
      redisReply *pairs = r[0]->element[0];

      for (gsize i = 0; i + 1 < pairs->elements; i += 2)
        {
          guint64 count = herald_redis_reply_u64 (pairs->element[i + 1]);

          if (pairs->element[i]->type != REDIS_REPLY_STRING || count == 0)
            continue;
          g_hash_table_add (users, g_strdup (pairs->element[i]->str));
          *connections += (guint)count;
        }
      *connections += (guint)herald_redis_reply_u64 (r[0]->element[1]);
      ok = TRUE;
    }
  else
    g_set_error (error, HERALD_ERROR, HERALD_ERROR_UNAVAILABLE, _ ("Redis Cluster: presence: %s"),
                 r[0]->type == REDIS_REPLY_ERROR ? r[0]->str : "unexpected answer");
  herald_redis_replies_free (r, 1);
  return ok;
}

/* The position script (it gives the channel an epoch if it has none), then
 * optionally the history and the time, in one round trip. */
static redisReply **
read_channel (HeraldRedisClusterSync *sync, const char *channel, gboolean with_history,
              char **epoch, guint64 *offset)
{
  g_autofree char *m = herald_rck_channel_key (channel, ":m");
  g_autofree char *h = herald_rck_channel_key (channel, ":h");
  g_autofree char *meta_ttl = g_strdup_printf ("%d", HERALD_RCK_META_TTL_S);
  g_autofree char *fresh = herald_engine_new_epoch ();
  const char *a0[]
      = { "EVALSHA", herald_rck_sha (HERALD_RCK_POSITION), "2", m, h, fresh, meta_ttl };
  const char *a1[] = { "LRANGE", h, "0", "-1" };
  const char *a2[] = { "TIME" };
  const char *const *argvs[] = { a0, a1, a2 };
  int argcs[] = { G_N_ELEMENTS (a0), 4, 1 };
  guint n = with_history ? 3 : 1;
  redisReply **r = ask (sync, m, n, argvs, argcs);
  redisReply *pos;

  if (r == NULL)
    return NULL;
  pos = r[0];
  if (pos->type != REDIS_REPLY_ARRAY || pos->elements != 2
      || pos->element[1]->type != REDIS_REPLY_STRING)
    {
      if (pos->type == REDIS_REPLY_ERROR)
        g_warning (_ ("Redis Cluster: %s"), pos->str);
      herald_redis_replies_free (r, n);
      return NULL;
    }
  *epoch = g_strdup (pos->element[1]->str);
  *offset = herald_redis_reply_u64 (pos->element[0]);
  return r;
}

gboolean
herald_rck_ask_position (HeraldRedisClusterSync *sync, const char *channel, char **epoch,
                         guint64 *offset)
{
  redisReply **r = read_channel (sync, channel, FALSE, epoch, offset);

  herald_redis_replies_free (r, 1);
  return r != NULL;
}

gboolean
herald_rck_ask_recover (HeraldRedisClusterSync *sync, const char *channel, guint64 since,
                        const char *epoch, guint ttl, HeraldRecovery *r)
{
  g_autoptr (GPtrArray) kept = NULL;
  g_autofree char *current = NULL;
  guint64 top = 0;
  redisReply **replies = read_channel (sync, channel, TRUE, &current, &top);

  if (replies == NULL)
    return FALSE;
  kept = herald_redis_payload_parse_history (replies[1], herald_redis_reply_time (replies[2]), ttl);
#define KEPT(i) ((const HeraldRedisPayload *)g_ptr_array_index (kept, (i)))
  /* A publish may run between the script and LRANGE: the list is then newer. */
  if (kept->len > 0 && g_strcmp0 (KEPT (kept->len - 1)->epoch, current) == 0)
    top = MAX (top, KEPT (kept->len - 1)->offset);
  r->top_offset = top;
  if (epoch != NULL && *epoch != '\0' && g_strcmp0 (epoch, current) != 0)
    r->recovered = FALSE; /* history of that epoch is gone */
  else if (since > top)
    r->recovered = FALSE;
  else if (since == top)
    r->recovered = TRUE;
  else if (kept->len == 0 || KEPT (0)->offset > since + 1)
    r->recovered = FALSE; /* some of the missed messages were dropped */
  else
    {
      r->recovered = TRUE;
      for (guint i = 0; i < kept->len; i++)
        if (KEPT (i)->offset > since && g_strcmp0 (KEPT (i)->epoch, current) == 0)
          g_ptr_array_add (r->messages, herald_redis_payload_message (KEPT (i)));
    }
#undef KEPT
  g_free (r->epoch);
  r->epoch = g_steal_pointer (&current);
  g_clear_pointer (&kept, g_ptr_array_unref);
  herald_redis_replies_free (replies, 3);
  return TRUE;
}

void
herald_rck_send_presence (HeraldRedisClusterPool *pool, const char *self_node, const char *channel,
                          GPtrArray *pairs)
{
  g_autofree char *p = herald_rck_channel_key (channel, ":p");
  g_autofree char *n = herald_rck_channel_key (channel, ":n");
  g_autofree char *ttl = g_strdup_printf ("%d", HERALD_RCK_NODE_DEAD_S);
  g_autoptr (GPtrArray) argv = g_ptr_array_new ();

  g_ptr_array_add (argv, (char *)"EVALSHA");
  g_ptr_array_add (
      argv, (char *)herald_rck_sha (pairs ? HERALD_RCK_PRESENCE_SET : HERALD_RCK_PRESENCE_ALIVE));
  g_ptr_array_add (argv, (char *)"2");
  g_ptr_array_add (argv, p);
  g_ptr_array_add (argv, n);
  g_ptr_array_add (argv, (char *)self_node);
  g_ptr_array_add (argv, ttl);
  for (guint i = 0; pairs != NULL && i < pairs->len; i++)
    g_ptr_array_add (argv, pairs->pdata[i]);
  herald_redis_cluster_pool_command (pool, herald_rck_slot (p), (int)argv->len,
                                     (const char **)argv->pdata, NULL, NULL, NULL);
}

gboolean
herald_rck_publish (HeraldRedisClusterPool *pool, const char *channel, const char *data_json,
                    guint history_size, guint history_ttl, HeraldRedisWireReplyFn fn,
                    gpointer privdata)
{
  g_autofree char *m = herald_rck_channel_key (channel, ":m");
  g_autofree char *h = herald_rck_channel_key (channel, ":h");
  g_autofree char *topic = herald_rck_channel_key (channel, "");
  g_autofree char *size = g_strdup_printf ("%u", history_size);
  g_autofree char *ttl = g_strdup_printf ("%u", history_ttl);
  g_autofree char *fresh = herald_engine_new_epoch ();
  g_autofree char *meta_ttl = g_strdup_printf ("%d", HERALD_RCK_META_TTL_S);
  const char *argv[] = { "EVALSHA", herald_rck_sha (HERALD_RCK_PUBLISH),
                         "2",       m,
                         h,         channel,
                         data_json, size,
                         ttl,       fresh,
                         meta_ttl,  topic };

  return herald_redis_cluster_pool_command (pool, herald_rck_slot (m), G_N_ELEMENTS (argv), argv,
                                            NULL, fn, privdata);
}

GHashTable *
herald_rck_group_presence (GHashTable *presence)
{
  GHashTable *by_channel
      = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify)g_ptr_array_unref);
  GHashTableIter iter;
  gpointer key, value;

  g_hash_table_iter_init (&iter, presence);
  while (g_hash_table_iter_next (&iter, &key, &value))
    {
      gsize cut = strcspn (key, "\n");
      g_autofree char *channel = g_strndup (key, cut);
      GPtrArray *pairs = g_hash_table_lookup (by_channel, channel);

      if (pairs == NULL)
        {
          pairs = g_ptr_array_new_with_free_func (g_free);
          g_hash_table_insert (by_channel, g_strdup (channel), pairs);
        }
      g_ptr_array_add (pairs,
                       g_strdup (((const char *)key)[cut] ? (const char *)key + cut + 1 : ""));
      g_ptr_array_add (pairs, g_strdup_printf ("%u", GPOINTER_TO_UINT (value)));
    }
  return by_channel;
}

static void
command_if_owned (HeraldRedisClusterPool *pool, const char *addr, const char *key, int argc,
                  const char **argv)
{
  guint slot = herald_rck_slot (key);
  g_autofree char *owner = addr ? herald_redis_cluster_pool_dup_owner (pool, slot) : NULL;

  if (addr == NULL || g_strcmp0 (owner, addr) == 0)
    herald_redis_cluster_pool_command (pool, slot, argc, argv, NULL, NULL, NULL);
}

void
herald_rck_send_registration (HeraldRedisClusterPool *pool, const char *self_node, GPtrArray *ids,
                              const char *addr)
{
  g_autofree char *key = herald_rck_node_key (self_node);
  g_autofree char *ttl = g_strdup_printf ("%d", HERALD_RCK_NODE_DEAD_S);
  const char *alive[] = { "SET", key, "1", "EX", ttl };

  command_if_owned (pool, addr, key, G_N_ELEMENTS (alive), alive);
  for (guint i = 0; ids != NULL && i < ids->len; i++)
    {
      g_autofree char *k = herald_rck_conn_key (ids->pdata[i]);
      const char *argv[] = { "SET", k, self_node };

      command_if_owned (pool, addr, k, 3, argv);
    }
}
