/* herald-channel.c
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "herald-channel.h"

struct _HeraldChannel
{
  GObject parent_instance;
  char *name;
  GPtrArray *subscribers; /* of HeraldSubscription*, unowned */
};

G_DEFINE_FINAL_TYPE (HeraldChannel, herald_channel, G_TYPE_OBJECT)

enum
{
  PROP_0,
  PROP_NAME,
  N_PROPS
};
static GParamSpec *props[N_PROPS];

static void
herald_channel_finalize (GObject *object)
{
  HeraldChannel *self = HERALD_CHANNEL (object);

  g_free (self->name);
  g_ptr_array_unref (self->subscribers);
  G_OBJECT_CLASS (herald_channel_parent_class)->finalize (object);
}

static void
herald_channel_set_property (GObject *object, guint prop_id, const GValue *value, GParamSpec *pspec)
{
  HeraldChannel *self = HERALD_CHANNEL (object);

  switch (prop_id)
    {
    case PROP_NAME:
      self->name = g_value_dup_string (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
herald_channel_get_property (GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
  HeraldChannel *self = HERALD_CHANNEL (object);

  switch (prop_id)
    {
    case PROP_NAME:
      g_value_set_string (value, self->name);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
herald_channel_class_init (HeraldChannelClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->finalize = herald_channel_finalize;
  object_class->set_property = herald_channel_set_property;
  object_class->get_property = herald_channel_get_property;
  props[PROP_NAME]
      = g_param_spec_string ("name", NULL, NULL, NULL,
                             G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties (object_class, N_PROPS, props);
}

static void
herald_channel_init (HeraldChannel *self)
{
  self->subscribers = g_ptr_array_new ();
}

HeraldChannel *
herald_channel_new (const char *name)
{
  return g_object_new (HERALD_TYPE_CHANNEL, "name", name, NULL);
}

const char *
herald_channel_get_name (HeraldChannel *self)
{
  return self->name;
}

guint
herald_channel_get_n_subscribers (HeraldChannel *self)
{
  return self->subscribers->len;
}

HeraldSubscription *
herald_channel_get_subscriber (HeraldChannel *self, guint index)
{
  return g_ptr_array_index (self->subscribers, index);
}

void
herald_channel_add (HeraldChannel *self, HeraldSubscription *subscription)
{
  /* The index has 28 bits: 268 million subscribers of one channel in one
   * worker, 8.6 GB of subscriptions alone, far beyond max-connections. */
  subscription->channel = self;
  subscription->index = self->subscribers->len;
  g_ptr_array_add (self->subscribers, subscription);
}

void
herald_channel_remove (HeraldChannel *self, HeraldSubscription *subscription)
{
  guint index = subscription->index;
  guint last = self->subscribers->len - 1;

  g_return_if_fail (index < self->subscribers->len
                    && g_ptr_array_index (self->subscribers, index) == subscription);

  if (index != last)
    {
      HeraldSubscription *moved = g_ptr_array_index (self->subscribers, last);
      self->subscribers->pdata[index] = moved;
      moved->index = index;
    }
  g_ptr_array_set_size (self->subscribers, last);
  subscription->channel = NULL;
}
