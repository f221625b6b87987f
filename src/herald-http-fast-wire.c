/* herald-http-fast-wire.c: the fast path's HTTP/1.1 — heads read, responses written.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>

#include "herald-error.h"
#include "herald-http-api.h"
#include "herald-http-fast-wire.h"
#include "herald-json.h"
#include "herald-metrics.h"

void
herald_http_fast_request_clear (HeraldHttpFastRequest *req)
{
  g_clear_pointer (&req->arg, g_free);
  memset (req, 0, sizeof *req);
}

static HeraldApiRoute
match_route (const char *target, char **arg)
{
  g_auto (HeraldApiMatch) match = { 0 };
  g_autofree char *path = NULL;

  *arg = NULL;
  if (!g_str_has_prefix (target, "/api/") || strpbrk (target, "?#") != NULL
      || strstr (target, "/.") != NULL)
    return HERALD_API_ROUTE_NONE;
  for (const char *p = target; *p; p++)
    if ((guchar)*p <= 0x20 || (guchar)*p >= 0x7f || *p == '\\')
      return HERALD_API_ROUTE_NONE;
  if (strchr (target, '%') != NULL)
    {
      path = g_uri_unescape_string (target, NULL);
      if (path == NULL)
        return HERALD_API_ROUTE_NONE;
    }
  else
    path = g_strdup (target);

  /* The API's own table; only the publishing calls are answered here. */
  if (!herald_api_route_parse (path, &match))
    return HERALD_API_ROUTE_NONE;
  switch (match.route)
    {
    case HERALD_API_ROUTE_PUBLISH:
    case HERALD_API_ROUTE_BROADCAST:
    case HERALD_API_ROUTE_USER_SEND:
    case HERALD_API_ROUTE_CONNECTION_SEND:
      *arg = g_steal_pointer (&match.arg);
      return match.route;
    default:
      return HERALD_API_ROUTE_NONE;
    }
}

static gboolean
host_is_plain (const char *host)
{
  if (host == NULL || *host == '\0')
    return FALSE;
  for (const char *p = host; *p; p++)
    if (!g_ascii_isalnum (*p) && strchr (".-_:[]", *p) == NULL)
      return FALSE;
  return TRUE;
}

static gboolean
parse_length (SoupMessageHeaders *headers, gsize *length)
{
  const char *value = soup_message_headers_get_list (headers, "Content-Length");
  guint64 n;

  if (value == NULL || *value == '\0')
    return FALSE;
  for (const char *p = value; *p; p++)
    if (!g_ascii_isdigit (*p))
      return FALSE; /* also a repeated header ("5, 5") or signs: libsoup's call */
  if (strlen (value) > 15)
    return FALSE;
  n = g_ascii_strtoull (value, NULL, 10);
  *length = (gsize)n;
  return TRUE;
}

/* ---- the common head, read without libsoup ---- */

#define VALUE_MAX 1024

typedef struct
{
  const char *value;
  gsize len;
  guint count;
} SimpleHeader;

static gboolean
is_tchar (guchar c)
{
  return g_ascii_isalnum (c) || (c != 0 && strchr ("!#$%&'*+-.^_`|~", c) != NULL);
}

static gboolean
name_is (const char *name, gsize len, const char *want)
{
  return strlen (want) == len && g_ascii_strncasecmp (name, want, len) == 0;
}

/* Whether the comma-separated @value contains the token @want (any case). */
static gboolean
list_contains (const SimpleHeader *h, const char *want)
{
  gsize want_len = strlen (want);
  const char *p = h->value, *end = h->value + h->len;

  while (p < end)
    {
      const char *item_end = memchr (p, ',', end - p);
      const char *a = p, *b = item_end ? item_end : end;

      while (a < b && (*a == ' ' || *a == '\t'))
        a++;
      while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
        b--;
      if ((gsize)(b - a) == want_len && g_ascii_strncasecmp (a, want, want_len) == 0)
        return TRUE;
      p = item_end ? item_end + 1 : end;
    }
  return FALSE;
}

