/* herald-protocol-proxy.c: the protocol's [proxy] hooks — subscribe
 * (subscribe=proxy namespaces), publish (publish-proxy=true), rpc, and the
 * refresh of a connection whose claims the backend gave.
 *
 * The backend (herald-backend.h) answers in this worker's thread. While a
 * subscribe or publish waits for it, the connection's later frames wait
 * too (herald_worker_hold_input()), so they are answered in order. A
 * backend that cannot answer makes the request fail with "unavailable";
 * an expired connection it cannot refresh is asked again every 5 s.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "herald-error.h"
#include "herald-protocol.h"
#include "herald-worker.h"

typedef struct
{
  HeraldRouter *router; /* owned */
  HeraldConnection *conn;
  JsonNode *id;
  char *channel;
  char *data_json; /* publish: the client's data */
  char *key;       /* publish: its key, or NULL */
  /* subscribe: the request, copied */
  HeraldSubscribeFrom from;
  guint64 since;
  char *epoch;
  int presence;
  gboolean held; /* the connection's input waits for this call */
} Asked;

static void
asked_free (Asked *asked)
{
  g_clear_object (&asked->router);
  g_clear_object (&asked->conn);
  g_clear_pointer (&asked->id, json_node_unref);
  g_free (asked->channel);
  g_free (asked->data_json);
  g_free (asked->key);
  g_free (asked->epoch);
  g_free (asked);
}

static HeraldBackend *
backend_for (HeraldRouter *router, HeraldHook hook)
{
  HeraldConfig *config = herald_hub_get_config (herald_router_get_hub (router));

  if (herald_config_get_proxy_url (config, hook) == NULL)
    return NULL;
  return herald_worker_get_backend (herald_router_get_worker (router));
}

/* {"client","user",…}: the start of every hook's body but connect */
static JsonBuilder *
body_begin (HeraldConnection *conn)
{
  JsonBuilder *b = json_builder_new ();
  const char *user = herald_connection_get_user_id (conn);

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "client");
  json_builder_add_string_value (b, herald_connection_get_id (conn));
  json_builder_set_member_name (b, "user");
  json_builder_add_string_value (b, user != NULL ? user : "");
  return b;
}

/* "data": the client's JSON text (checked by the router), or null */
static void
body_add_data (JsonBuilder *b, const char *data_json)
{
  JsonNode *data = data_json != NULL ? json_from_string (data_json, NULL) : NULL;

  json_builder_set_member_name (b, "data");
  if (data != NULL)
    json_builder_add_value (b, data);
  else
    json_builder_add_null_value (b);
}

static Asked *
asked_new (HeraldRouter *router, HeraldConnection *conn, const char *channel, JsonNode *id)
{
  Asked *asked = g_new0 (Asked, 1);

  asked->router = g_object_ref (router);
  asked->conn = g_object_ref (conn);
  asked->id = id != NULL ? json_node_copy (id) : NULL;
  asked->channel = g_strdup (channel);
  return asked;
}

static void
hold (Asked *asked)
{
  asked->held = TRUE;
  herald_worker_hold_input (herald_router_get_worker (asked->router), asked->conn);
}

/* After the answer: the frames that waited, in order */
static void
release (Asked *asked)
{
  if (asked->held)
    herald_worker_release_input (herald_router_get_worker (asked->router), asked->conn);
}

/* Common answers: FALSE when the reply was handled here (the connection is
 * closing, the backend refused or could not answer) */
static gboolean
check_reply (Asked *asked, HeraldBackendReply *reply, GError *error, const char *refused)
{
  if (herald_connection_get_state (asked->conn) != HERALD_CONNECTION_OPEN)
    return FALSE;
  if (reply == NULL)
    {
      herald_connection_send_error (asked->conn, "unavailable", error->message, asked->id);
      return FALSE;
    }
  switch (reply->answer)
    {
    case HERALD_BACKEND_ERROR:
      herald_connection_send_error (asked->conn, "forbidden",
                                    *reply->message != '\0' ? reply->message : refused, asked->id);
      return FALSE;
    case HERALD_BACKEND_DISCONNECT:
      herald_connection_close (asked->conn, (guint16)reply->code, reply->message);
      return FALSE;
    case HERALD_BACKEND_RESULT:
    default:
      return TRUE;
    }
}

/* ---- subscribe ---- */

