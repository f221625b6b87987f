/* herald-engine.c: the engines' abstract base class.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "herald-engine.h"
#include "herald-error.h"
#include "herald-names.h"

typedef struct
{
  HeraldConfig *config;
  HeraldEngineSink sink;
  gpointer sink_data;
} HeraldEnginePrivate;

G_DEFINE_ABSTRACT_TYPE_WITH_PRIVATE (HeraldEngine, herald_engine, G_TYPE_OBJECT)

enum
{
  PROP_0,
  PROP_CONFIG,
  N_PROPS
};
static GParamSpec *props[N_PROPS];

static void
herald_engine_finalize (GObject *object)
{
  HeraldEnginePrivate *priv = herald_engine_get_instance_private (HERALD_ENGINE (object));

  g_clear_object (&priv->config);
  G_OBJECT_CLASS (herald_engine_parent_class)->finalize (object);
}

static void
herald_engine_set_property (GObject *object, guint prop_id, const GValue *value, GParamSpec *pspec)
{
  HeraldEnginePrivate *priv = herald_engine_get_instance_private (HERALD_ENGINE (object));

  switch (prop_id)
    {
    case PROP_CONFIG:
      priv->config = g_value_dup_object (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
herald_engine_get_property (GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
  HeraldEnginePrivate *priv = herald_engine_get_instance_private (HERALD_ENGINE (object));

  switch (prop_id)
    {
    case PROP_CONFIG:
      g_value_set_object (value, priv->config);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
herald_engine_class_init (HeraldEngineClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->finalize = herald_engine_finalize;
  object_class->set_property = herald_engine_set_property;
  object_class->get_property = herald_engine_get_property;

  /**
   * HeraldEngine:config:
   *
   * The configuration (history size and ttl).
   */
  props[PROP_CONFIG]
      = g_param_spec_object ("config", NULL, NULL, HERALD_TYPE_CONFIG,
                             G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties (object_class, N_PROPS, props);
}

static void
herald_engine_init (HeraldEngine *self)
{
}

HeraldConfig *
herald_engine_get_config (HeraldEngine *self)
{
  HeraldEnginePrivate *priv = herald_engine_get_instance_private (self);

  return priv->config;
}

guint
herald_engine_deliver (HeraldEngine *self, const HeraldDelivery *delivery)
{
  HeraldEnginePrivate *priv = herald_engine_get_instance_private (self);

  return priv->sink ? priv->sink (delivery, priv->sink_data) : 0;
}

char *
herald_engine_new_epoch (void)
{
  g_autofree char *id = herald_connection_id_new ();
  char *epoch = g_strndup (id, 8);

  for (char *p = epoch; *p; p++)
    if (*p == '-')
      *p = '_';
  return epoch;
}

HeraldRecovery *
herald_recovery_new (const char *epoch)
{
  HeraldRecovery *r = g_new0 (HeraldRecovery, 1);

  r->messages = g_ptr_array_new_with_free_func ((GDestroyNotify)herald_message_unref);
  r->epoch = g_strdup (epoch);
  return r;
}

static gint
compare_seq (gconstpointer a, gconstpointer b)
{
  guint64 sa = herald_message_get_seq (*(HeraldMessage **)a);
  guint64 sb = herald_message_get_seq (*(HeraldMessage **)b);
  return sa < sb ? -1 : sa > sb;
}

void
herald_recovery_sort_by_seq (HeraldRecovery *recovery)
{
  g_ptr_array_sort (recovery->messages, compare_seq);
}

void
herald_recovery_free (HeraldRecovery *recovery)
{
  if (recovery == NULL)
    return;
  g_clear_pointer (&recovery->messages, g_ptr_array_unref);
  g_free (recovery->epoch);
  g_free (recovery);
}

const char *
herald_engine_get_name (HeraldEngine *self)
{
  return HERALD_ENGINE_GET_CLASS (self)->get_name (self);
}

char *
herald_engine_dup_state (HeraldEngine *self)
{
  return HERALD_ENGINE_GET_CLASS (self)->dup_state (self);
}

