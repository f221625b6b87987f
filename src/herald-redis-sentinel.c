/* herald-redis-sentinel.c: the master's address, from the sentinels.
 *
 * The sentinel in use is reached through a HeraldRedisLink (a command and a
 * subscription connection with connect timeout and jittered reconnects):
 * `SENTINEL get-master-addr-by-name` on one, `SUBSCRIBE +switch-master` on
 * the other. Whenever the link goes down, or the sentinel does not know the
 * master, the next sentinel of the list is used. The question is asked again
 * every second while connected, so a missed +switch-master (a sentinel
 * restarting mid-failover) costs at most a second. Main context only.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>
#include <glib/gi18n.h>

#include "herald-error.h"
#include "herald-metrics.h"
#include "herald-redis-link.h"
#include "herald-redis-sentinel.h"
#include "herald-redis-source.h"
#include "herald-redis-url.h"

#define ASK_INTERVAL_MS 1000

struct _HeraldRedisSentinel
{
  GPtrArray *addresses; /* HeraldRedisUrl*, the [redis] sentinels */
  guint current;
  char *current_text;
  HeraldRedisUrl url; /* the link's: the current sentinel (password after NOAUTH) */
  char *password;
  char *master_name;
  GMainContext *context;
  HeraldRedisSentinelEvents events;
  gpointer owner;

  HeraldRedisLink *link;
  gboolean answered, subscribed;
  gboolean keep_address; /* the next attempt's address is chosen already */
  GSource *ask_source;
  char *master_host;
  int master_port;
};

static void
use_address (HeraldRedisSentinel *self, guint i)
{
  const HeraldRedisUrl *a = g_ptr_array_index (self->addresses, i);

  self->current = i;
  g_free (self->url.host);
  self->url.host = g_strdup (a->host);
  self->url.port = a->port;
  g_free (self->current_text);
  self->current_text = strchr (a->host, ':') ? g_strdup_printf ("[%s]:%d", a->host, a->port)
                                             : g_strdup_printf ("%s:%d", a->host, a->port);
}

static void
next_sentinel (HeraldRedisSentinel *self)
{
  use_address (self, (self->current + 1) % self->addresses->len);
  /* Each sentinel gets the password only once it asked for it. */
  g_clear_pointer (&self->url.password, g_free);
}

static void
check_up (HeraldRedisSentinel *self)
{
  if (self->answered && self->subscribed)
    herald_redis_link_up (self->link);
}

static void
set_master (HeraldRedisSentinel *self, const char *host, const char *port_text, gboolean switched)
{
  guint64 port;

  if (host == NULL || *host == '\0'
      || !g_ascii_string_to_unsigned (port_text, 10, 1, 65535, &port, NULL))
    {
      g_warning (_ ("Redis Sentinel %s named an unusable master address “%s:%s”"),
                 self->current_text, host ? host : "", port_text ? port_text : "");
      return;
    }
  if (g_strcmp0 (self->master_host, host) == 0 && self->master_port == (int)port)
    return;
  g_free (self->master_host);
  self->master_host = g_strdup (host);
  self->master_port = (int)port;
  self->events.master (self->owner, host, (int)port, switched);
}

/* A reply that is an error: NOAUTH (send the password from now on) or
 * anything else; either way the next attempt starts afresh. */
static void
refused (HeraldRedisSentinel *self, const char *what, const char *error)
{
  g_autofree char *why = g_strdup_printf ("%s: %s", what, error);

  if (g_str_has_prefix (error, "NOAUTH") && self->password && self->url.password == NULL)
    {
      g_debug ("redis: sentinel %s wants a password", self->current_text);
      self->url.password = g_strdup (self->password);
      self->keep_address = TRUE; /* the same one again, with it */
    }
  else
    g_warning (_ ("Redis Sentinel %s refused %s"), self->current_text, why);
  herald_redis_link_fail (self->link, why);
}

static void
on_master_reply (redisAsyncContext *ac, void *r, void *privdata)
{
  HeraldRedisSentinel *self = herald_redis_link_owner (ac);
  redisReply *reply = r;

  if (self == NULL || reply == NULL)
    return;
  if (reply->type == REDIS_REPLY_ERROR)
    {
      refused (self, "SENTINEL get-master-addr-by-name", reply->str);
      return;
    }
  if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2
      || reply->element[0]->type != REDIS_REPLY_STRING
      || reply->element[1]->type != REDIS_REPLY_STRING)
    {
      g_autofree char *why
          = g_strdup_printf (_ ("does not know the master “%s”"), self->master_name);

      g_warning (_ ("Redis Sentinel %s %s"), self->current_text, why);
      herald_redis_link_fail (self->link, why);
      return;
    }
  set_master (self, reply->element[0]->str, reply->element[1]->str, FALSE);
  self->answered = TRUE;
  check_up (self);
}

static void
ask (HeraldRedisSentinel *self)
{
  const char *argv[] = { "SENTINEL", "get-master-addr-by-name", self->master_name };

  herald_redis_link_command (self->link, on_master_reply, NULL, 3, argv, NULL);
}

static gboolean
on_ask_timer (gpointer user_data)
{
  ask (user_data);
  return G_SOURCE_CONTINUE;
}

