/* herald-http-api.c: the HTTP server API for backends, /healthz and /metrics.
 *
 * Each worker registers these handlers on its own SoupServer; they run in the
 * worker's thread and its thread-default main context, which is also where
 * the hub's async callbacks arrive.
 *
 * An early handler (run once the request headers are in, before the body)
 * answers everything that does not need the body: API disabled, CORS
 * preflight, authentication, routing and a Content-Length over the limit.
 * Whatever status it sets makes libsoup skip the normal handler. A chunked
 * body is collected here, bounded, instead of in libsoup's accumulating
 * request body.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>
#include <glib/gi18n.h>
#include <json-glib/json-glib.h>

#include "herald-http-api-app.h"
#include "herald-http-api.h"
#include "herald-http-respond.h"
#include "herald-http-route.h"
#include "herald-metrics.h"
#include "herald-json.h"
#include "herald-names.h"

#define CLOSE_REASON_OPERATOR "closed by operator"
#define BODY_COLLECTOR_KEY "herald-http-api-body"

/* A chunked request body, collected up to the size limit. */
typedef struct
{
  GByteArray *data;
  gsize max;
  gboolean overflow;
} BodyCollector;

static void
body_collector_free (BodyCollector *collector)
{
  g_clear_pointer (&collector->data, g_byte_array_unref);
  g_free (collector);
}

/* An API request waiting for the hub: keeps the message paused until done. */
typedef struct
{
  HeraldHub *hub;
  SoupServerMessage *msg;
  gulong finished_id;
  gboolean finished;
  char *arg;
} ApiCall;

/* --- Responses --- */

/* A publish's answer: {"offset":N}, or null when it was not stored (offset
 * 0: Redis unreachable; delivered to this node's subscribers only). */
static void
respond_offset (SoupServerMessage *msg, guint64 offset)
{
  g_autoptr (JsonBuilder) builder = json_builder_new_immutable ();

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "offset");
  if (offset > 0)
    json_builder_add_int_value (builder, (gint64)offset);
  else
    json_builder_add_null_value (builder);
  json_builder_end_object (builder);
  herald_http_api_respond_builder (msg, SOUP_STATUS_OK, builder);
}

static void
respond_uint (SoupServerMessage *msg, const char *name, guint64 value)
{
  g_autoptr (JsonBuilder) builder = json_builder_new_immutable ();

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, name);
  json_builder_add_int_value (builder, (gint64)value);
  json_builder_end_object (builder);
  herald_http_api_respond_builder (msg, SOUP_STATUS_OK, builder);
}

static void
respond_method_not_allowed (SoupServerMessage *msg, const char *allow)
{
  soup_message_headers_replace (soup_server_message_get_response_headers (msg), "Allow", allow);
  herald_http_api_respond_error (msg, SOUP_STATUS_METHOD_NOT_ALLOWED, _ ("Method not allowed"));
}

/* libsoup 3.2 leaks a server connection, fd included, when the client
 * closes it while idle between requests (fixed in 3.3). Backends (curl per
 * call, pooled clients) and probes do that all the time, so these endpoints
 * close the connection after each response themselves. */
static void
set_connection_close (SoupServerMessage *msg)
{
  soup_message_headers_replace (soup_server_message_get_response_headers (msg), "Connection",
                                "close");
}

/* --- CORS --- */

/**
 * herald_http_apply_cors:
 * @msg: the request being answered
 * @config: the configuration holding `[server] allowed-origins`
 * @allow_any: whether any origin may read the response when
 *   allowed-origins is unset (SSE does, the HTTP API does not)
 *
 * Adds the CORS response headers for the request's `Origin`. When
 * allowed-origins is set and the origin is in it, the response names that
 * origin and allows credentials; a response that depends on `Origin` says so
 * with `Vary: Origin`. With allowed-origins unset and @allow_any, it answers
 * `Access-Control-Allow-Origin: *`. Otherwise nothing is added. The
 * preflight-only headers (allowed methods and headers, max age) are the
 * caller's, since they differ per endpoint.
 */
void
herald_http_apply_cors (SoupServerMessage *msg, HeraldConfig *config, gboolean allow_any)
{
  SoupMessageHeaders *response_headers;
  const char *const *allowed;
  const char *origin;

  g_return_if_fail (SOUP_IS_SERVER_MESSAGE (msg));
  g_return_if_fail (HERALD_IS_CONFIG (config));

  response_headers = soup_server_message_get_response_headers (msg);
  allowed = herald_config_get_allowed_origins (config);
  origin = soup_message_headers_get_one (soup_server_message_get_request_headers (msg), "Origin");

  if (allowed == NULL)
    {
      if (allow_any)
        soup_message_headers_replace (response_headers, "Access-Control-Allow-Origin", "*");
      return;
    }
  if (origin == NULL)
    return;

  soup_message_headers_append (response_headers, "Vary", "Origin");
  if (g_strv_contains (allowed, origin))
    {
      soup_message_headers_replace (response_headers, "Access-Control-Allow-Origin", origin);
      soup_message_headers_replace (response_headers, "Access-Control-Allow-Credentials", "true");
    }
}

