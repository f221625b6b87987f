/* herald-test-dbus.h: D-Bus helpers shared by test-dbus and test-dbus-live —
 * connections to a private bus, the Herald name, the signals received and
 * calls that iterate the main context until the reply arrives.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>

#include "herald-dbus.h"

G_BEGIN_DECLS

#define HERALD_TEST_BUS_TIMEOUT_MS 5000

typedef struct
{
  GDBusConnection *server; /* HeraldDbus is exported here */
  GDBusConnection *client; /* the calls come from here */

  guint opened_subscription;
  guint closed_subscription;
  guint changed_subscription;
  GPtrArray *opened;  /* of GVariant (sss) */
  GPtrArray *closed;  /* of GVariant (sqs) */
  GPtrArray *changed; /* of GVariant a{sv} */
} HeraldTestBus;

GDBusConnection *herald_test_bus_connect (const char *address);
/* RequestName or ReleaseName of HERALD_DBUS_NAME; returns the bus's reply code. */
guint herald_test_bus_name_request (GDBusConnection *connection, const char *method, guint flags);
/* Returns once the bus daemon has handled everything sent before. */
void herald_test_bus_round_trip (GDBusConnection *connection);

/* Connects @bus->server and @bus->client to @address. */
void herald_test_bus_open (HeraldTestBus *bus, const char *address);
/* Exports @dbus on @bus->server, takes HERALD_DBUS_NAME there and collects
 * ConnectionOpened, ConnectionClosed and PropertiesChanged from it into
 * @bus->opened, @bus->closed and @bus->changed. */
void herald_test_bus_export (HeraldTestBus *bus, HeraldDbus *dbus);
/* Undoes herald_test_bus_export(), then releases the name, closes both
 * connections and frees the signal arrays. */
void herald_test_bus_unexport (HeraldTestBus *bus, HeraldDbus *dbus);

/* Whether a PropertiesChanged signal set @name (type "u") to @value. */
gboolean herald_test_bus_changed_has (HeraldTestBus *bus, const char *name, guint value);

/* Calls on HERALD_DBUS_NAME at HERALD_DBUS_PATH from @bus->client,
 * iterating the thread-default main context until the reply arrives. */
GVariant *herald_test_bus_call_full (HeraldTestBus *bus, const char *interface, const char *method,
                                     GVariant *parameters, const char *reply_type, GError **error);
GVariant *herald_test_bus_call (HeraldTestBus *bus, const char *method, GVariant *parameters,
                                const char *reply_type, GError **error);
GVariant *herald_test_bus_call_ok (HeraldTestBus *bus, const char *method, GVariant *parameters,
                                   const char *reply_type);
void herald_test_bus_call_fails (HeraldTestBus *bus, const char *method, GVariant *parameters,
                                 const char *error_name);
void herald_test_bus_assert_remote_error (GError *error, const char *name);
GVariant *herald_test_bus_get_property (HeraldTestBus *bus, const char *name);
GVariant *herald_test_bus_set_property (HeraldTestBus *bus, const char *name, GVariant *value,
                                        GError **error);

G_END_DECLS
