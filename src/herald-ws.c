/* herald-ws.c: RFC 6455 / RFC 7692 framing and parsing (no I/O).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "herald-ws.h"

#include <string.h>
#include <zlib.h>

#define CONTROL_MAX_PAYLOAD 125
#define CLOSE_REASON_MAX (CONTROL_MAX_PAYLOAD - 2)

/* Per-thread buffers above this size are released after use instead of being
 * kept, so one huge message does not pin memory in a worker forever. */
#define SCRATCH_KEEP_MAX (256 * 1024)

/* GByteArray lengths are guint: cap limits well below that. 0 means "no limit". */
#define SIZE_LIMIT_CAP ((gsize)G_MAXUINT - 64)

#define INFLATE_INITIAL_ALLOC (16 * 1024)

static const guint8 deflate_tail[4] = { 0x00, 0x00, 0xff, 0xff };

/* ------------------------------------------------------------------------ */
/* Helpers */

/* Copies @len bytes from @src to @dst XOR-ing with the 4-byte @mask, eight
 * bytes per step: the mask repeated twice is a 64-bit word whose memory layout
 * matches the data whatever the host byte order. memcpy() keeps the unaligned
 * loads and stores legal; compilers turn them into plain moves. */
static inline void
unmask_copy (guint8 *dst, const guint8 *src, gsize len, const guint8 *mask)
{
  guint32 m32;
  guint64 m64;
  gsize i = 0;

  memcpy (&m32, mask, 4);
  m64 = ((guint64)m32 << 32) | m32;

  for (; i + 8 <= len; i += 8)
    {
      guint64 w;

      memcpy (&w, src + i, 8);
      w ^= m64;
      memcpy (dst + i, &w, 8);
    }
  /* i is a multiple of 8 here, so the mask phase restarts at 0 */
  for (; i < len; i++)
    dst[i] = src[i] ^ mask[i & 3];
}

/* g_utf8_validate_len() stops at NUL bytes, but U+0000 is valid in a WebSocket
 * text message: validate the runs between NULs (a NUL can never sit inside a
 * multi-byte sequence, so splitting there is exact). */
static gboolean
utf8_validate (const guint8 *data, gsize len)
{
  const char *p = (const char *)data;

  while (len > 0)
    {
      const char *nul = memchr (p, '\0', len);
      gsize run = nul ? (gsize)(nul - p) : len;

      if (!g_utf8_validate_len (p, run, NULL))
        return FALSE;
      if (nul == NULL)
        break;
      p = nul + 1;
      len -= run + 1;
    }
  return TRUE;
}

static void
scratch_free (gpointer data)
{
  g_byte_array_unref (data);
}

/* Per-thread buffer for unfragmented messages: the input is const, so the
 * unmasked payload has to live somewhere, and one buffer per worker thread
 * avoids an allocation per frame. */
static GPrivate scratch_key = G_PRIVATE_INIT (scratch_free);

static guint8 *
scratch_get (gsize len)
{
  GByteArray *scratch = g_private_get (&scratch_key);

  if (scratch == NULL)
    {
      scratch = g_byte_array_sized_new (MAX (len + 1, 4096));
      g_private_set (&scratch_key, scratch);
    }
  /* + 1: payloads handed to callbacks are NUL-terminated for convenience */
  g_byte_array_set_size (scratch, len + 1);
  return scratch->data;
}

static void
scratch_trim (void)
{
  GByteArray *scratch = g_private_get (&scratch_key);

  if (scratch != NULL && scratch->len > SCRATCH_KEEP_MAX)
    g_private_replace (&scratch_key, NULL);
}

/* ------------------------------------------------------------------------ */
/* Inflater */

struct _HeraldWsInflater
{
  z_stream zs;
  guint8 *out; /* inflated message of the last call, NUL-terminated */
  gsize out_alloc;
};

/**
 * herald_ws_inflater_new:
 *
 * Creates a raw-deflate decompressor for permessage-deflate messages sent
 * with client_no_context_takeover. One per worker thread is enough.
 *
 * Returns: (transfer full): a new #HeraldWsInflater
 */
HeraldWsInflater *
herald_ws_inflater_new (void)
{
  HeraldWsInflater *inflater = g_new0 (HeraldWsInflater, 1);

  /* Negative window bits: raw deflate without zlib header (RFC 7692 §7.2.2).
   * A 2^15 window decodes streams made with any smaller window too. */
  if (inflateInit2 (&inflater->zs, -15) != Z_OK)
    g_error ("inflateInit2 failed: %s", inflater->zs.msg ? inflater->zs.msg : "out of memory");
  return inflater;
}

/**
 * herald_ws_inflater_free:
 * @inflater: (nullable): a #HeraldWsInflater
 *
 * Frees @inflater and its buffers.
 */
