/* test-jwt-keys.c: JWK Sets ([auth] jwks-url) — parsing RSA, EC P-256 and
 * OKP Ed25519 keys, what is left out and why, and the verifier that picks a
 * key by the token's kid (algorithm from the key, pinning, rotation, the
 * unknown-kid callback, the swap under concurrent verification).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>

#include "herald-jwt.h"
#include "herald-test-tokens.h"

#define NOW G_GINT64_CONSTANT (1700000000)

static HeraldJwtKeys *
keys_from (const char *json, GPtrArray **skipped, GError **error)
{
  return herald_jwt_keys_new_from_data (json, strlen (json), skipped, error);
}

/* {"keys":[jwk, jwk…]} of NULL-terminated JWK texts. */
static char *
set_of (const char *first, ...)
{
  GString *out = g_string_new ("{\"keys\":[");
  va_list ap;

  va_start (ap, first);
  for (const char *jwk = first; jwk != NULL; jwk = va_arg (ap, const char *))
    {
      if (out->str[out->len - 1] != '[')
        g_string_append_c (out, ',');
      g_string_append (out, jwk);
    }
  va_end (ap);
  g_string_append (out, "]}");
  return g_string_free (out, FALSE);
}

static char *
token (const char *alg, const char *kid, const char *sub)
{
  g_autofree char *header = kid != NULL
                                ? g_strdup_printf ("{\"alg\":\"%s\",\"kid\":\"%s\"}", alg, kid)
                                : g_strdup_printf ("{\"alg\":\"%s\"}", alg);
  g_autofree char *payload = g_strdup_printf ("{\"sub\":\"%s\"}", sub);

  if (strcmp (alg, "RS256") == 0)
    return herald_test_token_sign ("rsa-private.pem", FALSE, header, payload);
  if (strcmp (alg, "ES256") == 0)
    return herald_test_token_sign ("ec-private.pem", TRUE, header, payload);
  return herald_test_token_sign_eddsa ("ed25519-private.pem", header, payload);
}

static void
expect_ok (HeraldJwtVerifier *v, const char *jwt, const char *sub)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (HeraldJwtClaims) claims = herald_jwt_verifier_verify (v, jwt, NOW, 0, &error);

  g_assert_no_error (error);
  g_assert_cmpstr (claims->sub, ==, sub);
}

static void
expect_error (HeraldJwtVerifier *v, const char *jwt, int code)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (HeraldJwtClaims) claims = herald_jwt_verifier_verify (v, jwt, NOW, 0, &error);

  g_assert_null (claims);
  g_assert_error (error, HERALD_JWT_ERROR, code);
}

static void
test_parse (void)
{
  g_autofree char *rsa = herald_test_jwk ("rsa-public.pem", "r1", "RS256");
  g_autofree char *ec = herald_test_jwk ("ec-public.pem", "e1", NULL);
  g_autofree char *okp = herald_test_jwk ("ed25519-public.pem", "o1", "EdDSA");
  g_autofree char *json = set_of (rsa, ec, okp, NULL);
  g_autoptr (GPtrArray) skipped = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (HeraldJwtKeys) keys = keys_from (json, &skipped, &error);
  g_auto (GStrv) ids = NULL;
  HeraldJwtAlg alg;
  gnutls_pubkey_t key = NULL;

  g_assert_no_error (error);
  g_assert_null (skipped);
  g_assert_cmpuint (herald_jwt_keys_get_n_keys (keys), ==, 3);
  ids = herald_jwt_keys_dup_ids (keys);
  g_assert_cmpstr (ids[0], ==, "r1");
  g_assert_cmpstr (ids[2], ==, "o1");
  g_assert_true (herald_jwt_keys_lookup (keys, "r1", &alg, &key));
  g_assert_cmpint (alg, ==, HERALD_JWT_ALG_RS256);
  g_assert_nonnull (key);
  g_assert_true (herald_jwt_keys_lookup (keys, "e1", &alg, NULL));
  g_assert_cmpint (alg, ==, HERALD_JWT_ALG_ES256);
  g_assert_true (herald_jwt_keys_lookup (keys, "o1", &alg, NULL));
  g_assert_cmpint (alg, ==, HERALD_JWT_ALG_EDDSA);
  g_assert_false (herald_jwt_keys_lookup (keys, "nope", &alg, NULL));
}

