/* herald-protocol.c: the handlers of Herald's WebSocket protocol.
 *
 * Each handler validates its request, checks permissions, acts through the
 * hub (herald_router_get_hub()), and answers. Registering a new message type is one line in
 * herald_protocol_register().
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "herald-error.h"
#include "herald-jwt.h"
#include "herald-names.h"
#include "herald-protocol.h"
#include "herald-worker.h"

#include <string.h>

/* Returns the "channel" member after checking it, or NULL after answering. */
static const char *
require_channel (HeraldConnection *conn, JsonObject *request, JsonNode *id)
{
  JsonNode *node = json_object_get_member (request, "channel");
  const char *channel;

  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node)
      || json_node_get_value_type (node) != G_TYPE_STRING)
    {
      herald_connection_send_error (conn, "bad_request", "Field \"channel\" must be a string", id);
      return NULL;
    }
  channel = json_node_get_string (node);
  if (!herald_channel_name_is_valid (channel))
    {
      herald_connection_send_error (
          conn, "bad_request",
          "Invalid channel name: use 1–255 characters of A-Z a-z 0-9 _ . : @ / - # ,", id);
      return NULL;
    }
  return channel;
}

static gboolean
may_publish (HeraldConfig *config, HeraldConnection *conn, const char *channel)
{
  const HeraldJwtClaims *claims = herald_connection_get_claims (conn);

  /* [namespace.NAME] publish: clients only (the HTTP API and D-Bus don't come here) */
  switch (herald_config_namespace_for (config, channel)->publish)
    {
    case HERALD_NS_PUBLISH_NONE:
      return FALSE;
    case HERALD_NS_PUBLISH_ALL:
      return TRUE; /* any connection the server accepted, anonymous ones included */
    case HERALD_NS_PUBLISH_CLAIMS:
    default:
      break;
    }
  if (claims)
    return herald_channel_pattern_match ((const char *const *)claims->publish, channel);
  return herald_channel_pattern_match (herald_config_get_anonymous_publish (config), channel);
}

static void
reply_channel (HeraldConnection *conn, const char *type, const char *channel, JsonNode *id)
{
  g_autoptr (JsonBuilder) b = herald_reply_begin (type, id);

  json_builder_set_member_name (b, "channel");
  json_builder_add_string_value (b, channel);
  json_builder_end_object (b);
  herald_connection_send_json (conn, b);
}

/* In a subscribe=token namespace, the request's "token": TRUE with its end
 * in @expires, or FALSE with the reason in @message. */
static gboolean
subscription_token (HeraldRouter *router, HeraldConnection *conn, JsonObject *request,
                    const char *channel, guint32 *expires, char **message)
{
  HeraldHub *hub = herald_router_get_hub (router);
  JsonNode *node = json_object_get_member (request, "token");
  g_autoptr (GError) error = NULL;

  if (herald_config_namespace_for (herald_hub_get_config (hub), channel)->subscribe
      != HERALD_NS_SUBSCRIBE_TOKEN)
    return FALSE;
  *expires = herald_hub_verify_subscription_token (
      hub, conn, channel,
      node && JSON_NODE_HOLDS_VALUE (node) && json_node_get_value_type (node) == G_TYPE_STRING
          ? json_node_get_string (node)
          : NULL,
      &error);
  if (*expires != 0)
    return TRUE;
  g_free (*message);
  *message = g_strdup (error->message);
  return FALSE;
}

