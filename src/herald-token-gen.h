/* herald-token-gen.h: heraldd --gen-token, tokens for trying Herald out.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "herald-config.h"

G_BEGIN_DECLS

/* Signs a token for @sub, valid for @ttl seconds from now (0 = no "exp"),
 * with "channels" when @channels is not NULL. HS256 uses the configured
 * secret; RS256/ES256/EdDSA need the private key @key_file (PEM) matching the
 * configured [auth] jwt-public-key-file. The token is verified with the
 * configured key before it is returned, so a token that heraldd would
 * refuse is never printed. */
char *herald_token_generate (HeraldConfig *config, const char *sub, guint ttl,
                             const char *const *channels, const char *key_file, GError **error);

G_END_DECLS
