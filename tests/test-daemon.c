/* test-daemon.c: heraldd as a process — command line, config errors,
 * the "listening on" line, SIGTERM (1001 to clients, exit 0), SIGHUP.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <glib/gstdio.h>

#include "herald-test-server.h"

static const char *
heraldd_path (void)
{
  const char *path = g_getenv ("HERALDD");

  g_assert_nonnull (path);
  return path;
}

/* Runs heraldd to completion with @args; returns its exit status and stderr. */
/* Runs heraldd with @args; its stdout goes to @out (never to ours: that is TAP). */
static int
run_sync_out (const char *const *args, char **out, char **err)
{
  g_autoptr (GPtrArray) argv = g_ptr_array_new ();
  g_autoptr (GError) error = NULL;
  int status = 0;

  g_ptr_array_add (argv, (gpointer) heraldd_path ());
  for (guint i = 0; args[i]; i++)
    g_ptr_array_add (argv, (gpointer) args[i]);
  g_ptr_array_add (argv, NULL);
  g_spawn_sync (NULL, (char **)argv->pdata, NULL, G_SPAWN_DEFAULT, NULL, NULL, out, err, &status,
                &error);
  g_assert_no_error (error);
  return WIFEXITED (status) ? WEXITSTATUS (status) : -1;
}

static int
run_sync (const char *const *args, char **err)
{
  g_autofree char *out = NULL;

  return run_sync_out (args, &out, err);
}

static void
test_version (void)
{
  g_autofree char *err = NULL;
  g_autofree char *out = NULL;
  const char *args[] = { "--version", NULL };

  g_assert_cmpint (run_sync_out (args, &out, &err), ==, 0);
  g_assert_true (g_str_has_prefix (out, "heraldd "));
}

static void
test_bad_config (void)
{
  g_autofree char *dir = g_dir_make_tmp ("herald-XXXXXX", NULL);
  g_autofree char *path = g_build_filename (dir, "herald.conf", NULL);
  g_autofree char *err = NULL;
  const char *args[] = { "--config", path, "--bus", "none", NULL };

  g_file_set_contents (path, "[limits]\nheartbeat-interval=abc\n", -1, NULL);
  g_assert_cmpint (run_sync (args, &err), ==, 1);
  g_assert_nonnull (strstr (err, path));
  g_assert_nonnull (strstr (err, "[limits]"));
  g_assert_nonnull (strstr (err, "heartbeat-interval"));
  g_unlink (path);
  g_rmdir (dir);
}

static void
test_bad_flags (void)
{
  g_autofree char *err = NULL;
  const char *missing[] = { "--config", "/nonexistent/herald.conf", "--bus", "none", NULL };
  const char *bus[] = { "--bus", "tram", NULL };
  const char *listen[] = { "--listen", "nowhere", "--bus", "none", NULL };
  const char *exposed[] = { "--listen", "0.0.0.0:0", "--bus", "none", NULL };

  g_assert_cmpint (run_sync (missing, &err), ==, 1);
  g_assert_nonnull (strstr (err, "/nonexistent/herald.conf"));
  g_clear_pointer (&err, g_free);
  g_assert_cmpint (run_sync (bus, &err), ==, 1);
  g_clear_pointer (&err, g_free);
  g_assert_cmpint (run_sync (listen, &err), ==, 1);
  g_assert_nonnull (strstr (err, "--listen"));
  g_clear_pointer (&err, g_free);
  /* no token key: never exposed beyond loopback by accident */
  g_assert_cmpint (run_sync (exposed, &err), ==, 1);
}

typedef struct
{
  GPid pid;
  int err_fd;
  GString *stderr_text;
  guint16 port;
  char *dir;
  char *config_path;
} Daemon;

/* heraldd with @config (key file text; NULL: a one-second drain window). */
static Daemon *
daemon_start_config (const char *extra_env, const char *config)
{
  Daemon *d = g_new0 (Daemon, 1);
  const char *argv[] = { heraldd_path (), "--config", NULL,        "--listen", "127.0.0.1:0",
                         "--bus",         "none",     "--workers", "2",        NULL };
  g_auto (GStrv) envp = g_get_environ ();
  g_autoptr (GError) error = NULL;
  gint64 deadline = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;

  d->dir = g_dir_make_tmp ("herald-XXXXXX", NULL);
  d->config_path = g_build_filename (d->dir, "herald.conf", NULL);
  g_assert_true (g_file_set_contents (d->config_path,
                                      config ? config : "[server]\ndrain-seconds=1\n", -1, NULL));
  argv[2] = d->config_path;
  if (extra_env)
    envp = g_environ_setenv (envp, "HERALD_API_KEY", extra_env, TRUE);
  g_spawn_async_with_pipes (NULL, (char **) argv, envp, G_SPAWN_DO_NOT_REAP_CHILD, NULL, NULL, &d->pid, NULL,
                            NULL, &d->err_fd, &error);
  g_assert_no_error (error);
  d->stderr_text = g_string_new (NULL);
  while (d->port == 0 && g_get_monotonic_time () < deadline)
    {
      char buf[1024];
      const char *line;
      gssize n = read (d->err_fd, buf, sizeof buf);
      if (n <= 0)
        break;
      g_string_append_len (d->stderr_text, buf, n);
      line = strstr (d->stderr_text->str, "listening on http://127.0.0.1:");
      if (line && strchr (line, '\n'))
        d->port = (guint16) g_ascii_strtoull (line + strlen ("listening on http://127.0.0.1:"), NULL, 10);
    }
  g_assert_cmpuint (d->port, >, 0);
  return d;
}

