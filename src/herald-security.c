/* herald-security.c: the handshake deadline.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "herald-loop.h"
#include "herald-security.h"

/* ---- handshake deadline ----
 *
 * libsoup emits SoupServer::request-started when it accepts a connection
 * (before the TLS handshake) and, on a kept-alive connection, when the next
 * request's first bytes arrive. From then until Herald takes the connection
 * over, or the request is answered, the connection has handshake-timeout
 * seconds; after an answer on a kept-alive connection the same time again to
 * start the next request. Watched sockets sit in one table per server, walked
 * once a second: the cost is the number of handshakes in progress. */

#define WATCH_KEY "herald-security-watch"
#define TIMEOUT_KEY "herald-security-timeout"

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
watch_table (SoupServer *server)
{
  GHashTable *table = g_object_get_data (G_OBJECT (server), WATCH_KEY);

  if (table == NULL)
    {
      table = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify)watch_free);
      g_object_set_data_full (G_OBJECT (server), WATCH_KEY, table,
                              (GDestroyNotify)g_hash_table_unref);
    }
  return table;
}

static guint32
deadline (SoupServer *server)
{
  HeraldConfig *config = g_object_get_data (G_OBJECT (server), TIMEOUT_KEY);

  return herald_loop_now () + (config ? herald_config_get_handshake_timeout (config) : 0);
}

static void
watch_insert (SoupServer *server, char *key, GSocket *socket)
{
  Watch *w = g_new0 (Watch, 1);

  w->socket = g_object_ref (socket);
  w->deadline = deadline (server);
  g_hash_table_replace (watch_table (server), key, w);
}

/**
 * herald_security_watch_socket:
 *
 * For connections the worker accepts itself and hands to libsoup as a
 * stream: starts the deadline at accept time.
 */
void
herald_security_watch_socket (SoupServer *server, GSocket *socket)
{
  g_autoptr (GSocketAddress) local = g_socket_get_local_address (socket, NULL);
  g_autoptr (GSocketAddress) remote = g_socket_get_remote_address (socket, NULL);
  char *key = address_key (local, remote);

  if (key)
    watch_insert (server, key, socket);
}

static void
watch_message (SoupServer *server, SoupServerMessage *msg)
{
  g_autofree char *key = message_key (msg);
  GSocket *socket = soup_server_message_get_socket (msg);
  Watch *w;

  if (key == NULL)
    return;
  w = g_hash_table_lookup (watch_table (server), key);
  if (w)
    w->deadline = deadline (server);
  else if (socket && !g_socket_is_closed (socket))
    watch_insert (server, g_steal_pointer (&key), socket);
}

static void
on_request_started (SoupServer *server, SoupServerMessage *msg, gpointer user_data)
{
  watch_message (server, msg);
}

static void
on_request_done (SoupServer *server, SoupServerMessage *msg, gpointer user_data)
{
  /* Kept alive: the next request must come in time too. Closed: the sweep
   * sees the closed socket and forgets it. */
  watch_message (server, msg);
}

void
herald_security_watch_server (SoupServer *server, HeraldConfig *config)
{
  g_return_if_fail (SOUP_IS_SERVER (server));
  g_return_if_fail (HERALD_IS_CONFIG (config));

  g_object_set_data_full (G_OBJECT (server), TIMEOUT_KEY, g_object_ref (config), g_object_unref);
  g_signal_connect (server, "request-started", G_CALLBACK (on_request_started), NULL);
  g_signal_connect (server, "request-finished", G_CALLBACK (on_request_done), NULL);
  g_signal_connect (server, "request-aborted", G_CALLBACK (on_request_done), NULL);
}

void
herald_security_forget (SoupServer *server, SoupServerMessage *msg)
{
  GHashTable *table = g_object_get_data (G_OBJECT (server), WATCH_KEY);
  g_autofree char *key = table ? message_key (msg) : NULL;

  if (key)
    g_hash_table_remove (table, key);
}

void
herald_security_sweep (SoupServer *server, guint32 now)
{
  GHashTable *table = g_object_get_data (G_OBJECT (server), WATCH_KEY);
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
