/* herald-dbus.c: the D-Bus control plane (io.github.herald.Herald1).
 *
 * The interface is registered with our own GDBusInterfaceVTable on the
 * introspection data gdbus-codegen generates from
 * data/io.github.herald.Herald1.xml, rather than through the generated
 * skeleton: that way a property write that HeraldConfig rejects returns a
 * named error, and no value is mirrored in a second object.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>
#include <glib/gi18n.h>

#include "herald-dbus.h"
#include "herald-dbus-generated.h"
#include "herald-names.h"

#define CLOSE_REASON_MAX 123
/* PropertiesChanged for ConnectionCount and SuppressedSignals is sent at most
 * this often, so a connection storm cannot flood the bus through it either. */
#define COUNTERS_INTERVAL_US G_USEC_PER_SEC

typedef struct
{
  double tokens;
  gint64 last_us;
} TokenBucket;

enum
{
  KIND_OPENED,
  KIND_CLOSED,
  N_KINDS
};

struct _HeraldDbus
{
  GObject parent_instance;

  HeraldHub *hub;
  HeraldConfig *config;

  GDBusConnection *connection;
  guint registration_id;
  guint owner_id;
  gboolean exported_by_owner;
  gboolean name_owned;
  gboolean replaced; /* the name was taken over by another owner (--replace) */
  gulong opened_handler;
  gulong closed_handler;
  gulong config_handler;

  TokenBucket buckets[N_KINDS];
  guint64 suppressed;
  guint64 announced_suppressed;
  guint announced_count;
  gint64 last_counters_us;
  guint counters_source;
};

