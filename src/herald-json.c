/* herald-json.c: Herald's own strict JSON reader (see herald-json.h).
 *
 * One recursive pass over the text checks the grammar of RFC 8259 exactly
 * and, when asked, writes the compact form: whitespace outside strings
 * dropped, every other byte as the client sent it (so numbers of any size
 * and precision, escapes and U+0000 in strings arrive unchanged). The same
 * pass reads a request's envelope: the "data" member is kept as text, and
 * everything else — what json-glib reads afterwards — is checked for what
 * json-glib would change: U+0000 in a string (its strings end there) and
 * integers outside gint64 (they wrap).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>
#include <glib/gi18n.h>
#include <json-glib/json-glib.h>

#include "herald-error.h"
#include "herald-json.h"

/* The quark's name as written: clang-format would space out its dashes. */
/* clang-format off */
G_DEFINE_QUARK (herald-json-error-quark, herald_json_error)
/* clang-format on */

typedef struct
{
  const char *start;
  const char *p;
  const char *end;
  GString *out;          /* NULL: check only */
  int depth;             /* containers open around the current value */
  gboolean check;        /* strings and integers checked (outside "data") */
  const char *why;       /* the syntax error, or NULL */
  gsize why_at;          /* its byte offset */
  const char *field_why; /* the first field problem, or NULL */
} Scan;

static gboolean
fail (Scan *s, const char *why)
{
  if (s->why == NULL)
    {
      s->why = why;
      s->why_at = s->p - s->start;
    }
  return FALSE;
}

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

