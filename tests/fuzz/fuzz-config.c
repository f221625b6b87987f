/* fuzz-config.c: the configuration parser (herald_config_load_data) and
 * validation. Unknown keys make GLib warnings, which are not failures here.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdint.h>
#include <string.h>

#include "herald-config.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static GLogWriterOutput
quiet_writer (GLogLevelFlags level, const GLogField *fields, gsize n_fields, gpointer user_data)
{
  return G_LOG_WRITER_HANDLED;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  static gboolean initialised;
  g_autoptr (HeraldConfig) config = NULL;
  g_autoptr (GError) error = NULL;

  if (!initialised)
    {
      /* Warnings about unknown keys are expected; criticals still abort. */
      g_log_set_writer_func (quiet_writer, NULL, NULL);
      initialised = TRUE;
    }
  config = herald_config_new ();
  if (herald_config_load_data (config, (const char *)data, size, "fuzz.conf", &error))
    {
      g_assert_no_error (error);
      if (!herald_config_validate (config, &error))
        g_assert_nonnull (error);
    }
  else
    g_assert_nonnull (error);
  return 0;
}
