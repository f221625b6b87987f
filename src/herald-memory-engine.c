/* herald-memory-engine.c: offsets, history and routing inside one process.
 *
 * One mutex guards the channel table. A publish assigns the channel offset and
 * the node-wide sequence number and hands the message to the hub's sink while
 * still holding it, so every worker receives messages in sequence order — the
 * property SSE resume and recovery rely on.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>
#include <gio/gio.h>

#include "herald-error.h"
#include "herald-memory-engine.h"

typedef struct
{
  guint64 offset;      /* last offset assigned */
  guint64 evicted_seq; /* highest seq dropped from history (0 = none) */
  guint64 evicted_offset;
  GQueue history; /* of HeraldMessage*, oldest first */
} MemChannel;

struct _HeraldMemoryEngine
{
  HeraldEngine parent_instance;

  GMutex lock;
  GHashTable *channels; /* name → MemChannel */
  GHashTable *presence; /* "channel\nuser" → connection count (GUINT_TO_POINTER) */
  guint64 seq;
  char *epoch;
};

G_DEFINE_FINAL_TYPE (HeraldMemoryEngine, herald_memory_engine, HERALD_TYPE_ENGINE)

static void
mem_channel_free (gpointer data)
{
  MemChannel *ch = data;
  g_queue_clear_full (&ch->history, (GDestroyNotify)herald_message_unref);
  g_free (ch);
}

static void
channel_drop_oldest (MemChannel *ch)
{
  HeraldMessage *old = g_queue_pop_head (&ch->history);
  ch->evicted_seq = herald_message_get_seq (old);
  ch->evicted_offset = herald_message_get_offset (old);
  herald_message_unref (old);
}

static void
channel_expire (HeraldMemoryEngine *self, MemChannel *ch, gint64 now)
{
  HeraldConfig *config = herald_engine_get_config (HERALD_ENGINE (self));
  guint ttl = herald_config_get_history_ttl (config);
  guint size = herald_config_get_history_size (config);

  while (ch->history.length > size)
    channel_drop_oldest (ch);
  if (ttl == 0)
    return;
  while (ch->history.length > 0)
    {
      HeraldMessage *head = g_queue_peek_head (&ch->history);
      if (now - herald_message_get_time (head) < (gint64)ttl * G_USEC_PER_SEC)
        break;
      channel_drop_oldest (ch);
    }
}

static const char *
memory_get_name (HeraldEngine *engine)
{
  return "memory";
}

static char *
memory_dup_state (HeraldEngine *engine)
{
  return g_strdup ("ok");
}

static guint
deliver (HeraldMemoryEngine *self, const HeraldDelivery *delivery)
{
  return herald_engine_deliver (HERALD_ENGINE (self), delivery);
}

static guint64
publish_locked (HeraldMemoryEngine *self, const char *channel, const char *data_json)
{
  HeraldMessage *message;
  MemChannel *ch;
  guint64 offset;

  g_mutex_lock (&self->lock);
  ch = g_hash_table_lookup (self->channels, channel);
  if (ch == NULL)
    {
      ch = g_new0 (MemChannel, 1);
      g_hash_table_insert (self->channels, g_strdup (channel), ch);
    }
  offset = ++ch->offset;
  message = herald_message_new_channel (channel, offset, ++self->seq, self->epoch, data_json);
  if (herald_config_get_history_size (herald_engine_get_config (HERALD_ENGINE (self))) > 0)
    {
      g_queue_push_tail (&ch->history, herald_message_ref (message));
      channel_expire (self, ch, g_get_monotonic_time ());
    }
  else
    {
      ch->evicted_seq = self->seq;
      ch->evicted_offset = offset;
    }
  deliver (self, &(HeraldDelivery){ .kind = HERALD_TARGET_CHANNEL, .message = message });
  g_mutex_unlock (&self->lock);

  herald_message_unref (message);
  return offset;
}

static gboolean
memory_publish_now (HeraldEngine *engine, const char *channel, const char *data_json,
                    guint64 *offset, GError **error)
{
  guint64 value = publish_locked (HERALD_MEMORY_ENGINE (engine), channel, data_json);

  if (offset)
    *offset = value;
  return TRUE;
}

