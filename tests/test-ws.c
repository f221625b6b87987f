/* test-ws.c: RFC 6455 / RFC 7692 framing and parsing.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>
#include <zlib.h>

#include "herald-ws.h"

#define FIN 0x80
#define RSV1 0x40
#define RSV2 0x20
#define RSV3 0x10

#define BASE_RESPONSE "permessage-deflate; server_no_context_takeover; client_no_context_takeover"

/* ------------------------------------------------------------------------ */
/* Client frame construction */

typedef enum
{
  LEN_MINIMAL,
  LEN_16, /* force the 16-bit length form */
  LEN_64, /* force the 64-bit length form */
} LenForm;

static guint mask_counter;

/* Appends a client frame: first byte @b0, masked with a changing key unless
 * @masked is FALSE. */
static void
append_frame_full (GByteArray *out, guint8 b0, const void *payload, gsize len, gboolean masked,
                   LenForm form)
{
  guint8 hdr[14];
  gsize n = 0;
  guint8 mask[4];
  const guint8 *src = payload;
  guint old_len;

  mask_counter++;
  mask[0] = 0x37 ^ mask_counter;
  mask[1] = 0xfa ^ (mask_counter >> 3);
  mask[2] = 0x21 + mask_counter;
  mask[3] = 0x3d ^ (mask_counter * 7);

  hdr[n++] = b0;
  if (form == LEN_MINIMAL && len < 126)
    {
      hdr[n++] = (masked ? 0x80 : 0) | (guint8)len;
    }
  else if (form != LEN_64 && len <= 0xffff)
    {
      hdr[n++] = (masked ? 0x80 : 0) | 126;
      hdr[n++] = (guint8)(len >> 8);
      hdr[n++] = (guint8)len;
    }
  else
    {
      hdr[n++] = (masked ? 0x80 : 0) | 127;
      for (guint i = 0; i < 8; i++)
        hdr[n++] = (guint8)((guint64)len >> (56 - 8 * i));
    }
  if (masked)
    {
      memcpy (hdr + n, mask, 4);
      n += 4;
    }
  g_byte_array_append (out, hdr, (guint)n);

  old_len = out->len;
  g_byte_array_set_size (out, old_len + (guint)len);
  for (gsize i = 0; i < len; i++)
    out->data[old_len + i] = src[i] ^ (masked ? mask[i & 3] : 0);
}

static void
append_frame (GByteArray *out, guint8 b0, const void *payload, gsize len)
{
  append_frame_full (out, b0, payload, len, TRUE, LEN_MINIMAL);
}

static void
append_str (GByteArray *out, guint8 b0, const char *s)
{
  append_frame (out, b0, s, strlen (s));
}

/* Turns a server frame (unmasked) into the frame a client would send. */
static void
append_as_client (GByteArray *out, GBytes *server_frame)
{
  gsize size;
  const guint8 *f = g_bytes_get_data (server_frame, &size);
  gsize hlen = 2;
  guint64 len = f[1] & 0x7f;

  g_assert_cmpuint (f[1] & 0x80, ==, 0);
  if (len == 126)
    hlen = 4;
  else if (len == 127)
    hlen = 10;
  /* Reuse our encoding of the length, re-encoded minimally by append_frame */
  append_frame (out, f[0], f + hlen, size - hlen);
}

/* ------------------------------------------------------------------------ */
/* Event recording */

typedef struct
{
  GString *log;        /* one line per event */
  GPtrArray *payloads; /* GBytes, one per event */
  GArray *types;
  GArray *codes;
  GPtrArray *reasons;
  guint stop_after; /* return FALSE after this many events (0: never) */
} Recorder;

static void
recorder_init (Recorder *rec)
{
  rec->log = g_string_new (NULL);
  rec->payloads = g_ptr_array_new_with_free_func ((GDestroyNotify)g_bytes_unref);
  rec->types = g_array_new (FALSE, FALSE, sizeof (guint));
  rec->codes = g_array_new (FALSE, FALSE, sizeof (guint16));
  rec->reasons = g_ptr_array_new_with_free_func (g_free);
  rec->stop_after = 0;
}

static void
recorder_clear (Recorder *rec)
{
  g_string_free (rec->log, TRUE);
  g_ptr_array_unref (rec->payloads);
  g_array_unref (rec->types);
  g_array_unref (rec->codes);
  g_ptr_array_unref (rec->reasons);
}

static gboolean
record_cb (const HeraldWsEvent *ev, gpointer user_data)
{
  Recorder *rec = user_data;
  g_autofree char *sum = NULL;
  guint type = ev->type;

  g_assert_true (ev->payload != NULL || ev->length == 0);
  if (ev->type == HERALD_WS_EVENT_MESSAGE)
    {
      g_assert_true (ev->opcode == HERALD_WS_OPCODE_TEXT || ev->opcode == HERALD_WS_OPCODE_BINARY);
      /* payloads are NUL-terminated beyond their length */
      g_assert_cmpint (ev->payload[ev->length], ==, 0);
    }
  sum = g_compute_checksum_for_data (G_CHECKSUM_SHA1, ev->payload ? ev->payload : (guint8 *)"",
                                     ev->length);
  g_string_append_printf (rec->log, "%u op=%u len=%" G_GSIZE_FORMAT " sum=%s", ev->type,
                          ev->type == HERALD_WS_EVENT_MESSAGE ? ev->opcode : 0, ev->length, sum);
  if (ev->type == HERALD_WS_EVENT_CLOSE)
    g_string_append_printf (rec->log, " code=%u reason=%s", ev->close_code, ev->close_reason);
  g_string_append_c (rec->log, '\n');

  g_ptr_array_add (rec->payloads, g_bytes_new (ev->payload, ev->length));
  g_array_append_val (rec->types, type);
  g_array_append_val (rec->codes, ev->close_code);
  g_ptr_array_add (rec->reasons, g_strdup (ev->close_reason));

  return rec->stop_after == 0 || rec->types->len < rec->stop_after;
}

static guint
rec_type (Recorder *rec, guint i)
{
  g_assert_cmpuint (i, <, rec->types->len);
  return g_array_index (rec->types, guint, i);
}

static void
assert_payload (Recorder *rec, guint i, const void *data, gsize len)
{
  GBytes *b;

  g_assert_cmpuint (i, <, rec->payloads->len);
  b = g_ptr_array_index (rec->payloads, i);
  g_assert_cmpmem (g_bytes_get_data (b, NULL), g_bytes_get_size (b), data, len);
}

static HeraldWsLimits
default_limits (void)
{
  HeraldWsLimits lim = { 0 };

  lim.max_frame_size = 1024 * 1024;
  lim.max_message_size = 1024 * 1024;
  return lim;
}

/* Feeds everything at once, from an exact-size copy so reads past the end
 * are caught by valgrind/ASan. */
static gssize
feed_all (HeraldWsParser *parser, const HeraldWsLimits *lim, GByteArray *data, Recorder *rec,
          guint16 *code, const char **reason)
{
  g_autofree guint8 *copy = g_memdup2 (data->data, data->len);

  return herald_ws_parser_feed (parser, lim, copy, data->len, record_cb, rec, code, reason);
}

/* Feeds @data in chunks of @chunk_size (0: random sizes from g_test_rand),
 * keeping the unconsumed tail the way a connection does. Returns -1 on error
 * or the number of unconsumed bytes left at the end. */
