/* herald-names.h: what a channel name and a connection id may be, and new ids.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* TRUE when @name is 1–255 bytes of [A-Za-z0-9_.:@/#,-]. */
gboolean herald_channel_name_is_valid (const char *name);
/* TRUE when @id is 1–64 bytes of [A-Za-z0-9_-]. */
/* For a user-limited channel "…#alice,bob": whether @user_id (NULL:
 * anonymous) is one of the users after its first '#'. FALSE without '#'. */
gboolean herald_channel_user_allowed (const char *channel, const char *user_id);
gboolean herald_connection_id_is_valid (const char *id);
/* A new random connection id: 16 bytes from the system CSPRNG, base64url, 22 chars. */
char *herald_connection_id_new (void);

/* Client addresses kept per connection in binary: @text as 4 (IPv4) or 16
 * (IPv6) bytes in @out; 0 when @text is no IP address in the canonical form
 * inet_ntop() gives back (keep the text then). */
gsize herald_address_pack (const char *text, guint8 out[16]);
/* The text of a packed address (@len 4 or 16), written to @buf. */
#define HERALD_ADDRESS_TEXT_MAX 46
const char *herald_address_unpack (const guint8 *packed, gsize len,
                                   char buf[HERALD_ADDRESS_TEXT_MAX]);

G_END_DECLS
