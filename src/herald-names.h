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

G_END_DECLS
