/* herald-jwt-alg.h: the token signature algorithms, a value the
 * configuration names and the verifier pins (no code: the configuration
 * reads it without depending on token verification).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* The signature algorithm, pinned by configuration ([auth] jwt-algorithm). */
typedef enum
{
  HERALD_JWT_ALG_HS256,
  HERALD_JWT_ALG_RS256,
  HERALD_JWT_ALG_ES256,
  HERALD_JWT_ALG_EDDSA, /* Ed25519 (RFC 8037) */
} HeraldJwtAlg;

G_END_DECLS
