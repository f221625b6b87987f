/* herald-router.c
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "herald-json.h"
#include "herald-router.h"

struct _HeraldRouter
{
  GObject parent_instance;
  HeraldHub *hub;       /* unowned: owns the router */
  HeraldWorker *worker; /* unowned: the hub's, like the router */
  GHashTable *routes;   /* type → HeraldRouteFunc */
  JsonParser *parser;
  HeraldJsonEnvelope envelope; /* of the request being dispatched */
  HeraldExpiredFunc expired;
};

G_DEFINE_FINAL_TYPE (HeraldRouter, herald_router, G_TYPE_OBJECT)

static void
herald_router_finalize (GObject *object)
{
  HeraldRouter *self = HERALD_ROUTER (object);

  g_hash_table_unref (self->routes);
  g_object_unref (self->parser);
  herald_json_envelope_clear (&self->envelope);
  G_OBJECT_CLASS (herald_router_parent_class)->finalize (object);
}

static void
herald_router_class_init (HeraldRouterClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = herald_router_finalize;
}

static void
herald_router_init (HeraldRouter *self)
{
  self->routes = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  self->parser = json_parser_new_immutable ();
}

HeraldRouter *
herald_router_new_empty (HeraldHub *hub, HeraldWorker *worker)
{
  HeraldRouter *self;

  g_return_val_if_fail (HERALD_IS_HUB (hub), NULL);
  g_return_val_if_fail (HERALD_IS_WORKER (worker), NULL);

  self = g_object_new (HERALD_TYPE_ROUTER, NULL);
  self->hub = hub;
  self->worker = worker;
  return self;
}

HeraldRouter *
herald_router_new (HeraldHub *hub, HeraldWorker *worker)
{
  HeraldRouter *self = herald_router_new_empty (hub, worker);
  herald_protocol_register (self);
  return self;
}

HeraldHub *
herald_router_get_hub (HeraldRouter *self)
{
  g_return_val_if_fail (HERALD_IS_ROUTER (self), NULL);
  return self->hub;
}

HeraldWorker *
herald_router_get_worker (HeraldRouter *self)
{
  g_return_val_if_fail (HERALD_IS_ROUTER (self), NULL);
  return self->worker;
}

void
herald_router_register (HeraldRouter *self, const char *type, HeraldRouteFunc func)
{
  g_hash_table_replace (self->routes, g_strdup (type), func);
}

void
herald_router_set_expired (HeraldRouter *self, HeraldExpiredFunc func)
{
  g_return_if_fail (HERALD_IS_ROUTER (self));
  self->expired = func;
}

gboolean
herald_router_expired (HeraldRouter *self, HeraldConnection *connection)
{
  g_return_val_if_fail (HERALD_IS_ROUTER (self), FALSE);
  return self->expired != NULL && self->expired (self, connection);
}

gboolean
herald_router_has_route (HeraldRouter *self, const char *type)
{
  return g_hash_table_contains (self->routes, type);
}

JsonBuilder *
herald_reply_begin (const char *type, JsonNode *id)
{
  JsonBuilder *b = json_builder_new ();

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "type");
  json_builder_add_string_value (b, type);
  if (id)
    {
      json_builder_set_member_name (b, "id");
      json_builder_add_value (b, json_node_copy (id));
    }
  return b;
}

/* Is @id (a number or a string) written back as the client sent it
 * (@raw)? json-glib holds a fraction as a double and may write it otherwise
 * (0.1 as 0.10000000000000001, 1e2 as 100.0). */
static gboolean
id_echoes_exactly (JsonNode *id, const char *raw)
{
  g_autofree char *written = NULL;

  if (json_node_get_value_type (id) != G_TYPE_DOUBLE)
    return TRUE;
  written = json_to_string (id, FALSE);
  return g_strcmp0 (written, raw) == 0;
}

/**
 * herald_router_get_data:
 *
 * Returns: (nullable): the "data" member of the request being dispatched,
 * as checked, compact JSON text exactly as the client wrote it (numbers and
 * strings unchanged); NULL when it has none. Valid during the handler call.
 */
const char *
herald_router_get_data (HeraldRouter *self)
{
  g_return_val_if_fail (HERALD_IS_ROUTER (self), NULL);
  return self->envelope.data;
}

void
herald_router_dispatch (HeraldRouter *self, HeraldConnection *connection, const char *text,
                        gsize length)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GError) field_error = NULL;
  JsonNode *root, *id = NULL, *type_node;
  JsonObject *obj;
  const char *type;
  HeraldRouteFunc func;

  /* Herald's reader first: json-glib takes a second value after the first,
   * and changes big integers and strings with U+0000 in them. */
  herald_json_envelope_clear (&self->envelope);
  if (!herald_json_read_envelope (text, length, &self->envelope, &error))
    {
      if (!g_error_matches (error, HERALD_JSON_ERROR, HERALD_JSON_ERROR_FIELD))
        {
          herald_connection_send_error (connection, "invalid_json", error->message, NULL);
          return;
        }
      /* Valid JSON with a field json-glib would misread: answered below
       * (without echoing the id, which may be that field). */
      field_error = g_steal_pointer (&error);
    }
  if (!json_parser_load_from_data (self->parser, text, length, &error))
    {
      herald_connection_send_error (connection, "invalid_json", error->message, NULL);
      return;
    }
  root = json_parser_get_root (self->parser);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    {
      herald_connection_send_error (connection, "bad_request", "A message must be a JSON object",
                                    NULL);
      return;
    }
  obj = json_node_get_object (root);

  id = json_object_get_member (obj, "id");
  if (id
      && !(JSON_NODE_HOLDS_VALUE (id)
           && (json_node_get_value_type (id) == G_TYPE_STRING
               || json_node_get_value_type (id) == G_TYPE_INT64
               || json_node_get_value_type (id) == G_TYPE_DOUBLE)))
    {
      herald_connection_send_error (connection, "bad_request",
                                    "Field \"id\" must be a number or a string", NULL);
      return;
    }
  if (id && field_error == NULL && !id_echoes_exactly (id, self->envelope.id))
    {
      herald_connection_send_error (
          connection, "bad_request",
          "Field \"id\" is a number Herald cannot echo exactly: use a string or an integer", NULL);
      return;
    }
  if (field_error != NULL)
    {
      g_autofree char *message = g_strdup_printf ("Invalid field: %s", field_error->message);
      herald_connection_send_error (connection, "bad_request", message, NULL);
      return;
    }

  type_node = json_object_get_member (obj, "type");
  if (type_node == NULL || !JSON_NODE_HOLDS_VALUE (type_node)
      || json_node_get_value_type (type_node) != G_TYPE_STRING)
    {
      herald_connection_send_error (connection, "bad_request", "Field \"type\" must be a string",
                                    id);
      return;
    }
  type = json_node_get_string (type_node);

  func = g_hash_table_lookup (self->routes, type);
  if (func == NULL)
    {
      g_autofree char *message = g_strdup_printf ("Unknown message type: %s", type);
      herald_connection_send_error (connection, "unknown_type", message, id);
      return;
    }
  func (self, connection, obj, id);
}
