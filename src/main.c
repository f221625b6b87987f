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

#include "herald-daemon.h"

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
    { NULL }
  };

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
  g_option_context_set_translation_domain (context, GETTEXT_PACKAGE);
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
  if (opt_verbose)
    g_log_set_debug_enabled (TRUE);
  if (!parse_bus (opt_bus, &bus))
    {
      g_printerr ("heraldd: %s\n", _ ("--bus must be session, system or none"));
      return 1;
    }

  config = herald_config_new ();
  if (!herald_config_load (config, opt_config, &error)
      || (opt_listen
          && !herald_config_set_listen_override (config, (const char *const *)opt_listen, &error))
      || (opt_workers >= 0 && !herald_config_set_workers_override (config, opt_workers, &error))
      || (opt_workers < -1 && !herald_config_set_workers_override (config, opt_workers, &error))
      || !herald_config_validate (config, &error))
    {
      g_printerr ("heraldd: %s\n", error->message);
      return 1;
    }

  daemon = herald_daemon_new (config);
  if (!herald_daemon_start (daemon, &error))
    {
      g_printerr ("heraldd: %s\n", error->message);
      return 1;
    }
  herald_daemon_connect_bus (daemon, bus, opt_replace);
  status = herald_daemon_run (daemon);
  g_object_run_dispose (G_OBJECT (daemon));
  return status;
}
