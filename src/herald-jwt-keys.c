/* herald-jwt-keys.c: a JSON Web Key Set (RFC 7517, RFC 7518 §6, RFC 8037 §2)
 * imported with GnuTLS.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "herald-base64url.h"
#include "herald-json.h"
#include "herald-jwt-keys.h"

#include <string.h>

#include <gnutls/gnutls.h>
#include <json-glib/json-glib.h>

#define RSA_MIN_BITS 2048 /* RFC 7518 §3.3, as for jwt-public-key-file */
#define P256_COORD_SIZE 32
#define ED25519_KEY_SIZE 32
#define MAX_KID_SHOWN 64 /* characters of a kid quoted in a note */

/* The quark's name as written: clang-format would space out its dashes. */
/* clang-format off */
G_DEFINE_QUARK (herald-jwt-keys-error-quark, herald_jwt_keys_error)
/* clang-format on */

typedef struct
{
  char *kid;
  HeraldJwtAlg alg;
  gnutls_pubkey_t key;
} Key;

struct _HeraldJwtKeys
{
  GObject parent_instance;

  GArray *keys;      /* of Key, in document order */
  GHashTable *by_id; /* kid (borrowed) → index + 1 */
};

G_DEFINE_FINAL_TYPE (HeraldJwtKeys, herald_jwt_keys, G_TYPE_OBJECT)

static void
key_clear (Key *key)
{
  g_free (key->kid);
  if (key->key != NULL)
    gnutls_pubkey_deinit (key->key);
}

static void
herald_jwt_keys_finalize (GObject *object)
{
  HeraldJwtKeys *self = HERALD_JWT_KEYS (object);

  g_hash_table_unref (self->by_id);
  g_array_unref (self->keys);
  G_OBJECT_CLASS (herald_jwt_keys_parent_class)->finalize (object);
}

static void
herald_jwt_keys_class_init (HeraldJwtKeysClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = herald_jwt_keys_finalize;
}

static void
herald_jwt_keys_init (HeraldJwtKeys *self)
{
  self->keys = g_array_new (FALSE, TRUE, sizeof (Key));
  g_array_set_clear_func (self->keys, (GDestroyNotify)key_clear);
  self->by_id = g_hash_table_new (g_str_hash, g_str_equal);
}

/**
 * herald_jwt_keys_new_empty:
 *
 * Returns: (transfer full): a set without keys
 */
HeraldJwtKeys *
herald_jwt_keys_new_empty (void)
{
  return g_object_new (HERALD_TYPE_JWT_KEYS, NULL);
}

/* A string member, or NULL when absent or not a string. */
static const char *
get_string (JsonObject *object, const char *name)
{
  JsonNode *node = json_object_get_member (object, name);

  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node)
      || json_node_get_value_type (node) != G_TYPE_STRING)
    return NULL;
  return json_node_get_string (node);
}

/* Decodes the base64url member @name into @out (g_free() its data). With
 * @size > 0 the value must be exactly that long; a shorter big-endian EC
 * coordinate is not allowed either (RFC 7518 §6.2.1.2). */
static gboolean
get_bytes (JsonObject *object, const char *name, gsize size, gnutls_datum_t *out, char **why)
{
  const char *text = get_string (object, name);
  gsize length = 0;
  guint8 *data;

  if (text == NULL || *text == '\0')
    {
      *why = g_strdup_printf ("no \"%s\" string", name);
      return FALSE;
    }
  data = herald_base64url_decode (text, strlen (text), &length);
  if (data == NULL)
    {
      *why = g_strdup_printf ("\"%s\" is not base64url", name);
      return FALSE;
    }
  if (size > 0 && length != size)
    {
      *why = g_strdup_printf ("\"%s\" must be %" G_GSIZE_FORMAT " bytes, not %" G_GSIZE_FORMAT,
                              name, size, length);
      g_free (data);
      return FALSE;
    }
  out->data = data;
  out->size = (unsigned int)length;
  return TRUE;
}