enum
{
  SIGNAL_READY,
  SIGNAL_NAME_LOST,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

G_DEFINE_FINAL_TYPE (HeraldDbus, herald_dbus, G_TYPE_OBJECT)

/* The read-write properties, all backed by HeraldConfig limits. */
typedef struct
{
  const char *dbus_name;
  const char *config_property;
  guint (*get) (HeraldConfig *config);
  gboolean (*set) (HeraldConfig *config, guint value, GError **error);
} LimitProperty;

static const LimitProperty limit_properties[] = {
  { "HeartbeatInterval", "heartbeat-interval", herald_config_get_heartbeat_interval,
    herald_config_set_heartbeat_interval },
  { "ConnectionTimeout", "connection-timeout", herald_config_get_connection_timeout,
    herald_config_set_connection_timeout },
  { "MaxConnections", "max-connections", herald_config_get_max_connections,
    herald_config_set_max_connections },
  { "MaxMessageSize", "max-message-size", herald_config_get_max_message_size,
    herald_config_set_max_message_size },
  { "SendQueueMaxBytes", "send-queue-max-bytes", herald_config_get_send_queue_max_bytes,
    herald_config_set_send_queue_max_bytes },
};

static const LimitProperty *
find_limit_property (const char *dbus_name, const char *config_property)
{
  for (gsize i = 0; i < G_N_ELEMENTS (limit_properties); i++)
    {
      if (dbus_name != NULL && g_str_equal (limit_properties[i].dbus_name, dbus_name))
        return &limit_properties[i];
      if (config_property != NULL
          && g_str_equal (limit_properties[i].config_property, config_property))
        return &limit_properties[i];
    }
  return NULL;
}

/* --- Errors --- */

static void
register_error_domain (void)
{
  static const struct
  {
    HeraldError code;
    const char *name;
  } entries[] = {
    { HERALD_ERROR_FAILED, HERALD_DBUS_INTERFACE ".Error.Failed" },
    { HERALD_ERROR_INVALID_ARGUMENT, HERALD_DBUS_INTERFACE ".Error.InvalidArgument" },
    { HERALD_ERROR_NOT_FOUND, HERALD_DBUS_INTERFACE ".Error.NotFound" },
    { HERALD_ERROR_LIMIT_EXCEEDED, HERALD_DBUS_INTERFACE ".Error.LimitExceeded" },
    { HERALD_ERROR_FORBIDDEN, HERALD_DBUS_INTERFACE ".Error.Forbidden" },
    { HERALD_ERROR_UNAVAILABLE, HERALD_DBUS_INTERFACE ".Error.Unavailable" },
    { HERALD_ERROR_IN_USE, HERALD_DBUS_INTERFACE ".Error.InUse" },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (entries); i++)
    g_dbus_error_register_error (HERALD_ERROR, entries[i].code, entries[i].name);
}

/* Rewrites @error into the HERALD_ERROR domain, so that clients always see
 * one of our named errors (a rejected config value is a bad argument). */
static void
to_herald_error (GError *error)
{
  if (error->domain == HERALD_ERROR || error->domain == G_DBUS_ERROR)
    return;
  if (error->domain == HERALD_CONFIG_ERROR && error->code == HERALD_CONFIG_ERROR_INVALID)
    error->code = HERALD_ERROR_INVALID_ARGUMENT;
  else
    error->code = HERALD_ERROR_FAILED;
  error->domain = HERALD_ERROR;
}

static void
return_error (GDBusMethodInvocation *invocation, GError *error)
{
  to_herald_error (error);
  g_debug ("D-Bus %s from %s failed: %s", g_dbus_method_invocation_get_method_name (invocation),
           g_dbus_method_invocation_get_sender (invocation), error->message);
  g_dbus_method_invocation_return_gerror (invocation, error);
}

static void return_invalid (GDBusMethodInvocation *invocation, const char *format, ...)
    G_GNUC_PRINTF (2, 3);

static void
return_invalid (GDBusMethodInvocation *invocation, const char *format, ...)
{
  g_autoptr (GError) error = NULL;
  va_list args;

  va_start (args, format);
  error = g_error_new_valist (HERALD_ERROR, HERALD_ERROR_INVALID_ARGUMENT, format, args);
  va_end (args);
  return_error (invocation, error);
}

/* --- Validation and conversion --- */

static gboolean
check_channel (GDBusMethodInvocation *invocation, const char *channel)
{
  if (herald_channel_name_is_valid (channel))
    return TRUE;
  return_invalid (invocation,
                  _ ("Invalid channel name “%s”: expected 1–255 bytes of [A-Za-z0-9_.:@/#,-]"),
                  channel);
  return FALSE;
}

static gboolean
check_connection_id (GDBusMethodInvocation *invocation, const char *id)
{
  if (herald_connection_id_is_valid (id))
    return TRUE;
  return_invalid (invocation,
                  _ ("Invalid connection id “%s”: expected 1–64 bytes of [A-Za-z0-9_-]"), id);
  return FALSE;
}

/* D-Bus strings must be valid UTF-8 and cannot be NULL. */
static GVariant *
new_string (const char *text)
{
  if (text == NULL)
    return g_variant_new_string ("");
  if (!g_utf8_validate (text, -1, NULL))
    return g_variant_new_take_string (g_utf8_make_valid (text, -1));
  return g_variant_new_string (text);
}

static GVariant *
connection_info_to_variant (const HeraldConnectionInfo *info)
{
  GVariantBuilder builder;
  GVariantBuilder channels;

  g_variant_builder_init (&channels, G_VARIANT_TYPE_STRING_ARRAY);
  for (gsize i = 0; info->channels != NULL && info->channels[i] != NULL; i++)
    g_variant_builder_add_value (&channels, new_string (info->channels[i]));

  g_variant_builder_init (&builder, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_add (&builder, "{sv}", "id", new_string (info->id));
  g_variant_builder_add (&builder, "{sv}", "user_id", new_string (info->user_id));
  g_variant_builder_add (&builder, "{sv}", "transport",
                         g_variant_new_string (herald_transport_to_string (info->transport)));
  g_variant_builder_add (&builder, "{sv}", "remote_address", new_string (info->remote_address));
  g_variant_builder_add (&builder, "{sv}", "connected_at",
                         g_variant_new_int64 (info->connected_at));
  g_variant_builder_add (&builder, "{sv}", "channels", g_variant_builder_end (&channels));
  g_variant_builder_add (&builder, "{sv}", "messages_sent",
                         g_variant_new_uint64 (info->messages_sent));
  g_variant_builder_add (&builder, "{sv}", "messages_received",
                         g_variant_new_uint64 (info->messages_received));
  g_variant_builder_add (&builder, "{sv}", "bytes_queued",
                         g_variant_new_uint64 (info->bytes_queued));
  return g_variant_builder_end (&builder);
}

static char *
dup_engine_description (HeraldDbus *self)
{
  HeraldEngine *engine = herald_hub_get_engine (self->hub);
  g_autofree char *state = herald_engine_dup_state (engine);
  const char *name = herald_engine_get_name (engine);

  if (state == NULL || g_str_equal (state, "ok"))
    return g_strdup (name);
  /* The Redis engines' states already say "degraded: why". */
  if (g_str_has_prefix (state, "degraded: "))
    return g_strdup_printf ("%s (%s)", name, state);
  return g_strdup_printf ("%s (degraded: %s)", name, state);
}

/* --- Methods --- */

static void
on_published (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GDBusMethodInvocation) invocation = user_data;
  g_autoptr (GError) error = NULL;
  guint64 offset = 0;

  if (!herald_hub_publish_finish (HERALD_HUB (source), result, &offset, &error))
    return_error (g_steal_pointer (&invocation), error);
  else
    g_dbus_method_invocation_return_value (g_steal_pointer (&invocation),
                                           g_variant_new ("(t)", offset));
}

static void
handle_publish (HeraldDbus *self, GVariant *parameters, GDBusMethodInvocation *invocation)
{
  const char *channel, *data;

  g_variant_get (parameters, "(&s&s)", &channel, &data);
  if (!check_channel (invocation, channel))
    return;
  /* The hub validates and normalises the JSON and checks its size. */
  herald_hub_publish_async (self->hub, channel, NULL, data, NULL, on_published, invocation);
}

static void
handle_broadcast (HeraldDbus *self, GVariant *parameters, GDBusMethodInvocation *invocation)
{
  g_autoptr (GError) error = NULL;
  const char *data;
  guint delivered = 0;

  g_variant_get (parameters, "(&s)", &data);
  if (!herald_hub_broadcast (self->hub, data, &delivered, &error))
    return_error (invocation, error);
  else
    g_dbus_method_invocation_return_value (invocation, g_variant_new ("(u)", delivered));
}

static void
handle_send_to_user (HeraldDbus *self, GVariant *parameters, GDBusMethodInvocation *invocation)
{
  g_autoptr (GError) error = NULL;
  const char *user_id, *data;
  guint delivered = 0;

  g_variant_get (parameters, "(&s&s)", &user_id, &data);
  if (*user_id == '\0')
    {
      return_invalid (invocation, _ ("The user id must not be empty"));
      return;
    }
  if (!herald_hub_send_to_user (self->hub, user_id, data, &delivered, &error))
    return_error (invocation, error);
  else
    g_dbus_method_invocation_return_value (invocation, g_variant_new ("(u)", delivered));
}

static void
handle_send_to_connection (HeraldDbus *self, GVariant *parameters,
                           GDBusMethodInvocation *invocation)
{
  g_autoptr (GError) error = NULL;
  const char *id, *data;

  g_variant_get (parameters, "(&s&s)", &id, &data);
  if (!check_connection_id (invocation, id))
    return;
  if (!herald_hub_send_to_connection (self->hub, id, data, &error))
    return_error (invocation, error);
  else
    g_dbus_method_invocation_return_value (invocation, NULL);
}

static void
on_connections_listed (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GDBusMethodInvocation) invocation = user_data;
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) list = NULL;
  GVariantBuilder builder;

  list = herald_hub_list_connections_finish (HERALD_HUB (source), result, &error);
  if (list == NULL)
    {
      return_error (g_steal_pointer (&invocation), error);
      return;
    }
  g_variant_builder_init (&builder, G_VARIANT_TYPE ("aa{sv}"));
  for (guint i = 0; i < list->len; i++)
    g_variant_builder_add_value (&builder,
                                 connection_info_to_variant (g_ptr_array_index (list, i)));
  g_dbus_method_invocation_return_value (g_steal_pointer (&invocation),
                                         g_variant_new ("(aa{sv})", &builder));
}

