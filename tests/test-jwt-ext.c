/* test-jwt-ext.c: [auth] issuer/audience checks and EdDSA (Ed25519) tokens
 * signed by openssl, an implementation independent of the GnuTLS verifier.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>

#include <glib/gstdio.h>
#include <gnutls/crypto.h>

#include "herald-base64url.h"
#include "herald-jwt.h"

#define SECRET "herald-test-secret-0123456789abcdef"
#define HS256_HEADER "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"
#define EDDSA_HEADER "{\"alg\":\"EdDSA\",\"typ\":\"JWT\"}"
#define NOW G_GINT64_CONSTANT (1700000000)

static char *tmpdir;

static char *
make_hs256 (const char *payload)
{
  g_autofree char *header = herald_base64url_encode (HS256_HEADER, strlen (HS256_HEADER));
  g_autofree char *body = herald_base64url_encode (payload, strlen (payload));
  g_autofree char *input = g_strconcat (header, ".", body, NULL);
  g_autofree char *sig = NULL;
  guint8 mac[32];

  g_assert_cmpint (
      gnutls_hmac_fast (GNUTLS_MAC_SHA256, SECRET, strlen (SECRET), input, strlen (input), mac), ==,
      0);
  sig = herald_base64url_encode (mac, sizeof mac);
  return g_strconcat (input, ".", sig, NULL);
}

static char *
key_path (const char *name)
{
  return g_test_build_filename (G_TEST_DIST, "keys", name, NULL);
}

/* Signs "header.payload" with `openssl pkeyutl -sign -rawin` (pure Ed25519). */
static char *
make_eddsa (const char *header_json, const char *payload)
{
  g_autofree char *header = herald_base64url_encode (header_json, strlen (header_json));
  g_autofree char *body = herald_base64url_encode (payload, strlen (payload));
  g_autofree char *input = g_strconcat (header, ".", body, NULL);
  g_autofree char *in_path = g_build_filename (tmpdir, "input", NULL);
  g_autofree char *sig_path = g_build_filename (tmpdir, "sig", NULL);
  g_autofree char *key = key_path ("ed25519-private.pem");
  g_autofree char *sig = NULL;
  g_autofree char *err = NULL;
  g_autoptr (GError) error = NULL;
  gsize sig_length;
  int status;
  const char *argv[] = { "openssl", "pkeyutl", "-sign", "-rawin", "-inkey", key,
                         "-in",     in_path,   "-out",  sig_path, NULL };

  g_assert_true (g_file_set_contents (in_path, input, -1, &error));
  g_assert_no_error (error);
  g_assert_true (g_spawn_sync (NULL, (char **)argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL,
                               &err, &status, &error));
  g_assert_no_error (error);
  if (!g_spawn_check_wait_status (status, NULL))
    g_error ("openssl pkeyutl failed: %s", err);
  g_assert_true (g_file_get_contents (sig_path, &sig, &sig_length, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (sig_length, ==, 64);
  {
    g_autofree char *sig_text = herald_base64url_encode (sig, sig_length);

    return g_strconcat (input, ".", sig_text, NULL);
  }
}

static HeraldJwtVerifier *
hmac_verifier (const char *issuer, const char *audience)
{
  g_autoptr (GBytes) secret = g_bytes_new_static (SECRET, strlen (SECRET));
  HeraldJwtVerifier *verifier = herald_jwt_verifier_new_hmac (secret);

  herald_jwt_verifier_set_required_claims (verifier, issuer, audience);
  return verifier;
}

static HeraldJwtVerifier *
eddsa_verifier (const char *key_file)
{
  g_autofree char *path = key_path (key_file);
  g_autoptr (GError) error = NULL;
  HeraldJwtVerifier *verifier
      = herald_jwt_verifier_new_public_key (HERALD_JWT_ALG_EDDSA, path, &error);

  g_assert_no_error (error);
  g_assert_nonnull (verifier);
  return verifier;
}

static void
expect_ok (HeraldJwtVerifier *verifier, const char *token, const char *sub)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (HeraldJwtClaims) claims = herald_jwt_verifier_verify (verifier, token, NOW, 0, &error);

  g_assert_no_error (error);
  g_assert_nonnull (claims);
  g_assert_cmpstr (claims->sub, ==, sub);
}

static void
expect_error (HeraldJwtVerifier *verifier, const char *token, int code)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (HeraldJwtClaims) claims = herald_jwt_verifier_verify (verifier, token, NOW, 0, &error);

  g_assert_null (claims);
  g_assert_error (error, HERALD_JWT_ERROR, code);
}

static void
expect_payload (HeraldJwtVerifier *verifier, const char *payload, int code)
{
  g_autofree char *token = make_hs256 (payload);

  if (code < 0)
    expect_ok (verifier, token, "u");
  else
    expect_error (verifier, token, code);
}

/* ---- issuer / audience ---- */

