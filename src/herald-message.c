/* herald-message.c
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>

#include "herald-message.h"
#include "herald-json.h"
#include "herald-ws.h"

struct _HeraldMessage
{
  char *channel;
  char *epoch;
  guint64 offset;
  guint64 seq;
  gint64 time;
  char *key;     /* conflation key (publish "key"), NULL when none */
  char *event;   /* the SSE event name, NULL = "message" */
  char *exclude; /* join/leave: the connection the event is about (not told) */
  char *json;
  gsize json_len;
  gboolean reset; /* herald_message_new_reset() */
  gsize data_at;  /* where ",\"data\":" starts in @json (channel messages), 0 = none */
  /* [conflated][kind], each set once with compare-and-exchange; the
   * conflated variants carry "conflated":true (herald_message_get_frame_full()) */
  GBytes *frames[2][HERALD_N_FRAMES];
};

G_DEFINE_BOXED_TYPE (HeraldMessage, herald_message, herald_message_ref, herald_message_unref)

static void
append_json_string (GString *out, const char *s)
{
  /* Channel names are restricted to [A-Za-z0-9_.:@/-] by the hub, but escape
   * anyway so this stays correct for any caller. */
  g_string_append_c (out, '"');
  for (; *s; s++)
    {
      guchar c = (guchar)*s;
      if (c == '"' || c == '\\')
        {
          g_string_append_c (out, '\\');
          g_string_append_c (out, c);
        }
      else if (c < 0x20)
        g_string_append_printf (out, "\\u%04x", c);
      else
        g_string_append_c (out, c);
    }
  g_string_append_c (out, '"');
}

static HeraldMessage *
message_alloc (void)
{
  HeraldMessage *self = g_atomic_rc_box_new0 (HeraldMessage);
  self->time = g_get_monotonic_time ();
  return self;
}

/**
 * herald_message_new_channel:
 *
 * Returns: (transfer full): a message for @channel carrying @data_json;
 * @offset 0: one that could not be stored (`"offset":null`, no SSE id).
 */
HeraldMessage *
herald_message_new_channel (const char *channel, guint64 offset, guint64 seq, const char *epoch,
                            const char *key, const char *data_json)
{
  HeraldMessage *self = message_alloc ();
  GString *json = g_string_sized_new (strlen (data_json) + strlen (channel) + 64);

  self->channel = g_strdup (channel);
  self->epoch = g_strdup (epoch ? epoch : "");
  self->offset = offset;
  self->seq = seq;
  self->key = key && *key ? g_strdup (key) : NULL;

  g_string_append (json, "{\"type\":\"message\",\"channel\":");
  append_json_string (json, channel);
  g_string_append (json, ",\"offset\":");
  if (offset > 0)
    herald_json_append_uint (json, offset);
  else
    g_string_append (json, "null"); /* not stored: delivered live only */
  if (self->key)
    {
      g_string_append (json, ",\"key\":");
      append_json_string (json, self->key);
    }
  self->data_at = json->len;
  g_string_append (json, ",\"data\":");
  g_string_append (json, data_json);
  g_string_append_c (json, '}');
  self->json_len = json->len;
  self->json = g_string_free (json, FALSE);
  return self;
}

/**
 * herald_message_new_direct:
 *
 * Returns: (transfer full): a message without channel for @data_json.
 */
HeraldMessage *
herald_message_new_direct (const char *data_json)
{
  HeraldMessage *self = message_alloc ();

  self->epoch = g_strdup ("");
  self->json = g_strdup_printf ("{\"type\":\"message\",\"data\":%s}", data_json);
  self->json_len = strlen (self->json);
  return self;
}

/**
 * herald_message_new_presence:
 *
 * Returns: (transfer full): the join (@joined) or leave event of @user_id on
 * @channel. It carries the channel but no offset: it is not history.
 */
HeraldMessage *
herald_message_new_presence (const char *channel, const char *user_id, gboolean joined)
{
  HeraldMessage *self = message_alloc ();
  GString *json = g_string_new (joined ? "{\"type\":\"join\",\"channel\":"
                                       : "{\"type\":\"leave\",\"channel\":");

  self->channel = g_strdup (channel);
  self->epoch = g_strdup ("");
  append_json_string (json, channel);
  g_string_append (json, ",\"user_id\":");
  append_json_string (json, user_id);
  g_string_append_c (json, '}');
  self->json_len = json->len;
  self->json = g_string_free (json, FALSE);
  return self;
}

