/* herald-channel.h: one channel's subscribers inside one worker.
 *
 * Each worker keeps its own channel table, so fan-out never takes a lock.
 * Subscriptions are stored in a flat array with swap-remove (each subscription
 * knows its index), so joining and leaving are O(1) at any size.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib-object.h>

G_BEGIN_DECLS

typedef struct _HeraldConnection HeraldConnection;
typedef struct _HeraldChannel HeraldChannel;

/* 32 bytes: one per subscriber, most of an idle subscriber's memory after
 * its connection. */
typedef struct
{
  HeraldConnection *connection; /* unowned: the connection owns its subscriptions */
  HeraldChannel *channel;       /* unowned: the worker's table owns channels */
  guint64 skip_until;           /* offsets ≤ this were already replayed by recovery */
  guint32 expires;              /* subscription token: ends then (loop seconds), 0 = never */
  guint index : 28;             /* position in the channel's array (one worker's subscribers) */
  guint presence : 1;           /* wants join/leave events */
  guint server : 1;             /* made by the server (API, D-Bus): outlives a refresh */
  guint conflate : 1;           /* [namespace] conflate=true when it subscribed */
  guint join_leave : 1;         /* [namespace] join-leave=true when it subscribed */
} HeraldSubscription;

#define HERALD_TYPE_CHANNEL (herald_channel_get_type ())
G_DECLARE_FINAL_TYPE (HeraldChannel, herald_channel, HERALD, CHANNEL, GObject)

HeraldChannel *herald_channel_new (const char *name);
const char *herald_channel_get_name (HeraldChannel *self);
guint herald_channel_get_n_subscribers (HeraldChannel *self);
HeraldSubscription *herald_channel_get_subscriber (HeraldChannel *self, guint index);
void herald_channel_add (HeraldChannel *self, HeraldSubscription *subscription);
void herald_channel_remove (HeraldChannel *self, HeraldSubscription *subscription);

G_END_DECLS