static gssize
feed_chunked (HeraldWsParser *parser, const HeraldWsLimits *lim, const guint8 *data, gsize len,
              gsize chunk_size, Recorder *rec, guint16 *code, const char **reason)
{
  g_autoptr (GByteArray) pending = g_byte_array_new ();
  gsize pos = 0;

  while (pos < len)
    {
      gsize n = chunk_size ? chunk_size : (gsize)g_test_rand_int_range (1, 64);
      g_autofree guint8 *copy = NULL;
      gssize consumed;

      n = MIN (n, len - pos);
      g_byte_array_append (pending, data + pos, (guint)n);
      pos += n;
      copy = g_memdup2 (pending->data, pending->len);
      consumed
          = herald_ws_parser_feed (parser, lim, copy, pending->len, record_cb, rec, code, reason);
      if (consumed < 0)
        return -1;
      g_assert_cmpint (consumed, <=, pending->len);
      g_byte_array_remove_range (pending, 0, (guint)consumed);
    }
  return pending->len;
}

/* Parses @data whole and expects a protocol error with @expected_code. */
static void
expect_error (const HeraldWsLimits *lim, GByteArray *data, guint16 expected_code)
{
  HeraldWsParser parser = { 0 };
  Recorder rec;
  guint16 code = 0;
  const char *reason = NULL;

  recorder_init (&rec);
  g_assert_cmpint (feed_all (&parser, lim, data, &rec, &code, &reason), ==, -1);
  g_assert_cmpuint (code, ==, expected_code);
  g_assert_nonnull (reason);
  herald_ws_parser_clear (&parser);
  recorder_clear (&rec);
}

static void
expect_error_default (GByteArray *data, guint16 expected_code)
{
  HeraldWsLimits lim = default_limits ();

  expect_error (&lim, data, expected_code);
}

/* ------------------------------------------------------------------------ */
/* Parser: valid input */

static void
test_parse_messages (void)
{
  HeraldWsLimits lim = default_limits ();
  HeraldWsParser parser;
  Recorder rec;
  g_autoptr (GByteArray) data = g_byte_array_new ();
  g_autofree guint8 *big = g_malloc (70000);
  guint16 code = 0;
  const char *reason = NULL;
  guint n_events = 0;

  herald_ws_parser_init (&parser);
  recorder_init (&rec);
  for (gsize i = 0; i < 70000; i++)
    big[i] = (guint8)(i * 31 + 7);

  /* Every length 0..40 covers every alignment of the 8-byte unmasking loop. */
  for (gsize len = 0; len <= 40; len++)
    append_frame (data, FIN | HERALD_WS_OPCODE_BINARY, big, len);
  append_frame (data, FIN | HERALD_WS_OPCODE_BINARY, big, 126);
  append_frame (data, FIN | HERALD_WS_OPCODE_BINARY, big, 70000);
  append_str (data, FIN | HERALD_WS_OPCODE_TEXT, "héllo");
  append_str (data, FIN | HERALD_WS_OPCODE_PING, "ping!");
  append_str (data, FIN | HERALD_WS_OPCODE_PONG, "");

  g_assert_cmpint (feed_all (&parser, &lim, data, &rec, &code, &reason), ==, data->len);
  for (gsize len = 0; len <= 40; len++)
    {
      g_assert_cmpuint (rec_type (&rec, n_events), ==, HERALD_WS_EVENT_MESSAGE);
      assert_payload (&rec, n_events++, big, len);
    }
  assert_payload (&rec, n_events++, big, 126);
  assert_payload (&rec, n_events++, big, 70000);
  assert_payload (&rec, n_events++, "héllo", strlen ("héllo"));
  g_assert_cmpuint (rec_type (&rec, n_events), ==, HERALD_WS_EVENT_PING);
  assert_payload (&rec, n_events++, "ping!", 5);
  g_assert_cmpuint (rec_type (&rec, n_events), ==, HERALD_WS_EVENT_PONG);
  assert_payload (&rec, n_events++, "", 0);
  g_assert_cmpuint (rec.types->len, ==, n_events);
  /* Nothing allocated per connection for unfragmented messages */
  g_assert_null (parser.message);

  herald_ws_parser_clear (&parser);
  recorder_clear (&rec);
}

static void
test_parse_incomplete (void)
{
  HeraldWsLimits lim = default_limits ();
  HeraldWsParser parser = { 0 };
  Recorder rec;
  g_autoptr (GByteArray) data = g_byte_array_new ();
  guint16 code = 0;
  const char *reason = NULL;

  recorder_init (&rec);
  append_str (data, FIN | HERALD_WS_OPCODE_TEXT, "first");
  append_str (data, FIN | HERALD_WS_OPCODE_TEXT, "second");
  /* Only the first frame and part of the second: consumes exactly the first */
  g_assert_cmpint (herald_ws_parser_feed (&parser, &lim, data->data, data->len - 3, record_cb, &rec,
                                          &code, &reason),
                   ==, 2 + 4 + 5);
  g_assert_cmpuint (rec.types->len, ==, 1);
  g_assert_cmpint (
      herald_ws_parser_feed (&parser, &lim, data->data, 1, record_cb, &rec, &code, &reason), ==, 0);
  g_assert_cmpint (herald_ws_parser_feed (&parser, &lim, NULL, 0, record_cb, &rec, &code, &reason),
                   ==, 0);
  recorder_clear (&rec);
}

static void
test_parse_fragments_with_ping (void)
{
  HeraldWsLimits lim = default_limits ();
  HeraldWsParser parser = { 0 };
  Recorder rec;
  g_autoptr (GByteArray) data = g_byte_array_new ();
  guint16 code = 0;
  const char *reason = NULL;

  recorder_init (&rec);
  append_str (data, HERALD_WS_OPCODE_TEXT, "Hel");
  append_str (data, FIN | HERALD_WS_OPCODE_PING, "p1");
  append_str (data, HERALD_WS_OPCODE_CONTINUATION, "lo, ");
  append_str (data, FIN | HERALD_WS_OPCODE_PONG, "p2");
  append_str (data, HERALD_WS_OPCODE_CONTINUATION, "");
  append_str (data, FIN | HERALD_WS_OPCODE_CONTINUATION, "world");

  g_assert_cmpint (feed_all (&parser, &lim, data, &rec, &code, &reason), ==, data->len);
  g_assert_cmpuint (rec.types->len, ==, 3);
  g_assert_cmpuint (rec_type (&rec, 0), ==, HERALD_WS_EVENT_PING);
  assert_payload (&rec, 0, "p1", 2);
  g_assert_cmpuint (rec_type (&rec, 1), ==, HERALD_WS_EVENT_PONG);
  g_assert_cmpuint (rec_type (&rec, 2), ==, HERALD_WS_EVENT_MESSAGE);
  assert_payload (&rec, 2, "Hello, world", 12);
  g_assert_null (parser.message);

  recorder_clear (&rec);
}

static void
test_parse_stop (void)
{
  HeraldWsLimits lim = default_limits ();
  HeraldWsParser parser = { 0 };
  Recorder rec;
  g_autoptr (GByteArray) data = g_byte_array_new ();
  guint16 code = 0;
  const char *reason = NULL;

  recorder_init (&rec);
  rec.stop_after = 1;
  append_str (data, FIN | HERALD_WS_OPCODE_TEXT, "one");
  append_str (data, FIN | HERALD_WS_OPCODE_TEXT, "two");
  g_assert_cmpint (feed_all (&parser, &lim, data, &rec, &code, &reason), ==, 2 + 4 + 3);
  g_assert_cmpuint (rec.types->len, ==, 1);
  recorder_clear (&rec);
}

/* ------------------------------------------------------------------------ */
/* Parser: protocol violations */

