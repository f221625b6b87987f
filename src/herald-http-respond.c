/* herald-http-respond.c: the HTTP API's JSON answers, shared by the API
 * adapter (herald-http-api.c), its presence and user routes
 * (herald-http-api-app.c) and the keep-alive fast path's error statuses.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "herald-error.h"
#include "herald-http-respond.h"
#include "herald-json.h"

static void
respond_json (SoupServerMessage *msg, guint status, JsonNode *root)
{
  g_autoptr (JsonGenerator) generator = json_generator_new ();
  gsize length = 0;
  char *text;

  json_generator_set_root (generator, root);
  text = json_generator_to_data (generator, &length);
  soup_server_message_set_status (msg, status, NULL);
  soup_server_message_set_response (msg, "application/json", SOUP_MEMORY_TAKE, text, length);
}

void
herald_http_api_respond_builder (SoupServerMessage *msg, guint status, JsonBuilder *builder)
{
  g_autoptr (JsonNode) root = json_builder_get_root (builder);

  respond_json (msg, status, root);
}

void
herald_http_api_respond_error (SoupServerMessage *msg, guint status, const char *message)
{
  gsize length = 0;
  char *body = herald_json_error_body (message, &length);

  soup_server_message_set_status (msg, status, NULL);
  soup_server_message_set_response (msg, "application/json", SOUP_MEMORY_TAKE, body, length);
}

/* @sends_data: the failed call carried a message, so LIMIT_EXCEEDED means
 * the message was too large (413) rather than a capacity limit (503).
 * Shared with the keep-alive fast path (herald-http-fast.c). */
guint
herald_http_api_status_for_error (const GError *error, gboolean sends_data)
{
  if (error->domain != HERALD_ERROR)
    return SOUP_STATUS_INTERNAL_SERVER_ERROR;

  switch ((HeraldError)error->code)
    {
    case HERALD_ERROR_INVALID_ARGUMENT:
      return SOUP_STATUS_BAD_REQUEST;
    case HERALD_ERROR_NOT_FOUND:
      return SOUP_STATUS_NOT_FOUND;
    case HERALD_ERROR_LIMIT_EXCEEDED:
      return sends_data ? SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE : SOUP_STATUS_SERVICE_UNAVAILABLE;
    case HERALD_ERROR_FORBIDDEN:
      return SOUP_STATUS_FORBIDDEN;
    case HERALD_ERROR_UNAVAILABLE:
      return SOUP_STATUS_SERVICE_UNAVAILABLE;
    case HERALD_ERROR_IN_USE:
      return SOUP_STATUS_CONFLICT;
    case HERALD_ERROR_FAILED:
    default:
      return SOUP_STATUS_INTERNAL_SERVER_ERROR;
    }
}

void
herald_http_api_respond_gerror (SoupServerMessage *msg, const GError *error, gboolean sends_data)
{
  herald_http_api_respond_error (msg, herald_http_api_status_for_error (error, sends_data),
                                 error->message);
}