/* +switch-master: "<name> <old ip> <old port> <new ip> <new port>". */
static void
on_switch (HeraldRedisSentinel *self, const char *text)
{
  g_auto (GStrv) words = g_strsplit (text, " ", -1);

  if (g_strv_length (words) != 5 || !g_str_equal (words[0], self->master_name))
    return;
  g_message (_ ("Redis Sentinel %s: master “%s” switched from %s:%s to %s:%s"), self->current_text,
             words[0], words[1], words[2], words[3], words[4]);
  set_master (self, words[3], words[4], TRUE);
}

static void
on_sub_reply (gpointer owner, redisReply *reply)
{
  HeraldRedisSentinel *self = owner;
  const char *kind;

  if (reply->type == REDIS_REPLY_ERROR)
    {
      refused (self, "SUBSCRIBE +switch-master", reply->str);
      return;
    }
  if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 3
      || reply->element[0]->type != REDIS_REPLY_STRING)
    return;
  kind = reply->element[0]->str;
  if (g_str_equal (kind, "subscribe"))
    {
      self->subscribed = TRUE;
      check_up (self);
    }
  else if (g_str_equal (kind, "message") && reply->element[2]->type == REDIS_REPLY_STRING)
    on_switch (self, reply->element[2]->str);
}

static void
on_connected (gpointer owner)
{
  HeraldRedisSentinel *self = owner;
  const char *subscribe[] = { "SUBSCRIBE", "+switch-master" };

  self->answered = self->subscribed = FALSE;
  ask (self);
  herald_redis_link_subscribe (self->link, 2, subscribe);
  herald_redis_source_clear (&self->ask_source);
  self->ask_source = g_timeout_source_new (ASK_INTERVAL_MS);
  g_source_set_callback (self->ask_source, on_ask_timer, self, NULL);
  g_source_attach (self->ask_source, self->context);
}

static void
on_down (gpointer owner, const char *why)
{
  HeraldRedisSentinel *self = owner;

  herald_redis_source_clear (&self->ask_source);
  /* A sentinel that worked and then went away: say so once; the others
   * are tried quietly until one answers. */
  if (self->answered)
    {
      g_warning (_ ("Redis Sentinel %s lost (%s): trying the next one"), self->current_text, why);
      herald_metrics_count_redis_event (HERALD_REDIS_EVENT_SENTINEL_LOST);
    }
  else
    g_debug ("redis: sentinel %s: %s", self->current_text, why);
  if (!self->keep_address)
    next_sentinel (self);
  self->keep_address = FALSE;
  self->answered = self->subscribed = FALSE;
}

static const HeraldRedisLinkEvents link_events = {
  .connected = on_connected,
  .down = on_down,
  .sub_reply = on_sub_reply,
};

HeraldRedisSentinel *
herald_redis_sentinel_new (const char *const *sentinels, const char *master_name,
                           const char *password, GMainContext *context,
                           const HeraldRedisSentinelEvents *events, gpointer owner, GError **error)
{
  g_autoptr (GPtrArray) addresses
      = g_ptr_array_new_with_free_func ((GDestroyNotify)herald_redis_url_free);
  HeraldRedisSentinel *self;

  g_return_val_if_fail (sentinels != NULL && master_name != NULL, NULL);
  for (guint i = 0; sentinels[i]; i++)
    {
      g_autofree char *text = g_strconcat ("redis://", sentinels[i], NULL);
      HeraldRedisUrl *url = herald_redis_url_parse (text, error);

      if (url == NULL)
        {
          g_prefix_error (error, "“%s”: ", sentinels[i]);
          return NULL;
        }
      g_ptr_array_add (addresses, url);
    }
  if (addresses->len == 0)
    {
      g_set_error (error, HERALD_ERROR, HERALD_ERROR_INVALID_ARGUMENT, _ ("no sentinel given"));
      return NULL;
    }
  self = g_new0 (HeraldRedisSentinel, 1);
  self->addresses = g_steal_pointer (&addresses);
  self->master_name = g_strdup (master_name);
  self->password = g_strdup (password);
  self->context = g_main_context_ref (context);
  self->events = *events;
  self->owner = owner;
  use_address (self, 0);
  self->link = herald_redis_link_new (&self->url, context, &link_events, self);
  return self;
}

void
herald_redis_sentinel_start (HeraldRedisSentinel *self)
{
  herald_redis_link_connect (self->link);
}

void
herald_redis_sentinel_ask (HeraldRedisSentinel *self)
{
  if (self->answered)
    ask (self);
}

const char *
herald_redis_sentinel_current (HeraldRedisSentinel *self)
{
  return self->current_text;
}

void
herald_redis_sentinel_free (HeraldRedisSentinel *self)
{
  if (self == NULL)
    return;
  herald_redis_link_free (self->link);
  herald_redis_source_clear (&self->ask_source);
  g_ptr_array_unref (self->addresses);
  g_free (self->url.host);
  g_free (self->url.password);
  g_free (self->current_text);
  g_free (self->password);
  g_free (self->master_name);
  g_free (self->master_host);
  g_main_context_unref (self->context);
  g_free (self);
}
