/* herald-http-upgrade.c: WebSocket and SSE handshakes without libsoup.
 *
 * See herald-http-upgrade.h. The answers are byte for byte what libsoup's
 * path writes (status line, Server, Date, the headers
 * herald-http.c sets, a JSON error body), so a client cannot tell which
 * reader took its handshake.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "herald-http-upgrade.h"
#include "herald-json.h"
#include "herald-subscribe.h"

#define SERVER_HEADER "Server: herald/" PACKAGE_VERSION "\r\n"

/* The headers a handshake reads; any other is skipped. */
typedef enum
{
  H_HOST,
  H_UPGRADE,
  H_CONNECTION,
  H_KEY,
  H_VERSION,
  H_PROTOCOL,
  H_EXTENSIONS,
  H_ORIGIN,
  H_AUTHORIZATION,
  H_COOKIE,
  H_LAST_EVENT_ID,
  N_HEADERS,
} HeaderId;

static const char *const header_names[N_HEADERS] = {
  "Host",
  "Upgrade",
  "Connection",
  "Sec-WebSocket-Key",
  "Sec-WebSocket-Version",
  "Sec-WebSocket-Protocol",
  "Sec-WebSocket-Extensions",
  "Origin",
  "Authorization",
  "Cookie",
  "Last-Event-ID",
};

struct _HeraldHttpUpgrade
{
  HeraldHub *hub;
  HeraldWorker *worker;
  HeraldConfig *config;
  GString *head; /* a copy of the head being read, values NUL-terminated in place */
  const char *values[N_HEADERS];
  time_t date_at;
  char date[40]; /* "Date: ...\r\n" of date_at */
};

HeraldHttpUpgrade *
herald_http_upgrade_new (HeraldHub *hub, HeraldWorker *worker)
{
  HeraldHttpUpgrade *self;

  g_return_val_if_fail (HERALD_IS_HUB (hub), NULL);
  g_return_val_if_fail (HERALD_IS_WORKER (worker), NULL);

  self = g_new0 (HeraldHttpUpgrade, 1);
  self->hub = hub;
  self->worker = worker;
  self->config = herald_hub_get_config (hub);
  self->head = g_string_sized_new (4096);
  return self;
}

void
herald_http_upgrade_free (HeraldHttpUpgrade *self)
{
  if (self == NULL)
    return;
  g_string_free (self->head, TRUE);
  g_free (self);
}

void
herald_http_upgrade_call_clear (HeraldHttpUpgradeCall *call)
{
  if (call->reserved)
    herald_hub_release_connection (call->hub, call->id, 1006, "handshake not completed", FALSE);
  g_free (call->remote);
  g_clear_pointer (&call->claims, herald_jwt_claims_free);
  g_free (call->id);
  g_strfreev (call->channels);
  g_free (call->last_event_id);
  if (call->response)
    g_string_free (call->response, TRUE);
  g_clear_pointer (&call->leftover, g_bytes_unref);
  memset (call, 0, sizeof *call);
}

/* For tests (herald-http-upgrade.h). */
static gint n_decided;
static gint disabled;

guint
herald_http_upgrade_get_n_decided_for_test (void)
{
  return (guint)g_atomic_int_get (&n_decided);
}

void
herald_http_upgrade_set_enabled_for_test (gboolean enabled)
{
  g_atomic_int_set (&disabled, !enabled);
}

/* Whether a [proxy] connect hook is configured: a handshake without a
 * token then goes to libsoup's path (herald-http.c), which asks the
 * backend. */
static gboolean
connect_hook_configured (HeraldConfig *config)
{
  return herald_config_get_proxy_url (config, HERALD_HOOK_CONNECT) != NULL;
}

/* ---- the head ---- */

gboolean
herald_http_upgrade_wants (const char *head, gsize head_len)
{
  return head_len > 8 && memcmp (head, "GET /", 5) == 0 && (head[5] == 'w' || head[5] == 'e');
}

static const char *
get_header (gpointer data, const char *name)
{
  HeraldHttpUpgrade *self = data;

  for (guint i = 0; i < N_HEADERS; i++)
    if (g_ascii_strcasecmp (name, header_names[i]) == 0)
      return self->values[i];
  return NULL;
}

static gboolean
is_tchar (guchar c)
{
  return g_ascii_isalnum (c) || (c != 0 && strchr ("!#$%&'*+-.^_`|~", c) != NULL);
}

static HeaderId
header_id (const char *name, gsize len)
{
  for (guint i = 0; i < N_HEADERS; i++)
    if (strlen (header_names[i]) == len && g_ascii_strncasecmp (name, header_names[i], len) == 0)
      return i;
  return N_HEADERS;
}