static void
test_error_unmasked (void)
{
  g_autoptr (GByteArray) data = g_byte_array_new ();

  append_frame_full (data, FIN | HERALD_WS_OPCODE_TEXT, "hi", 2, FALSE, LEN_MINIMAL);
  expect_error_default (data, HERALD_WS_CLOSE_PROTOCOL_ERROR);
}

static void
test_error_rsv (void)
{
  HeraldWsLimits lim = default_limits ();
  g_autoptr (HeraldWsInflater) inflater = herald_ws_inflater_new ();
  guint8 flags[] = { RSV2, RSV3, RSV2 | RSV3 };

  for (guint i = 0; i < G_N_ELEMENTS (flags); i++)
    {
      g_autoptr (GByteArray) data = g_byte_array_new ();

      append_str (data, FIN | flags[i] | HERALD_WS_OPCODE_TEXT, "hi");
      expect_error_default (data, HERALD_WS_CLOSE_PROTOCOL_ERROR);
    }

  /* RSV1 without deflate */
  {
    g_autoptr (GByteArray) data = g_byte_array_new ();

    append_str (data, FIN | RSV1 | HERALD_WS_OPCODE_TEXT, "hi");
    expect_error (&lim, data, HERALD_WS_CLOSE_PROTOCOL_ERROR);
  }

  lim.deflate = TRUE;
  lim.inflater = inflater;
  /* RSV1 on a continuation frame */
  {
    g_autoptr (GByteArray) data = g_byte_array_new ();

    append_str (data, HERALD_WS_OPCODE_TEXT, "hi");
    append_str (data, FIN | RSV1 | HERALD_WS_OPCODE_CONTINUATION, "there");
    expect_error (&lim, data, HERALD_WS_CLOSE_PROTOCOL_ERROR);
  }
  /* RSV1 on control frames */
  {
    guint8 ops[] = { HERALD_WS_OPCODE_PING, HERALD_WS_OPCODE_PONG, HERALD_WS_OPCODE_CLOSE };

    for (guint i = 0; i < G_N_ELEMENTS (ops); i++)
      {
        g_autoptr (GByteArray) data = g_byte_array_new ();

        append_frame (data, FIN | RSV1 | ops[i], NULL, 0);
        expect_error (&lim, data, HERALD_WS_CLOSE_PROTOCOL_ERROR);
      }
  }
}

static void
test_error_reserved_opcodes (void)
{
  guint8 ops[] = { 3, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf };

  for (guint i = 0; i < G_N_ELEMENTS (ops); i++)
    {
      g_autoptr (GByteArray) data = g_byte_array_new ();

      append_str (data, FIN | ops[i], "x");
      expect_error_default (data, HERALD_WS_CLOSE_PROTOCOL_ERROR);
    }
}

static void
test_error_control (void)
{
  guint8 big[126] = { 0 };
  guint8 ops[] = { HERALD_WS_OPCODE_PING, HERALD_WS_OPCODE_PONG, HERALD_WS_OPCODE_CLOSE };

  for (guint i = 0; i < G_N_ELEMENTS (ops); i++)
    {
      g_autoptr (GByteArray) nofin = g_byte_array_new ();
      g_autoptr (GByteArray) toolong = g_byte_array_new ();
      g_autoptr (GByteArray) toolong64 = g_byte_array_new ();

      append_frame (nofin, ops[i], NULL, 0);
      expect_error_default (nofin, HERALD_WS_CLOSE_PROTOCOL_ERROR);
      append_frame (toolong, FIN | ops[i], big, 126);
      expect_error_default (toolong, HERALD_WS_CLOSE_PROTOCOL_ERROR);
      /* even a small length in the extended forms is refused (the 7-bit field says >125) */
      append_frame_full (toolong64, FIN | ops[i], big, 4, TRUE, LEN_64);
      expect_error_default (toolong64, HERALD_WS_CLOSE_PROTOCOL_ERROR);
    }

  /* 125 bytes is fine */
  {
    HeraldWsLimits lim = default_limits ();
    HeraldWsParser parser = { 0 };
    Recorder rec;
    g_autoptr (GByteArray) data = g_byte_array_new ();
    guint16 code = 0;
    const char *reason = NULL;

    recorder_init (&rec);
    append_frame (data, FIN | HERALD_WS_OPCODE_PING, big, 125);
    g_assert_cmpint (feed_all (&parser, &lim, data, &rec, &code, &reason), ==, data->len);
    g_assert_cmpuint (rec.types->len, ==, 1);
    recorder_clear (&rec);
  }
}

static void
test_error_fragmentation (void)
{
  g_autoptr (GByteArray) orphan = g_byte_array_new ();
  g_autoptr (GByteArray) orphan_fin = g_byte_array_new ();
  g_autoptr (GByteArray) nested_text = g_byte_array_new ();
  g_autoptr (GByteArray) nested_binary = g_byte_array_new ();
  g_autoptr (GByteArray) after_done = g_byte_array_new ();

  append_str (orphan, HERALD_WS_OPCODE_CONTINUATION, "x");
  expect_error_default (orphan, HERALD_WS_CLOSE_PROTOCOL_ERROR);
  append_str (orphan_fin, FIN | HERALD_WS_OPCODE_CONTINUATION, "x");
  expect_error_default (orphan_fin, HERALD_WS_CLOSE_PROTOCOL_ERROR);

  append_str (nested_text, HERALD_WS_OPCODE_TEXT, "a");
  append_str (nested_text, FIN | HERALD_WS_OPCODE_TEXT, "b");
  expect_error_default (nested_text, HERALD_WS_CLOSE_PROTOCOL_ERROR);
  append_str (nested_binary, HERALD_WS_OPCODE_BINARY, "a");
  append_str (nested_binary, HERALD_WS_OPCODE_BINARY, "b");
  expect_error_default (nested_binary, HERALD_WS_CLOSE_PROTOCOL_ERROR);

  /* a continuation after the message finished */
  append_str (after_done, HERALD_WS_OPCODE_TEXT, "a");
  append_str (after_done, FIN | HERALD_WS_OPCODE_CONTINUATION, "b");
  append_str (after_done, FIN | HERALD_WS_OPCODE_CONTINUATION, "c");
  expect_error_default (after_done, HERALD_WS_CLOSE_PROTOCOL_ERROR);
}

static void
test_error_length_top_bit (void)
{
  /* header only: 127, then 0x80 00 .. 00, then mask */
  guint8 frame[]
      = { FIN | HERALD_WS_OPCODE_BINARY, 0x80 | 127, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4 };
  g_autoptr (GByteArray) data = g_byte_array_new ();
  HeraldWsLimits lim = default_limits ();

  g_byte_array_append (data, frame, sizeof frame);
  expect_error_default (data, HERALD_WS_CLOSE_PROTOCOL_ERROR);
  /* also with no size limit at all */
  lim.max_frame_size = 0;
  lim.max_message_size = 0;
  expect_error (&lim, data, HERALD_WS_CLOSE_PROTOCOL_ERROR);
}

