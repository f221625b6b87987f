/* fuzz-jwt.c: the JWT parser and HS256 verifier (herald_jwt_verifier_verify).
 *
 * The input is a token. When its first byte is '!', the rest is taken as
 * a claims object and signed with the fuzzer's key first, so the claim checks
 * behind a valid signature are reached too.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdint.h>
#include <string.h>

#include "herald-jwt.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

#define FUZZ_NOW 1700000000

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  static HeraldJwtVerifier *verifier;
  static GBytes *secret;
  g_autoptr (GError) error = NULL;
  g_autofree char *token = NULL;
  HeraldJwtClaims *claims;

  if (verifier == NULL)
    {
      secret = g_bytes_new_static ("fuzzing-secret-fuzzing-secret-32", 32);
      verifier = herald_jwt_verifier_new_hmac (secret);
    }
  if (size > 0 && data[0] == '!')
    {
      g_autofree char *json = g_strndup ((const char *)data + 1, size - 1);
      token = herald_jwt_sign_hs256 (secret, json);
      if (token == NULL)
        return 0;
    }
  else
    token = g_strndup ((const char *)data, size);

  claims = herald_jwt_verifier_verify (verifier, token, FUZZ_NOW, 5, &error);
  if (claims == NULL)
    g_assert_nonnull (error);
  else
    {
      g_assert_no_error (error);
      herald_jwt_claims_free (claims);
    }
  return 0;
}