/**
 * herald_message_new_join_leave:
 * @user_id: (nullable): NULL for an anonymous connection ("user_id":"")
 *
 * Returns: (transfer full): the per-connection join (@joined) or leave event
 * of [namespace] join-leave=true channels: {"type":"join"|"leave",
 * "channel":…,"user_id":…,"connection_id":…}, SSE event join / leave. The
 * connection it is about does not receive it (herald_message_get_exclude()).
 */
HeraldMessage *
herald_message_new_join_leave (const char *channel, const char *user_id, const char *connection_id,
                               gboolean joined)
{
  g_autoptr (GString) json = g_string_new (joined ? "{\"type\":\"join\",\"channel\":"
                                                  : "{\"type\":\"leave\",\"channel\":");

  append_json_string (json, channel);
  g_string_append (json, ",\"user_id\":");
  append_json_string (json, user_id ? user_id : "");
  g_string_append (json, ",\"connection_id\":");
  append_json_string (json, connection_id);
  g_string_append_c (json, '}');
  return herald_message_new_event (channel, joined ? "join" : "leave", connection_id, json->str,
                                   json->len);
}

/**
 * herald_message_new_event:
 * @event: the SSE event name ("join", "leave")
 * @exclude: (nullable): the connection that does not receive it
 * @json: the whole delivered JSON text, trusted (another node built it with
 *   herald_message_new_join_leave())
 *
 * Returns: (transfer full): a channel event without offset.
 */
HeraldMessage *
herald_message_new_event (const char *channel, const char *event, const char *exclude,
                          const char *json, gsize json_len)
{
  HeraldMessage *self = message_alloc ();

  self->channel = g_strdup (channel);
  self->epoch = g_strdup ("");
  self->event = g_strdup (event);
  self->exclude = g_strdup (exclude);
  self->json = g_strndup (json, json_len);
  self->json_len = json_len;
  return self;
}

const char *
herald_message_get_event (const HeraldMessage *message)
{
  return message->event ? message->event : "message";
}

/**
 * herald_message_new_reset:
 *
 * Returns: (transfer full): the notice that @channel's position is now
 * @offset in @epoch and what came before may be missing.
 */
HeraldMessage *
herald_message_new_reset (const char *channel, guint64 offset, const char *epoch)
{
  HeraldMessage *self = message_alloc ();
  GString *json = g_string_new ("{\"type\":\"subscribed\",\"channel\":");

  self->channel = g_strdup (channel);
  self->epoch = g_strdup (epoch ? epoch : "");
  self->reset = TRUE;
  append_json_string (json, channel);
  g_string_append (json, ",\"server\":true,\"recovered\":false,\"offset\":");
  herald_json_append_uint (json, offset);
  g_string_append (json, ",\"epoch\":");
  append_json_string (json, self->epoch);
  g_string_append_c (json, '}');
  self->json_len = json->len;
  self->json = g_string_free (json, FALSE);
  return self;
}

gboolean
herald_message_is_reset (const HeraldMessage *message)
{
  return message->reset;
}

HeraldMessage *
herald_message_ref (HeraldMessage *message)
{
  return g_atomic_rc_box_acquire (message);
}

static void
message_clear (gpointer data)
{
  HeraldMessage *self = data;

  g_free (self->channel);
  g_free (self->epoch);
  g_free (self->key);
  g_free (self->event);
  g_free (self->exclude);
  g_free (self->json);
  for (guint c = 0; c < 2; c++)
    for (guint i = 0; i < HERALD_N_FRAMES; i++)
      g_clear_pointer (&self->frames[c][i], g_bytes_unref);
}

void
herald_message_unref (HeraldMessage *message)
{
  g_atomic_rc_box_release_full (message, message_clear);
}

const char *
herald_message_get_channel (const HeraldMessage *message)
{
  return message->channel;
}

guint64
herald_message_get_offset (const HeraldMessage *message)
{
  return message->offset;
}

guint64
herald_message_get_seq (const HeraldMessage *message)
{
  return message->seq;
}

const char *
herald_message_get_epoch (const HeraldMessage *message)
{
  return message->epoch;
}

gint64
herald_message_get_time (const HeraldMessage *message)
{
  return message->time;
}

const char *
herald_message_get_json (const HeraldMessage *message, gsize *length)
{
  if (length)
    *length = message->json_len;
  return message->json;
}

const char *
herald_message_get_key (const HeraldMessage *message)
{
  return message->key;
}

const char *
herald_message_get_exclude (const HeraldMessage *message)
{
  return message->exclude;
}

/* The conflated text: the message's JSON with "conflated":true before
 * "data", spliced once (the data is copied, never serialised again). */