static void
test_error_frame_too_big (void)
{
  HeraldWsLimits lim = default_limits ();
  guint8 hdr16[] = { FIN | HERALD_WS_OPCODE_BINARY, 0x80 | 126, 0x03, 0xe9, 1, 2, 3, 4 }; /* 1001 */
  guint8 hdr16_ok[]
      = { FIN | HERALD_WS_OPCODE_BINARY, 0x80 | 126, 0x03, 0xe8, 1, 2, 3, 4 }; /* 1000 */
  guint8 hdr64[]
      = { FIN | HERALD_WS_OPCODE_BINARY, 0x80 | 127, 0, 0, 1, 0, 0, 0, 0, 0, 1, 2, 3, 4 };
  guint8 hdr_cont[]
      = { HERALD_WS_OPCODE_BINARY, 0x80 | 126, 0x03, 0xe9 }; /* first fragment, no mask yet */
  g_autoptr (GByteArray) data = g_byte_array_new ();
  HeraldWsParser parser = { 0 };
  Recorder rec;
  guint16 code = 0;
  const char *reason = NULL;

  lim.max_frame_size = 1000;

  /* The header alone (no payload) is enough to refuse */
  g_byte_array_append (data, hdr16, sizeof hdr16);
  expect_error (&lim, data, HERALD_WS_CLOSE_TOO_BIG);
  g_byte_array_set_size (data, 0);
  g_byte_array_append (data, hdr64, sizeof hdr64);
  expect_error (&lim, data, HERALD_WS_CLOSE_TOO_BIG);
  /* even before the masking key arrives */
  g_byte_array_set_size (data, 0);
  g_byte_array_append (data, hdr_cont, sizeof hdr_cont);
  expect_error (&lim, data, HERALD_WS_CLOSE_TOO_BIG);

  /* Exactly the limit: just waits for the payload */
  recorder_init (&rec);
  g_byte_array_set_size (data, 0);
  g_byte_array_append (data, hdr16_ok, sizeof hdr16_ok);
  g_assert_cmpint (feed_all (&parser, &lim, data, &rec, &code, &reason), ==, 0);
  recorder_clear (&rec);

  /* An unfragmented frame above max_message_size is refused too */
  lim.max_frame_size = 1 << 20;
  lim.max_message_size = 1000;
  g_byte_array_set_size (data, 0);
  g_byte_array_append (data, hdr16, sizeof hdr16);
  expect_error (&lim, data, HERALD_WS_CLOSE_TOO_BIG);
}

static void
test_error_message_too_big (void)
{
  HeraldWsLimits lim = default_limits ();
  HeraldWsParser parser = { 0 };
  Recorder rec;
  guint8 chunk[100];
  guint16 code = 0;
  const char *reason = NULL;
  guint frames = 0;
  gssize ret;

  memset (chunk, 'a', sizeof chunk);
  lim.max_frame_size = 1000;
  lim.max_message_size = 4096;
  recorder_init (&rec);

  /* An endless stream of small fragments: refused once the total passes the
   * limit, and the buffered message never exceeds it. */
  do
    {
      g_autoptr (GByteArray) data = g_byte_array_new ();

      append_frame (data, frames == 0 ? HERALD_WS_OPCODE_TEXT : HERALD_WS_OPCODE_CONTINUATION,
                    chunk, sizeof chunk);
      frames++;
      ret = feed_all (&parser, &lim, data, &rec, &code, &reason);
      if (ret >= 0)
        {
          g_assert_cmpint (ret, ==, data->len);
          g_assert_nonnull (parser.message);
          g_assert_cmpuint (parser.message->len, <=, lim.max_message_size);
        }
    }
  while (ret >= 0 && frames < 1000);

  g_assert_cmpint (ret, ==, -1);
  g_assert_cmpuint (code, ==, HERALD_WS_CLOSE_TOO_BIG);
  g_assert_cmpuint (frames, ==, 41); /* 41 × 100 > 4096 ≥ 40 × 100 */
  g_assert_cmpuint (rec.types->len, ==, 0);
  herald_ws_parser_clear (&parser);
  g_assert_null (parser.message);
  recorder_clear (&rec);
}

static void
test_error_utf8 (void)
{
  const char *invalid[] = {
    "\xff",
    "abc\xc3",          /* truncated sequence at the end */
    "\xc0\xaf",         /* overlong */
    "\xed\xa0\x80",     /* surrogate */
    "\xf4\x90\x80\x80", /* > U+10FFFF */
    "ok\x80ok",         /* stray continuation byte */
  };
  /* NUL, a non-character and a 4-byte sequence are all valid */
  static const char valid[] = "a\0b\xef\xbf\xbf\xf0\x9f\x98\x80";
  HeraldWsLimits lim = default_limits ();

  for (guint i = 0; i < G_N_ELEMENTS (invalid); i++)
    {
      g_autoptr (GByteArray) data = g_byte_array_new ();
      g_autoptr (GByteArray) binary = g_byte_array_new ();
      HeraldWsParser parser = { 0 };
      Recorder rec;
      guint16 code = 0;
      const char *reason = NULL;

      append_str (data, FIN | HERALD_WS_OPCODE_TEXT, invalid[i]);
      expect_error (&lim, data, HERALD_WS_CLOSE_BAD_DATA);

      /* binary messages are not checked */
      recorder_init (&rec);
      append_str (binary, FIN | HERALD_WS_OPCODE_BINARY, invalid[i]);
      g_assert_cmpint (feed_all (&parser, &lim, binary, &rec, &code, &reason), ==, binary->len);
      g_assert_cmpuint (rec.types->len, ==, 1);
      recorder_clear (&rec);
    }

  /* valid, and valid when split inside a multi-byte sequence across fragments */
  {
    g_autoptr (GByteArray) data = g_byte_array_new ();
    HeraldWsParser parser = { 0 };
    Recorder rec;
    guint16 code = 0;
    const char *reason = NULL;
    gsize len = sizeof valid - 1;

    recorder_init (&rec);
    append_frame (data, FIN | HERALD_WS_OPCODE_TEXT, valid, len);
    append_frame (data, HERALD_WS_OPCODE_TEXT, valid, 5);
    append_frame (data, HERALD_WS_OPCODE_CONTINUATION, valid + 5, 3);
    append_frame (data, FIN | HERALD_WS_OPCODE_CONTINUATION, valid + 8, len - 8);
    g_assert_cmpint (feed_all (&parser, &lim, data, &rec, &code, &reason), ==, data->len);
    g_assert_cmpuint (rec.types->len, ==, 2);
    assert_payload (&rec, 0, valid, len);
    assert_payload (&rec, 1, valid, len);
    recorder_clear (&rec);
  }

  /* invalid across fragments: refused when the message completes */
  {
    g_autoptr (GByteArray) data = g_byte_array_new ();

    append_str (data, HERALD_WS_OPCODE_TEXT, "abc");
    append_str (data, FIN | HERALD_WS_OPCODE_CONTINUATION, "\xc3");
    expect_error (&lim, data, HERALD_WS_CLOSE_BAD_DATA);
  }
}

static void
append_close (GByteArray *data, guint16 code, const char *reason)
{
  guint8 payload[125];
  gsize len = strlen (reason);

  payload[0] = code >> 8;
  payload[1] = code & 0xff;
  memcpy (payload + 2, reason, len);
  append_frame (data, FIN | HERALD_WS_OPCODE_CLOSE, payload, len + 2);
}