static Daemon *
daemon_start (const char *extra_env)
{
  return daemon_start_config (extra_env, NULL);
}

static int
daemon_wait (Daemon *d)
{
  int status = 0;
  gint64 deadline = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;

  while (waitpid (d->pid, &status, WNOHANG) == 0)
    {
      g_assert_cmpint (g_get_monotonic_time (), <, deadline);
      g_usleep (20000);
    }
  close (d->err_fd);
  g_string_free (d->stderr_text, TRUE);
  g_spawn_close_pid (d->pid);
  g_unlink (d->config_path);
  g_rmdir (d->dir);
  g_free (d->config_path);
  g_free (d->dir);
  g_free (d);
  return WIFEXITED (status) ? WEXITSTATUS (status) : -1;
}

static HeraldTestServer *
fake_server (Daemon *d)
{
  HeraldTestServer *server = g_new0 (HeraldTestServer, 1);
  server->host = g_strdup ("127.0.0.1");
  server->port = d->port;
  return server;
}

static void
free_fake_server (HeraldTestServer *server)
{
  g_free (server->host);
  g_free (server);
}

static void
test_sigterm_graceful (void)
{
  Daemon *d = daemon_start (NULL);
  HeraldTestServer *server = fake_server (d);
  HeraldTestClient *a = herald_test_ws_open (server, "/ws", NULL);
  HeraldTestClient *b = herald_test_ws_open (server, "/ws", NULL);
  HeraldTestClient *sse = herald_test_client_connect (server);
  const char *req = "GET /events?channel=x HTTP/1.1\r\nHost: x\r\n\r\n";

  herald_test_client_send_raw (sse, req, strlen (req));
  g_assert_cmpuint (herald_test_client_read_head (sse, NULL), ==, 200);
  kill (d->pid, SIGTERM);
  g_assert_cmpuint (herald_test_ws_wait_close (a), ==, 1001);
  g_assert_cmpuint (herald_test_ws_wait_close (b), ==, 1001);
  /* the SSE stream ends */
  for (char *event; (event = herald_test_sse_read_event (sse)) != NULL;)
    g_free (event);
  g_assert_true (sse->closed);
  g_assert_cmpint (daemon_wait (d), ==, 0);
  herald_test_client_free (a);
  herald_test_client_free (b);
  herald_test_client_free (sse);
  free_fake_server (server);
}

static void
test_publish_via_api_process (void)
{
  Daemon *d = daemon_start ("k");
  HeraldTestServer *server = fake_server (d);
  HeraldTestClient *ws = herald_test_ws_open (server, "/ws", NULL);
  g_autofree char *answer = NULL;
  g_autoptr (JsonObject) sub = NULL;
  g_autoptr (JsonObject) msg = NULL;
  guint status;

  herald_test_ws_send_text (ws, "{\"type\":\"subscribe\",\"channel\":\"news\"}");
  sub = herald_test_ws_read_json (ws);
  g_assert_cmpstr (herald_test_json_get_string (sub, "type"), ==, "subscribed");
  answer = herald_test_http (server, "POST", "/api/publish", "Authorization: Bearer k\r\n",
                             "{\"channel\":\"news\",\"data\":{\"hello\":1}}", &status);
  g_assert_cmpuint (status, ==, 200);
  msg = herald_test_ws_read_json (ws);
  g_assert_cmpstr (herald_test_json_get_string (msg, "type"), ==, "message");
  kill (d->pid, SIGTERM);
  g_assert_cmpint (daemon_wait (d), ==, 0);
  herald_test_client_free (ws);
  free_fake_server (server);
}

/* SIGTERM with drain-seconds=3: every client gets the reconnect hint and
 * 1001 at moments spread over the window; meanwhile the listener answers,
 * /healthz says draining (503) and a new upgrade gets 503 + Retry-After. */
#define DRAIN_CLIENTS 50

