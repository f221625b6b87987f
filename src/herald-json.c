/* herald-json.c: a fast reading of the common HTTP publish body.
 *
 * Publishing is parse, check, re-serialise: with json-glib that is a tree of
 * nodes built and walked for every request, the largest user-space cost of
 * an HTTP publish. Most bodies are simple: {"channel":"…","data":{…}} with
 * strings without escapes and integer numbers. This scanner reads exactly
 * that subset in one pass and writes "data" in the compact form
 * json_to_string() would write (whitespace dropped, everything else byte for
 * byte). Anything outside the subset — escapes, fractions and exponents,
 * long integers, "-0", duplicate keys, deep nesting, invalid JSON — makes it
 * give up without an opinion, and the caller takes the json-glib path, which
 * decides (and words any error) as before. tests/test-json.c checks the two
 * agree on every input the scanner takes.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>

#include "herald-json.h"

#define MAX_DEPTH 32
#define MAX_MEMBERS 64 /* per object, for the duplicate-key check */
#define MAX_DIGITS 18  /* always fits in a gint64 */

typedef struct
{
  const char *p;
  const char *end;
  GString *out; /* NULL: validate only */
  int depth;
} Scan;

static void
skip_ws (Scan *s)
{
  while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
    s->p++;
}

static void
emit (Scan *s, const char *from, gsize len)
{
  if (s->out)
    g_string_append_len (s->out, from, len);
}

/* A string without escapes or control characters (the body is valid UTF-8,
 * checked by the caller); sets @start/@len to its contents. */
static gboolean
scan_string (Scan *s, const char **start, gsize *len)
{
  const char *from = s->p;
  const char *q;

  if (s->p >= s->end || *s->p != '"')
    return FALSE;
  for (q = s->p + 1; q < s->end; q++)
    {
      guchar c = (guchar)*q;
      if (c == '"')
        break;
      if (c == '\\' || c < 0x20 || c == 0x7f)
        return FALSE;
    }
  if (q >= s->end)
    return FALSE;
  *start = from + 1;
  *len = q - from - 1;
  s->p = q + 1;
  emit (s, from, s->p - from);
  return TRUE;
}

/* -?(0|[1-9][0-9]*), at most MAX_DIGITS digits, not "-0". */
static gboolean
scan_integer (Scan *s)
{
  const char *from = s->p;
  const char *digits;

  if (s->p < s->end && *s->p == '-')
    s->p++;
  digits = s->p;
  while (s->p < s->end && g_ascii_isdigit (*s->p))
    s->p++;
  if (s->p == digits || s->p - digits > MAX_DIGITS)
    return FALSE;
  if (*digits == '0' && (s->p - digits > 1 || digits > from))
    return FALSE;
  if (s->p < s->end && (*s->p == '.' || *s->p == 'e' || *s->p == 'E'))
    return FALSE;
  emit (s, from, s->p - from);
  return TRUE;
}

static gboolean
scan_literal (Scan *s, const char *word)
{
  gsize n = strlen (word);

  if ((gsize)(s->end - s->p) < n || memcmp (s->p, word, n) != 0)
    return FALSE;
  emit (s, s->p, n);
  s->p += n;
  return TRUE;
}

static gboolean scan_value (Scan *s);

/* Reads one member's value; @key is the member's name. */
typedef gboolean (*MemberFunc) (Scan *s, const char *key, gsize key_len, gpointer data);

/* An object, from its '{' to its '}', each value read by @member; declines
 * duplicate keys and objects of more than MAX_MEMBERS members. */
static gboolean
scan_members (Scan *s, MemberFunc member, gpointer data)
{
  const char *keys[MAX_MEMBERS];
  gsize key_lens[MAX_MEMBERS];
  guint n = 0;

  s->p++;
  emit (s, "{", 1);
  skip_ws (s);
  if (s->p < s->end && *s->p == '}')
    {
      s->p++;
      emit (s, "}", 1);
      return TRUE;
    }
  for (;;)
    {
      const char *key;
      gsize key_len;

      if (n == MAX_MEMBERS || !scan_string (s, &key, &key_len))
        return FALSE;
      for (guint i = 0; i < n; i++)
        if (key_lens[i] == key_len && memcmp (keys[i], key, key_len) == 0)
          return FALSE;
      keys[n] = key;
      key_lens[n++] = key_len;
      skip_ws (s);
      if (s->p >= s->end || *s->p != ':')
        return FALSE;
      s->p++;
      emit (s, ":", 1);
      skip_ws (s);
      if (!member (s, key, key_len, data))
        return FALSE;
      skip_ws (s);
      if (s->p >= s->end)
        return FALSE;
      if (*s->p == '}')
        {
          s->p++;
          emit (s, "}", 1);
          return TRUE;
        }
      if (*s->p != ',')
        return FALSE;
      s->p++;
      emit (s, ",", 1);
      skip_ws (s);
    }
}

