/* herald-ws.h: RFC 6455 server-side framing and parsing (no I/O).
 *
 * Herald owns established WebSocket streams itself: this module turns bytes
 * from a client into events and builds the frames the server sends. It does
 * no I/O and keeps no per-connection state beyond HeraldWsParser, which is
 * embedded in the connection and costs nothing while no fragmented message is
 * in progress.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef enum
{
  HERALD_WS_OPCODE_CONTINUATION = 0x0,
  HERALD_WS_OPCODE_TEXT = 0x1,
  HERALD_WS_OPCODE_BINARY = 0x2,
  HERALD_WS_OPCODE_CLOSE = 0x8,
  HERALD_WS_OPCODE_PING = 0x9,
  HERALD_WS_OPCODE_PONG = 0xA,
} HeraldWsOpcode;

/* Close codes used by the parser (RFC 6455 §7.4.1) */
#define HERALD_WS_CLOSE_NORMAL 1000
#define HERALD_WS_CLOSE_GOING_AWAY 1001
#define HERALD_WS_CLOSE_PROTOCOL_ERROR 1002
#define HERALD_WS_CLOSE_UNSUPPORTED_DATA 1003
#define HERALD_WS_CLOSE_NO_STATUS 1005
#define HERALD_WS_CLOSE_BAD_DATA 1007
#define HERALD_WS_CLOSE_POLICY_VIOLATION 1008
#define HERALD_WS_CLOSE_TOO_BIG 1009
#define HERALD_WS_CLOSE_SERVER_ERROR 1011

typedef enum
{
  HERALD_WS_EVENT_MESSAGE, /* a complete (reassembled, inflated) text or binary message */
  HERALD_WS_EVENT_PING,
  HERALD_WS_EVENT_PONG,
  HERALD_WS_EVENT_CLOSE, /* payload: the close frame's code (host order) in *code_out, reason */
} HeraldWsEventType;

typedef struct
{
  HeraldWsEventType type;
  HeraldWsOpcode opcode; /* TEXT or BINARY for MESSAGE */
  const guint8 *payload; /* valid only during the callback */
  gsize length;
  guint16 close_code;   /* CLOSE: code sent by the peer, or 1005 when the frame had none */
  const char *close_reason; /* CLOSE: NUL-terminated reason (may be "") */
} HeraldWsEvent;

/* Return FALSE to stop parsing (for instance when the connection was closed
 * by the handler); herald_ws_parser_feed() then returns what it consumed so far. */
typedef gboolean (*HeraldWsEventFunc) (const HeraldWsEvent *event, gpointer user_data);

/* Per-worker inflater for permessage-deflate with client_no_context_takeover:
 * each message inflates independently, so one scratch z_stream per thread serves
 * every connection of that thread. Not thread-safe. */
typedef struct _HeraldWsInflater HeraldWsInflater;
HeraldWsInflater *herald_ws_inflater_new (void);
void herald_ws_inflater_free (HeraldWsInflater *inflater);
/* Bytes of output buffer the inflater holds now (metrics; tests check bombs stay bounded). */
gsize herald_ws_inflater_get_allocated (const HeraldWsInflater *inflater);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (HeraldWsInflater, herald_ws_inflater_free)

typedef struct
{
  gsize max_frame_size;   /* payload bytes of one frame; larger → 1009 (checked from the header) */
  gsize max_message_size; /* total bytes of a reassembled message, before and after inflate → 1009 */
  gboolean deflate;       /* permessage-deflate negotiated: RSV1 allowed on first frames */
  HeraldWsInflater *inflater; /* required when deflate is TRUE */
} HeraldWsLimits;

/* Embedded in each connection. Zero-initialise it (or call herald_ws_parser_init). */
typedef struct
{
  GByteArray *message;  /* fragments of a message in progress, NULL otherwise */
  guint8 message_opcode;
  guint8 message_compressed; /* booleans; bytes keep the parser at 16 bytes */
  guint8 close_received;
} HeraldWsParser;

void herald_ws_parser_init (HeraldWsParser *parser);
void herald_ws_parser_clear (HeraldWsParser *parser);

/* Parses every complete frame in @data and emits events. Returns the number of
 * bytes consumed: the caller keeps the unconsumed tail (an incomplete frame) and
 * feeds it again with more data. Returns -1 on a protocol violation, with
 * *close_code set (1002, 1007, 1009, …) and *reason pointing to a static string.
 *
 * The rules enforced: client frames must be masked; RSV bits must be clear
 * (RSV1 only on the first frame of a message when deflate is on); reserved
 * opcodes are errors; control frames must have FIN and ≤125 bytes; continuation
 * without a message in progress, or a new data frame during one, is an error;
 * frame size is checked as soon as the header is complete, so an oversize frame is
 * refused before its payload arrives; the total size of a fragmented message is
 * bounded (also after inflate, so decompression bombs stop at max_message_size);
 * text messages must be valid UTF-8 (1007); close frame payload must be empty or
 * ≥2 bytes with a valid code and UTF-8 reason (else 1002/1007). After a CLOSE
 * event, further bytes are ignored. */
gssize herald_ws_parser_feed (HeraldWsParser *parser,
                              const HeraldWsLimits *limits,
                              const guint8 *data,
                              gsize length,
                              HeraldWsEventFunc func,
                              gpointer user_data,
                              guint16 *close_code,
                              const char **reason);

/* Frame builders for server→client frames (FIN set, unmasked). */

/* Writes the frame header for a payload of @payload_len into @out (≥ 10 bytes)
 * and returns its length. @rsv1 marks a compressed (permessage-deflate) message. */
gsize herald_ws_frame_header (guint8 *out, HeraldWsOpcode opcode, gboolean rsv1, guint64 payload_len);

/* A complete frame (header + payload) in one GBytes. */
GBytes *herald_ws_frame_new (HeraldWsOpcode opcode, const void *payload, gsize length);

/* A compressed frame (RSV1, raw deflate with no context takeover, trailing
 * 00 00 ff ff removed, RFC 7692 §7.2.1). The same bytes suit every subscriber. */
GBytes *herald_ws_frame_new_deflated (HeraldWsOpcode opcode, const void *payload, gsize length);

/* A close frame with @code and a UTF-8 @reason truncated to fit 125 bytes. */
GBytes *herald_ws_close_frame_new (guint16 code, const char *reason);

/* TRUE when @code may be sent by a peer in a close frame (RFC 6455 §7.4). */
gboolean herald_ws_close_code_is_valid (guint16 code);

/* permessage-deflate offer parsing (Sec-WebSocket-Extensions). Returns the
 * response header value to send when an acceptable permessage-deflate offer is
 * present ("permessage-deflate; server_no_context_takeover; client_no_context_takeover",
 * plus client_max_window_bits handling as RFC 7692 allows), or NULL when none
 * is acceptable. */
char *herald_ws_negotiate_deflate (const char *extensions_header);

G_END_DECLS
