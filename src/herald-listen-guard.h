/* herald-listen-guard.h: one Herald per listen address.
 *
 * The workers' listening sockets use SO_REUSEPORT so the kernel spreads
 * connections over them; but SO_REUSEPORT would just as happily let a
 * second heraldd of the same user join the port and split the clients over
 * two separate hubs. Before binding, the daemon therefore
 *
 *  1. claims the address with an abstract-namespace Unix socket named after
 *     it ("@herald/listen/HOST:PORT"): binding that name is atomic, the
 *     kernel frees it when the process dies however it dies, and it lives in
 *     the same network namespace as the port; whoever finds it taken
 *     connects to it and learns the holder's pid (SO_PEERCRED);
 *  2. probes the address with a socket *without* SO_REUSEPORT: that bind
 *     fails if anything at all listens there (an older heraldd, another
 *     program), and the holder is looked up in /proc when we may see it.
 *
 * Only then do the workers bind, each with SO_REUSEPORT, sharing the port
 * among themselves. See docs/operations.md ("One instance per address").
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* Claims @address:@port for this process. Returns the claim's fd (close it
 * to give the address up), or -1 with G_IO_ERROR_ADDRESS_IN_USE naming the
 * Herald that holds it. */
int herald_listen_guard_claim (GInetAddress *address, guint16 port, GError **error);

/* Fails with G_IO_ERROR_ADDRESS_IN_USE, naming the holder when it can be
 * found, when anything listens on @address:@port. */
gboolean herald_listen_guard_probe (GInetAddress *address, guint16 port, GError **error);

G_END_DECLS
