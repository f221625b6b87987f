/* herald-hub-signals.c: connection-opened and -closed on their way to the
 * main context. See herald-hub-signals.h.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "herald-hub-signals.h"

typedef struct
{
  char *id;
  char *user_id;
  char *transport;
  guint code;
  char *reason;
  gboolean closed;
} SignalData;

struct _HeraldHubSignals
{
  gpointer hub; /* unowned: owns this */
  GMainContext *context;
  guint opened_signal, closed_signal;
  GMutex lock;
  GQueue queue; /* of SignalData*, in order */
  gboolean scheduled;
};

/* One scheduled emission: keeps the hub (and so this) alive until it runs. */
typedef struct
{
  GObject *hub;
  HeraldHubSignals *self;
} Batch;

static __thread gboolean defer_here, pending_here;

static void
signal_data_free (SignalData *data)
{
  g_free (data->id);
  g_free (data->user_id);
  g_free (data->transport);
  g_free (data->reason);
  g_free (data);
}

static void
batch_free (Batch *batch)
{
  g_object_unref (batch->hub);
  g_free (batch);
}

HeraldHubSignals *
herald_hub_signals_new (gpointer hub, GMainContext *context, guint opened_signal,
                        guint closed_signal)
{
  HeraldHubSignals *self = g_new0 (HeraldHubSignals, 1);

  self->hub = hub;
  self->context = g_main_context_ref (context);
  self->opened_signal = opened_signal;
  self->closed_signal = closed_signal;
  g_mutex_init (&self->lock);
  g_queue_init (&self->queue);
  return self;
}

void
herald_hub_signals_free (HeraldHubSignals *self)
{
  if (self == NULL)
    return;
  g_queue_clear_full (&self->queue, (GDestroyNotify)signal_data_free);
  g_mutex_clear (&self->lock);
  g_main_context_unref (self->context);
  g_free (self);
}

static gboolean
emit_queued (gpointer user_data)
{
  HeraldHubSignals *self = ((Batch *)user_data)->self;
  GQueue batch;
  SignalData *data;

  g_mutex_lock (&self->lock);
  batch = self->queue;
  g_queue_init (&self->queue);
  self->scheduled = FALSE;
  g_mutex_unlock (&self->lock);
  while ((data = g_queue_pop_head (&batch)))
    {
      if (data->closed)
        g_signal_emit (self->hub, self->closed_signal, 0, data->id, data->code, data->reason);
      else
        g_signal_emit (self->hub, self->opened_signal, 0, data->id, data->user_id, data->transport);
      signal_data_free (data);
    }
  return G_SOURCE_REMOVE;
}

static void
schedule (HeraldHubSignals *self)
{
  gboolean now;

  g_mutex_lock (&self->lock);
  now = !self->scheduled && self->queue.length > 0;
  self->scheduled |= now;
  g_mutex_unlock (&self->lock);
  if (now)
    {
      Batch *batch = g_new (Batch, 1);

      batch->hub = g_object_ref (self->hub);
      batch->self = self;
      g_main_context_invoke_full (self->context, G_PRIORITY_DEFAULT, emit_queued, batch,
                                  (GDestroyNotify)batch_free);
    }
}

static void
push (HeraldHubSignals *self, SignalData *data)
{
  g_mutex_lock (&self->lock);
  g_queue_push_tail (&self->queue, data);
  g_mutex_unlock (&self->lock);
  if (defer_here)
    pending_here = TRUE;
  else
    schedule (self);
}

void
herald_hub_signals_opened (HeraldHubSignals *self, const char *id, const char *user_id,
                           const char *transport)
{
  SignalData *data = g_new0 (SignalData, 1);

  data->id = g_strdup (id);
  data->user_id = g_strdup (user_id ? user_id : "");
  data->transport = g_strdup (transport);
  push (self, data);
}

void
herald_hub_signals_closed (HeraldHubSignals *self, const char *id, guint code, const char *reason)
{
  SignalData *data = g_new0 (SignalData, 1);

  data->closed = TRUE;
  data->id = g_strdup (id);
  data->code = code;
  data->reason = g_strdup (reason ? reason : "");
  push (self, data);
}

void
herald_hub_signals_defer (HeraldHubSignals *self, gboolean defer)
{
  herald_hub_signals_flush (self);
  defer_here = defer;
}

void
herald_hub_signals_flush (HeraldHubSignals *self)
{
  if (!pending_here)
    return;
  pending_here = FALSE;
  schedule (self);
}

gboolean
herald_hub_signals_pending (void)
{
  return pending_here;
}
