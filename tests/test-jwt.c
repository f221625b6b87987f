/* test-jwt.c: tests for herald-jwt (HS256/RS256/ES256 verification, claims, patterns).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>

#include <gnutls/gnutls.h>
#include <gnutls/abstract.h>
#include <gnutls/crypto.h>

#include "herald-base64url.h"
#include "herald-jwt.h"
#include "herald-test-tokens.h"

/* RFC 7515 Appendix A.1: the HS256 example. Its header is
 * {"typ":"JWT",\r\n "alg":"HS256"} and its payload has "exp":1300819380. */
#define RFC7515_A1_KEY                                                                             \
  "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow"
#define RFC7515_A1_TOKEN                                                                           \
  "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9"                                                       \
  ".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlf" \
  "Q"                                                                                              \
  ".dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
/* RFC 7519 §3.1: the JWT example, signed with the RFC 7515 A.1 key (it is
 * byte for byte the same token; kept separately so each vector is traceable). */
#define RFC7519_3_1_TOKEN                                                                          \
  "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9."                                                      \
  "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ" \
  "."                                                                                              \
  "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
/* RFC 7519 §6.1: an unsecured JWT (alg "none", empty signature). */
#define RFC7519_6_1_TOKEN                                                                          \
  "eyJhbGciOiJub25lIn0"                                                                            \
  ".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlf" \
  "Q."
#define RFC_EXP G_GINT64_CONSTANT (1300819380)

#define SECRET "herald-test-secret-0123456789abcdef"
#define HS256_HEADER "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"
#define NOW G_GINT64_CONSTANT (1700000000)

/* ---- helpers ---- */

static char *
b64url_str (const char *text)
{
  return herald_base64url_encode (text, strlen (text));
}

static GBytes *
b64url_decode (const char *text)
{
  g_autoptr (GString) s = g_string_new (text);
  guchar *data;
  gsize length;

  g_string_replace (s, "-", "+", 0);
  g_string_replace (s, "_", "/", 0);
  while (s->len % 4 != 0)
    g_string_append_c (s, '=');
  data = g_base64_decode (s->str, &length);
  return g_bytes_new_take (data, length);
}

static GBytes *
test_secret (void)
{
  return g_bytes_new_static (SECRET, strlen (SECRET));
}

