/* main.c: heraldd, the Herald push server.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <fcntl.h>
#include <locale.h>
#include <malloc.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>
#include <glib/gi18n.h>

#include "herald-config-print.h"
#include "herald-daemon.h"
#include "herald-token-gen.h"

/* --check-config: every problem (of the values, of the command line, of the
 * whole configuration), then the exit status */
static int
check_config (HeraldConfig *config, const char *path, char **listen, int workers)
{
  g_autoptr (GPtrArray) problems = g_ptr_array_new_with_free_func ((GDestroyNotify)g_error_free);
  GError *error = NULL;
  const char *loaded;

  herald_config_set_strict (config, TRUE);
  if (!herald_config_load (config, path, &error))
    g_ptr_array_add (problems, g_steal_pointer (&error));
  if (listen != NULL
      && !herald_config_set_listen_override (config, (const char *const *)listen, &error))
    g_ptr_array_add (problems, g_steal_pointer (&error));
  if (workers != -1 && !herald_config_set_workers_override (config, workers, &error))
    g_ptr_array_add (problems, g_steal_pointer (&error));
  if (!herald_config_validate (config, &error))
    g_ptr_array_add (problems, g_steal_pointer (&error));
  for (guint i = 0; i < problems->len; i++)
    {
      g_auto (GStrv) lines = g_strsplit (((GError *)problems->pdata[i])->message, "\n", -1);

      for (guint j = 0; lines[j] != NULL; j++)
        g_printerr ("heraldd: %s\n", lines[j]);
    }
  if (problems->len > 0)
    return 1;
  loaded = herald_config_get_path (config);
  g_print (_ ("%s: configuration is valid\n"), loaded != NULL ? loaded : _ ("(defaults)"));
  return 0;
}

static gboolean
parse_bus (const char *text, HeraldBusChoice *out)
{
  if (text == NULL)
    *out = HERALD_BUS_AUTO;
  else if (g_str_equal (text, "session"))
    *out = HERALD_BUS_SESSION;
  else if (g_str_equal (text, "system"))
    *out = HERALD_BUS_SYSTEM;
  else if (g_str_equal (text, "none"))
    *out = HERALD_BUS_NONE;
  else
    return FALSE;
  return TRUE;
}

/* A log nobody reads (a full pipe, a stalled log collector) must cost log
 * lines, not deliveries: GLib's writer blocks on a full stdout or stderr pipe,
 * and the workers log. Pipes and sockets become non-blocking, so what does not
 * fit is dropped; terminals and files are left alone. */
static void
logs_never_block (void)
{
  for (int fd = STDOUT_FILENO; fd <= STDERR_FILENO; fd++)
    {
      struct stat st;
      int flags;

      if (fstat (fd, &st) != 0 || !(S_ISFIFO (st.st_mode) || S_ISSOCK (st.st_mode)))
        continue;
      flags = fcntl (fd, F_GETFL);
      if (flags >= 0)
        fcntl (fd, F_SETFL, flags | O_NONBLOCK);
    }
}