void
herald_ws_inflater_free (HeraldWsInflater *inflater)
{
  if (inflater == NULL)
    return;
  inflateEnd (&inflater->zs);
  g_free (inflater->out);
  g_free (inflater);
}

/**
 * herald_ws_inflater_get_allocated:
 * @inflater: a #HeraldWsInflater
 *
 * Returns: the size in bytes of the output buffer @inflater currently holds
 *   (for metrics, and for tests checking that decompression stays bounded)
 */
gsize
herald_ws_inflater_get_allocated (const HeraldWsInflater *inflater)
{
  g_return_val_if_fail (inflater != NULL, 0);
  return inflater->out_alloc;
}

/* Grows the output buffer towards @cap; FALSE when it is already there. */
static gboolean
inflater_grow (HeraldWsInflater *inflater, gsize cap)
{
  gsize new_alloc;

  if (inflater->out_alloc >= cap)
    return FALSE;
  if (inflater->out_alloc == 0)
    new_alloc = INFLATE_INITIAL_ALLOC;
  else if (inflater->out_alloc > cap / 2)
    new_alloc = cap;
  else
    new_alloc = inflater->out_alloc * 2;
  new_alloc = MIN (new_alloc, cap);
  inflater->out = g_realloc (inflater->out, new_alloc);
  inflater->out_alloc = new_alloc;
  return TRUE;
}

/* Inflates one complete compressed message into inflater->out, in chunks,
 * never holding more than @max_size + 1 bytes: a decompression bomb stops as
 * soon as its output passes the limit. Returns 0 or a close code. */
static guint16
inflater_run (HeraldWsInflater *inflater, const guint8 *in, gsize in_len, gsize max_size,
              gsize *out_len, const char **reason)
{
  const guint8 *seg_data[2] = { in, deflate_tail };
  gsize seg_len[2] = { in_len, sizeof deflate_tail };
  /* one byte beyond the limit detects overflow */
  gsize cap = max_size + 1;
  gsize produced = 0;
  z_stream *zs = &inflater->zs;

  inflateReset (zs);

  /* The sender removed the trailing 00 00 ff ff of its sync flush; feed it back
   * after the payload (RFC 7692 §7.2.2). */
  for (guint i = 0; i < G_N_ELEMENTS (seg_data); i++)
    {
      const guint8 *next = seg_data[i];
      gsize remaining = seg_len[i];
      gboolean more = TRUE;

      zs->avail_in = 0;
      while (more)
        {
          uInt avail_out;
          int ret;

          if (zs->avail_in == 0 && remaining > 0)
            {
              uInt chunk = (uInt)MIN (remaining, (gsize)G_MAXUINT);

              zs->next_in = (Bytef *)next;
              zs->avail_in = chunk;
              next += chunk;
              remaining -= chunk;
            }
          if (produced == inflater->out_alloc && !inflater_grow (inflater, cap))
            goto too_big;

          avail_out = (uInt)MIN (inflater->out_alloc - produced, (gsize)G_MAXUINT);
          zs->next_out = inflater->out + produced;
          zs->avail_out = avail_out;
          ret = inflate (zs, Z_SYNC_FLUSH);
          produced += avail_out - zs->avail_out;

          if (produced > max_size)
            goto too_big;
          if (ret == Z_STREAM_END)
            goto done; /* BFINAL block: whatever follows is ignored */
          if (ret != Z_OK && ret != Z_BUF_ERROR)
            {
              *reason = "invalid compressed data";
              return HERALD_WS_CLOSE_BAD_DATA;
            }
          /* A full output buffer may hide pending output: go round again. */
          more = zs->avail_in > 0 || remaining > 0 || zs->avail_out == 0;
        }
    }

done:
  if (produced == inflater->out_alloc)
    {
      inflater->out = g_realloc (inflater->out, produced + 1);
      inflater->out_alloc = produced + 1;
    }
  inflater->out[produced] = '\0';
  *out_len = produced;
  return 0;

too_big:
  *reason = "inflated message too big";
  return HERALD_WS_CLOSE_TOO_BIG;
}

static void
inflater_trim (HeraldWsInflater *inflater)
{
  if (inflater->out_alloc > SCRATCH_KEEP_MAX)
    {
      g_clear_pointer (&inflater->out, g_free);
      inflater->out_alloc = 0;
    }
}

/* ------------------------------------------------------------------------ */
/* Parser */

/**
 * herald_ws_parser_init:
 * @parser: a #HeraldWsParser
 *
 * Initialises @parser (equivalent to zero-filling it).
 */
void
herald_ws_parser_init (HeraldWsParser *parser)
{
  g_return_if_fail (parser != NULL);
  memset (parser, 0, sizeof *parser);
}