/* The usual head of an API client — "POST <target> HTTP/1.x", CRLF lines,
 * plain "Name: value" headers, each header that matters once — read in one
 * pass. Anything else is UNSURE and goes through libsoup's parser, so both
 * read every head the same way (tests/test-http-fast.c). */
HeraldHttpFastSimple
herald_http_fast_request_decide_simple (HeraldConfig *config, const char *head, gsize head_len,
                                        HeraldHttpFastRequest *req)
{
  const char *p = head, *end = head + head_len - 2; /* the final CRLF */
  const char *target, *target_end, *line_end;
  SimpleHeader host = { 0 }, length = { 0 }, auth = { 0 }, connection = { 0 };
  gboolean http10, has_api_key;
  char target_buf[VALUE_MAX], host_buf[VALUE_MAX], auth_buf[VALUE_MAX];
  const char *api_key;

  if (head_len < 5 || memcmp (p, "POST ", 5) != 0)
    return HERALD_HTTP_FAST_SIMPLE_UNSURE;
  target = p + 5;
  line_end = memchr (target, '\r', end - target);
  if (line_end == NULL || line_end[1] != '\n' || line_end - target < 10)
    return HERALD_HTTP_FAST_SIMPLE_UNSURE;
  target_end = line_end - 9;
  if (memcmp (target_end, " HTTP/1.1", 9) == 0)
    http10 = FALSE;
  else if (memcmp (target_end, " HTTP/1.0", 9) == 0)
    http10 = TRUE;
  else
    return HERALD_HTTP_FAST_SIMPLE_UNSURE;
  if (target_end == target || (gsize)(target_end - target) >= VALUE_MAX
      || memchr (target, ' ', target_end - target) != NULL)
    return HERALD_HTTP_FAST_SIMPLE_UNSURE;

  for (p = line_end + 2; p < end; p = line_end + 2)
    {
      const char *name = p, *colon, *v, *v_end;
      SimpleHeader *slot = NULL;

      line_end = memchr (p, '\r', end - p + 1);
      if (line_end == NULL || line_end[1] != '\n')
        return HERALD_HTTP_FAST_SIMPLE_UNSURE;
      for (colon = name; colon < line_end && is_tchar ((guchar)*colon); colon++)
        ;
      if (colon == name || colon == line_end || *colon != ':')
        return HERALD_HTTP_FAST_SIMPLE_UNSURE; /* also obs-fold (a line starting with a space) */
      for (v = colon + 1; v < line_end && (*v == ' ' || *v == '\t'); v++)
        ;
      for (v_end = line_end; v_end > v && (v_end[-1] == ' ' || v_end[-1] == '\t'); v_end--)
        ;
      for (const char *q = v; q < v_end; q++)
        if ((guchar)*q < 0x20 ? *q != '\t' : (guchar)*q >= 0x7f)
          return HERALD_HTTP_FAST_SIMPLE_UNSURE;
      if (name_is (name, colon - name, "Transfer-Encoding")
          || name_is (name, colon - name, "Expect") || name_is (name, colon - name, "Upgrade")
          || name_is (name, colon - name, "Origin"))
        return HERALD_HTTP_FAST_SIMPLE_NO; /* chunked bodies, 100-continue, upgrades, CORS: libsoup
                                            */
      if (name_is (name, colon - name, "Host"))
        slot = &host;
      else if (name_is (name, colon - name, "Content-Length"))
        slot = &length;
      else if (name_is (name, colon - name, "Authorization"))
        slot = &auth;
      else if (name_is (name, colon - name, "Connection"))
        slot = &connection;
      if (slot)
        {
          if (slot->count++ > 0 || (gsize)(v_end - v) >= VALUE_MAX)
            return HERALD_HTTP_FAST_SIMPLE_UNSURE;
          slot->value = v;
          slot->len = v_end - v;
        }
    }

  if (host.count == 0 || length.count == 0 || length.len == 0 || length.len > 15)
    return HERALD_HTTP_FAST_SIMPLE_UNSURE;
  for (gsize i = 0; i < length.len; i++)
    if (!g_ascii_isdigit (length.value[i]))
      return HERALD_HTTP_FAST_SIMPLE_UNSURE;

  memset (req, 0, sizeof *req);
  memcpy (target_buf, target, target_end - target);
  target_buf[target_end - target] = '\0';
  req->route = match_route (target_buf, &req->arg);
  if (req->route == HERALD_API_ROUTE_NONE)
    return HERALD_HTTP_FAST_SIMPLE_NO;
  memcpy (host_buf, host.value, host.len);
  host_buf[host.len] = '\0';
  if (!host_is_plain (host_buf))
    {
      herald_http_fast_request_clear (req);
      return HERALD_HTTP_FAST_SIMPLE_NO;
    }
  req->length = (gsize)g_ascii_strtoull (length.value, NULL, 10);
  if (http10)
    {
      req->close = connection.count == 0 || !list_contains (&connection, "keep-alive");
      req->http10 = !req->close;
    }
  else
    req->close = connection.count > 0 && list_contains (&connection, "close");

  api_key = herald_config_get_api_key (config);
  has_api_key = FALSE;
  if (auth.count > 0 && auth.len >= 7 && g_ascii_strncasecmp (auth.value, "Bearer ", 7) == 0)
    {
      const char *token = auth.value + 7;
      gsize token_len = auth.len - 7;

      while (token_len > 0 && *token == ' ')
        token++, token_len--;
      memcpy (auth_buf, token, token_len);
      auth_buf[token_len] = '\0';
      has_api_key = api_key != NULL && herald_http_api_key_matches (auth_buf, api_key);
    }
  if (api_key == NULL)
    req->early = SOUP_STATUS_NOT_FOUND;
  else if (!has_api_key)
    req->early = SOUP_STATUS_UNAUTHORIZED;
  return HERALD_HTTP_FAST_SIMPLE_YES;
}

