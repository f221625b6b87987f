/* herald-config.h: Herald's configuration (GKeyFile, environment, command line).
 *
 * Precedence: command line > environment > config file > defaults.
 * Everything is immutable after herald_config_load() except the runtime
 * limits (HeraldConfig:heartbeat-interval … ), which D-Bus and SIGHUP may
 * change while running; their getters are atomic so worker threads can read
 * them on every sweep without locks.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib-object.h>

#include "herald-config-error.h"
#include "herald-jwt-alg.h"
#include "herald-listen-address.h"
#include "herald-namespace.h"

G_BEGIN_DECLS

#define HERALD_TYPE_CONFIG (herald_config_get_type ())
G_DECLARE_FINAL_TYPE (HeraldConfig, herald_config, HERALD, CONFIG, GObject)

/* Defaults only. */
HeraldConfig *herald_config_new (void);

/* Loads @path (GKeyFile). When @path is NULL the default path is tried and a
 * missing default file is not an error; a missing explicit file is. Unknown
 * groups/keys are warned about with g_warning naming file, group and key.
 * Invalid values fail with HERALD_CONFIG_ERROR_INVALID and a message of the
 * form "FILE: [group] key: reason". Afterwards the environment is applied
 * (REDIS_URL, HERALD_API_KEY, HERALD_JWT_SECRET) and *-file keys are read. */
gboolean herald_config_load (HeraldConfig *self, const char *path, GError **error);

/* Loads from a string (used by tests and fuzzing); @origin names it in errors. */
gboolean herald_config_load_data (HeraldConfig *self, const char *data, gsize length,
                                  const char *origin, GError **error);

/* Re-reads only the [limits] group of the file loaded before (SIGHUP). On
 * error nothing is changed. */
gboolean herald_config_reload_limits (HeraldConfig *self, GError **error);

/* Command-line overrides (applied after load). */
gboolean herald_config_set_listen_override (HeraldConfig *self, const char *const *addresses,
                                            GError **error);
gboolean herald_config_set_workers_override (HeraldConfig *self, int workers, GError **error);

/* Final checks that need the whole picture, called once after load and overrides:
 * with no token key configured and `anonymous` not set explicitly to true, a
 * non-loopback listen address is refused; TLS listeners need certificate and
 * key, readable; etc. Every problem is named, one per line. */
gboolean herald_config_validate (HeraldConfig *self, GError **error);

/* Warnings about a valid configuration (anonymous-only); once the daemon starts */
void herald_config_log_warnings (HeraldConfig *self);

/* --check-config: unknown groups and keys become errors on the next load */
void herald_config_set_strict (HeraldConfig *self, gboolean strict);

const char *herald_config_get_path (HeraldConfig *self); /* file loaded, or NULL */

/* [server] */
GPtrArray *herald_config_get_listen (HeraldConfig *self); /* of HeraldListenAddress*, never empty */
const char *herald_config_get_tls_certificate (HeraldConfig *self);
const char *herald_config_get_tls_key (HeraldConfig *self);
const char *const *herald_config_get_allowed_origins (HeraldConfig *self); /* NULL = unset */
gboolean herald_config_get_compression (HeraldConfig *self);
gboolean herald_config_get_io_uring (HeraldConfig *self);
/* [server] metrics and admin-page; unset: on when listening on loopback only */
gboolean herald_config_get_metrics (HeraldConfig *self);
gboolean herald_config_get_admin_page (HeraldConfig *self);
guint herald_config_get_workers (HeraldConfig *self); /* resolved: 0 → number of cores */
guint herald_config_get_drain_seconds (HeraldConfig *self);

/* [limits]: atomic getters, setters validate range and notify the property */
guint herald_config_get_max_connections (HeraldConfig *self);
guint herald_config_get_max_message_size (HeraldConfig *self);
guint herald_config_get_heartbeat_interval (HeraldConfig *self);
guint herald_config_get_connection_timeout (HeraldConfig *self);
guint herald_config_get_send_queue_max_bytes (HeraldConfig *self);
guint herald_config_get_max_connections_per_ip (HeraldConfig *self);
guint herald_config_get_messages_per_second (HeraldConfig *self);
/* 0 = no limit */
guint herald_config_get_max_subscriptions_per_connection (HeraldConfig *self);
/* Seconds a client has to send a complete HTTP request (TLS handshake included). */
guint herald_config_get_handshake_timeout (HeraldConfig *self);
gboolean herald_config_set_max_connections (HeraldConfig *self, guint value, GError **error);
gboolean herald_config_set_max_message_size (HeraldConfig *self, guint value, GError **error);
gboolean herald_config_set_heartbeat_interval (HeraldConfig *self, guint value, GError **error);
gboolean herald_config_set_connection_timeout (HeraldConfig *self, guint value, GError **error);
gboolean herald_config_set_send_queue_max_bytes (HeraldConfig *self, guint value, GError **error);

