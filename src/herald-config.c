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
 *   [limits] max-connections        1 – 1000000
 *   [limits] max-message-size       128 – 16777216 bytes
 *   [limits] heartbeat-interval     1 – 3600 s
 *   [limits] connection-timeout     2 – 86400 s
 *   [limits] send-queue-max-bytes   4096 – 1073741824 bytes
 *   [limits] max-connections-per-ip 0 – 1000000 (0 = off)
 *   [limits] messages-per-second    0 – 1000000 (0 = off)
 *   [limits] handshake-timeout      1 – 3600 s
 *   [auth] leeway                   0 – 3600 s
 *   [history] size                  0 – 100000 messages per channel
 *   [history] ttl                   0 – 31536000 s
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "herald-config.h"

#include <gio/gio.h>
#include <glib/gi18n.h>
#include <string.h>

/* The quark's name as written: clang-format would space out its dashes. */
/* clang-format off */
G_DEFINE_QUARK (herald-config-error-quark, herald_config_error)
/* clang-format on */

#define DEFAULT_LISTEN "127.0.0.1:8080"
/* Beyond this many lines we don't search for the line of a syntax error */
#define MAX_LINES_FOR_ERROR_SEARCH 5000

/* ------------------------------------------------------------------------ */
/* Listen addresses                                                          */

/**
 * herald_listen_address_free:
 * @address: (nullable): an address
 *
 * Frees @address.
 */
void
herald_listen_address_free (HeraldListenAddress *address)
{
  if (address == NULL)
    return;
  g_free (address->host);
  g_free (address);
}

static gboolean
is_hostname (const char *host)
{
  gsize len = strlen (host);

  if (len == 0 || len > 253 || host[0] == '-' || host[0] == '.')
    return FALSE;
  for (const char *p = host; *p; p++)
    if (!g_ascii_isalnum (*p) && *p != '-' && *p != '.')
      return FALSE;
  return TRUE;
}

static void
set_address_error (GError **error, const char *what, const char *text, const char *reason)
{
  if (what != NULL)
    g_set_error (error, HERALD_CONFIG_ERROR, HERALD_CONFIG_ERROR_INVALID, "%s: “%s”: %s", what,
                 text, reason);
  else
    g_set_error (error, HERALD_CONFIG_ERROR, HERALD_CONFIG_ERROR_INVALID, "“%s”: %s", text, reason);
}

/**
 * herald_listen_address_parse:
 * @text: "HOST:PORT", "http://HOST:PORT" or "https://HOST:PORT"; IPv6 hosts in brackets
 * @what: (nullable): where @text came from, prefixed to error messages
 *   (e.g. "--listen" or "FILE: [server] listen")
 * @error: return location for a #GError
 *
 * Parses one listen address. The port is required and may be 0 (pick a free
 * port). The host is an IPv4 address, a bracketed IPv6 address or a host name.
 *
 * Returns: (transfer full): the address, or %NULL with @error set
 *   (%HERALD_CONFIG_ERROR_INVALID).
 */
