/* fuzz-sse-id.c: SSE resume ids (Last-Event-ID, herald_sse_id_parse).
 * Whatever parses must format back to the same string, and every formatted
 * id must parse.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdint.h>
#include <string.h>

#include "herald-message.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  g_autofree char *id = g_strndup ((const char *)data, size);
  g_autofree char *epoch = NULL;
  guint64 seq = 0;

  if (herald_sse_id_parse (id, &epoch, &seq))
    {
      g_autofree char *again = herald_sse_id_format (epoch, seq);
      g_autofree char *epoch2 = NULL;
      guint64 seq2 = 0;

      g_assert_true (herald_sse_id_parse (again, &epoch2, &seq2));
      g_assert_cmpstr (epoch, ==, epoch2);
      g_assert_cmpuint (seq, ==, seq2);
    }
  return 0;
}