static void
handle_list_connections (HeraldDbus *self, GVariant *parameters, GDBusMethodInvocation *invocation)
{
  herald_hub_list_connections_async (self->hub, on_connections_listed, invocation);
}

static void
on_connection_got (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GDBusMethodInvocation) invocation = user_data;
  g_autoptr (GError) error = NULL;
  g_autoptr (HeraldConnectionInfo) info = NULL;

  info = herald_hub_get_connection_finish (HERALD_HUB (source), result, &error);
  if (info == NULL)
    return_error (g_steal_pointer (&invocation), error);
  else
    g_dbus_method_invocation_return_value (
        g_steal_pointer (&invocation),
        g_variant_new_tuple ((GVariant *[]){ connection_info_to_variant (info) }, 1));
}

static void
handle_get_connection (HeraldDbus *self, GVariant *parameters, GDBusMethodInvocation *invocation)
{
  const char *id;

  g_variant_get (parameters, "(&s)", &id);
  if (!check_connection_id (invocation, id))
    return;
  herald_hub_get_connection_async (self->hub, id, on_connection_got, invocation);
}

static void
handle_close_connection (HeraldDbus *self, GVariant *parameters, GDBusMethodInvocation *invocation)
{
  g_autoptr (GError) error = NULL;
  const char *id, *reason;
  guint16 code;

  g_variant_get (parameters, "(&sq&s)", &id, &code, &reason);
  if (!check_connection_id (invocation, id))
    return;
  if (code != 1000 && (code < 3000 || code > 4999))
    {
      return_invalid (invocation, _ ("Invalid close code %u: expected 1000 or 3000–4999"), code);
      return;
    }
  if (strlen (reason) > CLOSE_REASON_MAX)
    {
      return_invalid (invocation, _ ("The close reason is longer than %u bytes"), CLOSE_REASON_MAX);
      return;
    }
  if (!herald_hub_close_connection (self->hub, id, code, reason, &error))
    return_error (invocation, error);
  else
    g_dbus_method_invocation_return_value (invocation, NULL);
}

