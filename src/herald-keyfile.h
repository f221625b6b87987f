/* herald-keyfile.h: strict reading of GKeyFile values, with errors that
 * name the file, group and key (HERALD_CONFIG_ERROR).
 *
 * Every reader leaves *out untouched and returns TRUE when the key is
 * absent, and returns FALSE with @error set on a bad value.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct
{
  GKeyFile *key_file;
  const char *origin;  /* names the source in messages */
  const char *basedir; /* relative paths are resolved against it; NULL = as given */
} HeraldKeyfile;

/* A group and the keys it may have (NULL-terminated). */
typedef struct
{
  const char *group;
  const char *const *keys;
} HeraldKeyfileGroup;

/* Loads @data into @key_file; a syntax error names the line where it can. */
gboolean herald_keyfile_load (GKeyFile *key_file, const char *data, gsize length,
                              const char *origin, GError **error);
/* Warns about groups and keys not in @known_groups (only in @only_group
 * when not NULL). */
void herald_keyfile_warn_unknown (const HeraldKeyfile *parser,
                                  const HeraldKeyfileGroup *known_groups, gsize n_groups,
                                  const char *only_group);

/* "ORIGIN: [GROUP] KEY: reason" (HERALD_CONFIG_ERROR_INVALID). */
void herald_keyfile_set_error (GError **error, const HeraldKeyfile *parser, const char *group,
                               const char *key, const char *format, ...) G_GNUC_PRINTF (5, 6);

/* The raw value with surrounding whitespace removed, or NULL when absent */
char *herald_keyfile_get_raw (const HeraldKeyfile *parser, const char *group, const char *key);
/* A decimal integer in [@min, @max]: no sign, no trailing garbage, no overflow. */
gboolean herald_keyfile_uint (const HeraldKeyfile *parser, const char *group, const char *key,
                              guint min, guint max, guint *out, GError **error);
/* true/false/1/0; sets *@present (when not NULL) when the key exists. */
gboolean herald_keyfile_bool (const HeraldKeyfile *parser, const char *group, const char *key,
                              gboolean *out, gboolean *present, GError **error);
/* A string; an empty value counts as unset (like an empty env var). */
gboolean herald_keyfile_string (const HeraldKeyfile *parser, const char *group, const char *key,
                                char **out, GError **error);
/* A file name, relative ones taken relative to the parser's basedir. */
gboolean herald_keyfile_path (const HeraldKeyfile *parser, const char *group, const char *key,
                              char **out, GError **error);
/* A list with blanks around items removed and empty items dropped; sets
 * *@present (when not NULL) when the key exists. */
gboolean herald_keyfile_list (const HeraldKeyfile *parser, const char *group, const char *key,
                              char ***out, gboolean *present, GError **error);
/* The contents of the credential file @path named by [@group] @key,
 * trailing whitespace removed (editors and `echo` add it); NULL with
 * @error set when it is unreadable (HERALD_CONFIG_ERROR_IO) or empty. */
char *herald_keyfile_secret_file (const HeraldKeyfile *parser, const char *group, const char *key,
                                  const char *path, gsize *length, GError **error);

G_END_DECLS