static gboolean
import_rsa (JsonObject *jwk, gnutls_pubkey_t key, char **why)
{
  gnutls_datum_t n = { NULL, 0 }, e = { NULL, 0 };
  unsigned int bits = 0;
  int ret;

  if (!get_bytes (jwk, "n", 0, &n, why))
    return FALSE;
  if (!get_bytes (jwk, "e", 0, &e, why))
    {
      g_free (n.data);
      return FALSE;
    }
  ret = gnutls_pubkey_import_rsa_raw (key, &n, &e);
  g_free (n.data);
  g_free (e.data);
  if (ret < 0)
    {
      *why = g_strdup_printf ("not an RSA public key (%s)", gnutls_strerror (ret));
      return FALSE;
    }
  gnutls_pubkey_get_pk_algorithm (key, &bits);
  if (bits < RSA_MIN_BITS)
    {
      *why = g_strdup_printf ("the RSA key has %u bits; RS256 needs at least %d", bits,
                              RSA_MIN_BITS);
      return FALSE;
    }
  return TRUE;
}

static gboolean
import_ec (JsonObject *jwk, gnutls_pubkey_t key, char **why)
{
  const char *crv = get_string (jwk, "crv");
  gnutls_datum_t x = { NULL, 0 }, y = { NULL, 0 };
  int ret;

  if (g_strcmp0 (crv, "P-256") != 0)
    {
      *why = g_strdup ("kty \"EC\" is supported with crv \"P-256\" only");
      return FALSE;
    }
  if (!get_bytes (jwk, "x", P256_COORD_SIZE, &x, why))
    return FALSE;
  if (!get_bytes (jwk, "y", P256_COORD_SIZE, &y, why))
    {
      g_free (x.data);
      return FALSE;
    }
  ret = gnutls_pubkey_import_ecc_raw (key, GNUTLS_ECC_CURVE_SECP256R1, &x, &y);
  g_free (x.data);
  g_free (y.data);
  if (ret < 0)
    {
      *why = g_strdup_printf ("not a P-256 public key (%s)", gnutls_strerror (ret));
      return FALSE;
    }
  return TRUE;
}

static gboolean
import_okp (JsonObject *jwk, gnutls_pubkey_t key, char **why)
{
  const char *crv = get_string (jwk, "crv");
  gnutls_datum_t x = { NULL, 0 };
  int ret;

  if (g_strcmp0 (crv, "Ed25519") != 0)
    {
      *why = g_strdup ("kty \"OKP\" is supported with crv \"Ed25519\" only");
      return FALSE;
    }
  if (!get_bytes (jwk, "x", ED25519_KEY_SIZE, &x, why))
    return FALSE;
  ret = gnutls_pubkey_import_ecc_raw (key, GNUTLS_ECC_CURVE_ED25519, &x, NULL);
  g_free (x.data);
  if (ret < 0)
    {
      *why = g_strdup_printf ("not an Ed25519 public key (%s)", gnutls_strerror (ret));
      return FALSE;
    }
  return TRUE;
}

/* The algorithm a key of @kty is for, checked against its "alg" when it has
 * one (RFC 7517 §4.4). FALSE with @why for anything Herald does not verify. */
static gboolean
key_algorithm (JsonObject *jwk, const char *kty, HeraldJwtAlg *alg, char **why)
{
  const char *stated = get_string (jwk, "alg");
  const char *implied;

  if (strcmp (kty, "RSA") == 0)
    *alg = HERALD_JWT_ALG_RS256, implied = "RS256";
  else if (strcmp (kty, "EC") == 0)
    *alg = HERALD_JWT_ALG_ES256, implied = "ES256";
  else if (strcmp (kty, "OKP") == 0)
    *alg = HERALD_JWT_ALG_EDDSA, implied = "EdDSA";
  else
    {
      *why = g_strdup_printf ("kty \"%.16s\" is not supported (RSA, EC P-256 and OKP Ed25519 are)",
                              kty);
      return FALSE;
    }
  if (json_object_has_member (jwk, "alg") && stated == NULL)
    {
      *why = g_strdup ("\"alg\" is not a string");
      return FALSE;
    }
  if (stated != NULL && strcmp (stated, implied) != 0)
    {
      *why = g_strdup_printf ("alg \"%.16s\" is not supported for kty \"%s\" (only %s is)", stated,
                              kty, implied);
      return FALSE;
    }
  return TRUE;
}