/* Set once, before the engine delivers anything. */
void
herald_engine_set_sink (HeraldEngine *self, HeraldEngineSink sink, gpointer user_data)
{
  HeraldEnginePrivate *priv;

  g_return_if_fail (HERALD_IS_ENGINE (self));
  priv = herald_engine_get_instance_private (self);
  priv->sink = sink;
  priv->sink_data = user_data;
}

void
herald_engine_publish_async (HeraldEngine *self, const char *channel, const char *key,
                             const char *data_json, GCancellable *cancellable,
                             GAsyncReadyCallback callback, gpointer user_data)
{
  HERALD_ENGINE_GET_CLASS (self)->publish_async (self, channel, key, data_json, cancellable,
                                                 callback, user_data);
}

gboolean
herald_engine_publish_finish (HeraldEngine *self, GAsyncResult *result, guint64 *offset,
                              GError **error)
{
  gssize value;

  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  value = g_task_propagate_int (G_TASK (result), error);
  if (value < 0)
    return FALSE;
  if (offset)
    *offset = (guint64)value;
  return TRUE;
}

gboolean
herald_engine_can_publish_now (HeraldEngine *self)
{
  return HERALD_ENGINE_GET_CLASS (self)->publish_now != NULL;
}

/* Only for engines where herald_engine_can_publish_now() is TRUE. */
gboolean
herald_engine_publish_now (HeraldEngine *self, const char *channel, const char *key,
                           const char *data_json, guint64 *offset, GError **error)
{
  HeraldEngineClass *iface = HERALD_ENGINE_GET_CLASS (self);

  g_return_val_if_fail (iface->publish_now != NULL, FALSE);
  return iface->publish_now (self, channel, key, data_json, offset, error);
}

/**
 * herald_engine_announce:
 * @event: a join/leave event (herald_message_new_join_leave())
 *
 * Delivers @event to the subscribers of its channel on every node.
 */
void
herald_engine_announce (HeraldEngine *self, HeraldMessage *event)
{
  HeraldEngineClass *iface = HERALD_ENGINE_GET_CLASS (self);

  g_return_if_fail (HERALD_IS_ENGINE (self));
  g_return_if_fail (event != NULL && herald_message_get_channel (event) != NULL);

  if (iface->announce != NULL)
    iface->announce (self, event);
  else
    herald_engine_deliver (self, &(HeraldDelivery){ .kind = HERALD_TARGET_JOIN_LEAVE,
                                                    .target = herald_message_get_channel (event),
                                                    .message = event });
}

guint
herald_engine_send (HeraldEngine *self, HeraldTargetKind kind, const char *target,
                    const char *data_json)
{
  return HERALD_ENGINE_GET_CLASS (self)->send (self, kind, target, data_json);
}

void
herald_engine_close_connection (HeraldEngine *self, const char *id, guint16 code,
                                const char *reason)
{
  HERALD_ENGINE_GET_CLASS (self)->close_connection (self, id, code, reason);
}

HeraldRecovery *
herald_engine_recover (HeraldEngine *self, const char *channel, guint64 since, const char *epoch)
{
  return HERALD_ENGINE_GET_CLASS (self)->recover (self, channel, since, epoch);
}

HeraldRecovery *
herald_engine_recover_stream (HeraldEngine *self, const char *const *channels, const char *epoch,
                              guint64 since_seq)
{
  return HERALD_ENGINE_GET_CLASS (self)->recover_stream (self, channels, epoch, since_seq);
}

char *
herald_engine_dup_epoch (HeraldEngine *self)
{
  return HERALD_ENGINE_GET_CLASS (self)->dup_epoch (self);
}

/* Engines without get_position: no offset known, the current epoch. */
void
herald_engine_get_position (HeraldEngine *self, const char *channel, guint64 *offset, char **epoch)
{
  HeraldEngineClass *iface = HERALD_ENGINE_GET_CLASS (self);

  if (iface->get_position != NULL)
    {
      iface->get_position (self, channel, offset, epoch);
      return;
    }
  if (offset)
    *offset = 0;
  if (epoch)
    *epoch = iface->dup_epoch (self);
}

gboolean
herald_engine_get_stream_position (HeraldEngine *self, guint64 *seq, char **epoch)
{
  HeraldEngineClass *iface = HERALD_ENGINE_GET_CLASS (self);

  return iface->get_stream_position != NULL && iface->get_stream_position (self, seq, epoch);
}

