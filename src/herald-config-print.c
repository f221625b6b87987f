/* herald-config-print.c: heraldd --print-config.
 *
 * Built on a GKeyFile so that every value is escaped exactly as the parser
 * expects, and the output reads back to the same effective values.
 *
 * Secrets: a secret written in the file (jwt-secret, [api] key) is printed,
 * since whoever can read the output could read the file; a secret read from
 * a *-file key is printed as that key (the path), never its contents; a
 * secret from the environment (HERALD_JWT_SECRET, HERALD_API_KEY), and a
 * REDIS_URL from the environment that carries a password, are left out with
 * a comment naming the variable, so printing never copies a credential from
 * the environment into a file.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "herald-config-print.h"
#include "herald-config-private.h"

#include <glib/gi18n.h>
#include <string.h>

static void
set_list (GKeyFile *file, const char *group, const char *key, const char *const *items)
{
  g_key_file_set_string_list (file, group, key, items,
                              items != NULL ? g_strv_length ((char **)items) : 0);
}

/* A key we print commented out: unset, or withheld */
static void
note_unset (GString *notes, const char *group, const char *key, const char *why)
{
  g_string_append_printf (notes, "# [%s] %s: %s\n", group, key, why);
}

static void
describe (GKeyFile *file, const char *group, const char *key)
{
  g_autofree char *comment = g_strdup_printf (" %s", herald_config_describe_key (group, key));

  g_key_file_set_comment (file, group, key, comment, NULL);
}

/* The keys that have no value: printed as comments at the end of their group */
typedef struct
{
  GString *notes[8];
} Notes;

static GString *
notes_for (Notes *notes, const char *group)
{
  for (guint i = 0; herald_config_known_group (i) != NULL && i < G_N_ELEMENTS (notes->notes); i++)
    if (strcmp (herald_config_known_group (i), group) == 0)
      {
        if (notes->notes[i] == NULL)
          notes->notes[i] = g_string_new (NULL);
        return notes->notes[i];
      }
  g_assert_not_reached ();
}

