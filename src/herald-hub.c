/* herald-hub.c
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>
#include <glib/gi18n.h>

#include "herald-hub.h"
#include "herald-connection.h"
#include "herald-hub-entry.h"
#include "herald-json.h"
#include "herald-log.h"
#include "herald-hub-signals.h"
#include "herald-names.h"
#include "herald-worker.h"

struct _HeraldHub
{
  GObject parent_instance;

  HeraldConfig *config;
  HeraldEngine *engine;
  HeraldJwtVerifier *verifier;
  char *node_id;
  GMainContext *main_context;
  HeraldHubSignals *signals; /* connection-opened/-closed on their way there */

  GPtrArray *workers;        /* of HeraldWorker (owned) */
  gint draining;             /* atomic: shutdown began */
  HeraldStreamLimits limits; /* what the connections read, kept from the config */

  GMutex lock;                 /* guards the registry below */
  GHashTable *registry;        /* set of entry ids (herald-hub-entry.h) */
  GHashTable *user_count;      /* user id → GUINT count of connections */
  GHashTable *ip_count;        /* remote ip → GUINT */
  GHashTable *channel_workers; /* channel → guint64 bit mask of workers subscribed */

  guint64 published;
};

G_DEFINE_FINAL_TYPE (HeraldHub, herald_hub, G_TYPE_OBJECT)

enum
{
  PROP_0,
  PROP_CONFIG,
  PROP_ENGINE,
  N_PROPS
};
static GParamSpec *props[N_PROPS];

enum
{
  SIGNAL_CONNECTION_OPENED,
  SIGNAL_CONNECTION_CLOSED,
  N_SIGNALS
};
static guint signals[N_SIGNALS];

/* ---- the engine's sink: hand deliveries to the workers ---- */

static void
post_delivery (HeraldHub *self, guint worker_index, const HeraldDelivery *d)
{
  HeraldWorkItem *item = g_new0 (HeraldWorkItem, 1);

  if (d->kind == HERALD_TARGET_CLOSE)
    {
      item->type = HERALD_WORK_CLOSE;
      item->code = d->close_code;
      item->reason = g_strdup (d->close_reason);
    }
  else
    {
      item->type = HERALD_WORK_DELIVER;
      item->message = herald_message_ref (d->message);
    }
  item->kind = d->kind;
  item->target = g_strdup (d->target);
  herald_worker_post (g_ptr_array_index (self->workers, worker_index), item);
}

static guint
hub_sink (const HeraldDelivery *d, gpointer user_data)
{
  HeraldHub *self = user_data;
  guint reached = 0;
  HeraldHubEntry *entry;

  switch (d->kind)
    {
    case HERALD_TARGET_CHANNEL:
    case HERALD_TARGET_PRESENCE:
    case HERALD_TARGET_JOIN_LEAVE:
      {
        /* Only workers with subscribers of the channel: the others would be
         * woken up for nothing. Beyond 64 workers the mask is not kept. */
        const char *name = d->kind == HERALD_TARGET_CHANNEL
                               ? herald_message_get_channel (d->message)
                               : d->target;
        guint64 mask = G_MAXUINT64;

        if (self->workers->len <= 64 && name)
          {
            g_mutex_lock (&self->lock);
            mask = GPOINTER_TO_SIZE (g_hash_table_lookup (self->channel_workers, name));
            g_mutex_unlock (&self->lock);
          }
        for (guint i = 0; i < self->workers->len; i++)
          if (i >= 64 || (mask & (G_GUINT64_CONSTANT (1) << i)))
            post_delivery (self, i, d);
      }
      break;
    case HERALD_TARGET_ALL:
      /* Every worker: each walks its own connections, without locks. */
      for (guint i = 0; i < self->workers->len; i++)
        post_delivery (self, i, d);
      reached = herald_hub_get_connection_count (self);
      break;
    case HERALD_TARGET_USER:
    case HERALD_TARGET_USER_SUBSCRIPTION:
      g_mutex_lock (&self->lock);
      reached = GPOINTER_TO_UINT (g_hash_table_lookup (self->user_count, d->target));
      g_mutex_unlock (&self->lock);
      if (reached > 0)
        for (guint i = 0; i < self->workers->len; i++)
          post_delivery (self, i, d);
      break;
    case HERALD_TARGET_CONNECTION:
    case HERALD_TARGET_CLOSE:
      g_mutex_lock (&self->lock);
      entry = herald_hub_entry_lookup (self->registry, d->target);
      if (entry && entry->opened)
        {
          reached = 1;
          post_delivery (self, entry->worker, d);
        }
      g_mutex_unlock (&self->lock);
      break;
    }
  return reached;
}

