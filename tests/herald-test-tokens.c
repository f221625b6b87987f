/* herald-test-tokens.c: JWTs signed for the tests with GnuTLS.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "herald-test-tokens.h"

#include "herald-base64url.h"

#include <string.h>
#include <glib/gstdio.h>
#include <gnutls/gnutls.h>
#include <gnutls/abstract.h>
#include <gnutls/crypto.h>

/* Copies a DER integer into a fixed 32-byte big-endian field. */
static void
put_coord (guint8 *out, const gnutls_datum_t *value)
{
  const guint8 *p = value->data;
  gsize n = value->size;

  while (n > 0 && *p == 0)
    {
      p++;
      n--;
    }
  g_assert_cmpuint (n, <=, 32);
  memset (out, 0, 32 - n);
  memcpy (out + 32 - n, p, n);
}

char *
herald_test_token_sign (const char *key_file, gboolean es256, const char *header_json,
                        const char *payload)
{
  g_autofree char *path = g_test_build_filename (G_TEST_DIST, "keys", key_file, NULL);
  g_autofree char *pem = NULL;
  g_autofree char *header = herald_base64url_encode (header_json, strlen (header_json));
  g_autofree char *body = herald_base64url_encode (payload, strlen (payload));
  g_autofree char *input = g_strconcat (header, ".", body, NULL);
  g_autofree char *sig = NULL;
  gnutls_privkey_t key;
  gnutls_datum_t key_datum, data, signature = { NULL, 0 };
  gsize pem_length;

  g_assert_true (g_file_get_contents (path, &pem, &pem_length, NULL));
  key_datum.data = (unsigned char *)pem;
  key_datum.size = (unsigned int)pem_length;
  data.data = (unsigned char *)input;
  data.size = (unsigned int)strlen (input);

  g_assert_cmpint (gnutls_privkey_init (&key), ==, 0);
  g_assert_cmpint (gnutls_privkey_import_x509_raw (key, &key_datum, GNUTLS_X509_FMT_PEM, NULL, 0),
                   ==, 0);
  g_assert_cmpint (gnutls_privkey_sign_data (key, GNUTLS_DIG_SHA256, 0, &data, &signature), ==, 0);
  gnutls_privkey_deinit (key);

  if (es256)
    {
      gnutls_datum_t r, s;
      guint8 raw[64];

      g_assert_cmpint (gnutls_decode_rs_value (&signature, &r, &s), ==, 0);
      put_coord (raw, &r);
      put_coord (raw + 32, &s);
      gnutls_free (r.data);
      gnutls_free (s.data);
      sig = herald_base64url_encode (raw, sizeof raw);
    }
  else
    sig = herald_base64url_encode (signature.data, signature.size);
  gnutls_free (signature.data);

  return g_strconcat (input, ".", sig, NULL);
}

/* Big-endian @value as exactly @size bytes (leading zeros added or dropped). */
static char *
encode_fixed (const gnutls_datum_t *value, gsize size)
{
  g_autofree guint8 *out = g_malloc0 (size);
  const guint8 *p = value->data;
  gsize n = value->size;

  while (n > size && *p == 0)
    {
      p++;
      n--;
    }
  g_assert_cmpuint (n, <=, size);
  memcpy (out + size - n, p, n);
  return herald_base64url_encode (out, size);
}

