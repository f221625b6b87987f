/* herald-config-parse.c: the key parsers of HeraldConfig. Each checks
 * one key and records its problem, so a load names every problem at once;
 * values are parsed into a HeraldConfigSettings that herald-config.c swaps
 * in only when all of them are valid.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "herald-config-internal.h"

#include <gio/gio.h>
#include <glib/gi18n.h>
#include <string.h>

/* Beyond this many lines we don't search for the line of a syntax error */
#define MAX_LINES_FOR_ERROR_SEARCH 5000

typedef HeraldConfigSettings Settings;
typedef HeraldConfigProblems Problems;
typedef HeraldConfigParser Parser;

/* ------------------------------------------------------------------------ */
/* Parsing                                                                   */

/* A fresh error slot for one check: whatever the previous check left in its
 * slot is kept. So every key is checked and every problem reported, rather
 * than stopping at the first. */
GError **
herald_config_problems_slot (Problems *p)
{
  if (p->scratch != NULL)
    g_ptr_array_add (p->list, g_steal_pointer (&p->scratch));
  return &p->scratch;
}

static GError **
slot (const Parser *parser)
{
  return herald_config_problems_slot (parser->problems);
}

/* Moves every problem into @error (one per line); TRUE when there was none */
gboolean
herald_config_problems_take (Problems *p, GError **error)
{
  g_autoptr (GString) text = NULL;
  int code = HERALD_CONFIG_ERROR_INVALID;

  if (p->scratch != NULL)
    g_ptr_array_add (p->list, g_steal_pointer (&p->scratch));
  if (p->list->len == 0)
    return TRUE;
  text = g_string_new (NULL);
  for (guint i = 0; i < p->list->len; i++)
    {
      GError *e = p->list->pdata[i];

      if (i == 0)
        code = e->code;
      if (i > 0)
        g_string_append_c (text, '\n');
      g_string_append (text, e->message);
    }
  g_set_error_literal (error, HERALD_CONFIG_ERROR, code, text->str);
  g_ptr_array_set_size (p->list, 0);
  return FALSE;
}

void
herald_config_problems_clear (Problems *p)
{
  g_clear_error (&p->scratch);
  g_clear_pointer (&p->list, g_ptr_array_unref);
}

void
herald_config_problems_init (Problems *p)
{
  p->list = g_ptr_array_new_with_free_func ((GDestroyNotify)g_error_free);
  p->scratch = NULL;
}

/* "FILE:LINE" of @key in @group, or "FILE" when the line is not known */
static char *
key_where (const Parser *parser, const char *group, const char *key)
{
  guint line = herald_config_find_line (parser->data, parser->length, group, key);

  return line > 0 ? g_strdup_printf ("%s:%u", parser->origin, line) : g_strdup (parser->origin);
}

G_GNUC_PRINTF (5, 6)
static void
set_key_error (GError **error, const Parser *parser, const char *group, const char *key,
               const char *format, ...)
{
  g_autofree char *where = key_where (parser, group, key);
  g_autofree char *reason = NULL;
  va_list args;

  va_start (args, format);
  reason = g_strdup_vprintf (format, args);
  va_end (args);
  g_set_error (error, HERALD_CONFIG_ERROR, HERALD_CONFIG_ERROR_INVALID, "%s: [%s] %s: %s", where,
               group, key, reason);
}

/* An unknown group or key: a warning when starting, a problem for
 * --check-config. Either way with its line and the closest known name. */
static void
report_unknown (const Parser *parser, const char *group, const char *key)
{
  g_autofree char *where = NULL;
  g_autofree char *what = NULL;
  g_autofree char *hint = NULL;
  g_autofree char *message = NULL;
  guint line = herald_config_find_line (parser->data, parser->length, group, key);
  const char *suggestion;

  where = line > 0 ? g_strdup_printf ("%s:%u", parser->origin, line) : g_strdup (parser->origin);
  if (key == NULL)
    {
      suggestion = herald_config_suggest_group (group);
      what = g_strdup_printf (_ ("unknown group [%s]"), group);
    }
  else
    {
      suggestion = herald_config_suggest_key (group, key);
      what = g_strdup_printf (_ ("unknown key [%s] %s"), group, key);
    }
  if (suggestion != NULL)
    hint = g_strdup_printf (_ (" (did you mean “%s”?)"), suggestion);
  message = g_strconcat (where, ": ", what, hint, NULL);
  if (parser->strict)
    g_set_error_literal (slot (parser), HERALD_CONFIG_ERROR, HERALD_CONFIG_ERROR_INVALID, message);
  else
    g_warning ("%s", message);
}