/* The same decision with libsoup's parser, for any head. */
gboolean
herald_http_fast_request_decide_soup (HeraldConfig *config, SoupMessageHeaders *h, const char *head,
                                      gsize head_len, HeraldHttpFastRequest *req)
{
  g_autofree char *method = NULL;
  g_autofree char *target = NULL;
  SoupHTTPVersion version = SOUP_HTTP_1_1;
  const char *api_key;
  guint status;

  memset (req, 0, sizeof *req);
  soup_message_headers_clear (h);
  status = soup_headers_parse_request (head, (int)head_len, h, &method, &target, &version);
  if (status != SOUP_STATUS_OK || g_strcmp0 (method, "POST") != 0)
    return FALSE;
  req->route = match_route (target, &req->arg);
  if (req->route == HERALD_API_ROUTE_NONE)
    return FALSE;
  /* Chunked bodies, 100-continue, upgrades and browsers (CORS) stay with libsoup. */
  if (soup_message_headers_get_one (h, "Transfer-Encoding") != NULL
      || soup_message_headers_get_one (h, "Expect") != NULL
      || soup_message_headers_get_one (h, "Upgrade") != NULL
      || soup_message_headers_get_one (h, "Origin") != NULL
      || !host_is_plain (soup_message_headers_get_one (h, "Host"))
      || !parse_length (h, &req->length))
    {
      herald_http_fast_request_clear (req);
      return FALSE;
    }

  if (version == SOUP_HTTP_1_0)
    {
      req->close = !soup_message_headers_header_contains (h, "Connection", "keep-alive");
      req->http10 = !req->close;
    }
  else
    req->close = soup_message_headers_header_contains (h, "Connection", "close");

  api_key = herald_config_get_api_key (config);
  if (api_key == NULL)
    req->early = SOUP_STATUS_NOT_FOUND;
  else if (!herald_http_api_headers_authorized (h, api_key))
    req->early = SOUP_STATUS_UNAUTHORIZED;
  return TRUE;
}