/* [auth] */
GBytes *herald_config_get_jwt_secret (HeraldConfig *self); /* from key, file or env; NULL if none */
const char *herald_config_get_jwt_public_key_file (HeraldConfig *self);
HeraldJwtAlg herald_config_get_jwt_algorithm (HeraldConfig *self);
guint herald_config_get_leeway (HeraldConfig *self);
const char *herald_config_get_jwt_issuer (HeraldConfig *self);   /* NULL = not checked */
const char *herald_config_get_jwt_audience (HeraldConfig *self); /* NULL = not checked */
/* herald-config-jwks.c: [auth] jwks-url (NULL = none), jwks-refresh (seconds) */
const char *herald_config_get_jwks_url (HeraldConfig *self);
guint herald_config_get_jwks_refresh (HeraldConfig *self);
gboolean herald_config_get_jwt_algorithm_set (HeraldConfig *self);
gboolean herald_config_has_token_key (HeraldConfig *self);
gboolean herald_config_get_anonymous (HeraldConfig *self); /* effective value */
const char *const *herald_config_get_anonymous_channels (HeraldConfig *self);
/* Effective value: without the key, and anonymous-only on loopback (no token
 * key, `anonymous` not written), HERALD_DEMO_CHANNELS after validation. */
const char *const *herald_config_get_anonymous_publish (HeraldConfig *self);
#define HERALD_DEMO_CHANNELS "demo/*" /* the demo page's channels */

/* [api] */
const char *herald_config_get_api_key (HeraldConfig *self); /* NULL = HTTP API disabled */

/* [history] */
guint herald_config_get_history_size (HeraldConfig *self);
guint herald_config_get_history_ttl (HeraldConfig *self);

/* [namespace.NAME]: never NULL: the channel's namespace or the default one
 * ([namespace.default] over [history]). Any thread; the pointer stays valid
 * after a reload (old sets live as long as @config), but new subscriptions
 * should look it up again to see reloaded values. */
const HeraldNamespace *herald_config_namespace_for (HeraldConfig *config, const char *channel);
/* The default namespace first, then the configured ones by name (transfer
 * container; the pointers live as long as @config). */
GPtrArray *herald_config_list_namespaces (HeraldConfig *config);

/* [redis] */
const char *herald_config_get_redis_url (HeraldConfig *self); /* NULL = in-process engine */

typedef enum
{
  HERALD_REDIS_MODE_NONE,      /* in-process engine */
  HERALD_REDIS_MODE_URL,       /* one Redis */
  HERALD_REDIS_MODE_SHARDS,    /* several independent Redis servers */
  HERALD_REDIS_MODE_SENTINELS, /* a master found through Redis Sentinel */
  HERALD_REDIS_MODE_CLUSTER,   /* Redis Cluster */
} HeraldRedisMode;

HeraldRedisMode herald_config_get_redis_mode (HeraldConfig *self);
const char *const *herald_config_get_redis_servers (HeraldConfig *self);
const char *herald_config_get_redis_sentinel_master (HeraldConfig *self);
const char *herald_config_get_redis_password (HeraldConfig *self); /* NULL = none */

/* [proxy]: the backend's hooks (docs/integration.md) */
typedef enum
{
  HERALD_HOOK_CONNECT,
  HERALD_HOOK_REFRESH,
  HERALD_HOOK_SUBSCRIBE,
  HERALD_HOOK_PUBLISH,
  HERALD_HOOK_RPC,
  HERALD_N_HOOKS
} HeraldHook;

/* "connect", "refresh", "subscribe", "publish", "rpc" */
const char *herald_hook_name (HeraldHook hook);
const char *herald_config_get_proxy_url (HeraldConfig *self, HeraldHook hook); /* NULL = unset */
guint herald_config_get_proxy_timeout_ms (HeraldConfig *self);
/* Request header names forwarded to the connect hook, never NULL */
const char *const *herald_config_get_proxy_forward_headers (HeraldConfig *self);
guint herald_config_get_proxy_max_in_flight (HeraldConfig *self); /* per worker */

G_END_DECLS
