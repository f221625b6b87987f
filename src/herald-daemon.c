/* herald-daemon.c
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <glib-unix.h>
#include <glib/gi18n.h>

#include "herald-daemon.h"
#include "herald-dbus.h"
#include "herald-front.h"
#include "herald-http-jwks.h"
#include "herald-listen-guard.h"
#include "herald-subscribe.h"
#include "herald-memory-engine.h"
#include "herald-redis-engine.h"
#include "herald-redis-cluster-engine.h"
#include "herald-redis-shards.h"
#include "herald-worker.h"

#define SHUTDOWN_TIMEOUT_MS 5000
#define LISTEN_BACKLOG 4096

struct _HeraldDaemon
{
  GObject parent_instance;

  HeraldConfig *config;
  HeraldEngine *engine;
  HeraldHub *hub;
  HeraldDbus *dbus;
  HeraldHttpJwks *jwks; /* [auth] jwks-url, or NULL */
  GMainLoop *loop;
  GPtrArray *urls;
  GArray *claims; /* of int: herald_listen_guard_claim() fds, one per address */
  int exit_status;
  gboolean stopping;
  guint expire_id;
  guint signal_ids[3]; /* SIGTERM, SIGINT, SIGHUP: from before "listening on" */
};

G_DEFINE_FINAL_TYPE (HeraldDaemon, herald_daemon, G_TYPE_OBJECT)

enum
{
  PROP_0,
  PROP_CONFIG,
  N_PROPS
};
static GParamSpec *props[N_PROPS];

static void
herald_daemon_dispose (GObject *object)
{
  HeraldDaemon *self = HERALD_DAEMON (object);

  g_clear_handle_id (&self->expire_id, g_source_remove);
  if (self->dbus)
    herald_dbus_unexport (self->dbus);
  g_clear_object (&self->dbus);
  if (self->jwks)
    herald_http_jwks_stop (self->jwks);
  g_clear_object (&self->jwks);
  if (self->hub)
    g_object_run_dispose (G_OBJECT (self->hub)); /* joins the workers */
  g_clear_object (&self->hub);
  g_clear_object (&self->engine);
  G_OBJECT_CLASS (herald_daemon_parent_class)->dispose (object);
}

static void
herald_daemon_finalize (GObject *object)
{
  HeraldDaemon *self = HERALD_DAEMON (object);

  g_clear_object (&self->config);
  g_clear_pointer (&self->loop, g_main_loop_unref);
  g_clear_pointer (&self->urls, g_ptr_array_unref);
  for (guint i = 0; i < self->claims->len; i++)
    close (g_array_index (self->claims, int, i));
  g_clear_pointer (&self->claims, g_array_unref);
  for (guint i = 0; i < G_N_ELEMENTS (self->signal_ids); i++)
    g_clear_handle_id (&self->signal_ids[i], g_source_remove);
  G_OBJECT_CLASS (herald_daemon_parent_class)->finalize (object);
}

