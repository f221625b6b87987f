/* herald-token-gen.c: heraldd --gen-token.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "herald-token-gen.h"

#include <string.h>
#include <glib/gi18n.h>
#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <json-glib/json-glib.h>

#include "herald-jwt.h"

#define ES256_COORD 32

static const char *
alg_text (HeraldJwtAlg alg)
{
  return alg == HERALD_JWT_ALG_RS256   ? "RS256"
         : alg == HERALD_JWT_ALG_ES256 ? "ES256"
         : alg == HERALD_JWT_ALG_EDDSA ? "EdDSA"
                                       : "HS256";
}

static char *
b64url (const void *data, gsize length)
{
  char *text = g_base64_encode (data, length);

  g_strdelimit (text, "+", '-');
  g_strdelimit (text, "/", '_');
  g_strdelimit (text, "=", '\0'); /* padding only trails */
  return text;
}

/* A DER integer into a fixed big-endian field (JWS wants r || s, not DER) */
static gboolean
put_coord (guint8 *out, const gnutls_datum_t *value)
{
  const guint8 *p = value->data;
  gsize n = value->size;

  while (n > 0 && *p == 0)
    {
      p++;
      n--;
    }
  if (n > ES256_COORD)
    return FALSE;
  memset (out, 0, ES256_COORD - n);
  memcpy (out + ES256_COORD - n, p, n);
  return TRUE;
}

static char *
sign_with_key (const char *key_file, HeraldJwtAlg alg, const char *claims, GError **error)
{
  g_autofree char *header_json
      = g_strdup_printf ("{\"alg\":\"%s\",\"typ\":\"JWT\"}", alg_text (alg));
  g_autofree char *pem = NULL;
  g_autofree char *header = b64url (header_json, strlen (header_json));
  g_autofree char *body = b64url (claims, strlen (claims));
  g_autofree char *input = g_strconcat (header, ".", body, NULL);
  g_autofree char *sig = NULL;
  g_autoptr (GError) local = NULL;
  gnutls_privkey_t key = NULL;
  gnutls_datum_t key_datum, data, signature = { NULL, 0 };
  gsize pem_length;
  int ret, pk;

  if (!g_file_get_contents (key_file, &pem, &pem_length, &local))
    {
      g_set_error (error, HERALD_CONFIG_ERROR, HERALD_CONFIG_ERROR_IO, "--key: %s", local->message);
      return NULL;
    }
  key_datum = (gnutls_datum_t){ (unsigned char *)pem, (unsigned int)pem_length };
  data = (gnutls_datum_t){ (unsigned char *)input, (unsigned int)strlen (input) };
  if ((ret = gnutls_privkey_init (&key)) < 0
      || (ret = gnutls_privkey_import_x509_raw (key, &key_datum, GNUTLS_X509_FMT_PEM, NULL, 0)) < 0)
    {
      g_set_error (error, HERALD_CONFIG_ERROR, HERALD_CONFIG_ERROR_INVALID,
                   _ ("--key: “%s” is not a PEM private key: %s"), key_file, gnutls_strerror (ret));
      gnutls_privkey_deinit (key);
      return NULL;
    }
  pk = gnutls_privkey_get_pk_algorithm (key, NULL);
  if ((alg == HERALD_JWT_ALG_RS256 && pk != GNUTLS_PK_RSA)
      || (alg == HERALD_JWT_ALG_ES256 && pk != GNUTLS_PK_ECDSA)
      || (alg == HERALD_JWT_ALG_EDDSA && pk != GNUTLS_PK_EDDSA_ED25519))
    {
      g_set_error (error, HERALD_CONFIG_ERROR, HERALD_CONFIG_ERROR_INVALID,
                   _ ("--key: “%s” is not an %s key ([auth] jwt-algorithm is %s)"), key_file,
                   alg == HERALD_JWT_ALG_RS256   ? "RSA"
                   : alg == HERALD_JWT_ALG_ES256 ? "EC P-256"
                                                 : "Ed25519",
                   alg_text (alg));
      gnutls_privkey_deinit (key);
      return NULL;
    }
  /* Ed25519 hashes internally (RFC 8032); the others sign a SHA-256 digest. */
  if (alg == HERALD_JWT_ALG_EDDSA)
    ret = gnutls_privkey_sign_data2 (key, GNUTLS_SIGN_EDDSA_ED25519, 0, &data, &signature);
  else
    ret = gnutls_privkey_sign_data (key, GNUTLS_DIG_SHA256, 0, &data, &signature);
  gnutls_privkey_deinit (key);
  if (ret < 0)
    {
      g_set_error (error, HERALD_CONFIG_ERROR, HERALD_CONFIG_ERROR_INVALID,
                   _ ("--key: signing failed: %s"), gnutls_strerror (ret));
      return NULL;
    }
  if (alg == HERALD_JWT_ALG_ES256)
    {
      gnutls_datum_t r = { NULL, 0 }, s = { NULL, 0 };
      guint8 raw[2 * ES256_COORD];
      gboolean ok = gnutls_decode_rs_value (&signature, &r, &s) == 0 && put_coord (raw, &r)
                    && put_coord (raw + ES256_COORD, &s);

      gnutls_free (r.data);
      gnutls_free (s.data);
      if (!ok)
        {
          gnutls_free (signature.data);
          g_set_error (error, HERALD_CONFIG_ERROR, HERALD_CONFIG_ERROR_INVALID,
                       _ ("--key: “%s” is not a P-256 key"), key_file);
          return NULL;
        }
      sig = b64url (raw, sizeof raw);
    }
  else
    sig = b64url (signature.data, signature.size);
  gnutls_free (signature.data);
  return g_strconcat (input, ".", sig, NULL);
}

