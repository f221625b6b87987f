/* fuzz-json.c: bodies of the HTTP API and of the D-Bus Publish call.
 *
 * herald-http-api.c reads its request bodies inside libsoup handlers (not
 * separable), and every "data" it accepts goes through herald_json_normalize(),
 * which is what this fuzzes. Normalising is idempotent: the output parses
 * and normalises to itself.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdint.h>
#include <string.h>

#include "herald-error.h"
#include "herald-json.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *out = herald_json_normalize ((const char *)data, size, &error);

  if (out == NULL)
    {
      g_assert_nonnull (error);
      return 0;
    }
  else
    {
      g_autoptr (GError) error2 = NULL;
      g_autofree char *again = herald_json_normalize (out, -1, &error2);

      g_assert_no_error (error2);
      g_assert_cmpstr (out, ==, again);
    }
  return 0;
}
