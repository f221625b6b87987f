/* fuzz-jwks.c: the JWK Set parser (herald_jwt_keys_new_from_data) and the
 * key-set verifier behind it.
 *
 * The input is a JWKS document. When it parses, a fixed EdDSA token (kid
 * "o1", signed by the Python cryptography package with
 * tests/keys/ed25519-private.pem) and tokens naming the other kids of the
 * seeds are verified against the set, so lookups and imported keys are used.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdint.h>
#include <string.h>

#include "herald-jwt.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

#define FUZZ_NOW 1700000000

static const char *const tokens[] = {
  /* {"alg":"EdDSA","kid":"o1"}.{"sub":"fuzz"}, validly signed */
  "eyJhbGciOiJFZERTQSIsImtpZCI6Im8xIn0.eyJzdWIiOiJmdXp6In0."
  "3YyAeijGFWk9ULeITk3P87i3ybLlfB3WhoIz3MR5zc5xP9Wcp1wVhDfsnKZX_P4U38rI9XotuVTkKhgkdyx8DQ",
  /* {"alg":"RS256","kid":"r1"}, a signature that does not verify */
  "eyJhbGciOiJSUzI1NiIsImtpZCI6InIxIn0.eyJzdWIiOiJmdXp6In0.AAAA",
  /* {"alg":"ES256","kid":"e1"}, 64 zero bytes */
  "eyJhbGciOiJFUzI1NiIsImtpZCI6ImUxIn0.eyJzdWIiOiJmdXp6In0."
  "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
};

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  static HeraldJwtVerifier *verifier;
  g_autoptr (GPtrArray) skipped = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (HeraldJwtKeys) keys = NULL;

  if (verifier == NULL)
    verifier = herald_jwt_verifier_new_key_set (NULL, FALSE, HERALD_JWT_ALG_HS256);

  keys = herald_jwt_keys_new_from_data ((const char *)data, size, &skipped, &error);
  if (keys == NULL)
    {
      g_assert_nonnull (error);
      return 0;
    }
  g_assert_no_error (error);
  g_assert_cmpuint (herald_jwt_keys_get_n_keys (keys), >, 0);
  herald_jwt_verifier_set_keys (verifier, keys);
  for (gsize i = 0; i < G_N_ELEMENTS (tokens); i++)
    {
      g_autoptr (GError) verify_error = NULL;
      HeraldJwtClaims *claims
          = herald_jwt_verifier_verify (verifier, tokens[i], FUZZ_NOW, 5, &verify_error);

      if (claims == NULL)
        g_assert_nonnull (verify_error);
      else
        {
          g_assert_cmpstr (claims->sub, ==, "fuzz");
          herald_jwt_claims_free (claims);
        }
    }
  return 0;
}