/**
 * herald_ws_parser_clear:
 * @parser: a #HeraldWsParser
 *
 * Frees any partial message held by @parser and resets it.
 */
void
herald_ws_parser_clear (HeraldWsParser *parser)
{
  g_return_if_fail (parser != NULL);
  g_clear_pointer (&parser->message, g_byte_array_unref);
  memset (parser, 0, sizeof *parser);
}

typedef enum
{
  DELIVER_CONTINUE,
  DELIVER_STOP,
  DELIVER_ERROR,
} DeliverResult;

/* Inflates when needed, validates text and emits one MESSAGE event. */
static DeliverResult
deliver_message (const HeraldWsLimits *limits, guint8 opcode, gboolean compressed,
                 const guint8 *payload, gsize length, HeraldWsEventFunc func, gpointer user_data,
                 guint16 *code, const char **reason)
{
  HeraldWsEvent event = { 0 };
  gboolean keep_going;

  if (compressed)
    {
      gsize out_len = 0;

      *code = inflater_run (limits->inflater, payload, length, limits->max_message_size, &out_len,
                            reason);
      if (*code != 0)
        return DELIVER_ERROR;
      payload = limits->inflater->out;
      length = out_len;
    }

  if (opcode == HERALD_WS_OPCODE_TEXT && !utf8_validate (payload, length))
    {
      *code = HERALD_WS_CLOSE_BAD_DATA;
      *reason = "text message is not valid UTF-8";
      return DELIVER_ERROR;
    }

  event.type = HERALD_WS_EVENT_MESSAGE;
  event.opcode = opcode;
  event.payload = payload;
  event.length = length;
  keep_going = func (&event, user_data);

  if (compressed)
    inflater_trim (limits->inflater);
  return keep_going ? DELIVER_CONTINUE : DELIVER_STOP;
}

static gssize
parse_error (guint16 code, const char *why, guint16 *close_code, const char **reason)
{
  g_debug ("WebSocket protocol error %u: %s", code, why);
  if (close_code != NULL)
    *close_code = code;
  if (reason != NULL)
    *reason = why;
  return -1;
}

/* A protocol violation found while parsing one frame. */
typedef struct
{
  guint16 code;
  const char *why;
} Failure;

/* What handling one frame tells the parsing loop. */
typedef enum
{
  STEP_CONTINUE, /* go on with the next frame */
  STEP_STOP,     /* the callback asked to stop */
  STEP_CLOSED,   /* a close frame: the rest of the input is ignored */
  STEP_ERROR,    /* a protocol violation (see the Failure) */
} Step;

static inline Step
fail_with (Failure *failure, guint16 code, const char *why)
{
  failure->code = code;
  failure->why = why;
  return STEP_ERROR;
}

/* One frame's header, decoded. */
typedef struct
{
  gboolean fin, rsv1, control;
  guint8 opcode;
  guint64 payload_len;
  gsize header_len; /* including the masking key */
  const guint8 *mask;
  const guint8 *payload;
} FrameHeader;

typedef enum
{
  HEADER_READY,
  HEADER_INCOMPLETE, /* wait for more bytes */
  HEADER_ERROR,
} HeaderResult;

/* Everything decidable from the first two bytes: reserved bits, masking,
 * opcode, the control frame rules and where the frame may stand in a
 * fragmented message. Returns the violation, or NULL. */
static inline const char *
check_first_bytes (const HeraldWsParser *parser, const HeraldWsLimits *lim, const guint8 *p,
                   FrameHeader *h)
{
  h->fin = (p[0] & 0x80) != 0;
  h->rsv1 = (p[0] & 0x40) != 0;
  h->opcode = p[0] & 0x0f;
  h->control = (h->opcode & 0x08) != 0;
  h->payload_len = p[1] & 0x7f;

  if (p[0] & 0x30)
    return "reserved bits RSV2/RSV3 set";
  if (!(p[1] & 0x80))
    return "client frame not masked";
  switch (h->opcode)
    {
    case HERALD_WS_OPCODE_CONTINUATION:
    case HERALD_WS_OPCODE_TEXT:
    case HERALD_WS_OPCODE_BINARY:
    case HERALD_WS_OPCODE_CLOSE:
    case HERALD_WS_OPCODE_PING:
    case HERALD_WS_OPCODE_PONG:
      break;
    default:
      return "reserved opcode";
    }
  if (h->control)
    {
      if (!h->fin)
        return "fragmented control frame";
      if (h->payload_len > CONTROL_MAX_PAYLOAD)
        return "control frame payload over 125 bytes";
      if (h->rsv1)
        return "RSV1 set on a control frame";
    }
  else if (h->opcode == HERALD_WS_OPCODE_CONTINUATION)
    {
      if (parser->message == NULL)
        return "continuation frame without a message in progress";
      if (h->rsv1)
        return "RSV1 set on a continuation frame";
    }
  else
    {
      if (parser->message != NULL)
        return "new data frame inside a fragmented message";
      if (h->rsv1 && !lim->deflate)
        return "RSV1 set without permessage-deflate";
    }
  return NULL;
}

