/* herald-hub-queries.c: questions about live connections, answered by the
 * workers (each reports its own share in its thread) and gathered here.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>
#include <glib/gi18n.h>

#include "herald-connection.h"
#include "herald-hub.h"
#include "herald-worker.h"

/* ---- gathering answers from the workers ---- */

typedef gpointer (*CollectFunc) (HeraldHub *hub, HeraldWorker *worker, gpointer data);

typedef struct
{
  GTask *task;
  CollectFunc collect;
  gpointer data;
  GDestroyNotify data_free;
  GDestroyNotify part_free;
  GMutex lock;
  GPtrArray *parts;
  gint pending;
} Gather;

static void
gather_free (Gather *g)
{
  if (g->data_free)
    g->data_free (g->data);
  g_mutex_clear (&g->lock);
  g_free (g);
}

static void
gather_one (HeraldWorker *worker, gpointer user_data)
{
  Gather *g = user_data;
  gpointer part = g->collect (g_task_get_source_object (g->task), worker, g->data);

  g_mutex_lock (&g->lock);
  g_ptr_array_add (g->parts, part);
  g_mutex_unlock (&g->lock);
  if (g_atomic_int_dec_and_test (&g->pending))
    {
      GTask *task = g->task;
      /* Returning from a worker thread: GTask calls back in the caller's context. */
      g_task_return_pointer (task, g->parts, (GDestroyNotify)g_ptr_array_unref);
      gather_free (g);
      g_object_unref (task);
    }
}

static void
gather_async (HeraldHub *self, CollectFunc collect, gpointer data, GDestroyNotify data_free,
              GDestroyNotify part_free, gpointer source_tag, GAsyncReadyCallback callback,
              gpointer user_data)
{
  Gather *g = g_new0 (Gather, 1);

  g->task = g_task_new (self, NULL, callback, user_data);
  g_task_set_source_tag (g->task, source_tag);
  g->collect = collect;
  g->data = data;
  g->data_free = data_free;
  g->part_free = part_free;
  g_mutex_init (&g->lock);
  g->parts = g_ptr_array_new_with_free_func (part_free);
  g->pending = herald_hub_get_n_workers (self);

  if (g->pending == 0)
    {
      GTask *task = g->task;
      g_task_return_pointer (task, g->parts, (GDestroyNotify)g_ptr_array_unref);
      gather_free (g);
      g_object_unref (task);
      return;
    }
  herald_hub_foreach_worker (self, gather_one, g);
}

static gpointer
collect_connections (HeraldHub *hub, HeraldWorker *worker, gpointer data)
{
  return herald_worker_list_connections (worker);
}

static gint
compare_connected_at (gconstpointer a, gconstpointer b)
{
  const HeraldConnectionInfo *ia = *(HeraldConnectionInfo **)a;
  const HeraldConnectionInfo *ib = *(HeraldConnectionInfo **)b;
  return ia->connected_at < ib->connected_at ? -1 : ia->connected_at > ib->connected_at;
}

void
herald_hub_list_connections_async (HeraldHub *self, GAsyncReadyCallback callback,
                                   gpointer user_data)
{
  g_return_if_fail (HERALD_IS_HUB (self));

  gather_async (self, collect_connections, NULL, NULL, (GDestroyNotify)g_ptr_array_unref,
                herald_hub_list_connections_async, callback, user_data);
}

GPtrArray *
herald_hub_list_connections_finish (HeraldHub *self, GAsyncResult *result, GError **error)
{
  g_autoptr (GPtrArray) parts = NULL;
  GPtrArray *out;

  g_return_val_if_fail (HERALD_IS_HUB (self), NULL);
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  parts = g_task_propagate_pointer (G_TASK (result), error);
  if (parts == NULL)
    return NULL;
  out = g_ptr_array_new_with_free_func ((GDestroyNotify)herald_connection_info_free);
  for (guint i = 0; i < parts->len; i++)
    {
      GPtrArray *part = g_ptr_array_index (parts, i);
      for (guint j = 0; j < part->len; j++)
        g_ptr_array_add (out, g_steal_pointer (&part->pdata[j]));
      g_ptr_array_set_free_func (part, NULL);
    }
  g_ptr_array_sort (out, compare_connected_at);
  return out;
}

static gpointer
collect_one_connection (HeraldHub *hub, HeraldWorker *worker, gpointer data)
{
  HeraldConnection *conn = herald_worker_lookup_connection (worker, data);

  if (conn == NULL || herald_connection_get_state (conn) != HERALD_CONNECTION_OPEN)
    return NULL;
  return herald_connection_get_info (conn);
}

void
herald_hub_get_connection_async (HeraldHub *self, const char *id, GAsyncReadyCallback callback,
                                 gpointer user_data)
{
  g_return_if_fail (HERALD_IS_HUB (self));
  g_return_if_fail (id != NULL);

  gather_async (self, collect_one_connection, g_strdup (id), g_free,
                (GDestroyNotify)herald_connection_info_free, herald_hub_get_connection_async,
                callback, user_data);
}

