/* herald-dbus.h: the D-Bus control plane (io.github.herald.Herald1).
 *
 * A thin adapter: it validates arguments, converts between GVariant and the
 * hub's types, calls the hub and maps HERALD_ERROR codes to named D-Bus
 * errors (io.github.herald.Herald1.Error.*). It holds no logic of its own.
 *
 * Use from the daemon's main():
 *
 *   g_autoptr (HeraldDbus) dbus = herald_dbus_new (hub);
 *   g_signal_connect (dbus, "ready", G_CALLBACK (on_dbus_ready), loop);
 *   g_signal_connect (dbus, "name-lost", G_CALLBACK (on_dbus_name_lost), loop);
 *   herald_dbus_own_name (dbus, G_BUS_TYPE_SYSTEM, opt_replace);
 *   g_main_loop_run (loop);
 *   herald_dbus_unexport (dbus);
 *
 * "ready" is emitted once the object is exported and the name is owned
 * (the moment to tell systemd we are ready when it does not watch the bus
 * name itself). "name-lost" is emitted when the bus could not be reached,
 * the name could not be acquired, or another instance took it over with
 * --replace; the daemon should then shut down. The name is always owned
 * with G_BUS_NAME_OWNER_FLAGS_ALLOW_REPLACEMENT and DO_NOT_QUEUE (a second
 * instance without --replace fails at once instead of waiting in line).
 * herald_dbus_unexport() releases the name and removes the object.
 *
 * ConnectionOpened/ConnectionClosed are rate-limited per kind by a token
 * bucket (HERALD_DBUS_SIGNAL_RATE); dropped ones are counted in the
 * SuppressedSignals property (docs/dbus.md).
 *
 * Everything here runs in the main context the HeraldDbus was created in,
 * which must be the hub's.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>
#include "herald-hub.h"

G_BEGIN_DECLS

#define HERALD_DBUS_NAME "io.github.herald.Herald1"
#define HERALD_DBUS_PATH "/io/github/herald/Herald1"
#define HERALD_DBUS_INTERFACE "io.github.herald.Herald1"

/* ConnectionOpened/ConnectionClosed: each kind may burst up to this many
 * signals and is refilled at this many per second. */
#define HERALD_DBUS_SIGNAL_RATE 100

#define HERALD_TYPE_DBUS (herald_dbus_get_type ())
G_DECLARE_FINAL_TYPE (HeraldDbus, herald_dbus, HERALD, DBUS, GObject)

HeraldDbus *herald_dbus_new (HeraldHub *hub);
HeraldHub *herald_dbus_get_hub (HeraldDbus *self);

gboolean herald_dbus_export (HeraldDbus *self, GDBusConnection *connection, GError **error);
void herald_dbus_unexport (HeraldDbus *self);

guint herald_dbus_own_name (HeraldDbus *self, GBusType bus_type, gboolean replace);

/* TRUE when the name was taken over by a later instance (--replace) */
gboolean herald_dbus_get_replaced (HeraldDbus *self);
guint64 herald_dbus_get_suppressed_signals (HeraldDbus *self);

G_END_DECLS