/* Decodes the header at @p (@avail ≥ 2 bytes) and checks the size limits
 * from it, so an oversize frame is refused before its payload is received
 * or buffered. READY once the whole frame is in @avail. */
static inline HeaderResult
read_header (const HeraldWsParser *parser, const HeraldWsLimits *lim, const guint8 *p, gsize avail,
             FrameHeader *h, Failure *failure)
{
  const char *why = check_first_bytes (parser, lim, p, h);

  if (why != NULL)
    {
      fail_with (failure, HERALD_WS_CLOSE_PROTOCOL_ERROR, why);
      return HEADER_ERROR;
    }
  h->header_len = 2;
  if (h->payload_len == 126)
    {
      if (avail < 4)
        return HEADER_INCOMPLETE;
      h->payload_len = ((guint64)p[2] << 8) | p[3];
      h->header_len = 4;
    }
  else if (h->payload_len == 127)
    {
      if (avail < 10)
        return HEADER_INCOMPLETE;
      h->payload_len = 0;
      for (guint i = 2; i < 10; i++)
        h->payload_len = (h->payload_len << 8) | p[i];
      if (h->payload_len >> 63)
        {
          fail_with (failure, HERALD_WS_CLOSE_PROTOCOL_ERROR,
                     "64-bit payload length with the top bit set");
          return HEADER_ERROR;
        }
      h->header_len = 10;
    }

  if (h->payload_len > lim->max_frame_size)
    {
      fail_with (failure, HERALD_WS_CLOSE_TOO_BIG, "frame too big");
      return HEADER_ERROR;
    }
  if (!h->control
      && h->payload_len + (parser->message ? parser->message->len : 0) > lim->max_message_size)
    {
      fail_with (failure, HERALD_WS_CLOSE_TOO_BIG, "message too big");
      return HEADER_ERROR;
    }

  h->header_len += 4; /* masking key */
  if (avail < h->header_len || avail - h->header_len < h->payload_len)
    return HEADER_INCOMPLETE;
  h->mask = p + h->header_len - 4;
  h->payload = p + h->header_len;
  return HEADER_READY;
}

/* Hands out a complete message (inflating and validating it first). */
static inline Step
message_step (const HeraldWsLimits *lim, guint8 opcode, gboolean compressed, const guint8 *payload,
              gsize length, HeraldWsEventFunc func, gpointer user_data, Failure *failure)
{
  switch (deliver_message (lim, opcode, compressed, payload, length, func, user_data,
                           &failure->code, &failure->why))
    {
    case DELIVER_CONTINUE:
      return STEP_CONTINUE;
    case DELIVER_STOP:
      return STEP_STOP;
    default:
      return STEP_ERROR;
    }
}

/* The close frame's payload: empty, or a valid code and a UTF-8 reason. */
static const char *
read_close_payload (const guint8 *buf, gsize len, HeraldWsEvent *event, guint16 *code)
{
  event->type = HERALD_WS_EVENT_CLOSE;
  event->close_code = HERALD_WS_CLOSE_NO_STATUS;
  event->close_reason = "";
  *code = HERALD_WS_CLOSE_PROTOCOL_ERROR;
  if (len == 1)
    return "close frame with a 1-byte payload";
  if (len >= 2)
    {
      event->close_code = (guint16)((buf[0] << 8) | buf[1]);
      if (!herald_ws_close_code_is_valid (event->close_code))
        return "invalid close code";
      if (!utf8_validate (buf + 2, len - 2))
        {
          *code = HERALD_WS_CLOSE_BAD_DATA;
          return "close reason is not valid UTF-8";
        }
      event->close_reason = (const char *)buf + 2;
    }
  return NULL;
}

/* PING, PONG or CLOSE (≤ 125 bytes, unmasked on the stack). */
static Step
control_frame (HeraldWsParser *parser, const FrameHeader *h, HeraldWsEventFunc func,
               gpointer user_data, Failure *failure)
{
  /* + 1 for a NUL terminator (the close reason is handed out as a string) */
  guint8 buf[CONTROL_MAX_PAYLOAD + 1];
  HeraldWsEvent event = { 0 };
  gsize len = (gsize)h->payload_len;

  unmask_copy (buf, h->payload, len, h->mask);
  buf[len] = '\0';
  event.payload = buf;
  event.length = len;

  if (h->opcode == HERALD_WS_OPCODE_CLOSE)
    {
      guint16 code;
      const char *why = read_close_payload (buf, len, &event, &code);

      if (why != NULL)
        return fail_with (failure, code, why);
      /* Set before the callback, which may free the connection. */
      parser->close_received = TRUE;
      g_clear_pointer (&parser->message, g_byte_array_unref);
      func (&event, user_data);
      return STEP_CLOSED;
    }
  event.type = h->opcode == HERALD_WS_OPCODE_PING ? HERALD_WS_EVENT_PING : HERALD_WS_EVENT_PONG;
  return func (&event, user_data) ? STEP_CONTINUE : STEP_STOP;
}

