/* herald-hub-signals.h: connection-opened and -closed on their way to the
 * main context.
 *
 * The hub's connection signals are emitted in its main context (the D-Bus
 * adapter re-emits them) but happen in the workers. Each is queued in order;
 * the main context is woken once per batch, not once per connection (an
 * accept storm cost a GSource and an eventfd write per connection). A
 * worker's front defers the wake-up to the end of its loop iteration.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib-object.h>

G_BEGIN_DECLS

typedef struct _HeraldHubSignals HeraldHubSignals;

/* @hub (unowned: owns this) emits @opened_signal (id, user id, transport)
 * and @closed_signal (id, code, reason) in @context. */
HeraldHubSignals *herald_hub_signals_new (gpointer hub, GMainContext *context, guint opened_signal,
                                          guint closed_signal);
void herald_hub_signals_free (HeraldHubSignals *self);

/* Any thread. */
void herald_hub_signals_opened (HeraldHubSignals *self, const char *id, const char *user_id,
                                const char *transport);
void herald_hub_signals_closed (HeraldHubSignals *self, const char *id, guint code,
                                const char *reason);

/* The calling thread's signals wake the main context at flush() only. */
void herald_hub_signals_defer (HeraldHubSignals *self, gboolean defer);
void herald_hub_signals_flush (HeraldHubSignals *self);
/* Whether the calling thread queued signals since its last flush(). */
gboolean herald_hub_signals_pending (void);

G_END_DECLS
