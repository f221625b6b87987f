/* herald-jwt.c: JSON Web Token verification (RFC 7515/7519) with GnuTLS.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "herald-base64url.h"
#include "herald-json.h"
#include "herald-jwt.h"
#include "herald-jwt-keys.h"
#include "herald-names.h"

#include <math.h>
#include <string.h>

#include <gnutls/gnutls.h>
#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/x509.h>
#include <json-glib/json-glib.h>

/* Bounds the work done on attacker-supplied input before anything is verified. */
#define HERALD_JWT_MAX_TOKEN_LENGTH 8192
#define HS256_MAC_SIZE 32
#define ES256_COORD_SIZE 32
#define RS256_MIN_BITS 2048 /* RFC 7518 §3.3 */

/* The quark's name as written: clang-format would space out its dashes. */
/* clang-format off */
G_DEFINE_QUARK (herald-jwt-error-quark, herald_jwt_error)
/* clang-format on */

struct _HeraldJwtVerifier
{
  GObject parent_instance;

  HeraldJwtAlg alg;
  GBytes *secret;         /* HS256 only */
  gnutls_pubkey_t pubkey; /* RS256, ES256 and EdDSA only */
  char *issuer;           /* required "iss", or NULL */
  char *audience;         /* required member of "aud", or NULL */

  /* A key set ([auth] jwks-url): the token's "kid" picks the key, the key's
   * algorithm must be the token's; with alg_pinned, only alg is accepted. */
  gboolean uses_keys;
  gboolean alg_pinned;
  GMutex keys_lock;    /* guards the pointer only: the set itself is immutable */
  HeraldJwtKeys *keys; /* never NULL when uses_keys */
  HeraldJwtUnknownKeyFunc unknown_key_func;
  gpointer unknown_key_data;
  GDestroyNotify unknown_key_destroy;
};

enum
{
  PROP_0,
  PROP_ALGORITHM,
  N_PROPS
};

static GParamSpec *props[N_PROPS];

G_DEFINE_FINAL_TYPE (HeraldJwtVerifier, herald_jwt_verifier, G_TYPE_OBJECT)

static const char *
alg_name (HeraldJwtAlg alg)
{
  switch (alg)
    {
    case HERALD_JWT_ALG_HS256:
      return "HS256";
    case HERALD_JWT_ALG_RS256:
      return "RS256";
    case HERALD_JWT_ALG_ES256:
      return "ES256";
    case HERALD_JWT_ALG_EDDSA:
      return "EdDSA";
    default:
      return "unknown";
    }
}

/* ---- claims ---- */

/**
 * herald_jwt_claims_free:
 * @claims: (nullable): claims returned by herald_jwt_verifier_verify()
 *
 * Frees @claims and everything it holds.
 */
void
herald_jwt_claims_free (HeraldJwtClaims *claims)
{
  if (claims == NULL)
    return;
  g_free (claims->sub);
  g_strfreev (claims->channels);
  g_strfreev (claims->publish);
  g_strfreev (claims->subs);
  g_free (claims->channel);
  g_free (claims);
}

/**
 * herald_channel_pattern_match:
 * @patterns: (nullable) (array zero-terminated=1): channel names or prefixes ending in '*'
 * @channel: a channel name
 *
 * A pattern ending in '*' matches every channel that starts with the text
 * before the '*' ("news.*" matches "news.sport", "*" matches everything); '*'
 * anywhere else is an ordinary character. Other patterns match exactly.
 *
 * Returns: %TRUE when @channel matches one of @patterns; %FALSE for %NULL or
 *   empty @patterns.
 */
gboolean
herald_channel_pattern_match (const char *const *patterns, const char *channel)
{
  if (patterns == NULL || channel == NULL)
    return FALSE;

  for (gsize i = 0; patterns[i] != NULL; i++)
    {
      const char *pattern = patterns[i];
      gsize len = strlen (pattern);

      if (len > 0 && pattern[len - 1] == '*')
        {
          if (strncmp (channel, pattern, len - 1) == 0)
            return TRUE;
        }
      else if (strcmp (channel, pattern) == 0)
        return TRUE;
    }
  return FALSE;
}

/* Parses @data (decoded from a token part) as a JSON object. */
static JsonObject *
parse_json_object (const guint8 *data, gsize length, const char *what, GError **error)
{
  g_autoptr (JsonParser) parser = NULL;
  g_autoptr (GError) strict_error = NULL;
  JsonNode *root;

  /* g_utf8_validate() also refuses embedded NULs, which the parser would stop at. */
  if (!g_utf8_validate ((const char *)data, (gssize)length, NULL))
    {
      g_set_error (error, HERALD_JWT_ERROR, HERALD_JWT_ERROR_MALFORMED,
                   "Token %s is not valid UTF-8", what);
      return NULL;
    }

  /* Herald's strict reader first: json-glib takes a second value after the
   * first, cuts strings at U+0000 ("sub":"admin\u0000-x" would be "admin")
   * and wraps integers outside gint64. Its message names no input bytes. */
  if (!herald_json_check_strict ((const char *)data, length, &strict_error))
    {
      if (g_error_matches (strict_error, HERALD_JSON_ERROR, HERALD_JSON_ERROR_FIELD))
        g_set_error (error, HERALD_JWT_ERROR, HERALD_JWT_ERROR_MALFORMED, "Token %s is refused: %s",
                     what, strict_error->message);
      else
        g_set_error (error, HERALD_JWT_ERROR, HERALD_JWT_ERROR_MALFORMED,
                     "Token %s is not valid JSON", what);
      return NULL;
    }

  parser = json_parser_new_immutable ();
  /* The parser's own message quotes the input, so it is not passed on. */
  if (!json_parser_load_from_data (parser, (const char *)data, (gssize)length, NULL))
    {
      g_set_error (error, HERALD_JWT_ERROR, HERALD_JWT_ERROR_MALFORMED,
                   "Token %s is not valid JSON", what);
      return NULL;
    }

  root = json_parser_get_root (parser);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    {
      g_set_error (error, HERALD_JWT_ERROR, HERALD_JWT_ERROR_MALFORMED,
                   "Token %s is not a JSON object", what);
      return NULL;
    }
  return json_object_ref (json_node_get_object (root));
}

