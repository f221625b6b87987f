/* herald-test-tokens.c: JWTs signed for the tests with GnuTLS.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "herald-test-tokens.h"

#include "herald-base64url.h"

#include <string.h>
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
