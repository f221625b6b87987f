/* herald-redis-shards.c: one engine over several independent Redis servers.
 *
 * Each shard is a complete Redis engine (its own links, pub/sub
 * subscription, history, offsets, presence and node liveness) on its own
 * server; this engine only routes: a channel's traffic, history and presence
 * go to the channel's shard, a user's or connection's to the shard of its
 * id, broadcasts to the first shard. A shard that is down degrades only
 * what lives on it; local delivery never stops (each shard engine already
 * delivers locally while its Redis is away).
 *
 * Shards are named by their URL as written, so reordering the list moves
 * nothing, and rendezvous hashing moves only about 1/N of the channels when
 * a shard is added. SSE resume spans one seq space: a stream of channels that
 * live on different shards cannot resume exactly and is told so
 * (recovered: false), never given a silent gap.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "herald-redis-shards.h"

#include "herald-redis-engine.h"

#include <string.h>

struct _HeraldRedisShards
{
  HeraldEngine parent_instance;
  GPtrArray *engines; /* of HeraldEngine* (HeraldRedisEngine), one per shard */
  char **names;       /* the shards' URLs as configured: the hash's names */
};

G_DEFINE_FINAL_TYPE (HeraldRedisShards, herald_redis_shards, HERALD_TYPE_ENGINE)

/* FNV-1a then a splitmix64 finaliser: cheap and well mixed */
static guint64
mix (guint64 h)
{
  h ^= h >> 30;
  h *= G_GUINT64_CONSTANT (0xbf58476d1ce4e5b9);
  h ^= h >> 27;
  h *= G_GUINT64_CONSTANT (0x94d049bb133111eb);
  h ^= h >> 31;
  return h;
}

static guint64
weight (const char *name, const char *key)
{
  guint64 h = G_GUINT64_CONSTANT (0xcbf29ce484222325);

  for (const char *c = name; *c != '\0'; c++)
    h = (h ^ (guchar)*c) * G_GUINT64_CONSTANT (0x100000001b3);
  h = (h ^ 0xff) * G_GUINT64_CONSTANT (0x100000001b3); /* separates name from key */
  for (const char *c = key; *c != '\0'; c++)
    h = (h ^ (guchar)*c) * G_GUINT64_CONSTANT (0x100000001b3);
  return mix (h);
}

guint
herald_redis_shards_pick (const char *const *names, guint n_names, const char *key)
{
  guint best = 0;
  guint64 best_weight = 0;

  g_return_val_if_fail (names != NULL && n_names > 0 && key != NULL, 0);
  for (guint i = 0; i < n_names; i++)
    {
      guint64 w = weight (names[i], key);

      if (i == 0 || w > best_weight)
        {
          best = i;
          best_weight = w;
        }
    }
  return best;
}

static HeraldEngine *
shard_of (HeraldRedisShards *self, const char *key)
{
  return self->engines->pdata[herald_redis_shards_pick (
      (const char *const *)self->names, self->engines->len, key != NULL ? key : "")];
}

static const char *
shards_get_name (HeraldEngine *engine)
{
  return "redis";
}

/* "ok" when every shard is; else each degraded shard's state, by URL */
static char *
shards_dup_state (HeraldEngine *engine)
{
  HeraldRedisShards *self = HERALD_REDIS_SHARDS (engine);
  g_autoptr (GString) out = g_string_new (NULL);

  for (guint i = 0; i < self->engines->len; i++)
    {
      g_autofree char *state = herald_engine_dup_state (self->engines->pdata[i]);
      g_autoptr (GUri) uri = g_uri_parse (self->names[i], G_URI_FLAGS_HAS_PASSWORD, NULL);
      g_autofree char *where = NULL;

      if (g_strcmp0 (state, "ok") == 0)
        continue;
      /* Never the password */
      where = uri != NULL && g_uri_get_host (uri) != NULL && *g_uri_get_host (uri) != '\0'
                  ? g_strdup_printf ("%s:%d", g_uri_get_host (uri), g_uri_get_port (uri))
              : uri != NULL ? g_strdup (g_uri_get_path (uri))
                            : g_strdup_printf ("#%u", i + 1);
      g_string_append_printf (out, "%sshard %u/%u (%s) %s", out->len > 0 ? "; " : "", i + 1,
                              self->engines->len, where, state);
    }
  return out->len > 0 ? g_string_free (g_steal_pointer (&out), FALSE) : g_strdup ("ok");
}

