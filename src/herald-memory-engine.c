/* herald-memory-engine.c: offsets, history and routing inside one process.
 *
 * One mutex guards the channel table. A publish assigns the channel offset and
 * the node-wide sequence number and hands the message to the hub's sink while
 * still holding it, so every worker receives messages in sequence order — the
 * property SSE resume and recovery rely on.
 *
 * Channels are forgotten (see "Forgetting channels" below) once no worker has
 * a subscriber and nothing happened on them for [history] ttl seconds, so
 * publishing to ever new channel names costs no memory for good.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>
#include <gio/gio.h>

#include "herald-engine-presence.h"
#include "herald-error.h"
#include "herald-memory-engine.h"

typedef struct
{
  char *name;          /* the key in the channel table */
  guint64 offset;      /* last offset assigned */
  guint64 evicted_seq; /* highest seq dropped from history (0 = none) */
  guint64 evicted_offset;
  GQueue history;   /* of HeraldMessage*, oldest first */
  char *epoch;      /* NULL: the engine's epoch */
  guint workers;    /* worker tables with a subscriber (channel_occupied) */
  gint64 last_used; /* monotonic µs of the last publish or of going idle */
  GList idle_link;  /* in the engine's idle queue while workers == 0 */
} MemChannel;

/* What forgotten channels leave behind, per bucket of names (a hash of the
 * name picks the bucket): a generation that names the epoch of channels
 * created in the bucket afterwards, and the highest node-wide sequence number
 * a forgotten channel of the bucket had. A fixed 64 KiB, allocated at the
 * first forgetting; a bucket shared with another channel only makes a resume
 * answer "not recovered" more often, never wrongly "recovered". */
#define FORGOTTEN_BUCKETS 4096
typedef struct
{
  guint64 generation; /* 0 = nothing forgotten here */
  guint64 seq;
} Forgotten;

/* Idle channels are forgotten after [history] ttl seconds, or this long
 * when ttl is 0 (only channels without history then). */
#define FORGET_AFTER_DEFAULT_S 300
/* Bounded work: at most this many channels per sweep, and two more each
 * time a channel is created, so forgetting keeps pace with creation. */
#define FORGET_PER_SWEEP 16384
#define FORGET_PER_CREATION 2

struct _HeraldMemoryEngine
{
  HeraldEngine parent_instance;

  GMutex lock;
  GHashTable *channels; /* name → MemChannel */
  GQueue idle;          /* MemChannels without subscribers, least recently used first */
  Forgotten *forgotten; /* FORGOTTEN_BUCKETS, NULL until a channel is forgotten */
  guint64 generations;  /* last forgotten generation handed out */
  HeraldPresenceTable *presence; /* counted as members come and go */
  guint64 seq;
  char *epoch;
};

G_DEFINE_FINAL_TYPE (HeraldMemoryEngine, herald_memory_engine, HERALD_TYPE_ENGINE)