static gboolean
any_member (Scan *s, const char *key, gsize key_len, gpointer data)
{
  return scan_value (s);
}

static gboolean
scan_object (Scan *s)
{
  return scan_members (s, any_member, NULL);
}

static gboolean
scan_array (Scan *s)
{
  s->p++;
  emit (s, "[", 1);
  skip_ws (s);
  if (s->p < s->end && *s->p == ']')
    {
      s->p++;
      emit (s, "]", 1);
      return TRUE;
    }
  for (;;)
    {
      if (!scan_value (s))
        return FALSE;
      skip_ws (s);
      if (s->p >= s->end)
        return FALSE;
      if (*s->p == ']')
        {
          s->p++;
          emit (s, "]", 1);
          return TRUE;
        }
      if (*s->p != ',')
        return FALSE;
      s->p++;
      emit (s, ",", 1);
      skip_ws (s);
    }
}

static gboolean
scan_value (Scan *s)
{
  const char *start;
  gsize len;
  gboolean ok;

  if (s->p >= s->end)
    return FALSE;
  switch (*s->p)
    {
    case '{':
    case '[':
      if (s->depth == MAX_DEPTH)
        return FALSE;
      s->depth++;
      ok = *s->p == '{' ? scan_object (s) : scan_array (s);
      s->depth--;
      return ok;
    case '"':
      return scan_string (s, &start, &len);
    case 't':
      return scan_literal (s, "true");
    case 'f':
      return scan_literal (s, "false");
    case 'n':
      return scan_literal (s, "null");
    default:
      return scan_integer (s);
    }
}

typedef struct
{
  gsize length;
  const char *channel;
  gsize channel_len;
  GString *data;
} Publish;

/* A top-level member: "channel" and "data" are kept, the others only read. */
static gboolean
publish_member (Scan *s, const char *key, gsize key_len, gpointer user_data)
{
  Publish *pub = user_data;
  gboolean ok;

  if (key_len == 7 && memcmp (key, "channel", 7) == 0)
    return scan_string (s, &pub->channel, &pub->channel_len);
  if (key_len != 4 || memcmp (key, "data", 4) != 0)
    return scan_value (s);
  pub->data = g_string_sized_new (pub->length);
  s->out = pub->data;
  ok = scan_value (s);
  s->out = NULL;
  return ok;
}

/**
 * herald_json_append_uint:
 *
 * Appends @value in decimal, as JSON and HTTP write it, without printf (it
 * runs for every publish: offsets, response heads).
 */
void
herald_json_append_uint (GString *out, guint64 value)
{
  char digits[24];
  int n = sizeof digits;

  do
    digits[--n] = '0' + value % 10;
  while ((value /= 10) > 0);
  g_string_append_len (out, digits + n, sizeof digits - n);
}

/**
 * herald_json_scan_publish:
 * @body: a request body, valid UTF-8
 * @channel: (out): the "channel" member (a string without escapes)
 * @data: (out): the "data" member as compact JSON text
 *
 * Reads {"channel": "…", "data": …} (other members allowed, any order) when
 * the whole body is in the subset described above.
 *
 * Returns: TRUE with both out values set; FALSE (nothing set) when the body
 * needs the full parser — not necessarily an error.
 */
gboolean
herald_json_scan_publish (const char *body, gsize length, char **channel, char **data)
{
  Scan s = { .p = body, .end = body + length, .depth = 1 };
  Publish pub = { .length = length };
  gboolean ok;

  skip_ws (&s);
  ok = s.p < s.end && *s.p == '{' && scan_members (&s, publish_member, &pub);
  skip_ws (&s);
  if (!ok || s.p != s.end || pub.channel == NULL || pub.data == NULL)
    {
      if (pub.data)
        g_string_free (pub.data, TRUE);
      return FALSE;
    }
  *channel = g_strndup (pub.channel, pub.channel_len);
  *data = g_string_free (pub.data, FALSE);
  return TRUE;
}
