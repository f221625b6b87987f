/* herald-config.c: Herald's configuration (GKeyFile, environment, command line).
 *
 * Everything but the runtime limits is parsed into a Settings struct that is
 * swapped in only when the whole file is valid, so a failed load leaves the
 * object as it was. The limits live in a plain guint array accessed with
 * g_atomic_int_get/set: worker threads read them on every sweep, while only
 * the main thread (load, SIGHUP, D-Bus) writes them.
 *
 * Ranges (also in docs/configuration.md):
 *   [server] workers                0 – 256 (0 = one per core)
 *   [server] drain-seconds          0 – 600 s
 *   [limits] max-connections        1 – 1000000
 *   [limits] max-message-size       128 – 16777216 bytes
 *   [limits] heartbeat-interval     1 – 3600 s
 *   [limits] connection-timeout     2 – 86400 s
 *   [limits] send-queue-max-bytes   4096 – 1073741824 bytes
 *   [limits] max-connections-per-ip 0 – 1000000 (0 = off)
 *   [limits] messages-per-second    0 – 1000000 (0 = off)
 *   [limits] max-subscriptions-per-connection 0 – 1000000 (128; 0 = off)
 *   [limits] handshake-timeout      1 – 3600 s
 *   [auth] leeway                   0 – 3600 s
 *   [history] size                  0 – 100000 messages per channel
 *   [history] ttl                   0 – 31536000 s
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "herald-config.h"
#include "herald-config-private.h"
#include "herald-config-internal.h"

#include <gio/gio.h>
#include <glib/gi18n.h>
#include <string.h>

/* The quark's name as written: clang-format would space out its dashes. */
/* clang-format off */
/* clang-format on */

/* ------------------------------------------------------------------------ */
/* Key tables                                                                */

typedef enum
{
  LIMIT_MAX_CONNECTIONS,
  LIMIT_MAX_MESSAGE_SIZE,
  LIMIT_HEARTBEAT_INTERVAL,
  LIMIT_CONNECTION_TIMEOUT,
  LIMIT_SEND_QUEUE_MAX_BYTES,
  LIMIT_MAX_CONNECTIONS_PER_IP,
  LIMIT_MESSAGES_PER_SECOND,
  LIMIT_HANDSHAKE_TIMEOUT,
  LIMIT_MAX_SUBSCRIPTIONS_PER_CONNECTION,
  N_LIMITS
} Limit;

enum
{
  PROP_0,
  PROP_MAX_CONNECTIONS,
  PROP_MAX_MESSAGE_SIZE,
  PROP_HEARTBEAT_INTERVAL,
  PROP_CONNECTION_TIMEOUT,
  PROP_SEND_QUEUE_MAX_BYTES,
  N_PROPS
};

static GParamSpec *props[N_PROPS];

typedef struct
{
  const char *key; /* also the property name */
  guint min;
  guint max;
  guint def;
  const char *blurb;
  int prop; /* 0 when not a property */
} LimitSpec;

static const LimitSpec limit_specs[N_LIMITS] = {
  [LIMIT_MAX_CONNECTIONS] = { "max-connections", 1, 1000000, 10000,
                              "Maximum number of client connections", PROP_MAX_CONNECTIONS },
  [LIMIT_MAX_MESSAGE_SIZE] = { "max-message-size", 128, 16777216, 65536,
                               "Largest accepted message in bytes", PROP_MAX_MESSAGE_SIZE },
  [LIMIT_HEARTBEAT_INTERVAL]
  = { "heartbeat-interval", 1, 3600, 30, "Seconds between server pings", PROP_HEARTBEAT_INTERVAL },
  [LIMIT_CONNECTION_TIMEOUT]
  = { "connection-timeout", 2, 86400, 300, "Seconds of client silence before closing",
      PROP_CONNECTION_TIMEOUT },
  [LIMIT_SEND_QUEUE_MAX_BYTES]
  = { "send-queue-max-bytes", 4096, 1073741824, 1048576,
      "Bytes queued for a client before it is dropped", PROP_SEND_QUEUE_MAX_BYTES },
  [LIMIT_MAX_CONNECTIONS_PER_IP] = { "max-connections-per-ip", 0, 1000000, 0, NULL, 0 },
  [LIMIT_MESSAGES_PER_SECOND] = { "messages-per-second", 0, 1000000, 0, NULL, 0 },
  [LIMIT_HANDSHAKE_TIMEOUT] = { "handshake-timeout", 1, 3600, 10, NULL, 0 },
  [LIMIT_MAX_SUBSCRIPTIONS_PER_CONNECTION]
  = { "max-subscriptions-per-connection", 0, 1000000, 128, NULL, 0 },
};

static const char *const server_keys[]
    = { "listen",  "tls-certificate", "tls-key",       "allowed-origins", "compression", "workers",
        "metrics", "admin-page",      "drain-seconds", "io-uring",        NULL };
static const char *const limits_keys[] = { "max-connections",
                                           "max-message-size",
                                           "heartbeat-interval",
                                           "connection-timeout",
                                           "send-queue-max-bytes",
                                           "max-connections-per-ip",
                                           "messages-per-second",
                                           "handshake-timeout",
                                           "max-subscriptions-per-connection",
                                           NULL };
