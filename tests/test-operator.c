/* test-operator.c: heraldd as an operator meets it (issue 19) — one
 * instance per port, honest exit statuses on D-Bus, --help, --verbose,
 * warnings that never precede a fatal error, --check-config,
 * --print-config and --gen-token. Every heraldd here is a real process on
 * loopback; D-Bus tests use a private bus (GTestDBus).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <gio/gio.h>
#include <glib-unix.h>
#include <glib/gstdio.h>

#include "herald-jwt.h"
#include "herald-test-timeout.h"

#define TIMEOUT_MS 10000

typedef struct
{
  GPid pid;
  int out_fd; /* -1 once at EOF */
  int err_fd;
  GString *out;
  GString *err;
  gboolean exited;
  int status; /* exit status, -1 when killed by a signal */
} Proc;

static char *tmpdir;
static char *empty_config; /* keeps a system /etc/herald/herald.conf out of the tests */

static char *
write_config (const char *name, const char *text)
{
  char *path = g_build_filename (tmpdir, name, NULL);

  g_assert_true (g_file_set_contents (path, text, -1, NULL));
  return path;
}

/* heraldd with @args, no Herald variable from our environment but @env
 * ("NAME=value" entries, may be NULL) */
static Proc *
proc_spawn (const char *const *args, const char *const *env)
{
  g_autoptr (GPtrArray) argv = g_ptr_array_new ();
  g_auto (GStrv) envp = g_get_environ ();
  g_autoptr (GError) error = NULL;
  const char *unset[] = { "HERALD_API_KEY", "HERALD_JWT_SECRET", "REDIS_URL", "G_MESSAGES_DEBUG" };
  Proc *p = g_new0 (Proc, 1);

  g_ptr_array_add (argv, (gpointer)g_getenv ("HERALDD"));
  for (guint i = 0; args[i] != NULL; i++)
    g_ptr_array_add (argv, (gpointer)args[i]);
  g_ptr_array_add (argv, NULL);
  for (guint i = 0; i < G_N_ELEMENTS (unset); i++)
    envp = g_environ_unsetenv (envp, unset[i]);
  for (guint i = 0; env != NULL && env[i] != NULL; i++)
    {
      g_auto (GStrv) kv = g_strsplit (env[i], "=", 2);

      envp = g_environ_setenv (envp, kv[0], kv[1], TRUE);
    }
  g_spawn_async_with_pipes (NULL, (char **)argv->pdata, envp, G_SPAWN_DO_NOT_REAP_CHILD, NULL, NULL,
                            &p->pid, NULL, &p->out_fd, &p->err_fd, &error);
  g_assert_no_error (error);
  g_unix_set_fd_nonblocking (p->out_fd, TRUE, NULL);
  g_unix_set_fd_nonblocking (p->err_fd, TRUE, NULL);
  p->out = g_string_new (NULL);
  p->err = g_string_new (NULL);
  return p;
}

static void
drain_fd (int *fd, GString *into)
{
  char buf[4096];
  gssize n;

  while (*fd >= 0 && (n = read (*fd, buf, sizeof buf)) != 0)
    {
      if (n < 0)
        return; /* EAGAIN: nothing more for now */
      g_string_append_len (into, buf, n);
    }
  if (*fd >= 0)
    {
      close (*fd);
      *fd = -1;
    }
}

/* Reads what the process wrote for up to 50 ms; notes its exit */
static void
proc_pump (Proc *p)
{
  struct pollfd fds[2] = { { p->out_fd, POLLIN, 0 }, { p->err_fd, POLLIN, 0 } };
  int status = 0;

  poll (fds, 2, 50);
  drain_fd (&p->out_fd, p->out);
  drain_fd (&p->err_fd, p->err);
  if (!p->exited && waitpid (p->pid, &status, WNOHANG) == p->pid)
    {
      p->exited = TRUE;
      p->status = WIFEXITED (status) ? WEXITSTATUS (status) : -1;
    }
}