static void
test_close (void)
{
  guint16 invalid[] = { 0, 1, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535 };
  guint16 valid[] = { 1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 4000, 4999 };
  HeraldWsLimits lim = default_limits ();

  for (guint i = 0; i < G_N_ELEMENTS (invalid); i++)
    {
      g_autoptr (GByteArray) data = g_byte_array_new ();

      append_close (data, invalid[i], "");
      expect_error (&lim, data, HERALD_WS_CLOSE_PROTOCOL_ERROR);
    }
  for (guint i = 0; i < G_N_ELEMENTS (valid); i++)
    {
      g_autoptr (GByteArray) data = g_byte_array_new ();
      HeraldWsParser parser = { 0 };
      Recorder rec;
      guint16 code = 0;
      const char *reason = NULL;

      recorder_init (&rec);
      append_close (data, valid[i], "bye é");
      g_assert_cmpint (feed_all (&parser, &lim, data, &rec, &code, &reason), ==, data->len);
      g_assert_cmpuint (rec_type (&rec, 0), ==, HERALD_WS_EVENT_CLOSE);
      g_assert_cmpuint (g_array_index (rec.codes, guint16, 0), ==, valid[i]);
      g_assert_cmpstr (g_ptr_array_index (rec.reasons, 0), ==, "bye é");
      g_assert_true (parser.close_received);
      recorder_clear (&rec);
    }

  /* 1-byte payload */
  {
    g_autoptr (GByteArray) data = g_byte_array_new ();

    append_frame (data, FIN | HERALD_WS_OPCODE_CLOSE, "\x03", 1);
    expect_error (&lim, data, HERALD_WS_CLOSE_PROTOCOL_ERROR);
  }
  /* invalid UTF-8 reason */
  {
    g_autoptr (GByteArray) data = g_byte_array_new ();

    append_close (data, 1000, "bad \xff");
    expect_error (&lim, data, HERALD_WS_CLOSE_BAD_DATA);
  }
  /* Empty close: 1005, then everything after it is consumed and ignored,
   * including garbage and a message in progress. */
  {
    g_autoptr (GByteArray) data = g_byte_array_new ();
    g_autoptr (GByteArray) more = g_byte_array_new ();
    HeraldWsParser parser = { 0 };
    Recorder rec;
    guint16 code = 0;
    const char *reason = NULL;

    recorder_init (&rec);
    append_str (data, HERALD_WS_OPCODE_TEXT, "partial");
    append_frame (data, FIN | HERALD_WS_OPCODE_CLOSE, NULL, 0);
    append_str (data, FIN | HERALD_WS_OPCODE_TEXT, "after");
    g_byte_array_append (data, (const guint8 *)"\xff\xff\xff", 3);
    g_assert_cmpint (feed_all (&parser, &lim, data, &rec, &code, &reason), ==, data->len);
    g_assert_cmpuint (rec.types->len, ==, 1);
    g_assert_cmpuint (g_array_index (rec.codes, guint16, 0), ==, HERALD_WS_CLOSE_NO_STATUS);
    g_assert_cmpstr (g_ptr_array_index (rec.reasons, 0), ==, "");
    g_assert_null (parser.message);

    append_str (more, FIN | HERALD_WS_OPCODE_TEXT, "later");
    append_frame_full (more, FIN | 0x0f, NULL, 0, FALSE, LEN_MINIMAL);
    g_assert_cmpint (feed_all (&parser, &lim, more, &rec, &code, &reason), ==, more->len);
    g_assert_cmpuint (rec.types->len, ==, 1);
    recorder_clear (&rec);
  }
}

/* ------------------------------------------------------------------------ */
/* Split input */

static void
build_mixed_stream (GByteArray *data)
{
  guint8 bin[300];
  guint8 payload[200];

  for (guint i = 0; i < sizeof bin; i++)
    bin[i] = (guint8)(i * 13);
  payload[0] = 0x0b;
  payload[1] = 0xb8; /* 3000 */
  memset (payload + 2, 'r', 20);

  append_str (data, FIN | HERALD_WS_OPCODE_TEXT, "{\"type\":\"ping\"}");
  append_frame (data, FIN | HERALD_WS_OPCODE_BINARY, bin, sizeof bin);
  append_frame_full (data, FIN | HERALD_WS_OPCODE_BINARY, bin, 17, TRUE, LEN_16);
  append_frame_full (data, FIN | HERALD_WS_OPCODE_BINARY, bin, 130, TRUE, LEN_64);
  append_str (data, HERALD_WS_OPCODE_TEXT, "frag");
  append_str (data, FIN | HERALD_WS_OPCODE_PING, "mid");
  append_frame (data, HERALD_WS_OPCODE_CONTINUATION, NULL, 0);
  append_str (data, FIN | HERALD_WS_OPCODE_CONTINUATION, "mented é");
  append_frame (data, FIN | HERALD_WS_OPCODE_TEXT, NULL, 0);
  append_str (data, FIN | HERALD_WS_OPCODE_PONG, "pong");
  append_frame (data, FIN | HERALD_WS_OPCODE_CLOSE, payload, 22);
}

static void
test_split_every_byte (void)
{
  HeraldWsLimits lim = default_limits ();
  g_autoptr (HeraldWsInflater) inflater = herald_ws_inflater_new ();
  g_autoptr (GByteArray) data = g_byte_array_new ();
  g_autoptr (GBytes) deflated = NULL;
  HeraldWsParser whole = { 0 }, split = { 0 };
  Recorder rec_whole, rec_split;
  guint16 code = 0;
  const char *reason = NULL;
  const char *text = "compressed compressed compressed text";

  lim.deflate = TRUE;
  lim.inflater = inflater;
  deflated = herald_ws_frame_new_deflated (HERALD_WS_OPCODE_TEXT, text, strlen (text));
  append_as_client (data, deflated);
  build_mixed_stream (data);

  recorder_init (&rec_whole);
  recorder_init (&rec_split);
  g_assert_cmpint (feed_all (&whole, &lim, data, &rec_whole, &code, &reason), ==, data->len);
  g_assert_cmpint (
      feed_chunked (&split, &lim, data->data, data->len, 1, &rec_split, &code, &reason), ==, 0);
  g_assert_cmpuint (rec_whole.types->len, ==, 10);
  assert_payload (&rec_whole, 0, text, strlen (text));
  assert_payload (&rec_whole, 5, "mid", 3);
  assert_payload (&rec_whole, 6, "fragmented é", strlen ("fragmented é"));
  g_assert_cmpstr (rec_whole.log->str, ==, rec_split.log->str);

  /* every other chunk size too */
  for (gsize chunk = 2; chunk < 40; chunk++)
    {
      HeraldWsParser p = { 0 };
      Recorder r;

      recorder_init (&r);
      g_assert_cmpint (feed_chunked (&p, &lim, data->data, data->len, chunk, &r, &code, &reason),
                       ==, 0);
      g_assert_cmpstr (rec_whole.log->str, ==, r.log->str);
      recorder_clear (&r);
    }

  recorder_clear (&rec_whole);
  recorder_clear (&rec_split);
}

/* ------------------------------------------------------------------------ */
/* Deflate */

/* Compresses @len bytes as a client would: raw deflate, sync flush, tail
 * stripped (or Z_FINISH kept when @final). @window_bits as negotiated. */
static GByteArray *
zlib_compress (const guint8 *in, gsize len, int window_bits, gboolean final)
{
  z_stream zs = { 0 };
  GByteArray *out = g_byte_array_new ();
  guint8 buf[4096];
  int ret;

  g_assert_cmpint (deflateInit2 (&zs, 9, Z_DEFLATED, -window_bits, 8, Z_DEFAULT_STRATEGY), ==,
                   Z_OK);
  zs.next_in = (Bytef *)in;
  zs.avail_in = (uInt)len;
  do
    {
      zs.next_out = buf;
      zs.avail_out = sizeof buf;
      ret = deflate (&zs, final ? Z_FINISH : Z_SYNC_FLUSH);
      g_assert_true (ret == Z_OK || ret == Z_STREAM_END || ret == Z_BUF_ERROR);
      g_byte_array_append (out, buf, sizeof buf - zs.avail_out);
    }
  while (zs.avail_out == 0);
  deflateEnd (&zs);
  if (!final)
    {
      g_assert_cmpuint (out->len, >=, 4);
      g_assert_cmpmem (out->data + out->len - 4, 4, "\x00\x00\xff\xff", 4);
      g_byte_array_set_size (out, out->len - 4);
    }
  return out;
}