/* Keys Herald cannot use are left out, each with a reason; the rest stay. */
static void
test_skipped (void)
{
  g_autofree char *good = herald_test_jwk ("ed25519-public.pem", "ok", NULL);
  g_autofree char *short_rsa = herald_test_jwk ("rsa1024-public.pem", "small", NULL);
  g_autofree char *rs512 = herald_test_jwk ("rsa-public.pem", "rs512", "RS512");
  g_autofree char *wrong_alg = herald_test_jwk ("ec-public.pem", "ec-as-rsa", "RS256");
  g_autofree char *no_kid = herald_test_jwk ("ec-public.pem", NULL, NULL);
  g_autofree char *dup = herald_test_jwk ("rsa-public.pem", "ok", NULL);
  const char *oct = "{\"kty\":\"oct\",\"kid\":\"sym\",\"k\":\"c2VjcmV0\"}";
  const char *p384
      = "{\"kty\":\"EC\",\"kid\":\"p384\",\"crv\":\"P-384\",\"x\":\"AA\",\"y\":\"AA\"}";
  const char *enc = "{\"kty\":\"OKP\",\"kid\":\"enc\",\"use\":\"enc\",\"crv\":\"Ed25519\","
                    "\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}";
  const char *priv = "{\"kty\":\"OKP\",\"kid\":\"priv\",\"crv\":\"Ed25519\","
                     "\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\","
                     "\"d\":\"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A\"}";
  const char *bad_b64 = "{\"kty\":\"OKP\",\"kid\":\"b64\",\"crv\":\"Ed25519\",\"x\":\"!!\"}";
  const char *short_x = "{\"kty\":\"OKP\",\"kid\":\"short\",\"crv\":\"Ed25519\",\"x\":\"AAAA\"}";
  const char *x25519 = "{\"kty\":\"OKP\",\"kid\":\"x\",\"crv\":\"X25519\","
                       "\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}";
  g_autofree char *json = set_of (good, short_rsa, rs512, wrong_alg, no_kid, dup, oct, p384, enc,
                                  priv, bad_b64, short_x, x25519, "42", NULL);
  g_autoptr (GPtrArray) skipped = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (HeraldJwtKeys) keys = keys_from (json, &skipped, &error);
  g_autofree char *all = NULL;
  const char *expected[] = { "key 1 (kid \"small\"): the RSA key has 1024 bits",
                             "key 2 (kid \"rs512\"): alg \"RS512\" is not supported",
                             "key 3 (kid \"ec-as-rsa\"): alg \"RS256\" is not supported",
                             "key 4: no \"kid\"",
                             "key 5 (kid \"ok\"): its kid is used by an earlier key",
                             "key 6 (kid \"sym\"): kty \"oct\" is not supported",
                             "key 7 (kid \"p384\"): kty \"EC\" is supported with crv \"P-256\"",
                             "key 8 (kid \"enc\"): \"use\" is not \"sig\"",
                             "key 9 (kid \"priv\"): it is a private key",
                             "key 10 (kid \"b64\"): \"x\" is not base64url",
                             "key 11 (kid \"short\"): \"x\" must be 32 bytes, not 3",
                             "key 12 (kid \"x\"): kty \"OKP\" is supported with crv \"Ed25519\"",
                             "key 13: not a JSON object" };

  g_assert_no_error (error);
  g_assert_cmpuint (herald_jwt_keys_get_n_keys (keys), ==, 1);
  g_assert_true (herald_jwt_keys_lookup (keys, "ok", NULL, NULL));
  g_assert_nonnull (skipped);
  g_ptr_array_add (skipped, NULL);
  all = g_strjoinv ("\n", (char **)skipped->pdata);
  g_assert_cmpuint (skipped->len, ==, G_N_ELEMENTS (expected) + 1);
  for (guint i = 0; i < G_N_ELEMENTS (expected); i++)
    if (!g_str_has_prefix (skipped->pdata[i], expected[i]))
      g_error ("note %u is \"%s\", expected \"%s…\"\nall notes:\n%s", i, (char *)skipped->pdata[i],
               expected[i], all);
}

static void
test_invalid (void)
{
  g_autofree char *nothing_usable = set_of ("{\"kty\":\"oct\",\"kid\":\"a\",\"k\":\"AA\"}", NULL);
  g_autofree char *huge = g_strnfill (HERALD_JWT_KEYS_MAX_DOCUMENT + 1, ' ');
  const char *bad[] = { "",
                        "not json",
                        "{\"keys\":[]} trailing",
                        "[]",
                        "{\"keys\":{}}",
                        "{\"keys\":[]}",
                        "{\"other\":[]}",
                        "{\"keys\":[\"a\\u0000\"]}",
                        nothing_usable,
                        huge };

  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (HeraldJwtKeys) keys = keys_from (bad[i], NULL, &error);

      g_assert_null (keys);
      g_assert_error (error, HERALD_JWT_KEYS_ERROR, HERALD_JWT_KEYS_ERROR_INVALID);
    }
}