/* TRUE once stderr holds @needle; FALSE when the process exits without it */
static gboolean
proc_wait_stderr (Proc *p, const char *needle)
{
  gint64 deadline = g_get_monotonic_time () + TIMEOUT_MS * 1000 * herald_test_timeout_scale ();

  while (strstr (p->err->str, needle) == NULL)
    {
      if (p->exited && p->err_fd < 0)
        return FALSE;
      g_assert_cmpint (g_get_monotonic_time (), <, deadline);
      proc_pump (p);
    }
  return TRUE;
}

static int
proc_wait (Proc *p)
{
  gint64 deadline = g_get_monotonic_time () + TIMEOUT_MS * 1000 * herald_test_timeout_scale ();

  while (!p->exited || p->out_fd >= 0 || p->err_fd >= 0)
    {
      if (g_get_monotonic_time () >= deadline)
        g_error ("heraldd did not exit in time; stderr:\n%s", p->err->str);
      proc_pump (p);
    }
  return p->status;
}

static void
proc_free (Proc *p)
{
  if (!p->exited)
    {
      kill (p->pid, SIGKILL);
      proc_wait (p);
    }
  g_spawn_close_pid (p->pid);
  g_string_free (p->out, TRUE);
  g_string_free (p->err, TRUE);
  g_free (p);
}

/* Runs heraldd to its end */
static Proc *
proc_run (const char *const *args, const char *const *env)
{
  Proc *p = proc_spawn (args, env);

  proc_wait (p);
  return p;
}

/* The port of the first "listening on http://127.0.0.1:PORT" line */
static guint16
proc_wait_port (Proc *p)
{
  const char *prefix = "listening on http://127.0.0.1:";
  const char *line;

  if (!proc_wait_stderr (p, prefix) || !proc_wait_stderr (p, "\n"))
    g_error ("heraldd exited before listening:\n%s", p->err->str);
  line = strstr (p->err->str, prefix);
  while (strchr (line, '\n') == NULL)
    proc_pump (p);
  return (guint16)g_ascii_strtoull (line + strlen (prefix), NULL, 10);
}

static int
proc_stop (Proc *p)
{
  kill (p->pid, SIGTERM);
  return proc_wait (p);
}

/* ---- one instance per port ---- */

static void
test_one_instance_per_port (void)
{
  const char *first_args[]
      = { "--config", empty_config, "--listen", "127.0.0.1:0", "--bus", "none", NULL };
  Proc *first = proc_spawn (first_args, NULL);
  guint16 port = proc_wait_port (first);
  g_autofree char *address = g_strdup_printf ("127.0.0.1:%u", port);
  g_autofree char *holder = g_strdup_printf ("(pid %d)", (int)first->pid);
  const char *second_args[]
      = { "--config", empty_config, "--listen", address, "--bus", "none", "--workers", "2", NULL };
  Proc *second = proc_run (second_args, NULL);
  g_autoptr (GSocket) foreign = NULL;
  g_autoptr (GSocketAddress) bound = NULL;
  g_autoptr (GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr (GSocketAddress) any = g_inet_socket_address_new (loopback, 0);
  g_autoptr (GError) error = NULL;
  g_autofree char *foreign_address = NULL;

  /* The second one refuses, says who holds the address, and never listens */
  g_test_message ("second heraldd: %s", second->err->str);
  g_assert_cmpint (second->status, ==, 1);
  g_assert_nonnull (strstr (second->err->str, address));
  g_assert_nonnull (strstr (second->err->str, holder));
  g_assert_null (strstr (second->err->str, "listening on"));
  proc_free (second);

  /* The first one still serves alone, and stops cleanly */
  g_assert_cmpint (proc_stop (first), ==, 0);
  proc_free (first);

  /* An address some other program listens on: refused too */
  foreign
      = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, &error);
  g_assert_no_error (error);
  g_assert_true (g_socket_bind (foreign, any, TRUE, &error));
  g_assert_true (g_socket_listen (foreign, &error));
  bound = g_socket_get_local_address (foreign, &error);
  g_assert_no_error (error);
  foreign_address = g_strdup_printf (
      "127.0.0.1:%u", g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound)));
  {
    const char *args[]
        = { "--config", empty_config, "--listen", foreign_address, "--bus", "none", NULL };
    Proc *third = proc_run (args, NULL);

    g_assert_cmpint (third->status, ==, 1);
    g_assert_nonnull (strstr (third->err->str, foreign_address));
    g_assert_nonnull (strstr (third->err->str, "in use"));
    /* a daemon that fails to start prints its error, not the warnings of one
     * that runs (no token key configured) */
    g_assert_null (strstr (third->err->str, "No token key"));
    proc_free (third);
  }
}