static gboolean
node_is_string (JsonNode *node)
{
  return JSON_NODE_HOLDS_VALUE (node) && json_node_get_value_type (node) == G_TYPE_STRING;
}

/* Checks the header's form; @alg_out receives its "alg" (borrowed from @header). */
static gboolean
check_header (JsonObject *header, const char **alg_out, GError **error)
{
  JsonNode *node;
  const char *alg;

  node = json_object_get_member (header, "alg");
  if (node == NULL || !node_is_string (node))
    {
      g_set_error_literal (error, HERALD_JWT_ERROR, HERALD_JWT_ERROR_MALFORMED,
                           "Token header has no \"alg\" string");
      return FALSE;
    }

  alg = json_node_get_string (node);
  if (g_ascii_strcasecmp (alg, "none") == 0)
    {
      g_set_error_literal (error, HERALD_JWT_ERROR, HERALD_JWT_ERROR_ALGORITHM,
                           "Unsigned tokens (alg \"none\") are refused");
      return FALSE;
    }

  node = json_object_get_member (header, "typ");
  if (node != NULL
      && (!node_is_string (node) || g_ascii_strcasecmp (json_node_get_string (node), "JWT") != 0))
    {
      g_set_error_literal (error, HERALD_JWT_ERROR, HERALD_JWT_ERROR_MALFORMED,
                           "Token header \"typ\" is not \"JWT\"");
      return FALSE;
    }

  /* RFC 7515 §4.1.11: we understand no extensions, so any "crit" must be refused. */
  if (json_object_has_member (header, "crit"))
    {
      g_set_error_literal (
          error, HERALD_JWT_ERROR, HERALD_JWT_ERROR_MALFORMED,
          "Token header has critical extensions (\"crit\"), which are not supported");
      return FALSE;
    }
  *alg_out = alg;
  return TRUE;
}

/* The key that verifies a token whose header is @header and algorithm @alg:
 * the configured one, or the key set's key named by "kid" (@keys_out then
 * holds the set, which owns the key). The algorithm is never taken from the
 * token: it only has to agree with the configuration or the key. */
static gboolean
resolve_key (HeraldJwtVerifier *self, JsonObject *header, const char *alg, HeraldJwtAlg *alg_out,
             gnutls_pubkey_t *key_out, HeraldJwtKeys **keys_out, GError **error)
{
  g_autoptr (HeraldJwtKeys) keys = NULL;
  JsonNode *node;
  const char *kid;
  HeraldJwtAlg key_alg;
  gnutls_pubkey_t key;

  if (!self->uses_keys)
    {
      if (strcmp (alg, alg_name (self->alg)) != 0)
        {
          g_set_error (error, HERALD_JWT_ERROR, HERALD_JWT_ERROR_ALGORITHM,
                       "Token algorithm does not match the configured algorithm %s",
                       alg_name (self->alg));
          return FALSE;
        }
      *alg_out = self->alg;
      *key_out = self->pubkey;
      return TRUE;
    }

  if (self->alg_pinned && strcmp (alg, alg_name (self->alg)) != 0)
    {
      g_set_error (error, HERALD_JWT_ERROR, HERALD_JWT_ERROR_ALGORITHM,
                   "Token algorithm does not match the configured algorithm %s",
                   alg_name (self->alg));
      return FALSE;
    }
  node = json_object_get_member (header, "kid");
  if (node == NULL || !node_is_string (node) || *json_node_get_string (node) == '\0')
    {
      g_set_error_literal (error, HERALD_JWT_ERROR, HERALD_JWT_ERROR_MALFORMED,
                           "Token header has no \"kid\" string, which picks the key of the key "
                           "set");
      return FALSE;
    }
  kid = json_node_get_string (node);
  keys = herald_jwt_verifier_dup_keys (self);
  if (!herald_jwt_keys_lookup (keys, kid, &key_alg, &key))
    {
      g_set_error_literal (error, HERALD_JWT_ERROR, HERALD_JWT_ERROR_UNKNOWN_KEY,
                           "Token key id (\"kid\") is not in the key set");
      if (self->unknown_key_func != NULL)
        self->unknown_key_func (kid, self->unknown_key_data);
      return FALSE;
    }
  if (strcmp (alg, alg_name (key_alg)) != 0)
    {
      g_set_error (error, HERALD_JWT_ERROR, HERALD_JWT_ERROR_ALGORITHM,
                   "Token algorithm does not match its key's algorithm %s", alg_name (key_alg));
      return FALSE;
    }
  *alg_out = key_alg;
  *key_out = key;
  *keys_out = g_steal_pointer (&keys);
  return TRUE;
}

/* Copies one big-endian integer from a raw R||S half, minimally encoded (at
 * least one byte) as DER wants it; gnutls adds the sign byte itself. */
static gnutls_datum_t
rs_integer (const guint8 *coord)
{
  gsize skip = 0;
  gnutls_datum_t d;

  while (skip < ES256_COORD_SIZE - 1 && coord[skip] == 0)
    skip++;
  d.data = (unsigned char *)coord + skip;
  d.size = (unsigned int)(ES256_COORD_SIZE - skip);
  return d;
}

