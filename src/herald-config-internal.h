/* herald-config-internal.h: what the parts of HeraldConfig share
 * (herald-config.c: the key tables, the object, loading and getters;
 * herald-config-parse.c: the key parsers; herald-config-check.c: the checks
 * of the whole). Not for the rest of the daemon.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "herald-config.h"
#include "herald-config-private.h"

G_BEGIN_DECLS

#define DEFAULT_LISTEN "127.0.0.1:8080"
#define WORKERS_MAX 256
#define DRAIN_SECONDS_MAX 600
#define LEEWAY_MAX 3600
#define JWKS_REFRESH_MAX 86400
#define HISTORY_SIZE_MAX 100000
#define HISTORY_TTL_MAX 31536000
#define PROXY_TIMEOUT_MS_MIN 1
#define PROXY_TIMEOUT_MS_MAX 300000
#define PROXY_MAX_IN_FLIGHT_MAX 1000000

/* Everything that is immutable once loaded */
typedef struct
{
  GPtrArray *listen; /* of HeraldListenAddress* */
  char *tls_certificate;
  char *tls_key;
  char *tls_certificate_where; /* "FILE:LINE" of the key, for messages */
  char *tls_key_where;
  char **allowed_origins;
  gboolean compression;
  gboolean io_uring; /* [server] io-uring */
  guint workers;
  guint drain_seconds;     /* [server] drain-seconds */
  gboolean metrics;        /* [server] metrics, when metrics_set */
  gboolean metrics_set;    /* unset: on when listening on loopback only */
  gboolean admin_page;     /* [server] admin-page, when admin_page_set */
  gboolean admin_page_set; /* unset: as metrics */

  GBytes *jwt_secret;
  HeraldConfigSource jwt_secret_source;
  char *jwt_secret_file; /* when the secret came from a file */
  char *jwt_public_key_file;
  HeraldJwtAlg jwt_algorithm;
  char *jwt_issuer;   /* [auth] issuer, or NULL */
  char *jwt_audience; /* [auth] audience, or NULL */
  gboolean jwt_algorithm_set; /* [auth] jwt-algorithm was given */
  char *jwks_url;             /* [auth] jwks-url, or NULL */
  guint jwks_refresh;         /* [auth] jwks-refresh, seconds */
  guint leeway;
  gboolean anonymous_set; /* the key was present */
  gboolean anonymous;
  char **anonymous_channels;
  char **anonymous_publish;
  gboolean anonymous_publish_set; /* the key was present */

  char *api_key;
  HeraldConfigSource api_key_source;
  char *api_key_file; /* when the key came from a file */

  guint history_size;
  guint history_ttl;

  char *redis_url;
  gboolean redis_url_from_env;
  char **redis_shards;    /* redis:// URLs, or NULL */
  char **redis_sentinels; /* HOST:PORT, or NULL */
  char *redis_sentinel_master;
  char **redis_cluster; /* HOST:PORT seeds, or NULL */
  char *redis_password; /* for every server whose URL has none */

  char *proxy_urls[HERALD_N_HOOKS]; /* [proxy] connect-url …, NULL = unset */
  guint proxy_timeout_ms;
  char **proxy_forward_headers;
  guint proxy_max_in_flight;
} HeraldConfigSettings;

typedef struct
{
  GPtrArray *list; /* of GError*: every problem found so far */
  GError *scratch; /* the slot handed out last */
} HeraldConfigProblems;

typedef struct
{
  GKeyFile *key_file;
  const char *origin;             /* names the source in messages */
  const char *basedir;            /* relative paths are resolved against it; NULL = as given */
  HeraldConfigProblems *problems; /* every key is checked; all problems are reported */
  const char *data;               /* the text parsed, to find line numbers; may be NULL */
  gsize length;
  gboolean strict; /* unknown groups and keys are problems, not warnings */
} HeraldConfigParser;

/* Every problem of one load or check, so all are reported at once */
void herald_config_problems_init (HeraldConfigProblems *p);
void herald_config_problems_clear (HeraldConfigProblems *p);
GError **herald_config_problems_slot (HeraldConfigProblems *p);
gboolean herald_config_problems_take (HeraldConfigProblems *p, GError **error);

/* herald-config-parse.c */
gboolean herald_config_load_key_file (GKeyFile *key_file, const char *data, gsize length,
                                      const char *origin, GError **error);
void herald_config_warn_unknown (const HeraldConfigParser *parser, const char *only_group);
gboolean herald_config_parse_uint (const HeraldConfigParser *parser, const char *group,
                                   const char *key, guint min, guint max, guint *out,
                                   GError **error);
/* [server], [auth], [api], [history] and [redis] into @settings, with the
 * environment; problems go to parser->problems */
void herald_config_parse_sections (const HeraldConfigParser *parser,
                                   HeraldConfigSettings *settings);

/* [proxy] into @settings; problems go to parser->problems */
void herald_config_parse_proxy (const HeraldConfigParser *parser, HeraldConfigSettings *settings);

/* [namespace.NAME] groups; the default namespace starts from [history]
 * (@history_size, @history_ttl); problems go to parser->problems */
HeraldNamespaceSet *herald_config_parse_namespaces (const HeraldConfigParser *parser,
                                                    guint history_size, guint history_ttl);

/* herald-config.c */
HeraldConfigSettings *herald_config_get_settings (HeraldConfig *self);

G_END_DECLS
