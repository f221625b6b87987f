/* herald-jwt-keys.h: a JSON Web Key Set (RFC 7517) of public keys for
 * token verification: RSA (RS256), EC P-256 (ES256) and OKP Ed25519
 * (EdDSA, RFC 8037), imported with GnuTLS. A set is immutable once made, so
 * any number of threads may read it; the verifier swaps whole sets.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib-object.h>
#include <gnutls/abstract.h>

#include "herald-jwt-alg.h"

G_BEGIN_DECLS

/* The largest JWKS document read (the fetcher stops reading beyond it). */
#define HERALD_JWT_KEYS_MAX_DOCUMENT (1024 * 1024)
/* Keys of one document beyond this many are ignored. */
#define HERALD_JWT_KEYS_MAX_KEYS 256

#define HERALD_JWT_KEYS_ERROR (herald_jwt_keys_error_quark ())
typedef enum
{
  HERALD_JWT_KEYS_ERROR_INVALID, /* not a JWK Set, or no key in it Herald can use */
} HeraldJwtKeysError;
GQuark herald_jwt_keys_error_quark (void);

#define HERALD_TYPE_JWT_KEYS (herald_jwt_keys_get_type ())
G_DECLARE_FINAL_TYPE (HeraldJwtKeys, herald_jwt_keys, HERALD, JWT_KEYS, GObject)

/* A set without keys (before the first fetch succeeded). */
HeraldJwtKeys *herald_jwt_keys_new_empty (void);

/* Parses a JWK Set ({"keys":[…]}). Keys Herald cannot use (another kty, alg
 * or curve, "use" other than "sig", no "kid", a repeated "kid", a private
 * key, an RSA modulus under 2048 bits, bad base64url) are left out, and each
 * is described in @skipped (may be NULL; an array of strings). Fails when
 * the document is not a JWK Set or no key is left. */
HeraldJwtKeys *herald_jwt_keys_new_from_data (const char *data, gsize length, GPtrArray **skipped,
                                              GError **error);

guint herald_jwt_keys_get_n_keys (HeraldJwtKeys *self);

/* The key with id @kid: its algorithm and GnuTLS public key (owned by the
 * set: valid while the caller holds a reference to @self). */
gboolean herald_jwt_keys_lookup (HeraldJwtKeys *self, const char *kid, HeraldJwtAlg *alg,
                                 gnutls_pubkey_t *key);

/* The key ids, in document order, for logs and tests (transfer full). */
char **herald_jwt_keys_dup_ids (HeraldJwtKeys *self);

G_END_DECLS