static void
on_unknown (const char *kid, gpointer user_data)
{
  GPtrArray *seen = user_data;

  g_ptr_array_add (seen, g_strdup (kid));
}

static void
test_verify (void)
{
  g_autofree char *rsa = herald_test_jwk ("rsa-public.pem", "r1", NULL);
  g_autofree char *ec = herald_test_jwk ("ec-public.pem", "e1", "ES256");
  g_autofree char *okp = herald_test_jwk ("ed25519-public.pem", "o1", NULL);
  g_autofree char *other = herald_test_jwk ("ed25519-other-public.pem", "o2", NULL);
  g_autofree char *json = set_of (rsa, ec, okp, other, NULL);
  g_autoptr (HeraldJwtKeys) keys = keys_from (json, NULL, NULL);
  g_autoptr (HeraldJwtVerifier) v = herald_jwt_verifier_new_key_set (keys, FALSE, 0);
  g_autoptr (GPtrArray) unknown = g_ptr_array_new_with_free_func (g_free);
  g_autofree char *rs = token ("RS256", "r1", "alice");
  g_autofree char *es = token ("ES256", "e1", "bob");
  g_autofree char *ed = token ("EdDSA", "o1", "carol");

  herald_jwt_verifier_set_unknown_key_func (v, on_unknown, unknown, NULL);
  g_assert_true (herald_jwt_verifier_uses_key_set (v));
  expect_ok (v, rs, "alice");
  expect_ok (v, es, "bob");
  expect_ok (v, ed, "carol");
  g_assert_cmpuint (unknown->len, ==, 0);

  /* the kid picks the key: the other Ed25519 key does not verify it */
  {
    g_autofree char *wrong_key = token ("EdDSA", "o2", "carol");

    expect_error (v, wrong_key, HERALD_JWT_ERROR_SIGNATURE);
  }
  /* the key's algorithm, not the token's, decides: an RSA key's kid with
   * ES256, an EC key's with RS256, an HS256 token naming a public key */
  {
    g_autofree char *es_as_rsa = token ("ES256", "r1", "x");
    g_autofree char *rs_as_ec = token ("RS256", "e1", "x");
    g_autoptr (GBytes) secret = g_bytes_new_static ("secret", 6);
    g_autofree char *hs_plain = herald_jwt_sign_hs256 (secret, "{\"sub\":\"x\"}");

    expect_error (v, es_as_rsa, HERALD_JWT_ERROR_ALGORITHM);
    expect_error (v, rs_as_ec, HERALD_JWT_ERROR_ALGORITHM);
    /* no kid at all */
    expect_error (v, hs_plain, HERALD_JWT_ERROR_MALFORMED);
    {
      g_autofree char *no_kid = token ("RS256", NULL, "x");

      expect_error (v, no_kid, HERALD_JWT_ERROR_MALFORMED);
    }
  }
  /* an unknown kid: refused, and the owner of the set is told */
  {
    g_autofree char *unknown_kid = token ("RS256", "r9", "x");

    expect_error (v, unknown_kid, HERALD_JWT_ERROR_UNKNOWN_KEY);
    g_assert_cmpuint (unknown->len, ==, 1);
    g_assert_cmpstr (unknown->pdata[0], ==, "r9");
  }
  /* tampered: the payload swapped under an EdDSA signature */
  {
    g_autofree char *swapped = g_strdup (ed);
    char *dot = strchr (swapped, '.');

    dot[2] = dot[2] == 'A' ? 'B' : 'A';
    expect_error (v, swapped, HERALD_JWT_ERROR_SIGNATURE);
  }
}

