/* herald-config-private.h: what the configuration tools (--check-config,
 * --print-config, herald-config-schema.c) need from HeraldConfig beyond its
 * public getters. Not for the rest of the daemon.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "herald-config.h"

G_BEGIN_DECLS

typedef enum
{
  HERALD_CONFIG_SOURCE_NONE,
  HERALD_CONFIG_SOURCE_VALUE, /* written in the file */
  HERALD_CONFIG_SOURCE_FILE,  /* read from a *-file key */
  HERALD_CONFIG_SOURCE_ENV,   /* from the environment */
} HeraldConfigSource;

/* The known groups (index 0, 1, … until NULL) and the keys of one group (NULL if unknown) */
const char *herald_config_known_group (guint i);
const char *const *herald_config_known_keys (const char *group);

/* herald-config-schema.c: the closest known group, or key of @group, to a
 * misspelt one (edit distance), or NULL when nothing is close */
const char *herald_config_suggest_group (const char *group);
const char *herald_config_suggest_key (const char *group, const char *key);
/* 1-based line of "[group]" (key NULL) or of "key=" in [group]; 0 if not found */
guint herald_config_find_line (const char *data, gsize length, const char *group, const char *key);
/* One-line description of a key, for --print-config (never NULL) */
const char *herald_config_describe_key (const char *group, const char *key);

/* Where the secrets came from; *file is the *-file path for _FILE */
HeraldConfigSource herald_config_get_jwt_secret_source (HeraldConfig *self, const char **file);
HeraldConfigSource herald_config_get_api_key_source (HeraldConfig *self, const char **file);
gboolean herald_config_get_redis_url_from_env (HeraldConfig *self);
/* workers as configured (0 = one per core), --workers included */
guint herald_config_get_workers_setting (HeraldConfig *self);
/* TRUE when [auth] anonymous was set, with its value in *value */
gboolean herald_config_get_anonymous_setting (HeraldConfig *self, gboolean *value);
/* Any [limits] key by name; *blurb may be NULL */
gboolean herald_config_get_limit_by_key (HeraldConfig *self, const char *key, guint *value,
                                         const char **blurb);

/* The namespaces in effect (main thread) */
const HeraldNamespaceSet *herald_config_get_namespaces (HeraldConfig *self);

G_END_DECLS
