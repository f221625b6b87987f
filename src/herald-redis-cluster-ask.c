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

/* The channel's presence keys: pu, pz, pc, and @node_id's share (pm). */
static void
presence_keys (const char *channel, const char *node_id, char *keys[4])
{
  keys[0] = herald_rck_channel_key (channel, ":pu");
  keys[1] = herald_rck_channel_key (channel, ":pz");
  keys[2] = herald_rck_channel_key (channel, ":pc");
  keys[3] = node_id ? herald_rck_share_key (channel, node_id) : NULL;
}

static void
presence_keys_clear (char *keys[4])
{
  for (guint i = 0; i < 4; i++)
    g_clear_pointer (&keys[i], g_free);
}

char **
herald_rck_ask_presence (HeraldRedisClusterSync *sync, const char *channel, const char *after,
                         guint limit, guint *users, guint *connections, gboolean *more,
                         GError **error)
{
  char *keys[4];
  g_autofree char *limit_text = g_strdup_printf ("%u", limit);
  redisReply **r;
  GPtrArray *page;

  presence_keys (channel, NULL, keys);
  {
    const char *argv[] = { "EVALSHA",
                           herald_rck_sha (HERALD_RCK_PRESENCE_QUERY),
                           "3",
                           keys[0],
                           keys[1],
                           keys[2],
                           after ? after : "",
                           limit_text };
    const char *const *argvs[] = { argv };
    int argcs[] = { G_N_ELEMENTS (argv) };

    r = ask (sync, keys[0], 1, argvs, argcs);
  }
  presence_keys_clear (keys);
  if (r == NULL)
    {
      g_set_error (error, HERALD_ERROR, HERALD_ERROR_UNAVAILABLE,
                   _ ("Redis Cluster: the master of the channel's slot cannot be reached"));
      return NULL;
    }
  if (r[0]->type != REDIS_REPLY_ARRAY || r[0]->elements != 3
      || r[0]->element[2]->type != REDIS_REPLY_ARRAY)
    {
      g_set_error (error, HERALD_ERROR, HERALD_ERROR_UNAVAILABLE, _ ("Redis Cluster: presence: %s"),
                   r[0]->type == REDIS_REPLY_ERROR ? r[0]->str : "unexpected answer");
      herald_redis_replies_free (r, 1);
      return NULL;
    }
  *users = (guint)herald_redis_reply_u64 (r[0]->element[0]);
  *connections = (guint)herald_redis_reply_u64 (r[0]->element[1]);
  page = g_ptr_array_new ();
  for (gsize i = 0; i < r[0]->element[2]->elements && page->len < limit; i++)
    {
      redisReply *user = r[0]->element[2]->element[i];

      if (user->type == REDIS_REPLY_STRING)
        g_ptr_array_add (page, g_strndup (user->str, user->len));
    }
  *more = r[0]->element[2]->elements > limit;
  g_ptr_array_add (page, NULL);
  herald_redis_replies_free (r, 1);
  return (char **)g_ptr_array_free (page, FALSE);
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

gboolean
herald_rck_send_presence (HeraldRedisClusterPool *pool, const char *self_node, const char *channel,
                          GPtrArray *pairs)
{
  char *keys[4];
  g_autoptr (GPtrArray) argv = g_ptr_array_new ();
  gboolean sent;

  presence_keys (channel, self_node, keys);
  g_ptr_array_add (argv, (char *)"EVALSHA");
  g_ptr_array_add (
      argv, (char *)herald_rck_sha (pairs ? HERALD_RCK_PRESENCE_SET : HERALD_RCK_PRESENCE_DROP));
  g_ptr_array_add (argv, (char *)"4");
  for (guint i = 0; i < 4; i++)
    g_ptr_array_add (argv, keys[i]);
  for (guint i = 0; pairs != NULL && i < pairs->len; i++)
    g_ptr_array_add (argv, pairs->pdata[i]);
  sent = herald_redis_cluster_pool_command (pool, herald_rck_slot (keys[0]), (int)argv->len,
                                            (const char **)argv->pdata, NULL, NULL, NULL);
  presence_keys_clear (keys);
  return sent;
}

gboolean
herald_rck_update_presence (HeraldRedisClusterPool *pool, const char *self_node,
                            const char *channel, const char *user_id, int delta)
{
  char *keys[4];
  g_autofree char *topic = herald_rck_channel_key (channel, "");
  g_autofree char *d = g_strdup_printf ("%d", delta);
  gboolean sent;

  presence_keys (channel, self_node, keys);
  {
    const char *argv[] = { "EVALSHA", herald_rck_sha (HERALD_RCK_PRESENCE),
                           "4",       keys[0],
                           keys[1],   keys[2],
                           keys[3],   user_id ? user_id : "",
                           d,         topic };

    sent = herald_redis_cluster_pool_command (pool, herald_rck_slot (keys[0]), G_N_ELEMENTS (argv),
                                              argv, NULL, NULL, NULL);
  }
  presence_keys_clear (keys);
  return sent;
}

void
herald_rck_send_channel_list (HeraldRedisClusterPool *pool, const char *self_node, const char *verb,
                              GPtrArray *channels)
{
  g_autofree char *key = herald_rck_node_channels_key (self_node);
  g_autoptr (GPtrArray) argv = g_ptr_array_new ();

  if (channels->len == 0)
    return;
  g_ptr_array_add (argv, (char *)verb);
  g_ptr_array_add (argv, key);
  for (guint i = 0; i < channels->len; i++)
    g_ptr_array_add (argv, channels->pdata[i]);
  herald_redis_cluster_pool_command (pool, herald_rck_slot (key), (int)argv->len,
                                     (const char **)argv->pdata, NULL, NULL, NULL);
}

/* ---- reaping dead nodes: their channel list (their slot), then one drop
 * per channel (its slot), a few per heartbeat ---- */

typedef struct
{
  HeraldRedisClusterPool *pool; /* only touched on a real reply (the pool is alive) */
  char *node;
  char *channel;
} Reap;

static Reap *
reap_new (HeraldRedisClusterPool *pool, const char *node, const char *channel)
{
  Reap *reap = g_new0 (Reap, 1);

  reap->pool = pool;
  reap->node = g_strdup (node);
  reap->channel = g_strdup (channel);
  return reap;
}

static void
reap_free (Reap *reap)
{
  g_free (reap->node);
  g_free (reap->channel);
  g_free (reap);
}

/* The dead node's share of the channel is gone: off its list. */
static void
on_dropped (redisReply *reply, gpointer privdata)
{
  Reap *reap = privdata;

  if (reply != NULL && reply->type == REDIS_REPLY_INTEGER)
    {
      g_autofree char *key = herald_rck_node_channels_key (reap->node);
      const char *argv[] = { "SREM", key, reap->channel };

      herald_redis_cluster_pool_command (reap->pool, herald_rck_slot (key), 3, argv, NULL, NULL,
                                         NULL);
    }
  reap_free (reap);
}

static void
on_dead_channels (redisReply *reply, gpointer privdata)
{
  Reap *reap = privdata;

  if (reply == NULL || reply->type != REDIS_REPLY_ARRAY)
    {
      reap_free (reap);
      return;
    }
  if (reply->elements == 0)
    {
      /* All taken back: forget the node (unless it came back meanwhile). */
      g_autofree char *dead = g_strdup_printf ("%d", HERALD_RCK_NODE_DEAD_S);
      const char *argv[] = { "EVALSHA",  herald_rck_sha (HERALD_RCK_PRESENCE_FORGET),
                             "1",        HERALD_RCK_NODES_KEY,
                             reap->node, dead };

      herald_redis_cluster_pool_command (reap->pool, herald_rck_slot (HERALD_RCK_NODES_KEY),
                                         G_N_ELEMENTS (argv), argv, NULL, NULL, NULL);
    }
  for (gsize i = 0; i < reply->elements; i++)
    {
      char *keys[4];
      Reap *one;

      if (reply->element[i]->type != REDIS_REPLY_STRING)
        continue;
      one = reap_new (reap->pool, reap->node, reply->element[i]->str);
      presence_keys (one->channel, one->node, keys);
      {
        const char *argv[] = { "EVALSHA", herald_rck_sha (HERALD_RCK_PRESENCE_DROP),
                               "4",       keys[0],
                               keys[1],   keys[2],
                               keys[3] };

        if (!herald_redis_cluster_pool_command (reap->pool, herald_rck_slot (keys[0]),
                                                G_N_ELEMENTS (argv), argv, NULL, on_dropped, one))
          reap_free (one); /* its master is down: the next heartbeat tries again */
      }
      presence_keys_clear (keys);
    }
  reap_free (reap);
}

void
herald_rck_reap_nodes (HeraldRedisClusterPool *pool, const char *self_node, redisReply *dead)
{
  for (gsize i = 0; dead != NULL && i < dead->elements; i++)
    {
      g_autofree char *key = NULL;
      g_autofree char *count = g_strdup_printf ("%d", HERALD_RCK_REAP_CHANNELS);
      Reap *reap;

      if (dead->element[i]->type != REDIS_REPLY_STRING
          || g_str_equal (dead->element[i]->str, self_node))
        continue;
      reap = reap_new (pool, dead->element[i]->str, NULL);
      key = herald_rck_node_channels_key (reap->node);
      {
        const char *argv[] = { "SRANDMEMBER", key, count };

        if (!herald_redis_cluster_pool_command (pool, herald_rck_slot (key), 3, argv, NULL,
                                                on_dead_channels, reap))
          reap_free (reap);
      }
    }
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