static void
test_issuer (void)
{
  g_autoptr (HeraldJwtVerifier) v = hmac_verifier ("https://auth.example", NULL);
  g_autoptr (HeraldJwtVerifier) plain = hmac_verifier (NULL, NULL);

  expect_payload (v, "{\"sub\":\"u\",\"iss\":\"https://auth.example\"}", -1);
  expect_payload (v, "{\"sub\":\"u\"}", HERALD_JWT_ERROR_CLAIM);
  expect_payload (v, "{\"sub\":\"u\",\"iss\":\"https://evil.example\"}", HERALD_JWT_ERROR_CLAIM);
  expect_payload (v, "{\"sub\":\"u\",\"iss\":\"https://auth.example/\"}", HERALD_JWT_ERROR_CLAIM);
  expect_payload (v, "{\"sub\":\"u\",\"iss\":\"HTTPS://AUTH.EXAMPLE\"}", HERALD_JWT_ERROR_CLAIM);
  expect_payload (v, "{\"sub\":\"u\",\"iss\":[\"https://auth.example\"]}", HERALD_JWT_ERROR_CLAIM);
  expect_payload (v, "{\"sub\":\"u\",\"iss\":null}", HERALD_JWT_ERROR_CLAIM);
  /* an embedded NUL must not shorten the issuer to a match */
  expect_payload (v, "{\"sub\":\"u\",\"iss\":\"https://auth.example\\u0000x\"}",
                  HERALD_JWT_ERROR_MALFORMED);
  /* not configured: iss is not looked at */
  expect_payload (plain, "{\"sub\":\"u\"}", -1);
  expect_payload (plain, "{\"sub\":\"u\",\"iss\":\"anyone\"}", -1);
}

static void
test_audience (void)
{
  g_autoptr (HeraldJwtVerifier) v = hmac_verifier (NULL, "herald");
  g_autoptr (HeraldJwtVerifier) both = hmac_verifier ("idp", "herald");

  expect_payload (v, "{\"sub\":\"u\",\"aud\":\"herald\"}", -1);
  expect_payload (v, "{\"sub\":\"u\",\"aud\":[\"api\",\"herald\"]}", -1);
  expect_payload (v, "{\"sub\":\"u\",\"aud\":[\"herald\"]}", -1);
  expect_payload (v, "{\"sub\":\"u\"}", HERALD_JWT_ERROR_CLAIM);
  expect_payload (v, "{\"sub\":\"u\",\"aud\":\"api\"}", HERALD_JWT_ERROR_CLAIM);
  expect_payload (v, "{\"sub\":\"u\",\"aud\":[]}", HERALD_JWT_ERROR_CLAIM);
  expect_payload (v, "{\"sub\":\"u\",\"aud\":[\"api\",\"herald-x\"]}", HERALD_JWT_ERROR_CLAIM);
  expect_payload (v, "{\"sub\":\"u\",\"aud\":\"Herald\"}", HERALD_JWT_ERROR_CLAIM);
  expect_payload (v, "{\"sub\":\"u\",\"aud\":42}", HERALD_JWT_ERROR_MALFORMED);
  expect_payload (v, "{\"sub\":\"u\",\"aud\":{\"x\":\"herald\"}}", HERALD_JWT_ERROR_MALFORMED);
  expect_payload (v, "{\"sub\":\"u\",\"aud\":[\"herald\",1]}", HERALD_JWT_ERROR_MALFORMED);

  expect_payload (both, "{\"sub\":\"u\",\"iss\":\"idp\",\"aud\":\"herald\"}", -1);
  expect_payload (both, "{\"sub\":\"u\",\"iss\":\"idp\"}", HERALD_JWT_ERROR_CLAIM);
  expect_payload (both, "{\"sub\":\"u\",\"aud\":\"herald\"}", HERALD_JWT_ERROR_CLAIM);
}

/* A bad signature is still reported as such, before any claim is read. */
static void
test_claims_after_signature (void)
{
  g_autoptr (HeraldJwtVerifier) v = hmac_verifier ("idp", "herald");
  g_autofree char *token = make_hs256 ("{\"sub\":\"u\",\"iss\":\"idp\",\"aud\":\"herald\"}");

  token[strlen (token) - 2] = token[strlen (token) - 2] == 'A' ? 'B' : 'A';
  expect_error (v, token, HERALD_JWT_ERROR_SIGNATURE);
}

/* ---- EdDSA ---- */