static int
hex_value (char c)
{
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/* A string; sets @start/@len to its contents as written and @escaped when
 * it has a backslash. Bytes of 0x80 and above are left to the caller's UTF-8
 * check of the whole text. */
static gboolean
scan_string (Scan *s, const char **start, gsize *len, gboolean *escaped)
{
  const char *from = s->p;
  const char *q;

  *escaped = FALSE;
  if (s->p >= s->end || *s->p != '"')
    return fail (s, N_ ("expected a string"));
  for (q = s->p + 1; q < s->end; q++)
    {
      guchar c = (guchar)*q;

      if (c == '"')
        break;
      if (c < 0x20)
        {
          s->p = q;
          return fail (s, N_ ("control character in a string"));
        }
      if (c != '\\')
        continue;
      *escaped = TRUE;
      if (++q >= s->end)
        break;
      switch (*q)
        {
        case '"':
        case '\\':
        case '/':
        case 'b':
        case 'f':
        case 'n':
        case 'r':
        case 't':
          break;
        case 'u':
          {
            int v = 0;

            for (int i = 1; i <= 4; i++)
              {
                int h = q + i < s->end ? hex_value (q[i]) : -1;
                if (h < 0)
                  {
                    s->p = q - 1;
                    return fail (s, N_ ("invalid \\u escape in a string"));
                  }
                v = v << 4 | h;
              }
            if (v == 0 && s->check && s->field_why == NULL)
              s->field_why = N_ ("a string holds U+0000");
            q += 4;
            /* UTF-16 surrogates come in pairs: a high one then a low one.
             * A lone one has no character to stand for (json-glib refuses
             * it too), so refuse it rather than pass it on. */
            if (v >= 0xDC00 && v <= 0xDFFF)
              {
                s->p = q - 5;
                return fail (s, N_ ("unpaired UTF-16 surrogate in a string"));
              }
            if (v >= 0xD800 && v <= 0xDBFF)
              {
                int low = 0;

                for (int i = 3; i <= 6; i++)
                  {
                    int h = q + i < s->end ? hex_value (q[i]) : -1;
                    low = h < 0 ? -1 : low << 4 | h;
                    if (low < 0)
                      break;
                  }
                if (q + 2 >= s->end || q[1] != '\\' || q[2] != 'u' || low < 0xDC00 || low > 0xDFFF)
                  {
                    s->p = q - 5;
                    return fail (s, N_ ("unpaired UTF-16 surrogate in a string"));
                  }
                q += 6;
              }
          }
          break;
        default:
          s->p = q - 1;
          return fail (s, N_ ("invalid escape in a string"));
        }
    }
  if (q >= s->end)
    {
      s->p = s->end;
      return fail (s, N_ ("unterminated string"));
    }
  *start = from + 1;
  *len = q - from - 1;
  s->p = q + 1;
  emit (s, from, s->p - from);
  return TRUE;
}

/* Does the integer -?@digits (@n of them, no leading zero) fit in a gint64? */
static gboolean
fits_int64 (gboolean negative, const char *digits, gsize n)
{
  if (n < 19)
    return TRUE;
  if (n > 19)
    return FALSE;
  return memcmp (digits, negative ? "9223372036854775808" : "9223372036854775807", 19) <= 0;
}

/* -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? */
static gboolean
scan_number (Scan *s)
{
  const char *from = s->p;
  const char *digits, *int_end;
  gboolean integer = TRUE;

  if (s->p < s->end && *s->p == '-')
    s->p++;
  digits = s->p;
  if (s->p >= s->end || !g_ascii_isdigit (*s->p))
    return fail (s, N_ ("expected a value"));
  if (*s->p == '0')
    s->p++;
  else
    while (s->p < s->end && g_ascii_isdigit (*s->p))
      s->p++;
  int_end = s->p;
  if (s->p < s->end && *s->p == '.')
    {
      integer = FALSE;
      s->p++;
      if (s->p >= s->end || !g_ascii_isdigit (*s->p))
        return fail (s, N_ ("expected a digit after the decimal point"));
      while (s->p < s->end && g_ascii_isdigit (*s->p))
        s->p++;
    }
  if (s->p < s->end && (*s->p == 'e' || *s->p == 'E'))
    {
      integer = FALSE;
      s->p++;
      if (s->p < s->end && (*s->p == '+' || *s->p == '-'))
        s->p++;
      if (s->p >= s->end || !g_ascii_isdigit (*s->p))
        return fail (s, N_ ("expected a digit in the exponent"));
      while (s->p < s->end && g_ascii_isdigit (*s->p))
        s->p++;
    }
  if (integer && s->check && s->field_why == NULL
      && !fits_int64 (from != digits, digits, int_end - digits))
    s->field_why = N_ ("an integer outside the 64-bit range");
  emit (s, from, s->p - from);
  return TRUE;
}

static gboolean
scan_literal (Scan *s, const char *word)
{
  gsize n = strlen (word);

  if ((gsize)(s->end - s->p) < n || memcmp (s->p, word, n) != 0)
    return fail (s, N_ ("expected a value"));
  emit (s, s->p, n);
  s->p += n;
  return TRUE;
}

static gboolean scan_value (Scan *s);

/* Reads one member's value; @key is the member's name as written. */
typedef gboolean (*MemberFunc) (Scan *s, const char *key, gsize key_len, gpointer data);

/* An object, from its '{' to its '}', each value read by @member. */
static gboolean
scan_members (Scan *s, MemberFunc member, gpointer data)
{
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
      gboolean escaped;

      if (!scan_string (s, &key, &key_len, &escaped))
        return FALSE;
      /* An escaped key is not one of the names Herald looks for. */
      if (escaped)
        key_len = 0;
      skip_ws (s);
      if (s->p >= s->end || *s->p != ':')
        return fail (s, N_ ("expected “:” after a member name"));
      s->p++;
      emit (s, ":", 1);
      skip_ws (s);
      if (!member (s, key, key_len, data))
        return FALSE;
      skip_ws (s);
      if (s->p >= s->end)
        return fail (s, N_ ("unterminated object"));
      if (*s->p == '}')
        {
          s->p++;
          emit (s, "}", 1);
          return TRUE;
        }
      if (*s->p != ',')
        return fail (s, N_ ("expected “,” or “}” in an object"));
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
        return fail (s, N_ ("unterminated array"));
      if (*s->p == ']')
        {
          s->p++;
          emit (s, "]", 1);
          return TRUE;
        }
      if (*s->p != ',')
        return fail (s, N_ ("expected “,” or “]” in an array"));
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
  gboolean escaped, ok;

  if (s->p >= s->end)
    return fail (s, N_ ("unexpected end of text"));
  switch (*s->p)
    {
    case '{':
    case '[':
      if (s->depth == HERALD_JSON_MAX_DEPTH)
        return fail (s, N_ ("nested too deeply"));
      s->depth++;
      ok = *s->p == '{' ? scan_members (s, any_member, NULL) : scan_array (s);
      s->depth--;
      return ok;
    case '"':
      return scan_string (s, &start, &len, &escaped);
    case 't':
      return scan_literal (s, "true");
    case 'f':
      return scan_literal (s, "false");
    case 'n':
      return scan_literal (s, "null");
    default:
      return scan_number (s);
    }
}

static gboolean
key_is (const char *key, gsize key_len, const char *name)
{
  gsize n = strlen (name);
  return key_len == n && memcmp (key, name, n) == 0;
}

/* Scans the value at s->p into a new compact string (*@text, replacing an
 * earlier one); unchecked when @data: it is the client's data. */
static gboolean
capture_value (Scan *s, char **text, gsize length_hint, gboolean data)
{
  GString *saved_out = s->out;
  gboolean saved_check = s->check;
  GString *out = g_string_sized_new (length_hint);
  gboolean ok;

  s->out = out;
  s->check = s->check && !data;
  ok = scan_value (s);
  s->out = saved_out;
  s->check = saved_check;
  g_free (*text);
  *text = g_string_free (out, FALSE);
  return ok;
}

typedef struct
{
  gsize length;
  HeraldJsonEnvelope *envelope;
  const char *channel; /* scan_publish only */
  gsize channel_len;
  gboolean channel_ok;
  const char *key; /* scan_publish: a "key" string without escapes */
  gsize key_len;
  gboolean key_bad; /* scan_publish: a "key" that is not such a string */
} Envelope;

static gboolean
envelope_member (Scan *s, const char *key, gsize key_len, gpointer user_data)
{
  Envelope *env = user_data;

  if (key_is (key, key_len, "data"))
    return capture_value (s, &env->envelope->data, env->length, TRUE);
  if (key_is (key, key_len, "id"))
    return capture_value (s, &env->envelope->id, 32, FALSE);
  if (key_is (key, key_len, "channel") && s->p < s->end && *s->p == '"')
    {
      gboolean escaped;

      if (!scan_string (s, &env->channel, &env->channel_len, &escaped))
        return FALSE;
      env->channel_ok = !escaped;
      return TRUE;
    }
  if (key_is (key, key_len, "channel"))
    env->channel_ok = FALSE;
  if (key_is (key, key_len, "key") && s->p < s->end && *s->p == '"')
    {
      gboolean escaped;

      if (!scan_string (s, &env->key, &env->key_len, &escaped))
        return FALSE;
      env->key_bad = env->key_bad || escaped;
      return TRUE;
    }
  if (key_is (key, key_len, "key"))
    env->key_bad = TRUE;
  return scan_value (s);
}

/* Reads all of @text as one value (an envelope object when @env is set);
 * FALSE with @error set on any problem. */
static gboolean
scan_text (Scan *s, Envelope *env, GError **error)
{
  gboolean ok;

  if (!g_utf8_validate_len (s->p, s->end - s->p, NULL))
    {
      g_set_error_literal (error, HERALD_JSON_ERROR, HERALD_JSON_ERROR_SYNTAX,
                           _ ("not valid UTF-8"));
      return FALSE;
    }
  skip_ws (s);
  if (s->p == s->end)
    {
      g_set_error_literal (error, HERALD_JSON_ERROR, HERALD_JSON_ERROR_SYNTAX, _ ("empty text"));
      return FALSE;
    }
  if (env && *s->p == '{')
    {
      s->depth = 1;
      ok = scan_members (s, envelope_member, env);
    }
  else
    ok = scan_value (s);
  if (ok)
    {
      skip_ws (s);
      if (s->p != s->end)
        ok = fail (s, N_ ("more than one JSON value"));
    }
  if (!ok)
    {
      g_set_error (error, HERALD_JSON_ERROR, HERALD_JSON_ERROR_SYNTAX, _ ("%s at byte %zu"),
                   _ (s->why), s->why_at);
      return FALSE;
    }
  if (s->field_why)
    {
      g_set_error_literal (error, HERALD_JSON_ERROR, HERALD_JSON_ERROR_FIELD, _ (s->field_why));
      return FALSE;
    }
  return TRUE;
}

char *
herald_json_compact (const char *text, gsize length, gsize *out_length, GError **error)
{
  Scan s = { .start = text, .p = text, .end = text + length };
  g_autoptr (GString) out = NULL;

  g_return_val_if_fail (text != NULL || length == 0, NULL);

  out = g_string_sized_new (length);
  s.out = out;
  if (!scan_text (&s, NULL, error))
    return NULL;
  if (out_length)
    *out_length = out->len;
  return g_string_free (g_steal_pointer (&out), FALSE);
}

gboolean
herald_json_check_strict (const char *text, gsize length, GError **error)
{
  Scan s = { .start = text, .p = text, .end = text + length, .check = TRUE };

  g_return_val_if_fail (text != NULL || length == 0, FALSE);
  return scan_text (&s, NULL, error);
}

void
herald_json_envelope_clear (HeraldJsonEnvelope *envelope)
{
  g_clear_pointer (&envelope->data, g_free);
  g_clear_pointer (&envelope->id, g_free);
}

gboolean
herald_json_read_envelope (const char *text, gsize length, HeraldJsonEnvelope *envelope,
                           GError **error)
{
  Scan s = { .start = text, .p = text, .end = text + length, .check = TRUE };
  Envelope env = { .length = length, .envelope = envelope };

  g_return_val_if_fail (text != NULL || length == 0, FALSE);
  g_return_val_if_fail (envelope != NULL, FALSE);

  memset (envelope, 0, sizeof *envelope);
  if (scan_text (&s, &env, error))
    return TRUE;
  herald_json_envelope_clear (envelope);
  return FALSE;
}

/**
 * herald_json_append_uint:
 *
 * Appends @value in decimal, as JSON and HTTP write it, without printf (it
 * runs for every publish: offsets, response heads).
 */
char *
herald_json_error_body (const char *message, gsize *length)
{
  g_autoptr (JsonBuilder) builder = json_builder_new_immutable ();
  g_autoptr (JsonGenerator) generator = json_generator_new ();
  g_autoptr (JsonNode) root = NULL;

  g_return_val_if_fail (message != NULL, NULL);

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "error");
  json_builder_add_string_value (builder, message);
  json_builder_end_object (builder);
  root = json_builder_get_root (builder);
  json_generator_set_root (generator, root);
  return json_generator_to_data (generator, length);
}

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
 * @body: a request body
 * @channel: (out): the "channel" member (a string without escapes)
 * @key: (out): the "key" member (a string without escapes), NULL when absent
 * @data: (out): the "data" member as compact JSON text
 *
 * Returns: TRUE with both out values set; FALSE (nothing set) when the body
 * needs the general path — not necessarily an error.
 */