/* ---- GObject ---- */

static void
herald_hub_constructed (GObject *object)
{
  HeraldHub *self = HERALD_HUB (object);

  G_OBJECT_CLASS (herald_hub_parent_class)->constructed (object);
  herald_engine_set_sink (self->engine, hub_sink, self);
}

static void
herald_hub_dispose (GObject *object)
{
  HeraldHub *self = HERALD_HUB (object);

  if (self->engine)
    herald_engine_set_sink (self->engine, NULL, NULL);
  for (guint i = 0; self->workers && i < self->workers->len; i++)
    herald_worker_stop (g_ptr_array_index (self->workers, i));
  g_clear_pointer (&self->workers, g_ptr_array_unref);
  G_OBJECT_CLASS (herald_hub_parent_class)->dispose (object);
}

static void
herald_hub_finalize (GObject *object)
{
  HeraldHub *self = HERALD_HUB (object);

  g_clear_object (&self->config);
  g_clear_object (&self->engine);
  g_clear_object (&self->verifier);
  g_free (self->node_id);
  herald_hub_signals_free (self->signals);
  g_main_context_unref (self->main_context);
  g_hash_table_unref (self->registry);
  g_hash_table_unref (self->user_count);
  g_hash_table_unref (self->ip_count);
  g_hash_table_unref (self->channel_workers);
  g_mutex_clear (&self->lock);
  G_OBJECT_CLASS (herald_hub_parent_class)->finalize (object);
}

