/* herald-security.c: token refresh and the handshake deadline.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "herald-router.h"
#include "herald-security.h"
#include "herald-subscribe.h"
#include "herald-worker.h"

/* ---- refresh ---- */

/* Drops subscriptions the new claims no longer allow, telling the client. */
static void
drop_forbidden_subscriptions (HeraldConnection *conn)
{
  HeraldWorker *worker = herald_connection_get_worker (conn);
  HeraldHub *hub = herald_worker_get_hub (worker);
  const HeraldJwtClaims *claims = herald_connection_get_claims (conn);
  GPtrArray *subs = herald_connection_get_subscriptions (conn);

  for (guint i = subs ? subs->len : 0; i > 0; i--)
    {
      HeraldSubscription *sub = g_ptr_array_index (subs, i - 1);
      g_autofree char *name = g_strdup (herald_channel_get_name (sub->channel));
      g_autoptr (JsonBuilder) b = NULL;

      if (herald_hub_may_subscribe (hub, claims, name))
        continue;
      herald_hub_unsubscribe (hub, worker, conn, sub);
      b = herald_reply_begin ("unsubscribed", NULL);
      json_builder_set_member_name (b, "channel");
      json_builder_add_string_value (b, name);
      json_builder_set_member_name (b, "reason");
      json_builder_add_string_value (b, "not allowed by the refreshed token");
      json_builder_end_object (b);
      herald_connection_send_json (conn, b);
      subs = herald_connection_get_subscriptions (conn);
      if (subs == NULL)
        break;
    }
}

void
herald_security_handle_refresh (HeraldConnection *conn, JsonObject *request, JsonNode *id)
{
  HeraldHub *hub = herald_worker_get_hub (herald_connection_get_worker (conn));
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
  drop_forbidden_subscriptions (conn);

  b = herald_reply_begin ("refreshed", id);
  json_builder_set_member_name (b, "exp");
  if (exp > 0)
    json_builder_add_int_value (b, exp);
  else
    json_builder_add_null_value (b);
  json_builder_end_object (b);
  herald_connection_send_json (conn, b);
}

/* ---- handshake deadline ----
 *
 * libsoup emits SoupServer::request-started when it accepts a connection
 * (before the TLS handshake) and, on a kept-alive connection, when the next
 * request's first bytes arrive. From then until Herald takes the connection
 * over, or the request is answered, the connection has handshake-timeout
 * seconds; after an answer on a kept-alive connection the same time again to
 * start the next request. Watched sockets sit in one table per worker, walked
 * once a second: the cost is the number of handshakes in progress. */

#define WATCH_KEY "herald-security-watch"

typedef struct
{
  GSocket *socket;
  guint32 deadline;
} Watch;

static void
watch_free (Watch *w)
{
  g_object_unref (w->socket);
  g_free (w);
}

/* "local remote": names one TCP connection whether libsoup accepted it (its
 * messages then know the GSocket) or the worker did and handed libsoup a
 * stream (they do not). */
static char *
address_key (GSocketAddress *local, GSocketAddress *remote)
{
  g_autofree char *l = NULL;
  g_autofree char *r = NULL;

  if (!G_IS_INET_SOCKET_ADDRESS (local) || !G_IS_INET_SOCKET_ADDRESS (remote))
    return NULL;
  l = g_inet_address_to_string (g_inet_socket_address_get_address (G_INET_SOCKET_ADDRESS (local)));
  r = g_inet_address_to_string (g_inet_socket_address_get_address (G_INET_SOCKET_ADDRESS (remote)));
  return g_strdup_printf ("%s:%u %s:%u", l,
                          g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (local)), r,
                          g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (remote)));
}

static char *
message_key (SoupServerMessage *msg)
{
  return address_key (soup_server_message_get_local_address (msg),
                      soup_server_message_get_remote_address (msg));
}

static GHashTable *
watch_table (HeraldWorker *worker)
{
  GHashTable *table = g_object_get_data (G_OBJECT (worker), WATCH_KEY);

  if (table == NULL)
    {
      table = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify)watch_free);
      g_object_set_data_full (G_OBJECT (worker), WATCH_KEY, table,
                              (GDestroyNotify)g_hash_table_unref);
    }
  return table;
}

static guint32
deadline (HeraldWorker *worker)
{
  HeraldConfig *config = herald_hub_get_config (herald_worker_get_hub (worker));

  return herald_loop_now () + herald_config_get_handshake_timeout (config);
}

static void
watch_insert (HeraldWorker *worker, char *key, GSocket *socket)
{
  Watch *w = g_new0 (Watch, 1);

  w->socket = g_object_ref (socket);
  w->deadline = deadline (worker);
  g_hash_table_replace (watch_table (worker), key, w);
}

/**
 * herald_security_watch_socket:
 *
 * For connections the worker accepts itself and hands to libsoup as a
 * stream: starts the deadline at accept time.
 */
void
herald_security_watch_socket (HeraldWorker *worker, GSocket *socket)
{
  g_autoptr (GSocketAddress) local = g_socket_get_local_address (socket, NULL);
  g_autoptr (GSocketAddress) remote = g_socket_get_remote_address (socket, NULL);
  char *key = address_key (local, remote);

  if (key)
    watch_insert (worker, key, socket);
}

static void
watch_message (HeraldWorker *worker, SoupServerMessage *msg)
{
  g_autofree char *key = message_key (msg);
  GSocket *socket = soup_server_message_get_socket (msg);
  Watch *w;

  if (key == NULL)
    return;
  w = g_hash_table_lookup (watch_table (worker), key);
  if (w)
    w->deadline = deadline (worker);
  else if (socket && !g_socket_is_closed (socket))
    watch_insert (worker, g_steal_pointer (&key), socket);
}

static void
on_request_started (SoupServer *server, SoupServerMessage *msg, gpointer user_data)
{
  watch_message (user_data, msg);
}

static void
on_request_done (SoupServer *server, SoupServerMessage *msg, gpointer user_data)
{
  /* Kept alive: the next request must come in time too. Closed: the sweep
   * sees the closed socket and forgets it. */
  watch_message (user_data, msg);
}

void
herald_security_watch_server (SoupServer *server, HeraldWorker *worker)
{
  g_signal_connect (server, "request-started", G_CALLBACK (on_request_started), worker);
  g_signal_connect (server, "request-finished", G_CALLBACK (on_request_done), worker);
  g_signal_connect (server, "request-aborted", G_CALLBACK (on_request_done), worker);
}

void
herald_security_forget (HeraldWorker *worker, SoupServerMessage *msg)
{
  GHashTable *table = g_object_get_data (G_OBJECT (worker), WATCH_KEY);
  g_autofree char *key = table ? message_key (msg) : NULL;

  if (key)
    g_hash_table_remove (table, key);
}

void
herald_security_sweep (HeraldWorker *worker, guint32 now)
{
  GHashTable *table = g_object_get_data (G_OBJECT (worker), WATCH_KEY);
  GHashTableIter iter;
  Watch *w;

  if (table == NULL)
    return;
  g_hash_table_iter_init (&iter, table);
  while (g_hash_table_iter_next (&iter, NULL, (gpointer *)&w))
    {
      if (g_socket_is_closed (w->socket))
        g_hash_table_iter_remove (&iter);
      else if (now >= w->deadline)
        {
          /* libsoup's pending read (or TLS handshake) then fails and it
           * drops the connection itself. */
          g_debug ("dropping a connection that did not complete its request in time");
          g_socket_shutdown (w->socket, TRUE, TRUE, NULL);
          g_hash_table_iter_remove (&iter);
        }
    }
}