/* Adds the JWK @jwk to @self, or returns FALSE with @why. */
static gboolean
add_key (HeraldJwtKeys *self, JsonObject *jwk, const char *kid, char **why)
{
  const char *kty = get_string (jwk, "kty");
  const char *use = get_string (jwk, "use");
  gnutls_pubkey_t pubkey = NULL;
  HeraldJwtAlg alg;
  gboolean ok;
  Key key;

  if (kty == NULL)
    {
      *why = g_strdup ("no \"kty\" string");
      return FALSE;
    }
  if (json_object_has_member (jwk, "use") && g_strcmp0 (use, "sig") != 0)
    {
      *why = g_strdup ("\"use\" is not \"sig\"");
      return FALSE;
    }
  /* A private key published by mistake: someone else could mint tokens. */
  if (json_object_has_member (jwk, "d") || json_object_has_member (jwk, "p"))
    {
      *why = g_strdup ("it is a private key (has \"d\"); publish only public keys");
      return FALSE;
    }
  if (!key_algorithm (jwk, kty, &alg, why))
    return FALSE;
  if (g_hash_table_contains (self->by_id, kid))
    {
      *why = g_strdup ("its kid is used by an earlier key of the set");
      return FALSE;
    }
  if (gnutls_pubkey_init (&pubkey) < 0)
    {
      *why = g_strdup ("cannot create a GnuTLS public key");
      return FALSE;
    }
  ok = alg == HERALD_JWT_ALG_RS256   ? import_rsa (jwk, pubkey, why)
       : alg == HERALD_JWT_ALG_ES256 ? import_ec (jwk, pubkey, why)
                                     : import_okp (jwk, pubkey, why);
  if (!ok)
    {
      gnutls_pubkey_deinit (pubkey);
      return FALSE;
    }
  key.kid = g_strdup (kid);
  key.alg = alg;
  key.key = pubkey;
  g_array_append_val (self->keys, key);
  g_hash_table_insert (self->by_id, key.kid, GUINT_TO_POINTER (self->keys->len));
  return TRUE;
}

static void
note (GPtrArray *skipped, guint index, const char *kid, const char *why)
{
  if (skipped == NULL)
    return;
  if (kid != NULL)
    {
      g_autofree char *shown = g_utf8_make_valid (kid, -1);

      if (g_utf8_strlen (shown, -1) > MAX_KID_SHOWN)
        *g_utf8_offset_to_pointer (shown, MAX_KID_SHOWN) = '\0';
      g_ptr_array_add (skipped, g_strdup_printf ("key %u (kid \"%s\"): %s", index, shown, why));
    }
  else
    g_ptr_array_add (skipped, g_strdup_printf ("key %u: %s", index, why));
}

/**
 * herald_jwt_keys_new_from_data:
 * @data: the JWK Set document
 * @length: its length in bytes, at most %HERALD_JWT_KEYS_MAX_DOCUMENT
 * @skipped: (out) (optional) (transfer full): what was left out and why
 * @error: return location for a #GError
 *
 * Returns: (transfer full): the set, or %NULL with @error set
 */