static void
on_channels_listed (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GDBusMethodInvocation) invocation = user_data;
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) list = NULL;
  GVariantBuilder builder;

  list = herald_hub_list_channels_finish (HERALD_HUB (source), result, &error);
  if (list == NULL)
    {
      return_error (g_steal_pointer (&invocation), error);
      return;
    }
  g_variant_builder_init (&builder, G_VARIANT_TYPE ("a(su)"));
  for (guint i = 0; i < list->len; i++)
    {
      const HeraldChannelInfo *channel = g_ptr_array_index (list, i);

      g_variant_builder_add (&builder, "(@su)", new_string (channel->name), channel->subscribers);
    }
  g_dbus_method_invocation_return_value (g_steal_pointer (&invocation),
                                         g_variant_new ("(a(su))", &builder));
}

static void
handle_list_channels (HeraldDbus *self, GVariant *parameters, GDBusMethodInvocation *invocation)
{
  herald_hub_list_channels_async (self->hub, on_channels_listed, invocation);
}

static void
on_presence_stats (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GDBusMethodInvocation) invocation = user_data;
  g_autoptr (GError) error = NULL;
  g_autoptr (HeraldPresence) presence = NULL;

  presence = herald_hub_get_presence_finish (HERALD_HUB (source), result, &error);
  if (presence == NULL)
    return_error (g_steal_pointer (&invocation), error);
  else
    g_dbus_method_invocation_return_value (
        g_steal_pointer (&invocation),
        g_variant_new ("(uu)", presence->n_users, presence->connections));
}

/* Presence at scale: the counts, constant time (presence=false: Forbidden). */
static void
handle_presence_stats (HeraldDbus *self, GVariant *parameters, GDBusMethodInvocation *invocation)
{
  const char *channel;

  g_variant_get (parameters, "(&s)", &channel);
  if (!check_channel (invocation, channel))
    return;
  if (!herald_config_namespace_for (herald_hub_get_config (self->hub), channel)->presence)
    {
      g_autoptr (GError) error = g_error_new_literal (HERALD_ERROR, HERALD_ERROR_FORBIDDEN,
                                                      _ ("Presence is off for this namespace"));
      return_error (invocation, error);
      return;
    }
  herald_hub_get_presence_async (self->hub, channel, TRUE, 0, NULL, on_presence_stats, invocation);
}

static void
on_subscribe_user (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GDBusMethodInvocation) invocation = user_data;
  g_autoptr (GError) error = NULL;
  guint connections = 0;

  if (!herald_hub_subscribe_user_finish (HERALD_HUB (source), result, &connections, &error))
    return_error (g_steal_pointer (&invocation), error);
  else
    g_dbus_method_invocation_return_value (g_steal_pointer (&invocation),
                                           g_variant_new ("(u)", connections));
}

/* Subscriptions decided by the server: every connection of the user, on
 * every node; the answer counts them all (the engine may ask Redis). */
static void
handle_subscribe_user (HeraldDbus *self, GVariant *parameters, GDBusMethodInvocation *invocation)
{
  gboolean subscribe
      = g_str_equal (g_dbus_method_invocation_get_method_name (invocation), "SubscribeUser");
  const char *user_id, *channel;

  g_variant_get (parameters, "(&s&s)", &user_id, &channel);
  if (*user_id == '\0')
    {
      return_invalid (invocation, _ ("The user id must not be empty"));
      return;
    }
  if (!check_channel (invocation, channel))
    return;
  herald_hub_subscribe_user_async (self->hub, user_id, channel, subscribe, on_subscribe_user,
                                   invocation);
}

typedef void (*MethodHandler) (HeraldDbus *self, GVariant *parameters,
                               GDBusMethodInvocation *invocation);

static const struct
{
  const char *name;
  MethodHandler handler;
} methods[] = {
  { "Publish", handle_publish },
  { "Broadcast", handle_broadcast },
  { "SendToUser", handle_send_to_user },
  { "SendToConnection", handle_send_to_connection },
  { "ListConnections", handle_list_connections },
  { "GetConnection", handle_get_connection },
  { "CloseConnection", handle_close_connection },
  { "ListChannels", handle_list_channels },
  { "PresenceStats", handle_presence_stats },
  { "SubscribeUser", handle_subscribe_user },
  { "UnsubscribeUser", handle_subscribe_user },
};