static void
handle_subscribe (HeraldRouter *router, HeraldConnection *conn, JsonObject *request, JsonNode *id)
{
  const char *channel = require_channel (conn, request, id);
  const char *channels[] = { channel, NULL };
  HeraldSubscribeRequest sub
      = { .channels = channels, .from = HERALD_SUBSCRIBE_LIVE, .presence = -1 };
  JsonNode *since_node, *epoch_node, *presence_node;
  gboolean proxied;

  if (channel == NULL)
    return;
  proxied = herald_config_namespace_for (herald_hub_get_config (herald_router_get_hub (router)),
                                         channel)
                    ->subscribe
                == HERALD_NS_SUBSCRIBE_PROXY
            && strchr (channel, '#') == NULL;
  if (!proxied
      && !herald_hub_may_subscribe (herald_router_get_hub (router),
                                    herald_connection_get_claims (conn), channel))
    {
      g_autofree char *message = g_strdup_printf ("Not allowed to subscribe to %s", channel);
      /* subscribe=token: the subscription token decides (and sets the end) */
      if (!subscription_token (router, conn, request, channel, &sub.expires, &message))
        {
          herald_connection_send_error (conn, "forbidden", message, id);
          return;
        }
    }

  since_node = json_object_get_member (request, "since");
  if (since_node)
    {
      if (!JSON_NODE_HOLDS_VALUE (since_node)
          || json_node_get_value_type (since_node) != G_TYPE_INT64
          || json_node_get_int (since_node) < 0)
        {
          herald_connection_send_error (conn, "bad_request",
                                        "Field \"since\" must be a non-negative integer", id);
          return;
        }
      sub.from = HERALD_SUBSCRIBE_SINCE;
      sub.since = (guint64)json_node_get_int (since_node);
    }
  epoch_node = json_object_get_member (request, "epoch");
  if (epoch_node)
    {
      if (!JSON_NODE_HOLDS_VALUE (epoch_node)
          || json_node_get_value_type (epoch_node) != G_TYPE_STRING)
        {
          herald_connection_send_error (conn, "bad_request", "Field \"epoch\" must be a string",
                                        id);
          return;
        }
      sub.epoch = json_node_get_string (epoch_node);
    }
  presence_node = json_object_get_member (request, "presence");
  if (presence_node)
    {
      if (!JSON_NODE_HOLDS_VALUE (presence_node)
          || json_node_get_value_type (presence_node) != G_TYPE_BOOLEAN)
        {
          herald_connection_send_error (conn, "bad_request", "Field \"presence\" must be a boolean",
                                        id);
          return;
        }
      sub.presence = json_node_get_boolean (presence_node);
    }

  if (herald_config_namespace_for (herald_hub_get_config (herald_router_get_hub (router)), channel)
              ->subscribe
          == HERALD_NS_SUBSCRIBE_PROXY
      && strchr (channel, '#') == NULL)
    {
      /* The backend decides; the answer comes back through herald_protocol_subscribe() */
      herald_protocol_proxy_subscribe (router, conn, &sub, id);
      return;
    }
  herald_protocol_subscribe (router, conn, &sub, id);
}

/**
 * herald_protocol_subscribe:
 *
 * Subscribes @conn as @sub asks (permission included unless @sub->allowed)
 * and answers "subscribed" or the error.
 */
void
herald_protocol_subscribe (HeraldRouter *router, HeraldConnection *conn,
                           const HeraldSubscribeRequest *sub, JsonNode *id)
{
  HeraldWorker *worker = herald_router_get_worker (router);
  const char *channel = sub->channels[0];
  g_auto (HeraldSubscribeResult) result = { 0 };
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonBuilder) b = NULL;

  if (!herald_hub_subscribe (herald_router_get_hub (router), worker, conn, sub, &result, &error))
    {
      const char *code = "bad_request";

      if (g_error_matches (error, HERALD_ERROR, HERALD_ERROR_FORBIDDEN))
        code = "forbidden";
      else if (g_error_matches (error, HERALD_ERROR, HERALD_ERROR_LIMIT_EXCEEDED))
        code = "limit_exceeded";
      herald_connection_send_error (conn, code, error->message, id);
      return;
    }

  b = herald_reply_begin ("subscribed", id);
  json_builder_set_member_name (b, "channel");
  json_builder_add_string_value (b, channel);
  if (result.with_recovery)
    {
      json_builder_set_member_name (b, "recovered");
      json_builder_add_boolean_value (b, result.recovered);
    }
  json_builder_set_member_name (b, "offset");
  json_builder_add_int_value (b, result.offset);
  json_builder_set_member_name (b, "epoch");
  json_builder_add_string_value (b, result.epoch);
  json_builder_end_object (b);
  herald_connection_send_json (conn, b);
}

static void
handle_unsubscribe (HeraldRouter *router, HeraldConnection *conn, JsonObject *request, JsonNode *id)
{
  const char *channel = require_channel (conn, request, id);
  HeraldSubscription *sub;

  if (channel == NULL)
    return;
  sub = herald_connection_find_subscription (conn, channel);
  if (sub)
    herald_hub_unsubscribe (herald_router_get_hub (router), herald_router_get_worker (router), conn,
                            sub);
  reply_channel (conn, "unsubscribed", channel, id);
}

typedef struct
{
  HeraldConnection *conn;
  char *channel;
  JsonNode *id;
  GDestroyNotify done; /* after the answer (herald_protocol_publish_then()) */
  gpointer done_data;
} PublishData;

static void
publish_data_free (PublishData *data)
{
  g_object_unref (data->conn);
  g_free (data->channel);
  g_clear_pointer (&data->id, json_node_unref);
  g_free (data);
}