static const char *const auth_keys[] = { "jwt-secret",
                                         "jwt-secret-file",
                                         "jwt-public-key-file",
                                         "jwt-algorithm",
                                         "leeway",
                                         "anonymous",
                                         "anonymous-channels",
                                         "anonymous-publish",
                                         "issuer",
                                         "audience",
                                         "jwks-url",
                                         "jwks-refresh",
                                         NULL };
static const char *const api_keys[] = { "key", "key-file", NULL };
static const char *const history_keys[] = { "size", "ttl", NULL };
static const char *const redis_keys[]
    = { "url", "shards", "sentinels", "sentinel-master", "cluster", "password", NULL };
static const char *const proxy_keys[]
    = { "connect-url", "refresh-url",     "subscribe-url", "publish-url", "rpc-url",
        "timeout",     "forward-headers", "max-in-flight", NULL };

static const struct
{
  const char *group;
  const char *const *keys;
} known_groups[] = {
  { "server", server_keys }, { "limits", limits_keys },   { "auth", auth_keys },
  { "api", api_keys },       { "history", history_keys }, { "redis", redis_keys },
  { "proxy", proxy_keys },
};
/* ------------------------------------------------------------------------ */
/* The object                                                                */

typedef HeraldConfigSettings Settings;
typedef HeraldConfigProblems Problems;
typedef HeraldConfigParser Parser;

struct _HeraldConfig
{
  GObject parent_instance;

  Settings *settings;
  guint limits[N_LIMITS]; /* atomic */

  char *path;        /* file loaded, or NULL */
  char *reload_path; /* file SIGHUP re-reads: explicit or default path, or NULL */

  HeraldNamespaceSet *namespaces; /* atomic pointer; replaced on load and SIGHUP */
  GPtrArray *retired_namespaces;  /* sets replaced so far: readers may still hold them */

  gboolean strict;            /* unknown groups and keys are errors (--check-config) */
  GPtrArray *listen_override; /* NULL = none */
  int workers_override;       /* -1 = none */
};

G_DEFINE_FINAL_TYPE (HeraldConfig, herald_config, G_TYPE_OBJECT)

static void
settings_free (Settings *settings)
{
  if (settings == NULL)
    return;
  g_clear_pointer (&settings->listen, g_ptr_array_unref);
  g_free (settings->tls_certificate);
  g_free (settings->tls_key);
  g_free (settings->tls_certificate_where);
  g_free (settings->tls_key_where);
  g_strfreev (settings->allowed_origins);
  g_clear_pointer (&settings->jwt_secret, g_bytes_unref);
  g_free (settings->jwt_public_key_file);
  g_free (settings->jwt_issuer);
  g_free (settings->jwt_audience);
  g_free (settings->jwks_url);
  g_free (settings->jwt_secret_file);
  g_free (settings->api_key_file);
  g_strfreev (settings->anonymous_channels);
  g_strfreev (settings->anonymous_publish);
  /* The API key is a credential: don't leave it lying around in freed memory */
  if (settings->api_key != NULL)
    memset (settings->api_key, 0, strlen (settings->api_key));
  g_free (settings->api_key);
  g_free (settings->redis_url);
  g_strfreev (settings->redis_shards);
  g_strfreev (settings->redis_sentinels);
  g_free (settings->redis_sentinel_master);
  g_strfreev (settings->redis_cluster);
  g_free (settings->redis_password);
  for (guint i = 0; i < HERALD_N_HOOKS; i++)
    g_free (settings->proxy_urls[i]);
  g_strfreev (settings->proxy_forward_headers);
  g_free (settings);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Settings, settings_free)

static Settings *
settings_new_default (void)
{
  Settings *settings = g_new0 (Settings, 1);
  const char *const anonymous_channels[] = { "*", NULL };

  settings->listen = g_ptr_array_new_with_free_func ((GDestroyNotify)herald_listen_address_free);
  g_ptr_array_add (settings->listen, herald_listen_address_parse (DEFAULT_LISTEN, NULL, NULL));
  settings->compression = TRUE;
  settings->io_uring = TRUE;
  settings->workers = 0;
  settings->drain_seconds = 10;
  settings->jwt_algorithm = HERALD_JWT_ALG_HS256;
  settings->leeway = 30;
  settings->jwks_refresh = 300;
  settings->anonymous_channels = g_strdupv ((char **)anonymous_channels);
  settings->anonymous_publish = g_new0 (char *, 1);
  settings->history_size = 100;
  settings->history_ttl = 300;
  settings->proxy_timeout_ms = 1000;
  settings->proxy_forward_headers
      = g_strsplit ("Cookie;Origin;User-Agent;X-Forwarded-For", ";", -1);
  settings->proxy_max_in_flight = 256;
  return settings;
}

static guint
get_limit (HeraldConfig *self, Limit limit)
{
  return (guint)g_atomic_int_get (&self->limits[limit]);
}

/* Main thread only (load, SIGHUP, D-Bus): readers are lock-free, writers
 * are serialised by the main loop, so get-then-set is race-free. */
static gboolean
set_limit (HeraldConfig *self, Limit limit, guint value, GError **error)
{
  const LimitSpec *spec = &limit_specs[limit];

  if (value < spec->min || value > spec->max)
    {
      g_set_error (error, HERALD_CONFIG_ERROR, HERALD_CONFIG_ERROR_INVALID,
                   _ ("%s must be between %u and %u"), spec->key, spec->min, spec->max);
      return FALSE;
    }
  if (get_limit (self, limit) == value)
    return TRUE;
  g_atomic_int_set (&self->limits[limit], value);
  if (spec->prop != 0)
    g_object_notify_by_pspec (G_OBJECT (self), props[spec->prop]);
  return TRUE;
}