static void
on_shard_published (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  g_autoptr (GError) error = NULL;
  guint64 offset = 0;

  if (herald_engine_publish_finish (HERALD_ENGINE (source), result, &offset, &error))
    g_task_return_int (task, (gssize)offset);
  else
    g_task_return_error (task, g_steal_pointer (&error));
}

static void
shards_publish_async (HeraldEngine *engine, const char *channel, const char *key,
                      const char *data_json, GCancellable *cancellable,
                      GAsyncReadyCallback callback, gpointer user_data)
{
  HeraldRedisShards *self = HERALD_REDIS_SHARDS (engine);
  GTask *task = g_task_new (engine, cancellable, callback, user_data);

  g_task_set_source_tag (task, shards_publish_async);
  herald_engine_publish_async (shard_of (self, channel), channel, key, data_json, cancellable,
                               on_shard_published, task);
}

/* A channel's events travel with its messages, on its shard. */
static void
shards_announce (HeraldEngine *engine, HeraldMessage *event)
{
  herald_engine_announce (
      shard_of (HERALD_REDIS_SHARDS (engine), herald_message_get_channel (event)), event);
}

static guint
shards_send (HeraldEngine *engine, HeraldTargetKind kind, const char *target, const char *data_json)
{
  HeraldRedisShards *self = HERALD_REDIS_SHARDS (engine);
  HeraldEngine *shard
      = kind == HERALD_TARGET_ALL ? self->engines->pdata[0] : shard_of (self, target);

  return herald_engine_send (shard, kind, target, data_json);
}

static void
shards_close_connection (HeraldEngine *engine, const char *id, guint16 code, const char *reason)
{
  herald_engine_close_connection (shard_of (HERALD_REDIS_SHARDS (engine), id), id, code, reason);
}

static HeraldRecovery *
shards_recover (HeraldEngine *engine, const char *channel, guint64 since, const char *epoch)
{
  return herald_engine_recover (shard_of (HERALD_REDIS_SHARDS (engine), channel), channel, since,
                                epoch);
}

/* The shard that holds every one of @channels, or NULL when they spread */
static HeraldEngine *
common_shard (HeraldRedisShards *self, const char *const *channels)
{
  HeraldEngine *shard = NULL;

  for (gsize i = 0; channels != NULL && channels[i] != NULL; i++)
    {
      HeraldEngine *here = shard_of (self, channels[i]);

      if (shard != NULL && here != shard)
        return NULL;
      shard = here;
    }
  return shard;
}

static HeraldRecovery *
shards_recover_stream (HeraldEngine *engine, const char *const *channels, const char *epoch,
                       guint64 since_seq)
{
  HeraldRedisShards *self = HERALD_REDIS_SHARDS (engine);
  HeraldEngine *shard
      = self->engines->len == 1 ? self->engines->pdata[0] : common_shard (self, channels);
  g_autofree char *current = NULL;

  if (shard != NULL)
    return herald_engine_recover_stream (shard, channels, epoch, since_seq);
  /* Seqs of different shards do not compare: say so */
  current = herald_engine_dup_epoch (self->engines->pdata[0]);
  return herald_recovery_new (current);
}

static char *
shards_dup_epoch (HeraldEngine *engine)
{
  return herald_engine_dup_epoch (HERALD_REDIS_SHARDS (engine)->engines->pdata[0]);
}