static gboolean
verify_signature (HeraldJwtVerifier *self, HeraldJwtAlg alg, gnutls_pubkey_t pubkey,
                  const char *signing_input, gsize signing_length, const guint8 *sig,
                  gsize sig_length, GError **error)
{
  gnutls_datum_t data = { (unsigned char *)signing_input, (unsigned int)signing_length };
  gnutls_datum_t sig_datum = { (unsigned char *)sig, (unsigned int)sig_length };
  int ret;

  switch (alg)
    {
    case HERALD_JWT_ALG_HS256:
      {
        guint8 mac[HS256_MAC_SIZE];
        gsize key_length;
        const void *key = g_bytes_get_data (self->secret, &key_length);

        ret = gnutls_hmac_fast (GNUTLS_MAC_SHA256, key, key_length, signing_input, signing_length,
                                mac);
        if (ret < 0)
          {
            g_set_error (error, HERALD_JWT_ERROR, HERALD_JWT_ERROR_SIGNATURE,
                         "HMAC computation failed: %s", gnutls_strerror (ret));
            return FALSE;
          }
        /* Constant time, so the comparison leaks nothing about the expected MAC. */
        ret = (sig_length == HS256_MAC_SIZE) ? gnutls_memcmp (mac, sig, HS256_MAC_SIZE) : -1;
        gnutls_memset (mac, 0, sizeof mac);
        if (ret != 0)
          {
            g_set_error_literal (error, HERALD_JWT_ERROR, HERALD_JWT_ERROR_SIGNATURE,
                                 "Token signature does not verify");
            return FALSE;
          }
        return TRUE;
      }

    case HERALD_JWT_ALG_RS256:
      ret = gnutls_pubkey_verify_data2 (pubkey, GNUTLS_SIGN_RSA_SHA256, 0, &data, &sig_datum);
      break;

    case HERALD_JWT_ALG_ES256:
      {
        gnutls_datum_t r, s;
        gnutls_datum_t der = { NULL, 0 };

        /* JWS carries ECDSA signatures as fixed-size R||S (RFC 7518 §3.4); gnutls wants DER. */
        if (sig_length != 2 * ES256_COORD_SIZE)
          {
            g_set_error (error, HERALD_JWT_ERROR, HERALD_JWT_ERROR_SIGNATURE,
                         "ES256 signature must be %d bytes, not %" G_GSIZE_FORMAT,
                         2 * ES256_COORD_SIZE, sig_length);
            return FALSE;
          }
        r = rs_integer (sig);
        s = rs_integer (sig + ES256_COORD_SIZE);
        ret = gnutls_encode_rs_value (&der, &r, &s);
        if (ret >= 0)
          ret = gnutls_pubkey_verify_data2 (pubkey, GNUTLS_SIGN_ECDSA_SHA256, 0, &data, &der);
        gnutls_free (der.data);
        break;
      }

    case HERALD_JWT_ALG_EDDSA:
      /* RFC 8037 §3.1: the 64-byte Ed25519 signature over the signing input. */
      if (sig_length != 64)
        {
          g_set_error (error, HERALD_JWT_ERROR, HERALD_JWT_ERROR_SIGNATURE,
                       "EdDSA signature must be 64 bytes, not %" G_GSIZE_FORMAT, sig_length);
          return FALSE;
        }
      ret = gnutls_pubkey_verify_data2 (pubkey, GNUTLS_SIGN_EDDSA_ED25519, 0, &data, &sig_datum);
      break;

    default:
      g_assert_not_reached ();
    }

  if (ret < 0)
    {
      g_set_error_literal (error, HERALD_JWT_ERROR, HERALD_JWT_ERROR_SIGNATURE,
                           "Token signature does not verify");
      return FALSE;
    }
  return TRUE;
}

/* Reads a NumericDate (RFC 7519 §2): integer or real, truncated. */
static gboolean
get_numeric_date (JsonObject *payload, const char *name, gboolean *present, gint64 *out,
                  GError **error)
{
  JsonNode *node = json_object_get_member (payload, name);
  GType type;

  *present = FALSE;
  *out = 0;
  if (node == NULL)
    return TRUE;

  type = JSON_NODE_HOLDS_VALUE (node) ? json_node_get_value_type (node) : G_TYPE_INVALID;
  if (type == G_TYPE_INT64)
    *out = json_node_get_int (node);
  else if (type == G_TYPE_DOUBLE)
    {
      double d = json_node_get_double (node);

      /* Outside this range the conversion to gint64 would be undefined. */
      if (!isfinite (d) || d >= 9.2e18 || d <= -9.2e18)
        {
          g_set_error (error, HERALD_JWT_ERROR, HERALD_JWT_ERROR_MALFORMED,
                       "Token claim \"%s\" is out of range", name);
          return FALSE;
        }
      *out = (gint64)d;
    }
  else
    {
      g_set_error (error, HERALD_JWT_ERROR, HERALD_JWT_ERROR_MALFORMED,
                   "Token claim \"%s\" is not a number", name);
      return FALSE;
    }
  *present = TRUE;
  return TRUE;
}