/* --- Authentication --- */

/* Compares in time that depends only on the length of @expected: every byte
 * is XORed into an accumulator, with no early exit. A token of another
 * length is compared against @expected itself and then refused. */
gboolean
herald_http_api_key_matches (const char *given, const char *expected)
{
  gsize given_len = strlen (given);
  gsize expected_len = strlen (expected);
  const char *compared = given_len == expected_len ? given : expected;
  volatile guint8 diff = given_len != expected_len;

  for (gsize i = 0; i < expected_len; i++)
    diff |= (guint8)(compared[i] ^ expected[i]);
  return diff == 0;
}

/* "Authorization: Bearer <key>" (also used by herald-http-fast.c). */
gboolean
herald_http_api_headers_authorized (SoupMessageHeaders *headers, const char *api_key)
{
  const char *header;
  const char *token;

  header = soup_message_headers_get_one (headers, "Authorization");
  if (header == NULL || g_ascii_strncasecmp (header, "Bearer ", 7) != 0)
    return FALSE;
  token = header + 7;
  while (*token == ' ')
    token++;
  return herald_http_api_key_matches (token, api_key);
}

static gboolean
request_is_authorized (SoupServerMessage *msg, const char *api_key)
{
  return herald_http_api_headers_authorized (soup_server_message_get_request_headers (msg),
                                             api_key);
}

/* --- Routing --- */

/* SoupServer hands handlers the decoded path unless it runs with raw-paths. */
static char *
dup_request_path (SoupServer *server, SoupServerMessage *msg)
{
  const char *path = g_uri_get_path (soup_server_message_get_uri (msg));
  gboolean raw_paths = FALSE;

  g_object_get (server, "raw-paths", &raw_paths, NULL);
  if (raw_paths)
    return g_uri_unescape_string (path, NULL);
  return g_strdup (path);
}

/* --- Request bodies --- */

static void
body_collector_got_chunk (SoupServerMessage *msg, GBytes *chunk, gpointer user_data)
{
  BodyCollector *collector = user_data;
  gsize size;
  gconstpointer data = g_bytes_get_data (chunk, &size);

  if (collector->overflow)
    return;
  if (collector->data->len + size > collector->max)
    {
      /* Keep reading (libsoup must drain the body) but keep nothing. */
      collector->overflow = TRUE;
      g_byte_array_set_size (collector->data, 0);
      set_connection_close (msg);
      herald_http_api_respond_error (msg, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE,
                                     _ ("Request body exceeds max-message-size"));
      return;
    }
  g_byte_array_append (collector->data, data, size);
}

/* Returns FALSE (and answers 413) when the declared body is over @max;
 * otherwise arranges for the body to be read within @max bytes. */
static gboolean
prepare_body (SoupServerMessage *msg, gsize max)
{
  SoupMessageHeaders *request_headers = soup_server_message_get_request_headers (msg);
  SoupMessageBody *request_body = soup_server_message_get_request_body (msg);
  BodyCollector *collector;

  if (soup_message_headers_get_encoding (request_headers) == SOUP_ENCODING_CONTENT_LENGTH)
    {
      if (soup_message_headers_get_content_length (request_headers) <= (goffset)max)
        return TRUE;
      /* libsoup still reads the body after an early answer: discard it. */
      soup_message_body_set_accumulate (request_body, FALSE);
      set_connection_close (msg);
      herald_http_api_respond_error (msg, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE,
                                     _ ("Request body exceeds max-message-size"));
      return FALSE;
    }

  soup_message_body_set_accumulate (request_body, FALSE);
  collector = g_new0 (BodyCollector, 1);
  collector->data = g_byte_array_new ();
  collector->max = max;
  g_object_set_data_full (G_OBJECT (msg), BODY_COLLECTOR_KEY, collector,
                          (GDestroyNotify)body_collector_free);
  g_signal_connect (msg, "got-chunk", G_CALLBACK (body_collector_got_chunk), collector);
  return TRUE;
}

static GBytes *
dup_request_body (SoupServerMessage *msg)
{
  BodyCollector *collector = g_object_get_data (G_OBJECT (msg), BODY_COLLECTOR_KEY);

  if (collector != NULL)
    return g_bytes_new (collector->data->data, collector->data->len);
  return soup_message_body_flatten (soup_server_message_get_request_body (msg));
}

/* Parses @data as a JSON object (with @parser, reusable) within @max bytes;
 * *@data_json is its "data" member as Herald's reader keeps it (compact, every
 * number and string as sent), NULL when absent. Shared with the keep-alive
 * fast path (herald-http-fast.c). */