static void
herald_daemon_set_property (GObject *object, guint prop_id, const GValue *value, GParamSpec *pspec)
{
  HeraldDaemon *self = HERALD_DAEMON (object);

  switch (prop_id)
    {
    case PROP_CONFIG:
      self->config = g_value_dup_object (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
herald_daemon_get_property (GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
  HeraldDaemon *self = HERALD_DAEMON (object);

  switch (prop_id)
    {
    case PROP_CONFIG:
      g_value_set_object (value, self->config);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
herald_daemon_class_init (HeraldDaemonClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = herald_daemon_dispose;
  object_class->finalize = herald_daemon_finalize;
  object_class->set_property = herald_daemon_set_property;
  object_class->get_property = herald_daemon_get_property;
  props[PROP_CONFIG]
      = g_param_spec_object ("config", NULL, NULL, HERALD_TYPE_CONFIG,
                             G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties (object_class, N_PROPS, props);
}

static void
herald_daemon_init (HeraldDaemon *self)
{
  self->loop = g_main_loop_new (NULL, FALSE);
  self->urls = g_ptr_array_new_with_free_func (g_free);
  self->claims = g_array_new (FALSE, FALSE, sizeof (int));
}

HeraldDaemon *
herald_daemon_new (HeraldConfig *config)
{
  return g_object_new (HERALD_TYPE_DAEMON, "config", config, NULL);
}

HeraldHub *
herald_daemon_get_hub (HeraldDaemon *self)
{
  return self->hub;
}

GPtrArray *
herald_daemon_get_urls (HeraldDaemon *self)
{
  return self->urls;
}

/* ---- listeners ---- */

static GInetAddress *
resolve_host (const char *host, GError **error)
{
  GInetAddress *address;

  if (g_ascii_strcasecmp (host, "localhost") == 0)
    return g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  address = g_inet_address_new_from_string (host);
  if (address == NULL)
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                 _ ("cannot listen on “%s”: use a numeric IP address or localhost"), host);
  return address;
}

/* One listening socket with SO_REUSEPORT: each worker gets its own, and the
 * kernel spreads new connections over them. GLib's bind resets SO_REUSEPORT,
 * so bind(2) the fd directly. */
static GSocket *
make_listener (GInetAddress *address, guint16 port, guint16 *bound_port, GError **error)
{
  g_autoptr (GSocket) socket = NULL;
  g_autoptr (GSocketAddress) sa = g_inet_socket_address_new (address, port);
  g_autoptr (GSocketAddress) local = NULL;
  struct sockaddr_storage native;
  gsize native_len = g_socket_address_get_native_size (sa);
  int one = 1;
  int fd;

  socket = g_socket_new (g_inet_address_get_family (address), G_SOCKET_TYPE_STREAM,
                         G_SOCKET_PROTOCOL_TCP, error);
  if (socket == NULL)
    return NULL;
  fd = g_socket_get_fd (socket);
  setsockopt (fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  setsockopt (fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  if (g_inet_address_get_family (address) == G_SOCKET_FAMILY_IPV6)
    setsockopt (fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  if (!g_socket_address_to_native (sa, &native, sizeof native, error))
    return NULL;
  if (bind (fd, (struct sockaddr *)&native, native_len) < 0)
    {
      int saved = errno;
      g_autofree char *host = g_inet_address_to_string (address);
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved), _ ("cannot bind %s:%u: %s"),
                   host, port, g_strerror (saved));
      return NULL;
    }
  g_socket_set_listen_backlog (socket, LISTEN_BACKLOG);
  if (!g_socket_listen (socket, error))
    return NULL;
  local = g_socket_get_local_address (socket, error);
  if (local == NULL)
    return NULL;
  *bound_port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (local));
  return g_steal_pointer (&socket);
}

/* Makes @inet:*port this process's before the workers bind it: claimed, and
 * probed to be free (herald-listen-guard.h). For port 0 the kernel picks
 * the port when the first worker's socket is bound, so that socket is made
 * here, added for worker 0 (*first_bound), and the claim follows; a port
 * some other Herald claimed in between is given back and another tried. */
static gboolean
claim_address (HeraldDaemon *self, GInetAddress *inet, guint16 *port, GPtrArray *per_worker,
               gboolean tls, gboolean *first_bound, GError **error)
{
  int claim;

  if (*port != 0)
    {
      claim = herald_listen_guard_claim (inet, *port, error);
      if (claim < 0)
        return FALSE;
      g_array_append_val (self->claims, claim);
      return herald_listen_guard_probe (inet, *port, error);
    }
  for (guint attempt = 0;; attempt++)
    {
      g_autoptr (GError) local = NULL;
      guint16 bound = 0;
      g_autoptr (GSocket) socket = make_listener (inet, 0, &bound, error);

      if (socket == NULL)
        return FALSE;
      claim = herald_listen_guard_claim (inet, bound, &local);
      if (claim >= 0)
        {
          g_array_append_val (self->claims, claim);
          if (tls)
            g_object_set_data (G_OBJECT (socket), "herald-tls", GINT_TO_POINTER (1));
          g_ptr_array_add (g_ptr_array_index (per_worker, 0), g_steal_pointer (&socket));
          *port = bound;
          *first_bound = TRUE;
          return TRUE;
        }
      if (!g_error_matches (local, G_IO_ERROR, G_IO_ERROR_ADDRESS_IN_USE) || attempt == 8)
        {
          g_propagate_error (error, g_steal_pointer (&local));
          return FALSE;
        }
    }
}

static gboolean
expire_history (gpointer user_data)
{
  HeraldDaemon *self = user_data;

  if (HERALD_IS_MEMORY_ENGINE (self->engine))
    herald_memory_engine_expire (HERALD_MEMORY_ENGINE (self->engine));
  return G_SOURCE_CONTINUE;
}

static gboolean on_terminate (gpointer user_data);
static gboolean on_hangup (gpointer user_data);

gboolean
herald_daemon_start (HeraldDaemon *self, GError **error)
{
  GPtrArray *listen = herald_config_get_listen (self->config);
  guint n_workers = herald_config_get_workers (self->config);
  g_autoptr (GPtrArray) per_worker
      = g_ptr_array_new_with_free_func ((GDestroyNotify)g_ptr_array_unref);
  g_autoptr (GTlsCertificate) certificate = NULL;

  if (herald_config_get_redis_mode (self->config) == HERALD_REDIS_MODE_SHARDS)
    {
      self->engine = herald_redis_shards_new (
          self->config, herald_config_get_redis_servers (self->config), error);
      if (self->engine == NULL)
        {
          g_prefix_error (error, "[redis] shards: ");
          return FALSE;
        }
    }
  else if (herald_config_get_redis_mode (self->config) == HERALD_REDIS_MODE_SENTINELS)
    {
      self->engine = herald_redis_engine_new_sentinel (
          self->config, herald_config_get_redis_servers (self->config),
          herald_config_get_redis_sentinel_master (self->config), error);
      if (self->engine == NULL)
        {
          g_prefix_error (error, "[redis] sentinels: ");
          return FALSE;
        }
    }
  else if (herald_config_get_redis_mode (self->config) == HERALD_REDIS_MODE_CLUSTER)
    {
      self->engine = herald_redis_cluster_engine_new (
          self->config, herald_config_get_redis_servers (self->config), error);
      if (self->engine == NULL)
        {
          g_prefix_error (error, "[redis] cluster: ");
          return FALSE;
        }
    }
  else if (herald_config_get_redis_url (self->config))
    {
      self->engine = herald_redis_engine_new (self->config,
                                              herald_config_get_redis_url (self->config), error);
      if (self->engine == NULL)
        {
          g_prefix_error (error, "[redis] url: ");
          return FALSE;
        }
    }
  else
    self->engine = herald_memory_engine_new (self->config);
  self->hub = herald_hub_new (self->config, self->engine);
  if (HERALD_IS_REDIS_ENGINE (self->engine))
    herald_redis_engine_start (HERALD_REDIS_ENGINE (self->engine),
                               herald_hub_get_node_id (self->hub));
  else if (HERALD_IS_REDIS_SHARDS (self->engine))
    herald_redis_shards_start (HERALD_REDIS_SHARDS (self->engine),
                               herald_hub_get_node_id (self->hub));
  else if (HERALD_IS_REDIS_CLUSTER_ENGINE (self->engine))
    herald_redis_cluster_engine_start (HERALD_REDIS_CLUSTER_ENGINE (self->engine),
                                       herald_hub_get_node_id (self->hub));
  if (!herald_hub_load_keys (self->hub, error))
    return FALSE;
  if (herald_config_get_jwks_url (self->config) != NULL)
    {
      /* Before the workers share the verifier: this sets its unknown-kid hook */
      self->jwks = herald_http_jwks_new (herald_config_get_jwks_url (self->config),
                                         herald_config_get_jwks_refresh (self->config),
                                         herald_hub_get_verifier (self->hub));
      herald_http_jwks_start (self->jwks);
    }
  if (herald_config_get_tls_certificate (self->config))
    {
      certificate
          = g_tls_certificate_new_from_files (herald_config_get_tls_certificate (self->config),
                                              herald_config_get_tls_key (self->config), error);
      if (certificate == NULL)
        {
          g_prefix_error (error, _ ("[server] tls-certificate “%s” / tls-key “%s”: "),
                          herald_config_get_tls_certificate (self->config),
                          herald_config_get_tls_key (self->config));
          return FALSE;
        }
    }

  for (guint w = 0; w < n_workers; w++)
    g_ptr_array_add (per_worker, g_ptr_array_new_with_free_func (g_object_unref));

  for (guint i = 0; i < listen->len; i++)
    {
      HeraldListenAddress *addr = g_ptr_array_index (listen, i);
      g_autoptr (GInetAddress) inet = resolve_host (addr->host, error);
      guint16 port = addr->port;
      g_autofree char *host = NULL;
      gboolean first_bound = FALSE;

      if (inet == NULL)
        return FALSE;
      if (addr->tls && certificate == NULL)
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                       _ ("https listener needs [server] tls-certificate and tls-key"));
          return FALSE;
        }
      if (!claim_address (self, inet, &port, per_worker, addr->tls, &first_bound, error))
        return FALSE;
      for (guint w = first_bound ? 1 : 0; w < n_workers; w++)
        {
          guint16 bound = 0;
          GSocket *socket = make_listener (inet, port, &bound, error);
          if (socket == NULL)
            return FALSE;
          if (addr->tls)
            g_object_set_data (G_OBJECT (socket), "herald-tls", GINT_TO_POINTER (1));
          port = bound; /* port 0: the other workers share the port the first got */
          g_ptr_array_add (g_ptr_array_index (per_worker, w), socket);
        }
      host = g_inet_address_to_string (inet);
      if (g_inet_address_get_family (inet) == G_SOCKET_FAMILY_IPV6)
        g_ptr_array_add (
            self->urls, g_strdup_printf ("%s://[%s]:%u", addr->tls ? "https" : "http", host, port));
      else
        g_ptr_array_add (self->urls,
                         g_strdup_printf ("%s://%s:%u", addr->tls ? "https" : "http", host, port));
    }

  for (guint w = 0; w < n_workers; w++)
    {
      HeraldWorker *worker = herald_hub_new_worker (self->hub);
      herald_front_attach (self->hub, worker, g_ptr_array_index (per_worker, w), certificate);
      if (!herald_worker_start (worker, error))
        return FALSE;
    }

  /* Whoever reads "listening on" may send SIGTERM at once: it must find
   * the handlers in place (they run once the main loop does). */
  self->signal_ids[0] = g_unix_signal_add (SIGTERM, on_terminate, self);
  self->signal_ids[1] = g_unix_signal_add (SIGINT, on_terminate, self);
  self->signal_ids[2] = g_unix_signal_add (SIGHUP, on_hangup, self);
  for (guint i = 0; i < self->urls->len; i++)
    g_printerr ("listening on %s\n", (char *)g_ptr_array_index (self->urls, i));
  g_message (_ ("Herald %s: %u worker(s), %s engine, node %s"), PACKAGE_VERSION, n_workers,
             herald_engine_get_name (self->engine), herald_hub_get_node_id (self->hub));
  self->expire_id = g_timeout_add_seconds (10, expire_history, self);
  return TRUE;
}

/* ---- systemd and signals ---- */

static void
notify_systemd (const char *state)
{
  const char *path = g_getenv ("NOTIFY_SOCKET");
  struct sockaddr_un sa = { .sun_family = AF_UNIX };
  gsize len;
  int fd;

  if (path == NULL || (path[0] != '/' && path[0] != '@') || strlen (path) >= sizeof sa.sun_path)
    return;
  len = strlen (path);
  memcpy (sa.sun_path, path, len);
  if (sa.sun_path[0] == '@')
    sa.sun_path[0] = '\0';
  fd = socket (AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return;
  if (sendto (fd, state, strlen (state), MSG_NOSIGNAL, (struct sockaddr *)&sa,
              offsetof (struct sockaddr_un, sun_path) + len)
      < 0)
    g_debug ("sd_notify: %s", g_strerror (errno));
  close (fd);
}

static void
on_shutdown_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  HeraldDaemon *self = user_data;

  herald_hub_shutdown_finish (HERALD_HUB (source), result, NULL);
  g_main_loop_quit (self->loop);
}

static void
begin_stop (HeraldDaemon *self, int status)
{
  if (self->stopping)
    return;
  self->stopping = TRUE;
  self->exit_status = status;
  notify_systemd ("STOPPING=1");
  g_message (_ ("Shutting down: closing every connection with 1001 over %u s"),
             herald_config_get_drain_seconds (herald_hub_get_config (self->hub)));
  herald_hub_shutdown_async (self->hub, SHUTDOWN_TIMEOUT_MS, on_shutdown_done, self);
}

static gboolean
on_terminate (gpointer user_data)
{
  begin_stop (user_data, 0);
  return G_SOURCE_CONTINUE;
}

static gboolean
on_hangup (gpointer user_data)
{
  HeraldDaemon *self = user_data;
  g_autoptr (GError) error = NULL;

  if (!herald_config_reload_limits (self->config, &error))
    g_warning (_ ("Reloading limits failed, keeping the old ones: %s"), error->message);
  else
    g_message (_ ("Limits reloaded"));
  return G_SOURCE_CONTINUE;
}

static void
on_name_lost (HeraldDbus *dbus, gpointer user_data)
{
  HeraldDaemon *self = user_data;

  /* Handing over to a later instance started with --replace is a clean
   * exit; not getting the name, or losing it with the bus, is a failure
   * (systemd's Restart=on-failure and scripts must see it). */
  if (herald_dbus_get_replaced (dbus))
    {
      g_message (_ ("Replaced on D-Bus by another instance: exiting"));
      begin_stop (self, 0);
      return;
    }
  g_printerr ("heraldd: ");
  g_printerr (_ ("no D-Bus name %s (see above): exiting with status 1"), HERALD_DBUS_NAME);
  g_printerr ("\n");
  begin_stop (self, 1);
}

static void
on_optional_bus_lost (HeraldDbus *dbus, gpointer user_data)
{
  g_message (_ ("D-Bus unavailable or name taken: continuing without D-Bus"));
}

void
herald_daemon_connect_bus (HeraldDaemon *self, HeraldBusChoice bus, gboolean replace)
{
  GBusType type;

  if (bus == HERALD_BUS_NONE)
    return;
  if (bus == HERALD_BUS_AUTO)
    {
      /* A system service (started by systemd as root, or as the herald user
       * with no session) talks on the system bus; anything else on the session bus. */
      gboolean system_service
          = g_getenv ("INVOCATION_ID") != NULL && g_getenv ("DBUS_SESSION_BUS_ADDRESS") == NULL;
      type = system_service ? G_BUS_TYPE_SYSTEM : G_BUS_TYPE_SESSION;
      if (type == G_BUS_TYPE_SESSION && g_getenv ("DBUS_SESSION_BUS_ADDRESS") == NULL
          && g_getenv ("XDG_RUNTIME_DIR") == NULL)
        {
          g_message (_ ("No session bus: running without D-Bus (use --bus to choose one)"));
          return;
        }
    }
  else
    type = bus == HERALD_BUS_SYSTEM ? G_BUS_TYPE_SYSTEM : G_BUS_TYPE_SESSION;

  self->dbus = herald_dbus_new (self->hub);
  if (bus != HERALD_BUS_AUTO)
    g_signal_connect (self->dbus, "name-lost", G_CALLBACK (on_name_lost), self);
  else
    g_signal_connect (self->dbus, "name-lost", G_CALLBACK (on_optional_bus_lost), self);
  herald_dbus_own_name (self->dbus, type, replace);
}

int
herald_daemon_run (HeraldDaemon *self)
{
  notify_systemd ("READY=1");
  g_main_loop_run (self->loop);
  for (guint i = 0; i < G_N_ELEMENTS (self->signal_ids); i++)
    g_clear_handle_id (&self->signal_ids[i], g_source_remove);
  return self->exit_status;
}