static gboolean
get_string_array (JsonObject *payload, const char *name, char ***out, GError **error)
{
  JsonNode *node = json_object_get_member (payload, name);
  JsonArray *array;
  GStrvBuilder *builder;
  guint n;

  *out = NULL;
  if (node == NULL)
    return TRUE;

  if (!JSON_NODE_HOLDS_ARRAY (node))
    {
      g_set_error (error, HERALD_JWT_ERROR, HERALD_JWT_ERROR_MALFORMED,
                   "Token claim \"%s\" is not an array of strings", name);
      return FALSE;
    }

  array = json_node_get_array (node);
  n = json_array_get_length (array);
  builder = g_strv_builder_new ();
  for (guint i = 0; i < n; i++)
    {
      JsonNode *element = json_array_get_element (array, i);

      if (!node_is_string (element))
        {
          g_strv_builder_unref (builder);
          g_set_error (error, HERALD_JWT_ERROR, HERALD_JWT_ERROR_MALFORMED,
                       "Token claim \"%s\" is not an array of strings", name);
          return FALSE;
        }
      g_strv_builder_add (builder, json_node_get_string (element));
    }
  *out = g_strv_builder_end (builder);
  g_strv_builder_unref (builder);
  return TRUE;
}

/* a + b without signed overflow */
static gint64
saturating_add (gint64 a, gint64 b)
{
  if (b > 0 && a > G_MAXINT64 - b)
    return G_MAXINT64;
  if (b < 0 && a < G_MININT64 - b)
    return G_MININT64;
  return a + b;
}

static HeraldJwtClaims *
parse_claims (JsonObject *payload, gint64 now, guint leeway, GError **error)
{
  g_autoptr (HeraldJwtClaims) claims = g_new0 (HeraldJwtClaims, 1);
  gboolean has_exp, has_nbf, has_iat;
  JsonNode *node;

  node = json_object_get_member (payload, "sub");
  if (node != NULL)
    {
      if (!node_is_string (node))
        {
          g_set_error_literal (error, HERALD_JWT_ERROR, HERALD_JWT_ERROR_MALFORMED,
                               "Token claim \"sub\" is not a string");
          return NULL;
        }
      claims->sub = g_strdup (json_node_get_string (node));
    }

  if (!get_numeric_date (payload, "exp", &has_exp, &claims->exp, error)
      || !get_numeric_date (payload, "nbf", &has_nbf, &claims->nbf, error)
      || !get_numeric_date (payload, "iat", &has_iat, &claims->iat, error)
      || !get_string_array (payload, "channels", &claims->channels, error)
      || !get_string_array (payload, "publish", &claims->publish, error)
      || !get_string_array (payload, "subs", &claims->subs, error))
    return NULL;
  /* subs: channel names the server subscribes to, not patterns */
  for (guint i = 0; claims->subs != NULL && claims->subs[i] != NULL; i++)
    if (!herald_channel_name_is_valid (claims->subs[i]))
      {
        g_set_error (error, HERALD_JWT_ERROR, HERALD_JWT_ERROR_MALFORMED,
                     "Token claim \"subs\" holds an invalid channel name (element %u)", i);
        return NULL;
      }
  node = json_object_get_member (payload, "channel");
  if (node != NULL)
    {
      if (!node_is_string (node))
        {
          g_set_error_literal (error, HERALD_JWT_ERROR, HERALD_JWT_ERROR_MALFORMED,
                               "Token claim \"channel\" is not a string");
          return NULL;
        }
      claims->channel = g_strdup (json_node_get_string (node));
    }

  if (has_exp && now >= saturating_add (claims->exp, leeway))
    {
      g_set_error_literal (error, HERALD_JWT_ERROR, HERALD_JWT_ERROR_EXPIRED, "Token has expired");
      return NULL;
    }
  if (has_nbf && saturating_add (now, leeway) < claims->nbf)
    {
      g_set_error_literal (error, HERALD_JWT_ERROR, HERALD_JWT_ERROR_NOT_YET_VALID,
                           "Token is not valid yet (nbf)");
      return NULL;
    }
  if (has_iat && saturating_add (now, leeway) < claims->iat)
    {
      g_set_error_literal (error, HERALD_JWT_ERROR, HERALD_JWT_ERROR_NOT_YET_VALID,
                           "Token was issued in the future (iat)");
      return NULL;
    }
  return g_steal_pointer (&claims);
}

/* RFC 7519 §4.1.1 and §4.1.3: "iss" must be @issuer; "aud" is a string or an
 * array of strings one of which must be @audience. */
static gboolean
check_required_claims (HeraldJwtVerifier *self, JsonObject *payload, GError **error)
{
  JsonNode *node;

  if (self->issuer != NULL)
    {
      node = json_object_get_member (payload, "iss");
      if (node == NULL || !node_is_string (node))
        {
          g_set_error_literal (error, HERALD_JWT_ERROR, HERALD_JWT_ERROR_CLAIM,
                               "Token has no \"iss\" string but an issuer is required");
          return FALSE;
        }
      if (strcmp (json_node_get_string (node), self->issuer) != 0)
        {
          g_set_error_literal (error, HERALD_JWT_ERROR, HERALD_JWT_ERROR_CLAIM,
                               "Token issuer (\"iss\") is not the required issuer");
          return FALSE;
        }
    }

  if (self->audience != NULL)
    {
      gboolean found = FALSE;

      node = json_object_get_member (payload, "aud");
      if (node != NULL && node_is_string (node))
        found = strcmp (json_node_get_string (node), self->audience) == 0;
      else if (node != NULL && JSON_NODE_HOLDS_ARRAY (node))
        {
          JsonArray *array = json_node_get_array (node);
          guint n = json_array_get_length (array);

          for (guint i = 0; i < n; i++)
            {
              JsonNode *element = json_array_get_element (array, i);

              if (!node_is_string (element))
                {
                  g_set_error_literal (error, HERALD_JWT_ERROR, HERALD_JWT_ERROR_MALFORMED,
                                       "Token claim \"aud\" is not a string or an array of "
                                       "strings");
                  return FALSE;
                }
              found |= strcmp (json_node_get_string (element), self->audience) == 0;
            }
        }
      else if (node != NULL)
        {
          g_set_error_literal (error, HERALD_JWT_ERROR, HERALD_JWT_ERROR_MALFORMED,
                               "Token claim \"aud\" is not a string or an array of strings");
          return FALSE;
        }
      else
        {
          g_set_error_literal (error, HERALD_JWT_ERROR, HERALD_JWT_ERROR_CLAIM,
                               "Token has no \"aud\" claim but an audience is required");
          return FALSE;
        }
      if (!found)
        {
          g_set_error_literal (error, HERALD_JWT_ERROR, HERALD_JWT_ERROR_CLAIM,
                               "Token audience (\"aud\") does not include the required audience");
          return FALSE;
        }
    }
  return TRUE;
}