JsonObject *
herald_http_api_parse_body (JsonParser *parser, const char *data, gsize length, gsize max,
                            char **data_json, GError **error)
{
  g_autoptr (JsonNode) root = NULL;
  g_autoptr (GError) local_error = NULL;
  g_auto (HeraldJsonEnvelope) envelope = { 0 };

  *data_json = NULL;
  if (length > max)
    {
      g_set_error (error, HERALD_ERROR, HERALD_ERROR_LIMIT_EXCEEDED,
                   _ ("Request body exceeds max-message-size"));
      return NULL;
    }
  if (length == 0)
    {
      g_set_error (error, HERALD_ERROR, HERALD_ERROR_INVALID_ARGUMENT, _ ("Request body is empty"));
      return NULL;
    }
  if (!g_utf8_validate_len (data, length, NULL))
    {
      g_set_error (error, HERALD_ERROR, HERALD_ERROR_INVALID_ARGUMENT,
                   _ ("Request body is not valid UTF-8"));
      return NULL;
    }
  /* Herald's reader first: json-glib takes a second value after the first
   * and changes big integers and strings with U+0000 in them. */
  if (!herald_json_read_envelope (data, length, &envelope, &local_error))
    {
      if (g_error_matches (local_error, HERALD_JSON_ERROR, HERALD_JSON_ERROR_FIELD))
        g_set_error (error, HERALD_ERROR, HERALD_ERROR_INVALID_ARGUMENT,
                     _ ("Request body has an invalid field: %s"), local_error->message);
      else
        g_set_error (error, HERALD_ERROR, HERALD_ERROR_INVALID_ARGUMENT,
                     _ ("Request body is not valid JSON: %s"), local_error->message);
      return NULL;
    }
  if (!json_parser_load_from_data (parser, data, length, &local_error))
    {
      g_set_error (error, HERALD_ERROR, HERALD_ERROR_INVALID_ARGUMENT,
                   _ ("Request body is not valid JSON: %s"), local_error->message);
      return NULL;
    }
  root = json_parser_steal_root (parser);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    {
      g_set_error (error, HERALD_ERROR, HERALD_ERROR_INVALID_ARGUMENT,
                   _ ("Request body must be a JSON object"));
      return NULL;
    }
  *data_json = g_steal_pointer (&envelope.data);
  return json_object_ref (json_node_get_object (root));
}

/* Parses the body as a JSON object. */
static JsonObject *
parse_request_object (SoupServerMessage *msg, gsize max, char **data_json, GError **error)
{
  g_autoptr (GBytes) body = dup_request_body (msg);
  g_autoptr (JsonParser) parser = json_parser_new_immutable ();
  gsize length = 0;
  const char *data = g_bytes_get_data (body, &length);

  return herald_http_api_parse_body (parser, data, length, max, data_json, error);
}

const char *
herald_http_api_get_string_member (JsonObject *object, const char *name, GError **error)
{
  JsonNode *node = json_object_get_member (object, name);

  if (node == NULL)
    {
      g_set_error (error, HERALD_ERROR, HERALD_ERROR_INVALID_ARGUMENT, _ ("Missing field “%s”"),
                   name);
      return NULL;
    }
  if (!JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_STRING)
    {
      g_set_error (error, HERALD_ERROR, HERALD_ERROR_INVALID_ARGUMENT,
                   _ ("Field “%s” must be a string"), name);
      return NULL;
    }
  return json_node_get_string (node);
}

/* @data_json from herald_http_api_parse_body(), or FALSE with the error
 * for a body without "data". */
gboolean
herald_http_api_require_data (const char *data_json, GError **error)
{
  if (data_json != NULL)
    return TRUE;
  g_set_error (error, HERALD_ERROR, HERALD_ERROR_INVALID_ARGUMENT, _ ("Missing field “%s”"),
               "data");
  return FALSE;
}

/**
 * herald_http_api_read_publish:
 * @channel: (out): the "channel" member, a valid channel name
 * @key: (out): the "key" member, a string, or NULL when absent
 *
 * Reads a publish request (both the libsoup path and the fast path).
 * Returns: FALSE with @error (HERALD_ERROR_INVALID_ARGUMENT → 400) when a
 * member is missing or of the wrong type.
 */
gboolean
herald_http_api_read_publish (JsonObject *request, const char *data_json, const char **channel,
                              const char **key, GError **error)
{
  *key = NULL;
  *channel = herald_http_api_get_string_member (request, "channel", error);
  if (*channel == NULL)
    return FALSE;
  if (!herald_channel_name_is_valid (*channel))
    {
      g_set_error (error, HERALD_ERROR, HERALD_ERROR_INVALID_ARGUMENT,
                   _ ("Invalid channel name “%s”"), *channel);
      return FALSE;
    }
  if (json_object_has_member (request, "key")
      && (*key = herald_http_api_get_string_member (request, "key", error)) == NULL)
    return FALSE;
  return herald_http_api_require_data (data_json, error);
}

/* --- Async calls --- */

static void
api_call_finished_cb (SoupServerMessage *msg, gpointer user_data)
{
  ApiCall *call = user_data;

  call->finished = TRUE;
}

static ApiCall *
api_call_new (HeraldHub *hub, SoupServerMessage *msg, const char *arg)
{
  ApiCall *call = g_new0 (ApiCall, 1);

  call->hub = g_object_ref (hub);
  call->msg = g_object_ref (msg);
  call->arg = g_strdup (arg);
  call->finished_id = g_signal_connect (msg, "finished", G_CALLBACK (api_call_finished_cb), call);
  soup_server_message_pause (msg);
  return call;
}

