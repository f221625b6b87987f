/* herald-listen-address.h: where Herald listens.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* One listen address parsed from "HOST:PORT", "http://HOST:PORT" or "https://HOST:PORT".
 * IPv6 hosts are written in brackets: "[::1]:8080". */
typedef struct
{
  char *host;
  guint16 port; /* 0 = pick a free port */
  gboolean tls;
} HeraldListenAddress;

void herald_listen_address_free (HeraldListenAddress *address);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (HeraldListenAddress, herald_listen_address_free)
/* Parses one address; error names @what (e.g. "--listen" or "file: [server] listen") */
HeraldListenAddress *herald_listen_address_parse (const char *text, const char *what,
                                                  GError **error);
/* TRUE for 127.0.0.0/8, ::1 and "localhost" */
gboolean herald_listen_address_is_loopback (const HeraldListenAddress *address);
/* "HOST:PORT" again, "https://" and brackets as needed. */
char *herald_listen_address_to_string (const HeraldListenAddress *address);

G_END_DECLS