HeraldListenAddress *
herald_listen_address_parse (const char *text, const char *what, GError **error)
{
  g_autoptr (HeraldListenAddress) address = NULL;
  g_autofree char *host = NULL;
  const char *rest = text;
  const char *port_text;
  guint64 port;
  gboolean tls = FALSE;

  g_return_val_if_fail (text != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (g_ascii_strncasecmp (rest, "https://", 8) == 0)
    {
      tls = TRUE;
      rest += 8;
    }
  else if (g_ascii_strncasecmp (rest, "http://", 7) == 0)
    rest += 7;
  else if (strstr (rest, "://") != NULL)
    {
      set_address_error (error, what, text,
                         _ ("only http:// and https:// addresses are supported"));
      return NULL;
    }

  if (*rest == '[')
    {
      const char *close = strchr (rest, ']');
      g_autoptr (GInetAddress) inet = NULL;

      if (close == NULL)
        {
          set_address_error (error, what, text, _ ("missing “]” after IPv6 address"));
          return NULL;
        }
      host = g_strndup (rest + 1, close - rest - 1);
      inet = g_inet_address_new_from_string (host);
      if (inet == NULL || g_inet_address_get_family (inet) != G_SOCKET_FAMILY_IPV6)
        {
          set_address_error (error, what, text, _ ("not a valid IPv6 address in brackets"));
          return NULL;
        }
      if (close[1] != ':')
        {
          set_address_error (error, what, text, _ ("missing port (expected [IPV6]:PORT)"));
          return NULL;
        }
      port_text = close + 2;
    }
  else
    {
      const char *colon = strrchr (rest, ':');

      if (colon == NULL)
        {
          set_address_error (error, what, text, _ ("missing port (expected HOST:PORT)"));
          return NULL;
        }
      host = g_strndup (rest, colon - rest);
      if (*host == '\0')
        {
          set_address_error (error, what, text,
                             _ ("missing host (use 0.0.0.0 or [::] for all interfaces)"));
          return NULL;
        }
      if (strchr (host, ':') != NULL)
        {
          set_address_error (error, what, text,
                             _ ("IPv6 addresses must be written in brackets, e.g. [::1]:8080"));
          return NULL;
        }
      if (!is_hostname (host))
        {
          set_address_error (error, what, text, _ ("not a valid host name or IP address"));
          return NULL;
        }
      port_text = colon + 1;
    }

  if (*port_text == '\0')
    {
      set_address_error (error, what, text, _ ("missing port (expected HOST:PORT)"));
      return NULL;
    }
  if (!g_ascii_string_to_unsigned (port_text, 10, 0, G_MAXUINT16, &port, NULL))
    {
      set_address_error (error, what, text, _ ("the port must be a number between 0 and 65535"));
      return NULL;
    }

  address = g_new0 (HeraldListenAddress, 1);
  address->host = g_steal_pointer (&host);
  address->port = (guint16)port;
  address->tls = tls;
  return g_steal_pointer (&address);
}

/**
 * herald_listen_address_is_loopback:
 * @address: an address
 *
 * Whether @address only accepts connections from this machine: 127.0.0.0/8,
 * ::1 or the name "localhost". Other host names are not resolved and count
 * as non-loopback.
 *
 * Returns: %TRUE for a loopback address
 */
gboolean
herald_listen_address_is_loopback (const HeraldListenAddress *address)
{
  g_autoptr (GInetAddress) inet = NULL;

  g_return_val_if_fail (address != NULL, FALSE);

  if (g_ascii_strcasecmp (address->host, "localhost") == 0
      || g_ascii_strcasecmp (address->host, "localhost.") == 0)
    return TRUE;
  inet = g_inet_address_new_from_string (address->host);
  return inet != NULL && g_inet_address_get_is_loopback (inet);
}

static char *
listen_address_to_string (const HeraldListenAddress *address)
{
  gboolean v6 = strchr (address->host, ':') != NULL;

  return g_strdup_printf ("%s%s%s%s:%u", address->tls ? "https://" : "", v6 ? "[" : "",
                          address->host, v6 ? "]" : "", address->port);
}

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
};

#define WORKERS_MAX 256
#define LEEWAY_MAX 3600
#define HISTORY_SIZE_MAX 100000
#define HISTORY_TTL_MAX 31536000

static const char *const server_keys[]
    = { "listen", "tls-certificate", "tls-key", "allowed-origins", "compression", "workers", NULL };
static const char *const limits_keys[] = { "max-connections",      "max-message-size",
                                           "heartbeat-interval",   "connection-timeout",
                                           "send-queue-max-bytes", "max-connections-per-ip",
                                           "messages-per-second",  "handshake-timeout",
                                           NULL };
static const char *const auth_keys[]
    = { "jwt-secret", "jwt-secret-file", "jwt-public-key-file", "jwt-algorithm",
        "leeway",     "anonymous",       "anonymous-channels",  "anonymous-publish",
        NULL };
static const char *const api_keys[] = { "key", "key-file", NULL };
static const char *const history_keys[] = { "size", "ttl", NULL };
static const char *const redis_keys[] = { "url", NULL };

static const struct
{
  const char *group;
  const char *const *keys;
} known_groups[] = {
  { "server", server_keys }, { "limits", limits_keys },   { "auth", auth_keys },
  { "api", api_keys },       { "history", history_keys }, { "redis", redis_keys },
};

/* ------------------------------------------------------------------------ */
/* The object                                                                */