/* Resumes the message (unless the client has gone) and frees @call. */
static void
api_call_complete (ApiCall *call)
{
  g_clear_signal_handler (&call->finished_id, call->msg);
  if (!call->finished)
    soup_server_message_unpause (call->msg);
  g_clear_object (&call->msg);
  g_clear_object (&call->hub);
  g_free (call->arg);
  g_free (call);
}

static void
add_connection_info (JsonBuilder *builder, const HeraldConnectionInfo *info)
{
  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "id");
  json_builder_add_string_value (builder, info->id);
  json_builder_set_member_name (builder, "user_id");
  if (info->user_id != NULL)
    json_builder_add_string_value (builder, info->user_id);
  else
    json_builder_add_null_value (builder);
  json_builder_set_member_name (builder, "transport");
  json_builder_add_string_value (builder, herald_transport_to_string (info->transport));
  json_builder_set_member_name (builder, "remote_address");
  if (info->remote_address != NULL)
    json_builder_add_string_value (builder, info->remote_address);
  else
    json_builder_add_null_value (builder);
  json_builder_set_member_name (builder, "connected_at");
  json_builder_add_int_value (builder, info->connected_at);
  json_builder_set_member_name (builder, "channels");
  json_builder_begin_array (builder);
  for (guint i = 0; info->channels != NULL && info->channels[i] != NULL; i++)
    json_builder_add_string_value (builder, info->channels[i]);
  json_builder_end_array (builder);
  json_builder_set_member_name (builder, "messages_sent");
  json_builder_add_int_value (builder, (gint64)info->messages_sent);
  json_builder_set_member_name (builder, "messages_received");
  json_builder_add_int_value (builder, (gint64)info->messages_received);
  json_builder_set_member_name (builder, "bytes_queued");
  json_builder_add_int_value (builder, (gint64)info->bytes_queued);
  json_builder_end_object (builder);
}

static void
publish_cb (GObject *source, GAsyncResult *result, gpointer user_data)
{
  ApiCall *call = user_data;
  g_autoptr (GError) error = NULL;
  guint64 offset = 0;

  if (herald_hub_publish_finish (HERALD_HUB (source), result, &offset, &error))
    respond_offset (call->msg, offset);
  else
    herald_http_api_respond_gerror (call->msg, error, TRUE);
  api_call_complete (call);
}

static void
list_connections_cb (GObject *source, GAsyncResult *result, gpointer user_data)
{
  ApiCall *call = user_data;
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) infos = NULL;
  g_autoptr (JsonBuilder) builder = NULL;

  infos = herald_hub_list_connections_finish (HERALD_HUB (source), result, &error);
  if (infos == NULL)
    {
      herald_http_api_respond_gerror (call->msg, error, FALSE);
      api_call_complete (call);
      return;
    }

  builder = json_builder_new_immutable ();
  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "connections");
  json_builder_begin_array (builder);
  for (guint i = 0; i < infos->len; i++)
    add_connection_info (builder, g_ptr_array_index (infos, i));
  json_builder_end_array (builder);
  json_builder_end_object (builder);
  herald_http_api_respond_builder (call->msg, SOUP_STATUS_OK, builder);
  api_call_complete (call);
}

static void
get_connection_cb (GObject *source, GAsyncResult *result, gpointer user_data)
{
  ApiCall *call = user_data;
  g_autoptr (GError) error = NULL;
  g_autoptr (HeraldConnectionInfo) info = NULL;
  g_autoptr (JsonBuilder) builder = NULL;

  info = herald_hub_get_connection_finish (HERALD_HUB (source), result, &error);
  if (info == NULL)
    {
      herald_http_api_respond_gerror (call->msg, error, FALSE);
      api_call_complete (call);
      return;
    }

  builder = json_builder_new_immutable ();
  add_connection_info (builder, info);
  herald_http_api_respond_builder (call->msg, SOUP_STATUS_OK, builder);
  api_call_complete (call);
}

static void
list_channels_cb (GObject *source, GAsyncResult *result, gpointer user_data)
{
  ApiCall *call = user_data;
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) channels = NULL;
  g_autoptr (JsonBuilder) builder = NULL;

  channels = herald_hub_list_channels_finish (HERALD_HUB (source), result, &error);
  if (channels == NULL)
    {
      herald_http_api_respond_gerror (call->msg, error, FALSE);
      api_call_complete (call);
      return;
    }

  builder = json_builder_new_immutable ();
  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "channels");
  json_builder_begin_array (builder);
  for (guint i = 0; i < channels->len; i++)
    {
      const HeraldChannelInfo *info = g_ptr_array_index (channels, i);

      json_builder_begin_object (builder);
      json_builder_set_member_name (builder, "name");
      json_builder_add_string_value (builder, info->name);
      json_builder_set_member_name (builder, "subscribers");
      json_builder_add_int_value (builder, info->subscribers);
      json_builder_end_object (builder);
    }
  json_builder_end_array (builder);
  json_builder_end_object (builder);
  herald_http_api_respond_builder (call->msg, SOUP_STATUS_OK, builder);
  api_call_complete (call);
}

