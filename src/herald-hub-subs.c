/* herald-hub-subs.c: subscriptions decided by the server — a user's
 * connections on every node subscribed or unsubscribed by the HTTP API or
 * D-Bus (POST /api/users/{id}/subscribe, SubscribeUser).
 *
 * The request travels like a message to a user (the engine's user routing:
 * with Redis, on `herald:all`, to every node) as a
 * HERALD_TARGET_USER_SUBSCRIPTION delivery whose message is the frame the
 * connections get, {"type":"subscribed"|"unsubscribed","channel":…,
 * "server":true}; each worker holding one of the user's connections acts on
 * it (herald-subscribe.c).
 *
 * The answer counts the user's connections on every node as the engine
 * keeps them (herald_engine_count_user_connections(): with Redis, a count
 * per node in Redis, updated as connections open and close), read after the
 * request was sent on, in GLib's thread pool since the engine may wait for
 * Redis. A connection that opens meanwhile may or may not be counted.
 * Engines that do not count answer with this node's connections reached.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>
#include <glib/gi18n.h>
#include <json-glib/json-glib.h>

#include "herald-hub.h"
#include "herald-names.h"

typedef struct
{
  char *user_id;
  guint reached; /* this node's connections, at once */
} Request;

static void
request_free (Request *request)
{
  g_free (request->user_id);
  g_free (request);
}

static void
count_in_thread (GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
  Request *request = task_data;
  gint64 n = herald_engine_count_user_connections (herald_hub_get_engine (HERALD_HUB (source)),
                                                   request->user_id);

  g_task_return_int (task, n >= 0 ? (gssize)MIN (n, (gint64)G_MAXUINT) : (gssize)request->reached);
}

static gboolean
check_request (const char *user_id, const char *channel, GError **error)
{
  if (user_id == NULL || *user_id == '\0' || strlen (user_id) > 1024
      || !g_utf8_validate (user_id, -1, NULL))
    {
      g_set_error_literal (error, HERALD_ERROR, HERALD_ERROR_INVALID_ARGUMENT,
                           _ ("Invalid user id"));
      return FALSE;
    }
  if (channel == NULL || !herald_channel_name_is_valid (channel))
    {
      g_set_error (
          error, HERALD_ERROR, HERALD_ERROR_INVALID_ARGUMENT,
          _ ("Invalid channel name “%s”: use 1–255 characters of A-Z a-z 0-9 _ . : @ / - # ,"),
          channel ? channel : "");
      return FALSE;
    }
  return TRUE;
}

static char *
format_frame (const char *channel, gboolean subscribe)
{
  g_autoptr (JsonBuilder) b = json_builder_new_immutable ();
  g_autoptr (JsonGenerator) gen = NULL;
  g_autoptr (JsonNode) root = NULL;

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "type");
  json_builder_add_string_value (b, subscribe ? "subscribed" : "unsubscribed");
  json_builder_set_member_name (b, "channel");
  json_builder_add_string_value (b, channel);
  json_builder_set_member_name (b, "server");
  json_builder_add_boolean_value (b, TRUE);
  json_builder_end_object (b);
  root = json_builder_get_root (b);
  gen = json_generator_new ();
  json_generator_set_root (gen, root);
  return json_generator_to_data (gen, NULL);
}

void
herald_hub_subscribe_user_async (HeraldHub *self, const char *user_id, const char *channel,
                                 gboolean subscribe, GAsyncReadyCallback callback,
                                 gpointer user_data)
{
  g_autoptr (GTask) task = NULL;
  g_autofree char *frame = NULL;
  GError *error = NULL;
  Request *request;

  g_return_if_fail (HERALD_IS_HUB (self));

  task = g_task_new (self, NULL, callback, user_data);
  g_task_set_source_tag (task, herald_hub_subscribe_user_async);
  if (!check_request (user_id, channel, &error))
    {
      g_task_return_error (task, error);
      return;
    }
  frame = format_frame (channel, subscribe);
  request = g_new0 (Request, 1);
  request->user_id = g_strdup (user_id);
  request->reached = herald_engine_send (herald_hub_get_engine (self),
                                         HERALD_TARGET_USER_SUBSCRIPTION, user_id, frame);
  g_task_set_task_data (task, request, (GDestroyNotify)request_free);
  /* The engine may wait for Redis: never in a worker's (or the main) thread. */
  g_task_run_in_thread (task, count_in_thread);
}

gboolean
herald_hub_subscribe_user_finish (HeraldHub *self, GAsyncResult *result, guint *connections,
                                  GError **error)
{
  gssize n;

  g_return_val_if_fail (HERALD_IS_HUB (self), FALSE);
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  n = g_task_propagate_int (G_TASK (result), error);
  if (n < 0)
    return FALSE;
  if (connections)
    *connections = (guint)n;
  return TRUE;
}