/* Everything that is immutable once loaded */
typedef struct
{
  GPtrArray *listen; /* of HeraldListenAddress* */
  char *tls_certificate;
  char *tls_key;
  char **allowed_origins;
  gboolean compression;
  guint workers;

  GBytes *jwt_secret;
  char *jwt_public_key_file;
  HeraldJwtAlg jwt_algorithm;
  guint leeway;
  gboolean anonymous_set; /* the key was present */
  gboolean anonymous;
  char **anonymous_channels;
  char **anonymous_publish;

  char *api_key;

  guint history_size;
  guint history_ttl;

  char *redis_url;
} Settings;

struct _HeraldConfig
{
  GObject parent_instance;

  Settings *settings;
  guint limits[N_LIMITS]; /* atomic */

  char *path;        /* file loaded, or NULL */
  char *reload_path; /* file SIGHUP re-reads: explicit or default path, or NULL */

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
  g_strfreev (settings->allowed_origins);
  g_clear_pointer (&settings->jwt_secret, g_bytes_unref);
  g_free (settings->jwt_public_key_file);
  g_strfreev (settings->anonymous_channels);
  g_strfreev (settings->anonymous_publish);
  /* The API key is a credential: don't leave it lying around in freed memory */
  if (settings->api_key != NULL)
    memset (settings->api_key, 0, strlen (settings->api_key));
  g_free (settings->api_key);
  g_free (settings->redis_url);
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
  settings->workers = 0;
  settings->jwt_algorithm = HERALD_JWT_ALG_HS256;
  settings->leeway = 30;
  settings->anonymous_channels = g_strdupv ((char **)anonymous_channels);
  settings->anonymous_publish = g_new0 (char *, 1);
  settings->history_size = 100;
  settings->history_ttl = 300;
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
/* Parsing                                                                   */

typedef struct
{
  GKeyFile *key_file;
  const char *origin;  /* names the source in messages */
  const char *basedir; /* relative paths are resolved against it; NULL = as given */
} Parser;

G_GNUC_PRINTF (5, 6)
static void
set_key_error (GError **error, const Parser *parser, const char *group, const char *key,
               const char *format, ...)
{
  g_autofree char *reason = NULL;
  va_list args;

  va_start (args, format);
  reason = g_strdup_vprintf (format, args);
  va_end (args);
  g_set_error (error, HERALD_CONFIG_ERROR, HERALD_CONFIG_ERROR_INVALID, "%s: [%s] %s: %s",
               parser->origin, group, key, reason);
}

static void
warn_unknown (const Parser *parser, const char *only_group)
{
  g_auto (GStrv) groups = g_key_file_get_groups (parser->key_file, NULL);

  for (gsize g = 0; groups[g] != NULL; g++)
    {
      const char *const *keys = NULL;
      g_auto (GStrv) present = NULL;

      if (only_group != NULL && strcmp (groups[g], only_group) != 0)
        continue;
      for (gsize i = 0; i < G_N_ELEMENTS (known_groups); i++)
        if (strcmp (groups[g], known_groups[i].group) == 0)
          keys = known_groups[i].keys;
      if (keys == NULL)
        {
          g_warning (_ ("%s: unknown group [%s]"), parser->origin, groups[g]);
          continue;
        }
      present = g_key_file_get_keys (parser->key_file, groups[g], NULL, NULL);
      for (gsize k = 0; present != NULL && present[k] != NULL; k++)
        if (!g_strv_contains (keys, present[k]))
          g_warning (_ ("%s: unknown key [%s] %s"), parser->origin, groups[g], present[k]);
    }
}

/* The raw value with surrounding whitespace removed, or NULL when absent */
static char *
get_raw (const Parser *parser, const char *group, const char *key)
{
  char *value;

  if (!g_key_file_has_key (parser->key_file, group, key, NULL))
    return NULL;
  value = g_key_file_get_value (parser->key_file, group, key, NULL);
  return value != NULL ? g_strstrip (value) : NULL;
}

static gboolean
parse_uint (const Parser *parser, const char *group, const char *key, guint min, guint max,
            guint *out, GError **error)
{
  g_autofree char *raw = get_raw (parser, group, key);
  guint64 value;

  if (raw == NULL)
    return TRUE;
  /* Strict: no sign, no trailing garbage, no overflow (unlike g_key_file_get_integer) */
  if (!g_ascii_string_to_unsigned (raw, 10, min, max, &value, NULL))
    {
      set_key_error (error, parser, group, key,
                     _ ("expected an integer between %u and %u, got “%s”"), min, max, raw);
      return FALSE;
    }
  *out = (guint)value;
  return TRUE;
}

static gboolean
parse_bool (const Parser *parser, const char *group, const char *key, gboolean *out,
            gboolean *present, GError **error)
{
  g_autofree char *raw = get_raw (parser, group, key);

  if (raw == NULL)
    return TRUE;
  /* The same spellings GKeyFile accepts, but tolerant of trailing blanks */
  if (strcmp (raw, "true") == 0 || strcmp (raw, "1") == 0)
    *out = TRUE;
  else if (strcmp (raw, "false") == 0 || strcmp (raw, "0") == 0)
    *out = FALSE;
  else
    {
      set_key_error (error, parser, group, key, _ ("expected true or false, got “%s”"), raw);
      return FALSE;
    }
  if (present != NULL)
    *present = TRUE;
  return TRUE;
}

/* A string value; an empty value counts as unset (like an empty env var). */
static gboolean
parse_string (const Parser *parser, const char *group, const char *key, char **out, GError **error)
{
  g_autoptr (GError) local = NULL;
  g_autofree char *value = NULL;

  if (!g_key_file_has_key (parser->key_file, group, key, NULL))
    return TRUE;
  value = g_key_file_get_string (parser->key_file, group, key, &local);
  if (value == NULL)
    {
      set_key_error (error, parser, group, key, "%s", local->message);
      return FALSE;
    }
  g_strstrip (value);
  if (*value == '\0')
    return TRUE;
  g_free (*out);
  *out = g_steal_pointer (&value);
  return TRUE;
}

static gboolean
parse_path (const Parser *parser, const char *group, const char *key, char **out, GError **error)
{
  g_autofree char *value = NULL;

  if (!parse_string (parser, group, key, &value, error))
    return FALSE;
  if (value == NULL)
    return TRUE;
  g_free (*out);
  /* Relative paths are relative to the config file, not to the daemon's cwd */
  if (parser->basedir != NULL && !g_path_is_absolute (value))
    *out = g_build_filename (parser->basedir, value, NULL);
  else
    *out = g_steal_pointer (&value);
  return TRUE;
}

/* A list with blanks around items removed and empty items dropped. Sets
 * *present when the key exists. */
static gboolean
parse_list (const Parser *parser, const char *group, const char *key, char ***out,
            gboolean *present, GError **error)
{
  g_autoptr (GError) local = NULL;
  g_auto (GStrv) items = NULL;
  g_autoptr (GStrvBuilder) builder = NULL;
  gsize n = 0;

  if (!g_key_file_has_key (parser->key_file, group, key, NULL))
    return TRUE;
  items = g_key_file_get_string_list (parser->key_file, group, key, &n, &local);
  if (items == NULL && local != NULL)
    {
      set_key_error (error, parser, group, key, "%s", local->message);
      return FALSE;
    }
  builder = g_strv_builder_new ();
  for (gsize i = 0; i < n; i++)
    {
      g_strstrip (items[i]);
      if (*items[i] != '\0')
        g_strv_builder_add (builder, items[i]);
    }
  g_strfreev (*out);
  *out = g_strv_builder_end (builder);
  if (present != NULL)
    *present = TRUE;
  return TRUE;
}

/* "*", a channel name, or a channel name prefix followed by "*" */
static gboolean
is_channel_pattern (const char *pattern)
{
  gsize len = strlen (pattern);

  if (len > 0 && pattern[len - 1] == '*')
    len--;
  if (len == 0)
    return pattern[0] == '*';
  if (len > 255)
    return FALSE;
  for (gsize i = 0; i < len; i++)
    if (!g_ascii_isalnum (pattern[i]) && strchr ("_.:@/-", pattern[i]) == NULL)
      return FALSE;
  return TRUE;
}

static gboolean
parse_channel_list (const Parser *parser, const char *group, const char *key, char ***out,
                    GError **error)
{
  if (!parse_list (parser, group, key, out, NULL, error))
    return FALSE;
  for (gsize i = 0; (*out)[i] != NULL; i++)
    if (!is_channel_pattern ((*out)[i]))
      {
        set_key_error (error, parser, group, key,
                       _ ("“%s” is not a channel name or a prefix ending in “*”"), (*out)[i]);
        return FALSE;
      }
  return TRUE;
}

/* Reads a file holding a credential; trailing whitespace and newlines are
 * removed because editors and `echo` add them. */
static char *
read_secret_file (const Parser *parser, const char *group, const char *key, const char *path,
                  gsize *length, GError **error)
{
  g_autoptr (GError) local = NULL;
  g_autofree char *contents = NULL;
  gsize len = 0;

  if (!g_file_get_contents (path, &contents, &len, &local))
    {
      g_set_error (error, HERALD_CONFIG_ERROR, HERALD_CONFIG_ERROR_IO, "%s: [%s] %s: %s",
                   parser->origin, group, key, local->message);
      return NULL;
    }
  while (len > 0 && g_ascii_isspace (contents[len - 1]))
    contents[--len] = '\0';
  if (len == 0)
    {
      set_key_error (error, parser, group, key, _ ("file “%s” is empty"), path);
      return NULL;
    }
  *length = len;
  return g_steal_pointer (&contents);
}

static const char *
getenv_nonempty (const char *name)
{
  const char *value = g_getenv (name);

  return value != NULL && *value != '\0' ? value : NULL;
}

static gboolean
parse_limits (const Parser *parser, guint limits[N_LIMITS], GError **error)
{
  for (Limit i = 0; i < N_LIMITS; i++)
    {
      const LimitSpec *spec = &limit_specs[i];

      limits[i] = spec->def;
      if (!parse_uint (parser, "limits", spec->key, spec->min, spec->max, &limits[i], error))
        return FALSE;
    }
  return TRUE;
}

static gboolean
parse_server (const Parser *parser, Settings *settings, GError **error)
{
  g_auto (GStrv) listen = NULL;
  gboolean listen_present = FALSE;

  if (!parse_list (parser, "server", "listen", &listen, &listen_present, error))
    return FALSE;
  if (listen_present)
    {
      g_autofree char *what = g_strdup_printf ("%s: [server] listen", parser->origin);
      g_autoptr (GPtrArray) addresses = NULL;

      if (listen[0] == NULL)
        {
          set_key_error (error, parser, "server", "listen",
                         _ ("at least one address is needed (default %s)"), DEFAULT_LISTEN);
          return FALSE;
        }
      addresses = g_ptr_array_new_with_free_func ((GDestroyNotify)herald_listen_address_free);
      for (gsize i = 0; listen[i] != NULL; i++)
        {
          HeraldListenAddress *address = herald_listen_address_parse (listen[i], what, error);

          if (address == NULL)
            return FALSE;
          g_ptr_array_add (addresses, address);
        }
      g_ptr_array_unref (settings->listen);
      settings->listen = g_steal_pointer (&addresses);
    }

  if (!parse_path (parser, "server", "tls-certificate", &settings->tls_certificate, error)
      || !parse_path (parser, "server", "tls-key", &settings->tls_key, error)
      || !parse_list (parser, "server", "allowed-origins", &settings->allowed_origins, NULL, error)
      || !parse_bool (parser, "server", "compression", &settings->compression, NULL, error)
      || !parse_uint (parser, "server", "workers", 0, WORKERS_MAX, &settings->workers, error))
    return FALSE;

  /* An empty allowed-origins list counts as unset, like other empty values */
  if (settings->allowed_origins != NULL && settings->allowed_origins[0] == NULL)
    g_clear_pointer (&settings->allowed_origins, g_strfreev);
  return TRUE;
}

static gboolean
parse_auth (const Parser *parser, Settings *settings, GError **error)
{
  g_autofree char *secret = NULL;
  g_autofree char *secret_file = NULL;
  g_autofree char *algorithm = NULL;
  const char *env_secret = getenv_nonempty ("HERALD_JWT_SECRET");

  if (!parse_string (parser, "auth", "jwt-secret", &secret, error)
      || !parse_path (parser, "auth", "jwt-secret-file", &secret_file, error)
      || !parse_path (parser, "auth", "jwt-public-key-file", &settings->jwt_public_key_file, error)
      || !parse_string (parser, "auth", "jwt-algorithm", &algorithm, error)
      || !parse_uint (parser, "auth", "leeway", 0, LEEWAY_MAX, &settings->leeway, error)
      || !parse_bool (parser, "auth", "anonymous", &settings->anonymous, &settings->anonymous_set,
                      error)
      || !parse_channel_list (parser, "auth", "anonymous-channels", &settings->anonymous_channels,
                              error)
      || !parse_channel_list (parser, "auth", "anonymous-publish", &settings->anonymous_publish,
                              error))
    return FALSE;

  if (algorithm != NULL)
    {
      if (g_ascii_strcasecmp (algorithm, "HS256") == 0)
        settings->jwt_algorithm = HERALD_JWT_ALG_HS256;
      else if (g_ascii_strcasecmp (algorithm, "RS256") == 0)
        settings->jwt_algorithm = HERALD_JWT_ALG_RS256;
      else if (g_ascii_strcasecmp (algorithm, "ES256") == 0)
        settings->jwt_algorithm = HERALD_JWT_ALG_ES256;
      else
        {
          set_key_error (error, parser, "auth", "jwt-algorithm",
                         _ ("expected HS256, RS256 or ES256, got “%s”"), algorithm);
          return FALSE;
        }
    }

  if (secret != NULL && secret_file != NULL)
    {
      set_key_error (error, parser, "auth", "jwt-secret-file",
                     _ ("set either jwt-secret or jwt-secret-file, not both"));
      return FALSE;
    }

  /* Environment beats the file; the file is then not even read */
  if (env_secret != NULL)
    settings->jwt_secret = g_bytes_new (env_secret, strlen (env_secret));
  else if (secret != NULL)
    settings->jwt_secret = g_bytes_new (secret, strlen (secret));
  else if (secret_file != NULL)
    {
      gsize len = 0;
      char *contents
          = read_secret_file (parser, "auth", "jwt-secret-file", secret_file, &len, error);

      if (contents == NULL)
        return FALSE;
      settings->jwt_secret = g_bytes_new_take (contents, len);
    }
  return TRUE;
}

static gboolean
parse_api (const Parser *parser, Settings *settings, GError **error)
{
  g_autofree char *key = NULL;
  g_autofree char *key_file = NULL;
  const char *env_key = getenv_nonempty ("HERALD_API_KEY");

  if (!parse_string (parser, "api", "key", &key, error)
      || !parse_path (parser, "api", "key-file", &key_file, error))
    return FALSE;
  if (key != NULL && key_file != NULL)
    {
      set_key_error (error, parser, "api", "key-file", _ ("set either key or key-file, not both"));
      return FALSE;
    }

  if (env_key != NULL)
    settings->api_key = g_strdup (env_key);
  else if (key != NULL)
    settings->api_key = g_steal_pointer (&key);
  else if (key_file != NULL)
    {
      gsize len = 0;

      settings->api_key = read_secret_file (parser, "api", "key-file", key_file, &len, error);
      if (settings->api_key == NULL)
        return FALSE;
      if (strlen (settings->api_key) != len)
        {
          set_key_error (error, parser, "api", "key-file", _ ("file “%s” contains a NUL byte"),
                         key_file);
          return FALSE;
        }
    }
  return TRUE;
}

static gboolean
check_redis_url (const char *url)
{
  return g_str_has_prefix (url, "redis://") || g_str_has_prefix (url, "rediss://")
         || g_str_has_prefix (url, "unix://");
}

static gboolean
parse_redis (const Parser *parser, Settings *settings, GError **error)
{
  const char *env_url = getenv_nonempty ("REDIS_URL");

  if (!parse_string (parser, "redis", "url", &settings->redis_url, error))
    return FALSE;
  if (settings->redis_url != NULL && !check_redis_url (settings->redis_url))
    {
      set_key_error (error, parser, "redis", "url",
                     _ ("expected a redis://, rediss:// or unix:// URL, got “%s”"),
                     settings->redis_url);
      return FALSE;
    }
  if (env_url != NULL)
    {
      if (!check_redis_url (env_url))
        {
          g_set_error (error, HERALD_CONFIG_ERROR, HERALD_CONFIG_ERROR_INVALID,
                       _ ("REDIS_URL: expected a redis://, rediss:// or unix:// URL, got “%s”"),
                       env_url);
          return FALSE;
        }
      g_free (settings->redis_url);
      settings->redis_url = g_strdup (env_url);
    }
  return TRUE;
}

/* g_key_file_load_from_data() does not say which line is broken: find the
 * first prefix of the file that fails to parse. Only runs on the error path. */
static guint
find_bad_line (const char *data, gsize length)
{
  g_autoptr (GKeyFile) probe = g_key_file_new ();
  gsize end = 0;
  guint line = 0;

  while (end < length && line < MAX_LINES_FOR_ERROR_SEARCH)
    {
      const char *nl = memchr (data + end, '\n', length - end);

      end = nl != NULL ? (gsize)(nl - data) + 1 : length;
      line++;
      if (!g_key_file_load_from_data (probe, data, end, G_KEY_FILE_NONE, NULL))
        return line;
    }
  return 0;
}

static gboolean
load_key_file (GKeyFile *key_file, const char *data, gsize length, const char *origin,
               GError **error)
{
  g_autoptr (GError) local = NULL;

  if (g_key_file_load_from_data (key_file, data, length, G_KEY_FILE_NONE, &local))
    return TRUE;

  {
    guint line = find_bad_line (data, length);

    if (line > 0)
      g_set_error (error, HERALD_CONFIG_ERROR, HERALD_CONFIG_ERROR_INVALID, "%s:%u: %s", origin,
                   line, local->message);
    else
      g_set_error (error, HERALD_CONFIG_ERROR, HERALD_CONFIG_ERROR_INVALID, "%s: %s", origin,
                   local->message);
  }
  return FALSE;
}

static gboolean
load_internal (HeraldConfig *self, const char *data, gsize length, const char *origin,
               const char *basedir, GError **error)
{
  g_autoptr (GKeyFile) key_file = g_key_file_new ();
  g_autoptr (Settings) settings = settings_new_default ();
  Parser parser = { key_file, origin, basedir };
  guint limits[N_LIMITS];

  if (data != NULL && !load_key_file (key_file, data, length, origin, error))
    return FALSE;

  if (data != NULL)
    warn_unknown (&parser, NULL);

  /* Parse everything before changing anything: a failed load changes nothing */
  if (!parse_server (&parser, settings, error) || !parse_limits (&parser, limits, error)
      || !parse_auth (&parser, settings, error) || !parse_api (&parser, settings, error)
      || !parse_uint (&parser, "history", "size", 0, HISTORY_SIZE_MAX, &settings->history_size,
                      error)
      || !parse_uint (&parser, "history", "ttl", 0, HISTORY_TTL_MAX, &settings->history_ttl, error)
      || !parse_redis (&parser, settings, error))
    return FALSE;

  settings_free (self->settings);
  self->settings = g_steal_pointer (&settings);

  g_object_freeze_notify (G_OBJECT (self));
  for (Limit i = 0; i < N_LIMITS; i++)
    set_limit (self, i, limits[i], NULL);
  g_object_thaw_notify (G_OBJECT (self));
  return TRUE;
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
  if (!load_internal (self, contents, length, file, basedir, error))
    return FALSE;
  g_free (self->path);
  self->path = g_strdup (file);
  g_free (self->reload_path);
  self->reload_path = g_strdup (file);
  return TRUE;
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
 * Re-reads the [limits] group of the configuration file (on SIGHUP). Keys
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
  Parser parser;

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
  if (!load_key_file (key_file, contents, length, self->reload_path, error))
    return FALSE;
  parser = (Parser){ key_file, self->reload_path, NULL };
  warn_unknown (&parser, "limits");
  if (!parse_limits (&parser, limits, error))
    return FALSE;

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

static void set_validate_error (HeraldConfig *self, GError **error, const char *format, ...)
    G_GNUC_PRINTF (3, 4);

static void
set_validate_error (HeraldConfig *self, GError **error, const char *format, ...)
{
  g_autofree char *message = NULL;
  va_list args;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);
  if (self->path != NULL)
    g_set_error (error, HERALD_CONFIG_ERROR, HERALD_CONFIG_ERROR_INVALID, "%s: %s", self->path,
                 message);
  else
    g_set_error_literal (error, HERALD_CONFIG_ERROR, HERALD_CONFIG_ERROR_INVALID, message);
}

/**
 * herald_config_validate:
 * @self: a #HeraldConfig
 * @error: return location for a #GError
 *
 * Checks that need the whole picture, once after load and overrides:
 * https listeners need tls-certificate and tls-key; jwt-algorithm must match
 * the kind of key; with no token key configured and `anonymous` not set to
 * true explicitly, non-loopback listen addresses are refused. With no token
 * key at all, logs a warning that Herald runs anonymous-only.
 *
 * Returns: %TRUE when the configuration can be used
 */
gboolean
herald_config_validate (HeraldConfig *self, GError **error)
{
  Settings *s;
  GPtrArray *listen;
  gboolean any_tls = FALSE;

  g_return_val_if_fail (HERALD_IS_CONFIG (self), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  s = self->settings;
  listen = herald_config_get_listen (self);

  for (guint i = 0; i < listen->len; i++)
    any_tls |= ((HeraldListenAddress *)listen->pdata[i])->tls;
  if ((s->tls_certificate == NULL) != (s->tls_key == NULL))
    {
      set_validate_error (self, error,
                          _ ("[server] tls-certificate and tls-key must be set together"));
      return FALSE;
    }
  if (any_tls && s->tls_certificate == NULL)
    {
      set_validate_error (self, error,
                          _ ("[server] listen: https:// addresses need [server] tls-certificate "
                             "and tls-key"));
      return FALSE;
    }

  if (s->jwt_public_key_file != NULL && s->jwt_algorithm == HERALD_JWT_ALG_HS256)
    {
      set_validate_error (self, error,
                          _ ("[auth] jwt-algorithm: jwt-public-key-file needs RS256 or ES256 "
                             "(HS256 uses a shared secret)"));
      return FALSE;
    }
  if (s->jwt_public_key_file == NULL && s->jwt_algorithm != HERALD_JWT_ALG_HS256
      && s->jwt_secret != NULL)
    {
      set_validate_error (self, error,
                          _ ("[auth] jwt-algorithm: %s needs jwt-public-key-file; a shared secret "
                             "(jwt-secret, jwt-secret-file or HERALD_JWT_SECRET) only works with "
                             "HS256"),
                          s->jwt_algorithm == HERALD_JWT_ALG_RS256 ? "RS256" : "ES256");
      return FALSE;
    }

  if (!herald_config_has_token_key (self))
    {
      if (s->anonymous_set && !s->anonymous)
        {
          set_validate_error (self, error,
                              _ ("[auth] anonymous: is false but no token key is configured, so "
                                 "no client could connect: set jwt-secret, jwt-secret-file, "
                                 "HERALD_JWT_SECRET or jwt-public-key-file"));
          return FALSE;
        }
      if (!s->anonymous_set)
        for (guint i = 0; i < listen->len; i++)
          {
            const HeraldListenAddress *address = listen->pdata[i];

            if (!herald_listen_address_is_loopback (address))
              {
                g_autofree char *text = listen_address_to_string (address);

                set_validate_error (self, error,
                                    _ ("refusing to listen on %s without authentication: set "
                                       "[auth] jwt-secret (or jwt-secret-file, HERALD_JWT_SECRET, "
                                       "jwt-public-key-file), or anonymous=true to allow "
                                       "anonymous clients from the network"),
                                    text);
                return FALSE;
              }
          }
      g_warning (_ ("No token key configured ([auth] jwt-secret, jwt-secret-file, "
                    "jwt-public-key-file or HERALD_JWT_SECRET): running anonymous-only"));
    }
  return TRUE;
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
 * Returns: (nullable): path of the PEM public key for RS256/ES256
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
 * Returns: %TRUE when a secret or a public key file is configured
 */
gboolean
herald_config_has_token_key (HeraldConfig *self)
{
  g_return_val_if_fail (HERALD_IS_CONFIG (self), FALSE);
  return self->settings->jwt_secret != NULL || self->settings->jwt_public_key_file != NULL;
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