static void
on_subscribe_answer (GObject *source, GAsyncResult *result, gpointer data)
{
  Asked *asked = data;
  g_autoptr (GError) error = NULL;
  g_autoptr (HeraldBackendReply) reply
      = herald_backend_call_finish (HERALD_BACKEND (source), result, &error);

  if (check_reply (asked, reply, error, "Not allowed by the backend"))
    {
      const char *channels[] = { asked->channel, NULL };
      HeraldSubscribeRequest sub = {
        .channels = channels,
        .from = asked->from,
        .since = asked->since,
        .epoch = asked->epoch,
        .presence = asked->presence,
        .allowed = TRUE, /* the backend's yes replaces the channels check */
      };

      herald_protocol_subscribe (asked->router, asked->conn, &sub, asked->id);
    }
  release (asked);
  asked_free (asked);
}

void
herald_protocol_proxy_subscribe (HeraldRouter *router, HeraldConnection *conn,
                                 const HeraldSubscribeRequest *sub, JsonNode *id)
{
  HeraldBackend *backend = backend_for (router, HERALD_HOOK_SUBSCRIBE);
  g_autoptr (JsonBuilder) b = NULL;
  g_autoptr (JsonNode) body = NULL;
  Asked *asked;

  g_return_if_fail (sub != NULL && sub->channels[0] != NULL);
  if (backend == NULL)
    {
      herald_connection_send_error (conn, "unavailable", "No backend answers subscribe", id);
      return;
    }
  b = body_begin (conn);
  json_builder_set_member_name (b, "channel");
  json_builder_add_string_value (b, sub->channels[0]);
  body_add_data (b, herald_router_get_data (router));
  json_builder_end_object (b);
  body = json_builder_get_root (b);

  asked = asked_new (router, conn, sub->channels[0], id);
  asked->from = sub->from;
  asked->since = sub->since;
  asked->epoch = g_strdup (sub->epoch);
  asked->presence = sub->presence;
  hold (asked);
  herald_backend_call_async (backend, HERALD_HOOK_SUBSCRIBE, body, NULL, on_subscribe_answer,
                             asked);
}

/* ---- publish ---- */

static void
published (Asked *asked)
{
  release (asked);
  asked_free (asked);
}

static void
on_publish_answer (GObject *source, GAsyncResult *result, gpointer data)
{
  Asked *asked = data;
  g_autoptr (GError) error = NULL;
  g_autoptr (HeraldBackendReply) reply
      = herald_backend_call_finish (HERALD_BACKEND (source), result, &error);

  if (check_reply (asked, reply, error, "Not allowed by the backend"))
    {
      JsonNode *rewritten = json_object_get_member (reply->result, "data");
      g_autofree char *text = rewritten != NULL ? json_to_string (rewritten, FALSE) : NULL;

      /* Held until "published" (the Redis engine answers later) */
      herald_protocol_publish_then (asked->router, asked->conn, asked->channel, asked->key,
                                    text != NULL ? text : asked->data_json, asked->id,
                                    (GDestroyNotify)published, asked);
      return;
    }
  release (asked);
  asked_free (asked);
}

void
herald_protocol_proxy_publish (HeraldRouter *router, HeraldConnection *conn, const char *channel,
                               const char *key, const char *data_json, JsonNode *id)
{
  HeraldBackend *backend = backend_for (router, HERALD_HOOK_PUBLISH);
  g_autoptr (JsonBuilder) b = NULL;
  g_autoptr (JsonNode) body = NULL;
  Asked *asked;

  if (backend == NULL)
    {
      herald_connection_send_error (conn, "unavailable", "No backend answers publish", id);
      return;
    }
  b = body_begin (conn);
  json_builder_set_member_name (b, "channel");
  json_builder_add_string_value (b, channel);
  body_add_data (b, data_json);
  json_builder_end_object (b);
  body = json_builder_get_root (b);

  asked = asked_new (router, conn, channel, id);
  asked->data_json = g_strdup (data_json);
  asked->key = g_strdup (key);
  hold (asked);
  herald_backend_call_async (backend, HERALD_HOOK_PUBLISH, body, NULL, on_publish_answer, asked);
}

/* ---- rpc ---- */

static void
on_rpc_answer (GObject *source, GAsyncResult *result, gpointer data)
{
  Asked *asked = data;
  g_autoptr (GError) error = NULL;
  g_autoptr (HeraldBackendReply) reply
      = herald_backend_call_finish (HERALD_BACKEND (source), result, &error);
  g_autoptr (JsonBuilder) b = NULL;
  JsonNode *answer;

  if (herald_connection_get_state (asked->conn) != HERALD_CONNECTION_OPEN)
    ;
  else if (reply != NULL && reply->answer == HERALD_BACKEND_ERROR)
    {
      /* {"type":"error","id":…,"code":"rpc_error","message":…,"rpc_code":N} */
      b = herald_reply_begin ("error", asked->id);
      json_builder_set_member_name (b, "code");
      json_builder_add_string_value (b, "rpc_error");
      json_builder_set_member_name (b, "message");
      json_builder_add_string_value (b, reply->message);
      json_builder_set_member_name (b, "rpc_code");
      json_builder_add_int_value (b, reply->code);
      json_builder_end_object (b);
      herald_connection_send_json (asked->conn, b);
    }
  else if (check_reply (asked, reply, error, NULL))
    {
      answer = json_object_get_member (reply->result, "data");
      b = herald_reply_begin ("rpc_result", asked->id);
      json_builder_set_member_name (b, "data");
      if (answer != NULL)
        json_builder_add_value (b, json_node_copy (answer));
      else
        json_builder_add_null_value (b);
      json_builder_end_object (b);
      herald_connection_send_json (asked->conn, b);
    }
  asked_free (asked);
}