/* @invocation is ours: every path hands it to a return function, now or
 * when the hub answers. */
static void
method_call (GDBusConnection *connection, const char *sender, const char *object_path,
             const char *interface_name, const char *method_name, GVariant *parameters,
             GDBusMethodInvocation *invocation, gpointer user_data)
{
  HeraldDbus *self = user_data;

  g_debug ("D-Bus call %s from %s", method_name, sender);
  for (gsize i = 0; i < G_N_ELEMENTS (methods); i++)
    {
      if (g_str_equal (methods[i].name, method_name))
        {
          methods[i].handler (self, parameters, invocation);
          return;
        }
    }
  /* GDBus checks the method against the introspection data first. */
  g_dbus_method_invocation_return_error (invocation, G_DBUS_ERROR, G_DBUS_ERROR_UNKNOWN_METHOD,
                                         _ ("Unknown method %s"), method_name);
}

/* --- Properties --- */

static GVariant *
get_property (GDBusConnection *connection, const char *sender, const char *object_path,
              const char *interface_name, const char *property_name, GError **error,
              gpointer user_data)
{
  HeraldDbus *self = user_data;
  const LimitProperty *limit = find_limit_property (property_name, NULL);

  if (limit != NULL)
    return g_variant_new_uint32 (limit->get (self->config));
  if (g_str_equal (property_name, "ConnectionCount"))
    return g_variant_new_uint32 (herald_hub_get_connection_count (self->hub));
  if (g_str_equal (property_name, "Version"))
    return g_variant_new_string (PACKAGE_VERSION);
  if (g_str_equal (property_name, "Engine"))
    return g_variant_new_take_string (dup_engine_description (self));
  if (g_str_equal (property_name, "NodeId"))
    return new_string (herald_hub_get_node_id (self->hub));
  if (g_str_equal (property_name, "SuppressedSignals"))
    return g_variant_new_uint64 (self->suppressed);

  g_set_error (error, G_DBUS_ERROR, G_DBUS_ERROR_UNKNOWN_PROPERTY, _ ("Unknown property %s"),
               property_name);
  return NULL;
}

/* GDBus has already checked that the property exists, is writable and
 * that @value has its type. PropertiesChanged is sent by on_config_notify(),
 * for writes from here and from a SIGHUP reload alike. */
static gboolean
set_property (GDBusConnection *connection, const char *sender, const char *object_path,
              const char *interface_name, const char *property_name, GVariant *value,
              GError **error, gpointer user_data)
{
  HeraldDbus *self = user_data;
  const LimitProperty *limit = find_limit_property (property_name, NULL);

  g_debug ("D-Bus set %s from %s", property_name, sender);
  if (limit == NULL)
    {
      g_set_error (error, G_DBUS_ERROR, G_DBUS_ERROR_PROPERTY_READ_ONLY,
                   _ ("Property %s is read-only"), property_name);
      return FALSE;
    }
  if (!limit->set (self->config, g_variant_get_uint32 (value), error))
    {
      to_herald_error (*error);
      g_debug ("D-Bus set %s from %s failed: %s", property_name, sender, (*error)->message);
      return FALSE;
    }
  return TRUE;
}

static const GDBusInterfaceVTable vtable = {
  .method_call = method_call,
  .get_property = get_property,
  .set_property = set_property,
};

static void
emit_properties_changed (HeraldDbus *self, GVariantBuilder *changed)
{
  g_autoptr (GError) error = NULL;

  if (!g_dbus_connection_emit_signal (
          self->connection, NULL, HERALD_DBUS_PATH, "org.freedesktop.DBus.Properties",
          "PropertiesChanged", g_variant_new ("(sa{sv}as)", HERALD_DBUS_INTERFACE, changed, NULL),
          &error))
    g_debug ("Cannot emit PropertiesChanged: %s", error->message);
}

