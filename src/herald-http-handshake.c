/* herald-http-handshake.c: the decisions of a WebSocket or SSE handshake.
 *
 * See herald-http-handshake.h. The texts of the RFC 6455 refusals are
 * libsoup's (soup_websocket_server_check_handshake()), which the libsoup
 * path answered before these checks moved here.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>

#include "herald-error.h"
#include "herald-http-handshake.h"
#include "herald-names.h"
#include "herald-subscribe.h"
#include "herald-ws.h"

void
herald_handshake_refusal_clear (HeraldHandshakeRefusal *refusal)
{
  g_free (refusal->owned_message);
  memset (refusal, 0, sizeof *refusal);
}

static gboolean
refuse (HeraldHandshakeRefusal *refusal, guint status, const char *message)
{
  refusal->status = status;
  refusal->message = message;
  refusal->www_authenticate = status == 401;
  return FALSE;
}

static gboolean
refuse_take (HeraldHandshakeRefusal *refusal, guint status, char *message)
{
  g_free (refusal->owned_message);
  refusal->owned_message = message;
  return refuse (refusal, status, message);
}

/* ---- the token ---- */

char **
herald_http_query_get_all (const char *query, const char *key)
{
  g_autoptr (GStrvBuilder) out = g_strv_builder_new ();
  g_auto (GStrv) pairs = NULL;

  if (query == NULL)
    return g_strv_builder_end (out);
  pairs = g_strsplit (query, "&", -1);
  for (guint i = 0; pairs[i]; i++)
    {
      char *eq = strchr (pairs[i], '=');
      g_autofree char *name = NULL;
      g_autofree char *value = NULL;

      if (eq == NULL)
        continue;
      *eq = '\0';
      for (char *p = eq + 1; *p; p++)
        if (*p == '+')
          *p = ' ';
      name = g_uri_unescape_string (pairs[i], NULL);
      value = g_uri_unescape_string (eq + 1, NULL);
      if (name && value && g_str_equal (name, key))
        g_strv_builder_add (out, value);
    }
  return g_strv_builder_end (out);
}

/* Whether the query may name @key at all (most handshakes carry no token:
 * skip splitting the query for them). */
static gboolean
query_may_have (const char *query, const char *key)
{
  return query != NULL && (strchr (query, '%') != NULL || strstr (query, key) != NULL);
}

static char *
cookie_value (const HeraldHandshakeHeaders *h, const char *name)
{
  const char *cookie = h->get_list (h->data, "Cookie");
  g_auto (GStrv) parts = NULL;
  gsize len = strlen (name);

  if (cookie == NULL)
    return NULL;
  parts = g_strsplit (cookie, ";", -1);
  for (guint i = 0; parts[i]; i++)
    {
      const char *c = parts[i];
      while (*c == ' ')
        c++;
      if (strncmp (c, name, len) == 0 && c[len] == '=')
        return g_strdup (c + len + 1);
    }
  return NULL;
}

char *
herald_handshake_find_token (const HeraldHandshakeHeaders *h)
{
  const char *auth, *protocols;
  g_return_val_if_fail (h != NULL, NULL);

  if (query_may_have (h->query, "token"))
    {
      g_auto (GStrv) tokens = herald_http_query_get_all (h->query, "token");
      if (tokens[0])
        return g_strdup (tokens[0]);
    }
  auth = h->get_one (h->data, "Authorization");
  if (auth && g_ascii_strncasecmp (auth, "Bearer ", 7) == 0)
    return g_strstrip (g_strdup (auth + 7));
  protocols = h->get_list (h->data, "Sec-WebSocket-Protocol");
  if (protocols)
    {
      g_auto (GStrv) list = g_strsplit (protocols, ",", -1);
      for (guint i = 0; list[i]; i++)
        {
          g_strstrip (list[i]);
          if (g_str_has_prefix (list[i], "bearer."))
            return g_strdup (list[i] + 7);
        }
    }
  return cookie_value (h, "herald_token");
}

gboolean
herald_handshake_origin_allowed (HeraldConfig *config, const HeraldHandshakeHeaders *h)
{
  const char *const *allowed = herald_config_get_allowed_origins (config);
  const char *origin;

  if (allowed == NULL)
    return TRUE;
  origin = h->get_one (h->data, "Origin");
  return origin == NULL || g_strv_contains (allowed, origin);
}