/* HS256 token with an arbitrary header and payload (may hold any bytes). */
static char *
make_hs256_len (const char *header_json, const char *payload, gsize payload_length)
{
  g_autofree char *header = b64url_str (header_json);
  g_autofree char *body = herald_base64url_encode (payload, payload_length);
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
make_hs256 (const char *header_json, const char *payload_json)
{
  return make_hs256_len (header_json, payload_json, strlen (payload_json));
}

static char *
key_path (const char *name)
{
  return g_test_build_filename (G_TEST_DIST, "keys", name, NULL);
}

/* Signs with a private key from tests/keys; for ES256 the DER signature is
 * converted to the raw R||S form JWS uses. */
static char *
make_signed (const char *key_file, HeraldJwtAlg alg, const char *header_json, const char *payload)
{
  return herald_test_token_sign (key_file, alg == HERALD_JWT_ALG_ES256, header_json, payload);
}

static HeraldJwtVerifier *
hmac_verifier (void)
{
  g_autoptr (GBytes) secret = test_secret ();

  return herald_jwt_verifier_new_hmac (secret);
}

static HeraldJwtVerifier *
key_verifier (HeraldJwtAlg alg, const char *key_file)
{
  g_autofree char *path = key_path (key_file);
  g_autoptr (GError) error = NULL;
  HeraldJwtVerifier *verifier = herald_jwt_verifier_new_public_key (alg, path, &error);

  g_assert_no_error (error);
  g_assert_nonnull (verifier);
  return verifier;
}

static HeraldJwtClaims *
expect_ok (HeraldJwtVerifier *verifier, const char *token, gint64 now, guint leeway)
{
  g_autoptr (GError) error = NULL;
  HeraldJwtClaims *claims = herald_jwt_verifier_verify (verifier, token, now, leeway, &error);

  g_assert_no_error (error);
  g_assert_nonnull (claims);
  return claims;
}

static void
expect_error (HeraldJwtVerifier *verifier, const char *token, gint64 now, guint leeway, int code)
{
  g_autoptr (GError) error = NULL;
  HeraldJwtClaims *claims = herald_jwt_verifier_verify (verifier, token, now, leeway, &error);

  g_assert_null (claims);
  g_assert_error (error, HERALD_JWT_ERROR, code);
  /* Messages may end up in logs: they must quote neither token nor secret. */
  if (token != NULL)
    {
      const char *dot = strchr (token, '.');
      g_autofree char *first
          = g_strndup (token, dot != NULL ? (gsize)(dot - token) : strlen (token));

      if (strlen (first) >= 8)
        g_assert_null (strstr (error->message, first));
      if (dot != NULL && strlen (dot + 1) >= 8)
        g_assert_null (strstr (error->message, dot + 1));
    }
  g_assert_null (strstr (error->message, SECRET));
}

static void
expect_hs256_payload_error (const char *payload_json, int code)
{
  g_autoptr (HeraldJwtVerifier) verifier = hmac_verifier ();
  g_autofree char *token = make_hs256 (HS256_HEADER, payload_json);

  expect_error (verifier, token, NOW, 0, code);
}

static void
expect_hs256_header_error (const char *header_json, int code)
{
  g_autoptr (HeraldJwtVerifier) verifier = hmac_verifier ();
  g_autofree char *token = make_hs256 (header_json, "{\"sub\":\"u1\"}");

  expect_error (verifier, token, NOW, 0, code);
}

/* ---- tests ---- */

static void
test_rfc7515_a1 (void)
{
  g_autoptr (GBytes) key = b64url_decode (RFC7515_A1_KEY);
  g_autoptr (HeraldJwtVerifier) verifier = herald_jwt_verifier_new_hmac (key);
  g_autoptr (HeraldJwtClaims) claims = NULL;

  g_assert_cmpuint (g_bytes_get_size (key), ==, 64);
  g_assert_cmpint (herald_jwt_verifier_get_algorithm (verifier), ==, HERALD_JWT_ALG_HS256);

  /* The header JSON contains a CRLF and "typ":"JWT": it must still parse. */
  claims = expect_ok (verifier, RFC7515_A1_TOKEN, RFC_EXP - 1, 0);
  g_assert_null (claims->sub);
  g_assert_cmpint (claims->exp, ==, RFC_EXP);
  g_assert_cmpint (claims->nbf, ==, 0);
  g_assert_cmpint (claims->iat, ==, 0);
  g_assert_null (claims->channels);
  g_assert_null (claims->publish);

  expect_error (verifier, RFC7515_A1_TOKEN, RFC_EXP, 0, HERALD_JWT_ERROR_EXPIRED);
}

static void
test_rfc7519_3_1 (void)
{
  g_autoptr (GBytes) key = b64url_decode (RFC7515_A1_KEY);
  g_autoptr (HeraldJwtVerifier) verifier = herald_jwt_verifier_new_hmac (key);
  g_autoptr (HeraldJwtClaims) claims = NULL;
  g_autoptr (GBytes) other_key = test_secret ();
  g_autoptr (HeraldJwtVerifier) other = herald_jwt_verifier_new_hmac (other_key);

  claims = expect_ok (verifier, RFC7519_3_1_TOKEN, RFC_EXP - 1000, 0);
  g_assert_cmpint (claims->exp, ==, RFC_EXP);
  /* Within leeway after exp it is still accepted. */
  herald_jwt_claims_free (g_steal_pointer (&claims));
  claims = expect_ok (verifier, RFC7519_3_1_TOKEN, RFC_EXP + 59, 60);

  expect_error (other, RFC7519_3_1_TOKEN, RFC_EXP - 1, 0, HERALD_JWT_ERROR_SIGNATURE);
}

static void
test_sign_hs256 (void)
{
  g_autoptr (GBytes) key = g_bytes_new_static ("your-256-bit-secret", 19);
  g_autofree char *token = NULL;

  /* The widely published example token for this header, payload and secret. */
  token = herald_jwt_sign_hs256 (
      key, "{\"sub\":\"1234567890\",\"name\":\"John Doe\",\"iat\":1516239022}");
  g_assert_cmpstr (token, ==,
                   "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
                   ".eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ"
                   ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c");
  g_assert_null (strchr (token, '='));
}

static void
test_roundtrip_claims (void)
{
  g_autoptr (GBytes) secret = test_secret ();
  g_autoptr (HeraldJwtVerifier) verifier = herald_jwt_verifier_new_hmac (secret);
  g_autoptr (HeraldJwtClaims) claims = NULL;
  g_autofree char *token = NULL;
  const char *const expected_channels[] = { "news", "chat.*", NULL };
  const char *const expected_publish[] = { "chat.room1", NULL };

  token = herald_jwt_sign_hs256 (secret, "{\"sub\":\"user-1\",\"exp\":1700000100,"
                                         "\"nbf\":1699999900,\"iat\":1699999950.75,"
                                         "\"channels\":[\"news\",\"chat.*\"],"
                                         "\"publish\":[\"chat.room1\"],\"extra\":{\"a\":1}}");
  claims = expect_ok (verifier, token, NOW, 0);
  g_assert_cmpstr (claims->sub, ==, "user-1");
  g_assert_cmpint (claims->exp, ==, 1700000100);
  g_assert_cmpint (claims->nbf, ==, 1699999900);
  g_assert_cmpint (claims->iat, ==, 1699999950); /* reals are truncated */
  g_assert_cmpstrv (claims->channels, expected_channels);
  g_assert_cmpstrv (claims->publish, expected_publish);
  g_assert_true (herald_channel_pattern_match ((const char *const *)claims->channels, "chat.x"));
  g_assert_false (herald_channel_pattern_match ((const char *const *)claims->publish, "news"));

  /* An empty array is present (restricts to nothing), unlike an absent claim. */
  herald_jwt_claims_free (g_steal_pointer (&claims));
  g_free (token);
  token = herald_jwt_sign_hs256 (secret, "{\"channels\":[]}");
  claims = expect_ok (verifier, token, NOW, 0);
  g_assert_nonnull (claims->channels);
  g_assert_null (claims->channels[0]);
  g_assert_null (claims->publish);
  g_assert_null (claims->sub);

  /* Empty claims are fine; a huge exp does not overflow with leeway. */
  herald_jwt_claims_free (g_steal_pointer (&claims));
  g_free (token);
  token = herald_jwt_sign_hs256 (secret, "{\"exp\":9223372036854775807}");
  claims = expect_ok (verifier, token, NOW, 3600);
  g_assert_cmpint (claims->exp, ==, G_MAXINT64);
}

static void
test_header_typ (void)
{
  g_autoptr (HeraldJwtVerifier) verifier = hmac_verifier ();
  const char *ok_headers[] = {
    "{\"alg\":\"HS256\"}",
    "{\"alg\":\"HS256\",\"typ\":\"jwt\"}",
    "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"k1\"}",
  };

  for (gsize i = 0; i < G_N_ELEMENTS (ok_headers); i++)
    {
      g_autofree char *token = make_hs256 (ok_headers[i], "{}");
      g_autoptr (HeraldJwtClaims) claims = expect_ok (verifier, token, NOW, 0);
    }

  expect_hs256_header_error ("{\"alg\":\"HS256\",\"typ\":\"JOSE\"}", HERALD_JWT_ERROR_MALFORMED);
  expect_hs256_header_error ("{\"alg\":\"HS256\",\"typ\":1}", HERALD_JWT_ERROR_MALFORMED);
  expect_hs256_header_error ("{\"alg\":\"HS256\",\"crit\":[\"exp\"],\"exp\":1}",
                             HERALD_JWT_ERROR_MALFORMED);
  expect_hs256_header_error ("{\"typ\":\"JWT\"}", HERALD_JWT_ERROR_MALFORMED);
  expect_hs256_header_error ("{\"alg\":256}", HERALD_JWT_ERROR_MALFORMED);
}

static void
test_wrong_alg (void)
{
  g_autoptr (HeraldJwtVerifier) rs = key_verifier (HERALD_JWT_ALG_RS256, "rsa-public.pem");
  g_autoptr (HeraldJwtVerifier) es = key_verifier (HERALD_JWT_ALG_ES256, "ec-public.pem");
  g_autofree char *pem = NULL;
  g_autofree char *path = key_path ("rsa-public.pem");
  g_autofree char *hs_token = make_hs256 (HS256_HEADER, "{\"sub\":\"u1\"}");
  g_autofree char *rs_token = NULL;
  g_autofree char *confused = NULL;
  g_autofree char *header_b64 = NULL;
  g_autofree char *payload_b64 = NULL;
  g_autofree char *input = NULL;
  g_autofree char *sig = NULL;
  gsize pem_length;
  guint8 mac[32];

  expect_hs256_header_error ("{\"alg\":\"HS512\",\"typ\":\"JWT\"}", HERALD_JWT_ERROR_ALGORITHM);
  expect_hs256_header_error ("{\"alg\":\"RS256\"}", HERALD_JWT_ERROR_ALGORITHM);
  expect_hs256_header_error ("{\"alg\":\"hs256\"}", HERALD_JWT_ERROR_ALGORITHM);

  /* An HS256 token is refused by RS256 and ES256 verifiers... */
  expect_error (rs, hs_token, NOW, 0, HERALD_JWT_ERROR_ALGORITHM);
  expect_error (es, hs_token, NOW, 0, HERALD_JWT_ERROR_ALGORITHM);

  /* ...including the classic key confusion: HMAC keyed with the public key PEM. */
  g_assert_true (g_file_get_contents (path, &pem, &pem_length, NULL));
  header_b64 = b64url_str ("{\"alg\":\"HS256\"}");
  payload_b64 = b64url_str ("{\"sub\":\"admin\"}");
  input = g_strconcat (header_b64, ".", payload_b64, NULL);
  g_assert_cmpint (
      gnutls_hmac_fast (GNUTLS_MAC_SHA256, pem, pem_length, input, strlen (input), mac), ==, 0);
  sig = herald_base64url_encode (mac, sizeof mac);
  confused = g_strconcat (input, ".", sig, NULL);
  expect_error (rs, confused, NOW, 0, HERALD_JWT_ERROR_ALGORITHM);

  /* An RS256 token is refused by ES256 and HS256 verifiers. */
  rs_token = make_signed ("rsa-private.pem", HERALD_JWT_ALG_RS256, "{\"alg\":\"RS256\"}", "{}");
  expect_error (es, rs_token, NOW, 0, HERALD_JWT_ERROR_ALGORITHM);
  {
    g_autoptr (HeraldJwtVerifier) hs = hmac_verifier ();
    expect_error (hs, rs_token, NOW, 0, HERALD_JWT_ERROR_ALGORITHM);
  }
}

static void
test_alg_none (void)
{
  g_autoptr (HeraldJwtVerifier) verifier = hmac_verifier ();
  g_autoptr (HeraldJwtVerifier) rs = key_verifier (HERALD_JWT_ALG_RS256, "rsa-public.pem");
  g_autofree char *stripped = NULL;
  g_autofree char *signed_none = make_hs256 ("{\"alg\":\"none\"}", "{\"sub\":\"u1\"}");

  expect_error (verifier, RFC7519_6_1_TOKEN, RFC_EXP - 1, 0, HERALD_JWT_ERROR_ALGORITHM);
  expect_error (rs, RFC7519_6_1_TOKEN, RFC_EXP - 1, 0, HERALD_JWT_ERROR_ALGORITHM);
  /* Even with a signature that would verify under the secret. */
  expect_error (verifier, signed_none, NOW, 0, HERALD_JWT_ERROR_ALGORITHM);
  expect_hs256_header_error ("{\"alg\":\"None\"}", HERALD_JWT_ERROR_ALGORITHM);
  expect_hs256_header_error ("{\"alg\":\"NONE\"}", HERALD_JWT_ERROR_ALGORITHM);

  /* A valid HS256 token with its signature stripped. */
  stripped = make_hs256 (HS256_HEADER, "{}");
  *(strrchr (stripped, '.') + 1) = '\0';
  expect_error (verifier, stripped, NOW, 0, HERALD_JWT_ERROR_SIGNATURE);
}

static void
test_tampered (void)
{
  g_autoptr (HeraldJwtVerifier) verifier = hmac_verifier ();
  g_autofree char *token = make_hs256 (HS256_HEADER, "{\"sub\":\"alice\"}");
  g_autofree char *other = make_hs256 (HS256_HEADER, "{\"sub\":\"mallory\"}");
  g_autofree char *mixed = NULL;
  g_autofree char *tampered_sig = NULL;
  g_autofree char *short_sig = NULL;
  g_autofree char *long_sig = NULL;
  char *sig;

  herald_jwt_claims_free (expect_ok (verifier, token, NOW, 0));

  /* Payload of one token with the signature of another. */
  {
    g_autofree char *other_input = g_strndup (other, strrchr (other, '.') - other);
    mixed = g_strconcat (other_input, strrchr (token, '.'), NULL);
  }
  expect_error (verifier, mixed, NOW, 0, HERALD_JWT_ERROR_SIGNATURE);

  /* One changed character at the start of the signature (keeps canonical base64url). */
  tampered_sig = g_strdup (token);
  sig = strrchr (tampered_sig, '.') + 1;
  sig[0] = sig[0] == 'A' ? 'B' : 'A';
  expect_error (verifier, tampered_sig, NOW, 0, HERALD_JWT_ERROR_SIGNATURE);

  /* Wrong signature lengths. */
  {
    g_autoptr (GBytes) raw = b64url_decode (strrchr (token, '.') + 1);
    g_autofree char *input = g_strndup (token, strrchr (token, '.') + 1 - token);
    g_autofree char *truncated = herald_base64url_encode (g_bytes_get_data (raw, NULL), 31);

    g_assert_cmpuint (g_bytes_get_size (raw), ==, 32);
    short_sig = g_strconcat (input, truncated, NULL);
  }
  expect_error (verifier, short_sig, NOW, 0, HERALD_JWT_ERROR_SIGNATURE);
  long_sig = g_strconcat (token, "AAAA", NULL);
  expect_error (verifier, long_sig, NOW, 0, HERALD_JWT_ERROR_SIGNATURE);
}

static void
test_bad_base64 (void)
{
  g_autoptr (HeraldJwtVerifier) verifier = hmac_verifier ();
  g_autofree char *token = make_hs256 (HS256_HEADER, "{\"sub\":\"u1\"}");
  const char *inserts[] = { "+", "/", "=", " ", "\n", "*", "%", "\xc3\xa9" };
  gsize header_length = strchr (token, '.') - token;
  gsize sig_start = strrchr (token, '.') - token + 1;

  for (gsize i = 0; i < G_N_ELEMENTS (inserts); i++)
    {
      /* Replace the first character of the header, payload, then signature. */
      gsize positions[] = { 0, header_length + 1, sig_start };

      for (gsize j = 0; j < G_N_ELEMENTS (positions); j++)
        {
          g_autoptr (GString) bad = g_string_new (token);

          g_string_erase (bad, (gssize)positions[j], 1);
          g_string_insert (bad, (gssize)positions[j], inserts[i]);
          expect_error (verifier, bad->str, NOW, 0, HERALD_JWT_ERROR_MALFORMED);
        }
    }
}

static void
test_padding (void)
{
  g_autoptr (HeraldJwtVerifier) verifier = hmac_verifier ();
  g_autofree char *token = NULL;
  g_autofree char *padded_sig = NULL;
  g_autofree char *padded_header = NULL;
  g_autofree char *header_b64 = NULL;
  g_autofree char *payload_b64 = NULL;
  g_autofree char *noncanonical = NULL;
  char *sig;

  /* The HS256 signature is 32 bytes: 43 characters unpadded, 44 with "=". */
  token = make_hs256 (HS256_HEADER, "{}");
  herald_jwt_claims_free (expect_ok (verifier, token, NOW, 0));
  padded_sig = g_strconcat (token, "=", NULL);
  expect_error (verifier, padded_sig, NOW, 0, HERALD_JWT_ERROR_MALFORMED);

  /* {"alg":"HS256"} encodes to 20 characters (15 bytes); "{"alg":"HS256"} " to 22 + "==". */
  header_b64 = b64url_str ("{\"alg\":\"HS256\"} ");
  g_assert_cmpuint (strlen (header_b64) % 4, !=, 0);
  payload_b64 = b64url_str ("{}");
  padded_header = g_strdup_printf ("%s==.%s.%s", header_b64, payload_b64, strrchr (token, '.') + 1);
  expect_error (verifier, padded_header, NOW, 0, HERALD_JWT_ERROR_MALFORMED);

  /* Non-zero unused trailing bits: a second spelling of the same bytes. */
  noncanonical = g_strdup (token);
  sig = noncanonical + strlen (noncanonical) - 1;
  g_assert_cmpuint (strlen (strrchr (token, '.') + 1), ==, 43);
  *sig = *sig == 'A' ? 'B' : (char)(*sig + 1);
  expect_error (verifier, noncanonical, NOW, 0, HERALD_JWT_ERROR_MALFORMED);

  /* A length of 1 mod 4 can never be valid base64. */
  {
    g_autofree char *odd = g_strconcat (token, "AA", NULL); /* 45 characters */
    expect_error (verifier, odd, NOW, 0, HERALD_JWT_ERROR_MALFORMED);
  }
}

static void
test_parts (void)
{
  g_autoptr (HeraldJwtVerifier) verifier = hmac_verifier ();
  g_autofree char *token = make_hs256 (HS256_HEADER, "{\"sub\":\"u1\"}");
  g_autofree char *two = g_strndup (token, strrchr (token, '.') - token);
  g_autofree char *four = g_strconcat (token, ".", NULL);
  g_autofree char *four_full = g_strconcat (token, ".AAAA", NULL);

  expect_error (verifier, two, NOW, 0, HERALD_JWT_ERROR_MALFORMED);
  expect_error (verifier, four, NOW, 0, HERALD_JWT_ERROR_MALFORMED);
  expect_error (verifier, four_full, NOW, 0, HERALD_JWT_ERROR_MALFORMED);
  expect_error (verifier, "", NOW, 0, HERALD_JWT_ERROR_MALFORMED);
  expect_error (verifier, NULL, NOW, 0, HERALD_JWT_ERROR_MALFORMED);
  expect_error (verifier, "abcd", NOW, 0, HERALD_JWT_ERROR_MALFORMED);
  expect_error (verifier, "..", NOW, 0, HERALD_JWT_ERROR_MALFORMED);
  expect_error (verifier, "...", NOW, 0, HERALD_JWT_ERROR_MALFORMED);
}

static void
test_not_json_object (void)
{
  g_autoptr (HeraldJwtVerifier) verifier = hmac_verifier ();

  /* Header not JSON, or JSON but not an object. */
  expect_hs256_header_error ("not json", HERALD_JWT_ERROR_MALFORMED);
  expect_hs256_header_error ("[\"HS256\"]", HERALD_JWT_ERROR_MALFORMED);
  expect_hs256_header_error ("\"HS256\"", HERALD_JWT_ERROR_MALFORMED);
  expect_hs256_header_error ("{\"alg\":\"HS256\"", HERALD_JWT_ERROR_MALFORMED);
  expect_hs256_header_error ("", HERALD_JWT_ERROR_MALFORMED);

  /* Correctly signed payloads that are not JSON objects. */
  expect_hs256_payload_error ("[]", HERALD_JWT_ERROR_MALFORMED);
  expect_hs256_payload_error ("\"sub\"", HERALD_JWT_ERROR_MALFORMED);
  expect_hs256_payload_error ("42", HERALD_JWT_ERROR_MALFORMED);
  expect_hs256_payload_error ("null", HERALD_JWT_ERROR_MALFORMED);
  expect_hs256_payload_error ("{\"sub\":", HERALD_JWT_ERROR_MALFORMED);
  expect_hs256_payload_error ("hello", HERALD_JWT_ERROR_MALFORMED);
  expect_hs256_payload_error ("", HERALD_JWT_ERROR_MALFORMED);

  /* Embedded NUL and invalid UTF-8. */
  {
    g_autofree char *nul = make_hs256_len (HS256_HEADER, "{}\0{\"sub\":\"x\"}", 14);
    g_autofree char *latin1 = make_hs256 (HS256_HEADER, "{\"sub\":\"caf\xe9\"}");

    expect_error (verifier, nul, NOW, 0, HERALD_JWT_ERROR_MALFORMED);
    expect_error (verifier, latin1, NOW, 0, HERALD_JWT_ERROR_MALFORMED);
  }
}

/* json-glib ends strings at U+0000, so "admin\u0000-attacker" would be
 * user "admin"; it also takes a second object and wraps big integers. Each
 * such token is refused, whatever its signature. */
static void
test_claims_read_exactly (void)
{
  const char *refused[] = {
    "{\"sub\":\"admin\\u0000-attacker\"}",
    "{\"sub\":\"u\",\"channels\":[\"news\\u0000x\"]}",
    "{\"sub\":\"u\",\"publish\":[\"ok\",\"news\\u0000x\"]}",
    "{\"sub\":\"u\",\"extra\":{\"deep\":\"\\u0000\"}}",
    "{\"sub\\u0000x\":\"u\"}",
    "{\"sub\":\"u\",\"exp\":-9223372036854775809}",
    "{\"sub\":\"u\",\"exp\":18446744073709551615}",
    "{\"sub\":\"u\"}{\"sub\":\"admin\"}",
    "{\"sub\":\"u\",\"x\":01}",
    "{'sub':'u'}",
  };
  g_autoptr (HeraldJwtVerifier) verifier = hmac_verifier ();

  for (guint i = 0; i < G_N_ELEMENTS (refused); i++)
    expect_hs256_payload_error (refused[i], HERALD_JWT_ERROR_MALFORMED);
  expect_hs256_header_error ("{\"alg\":\"HS256\",\"kid\":\"a\\u0000b\"}",
                             HERALD_JWT_ERROR_MALFORMED);
  expect_hs256_header_error ("{\"alg\":\"HS256\"}{}", HERALD_JWT_ERROR_MALFORMED);

  /* The same claims without U+0000 are fine. */
  {
    g_autofree char *token = make_hs256 (
        HS256_HEADER,
        "{\"sub\":\"admin-attacker\",\"channels\":[\"news\"],\"exp\":9223372036854775807}");
    g_autoptr (HeraldJwtClaims) claims = expect_ok (verifier, token, NOW, 0);

    g_assert_cmpstr (claims->sub, ==, "admin-attacker");
  }
}

static void
test_expiry (void)
{
  g_autoptr (HeraldJwtVerifier) verifier = hmac_verifier ();
  g_autofree char *token = make_hs256 (HS256_HEADER, "{\"exp\":1700000000}");
  g_autofree char *real_exp = make_hs256 (HS256_HEADER, "{\"exp\":1700000000.9}");

  /* now >= exp is expired without leeway. */
  herald_jwt_claims_free (expect_ok (verifier, token, NOW - 1, 0));
  expect_error (verifier, token, NOW, 0, HERALD_JWT_ERROR_EXPIRED);
  expect_error (verifier, token, NOW + 1000, 0, HERALD_JWT_ERROR_EXPIRED);

  /* Within leeway accepted; at exp + leeway expired. */
  herald_jwt_claims_free (expect_ok (verifier, token, NOW + 29, 30));
  expect_error (verifier, token, NOW + 30, 30, HERALD_JWT_ERROR_EXPIRED);

  /* Reals are truncated: 1700000000.9 behaves as 1700000000. */
  expect_error (verifier, real_exp, NOW, 0, HERALD_JWT_ERROR_EXPIRED);
}

static void
test_not_yet_valid (void)
{
  g_autoptr (HeraldJwtVerifier) verifier = hmac_verifier ();
  g_autofree char *nbf = make_hs256 (HS256_HEADER, "{\"nbf\":1700000010}");
  g_autofree char *iat = make_hs256 (HS256_HEADER, "{\"iat\":1700000100}");
  g_autofree char *iat_past = make_hs256 (HS256_HEADER, "{\"iat\":1600000000}");

  expect_error (verifier, nbf, NOW, 0, HERALD_JWT_ERROR_NOT_YET_VALID);
  expect_error (verifier, nbf, NOW, 9, HERALD_JWT_ERROR_NOT_YET_VALID);
  herald_jwt_claims_free (expect_ok (verifier, nbf, NOW, 10));
  herald_jwt_claims_free (expect_ok (verifier, nbf, NOW + 10, 0));

  expect_error (verifier, iat, NOW, 30, HERALD_JWT_ERROR_NOT_YET_VALID);
  herald_jwt_claims_free (expect_ok (verifier, iat, NOW, 100));
  herald_jwt_claims_free (expect_ok (verifier, iat_past, NOW, 0));
}

static void
test_claim_types (void)
{
  const char *bad[] = {
    "{\"sub\":42}",
    "{\"sub\":null}",
    "{\"sub\":[\"u1\"]}",
    "{\"sub\":true}",
    "{\"exp\":\"1700000100\"}",
    "{\"exp\":true}",
    "{\"exp\":null}",
    "{\"exp\":1e300}",
    "{\"nbf\":[1]}",
    "{\"iat\":{}}",
    "{\"channels\":\"news\"}",
    "{\"channels\":[\"news\",1]}",
    "{\"channels\":{\"news\":true}}",
    "{\"channels\":null}",
    "{\"publish\":[null]}",
    "{\"publish\":[[\"news\"]]}",
    "{\"publish\":true}",
  };

  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    expect_hs256_payload_error (bad[i], HERALD_JWT_ERROR_MALFORMED);
}

static void
test_oversize (void)
{
  g_autoptr (HeraldJwtVerifier) verifier = hmac_verifier ();
  g_autoptr (GBytes) secret = test_secret ();
  gsize filler = 100;

  /* Grow a validly signed token until it crosses 8 KiB: the last one that
   * fits is accepted, the first one over is refused before any parsing. */
  for (;;)
    {
      g_autofree char *pad = g_strnfill (filler, 'x');
      g_autofree char *claims = g_strdup_printf ("{\"pad\":\"%s\"}", pad);
      g_autofree char *token = herald_jwt_sign_hs256 (secret, claims);

      if (strlen (token) > 8192)
        {
          g_assert_cmpuint (strlen (token), <=, 8194);
          expect_error (verifier, token, NOW, 0, HERALD_JWT_ERROR_MALFORMED);
          break;
        }
      herald_jwt_claims_free (expect_ok (verifier, token, NOW, 0));
      filler += strlen (token) < 8150 ? (8150 - strlen (token)) * 3 / 4 + 1 : 1;
    }

  /* A very long string is also bounded. */
  {
    g_autofree char *huge = g_strnfill (1 << 20, 'A');
    expect_error (verifier, huge, NOW, 0, HERALD_JWT_ERROR_MALFORMED);
  }
}

static void
test_rs256 (void)
{
  g_autoptr (HeraldJwtVerifier) verifier = key_verifier (HERALD_JWT_ALG_RS256, "rsa-public.pem");
  g_autoptr (HeraldJwtVerifier) cert_verifier
      = key_verifier (HERALD_JWT_ALG_RS256, "server-cert.pem");
  g_autofree char *token
      = make_signed ("rsa-private.pem", HERALD_JWT_ALG_RS256, "{\"alg\":\"RS256\",\"typ\":\"JWT\"}",
                     "{\"sub\":\"rsa-user\",\"exp\":1700000100}");
  g_autofree char *server_token = make_signed ("server-key.pem", HERALD_JWT_ALG_RS256,
                                               "{\"alg\":\"RS256\"}", "{\"sub\":\"srv\"}");
  g_autofree char *tampered = NULL;
  g_autoptr (HeraldJwtClaims) claims = NULL;
  g_autofree char *other_body = b64url_str ("{\"sub\":\"root\",\"exp\":1700000100}");

  g_assert_cmpint (herald_jwt_verifier_get_algorithm (verifier), ==, HERALD_JWT_ALG_RS256);
  claims = expect_ok (verifier, token, NOW, 0);
  g_assert_cmpstr (claims->sub, ==, "rsa-user");
  expect_error (verifier, token, NOW + 100, 0, HERALD_JWT_ERROR_EXPIRED);

  /* A certificate works as the key source. */
  herald_jwt_claims_free (expect_ok (cert_verifier, server_token, NOW, 0));

  /* Wrong key in both directions. */
  expect_error (cert_verifier, token, NOW, 0, HERALD_JWT_ERROR_SIGNATURE);
  expect_error (verifier, server_token, NOW, 0, HERALD_JWT_ERROR_SIGNATURE);

  /* Payload swapped under the original signature. */
  {
    char *dot1 = strchr (token, '.');
    char *dot2 = strrchr (token, '.');
    g_autofree char *head = g_strndup (token, dot1 - token);

    tampered = g_strconcat (head, ".", other_body, dot2, NULL);
    expect_error (verifier, tampered, NOW, 0, HERALD_JWT_ERROR_SIGNATURE);
  }
}

static void
test_es256 (void)
{
  g_autoptr (HeraldJwtVerifier) verifier = key_verifier (HERALD_JWT_ALG_ES256, "ec-public.pem");
  g_autoptr (HeraldJwtVerifier) rs = key_verifier (HERALD_JWT_ALG_RS256, "rsa-public.pem");
  g_autofree char *token = NULL;

  g_assert_cmpint (herald_jwt_verifier_get_algorithm (verifier), ==, HERALD_JWT_ALG_ES256);

  /* ECDSA signatures are random: several rounds exercise R/S values with
   * leading zero bytes and with the high bit set. */
  for (int i = 0; i < 48; i++)
    {
      g_autofree char *payload = g_strdup_printf ("{\"sub\":\"ec-%d\"}", i);
      g_autofree char *t = make_signed ("ec-private.pem", HERALD_JWT_ALG_ES256,
                                        "{\"alg\":\"ES256\",\"typ\":\"JWT\"}", payload);
      g_autoptr (HeraldJwtClaims) claims = expect_ok (verifier, t, NOW, 0);
      g_autofree char *expected = g_strdup_printf ("ec-%d", i);

      g_assert_cmpstr (claims->sub, ==, expected);
    }

  token = make_signed ("ec-private.pem", HERALD_JWT_ALG_ES256, "{\"alg\":\"ES256\"}",
                       "{\"sub\":\"ec\"}");
  expect_error (rs, token, NOW, 0, HERALD_JWT_ERROR_ALGORITHM);

  /* Wrong-length signatures: 63, 66 bytes, and the DER form gnutls produces. */
  {
    char *sig = strrchr (token, '.') + 1;
    g_autoptr (GBytes) raw = b64url_decode (sig);
    gsize raw_length;
    const guint8 *raw_data = g_bytes_get_data (raw, &raw_length);
    g_autofree char *input = g_strndup (token, sig - token);
    g_autofree char *short_sig = herald_base64url_encode (raw_data, 63);
    g_autofree char *long_data = g_malloc0 (66);
    g_autofree char *long_sig = NULL;
    g_autofree char *t1 = NULL;
    g_autofree char *t2 = NULL;
    g_autofree char *t3 = NULL;
    g_autofree char *tampered = NULL;
    gnutls_datum_t r = { (unsigned char *)raw_data, 32 };
    gnutls_datum_t s = { (unsigned char *)raw_data + 32, 32 };
    gnutls_datum_t der = { NULL, 0 };
    g_autofree char *der_sig = NULL;
    guint8 flipped[64];

    g_assert_cmpuint (raw_length, ==, 64);
    memcpy (long_data, raw_data, 64);
    long_sig = herald_base64url_encode (long_data, 66);
    t1 = g_strconcat (input, short_sig, NULL);
    t2 = g_strconcat (input, long_sig, NULL);
    expect_error (verifier, t1, NOW, 0, HERALD_JWT_ERROR_SIGNATURE);
    expect_error (verifier, t2, NOW, 0, HERALD_JWT_ERROR_SIGNATURE);

    /* Only r and s with the high bit clear encode without a sign byte, but
     * any DER length other than 64 must be refused; skip the 1/2^n chance. */
    if (raw_data[0] != 0 && raw_data[32] != 0)
      {
        g_assert_cmpint (gnutls_encode_rs_value (&der, &r, &s), ==, 0);
        if (der.size != 64)
          {
            der_sig = herald_base64url_encode (der.data, der.size);
            t3 = g_strconcat (input, der_sig, NULL);
            expect_error (verifier, t3, NOW, 0, HERALD_JWT_ERROR_SIGNATURE);
          }
        gnutls_free (der.data);
      }

    /* Right length, one bit flipped in s. */
    memcpy (flipped, raw_data, 64);
    flipped[40] ^= 0x01;
    {
      g_autofree char *flipped_sig = herald_base64url_encode (flipped, 64);
      tampered = g_strconcat (input, flipped_sig, NULL);
    }
    expect_error (verifier, tampered, NOW, 0, HERALD_JWT_ERROR_SIGNATURE);

    /* All-zero signature. */
    {
      guint8 zeros[64] = { 0 };
      g_autofree char *zero_sig = herald_base64url_encode (zeros, 64);
      g_autofree char *t4 = g_strconcat (input, zero_sig, NULL);
      expect_error (verifier, t4, NOW, 0, HERALD_JWT_ERROR_SIGNATURE);
    }
  }
}

static void
test_key_errors (void)
{
  struct
  {
    HeraldJwtAlg alg;
    const char *file;
  } cases[] = {
    { HERALD_JWT_ALG_RS256, "ec-public.pem" },      { HERALD_JWT_ALG_ES256, "rsa-public.pem" },
    { HERALD_JWT_ALG_ES256, "server-cert.pem" },    { HERALD_JWT_ALG_RS256, "rsa-private.pem" },
    { HERALD_JWT_ALG_ES256, "ec-private.pem" },     { HERALD_JWT_ALG_HS256, "rsa-public.pem" },
    { HERALD_JWT_ALG_RS256, "rsa1024-public.pem" }, /* too short for RS256 */
    { HERALD_JWT_ALG_RS256, "dsa-public.pem" },     /* 2048 bits, but not RSA */
    { HERALD_JWT_ALG_ES256, "dsa-public.pem" },     { HERALD_JWT_ALG_RS256, "README" },
    { HERALD_JWT_ALG_RS256, "does-not-exist.pem" },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *path = key_path (cases[i].file);
      g_autoptr (GError) error = NULL;
      g_autoptr (HeraldJwtVerifier) verifier
          = herald_jwt_verifier_new_public_key (cases[i].alg, path, &error);

      g_test_message ("key case %" G_GSIZE_FORMAT ": %s", i, cases[i].file);
      g_assert_null (verifier);
      g_assert_error (error, HERALD_JWT_ERROR, HERALD_JWT_ERROR_KEY);
    }

  /* From memory: garbage and empty data. */
  {
    g_autoptr (GBytes) garbage = g_bytes_new_static ("-----BEGIN PUBLIC KEY-----\nAAAA\n", 31);
    g_autoptr (GBytes) empty = g_bytes_new_static ("", 0);
    g_autoptr (GError) error = NULL;
    g_autoptr (GError) error2 = NULL;

    g_assert_null (herald_jwt_verifier_new_public_key_data (HERALD_JWT_ALG_RS256, garbage, &error));
    g_assert_error (error, HERALD_JWT_ERROR, HERALD_JWT_ERROR_KEY);
    g_assert_null (herald_jwt_verifier_new_public_key_data (HERALD_JWT_ALG_ES256, empty, &error2));
    g_assert_error (error2, HERALD_JWT_ERROR, HERALD_JWT_ERROR_KEY);
  }

  /* And from memory, the happy path. */
  {
    g_autofree char *path = key_path ("ec-public.pem");
    g_autofree char *pem = NULL;
    gsize length;
    g_autoptr (GBytes) bytes = NULL;
    g_autoptr (GError) error = NULL;
    g_autoptr (HeraldJwtVerifier) verifier = NULL;

    g_assert_true (g_file_get_contents (path, &pem, &length, NULL));
    bytes = g_bytes_new (pem, length);
    verifier = herald_jwt_verifier_new_public_key_data (HERALD_JWT_ALG_ES256, bytes, &error);
    g_assert_no_error (error);
    g_assert_nonnull (verifier);
  }
}

static void
test_pattern_match (void)
{
  const char *const none[] = { NULL };
  const char *const exact[] = { "news", "chat.room1", NULL };
  const char *const prefix[] = { "chat.*", "user:42/*", NULL };
  const char *const all[] = { "*", NULL };
  const char *const literal_star[] = { "a*b", NULL };

  g_assert_false (herald_channel_pattern_match (NULL, "news"));
  g_assert_false (herald_channel_pattern_match (none, "news"));
  g_assert_false (herald_channel_pattern_match (exact, NULL));

  g_assert_true (herald_channel_pattern_match (exact, "news"));
  g_assert_true (herald_channel_pattern_match (exact, "chat.room1"));
  g_assert_false (herald_channel_pattern_match (exact, "new"));
  g_assert_false (herald_channel_pattern_match (exact, "newsroom"));
  g_assert_false (herald_channel_pattern_match (exact, "news.sport"));
  g_assert_false (herald_channel_pattern_match (exact, "chat.room10"));
  g_assert_false (herald_channel_pattern_match (exact, "NEWS"));

  g_assert_true (herald_channel_pattern_match (prefix, "chat.room1"));
  g_assert_true (herald_channel_pattern_match (prefix, "chat."));
  g_assert_true (herald_channel_pattern_match (prefix, "user:42/inbox"));
  g_assert_false (herald_channel_pattern_match (prefix, "chat"));
  g_assert_false (herald_channel_pattern_match (prefix, "chatroom"));
  g_assert_false (herald_channel_pattern_match (prefix, "user:420/inbox"));
  g_assert_false (herald_channel_pattern_match (prefix, "xchat.room1"));

  g_assert_true (herald_channel_pattern_match (all, "anything"));
  g_assert_true (herald_channel_pattern_match (all, ""));

  g_assert_true (herald_channel_pattern_match (literal_star, "a*b"));
  g_assert_false (herald_channel_pattern_match (literal_star, "axb"));
  g_assert_false (herald_channel_pattern_match (literal_star, "a"));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/jwt/rfc7515-a1", test_rfc7515_a1);
  g_test_add_func ("/jwt/rfc7519-3.1", test_rfc7519_3_1);
  g_test_add_func ("/jwt/sign-hs256", test_sign_hs256);
  g_test_add_func ("/jwt/roundtrip-claims", test_roundtrip_claims);
  g_test_add_func ("/jwt/header-typ-crit", test_header_typ);
  g_test_add_func ("/jwt/wrong-alg", test_wrong_alg);
  g_test_add_func ("/jwt/alg-none", test_alg_none);
  g_test_add_func ("/jwt/tampered", test_tampered);
  g_test_add_func ("/jwt/bad-base64", test_bad_base64);
  g_test_add_func ("/jwt/padding", test_padding);
  g_test_add_func ("/jwt/parts", test_parts);
  g_test_add_func ("/jwt/not-json-object", test_not_json_object);
  g_test_add_func ("/jwt/claims-read-exactly", test_claims_read_exactly);
  g_test_add_func ("/jwt/expiry", test_expiry);
  g_test_add_func ("/jwt/not-yet-valid", test_not_yet_valid);
  g_test_add_func ("/jwt/claim-types", test_claim_types);
  g_test_add_func ("/jwt/oversize", test_oversize);
  g_test_add_func ("/jwt/rs256", test_rs256);
  g_test_add_func ("/jwt/es256", test_es256);
  g_test_add_func ("/jwt/key-errors", test_key_errors);
  g_test_add_func ("/jwt/pattern-match", test_pattern_match);

  return g_test_run ();
}