/* ---- D-Bus ---- */

static gboolean
name_has_owner (GDBusConnection *bus)
{
  g_autoptr (GVariant) reply = g_dbus_connection_call_sync (
      bus, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "NameHasOwner",
      g_variant_new ("(s)", "io.github.herald.Herald1"), G_VARIANT_TYPE ("(b)"),
      G_DBUS_CALL_FLAGS_NONE, 5000, NULL, NULL);
  gboolean owned = FALSE;

  if (reply != NULL)
    g_variant_get (reply, "(b)", &owned);
  return owned;
}

static void
wait_name_owned (GDBusConnection *bus, Proc *p)
{
  gint64 deadline = g_get_monotonic_time () + TIMEOUT_MS * 1000 * herald_test_timeout_scale ();

  while (!name_has_owner (bus))
    {
      if (p->exited || g_get_monotonic_time () >= deadline)
        g_error ("heraldd did not own its D-Bus name; stderr:\n%s", p->err->str);
      proc_pump (p);
    }
}

static void
test_dbus_exit_status (void)
{
  g_autoptr (GTestDBus) test_bus = g_test_dbus_new (G_TEST_DBUS_NONE);
  g_autoptr (GDBusConnection) bus = NULL;
  g_autoptr (GError) error = NULL;
  const char *args[] = { "--config", empty_config, "--listen",  "127.0.0.1:0",
                         "--bus",    "session",    "--verbose", NULL };
  const char *replace_args[] = { "--config", empty_config, "--listen",  "127.0.0.1:0",
                                 "--bus",    "session",    "--replace", NULL };
  Proc *first, *second, *replacer;
  guint acquired = 0;

  g_test_dbus_up (test_bus);
  bus = g_dbus_connection_new_for_address_sync (
      g_test_dbus_get_bus_address (test_bus),
      G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT
          | G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
      NULL, NULL, &error);
  g_assert_no_error (error);

  first = proc_spawn (args, NULL);
  proc_wait_port (first);
  wait_name_owned (bus, first);

  /* The name is taken: a second instance fails with status 1 */
  second = proc_run (args, NULL);
  g_test_message ("second heraldd: %s", second->err->str);
  g_assert_cmpint (second->status, ==, 1);
  g_assert_nonnull (strstr (second->err->str, "io.github.herald.Herald1"));
  proc_free (second);

  /* --replace takes it over: the replaced instance exits 0 */
  replacer = proc_spawn (replace_args, NULL);
  g_assert_cmpint (proc_wait (first), ==, 0);
  /* --verbose is Herald's debug only (no GLib-GIO chatter), "acquired" once */
  /* (GLib writes debug records to stdout) */
  g_assert_null (strstr (first->out->str, "GLib-GIO-DEBUG"));
  g_assert_null (strstr (first->err->str, "GLib-GIO-DEBUG"));
  g_assert_nonnull (strstr (first->out->str, "Herald-DEBUG"));
  for (const char *s = first->out->str; (s = strstr (s, "Acquired the D-Bus name")) != NULL; s++)
    acquired++;
  g_assert_cmpuint (acquired, ==, 1);
  proc_free (first);
  wait_name_owned (bus, replacer);

  /* Losing the name with the bus is a failure: status 1 */
  g_clear_object (&bus);
  g_test_dbus_down (test_bus);
  g_test_message ("replacer: %s", replacer->err->str);
  g_assert_cmpint (proc_wait (replacer), ==, 1);
  proc_free (replacer);
}

/* ---- --help, warnings ---- */