static void
herald_hub_set_property (GObject *object, guint prop_id, const GValue *value, GParamSpec *pspec)
{
  HeraldHub *self = HERALD_HUB (object);

  switch (prop_id)
    {
    case PROP_CONFIG:
      self->config = g_value_dup_object (value);
      break;
    case PROP_ENGINE:
      self->engine = g_value_dup_object (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
herald_hub_get_property (GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
  HeraldHub *self = HERALD_HUB (object);

  switch (prop_id)
    {
    case PROP_CONFIG:
      g_value_set_object (value, self->config);
      break;
    case PROP_ENGINE:
      g_value_set_object (value, self->engine);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
reschedule_worker (HeraldWorker *worker, gpointer data)
{
  herald_worker_reschedule_all (worker);
}

static void
on_limits_changed (HeraldConfig *config, GParamSpec *pspec, HeraldHub *self)
{
  herald_hub_foreach_worker (self, reschedule_worker, NULL);
}

/* The connections' snapshot of the limits, written whenever the config
 * changes (in the thread that changed it), before anything hears of it. */
static void
update_limits (HeraldConfig *config, GParamSpec *pspec, HeraldHub *self)
{
  HeraldStreamLimits *l = &self->limits;

  g_atomic_int_set (&l->heartbeat_interval, herald_config_get_heartbeat_interval (config));
  g_atomic_int_set (&l->connection_timeout, herald_config_get_connection_timeout (config));
  g_atomic_int_set (&l->leeway, herald_config_get_leeway (config));
  g_atomic_int_set (&l->messages_per_second, herald_config_get_messages_per_second (config));
  g_atomic_int_set (&l->send_queue_max_bytes, herald_config_get_send_queue_max_bytes (config));
  g_atomic_int_set (&l->max_message_size, herald_config_get_max_message_size (config));
  g_atomic_int_set (&l->io_uring, herald_config_get_io_uring (config));
}

static void
herald_hub_class_init (HeraldHubClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->constructed = herald_hub_constructed;
  object_class->dispose = herald_hub_dispose;
  object_class->finalize = herald_hub_finalize;
  object_class->set_property = herald_hub_set_property;
  object_class->get_property = herald_hub_get_property;

  props[PROP_CONFIG]
      = g_param_spec_object ("config", NULL, NULL, HERALD_TYPE_CONFIG,
                             G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);
  props[PROP_ENGINE]
      = g_param_spec_object ("engine", NULL, NULL, HERALD_TYPE_ENGINE,
                             G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties (object_class, N_PROPS, props);

  signals[SIGNAL_CONNECTION_OPENED]
      = g_signal_new ("connection-opened", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL,
                      NULL, NULL, G_TYPE_NONE, 3, G_TYPE_STRING, G_TYPE_STRING, G_TYPE_STRING);
  signals[SIGNAL_CONNECTION_CLOSED]
      = g_signal_new ("connection-closed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL,
                      NULL, NULL, G_TYPE_NONE, 3, G_TYPE_STRING, G_TYPE_UINT, G_TYPE_STRING);
}

static void
herald_hub_init (HeraldHub *self)
{
  g_autofree char *id = herald_connection_id_new ();

  g_mutex_init (&self->lock);
  self->registry
      = g_hash_table_new_full (g_str_hash, g_str_equal, herald_hub_entry_free_by_id, NULL);
  self->user_count = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  self->ip_count = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  self->channel_workers = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  self->workers = g_ptr_array_new_with_free_func (g_object_unref);
  self->main_context = g_main_context_ref_thread_default ();
  self->signals
      = herald_hub_signals_new (self, self->main_context, signals[SIGNAL_CONNECTION_OPENED],
                                signals[SIGNAL_CONNECTION_CLOSED]);
  self->node_id = g_strndup (id, 12);
}

/**
 * herald_hub_new:
 *
 * Returns: (transfer full): a hub delivering through @engine.
 */
HeraldHub *
herald_hub_new (HeraldConfig *config, HeraldEngine *engine)
{
  HeraldHub *self;

  g_return_val_if_fail (HERALD_IS_CONFIG (config), NULL);
  g_return_val_if_fail (HERALD_IS_ENGINE (engine), NULL);

  self = g_object_new (HERALD_TYPE_HUB, "config", config, "engine", engine, NULL);
  update_limits (config, NULL, self);
  /* First, so that what reacts to a change below sees the new limits. */
  g_signal_connect_object (config, "notify", G_CALLBACK (update_limits), self, 0);
  g_signal_connect_object (config, "notify::heartbeat-interval", G_CALLBACK (on_limits_changed),
                           self, 0);
  g_signal_connect_object (config, "notify::connection-timeout", G_CALLBACK (on_limits_changed),
                           self, 0);
  return self;
}

HeraldConfig *
herald_hub_get_config (HeraldHub *self)
{
  g_return_val_if_fail (HERALD_IS_HUB (self), NULL);

  return self->config;
}

HeraldEngine *
herald_hub_get_engine (HeraldHub *self)
{
  g_return_val_if_fail (HERALD_IS_HUB (self), NULL);

  return self->engine;
}

const char *
herald_hub_get_node_id (HeraldHub *self)
{
  g_return_val_if_fail (HERALD_IS_HUB (self), NULL);

  return self->node_id;
}

HeraldJwtVerifier *
herald_hub_get_verifier (HeraldHub *self)
{
  g_return_val_if_fail (HERALD_IS_HUB (self), NULL);

  return self->verifier;
}

gboolean
herald_hub_load_keys (HeraldHub *self, GError **error)
{
  const char *key_file;
  GBytes *secret;

  g_return_val_if_fail (HERALD_IS_HUB (self), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  key_file = herald_config_get_jwt_public_key_file (self->config);
  secret = herald_config_get_jwt_secret (self->config);
  g_clear_object (&self->verifier);
  if (herald_config_get_jwks_url (self->config) != NULL)
    /* Empty until the daemon's JWKS client (herald-http-jwks.c) fetches the set */
    self->verifier
        = herald_jwt_verifier_new_key_set (NULL, herald_config_get_jwt_algorithm_set (self->config),
                                           herald_config_get_jwt_algorithm (self->config));
  else if (key_file)
    {
      self->verifier = herald_jwt_verifier_new_public_key (
          herald_config_get_jwt_algorithm (self->config), key_file, error);
      if (self->verifier == NULL)
        {
          g_prefix_error (error, "%s: ", key_file);
          return FALSE;
        }
    }
  else if (secret && g_bytes_get_size (secret) > 0)
    self->verifier = herald_jwt_verifier_new_hmac (secret);
  if (self->verifier != NULL)
    herald_jwt_verifier_set_required_claims (self->verifier,
                                             herald_config_get_jwt_issuer (self->config),
                                             herald_config_get_jwt_audience (self->config));
  return TRUE;
}

/**
 * herald_hub_add_worker:
 *
 * Registers a worker made by herald_hub_new_worker() (herald-subscribe.c).
 *
 * Returns: its index.
 */
guint
herald_hub_add_worker (HeraldHub *self, HeraldWorker *worker)
{
  g_return_val_if_fail (HERALD_IS_HUB (self), 0);
  g_return_val_if_fail (HERALD_IS_WORKER (worker), 0);
  g_return_val_if_fail (herald_worker_get_index (worker) == self->workers->len, 0);

  g_ptr_array_add (self->workers, g_object_ref (worker));
  return self->workers->len - 1;
}

const HeraldStreamLimits *
herald_hub_get_stream_limits (HeraldHub *self)
{
  g_return_val_if_fail (HERALD_IS_HUB (self), NULL);
  return &self->limits;
}

guint
herald_hub_get_n_workers (HeraldHub *self)
{
  g_return_val_if_fail (HERALD_IS_HUB (self), 0);
  return self->workers->len;
}

HeraldWorker *
herald_hub_get_worker (HeraldHub *self, guint index)
{
  g_return_val_if_fail (HERALD_IS_HUB (self), NULL);
  g_return_val_if_fail (index < self->workers->len, NULL);
  return g_ptr_array_index (self->workers, index);
}

/* ---- publishing ---- */

static gboolean
check_size (HeraldHub *self, gsize len, GError **error)
{
  gsize max = herald_config_get_max_message_size (self->config);

  if (len > max)
    {
      g_set_error (error, HERALD_ERROR, HERALD_ERROR_LIMIT_EXCEEDED,
                   _ ("data is %zu bytes, more than max-message-size (%zu)"), len, max);
      return FALSE;
    }
  return TRUE;
}

static char *
check_data (HeraldHub *self, const char *data_json, GError **error)
{
  gsize len;

  if (data_json == NULL)
    {
      g_set_error (error, HERALD_ERROR, HERALD_ERROR_INVALID_ARGUMENT, _ ("data is required"));
      return NULL;
    }
  len = strlen (data_json);
  if (!check_size (self, len, error))
    return NULL;
  return herald_json_normalize (data_json, len, error);
}

static void
on_engine_published (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  g_autoptr (GError) error = NULL;
  guint64 offset = 0;

  if (!herald_engine_publish_finish (HERALD_ENGINE (source), result, &offset, &error))
    g_task_return_error (task, g_steal_pointer (&error));
  else
    {
      guint64 *boxed = g_new (guint64, 1);
      *boxed = offset;
      g_task_return_pointer (task, boxed, g_free);
    }
}

static gboolean
check_channel (const char *channel, GError **error)
{
  if (herald_channel_name_is_valid (channel))
    return TRUE;
  g_set_error (error, HERALD_ERROR, HERALD_ERROR_INVALID_ARGUMENT,
               _ ("invalid channel name: use 1–255 characters of A-Z a-z 0-9 _ . : @ / - # ,"));
  return FALSE;
}

/* A publish's conflation key (NULL = none): valid UTF-8, not too long. */
static gboolean
check_key (const char *key, GError **error)
{
  if (key == NULL)
    return TRUE;
  if (strlen (key) <= HERALD_HUB_MAX_KEY && g_utf8_validate (key, -1, NULL))
    return TRUE;
  g_set_error (error, HERALD_ERROR, HERALD_ERROR_INVALID_ARGUMENT,
               _ ("invalid key: use at most %d bytes of UTF-8"), HERALD_HUB_MAX_KEY);
  return FALSE;
}

/* What a publishing GTask keeps: its channel and key. */
typedef struct
{
  char *channel;
  char *key;
} PublishTarget;

static void
publish_target_free (PublishTarget *target)
{
  g_free (target->channel);
  g_free (target->key);
  g_free (target);
}

static GTask *
publish_task_new (HeraldHub *self, const char *channel, const char *key, GCancellable *cancellable,
                  GAsyncReadyCallback callback, gpointer user_data)
{
  GTask *task = g_task_new (self, cancellable, callback, user_data);
  PublishTarget *target = g_new0 (PublishTarget, 1);

  target->channel = g_strdup (channel);
  target->key = g_strdup (key);
  g_task_set_source_tag (task, herald_hub_publish_async);
  g_task_set_task_data (task, target, (GDestroyNotify)publish_target_free);
  return task;
}

/* @data_json (checked and compact already) when within max-message-size,
 * copied, or NULL with @error. */
static char *
data_text (HeraldHub *self, const char *data_json, GError **error)
{
  if (data_json == NULL)
    {
      g_set_error (error, HERALD_ERROR, HERALD_ERROR_INVALID_ARGUMENT, _ ("data is required"));
      return NULL;
    }
  if (!check_size (self, strlen (data_json), error))
    return NULL;
  return g_strdup (data_json);
}

/* Publishes @normalized (compact, checked JSON text; ownership taken), or
 * returns @error (ownership taken) when it is NULL. */
static void
publish_normalized (HeraldHub *self, GTask *task, char *normalized, GError *error)
{
  g_autofree char *data = normalized;
  PublishTarget *target = g_task_get_task_data (task);

  if (data == NULL)
    {
      g_task_return_error (task, error);
      g_object_unref (task);
      return;
    }
  __atomic_fetch_add (&self->published, 1, __ATOMIC_RELAXED);
  herald_engine_publish_async (self->engine, target->channel, target->key, data,
                               g_task_get_cancellable (task), on_engine_published, task);
}

void
herald_hub_publish_async (HeraldHub *self, const char *channel, const char *key,
                          const char *data_json, GCancellable *cancellable,
                          GAsyncReadyCallback callback, gpointer user_data)
{
  GTask *task;
  GError *error = NULL;
  char *normalized = NULL;

  g_return_if_fail (HERALD_IS_HUB (self));

  task = publish_task_new (self, channel, key, cancellable, callback, user_data);
  if (check_channel (channel, &error) && check_key (key, &error))
    normalized = check_data (self, data_json, &error);
  publish_normalized (self, task, normalized, error);
}

/**
 * herald_hub_publish_text_async:
 *
 * Like herald_hub_publish_async() for data Herald's JSON reader already
 * checked and compacted (the "data" member of a request): not read again.
 */
void
herald_hub_publish_text_async (HeraldHub *self, const char *channel, const char *key,
                               const char *data_json, GCancellable *cancellable,
                               GAsyncReadyCallback callback, gpointer user_data)
{
  GTask *task;
  GError *error = NULL;
  char *normalized = NULL;

  g_return_if_fail (HERALD_IS_HUB (self));

  task = publish_task_new (self, channel, key, cancellable, callback, user_data);
  if (check_channel (channel, &error) && check_key (key, &error))
    normalized = data_text (self, data_json, &error);
  publish_normalized (self, task, normalized, error);
}

/**
 * herald_hub_can_publish_now:
 *
 * TRUE when the engine publishes without a round trip (the in-process
 * engine): callers then use herald_hub_publish_text_now() and answer in the
 * same main-loop iteration, without a GTask or an idle callback.
 */
gboolean
herald_hub_can_publish_now (HeraldHub *self)
{
  g_return_val_if_fail (HERALD_IS_HUB (self), FALSE);

  return herald_engine_can_publish_now (self->engine);
}

static gboolean
publish_now (HeraldHub *self, const char *channel, const char *key, const char *normalized,
             guint64 *offset, GError **error)
{
  __atomic_fetch_add (&self->published, 1, __ATOMIC_RELAXED);
  if (!herald_engine_publish_now (self->engine, channel, key, normalized, offset, error))
    return FALSE;
  /* This worker's own subscribers get the message queued before the caller
   * answers (a publisher that is also a subscriber sees it first). */
  herald_worker_run_posted ();
  return TRUE;
}

/**
 * herald_hub_publish_text_now:
 * @data_json: JSON text checked and compacted by Herald's JSON reader
 *   (herald_json_read_envelope(), herald_json_scan_publish())
 *
 * herald_hub_publish_text_async() done synchronously; only when
 * herald_hub_can_publish_now() is TRUE.
 */
gboolean
herald_hub_publish_text_now (HeraldHub *self, const char *channel, const char *key,
                             const char *data_json, guint64 *offset, GError **error)
{
  g_return_val_if_fail (HERALD_IS_HUB (self), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (!check_channel (channel, error) || !check_key (key, error)
      || !check_size (self, strlen (data_json), error))
    return FALSE;
  return publish_now (self, channel, key, data_json, offset, error);
}

gboolean
herald_hub_publish_finish (HeraldHub *self, GAsyncResult *result, guint64 *offset, GError **error)
{
  g_autofree guint64 *value = NULL;

  g_return_val_if_fail (HERALD_IS_HUB (self), FALSE);
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  value = g_task_propagate_pointer (G_TASK (result), error);
  if (value == NULL)
    return FALSE;
  if (offset)
    *offset = *value;
  return TRUE;
}

void
herald_hub_count_published (HeraldHub *self)
{
  g_return_if_fail (HERALD_IS_HUB (self));

  __atomic_fetch_add (&self->published, 1, __ATOMIC_RELAXED);
}

gboolean
herald_hub_broadcast (HeraldHub *self, const char *data_json, guint *delivered, GError **error)
{
  g_autofree char *normalized = NULL;
  guint n;

  g_return_val_if_fail (HERALD_IS_HUB (self), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  normalized = check_data (self, data_json, error);
  if (normalized == NULL)
    return FALSE;
  n = herald_engine_send (self->engine, HERALD_TARGET_ALL, NULL, normalized);
  if (delivered)
    *delivered = n;
  return TRUE;
}

gboolean
herald_hub_send_to_user (HeraldHub *self, const char *user_id, const char *data_json,
                         guint *delivered, GError **error)
{
  g_autofree char *normalized = NULL;
  guint n;

  g_return_val_if_fail (HERALD_IS_HUB (self), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (user_id == NULL || *user_id == '\0' || strlen (user_id) > 1024
      || !g_utf8_validate (user_id, -1, NULL))
    {
      g_set_error (error, HERALD_ERROR, HERALD_ERROR_INVALID_ARGUMENT, _ ("invalid user id"));
      return FALSE;
    }
  normalized = check_data (self, data_json, error);
  if (normalized == NULL)
    return FALSE;
  n = herald_engine_send (self->engine, HERALD_TARGET_USER, user_id, normalized);
  if (delivered)
    *delivered = n;
  return TRUE;
}

gboolean
herald_hub_send_to_connection (HeraldHub *self, const char *id, const char *data_json,
                               GError **error)
{
  g_autofree char *normalized = NULL;

  g_return_val_if_fail (HERALD_IS_HUB (self), FALSE);
  g_return_val_if_fail (id != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (!herald_connection_id_is_valid (id))
    {
      g_set_error (error, HERALD_ERROR, HERALD_ERROR_INVALID_ARGUMENT, _ ("invalid connection id"));
      return FALSE;
    }
  normalized = check_data (self, data_json, error);
  if (normalized == NULL)
    return FALSE;
  if (herald_engine_send (self->engine, HERALD_TARGET_CONNECTION, id, normalized) == 0)
    {
      g_set_error (error, HERALD_ERROR, HERALD_ERROR_NOT_FOUND, _ ("no connection with id %s"), id);
      return FALSE;
    }
  return TRUE;
}

gboolean
herald_hub_close_connection (HeraldHub *self, const char *id, guint16 code, const char *reason,
                             GError **error)
{
  g_return_val_if_fail (HERALD_IS_HUB (self), FALSE);
  g_return_val_if_fail (id != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (!herald_connection_id_is_valid (id))
    {
      g_set_error (error, HERALD_ERROR, HERALD_ERROR_INVALID_ARGUMENT, _ ("invalid connection id"));
      return FALSE;
    }
  /* A cluster engine knows connections held by other nodes. */
  if (!herald_hub_has_connection (self, id) && !herald_engine_has_connection (self->engine, id))
    {
      g_set_error (error, HERALD_ERROR, HERALD_ERROR_NOT_FOUND, _ ("no connection with id %s"), id);
      return FALSE;
    }
  herald_engine_close_connection (self->engine, id, code, reason ? reason : "");
  return TRUE;
}

/* ---- which workers have a channel ---- */

static void
channel_mask_update (HeraldHub *self, const char *channel, guint worker_index, gboolean set)
{
  guint64 bit, mask;

  if (worker_index >= 64)
    return;
  bit = G_GUINT64_CONSTANT (1) << worker_index;
  g_mutex_lock (&self->lock);
  mask = GPOINTER_TO_SIZE (g_hash_table_lookup (self->channel_workers, channel));
  mask = set ? (mask | bit) : (mask & ~bit);
  if (mask == 0)
    g_hash_table_remove (self->channel_workers, channel);
  else
    g_hash_table_replace (self->channel_workers, g_strdup (channel),
                          GSIZE_TO_POINTER ((gsize)mask));
  g_mutex_unlock (&self->lock);
}

/**
 * herald_hub_channel_occupied:
 *
 * Worker @worker_index has its first subscriber of @channel. Called before
 * the subscription takes any history snapshot, so every message published
 * after the snapshot is posted to that worker.
 */
void
herald_hub_channel_occupied (HeraldHub *self, const char *channel, guint worker_index)
{
  g_return_if_fail (HERALD_IS_HUB (self));

  channel_mask_update (self, channel, worker_index, TRUE);
  /* A cluster engine listens to a channel only while some worker has it; the
   * in-process engine never forgets a channel a worker has. */
  herald_engine_channel_occupied (self->engine, channel);
}

void
herald_hub_channel_vacated (HeraldHub *self, const char *channel, guint worker_index)
{
  g_return_if_fail (HERALD_IS_HUB (self));

  channel_mask_update (self, channel, worker_index, FALSE);
  herald_engine_channel_vacated (self->engine, channel);
}

/* ---- registry ---- */

guint
herald_hub_get_connection_count (HeraldHub *self)
{
  guint n = 0;
  GHashTableIter iter;
  gpointer key;

  g_return_val_if_fail (HERALD_IS_HUB (self), 0);

  g_mutex_lock (&self->lock);
  g_hash_table_iter_init (&iter, self->registry);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    n += HERALD_HUB_ENTRY_OF (key)->opened;
  g_mutex_unlock (&self->lock);
  return n;
}

gboolean
herald_hub_has_connection (HeraldHub *self, const char *id)
{
  HeraldHubEntry *entry;
  gboolean found;

  g_return_val_if_fail (HERALD_IS_HUB (self), FALSE);
  g_return_val_if_fail (id != NULL, FALSE);

  g_mutex_lock (&self->lock);
  entry = herald_hub_entry_lookup (self->registry, id);
  found = entry != NULL && entry->opened;
  g_mutex_unlock (&self->lock);
  return found;
}

static void
count_adjust (GHashTable *table, const char *key, int delta)
{
  guint n;

  if (key == NULL)
    return;
  n = GPOINTER_TO_UINT (g_hash_table_lookup (table, key));
  n += delta;
  if (n == 0)
    g_hash_table_remove (table, key);
  else
    g_hash_table_replace (table, g_strdup (key), GUINT_TO_POINTER (n));
}

gboolean
herald_hub_reserve_connection (HeraldHub *self, const char *id, const char *user_id,
                               const char *remote_ip, guint worker_index, GError **error)
{
  guint max, per_ip;
  gboolean ok = FALSE;
  HeraldHubEntry *entry;

  g_return_val_if_fail (HERALD_IS_HUB (self), FALSE);
  g_return_val_if_fail (id != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  max = herald_config_get_max_connections (self->config);
  per_ip = herald_config_get_max_connections_per_ip (self->config);
  g_mutex_lock (&self->lock);
  if (g_hash_table_contains (self->registry, id))
    g_set_error (error, HERALD_ERROR, HERALD_ERROR_IN_USE, _ ("connection id %s is in use"), id);
  else if (g_hash_table_size (self->registry) >= max)
    g_set_error (error, HERALD_ERROR, HERALD_ERROR_LIMIT_EXCEEDED,
                 _ ("too many connections (max-connections=%u)"), max);
  else if (per_ip > 0 && remote_ip
           && GPOINTER_TO_UINT (g_hash_table_lookup (self->ip_count, remote_ip)) >= per_ip)
    g_set_error (error, HERALD_ERROR, HERALD_ERROR_LIMIT_EXCEEDED,
                 _ ("too many connections from this address (max-connections-per-ip=%u)"), per_ip);
  else
    {
      entry = herald_hub_entry_new (id, user_id, remote_ip, worker_index);
      g_hash_table_add (self->registry, entry->id);
      count_adjust (self->ip_count, remote_ip, +1);
      ok = TRUE;
    }
  g_mutex_unlock (&self->lock);
  return ok;
}

void
herald_hub_defer_signals (HeraldHub *self, gboolean defer)
{
  g_return_if_fail (HERALD_IS_HUB (self));
  herald_hub_signals_defer (self->signals, defer);
}

void
herald_hub_flush_signals (HeraldHub *self)
{
  g_return_if_fail (HERALD_IS_HUB (self));
  herald_hub_signals_flush (self->signals);
}

gboolean
herald_hub_has_deferred_signals (HeraldHub *self)
{
  return herald_hub_signals_pending ();
}

void
herald_hub_connection_opened (HeraldHub *self, const char *id, const char *user_id,
                              HeraldTransport transport)
{
  HeraldHubEntry *entry;

  g_return_if_fail (HERALD_IS_HUB (self));
  g_return_if_fail (id != NULL);

  g_mutex_lock (&self->lock);
  entry = herald_hub_entry_lookup (self->registry, id);
  if (entry && !entry->opened)
    {
      entry->opened = TRUE;
      count_adjust (self->user_count, herald_hub_entry_user_id (entry), +1);
    }
  else
    entry = NULL;
  g_mutex_unlock (&self->lock);

  if (entry)
    herald_engine_connection_opened (self->engine, id, user_id);
  /* connection-opened without a registry entry happens only in tests. */
  herald_log_connection (G_LOG_LEVEL_DEBUG, id, NULL, 0, NULL, "connection %s opened (%s, user %s)",
                         id, herald_transport_to_string (transport), user_id ? user_id : "-");
  herald_hub_signals_opened (self->signals, id, user_id, herald_transport_to_string (transport));
}

void
herald_hub_release_connection (HeraldHub *self, const char *id, guint16 code, const char *reason,
                               gboolean was_open)
{
  HeraldHubEntry *entry;
  gboolean opened = FALSE;
  char ip[HERALD_ADDRESS_TEXT_MAX];

  g_return_if_fail (HERALD_IS_HUB (self));
  g_return_if_fail (id != NULL);

  g_mutex_lock (&self->lock);
  entry = herald_hub_entry_lookup (self->registry, id);
  if (entry)
    {
      opened = entry->opened;
      if (opened)
        count_adjust (self->user_count, herald_hub_entry_user_id (entry), -1);
      count_adjust (self->ip_count, herald_hub_entry_ip (entry, ip), -1);
      g_hash_table_remove (self->registry, id);
    }
  g_mutex_unlock (&self->lock);

  if (!opened)
    return;
  herald_engine_connection_closed (self->engine, id);
  herald_log_connection (G_LOG_LEVEL_DEBUG, id, NULL, code, reason, "connection %s closed: %u %s",
                         id, code, reason ? reason : "");
  herald_hub_signals_closed (self->signals, id, code, reason);
}

guint64
herald_hub_get_n_published (HeraldHub *self)
{
  g_return_val_if_fail (HERALD_IS_HUB (self), 0);
  return __atomic_load_n (&self->published, __ATOMIC_RELAXED);
}

char *
herald_hub_dup_engine_state (HeraldHub *self)
{
  g_return_val_if_fail (HERALD_IS_HUB (self), NULL);

  return herald_engine_dup_state (self->engine);
}

void
herald_hub_foreach_worker (HeraldHub *self, HeraldWorkerFunc func, gpointer user_data)
{
  g_return_if_fail (HERALD_IS_HUB (self));
  g_return_if_fail (func != NULL);

  for (guint i = 0; i < self->workers->len; i++)
    {
      HeraldWorkItem *item = g_new0 (HeraldWorkItem, 1);
      item->type = HERALD_WORK_CALL;
      item->func = func;
      item->data = user_data;
      herald_worker_post (g_ptr_array_index (self->workers, i), item);
    }
}

/* ---- shutdown ---- */

static gboolean
check_drained (gpointer user_data)
{
  GTask *task = user_data;
  HeraldHub *self = g_task_get_source_object (task);
  gint64 deadline = GPOINTER_TO_SIZE (g_task_get_task_data (task)) * (gint64)1000;

  gboolean drained = TRUE;

  /* Connections leave the registry when their close frame is queued; wait
   * for the workers to have flushed them and heard back from the peers. */
  for (guint i = 0; i < self->workers->len; i++)
    drained = drained && herald_worker_is_drained (g_ptr_array_index (self->workers, i));
  if (drained || g_get_monotonic_time () >= deadline)
    {
      g_task_return_boolean (task, TRUE);
      return G_SOURCE_REMOVE;
    }
  return G_SOURCE_CONTINUE;
}

static void
begin_shutdown (HeraldWorker *worker, gpointer data)
{
  herald_worker_begin_shutdown (worker, GPOINTER_TO_UINT (data));
}

/**
 * herald_hub_is_draining:
 * @self: a #HeraldHub
 *
 * Any thread. Returns: %TRUE once herald_hub_shutdown_async() began
 */
gboolean
herald_hub_is_draining (HeraldHub *self)
{
  g_return_val_if_fail (HERALD_IS_HUB (self), FALSE);

  return g_atomic_int_get (&self->draining);
}

void
herald_hub_shutdown_async (HeraldHub *self, guint timeout_ms, GAsyncReadyCallback callback,
                           gpointer user_data)
{
  GTask *task;
  g_autoptr (GSource) source = NULL;
  guint drain_ms;
  gint64 deadline_ms;

  g_return_if_fail (HERALD_IS_HUB (self));

  /* The drain window comes on top of the time the closes may take. */
  drain_ms = herald_config_get_drain_seconds (self->config) * 1000;
  deadline_ms = g_get_monotonic_time () / 1000 + drain_ms + timeout_ms;
  g_atomic_int_set (&self->draining, 1);
  task = g_task_new (self, NULL, callback, user_data);
  source = g_timeout_source_new (20);
  g_task_set_task_data (task, GSIZE_TO_POINTER ((gsize)deadline_ms), NULL);
  herald_hub_foreach_worker (self, begin_shutdown, GUINT_TO_POINTER (drain_ms));
  g_source_set_callback (source, check_drained, task, g_object_unref);
  g_source_attach (source, g_main_context_get_thread_default ());
}

gboolean
herald_hub_shutdown_finish (HeraldHub *self, GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (HERALD_IS_HUB (self), FALSE);
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}