/* GET /api/namespaces: the rules in force (after the last SIGHUP), the
 * configuration's key names in snake_case. */
static void
respond_namespaces (SoupServerMessage *msg, HeraldConfig *config)
{
  g_autoptr (GPtrArray) list = herald_config_list_namespaces (config);
  g_autoptr (JsonBuilder) b = json_builder_new_immutable ();

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "namespaces");
  json_builder_begin_array (b);
  for (guint i = 0; i < list->len; i++)
    {
      const HeraldNamespace *ns = g_ptr_array_index (list, i);
      const struct
      {
        const char *name;
        gboolean value;
      } flags[] = { { "presence", ns->presence },
                    { "join_leave", ns->join_leave },
                    { "publish_proxy", ns->publish_proxy },
                    { "conflate", ns->conflate } };

      json_builder_begin_object (b);
      json_builder_set_member_name (b, "name");
      json_builder_add_string_value (b, ns->name);
      json_builder_set_member_name (b, "history_size");
      json_builder_add_int_value (b, ns->history_size);
      json_builder_set_member_name (b, "history_ttl");
      json_builder_add_int_value (b, ns->history_ttl);
      json_builder_set_member_name (b, "publish");
      json_builder_add_string_value (b, herald_ns_publish_to_string (ns->publish));
      json_builder_set_member_name (b, "subscribe");
      json_builder_add_string_value (b, herald_ns_subscribe_to_string (ns->subscribe));
      for (guint j = 0; j < G_N_ELEMENTS (flags); j++)
        {
          json_builder_set_member_name (b, flags[j].name);
          json_builder_add_boolean_value (b, flags[j].value);
        }
      json_builder_end_object (b);
    }
  json_builder_end_array (b);
  json_builder_end_object (b);
  herald_http_api_respond_builder (msg, SOUP_STATUS_OK, b);
}

/* --- /api --- */

static void
api_early_checks (SoupServer *server, SoupServerMessage *msg, HeraldHub *hub)
{
  HeraldConfig *config = herald_hub_get_config (hub);
  SoupMessageHeaders *response_headers = soup_server_message_get_response_headers (msg);
  const char *method = soup_server_message_get_method (msg);
  const char *api_key = herald_config_get_api_key (config);
  g_autofree char *path = NULL;
  g_auto (HeraldApiMatch) match = { 0 };

  set_connection_close (msg);

  if (api_key == NULL)
    {
      herald_http_api_respond_error (msg, SOUP_STATUS_NOT_FOUND,
                                     _ ("HTTP API disabled: no API key configured"));
      return;
    }

  herald_http_apply_cors (msg, config, FALSE);

  path = dup_request_path (server, msg);
  if (path == NULL || !herald_api_route_parse (path, &match))
    {
      /* Unknown paths are only told apart from known ones after auth. */
      if (method != SOUP_METHOD_OPTIONS && !request_is_authorized (msg, api_key))
        goto unauthorized;
      herald_http_api_respond_error (msg, SOUP_STATUS_NOT_FOUND, _ ("No such API endpoint"));
      return;
    }

  /* Preflight: browsers send it without credentials. */
  if (method == SOUP_METHOD_OPTIONS)
    {
      soup_message_headers_replace (response_headers, "Allow", match.allow);
      soup_message_headers_replace (response_headers, "Access-Control-Allow-Methods",
                                    "GET, POST, DELETE, OPTIONS");
      soup_message_headers_replace (response_headers, "Access-Control-Allow-Headers",
                                    "Authorization, Content-Type");
      soup_message_headers_replace (response_headers, "Access-Control-Max-Age", "600");
      soup_server_message_set_status (msg, SOUP_STATUS_NO_CONTENT, NULL);
      return;
    }

  if (!request_is_authorized (msg, api_key))
    goto unauthorized;

  if (!herald_api_route_allows (&match, method))
    {
      respond_method_not_allowed (msg, match.allow);
      return;
    }

  prepare_body (msg, herald_config_get_max_message_size (config));
  return;

unauthorized:
  soup_message_headers_replace (response_headers, "WWW-Authenticate", "Bearer");
  herald_http_api_respond_error (msg, SOUP_STATUS_UNAUTHORIZED, _ ("Missing or invalid API key"));
}

static void
api_early_handler (SoupServer *server, SoupServerMessage *msg, const char *unused_path,
                   GHashTable *query, gpointer user_data)
{
  api_early_checks (server, msg, user_data);

  /* Answered already: libsoup still reads the body, so keep none of it. */
  if (soup_server_message_get_status (msg) != 0)
    soup_message_body_set_accumulate (soup_server_message_get_request_body (msg), FALSE);
}