/* An unfragmented message: unmasked into the per-thread scratch, no allocation. */
static inline Step
single_frame_message (const HeraldWsLimits *lim, const FrameHeader *h, HeraldWsEventFunc func,
                      gpointer user_data, Failure *failure)
{
  gsize len = (gsize)h->payload_len;
  guint8 *buf = scratch_get (len);
  Step step;

  unmask_copy (buf, h->payload, len, h->mask);
  buf[len] = '\0';
  step = message_step (lim, h->opcode, h->rsv1, buf, len, func, user_data, failure);
  scratch_trim ();
  return step;
}

/* The first fragment of a message: the only place the parser allocates. */
static void
fragment_start (HeraldWsParser *parser, const FrameHeader *h)
{
  gsize len = (gsize)h->payload_len;

  parser->message = g_byte_array_sized_new ((guint)len + 1);
  g_byte_array_set_size (parser->message, (guint)len);
  unmask_copy (parser->message->data, h->payload, len, h->mask);
  parser->message_opcode = h->opcode;
  parser->message_compressed = h->rsv1;
}

/* A continuation: appended; with FIN, the reassembled message is handed out. */
static Step
fragment_continue (HeraldWsParser *parser, const HeraldWsLimits *lim, const FrameHeader *h,
                   HeraldWsEventFunc func, gpointer user_data, Failure *failure)
{
  GByteArray *msg = parser->message;
  guint old_len = msg->len;
  g_autoptr (GByteArray) complete = NULL;
  guint8 opcode;
  gboolean compressed;
  gsize msg_len;

  g_byte_array_set_size (msg, old_len + (guint)h->payload_len);
  unmask_copy (msg->data + old_len, h->payload, (gsize)h->payload_len, h->mask);
  if (!h->fin)
    return STEP_CONTINUE;

  /* Detach the message first: the callback may clear or free the parser. */
  complete = g_steal_pointer (&parser->message);
  opcode = parser->message_opcode;
  compressed = parser->message_compressed;
  msg_len = complete->len;
  parser->message_opcode = 0;
  parser->message_compressed = FALSE;
  g_byte_array_append (complete, (const guint8 *)"", 1);
  return message_step (lim, opcode, compressed, complete->data, msg_len, func, user_data, failure);
}

static inline Step
data_frame (HeraldWsParser *parser, const HeraldWsLimits *lim, const FrameHeader *h,
            HeraldWsEventFunc func, gpointer user_data, Failure *failure)
{
  if (h->opcode == HERALD_WS_OPCODE_CONTINUATION)
    return fragment_continue (parser, lim, h, func, user_data, failure);
  if (h->fin)
    return single_frame_message (lim, h, func, user_data, failure);
  fragment_start (parser, h);
  return STEP_CONTINUE;
}

/**
 * herald_ws_parser_feed:
 * @parser: the connection's #HeraldWsParser
 * @limits: size limits and deflate state
 * @data: (array length=length): bytes received from the client
 * @length: number of bytes in @data
 * @func: called for every event
 * @user_data: data for @func
 * @close_code: (out) (optional): close code to send on a protocol violation
 * @reason: (out) (optional) (transfer none): static description of the violation
 *
 * Parses every complete frame in @data. See herald-ws.h for the rules.
 * A limit of 0 in @limits means "no limit". Message payloads handed to @func
 * are followed by a NUL byte not counted in their length; the payload of a
 * CLOSE event is the whole unmasked close payload (code and reason).
 *
 * Returns: the number of bytes consumed, or -1 on a protocol violation
 */