static void
print_key (HeraldConfig *self, GKeyFile *file, Notes *notes, const char *group, const char *key)
{
  g_autofree char *text = NULL;
  const char *path = NULL;
  const char *string = NULL;
  gboolean present = TRUE;
  guint number;
  const char *blurb;
  gsize before = notes_for (notes, group)->len;

  if (strcmp (group, "limits") == 0 && herald_config_get_limit_by_key (self, key, &number, &blurb))
    g_key_file_set_uint64 (file, group, key, number);
  else if (strcmp (group, "server") == 0 && strcmp (key, "listen") == 0)
    {
      GPtrArray *listen = herald_config_get_listen (self);
      g_autoptr (GStrvBuilder) builder = g_strv_builder_new ();
      g_auto (GStrv) items = NULL;

      for (guint i = 0; i < listen->len; i++)
        {
          g_autofree char *one = herald_listen_address_to_string (listen->pdata[i]);

          g_strv_builder_add (builder, one);
        }
      items = g_strv_builder_end (builder);
      set_list (file, group, key, (const char *const *)items);
    }
  else if (strcmp (key, "tls-certificate") == 0)
    present = (string = herald_config_get_tls_certificate (self)) != NULL;
  else if (strcmp (key, "tls-key") == 0)
    present = (string = herald_config_get_tls_key (self)) != NULL;
  else if (strcmp (key, "allowed-origins") == 0)
    {
      present = herald_config_get_allowed_origins (self) != NULL;
      if (present)
        set_list (file, group, key, herald_config_get_allowed_origins (self));
    }
  else if (strcmp (key, "compression") == 0)
    g_key_file_set_boolean (file, group, key, herald_config_get_compression (self));
  else if (strcmp (key, "io-uring") == 0)
    g_key_file_set_boolean (file, group, key, herald_config_get_io_uring (self));
  else if (strcmp (key, "metrics") == 0)
    g_key_file_set_boolean (file, group, key, herald_config_get_metrics (self));
  else if (strcmp (key, "admin-page") == 0)
    g_key_file_set_boolean (file, group, key, herald_config_get_admin_page (self));
  else if (strcmp (key, "workers") == 0)
    g_key_file_set_uint64 (file, group, key, herald_config_get_workers_setting (self));
  else if (strcmp (key, "drain-seconds") == 0)
    g_key_file_set_uint64 (file, group, key, herald_config_get_drain_seconds (self));
  else if (strcmp (key, "jwt-secret") == 0 || strcmp (key, "jwt-secret-file") == 0)
    {
      HeraldConfigSource source = herald_config_get_jwt_secret_source (self, &path);
      gboolean is_file_key = strcmp (key, "jwt-secret-file") == 0;

      present = FALSE;
      if (source == HERALD_CONFIG_SOURCE_ENV && !is_file_key)
        note_unset (notes_for (notes, group), group, key,
                    _ ("from HERALD_JWT_SECRET in the environment (not printed)"));
      else if (source == HERALD_CONFIG_SOURCE_VALUE && !is_file_key)
        {
          GBytes *secret = herald_config_get_jwt_secret (self);

          text = g_strndup (g_bytes_get_data (secret, NULL), g_bytes_get_size (secret));
          present = TRUE;
          string = text;
        }
      else if (source == HERALD_CONFIG_SOURCE_FILE && is_file_key)
        {
          present = TRUE;
          string = path;
        }
      else
        note_unset (notes_for (notes, group), group, key, _ ("unset"));
    }
  else if (strcmp (key, "jwt-public-key-file") == 0)
    present = (string = herald_config_get_jwt_public_key_file (self)) != NULL;
  else if (strcmp (key, "jwt-algorithm") == 0 && herald_config_get_jwks_url (self) != NULL
           && !herald_config_get_jwt_algorithm_set (self))
    {
      present = FALSE;
      note_unset (notes_for (notes, group), group, key,
                  _ ("unset: each key of jwks-url decides its algorithm"));
    }
  else if (strcmp (key, "jwt-algorithm") == 0)
    {
      HeraldJwtAlg alg = herald_config_get_jwt_algorithm (self);

      string = alg == HERALD_JWT_ALG_HS256   ? "HS256"
               : alg == HERALD_JWT_ALG_RS256 ? "RS256"
               : alg == HERALD_JWT_ALG_ES256 ? "ES256"
                                             : "EdDSA";
    }
  else if (strcmp (key, "jwks-url") == 0)
    present = (string = herald_config_get_jwks_url (self)) != NULL;
  else if (strcmp (key, "jwks-refresh") == 0)
    g_key_file_set_uint64 (file, group, key, herald_config_get_jwks_refresh (self));
  else if (strcmp (key, "issuer") == 0)
    present = (string = herald_config_get_jwt_issuer (self)) != NULL;
  else if (strcmp (key, "audience") == 0)
    present = (string = herald_config_get_jwt_audience (self)) != NULL;
  else if (strcmp (key, "leeway") == 0)
    g_key_file_set_uint64 (file, group, key, herald_config_get_leeway (self));
  else if (strcmp (key, "anonymous") == 0)
    {
      gboolean value;

      present = herald_config_get_anonymous_setting (self, &value);
      if (present)
        g_key_file_set_boolean (file, group, key, value);
      else
        note_unset (notes_for (notes, group), group, key,
                    herald_config_get_anonymous (self)
                        ? _ ("unset: true, because no token key is configured")
                        : _ ("unset: false, because a token key is configured"));
    }
  else if (strcmp (key, "anonymous-channels") == 0)
    set_list (file, group, key, herald_config_get_anonymous_channels (self));
  else if (strcmp (key, "anonymous-publish") == 0)
    set_list (file, group, key, herald_config_get_anonymous_publish (self));
  else if (strcmp (group, "api") == 0)
    {
      HeraldConfigSource source = herald_config_get_api_key_source (self, &path);
      gboolean is_file_key = strcmp (key, "key-file") == 0;

      present = FALSE;
      if (source == HERALD_CONFIG_SOURCE_ENV && !is_file_key)
        note_unset (notes_for (notes, group), group, key,
                    _ ("from HERALD_API_KEY in the environment (not printed)"));
      else if (source == HERALD_CONFIG_SOURCE_VALUE && !is_file_key)
        present = (string = herald_config_get_api_key (self)) != NULL;
      else if (source == HERALD_CONFIG_SOURCE_FILE && is_file_key)
        present = (string = path) != NULL;
      else
        note_unset (notes_for (notes, group), group, key,
                    is_file_key ? _ ("unset") : _ ("unset: the HTTP API is disabled"));
    }
  else if (strcmp (group, "history") == 0)
    g_key_file_set_uint64 (file, group, key,
                           strcmp (key, "size") == 0 ? herald_config_get_history_size (self)
                                                     : herald_config_get_history_ttl (self));
  else if (strcmp (group, "redis") == 0 && strcmp (key, "url") == 0)
    {
      const char *url = herald_config_get_redis_url (self);
      g_autoptr (GUri) uri = url != NULL ? g_uri_parse (url, G_URI_FLAGS_HAS_PASSWORD, NULL) : NULL;

      present = FALSE;
      if (url == NULL && herald_config_get_redis_mode (self) != HERALD_REDIS_MODE_NONE)
        note_unset (notes_for (notes, group), group, key, _ ("unset"));
      else if (url == NULL)
        note_unset (notes_for (notes, group), group, key, _ ("unset: one node, in-process engine"));
      else if (herald_config_get_redis_url_from_env (self)
               && (uri == NULL || g_uri_get_password (uri) != NULL))
        note_unset (notes_for (notes, group), group, key,
                    _ ("from REDIS_URL in the environment, with a password (not printed)"));
      else
        present = (string = url) != NULL;
    }
  else if (strcmp (group, "redis") == 0 && strcmp (key, "password") == 0)
    {
      present = FALSE;
      note_unset (notes_for (notes, group), group, key,
                  herald_config_get_redis_password (self) != NULL ? _ ("set (not printed)")
                                                                  : _ ("unset"));
    }
  else if (strcmp (group, "proxy") == 0 && g_str_has_suffix (key, "-url"))
    {
      present = FALSE;
      for (guint i = 0; i < HERALD_N_HOOKS; i++)
        if (strncmp (key, herald_hook_name (i), strlen (key) - 4) == 0
            && strlen (herald_hook_name (i)) == strlen (key) - 4)
          present = (string = herald_config_get_proxy_url (self, i)) != NULL;
    }
  else if (strcmp (group, "proxy") == 0 && strcmp (key, "timeout") == 0)
    {
      guint ms = herald_config_get_proxy_timeout_ms (self);

      text = g_strdup_printf ("%u.%03u", ms / 1000, ms % 1000);
      /* 1.500 → 1.5, 2.000 → 2 */
      for (gsize end = strlen (text); text[end - 1] == '0' || text[end - 1] == '.'; end--)
        {
          gboolean dot = text[end - 1] == '.';

          text[end - 1] = '\0';
          if (dot)
            break;
        }
      string = text;
    }
  else if (strcmp (group, "proxy") == 0 && strcmp (key, "forward-headers") == 0)
    set_list (file, group, key, herald_config_get_proxy_forward_headers (self));
  else if (strcmp (group, "proxy") == 0 && strcmp (key, "max-in-flight") == 0)
    g_key_file_set_uint64 (file, group, key, herald_config_get_proxy_max_in_flight (self));
  else if (strcmp (group, "redis") == 0 && strcmp (key, "sentinel-master") == 0)
    present = (string = herald_config_get_redis_sentinel_master (self)) != NULL;
  else if (strcmp (group, "redis") == 0)
    {
      HeraldRedisMode mode = herald_config_get_redis_mode (self);
      gboolean selected = (mode == HERALD_REDIS_MODE_SHARDS && strcmp (key, "shards") == 0)
                          || (mode == HERALD_REDIS_MODE_SENTINELS && strcmp (key, "sentinels") == 0)
                          || (mode == HERALD_REDIS_MODE_CLUSTER && strcmp (key, "cluster") == 0);

      const char *const *servers = herald_config_get_redis_servers (self);

      present = selected;
      for (gsize i = 0; selected && mode == HERALD_REDIS_MODE_SHARDS && servers[i] != NULL; i++)
        {
          g_autoptr (GUri) uri = g_uri_parse (servers[i], G_URI_FLAGS_HAS_PASSWORD, NULL);

          if (uri == NULL || g_uri_get_password (uri) != NULL)
            present = FALSE;
        }
      if (present)
        set_list (file, group, key, servers);
      else if (selected)
        note_unset (notes_for (notes, group), group, key, _ ("set, with a password (not printed)"));
    }
  else
    {
      note_unset (notes_for (notes, group), group, key, _ ("(cannot be printed)"));
      present = FALSE;
    }

  if (string != NULL && present)
    g_key_file_set_string (file, group, key, string);
  if (present)
    describe (file, group, key);
  else if (before == notes_for (notes, group)->len)
    note_unset (notes_for (notes, group), group, key, _ ("unset"));
}

