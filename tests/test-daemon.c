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
} Daemon;

static Daemon *
daemon_start (const char *extra_env)
{
  Daemon *d = g_new0 (Daemon, 1);
  const char *argv[] = { heraldd_path (), "--listen", "127.0.0.1:0", "--bus", "none", "--workers", "2", NULL };
  g_auto (GStrv) envp = g_get_environ ();
  g_autoptr (GError) error = NULL;
  gint64 deadline = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;

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

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/daemon/version", test_version);
  g_test_add_func ("/daemon/bad-config", test_bad_config);
  g_test_add_func ("/daemon/bad-flags", test_bad_flags);
  g_test_add_func ("/daemon/sigterm-graceful", test_sigterm_graceful);
  g_test_add_func ("/daemon/publish-via-api", test_publish_via_api_process);
  return g_test_run ();
}