gboolean
herald_handshake_check_origin (HeraldConfig *config, const HeraldHandshakeHeaders *h,
                               HeraldHandshakeRefusal *refusal)
{
  g_return_val_if_fail (HERALD_IS_CONFIG (config) && h != NULL && refusal != NULL, FALSE);

  if (herald_handshake_origin_allowed (config, h))
    return TRUE;
  return refuse (refusal, 403, "Origin not allowed");
}

HeraldHandshakeToken
herald_handshake_verify_token (HeraldHub *hub, const HeraldHandshakeHeaders *h,
                               HeraldJwtClaims **claims_out, HeraldHandshakeRefusal *refusal)
{
  g_autofree char *token = NULL;
  HeraldJwtVerifier *verifier;
  g_autoptr (GError) error = NULL;

  g_return_val_if_fail (HERALD_IS_HUB (hub), HERALD_HANDSHAKE_TOKEN_REFUSED);
  g_return_val_if_fail (h != NULL && claims_out != NULL && refusal != NULL,
                        HERALD_HANDSHAKE_TOKEN_REFUSED);

  token = herald_handshake_find_token (h);
  if (token == NULL || *token == '\0')
    return HERALD_HANDSHAKE_TOKEN_NONE;
  verifier = herald_hub_get_verifier (hub);
  if (verifier == NULL)
    {
      refuse (refusal, 401, "Tokens are not accepted: no token key configured");
      return HERALD_HANDSHAKE_TOKEN_REFUSED;
    }
  *claims_out
      = herald_jwt_verifier_verify (verifier, token, g_get_real_time () / G_USEC_PER_SEC,
                                    herald_config_get_leeway (herald_hub_get_config (hub)), &error);
  if (*claims_out == NULL)
    {
      g_debug ("token refused: %s", error->message);
      refuse_take (refusal, 401, g_strdup (error->message));
      return HERALD_HANDSHAKE_TOKEN_REFUSED;
    }
  return HERALD_HANDSHAKE_TOKEN_VERIFIED;
}

gboolean
herald_handshake_check_anonymous (HeraldConfig *config, HeraldHandshakeRefusal *refusal)
{
  g_return_val_if_fail (HERALD_IS_CONFIG (config) && refusal != NULL, FALSE);

  if (herald_config_get_anonymous (config))
    return TRUE;
  return refuse (refusal, 401, "A token is required");
}

/* ---- WebSocket (RFC 6455 4.2.1) ---- */

static gboolean
list_contains (const char *list, const char *token)
{
  gsize len = strlen (token);
  const char *p = list;

  while (p && *p)
    {
      const char *end = strchr (p, ',');
      const char *a = p, *b = end ? end : p + strlen (p);

      while (a < b && g_ascii_isspace (*a))
        a++;
      while (b > a && g_ascii_isspace (b[-1]))
        b--;
      if ((gsize)(b - a) == len && g_ascii_strncasecmp (a, token, len) == 0)
        return TRUE;
      p = end ? end + 1 : NULL;
    }
  return FALSE;
}

static gboolean
key_is_valid (const char *key)
{
  guchar buf[18];
  gint state = 0;
  guint save = 0;

  /* "a base64-encoded value that, when decoded, is 16 bytes in length" */
  return key != NULL && strlen (key) == 24
         && g_base64_decode_step (key, 24, buf, &state, &save) == 16;
}

char **
herald_handshake_offered_protocols (const char *header)
{
  g_autoptr (GStrvBuilder) out = NULL;
  g_auto (GStrv) list = NULL;
  g_auto (GStrv) kept = NULL;

  if (header == NULL)
    return NULL;
  out = g_strv_builder_new ();
  list = g_strsplit (header, ",", -1);
  for (guint i = 0; list[i]; i++)
    {
      g_strstrip (list[i]);
      if (*list[i] && !g_str_has_prefix (list[i], "bearer."))
        g_strv_builder_add (out, list[i]);
    }
  kept = g_strv_builder_end (out);
  if (kept[0] == NULL)
    return NULL;
  return g_steal_pointer (&kept);
}