/* {"type":"rpc","id":…,"method":"m","data":…} → the rpc hook. Not held:
 * an rpc is no subscribe or publish, later frames need not wait for it. */
void
herald_protocol_proxy_rpc (HeraldRouter *router, HeraldConnection *conn, JsonObject *request,
                           JsonNode *id)
{
  HeraldBackend *backend = backend_for (router, HERALD_HOOK_RPC);
  JsonNode *method = json_object_get_member (request, "method");
  g_autoptr (JsonBuilder) b = NULL;
  g_autoptr (JsonNode) body = NULL;

  /* Without rpc-url, as before the hooks: no such message type */
  if (herald_config_get_proxy_url (herald_hub_get_config (herald_router_get_hub (router)),
                                   HERALD_HOOK_RPC)
      == NULL)
    {
      herald_connection_send_error (conn, "unknown_type", "Unknown message type: rpc", id);
      return;
    }
  if (method == NULL || !JSON_NODE_HOLDS_VALUE (method)
      || json_node_get_value_type (method) != G_TYPE_STRING
      || *json_node_get_string (method) == '\0')
    {
      herald_connection_send_error (conn, "bad_request",
                                    "Field \"method\" must be a non-empty string", id);
      return;
    }
  if (backend == NULL)
    {
      herald_connection_send_error (conn, "unavailable", "No backend answers rpc", id);
      return;
    }
  b = body_begin (conn);
  json_builder_set_member_name (b, "method");
  json_builder_add_string_value (b, json_node_get_string (method));
  body_add_data (b, herald_router_get_data (router));
  json_builder_end_object (b);
  body = json_builder_get_root (b);
  herald_backend_call_async (backend, HERALD_HOOK_RPC, body, NULL, on_rpc_answer,
                             asked_new (router, conn, NULL, id));
}

/* ---- refresh ---- */

static void
on_refresh_answer (GObject *source, GAsyncResult *result, gpointer data)
{
  Asked *asked = data;
  g_autoptr (GError) error = NULL;
  g_autoptr (HeraldBackendReply) reply
      = herald_backend_call_finish (HERALD_BACKEND (source), result, &error);
  gint64 now = g_get_real_time () / G_USEC_PER_SEC;
  gint64 expire_at;

  if (herald_connection_get_state (asked->conn) != HERALD_CONNECTION_OPEN)
    ;
  else if (reply == NULL)
    {
      /* Down, slow or garbage: keep the connection, ask again soon */
      g_debug ("connection %s: refresh failed, retried in %d s: %s",
               herald_connection_get_id (asked->conn), HERALD_BACKEND_REFRESH_RETRY,
               error->message);
      herald_connection_set_expiry (asked->conn, now + HERALD_BACKEND_REFRESH_RETRY);
    }
  else if (reply->answer == HERALD_BACKEND_DISCONNECT)
    herald_connection_close (asked->conn, (guint16)reply->code, reply->message);
  else if (reply->answer == HERALD_BACKEND_ERROR)
    herald_connection_close (asked->conn, 4003,
                             *reply->message != '\0' ? reply->message : "token expired");
  else if ((expire_at = json_object_get_int_member (reply->result, "expire_at")) != 0
           && expire_at <= now)
    herald_connection_close (asked->conn, 4003, "token expired");
  else
    herald_connection_set_expiry (asked->conn, expire_at);
  asked_free (asked);
}

gboolean
herald_protocol_proxy_refresh (HeraldRouter *router, HeraldConnection *conn)
{
  HeraldBackend *backend = backend_for (router, HERALD_HOOK_REFRESH);
  g_autoptr (JsonBuilder) b = NULL;
  g_autoptr (JsonNode) body = NULL;

  if (backend == NULL)
    return FALSE;
  b = body_begin (conn);
  json_builder_end_object (b);
  body = json_builder_get_root (b);
  herald_backend_call_async (backend, HERALD_HOOK_REFRESH, body, NULL, on_refresh_answer,
                             asked_new (router, conn, NULL, NULL));
  return TRUE;
}