static void
shards_get_position (HeraldEngine *engine, const char *channel, guint64 *offset, char **epoch)
{
  herald_engine_get_position (shard_of (HERALD_REDIS_SHARDS (engine), channel), channel, offset,
                              epoch);
}

/* One seq space only with one shard: a fresh SSE stream gets no id
 * otherwise, and its resume is judged by recover_stream */
static gboolean
shards_get_stream_position (HeraldEngine *engine, guint64 *seq, char **epoch)
{
  HeraldRedisShards *self = HERALD_REDIS_SHARDS (engine);

  if (self->engines->len != 1)
    return FALSE;
  return herald_engine_get_stream_position (self->engines->pdata[0], seq, epoch);
}

static gboolean
shards_presence_join (HeraldEngine *engine, const char *channel, const char *user_id)
{
  return herald_engine_presence_join (shard_of (HERALD_REDIS_SHARDS (engine), channel), channel,
                                      user_id);
}

static gboolean
shards_presence_leave (HeraldEngine *engine, const char *channel, const char *user_id)
{
  return herald_engine_presence_leave (shard_of (HERALD_REDIS_SHARDS (engine), channel), channel,
                                       user_id);
}

static char **
shards_query_presence (HeraldEngine *engine, const char *channel, const char *after, guint limit,
                       guint *users, guint *connections, gboolean *more, GError **error)
{
  return herald_engine_query_presence (shard_of (HERALD_REDIS_SHARDS (engine), channel), channel,
                                       after, limit, users, connections, more, error);
}

static void
shards_presence_anonymous (HeraldEngine *engine, const char *channel, int delta)
{
  herald_engine_presence_anonymous (shard_of (HERALD_REDIS_SHARDS (engine), channel), channel,
                                    delta);
}

static void
shards_channel_occupied (HeraldEngine *engine, const char *channel)
{
  herald_engine_channel_occupied (shard_of (HERALD_REDIS_SHARDS (engine), channel), channel);
}

static void
shards_channel_vacated (HeraldEngine *engine, const char *channel)
{
  herald_engine_channel_vacated (shard_of (HERALD_REDIS_SHARDS (engine), channel), channel);
}

/* A connection lives on its id's shard; its user is counted on the user's. */
static void
shards_connection_opened (HeraldEngine *engine, const char *id, const char *user_id)
{
  HeraldRedisShards *self = HERALD_REDIS_SHARDS (engine);

  herald_engine_connection_opened (shard_of (self, id), id, user_id);
  if (user_id != NULL && *user_id != '\0')
    herald_redis_engine_count_user (HERALD_REDIS_ENGINE (shard_of (self, user_id)), user_id, +1);
}

static void
shards_connection_closed (HeraldEngine *engine, const char *id)
{
  HeraldRedisShards *self = HERALD_REDIS_SHARDS (engine);
  HeraldEngine *shard = shard_of (self, id);
  g_autofree char *user_id
      = herald_redis_engine_dup_connection_user (HERALD_REDIS_ENGINE (shard), id);

  herald_engine_connection_closed (shard, id);
  if (user_id != NULL && *user_id != '\0')
    herald_redis_engine_count_user (HERALD_REDIS_ENGINE (shard_of (self, user_id)), user_id, -1);
}

static guint
shards_count_user_connections (HeraldEngine *engine, const char *user_id)
{
  gint64 n = herald_engine_count_user_connections (shard_of (HERALD_REDIS_SHARDS (engine), user_id),
                                                   user_id);

  return n > 0 ? (guint)n : 0;
}

static gboolean
shards_has_connection (HeraldEngine *engine, const char *id)
{
  return herald_engine_has_connection (shard_of (HERALD_REDIS_SHARDS (engine), id), id);
}