gssize
herald_ws_parser_feed (HeraldWsParser *parser, const HeraldWsLimits *limits, const guint8 *data,
                       gsize length, HeraldWsEventFunc func, gpointer user_data,
                       guint16 *close_code, const char **reason)
{
  HeraldWsLimits lim;
  Failure failure = { 0 };
  gsize pos = 0;

  g_return_val_if_fail (parser != NULL, -1);
  g_return_val_if_fail (limits != NULL, -1);
  g_return_val_if_fail (data != NULL || length == 0, -1);
  g_return_val_if_fail (func != NULL, -1);

  if (parser->close_received)
    return length;

  /* A copy: @limits may live in the connection, which a callback may free. */
  lim = *limits;
  if (lim.max_frame_size == 0 || lim.max_frame_size > SIZE_LIMIT_CAP)
    lim.max_frame_size = SIZE_LIMIT_CAP;
  if (lim.max_message_size == 0 || lim.max_message_size > SIZE_LIMIT_CAP)
    lim.max_message_size = SIZE_LIMIT_CAP;
  if (lim.deflate && lim.inflater == NULL)
    {
      g_critical ("%s: deflate negotiated but no inflater given", G_STRFUNC);
      return parse_error (HERALD_WS_CLOSE_SERVER_ERROR, "no inflater", close_code, reason);
    }

  while (length - pos >= 2)
    {
      FrameHeader h;
      Step step;

      switch (read_header (parser, &lim, data + pos, length - pos, &h, &failure))
        {
        case HEADER_READY:
          break;
        case HEADER_INCOMPLETE:
          return pos;
        default:
          return parse_error (failure.code, failure.why, close_code, reason);
        }
      pos += h.header_len + (gsize)h.payload_len;

      if (h.control)
        step = control_frame (parser, &h, func, user_data, &failure);
      else
        step = data_frame (parser, &lim, &h, func, user_data, &failure);
      switch (step)
        {
        case STEP_CONTINUE:
          break;
        case STEP_STOP:
          return pos;
        case STEP_CLOSED:
          return length; /* the rest is ignored */
        default:
          return parse_error (failure.code, failure.why, close_code, reason);
        }
    }
  return pos;
}

/* ------------------------------------------------------------------------ */
/* Builders */

/**
 * herald_ws_frame_header:
 * @out: (out caller-allocates): at least 10 bytes
 * @opcode: the frame's opcode
 * @rsv1: whether to set RSV1 (compressed message)
 * @payload_len: the payload length
 *
 * Writes an unmasked FIN frame header using the shortest length encoding.
 *
 * Returns: the header length (2, 4 or 10)
 */
gsize
herald_ws_frame_header (guint8 *out, HeraldWsOpcode opcode, gboolean rsv1, guint64 payload_len)
{
  out[0] = 0x80 | (rsv1 ? 0x40 : 0) | (opcode & 0x0f);
  if (payload_len < 126)
    {
      out[1] = (guint8)payload_len;
      return 2;
    }
  if (payload_len <= G_MAXUINT16)
    {
      out[1] = 126;
      out[2] = (guint8)(payload_len >> 8);
      out[3] = (guint8)payload_len;
      return 4;
    }
  out[1] = 127;
  for (guint i = 0; i < 8; i++)
    out[2 + i] = (guint8)(payload_len >> (56 - 8 * i));
  return 10;
}

/**
 * herald_ws_frame_new:
 * @opcode: the frame's opcode
 * @payload: (array length=length) (nullable): the payload
 * @length: payload length (≤ 125 for control frames)
 *
 * Returns: (transfer full): a complete unmasked FIN frame
 */
GBytes *
herald_ws_frame_new (HeraldWsOpcode opcode, const void *payload, gsize length)
{
  guint8 header[10];
  gsize header_len;
  guint8 *buf;

  g_return_val_if_fail (payload != NULL || length == 0, NULL);
  g_return_val_if_fail (!(opcode & 0x08) || length <= CONTROL_MAX_PAYLOAD, NULL);

  header_len = herald_ws_frame_header (header, opcode, FALSE, length);
  buf = g_malloc (header_len + length);
  memcpy (buf, header, header_len);
  if (length > 0)
    memcpy (buf + header_len, payload, length);
  return g_bytes_new_take (buf, header_len + length);
}

typedef struct
{
  z_stream zs;
} Deflater;

static void
deflater_free (gpointer data)
{
  Deflater *deflater = data;

  deflateEnd (&deflater->zs);
  g_free (deflater);
}

/* One compressor per thread, reset between messages: deflateInit2() costs
 * ~256 KiB of allocations, too much to repeat per message. */
static GPrivate deflater_key = G_PRIVATE_INIT (deflater_free);

static z_stream *
deflater_get (void)
{
  Deflater *deflater = g_private_get (&deflater_key);

  if (deflater == NULL)
    {
      deflater = g_new0 (Deflater, 1);
      /* Raw deflate (negative window bits), 2^15 window, memLevel 8. */
      if (deflateInit2 (&deflater->zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -15, 8,
                        Z_DEFAULT_STRATEGY)
          != Z_OK)
        g_error ("deflateInit2 failed");
      g_private_set (&deflater_key, deflater);
    }
  else
    {
      deflateReset (&deflater->zs);
    }
  return &deflater->zs;
}