gboolean
herald_handshake_check_websocket (const HeraldHandshakeHeaders *h, char **protocol_out,
                                  HeraldHandshakeRefusal *refusal)
{
  const char *upgrade, *connection, *version;
  g_auto (GStrv) protocols = NULL;

  g_return_val_if_fail (h != NULL && protocol_out != NULL && refusal != NULL, FALSE);

  upgrade = h->get_one (h->data, "Upgrade");
  connection = h->get_list (h->data, "Connection");
  version = h->get_one (h->data, "Sec-WebSocket-Version");

  if (upgrade == NULL || g_ascii_strcasecmp (upgrade, "websocket") != 0 || connection == NULL
      || !list_contains (connection, "upgrade"))
    refuse (refusal, 400, "WebSocket handshake expected");
  else if (version == NULL || g_ascii_strcasecmp (version, "13") != 0)
    refuse (refusal, 400, "Unsupported WebSocket version");
  else if (!key_is_valid (h->get_one (h->data, "Sec-WebSocket-Key")))
    refuse (refusal, 400, "Invalid WebSocket key");
  else
    {
      /* A client that sends only its token (Python, Node ws, curl) gets no
       * Sec-WebSocket-Protocol, as RFC 6455 4.2.2 allows; otherwise the
       * first offered one that is a single token. */
      protocols
          = herald_handshake_offered_protocols (h->get_list (h->data, "Sec-WebSocket-Protocol"));
      for (guint i = 0; protocols && protocols[i]; i++)
        if (strchr (protocols[i], ' ') == NULL)
          {
            *protocol_out = g_strdup (protocols[i]);
            break;
          }
      if (protocols == NULL || *protocol_out != NULL)
        return TRUE;
      refuse (refusal, 400, "Unsupported WebSocket subprotocol");
    }
  /* RFC 6455 4.4: name the version this server speaks. */
  refusal->ws_version = version == NULL || g_strcmp0 (version, "13") != 0;
  return FALSE;
}

char *
herald_handshake_negotiate_deflate (HeraldConfig *config, const HeraldHandshakeHeaders *h)
{
  const char *extensions;

  g_return_val_if_fail (HERALD_IS_CONFIG (config) && h != NULL, NULL);

  extensions = h->get_list (h->data, "Sec-WebSocket-Extensions");
  if (extensions == NULL || !herald_config_get_compression (config))
    return NULL;
  return herald_ws_negotiate_deflate (extensions);
}

void
herald_handshake_accept_key (const char *key, char out[29])
{
  static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
  g_autoptr (GChecksum) sha1 = g_checksum_new (G_CHECKSUM_SHA1);
  guint8 digest[20];
  gsize len = sizeof digest;
  gint state = 0, save = 0;
  gsize n;

  g_checksum_update (sha1, (const guchar *)key, strlen (key));
  g_checksum_update (sha1, (const guchar *)guid, sizeof guid - 1);
  g_checksum_get_digest (sha1, digest, &len);
  n = g_base64_encode_step (digest, len, FALSE, out, &state, &save);
  n += g_base64_encode_close (FALSE, out + n, &state, &save);
  out[n] = '\0';
}

/* ---- SSE ---- */

/* channel=a&channel=a is one subscription: counted once against the limit
 * and replayed once on resume. Keeps the first occurrence, in order. */
static void
strv_remove_duplicates (char **strv)
{
  guint out = 0;

  if (strv[0] == NULL || strv[1] == NULL)
    return;
  {
    g_autoptr (GHashTable) seen = g_hash_table_new (g_str_hash, g_str_equal);

    for (guint i = 0; strv[i]; i++)
      {
        /* g_hash_table_add() would replace the stored key with this copy. */
        if (g_hash_table_contains (seen, strv[i]))
          g_free (strv[i]);
        else
          {
            g_hash_table_add (seen, strv[i]);
            strv[out++] = strv[i];
          }
      }
    strv[out] = NULL;
  }
}

