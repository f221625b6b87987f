/* herald-protocol-presence.c: the presence and presence_stats handlers of
 * Herald's WebSocket protocol (presence at scale: herald-hub-presence.c).
 *
 *   {"type":"presence","channel":"c","limit":N?,"cursor":"…"?}
 *     → {"type":"presence","channel":"c","users":[…],"connections":M,"next":"…"|null}
 *   {"type":"presence_stats","channel":"c"}
 *     → {"type":"presence_stats","channel":"c","users":N,"connections":M}
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "herald-error.h"
#include "herald-names.h"
#include "herald-router.h"
#include "herald-subscribe.h"

typedef struct
{
  HeraldConnection *conn;
  JsonNode *id;
  gboolean stats;
} PresenceCall;

static void
presence_call_free (PresenceCall *call)
{
  g_object_unref (call->conn);
  g_clear_pointer (&call->id, json_node_unref);
  g_free (call);
}

static void
on_presence (GObject *source, GAsyncResult *result, gpointer user_data)
{
  PresenceCall *call = user_data;
  g_autoptr (GError) error = NULL;
  g_autoptr (HeraldPresence) presence
      = herald_hub_get_presence_finish (HERALD_HUB (source), result, &error);
  g_autoptr (JsonBuilder) b = NULL;

  if (presence == NULL)
    {
      herald_connection_send_error (
          call->conn,
          g_error_matches (error, HERALD_ERROR, HERALD_ERROR_INVALID_ARGUMENT) ? "bad_request"
          : g_error_matches (error, HERALD_ERROR, HERALD_ERROR_UNAVAILABLE)    ? "unavailable"
                                                                               : "internal_error",
          error->message, call->id);
      presence_call_free (call);
      return;
    }
  b = herald_reply_begin (call->stats ? "presence_stats" : "presence", call->id);
  json_builder_set_member_name (b, "channel");
  json_builder_add_string_value (b, presence->channel);
  json_builder_set_member_name (b, "users");
  if (call->stats)
    json_builder_add_int_value (b, presence->n_users);
  else
    {
      json_builder_begin_array (b);
      for (guint i = 0; presence->users[i]; i++)
        json_builder_add_string_value (b, presence->users[i]);
      json_builder_end_array (b);
    }
  json_builder_set_member_name (b, "connections");
  json_builder_add_int_value (b, presence->connections);
  if (!call->stats)
    {
      json_builder_set_member_name (b, "next");
      if (presence->next)
        json_builder_add_string_value (b, presence->next);
      else
        json_builder_add_null_value (b);
    }
  json_builder_end_object (b);
  herald_connection_send_json (call->conn, b);
  presence_call_free (call);
}

/* The channel after the checks every presence question passes, or NULL
 * after answering: a valid name, allowed to this connection (it may
 * subscribe, or is subscribed: by the server, say), presence on. */
static const char *
presence_channel (HeraldRouter *router, HeraldConnection *conn, JsonObject *request, JsonNode *id)
{
  HeraldHub *hub = herald_router_get_hub (router);
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
  if (herald_connection_find_subscription (conn, channel) == NULL
      && !herald_hub_may_subscribe (hub, herald_connection_get_claims (conn), channel))
    {
      g_autofree char *message = g_strdup_printf ("Not allowed to see presence of %s", channel);
      herald_connection_send_error (conn, "forbidden", message, id);
      return NULL;
    }
  if (!herald_config_namespace_for (herald_hub_get_config (hub), channel)->presence)
    {
      herald_connection_send_error (conn, "forbidden", "Presence is off for this namespace", id);
      return NULL;
    }
  return channel;
}

static void
ask (HeraldRouter *router, HeraldConnection *conn, JsonNode *id, const char *channel,
     gboolean stats, guint limit, const char *cursor)
{
  PresenceCall *call = g_new0 (PresenceCall, 1);

  call->conn = g_object_ref (conn);
  call->id = id ? json_node_copy (id) : NULL;
  call->stats = stats;
  herald_hub_get_presence_async (herald_router_get_hub (router), channel, stats, limit, cursor,
                                 on_presence, call);
}

static void
handle_presence (HeraldRouter *router, HeraldConnection *conn, JsonObject *request, JsonNode *id)
{
  const char *channel = presence_channel (router, conn, request, id);
  JsonNode *limit_node, *cursor_node;
  const char *cursor = NULL;
  guint limit = 0;

  if (channel == NULL)
    return;
  limit_node = json_object_get_member (request, "limit");
  if (limit_node != NULL && !JSON_NODE_HOLDS_NULL (limit_node))
    {
      if (!JSON_NODE_HOLDS_VALUE (limit_node)
          || json_node_get_value_type (limit_node) != G_TYPE_INT64
          || json_node_get_int (limit_node) < 1)
        {
          herald_connection_send_error (conn, "bad_request",
                                        "Field \"limit\" must be a positive integer", id);
          return;
        }
      limit = (guint)MIN (json_node_get_int (limit_node), HERALD_PRESENCE_PAGE_MAX);
    }
  cursor_node = json_object_get_member (request, "cursor");
  if (cursor_node != NULL && !JSON_NODE_HOLDS_NULL (cursor_node))
    {
      if (!JSON_NODE_HOLDS_VALUE (cursor_node)
          || json_node_get_value_type (cursor_node) != G_TYPE_STRING)
        {
          herald_connection_send_error (conn, "bad_request",
                                        "Field \"cursor\" must be a string or null", id);
          return;
        }
      cursor = json_node_get_string (cursor_node);
    }
  ask (router, conn, id, channel, FALSE, limit, cursor);
}

static void
handle_presence_stats (HeraldRouter *router, HeraldConnection *conn, JsonObject *request,
                       JsonNode *id)
{
  const char *channel = presence_channel (router, conn, request, id);

  if (channel != NULL)
    ask (router, conn, id, channel, TRUE, 0, NULL);
}

void
herald_protocol_register_presence (HeraldRouter *router)
{
  herald_router_register (router, "presence", handle_presence);
  herald_router_register (router, "presence_stats", handle_presence_stats);
}