static void
test_deflate_roundtrip (void)
{
  HeraldWsLimits lim = default_limits ();
  g_autoptr (HeraldWsInflater) inflater = herald_ws_inflater_new ();
  gsize sizes[] = { 0, 1, 5, 100, 5000, 70000, 300000 };

  lim.deflate = TRUE;
  lim.inflater = inflater;

  for (guint i = 0; i < G_N_ELEMENTS (sizes); i++)
    {
      for (guint op = HERALD_WS_OPCODE_TEXT; op <= HERALD_WS_OPCODE_BINARY; op++)
        {
          g_autofree guint8 *payload = g_malloc (sizes[i] + 1);
          g_autoptr (GBytes) frame = NULL;
          g_autoptr (GByteArray) data = g_byte_array_new ();
          HeraldWsParser parser = { 0 };
          Recorder rec;
          guint16 code = 0;
          const char *reason = NULL;
          const guint8 *f;
          gsize flen;

          for (gsize j = 0; j < sizes[i]; j++)
            payload[j] = op == HERALD_WS_OPCODE_TEXT ? 'a' + (j * j) % 26 : (guint8)(j * j >> 3);
          frame = herald_ws_frame_new_deflated (op, payload, sizes[i]);
          f = g_bytes_get_data (frame, &flen);
          g_assert_cmpuint (f[0], ==, FIN | RSV1 | op);
          g_assert_cmpuint (f[1] & 0x80, ==, 0);
          if (sizes[i] >= 5000)
            g_assert_cmpuint (flen, <, sizes[i] / 2); /* it does compress */
          /* the sync-flush tail was stripped */
          g_assert_false (flen >= 6 && memcmp (f + flen - 4, "\x00\x00\xff\xff", 4) == 0);

          recorder_init (&rec);
          append_as_client (data, frame);
          g_assert_cmpint (feed_all (&parser, &lim, data, &rec, &code, &reason), ==, data->len);
          g_assert_cmpuint (rec.types->len, ==, 1);
          assert_payload (&rec, 0, payload, sizes[i]);
          recorder_clear (&rec);
        }
    }
}

static void
test_deflate_zlib (void)
{
  HeraldWsLimits lim = default_limits ();
  g_autoptr (HeraldWsInflater) inflater = herald_ws_inflater_new ();
  const char *text = "Hello, Hello, Hello, compressed world! Hello, Hello!";
  gsize len = strlen (text);
  g_autoptr (GByteArray) sync = zlib_compress ((const guint8 *)text, len, 15, FALSE);
  g_autoptr (GByteArray) small_window = zlib_compress ((const guint8 *)text, len, 9, FALSE);
  g_autoptr (GByteArray) final = zlib_compress ((const guint8 *)text, len, 15, TRUE);
  g_autoptr (GByteArray) data = g_byte_array_new ();
  HeraldWsParser parser = { 0 };
  Recorder rec;
  guint16 code = 0;
  const char *reason = NULL;
  guint third = sync->len / 3;

  lim.deflate = TRUE;
  lim.inflater = inflater;
  recorder_init (&rec);

  append_frame (data, FIN | RSV1 | HERALD_WS_OPCODE_TEXT, sync->data, sync->len);
  append_frame (data, FIN | RSV1 | HERALD_WS_OPCODE_TEXT, small_window->data, small_window->len);
  append_frame (data, FIN | RSV1 | HERALD_WS_OPCODE_TEXT, final->data, final->len);
  /* uncompressed messages are still allowed */
  append_frame (data, FIN | HERALD_WS_OPCODE_TEXT, text, len);
  /* a compressed message in three fragments, RSV1 only on the first, with a
   * ping in between */
  append_frame (data, RSV1 | HERALD_WS_OPCODE_TEXT, sync->data, third);
  append_frame (data, FIN | HERALD_WS_OPCODE_PING, NULL, 0);
  append_frame (data, HERALD_WS_OPCODE_CONTINUATION, sync->data + third, third);
  append_frame (data, FIN | HERALD_WS_OPCODE_CONTINUATION, sync->data + 2 * third,
                sync->len - 2 * third);

  g_assert_cmpint (feed_all (&parser, &lim, data, &rec, &code, &reason), ==, data->len);
  g_assert_cmpuint (rec.types->len, ==, 6);
  assert_payload (&rec, 0, text, len);
  assert_payload (&rec, 1, text, len);
  assert_payload (&rec, 2, text, len);
  assert_payload (&rec, 3, text, len);
  g_assert_cmpuint (rec_type (&rec, 4), ==, HERALD_WS_EVENT_PING);
  assert_payload (&rec, 5, text, len);
  recorder_clear (&rec);

  /* corrupt compressed data */
  {
    g_autoptr (GByteArray) bad = g_byte_array_new ();

    append_frame (bad, FIN | RSV1 | HERALD_WS_OPCODE_BINARY, "\xff\xff\xff\xff", 4);
    expect_error (&lim, bad, HERALD_WS_CLOSE_BAD_DATA);
  }
  /* compressed invalid UTF-8 text */
  {
    g_autoptr (GByteArray) raw = zlib_compress ((const guint8 *)"ab\xff", 3, 15, FALSE);
    g_autoptr (GByteArray) bad = g_byte_array_new ();

    append_frame (bad, FIN | RSV1 | HERALD_WS_OPCODE_TEXT, raw->data, raw->len);
    expect_error (&lim, bad, HERALD_WS_CLOSE_BAD_DATA);
  }
}

static void
test_deflate_bomb (void)
{
  HeraldWsLimits lim = default_limits ();
  g_autoptr (HeraldWsInflater) inflater = herald_ws_inflater_new ();
  g_autoptr (GByteArray) bomb = g_byte_array_new ();
  g_autofree guint8 *zeros = g_malloc0 (64 * 1024);
  guint8 buf[4096];
  z_stream zs = { 0 };

  /* 10 MB of zeros, compressed in pieces */
  g_assert_cmpint (deflateInit2 (&zs, 9, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY), ==, Z_OK);
  for (guint i = 0; i < 160; i++)
    {
      zs.next_in = zeros;
      zs.avail_in = 64 * 1024;
      do
        {
          zs.next_out = buf;
          zs.avail_out = sizeof buf;
          deflate (&zs, i == 159 ? Z_SYNC_FLUSH : Z_NO_FLUSH);
          g_byte_array_append (bomb, buf, sizeof buf - zs.avail_out);
        }
      while (zs.avail_out == 0);
    }
  deflateEnd (&zs);
  g_assert_cmpuint (bomb->len, <, 64 * 1024);
  g_byte_array_set_size (bomb, bomb->len - 4);

  lim.deflate = TRUE;
  lim.inflater = inflater;
  lim.max_message_size = 64 * 1024;

  {
    g_autoptr (GByteArray) data = g_byte_array_new ();

    append_frame (data, FIN | RSV1 | HERALD_WS_OPCODE_BINARY, bomb->data, bomb->len);
    expect_error (&lim, data, HERALD_WS_CLOSE_TOO_BIG);
    g_assert_cmpuint (herald_ws_inflater_get_allocated (inflater), <=, 64 * 1024 + 1);
  }
  /* fragmented */
  {
    g_autoptr (GByteArray) data = g_byte_array_new ();

    append_frame (data, RSV1 | HERALD_WS_OPCODE_BINARY, bomb->data, 100);
    append_frame (data, FIN | HERALD_WS_OPCODE_CONTINUATION, bomb->data + 100, bomb->len - 100);
    expect_error (&lim, data, HERALD_WS_CLOSE_TOO_BIG);
    g_assert_cmpuint (herald_ws_inflater_get_allocated (inflater), <=, 64 * 1024 + 1);
  }
  /* exactly at the limit is accepted */
  {
    g_autoptr (GByteArray) raw = zlib_compress (zeros, 64 * 1024, 15, FALSE);
    g_autoptr (GByteArray) data = g_byte_array_new ();
    HeraldWsParser parser = { 0 };
    Recorder rec;
    guint16 code = 0;
    const char *reason = NULL;

    recorder_init (&rec);
    append_frame (data, FIN | RSV1 | HERALD_WS_OPCODE_BINARY, raw->data, raw->len);
    g_assert_cmpint (feed_all (&parser, &lim, data, &rec, &code, &reason), ==, data->len);
    assert_payload (&rec, 0, zeros, 64 * 1024);
    recorder_clear (&rec);
  }
}