/**
 * herald_token_generate:
 * @config: a loaded, validated configuration
 * @sub: the "sub" claim (user id), not empty
 * @ttl: seconds until "exp"; 0 = no expiry
 * @channels: (nullable) (array zero-terminated=1): the "channels" claim
 * @key_file: (nullable): PEM private key for RS256/ES256/EdDSA
 * @error: return location for a #GError
 *
 * Returns: (transfer full) (nullable): a compact JWT that the configured
 *   daemon accepts, or %NULL with @error set
 */
char *
herald_token_generate (HeraldConfig *config, const char *sub, guint ttl,
                       const char *const *channels, const char *key_file, GError **error)
{
  g_autoptr (JsonBuilder) builder = json_builder_new ();
  g_autoptr (JsonNode) root = NULL;
  g_autoptr (HeraldJwtVerifier) verifier = NULL;
  g_autoptr (HeraldJwtClaims) claims = NULL;
  g_autofree char *claims_json = NULL;
  g_autofree char *token = NULL;
  HeraldJwtAlg alg;
  gint64 now = g_get_real_time () / G_USEC_PER_SEC;

  g_return_val_if_fail (HERALD_IS_CONFIG (config), NULL);
  g_return_val_if_fail (sub != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  alg = herald_config_get_jwt_algorithm (config);
  if (*sub == '\0')
    {
      g_set_error (error, HERALD_CONFIG_ERROR, HERALD_CONFIG_ERROR_INVALID,
                   _ ("--gen-token: the user id (sub) must not be empty"));
      return NULL;
    }
  if (!herald_config_has_token_key (config))
    {
      g_set_error (error, HERALD_CONFIG_ERROR, HERALD_CONFIG_ERROR_INVALID,
                   _ ("--gen-token: no token key is configured ([auth] jwt-secret, "
                      "jwt-secret-file, HERALD_JWT_SECRET or jwt-public-key-file)"));
      return NULL;
    }
  if (herald_config_get_jwks_url (config) != NULL)
    {
      g_set_error (error, HERALD_CONFIG_ERROR, HERALD_CONFIG_ERROR_INVALID,
                   _ ("--gen-token: [auth] jwks-url is set: tokens are signed by whoever holds "
                      "the key set's private keys, not by heraldd"));
      return NULL;
    }
  if (alg != HERALD_JWT_ALG_HS256 && key_file == NULL)
    {
      g_set_error (
          error, HERALD_CONFIG_ERROR, HERALD_CONFIG_ERROR_INVALID,
          _ ("--gen-token: [auth] jwt-algorithm is %s: give the private key with --key FILE"),
          alg_text (alg));
      return NULL;
    }
  if (alg == HERALD_JWT_ALG_HS256 && key_file != NULL)
    {
      g_set_error (error, HERALD_CONFIG_ERROR, HERALD_CONFIG_ERROR_INVALID,
                   _ ("--key: only for RS256, ES256 and EdDSA; HS256 tokens are signed with the "
                      "configured secret"));
      return NULL;
    }

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "sub");
  json_builder_add_string_value (builder, sub);
  json_builder_set_member_name (builder, "iat");
  json_builder_add_int_value (builder, now);
  if (ttl > 0)
    {
      json_builder_set_member_name (builder, "exp");
      json_builder_add_int_value (builder, now + ttl);
    }
  if (herald_config_get_jwt_issuer (config) != NULL)
    {
      json_builder_set_member_name (builder, "iss");
      json_builder_add_string_value (builder, herald_config_get_jwt_issuer (config));
    }
  if (herald_config_get_jwt_audience (config) != NULL)
    {
      json_builder_set_member_name (builder, "aud");
      json_builder_add_string_value (builder, herald_config_get_jwt_audience (config));
    }
  if (channels != NULL)
    {
      json_builder_set_member_name (builder, "channels");
      json_builder_begin_array (builder);
      for (guint i = 0; channels[i] != NULL; i++)
        json_builder_add_string_value (builder, channels[i]);
      json_builder_end_array (builder);
    }
  json_builder_end_object (builder);
  root = json_builder_get_root (builder);
  claims_json = json_to_string (root, FALSE);

  if (alg == HERALD_JWT_ALG_HS256)
    {
      token = herald_jwt_sign_hs256 (herald_config_get_jwt_secret (config), claims_json);
      verifier = herald_jwt_verifier_new_hmac (herald_config_get_jwt_secret (config));
    }
  else
    {
      token = sign_with_key (key_file, alg, claims_json, error);
      if (token == NULL)
        return NULL;
      verifier = herald_jwt_verifier_new_public_key (
          alg, herald_config_get_jwt_public_key_file (config), error);
      if (verifier == NULL)
        return NULL;
    }
  if (token == NULL)
    {
      g_set_error (error, HERALD_CONFIG_ERROR, HERALD_CONFIG_ERROR_INVALID,
                   _ ("--gen-token: signing failed"));
      return NULL;
    }
  herald_jwt_verifier_set_required_claims (verifier, herald_config_get_jwt_issuer (config),
                                           herald_config_get_jwt_audience (config));
  /* What heraldd would do with it: a key that does not match the configured
   * public key, or a bad channel name, fails here rather than at the client */
  claims
      = herald_jwt_verifier_verify (verifier, token, now, herald_config_get_leeway (config), error);
  if (claims == NULL)
    {
      g_prefix_error (error, _ ("--gen-token: heraldd would refuse the token: "));
      return NULL;
    }
  return g_steal_pointer (&token);
}
