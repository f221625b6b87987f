/* herald-config-redis.c: which Redis deployment [redis] selects (url,
 * shards, sentinels or cluster) and what it names, read from the settings.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "herald-config-internal.h"

/**
 * herald_config_get_redis_mode:
 *
 * Returns: which Redis deployment [redis] (or REDIS_URL) selects
 */
HeraldRedisMode
herald_config_get_redis_mode (HeraldConfig *self)
{
  g_return_val_if_fail (HERALD_IS_CONFIG (self), HERALD_REDIS_MODE_NONE);
  if (herald_config_get_settings (self)->redis_url != NULL)
    return HERALD_REDIS_MODE_URL;
  if (herald_config_get_settings (self)->redis_shards != NULL)
    return HERALD_REDIS_MODE_SHARDS;
  if (herald_config_get_settings (self)->redis_sentinels != NULL)
    return HERALD_REDIS_MODE_SENTINELS;
  if (herald_config_get_settings (self)->redis_cluster != NULL)
    return HERALD_REDIS_MODE_CLUSTER;
  return HERALD_REDIS_MODE_NONE;
}

/**
 * herald_config_get_redis_servers:
 *
 * Returns: (transfer none) (nullable): the [redis] shards URLs, sentinels or
 *   cluster seeds (HOST:PORT), as the mode says; %NULL for none and url
 */
const char *const *
herald_config_get_redis_servers (HeraldConfig *self)
{
  g_return_val_if_fail (HERALD_IS_CONFIG (self), NULL);
  switch (herald_config_get_redis_mode (self))
    {
    case HERALD_REDIS_MODE_SHARDS:
      return (const char *const *)herald_config_get_settings (self)->redis_shards;
    case HERALD_REDIS_MODE_SENTINELS:
      return (const char *const *)herald_config_get_settings (self)->redis_sentinels;
    case HERALD_REDIS_MODE_CLUSTER:
      return (const char *const *)herald_config_get_settings (self)->redis_cluster;
    case HERALD_REDIS_MODE_NONE:
    case HERALD_REDIS_MODE_URL:
    default:
      return NULL;
    }
}

const char *
herald_config_get_redis_sentinel_master (HeraldConfig *self)
{
  g_return_val_if_fail (HERALD_IS_CONFIG (self), NULL);
  return herald_config_get_settings (self)->redis_sentinel_master;
}

const char *
herald_config_get_redis_password (HeraldConfig *self)
{
  g_return_val_if_fail (HERALD_IS_CONFIG (self), NULL);
  return herald_config_get_settings (self)->redis_password;
}
