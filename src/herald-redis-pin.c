/* herald-redis-pin.c: see the header.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "herald-redis-pin.h"

typedef struct
{
  GObject *engine;
  char *channel;
  HeraldRedisChannelRefFunc ref;
} Pin;

static gboolean
unpin (gpointer user_data)
{
  Pin *pin = user_data;

  pin->ref (pin->engine, pin->channel, -1);
  return G_SOURCE_REMOVE;
}

static void
pin_free (gpointer data)
{
  Pin *pin = data;

  g_object_unref (pin->engine);
  g_free (pin->channel);
  g_free (pin);
}

void
herald_redis_pin_channel (GObject *engine, GMainContext *context, const char *channel, guint ms,
                          HeraldRedisChannelRefFunc ref)
{
  Pin *pin = g_new0 (Pin, 1);
  GSource *source = g_timeout_source_new (ms);

  g_return_if_fail (G_IS_OBJECT (engine) && channel != NULL && ref != NULL);

  pin->engine = g_object_ref (engine);
  pin->channel = g_strdup (channel);
  pin->ref = ref;
  ref (engine, channel, +1);
  g_source_set_callback (source, unpin, pin, pin_free);
  g_source_attach (source, context);
  g_source_unref (source);
}
