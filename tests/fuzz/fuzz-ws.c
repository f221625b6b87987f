/* fuzz-ws.c: the WebSocket frame parser (herald_ws_parser_feed).
 *
 * The first byte of the input seeds a chunking of the rest, the way bytes
 * arrive from a socket: the parser is fed chunk by chunk, keeping the
 * unconsumed tail as the connection does. The same input is also fed in one
 * piece, and both runs must report the same events and the same outcome.
 * Built twice: without and with permessage-deflate (FUZZ_WS_DEFLATE).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdint.h>
#include <string.h>

#include "herald-ws.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

typedef struct
{
  guint64 hash;
  guint n_events;
} Trace;

static void
trace_mix (Trace *t, const void *bytes, gsize len)
{
  const guint8 *p = bytes;

  for (gsize i = 0; i < len; i++)
    t->hash = (t->hash ^ p[i]) * 1099511628211ull;
}

static gboolean
on_event (const HeraldWsEvent *event, gpointer user_data)
{
  Trace *t = user_data;
  guint32 head[4] = { event->type, event->opcode, event->close_code, (guint32)event->length };

  t->n_events++;
  trace_mix (t, head, sizeof head);
  if (event->length)
    trace_mix (t, event->payload, event->length);
  if (event->type == HERALD_WS_EVENT_CLOSE)
    {
      g_assert_nonnull (event->close_reason);
      trace_mix (t, event->close_reason, strlen (event->close_reason));
    }
  if (event->type == HERALD_WS_EVENT_MESSAGE && event->opcode == HERALD_WS_OPCODE_TEXT)
    {
      /* U+0000 is valid in a text message; g_utf8_validate_len() stops at NUL. */
      g_autofree char *copy = g_malloc (event->length + 1);

      for (gsize i = 0; i < event->length; i++)
        copy[i] = event->payload[i] ? (char)event->payload[i] : ' ';
      g_assert_true (g_utf8_validate_len (copy, event->length, NULL));
    }
  return TRUE;
}

/* Feeds @data in chunks whose sizes come from @seed (0: one chunk). Returns
 * the close code on a violation, 0 otherwise. */
static guint16
run (const HeraldWsLimits *limits, const guint8 *data, gsize size, guint8 seed, Trace *trace,
     gsize *left)
{
  HeraldWsParser parser;
  g_autoptr (GByteArray) buf = g_byte_array_new ();
  guint32 state = seed * 2654435761u + 1;
  guint16 code = 0;
  gsize pos = 0;

  herald_ws_parser_init (&parser);
  while (pos < size)
    {
      gsize chunk = size - pos;
      const char *reason = NULL;
      gssize used;

      if (seed != 0)
        {
          state = state * 1103515245u + 12345u;
          chunk = MIN (chunk, 1 + (state >> 16) % 97);
        }
      g_byte_array_append (buf, data + pos, chunk);
      pos += chunk;
      used = herald_ws_parser_feed (&parser, limits, buf->data, buf->len, on_event, trace, &code,
                                    &reason);
      if (used < 0)
        {
          g_assert_nonnull (reason);
          g_assert_true (code >= 1000);
          break;
        }
      g_assert_cmpint (used, <=, buf->len);
      g_byte_array_remove_range (buf, 0, used);
    }
  *left = buf->len;
  herald_ws_parser_clear (&parser);
  return code;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  static HeraldWsInflater *inflater;
  HeraldWsLimits limits = {
    .max_frame_size = 16 * 1024,
    .max_message_size = 64 * 1024,
  };
  Trace chunked = { 14695981039346656037ull, 0 }, whole = { 14695981039346656037ull, 0 };
  guint16 code_chunked, code_whole;
  gsize left_chunked, left_whole;
  guint8 seed;

  if (size < 1)
    return 0;
#ifdef FUZZ_WS_DEFLATE
  if (inflater == NULL)
    inflater = herald_ws_inflater_new ();
  limits.deflate = TRUE;
  limits.inflater = inflater;
#else
  (void)inflater;
#endif
  seed = data[0];
  data++;
  size--;

  code_chunked = run (&limits, data, size, seed | 1, &chunked, &left_chunked);
  code_whole = run (&limits, data, size, 0, &whole, &left_whole);
  g_assert_cmpuint (code_chunked, ==, code_whole);
  g_assert_cmpuint (chunked.n_events, ==, whole.n_events);
  g_assert_true (chunked.hash == whole.hash);
  if (code_whole == 0)
    g_assert_cmpuint (left_chunked, ==, left_whole);
#ifdef FUZZ_WS_DEFLATE
  /* A bomb must not leave a huge buffer behind in the shared inflater. */
  g_assert_cmpuint (herald_ws_inflater_get_allocated (inflater), <=, 4 * limits.max_message_size);
#endif
  return 0;
}