/**
 * herald_ws_frame_new_deflated:
 * @opcode: %HERALD_WS_OPCODE_TEXT or %HERALD_WS_OPCODE_BINARY
 * @payload: (array length=length) (nullable): the uncompressed payload
 * @length: payload length
 *
 * Compresses @payload as one permessage-deflate message with no context
 * takeover (RFC 7692 §7.2.1): raw deflate, sync flush, trailing 00 00 ff ff
 * removed, RSV1 set. Because no context is carried over, the same frame can be
 * sent to every subscriber: this runs once per published message, not per
 * subscriber, so the default compression level is affordable.
 *
 * Returns: (transfer full): a complete unmasked FIN frame
 */
GBytes *
herald_ws_frame_new_deflated (HeraldWsOpcode opcode, const void *payload, gsize length)
{
  z_stream *zs;
  const guint8 *next = payload;
  gsize remaining = length;
  gsize alloc;
  gsize produced = 0;
  guint8 *buf;
  guint8 header[10];
  gsize header_len;
  gsize offset;

  g_return_val_if_fail (opcode == HERALD_WS_OPCODE_TEXT || opcode == HERALD_WS_OPCODE_BINARY, NULL);
  g_return_val_if_fail (payload != NULL || length == 0, NULL);

  zs = deflater_get ();
  /* 10 bytes reserved in front for the header, written once the size is known;
   * deflateBound() assumes Z_FINISH, the margin covers the sync flush marker. */
  alloc = 10 + deflateBound (zs, length) + 16;
  buf = g_malloc (alloc);
  zs->avail_in = 0;

  do
    {
      uInt avail_out;
      int ret;

      if (zs->avail_in == 0 && remaining > 0)
        {
          uInt chunk = (uInt)MIN (remaining, (gsize)G_MAXUINT);

          zs->next_in = (Bytef *)next;
          zs->avail_in = chunk;
          next += chunk;
          remaining -= chunk;
        }
      if (10 + produced == alloc)
        {
          alloc *= 2;
          buf = g_realloc (buf, alloc);
        }
      avail_out = (uInt)MIN (alloc - 10 - produced, (gsize)G_MAXUINT);
      zs->next_out = buf + 10 + produced;
      zs->avail_out = avail_out;
      ret = deflate (zs, Z_SYNC_FLUSH);
      g_assert (ret == Z_OK || ret == Z_BUF_ERROR);
      produced += avail_out - zs->avail_out;
    }
  while (zs->avail_in > 0 || remaining > 0 || zs->avail_out == 0);

  /* A sync flush always ends with an empty stored block: 00 00 ff ff. */
  g_assert (produced >= 4 && memcmp (buf + 10 + produced - 4, deflate_tail, 4) == 0);
  produced -= 4;

  header_len = herald_ws_frame_header (header, opcode, TRUE, produced);
  offset = 10 - header_len;
  memcpy (buf + offset, header, header_len);
  return g_bytes_new_with_free_func (buf + offset, header_len + produced, g_free, buf);
}

/**
 * herald_ws_close_frame_new:
 * @code: close code; 0 or 1005 (no status) make an empty close frame
 * @reason: (nullable): UTF-8 reason
 *
 * Builds a close frame. @reason is truncated to 123 bytes, at a character
 * boundary, so the frame stays a valid control frame.
 *
 * Returns: (transfer full): a complete unmasked close frame
 */
GBytes *
herald_ws_close_frame_new (guint16 code, const char *reason)
{
  guint8 payload[CONTROL_MAX_PAYLOAD];
  gsize len = 0;

  /* 1005 must never be sent (RFC 6455 §7.4.1): it means "no code". */
  if (code != 0 && code != HERALD_WS_CLOSE_NO_STATUS)
    {
      gsize reason_len = reason ? strlen (reason) : 0;

      payload[0] = (guint8)(code >> 8);
      payload[1] = (guint8)code;
      len = 2;
      if (reason_len > CLOSE_REASON_MAX)
        {
          /* Back up over continuation bytes so no sequence is cut in half. */
          reason_len = CLOSE_REASON_MAX;
          while (reason_len > 0 && ((guint8)reason[reason_len] & 0xc0) == 0x80)
            reason_len--;
        }
      if (reason_len > 0)
        memcpy (payload + 2, reason, reason_len);
      len += reason_len;
    }
  return herald_ws_frame_new (HERALD_WS_OPCODE_CLOSE, payload, len);
}

/**
 * herald_ws_close_code_is_valid:
 * @code: a close code received from a peer
 *
 * Returns: %TRUE when @code may appear in a close frame (RFC 6455 §7.4 and the
 *   IANA registry: 1000–1003, 1007–1014, 3000–4999)
 */
