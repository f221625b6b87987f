/* herald-test-node.c: real redis-server and heraldd processes for the
 * multi-node tests.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "herald-test-node.h"

#include <signal.h>
#include <string.h>
#include <sys/prctl.h>

#include "herald-jwt.h"
#include "herald-test-utils.h"

void
herald_test_die_with_parent (gpointer data)
{
  prctl (PR_SET_PDEATHSIG, SIGKILL);
}

guint16
herald_test_free_port (void)
{
  g_autoptr (GSocket) socket
      = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, NULL);
  g_autoptr (GInetAddress) lo = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr (GSocketAddress) sa = g_inet_socket_address_new (lo, 0);
  g_autoptr (GSocketAddress) bound = NULL;

  g_assert_true (g_socket_bind (socket, sa, TRUE, NULL));
  bound = g_socket_get_local_address (socket, NULL);
  return g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound));
}

static redisContext *
redis_connect (guint16 port, const char *password)
{
  struct timeval tv = { 1, 0 };
  redisContext *c = redisConnectWithTimeout ("127.0.0.1", port, tv);

  if (c && !c->err)
    {
      redisSetTimeout (c, tv);
      if (password)
        {
          redisReply *auth = redisCommand (c, "AUTH %s", password);
          if (auth)
            freeReplyObject (auth);
        }
    }
  return c;
}

redisReply *
herald_test_redis_vcmd (guint16 port, const char *password, const char *format, va_list ap)
{
  redisContext *c = redis_connect (port, password);
  redisReply *reply = NULL;

  if (c && !c->err)
    reply = redisvCommand (c, format, ap);
  if (c)
    redisFree (c);
  return reply;
}

static redisReply *
redis_cmd (guint16 port, const char *password, const char *format, ...)
{
  redisReply *reply;
  va_list ap;

  va_start (ap, format);
  reply = herald_test_redis_vcmd (port, password, format, ap);
  va_end (ap);
  return reply;
}

gboolean
herald_test_redis_answers (guint16 port, const char *password)
{
  redisReply *reply = redis_cmd (port, password, "PING");
  gboolean ok = reply != NULL && reply->type == REDIS_REPLY_STATUS;

  if (reply)
    freeReplyObject (reply);
  return ok;
}

long long
herald_test_redis_numsub (guint16 port, const char *password, const char *topic)
{
  redisReply *reply = redis_cmd (port, password, "PUBSUB NUMSUB %s", topic);
  long long n = -1;

  if (reply && reply->type == REDIS_REPLY_ARRAY && reply->elements == 2)
    n = reply->element[1]->integer;
  if (reply)
    freeReplyObject (reply);
  return n;
}

GSubprocess *
herald_test_redis_start (guint16 port, const char *password)
{
  g_autofree char *port_text = g_strdup_printf ("%u", port);
  g_autoptr (GSubprocessLauncher) launcher = g_subprocess_launcher_new (
      G_SUBPROCESS_FLAGS_STDOUT_SILENCE | G_SUBPROCESS_FLAGS_STDERR_SILENCE);
  g_autoptr (GPtrArray) argv = g_ptr_array_new ();
  g_autoptr (GError) error = NULL;
  GSubprocess *redis;

  g_ptr_array_add (argv, (char *)"redis-server");
  g_ptr_array_add (argv, (char *)"--port");
  g_ptr_array_add (argv, port_text);
  g_ptr_array_add (argv, (char *)"--bind");
  g_ptr_array_add (argv, (char *)"127.0.0.1");
  g_ptr_array_add (argv, (char *)"--save");
  g_ptr_array_add (argv, (char *)"");
  g_ptr_array_add (argv, (char *)"--appendonly");
  g_ptr_array_add (argv, (char *)"no");
  if (password)
    {
      g_ptr_array_add (argv, (char *)"--requirepass");
      g_ptr_array_add (argv, (char *)password);
    }
  g_ptr_array_add (argv, NULL);
  g_subprocess_launcher_set_child_setup (launcher, herald_test_die_with_parent, NULL, NULL);
  redis = g_subprocess_launcher_spawnv (launcher, (const char *const *)argv->pdata, &error);
  g_assert_no_error (error);
  HERALD_TEST_WAIT_UNTIL (herald_test_redis_answers (port, password), 5000);
  return redis;
}

void
herald_test_redis_stop (GSubprocess **redis)
{
  g_subprocess_force_exit (*redis);
  g_subprocess_wait (*redis, NULL, NULL);
  g_clear_object (redis);
}

static void read_next_line (HeraldTestNode *node);

static void
on_line (GObject *source, GAsyncResult *result, gpointer user_data)
{
  HeraldTestNode *node = user_data;
  g_autofree char *line = g_data_input_stream_read_line_finish_utf8 (G_DATA_INPUT_STREAM (source),
                                                                     result, NULL, NULL);
  const char *url;

  if (line == NULL)
    {
      node->eof = TRUE;
      return;
    }
  g_string_append_printf (node->log, "%s\n", line);
  if (g_test_verbose ())
    g_printerr ("[%p] %s\n", node, line);
  url = strstr (line, "listening on http://");
  if (url && node->srv.port == 0)
    {
      const char *colon = strrchr (url, ':');
      node->srv.port = (guint16)g_ascii_strtoull (colon + 1, NULL, 10);
      node->srv.url = g_strdup (url + strlen ("listening on "));
    }
  read_next_line (node);
}

static void
read_next_line (HeraldTestNode *node)
{
  g_data_input_stream_read_line_async (node->stderr_lines, G_PRIORITY_DEFAULT, NULL, on_line, node);
}

void
herald_test_node_start (HeraldTestNode *node, const char *conf, const char *redis_url,
                        const char *api_key, const char *secret)
{
  g_autoptr (GSubprocessLauncher) launcher = g_subprocess_launcher_new (
      G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_MERGE);
  const char *heraldd = g_getenv ("HERALDD");
  g_autoptr (GError) error = NULL;

  g_assert_nonnull (heraldd);
  if (redis_url)
    g_subprocess_launcher_setenv (launcher, "REDIS_URL", redis_url, TRUE);
  else
    g_subprocess_launcher_unsetenv (launcher, "REDIS_URL");
  g_subprocess_launcher_setenv (launcher, "HERALD_API_KEY", api_key, TRUE);
  g_subprocess_launcher_unsetenv (launcher, "HERALD_JWT_SECRET");
  g_subprocess_launcher_set_child_setup (launcher, herald_test_die_with_parent, NULL, NULL);
  node->process = g_subprocess_launcher_spawn (launcher, &error, heraldd, "--config", conf,
                                               "--listen", "127.0.0.1:0", "--bus", "none",
                                               "--workers", "2", "--verbose", NULL);
  g_assert_no_error (error);
  node->eof = FALSE;
  node->log = g_string_new (NULL);
  node->stderr_lines = g_data_input_stream_new (g_subprocess_get_stdout_pipe (node->process));
  node->srv.host = g_strdup ("127.0.0.1");
  node->srv.port = 0;
  node->srv.url = NULL;
  node->auth = g_strdup_printf ("Authorization: Bearer %s\r\n", api_key);
  node->secret = g_strdup (secret);
  read_next_line (node);
  HERALD_TEST_WAIT_UNTIL (node->srv.port != 0 || node->eof, 10000);
  g_assert_cmpuint (node->srv.port, !=, 0);
}

static void
node_end (HeraldTestNode *node, int signum)
{
  g_subprocess_send_signal (node->process, signum);
  HERALD_TEST_WAIT_UNTIL (node->eof, 10000);
  g_subprocess_wait (node->process, NULL, NULL);
  g_clear_object (&node->process);
  g_clear_object (&node->stderr_lines);
  g_string_free (node->log, TRUE);
  node->log = NULL;
  g_clear_pointer (&node->srv.host, g_free);
  g_clear_pointer (&node->srv.url, g_free);
  g_clear_pointer (&node->auth, g_free);
  g_clear_pointer (&node->secret, g_free);
}

void
herald_test_node_stop (HeraldTestNode *node)
{
  node_end (node, SIGTERM);
}

void
herald_test_node_kill (HeraldTestNode *node)
{
  node_end (node, SIGKILL);
}

char *
herald_test_node_api (HeraldTestNode *node, const char *method, const char *path, const char *body,
                      guint *status)
{
  return herald_test_http (&node->srv, method, path, node->auth, body, status);
}

gboolean
herald_test_node_healthy (HeraldTestNode *node)
{
  guint status = 0;
  g_autofree char *body = herald_test_http (&node->srv, "GET", "/healthz", NULL, NULL, &status);
  return status == 200;
}

guint64
herald_test_node_publish (HeraldTestNode *node, const char *channel, const char *data)
{
  g_autofree char *body = g_strdup_printf ("{\"channel\":\"%s\",\"data\":%s}", channel, data);
  g_autoptr (JsonNode) answer = NULL;
  g_autofree char *text = NULL;
  guint status = 0;

  text = herald_test_node_api (node, "POST", "/api/publish", body, &status);
  g_assert_cmpuint (status, ==, 200);
  answer = json_from_string (text, NULL);
  g_assert_nonnull (answer);
  return json_object_get_int_member (json_node_get_object (answer), "offset");
}

HeraldTestClient *
herald_test_node_ws_open (HeraldTestNode *node, const char *user, char **connection_id)
{
  g_autoptr (GBytes) secret = g_bytes_new (node->secret, strlen (node->secret));
  g_autofree char *claims = g_strdup_printf ("{\"sub\":\"%s\"}", user ? user : "");
  g_autofree char *token = user ? herald_jwt_sign_hs256 (secret, claims) : NULL;
  g_autofree char *path = token ? g_strdup_printf ("/ws?token=%s", token) : g_strdup ("/ws");

  return herald_test_ws_open (&node->srv, path, connection_id);
}

JsonObject *
herald_test_ws_read_type (HeraldTestClient *client, const char *type)
{
  for (;;)
    {
      JsonObject *obj = herald_test_ws_read_json (client);
      g_assert_nonnull (obj);
      if (g_strcmp0 (herald_test_json_get_string (obj, "type"), type) == 0)
        return obj;
      json_object_unref (obj);
    }
}

void
herald_test_ws_subscribe (HeraldTestClient *client, const char *channel)
{
  g_autofree char *req = g_strdup_printf ("{\"type\":\"subscribe\",\"channel\":\"%s\"}", channel);
  g_autoptr (JsonObject) reply = NULL;

  herald_test_ws_send_text (client, req);
  reply = herald_test_ws_read_type (client, "subscribed");
}