static void
test_pinned (void)
{
  g_autofree char *rsa = herald_test_jwk ("rsa-public.pem", "r1", NULL);
  g_autofree char *okp = herald_test_jwk ("ed25519-public.pem", "o1", NULL);
  g_autofree char *json = set_of (rsa, okp, NULL);
  g_autoptr (HeraldJwtKeys) keys = keys_from (json, NULL, NULL);
  g_autoptr (HeraldJwtVerifier) v
      = herald_jwt_verifier_new_key_set (keys, TRUE, HERALD_JWT_ALG_EDDSA);
  g_autofree char *rs = token ("RS256", "r1", "alice");
  g_autofree char *ed = token ("EdDSA", "o1", "carol");

  g_assert_cmpint (herald_jwt_verifier_get_algorithm (v), ==, HERALD_JWT_ALG_EDDSA);
  expect_ok (v, ed, "carol");
  expect_error (v, rs, HERALD_JWT_ERROR_ALGORITHM);
}

/* A new set replaces the old one: a new kid appears, a removed one is gone. */
static void
test_rotation (void)
{
  g_autofree char *rsa = herald_test_jwk ("rsa-public.pem", "old", NULL);
  g_autofree char *ec = herald_test_jwk ("ec-public.pem", "new", NULL);
  g_autofree char *first = set_of (rsa, NULL);
  g_autofree char *second = set_of (ec, NULL);
  g_autoptr (HeraldJwtVerifier) v = herald_jwt_verifier_new_key_set (NULL, FALSE, 0);
  g_autoptr (HeraldJwtKeys) k1 = keys_from (first, NULL, NULL);
  g_autoptr (HeraldJwtKeys) k2 = keys_from (second, NULL, NULL);
  g_autofree char *old_token = token ("RS256", "old", "a");
  g_autofree char *new_token = token ("ES256", "new", "b");

  /* empty before the first set */
  expect_error (v, old_token, HERALD_JWT_ERROR_UNKNOWN_KEY);
  herald_jwt_verifier_set_keys (v, k1);
  expect_ok (v, old_token, "a");
  expect_error (v, new_token, HERALD_JWT_ERROR_UNKNOWN_KEY);
  herald_jwt_verifier_set_keys (v, k2);
  expect_ok (v, new_token, "b");
  expect_error (v, old_token, HERALD_JWT_ERROR_UNKNOWN_KEY);
  {
    g_autoptr (HeraldJwtKeys) now = herald_jwt_verifier_dup_keys (v);

    g_assert_true (now == k2);
  }
}

typedef struct
{
  HeraldJwtVerifier *verifier;
  const char *token;
  gint stop;
  guint ok;
} Reader;

static gpointer
reader_thread (gpointer data)
{
  Reader *r = data;

  while (!g_atomic_int_get (&r->stop))
    {
      g_autoptr (HeraldJwtClaims) claims
          = herald_jwt_verifier_verify (r->verifier, r->token, NOW, 0, NULL);

      if (claims != NULL)
        r->ok++;
    }
  return NULL;
}

/* Verifications in other threads while the set is swapped (for ASan/TSan). */
static void
test_swap_threads (void)
{
  g_autofree char *okp = herald_test_jwk ("ed25519-public.pem", "o1", NULL);
  g_autofree char *json = set_of (okp, NULL);
  g_autoptr (HeraldJwtVerifier) v = herald_jwt_verifier_new_key_set (NULL, FALSE, 0);
  g_autofree char *ed = token ("EdDSA", "o1", "carol");
  Reader r = { v, ed, 0, 0 };
  GThread *threads[2];

  for (guint i = 0; i < G_N_ELEMENTS (threads); i++)
    threads[i] = g_thread_new ("reader", reader_thread, &r);
  for (guint i = 0; i < 200; i++)
    {
      g_autoptr (HeraldJwtKeys) keys
          = i % 2 ? herald_jwt_keys_new_empty () : keys_from (json, NULL, NULL);

      herald_jwt_verifier_set_keys (v, keys);
      g_thread_yield ();
    }
  {
    g_autoptr (HeraldJwtKeys) keys = keys_from (json, NULL, NULL);

    herald_jwt_verifier_set_keys (v, keys);
  }
  g_atomic_int_set (&r.stop, 1);
  for (guint i = 0; i < G_N_ELEMENTS (threads); i++)
    g_thread_join (threads[i]);
  expect_ok (v, ed, "carol");
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/jwt-keys/parse", test_parse);
  g_test_add_func ("/jwt-keys/skipped", test_skipped);
  g_test_add_func ("/jwt-keys/invalid", test_invalid);
  g_test_add_func ("/jwt-keys/verify", test_verify);
  g_test_add_func ("/jwt-keys/pinned", test_pinned);
  g_test_add_func ("/jwt-keys/rotation", test_rotation);
  g_test_add_func ("/jwt-keys/swap-threads", test_swap_threads);
  return g_test_run ();
}