gboolean
herald_handshake_check_sse (HeraldHub *hub, const HeraldHandshakeHeaders *h,
                            const HeraldJwtClaims *claims, char ***channels_out,
                            char **last_event_id_out, GPtrArray *to_ask,
                            HeraldHandshakeRefusal *refusal)
{
  HeraldConfig *config;
  char **channels;
  const char *last;
  guint max_subs;

  g_return_val_if_fail (HERALD_IS_HUB (hub), FALSE);
  g_return_val_if_fail (h != NULL && channels_out != NULL && last_event_id_out != NULL, FALSE);
  g_return_val_if_fail (to_ask != NULL && refusal != NULL, FALSE);

  config = herald_hub_get_config (hub);
  channels = herald_http_query_get_all (h->query, "channel");
  /* The token's subs claim: the server's channels join the stream's */
  if (claims != NULL && claims->subs != NULL)
    {
      g_autoptr (GStrvBuilder) all = g_strv_builder_new ();

      g_strv_builder_addv (all, (const char **)channels);
      g_strv_builder_addv (all, (const char **)claims->subs);
      g_strfreev (channels);
      channels = g_strv_builder_end (all);
    }
  *channels_out = channels; /* the caller's, refused or not */
  if (channels[0] == NULL)
    return refuse (refusal, 400, "Name at least one channel: /events?channel=NAME");
  strv_remove_duplicates (channels);
  max_subs = herald_config_get_max_subscriptions_per_connection (config);
  if (max_subs > 0 && g_strv_length (channels) > max_subs)
    return refuse_take (refusal, 400,
                        g_strdup_printf ("Too many channels: at most %u per stream ([limits] "
                                         "max-subscriptions-per-connection)",
                                         max_subs));
  for (guint i = 0; channels[i]; i++)
    {
      if (!herald_channel_name_is_valid (channels[i]))
        return refuse (refusal, 400,
                       "Invalid channel name: use 1–255 characters of A-Z a-z 0-9 _ . : @ / - # ,");
      /* The server's "subs" (token or connect hook) need no permission */
      if (claims != NULL && claims->subs != NULL
          && g_strv_contains ((const char *const *)claims->subs, channels[i]))
        continue;
      /* subscribe=proxy: the backend's subscribe hook decides (the caller) */
      if (strchr (channels[i], '#') == NULL
          && herald_config_namespace_for (config, channels[i])->subscribe
                 == HERALD_NS_SUBSCRIBE_PROXY)
        {
          g_ptr_array_add (to_ask, channels[i]);
          continue;
        }
      if (!herald_hub_may_subscribe (hub, claims, channels[i]))
        return refuse (refusal, 403, "Not allowed to subscribe to this channel");
    }
  last = h->get_one (h->data, "Last-Event-ID");
  if (last != NULL)
    *last_event_id_out = g_strdup (last);
  else if (query_may_have (h->query, "lastEventId"))
    {
      g_auto (GStrv) ids = herald_http_query_get_all (h->query, "lastEventId");
      if (ids[0])
        *last_event_id_out = g_strdup (ids[0]);
    }
  return TRUE;
}

/* ---- the connection id and the limits ---- */

gboolean
herald_handshake_check_id (const char *requested_id, HeraldHandshakeRefusal *refusal)
{
  g_return_val_if_fail (refusal != NULL, FALSE);

  if (requested_id == NULL || herald_connection_id_is_valid (requested_id))
    return TRUE;
  return refuse (refusal, 400, "Invalid connection id: use 1–64 characters of A-Z a-z 0-9 _ -");
}

gboolean
herald_handshake_reserve (HeraldHub *hub, HeraldWorker *worker, const char *requested_id,
                          const HeraldJwtClaims *claims, const char *remote, char **id,
                          HeraldHandshakeRefusal *refusal)
{
  g_autoptr (GError) error = NULL;

  g_return_val_if_fail (HERALD_IS_HUB (hub) && HERALD_IS_WORKER (worker), FALSE);
  g_return_val_if_fail (id != NULL && refusal != NULL, FALSE);

  if (herald_worker_is_shutting_down (worker) || herald_hub_is_draining (hub))
    {
      /* Draining: try again (another node, or this one restarted) shortly. */
      refuse (refusal, 503, "Server shutting down");
      refusal->retry_after = TRUE;
      return FALSE;
    }
  if (requested_id && !herald_connection_id_is_valid (requested_id))
    return refuse (refusal, 400, "Invalid connection id: use 1–64 characters of A-Z a-z 0-9 _ -");
  if (*id == NULL)
    *id = requested_id ? g_strdup (requested_id) : herald_connection_id_new ();
  if (!herald_hub_reserve_connection (hub, *id, claims ? claims->sub : NULL, remote,
                                      herald_worker_get_index (worker), &error))
    return refuse_take (refusal,
                        g_error_matches (error, HERALD_ERROR, HERALD_ERROR_IN_USE) ? 409 : 503,
                        g_strdup (error->message));
  return TRUE;
}