static Limit
limit_for_prop (guint prop_id)
{
  for (Limit i = 0; i < N_LIMITS; i++)
    if (limit_specs[i].prop == (int)prop_id)
      return i;
  g_assert_not_reached ();
}

static void
herald_config_get_property (GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
  HeraldConfig *self = HERALD_CONFIG (object);

  switch (prop_id)
    {
    case PROP_MAX_CONNECTIONS:
    case PROP_MAX_MESSAGE_SIZE:
    case PROP_HEARTBEAT_INTERVAL:
    case PROP_CONNECTION_TIMEOUT:
    case PROP_SEND_QUEUE_MAX_BYTES:
      g_value_set_uint (value, get_limit (self, limit_for_prop (prop_id)));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
herald_config_set_property (GObject *object, guint prop_id, const GValue *value, GParamSpec *pspec)
{
  HeraldConfig *self = HERALD_CONFIG (object);

  switch (prop_id)
    {
    case PROP_MAX_CONNECTIONS:
    case PROP_MAX_MESSAGE_SIZE:
    case PROP_HEARTBEAT_INTERVAL:
    case PROP_CONNECTION_TIMEOUT:
    case PROP_SEND_QUEUE_MAX_BYTES:
      /* The pspec's range already validated the value */
      set_limit (self, limit_for_prop (prop_id), g_value_get_uint (value), NULL);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
herald_config_finalize (GObject *object)
{
  HeraldConfig *self = HERALD_CONFIG (object);

  g_clear_pointer (&self->settings, settings_free);
  herald_namespace_set_free (g_atomic_pointer_get (&self->namespaces));
  g_clear_pointer (&self->retired_namespaces, g_ptr_array_unref);
  g_clear_pointer (&self->listen_override, g_ptr_array_unref);
  g_free (self->path);
  g_free (self->reload_path);

  G_OBJECT_CLASS (herald_config_parent_class)->finalize (object);
}

static void
herald_config_class_init (HeraldConfigClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->get_property = herald_config_get_property;
  object_class->set_property = herald_config_set_property;
  object_class->finalize = herald_config_finalize;

  for (Limit i = 0; i < N_LIMITS; i++)
    {
      const LimitSpec *spec = &limit_specs[i];

      if (spec->prop == 0)
        continue;
      props[spec->prop] = g_param_spec_uint (
          spec->key, NULL, spec->blurb, spec->min, spec->max, spec->def,
          G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
    }
  g_object_class_install_properties (object_class, N_PROPS, props);
}

static void
herald_config_init (HeraldConfig *self)
{
  self->settings = settings_new_default ();
  self->namespaces = herald_namespace_set_new ();
  for (Limit i = 0; i < N_LIMITS; i++)
    self->limits[i] = limit_specs[i].def;
  self->workers_override = -1;
}

/**
 * herald_config_new:
 *
 * Creates a configuration holding the defaults only.
 *
 * Returns: (transfer full): a new #HeraldConfig
 */
HeraldConfig *
herald_config_new (void)
{
  return g_object_new (HERALD_TYPE_CONFIG, NULL);
}
/* ------------------------------------------------------------------------ */
/* Loading                                                                   */

/**
 * herald_config_known_keys:
 * @group: a group name
 *
 * Returns: (nullable) (transfer none): the keys of @group, or %NULL for an
 *   unknown group
 */
const char *const *
herald_config_known_keys (const char *group)
{
  const char *ns = herald_namespace_group_name (group);

  if (ns != NULL)
    return herald_namespace_keys (); /* an invalid NAME is a parse error */
  for (gsize i = 0; i < G_N_ELEMENTS (known_groups); i++)
    if (strcmp (group, known_groups[i].group) == 0)
      return known_groups[i].keys;
  return NULL;
}

/**
 * herald_config_known_group:
 * @i: an index from 0
 *
 * Returns: (nullable): the name of the @i-th known group, %NULL past the last
 */
const char *
herald_config_known_group (guint i)
{
  return i < G_N_ELEMENTS (known_groups) ? known_groups[i].group : NULL;
}
static void
parse_limits (const Parser *parser, guint limits[N_LIMITS])
{
  for (Limit i = 0; i < N_LIMITS; i++)
    {
      const LimitSpec *spec = &limit_specs[i];

      limits[i] = spec->def;
      herald_config_parse_uint (parser, "limits", spec->key, spec->min, spec->max, &limits[i],
                                herald_config_problems_slot (parser->problems));
    }
}

/* Main thread only. Readers on other threads may still hold the old set:
 * it is kept until the configuration goes away (reloads are rare). */
static void
replace_namespaces (HeraldConfig *self, HeraldNamespaceSet *namespaces)
{
  HeraldNamespaceSet *old = g_atomic_pointer_exchange (&self->namespaces, namespaces);

  if (old == NULL)
    return;
  if (self->retired_namespaces == NULL)
    self->retired_namespaces
        = g_ptr_array_new_with_free_func ((GDestroyNotify)herald_namespace_set_free);
  g_ptr_array_add (self->retired_namespaces, old);
}

static gboolean
load_internal (HeraldConfig *self, const char *data, gsize length, const char *origin,
               const char *basedir, GError **error)
{
  g_autoptr (GKeyFile) key_file = g_key_file_new ();
  g_autoptr (Settings) settings = settings_new_default ();
  Problems problems;
  Parser parser = { key_file, origin, basedir, &problems, data, length, self->strict };
  guint limits[N_LIMITS];
  g_autoptr (HeraldNamespaceSet) namespaces = NULL;
  gboolean ok;

  if (data != NULL && !herald_config_load_key_file (key_file, data, length, origin, error))
    return FALSE;

  herald_config_problems_init (&problems);
  if (data != NULL)
    herald_config_warn_unknown (&parser, NULL);

  /* Parse everything before changing anything: a failed load changes
   * nothing. Every key is checked, so the error names every problem. */
  herald_config_parse_sections (&parser, settings);
  parse_limits (&parser, limits);
  namespaces
      = herald_config_parse_namespaces (&parser, settings->history_size, settings->history_ttl);
  ok = herald_config_problems_take (&problems, error);
  herald_config_problems_clear (&problems);
  /* For --check-config (strict) what was valid is taken all the same, so
   * the checks of the whole configuration can report their problems too;
   * nothing runs with it. */
  if (!ok && !self->strict)
    return FALSE;

  settings_free (self->settings);
  self->settings = g_steal_pointer (&settings);
  replace_namespaces (self, g_steal_pointer (&namespaces));

  g_object_freeze_notify (G_OBJECT (self));
  for (Limit i = 0; i < N_LIMITS; i++)
    set_limit (self, i, limits[i], NULL);
  g_object_thaw_notify (G_OBJECT (self));
  return ok;
}

/**
 * herald_config_load:
 * @self: a #HeraldConfig
 * @path: (nullable): the configuration file, or %NULL for the default path
 * @error: return location for a #GError
 *
 * Loads @path. When @path is %NULL, %HERALD_DEFAULT_CONFIG is tried and a
 * missing default file is not an error. Relative file names in the file
 * (tls-certificate, *-file keys) are taken relative to the file's directory.
 * The environment (REDIS_URL, HERALD_API_KEY, HERALD_JWT_SECRET; empty counts
 * as unset) is applied afterwards. On error nothing is changed.
 *
 * Returns: %TRUE on success
 */
gboolean
herald_config_load (HeraldConfig *self, const char *path, GError **error)
{
  g_autoptr (GError) local = NULL;
  g_autofree char *contents = NULL;
  g_autofree char *basedir = NULL;
  const char *file = path != NULL ? path : HERALD_DEFAULT_CONFIG;
  gsize length = 0;
  gboolean ok;

  g_return_val_if_fail (HERALD_IS_CONFIG (self), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (!g_file_get_contents (file, &contents, &length, &local))
    {
      if (path == NULL && g_error_matches (local, G_FILE_ERROR, G_FILE_ERROR_NOENT))
        {
          g_debug ("No configuration file at %s, using defaults", file);
          if (!load_internal (self, NULL, 0, file, NULL, error))
            return FALSE;
          g_clear_pointer (&self->path, g_free);
          g_free (self->reload_path);
          self->reload_path = g_strdup (file);
          return TRUE;
        }
      g_set_error (error, HERALD_CONFIG_ERROR, HERALD_CONFIG_ERROR_IO, "%s", local->message);
      return FALSE;
    }

  basedir = g_path_get_dirname (file);
  ok = load_internal (self, contents, length, file, basedir, error);
  if (!ok && !self->strict)
    return FALSE;
  g_free (self->path);
  self->path = g_strdup (file);
  g_free (self->reload_path);
  self->reload_path = g_strdup (file);
  return ok;
}

/**
 * herald_config_load_data:
 * @self: a #HeraldConfig
 * @data: key file contents
 * @length: length of @data, or -1 if NUL-terminated
 * @origin: (nullable): names the data in messages
 * @error: return location for a #GError
 *
 * Like herald_config_load() but from memory (tests, fuzzing). Relative file
 * names are taken as given. herald_config_reload_limits() has nothing to
 * re-read afterwards.
 *
 * Returns: %TRUE on success
 */
gboolean
herald_config_load_data (HeraldConfig *self, const char *data, gsize length, const char *origin,
                         GError **error)
{
  g_return_val_if_fail (HERALD_IS_CONFIG (self), FALSE);
  g_return_val_if_fail (data != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (length == (gsize)-1)
    length = strlen (data);
  if (!load_internal (self, data, length, origin != NULL ? origin : "(data)", NULL, error))
    return FALSE;
  g_clear_pointer (&self->path, g_free);
  g_clear_pointer (&self->reload_path, g_free);
  return TRUE;
}

/**
 * herald_config_reload_limits:
 * @self: a #HeraldConfig
 * @error: return location for a #GError
 *
 * Re-reads the [limits] and [namespace.NAME] groups of the configuration
 * file (on SIGHUP; [history] only as the default namespace's base). Keys
 * missing from the file go back to their defaults. All values are checked
 * before any is applied, so on error nothing changes. Properties are notified
 * for the values that changed. When no file was loaded (or the default file
 * still doesn't exist) this does nothing.
 *
 * Returns: %TRUE on success
 */
gboolean
herald_config_reload_limits (HeraldConfig *self, GError **error)
{
  g_autoptr (GError) local = NULL;
  g_autoptr (GKeyFile) key_file = NULL;
  g_autofree char *contents = NULL;
  gsize length = 0;
  guint limits[N_LIMITS];
  g_autoptr (HeraldNamespaceSet) namespaces = NULL;
  guint history_size = 100, history_ttl = 300;
  Problems problems;
  Parser parser;
  gboolean ok;

  g_return_val_if_fail (HERALD_IS_CONFIG (self), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (self->reload_path == NULL)
    {
      g_debug ("No configuration file to reload");
      return TRUE;
    }
  if (!g_file_get_contents (self->reload_path, &contents, &length, &local))
    {
      if (self->path == NULL && g_error_matches (local, G_FILE_ERROR, G_FILE_ERROR_NOENT))
        return TRUE;
      g_set_error (error, HERALD_CONFIG_ERROR, HERALD_CONFIG_ERROR_IO, "%s", local->message);
      return FALSE;
    }

  key_file = g_key_file_new ();
  if (!herald_config_load_key_file (key_file, contents, length, self->reload_path, error))
    return FALSE;
  herald_config_problems_init (&problems);
  parser = (Parser){ key_file, self->reload_path, NULL, &problems, contents, length, FALSE };
  herald_config_warn_unknown (&parser, "limits");
  herald_config_warn_unknown (&parser, HERALD_NAMESPACE_GROUP_PREFIX);
  parse_limits (&parser, limits);
  /* The default namespace builds on [history] as the file now has it */
  herald_config_parse_uint (&parser, "history", "size", 0, HISTORY_SIZE_MAX, &history_size,
                            herald_config_problems_slot (&problems));
  herald_config_parse_uint (&parser, "history", "ttl", 0, HISTORY_TTL_MAX, &history_ttl,
                            herald_config_problems_slot (&problems));
  namespaces = herald_config_parse_namespaces (&parser, history_size, history_ttl);
  ok = herald_config_problems_take (&problems, error);
  herald_config_problems_clear (&problems);
  if (!ok)
    return FALSE;

  replace_namespaces (self, g_steal_pointer (&namespaces));

  g_object_freeze_notify (G_OBJECT (self));
  for (Limit i = 0; i < N_LIMITS; i++)
    set_limit (self, i, limits[i], NULL);
  g_object_thaw_notify (G_OBJECT (self));
  return TRUE;
}

/**
 * herald_config_set_listen_override:
 * @self: a #HeraldConfig
 * @addresses: (nullable) (array zero-terminated=1): addresses from --listen
 * @error: return location for a #GError
 *
 * Replaces the configured listen addresses with @addresses. A %NULL or empty
 * array changes nothing. If any address is invalid nothing changes and the
 * error names "--listen".
 *
 * Returns: %TRUE on success
 */
gboolean
herald_config_set_listen_override (HeraldConfig *self, const char *const *addresses, GError **error)
{
  g_autoptr (GPtrArray) parsed = NULL;

  g_return_val_if_fail (HERALD_IS_CONFIG (self), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (addresses == NULL || addresses[0] == NULL)
    return TRUE;
  parsed = g_ptr_array_new_with_free_func ((GDestroyNotify)herald_listen_address_free);
  for (gsize i = 0; addresses[i] != NULL; i++)
    {
      HeraldListenAddress *address = herald_listen_address_parse (addresses[i], "--listen", error);

      if (address == NULL)
        return FALSE;
      g_ptr_array_add (parsed, address);
    }
  g_clear_pointer (&self->listen_override, g_ptr_array_unref);
  self->listen_override = g_steal_pointer (&parsed);
  return TRUE;
}

/**
 * herald_config_set_workers_override:
 * @self: a #HeraldConfig
 * @workers: value of --workers, 0 – 256 (0 = one per core)
 * @error: return location for a #GError
 *
 * Returns: %TRUE on success, %FALSE with @error naming "--workers" when out of range
 */
gboolean
herald_config_set_workers_override (HeraldConfig *self, int workers, GError **error)
{
  g_return_val_if_fail (HERALD_IS_CONFIG (self), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (workers < 0 || workers > WORKERS_MAX)
    {
      g_set_error (error, HERALD_CONFIG_ERROR, HERALD_CONFIG_ERROR_INVALID,
                   _ ("--workers: expected an integer between 0 and %d, got %d"), WORKERS_MAX,
                   workers);
      return FALSE;
    }
  self->workers_override = workers;
  return TRUE;
}
/**
 * herald_config_set_strict:
 * @self: a #HeraldConfig
 * @strict: whether unknown groups and keys are errors
 *
 * For --check-config: the next load reports unknown groups and keys as
 * problems instead of logging warnings, and a load that fails on invalid
 * values still takes the valid ones (and the file name), so that
 * herald_config_validate() can report the problems of the whole
 * configuration as well. Such a configuration is only for checking.
 */
void
herald_config_set_strict (HeraldConfig *self, gboolean strict)
{
  g_return_if_fail (HERALD_IS_CONFIG (self));
  self->strict = strict;
}

/* ---- for the configuration printer (herald-config-private.h) ---- */

/* For herald-config-check.c */
HeraldConfigSettings *
herald_config_get_settings (HeraldConfig *self)
{
  return self->settings;
}

HeraldConfigSource
herald_config_get_jwt_secret_source (HeraldConfig *self, const char **file)
{
  *file = self->settings->jwt_secret_file;
  return self->settings->jwt_secret != NULL ? self->settings->jwt_secret_source
                                            : HERALD_CONFIG_SOURCE_NONE;
}

HeraldConfigSource
herald_config_get_api_key_source (HeraldConfig *self, const char **file)
{
  *file = self->settings->api_key_file;
  return self->settings->api_key != NULL ? self->settings->api_key_source
                                         : HERALD_CONFIG_SOURCE_NONE;
}

gboolean
herald_config_get_redis_url_from_env (HeraldConfig *self)
{
  return self->settings->redis_url_from_env;
}

guint
herald_config_get_workers_setting (HeraldConfig *self)
{
  return self->workers_override >= 0 ? (guint)self->workers_override : self->settings->workers;
}

gboolean
herald_config_get_anonymous_setting (HeraldConfig *self, gboolean *value)
{
  *value = self->settings->anonymous;
  return self->settings->anonymous_set;
}

gboolean
herald_config_get_limit_by_key (HeraldConfig *self, const char *key, guint *value,
                                const char **blurb)
{
  for (Limit i = 0; i < N_LIMITS; i++)
    if (strcmp (limit_specs[i].key, key) == 0)
      {
        *value = get_limit (self, i);
        *blurb = limit_specs[i].blurb;
        return TRUE;
      }
  return FALSE;
}

/* ------------------------------------------------------------------------ */
/* Getters                                                                   */

/**
 * herald_config_get_path:
 * @self: a #HeraldConfig
 *
 * Returns: (nullable): the file loaded, or %NULL
 */
const char *
herald_config_get_path (HeraldConfig *self)
{
  g_return_val_if_fail (HERALD_IS_CONFIG (self), NULL);
  return self->path;
}

/**
 * herald_config_get_listen:
 * @self: a #HeraldConfig
 *
 * Returns: (transfer none) (element-type HeraldListenAddress): the listen
 *   addresses (--listen if given, else [server] listen); never empty
 */
GPtrArray *
herald_config_get_listen (HeraldConfig *self)
{
  g_return_val_if_fail (HERALD_IS_CONFIG (self), NULL);
  return self->listen_override != NULL ? self->listen_override : self->settings->listen;
}

/**
 * herald_config_get_tls_certificate:
 * @self: a #HeraldConfig
 *
 * Returns: (nullable): path of the PEM certificate (chain)
 */
const char *
herald_config_get_tls_certificate (HeraldConfig *self)
{
  g_return_val_if_fail (HERALD_IS_CONFIG (self), NULL);
  return self->settings->tls_certificate;
}

/**
 * herald_config_get_tls_key:
 * @self: a #HeraldConfig
 *
 * Returns: (nullable): path of the PEM private key
 */
const char *
herald_config_get_tls_key (HeraldConfig *self)
{
  g_return_val_if_fail (HERALD_IS_CONFIG (self), NULL);
  return self->settings->tls_key;
}

/**
 * herald_config_get_allowed_origins:
 * @self: a #HeraldConfig
 *
 * Returns: (nullable): allowed Origin values, %NULL when unset (any origin)
 */
const char *const *
herald_config_get_allowed_origins (HeraldConfig *self)
{
  g_return_val_if_fail (HERALD_IS_CONFIG (self), NULL);
  return (const char *const *)self->settings->allowed_origins;
}

/**
 * herald_config_get_io_uring:
 * @self: a #HeraldConfig
 *
 * Returns: whether workers may batch their socket writes with io_uring
 * (they still fall back to sendmsg when it is not built in or refused)
 */
gboolean
herald_config_get_io_uring (HeraldConfig *self)
{
  g_return_val_if_fail (HERALD_IS_CONFIG (self), TRUE);
  return self->settings->io_uring;
}

/**
 * herald_config_get_compression:
 * @self: a #HeraldConfig
 *
 * Returns: whether permessage-deflate is offered
 */
gboolean
herald_config_get_compression (HeraldConfig *self)
{
  g_return_val_if_fail (HERALD_IS_CONFIG (self), TRUE);
  return self->settings->compression;
}

/**
 * herald_config_get_workers:
 * @self: a #HeraldConfig
 *
 * Returns: the number of worker threads, with 0 resolved to the number of cores
 */
guint
herald_config_get_workers (HeraldConfig *self)
{
  guint workers;

  g_return_val_if_fail (HERALD_IS_CONFIG (self), 1);
  workers = self->workers_override >= 0 ? (guint)self->workers_override : self->settings->workers;
  return workers != 0 ? workers : g_get_num_processors ();
}

/**
 * herald_config_get_drain_seconds:
 * @self: a #HeraldConfig
 *
 * Returns: [server] drain-seconds: the window over which SIGTERM spreads the
 *   closes of the connections (0 = all at once)
 */
guint
herald_config_get_drain_seconds (HeraldConfig *self)
{
  g_return_val_if_fail (HERALD_IS_CONFIG (self), 10);
  return self->settings->drain_seconds;
}

#define DEFINE_LIMIT_GETTER(name, LIMIT)                                                           \
  guint herald_config_get_##name (HeraldConfig *self)                                              \
  {                                                                                                \
    g_return_val_if_fail (HERALD_IS_CONFIG (self), limit_specs[LIMIT].def);                        \
    return get_limit (self, LIMIT);                                                                \
  }

#define DEFINE_LIMIT_SETTER(name, LIMIT)                                                           \
  gboolean herald_config_set_##name (HeraldConfig *self, guint value, GError **error)              \
  {                                                                                                \
    g_return_val_if_fail (HERALD_IS_CONFIG (self), FALSE);                                         \
    g_return_val_if_fail (error == NULL || *error == NULL, FALSE);                                 \
    return set_limit (self, LIMIT, value, error);                                                  \
  }

/* TRUE when every listen address (--listen included) is a loopback one */
static gboolean
loopback_only (HeraldConfig *self)
{
  GPtrArray *listen = herald_config_get_listen (self);

  for (guint i = 0; i < listen->len; i++)
    if (!herald_listen_address_is_loopback (listen->pdata[i]))
      return FALSE;
  return TRUE;
}

/**
 * herald_config_get_metrics:
 * @self: a #HeraldConfig
 *
 * Returns: whether /metrics is served: [server] metrics when set, else
 *   %TRUE when every listen address is a loopback one and %FALSE otherwise
 */
gboolean
herald_config_get_metrics (HeraldConfig *self)
{
  g_return_val_if_fail (HERALD_IS_CONFIG (self), FALSE);
  if (self->settings->metrics_set)
    return self->settings->metrics;
  return loopback_only (self);
}

/**
 * herald_config_get_admin_page:
 * @self: a #HeraldConfig
 *
 * Returns: whether the admin page (/admin.html) is served: [server]
 *   admin-page when set, else the same default as herald_config_get_metrics()
 */
gboolean
herald_config_get_admin_page (HeraldConfig *self)
{
  g_return_val_if_fail (HERALD_IS_CONFIG (self), FALSE);
  if (self->settings->admin_page_set)
    return self->settings->admin_page;
  return loopback_only (self);
}

/* Limit getters are atomic and may be called from any thread. Setters
 * (main thread only) check the range, failing with HERALD_CONFIG_ERROR_INVALID
 * ("NAME must be between MIN and MAX"), and notify the property on change. */
DEFINE_LIMIT_GETTER (max_connections, LIMIT_MAX_CONNECTIONS)
DEFINE_LIMIT_GETTER (max_message_size, LIMIT_MAX_MESSAGE_SIZE)
DEFINE_LIMIT_GETTER (heartbeat_interval, LIMIT_HEARTBEAT_INTERVAL)
DEFINE_LIMIT_GETTER (connection_timeout, LIMIT_CONNECTION_TIMEOUT)
DEFINE_LIMIT_GETTER (send_queue_max_bytes, LIMIT_SEND_QUEUE_MAX_BYTES)
DEFINE_LIMIT_GETTER (max_connections_per_ip, LIMIT_MAX_CONNECTIONS_PER_IP)
DEFINE_LIMIT_GETTER (messages_per_second, LIMIT_MESSAGES_PER_SECOND)
DEFINE_LIMIT_GETTER (handshake_timeout, LIMIT_HANDSHAKE_TIMEOUT)
DEFINE_LIMIT_GETTER (max_subscriptions_per_connection, LIMIT_MAX_SUBSCRIPTIONS_PER_CONNECTION)
DEFINE_LIMIT_SETTER (max_connections, LIMIT_MAX_CONNECTIONS)
DEFINE_LIMIT_SETTER (max_message_size, LIMIT_MAX_MESSAGE_SIZE)
DEFINE_LIMIT_SETTER (heartbeat_interval, LIMIT_HEARTBEAT_INTERVAL)
DEFINE_LIMIT_SETTER (connection_timeout, LIMIT_CONNECTION_TIMEOUT)
DEFINE_LIMIT_SETTER (send_queue_max_bytes, LIMIT_SEND_QUEUE_MAX_BYTES)

/**
 * herald_config_get_jwt_secret:
 * @self: a #HeraldConfig
 *
 * Returns: (nullable) (transfer none): the HS256 secret from HERALD_JWT_SECRET,
 *   [auth] jwt-secret or jwt-secret-file, or %NULL
 */
GBytes *
herald_config_get_jwt_secret (HeraldConfig *self)
{
  g_return_val_if_fail (HERALD_IS_CONFIG (self), NULL);
  return self->settings->jwt_secret;
}

/**
 * herald_config_get_jwt_public_key_file:
 * @self: a #HeraldConfig
 *
 * Returns: (nullable): path of the PEM public key for RS256/ES256/EdDSA
 */
const char *
herald_config_get_jwt_public_key_file (HeraldConfig *self)
{
  g_return_val_if_fail (HERALD_IS_CONFIG (self), NULL);
  return self->settings->jwt_public_key_file;
}

/**
 * herald_config_get_jwt_algorithm:
 * @self: a #HeraldConfig
 *
 * Returns: the configured token algorithm (default HS256)
 */
HeraldJwtAlg
herald_config_get_jwt_algorithm (HeraldConfig *self)
{
  g_return_val_if_fail (HERALD_IS_CONFIG (self), HERALD_JWT_ALG_HS256);
  return self->settings->jwt_algorithm;
}

/**
 * herald_config_get_jwt_issuer:
 * @self: a #HeraldConfig
 *
 * Returns: (nullable): the "iss" every token must carry ([auth] issuer)
 */
const char *
herald_config_get_jwt_issuer (HeraldConfig *self)
{
  g_return_val_if_fail (HERALD_IS_CONFIG (self), NULL);
  return self->settings->jwt_issuer;
}

/**
 * herald_config_get_jwt_audience:
 * @self: a #HeraldConfig
 *
 * Returns: (nullable): the value every token's "aud" must contain ([auth] audience)
 */
const char *
herald_config_get_jwt_audience (HeraldConfig *self)
{
  g_return_val_if_fail (HERALD_IS_CONFIG (self), NULL);
  return self->settings->jwt_audience;
}

/**
 * herald_config_get_leeway:
 * @self: a #HeraldConfig
 *
 * Returns: seconds of clock skew tolerated on exp/nbf/iat
 */
guint
herald_config_get_leeway (HeraldConfig *self)
{
  g_return_val_if_fail (HERALD_IS_CONFIG (self), 30);
  return self->settings->leeway;
}

/**
 * herald_config_has_token_key:
 * @self: a #HeraldConfig
 *
 * Returns: %TRUE when a secret, a public key file or a JWKS URL is configured
 */
gboolean
herald_config_has_token_key (HeraldConfig *self)
{
  g_return_val_if_fail (HERALD_IS_CONFIG (self), FALSE);
  return self->settings->jwt_secret != NULL || self->settings->jwt_public_key_file != NULL
         || self->settings->jwks_url != NULL;
}

/**
 * herald_config_get_anonymous:
 * @self: a #HeraldConfig
 *
 * Returns: whether clients without a token are accepted: [auth] anonymous when
 *   set, otherwise %TRUE exactly when no token key is configured
 */
gboolean
herald_config_get_anonymous (HeraldConfig *self)
{
  g_return_val_if_fail (HERALD_IS_CONFIG (self), FALSE);
  if (self->settings->anonymous_set)
    return self->settings->anonymous;
  return !herald_config_has_token_key (self);
}

/**
 * herald_config_get_anonymous_channels:
 * @self: a #HeraldConfig
 *
 * Returns: (transfer none): channel names or prefixes ending in "*" that
 *   anonymous clients may subscribe to (default "*"); never %NULL
 */
const char *const *
herald_config_get_anonymous_channels (HeraldConfig *self)
{
  g_return_val_if_fail (HERALD_IS_CONFIG (self), NULL);
  return (const char *const *)self->settings->anonymous_channels;
}

/**
 * herald_config_get_anonymous_publish:
 * @self: a #HeraldConfig
 *
 * Returns: (transfer none): channels anonymous clients may publish to
 *   (default empty); never %NULL
 */
const char *const *
herald_config_get_anonymous_publish (HeraldConfig *self)
{
  g_return_val_if_fail (HERALD_IS_CONFIG (self), NULL);
  return (const char *const *)self->settings->anonymous_publish;
}

/**
 * herald_config_get_api_key:
 * @self: a #HeraldConfig
 *
 * Returns: (nullable): the HTTP API key from HERALD_API_KEY, [api] key or
 *   key-file; %NULL disables the HTTP API
 */
const char *
herald_config_get_api_key (HeraldConfig *self)
{
  g_return_val_if_fail (HERALD_IS_CONFIG (self), NULL);
  return self->settings->api_key;
}

/**
 * herald_config_get_history_size:
 * @self: a #HeraldConfig
 *
 * Returns: messages kept per channel for recovery (0 = no history)
 */
guint
herald_config_get_history_size (HeraldConfig *self)
{
  g_return_val_if_fail (HERALD_IS_CONFIG (self), 100);
  return self->settings->history_size;
}

/**
 * herald_config_get_history_ttl:
 * @self: a #HeraldConfig
 *
 * Returns: seconds a message stays in history (0 = until evicted by size)
 */
guint
herald_config_get_history_ttl (HeraldConfig *self)
{
  g_return_val_if_fail (HERALD_IS_CONFIG (self), 300);
  return self->settings->history_ttl;
}

/**
 * herald_config_get_redis_url:
 * @self: a #HeraldConfig
 *
 * Returns: (nullable): REDIS_URL or [redis] url; %NULL = in-process engine
 */
const char *
herald_config_get_redis_url (HeraldConfig *self)
{
  g_return_val_if_fail (HERALD_IS_CONFIG (self), NULL);
  return self->settings->redis_url;
}

/**
 * herald_config_namespace_for:
 * @config: a #HeraldConfig
 * @channel: (nullable): a channel name
 *
 * Any thread, lock-free.
 *
 * Returns: (transfer none): the namespace of @channel ("NAME:…"), or the
 *   default one when @channel has no ':' or its namespace is not configured
 */
const HeraldNamespace *
herald_config_namespace_for (HeraldConfig *config, const char *channel)
{
  g_return_val_if_fail (HERALD_IS_CONFIG (config), NULL);

  return herald_namespace_set_lookup (g_atomic_pointer_get (&config->namespaces), channel);
}

/**
 * herald_config_list_namespaces:
 *
 * Returns: (transfer container): the namespaces in force, the default one
 * first, then the configured ones by name (const HeraldNamespace*, valid as
 * long as @config).
 */
GPtrArray *
herald_config_list_namespaces (HeraldConfig *config)
{
  HeraldNamespaceSet *set;
  GPtrArray *list;

  g_return_val_if_fail (HERALD_IS_CONFIG (config), NULL);
  set = g_atomic_pointer_get (&config->namespaces);
  list = herald_namespace_set_list (set);
  g_ptr_array_insert (list, 0, herald_namespace_set_get_default (set));
  return list;
}

/* For --print-config */
const HeraldNamespaceSet *
herald_config_get_namespaces (HeraldConfig *self)
{
  g_return_val_if_fail (HERALD_IS_CONFIG (self), NULL);
  return g_atomic_pointer_get (&self->namespaces);
}