gboolean
herald_json_scan_publish (const char *body, gsize length, char **channel, char **key, char **data)
{
  Scan s = { .start = body, .p = body, .end = body + length, .check = TRUE };
  g_auto (HeraldJsonEnvelope) envelope = { 0 };
  Envelope env = { .length = length, .envelope = &envelope };

  skip_ws (&s);
  if (s.p >= s.end || *s.p != '{' || !scan_text (&s, &env, NULL) || env.channel == NULL
      || !env.channel_ok || envelope.data == NULL || env.key_bad)
    return FALSE;
  *channel = g_strndup (env.channel, env.channel_len);
  *key = env.key ? g_strndup (env.key, env.key_len) : NULL;
  *data = g_steal_pointer (&envelope.data);
  return TRUE;
}

/**
 * herald_json_normalize:
 *
 * Checks that @json is exactly one JSON value and returns it compacted
 * (herald_json_compact(): whitespace outside strings dropped, every other
 * byte kept, so numbers and strings arrive as sent).
 *
 * Returns: (transfer full): the JSON text, or %NULL with @error set
 * (HERALD_ERROR_INVALID_ARGUMENT).
 */
char *
herald_json_normalize (const char *json, gssize length, GError **error)
{
  g_autoptr (GError) local_error = NULL;
  char *out;

  if (length < 0)
    length = strlen (json);
  out = herald_json_compact (json, length, NULL, &local_error);
  if (out == NULL)
    g_set_error (error, HERALD_ERROR, HERALD_ERROR_INVALID_ARGUMENT,
                 _ ("data is not valid JSON: %s"), local_error->message);
  return out;
}