/* Whether the head in @head[0..head_len) is answered here; fills @req. */
gboolean
herald_http_fast_request_decide (HeraldConfig *config, SoupMessageHeaders *headers,
                                 const char *head, gsize head_len, HeraldHttpFastRequest *req)
{
  switch (herald_http_fast_request_decide_simple (config, head, head_len, req))
    {
    case HERALD_HTTP_FAST_SIMPLE_YES:
      return TRUE;
    case HERALD_HTTP_FAST_SIMPLE_NO:
      return FALSE;
    case HERALD_HTTP_FAST_SIMPLE_UNSURE:
    default:
      return herald_http_fast_request_decide_soup (config, headers, head, head_len, req);
    }
}

/* ---- heads ---- */

/* Finds the end of a head in @buf: TRUE with @head_len, or FALSE. *bare is
 * set when the head uses bare LFs (left to libsoup). */
gboolean
herald_http_fast_find_head_end (const char *buf, gsize n, gsize *head_len, gboolean *bare)
{
  const char *end = memmem (buf, n, "\r\n\r\n", 4);
  const char *lf = memmem (buf, end ? (gsize)(end - buf) + 2 : n, "\n\n", 2);

  *bare = lf != NULL;
  if (lf != NULL)
    return TRUE;
  if (end == NULL)
    return FALSE;
  *head_len = end + 4 - buf;
  return TRUE;
}

/* For tests: herald_http_fast_read_head_for_test(). */
int
herald_http_fast_wire_read_head_for_test (HeraldConfig *config, SoupMessageHeaders *headers,
                                          const char *head, gsize head_len, gboolean simple,
                                          HeraldHttpFastHead *out)
{
  HeraldHttpFastRequest req = { 0 };
  int result;

  if (simple)
    {
      HeraldHttpFastSimple r
          = herald_http_fast_request_decide_simple (config, head, head_len, &req);
      result = r == HERALD_HTTP_FAST_SIMPLE_YES ? 1 : r == HERALD_HTTP_FAST_SIMPLE_NO ? 0 : -1;
    }
  else
    result = herald_http_fast_request_decide_soup (config, headers, head, head_len, &req) ? 1 : 0;
  memset (out, 0, sizeof *out);
  if (result == 1)
    {
      out->route = req.route;
      out->arg = g_steal_pointer (&req.arg);
      out->length = req.length;
      out->early = req.early;
      out->close = req.close;
      out->http10 = req.http10;
    }
  herald_http_fast_request_clear (&req);
  return result;
}

/* ---- responses ---- */

static const char *
reason_phrase (guint status)
{
  if (status == 431)
    return "Request Header Fields Too Large";
  return soup_status_get_phrase (status);
}

void
herald_http_fast_append_response (GString *out, guint status, const char *body, gsize len,
                                  gboolean close, gboolean http10, gboolean www_authenticate)
{
  /* No printf: this runs once per API call on the hot path. */
  herald_metrics_count_api_response (status);
  g_string_append (out, "HTTP/1.1 ");
  herald_json_append_uint (out, status);
  g_string_append_c (out, ' ');
  g_string_append (out, reason_phrase (status));
  g_string_append (out, "\r\nContent-Type: application/json\r\nContent-Length: ");
  herald_json_append_uint (out, len);
  g_string_append (out, "\r\nServer: herald/" PACKAGE_VERSION "\r\n");
  if (www_authenticate)
    g_string_append (out, "WWW-Authenticate: Bearer\r\n");
  if (close)
    g_string_append (out, "Connection: close\r\n");
  else if (http10)
    g_string_append (out, "Connection: keep-alive\r\n");
  g_string_append (out, "\r\n");
  g_string_append_len (out, body, len);
}

/* {"name":value}; name NULL: {"offset":value}, null for 0 (not stored) */
GString *
herald_http_fast_uint_body (const char *name, guint64 value)
{
  GString *body = g_string_sized_new (48);

  g_string_append (body, "{\"");
  g_string_append (body, name ? name : "offset");
  g_string_append (body, "\":");
  if (name == NULL && value == 0)
    g_string_append (body, "null");
  else
    herald_json_append_uint (body, value);
  g_string_append_c (body, '}');
  return body;
}