static gint64
shards_count_channels (HeraldEngine *engine)
{
  HeraldRedisShards *self = HERALD_REDIS_SHARDS (engine);
  gint64 total = 0;

  for (guint i = 0; i < self->engines->len; i++)
    {
      gint64 n = herald_engine_count_channels (self->engines->pdata[i]);

      if (n < 0)
        return -1;
      total += n;
    }
  return total;
}

/* Every shard hands its deliveries to this engine's sink (the hub's) */
static guint
forward_delivery (const HeraldDelivery *delivery, gpointer user_data)
{
  return herald_engine_deliver (HERALD_ENGINE (user_data), delivery);
}

static void
herald_redis_shards_finalize (GObject *object)
{
  HeraldRedisShards *self = HERALD_REDIS_SHARDS (object);

  g_ptr_array_unref (self->engines);
  g_strfreev (self->names);
  G_OBJECT_CLASS (herald_redis_shards_parent_class)->finalize (object);
}

static void
herald_redis_shards_class_init (HeraldRedisShardsClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  HeraldEngineClass *engine_class = HERALD_ENGINE_CLASS (klass);

  object_class->finalize = herald_redis_shards_finalize;
  engine_class->get_name = shards_get_name;
  engine_class->dup_state = shards_dup_state;
  engine_class->publish_async = shards_publish_async;
  engine_class->send = shards_send;
  engine_class->announce = shards_announce;
  engine_class->close_connection = shards_close_connection;
  engine_class->recover = shards_recover;
  engine_class->recover_stream = shards_recover_stream;
  engine_class->dup_epoch = shards_dup_epoch;
  engine_class->get_position = shards_get_position;
  engine_class->get_stream_position = shards_get_stream_position;
  engine_class->presence_join = shards_presence_join;
  engine_class->presence_leave = shards_presence_leave;
  engine_class->query_presence = shards_query_presence;
  engine_class->presence_anonymous = shards_presence_anonymous;
  engine_class->channel_occupied = shards_channel_occupied;
  engine_class->channel_vacated = shards_channel_vacated;
  engine_class->connection_opened = shards_connection_opened;
  engine_class->connection_closed = shards_connection_closed;
  engine_class->has_connection = shards_has_connection;
  engine_class->count_user_connections = shards_count_user_connections;
  engine_class->count_channels = shards_count_channels;
}

static void
herald_redis_shards_init (HeraldRedisShards *self)
{
  self->engines = g_ptr_array_new_with_free_func (g_object_unref);
}

/**
 * herald_redis_shards_new:
 * @config: the configuration ([history], [redis] password)
 * @urls: the shards' URLs, at least one
 *
 * Returns: (transfer full): the engine, not yet connected, or %NULL when a
 *   URL is malformed
 */
HeraldEngine *
herald_redis_shards_new (HeraldConfig *config, const char *const *urls, GError **error)
{
  g_autoptr (HeraldRedisShards) self = NULL;

  g_return_val_if_fail (urls != NULL && urls[0] != NULL, NULL);
  self = g_object_new (HERALD_TYPE_REDIS_SHARDS, "config", config, NULL);
  self->names = g_strdupv ((char **)urls);
  for (gsize i = 0; urls[i] != NULL; i++)
    {
      HeraldEngine *shard = herald_redis_engine_new (config, urls[i], error);

      if (shard == NULL)
        {
          g_prefix_error (error, "“%s”: ", urls[i]);
          return NULL;
        }
      herald_engine_set_sink (shard, forward_delivery, self);
      herald_redis_engine_set_counts_users (HERALD_REDIS_ENGINE (shard), FALSE);
      g_ptr_array_add (self->engines, shard);
    }
  return HERALD_ENGINE (g_steal_pointer (&self));
}

void
herald_redis_shards_start (HeraldRedisShards *self, const char *node_id)
{
  g_return_if_fail (HERALD_IS_REDIS_SHARDS (self));
  for (guint i = 0; i < self->engines->len; i++)
    herald_redis_engine_start (self->engines->pdata[i], node_id);
}
