/* herald-keyfile.c: strict reading of key file values (see herald-keyfile.h).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>
#include <glib/gi18n.h>

#include "herald-error.h"
#include "herald-keyfile.h"

/* Beyond this many lines we don't search for the line of a syntax error */
#define MAX_LINES_FOR_ERROR_SEARCH 5000

void
herald_keyfile_set_error (GError **error, const HeraldKeyfile *parser, const char *group,
                          const char *key, const char *format, ...)
{
  g_autofree char *reason = NULL;
  va_list args;

  va_start (args, format);
  reason = g_strdup_vprintf (format, args);
  va_end (args);
  g_set_error (error, HERALD_CONFIG_ERROR, HERALD_CONFIG_ERROR_INVALID, "%s: [%s] %s: %s",
               parser->origin, group, key, reason);
}

void
herald_keyfile_warn_unknown (const HeraldKeyfile *parser, const HeraldKeyfileGroup *known_groups,
                             gsize n_groups, const char *only_group)
{
  g_auto (GStrv) groups = g_key_file_get_groups (parser->key_file, NULL);

  for (gsize g = 0; groups[g] != NULL; g++)
    {
      const char *const *keys = NULL;
      g_auto (GStrv) present = NULL;

      if (only_group != NULL && strcmp (groups[g], only_group) != 0)
        continue;
      for (gsize i = 0; i < n_groups; i++)
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
char *
herald_keyfile_get_raw (const HeraldKeyfile *parser, const char *group, const char *key)
{
  char *value;

  if (!g_key_file_has_key (parser->key_file, group, key, NULL))
    return NULL;
  value = g_key_file_get_value (parser->key_file, group, key, NULL);
  return value != NULL ? g_strstrip (value) : NULL;
}

gboolean
herald_keyfile_uint (const HeraldKeyfile *parser, const char *group, const char *key, guint min,
                     guint max, guint *out, GError **error)
{
  g_autofree char *raw = herald_keyfile_get_raw (parser, group, key);
  guint64 value;

  if (raw == NULL)
    return TRUE;
  /* Strict: no sign, no trailing garbage, no overflow (unlike g_key_file_get_integer) */
  if (!g_ascii_string_to_unsigned (raw, 10, min, max, &value, NULL))
    {
      herald_keyfile_set_error (error, parser, group, key,
                                _ ("expected an integer between %u and %u, got “%s”"), min, max,
                                raw);
      return FALSE;
    }
  *out = (guint)value;
  return TRUE;
}

gboolean
herald_keyfile_bool (const HeraldKeyfile *parser, const char *group, const char *key, gboolean *out,
                     gboolean *present, GError **error)
{
  g_autofree char *raw = herald_keyfile_get_raw (parser, group, key);

  if (raw == NULL)
    return TRUE;
  /* The same spellings GKeyFile accepts, but tolerant of trailing blanks */
  if (strcmp (raw, "true") == 0 || strcmp (raw, "1") == 0)
    *out = TRUE;
  else if (strcmp (raw, "false") == 0 || strcmp (raw, "0") == 0)
    *out = FALSE;
  else
    {
      herald_keyfile_set_error (error, parser, group, key, _ ("expected true or false, got “%s”"),
                                raw);
      return FALSE;
    }
  if (present != NULL)
    *present = TRUE;
  return TRUE;
}

/* A string value; an empty value counts as unset (like an empty env var). */
gboolean
herald_keyfile_string (const HeraldKeyfile *parser, const char *group, const char *key, char **out,
                       GError **error)
{
  g_autoptr (GError) local = NULL;
  g_autofree char *value = NULL;

  if (!g_key_file_has_key (parser->key_file, group, key, NULL))
    return TRUE;
  value = g_key_file_get_string (parser->key_file, group, key, &local);
  if (value == NULL)
    {
      herald_keyfile_set_error (error, parser, group, key, "%s", local->message);
      return FALSE;
    }
  g_strstrip (value);
  if (*value == '\0')
    return TRUE;
  g_free (*out);
  *out = g_steal_pointer (&value);
  return TRUE;
}

gboolean
herald_keyfile_path (const HeraldKeyfile *parser, const char *group, const char *key, char **out,
                     GError **error)
{
  g_autofree char *value = NULL;

  if (!herald_keyfile_string (parser, group, key, &value, error))
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
gboolean
herald_keyfile_list (const HeraldKeyfile *parser, const char *group, const char *key, char ***out,
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
      herald_keyfile_set_error (error, parser, group, key, "%s", local->message);
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

/* Reads a file holding a credential; trailing whitespace and newlines are
 * removed because editors and `echo` add them. */
char *
herald_keyfile_secret_file (const HeraldKeyfile *parser, const char *group, const char *key,
                            const char *path, gsize *length, GError **error)
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
      herald_keyfile_set_error (error, parser, group, key, _ ("file “%s” is empty"), path);
      return NULL;
    }
  *length = len;
  return g_steal_pointer (&contents);
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
herald_keyfile_load (GKeyFile *key_file, const char *data, gsize length, const char *origin,
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