gboolean
herald_ws_close_code_is_valid (guint16 code)
{
  if (code >= 1000 && code <= 1003)
    return TRUE;
  if (code >= 1007 && code <= 1014)
    return TRUE;
  return code >= 3000 && code <= 4999;
}

/* ------------------------------------------------------------------------ */
/* permessage-deflate negotiation (RFC 7692 §7.1) */

enum
{
  PARAM_SERVER_NO_CONTEXT_TAKEOVER,
  PARAM_CLIENT_NO_CONTEXT_TAKEOVER,
  PARAM_SERVER_MAX_WINDOW_BITS,
  PARAM_CLIENT_MAX_WINDOW_BITS,
  N_PARAMS
};

static const char *const param_names[N_PARAMS] = {
  "server_no_context_takeover",
  "client_no_context_takeover",
  "server_max_window_bits",
  "client_max_window_bits",
};

/* Window bits values are 1*DIGIT in 8..15 without leading zeros (§7.1.2),
 * possibly as a quoted-string. Returns 0 when invalid. */
static guint
parse_window_bits (char *value)
{
  gsize len = strlen (value);

  if (len >= 2 && value[0] == '"' && value[len - 1] == '"')
    {
      value[len - 1] = '\0';
      value++;
      len -= 2;
    }
  if (len == 1 && (value[0] == '8' || value[0] == '9'))
    return value[0] - '0';
  if (len == 2 && value[0] == '1' && value[1] >= '0' && value[1] <= '5')
    return 10 + (value[1] - '0');
  return 0;
}

/* Checks one offer's parameters (modified in place). *want_server_bits is set
 * when the offer carries server_max_window_bits=15, which the response must echo. */
static gboolean
offer_is_acceptable (char **params, gboolean *want_server_bits)
{
  gboolean seen[N_PARAMS] = { FALSE };

  *want_server_bits = FALSE;
  for (guint i = 0; params[i] != NULL; i++)
    {
      char *name = params[i];
      char *value = strchr (name, '=');
      guint idx;

      if (value != NULL)
        {
          *value++ = '\0';
          g_strstrip (value);
        }
      g_strstrip (name);

      for (idx = 0; idx < N_PARAMS; idx++)
        if (g_ascii_strcasecmp (name, param_names[idx]) == 0)
          break;
      if (idx == N_PARAMS || seen[idx])
        return FALSE; /* unknown (or empty) and duplicate parameters void the offer */
      seen[idx] = TRUE;

      switch (idx)
        {
        case PARAM_SERVER_NO_CONTEXT_TAKEOVER:
        case PARAM_CLIENT_NO_CONTEXT_TAKEOVER:
          if (value != NULL)
            return FALSE;
          break;
        case PARAM_SERVER_MAX_WINDOW_BITS:
          /* We always compress with a 2^15 window: a smaller limit means
           * declining this offer (a later one may suit). */
          if (value == NULL || parse_window_bits (value) != 15)
            return FALSE;
          *want_server_bits = TRUE;
          break;
        case PARAM_CLIENT_MAX_WINDOW_BITS:
          /* Any client window is fine to inflate with a 2^15 window, so the
           * response never needs to mention it; only the syntax is checked. */
          if (value != NULL && parse_window_bits (value) == 0)
            return FALSE;
          break;
        default:
          g_assert_not_reached ();
        }
    }
  return TRUE;
}

/**
 * herald_ws_negotiate_deflate:
 * @extensions_header: (nullable): the Sec-WebSocket-Extensions request header
 *
 * Accepts the first acceptable permessage-deflate offer. The response always
 * asks for no context takeover in both directions (§7.1.1.1, §7.1.1.2), which
 * lets one compressed frame serve all subscribers and one inflater serve all
 * connections of a thread.
 *
 * Returns: (transfer full) (nullable): the response header value, or %NULL
 */
char *
herald_ws_negotiate_deflate (const char *extensions_header)
{
  g_auto (GStrv) offers = NULL;

  if (extensions_header == NULL)
    return NULL;

  offers = g_strsplit (extensions_header, ",", -1);
  for (guint i = 0; offers[i] != NULL; i++)
    {
      g_auto (GStrv) parts = g_strsplit (offers[i], ";", -1);
      gboolean want_server_bits = FALSE;

      if (parts[0] == NULL)
        continue;
      g_strstrip (parts[0]);
      if (g_ascii_strcasecmp (parts[0], "permessage-deflate") != 0)
        continue;
      if (!offer_is_acceptable (parts + 1, &want_server_bits))
        continue;

      return g_strconcat ("permessage-deflate; server_no_context_takeover; "
                          "client_no_context_takeover",
                          want_server_bits ? "; server_max_window_bits=15" : "", NULL);
    }
  return NULL;
}