static void
memory_publish_async (HeraldEngine *engine, const char *channel, const char *data_json,
                      GCancellable *cancellable, GAsyncReadyCallback callback, gpointer user_data)
{
  HeraldMemoryEngine *self = HERALD_MEMORY_ENGINE (engine);
  g_autoptr (GTask) task = g_task_new (self, cancellable, callback, user_data);

  g_task_set_source_tag (task, memory_publish_async);
  g_task_return_int (task, (gssize)publish_locked (self, channel, data_json));
}

static guint
memory_send (HeraldEngine *engine, HeraldTargetKind kind, const char *target, const char *data_json)
{
  HeraldMemoryEngine *self = HERALD_MEMORY_ENGINE (engine);
  g_autoptr (HeraldMessage) message = herald_message_new_direct (data_json);

  return deliver (self, &(HeraldDelivery){ .kind = kind, .target = target, .message = message });
}

static void
memory_close_connection (HeraldEngine *engine, const char *id, guint16 code, const char *reason)
{
  HeraldMemoryEngine *self = HERALD_MEMORY_ENGINE (engine);

  deliver (self, &(HeraldDelivery){ .kind = HERALD_TARGET_CLOSE,
                                    .target = id,
                                    .close_code = code,
                                    .close_reason = reason });
}

static HeraldRecovery *
memory_recover (HeraldEngine *engine, const char *channel, guint64 since, const char *epoch)
{
  HeraldMemoryEngine *self = HERALD_MEMORY_ENGINE (engine);
  HeraldRecovery *r = herald_recovery_new (self->epoch);
  MemChannel *ch;

  g_mutex_lock (&self->lock);
  ch = g_hash_table_lookup (self->channels, channel);
  if (ch)
    channel_expire (self, ch, g_get_monotonic_time ());
  r->top_offset = ch ? ch->offset : 0;

  if (epoch != NULL && *epoch != '\0' && g_strcmp0 (epoch, self->epoch) != 0)
    r->recovered = FALSE; /* history of that epoch is gone */
  else if (since > r->top_offset)
    r->recovered = FALSE; /* a position we never had */
  else if (ch == NULL || since == ch->offset)
    r->recovered = TRUE;
  else if (since < ch->evicted_offset)
    r->recovered = FALSE; /* some of the missed messages were dropped */
  else
    {
      r->recovered = TRUE;
      for (GList *l = ch->history.head; l; l = l->next)
        if (herald_message_get_offset (l->data) > since)
          g_ptr_array_add (r->messages, herald_message_ref (l->data));
    }
  g_mutex_unlock (&self->lock);
  return r;
}

static HeraldRecovery *
memory_recover_stream (HeraldEngine *engine, const char *const *channels, const char *epoch,
                       guint64 since_seq)
{
  HeraldMemoryEngine *self = HERALD_MEMORY_ENGINE (engine);
  HeraldRecovery *r = herald_recovery_new (self->epoch);

  g_mutex_lock (&self->lock);
  r->recovered = g_strcmp0 (epoch, self->epoch) == 0 && since_seq <= self->seq;
  for (guint i = 0; r->recovered && channels[i]; i++)
    {
      MemChannel *ch = g_hash_table_lookup (self->channels, channels[i]);
      if (ch == NULL)
        continue;
      channel_expire (self, ch, g_get_monotonic_time ());
      if (ch->evicted_seq > since_seq)
        {
          r->recovered = FALSE;
          break;
        }
      for (GList *l = ch->history.head; l; l = l->next)
        if (herald_message_get_seq (l->data) > since_seq)
          g_ptr_array_add (r->messages, herald_message_ref (l->data));
    }
  if (!r->recovered)
    g_ptr_array_set_size (r->messages, 0);
  herald_recovery_sort_by_seq (r);
  r->top_offset = self->seq;
  g_mutex_unlock (&self->lock);
  return r;
}

static char *
memory_dup_epoch (HeraldEngine *engine)
{
  return g_strdup (HERALD_MEMORY_ENGINE (engine)->epoch);
}

static void
memory_get_position (HeraldEngine *engine, const char *channel, guint64 *offset, char **epoch)
{
  HeraldMemoryEngine *self = HERALD_MEMORY_ENGINE (engine);
  MemChannel *ch;

  g_mutex_lock (&self->lock);
  ch = g_hash_table_lookup (self->channels, channel);
  if (offset)
    *offset = ch ? ch->offset : 0;
  if (epoch)
    *epoch = g_strdup (self->epoch);
  g_mutex_unlock (&self->lock);
}

