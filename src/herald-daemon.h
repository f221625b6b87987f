/* herald-daemon.h: heraldd's top-level object — config, engine, hub, workers,
 * listeners, D-Bus and signals.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>
#include "herald-config.h"
#include "herald-hub.h"

G_BEGIN_DECLS

typedef enum
{
  HERALD_BUS_AUTO,
  HERALD_BUS_SESSION,
  HERALD_BUS_SYSTEM,
  HERALD_BUS_NONE,
} HeraldBusChoice;

#define HERALD_TYPE_DAEMON (herald_daemon_get_type ())
G_DECLARE_FINAL_TYPE (HeraldDaemon, herald_daemon, HERALD, DAEMON, GObject)

HeraldDaemon *herald_daemon_new (HeraldConfig *config);
HeraldHub *herald_daemon_get_hub (HeraldDaemon *self);

/* Creates the engine and hub, binds every listen address (SO_REUSEPORT, one
 * socket per worker), starts the workers and prints "listening on …" lines. */
gboolean herald_daemon_start (HeraldDaemon *self, GError **error);
/* Owns the bus name (unless HERALD_BUS_NONE); "name-lost" quits. */
void herald_daemon_connect_bus (HeraldDaemon *self, HeraldBusChoice bus, gboolean replace);
/* Runs until SIGTERM/SIGINT (graceful: 1001 to every client) or the bus name is lost.
 * Returns the exit status. */
int herald_daemon_run (HeraldDaemon *self);

/* The addresses actually bound, e.g. "http://127.0.0.1:41234" (for tests). */
GPtrArray *herald_daemon_get_urls (HeraldDaemon *self);

G_END_DECLS
