/* herald-jwt.h: JSON Web Token verification (RFC 7515/7519) with GnuTLS.
 *
 * The algorithm is pinned by configuration (or by the key a token's "kid"
 * names in a key set) and never taken from the token; "none" is always
 * refused.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib-object.h>

#include "herald-jwt-alg.h"
#include "herald-jwt-keys.h"

G_BEGIN_DECLS

#define HERALD_JWT_ERROR (herald_jwt_error_quark ())
typedef enum
{
  HERALD_JWT_ERROR_MALFORMED,  /* not three base64url parts, bad JSON, bad claim types */
  HERALD_JWT_ERROR_ALGORITHM,  /* header alg differs from the configured one, or "none" */
  HERALD_JWT_ERROR_SIGNATURE,  /* signature does not verify */
  HERALD_JWT_ERROR_EXPIRED,    /* exp + leeway <= now */
  HERALD_JWT_ERROR_NOT_YET_VALID, /* nbf - leeway > now, or iat in the future beyond leeway */
  HERALD_JWT_ERROR_KEY,        /* key file unreadable or of the wrong kind */
  HERALD_JWT_ERROR_CLAIM,      /* iss or aud missing or not the required value */
  HERALD_JWT_ERROR_UNKNOWN_KEY, /* key set: the token's kid is not in it */
} HeraldJwtError;
GQuark herald_jwt_error_quark (void);


typedef struct
{
  char *sub;        /* NULL when absent */
  gint64 exp;       /* unix seconds, 0 when absent */
  gint64 nbf;
  gint64 iat;
  char **channels;  /* NULL when the claim is absent (= no restriction from the token) */
  char **publish;   /* NULL when absent (= may not publish) */
  char **subs;      /* channels the server subscribes the connection to; NULL when absent */
  char *channel;    /* a subscription token's channel; NULL when absent */
} HeraldJwtClaims;

void herald_jwt_claims_free (HeraldJwtClaims *claims);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (HeraldJwtClaims, herald_jwt_claims_free)

/* TRUE when @channel matches one of @patterns: exact names, or prefixes ending in '*'
 * ("*" alone matches everything). NULL or empty @patterns match nothing. */
gboolean herald_channel_pattern_match (const char *const *patterns, const char *channel);

#define HERALD_TYPE_JWT_VERIFIER (herald_jwt_verifier_get_type ())
G_DECLARE_FINAL_TYPE (HeraldJwtVerifier, herald_jwt_verifier, HERALD, JWT_VERIFIER, GObject)

HeraldJwtVerifier *herald_jwt_verifier_new_hmac (GBytes *secret);
/* RS256, ES256 or EdDSA (Ed25519) from a PEM public key (SubjectPublicKeyInfo)
 * or X.509 certificate */
HeraldJwtVerifier *herald_jwt_verifier_new_public_key (HeraldJwtAlg alg,
                                                       const char *pem_path,
                                                       GError **error);
HeraldJwtVerifier *herald_jwt_verifier_new_public_key_data (HeraldJwtAlg alg,
                                                            GBytes *pem,
                                                            GError **error);

/* Requires "iss" to equal @issuer and "aud" (a string or an array of strings)
 * to contain @audience; NULL for no requirement. Call before the verifier is
 * shared with other threads. */
void herald_jwt_verifier_set_required_claims (HeraldJwtVerifier *self, const char *issuer,
                                              const char *audience);

/* [auth] jwks-url: keys picked by the token's "kid", the set replaceable at
 * any time from any thread; with @pin only @alg is accepted. */
HeraldJwtVerifier *herald_jwt_verifier_new_key_set (HeraldJwtKeys *keys, gboolean pin,
                                                    HeraldJwtAlg alg);
void herald_jwt_verifier_set_keys (HeraldJwtVerifier *self, HeraldJwtKeys *keys);
HeraldJwtKeys *herald_jwt_verifier_dup_keys (HeraldJwtVerifier *self);
gboolean herald_jwt_verifier_uses_key_set (HeraldJwtVerifier *self);

/* Called (in the verifying thread) with the kid of a token the key set does
 * not know; set before the verifier is shared. */
typedef void (*HeraldJwtUnknownKeyFunc) (const char *kid, gpointer user_data);
void herald_jwt_verifier_set_unknown_key_func (HeraldJwtVerifier *self,
                                               HeraldJwtUnknownKeyFunc func, gpointer user_data,
                                               GDestroyNotify destroy);

/* The algorithm every token must use (a key set's verifier: the pinned one). */
HeraldJwtAlg herald_jwt_verifier_get_algorithm (HeraldJwtVerifier *self);

/* Verifies @token at time @now (unix seconds) with @leeway seconds and returns its claims. */
HeraldJwtClaims *herald_jwt_verifier_verify (HeraldJwtVerifier *self,
                                             const char *token,
                                             gint64 now,
                                             guint leeway,
                                             GError **error);

/* For tests and tools: signs @claims_json with HS256 and returns a compact JWT. */
char *herald_jwt_sign_hs256 (GBytes *secret, const char *claims_json);

G_END_DECLS