static void
mem_channel_free (gpointer data)
{
  MemChannel *ch = data;
  g_queue_clear_full (&ch->history, (GDestroyNotify)herald_message_unref);
  g_free (ch->epoch);
  g_free (ch->name);
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
  /* [namespace.NAME] history-size / history-ttl, as configured now */
  const HeraldNamespace *ns
      = herald_config_namespace_for (herald_engine_get_config (HERALD_ENGINE (self)), ch->name);
  guint ttl = ns->history_ttl;
  guint size = ns->history_size;

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

/* ---- Forgetting channels ----
 *
 * A channel no worker has a subscriber of goes to the tail of the idle
 * queue; a publish moves it back to the tail. The sweep (every 10 s, from
 * the daemon's history timer) and each channel creation forget channels
 * from the head while they have been idle long enough: whatever history they
 * had has expired by then. Forgetting drops the offset counter too, so the
 * channel's next life starts at offset 1 — in a new epoch (the bucket's
 * generation), so that a client resuming with the old epoch gets
 * recovered:false and never offsets of another history. SSE resume, which
 * goes by the node-wide sequence, fails for positions older than the
 * bucket's forgotten sequence. */

static Forgotten *
forgotten_bucket (HeraldMemoryEngine *self, const char *name)
{
  if (self->forgotten == NULL)
    return NULL;
  return &self->forgotten[g_str_hash (name) % FORGOTTEN_BUCKETS];
}

/* The epoch a channel named @name has (@ch) or would get when created now. */
static char *
channel_dup_epoch (HeraldMemoryEngine *self, const char *name, MemChannel *ch)
{
  Forgotten *bucket;

  if (ch != NULL)
    return g_strdup (ch->epoch ? ch->epoch : self->epoch);
  bucket = forgotten_bucket (self, name);
  if (bucket == NULL || bucket->generation == 0)
    return g_strdup (self->epoch);
  /* '.' is neither '-' (the SSE id separator) nor in the engine's epoch. */
  return g_strdup_printf ("%s.%" G_GINT64_MODIFIER "x", self->epoch, bucket->generation);
}

static void
channel_forget (HeraldMemoryEngine *self, MemChannel *ch)
{
  g_assert (ch->workers == 0);
  if (ch->offset > 0 || ch->evicted_seq > 0)
    {
      Forgotten *bucket;

      if (self->forgotten == NULL)
        self->forgotten = g_new0 (Forgotten, FORGOTTEN_BUCKETS);
      bucket = forgotten_bucket (self, ch->name);
      bucket->generation = ++self->generations;
      bucket->seq = MAX (bucket->seq, ch->evicted_seq);
      for (GList *l = ch->history.head; l; l = l->next)
        bucket->seq = MAX (bucket->seq, herald_message_get_seq (l->data));
    }
  g_queue_unlink (&self->idle, &ch->idle_link);
  g_hash_table_remove (self->channels, ch->name);
}

static void channel_expire (HeraldMemoryEngine *self, MemChannel *ch, gint64 now);

/* Forgets up to @budget channels idle long enough at @now. */
static void
forget_idle (HeraldMemoryEngine *self, gint64 now, guint budget)
{
  HeraldConfig *config = herald_engine_get_config (HERALD_ENGINE (self));

  while (budget-- > 0 && self->idle.head != NULL)
    {
      MemChannel *ch = self->idle.head->data;
      /* The channel's own namespace decides how long it stays */
      guint ttl = herald_config_namespace_for (config, ch->name)->history_ttl;
      gint64 after = (gint64)(ttl > 0 ? ttl : FORGET_AFTER_DEFAULT_S) * G_USEC_PER_SEC;

      if (now - ch->last_used < after)
        break;
      channel_expire (self, ch, now);
      if (ch->history.length > 0)
        {
          /* ttl = 0: history never expires, the channel stays; look again
           * later. */
          g_queue_unlink (&self->idle, &ch->idle_link);
          ch->last_used = now;
          g_queue_push_tail_link (&self->idle, &ch->idle_link);
          continue;
        }
      channel_forget (self, ch);
    }
}

/* A publish or a subscriber arrives: the channel, created when needed. */
static MemChannel *
channel_ensure (HeraldMemoryEngine *self, const char *name, gint64 now)
{
  MemChannel *ch = g_hash_table_lookup (self->channels, name);
  Forgotten *bucket;

  if (ch != NULL)
    return ch;
  forget_idle (self, now, FORGET_PER_CREATION);
  ch = g_new0 (MemChannel, 1);
  ch->name = g_strdup (name);
  bucket = forgotten_bucket (self, name);
  if (bucket != NULL && bucket->generation != 0)
    {
      ch->epoch = channel_dup_epoch (self, name, NULL);
      /* Messages up to there may have been this name's, in the history
       * forgotten: a stream position before it cannot be resumed. */
      ch->evicted_seq = bucket->seq;
    }
  ch->last_used = now;
  ch->idle_link.data = ch;
  g_queue_push_tail_link (&self->idle, &ch->idle_link);
  g_hash_table_insert (self->channels, ch->name, ch);
  return ch;
}

static void
channel_touch (HeraldMemoryEngine *self, MemChannel *ch, gint64 now)
{
  ch->last_used = now;
  if (ch->workers == 0)
    {
      g_queue_unlink (&self->idle, &ch->idle_link);
      g_queue_push_tail_link (&self->idle, &ch->idle_link);
    }
}

static void
memory_channel_occupied (HeraldEngine *engine, const char *channel)
{
  HeraldMemoryEngine *self = HERALD_MEMORY_ENGINE (engine);
  MemChannel *ch;

  g_mutex_lock (&self->lock);
  ch = channel_ensure (self, channel, g_get_monotonic_time ());
  if (ch->workers++ == 0)
    g_queue_unlink (&self->idle, &ch->idle_link);
  g_mutex_unlock (&self->lock);
}

static void
memory_channel_vacated (HeraldEngine *engine, const char *channel)
{
  HeraldMemoryEngine *self = HERALD_MEMORY_ENGINE (engine);
  MemChannel *ch;

  g_mutex_lock (&self->lock);
  ch = g_hash_table_lookup (self->channels, channel);
  if (ch == NULL || ch->workers == 0)
    {
      g_mutex_unlock (&self->lock);
      g_return_if_reached ();
    }
  if (--ch->workers == 0)
    {
      ch->last_used = g_get_monotonic_time ();
      g_queue_push_tail_link (&self->idle, &ch->idle_link);
      /* Never published to: there is no state to keep. */
      if (ch->offset == 0 && ch->history.length == 0)
        channel_forget (self, ch);
    }
  g_mutex_unlock (&self->lock);
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
publish_locked (HeraldMemoryEngine *self, const char *channel, const char *key,
                const char *data_json)
{
  HeraldMessage *message;
  MemChannel *ch;
  guint64 offset;

  g_mutex_lock (&self->lock);
  ch = channel_ensure (self, channel, g_get_monotonic_time ());
  offset = ++ch->offset;
  message = herald_message_new_channel (channel, offset, ++self->seq, self->epoch, key, data_json);
  if (herald_config_namespace_for (herald_engine_get_config (HERALD_ENGINE (self)), channel)
          ->history_size
      > 0)
    {
      g_queue_push_tail (&ch->history, herald_message_ref (message));
      channel_expire (self, ch, g_get_monotonic_time ());
    }
  else
    {
      ch->evicted_seq = self->seq;
      ch->evicted_offset = offset;
    }
  /* After the message's time: idle long enough means its history expired. */
  channel_touch (self, ch, g_get_monotonic_time ());
  deliver (self, &(HeraldDelivery){ .kind = HERALD_TARGET_CHANNEL, .message = message });
  g_mutex_unlock (&self->lock);

  herald_message_unref (message);
  return offset;
}

static gboolean
memory_publish_now (HeraldEngine *engine, const char *channel, const char *key,
                    const char *data_json, guint64 *offset, GError **error)
{
  guint64 value = publish_locked (HERALD_MEMORY_ENGINE (engine), channel, key, data_json);

  if (offset)
    *offset = value;
  return TRUE;
}

static void
memory_publish_async (HeraldEngine *engine, const char *channel, const char *key,
                      const char *data_json, GCancellable *cancellable,
                      GAsyncReadyCallback callback, gpointer user_data)
{
  HeraldMemoryEngine *self = HERALD_MEMORY_ENGINE (engine);
  g_autoptr (GTask) task = g_task_new (self, cancellable, callback, user_data);

  g_task_set_source_tag (task, memory_publish_async);
  g_task_return_int (task, (gssize)publish_locked (self, channel, key, data_json));
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
  g_free (r->epoch);
  r->epoch = channel_dup_epoch (self, channel, ch);

  if (epoch != NULL && *epoch != '\0' && g_strcmp0 (epoch, r->epoch) != 0)
    r->recovered = FALSE; /* history of that epoch is gone (or was forgotten) */
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
        {
          Forgotten *bucket = forgotten_bucket (self, channels[i]);

          /* Forgotten after that position: what it had is gone. */
          if (bucket != NULL && bucket->seq > since_seq)
            r->recovered = FALSE;
          continue;
        }
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
    *epoch = channel_dup_epoch (self, channel, ch);
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
  gboolean changed;
  int count;

  g_mutex_lock (&self->lock);
  count = herald_presence_table_adjust (self->presence, channel, user_id, delta);
  if (count < 0)
    {
      g_mutex_unlock (&self->lock);
      g_return_val_if_reached (FALSE);
    }
  changed = delta > 0 ? count == 1 : count == 0;
  if (changed)
    {
      g_autoptr (HeraldMessage) event = herald_message_new_presence (channel, user_id, delta > 0);
      deliver (self, &(HeraldDelivery){
                         .kind = HERALD_TARGET_PRESENCE, .target = channel, .message = event });
    }
  g_mutex_unlock (&self->lock);
  return changed;
}

/* Anonymous connections count in the channel's connections, no event. */
static void
memory_presence_anonymous (HeraldEngine *engine, const char *channel, int delta)
{
  HeraldMemoryEngine *self = HERALD_MEMORY_ENGINE (engine);

  g_mutex_lock (&self->lock);
  herald_presence_table_adjust (self->presence, channel, NULL, delta);
  g_mutex_unlock (&self->lock);
}

static char **
memory_query_presence (HeraldEngine *engine, const char *channel, const char *after, guint limit,
                       guint *users, guint *connections, gboolean *more, GError **error)
{
  HeraldMemoryEngine *self = HERALD_MEMORY_ENGINE (engine);
  char **page;

  g_mutex_lock (&self->lock);
  herald_presence_table_count (self->presence, channel, users, connections);
  page = herald_presence_table_page (self->presence, channel, after, limit, more);
  g_mutex_unlock (&self->lock);
  return page;
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

/**
 * herald_memory_engine_expire_at:
 * @now: a g_get_monotonic_time() value (tests pass one in the future)
 *
 * Drops history older than the ttl and forgets idle channels (bounded).
 */
void
herald_memory_engine_expire_at (HeraldMemoryEngine *self, gint64 now)
{
  GHashTableIter iter;
  MemChannel *ch;

  g_return_if_fail (HERALD_IS_MEMORY_ENGINE (self));

  g_mutex_lock (&self->lock);
  forget_idle (self, now, FORGET_PER_SWEEP);
  g_hash_table_iter_init (&iter, self->channels);
  while (g_hash_table_iter_next (&iter, NULL, (gpointer *)&ch))
    channel_expire (self, ch, now);
  g_mutex_unlock (&self->lock);
}

void
herald_memory_engine_expire (HeraldMemoryEngine *self)
{
  herald_memory_engine_expire_at (self, g_get_monotonic_time ());
}

static gint64
memory_count_channels (HeraldEngine *engine)
{
  HeraldMemoryEngine *self = HERALD_MEMORY_ENGINE (engine);
  guint n;

  g_mutex_lock (&self->lock);
  n = g_hash_table_size (self->channels);
  g_mutex_unlock (&self->lock);
  return n;
}

static void
herald_memory_engine_finalize (GObject *object)
{
  HeraldMemoryEngine *self = HERALD_MEMORY_ENGINE (object);

  g_hash_table_unref (self->channels);
  g_free (self->forgotten);
  herald_presence_table_free (self->presence);
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
  engine_class->presence_anonymous = memory_presence_anonymous;
  engine_class->query_presence = memory_query_presence;
  engine_class->channel_occupied = memory_channel_occupied;
  engine_class->channel_vacated = memory_channel_vacated;
  engine_class->count_channels = memory_count_channels;
}

static void
herald_memory_engine_init (HeraldMemoryEngine *self)
{
  g_mutex_init (&self->lock);
  self->channels = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, mem_channel_free);
  g_queue_init (&self->idle);
  self->presence = herald_presence_table_new ();
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