static void
handle_send (HeraldHub *hub, SoupServerMessage *msg, const HeraldApiMatch *match, const char *data)
{
  g_autoptr (GError) error = NULL;
  guint delivered = 0;
  gboolean ok;

  if (!herald_http_api_require_data (data, &error))
    {
      herald_http_api_respond_gerror (msg, error, TRUE);
      return;
    }

  switch (match->route)
    {
    case HERALD_API_ROUTE_BROADCAST:
      ok = herald_hub_broadcast (hub, data, &delivered, &error);
      break;
    case HERALD_API_ROUTE_USER_SEND:
      if (!g_utf8_validate (match->arg, -1, NULL))
        {
          herald_http_api_respond_error (msg, SOUP_STATUS_BAD_REQUEST, _ ("Invalid user id"));
          return;
        }
      ok = herald_hub_send_to_user (hub, match->arg, data, &delivered, &error);
      break;
    case HERALD_API_ROUTE_CONNECTION_SEND:
      ok = herald_hub_send_to_connection (hub, match->arg, data, &error);
      delivered = 1;
      break;
    default:
      g_assert_not_reached ();
    }

  if (ok)
    respond_uint (msg, "delivered", delivered);
  else
    herald_http_api_respond_gerror (msg, error, TRUE);
}

static void
api_handler (SoupServer *server, SoupServerMessage *msg, const char *unused_path, GHashTable *query,
             gpointer user_data)
{
  HeraldHub *hub = user_data;
  HeraldConfig *config = herald_hub_get_config (hub);
  const char *method = soup_server_message_get_method (msg);
  gsize max = herald_config_get_max_message_size (config);
  g_autofree char *path = dup_request_path (server, msg);
  g_auto (HeraldApiMatch) match = { 0 };
  g_autoptr (JsonObject) request = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *data = NULL;
  const char *channel, *key;

  /* The early handler has answered every request this does not expect. */
  if (path == NULL || !herald_api_route_parse (path, &match)
      || !herald_api_route_allows (&match, method))
    {
      herald_http_api_respond_error (msg, SOUP_STATUS_NOT_FOUND, _ ("No such API endpoint"));
      return;
    }

  g_debug ("HTTP API: %s %s", method, path);

  switch (match.route)
    {
    case HERALD_API_ROUTE_PUBLISH:
      request = parse_request_object (msg, max, &data, &error);
      if (request == NULL)
        {
          herald_http_api_respond_gerror (msg, error, TRUE);
          return;
        }
      if (!herald_http_api_read_publish (request, data, &channel, &key, &error))
        {
          herald_http_api_respond_gerror (msg, error, TRUE);
          return;
        }
      herald_hub_publish_text_async (hub, channel, key, data, NULL, publish_cb,
                                     api_call_new (hub, msg, NULL));
      break;

    case HERALD_API_ROUTE_BROADCAST:
    case HERALD_API_ROUTE_USER_SEND:
    case HERALD_API_ROUTE_CONNECTION_SEND:
      request = parse_request_object (msg, max, &data, &error);
      if (request == NULL)
        herald_http_api_respond_gerror (msg, error, TRUE);
      else
        handle_send (hub, msg, &match, data);
      break;

    case HERALD_API_ROUTE_CONNECTION:
      if (method == SOUP_METHOD_DELETE)
        {
          if (!herald_hub_close_connection (hub, match.arg, 4004, CLOSE_REASON_OPERATOR, &error))
            {
              herald_http_api_respond_gerror (msg, error, FALSE);
              return;
            }
          {
            g_autoptr (JsonBuilder) builder = json_builder_new_immutable ();

            json_builder_begin_object (builder);
            json_builder_set_member_name (builder, "closed");
            json_builder_add_boolean_value (builder, TRUE);
            json_builder_end_object (builder);
            herald_http_api_respond_builder (msg, SOUP_STATUS_OK, builder);
          }
        }
      else
        {
          herald_hub_get_connection_async (hub, match.arg, get_connection_cb,
                                           api_call_new (hub, msg, match.arg));
        }
      break;

    case HERALD_API_ROUTE_CONNECTIONS:
      herald_hub_list_connections_async (hub, list_connections_cb, api_call_new (hub, msg, NULL));
      break;

    case HERALD_API_ROUTE_CHANNELS:
      herald_hub_list_channels_async (hub, list_channels_cb, api_call_new (hub, msg, NULL));
      break;

    case HERALD_API_ROUTE_USER_SUBSCRIBE:
    case HERALD_API_ROUTE_USER_UNSUBSCRIBE:
      request = parse_request_object (msg, max, &data, &error);
      if (request == NULL)
        herald_http_api_respond_gerror (msg, error, FALSE);
      else
        herald_http_api_user_subscription (hub, msg, match.arg, request,
                                           match.route == HERALD_API_ROUTE_USER_SUBSCRIBE);
      break;

    case HERALD_API_ROUTE_NAMESPACES:
      respond_namespaces (msg, config);
      break;

    case HERALD_API_ROUTE_CHANNEL_PRESENCE:
    case HERALD_API_ROUTE_CHANNEL_PRESENCE_STATS:
      herald_http_api_presence (hub, msg, match.arg, query,
                                match.route == HERALD_API_ROUTE_CHANNEL_PRESENCE_STATS);
      break;

    case HERALD_API_ROUTE_NONE:
    default:
      g_assert_not_reached ();
    }
}