int
main (int argc, char **argv)
{
  g_autofree char *opt_config = NULL;
  g_auto (GStrv) opt_listen = NULL;
  g_autofree char *opt_bus = NULL;
  int opt_workers = -1;
  gboolean opt_verbose = FALSE, opt_version = FALSE, opt_replace = FALSE;
  gboolean opt_check = FALSE, opt_print = FALSE;
  g_autofree char *opt_gen_token = NULL;
  g_autofree char *opt_key = NULL;
  g_auto (GStrv) opt_channels = NULL;
  gint64 opt_ttl = 3600;
  const GOptionEntry entries[] = {
    { "config", 'c', 0, G_OPTION_ARG_FILENAME, &opt_config, N_ ("Configuration file"),
      N_ ("FILE") },
    { "listen", 'l', 0, G_OPTION_ARG_STRING_ARRAY, &opt_listen,
      N_ ("Listen on HOST:PORT (repeatable; https://HOST:PORT for TLS; port 0 picks a free port)"),
      N_ ("HOST:PORT") },
    { "bus", 0, 0, G_OPTION_ARG_STRING, &opt_bus, N_ ("D-Bus to use: session, system or none"),
      N_ ("BUS") },
    { "workers", 'w', 0, G_OPTION_ARG_INT, &opt_workers, N_ ("Worker threads (0 = one per core)"),
      N_ ("N") },
    { "verbose", 'v', 0, G_OPTION_ARG_NONE, &opt_verbose, N_ ("Log debug messages"), NULL },
    { "version", 0, 0, G_OPTION_ARG_NONE, &opt_version, N_ ("Print the version and exit"), NULL },
    { "replace", 'r', 0, G_OPTION_ARG_NONE, &opt_replace,
      N_ ("Replace a running instance on the bus"), NULL },
    { "check-config", 0, 0, G_OPTION_ARG_NONE, &opt_check,
      N_ ("Check the configuration, name every problem and exit (0 = valid)"), NULL },
    { "print-config", 0, 0, G_OPTION_ARG_NONE, &opt_print,
      N_ ("Print the effective configuration as a file --config accepts, and exit"), NULL },
    { NULL }
  };
  const GOptionEntry token_entries[] = {
    { "gen-token", 0, 0, G_OPTION_ARG_STRING, &opt_gen_token,
      N_ ("Print a client token for user SUB signed with the configured key, and exit"),
      N_ ("SUB") },
    { "ttl", 0, 0, G_OPTION_ARG_INT64, &opt_ttl,
      N_ ("Seconds the token is valid (default 3600; 0 = no expiry)"), N_ ("S") },
    { "channels", 0, 0, G_OPTION_ARG_STRING_ARRAY, &opt_channels,
      N_ ("Channel (or prefix ending in *) the token allows; repeatable or comma-separated"),
      N_ ("CHANNEL") },
    { "key", 0, 0, G_OPTION_ARG_FILENAME, &opt_key,
      N_ ("PEM private key for RS256/ES256/EdDSA tokens (HS256 uses the configured secret)"),
      N_ ("FILE") },
    { NULL }
  };
  g_autofree char *description = NULL;
  GOptionGroup *token_group;

  g_autoptr (GOptionContext) context = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (HeraldConfig) config = NULL;
  g_autoptr (HeraldDaemon) daemon = NULL;
  HeraldBusChoice bus;
  int status;

  /* Worker threads allocate from their own malloc arenas; by default glibc
   * shrinks such an arena whenever its top gets free and grows it again on
   * the next request (mprotect and page faults on every publish under
   * load). Keep a few MiB: bounded, and gone from the hot path. */
  mallopt (M_TRIM_THRESHOLD, 8 * 1024 * 1024);
  mallopt (M_TOP_PAD, 1024 * 1024);
  setlocale (LC_ALL, "");
  /* HERALD_LOCALEDIR is for tests: they point it at the build's compiled
   * catalogs (build/po) so translations work without installing. */
  bindtextdomain (GETTEXT_PACKAGE, g_getenv ("HERALD_LOCALEDIR") != NULL
                                       ? g_getenv ("HERALD_LOCALEDIR")
                                       : LOCALEDIR);
  bind_textdomain_codeset (GETTEXT_PACKAGE, "UTF-8");
  textdomain (GETTEXT_PACKAGE);
  /* Writes to vanished peers must fail with EPIPE, not kill the daemon. */
  signal (SIGPIPE, SIG_IGN);
  logs_never_block ();

  context = g_option_context_new (NULL);
  g_option_context_set_summary (
      context, _ ("Herald: a real-time push server (WebSocket and Server-Sent Events)"));
  g_option_context_add_main_entries (context, entries, GETTEXT_PACKAGE);
  token_group = g_option_group_new ("token", _ ("Token options:"), _ ("Show token options"), NULL,
                                    NULL);
  g_option_group_add_entries (token_group, token_entries);
  g_option_group_set_translation_domain (token_group, GETTEXT_PACKAGE);
  g_option_context_add_group (context, token_group);
  g_option_context_set_translation_domain (context, GETTEXT_PACKAGE);
  description = g_strdup_printf (
      _ ("Configuration is read from FILE, by default %s (a missing default file means "
         "defaults). The environment overrides the file and the command line overrides both:\n"
         "  HERALD_JWT_SECRET  HS256 secret for client tokens ([auth] jwt-secret)\n"
         "  HERALD_API_KEY     key of the HTTP API ([api] key)\n"
         "  REDIS_URL          Redis for several nodes ([redis] url)\n"
         "  G_MESSAGES_DEBUG   debug log domains (--verbose sets \"Herald\")\n"
         "\n"
         "Exit status: 0 after a clean shutdown, 1 on any error (bad configuration, address "
         "in use, D-Bus name not available or lost).\n"
         "\n"
         "Documentation: heraldd(8), herald.conf(5), and docs/configuration.md in the "
         "Herald sources"),
      HERALD_DEFAULT_CONFIG);
  g_option_context_set_description (context, description);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      g_printerr ("heraldd: %s\n", error->message);
      return 1;
    }
  if (opt_version)
    {
      g_print ("heraldd %s\n", PACKAGE_VERSION);
      return 0;
    }
  /* Herald's own debug messages only: GLib's and GIO's (GLib-GIO's D-Bus
   * chatter) stay off unless the user asks for them with G_MESSAGES_DEBUG,
   * which is then respected as it is. */
  if (opt_verbose && g_getenv ("G_MESSAGES_DEBUG") == NULL)
    g_setenv ("G_MESSAGES_DEBUG", G_LOG_DOMAIN, TRUE);
  if (!parse_bus (opt_bus, &bus))
    {
      g_printerr ("heraldd: %s\n", _ ("--bus must be session, system or none"));
      return 1;
    }

  if (opt_ttl < 0 || opt_ttl > G_MAXUINT32)
    {
      g_printerr ("heraldd: %s\n", _ ("--ttl must be between 0 and 4294967295 seconds"));
      return 1;
    }
  if ((opt_check ? 1 : 0) + (opt_print ? 1 : 0) + (opt_gen_token != NULL ? 1 : 0) > 1)
    {
      g_printerr ("heraldd: %s\n",
                  _ ("--check-config, --print-config and --gen-token exclude each other"));
      return 1;
    }

  config = herald_config_new ();
  if (opt_check)
    return check_config (config, opt_config, opt_listen, opt_workers);
  if (!herald_config_load (config, opt_config, &error)
      || (opt_listen
          && !herald_config_set_listen_override (config, (const char *const *)opt_listen, &error))
      || (opt_workers >= 0 && !herald_config_set_workers_override (config, opt_workers, &error))
      || (opt_workers < -1 && !herald_config_set_workers_override (config, opt_workers, &error))
      || !herald_config_validate (config, &error))
    {
      g_auto (GStrv) lines = g_strsplit (error->message, "\n", -1);

      for (guint i = 0; lines[i] != NULL; i++)
        g_printerr ("heraldd: %s\n", lines[i]);
      return 1;
    }
  if (opt_print)
    {
      g_autofree char *text = herald_config_print (config);

      g_print ("%s", text);
      return 0;
    }
  if (opt_gen_token != NULL)
    {
      g_autoptr (GStrvBuilder) builder = g_strv_builder_new ();
      g_auto (GStrv) channels = NULL;
      g_autofree char *token = NULL;

      for (guint i = 0; opt_channels != NULL && opt_channels[i] != NULL; i++)
        {
          g_auto (GStrv) parts = g_strsplit (opt_channels[i], ",", -1);

          for (guint j = 0; parts[j] != NULL; j++)
            if (*g_strstrip (parts[j]) != '\0')
              g_strv_builder_add (builder, parts[j]);
        }
      if (opt_channels != NULL)
        channels = g_strv_builder_end (builder);
      token = herald_token_generate (config, opt_gen_token, (guint)opt_ttl,
                                     (const char *const *)channels, opt_key, &error);
      if (token == NULL)
        {
          g_printerr ("heraldd: %s\n", error->message);
          return 1;
        }
      g_print ("%s\n", token);
      return 0;
    }

  daemon = herald_daemon_new (config);
  if (!herald_daemon_start (daemon, &error))
    {
      g_printerr ("heraldd: %s\n", error->message);
      return 1;
    }
  herald_config_log_warnings (config);
  herald_daemon_connect_bus (daemon, bus, opt_replace);
  status = herald_daemon_run (daemon);
  g_object_run_dispose (G_OBJECT (daemon));
  return status;
}
