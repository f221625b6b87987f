/* herald-config-jwks.c: the [auth] keys of a JWK Set (jwks-url,
 * jwks-refresh) and whether jwt-algorithm pins one algorithm, read from the
 * settings.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "herald-config-internal.h"

/**
 * herald_config_get_jwks_url:
 * @self: a #HeraldConfig
 *
 * Returns: (nullable): the URL token keys are fetched from ([auth] jwks-url)
 */
const char *
herald_config_get_jwks_url (HeraldConfig *self)
{
  g_return_val_if_fail (HERALD_IS_CONFIG (self), NULL);
  return herald_config_get_settings (self)->jwks_url;
}

/**
 * herald_config_get_jwks_refresh:
 * @self: a #HeraldConfig
 *
 * Returns: seconds between two fetches of the key set ([auth] jwks-refresh,
 *   default 300)
 */
guint
herald_config_get_jwks_refresh (HeraldConfig *self)
{
  g_return_val_if_fail (HERALD_IS_CONFIG (self), 300);
  return herald_config_get_settings (self)->jwks_refresh;
}

/**
 * herald_config_get_jwt_algorithm_set:
 * @self: a #HeraldConfig
 *
 * Returns: %TRUE when [auth] jwt-algorithm was given (with jwks-url: the only
 *   algorithm accepted, whatever the keys say)
 */
gboolean
herald_config_get_jwt_algorithm_set (HeraldConfig *self)
{
  g_return_val_if_fail (HERALD_IS_CONFIG (self), FALSE);
  return herald_config_get_settings (self)->jwt_algorithm_set;
}