static void
reply_published (HeraldConnection *conn, const char *channel, JsonNode *id, guint64 offset,
                 const GError *error)
{
  if (error != NULL)
    herald_connection_send_error (
        conn,
        g_error_matches (error, HERALD_ERROR, HERALD_ERROR_INVALID_ARGUMENT) ? "bad_request"
                                                                             : "internal_error",
        error->message, id);
  else
    {
      g_autoptr (JsonBuilder) b = herald_reply_begin ("published", id);
      json_builder_set_member_name (b, "channel");
      json_builder_add_string_value (b, channel);
      json_builder_set_member_name (b, "offset");
      if (offset > 0)
        json_builder_add_int_value (b, offset);
      else
        json_builder_add_null_value (b); /* not stored (Redis unreachable) */
      json_builder_end_object (b);
      herald_connection_send_json (conn, b);
    }
}

static void
on_published (GObject *source, GAsyncResult *result, gpointer user_data)
{
  PublishData *data = user_data;
  g_autoptr (GError) error = NULL;
  guint64 offset = 0;

  herald_hub_publish_finish (HERALD_HUB (source), result, &offset, &error);
  reply_published (data->conn, data->channel, data->id, offset, error);
  if (data->done != NULL)
    data->done (data->done_data);
  publish_data_free (data);
}

static void
handle_message (HeraldRouter *router, HeraldConnection *conn, JsonObject *request, JsonNode *id)
{
  const char *channel = require_channel (conn, request, id);
  JsonNode *key_node = json_object_get_member (request, "key");
  const char *data_json, *key = NULL;

  if (channel == NULL)
    return;
  if (key_node != NULL)
    {
      if (!JSON_NODE_HOLDS_VALUE (key_node) || json_node_get_value_type (key_node) != G_TYPE_STRING)
        {
          herald_connection_send_error (conn, "bad_request", "Field \"key\" must be a string", id);
          return;
        }
      key = json_node_get_string (key_node);
    }
  /* The client's own text (json-glib's tree would change big numbers). */
  data_json = herald_router_get_data (router);
  if (data_json == NULL)
    {
      herald_connection_send_error (conn, "bad_request", "Field \"data\" is required", id);
      return;
    }
  /* publish-proxy=true: the backend's answer replaces the publish rule */
  if (herald_config_namespace_for (herald_hub_get_config (herald_router_get_hub (router)), channel)
          ->publish_proxy)
    {
      herald_protocol_proxy_publish (router, conn, channel, key, data_json, id);
      return;
    }
  if (!may_publish (herald_hub_get_config (herald_router_get_hub (router)), conn, channel))
    {
      g_autofree char *message = g_strdup_printf ("Not allowed to publish to %s", channel);
      herald_connection_send_error (conn, "forbidden", message, id);
      return;
    }
  herald_protocol_publish (router, conn, channel, key, data_json, id);
}

/**
 * herald_protocol_publish:
 *
 * Publishes @data_json (checked JSON text) to @channel for @conn, permission
 * decided, and answers "published" or the error.
 */
void
herald_protocol_publish (HeraldRouter *router, HeraldConnection *conn, const char *channel,
                         const char *key, const char *data_json, JsonNode *id)
{
  herald_protocol_publish_then (router, conn, channel, key, data_json, id, NULL, NULL);
}

/**
 * herald_protocol_publish_then:
 * @done: (nullable): called with @done_data once answered (at once with the
 *   in-process engine, after the engine's round trip with Redis)
 *
 * As herald_protocol_publish().
 */
void
herald_protocol_publish_then (HeraldRouter *router, HeraldConnection *conn, const char *channel,
                              const char *key, const char *data_json, JsonNode *id,
                              GDestroyNotify done, gpointer done_data)
{
  PublishData *data;

  if (herald_hub_can_publish_now (herald_router_get_hub (router)))
    {
      g_autoptr (GError) error = NULL;
      guint64 offset = 0;

      herald_hub_publish_text_now (herald_router_get_hub (router), channel, key, data_json, &offset,
                                   &error);
      reply_published (conn, channel, id, offset, error);
      if (done != NULL)
        done (done_data);
      return;
    }
  data = g_new0 (PublishData, 1);
  data->conn = g_object_ref (conn);
  data->channel = g_strdup (channel);
  data->id = id ? json_node_copy (id) : NULL;
  data->done = done;
  data->done_data = done_data;
  herald_hub_publish_text_async (herald_router_get_hub (router), channel, key, data_json, NULL,
                                 on_published, data);
}

static void
handle_ping (HeraldRouter *router, HeraldConnection *conn, JsonObject *request, JsonNode *id)
{
  g_autoptr (JsonBuilder) b = herald_reply_begin ("pong", id);

  json_builder_end_object (b);
  herald_connection_send_json (conn, b);
}

