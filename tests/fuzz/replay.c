/* replay.c: runs a fuzz target's LLVMFuzzerTestOneInput on every file of its
 * corpus directories (arguments), without libFuzzer: the committed corpus is
 * a regression test in the normal suite. Prints TAP.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static void
collect (const char *path, GPtrArray *files)
{
  g_autoptr (GDir) dir = NULL;
  const char *name;

  if (!g_file_test (path, G_FILE_TEST_IS_DIR))
    {
      g_ptr_array_add (files, g_strdup (path));
      return;
    }
  dir = g_dir_open (path, 0, NULL);
  while (dir && (name = g_dir_read_name (dir)))
      g_ptr_array_add (files, g_build_filename (path, name, NULL));
}

static int
compare_paths (gconstpointer a, gconstpointer b)
{
  return g_strcmp0 (*(const char *const *)a, *(const char *const *)b);
}

int
main (int argc, char **argv)
{
  g_autoptr (GPtrArray) files = g_ptr_array_new_with_free_func (g_free);

  for (int i = 1; i < argc; i++)
    if (g_strcmp0 (argv[i], "--tap") != 0)
      collect (argv[i], files);
  g_ptr_array_sort (files, compare_paths);
  /* An empty corpus is a packaging mistake, not a pass. */
  g_assert_cmpuint (files->len, >, 0);
  printf ("1..%u\n", files->len);
  for (guint i = 0; i < files->len; i++)
    {
      const char *path = g_ptr_array_index (files, i);
      g_autofree char *contents = NULL;
      gsize len = 0;
      g_autoptr (GError) error = NULL;

      if (!g_file_get_contents (path, &contents, &len, &error))
        {
          printf ("not ok %u %s # %s\n", i + 1, path, error->message);
          return 1;
        }
      fflush (stdout);
      {
        /* An exact-size copy, so sanitizers see reads past the end. */
        g_autofree guint8 *exact = g_malloc (MAX (len, 1));

        memcpy (exact, contents, len);
        LLVMFuzzerTestOneInput (exact, len);
      }
      printf ("ok %u %s\n", i + 1, path);
    }
  return 0;
}