/* --- /healthz and /metrics --- */

static gboolean
check_get_method (SoupServerMessage *msg)
{
  const char *method = soup_server_message_get_method (msg);

  if (method == SOUP_METHOD_GET || method == SOUP_METHOD_HEAD)
    return TRUE;
  respond_method_not_allowed (msg, "GET, HEAD");
  return FALSE;
}

static void
healthz_handler (SoupServer *server, SoupServerMessage *msg, const char *path, GHashTable *query,
                 gpointer user_data)
{
  HeraldHub *hub = user_data;
  g_autofree char *state = NULL;
  g_autoptr (JsonBuilder) builder = NULL;
  gboolean ok, draining;

  set_connection_close (msg);
  if (!g_str_equal (path, "/healthz"))
    {
      herald_http_api_respond_error (msg, SOUP_STATUS_NOT_FOUND, _ ("Not found"));
      return;
    }
  if (!check_get_method (msg))
    return;

  state = herald_hub_dup_engine_state (hub);
  draining = herald_hub_is_draining (hub);
  ok = g_strcmp0 (state, "ok") == 0 && !draining;

  builder = json_builder_new_immutable ();
  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "status");
  json_builder_add_string_value (builder, draining ? "draining" : ok ? "ok" : "degraded");
  json_builder_set_member_name (builder, "engine");
  json_builder_add_string_value (builder, state != NULL ? state : "unknown");
  json_builder_set_member_name (builder, "connections");
  json_builder_add_int_value (builder, herald_hub_get_connection_count (hub));
  json_builder_end_object (builder);
  soup_message_headers_replace (soup_server_message_get_response_headers (msg), "Cache-Control",
                                "no-store");
  herald_http_api_respond_builder (msg, ok ? SOUP_STATUS_OK : SOUP_STATUS_SERVICE_UNAVAILABLE,
                                   builder);
}

static void
stats_cb (GObject *source, GAsyncResult *result, gpointer user_data)
{
  ApiCall *call = user_data;
  HeraldHub *hub = HERALD_HUB (source);
  g_autoptr (GError) error = NULL;
  g_autofree HeraldStats *stats = NULL;
  g_autofree char *engine_state = NULL;
  char *text;

  stats = herald_hub_get_stats_finish (hub, result, &error);
  if (stats == NULL)
    {
      herald_http_api_respond_gerror (call->msg, error, FALSE);
      api_call_complete (call);
      return;
    }

  stats->engine_channels = herald_engine_count_channels (herald_hub_get_engine (hub));
  engine_state = herald_hub_dup_engine_state (hub);
  text = herald_metrics_render (stats, herald_engine_get_name (herald_hub_get_engine (hub)),
                                herald_hub_get_node_id (hub), engine_state);
  {
    /* The engine's own (e.g. [redis] cluster's masters) */
    GString *more = g_string_new (text);

    g_free (text);
    herald_engine_append_metrics (herald_hub_get_engine (hub), more);
    text = g_string_free (more, FALSE);
  }
  soup_server_message_set_status (call->msg, SOUP_STATUS_OK, NULL);
  soup_message_headers_replace (soup_server_message_get_response_headers (call->msg),
                                "Cache-Control", "no-store");
  soup_server_message_set_response (call->msg, "text/plain; version=0.0.4", SOUP_MEMORY_TAKE, text,
                                    strlen (text));
  api_call_complete (call);
}

static void
metrics_handler (SoupServer *server, SoupServerMessage *msg, const char *path, GHashTable *query,
                 gpointer user_data)
{
  HeraldHub *hub = user_data;

  set_connection_close (msg);
  /* [server] metrics=false: as if there were no such page */
  if (!g_str_equal (path, "/metrics") || !herald_config_get_metrics (herald_hub_get_config (hub)))
    {
      herald_http_api_respond_error (msg, SOUP_STATUS_NOT_FOUND, _ ("Not found"));
      return;
    }
  if (!check_get_method (msg))
    return;

  herald_hub_get_stats_async (hub, stats_cb, api_call_new (hub, msg, NULL));
}

/* --- Metrics text --- */

/**
 * herald_metrics_render:
 * @stats: counters summed over the workers
 * @engine_name: the engine's name ("memory", "redis", …)
 * @node_id: this node's id
 * @engine_state: (nullable): herald_hub_dup_engine_state()'s answer
 *
 * Renders @stats, then the process and the process-wide Herald metrics
 * (herald-metrics.h), in the Prometheus text exposition format 0.0.4, each
 * metric with its `# HELP` and `# TYPE` lines.
 *
 * Returns: (transfer full): the text, for `text/plain; version=0.0.4`
 */
