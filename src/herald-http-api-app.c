/* herald-http-api-app.c: presence pages and stats (and server-side
 * subscriptions) over HTTP (see the header).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <glib/gi18n.h>
#include <json-glib/json-glib.h>

#include "herald-http-api-app.h"
#include "herald-http-respond.h"
#include "herald-json.h"
#include "herald-names.h"

/* A request waiting for the hub: the message stays paused until it answers. */
typedef struct
{
  SoupServerMessage *msg;
  gulong finished_id;
  gboolean finished;
  gboolean stats;
} Call;

static void
call_finished_cb (SoupServerMessage *msg, gpointer user_data)
{
  ((Call *)user_data)->finished = TRUE;
}

static Call *
call_new (SoupServerMessage *msg)
{
  Call *call = g_new0 (Call, 1);

  call->msg = g_object_ref (msg);
  call->finished_id = g_signal_connect (msg, "finished", G_CALLBACK (call_finished_cb), call);
  soup_server_message_pause (msg);
  return call;
}

static void
call_complete (Call *call)
{
  g_clear_signal_handler (&call->finished_id, call->msg);
  if (!call->finished)
    soup_server_message_unpause (call->msg);
  g_clear_object (&call->msg);
  g_free (call);
}

static void
presence_cb (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Call *call = user_data;
  g_autoptr (GError) error = NULL;
  g_autoptr (HeraldPresence) presence = NULL;
  g_autoptr (JsonBuilder) b = NULL;

  presence = herald_hub_get_presence_finish (HERALD_HUB (source), result, &error);
  if (presence == NULL)
    {
      herald_http_api_respond_gerror (call->msg, error, FALSE);
      call_complete (call);
      return;
    }
  b = json_builder_new_immutable ();
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "channel");
  json_builder_add_string_value (b, presence->channel);
  json_builder_set_member_name (b, "users");
  if (call->stats)
    json_builder_add_int_value (b, presence->n_users);
  else
    {
      json_builder_begin_array (b);
      for (guint i = 0; presence->users[i] != NULL; i++)
        json_builder_add_string_value (b, presence->users[i]);
      json_builder_end_array (b);
    }
  json_builder_set_member_name (b, "connections");
  json_builder_add_int_value (b, presence->connections);
  if (!call->stats)
    {
      json_builder_set_member_name (b, "next");
      if (presence->next != NULL)
        json_builder_add_string_value (b, presence->next);
      else
        json_builder_add_null_value (b);
    }
  json_builder_end_object (b);
  herald_http_api_respond_builder (call->msg, SOUP_STATUS_OK, b);
  call_complete (call);
}

/* "limit": a positive decimal integer (clamped to the page maximum). */
static gboolean
parse_limit (const char *text, guint *limit)
{
  char *end = NULL;
  guint64 value;

  if (text == NULL || *text == '\0')
    {
      *limit = 0; /* the default */
      return TRUE;
    }
  if (!g_ascii_isdigit (*text))
    return FALSE;
  value = g_ascii_strtoull (text, &end, 10);
  if (*end != '\0' || value == 0)
    return FALSE;
  *limit = (guint)MIN (value, (guint64)HERALD_PRESENCE_PAGE_MAX);
  return TRUE;
}

void
herald_http_api_presence (HeraldHub *hub, SoupServerMessage *msg, const char *channel,
                          GHashTable *query, gboolean stats)
{
  const char *cursor = query ? g_hash_table_lookup (query, "cursor") : NULL;
  guint limit = 0;
  Call *call;

  g_return_if_fail (HERALD_IS_HUB (hub));

  if (!herald_channel_name_is_valid (channel))
    {
      herald_http_api_respond_error (msg, SOUP_STATUS_BAD_REQUEST, _ ("Invalid channel name"));
      return;
    }
  if (!herald_config_namespace_for (herald_hub_get_config (hub), channel)->presence)
    {
      herald_http_api_respond_error (msg, SOUP_STATUS_FORBIDDEN,
                                     _ ("Presence is off for this namespace"));
      return;
    }
  if (!stats && !parse_limit (query ? g_hash_table_lookup (query, "limit") : NULL, &limit))
    {
      herald_http_api_respond_error (msg, SOUP_STATUS_BAD_REQUEST,
                                     _ ("Parameter “limit” must be a positive integer"));
      return;
    }
  if (cursor != NULL && *cursor == '\0')
    cursor = NULL;
  call = call_new (msg);
  call->stats = stats;
  herald_hub_get_presence_async (hub, channel, stats, limit, cursor, presence_cb, call);
}

static void
user_subscription_cb (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Call *call = user_data;
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonBuilder) b = NULL;
  guint connections = 0;

  if (!herald_hub_subscribe_user_finish (HERALD_HUB (source), result, &connections, &error))
    {
      herald_http_api_respond_gerror (call->msg, error, FALSE);
      call_complete (call);
      return;
    }
  b = json_builder_new_immutable ();
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "connections");
  json_builder_add_int_value (b, connections);
  json_builder_end_object (b);
  herald_http_api_respond_builder (call->msg, SOUP_STATUS_OK, b);
  call_complete (call);
}

void
herald_http_api_user_subscription (HeraldHub *hub, SoupServerMessage *msg, const char *user_id,
                                   JsonObject *request, gboolean subscribe)
{
  JsonNode *node = json_object_get_member (request, "channel");

  g_return_if_fail (HERALD_IS_HUB (hub));

  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node)
      || json_node_get_value_type (node) != G_TYPE_STRING)
    {
      herald_http_api_respond_error (msg, SOUP_STATUS_BAD_REQUEST,
                                     _ ("Field “channel” must be a string"));
      return;
    }
  herald_hub_subscribe_user_async (hub, user_id, json_node_get_string (node), subscribe,
                                   user_subscription_cb, call_new (msg));
}