/* Reads the copy of the head in self->head: the target into *target (NUL
 * at its end), the headers that matter into self->values. FALSE for
 * anything unusual (libsoup's call). */
static gboolean
read_head (HeraldHttpUpgrade *self, char **target)
{
  char *p = self->head->str, *end = p + self->head->len - 2; /* the final CRLF */
  char *line_end, *t;

  memset (self->values, 0, sizeof self->values);
  /* "GET <target> HTTP/1.1" */
  line_end = memchr (p, '\r', end - p);
  if (line_end == NULL || line_end[1] != '\n' || line_end - p < 4 + 1 + 9
      || memcmp (line_end - 9, " HTTP/1.1", 9) != 0)
    return FALSE;
  t = p + 4;
  line_end[-9] = '\0';
  /* RFC 3986 path and query characters, %XX escapes well formed: what
   * libsoup's URI parser surely takes as is (anything else is its call). */
  for (char *q = t; *q; q++)
    if (*q == '%' ? !g_ascii_isxdigit (q[1]) || !g_ascii_isxdigit (q[2])
                  : !g_ascii_isalnum (*q) && strchr ("-._~!$&'()*+,;=:@/?", *q) == NULL)
      return FALSE;
  *target = t;

  for (p = line_end + 2; p < end; p = line_end + 2)
    {
      char *name = p, *colon, *v, *v_end;
      HeaderId id;

      line_end = memchr (p, '\r', end - p + 1);
      if (line_end == NULL || line_end[1] != '\n')
        return FALSE;
      for (colon = name; colon < line_end && is_tchar ((guchar)*colon); colon++)
        ;
      if (colon == name || colon == line_end || *colon != ':')
        return FALSE; /* also obs-fold (a line starting with a space) */
      for (v = colon + 1; v < line_end && (*v == ' ' || *v == '\t'); v++)
        ;
      for (v_end = line_end; v_end > v && (v_end[-1] == ' ' || v_end[-1] == '\t'); v_end--)
        ;
      for (const char *q = v; q < v_end; q++)
        if ((guchar)*q < 0x20 ? *q != '\t' : (guchar)*q >= 0x7f)
          return FALSE;
      id = header_id (name, colon - name);
      if (id == N_HEADERS)
        {
          gsize len = colon - name;
          /* A body, 100-continue: libsoup (and herald-http-early.c) decide. */
          if ((len == 14 && g_ascii_strncasecmp (name, "Content-Length", 14) == 0)
              || (len == 17 && g_ascii_strncasecmp (name, "Transfer-Encoding", 17) == 0)
              || (len == 6 && g_ascii_strncasecmp (name, "Expect", 6) == 0))
            return FALSE;
          continue;
        }
      if (self->values[id] != NULL)
        return FALSE; /* repeated: libsoup joins or picks, so let it */
      *v_end = '\0';
      self->values[id] = v;
    }
  return self->values[H_HOST] != NULL && *self->values[H_HOST] != '\0';
}

/* ---- answers ---- */

static const char *
reason_phrase (guint status)
{
  switch (status)
    {
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 409:
      return "Conflict";
    case 503:
      return "Service Unavailable";
    default:
      return "Error";
    }
}

