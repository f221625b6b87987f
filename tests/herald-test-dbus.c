/* herald-test-dbus.c: D-Bus helpers shared by test-dbus and test-dbus-live.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "herald-test-dbus.h"

#include "herald-dbus.h"
#include "herald-test-utils.h"

#define TIMEOUT_MS HERALD_TEST_BUS_TIMEOUT_MS

GDBusConnection *
herald_test_bus_connect (const char *address)
{
  g_autoptr (GError) error = NULL;
  GDBusConnection *connection = g_dbus_connection_new_for_address_sync (
      address,
      G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT
          | G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
      NULL, NULL, &error);

  g_assert_no_error (error);
  return connection;
}

/* The bus daemon answers these, so a blocking call cannot deadlock. */
guint
herald_test_bus_name_request (GDBusConnection *connection, const char *method, guint flags)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) reply = NULL;
  guint result = 0;

  reply = g_dbus_connection_call_sync (
      connection, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", method,
      g_str_equal (method, "RequestName") ? g_variant_new ("(su)", HERALD_DBUS_NAME, flags)
                                          : g_variant_new ("(s)", HERALD_DBUS_NAME),
      G_VARIANT_TYPE ("(u)"), G_DBUS_CALL_FLAGS_NONE, TIMEOUT_MS, NULL, &error);
  g_assert_no_error (error);
  g_variant_get (reply, "(u)", &result);
  return result;
}

void
herald_test_bus_round_trip (GDBusConnection *connection)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) reply = NULL;

  reply = g_dbus_connection_call_sync (
      connection, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "GetId",
      NULL, G_VARIANT_TYPE ("(s)"), G_DBUS_CALL_FLAGS_NONE, TIMEOUT_MS, NULL, &error);
  g_assert_no_error (error);
}

void
herald_test_bus_open (HeraldTestBus *bus, const char *address)
{
  bus->server = herald_test_bus_connect (address);
  bus->client = herald_test_bus_connect (address);
}

static void
on_signal (GDBusConnection *connection, const char *sender, const char *path, const char *interface,
           const char *name, GVariant *parameters, gpointer user_data)
{
  HeraldTestBus *bus = user_data;

  if (g_str_equal (name, "ConnectionOpened"))
    g_ptr_array_add (bus->opened, g_variant_ref (parameters));
  else if (g_str_equal (name, "ConnectionClosed"))
    g_ptr_array_add (bus->closed, g_variant_ref (parameters));
  else if (g_str_equal (name, "PropertiesChanged"))
    {
      const char *iface;
      g_autoptr (GVariant) changed = NULL;

      g_variant_get (parameters, "(&s@a{sv}@as)", &iface, &changed, NULL);
      if (g_str_equal (iface, HERALD_DBUS_INTERFACE))
        g_ptr_array_add (bus->changed, g_steal_pointer (&changed));
    }
}

static guint
subscribe (HeraldTestBus *bus, const char *interface, const char *member)
{
  return g_dbus_connection_signal_subscribe (
      bus->client, g_dbus_connection_get_unique_name (bus->server), interface, member,
      HERALD_DBUS_PATH, NULL, G_DBUS_SIGNAL_FLAGS_NONE, on_signal, bus, NULL);
}

void
herald_test_bus_export (HeraldTestBus *bus, HeraldDbus *dbus)
{
  g_autoptr (GError) error = NULL;

  g_assert_true (herald_dbus_export (dbus, bus->server, &error));
  g_assert_no_error (error);
  /* 1 = DBUS_REQUEST_NAME_REPLY_PRIMARY_OWNER; 4 = DO_NOT_QUEUE */
  g_assert_cmpuint (herald_test_bus_name_request (bus->server, "RequestName", 4), ==, 1);

  bus->opened = g_ptr_array_new_with_free_func ((GDestroyNotify)g_variant_unref);
  bus->closed = g_ptr_array_new_with_free_func ((GDestroyNotify)g_variant_unref);
  bus->changed = g_ptr_array_new_with_free_func ((GDestroyNotify)g_variant_unref);
  bus->opened_subscription = subscribe (bus, HERALD_DBUS_INTERFACE, "ConnectionOpened");
  bus->closed_subscription = subscribe (bus, HERALD_DBUS_INTERFACE, "ConnectionClosed");
  bus->changed_subscription
      = subscribe (bus, "org.freedesktop.DBus.Properties", "PropertiesChanged");
}

