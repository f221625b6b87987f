/* herald-connection-subs.c: a connection's subscriptions. Most connections
 * hold one: it is kept inline in the connection, an array exists only from
 * the second on.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "herald-connection-private.h"
#include "herald-log.h"

guint
herald_connection_get_n_subscriptions (HeraldConnection *self)
{
  if (self->subs_many)
    return self->subs.many->len;
  return self->subs.one ? 1 : 0;
}

HeraldSubscription *
herald_connection_get_subscription (HeraldConnection *self, guint index)
{
  g_return_val_if_fail (index < herald_connection_get_n_subscriptions (self), NULL);

  return self->subs_many ? self->subs.many->items[index] : self->subs.one;
}

HeraldSubscription *
herald_connection_find_subscription (HeraldConnection *self, const char *channel)
{
  guint n = herald_connection_get_n_subscriptions (self);

  for (guint i = 0; i < n; i++)
    {
      HeraldSubscription *sub = herald_connection_get_subscription (self, i);
      if (g_str_equal (herald_channel_get_name (sub->channel), channel))
        return sub;
    }
  return NULL;
}

/* Most connections hold one subscription: it needs no array. */
static void
subs_add (HeraldConnection *self, HeraldSubscription *sub)
{
  SubscriptionArray *a;

  if (!self->subs_many && self->subs.one == NULL)
    {
      self->subs.one = sub;
      return;
    }
  if (!self->subs_many)
    {
      a = g_malloc (sizeof *a + 4 * sizeof (HeraldSubscription *));
      a->cap = 4;
      a->len = 1;
      a->items[0] = self->subs.one;
      self->subs.many = a;
      self->subs_many = TRUE;
    }
  a = self->subs.many;
  if (a->len == a->cap)
    {
      a->cap *= 2;
      a = g_realloc (a, sizeof *a + a->cap * sizeof (HeraldSubscription *));
      self->subs.many = a;
    }
  a->items[a->len++] = sub;
}

static void
subs_remove (HeraldConnection *self, HeraldSubscription *sub)
{
  SubscriptionArray *a;

  if (!self->subs_many)
    {
      g_return_if_fail (self->subs.one == sub);
      self->subs.one = NULL;
      return;
    }
  a = self->subs.many;
  for (guint i = 0; i < a->len; i++)
    if (a->items[i] == sub)
      {
        a->items[i] = a->items[--a->len];
        break;
      }
  if (a->len == 1)
    {
      self->subs.one = a->items[0];
      self->subs_many = FALSE;
      g_free (a);
    }
}

/* The hub keeps presence and the worker's channel table in step with these
 * (herald-subscribe.c). */
HeraldSubscription *
herald_connection_add_subscription (HeraldConnection *self, HeraldChannel *channel)
{
  HeraldSubscription *sub;

  g_return_val_if_fail (HERALD_IS_CONNECTION (self), NULL);
  g_return_val_if_fail (HERALD_IS_CHANNEL (channel), NULL);

  sub = g_slice_new0 (HeraldSubscription);
  sub->connection = self;
  herald_channel_add (channel, sub);
  subs_add (self, sub);
  herald_log_connection (G_LOG_LEVEL_DEBUG, self->id, herald_channel_get_name (channel), 0, NULL,
                         "connection %s subscribed to %s", self->id,
                         herald_channel_get_name (channel));
  return sub;
}

void
herald_connection_remove_subscription (HeraldConnection *self, HeraldSubscription *subscription)
{
  HeraldChannel *channel = subscription->channel;

  herald_log_connection (G_LOG_LEVEL_DEBUG, self->id, herald_channel_get_name (channel), 0, NULL,
                         "connection %s unsubscribed from %s", self->id,
                         herald_channel_get_name (channel));
  herald_channel_remove (channel, subscription);
  subs_remove (self, subscription);
  g_slice_free (HeraldSubscription, subscription);
}