/* ---- GObject ---- */

static void
herald_jwt_verifier_finalize (GObject *object)
{
  HeraldJwtVerifier *self = HERALD_JWT_VERIFIER (object);

  g_clear_pointer (&self->secret, g_bytes_unref);
  g_clear_pointer (&self->pubkey, gnutls_pubkey_deinit);
  g_free (self->issuer);
  g_free (self->audience);
  g_clear_object (&self->keys);
  g_mutex_clear (&self->keys_lock);
  if (self->unknown_key_destroy != NULL)
    self->unknown_key_destroy (self->unknown_key_data);

  G_OBJECT_CLASS (herald_jwt_verifier_parent_class)->finalize (object);
}

static void
herald_jwt_verifier_get_property (GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
  HeraldJwtVerifier *self = HERALD_JWT_VERIFIER (object);

  switch (prop_id)
    {
    case PROP_ALGORITHM:
      g_value_set_int (value, self->alg);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
herald_jwt_verifier_set_property (GObject *object, guint prop_id, const GValue *value,
                                  GParamSpec *pspec)
{
  HeraldJwtVerifier *self = HERALD_JWT_VERIFIER (object);

  switch (prop_id)
    {
    case PROP_ALGORITHM:
      self->alg = (HeraldJwtAlg)g_value_get_int (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
herald_jwt_verifier_class_init (HeraldJwtVerifierClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->finalize = herald_jwt_verifier_finalize;
  object_class->get_property = herald_jwt_verifier_get_property;
  object_class->set_property = herald_jwt_verifier_set_property;

  /**
   * HeraldJwtVerifier:algorithm:
   *
   * The #HeraldJwtAlg every token must be signed with.
   */
  props[PROP_ALGORITHM] = g_param_spec_int (
      "algorithm", NULL, NULL, HERALD_JWT_ALG_HS256, HERALD_JWT_ALG_EDDSA, HERALD_JWT_ALG_HS256,
      G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);

  g_object_class_install_properties (object_class, N_PROPS, props);
}

static void
herald_jwt_verifier_init (HeraldJwtVerifier *self)
{
  g_mutex_init (&self->keys_lock);
}

/**
 * herald_jwt_verifier_new_hmac:
 * @secret: the shared HS256 secret; must not be empty
 *
 * Creates a verifier for HS256 tokens. RFC 7518 §3.2 asks for secrets of at
 * least 32 bytes.
 *
 * Returns: (transfer full): a new #HeraldJwtVerifier
 */
HeraldJwtVerifier *
herald_jwt_verifier_new_hmac (GBytes *secret)
{
  HeraldJwtVerifier *self;

  g_return_val_if_fail (secret != NULL, NULL);
  /* An empty key would let anyone mint tokens. */
  g_return_val_if_fail (g_bytes_get_size (secret) > 0, NULL);

  self = g_object_new (HERALD_TYPE_JWT_VERIFIER, "algorithm", HERALD_JWT_ALG_HS256, NULL);
  self->secret = g_bytes_ref (secret);
  return self;
}

/**
 * herald_jwt_verifier_new_public_key_data:
 * @alg: %HERALD_JWT_ALG_RS256, %HERALD_JWT_ALG_ES256 or %HERALD_JWT_ALG_EDDSA
 * @pem: a PEM public key (SubjectPublicKeyInfo, "BEGIN PUBLIC KEY") or X.509
 *   certificate
 * @error: return location for a #GError
 *
 * Creates a verifier for RS256 (RSA, at least 2048 bits), ES256 (P-256) or
 * EdDSA (Ed25519, RFC 8037) tokens. A key of the wrong kind for @alg fails with
 * %HERALD_JWT_ERROR_KEY.
 *
 * Returns: (transfer full): a new #HeraldJwtVerifier, or %NULL on error
 */
HeraldJwtVerifier *
herald_jwt_verifier_new_public_key_data (HeraldJwtAlg alg, GBytes *pem, GError **error)
{
  g_autoptr (HeraldJwtVerifier) self = NULL;
  gnutls_datum_t datum;
  gnutls_pubkey_t pubkey = NULL;
  unsigned int bits = 0;
  int pk, ret;
  gsize size;

  g_return_val_if_fail (pem != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (alg != HERALD_JWT_ALG_RS256 && alg != HERALD_JWT_ALG_ES256 && alg != HERALD_JWT_ALG_EDDSA)
    {
      g_set_error (error, HERALD_JWT_ERROR, HERALD_JWT_ERROR_KEY,
                   "Algorithm %s does not use a public key", alg_name (alg));
      return NULL;
    }

  datum.data = (unsigned char *)g_bytes_get_data (pem, &size);
  datum.size = (unsigned int)size;
  if (datum.data == NULL || size == 0 || size > G_MAXINT)
    {
      g_set_error_literal (error, HERALD_JWT_ERROR, HERALD_JWT_ERROR_KEY, "Public key is empty");
      return NULL;
    }

  ret = gnutls_pubkey_init (&pubkey);
  if (ret < 0)
    {
      g_set_error (error, HERALD_JWT_ERROR, HERALD_JWT_ERROR_KEY, "Cannot create public key: %s",
                   gnutls_strerror (ret));
      return NULL;
    }
  self = g_object_new (HERALD_TYPE_JWT_VERIFIER, "algorithm", alg, NULL);
  self->pubkey = pubkey;

  ret = gnutls_pubkey_import (pubkey, &datum, GNUTLS_X509_FMT_PEM);
  if (ret < 0)
    {
      /* Not a bare public key: perhaps a certificate carrying one. */
      gnutls_x509_crt_t crt = NULL;

      ret = gnutls_x509_crt_init (&crt);
      if (ret >= 0)
        ret = gnutls_x509_crt_import (crt, &datum, GNUTLS_X509_FMT_PEM);
      if (ret >= 0)
        ret = gnutls_pubkey_import_x509 (pubkey, crt, 0);
      if (crt != NULL)
        gnutls_x509_crt_deinit (crt);
      if (ret < 0)
        {
          g_set_error_literal (error, HERALD_JWT_ERROR, HERALD_JWT_ERROR_KEY,
                               "Not a PEM public key or X.509 certificate");
          return NULL;
        }
    }

  pk = gnutls_pubkey_get_pk_algorithm (pubkey, &bits);
  if (alg == HERALD_JWT_ALG_RS256)
    {
      if (pk != GNUTLS_PK_RSA)
        {
          g_set_error_literal (error, HERALD_JWT_ERROR, HERALD_JWT_ERROR_KEY,
                               "RS256 needs an RSA public key");
          return NULL;
        }
      if (bits < RS256_MIN_BITS)
        {
          g_set_error (error, HERALD_JWT_ERROR, HERALD_JWT_ERROR_KEY,
                       "RSA key has %u bits; RS256 needs at least %d", bits, RS256_MIN_BITS);
          return NULL;
        }
    }
  else if (alg == HERALD_JWT_ALG_EDDSA)
    {
      if (pk != GNUTLS_PK_EDDSA_ED25519)
        {
          g_set_error_literal (error, HERALD_JWT_ERROR, HERALD_JWT_ERROR_KEY,
                               "EdDSA needs an Ed25519 public key");
          return NULL;
        }
    }
  else
    {
      gnutls_ecc_curve_t curve = GNUTLS_ECC_CURVE_INVALID;
      gnutls_datum_t x = { NULL, 0 }, y = { NULL, 0 };

      if (pk == GNUTLS_PK_ECDSA && gnutls_pubkey_export_ecc_raw (pubkey, &curve, &x, &y) >= 0)
        {
          gnutls_free (x.data);
          gnutls_free (y.data);
        }
      if (pk != GNUTLS_PK_ECDSA || curve != GNUTLS_ECC_CURVE_SECP256R1)
        {
          g_set_error_literal (error, HERALD_JWT_ERROR, HERALD_JWT_ERROR_KEY,
                               "ES256 needs an EC P-256 public key");
          return NULL;
        }
    }

  return g_steal_pointer (&self);
}

/**
 * herald_jwt_verifier_new_public_key:
 * @alg: %HERALD_JWT_ALG_RS256 or %HERALD_JWT_ALG_ES256
 * @pem_path: file holding a PEM public key or X.509 certificate
 * @error: return location for a #GError
 *
 * Like herald_jwt_verifier_new_public_key_data(), reading the key from
 * @pem_path. An unreadable file fails with %HERALD_JWT_ERROR_KEY.
 *
 * Returns: (transfer full): a new #HeraldJwtVerifier, or %NULL on error
 */
HeraldJwtVerifier *
herald_jwt_verifier_new_public_key (HeraldJwtAlg alg, const char *pem_path, GError **error)
{
  g_autofree char *contents = NULL;
  g_autoptr (GError) local_error = NULL;
  g_autoptr (GBytes) bytes = NULL;
  HeraldJwtVerifier *self;
  gsize length;

  g_return_val_if_fail (pem_path != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (!g_file_get_contents (pem_path, &contents, &length, &local_error))
    {
      g_set_error (error, HERALD_JWT_ERROR, HERALD_JWT_ERROR_KEY, "Cannot read public key: %s",
                   local_error->message);
      return NULL;
    }

  bytes = g_bytes_new_take (g_steal_pointer (&contents), length);
  self = herald_jwt_verifier_new_public_key_data (alg, bytes, &local_error);
  if (self == NULL)
    {
      g_set_error (error, HERALD_JWT_ERROR, HERALD_JWT_ERROR_KEY, "%s: %s", pem_path,
                   local_error->message);
      return NULL;
    }
  return self;
}

/**
 * herald_jwt_verifier_set_required_claims:
 * @self: a #HeraldJwtVerifier
 * @issuer: (nullable): the value "iss" must have, or %NULL
 * @audience: (nullable): the value "aud" must be or contain, or %NULL
 *
 * Tokens without the required claims, or with other values, are refused with
 * %HERALD_JWT_ERROR_CLAIM. Call this before the verifier is used from other
 * threads: verification reads these without locking.
 */
void
herald_jwt_verifier_set_required_claims (HeraldJwtVerifier *self, const char *issuer,
                                         const char *audience)
{
  g_return_if_fail (HERALD_IS_JWT_VERIFIER (self));

  g_free (self->issuer);
  self->issuer = g_strdup (issuer);
  g_free (self->audience);
  self->audience = g_strdup (audience);
}

/**
 * herald_jwt_verifier_new_key_set:
 * @keys: (nullable): the first key set; %NULL for an empty one
 * @pin: whether only @alg is accepted ([auth] jwt-algorithm set as well)
 * @alg: the one algorithm accepted when @pin is %TRUE: %HERALD_JWT_ALG_RS256,
 *   %HERALD_JWT_ALG_ES256 or %HERALD_JWT_ALG_EDDSA
 *
 * Creates a verifier for tokens signed with the keys of a JWK Set ([auth]
 * jwks-url): the token's "kid" picks the key and the key's algorithm must be
 * the token's "alg". A token whose kid is not in the set fails with
 * %HERALD_JWT_ERROR_UNKNOWN_KEY (see herald_jwt_verifier_set_unknown_key_func()).
 * herald_jwt_verifier_set_keys() replaces the set at any time.
 *
 * Returns: (transfer full): a new #HeraldJwtVerifier
 */
HeraldJwtVerifier *
herald_jwt_verifier_new_key_set (HeraldJwtKeys *keys, gboolean pin, HeraldJwtAlg alg)
{
  HeraldJwtVerifier *self;

  g_return_val_if_fail (keys == NULL || HERALD_IS_JWT_KEYS (keys), NULL);
  g_return_val_if_fail (!pin || alg != HERALD_JWT_ALG_HS256, NULL);

  self = g_object_new (HERALD_TYPE_JWT_VERIFIER, "algorithm", pin ? alg : HERALD_JWT_ALG_RS256,
                       NULL);
  self->uses_keys = TRUE;
  self->alg_pinned = pin;
  self->keys = keys != NULL ? g_object_ref (keys) : herald_jwt_keys_new_empty ();
  return self;
}

/**
 * herald_jwt_verifier_set_keys:
 * @self: a verifier made by herald_jwt_verifier_new_key_set()
 * @keys: the new key set
 *
 * Replaces the key set. Thread-safe: verifications under way finish with the
 * set they started with.
 */
void
herald_jwt_verifier_set_keys (HeraldJwtVerifier *self, HeraldJwtKeys *keys)
{
  HeraldJwtKeys *old;

  g_return_if_fail (HERALD_IS_JWT_VERIFIER (self));
  g_return_if_fail (HERALD_IS_JWT_KEYS (keys));
  g_return_if_fail (self->uses_keys);

  g_object_ref (keys);
  g_mutex_lock (&self->keys_lock);
  old = self->keys;
  self->keys = keys;
  g_mutex_unlock (&self->keys_lock);
  g_object_unref (old);
}

/**
 * herald_jwt_verifier_dup_keys:
 * @self: a #HeraldJwtVerifier
 *
 * Returns: (transfer full) (nullable): the current key set, or %NULL when
 *   @self verifies with a configured secret or key
 */
HeraldJwtKeys *
herald_jwt_verifier_dup_keys (HeraldJwtVerifier *self)
{
  HeraldJwtKeys *keys;

  g_return_val_if_fail (HERALD_IS_JWT_VERIFIER (self), NULL);

  if (!self->uses_keys)
    return NULL;
  g_mutex_lock (&self->keys_lock);
  keys = g_object_ref (self->keys);
  g_mutex_unlock (&self->keys_lock);
  return keys;
}

/**
 * herald_jwt_verifier_uses_key_set:
 * @self: a #HeraldJwtVerifier
 *
 * Returns: %TRUE when @self was made by herald_jwt_verifier_new_key_set()
 */
gboolean
herald_jwt_verifier_uses_key_set (HeraldJwtVerifier *self)
{
  g_return_val_if_fail (HERALD_IS_JWT_VERIFIER (self), FALSE);
  return self->uses_keys;
}

/**
 * herald_jwt_verifier_set_unknown_key_func:
 * @self: a verifier made by herald_jwt_verifier_new_key_set()
 * @func: (nullable): called with the kid of every token whose kid is not in
 *   the key set, in the verifying thread (any thread)
 * @user_data: for @func
 * @destroy: (nullable): frees @user_data with @self
 *
 * Lets the owner of the key set fetch a new one. Call this before the
 * verifier is used from other threads.
 */
void
herald_jwt_verifier_set_unknown_key_func (HeraldJwtVerifier *self, HeraldJwtUnknownKeyFunc func,
                                          gpointer user_data, GDestroyNotify destroy)
{
  g_return_if_fail (HERALD_IS_JWT_VERIFIER (self));

  if (self->unknown_key_destroy != NULL)
    self->unknown_key_destroy (self->unknown_key_data);
  self->unknown_key_func = func;
  self->unknown_key_data = user_data;
  self->unknown_key_destroy = destroy;
}

/**
 * herald_jwt_verifier_get_algorithm:
 * @self: a #HeraldJwtVerifier
 *
 * Returns: the algorithm every token must use
 */
HeraldJwtAlg
herald_jwt_verifier_get_algorithm (HeraldJwtVerifier *self)
{
  g_return_val_if_fail (HERALD_IS_JWT_VERIFIER (self), HERALD_JWT_ALG_HS256);
  return self->alg;
}

/**
 * herald_jwt_verifier_verify:
 * @self: a #HeraldJwtVerifier
 * @token: a compact JWS ("header.payload.signature"), at most 8 KiB
 * @now: the current time in unix seconds
 * @leeway: clock skew tolerated on exp, nbf and iat, in seconds
 * @error: return location for a #GError in the %HERALD_JWT_ERROR domain
 *
 * Checks the structure, the header (alg must be the configured algorithm, or
 * with a key set the algorithm of the key its kid names; typ "JWT" if
 * present, no crit), the signature, the claim types (sub string;
 * exp, nbf, iat numbers; channels, publish arrays of strings) and the times:
 * expired when @now >= exp + @leeway; not yet valid when @now + @leeway < nbf
 * or @now + @leeway < iat. Error messages never quote the token.
 *
 * The verifier is immutable but for its key set, which is swapped whole, so
 * this may be called from several threads.
 *
 * Returns: (transfer full): the claims, or %NULL with @error set
 */
HeraldJwtClaims *
herald_jwt_verifier_verify (HeraldJwtVerifier *self, const char *token, gint64 now, guint leeway,
                            GError **error)
{
  g_autofree guint8 *header_data = NULL;
  g_autofree guint8 *payload_data = NULL;
  g_autofree guint8 *sig = NULL;
  g_autoptr (JsonObject) header = NULL;
  g_autoptr (JsonObject) payload = NULL;
  g_autoptr (HeraldJwtKeys) keys = NULL; /* holds the key of a key set while it is used */
  gsize length, header_length, payload_length, sig_length;
  const char *dot1, *dot2;
  const char *alg_text = NULL;
  HeraldJwtAlg alg = HERALD_JWT_ALG_HS256;
  gnutls_pubkey_t pubkey = NULL;

  g_return_val_if_fail (HERALD_IS_JWT_VERIFIER (self), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (token == NULL || *token == '\0')
    {
      g_set_error_literal (error, HERALD_JWT_ERROR, HERALD_JWT_ERROR_MALFORMED, "Token is empty");
      return NULL;
    }
  length = strnlen (token, HERALD_JWT_MAX_TOKEN_LENGTH + 1);
  if (length > HERALD_JWT_MAX_TOKEN_LENGTH)
    {
      g_set_error (error, HERALD_JWT_ERROR, HERALD_JWT_ERROR_MALFORMED,
                   "Token is longer than %d bytes", HERALD_JWT_MAX_TOKEN_LENGTH);
      return NULL;
    }

  dot1 = memchr (token, '.', length);
  dot2 = dot1 != NULL ? memchr (dot1 + 1, '.', length - (gsize)(dot1 + 1 - token)) : NULL;
  if (dot2 == NULL || memchr (dot2 + 1, '.', length - (gsize)(dot2 + 1 - token)) != NULL)
    {
      g_set_error_literal (error, HERALD_JWT_ERROR, HERALD_JWT_ERROR_MALFORMED,
                           "Token does not have three dot-separated parts");
      return NULL;
    }

  header_data = herald_base64url_decode (token, (gsize)(dot1 - token), &header_length);
  payload_data = herald_base64url_decode (dot1 + 1, (gsize)(dot2 - dot1 - 1), &payload_length);
  sig = herald_base64url_decode (dot2 + 1, length - (gsize)(dot2 + 1 - token), &sig_length);
  if (header_data == NULL || payload_data == NULL || sig == NULL)
    {
      g_set_error (error, HERALD_JWT_ERROR, HERALD_JWT_ERROR_MALFORMED,
                   "Token %s is not valid unpadded base64url",
                   header_data == NULL    ? "header"
                   : payload_data == NULL ? "payload"
                                          : "signature");
      return NULL;
    }

  header = parse_json_object (header_data, header_length, "header", error);
  if (header == NULL || !check_header (header, &alg_text, error)
      || !resolve_key (self, header, alg_text, &alg, &pubkey, &keys, error))
    return NULL;

  /* The signing input is the ASCII text "header.payload" exactly as received. */
  if (!verify_signature (self, alg, pubkey, token, (gsize)(dot2 - token), sig, sig_length, error))
    return NULL;

  payload = parse_json_object (payload_data, payload_length, "payload", error);
  if (payload == NULL || !check_required_claims (self, payload, error))
    return NULL;

  return parse_claims (payload, now, leeway, error);
}

/**
 * herald_jwt_sign_hs256:
 * @secret: the HS256 secret
 * @claims_json: the payload, used verbatim (it is not checked to be JSON)
 *
 * For tests and tools: builds a compact JWT with the header
 * {"alg":"HS256","typ":"JWT"} and an HS256 signature, all base64url without
 * padding.
 *
 * Returns: (transfer full): the token
 */
char *
herald_jwt_sign_hs256 (GBytes *secret, const char *claims_json)
{
  static const char header_json[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
  g_autofree char *header = NULL;
  g_autofree char *payload = NULL;
  g_autofree char *signing_input = NULL;
  g_autofree char *signature = NULL;
  guint8 mac[HS256_MAC_SIZE];
  const void *key;
  gsize key_length;
  int ret;

  g_return_val_if_fail (secret != NULL, NULL);
  g_return_val_if_fail (claims_json != NULL, NULL);

  header = herald_base64url_encode (header_json, strlen (header_json));
  payload = herald_base64url_encode (claims_json, strlen (claims_json));
  signing_input = g_strconcat (header, ".", payload, NULL);

  key = g_bytes_get_data (secret, &key_length);
  ret = gnutls_hmac_fast (GNUTLS_MAC_SHA256, key, key_length, signing_input, strlen (signing_input),
                          mac);
  if (ret < 0)
    {
      g_critical ("HMAC-SHA256 failed: %s", gnutls_strerror (ret));
      return NULL;
    }
  signature = herald_base64url_encode (mac, sizeof mac);
  return g_strconcat (signing_input, ".", signature, NULL);
}
