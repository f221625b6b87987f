/* herald-http-jwks.h: the JWKS client — fetches the JWK Set of [auth]
 * jwks-url over HTTP (libsoup, asynchronously, in the main context) at
 * start, every jwks-refresh seconds and on a token with an unknown kid (at
 * most once per 10 s), and hands each good set to the token verifier. A
 * fetch that fails keeps the last good set.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib-object.h>

#include "herald-jwt.h"

G_BEGIN_DECLS

/* An unknown kid fetches again at most this often (counting every fetch). */
#define HERALD_HTTP_JWKS_MIN_INTERVAL_SECONDS 10
/* A fetch that takes longer fails. */
#define HERALD_HTTP_JWKS_TIMEOUT_SECONDS 10

#define HERALD_TYPE_HTTP_JWKS (herald_http_jwks_get_type ())
G_DECLARE_FINAL_TYPE (HeraldHttpJwks, herald_http_jwks, HERALD, HTTP_JWKS, GObject)

/* Fetches @url into @verifier (made by herald_jwt_verifier_new_key_set(),
 * not yet shared with other threads: this sets its unknown-kid function) in
 * the thread-default main context. */
HeraldHttpJwks *herald_http_jwks_new (const char *url, guint refresh_seconds,
                                      HeraldJwtVerifier *verifier);
/* The first fetch; then the timer. */
void herald_http_jwks_start (HeraldHttpJwks *self);
/* Cancels what is under way and every timer (dispose does it too). */
void herald_http_jwks_stop (HeraldHttpJwks *self);

G_END_DECLS