HeraldJwtKeys *
herald_jwt_keys_new_from_data (const char *data, gsize length, GPtrArray **skipped, GError **error)
{
  g_autoptr (HeraldJwtKeys) self = NULL;
  g_autoptr (JsonParser) parser = NULL;
  g_autoptr (GPtrArray) notes = g_ptr_array_new_with_free_func (g_free);
  JsonNode *root, *keys_node;
  JsonArray *keys;
  guint n;

  g_return_val_if_fail (data != NULL || length == 0, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (skipped != NULL)
    *skipped = NULL;
  if (length > HERALD_JWT_KEYS_MAX_DOCUMENT)
    {
      g_set_error (error, HERALD_JWT_KEYS_ERROR, HERALD_JWT_KEYS_ERROR_INVALID,
                   "the key set is larger than %d bytes", HERALD_JWT_KEYS_MAX_DOCUMENT);
      return NULL;
    }
  /* Strict first (one value, no U+0000 in strings); json-glib's own message
   * would quote the input. */
  if (length == 0 || !g_utf8_validate (data, (gssize)length, NULL)
      || !herald_json_check_strict (data, length, NULL))
    {
      g_set_error_literal (error, HERALD_JWT_KEYS_ERROR, HERALD_JWT_KEYS_ERROR_INVALID,
                           "the key set is not valid JSON");
      return NULL;
    }
  parser = json_parser_new_immutable ();
  if (!json_parser_load_from_data (parser, data, (gssize)length, NULL))
    {
      g_set_error_literal (error, HERALD_JWT_KEYS_ERROR, HERALD_JWT_KEYS_ERROR_INVALID,
                           "the key set is not valid JSON");
      return NULL;
    }
  root = json_parser_get_root (parser);
  keys_node = root != NULL && JSON_NODE_HOLDS_OBJECT (root)
                  ? json_object_get_member (json_node_get_object (root), "keys")
                  : NULL;
  if (keys_node == NULL || !JSON_NODE_HOLDS_ARRAY (keys_node))
    {
      g_set_error_literal (error, HERALD_JWT_KEYS_ERROR, HERALD_JWT_KEYS_ERROR_INVALID,
                           "not a JWK Set: no \"keys\" array");
      return NULL;
    }

  self = herald_jwt_keys_new_empty ();
  keys = json_node_get_array (keys_node);
  n = json_array_get_length (keys);
  for (guint i = 0; i < n; i++)
    {
      JsonNode *node = json_array_get_element (keys, i);
      g_autofree char *why = NULL;
      JsonObject *jwk;
      const char *kid;

      if (i >= HERALD_JWT_KEYS_MAX_KEYS)
        {
          g_ptr_array_add (notes, g_strdup_printf ("keys %u to %u: more than %d keys", i, n - 1,
                                                   HERALD_JWT_KEYS_MAX_KEYS));
          break;
        }
      if (!JSON_NODE_HOLDS_OBJECT (node))
        {
          note (notes, i, NULL, "not a JSON object");
          continue;
        }
      jwk = json_node_get_object (node);
      kid = get_string (jwk, "kid");
      if (kid == NULL || *kid == '\0')
        {
          note (notes, i, NULL, "no \"kid\" (tokens pick their key by kid)");
          continue;
        }
      if (!add_key (self, jwk, kid, &why))
        note (notes, i, kid, why);
    }

  if (skipped != NULL && notes->len > 0)
    *skipped = g_steal_pointer (&notes);
  if (self->keys->len == 0)
    {
      g_set_error (error, HERALD_JWT_KEYS_ERROR, HERALD_JWT_KEYS_ERROR_INVALID,
                   n == 0 ? "the key set has no keys" : "none of its %u keys can be used", n);
      return NULL;
    }
  return g_steal_pointer (&self);
}

/**
 * herald_jwt_keys_get_n_keys:
 * @self: a #HeraldJwtKeys
 *
 * Returns: how many keys the set holds
 */
guint
herald_jwt_keys_get_n_keys (HeraldJwtKeys *self)
{
  g_return_val_if_fail (HERALD_IS_JWT_KEYS (self), 0);
  return self->keys->len;
}

/**
 * herald_jwt_keys_lookup:
 * @self: a #HeraldJwtKeys
 * @kid: a key id
 * @alg: (out): the key's algorithm
 * @key: (out) (transfer none): the key, owned by @self
 *
 * Returns: %TRUE when the set has a key with id @kid
 */
gboolean
herald_jwt_keys_lookup (HeraldJwtKeys *self, const char *kid, HeraldJwtAlg *alg,
                        gnutls_pubkey_t *key)
{
  guint index;
  const Key *found;

  g_return_val_if_fail (HERALD_IS_JWT_KEYS (self), FALSE);
  g_return_val_if_fail (kid != NULL, FALSE);

  index = GPOINTER_TO_UINT (g_hash_table_lookup (self->by_id, kid));
  if (index == 0)
    return FALSE;
  found = &g_array_index (self->keys, Key, index - 1);
  if (alg != NULL)
    *alg = found->alg;
  if (key != NULL)
    *key = found->key;
  return TRUE;
}

/**
 * herald_jwt_keys_dup_ids:
 * @self: a #HeraldJwtKeys
 *
 * Returns: (transfer full): the key ids in document order
 */
char **
herald_jwt_keys_dup_ids (HeraldJwtKeys *self)
{
  GStrvBuilder *builder;
  char **ids;

  g_return_val_if_fail (HERALD_IS_JWT_KEYS (self), NULL);

  builder = g_strv_builder_new ();
  for (guint i = 0; i < self->keys->len; i++)
    g_strv_builder_add (builder, g_array_index (self->keys, Key, i).kid);
  ids = g_strv_builder_end (builder);
  g_strv_builder_unref (builder);
  return ids;
}