char *
herald_metrics_render (const HeraldStats *stats, const char *engine_name, const char *node_id,
                       const char *engine_state)
{
  GString *out;

  g_return_val_if_fail (stats != NULL, NULL);

  out = g_string_new (NULL);

  herald_metrics_append_header (out, "herald_connections", "gauge",
                                "Open client connections by transport.");
  g_string_append_printf (out, "herald_connections{transport=\"websocket\"} %u\n",
                          stats->connections_websocket);
  g_string_append_printf (out, "herald_connections{transport=\"sse\"} %u\n",
                          stats->connections_sse);

  herald_metrics_append_single (out, "herald_connections_opened_total", "counter",
                                "Client connections opened since start.",
                                stats->connections_opened);
  herald_metrics_append_single (out, "herald_messages_received_total", "counter",
                                "Messages received from clients.", stats->messages_received);
  herald_metrics_append_single (out, "herald_messages_published_total", "counter",
                                "Messages published to channels.", stats->messages_published);
  herald_metrics_append_single (out, "herald_deliveries_total", "counter",
                                "Messages queued to connections.", stats->deliveries);
  herald_metrics_append_single (out, "herald_bytes_written_total", "counter",
                                "Bytes written to client sockets.", stats->bytes_written);
  herald_metrics_append_header (out, "herald_socket_writes_total", "counter",
                                "Writes to client sockets, by how they reached the kernel.");
  g_string_append_printf (out,
                          "herald_socket_writes_total{path=\"sendmsg\"} %" G_GUINT64_FORMAT "\n",
                          stats->writes_sendmsg);
  g_string_append_printf (out,
                          "herald_socket_writes_total{path=\"io_uring\"} %" G_GUINT64_FORMAT "\n",
                          stats->writes_batched);
  herald_metrics_append_single (out, "herald_io_uring_submits_total", "counter",
                                "io_uring_enter() calls that carried socket writes.",
                                stats->batch_submits);
  herald_metrics_append_single (out, "herald_send_queue_bytes", "gauge",
                                "Bytes queued for clients and not yet written.",
                                stats->bytes_queued);
  herald_metrics_append_single (out, "herald_dropped_total", "counter",
                                "Deliveries dropped because a slow consumer was closed.",
                                stats->dropped);
  herald_metrics_append_single (out, "herald_conflated_total", "counter",
                                "Queued messages a newer one of their key replaced (conflate).",
                                stats->conflated);
  if (stats->engine_channels >= 0)
    herald_metrics_append_single (
        out, "herald_channels", "gauge",
        "Channels the engine keeps state for (subscribers, history or offsets).",
        (guint64)stats->engine_channels);

  herald_metrics_append_header (out, "herald_closes_total", "counter",
                                "Connections closed, by close code.");
  for (guint i = 0; i < G_N_ELEMENTS (herald_close_codes); i++)
    {
      if (herald_close_codes[i] == 0)
        continue;
      g_string_append_printf (out, "herald_closes_total{code=\"%u\"} %" G_GUINT64_FORMAT "\n",
                              (guint)herald_close_codes[i], stats->closes[i]);
    }

  herald_metrics_append_header (out, "herald_info", "gauge", "Herald version, engine and node id.");
  g_string_append (out, "herald_info{version=\"");
  herald_metrics_append_label_value (out, PACKAGE_VERSION);
  g_string_append (out, "\",engine=\"");
  herald_metrics_append_label_value (out, engine_name);
  g_string_append (out, "\",node=\"");
  herald_metrics_append_label_value (out, node_id);
  g_string_append (out, "\"} 1\n");

  herald_metrics_append_herald (out, engine_state);
  if (g_str_has_prefix (engine_name, "redis"))
    herald_metrics_append_redis (out);
  herald_metrics_append_process (out);
  return g_string_free (out, FALSE);
}

/* --- Registration --- */

/* Counts the answers to /api/… for herald_http_api_requests_total (the
 * fast path counts its own). */
static void
on_request_finished (SoupServer *server, SoupServerMessage *msg, gpointer user_data)
{
  GUri *uri = soup_server_message_get_uri (msg); /* NULL for a request that did not parse */
  const char *path = uri != NULL ? g_uri_get_path (uri) : NULL;

  if (path != NULL && (g_str_equal (path, "/api") || g_str_has_prefix (path, "/api/")))
    herald_metrics_count_api_response (soup_server_message_get_status (msg));
}

/**
 * herald_http_api_register:
 * @server: a worker's #SoupServer
 * @hub: the hub
 *
 * Adds the handlers for `/api` (and below), `/healthz` and `/metrics` to
 * @server. Call it once per server, in the thread that runs it; the handlers
 * run there and keep a reference on @hub.
 */
void
herald_http_api_register (SoupServer *server, HeraldHub *hub)
{
  g_return_if_fail (SOUP_IS_SERVER (server));
  g_return_if_fail (HERALD_IS_HUB (hub));

  soup_server_add_early_handler (server, "/api", api_early_handler, g_object_ref (hub),
                                 g_object_unref);
  soup_server_add_handler (server, "/api", api_handler, g_object_ref (hub), g_object_unref);
  soup_server_add_handler (server, "/healthz", healthz_handler, g_object_ref (hub), g_object_unref);
  soup_server_add_handler (server, "/metrics", metrics_handler, g_object_ref (hub), g_object_unref);
  g_signal_connect (server, "request-finished", G_CALLBACK (on_request_finished), NULL);
}