static void
test_help (void)
{
  const char *args[] = { "--help", NULL };
  Proc *p = proc_run (args, NULL);

  g_assert_cmpint (p->status, ==, 0);
  g_assert_nonnull (strstr (p->out->str, "HERALD_API_KEY"));
  g_assert_nonnull (strstr (p->out->str, "HERALD_JWT_SECRET"));
  g_assert_nonnull (strstr (p->out->str, "REDIS_URL"));
  g_assert_nonnull (strstr (p->out->str, HERALD_DEFAULT_CONFIG));
  g_assert_nonnull (strstr (p->out->str, "heraldd(8)"));
  g_assert_nonnull (strstr (p->out->str, "docs/"));
  g_assert_nonnull (strstr (p->out->str, "--check-config"));
  proc_free (p);
}

static void
test_no_warning_before_fatal (void)
{
  g_autofree char *bad = write_config ("bad.conf", "[limits]\nheartbeat-interval=abc\n");
  const char *args[] = { "--config", bad, "--bus", "none", NULL };
  Proc *p = proc_run (args, NULL);

  g_assert_cmpint (p->status, ==, 1);
  g_assert_nonnull (strstr (p->err->str, "heartbeat-interval"));
  /* the anonymous-only warning is for a daemon that starts, not one that fails */
  g_assert_null (strstr (p->err->str, "No token key"));
  proc_free (p);
}

static void
test_unknown_key_hint (void)
{
  g_autofree char *conf = write_config ("typo.conf", "[server]\nworkers=1\nlisten=127.0.0.1:0\n"
                                                     "compresion=false\n");
  g_autofree char *expected = g_strdup_printf ("%s:4: unknown key [server] compresion (did you "
                                               "mean “compression”?)",
                                               conf);
  const char *args[] = { "--config", conf, "--bus", "none", NULL };
  Proc *p = proc_spawn (args, NULL);

  proc_wait_port (p);
  g_assert_nonnull (strstr (p->err->str, expected));
  /* the warning about no token key comes once the daemon starts */
  g_assert_true (proc_wait_stderr (p, "No token key"));
  g_assert_cmpint (proc_stop (p), ==, 0);
  proc_free (p);
}

/* ---- --check-config, --print-config ---- */

static void
test_check_config (void)
{
  g_autofree char *good = write_config ("good.conf", "[limits]\nmax-connections=5\n");
  g_autofree char *bad = write_config ("bad2.conf", "[server]\nworkers=999\nlisen=x\n"
                                                    "[limits]\nheartbeat-interval=0\n"
                                                    "[frob]\na=1\n");
  const char *good_args[] = { "--check-config", "--config", good, NULL };
  const char *bad_args[] = { "--check-config", "--config", bad, NULL };
  Proc *p = proc_run (good_args, NULL);
  g_autofree char *where = NULL;

  g_assert_cmpint (p->status, ==, 0);
  g_assert_nonnull (strstr (p->out->str, good));
  g_assert_null (strstr (p->err->str, "listening"));
  proc_free (p);

  /* Every problem, each with file, group, key and reason */
  p = proc_run (bad_args, NULL);
  g_test_message ("%s", p->err->str);
  g_assert_cmpint (p->status, ==, 1);
  where = g_strdup_printf ("%s", bad);
  g_assert_nonnull (strstr (p->err->str, "[server] workers"));
  g_assert_nonnull (strstr (p->err->str, "999"));
  g_assert_nonnull (strstr (p->err->str, "[limits] heartbeat-interval"));
  g_assert_nonnull (
      strstr (p->err->str, ":3: unknown key [server] lisen (did you mean “listen”?)"));
  g_assert_nonnull (strstr (p->err->str, ":6: unknown group [frob]"));
  for (const char *const *line
       = (const char *const[]){ "workers", "heartbeat-interval", "lisen", "[frob]", NULL };
       *line != NULL; line++)
    {
      g_auto (GStrv) lines = g_strsplit (p->err->str, "\n", -1);
      gboolean found = FALSE;

      for (guint i = 0; lines[i] != NULL; i++)
        if (strstr (lines[i], *line) != NULL && strstr (lines[i], where) != NULL)
          found = TRUE;
      g_assert_true (found);
    }
  proc_free (p);

  /* A bad value does not hide the problems of the whole configuration, nor
   * of the command line */
  {
    g_autofree char *both = write_config ("both.conf", "[server]\nlisten=https://127.0.0.1:0\n"
                                                       "[history]\nsize=-1\n");
    const char *args[] = { "--check-config", "--config", both, "--workers", "9999", NULL };

    p = proc_run (args, NULL);
    g_test_message ("%s", p->err->str);
    g_assert_cmpint (p->status, ==, 1);
    g_assert_nonnull (strstr (p->err->str, ":4: [history] size"));
    g_assert_nonnull (strstr (p->err->str, "https:// addresses need [server] tls-certificate"));
    g_assert_nonnull (strstr (p->err->str, "--workers"));
    proc_free (p);
  }
}