static void
test_eddsa (void)
{
  g_autoptr (HeraldJwtVerifier) v = eddsa_verifier ("ed25519-public.pem");
  g_autoptr (HeraldJwtVerifier) other = eddsa_verifier ("ed25519-other-public.pem");
  g_autofree char *token = make_eddsa (EDDSA_HEADER, "{\"sub\":\"ed\"}");
  g_autofree char *no_typ = make_eddsa ("{\"alg\":\"EdDSA\"}", "{\"sub\":\"ed2\"}");

  g_assert_cmpint (herald_jwt_verifier_get_algorithm (v), ==, HERALD_JWT_ALG_EDDSA);
  expect_ok (v, token, "ed");
  expect_ok (v, no_typ, "ed2");

  /* wrong key */
  expect_error (other, token, HERALD_JWT_ERROR_SIGNATURE);

  /* tampered payload, signature, and a signature of the wrong length */
  {
    g_autofree char *payload = herald_base64url_encode ("{\"sub\":\"admin\"}", 15);
    const char *dot1 = strchr (token, '.');
    const char *dot2 = strrchr (token, '.');
    g_autofree char *head = g_strndup (token, dot1 - token);
    g_autofree char *swapped = g_strconcat (head, ".", payload, dot2, NULL);
    g_autofree char *flipped = g_strdup (token);
    g_autofree char *input = g_strndup (token, dot2 - token);
    g_autofree guint8 *zeros = g_malloc0 (63);
    g_autofree char *short_sig = herald_base64url_encode (zeros, 63);
    g_autofree char *truncated = g_strconcat (input, ".", short_sig, NULL);
    gsize last = strlen (flipped) - 5;

    expect_error (v, swapped, HERALD_JWT_ERROR_SIGNATURE);
    flipped[last] = flipped[last] == 'A' ? 'B' : 'A';
    expect_error (v, flipped, HERALD_JWT_ERROR_SIGNATURE);
    expect_error (v, truncated, HERALD_JWT_ERROR_SIGNATURE);
  }

  /* alg pinned: an EdDSA-signed token claiming another alg, or an HS256
   * token, is refused before its signature is looked at */
  {
    g_autofree char *lying = make_eddsa ("{\"alg\":\"ES256\"}", "{\"sub\":\"ed\"}");
    g_autofree char *hs = make_hs256 ("{\"sub\":\"ed\"}");
    g_autofree char *lower = make_eddsa ("{\"alg\":\"eddsa\"}", "{\"sub\":\"ed\"}");

    expect_error (v, lying, HERALD_JWT_ERROR_ALGORITHM);
    expect_error (v, hs, HERALD_JWT_ERROR_ALGORITHM);
    expect_error (v, lower, HERALD_JWT_ERROR_ALGORITHM);
  }

  /* claims still apply to EdDSA tokens */
  herald_jwt_verifier_set_required_claims (v, "idp", "herald");
  expect_error (v, token, HERALD_JWT_ERROR_CLAIM);
  {
    g_autofree char *good
        = make_eddsa (EDDSA_HEADER, "{\"sub\":\"ed3\",\"iss\":\"idp\",\"aud\":[\"herald\"]}");

    expect_ok (v, good, "ed3");
  }
}

static void
test_eddsa_key_errors (void)
{
  const char *wrong[] = { "ec-public.pem", "rsa-public.pem", "dsa-public.pem" };

  for (guint i = 0; i < G_N_ELEMENTS (wrong); i++)
    {
      g_autofree char *path = key_path (wrong[i]);
      g_autoptr (GError) error = NULL;
      g_autoptr (HeraldJwtVerifier) v
          = herald_jwt_verifier_new_public_key (HERALD_JWT_ALG_EDDSA, path, &error);

      g_assert_null (v);
      g_assert_error (error, HERALD_JWT_ERROR, HERALD_JWT_ERROR_KEY);
    }

  /* an Ed25519 key is not an ES256 or RS256 key either */
  {
    g_autofree char *path = key_path ("ed25519-public.pem");
    g_autoptr (GError) error = NULL;
    g_autoptr (HeraldJwtVerifier) es
        = herald_jwt_verifier_new_public_key (HERALD_JWT_ALG_ES256, path, &error);

    g_assert_null (es);
    g_assert_error (error, HERALD_JWT_ERROR, HERALD_JWT_ERROR_KEY);
    g_clear_error (&error);
    g_assert_null (herald_jwt_verifier_new_public_key (HERALD_JWT_ALG_RS256, path, &error));
    g_assert_error (error, HERALD_JWT_ERROR, HERALD_JWT_ERROR_KEY);
  }
}

int
main (int argc, char **argv)
{
  int status;

  g_test_init (&argc, &argv, NULL);
  tmpdir = g_dir_make_tmp ("herald-jwt-ext-XXXXXX", NULL);
  g_assert_nonnull (tmpdir);

  g_test_add_func ("/jwt-ext/issuer", test_issuer);
  g_test_add_func ("/jwt-ext/audience", test_audience);
  g_test_add_func ("/jwt-ext/claims-after-signature", test_claims_after_signature);
  g_test_add_func ("/jwt-ext/eddsa", test_eddsa);
  g_test_add_func ("/jwt-ext/eddsa-key-errors", test_eddsa_key_errors);

  status = g_test_run ();
  {
    g_autofree char *in_path = g_build_filename (tmpdir, "input", NULL);
    g_autofree char *sig_path = g_build_filename (tmpdir, "sig", NULL);

    g_unlink (in_path);
    g_unlink (sig_path);
    g_rmdir (tmpdir);
  }
  g_free (tmpdir);
  return status;
}