static void
test_sigterm_drain_spread (void)
{
  Daemon *d = daemon_start_config (NULL, "[server]\ndrain-seconds=3\n");
  HeraldTestServer *server = fake_server (d);
  HeraldTestClient *clients[DRAIN_CLIENTS];
  gint64 closed_at[DRAIN_CLIENTS] = { 0 };
  HeraldTestClient *sse = herald_test_client_connect (server);
  HeraldTestClient *late = NULL;
  const char *req = "GET /events?channel=x HTTP/1.1\r\nHost: x\r\n\r\n";
  g_autofree char *health = NULL;
  g_autofree char *head = NULL;
  gint64 start, first = G_MAXINT64, last = 0;
  guint remaining = DRAIN_CLIENTS, status;
  gboolean saw_reconnect = FALSE;

  for (guint i = 0; i < DRAIN_CLIENTS; i++)
    clients[i] = herald_test_ws_open (server, "/ws", NULL);
  herald_test_client_send_raw (sse, req, strlen (req));
  g_assert_cmpuint (herald_test_client_read_head (sse, NULL), ==, 200);
  g_free (herald_test_sse_read_event (sse)); /* retry: */
  g_free (herald_test_sse_read_event (sse)); /* connected */

  start = g_get_monotonic_time ();
  kill (d->pid, SIGTERM);
  /* The drain began when /healthz says so; the listener is still open. */
  health = herald_test_http (server, "GET", "/healthz", NULL, NULL, &status);
  for (guint tries = 0; status != 503 && tries < 100; tries++)
    {
      g_usleep (10000);
      g_free (health);
      health = herald_test_http (server, "GET", "/healthz", NULL, NULL, &status);
    }
  g_assert_cmpuint (status, ==, 503);
  g_assert_nonnull (strstr (health, "\"status\":\"draining\""));
  late = herald_test_client_connect (server);
  g_assert_cmpuint (herald_test_ws_handshake (late, "/ws", NULL, &head), ==, 503);
  g_assert_nonnull (g_strstr_len (head, -1, "Retry-After: "));

  /* Poll every client at once, so each close is timed when it comes. */
  while (remaining > 0)
    {
      GPollFD fds[DRAIN_CLIENTS];
      guint map[DRAIN_CLIENTS], n = 0;

      g_assert_cmpint (g_get_monotonic_time () - start, <, 8 * G_USEC_PER_SEC);
      for (guint i = 0; i < DRAIN_CLIENTS; i++)
        if (closed_at[i] == 0)
          {
            fds[n].fd = g_socket_get_fd (clients[i]->socket);
            fds[n].events = G_IO_IN;
            fds[n].revents = 0;
            map[n++] = i;
          }
      if (g_poll (fds, n, 200) <= 0)
        continue;
      for (guint k = 0; k < n; k++)
        if (fds[k].revents != 0)
          {
            guint i = map[k];
            g_autoptr (JsonObject) hint = herald_test_ws_read_json (clients[i]);
            gint64 after;

            closed_at[i] = g_get_monotonic_time ();
            g_assert_nonnull (hint);
            g_assert_cmpstr (herald_test_json_get_string (hint, "type"), ==, "reconnect");
            g_assert_true (json_object_has_member (hint, "after"));
            after = json_object_get_int_member (hint, "after");
            g_assert_cmpint (after, >=, 0);
            g_assert_cmpint (after, <, 3000);
            g_assert_cmpuint (herald_test_ws_wait_close (clients[i]), ==, 1001);
            first = MIN (first, closed_at[i]);
            last = MAX (last, closed_at[i]);
            remaining--;
          }
    }
  /* Spread, not a storm: not all within 300 ms, over more than a second,
   * and all within the window (plus scheduling slack). */
  g_assert_cmpint (last - first, >, G_USEC_PER_SEC);
  g_assert_cmpint (last - start, <, 4 * G_USEC_PER_SEC);

  /* The SSE stream got its hint with the same delay as retry:, then ended. */
  for (char *event; (event = herald_test_sse_read_event (sse)) != NULL; g_free (event))
    if (strstr (event, "event: reconnect") != NULL)
      {
        const char *after = strstr (event, "\"after\":");
        const char *retry = strstr (event, "retry: ");
        g_assert_nonnull (after);
        g_assert_nonnull (retry);
        g_assert_nonnull (strstr (event, "data: {\"type\":\"reconnect\""));
        g_assert_cmpuint (g_ascii_strtoull (after + 8, NULL, 10), ==,
                          g_ascii_strtoull (retry + 7, NULL, 10));
        saw_reconnect = TRUE;
      }
  g_assert_true (saw_reconnect);
  g_assert_true (sse->closed);
  g_assert_cmpint (daemon_wait (d), ==, 0);
  for (guint i = 0; i < DRAIN_CLIENTS; i++)
    herald_test_client_free (clients[i]);
  herald_test_client_free (sse);
  herald_test_client_free (late);
  free_fake_server (server);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/daemon/version", test_version);
  g_test_add_func ("/daemon/bad-config", test_bad_config);
  g_test_add_func ("/daemon/bad-flags", test_bad_flags);
  g_test_add_func ("/daemon/sigterm-graceful", test_sigterm_graceful);
  g_test_add_func ("/daemon/publish-via-api", test_publish_via_api_process);
  g_test_add_func ("/daemon/sigterm-drain-spread", test_sigterm_drain_spread);
  return g_test_run ();
}
