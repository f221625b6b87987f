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
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>
#include <glib/gi18n.h>
#include <json-glib/json-glib.h>

#include "herald-hub.h"
#include "herald-names.h"

gboolean
herald_hub_subscribe_user (HeraldHub *self, const char *user_id, const char *channel,
                           gboolean subscribe, guint *connections, GError **error)
{
  g_autoptr (JsonBuilder) b = NULL;
  g_autoptr (JsonGenerator) gen = NULL;
  g_autoptr (JsonNode) root = NULL;
  g_autofree char *frame = NULL;
  guint n;

  g_return_val_if_fail (HERALD_IS_HUB (self), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

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
  b = json_builder_new_immutable ();
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
  frame = json_generator_to_data (gen, NULL);
  n = herald_engine_send (herald_hub_get_engine (self), HERALD_TARGET_USER_SUBSCRIPTION, user_id,
                          frame);
  if (connections)
    *connections = n;
  return TRUE;
}