static void
on_config_notify (GObject *config, GParamSpec *pspec, gpointer user_data)
{
  HeraldDbus *self = user_data;
  const LimitProperty *limit = find_limit_property (NULL, pspec->name);
  GVariantBuilder changed;

  if (limit == NULL)
    return;
  g_variant_builder_init (&changed, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_add (&changed, "{sv}", limit->dbus_name,
                         g_variant_new_uint32 (limit->get (self->config)));
  emit_properties_changed (self, &changed);
}

/* --- Connection signals, rate-limited --- */

static gboolean
flush_counters (gpointer user_data)
{
  HeraldDbus *self = user_data;
  guint count = herald_hub_get_connection_count (self->hub);
  GVariantBuilder changed;
  gboolean any = FALSE;

  self->counters_source = 0;
  self->last_counters_us = g_get_monotonic_time ();

  g_variant_builder_init (&changed, G_VARIANT_TYPE_VARDICT);
  if (count != self->announced_count)
    {
      g_variant_builder_add (&changed, "{sv}", "ConnectionCount", g_variant_new_uint32 (count));
      self->announced_count = count;
      any = TRUE;
    }
  if (self->suppressed != self->announced_suppressed)
    {
      g_variant_builder_add (&changed, "{sv}", "SuppressedSignals",
                             g_variant_new_uint64 (self->suppressed));
      self->announced_suppressed = self->suppressed;
      any = TRUE;
    }
  if (any)
    emit_properties_changed (self, &changed);
  else
    g_variant_builder_clear (&changed);
  return G_SOURCE_REMOVE;
}

/* Announces the counters now if the last announcement is a second old,
 * else once that second is over. */
static void
schedule_counters (HeraldDbus *self)
{
  gint64 wait_us;

  if (self->counters_source != 0)
    return;
  wait_us = self->last_counters_us + COUNTERS_INTERVAL_US - g_get_monotonic_time ();
  if (wait_us <= 0)
    self->counters_source = g_idle_add (flush_counters, self);
  else
    self->counters_source = g_timeout_add ((guint)(wait_us / 1000) + 1, flush_counters, self);
  g_source_set_name_by_id (self->counters_source, "[herald] D-Bus counters");
}

static gboolean
bucket_take (TokenBucket *bucket)
{
  gint64 now = g_get_monotonic_time ();

  bucket->tokens += (double)(now - bucket->last_us) * HERALD_DBUS_SIGNAL_RATE / G_USEC_PER_SEC;
  bucket->tokens = MIN (bucket->tokens, HERALD_DBUS_SIGNAL_RATE);
  bucket->last_us = now;
  if (bucket->tokens < 1.0)
    return FALSE;
  bucket->tokens -= 1.0;
  return TRUE;
}

static void
emit_connection_signal (HeraldDbus *self, int kind, const char *name, GVariant *parameters)
{
  g_autoptr (GVariant) owned = g_variant_ref_sink (parameters);
  g_autoptr (GError) error = NULL;

  schedule_counters (self);
  if (!bucket_take (&self->buckets[kind]))
    {
      self->suppressed++;
      g_debug ("D-Bus %s suppressed by the rate limit (%" G_GUINT64_FORMAT " so far)", name,
               self->suppressed);
      return;
    }
  if (!g_dbus_connection_emit_signal (self->connection, NULL, HERALD_DBUS_PATH,
                                      HERALD_DBUS_INTERFACE, name, owned, &error))
    g_debug ("Cannot emit %s: %s", name, error->message);
}

static void
on_connection_opened (HeraldHub *hub, const char *id, const char *user_id, const char *transport,
                      gpointer user_data)
{
  emit_connection_signal (
      user_data, KIND_OPENED, "ConnectionOpened",
      g_variant_new ("(@s@s@s)", new_string (id), new_string (user_id), new_string (transport)));
}

static void
on_connection_closed (HeraldHub *hub, const char *id, guint code, const char *reason,
                      gpointer user_data)
{
  emit_connection_signal (
      user_data, KIND_CLOSED, "ConnectionClosed",
      g_variant_new ("(@sq@s)", new_string (id), (guint16)code, new_string (reason)));
}

/* --- Export --- */

/**
 * herald_dbus_export:
 * @self: a #HeraldDbus
 * @connection: the bus connection to export on
 * @error: return location for a #GError
 *
 * Exports the io.github.herald.Herald1 interface at /io/github/herald/Herald1
 * on @connection and starts relaying the hub's connection events as
 * signals. Owning the bus name is separate (herald_dbus_own_name() does
 * both; tests export on a private bus without a name).
 *
 * Returns: %TRUE on success; %FALSE with G_IO_ERROR_EXISTS when already
 *   exported, or the error of g_dbus_connection_register_object()
 */
gboolean
herald_dbus_export (HeraldDbus *self, GDBusConnection *connection, GError **error)
{
  guint id;

  g_return_val_if_fail (HERALD_IS_DBUS (self), FALSE);
  g_return_val_if_fail (G_IS_DBUS_CONNECTION (connection), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (self->registration_id != 0)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_EXISTS, _ ("Already exported on D-Bus"));
      return FALSE;
    }
  id = g_dbus_connection_register_object (connection, HERALD_DBUS_PATH,
                                          herald_dbus_herald1_interface_info (), &vtable, self,
                                          NULL, error);
  if (id == 0)
    return FALSE;

  self->registration_id = id;
  self->connection = g_object_ref (connection);
  self->announced_count = herald_hub_get_connection_count (self->hub);
  self->announced_suppressed = self->suppressed;
  for (int i = 0; i < N_KINDS; i++)
    {
      self->buckets[i].tokens = HERALD_DBUS_SIGNAL_RATE;
      self->buckets[i].last_us = g_get_monotonic_time ();
    }
  self->opened_handler
      = g_signal_connect (self->hub, "connection-opened", G_CALLBACK (on_connection_opened), self);
  self->closed_handler
      = g_signal_connect (self->hub, "connection-closed", G_CALLBACK (on_connection_closed), self);
  self->config_handler
      = g_signal_connect (self->config, "notify", G_CALLBACK (on_config_notify), self);
  g_debug ("Exported %s on D-Bus at %s", HERALD_DBUS_INTERFACE, HERALD_DBUS_PATH);
  return TRUE;
}