static gboolean
memory_get_stream_position (HeraldEngine *engine, guint64 *seq, char **epoch)
{
  HeraldMemoryEngine *self = HERALD_MEMORY_ENGINE (engine);

  g_mutex_lock (&self->lock);
  if (seq)
    *seq = self->seq;
  if (epoch)
    *epoch = g_strdup (self->epoch);
  g_mutex_unlock (&self->lock);
  return TRUE;
}

/* Adds @delta to the user's connection count on @channel; returns TRUE when
 * the count went from 0 to 1 (join) or from 1 to 0 (leave), after handing the
 * event to the sink — under the lock, so a user's join and leave events reach
 * the workers in the order they happened. */
static gboolean
presence_adjust (HeraldMemoryEngine *self, const char *channel, const char *user_id, int delta)
{
  g_autofree char *key = g_strconcat (channel, "\n", user_id, NULL);
  gboolean changed;
  guint count;

  g_mutex_lock (&self->lock);
  count = GPOINTER_TO_UINT (g_hash_table_lookup (self->presence, key));
  if (delta < 0 && count == 0)
    {
      g_mutex_unlock (&self->lock);
      g_return_val_if_reached (FALSE);
    }
  count += delta;
  changed = delta > 0 ? count == 1 : count == 0;
  if (count == 0)
    g_hash_table_remove (self->presence, key);
  else
    g_hash_table_insert (self->presence, g_steal_pointer (&key), GUINT_TO_POINTER (count));
  if (changed)
    {
      g_autoptr (HeraldMessage) event = herald_message_new_presence (channel, user_id, delta > 0);
      deliver (self, &(HeraldDelivery){
                         .kind = HERALD_TARGET_PRESENCE, .target = channel, .message = event });
    }
  g_mutex_unlock (&self->lock);
  return changed;
}

static gboolean
memory_presence_join (HeraldEngine *engine, const char *channel, const char *user_id)
{
  return presence_adjust (HERALD_MEMORY_ENGINE (engine), channel, user_id, 1);
}

static gboolean
memory_presence_leave (HeraldEngine *engine, const char *channel, const char *user_id)
{
  return presence_adjust (HERALD_MEMORY_ENGINE (engine), channel, user_id, -1);
}

void
herald_memory_engine_expire (HeraldMemoryEngine *self)
{
  GHashTableIter iter;
  MemChannel *ch;
  gint64 now = g_get_monotonic_time ();

  g_mutex_lock (&self->lock);
  g_hash_table_iter_init (&iter, self->channels);
  while (g_hash_table_iter_next (&iter, NULL, (gpointer *)&ch))
    channel_expire (self, ch, now);
  g_mutex_unlock (&self->lock);
}

static void
herald_memory_engine_finalize (GObject *object)
{
  HeraldMemoryEngine *self = HERALD_MEMORY_ENGINE (object);

  g_hash_table_unref (self->channels);
  g_hash_table_unref (self->presence);
  g_mutex_clear (&self->lock);
  g_free (self->epoch);
  G_OBJECT_CLASS (herald_memory_engine_parent_class)->finalize (object);
}

static void
herald_memory_engine_class_init (HeraldMemoryEngineClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  HeraldEngineClass *engine_class = HERALD_ENGINE_CLASS (klass);

  object_class->finalize = herald_memory_engine_finalize;
  engine_class->get_name = memory_get_name;
  engine_class->dup_state = memory_dup_state;
  engine_class->publish_async = memory_publish_async;
  engine_class->publish_now = memory_publish_now;
  engine_class->send = memory_send;
  engine_class->close_connection = memory_close_connection;
  engine_class->recover = memory_recover;
  engine_class->recover_stream = memory_recover_stream;
  engine_class->dup_epoch = memory_dup_epoch;
  engine_class->get_position = memory_get_position;
  engine_class->get_stream_position = memory_get_stream_position;
  engine_class->presence_join = memory_presence_join;
  engine_class->presence_leave = memory_presence_leave;
}

static void
herald_memory_engine_init (HeraldMemoryEngine *self)
{
  g_mutex_init (&self->lock);
  self->channels = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, mem_channel_free);
  self->presence = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  self->epoch = herald_engine_new_epoch ();
}

/**
 * herald_memory_engine_new:
 *
 * Returns: (transfer full): the in-process engine.
 */
HeraldEngine *
herald_memory_engine_new (HeraldConfig *config)
{
  return g_object_new (HERALD_TYPE_MEMORY_ENGINE, "config", config, NULL);
}