char *
herald_test_jwk (const char *public_key_file, const char *kid, const char *alg)
{
  g_autofree char *path = g_test_build_filename (G_TEST_DIST, "keys", public_key_file, NULL);
  g_autofree char *pem = NULL;
  g_autoptr (GString) jwk = g_string_new ("{");
  gnutls_pubkey_t key;
  gnutls_datum_t datum, a = { NULL, 0 }, b = { NULL, 0 };
  gnutls_ecc_curve_t curve;
  gsize pem_length;
  int pk;

  g_assert_true (g_file_get_contents (path, &pem, &pem_length, NULL));
  datum.data = (unsigned char *)pem;
  datum.size = (unsigned int)pem_length;
  g_assert_cmpint (gnutls_pubkey_init (&key), ==, 0);
  g_assert_cmpint (gnutls_pubkey_import (key, &datum, GNUTLS_X509_FMT_PEM), ==, 0);
  pk = gnutls_pubkey_get_pk_algorithm (key, NULL);
  if (pk == GNUTLS_PK_RSA)
    {
      g_autofree char *n = NULL, *e = NULL;

      g_assert_cmpint (gnutls_pubkey_export_rsa_raw2 (key, &a, &b, GNUTLS_EXPORT_FLAG_NO_LZ), ==,
                       0);
      n = herald_base64url_encode (a.data, a.size);
      e = herald_base64url_encode (b.data, b.size);
      g_string_append_printf (jwk, "\"kty\":\"RSA\",\"n\":\"%s\",\"e\":\"%s\"", n, e);
    }
  else if (pk == GNUTLS_PK_ECDSA)
    {
      g_autofree char *x = NULL, *y = NULL;

      g_assert_cmpint (gnutls_pubkey_export_ecc_raw2 (key, &curve, &a, &b, 0), ==, 0);
      g_assert_cmpint (curve, ==, GNUTLS_ECC_CURVE_SECP256R1);
      x = encode_fixed (&a, 32);
      y = encode_fixed (&b, 32);
      g_string_append_printf (jwk, "\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\"", x,
                              y);
    }
  else
    {
      g_autofree char *x = NULL;

      g_assert_cmpint (pk, ==, GNUTLS_PK_EDDSA_ED25519);
      g_assert_cmpint (gnutls_pubkey_export_ecc_raw2 (key, &curve, &a, NULL, 0), ==, 0);
      x = herald_base64url_encode (a.data, a.size);
      g_string_append_printf (jwk, "\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"%s\"", x);
    }
  gnutls_free (a.data);
  gnutls_free (b.data);
  gnutls_pubkey_deinit (key);
  if (kid != NULL)
    g_string_append_printf (jwk, ",\"kid\":\"%s\"", kid);
  if (alg != NULL)
    g_string_append_printf (jwk, ",\"alg\":\"%s\"", alg);
  g_string_append_c (jwk, '}');
  return g_string_free (g_steal_pointer (&jwk), FALSE);
}

char *
herald_test_token_sign_eddsa (const char *key_file, const char *header_json, const char *payload)
{
  g_autofree char *key = g_test_build_filename (G_TEST_DIST, "keys", key_file, NULL);
  g_autofree char *header = herald_base64url_encode (header_json, strlen (header_json));
  g_autofree char *body = herald_base64url_encode (payload, strlen (payload));
  g_autofree char *input = g_strconcat (header, ".", body, NULL);
  g_autofree char *dir = g_dir_make_tmp ("herald-eddsa-XXXXXX", NULL);
  g_autofree char *in_path = NULL, *sig_path = NULL, *sig = NULL, *err = NULL, *sig_text = NULL;
  g_autoptr (GError) error = NULL;
  gsize sig_length;
  int status;

  g_assert_nonnull (dir);
  in_path = g_build_filename (dir, "input", NULL);
  sig_path = g_build_filename (dir, "sig", NULL);
  {
    const char *argv[] = { "openssl", "pkeyutl", "-sign", "-rawin", "-inkey", key,
                           "-in",     in_path,   "-out",  sig_path, NULL };

    g_assert_true (g_file_set_contents (in_path, input, -1, &error));
    g_assert_true (g_spawn_sync (NULL, (char **)argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL,
                                 &err, &status, &error));
    g_assert_no_error (error);
    if (!g_spawn_check_wait_status (status, NULL))
      g_error ("openssl pkeyutl failed: %s", err);
  }
  g_assert_true (g_file_get_contents (sig_path, &sig, &sig_length, &error));
  g_assert_cmpuint (sig_length, ==, 64);
  g_unlink (in_path);
  g_unlink (sig_path);
  g_rmdir (dir);
  sig_text = herald_base64url_encode (sig, sig_length);
  return g_strconcat (input, ".", sig_text, NULL);
}