static char *
conflated_json (HeraldMessage *self, gsize *len)
{
  static const char marker[] = ",\"conflated\":true";
  GString *out = g_string_sized_new (self->json_len + sizeof marker);

  g_string_append_len (out, self->json, self->data_at);
  g_string_append_len (out, marker, sizeof marker - 1);
  g_string_append_len (out, self->json + self->data_at, self->json_len - self->data_at);
  *len = out->len;
  return g_string_free (out, FALSE);
}

static GBytes *
build_frame (HeraldMessage *self, HeraldFrameKind kind, gboolean conflated)
{
  g_autofree char *copy = NULL;
  const char *json = self->json;
  gsize len = self->json_len;

  if (conflated && self->data_at > 0)
    json = copy = conflated_json (self, &len);
  switch (kind)
    {
    case HERALD_FRAME_WS:
      return herald_ws_frame_new (HERALD_WS_OPCODE_TEXT, json, len);
    case HERALD_FRAME_WS_DEFLATE:
      return herald_ws_frame_new_deflated (HERALD_WS_OPCODE_TEXT, json, len);
    case HERALD_FRAME_SSE:
      if (self->reset)
        {
          g_autoptr (GString) data = g_string_new ("{\"type\":\"reset\",\"channel\":");
          append_json_string (data, self->channel);
          g_string_append_c (data, '}');
          return herald_sse_event_new (NULL, "reset", data->str, data->len);
        }
      {
        g_autofree char *id = NULL;
        if (self->channel && self->offset > 0)
          id = herald_sse_id_format (self->epoch, self->seq);
        return herald_sse_event_new (id, self->event ? self->event : "message", json, len);
      }
    case HERALD_N_FRAMES:
    default:
      g_assert_not_reached ();
    }
}

/**
 * herald_message_get_frame:
 *
 * Returns: (transfer none): the frame of @kind, built once and shared.
 */
GBytes *
herald_message_get_frame (HeraldMessage *message, HeraldFrameKind kind)
{
  return herald_message_get_frame_full (message, kind, FALSE);
}

/**
 * herald_message_get_frame_full:
 * @conflated: the variant marked "conflated":true (channel messages; others
 *   have only the plain one)
 *
 * Returns: (transfer none): the frame of @kind, built once and shared.
 */
GBytes *
herald_message_get_frame_full (HeraldMessage *message, HeraldFrameKind kind, gboolean conflated)
{
  GBytes **slot = &message->frames[conflated && message->data_at > 0][kind];
  GBytes *frame = g_atomic_pointer_get (slot);

  if (G_LIKELY (frame != NULL))
    return frame;

  frame = build_frame (message, kind, conflated);
  /* Two threads may race to build the same variant: the loser drops its copy. */
  if (!g_atomic_pointer_compare_and_exchange (slot, NULL, frame))
    {
      g_bytes_unref (frame);
      frame = g_atomic_pointer_get (slot);
    }
  return frame;
}

char *
herald_sse_id_format (const char *epoch, guint64 seq)
{
  return g_strdup_printf ("%s-%" G_GUINT64_FORMAT, epoch, seq);
}

/**
 * herald_sse_id_parse:
 *
 * Parses an id made by herald_sse_id_format(). Anything else (too long,
 * missing separator, bad number, characters outside [A-Za-z0-9_]) fails.
 */
gboolean
herald_sse_id_parse (const char *id, char **epoch, guint64 *seq)
{
  const char *dash;
  guint64 value;

  if (id == NULL || strlen (id) > 128)
    return FALSE;
  dash = strrchr (id, '-');
  if (dash == NULL || dash == id)
    return FALSE;
  for (const char *p = id; p < dash; p++)
    if (!g_ascii_isalnum (*p) && *p != '_')
      return FALSE;
  if (!g_ascii_string_to_unsigned (dash + 1, 10, 0, G_MAXUINT64, &value, NULL))
    return FALSE;
  if (epoch)
    *epoch = g_strndup (id, dash - id);
  if (seq)
    *seq = value;
  return TRUE;
}

/**
 * herald_sse_event_new:
 *
 * Returns: (transfer full): one SSE event block ending with an empty line.
 */
GBytes *
herald_sse_event_new (const char *id, const char *event, const char *data, gsize data_len)
{
  GString *out = g_string_sized_new (data_len + 64);

  if (id)
    g_string_append_printf (out, "id: %s\n", id);
  if (event)
    g_string_append_printf (out, "event: %s\n", event);
  g_string_append_len (out, "data: ", 6);
  g_string_append_len (out, data, data_len);
  g_string_append_len (out, "\n\n", 2);
  return g_string_free_to_bytes (out);
}