/* "Date: Tue, 08 Dec 2026 00:15:05 GMT\r\n" (RFC 9110 5.6.7), once a second. */
static const char *
date_header (HeraldHttpUpgrade *self)
{
  static const char days[7][4] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
  static const char months[12][4]
      = { "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
  time_t now = time (NULL);
  struct tm tm;

  if (now != self->date_at || self->date[0] == '\0')
    {
      gmtime_r (&now, &tm);
      g_snprintf (self->date, sizeof self->date, "Date: %s, %02d %s %04d %02d:%02d:%02d GMT\r\n",
                  days[tm.tm_wday], tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour,
                  tm.tm_min, tm.tm_sec);
      self->date_at = now;
    }
  return self->date;
}

/* CORS for /events, as herald_http_apply_cors (…, TRUE) sets it. */
static void
append_cors (HeraldHttpUpgrade *self, GString *out)
{
  const char *const *allowed = herald_config_get_allowed_origins (self->config);
  const char *origin = self->values[H_ORIGIN];

  if (allowed == NULL)
    {
      g_string_append (out, "Access-Control-Allow-Origin: *\r\n");
      return;
    }
  if (origin == NULL)
    return;
  g_string_append (out, "Vary: Origin\r\n");
  if (g_strv_contains (allowed, origin))
    {
      g_string_append (out, "Access-Control-Allow-Origin: ");
      g_string_append (out, origin);
      g_string_append (out, "\r\nAccess-Control-Allow-Credentials: true\r\n");
    }
}

static GString *
refusal_response (HeraldHttpUpgrade *self, const HeraldHandshakeRefusal *refusal, gboolean sse)
{
  GString *out = g_string_sized_new (320);
  gsize len = 0;
  g_autofree char *body = herald_json_error_body (refusal->message, &len);

  g_string_append (out, "HTTP/1.1 ");
  herald_json_append_uint (out, refusal->status);
  g_string_append_c (out, ' ');
  g_string_append (out, reason_phrase (refusal->status));
  g_string_append (out, "\r\n" SERVER_HEADER);
  g_string_append (out, date_header (self));
  if (sse)
    append_cors (self, out);
  if (refusal->retry_after)
    g_string_append (out, "Retry-After: 1\r\n");
  g_string_append (out, "Connection: close\r\n");
  if (refusal->www_authenticate)
    g_string_append (out, "WWW-Authenticate: Bearer realm=\"herald\"\r\n");
  g_string_append (out, "Content-Type: application/json\r\n");
  if (refusal->ws_version)
    g_string_append (out, "Sec-WebSocket-Version: 13\r\n");
  g_string_append (out, "Content-Length: ");
  herald_json_append_uint (out, len);
  g_string_append (out, "\r\n\r\n");
  g_string_append_len (out, body, len);
  return out;
}

static GString *
upgrade_response (HeraldHttpUpgrade *self, const char *protocol, const char *extensions)
{
  GString *out = g_string_sized_new (256);
  char accept[29];

  herald_handshake_accept_key (self->values[H_KEY], accept);
  g_string_append (out, "HTTP/1.1 101 Switching Protocols\r\n" SERVER_HEADER);
  g_string_append (out, date_header (self));
  g_string_append (out, "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ");
  g_string_append (out, accept);
  g_string_append (out, "\r\n");
  if (protocol)
    {
      g_string_append (out, "Sec-WebSocket-Protocol: ");
      g_string_append (out, protocol);
      g_string_append (out, "\r\n");
    }
  if (extensions)
    {
      g_string_append (out, "Sec-WebSocket-Extensions: ");
      g_string_append (out, extensions);
      g_string_append (out, "\r\n");
    }
  g_string_append (out, "\r\n");
  return out;
}

static GString *
sse_response (HeraldHttpUpgrade *self)
{
  GString *out = g_string_sized_new (256);

  g_string_append (out, "HTTP/1.1 200 OK\r\n" SERVER_HEADER);
  g_string_append (out, date_header (self));
  append_cors (self, out);
  g_string_append (out, "Content-Type: text/event-stream; charset=utf-8\r\nCache-Control: "
                        "no-cache\r\nConnection: close\r\nX-Accel-Buffering: no\r\n\r\n");
  return out;
}

/* ---- deciding ---- */

static gboolean
remote_address (int fd, char *out, gsize size)
{
  struct sockaddr_storage addr;
  socklen_t len = sizeof addr;

  if (getpeername (fd, (struct sockaddr *)&addr, &len) != 0)
    return FALSE;
  if (addr.ss_family == AF_INET)
    return inet_ntop (AF_INET, &((struct sockaddr_in *)&addr)->sin_addr, out, size) != NULL;
  if (addr.ss_family == AF_INET6)
    return inet_ntop (AF_INET6, &((struct sockaddr_in6 *)&addr)->sin6_addr, out, size) != NULL;
  return FALSE;
}

HeraldHttpUpgradeResult
herald_http_upgrade_decide (HeraldHttpUpgrade *self, int fd, const char *buf, gsize head_len,
                            gsize n, HeraldHttpUpgradeCall *call)
{
  g_auto (HeraldHandshakeRefusal) refusal = { 0 };
  HeraldHandshakeHeaders h = { get_header, get_header, self, NULL };
  g_autofree char *protocol = NULL;
  g_autofree char *extensions = NULL;
  const char *requested_id = NULL;
  char remote[INET6_ADDRSTRLEN];
  char *target, *query;
  gboolean sse;

  g_return_val_if_fail (self != NULL, HERALD_HTTP_UPGRADE_NO);
  g_return_val_if_fail (call != NULL && call->response == NULL, HERALD_HTTP_UPGRADE_NO);

  if (!herald_http_upgrade_wants (buf, head_len) || g_atomic_int_get (&disabled))
    return HERALD_HTTP_UPGRADE_NO;
  g_string_truncate (self->head, 0);
  g_string_append_len (self->head, buf, head_len);
  if (!read_head (self, &target))
    return HERALD_HTTP_UPGRADE_NO;

  /* The path as libsoup would route it: no decoding, no dot segments. */
  query = strchr (target, '?');
  if (query)
    *query++ = '\0';
  if (strchr (target, '%') != NULL || strstr (target, "/.") != NULL)
    return HERALD_HTTP_UPGRADE_NO;
  if (g_str_equal (target, "/events"))
    sse = TRUE;
  else if (g_str_equal (target, "/ws"))
    sse = FALSE;
  else if (g_str_has_prefix (target, "/ws/"))
    {
      sse = FALSE;
      requested_id = target + 4;
    }
  else
    return HERALD_HTTP_UPGRADE_NO;
  h.query = query;
  if (!remote_address (fd, remote, sizeof remote))
    return HERALD_HTTP_UPGRADE_NO;

  /* herald-http.c's handlers, step by step. */
  call->hub = self->hub;
  call->transport = sse ? HERALD_TRANSPORT_SSE : HERALD_TRANSPORT_WEBSOCKET;
  call->remote = g_strdup (remote);
  if (!herald_handshake_check_origin (self->config, &h, &refusal))
    goto refused;
  switch (herald_handshake_verify_token (self->hub, &h, &call->claims, &refusal))
    {
    case HERALD_HANDSHAKE_TOKEN_REFUSED:
      goto refused;
    case HERALD_HANDSHAKE_TOKEN_NONE:
      /* A connect hook would ask the backend: libsoup's path does that. */
      if (connect_hook_configured (self->config))
        {
          herald_http_upgrade_call_clear (call);
          return HERALD_HTTP_UPGRADE_NO;
        }
      if (!herald_handshake_check_anonymous (self->config, &refusal))
        goto refused;
      break;
    case HERALD_HANDSHAKE_TOKEN_VERIFIED:
    default:
      break;
    }
  if (sse)
    {
      g_autoptr (GPtrArray) to_ask = g_ptr_array_new ();

      if (!herald_handshake_check_sse (self->hub, &h, call->claims, &call->channels,
                                       &call->last_event_id, to_ask, &refusal))
        goto refused;
      /* subscribe=proxy channels: libsoup's path asks the backend */
      if (to_ask->len > 0)
        {
          herald_http_upgrade_call_clear (call);
          return HERALD_HTTP_UPGRADE_NO;
        }
    }
  else
    {
      if (!herald_handshake_check_websocket (&h, &protocol, &refusal)
          || !herald_handshake_check_id (requested_id, &refusal))
        goto refused;
      call->id = g_strdup (requested_id);
    }
  if (!herald_handshake_reserve (self->hub, self->worker, NULL, call->claims, call->remote,
                                 &call->id, &refusal))
    goto refused;
  call->reserved = TRUE;
  if (sse)
    call->response = sse_response (self);
  else
    {
      extensions = herald_handshake_negotiate_deflate (self->config, &h);
      call->deflate = extensions != NULL;
      call->response = upgrade_response (self, protocol, extensions);
    }
  if (n > head_len)
    call->leftover = g_bytes_new (buf + head_len, n - head_len);
  g_atomic_int_inc (&n_decided);
  return HERALD_HTTP_UPGRADE_ACCEPTED;

refused:
  g_atomic_int_inc (&n_decided);
  call->response = refusal_response (self, &refusal, sse);
  return HERALD_HTTP_UPGRADE_REFUSED;
}

void
herald_http_upgrade_adopt (HeraldHttpUpgrade *self, HeraldHttpUpgradeCall *call, int fd)
{
  HeraldConnectionSetup setup = { 0 };
  HeraldSubscribeRequest request = {
    .channels = (const char *const *)call->channels,
    .from = HERALD_SUBSCRIBE_STREAM,
    .last_event_id = call->last_event_id,
    .presence = -1,
    /* every channel was checked by herald_handshake_check_sse() */
    .allowed = TRUE,
  };
  g_autoptr (HeraldConnection) conn = NULL;
  g_autoptr (GBytes) prelude = NULL;

  g_return_if_fail (self != NULL && call->response != NULL);

  /* The head leaves with the first frames ("connected", the SSE greeting):
   * one write, one segment. The fd stays in the epoll set for the
   * connection to take over. */
  prelude = g_string_free_to_bytes (g_steal_pointer (&call->response));
  setup.id = call->id;
  setup.transport = call->transport;
  setup.deflate = call->deflate;
  setup.remote_address = call->remote;
  setup.claims = g_steal_pointer (&call->claims);
  call->reserved = FALSE; /* the connection owns the reservation now */
  setup.fd = fd;
  setup.leftover = call->leftover;
  setup.prelude = prelude;
  setup.registered = TRUE;
  conn = herald_hub_adopt (self->hub, self->worker, &setup,
                           call->transport == HERALD_TRANSPORT_SSE ? &request : NULL);
  g_clear_pointer (&setup.claims, herald_jwt_claims_free);
}