static void
print_ns_key (GString *out, const char *key, const char *value)
{
  g_string_append_printf (out, "# %s\n%s=%s\n", herald_config_describe_key ("namespace.", key), key,
                          value);
}

/* Values are numbers, booleans and keywords, and names are checked: nothing to escape */
static void
print_namespace (GString *out, const HeraldNamespace *ns)
{
  char number[32];

  g_string_append_printf (out, "\n[%s%s]\n", HERALD_NAMESPACE_GROUP_PREFIX, ns->name);
  g_snprintf (number, sizeof number, "%u", ns->history_size);
  print_ns_key (out, "history-size", number);
  g_snprintf (number, sizeof number, "%u", ns->history_ttl);
  print_ns_key (out, "history-ttl", number);
  print_ns_key (out, "presence", ns->presence ? "true" : "false");
  print_ns_key (out, "join-leave", ns->join_leave ? "true" : "false");
  print_ns_key (out, "publish", herald_ns_publish_to_string (ns->publish));
  print_ns_key (out, "subscribe", herald_ns_subscribe_to_string (ns->subscribe));
  print_ns_key (out, "publish-proxy", ns->publish_proxy ? "true" : "false");
  print_ns_key (out, "conflate", ns->conflate ? "true" : "false");
}

/**
 * herald_config_print:
 * @self: a loaded (and validated) #HeraldConfig
 *
 * Returns: (transfer full): the effective configuration as key file text
 */
