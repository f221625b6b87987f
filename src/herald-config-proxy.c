/* herald-config-proxy.c: the [proxy] getters (the backend's hooks).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "herald-config-internal.h"

static const char *const hook_names[HERALD_N_HOOKS]
    = { "connect", "refresh", "subscribe", "publish", "rpc" };

/**
 * herald_hook_name:
 *
 * Returns: the hook's name as in its key ("connect" for connect-url) and in /metrics
 */
const char *
herald_hook_name (HeraldHook hook)
{
  g_return_val_if_fail (hook < HERALD_N_HOOKS, "unknown");
  return hook_names[hook];
}

/**
 * herald_config_get_proxy_url:
 *
 * Returns: (nullable): [proxy] connect-url, refresh-url, … for @hook; %NULL when unset
 */
const char *
herald_config_get_proxy_url (HeraldConfig *self, HeraldHook hook)
{
  g_return_val_if_fail (HERALD_IS_CONFIG (self), NULL);
  g_return_val_if_fail (hook < HERALD_N_HOOKS, NULL);
  return herald_config_get_settings (self)->proxy_urls[hook];
}

guint
herald_config_get_proxy_timeout_ms (HeraldConfig *self)
{
  g_return_val_if_fail (HERALD_IS_CONFIG (self), 1000);
  return herald_config_get_settings (self)->proxy_timeout_ms;
}

const char *const *
herald_config_get_proxy_forward_headers (HeraldConfig *self)
{
  g_return_val_if_fail (HERALD_IS_CONFIG (self), NULL);
  return (const char *const *)herald_config_get_settings (self)->proxy_forward_headers;
}

guint
herald_config_get_proxy_max_in_flight (HeraldConfig *self)
{
  g_return_val_if_fail (HERALD_IS_CONFIG (self), 256);
  return herald_config_get_settings (self)->proxy_max_in_flight;
}