void
herald_config_warn_unknown (const Parser *parser, const char *only_group)
{
  g_auto (GStrv) groups = g_key_file_get_groups (parser->key_file, NULL);

  for (gsize g = 0; groups[g] != NULL; g++)
    {
      const char *const *keys = NULL;
      g_auto (GStrv) present = NULL;

      /* only_group "prefix." stands for every group it begins */
      if (only_group != NULL
          && (g_str_has_suffix (only_group, ".") ? !g_str_has_prefix (groups[g], only_group)
                                                 : strcmp (groups[g], only_group) != 0))
        continue;
      keys = herald_config_known_keys (groups[g]);
      if (keys == NULL)
        {
          report_unknown (parser, groups[g], NULL);
          continue;
        }
      present = g_key_file_get_keys (parser->key_file, groups[g], NULL, NULL);
      for (gsize k = 0; present != NULL && present[k] != NULL; k++)
        if (!g_strv_contains (keys, present[k]))
          report_unknown (parser, groups[g], present[k]);
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

gboolean
herald_config_parse_uint (const Parser *parser, const char *group, const char *key, guint min,
                          guint max, guint *out, GError **error)
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
                    gboolean *present, GError **error)
{
  if (!parse_list (parser, group, key, out, present, error))
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
      g_autofree char *where = key_where (parser, group, key);

      g_set_error (error, HERALD_CONFIG_ERROR, HERALD_CONFIG_ERROR_IO, "%s: [%s] %s: %s", where,
                   group, key, local->message);
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

static void
parse_server (const Parser *parser, Settings *settings)
{
  g_auto (GStrv) listen = NULL;
  gboolean listen_present = FALSE;

  if (parse_list (parser, "server", "listen", &listen, &listen_present, slot (parser))
      && listen_present)
    {
      g_autofree char *where = key_where (parser, "server", "listen");
      g_autofree char *what = g_strdup_printf ("%s: [server] listen", where);
      g_autoptr (GPtrArray) addresses = NULL;

      if (listen[0] == NULL)
        {
          set_key_error (slot (parser), parser, "server", "listen",
                         _ ("at least one address is needed (default %s)"), DEFAULT_LISTEN);
          return;
        }
      addresses = g_ptr_array_new_with_free_func ((GDestroyNotify)herald_listen_address_free);
      for (gsize i = 0; listen[i] != NULL; i++)
        {
          HeraldListenAddress *address
              = herald_listen_address_parse (listen[i], what, slot (parser));

          if (address != NULL)
            g_ptr_array_add (addresses, address);
        }
      if (addresses->len == g_strv_length (listen))
        {
          g_ptr_array_unref (settings->listen);
          settings->listen = g_steal_pointer (&addresses);
        }
    }

  parse_path (parser, "server", "tls-certificate", &settings->tls_certificate, slot (parser));
  parse_path (parser, "server", "tls-key", &settings->tls_key, slot (parser));
  /* for the checks of the files, once the whole configuration is known */
  settings->tls_certificate_where = key_where (parser, "server", "tls-certificate");
  settings->tls_key_where = key_where (parser, "server", "tls-key");
  parse_list (parser, "server", "allowed-origins", &settings->allowed_origins, NULL, slot (parser));
  parse_bool (parser, "server", "compression", &settings->compression, NULL, slot (parser));
  parse_bool (parser, "server", "io-uring", &settings->io_uring, NULL, slot (parser));
  parse_bool (parser, "server", "metrics", &settings->metrics, &settings->metrics_set,
              slot (parser));
  parse_bool (parser, "server", "admin-page", &settings->admin_page, &settings->admin_page_set,
              slot (parser));
  herald_config_parse_uint (parser, "server", "workers", 0, WORKERS_MAX, &settings->workers,
                            slot (parser));
  herald_config_parse_uint (parser, "server", "drain-seconds", 0, DRAIN_SECONDS_MAX,
                            &settings->drain_seconds, slot (parser));

  /* An empty allowed-origins list counts as unset, like other empty values */
  if (settings->allowed_origins != NULL && settings->allowed_origins[0] == NULL)
    g_clear_pointer (&settings->allowed_origins, g_strfreev);
}

/* [auth] jwks-url: an http:// or https:// URL with a host. */
static void
parse_jwks_url (const Parser *parser, Settings *settings)
{
  g_autofree char *url = NULL;
  g_autoptr (GUri) uri = NULL;
  const char *scheme;

  if (!parse_string (parser, "auth", "jwks-url", &url, slot (parser)) || url == NULL)
    return;
  uri = g_uri_parse (url, G_URI_FLAGS_NONE, NULL);
  scheme = uri != NULL ? g_uri_get_scheme (uri) : NULL;
  if (uri == NULL
      || (g_ascii_strcasecmp (scheme, "http") != 0 && g_ascii_strcasecmp (scheme, "https") != 0)
      || g_uri_get_host (uri) == NULL || *g_uri_get_host (uri) == '\0')
    {
      set_key_error (slot (parser), parser, "auth", "jwks-url",
                     _ ("expected an http:// or https:// URL, got “%s”"), url);
      return;
    }
  settings->jwks_url = g_steal_pointer (&url);
}

static void
parse_auth (const Parser *parser, Settings *settings)
{
  g_autofree char *secret = NULL;
  g_autofree char *secret_file = NULL;
  g_autofree char *algorithm = NULL;
  const char *env_secret = getenv_nonempty ("HERALD_JWT_SECRET");

  parse_string (parser, "auth", "jwt-secret", &secret, slot (parser));
  parse_path (parser, "auth", "jwt-secret-file", &secret_file, slot (parser));
  parse_path (parser, "auth", "jwt-public-key-file", &settings->jwt_public_key_file, slot (parser));
  parse_string (parser, "auth", "jwt-algorithm", &algorithm, slot (parser));
  parse_string (parser, "auth", "issuer", &settings->jwt_issuer, slot (parser));
  parse_string (parser, "auth", "audience", &settings->jwt_audience, slot (parser));
  parse_jwks_url (parser, settings);
  herald_config_parse_uint (parser, "auth", "jwks-refresh", 1, JWKS_REFRESH_MAX,
                            &settings->jwks_refresh, slot (parser));
  herald_config_parse_uint (parser, "auth", "leeway", 0, LEEWAY_MAX, &settings->leeway,
                            slot (parser));
  parse_bool (parser, "auth", "anonymous", &settings->anonymous, &settings->anonymous_set,
              slot (parser));
  parse_channel_list (parser, "auth", "anonymous-channels", &settings->anonymous_channels, NULL,
                      slot (parser));
  parse_channel_list (parser, "auth", "anonymous-publish", &settings->anonymous_publish,
                      &settings->anonymous_publish_set, slot (parser));

  settings->jwt_algorithm_set = algorithm != NULL;
  if (algorithm != NULL)
    {
      if (g_ascii_strcasecmp (algorithm, "HS256") == 0)
        settings->jwt_algorithm = HERALD_JWT_ALG_HS256;
      else if (g_ascii_strcasecmp (algorithm, "RS256") == 0)
        settings->jwt_algorithm = HERALD_JWT_ALG_RS256;
      else if (g_ascii_strcasecmp (algorithm, "ES256") == 0)
        settings->jwt_algorithm = HERALD_JWT_ALG_ES256;
      else if (g_ascii_strcasecmp (algorithm, "EdDSA") == 0)
        settings->jwt_algorithm = HERALD_JWT_ALG_EDDSA;
      else
        {
          set_key_error (slot (parser), parser, "auth", "jwt-algorithm",
                         _ ("expected HS256, RS256, ES256 or EdDSA, got “%s”"), algorithm);
        }
    }

  if (secret != NULL && secret_file != NULL)
    {
      set_key_error (slot (parser), parser, "auth", "jwt-secret-file",
                     _ ("set either jwt-secret or jwt-secret-file, not both"));
      return;
    }

  /* Environment beats the file; the file is then not even read */
  if (env_secret != NULL)
    {
      settings->jwt_secret = g_bytes_new (env_secret, strlen (env_secret));
      settings->jwt_secret_source = HERALD_CONFIG_SOURCE_ENV;
    }
  else if (secret != NULL)
    {
      settings->jwt_secret = g_bytes_new (secret, strlen (secret));
      settings->jwt_secret_source = HERALD_CONFIG_SOURCE_VALUE;
    }
  else if (secret_file != NULL)
    {
      gsize len = 0;
      char *contents
          = read_secret_file (parser, "auth", "jwt-secret-file", secret_file, &len, slot (parser));

      if (contents == NULL)
        return;
      settings->jwt_secret = g_bytes_new_take (contents, len);
      settings->jwt_secret_source = HERALD_CONFIG_SOURCE_FILE;
      settings->jwt_secret_file = g_steal_pointer (&secret_file);
    }
}

static void
parse_api (const Parser *parser, Settings *settings)
{
  g_autofree char *key = NULL;
  g_autofree char *key_file = NULL;
  const char *env_key = getenv_nonempty ("HERALD_API_KEY");

  if (!parse_string (parser, "api", "key", &key, slot (parser))
      | !parse_path (parser, "api", "key-file", &key_file, slot (parser)))
    return;
  if (key != NULL && key_file != NULL)
    {
      set_key_error (slot (parser), parser, "api", "key-file",
                     _ ("set either key or key-file, not both"));
      return;
    }

  if (env_key != NULL)
    {
      settings->api_key = g_strdup (env_key);
      settings->api_key_source = HERALD_CONFIG_SOURCE_ENV;
    }
  else if (key != NULL)
    {
      settings->api_key = g_steal_pointer (&key);
      settings->api_key_source = HERALD_CONFIG_SOURCE_VALUE;
    }
  else if (key_file != NULL)
    {
      gsize len = 0;

      settings->api_key
          = read_secret_file (parser, "api", "key-file", key_file, &len, slot (parser));
      if (settings->api_key == NULL)
        return;
      if (strlen (settings->api_key) != len)
        {
          set_key_error (slot (parser), parser, "api", "key-file",
                         _ ("file “%s” contains a NUL byte"), key_file);
          g_clear_pointer (&settings->api_key, g_free);
          return;
        }
      settings->api_key_source = HERALD_CONFIG_SOURCE_FILE;
      settings->api_key_file = g_steal_pointer (&key_file);
    }
}

static gboolean
check_redis_url (const char *url)
{
  return g_str_has_prefix (url, "redis://") || g_str_has_prefix (url, "rediss://")
         || g_str_has_prefix (url, "unix://");
}

/* HOST:PORT (HOST may be a bracketed IPv6 address), port 1–65535 */
static gboolean
check_host_port (const char *item)
{
  const char *colon = strrchr (item, ':');
  const char *host_end = colon;
  guint64 port = 0;

  if (colon == NULL || colon == item)
    return FALSE;
  if (item[0] == '[')
    {
      if (colon[-1] != ']' || colon - item < 3)
        return FALSE;
      host_end = colon - 1;
    }
  else if (memchr (item, ':', (gsize)(colon - item)) != NULL)
    return FALSE;
  for (const char *c = item; c < host_end; c++)
    if (g_ascii_isspace (*c) || *c == '/' || *c == '@')
      return FALSE;
  if (!g_ascii_string_to_unsigned (colon + 1, 10, 1, 65535, &port, NULL))
    return FALSE;
  return TRUE;
}

/* A non-empty list whose every item passes @check */
static gboolean
parse_server_list (const Parser *parser, const char *key, gboolean (*check) (const char *),
                   const char *expected, char ***out)
{
  gboolean present = FALSE;

  if (!parse_list (parser, "redis", key, out, &present, slot (parser)))
    return FALSE;
  if (!present)
    return TRUE;
  if (*out == NULL || (*out)[0] == NULL)
    {
      set_key_error (slot (parser), parser, "redis", key, _ ("expected a list of %s, got none"),
                     expected);
      g_clear_pointer (out, g_strfreev);
      return FALSE;
    }
  for (char **item = *out; *item != NULL; item++)
    if (!check (*item))
      {
        set_key_error (slot (parser), parser, "redis", key, _ ("expected %s, got “%s”"), expected,
                       *item);
        g_clear_pointer (out, g_strfreev);
        return FALSE;
      }
  return TRUE;
}

/* The one place that says which Redis deployment [redis] selects: exactly
 * one of url, shards, sentinels (with sentinel-master) and cluster. */
static void
check_redis_selection (const Parser *parser, Settings *settings)
{
  static const char *const names[] = { "url", "shards", "sentinels", "cluster" };
  gboolean set[] = { settings->redis_url != NULL, settings->redis_shards != NULL,
                     settings->redis_sentinels != NULL, settings->redis_cluster != NULL };
  const char *first = NULL;

  for (gsize i = 0; i < G_N_ELEMENTS (names); i++)
    {
      if (!set[i])
        continue;
      if (first != NULL)
        {
          set_key_error (slot (parser), parser, "redis", names[i],
                         _ ("set only one of url, shards, sentinels and cluster: %s and %s are "
                            "both set"),
                         first, names[i]);
          return;
        }
      first = names[i];
    }
  if (settings->redis_sentinels != NULL && settings->redis_sentinel_master == NULL)
    set_key_error (slot (parser), parser, "redis", "sentinels",
                   _ ("needs sentinel-master (the name of the master the sentinels watch)"));
  else if (settings->redis_sentinels == NULL && settings->redis_sentinel_master != NULL)
    set_key_error (slot (parser), parser, "redis", "sentinel-master",
                   _ ("only means something with sentinels"));
}

static void
parse_redis (const Parser *parser, Settings *settings)
{
  const char *env_url = getenv_nonempty ("REDIS_URL");

  parse_string (parser, "redis", "url", &settings->redis_url, slot (parser));
  if (settings->redis_url != NULL && !check_redis_url (settings->redis_url))
    set_key_error (slot (parser), parser, "redis", "url",
                   _ ("expected a redis://, rediss:// or unix:// URL, got “%s”"),
                   settings->redis_url);
  parse_server_list (parser, "shards", check_redis_url, _ ("redis://, rediss:// or unix:// URLs"),
                     &settings->redis_shards);
  parse_server_list (parser, "sentinels", check_host_port, _ ("HOST:PORT addresses"),
                     &settings->redis_sentinels);
  parse_string (parser, "redis", "sentinel-master", &settings->redis_sentinel_master,
                slot (parser));
  parse_server_list (parser, "cluster", check_host_port, _ ("HOST:PORT addresses"),
                     &settings->redis_cluster);
  parse_string (parser, "redis", "password", &settings->redis_password, slot (parser));
  check_redis_selection (parser, settings);
  if (env_url != NULL)
    {
      if (!check_redis_url (env_url))
        {
          g_set_error (slot (parser), HERALD_CONFIG_ERROR, HERALD_CONFIG_ERROR_INVALID,
                       _ ("REDIS_URL: expected a redis://, rediss:// or unix:// URL, got “%s”"),
                       env_url);
          return;
        }
      if (settings->redis_url != NULL || settings->redis_shards != NULL
          || settings->redis_sentinels != NULL || settings->redis_cluster != NULL)
        g_message (_ ("REDIS_URL in the environment replaces the [redis] selection of %s"),
                   parser->origin);
      g_free (settings->redis_url);
      settings->redis_url = g_strdup (env_url);
      settings->redis_url_from_env = TRUE;
      g_clear_pointer (&settings->redis_shards, g_strfreev);
      g_clear_pointer (&settings->redis_sentinels, g_strfreev);
      g_clear_pointer (&settings->redis_cluster, g_strfreev);
      g_clear_pointer (&settings->redis_sentinel_master, g_free);
    }
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

gboolean
herald_config_load_key_file (GKeyFile *key_file, const char *data, gsize length, const char *origin,
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

/**
 * herald_config_parse_sections:
 * @parser: the file being loaded
 * @settings: receives the values
 *
 * Parses every group but [limits] (herald-config.c has their table).
 */
void
herald_config_parse_sections (const Parser *parser, Settings *settings)
{
  parse_server (parser, settings);
  parse_auth (parser, settings);
  parse_api (parser, settings);
  herald_config_parse_uint (parser, "history", "size", 0, HISTORY_SIZE_MAX, &settings->history_size,
                            slot (parser));
  herald_config_parse_uint (parser, "history", "ttl", 0, HISTORY_TTL_MAX, &settings->history_ttl,
                            slot (parser));
  parse_redis (parser, settings);
  herald_config_parse_proxy (parser, settings);
}

/* [proxy] timeout: seconds with up to three decimals, "0.25" or "2" */
static gboolean
parse_timeout_ms (const char *raw, guint *out)
{
  const char *dot = strchr (raw, '.');
  g_autofree char *whole = g_strndup (raw, dot != NULL ? (gsize)(dot - raw) : strlen (raw));
  guint64 seconds = 0, fraction = 0;
  gsize digits = 0;

  if (*whole != '\0' && !g_ascii_string_to_unsigned (whole, 10, 0, 300, &seconds, NULL))
    return FALSE;
  if (dot != NULL)
    {
      for (const char *c = dot + 1; *c != '\0'; c++, digits++)
        {
          if (!g_ascii_isdigit (*c))
            return FALSE;
          if (digits < 3)
            fraction = fraction * 10 + (guint64)(*c - '0');
          else if (*c != '0')
            return FALSE; /* finer than a millisecond */
        }
      if (digits == 0)
        return FALSE;
      for (; digits < 3; digits++)
        fraction *= 10;
    }
  else if (*whole == '\0')
    return FALSE;
  *out = (guint)(seconds * 1000 + fraction);
  return TRUE;
}

/* A header name: RFC 9110 token characters */
static gboolean
is_header_name (const char *name)
{
  if (*name == '\0')
    return FALSE;
  for (const char *c = name; *c != '\0'; c++)
    if (!g_ascii_isalnum (*c) && strchr ("!#$%&'*+-.^_`|~", *c) == NULL)
      return FALSE;
  return TRUE;
}

/**
 * herald_config_parse_proxy:
 * @parser: the file being loaded
 * @settings: receives the values
 *
 * [proxy]: the hooks' URLs (http:// or https:// with a host), timeout in
 * seconds (fractions allowed), forward-headers and max-in-flight.
 */
void
herald_config_parse_proxy (const Parser *parser, Settings *settings)
{
  g_autofree char *timeout = get_raw (parser, "proxy", "timeout");

  for (guint i = 0; i < HERALD_N_HOOKS; i++)
    {
      g_autofree char *key = g_strdup_printf ("%s-url", herald_hook_name (i));
      g_autofree char *url = NULL;
      g_autoptr (GUri) uri = NULL;

      if (!parse_string (parser, "proxy", key, &url, slot (parser)) || url == NULL)
        continue;
      uri = g_uri_parse (url, G_URI_FLAGS_NONE, NULL);
      if (uri == NULL
          || (g_strcmp0 (g_uri_get_scheme (uri), "http") != 0
              && g_strcmp0 (g_uri_get_scheme (uri), "https") != 0)
          || g_uri_get_host (uri) == NULL || *g_uri_get_host (uri) == '\0')
        {
          set_key_error (slot (parser), parser, "proxy", key,
                         _ ("expected an http:// or https:// URL, got “%s”"), url);
          continue;
        }
      g_free (settings->proxy_urls[i]);
      settings->proxy_urls[i] = g_steal_pointer (&url);
    }
  if (timeout != NULL
      && (!parse_timeout_ms (timeout, &settings->proxy_timeout_ms)
          || settings->proxy_timeout_ms < PROXY_TIMEOUT_MS_MIN
          || settings->proxy_timeout_ms > PROXY_TIMEOUT_MS_MAX))
    set_key_error (slot (parser), parser, "proxy", "timeout",
                   _ ("expected seconds between 0.001 and 300 (fractions allowed), got “%s”"),
                   timeout);
  if (parse_list (parser, "proxy", "forward-headers", &settings->proxy_forward_headers, NULL,
                  slot (parser)))
    for (guint i = 0; settings->proxy_forward_headers[i] != NULL; i++)
      if (!is_header_name (settings->proxy_forward_headers[i]))
        {
          set_key_error (slot (parser), parser, "proxy", "forward-headers",
                         _ ("“%s” is not an HTTP header name"), settings->proxy_forward_headers[i]);
          break;
        }
  herald_config_parse_uint (parser, "proxy", "max-in-flight", 1, PROXY_MAX_IN_FLIGHT_MAX,
                            &settings->proxy_max_in_flight, slot (parser));
}

static void
parse_namespace (const Parser *parser, const char *group, HeraldNamespace *ns)
{
  g_autofree char *publish = get_raw (parser, group, "publish");
  g_autofree char *subscribe = get_raw (parser, group, "subscribe");

  herald_config_parse_uint (parser, group, "history-size", 0, HISTORY_SIZE_MAX, &ns->history_size,
                            slot (parser));
  herald_config_parse_uint (parser, group, "history-ttl", 0, HISTORY_TTL_MAX, &ns->history_ttl,
                            slot (parser));
  parse_bool (parser, group, "presence", &ns->presence, NULL, slot (parser));
  parse_bool (parser, group, "join-leave", &ns->join_leave, NULL, slot (parser));
  parse_bool (parser, group, "publish-proxy", &ns->publish_proxy, NULL, slot (parser));
  parse_bool (parser, group, "conflate", &ns->conflate, NULL, slot (parser));
  if (publish != NULL && !herald_ns_publish_from_string (publish, &ns->publish))
    set_key_error (slot (parser), parser, group, "publish",
                   _ ("expected claims, none or all, got “%s”"), publish);
  if (subscribe != NULL && !herald_ns_subscribe_from_string (subscribe, &ns->subscribe))
    set_key_error (slot (parser), parser, group, "subscribe",
                   _ ("expected claims, token or proxy, got “%s”"), subscribe);
  else if (ns->subscribe == HERALD_NS_SUBSCRIBE_PROXY
           && !g_key_file_has_key (parser->key_file, "proxy", "subscribe-url", NULL))
    set_key_error (slot (parser), parser, group, "subscribe",
                   _ ("subscribe=proxy needs [proxy] subscribe-url"));
  if (ns->publish_proxy && !g_key_file_has_key (parser->key_file, "proxy", "publish-url", NULL))
    set_key_error (slot (parser), parser, group, "publish-proxy",
                   _ ("publish-proxy=true needs [proxy] publish-url"));
}

/**
 * herald_config_parse_namespaces:
 * @parser: the file being loaded
 * @history_size: [history] size, the default namespace's history-size
 * @history_ttl: [history] ttl, the default namespace's history-ttl
 *
 * Parses every [namespace.NAME] group; [namespace.default] is the default
 * namespace and wins over [history]. Problems go to parser->problems.
 *
 * Returns: (transfer full): the namespaces
 */
HeraldNamespaceSet *
herald_config_parse_namespaces (const Parser *parser, guint history_size, guint history_ttl)
{
  HeraldNamespaceSet *set = herald_namespace_set_new ();
  HeraldNamespace *def = herald_namespace_set_get_default (set);
  g_auto (GStrv) groups = g_key_file_get_groups (parser->key_file, NULL);

  def->history_size = history_size;
  def->history_ttl = history_ttl;
  /* The default first: every other namespace starts from the spec defaults */
  for (gsize g = 0; groups[g] != NULL; g++)
    {
      const char *name = herald_namespace_group_name (groups[g]);

      if (name == NULL)
        continue;
      if (!herald_namespace_name_is_valid (name))
        {
          guint line = herald_config_find_line (parser->data, parser->length, groups[g], NULL);
          g_autofree char *where = line > 0 ? g_strdup_printf ("%s:%u", parser->origin, line)
                                            : g_strdup (parser->origin);

          g_set_error (slot (parser), HERALD_CONFIG_ERROR, HERALD_CONFIG_ERROR_INVALID,
                       _ ("%s: [%s]: a namespace name is 1 to 64 letters, digits or “_.@/-”"),
                       where, groups[g]);
          continue;
        }
      parse_namespace (parser, groups[g], herald_namespace_set_add (set, name));
    }
  return set;
}