char *
herald_config_print (HeraldConfig *self)
{
  g_autoptr (GKeyFile) file = g_key_file_new ();
  g_autoptr (GString) out = g_string_new (NULL);
  Notes notes = { { NULL } };
  g_autofree char *data = NULL;
  const char *path;

  g_return_val_if_fail (HERALD_IS_CONFIG (self), NULL);

  path = herald_config_get_path (self);
  for (guint g = 0; herald_config_known_group (g) != NULL; g++)
    {
      const char *group = herald_config_known_group (g);
      const char *const *keys = herald_config_known_keys (group);

      for (guint k = 0; keys[k] != NULL; k++)
        print_key (self, file, &notes, group, keys[k]);
    }

  g_string_append_printf (out,
                          _ ("# Effective Herald configuration (heraldd --print-config)\n"
                             "# from: %s, the environment, the command line and defaults\n"),
                          path != NULL ? path : _ ("no file"));
  /* Each group, then the keys it leaves unset as comments */
  for (guint g = 0; herald_config_known_group (g) != NULL; g++)
    {
      const char *group = herald_config_known_group (g);
      g_auto (GStrv) keys = g_key_file_get_keys (file, group, NULL, NULL);

      g_string_append_printf (out, "\n[%s]\n", group);
      for (guint k = 0; keys != NULL && keys[k] != NULL; k++)
        {
          g_autofree char *comment = g_key_file_get_comment (file, group, keys[k], NULL);
          g_autofree char *value = g_key_file_get_value (file, group, keys[k], NULL);

          if (comment != NULL)
            g_string_append_printf (out, "#%s\n", comment);
          g_string_append_printf (out, "%s=%s\n", keys[k], value);
        }
      if (g < G_N_ELEMENTS (notes.notes) && notes.notes[g] != NULL)
        {
          g_string_append (out, notes.notes[g]->str);
          g_string_free (notes.notes[g], TRUE);
        }
    }
  {
    const HeraldNamespaceSet *namespaces = herald_config_get_namespaces (self);
    g_autoptr (GPtrArray) list = herald_namespace_set_list (namespaces);

    print_namespace (out, herald_namespace_set_get_default ((HeraldNamespaceSet *)namespaces));
    for (guint i = 0; i < list->len; i++)
      print_namespace (out, g_ptr_array_index (list, i));
  }
  return g_string_free (g_steal_pointer (&out), FALSE);
}
