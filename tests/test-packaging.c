/* test-packaging.c: the Flatpak manifest flatpak/io.github.herald.Herald.json
 * is valid JSON and describes Herald as docs and the D-Bus name expect.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <json-glib/json-glib.h>
#include <string.h>

typedef struct
{
  JsonParser *parser;
  JsonObject *manifest;
  char *flatpak_dir;
} Fixture;

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *path = NULL;
  JsonNode *root;

  f->flatpak_dir = g_test_build_filename (G_TEST_DIST, "..", "flatpak", NULL);
  path = g_build_filename (f->flatpak_dir, "io.github.herald.Herald.json", NULL);
  f->parser = json_parser_new ();
  json_parser_load_from_file (f->parser, path, &error);
  g_assert_no_error (error);
  root = json_parser_get_root (f->parser);
  g_assert_nonnull (root);
  g_assert_true (JSON_NODE_HOLDS_OBJECT (root));
  f->manifest = json_node_get_object (root);
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  g_clear_object (&f->parser);
  g_free (f->flatpak_dir);
}

static const char *
get_string (JsonObject *object, const char *member)
{
  JsonNode *node = json_object_get_member (object, member);

  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node)
      || json_node_get_value_type (node) != G_TYPE_STRING)
    g_error ("member “%s” missing or not a string", member);
  return json_node_get_string (node);
}

static JsonArray *
get_array (JsonObject *object, const char *member)
{
  JsonNode *node = json_object_get_member (object, member);

  if (node == NULL || !JSON_NODE_HOLDS_ARRAY (node))
    g_error ("member “%s” missing or not an array", member);
  return json_node_get_array (node);
}

static gboolean
array_has_string (JsonArray *array, const char *text)
{
  for (guint i = 0; i < json_array_get_length (array); i++)
    {
      JsonNode *node = json_array_get_element (array, i);

      if (JSON_NODE_HOLDS_VALUE (node) && json_node_get_value_type (node) == G_TYPE_STRING
          && g_str_equal (json_node_get_string (node), text))
        return TRUE;
    }
  return FALSE;
}

static JsonObject *
get_module (Fixture *f, guint index)
{
  JsonArray *modules = get_array (f->manifest, "modules");

  g_assert_cmpuint (index, <, json_array_get_length (modules));
  return json_array_get_object_element (modules, index);
}

static void
test_app (Fixture *f, gconstpointer data)
{
  g_assert_cmpstr (get_string (f->manifest, "app-id"), ==, "io.github.herald.Herald");
  g_assert_cmpstr (get_string (f->manifest, "runtime"), ==, "org.gnome.Platform");
  g_assert_cmpstr (get_string (f->manifest, "runtime-version"), ==, "45");
  g_assert_cmpstr (get_string (f->manifest, "sdk"), ==, "org.gnome.Sdk");
  g_assert_cmpstr (get_string (f->manifest, "command"), ==, "heraldd");
}

static void
test_finish_args (Fixture *f, gconstpointer data)
{
  JsonArray *args = get_array (f->manifest, "finish-args");

  g_assert_true (array_has_string (args, "--share=network"));
  g_assert_true (array_has_string (args, "--socket=session-bus"));
  g_assert_true (array_has_string (args, "--own-name=io.github.herald.Herald1"));
  /* Nothing beyond what a push server needs */
  g_assert_cmpuint (json_array_get_length (args), ==, 3);
}

static void
test_hiredis_module (Fixture *f, gconstpointer data)
{
  JsonObject *module = get_module (f, 0);
  JsonArray *sources = get_array (module, "sources");
  JsonObject *source;
  const char *sha256;

  g_assert_cmpstr (get_string (module, "name"), ==, "hiredis");
  g_assert_cmpuint (json_array_get_length (sources), ==, 1);
  source = json_array_get_object_element (sources, 0);
  g_assert_cmpstr (get_string (source, "type"), ==, "archive");
  /* Pinned: a release tarball, never a branch */
  g_assert_cmpstr (get_string (source, "url"), ==,
                   "https://github.com/redis/hiredis/archive/v0.14.1.tar.gz");
  sha256 = get_string (source, "sha256");
  g_assert_cmpuint (strlen (sha256), ==, 64);
  for (const char *p = sha256; *p; p++)
    g_assert_true (g_ascii_isxdigit (*p) && !g_ascii_isupper (*p));
}

static void
test_herald_module (Fixture *f, gconstpointer data)
{
  JsonArray *modules = get_array (f->manifest, "modules");
  JsonObject *module = get_module (f, 1);
  JsonArray *sources = get_array (module, "sources");
  JsonObject *source;
  g_autofree char *dir = NULL;
  g_autofree char *meson_build = NULL;
  g_autofree char *contents = NULL;

  /* Herald last: it links against the modules before it */
  g_assert_cmpuint (json_array_get_length (modules), ==, 2);
  g_assert_cmpstr (get_string (module, "name"), ==, "herald");
  g_assert_cmpstr (get_string (module, "buildsystem"), ==, "meson");
  /* heraldd goes to sbindir, but flatpak looks for "command" in /app/bin */
  g_assert_true (array_has_string (get_array (module, "config-opts"), "--sbindir=bin"));

  /* Every -Dname=… must be one of meson_options.txt's options */
  {
    JsonArray *opts = get_array (module, "config-opts");
    g_autofree char *options_path
        = g_test_build_filename (G_TEST_DIST, "..", "meson_options.txt", NULL);
    g_autofree char *options = NULL;

    g_assert_true (g_file_get_contents (options_path, &options, NULL, NULL));
    for (guint i = 0; i < json_array_get_length (opts); i++)
      {
        const char *opt = json_array_get_string_element (opts, i);
        g_autofree char *name = NULL;
        g_autofree char *declared = NULL;

        if (!g_str_has_prefix (opt, "-D"))
          continue;
        name = g_strndup (opt + 2, strcspn (opt + 2, "="));
        declared = g_strdup_printf ("option('%s'", name);
        if (strstr (options, declared) == NULL)
          g_error ("config-opts has %s, but meson_options.txt has no option “%s”", opt, name);
      }
  }

  g_assert_cmpuint (json_array_get_length (sources), ==, 1);
  source = json_array_get_object_element (sources, 0);
  g_assert_cmpstr (get_string (source, "type"), ==, "dir");
  /* The path is relative to the manifest and must name this source tree */
  dir = g_build_filename (f->flatpak_dir, get_string (source, "path"), NULL);
  meson_build = g_build_filename (dir, "meson.build", NULL);
  g_assert_true (g_file_get_contents (meson_build, &contents, NULL, NULL));
  g_assert_true (g_str_has_prefix (contents, "project('herald'"));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add ("/packaging/flatpak/app", Fixture, NULL, fixture_setup, test_app,
              fixture_teardown);
  g_test_add ("/packaging/flatpak/finish-args", Fixture, NULL, fixture_setup, test_finish_args,
              fixture_teardown);
  g_test_add ("/packaging/flatpak/hiredis", Fixture, NULL, fixture_setup, test_hiredis_module,
              fixture_teardown);
  g_test_add ("/packaging/flatpak/herald", Fixture, NULL, fixture_setup, test_herald_module,
              fixture_teardown);
  return g_test_run ();
}
