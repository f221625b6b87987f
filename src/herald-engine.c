/* herald-engine.c: the engine interface.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "herald-engine.h"

G_DEFINE_INTERFACE (HeraldEngine, herald_engine, G_TYPE_OBJECT)

static void
herald_engine_default_init (HeraldEngineInterface *iface)
{
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
  return HERALD_ENGINE_GET_IFACE (self)->get_name (self);
}

char *
herald_engine_dup_state (HeraldEngine *self)
{
  return HERALD_ENGINE_GET_IFACE (self)->dup_state (self);
}

void
herald_engine_set_sink (HeraldEngine *self, HeraldEngineSink sink, gpointer user_data)
{
  HERALD_ENGINE_GET_IFACE (self)->set_sink (self, sink, user_data);
}

void
herald_engine_publish_async (HeraldEngine *self, const char *channel, const char *data_json,
                             GCancellable *cancellable, GAsyncReadyCallback callback,
                             gpointer user_data)
{
  HERALD_ENGINE_GET_IFACE (self)->publish_async (self, channel, data_json, cancellable, callback,
                                                 user_data);
}

gboolean
herald_engine_publish_finish (HeraldEngine *self, GAsyncResult *result, guint64 *offset,
                              GError **error)
{
  return HERALD_ENGINE_GET_IFACE (self)->publish_finish (self, result, offset, error);
}

gboolean
herald_engine_can_publish_now (HeraldEngine *self)
{
  return HERALD_ENGINE_GET_IFACE (self)->publish_now != NULL;
}

/* Only for engines where herald_engine_can_publish_now() is TRUE. */
gboolean
herald_engine_publish_now (HeraldEngine *self, const char *channel, const char *data_json,
                           guint64 *offset, GError **error)
{
  HeraldEngineInterface *iface = HERALD_ENGINE_GET_IFACE (self);

  g_return_val_if_fail (iface->publish_now != NULL, FALSE);
  return iface->publish_now (self, channel, data_json, offset, error);
}

guint
herald_engine_send (HeraldEngine *self, HeraldTargetKind kind, const char *target,
                    const char *data_json)
{
  return HERALD_ENGINE_GET_IFACE (self)->send (self, kind, target, data_json);
}

void
herald_engine_close_connection (HeraldEngine *self, const char *id, guint16 code,
                                const char *reason)
{
  HERALD_ENGINE_GET_IFACE (self)->close_connection (self, id, code, reason);
}

HeraldRecovery *
herald_engine_recover (HeraldEngine *self, const char *channel, guint64 since, const char *epoch)
{
  return HERALD_ENGINE_GET_IFACE (self)->recover (self, channel, since, epoch);
}

HeraldRecovery *
herald_engine_recover_stream (HeraldEngine *self, const char *const *channels, const char *epoch,
                              guint64 since_seq)
{
  return HERALD_ENGINE_GET_IFACE (self)->recover_stream (self, channels, epoch, since_seq);
}

char *
herald_engine_dup_epoch (HeraldEngine *self)
{
  return HERALD_ENGINE_GET_IFACE (self)->dup_epoch (self);
}

/* Engines without get_position: no offset known, the current epoch. */
void
herald_engine_get_position (HeraldEngine *self, const char *channel, guint64 *offset, char **epoch)
{
  HeraldEngineInterface *iface = HERALD_ENGINE_GET_IFACE (self);

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
  HeraldEngineInterface *iface = HERALD_ENGINE_GET_IFACE (self);

  return iface->get_stream_position != NULL && iface->get_stream_position (self, seq, epoch);
}

gboolean
herald_engine_presence_join (HeraldEngine *self, const char *channel, const char *user_id)
{
  HeraldEngineInterface *iface = HERALD_ENGINE_GET_IFACE (self);

  return iface->presence_join != NULL && iface->presence_join (self, channel, user_id);
}

gboolean
herald_engine_presence_leave (HeraldEngine *self, const char *channel, const char *user_id)
{
  HeraldEngineInterface *iface = HERALD_ENGINE_GET_IFACE (self);

  return iface->presence_leave != NULL && iface->presence_leave (self, channel, user_id);
}

void
herald_engine_presence_anonymous (HeraldEngine *self, const char *channel, int delta)
{
  HeraldEngineInterface *iface = HERALD_ENGINE_GET_IFACE (self);

  if (iface->presence_anonymous != NULL)
    iface->presence_anonymous (self, channel, delta);
}

/* The cluster hooks are optional: the in-process engine has none. */
void
herald_engine_channel_occupied (HeraldEngine *self, const char *channel)
{
  HeraldEngineInterface *iface = HERALD_ENGINE_GET_IFACE (self);

  if (iface->channel_occupied != NULL)
    iface->channel_occupied (self, channel);
}

void
herald_engine_channel_vacated (HeraldEngine *self, const char *channel)
{
  HeraldEngineInterface *iface = HERALD_ENGINE_GET_IFACE (self);

  if (iface->channel_vacated != NULL)
    iface->channel_vacated (self, channel);
}

void
herald_engine_connection_opened (HeraldEngine *self, const char *id, const char *user_id)
{
  HeraldEngineInterface *iface = HERALD_ENGINE_GET_IFACE (self);

  if (iface->connection_opened != NULL)
    iface->connection_opened (self, id, user_id);
}

void
herald_engine_connection_closed (HeraldEngine *self, const char *id)
{
  HeraldEngineInterface *iface = HERALD_ENGINE_GET_IFACE (self);

  if (iface->connection_closed != NULL)
    iface->connection_closed (self, id);
}

gboolean
herald_engine_has_connection (HeraldEngine *self, const char *id)
{
  HeraldEngineInterface *iface = HERALD_ENGINE_GET_IFACE (self);

  return iface->has_connection != NULL && iface->has_connection (self, id);
}

void
herald_engine_collect_presence (HeraldEngine *self, const char *channel, GHashTable *users,
                                guint *connections)
{
  HeraldEngineInterface *iface = HERALD_ENGINE_GET_IFACE (self);

  if (iface->collect_presence != NULL)
    iface->collect_presence (self, channel, users, connections);
}

gint64
herald_engine_count_channels (HeraldEngine *self)
{
  HeraldEngineInterface *iface = HERALD_ENGINE_GET_IFACE (self);

  return iface->count_channels != NULL ? iface->count_channels (self) : -1;
}