/* ------------------------------------------------------------------------ */
/* Builders */

static void
test_frame_header (void)
{
  struct
  {
    guint64 len;
    gsize hlen;
    guint8 expect[10];
  } cases[] = {
    { 0, 2, { 0x81, 0 } },
    { 125, 2, { 0x81, 125 } },
    { 126, 4, { 0x81, 126, 0, 126 } },
    { 65535, 4, { 0x81, 126, 0xff, 0xff } },
    { 65536, 10, { 0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0 } },
    { G_GUINT64_CONSTANT (0x0102030405060708), 10, { 0x81, 127, 1, 2, 3, 4, 5, 6, 7, 8 } },
  };
  guint8 out[10];

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      gsize n = herald_ws_frame_header (out, HERALD_WS_OPCODE_TEXT, FALSE, cases[i].len);

      g_assert_cmpmem (out, n, cases[i].expect, cases[i].hlen);
    }
  g_assert_cmpuint (herald_ws_frame_header (out, HERALD_WS_OPCODE_BINARY, TRUE, 3), ==, 2);
  g_assert_cmpuint (out[0], ==, 0xc2);
  g_assert_cmpuint (out[1], ==, 3);
}

static void
test_frame_new (void)
{
  g_autoptr (GBytes) small = herald_ws_frame_new (HERALD_WS_OPCODE_TEXT, "hey", 3);
  g_autoptr (GBytes) empty = herald_ws_frame_new (HERALD_WS_OPCODE_PONG, NULL, 0);
  g_autofree guint8 *big = g_malloc0 (300);
  g_autoptr (GBytes) medium = NULL;
  const guint8 *m;
  gsize mlen;

  g_assert_cmpmem (g_bytes_get_data (small, NULL), g_bytes_get_size (small), "\x81\x03hey", 5);
  g_assert_cmpmem (g_bytes_get_data (empty, NULL), g_bytes_get_size (empty), "\x8a\x00", 2);
  big[299] = 'z';
  medium = herald_ws_frame_new (HERALD_WS_OPCODE_BINARY, big, 300);
  m = g_bytes_get_data (medium, &mlen);
  g_assert_cmpuint (mlen, ==, 304);
  g_assert_cmpmem (m, 4, "\x82\x7e\x01\x2c", 4);
  g_assert_cmpuint (m[303], ==, 'z');
}

static void
parse_close_frame (GBytes *frame, guint16 *code_out, char **reason_out)
{
  HeraldWsLimits lim = default_limits ();
  g_autoptr (GByteArray) data = g_byte_array_new ();
  HeraldWsParser parser = { 0 };
  Recorder rec;
  guint16 code = 0;
  const char *reason = NULL;

  recorder_init (&rec);
  append_as_client (data, frame);
  g_assert_cmpint (feed_all (&parser, &lim, data, &rec, &code, &reason), ==, data->len);
  g_assert_cmpuint (rec_type (&rec, 0), ==, HERALD_WS_EVENT_CLOSE);
  *code_out = g_array_index (rec.codes, guint16, 0);
  *reason_out = g_strdup (g_ptr_array_index (rec.reasons, 0));
  recorder_clear (&rec);
}

static void
test_close_frame_new (void)
{
  struct
  {
    const char *unit;
    gsize unit_len;
  } units[] = { { "a", 1 }, { "é", 2 }, { "€", 3 }, { "😀", 4 } };

  for (guint i = 0; i < G_N_ELEMENTS (units); i++)
    {
      g_autoptr (GString) reason = g_string_new ("x"); /* shifts the boundary */
      g_autoptr (GBytes) frame = NULL;
      g_autofree char *got = NULL;
      guint16 code = 0;
      const guint8 *f;
      gsize flen;

      while (reason->len < 200)
        g_string_append (reason, units[i].unit);
      frame = herald_ws_close_frame_new (4001, reason->str);
      f = g_bytes_get_data (frame, &flen);
      g_assert_cmpuint (f[0], ==, 0x88);
      g_assert_cmpuint (f[1], <=, 125);
      g_assert_cmpuint (f[1], >, 125 - units[i].unit_len);
      g_assert_cmpuint (flen, ==, 2 + f[1]);
      g_assert_cmpuint (f[2], ==, 4001 >> 8);
      g_assert_cmpuint (f[3], ==, 4001 & 0xff);
      g_assert_true (g_utf8_validate ((const char *)f + 4, flen - 4, NULL));
      g_assert_true (g_str_has_prefix (reason->str, "x"));
      g_assert_cmpint (strncmp ((const char *)f + 4, reason->str, flen - 4), ==, 0);

      /* and it parses back */
      parse_close_frame (frame, &code, &got);
      g_assert_cmpuint (code, ==, 4001);
      g_assert_cmpuint (strlen (got), ==, flen - 4);
    }

  {
    g_autoptr (GBytes) frame = herald_ws_close_frame_new (1000, "bye");
    g_autoptr (GBytes) nocode = herald_ws_close_frame_new (HERALD_WS_CLOSE_NO_STATUS, "ignored");
    g_autoptr (GBytes) noreason = herald_ws_close_frame_new (1001, NULL);

    g_assert_cmpmem (g_bytes_get_data (frame, NULL), g_bytes_get_size (frame),
                     "\x88\x05\x03\xe8"
                     "bye",
                     7);
    g_assert_cmpmem (g_bytes_get_data (nocode, NULL), g_bytes_get_size (nocode), "\x88\x00", 2);
    g_assert_cmpmem (g_bytes_get_data (noreason, NULL), g_bytes_get_size (noreason),
                     "\x88\x02\x03\xe9", 4);
  }
}

static void
test_close_code_valid (void)
{
  for (guint code = 0; code <= G_MAXUINT16; code++)
    {
      gboolean expected = (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014)
                          || (code >= 3000 && code <= 4999);

      g_assert_cmpint (herald_ws_close_code_is_valid ((guint16)code), ==, expected);
    }
}