/**
 * herald_dbus_unexport:
 * @self: a #HeraldDbus
 *
 * Releases the bus name if herald_dbus_own_name() took it, removes the
 * object from the bus and stops relaying signals. Safe to call when not
 * exported.
 */
void
herald_dbus_unexport (HeraldDbus *self)
{
  g_return_if_fail (HERALD_IS_DBUS (self));

  if (self->owner_id != 0)
    {
      g_bus_unown_name (self->owner_id);
      self->owner_id = 0;
      self->exported_by_owner = FALSE;
      self->name_owned = FALSE;
    }
  g_clear_handle_id (&self->counters_source, g_source_remove);
  g_clear_signal_handler (&self->opened_handler, self->hub);
  g_clear_signal_handler (&self->closed_handler, self->hub);
  g_clear_signal_handler (&self->config_handler, self->config);
  if (self->registration_id != 0)
    {
      g_dbus_connection_unregister_object (self->connection, self->registration_id);
      self->registration_id = 0;
    }
  g_clear_object (&self->connection);
}

/* g_bus_own_name() may outlive us (see on_name_lost()), so its callbacks
 * find us through a weak reference. */
static GWeakRef *
owner_data_new (HeraldDbus *self)
{
  GWeakRef *ref = g_new0 (GWeakRef, 1);

  g_weak_ref_init (ref, self);
  return ref;
}

static void
owner_data_free (gpointer data)
{
  g_weak_ref_clear (data);
  g_free (data);
}

static void
on_bus_acquired (GDBusConnection *connection, const char *name, gpointer user_data)
{
  g_autoptr (HeraldDbus) self = g_weak_ref_get (user_data);
  g_autoptr (GError) error = NULL;

  if (self == NULL)
    return;
  /* Export before the name is ours, so no call can find the name without
   * the object. */
  if (!herald_dbus_export (self, connection, &error))
    g_warning (_ ("Cannot export the D-Bus interface: %s"), error->message);
  else
    self->exported_by_owner = TRUE;
}

static void
on_name_acquired (GDBusConnection *connection, const char *name, gpointer user_data)
{
  g_autoptr (HeraldDbus) self = g_weak_ref_get (user_data);

  if (self == NULL)
    return;
  if (!self->exported_by_owner)
    {
      g_signal_emit (self, signals[SIGNAL_NAME_LOST], 0);
      return;
    }
  self->name_owned = TRUE;
  g_debug ("Acquired the D-Bus name %s", name);
  g_signal_emit (self, signals[SIGNAL_READY], 0);
}

static void
on_name_lost (GDBusConnection *connection, const char *name, gpointer user_data)
{
  g_autoptr (HeraldDbus) self = g_weak_ref_get (user_data);

  if (self == NULL)
    return;
  if (connection == NULL)
    g_warning (_ ("Cannot connect to the D-Bus bus to own %s"), name);
  else if (self->name_owned && g_dbus_connection_is_closed (connection))
    g_warning (_ ("Lost the D-Bus name %s: the connection to the bus was closed"), name);
  else if (self->name_owned)
    {
      g_message (_ ("Lost the D-Bus name %s: another instance replaced this one"), name);
      self->replaced = TRUE;
      /* GLib 2.74 would still send ReleaseName for a name taken from us
       * and warn about the answer; leave the ownership record alone: we
       * are about to exit, and it cannot take the name back (DO_NOT_QUEUE). */
      self->owner_id = 0;
    }
  else
    g_warning (_ ("Cannot own the D-Bus name %s: another instance holds it (use --replace)"), name);
  self->name_owned = FALSE;
  g_signal_emit (self, signals[SIGNAL_NAME_LOST], 0);
}