void
herald_test_bus_unexport (HeraldTestBus *bus, HeraldDbus *dbus)
{
  g_dbus_connection_signal_unsubscribe (bus->client, bus->opened_subscription);
  g_dbus_connection_signal_unsubscribe (bus->client, bus->closed_subscription);
  g_dbus_connection_signal_unsubscribe (bus->client, bus->changed_subscription);
  herald_dbus_unexport (dbus);
  /* Released synchronously, so the next test can take the name at once. */
  herald_test_bus_name_request (bus->server, "ReleaseName", 0);
  g_dbus_connection_close_sync (bus->server, NULL, NULL);
  g_dbus_connection_close_sync (bus->client, NULL, NULL);
  g_clear_object (&bus->server);
  g_clear_object (&bus->client);
  g_clear_pointer (&bus->opened, g_ptr_array_unref);
  g_clear_pointer (&bus->closed, g_ptr_array_unref);
  g_clear_pointer (&bus->changed, g_ptr_array_unref);
}

gboolean
herald_test_bus_changed_has (HeraldTestBus *bus, const char *name, guint value)
{
  for (guint i = 0; i < bus->changed->len; i++)
    {
      guint got;

      if (g_variant_lookup (g_ptr_array_index (bus->changed, i), name, "u", &got) && got == value)
        return TRUE;
    }
  return FALSE;
}

static void
on_call_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  GAsyncResult **out = user_data;

  *out = g_object_ref (result);
}

/* Asynchronous underneath: the object answers in this same main context. */
GVariant *
herald_test_bus_call_full (HeraldTestBus *bus, const char *interface, const char *method,
                           GVariant *parameters, const char *reply_type, GError **error)
{
  g_autoptr (GAsyncResult) result = NULL;

  g_dbus_connection_call (bus->client, HERALD_DBUS_NAME, HERALD_DBUS_PATH, interface, method,
                          parameters, reply_type ? G_VARIANT_TYPE (reply_type) : NULL,
                          G_DBUS_CALL_FLAGS_NONE, TIMEOUT_MS, NULL, on_call_done, &result);
  HERALD_TEST_WAIT_UNTIL (result != NULL, TIMEOUT_MS);
  return g_dbus_connection_call_finish (bus->client, result, error);
}

GVariant *
herald_test_bus_call (HeraldTestBus *bus, const char *method, GVariant *parameters,
                      const char *reply_type, GError **error)
{
  return herald_test_bus_call_full (bus, HERALD_DBUS_INTERFACE, method, parameters, reply_type,
                                    error);
}

GVariant *
herald_test_bus_call_ok (HeraldTestBus *bus, const char *method, GVariant *parameters,
                         const char *reply_type)
{
  g_autoptr (GError) error = NULL;
  GVariant *reply = herald_test_bus_call (bus, method, parameters, reply_type, &error);

  g_assert_no_error (error);
  g_assert_nonnull (reply);
  return reply;
}

void
herald_test_bus_assert_remote_error (GError *error, const char *name)
{
  g_autofree char *remote = NULL;

  g_assert_nonnull (error);
  remote = g_dbus_error_get_remote_error (error);
  g_assert_cmpstr (remote, ==, name);
}

void
herald_test_bus_call_fails (HeraldTestBus *bus, const char *method, GVariant *parameters,
                            const char *error_name)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) reply = herald_test_bus_call (bus, method, parameters, NULL, &error);

  g_assert_null (reply);
  herald_test_bus_assert_remote_error (error, error_name);
}

GVariant *
herald_test_bus_get_property (HeraldTestBus *bus, const char *name)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) reply = herald_test_bus_call_full (
      bus, "org.freedesktop.DBus.Properties", "Get",
      g_variant_new ("(ss)", HERALD_DBUS_INTERFACE, name), "(v)", &error);
  GVariant *value = NULL;

  g_assert_no_error (error);
  g_assert_nonnull (reply);
  g_variant_get (reply, "(v)", &value);
  return value;
}

GVariant *
herald_test_bus_set_property (HeraldTestBus *bus, const char *name, GVariant *value, GError **error)
{
  return herald_test_bus_call_full (bus, "org.freedesktop.DBus.Properties", "Set",
                                    g_variant_new ("(ssv)", HERALD_DBUS_INTERFACE, name, value),
                                    "()", error);
}