static void
test_negotiate (void)
{
  struct
  {
    const char *offer;
    const char *response;
  } cases[] = {
    { NULL, NULL },
    { "", NULL },
    { "x-webkit-deflate-frame", NULL },
    { "permessage-deflate", BASE_RESPONSE },
    { "  Permessage-Deflate  ", BASE_RESPONSE },
    { "permessage-deflate; client_max_window_bits", BASE_RESPONSE },
    { "permessage-deflate; client_max_window_bits=10", BASE_RESPONSE },
    { "permessage-deflate; client_max_window_bits=\"12\"", BASE_RESPONSE },
    { "permessage-deflate;client_no_context_takeover;server_no_context_takeover", BASE_RESPONSE },
    { "permessage-deflate; client_max_window_bits=16", NULL },
    { "permessage-deflate; client_max_window_bits=7", NULL },
    { "permessage-deflate; client_max_window_bits=010", NULL },
    { "permessage-deflate; server_max_window_bits=15",
      BASE_RESPONSE "; server_max_window_bits=15" },
    { "permessage-deflate; server_max_window_bits=10", NULL },
    { "permessage-deflate; server_max_window_bits", NULL },
    { "permessage-deflate; server_max_window_bits=10, permessage-deflate", BASE_RESPONSE },
    { "permessage-deflate; foo", NULL },
    { "permessage-deflate; foo=1, permessage-deflate; client_no_context_takeover", BASE_RESPONSE },
    { "permessage-deflate; client_no_context_takeover; client_no_context_takeover", NULL },
    { "permessage-deflate; client_max_window_bits; client_max_window_bits=10", NULL },
    { "permessage-deflate; server_no_context_takeover=1", NULL },
    { "permessage-deflate;", NULL },
    { "foo, bar; x=1, permessage-deflate; client_max_window_bits", BASE_RESPONSE },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *response = herald_ws_negotiate_deflate (cases[i].offer);

      g_test_message ("offer: %s", cases[i].offer ? cases[i].offer : "(null)");
      g_assert_cmpstr (response, ==, cases[i].response);
    }
}

/* ------------------------------------------------------------------------ */
/* Property tests */

/* Random bytes in random chunk sizes never crash nor read out of bounds
 * (valgrind/ASan catch that: every feed reads from an exact-size copy). */
static void
test_fuzz_random_bytes (void)
{
  g_autoptr (HeraldWsInflater) inflater = herald_ws_inflater_new ();

  for (guint round = 0; round < 300; round++)
    {
      HeraldWsLimits lim = default_limits ();
      HeraldWsParser parser = { 0 };
      Recorder rec;
      gsize len = g_test_rand_int_range (0, 600);
      g_autofree guint8 *data = g_malloc (len + 1);
      guint16 code = 0;
      const char *reason = NULL;

      lim.max_frame_size = g_test_rand_int_range (0, 2) ? 0 : g_test_rand_int_range (1, 300);
      lim.max_message_size = g_test_rand_int_range (0, 2) ? 0 : g_test_rand_int_range (1, 600);
      lim.deflate = g_test_rand_bit ();
      lim.inflater = inflater;
      for (gsize i = 0; i < len; i++)
        {
          data[i] = (guint8)g_test_rand_int ();
          /* set the mask bit mostly, so parsing goes past the first checks */
          if (i % 7 == 1 && g_test_rand_int_range (0, 4))
            data[i] |= 0x80;
        }

      recorder_init (&rec);
      (void)feed_chunked (&parser, &lim, data, len, 0, &rec, &code, &reason);
      herald_ws_parser_clear (&parser);
      recorder_clear (&rec);
    }
}

/* Streams of random, mostly well-formed frames (random opcodes, flags,
 * compressed or not, fragmented or not) give the same events and the same
 * error whatever the chunking. */
static void
test_fuzz_frames_chunking (void)
{
  g_autoptr (HeraldWsInflater) inflater = herald_ws_inflater_new ();

  for (guint round = 0; round < 150; round++)
    {
      HeraldWsLimits lim = default_limits ();
      g_autoptr (GByteArray) data = g_byte_array_new ();
      guint n_frames = g_test_rand_int_range (1, 12);
      HeraldWsParser p1 = { 0 }, p2 = { 0 };
      Recorder r1, r2;
      guint16 code1 = 0, code2 = 0;
      const char *reason1 = NULL, *reason2 = NULL;
      gssize ret1, ret2;

      lim.deflate = TRUE;
      lim.inflater = inflater;
      lim.max_frame_size = g_test_rand_int_range (50, 400);
      lim.max_message_size = g_test_rand_int_range (50, 800);

      for (guint f = 0; f < n_frames; f++)
        {
          guint8 payload[300];
          gsize plen = g_test_rand_int_range (0, 300);
          guint8 b0;
          int kind = g_test_rand_int_range (0, 10);

          for (gsize i = 0; i < plen; i++)
            payload[i] = 'a' + g_test_rand_int_range (0, 26);
          if (kind < 2)
            {
              g_autoptr (GBytes) fr
                  = herald_ws_frame_new_deflated (HERALD_WS_OPCODE_TEXT, payload, plen);

              append_as_client (data, fr);
              continue;
            }
          b0 = (guint8)g_test_rand_int_range (0, 256);
          if (kind < 8)
            b0 &= ~(RSV2 | RSV3); /* mostly legal bits */
          if ((b0 & 0x08) && kind < 9)
            {
              b0 |= FIN;
              plen = MIN (plen, 125);
            }
          append_frame_full (data, b0, payload, plen, kind != 9,
                             (LenForm)g_test_rand_int_range (0, 3));
        }

      recorder_init (&r1);
      recorder_init (&r2);
      ret1 = feed_all (&p1, &lim, data, &r1, &code1, &reason1);
      ret2 = feed_chunked (&p2, &lim, data->data, data->len, 0, &r2, &code2, &reason2);
      g_assert_cmpstr (r1.log->str, ==, r2.log->str);
      if (ret1 < 0)
        {
          g_assert_cmpint (ret2, ==, -1);
          g_assert_cmpuint (code1, ==, code2);
          g_assert_cmpstr (reason1, ==, reason2);
        }
      else
        {
          g_assert_cmpint (ret2, >=, 0);
          g_assert_cmpint (ret1 + ret2, ==, data->len);
        }
      herald_ws_parser_clear (&p1);
      herald_ws_parser_clear (&p2);
      recorder_clear (&r1);
      recorder_clear (&r2);
    }
}

int
main (int argc, char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/ws/parse/messages", test_parse_messages);
  g_test_add_func ("/ws/parse/incomplete", test_parse_incomplete);
  g_test_add_func ("/ws/parse/fragments-with-ping", test_parse_fragments_with_ping);
  g_test_add_func ("/ws/parse/stop", test_parse_stop);
  g_test_add_func ("/ws/error/unmasked", test_error_unmasked);
  g_test_add_func ("/ws/error/rsv", test_error_rsv);
  g_test_add_func ("/ws/error/reserved-opcodes", test_error_reserved_opcodes);
  g_test_add_func ("/ws/error/control", test_error_control);
  g_test_add_func ("/ws/error/fragmentation", test_error_fragmentation);
  g_test_add_func ("/ws/error/length-top-bit", test_error_length_top_bit);
  g_test_add_func ("/ws/error/frame-too-big", test_error_frame_too_big);
  g_test_add_func ("/ws/error/message-too-big", test_error_message_too_big);
  g_test_add_func ("/ws/error/utf8", test_error_utf8);
  g_test_add_func ("/ws/close", test_close);
  g_test_add_func ("/ws/split-every-byte", test_split_every_byte);
  g_test_add_func ("/ws/deflate/roundtrip", test_deflate_roundtrip);
  g_test_add_func ("/ws/deflate/zlib", test_deflate_zlib);
  g_test_add_func ("/ws/deflate/bomb", test_deflate_bomb);
  g_test_add_func ("/ws/build/header", test_frame_header);
  g_test_add_func ("/ws/build/frame", test_frame_new);
  g_test_add_func ("/ws/build/close", test_close_frame_new);
  g_test_add_func ("/ws/close-code-valid", test_close_code_valid);
  g_test_add_func ("/ws/negotiate", test_negotiate);
  g_test_add_func ("/ws/fuzz/random-bytes", test_fuzz_random_bytes);
  g_test_add_func ("/ws/fuzz/chunking", test_fuzz_frames_chunking);

  return g_test_run ();
}
