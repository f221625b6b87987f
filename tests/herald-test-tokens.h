/* herald-test-tokens.h: JWTs signed for the tests with the private keys in
 * tests/keys (RS256, ES256 via GnuTLS; EdDSA via openssl), and JWKs of
 * their public keys.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* A JWT over @header_json and @payload, signed with the private key
 * tests/keys/@key_file (SHA-256); with @es256 the DER signature is converted
 * to the raw R||S form JWS uses. */
char *herald_test_token_sign (const char *key_file, gboolean es256, const char *header_json,
                              const char *payload);

/* The public key tests/keys/@public_key_file (RSA, EC P-256 or Ed25519) as
 * a JWK object text, with "kid" and "alg" when not NULL. */
char *herald_test_jwk (const char *public_key_file, const char *kid, const char *alg);

/* A JWT signed with the Ed25519 key tests/keys/@key_file by `openssl pkeyutl`
 * (an implementation independent of GnuTLS). */
char *herald_test_token_sign_eddsa (const char *key_file, const char *header_json,
                                    const char *payload);

G_END_DECLS