static void
handle_pong (HeraldRouter *router, HeraldConnection *conn, JsonObject *request, JsonNode *id)
{
  /* Any frame counts as life; the read path already noted it. */
}

/* ---- refresh ---- */

/* Drops subscriptions the new claims no longer allow, telling the client. */
static void
drop_forbidden_subscriptions (HeraldRouter *router, HeraldConnection *conn)
{
  HeraldWorker *worker = herald_router_get_worker (router);
  HeraldHub *hub = herald_router_get_hub (router);
  const HeraldJwtClaims *claims = herald_connection_get_claims (conn);

  for (guint i = herald_connection_get_n_subscriptions (conn); i > 0; i--)
    {
      HeraldSubscription *sub;
      g_autofree char *name = NULL;
      g_autoptr (JsonBuilder) b = NULL;

      if (i > herald_connection_get_n_subscriptions (conn))
        continue;
      sub = herald_connection_get_subscription (conn, i - 1);
      name = g_strdup (herald_channel_get_name (sub->channel));

      /* The server's (API, subscription token) are not the claims' to end */
      if (sub->server || sub->expires != 0 || herald_hub_may_subscribe (hub, claims, name))
        continue;
      herald_hub_unsubscribe (hub, worker, conn, sub);
      b = herald_reply_begin ("unsubscribed", NULL);
      json_builder_set_member_name (b, "channel");
      json_builder_add_string_value (b, name);
      json_builder_set_member_name (b, "reason");
      json_builder_add_string_value (b, "not allowed by the refreshed token");
      json_builder_end_object (b);
      herald_connection_send_json (conn, b);
    }
}

/* {"type":"refresh","token":"…"} → {"type":"refreshed","exp":N}: a client swaps
 * its token for a new one without reconnecting. */
static void
handle_refresh (HeraldRouter *router, HeraldConnection *conn, JsonObject *request, JsonNode *id)
{
  HeraldHub *hub = herald_router_get_hub (router);
  HeraldConfig *config = herald_hub_get_config (hub);
  HeraldJwtVerifier *verifier = herald_hub_get_verifier (hub);
  JsonNode *node = json_object_get_member (request, "token");
  g_autoptr (HeraldJwtClaims) claims = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonBuilder) b = NULL;
  const char *user = herald_connection_get_user_id (conn);
  gint64 exp;

  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node)
      || json_node_get_value_type (node) != G_TYPE_STRING || *json_node_get_string (node) == '\0')
    {
      herald_connection_send_error (conn, "bad_request",
                                    "Field \"token\" must be a non-empty string", id);
      return;
    }
  if (verifier == NULL)
    {
      herald_connection_send_error (conn, "forbidden",
                                    "Tokens are not accepted: no token key configured", id);
      return;
    }
  claims = herald_jwt_verifier_verify (verifier, json_node_get_string (node),
                                       g_get_real_time () / G_USEC_PER_SEC,
                                       herald_config_get_leeway (config), &error);
  if (claims == NULL)
    {
      g_autofree char *message = g_strdup_printf ("Invalid token: %s", error->message);
      g_debug ("connection %s: refresh refused: %s", herald_connection_get_id (conn),
               error->message);
      herald_connection_send_error (conn, "bad_request", message, id);
      return;
    }
  /* A connection keeps its identity: the hub and worker index it by user. */
  if (user == NULL || g_strcmp0 (claims->sub, user) != 0)
    {
      herald_connection_send_error (
          conn, "forbidden",
          user ? "The new token is for another user (sub differs)"
               : "An anonymous connection cannot take a token: reconnect with it",
          id);
      return;
    }

  exp = claims->exp;
  herald_connection_set_claims (conn, g_steal_pointer (&claims));
  drop_forbidden_subscriptions (router, conn);

  b = herald_reply_begin ("refreshed", id);
  json_builder_set_member_name (b, "exp");
  if (exp > 0)
    json_builder_add_int_value (b, exp);
  else
    json_builder_add_null_value (b);
  json_builder_end_object (b);
  herald_connection_send_json (conn, b);
}

void
herald_protocol_register (HeraldRouter *router)
{
  herald_router_register (router, "subscribe", handle_subscribe);
  herald_router_register (router, "unsubscribe", handle_unsubscribe);
  herald_router_register (router, "message", handle_message);
  herald_router_register (router, "ping", handle_ping);
  herald_router_register (router, "pong", handle_pong);
  herald_protocol_register_presence (router);
  herald_router_register (router, "refresh", handle_refresh);
  herald_router_register (router, "rpc", herald_protocol_proxy_rpc);
  herald_router_set_expired (router, herald_protocol_proxy_refresh);
}