/* [redis]: the selected list is printed back, passwords never */
static void
test_print_config_redis (void)
{
  g_autofree char *plain
      = write_config ("shards.conf", "[redis]\nshards=redis://127.0.0.1:1;redis://127.0.0.1:2\n"
                                     "password=hidden-pass\n");
  g_autofree char *secret
      = write_config ("shards-pw.conf", "[redis]\nshards=redis://:url-pass@127.0.0.1:1\n");
  const char *plain_args[] = { "--print-config", "--config", plain, NULL };
  const char *secret_args[] = { "--print-config", "--config", secret, NULL };
  Proc *p = proc_run (plain_args, NULL);
  Proc *q = proc_run (secret_args, NULL);
  g_autoptr (GKeyFile) printed = g_key_file_new ();
  g_auto (GStrv) shards = NULL;

  g_assert_cmpint (p->status, ==, 0);
  g_assert_true (g_key_file_load_from_data (printed, p->out->str, -1, G_KEY_FILE_NONE, NULL));
  shards = g_key_file_get_string_list (printed, "redis", "shards", NULL, NULL);
  g_assert_nonnull (shards);
  g_assert_cmpuint (g_strv_length (shards), ==, 2);
  g_assert_cmpstr (shards[1], ==, "redis://127.0.0.1:2");
  g_assert_null (strstr (p->out->str, "hidden-pass"));
  g_assert_nonnull (strstr (p->out->str, "# [redis] password: set (not printed)"));
  g_assert_cmpint (q->status, ==, 0);
  g_assert_null (strstr (q->out->str, "url-pass"));
  g_assert_nonnull (strstr (q->out->str, "# [redis] shards: set, with a password (not printed)"));
  proc_free (p);
  proc_free (q);
}

static void
test_print_config (void)
{
  g_autofree char *conf = write_config (
      "print.conf", "[server]\nlisten=127.0.0.1:9;[::1]:10\nallowed-origins=https://a.example\n"
                    "[limits]\nmax-connections=77\n[auth]\njwt-secret=0123456789abcdef\n"
                    "anonymous-publish=demo/*;x\n[history]\nsize=5\n");
  const char *args[] = { "--print-config", "--config", conf, NULL };
  const char *env[] = { "HERALD_API_KEY=from-env", NULL };
  Proc *p = proc_run (args, env);
  g_autoptr (GKeyFile) printed = g_key_file_new ();
  g_autoptr (GError) error = NULL;
  g_autofree char *again_path = NULL;
  Proc *again;
  Proc *check;

  g_assert_cmpint (p->status, ==, 0);
  g_assert_true (
      g_key_file_load_from_data (printed, p->out->str, -1, G_KEY_FILE_KEEP_COMMENTS, &error));
  g_assert_no_error (error);
  /* The values as configured, the defaults too, each with a comment */
  g_assert_cmpuint (g_key_file_get_uint64 (printed, "limits", "max-connections", NULL), ==, 77);
  g_assert_cmpuint (g_key_file_get_uint64 (printed, "limits", "heartbeat-interval", NULL), ==, 30);
  g_assert_cmpuint (g_key_file_get_uint64 (printed, "history", "size", NULL), ==, 5);
  g_assert_true (g_key_file_get_boolean (printed, "server", "metrics", NULL));
  {
    g_autofree char *comment = g_key_file_get_comment (printed, "limits", "max-connections", NULL);

    g_assert_nonnull (comment);
    g_assert_cmpuint (strlen (g_strstrip (comment)), >, 1);
  }
  /* A secret from the environment is never copied out */
  g_assert_null (strstr (p->out->str, "from-env"));
  g_assert_nonnull (strstr (p->out->str, "HERALD_API_KEY"));

  /* --config accepts it: it checks clean and prints the same again */
  again_path = write_config ("printed.conf", p->out->str);
  {
    const char *check_args[] = { "--check-config", "--config", again_path, NULL };
    const char *print_args[] = { "--print-config", "--config", again_path, NULL };

    check = proc_run (check_args, NULL);
    g_test_message ("%s", check->err->str);
    g_assert_cmpint (check->status, ==, 0);
    again = proc_run (print_args, env);
    g_assert_cmpint (again->status, ==, 0);
  }
  {
    /* the same text but for the file name in the header */
    g_auto (GStrv) a = g_strsplit (p->out->str, "\n", -1);
    g_auto (GStrv) b = g_strsplit (again->out->str, "\n", -1);
    guint differ = 0;

    g_assert_cmpuint (g_strv_length (a), ==, g_strv_length (b));
    for (guint i = 0; a[i] != NULL; i++)
      if (strcmp (a[i], b[i]) != 0 && strstr (a[i], conf) == NULL)
        {
          g_test_message ("differs: %s | %s", a[i], b[i]);
          differ++;
        }
    g_assert_cmpuint (differ, ==, 0);
  }
  proc_free (check);
  proc_free (again);
  proc_free (p);
}