HeraldConnectionInfo *
herald_hub_get_connection_finish (HeraldHub *self, GAsyncResult *result, GError **error)
{
  g_autoptr (GPtrArray) parts = NULL;

  g_return_val_if_fail (HERALD_IS_HUB (self), NULL);
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  parts = g_task_propagate_pointer (G_TASK (result), error);
  if (parts == NULL)
    return NULL;
  for (guint i = 0; i < parts->len; i++)
    if (parts->pdata[i])
      return g_steal_pointer (&parts->pdata[i]);
  g_set_error (error, HERALD_ERROR, HERALD_ERROR_NOT_FOUND, _ ("no such connection"));
  return NULL;
}

static gpointer
collect_channels (HeraldHub *hub, HeraldWorker *worker, gpointer data)
{
  return herald_worker_list_channels (worker);
}

static gint
compare_channel_name (gconstpointer a, gconstpointer b)
{
  return strcmp ((*(HeraldChannelInfo **)a)->name, (*(HeraldChannelInfo **)b)->name);
}

void
herald_hub_list_channels_async (HeraldHub *self, GAsyncReadyCallback callback, gpointer user_data)
{
  g_return_if_fail (HERALD_IS_HUB (self));

  gather_async (self, collect_channels, NULL, NULL, (GDestroyNotify)g_ptr_array_unref,
                herald_hub_list_channels_async, callback, user_data);
}

GPtrArray *
herald_hub_list_channels_finish (HeraldHub *self, GAsyncResult *result, GError **error)
{
  g_autoptr (GPtrArray) parts = NULL;
  g_autoptr (GHashTable) merged = NULL;
  GPtrArray *out;
  GHashTableIter iter;
  HeraldChannelInfo *info;

  g_return_val_if_fail (HERALD_IS_HUB (self), NULL);
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  parts = g_task_propagate_pointer (G_TASK (result), error);
  if (parts == NULL)
    return NULL;
  merged = g_hash_table_new (g_str_hash, g_str_equal);
  out = g_ptr_array_new_with_free_func ((GDestroyNotify)herald_channel_info_free);
  for (guint i = 0; i < parts->len; i++)
    {
      GPtrArray *part = g_ptr_array_index (parts, i);
      for (guint j = 0; j < part->len; j++)
        {
          HeraldChannelInfo *item = part->pdata[j];
          HeraldChannelInfo *have = g_hash_table_lookup (merged, item->name);
          if (have)
            have->subscribers += item->subscribers;
          else
            {
              g_hash_table_insert (merged, item->name, item);
              part->pdata[j] = NULL;
            }
        }
    }
  g_hash_table_iter_init (&iter, merged);
  while (g_hash_table_iter_next (&iter, NULL, (gpointer *)&info))
    g_ptr_array_add (out, info);
  g_ptr_array_sort (out, compare_channel_name);
  return out;
}

static gpointer
collect_stats (HeraldHub *hub, HeraldWorker *worker, gpointer data)
{
  HeraldStats *stats = g_new0 (HeraldStats, 1);
  herald_worker_add_stats (worker, stats);
  return stats;
}

void
herald_hub_get_stats_async (HeraldHub *self, GAsyncReadyCallback callback, gpointer user_data)
{
  g_return_if_fail (HERALD_IS_HUB (self));

  gather_async (self, collect_stats, NULL, NULL, g_free, herald_hub_get_stats_async, callback,
                user_data);
}

HeraldStats *
herald_hub_get_stats_finish (HeraldHub *self, GAsyncResult *result, GError **error)
{
  g_autoptr (GPtrArray) parts = NULL;
  HeraldStats *out;

  g_return_val_if_fail (HERALD_IS_HUB (self), NULL);
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  parts = g_task_propagate_pointer (G_TASK (result), error);
  if (parts == NULL)
    return NULL;
  out = g_new0 (HeraldStats, 1);
  for (guint i = 0; i < parts->len; i++)
    {
      HeraldStats *s = g_ptr_array_index (parts, i);
      out->connections_websocket += s->connections_websocket;
      out->connections_sse += s->connections_sse;
      out->connections_opened += s->connections_opened;
      out->messages_received += s->messages_received;
      out->deliveries += s->deliveries;
      out->bytes_written += s->bytes_written;
      out->writes_sendmsg += s->writes_sendmsg;
      out->writes_batched += s->writes_batched;
      out->batch_submits += s->batch_submits;
      out->bytes_queued += s->bytes_queued;
      out->dropped += s->dropped;
      out->conflated += s->conflated;
      for (guint j = 0; j < G_N_ELEMENTS (out->closes); j++)
        out->closes[j] += s->closes[j];
    }
  out->messages_published = herald_hub_get_n_published (self);
  return out;
}