gboolean
herald_engine_presence_join (HeraldEngine *self, const char *channel, const char *user_id)
{
  HeraldEngineClass *iface = HERALD_ENGINE_GET_CLASS (self);

  return iface->presence_join != NULL && iface->presence_join (self, channel, user_id);
}

gboolean
herald_engine_presence_leave (HeraldEngine *self, const char *channel, const char *user_id)
{
  HeraldEngineClass *iface = HERALD_ENGINE_GET_CLASS (self);

  return iface->presence_leave != NULL && iface->presence_leave (self, channel, user_id);
}

void
herald_engine_presence_anonymous (HeraldEngine *self, const char *channel, int delta)
{
  HeraldEngineClass *iface = HERALD_ENGINE_GET_CLASS (self);

  if (iface->presence_anonymous != NULL)
    iface->presence_anonymous (self, channel, delta);
}

/* The cluster hooks are optional: the in-process engine has none. */
void
herald_engine_channel_occupied (HeraldEngine *self, const char *channel)
{
  HeraldEngineClass *iface = HERALD_ENGINE_GET_CLASS (self);

  if (iface->channel_occupied != NULL)
    iface->channel_occupied (self, channel);
}

void
herald_engine_channel_vacated (HeraldEngine *self, const char *channel)
{
  HeraldEngineClass *iface = HERALD_ENGINE_GET_CLASS (self);

  if (iface->channel_vacated != NULL)
    iface->channel_vacated (self, channel);
}

void
herald_engine_connection_opened (HeraldEngine *self, const char *id, const char *user_id)
{
  HeraldEngineClass *iface = HERALD_ENGINE_GET_CLASS (self);

  if (iface->connection_opened != NULL)
    iface->connection_opened (self, id, user_id);
}

void
herald_engine_connection_closed (HeraldEngine *self, const char *id)
{
  HeraldEngineClass *iface = HERALD_ENGINE_GET_CLASS (self);

  if (iface->connection_closed != NULL)
    iface->connection_closed (self, id);
}

gboolean
herald_engine_has_connection (HeraldEngine *self, const char *id)
{
  HeraldEngineClass *iface = HERALD_ENGINE_GET_CLASS (self);

  return iface->has_connection != NULL && iface->has_connection (self, id);
}

char **
herald_engine_query_presence (HeraldEngine *self, const char *channel, const char *after,
                              guint limit, guint *users, guint *connections, gboolean *more,
                              GError **error)
{
  HeraldEngineClass *iface = HERALD_ENGINE_GET_CLASS (self);

  *users = *connections = 0;
  *more = FALSE;
  if (iface->query_presence == NULL)
    {
      g_set_error_literal (error, HERALD_ERROR, HERALD_ERROR_UNAVAILABLE,
                           "This engine keeps no presence");
      return NULL;
    }
  return iface->query_presence (self, channel, after, limit, users, connections, more, error);
}

gint64
herald_engine_count_user_connections (HeraldEngine *self, const char *user_id)
{
  HeraldEngineClass *iface;

  g_return_val_if_fail (HERALD_IS_ENGINE (self) && user_id != NULL, -1);
  iface = HERALD_ENGINE_GET_CLASS (self);
  if (iface->count_user_connections == NULL)
    return -1;
  return iface->count_user_connections (self, user_id);
}

gint64
herald_engine_count_channels (HeraldEngine *self)
{
  HeraldEngineClass *iface = HERALD_ENGINE_GET_CLASS (self);

  return iface->count_channels != NULL ? iface->count_channels (self) : -1;
}

/**
 * herald_engine_append_metrics:
 * @out: the /metrics text so far
 *
 * Appends the engine's own metrics, if it has any.
 */
void
herald_engine_append_metrics (HeraldEngine *self, GString *out)
{
  HeraldEngineClass *iface;

  g_return_if_fail (HERALD_IS_ENGINE (self) && out != NULL);
  iface = HERALD_ENGINE_GET_CLASS (self);
  if (iface->append_metrics != NULL)
    iface->append_metrics (self, out);
}