/* ---- --gen-token ---- */

static void
test_gen_token (void)
{
  const char *args[] = { "--config", empty_config, "--gen-token", "alice", "--ttl",
                         "600",      "--channels", "news,chat/*", NULL };
  const char *env[] = { "HERALD_JWT_SECRET=0123456789abcdef", NULL };
  Proc *p = proc_run (args, env);
  g_autoptr (GBytes) secret = g_bytes_new_static ("0123456789abcdef", 16);
  g_autoptr (HeraldJwtVerifier) verifier = herald_jwt_verifier_new_hmac (secret);
  g_autoptr (HeraldJwtClaims) claims = NULL;
  g_autoptr (GError) error = NULL;
  gint64 now = g_get_real_time () / G_USEC_PER_SEC;

  g_assert_cmpint (p->status, ==, 0);
  claims = herald_jwt_verifier_verify (verifier, g_strstrip (p->out->str), now, 0, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (claims->sub, ==, "alice");
  g_assert_cmpint (claims->exp, >=, now + 590);
  g_assert_cmpint (claims->exp, <=, now + 610);
  g_assert_cmpstrv (claims->channels, ((const char *const[]){ "news", "chat/*", NULL }));
  proc_free (p);

  {
    /* RS256: signed with the private key given, checked against the public one */
    g_autofree char *public_key
        = g_test_build_filename (G_TEST_DIST, "keys", "rsa-public.pem", NULL);
    g_autofree char *private_key
        = g_test_build_filename (G_TEST_DIST, "keys", "rsa-private.pem", NULL);
    g_autofree char *text
        = g_strdup_printf ("[auth]\njwt-public-key-file=%s\njwt-algorithm=RS256\n", public_key);
    g_autofree char *conf = write_config ("rs.conf", text);
    const char *rs_args[] = { "--config", conf, "--gen-token", "bob", "--key", private_key, NULL };
    const char *no_key_args[] = { "--config", conf, "--gen-token", "bob", NULL };
    g_autoptr (HeraldJwtVerifier) rs
        = herald_jwt_verifier_new_public_key (HERALD_JWT_ALG_RS256, public_key, &error);
    g_autoptr (HeraldJwtClaims) bob = NULL;

    g_assert_no_error (error);
    p = proc_run (rs_args, NULL);
    g_assert_cmpint (p->status, ==, 0);
    /* the clock may have ticked since "now": iat is checked with no leeway */
    bob = herald_jwt_verifier_verify (rs, g_strstrip (p->out->str),
                                      g_get_real_time () / G_USEC_PER_SEC, 0, &error);
    g_assert_no_error (error);
    g_assert_cmpstr (bob->sub, ==, "bob");
    proc_free (p);

    /* without --key: a clear error, no token */
    p = proc_run (no_key_args, NULL);
    g_assert_cmpint (p->status, ==, 1);
    g_assert_cmpstr (p->out->str, ==, "");
    g_assert_nonnull (strstr (p->err->str, "--key"));
    proc_free (p);
  }
  {
    /* EdDSA, with [auth] issuer and audience carried into the token */
    g_autofree char *public_key
        = g_test_build_filename (G_TEST_DIST, "keys", "ed25519-public.pem", NULL);
    g_autofree char *private_key
        = g_test_build_filename (G_TEST_DIST, "keys", "ed25519-private.pem", NULL);
    g_autofree char *ec_key = g_test_build_filename (G_TEST_DIST, "keys", "ec-private.pem", NULL);
    g_autofree char *text = g_strdup_printf ("[auth]\njwt-public-key-file=%s\njwt-algorithm=EdDSA\n"
                                             "issuer=idp\naudience=herald\n",
                                             public_key);
    g_autofree char *conf = write_config ("ed.conf", text);
    const char *ed_args[] = { "--config", conf, "--gen-token", "dave", "--key", private_key, NULL };
    const char *ec_args[] = { "--config", conf, "--gen-token", "dave", "--key", ec_key, NULL };
    g_autoptr (HeraldJwtVerifier) ed
        = herald_jwt_verifier_new_public_key (HERALD_JWT_ALG_EDDSA, public_key, &error);
    g_autoptr (HeraldJwtClaims) dave = NULL;

    g_assert_no_error (error);
    herald_jwt_verifier_set_required_claims (ed, "idp", "herald");
    p = proc_run (ed_args, NULL);
    g_assert_cmpint (p->status, ==, 0);
    dave = herald_jwt_verifier_verify (ed, g_strstrip (p->out->str),
                                       g_get_real_time () / G_USEC_PER_SEC, 0, &error);
    g_assert_no_error (error);
    g_assert_cmpstr (dave->sub, ==, "dave");
    proc_free (p);

    /* a private key of another kind: a clear error, no token */
    p = proc_run (ec_args, NULL);
    g_assert_cmpint (p->status, ==, 1);
    g_assert_cmpstr (p->out->str, ==, "");
    g_assert_nonnull (strstr (p->err->str, "Ed25519"));
    proc_free (p);
  }
  {
    /* no key configured at all */
    const char *none_args[] = { "--config", empty_config, "--gen-token", "carol", NULL };

    p = proc_run (none_args, NULL);
    g_assert_cmpint (p->status, ==, 1);
    g_assert_cmpstr (p->out->str, ==, "");
    proc_free (p);
  }
}

int
main (int argc, char **argv)
{
  int status;

  g_test_init (&argc, &argv, NULL);
  tmpdir = g_dir_make_tmp ("herald-operator-XXXXXX", NULL);
  empty_config = write_config ("empty.conf", "");
  g_test_add_func ("/operator/one-instance-per-port", test_one_instance_per_port);
  g_test_add_func ("/operator/dbus-exit-status", test_dbus_exit_status);
  g_test_add_func ("/operator/help", test_help);
  g_test_add_func ("/operator/no-warning-before-fatal", test_no_warning_before_fatal);
  g_test_add_func ("/operator/unknown-key-hint", test_unknown_key_hint);
  g_test_add_func ("/operator/check-config", test_check_config);
  g_test_add_func ("/operator/print-config", test_print_config);
  g_test_add_func ("/operator/print-config-redis", test_print_config_redis);
  g_test_add_func ("/operator/gen-token", test_gen_token);
  status = g_test_run ();
  {
    g_autoptr (GDir) dir = g_dir_open (tmpdir, 0, NULL);
    const char *name;

    while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
      {
        g_autofree char *path = g_build_filename (tmpdir, name, NULL);

        g_unlink (path);
      }
  }
  g_rmdir (tmpdir);
  g_free (tmpdir);
  g_free (empty_config);
  return status;
}