/**
 * herald_dbus_own_name:
 * @self: a #HeraldDbus
 * @bus_type: %G_BUS_TYPE_SYSTEM or %G_BUS_TYPE_SESSION
 * @replace: whether to take the name over from a running instance
 *
 * Connects to the bus, exports the interface and owns the name
 * io.github.herald.Herald1, always allowing a later instance to replace
 * us. #HeraldDbus::ready is emitted once the name is ours,
 * #HeraldDbus::name-lost when it cannot be had or is taken away.
 * herald_dbus_unexport() (or the last unref) releases the name.
 *
 * Returns: the owner id of g_bus_own_name()
 */
guint
herald_dbus_own_name (HeraldDbus *self, GBusType bus_type, gboolean replace)
{
  GBusNameOwnerFlags flags
      = G_BUS_NAME_OWNER_FLAGS_ALLOW_REPLACEMENT | G_BUS_NAME_OWNER_FLAGS_DO_NOT_QUEUE;

  g_return_val_if_fail (HERALD_IS_DBUS (self), 0);
  g_return_val_if_fail (self->owner_id == 0, 0);

  if (replace)
    flags |= G_BUS_NAME_OWNER_FLAGS_REPLACE;
  self->owner_id
      = g_bus_own_name (bus_type, HERALD_DBUS_NAME, flags, on_bus_acquired, on_name_acquired,
                        on_name_lost, owner_data_new (self), owner_data_free);
  return self->owner_id;
}

/**
 * herald_dbus_get_replaced:
 * @self: a #HeraldDbus
 *
 * Returns: %TRUE when the name was ours and another owner took it over
 *   (a later instance started with --replace); %FALSE when it never was
 *   ours or was lost with the bus connection
 */
gboolean
herald_dbus_get_replaced (HeraldDbus *self)
{
  g_return_val_if_fail (HERALD_IS_DBUS (self), FALSE);
  return self->replaced;
}

/**
 * herald_dbus_get_suppressed_signals:
 * @self: a #HeraldDbus
 *
 * Returns: how many ConnectionOpened/ConnectionClosed signals the rate
 *   limit dropped (the SuppressedSignals property)
 */
guint64
herald_dbus_get_suppressed_signals (HeraldDbus *self)
{
  g_return_val_if_fail (HERALD_IS_DBUS (self), 0);
  return self->suppressed;
}

/**
 * herald_dbus_get_hub:
 * @self: a #HeraldDbus
 *
 * Returns: (transfer none): the hub this adapter drives
 */
HeraldHub *
herald_dbus_get_hub (HeraldDbus *self)
{
  g_return_val_if_fail (HERALD_IS_DBUS (self), NULL);
  return self->hub;
}

/**
 * herald_dbus_new:
 * @hub: the hub to drive
 *
 * Creates the D-Bus adapter for @hub; nothing is exported yet.
 *
 * Returns: (transfer full): a new #HeraldDbus
 */
HeraldDbus *
herald_dbus_new (HeraldHub *hub)
{
  HeraldDbus *self;

  g_return_val_if_fail (HERALD_IS_HUB (hub), NULL);

  self = g_object_new (HERALD_TYPE_DBUS, NULL);
  self->hub = g_object_ref (hub);
  self->config = g_object_ref (herald_hub_get_config (hub));
  return self;
}

static void
herald_dbus_dispose (GObject *object)
{
  HeraldDbus *self = HERALD_DBUS (object);

  herald_dbus_unexport (self);
  g_clear_object (&self->config);
  g_clear_object (&self->hub);

  G_OBJECT_CLASS (herald_dbus_parent_class)->dispose (object);
}

static void
herald_dbus_class_init (HeraldDbusClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = herald_dbus_dispose;

  /**
   * HeraldDbus::ready:
   *
   * The interface is exported and the bus name is owned.
   */
  signals[SIGNAL_READY] = g_signal_new ("ready", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                                        NULL, NULL, NULL, G_TYPE_NONE, 0);
  /**
   * HeraldDbus::name-lost:
   *
   * The bus could not be reached, the name could not be owned, or another
   * instance replaced us. The daemon should shut down.
   */
  signals[SIGNAL_NAME_LOST] = g_signal_new ("name-lost", G_TYPE_FROM_CLASS (klass),
                                            G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL, G_TYPE_NONE, 0);

  register_error_domain ();
}

static void
herald_dbus_init (HeraldDbus *self)
{
}
