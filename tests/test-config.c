/* test-config.c: tests for HeraldConfig
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <glib/gstdio.h>
#include <string.h>

#include "herald-config.h"
#include "herald-config-print.h"
#include "herald-token-gen.h"

#define ORIGIN "/etc/herald/test.conf"

#define ANON_WARNING "*running anonymous-only*"

static void
clear_env (void)
{
  g_unsetenv ("REDIS_URL");
  g_unsetenv ("HERALD_API_KEY");
  g_unsetenv ("HERALD_JWT_SECRET");
}

/* A temporary directory, removed with its files by tmpdir_free() */
static char *
tmpdir_new (void)
{
  g_autoptr (GError) error = NULL;
  char *dir = g_dir_make_tmp ("herald-config-XXXXXX", &error);

  g_assert_no_error (error);
  return dir;
}

static void
tmpdir_free (char *dir)
{
  g_autoptr (GDir) d = g_dir_open (dir, 0, NULL);
  const char *name;

  while (d != NULL && (name = g_dir_read_name (d)) != NULL)
    {
      g_autofree char *path = g_build_filename (dir, name, NULL);
      g_assert_cmpint (g_unlink (path), ==, 0);
    }
  g_assert_cmpint (g_rmdir (dir), ==, 0);
  g_free (dir);
}

static char *
write_file (const char *dir, const char *name, const char *contents)
{
  g_autoptr (GError) error = NULL;
  char *path = g_build_filename (dir, name, NULL);

  g_file_set_contents (path, contents, -1, &error);
  g_assert_no_error (error);
  return path;
}

static HeraldConfig *
load_ok (const char *data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (HeraldConfig) config = herald_config_new ();

  herald_config_load_data (config, data, -1, ORIGIN, &error);
  g_assert_no_error (error);
  return g_steal_pointer (&config);
}

static void
test_defaults (void)
{
  g_autoptr (HeraldConfig) config = herald_config_new ();
  GPtrArray *listen = herald_config_get_listen (config);
  const HeraldListenAddress *address;
  const char *const *channels;

  g_assert_cmpuint (listen->len, ==, 1);
  address = listen->pdata[0];
  g_assert_cmpstr (address->host, ==, "127.0.0.1");
  g_assert_cmpuint (address->port, ==, 8080);
  g_assert_false (address->tls);

  g_assert_null (herald_config_get_path (config));
  g_assert_null (herald_config_get_tls_certificate (config));
  g_assert_null (herald_config_get_tls_key (config));
  g_assert_null (herald_config_get_allowed_origins (config));
  g_assert_true (herald_config_get_compression (config));
  g_assert_cmpuint (herald_config_get_workers (config), ==, g_get_num_processors ());

  g_assert_cmpuint (herald_config_get_max_connections (config), ==, 10000);
  g_assert_cmpuint (herald_config_get_max_message_size (config), ==, 65536);
  g_assert_cmpuint (herald_config_get_heartbeat_interval (config), ==, 30);
  g_assert_cmpuint (herald_config_get_connection_timeout (config), ==, 300);
  g_assert_cmpuint (herald_config_get_send_queue_max_bytes (config), ==, 1048576);
  g_assert_cmpuint (herald_config_get_max_connections_per_ip (config), ==, 0);
  g_assert_cmpuint (herald_config_get_messages_per_second (config), ==, 0);
  g_assert_cmpuint (herald_config_get_max_subscriptions_per_connection (config), ==, 128);

  g_assert_null (herald_config_get_jwt_secret (config));
  g_assert_null (herald_config_get_jwt_public_key_file (config));
  g_assert_cmpint (herald_config_get_jwt_algorithm (config), ==, HERALD_JWT_ALG_HS256);
  g_assert_cmpuint (herald_config_get_leeway (config), ==, 30);
  g_assert_false (herald_config_has_token_key (config));
  g_assert_true (herald_config_get_anonymous (config));
  channels = herald_config_get_anonymous_channels (config);
  g_assert_cmpuint (g_strv_length ((char **)channels), ==, 1);
  g_assert_cmpstr (channels[0], ==, "*");
  g_assert_nonnull (herald_config_get_anonymous_publish (config));
  g_assert_null (herald_config_get_anonymous_publish (config)[0]);

  g_assert_null (herald_config_get_api_key (config));
  g_assert_cmpuint (herald_config_get_history_size (config), ==, 100);
  g_assert_cmpuint (herald_config_get_history_ttl (config), ==, 300);
  g_assert_null (herald_config_get_redis_url (config));

  /* An empty file gives the defaults too */
  {
    g_autoptr (HeraldConfig) empty = load_ok ("");
    g_assert_cmpuint (herald_config_get_heartbeat_interval (empty), ==, 30);
    g_assert_cmpuint (herald_config_get_listen (empty)->len, ==, 1);
  }
}

static void
test_all_keys (void)
{
  g_autoptr (HeraldConfig) config = load_ok ("# every key\n"
                                             "[server]\n"
                                             "listen=0.0.0.0:80; [::]:0 ;https://example.org:8443\n"
                                             "tls-certificate=/etc/herald/cert.pem\n"
                                             "tls-key=/etc/herald/key.pem\n"
                                             "allowed-origins=https://a.example;https://b.example\n"
                                             "compression=false\n"
                                             "workers=3\n"
                                             "[limits]\n"
                                             "max-connections=5\n"
                                             "max-message-size=128\n"
                                             "heartbeat-interval=3600 \n"
                                             "connection-timeout=86400\n"
                                             "send-queue-max-bytes=4096\n"
                                             "max-connections-per-ip=7\n"
                                             "messages-per-second=8\n"
                                             "max-subscriptions-per-connection=1000000\n"
                                             "[auth]\n"
                                             "jwt-secret=s3cret-s3cret-s3cret-s3cret-s3cret\n"
                                             "jwt-algorithm=HS256\n"
                                             "leeway=0\n"
                                             "anonymous=true\n"
                                             "anonymous-channels=public.*;news\n"
                                             "anonymous-publish=chat:lobby\n"
                                             "[api]\n"
                                             "key=api-key-1\n"
                                             "[history]\n"
                                             "size=0\n"
                                             "ttl=31536000\n"
                                             "[redis]\n"
                                             "url=redis://localhost:6379/0\n");
  GPtrArray *listen = herald_config_get_listen (config);
  const HeraldListenAddress *a;
  GBytes *secret;

  g_assert_cmpuint (listen->len, ==, 3);
  a = listen->pdata[0];
  g_assert_cmpstr (a->host, ==, "0.0.0.0");
  g_assert_cmpuint (a->port, ==, 80);
  g_assert_false (a->tls);
  a = listen->pdata[1];
  g_assert_cmpstr (a->host, ==, "::");
  g_assert_cmpuint (a->port, ==, 0);
  a = listen->pdata[2];
  g_assert_cmpstr (a->host, ==, "example.org");
  g_assert_cmpuint (a->port, ==, 8443);
  g_assert_true (a->tls);

  g_assert_cmpstr (herald_config_get_tls_certificate (config), ==, "/etc/herald/cert.pem");
  g_assert_cmpstr (herald_config_get_tls_key (config), ==, "/etc/herald/key.pem");
  g_assert_cmpstrv (herald_config_get_allowed_origins (config),
                    ((const char *const[]){ "https://a.example", "https://b.example", NULL }));
  g_assert_false (herald_config_get_compression (config));
  g_assert_cmpuint (herald_config_get_workers (config), ==, 3);

  g_assert_cmpuint (herald_config_get_max_connections (config), ==, 5);
  g_assert_cmpuint (herald_config_get_max_message_size (config), ==, 128);
  g_assert_cmpuint (herald_config_get_heartbeat_interval (config), ==, 3600);
  g_assert_cmpuint (herald_config_get_connection_timeout (config), ==, 86400);
  g_assert_cmpuint (herald_config_get_send_queue_max_bytes (config), ==, 4096);
  g_assert_cmpuint (herald_config_get_max_connections_per_ip (config), ==, 7);
  g_assert_cmpuint (herald_config_get_messages_per_second (config), ==, 8);
  g_assert_cmpuint (herald_config_get_max_subscriptions_per_connection (config), ==, 1000000);

  secret = herald_config_get_jwt_secret (config);
  g_assert_nonnull (secret);
  g_assert_cmpmem (g_bytes_get_data (secret, NULL), g_bytes_get_size (secret),
                   "s3cret-s3cret-s3cret-s3cret-s3cret", 34);
  g_assert_true (herald_config_has_token_key (config));
  g_assert_cmpint (herald_config_get_jwt_algorithm (config), ==, HERALD_JWT_ALG_HS256);
  g_assert_cmpuint (herald_config_get_leeway (config), ==, 0);
  g_assert_true (herald_config_get_anonymous (config));
  g_assert_cmpstrv (herald_config_get_anonymous_channels (config),
                    ((const char *const[]){ "public.*", "news", NULL }));
  g_assert_cmpstrv (herald_config_get_anonymous_publish (config),
                    ((const char *const[]){ "chat:lobby", NULL }));

  g_assert_cmpstr (herald_config_get_api_key (config), ==, "api-key-1");
  g_assert_cmpuint (herald_config_get_history_size (config), ==, 0);
  g_assert_cmpuint (herald_config_get_history_ttl (config), ==, 31536000);
  g_assert_cmpstr (herald_config_get_redis_url (config), ==, "redis://localhost:6379/0");
}

static void
test_public_key_and_algorithms (void)
{
  g_autoptr (HeraldConfig) rs = load_ok ("[auth]\n"
                                         "jwt-public-key-file=/etc/herald/jwt.pem\n"
                                         "jwt-algorithm=RS256\n");
  g_autoptr (HeraldConfig) es = load_ok ("[auth]\n"
                                         "jwt-public-key-file=/etc/herald/jwt.pem\n"
                                         "jwt-algorithm=ES256\n"
                                         "anonymous=0\n");
  g_autoptr (GError) error = NULL;

  g_assert_cmpstr (herald_config_get_jwt_public_key_file (rs), ==, "/etc/herald/jwt.pem");
  g_assert_cmpint (herald_config_get_jwt_algorithm (rs), ==, HERALD_JWT_ALG_RS256);
  g_assert_true (herald_config_has_token_key (rs));
  g_assert_null (herald_config_get_jwt_secret (rs));
  /* A token key and anonymous unset: anonymous is off */
  g_assert_false (herald_config_get_anonymous (rs));
  g_assert_cmpint (herald_config_get_jwt_algorithm (es), ==, HERALD_JWT_ALG_ES256);
  g_assert_false (herald_config_get_anonymous (es));
  g_assert_null (herald_config_get_jwt_issuer (rs));
  g_assert_null (herald_config_get_jwt_audience (rs));
  {
    g_autoptr (HeraldConfig) ed = load_ok ("[auth]\n"
                                           "jwt-public-key-file=/etc/herald/ed.pem\n"
                                           "jwt-algorithm=eddsa\n"
                                           "issuer= https://idp.example \n"
                                           "audience=herald\n");
    g_autoptr (HeraldConfig) empty = load_ok ("[auth]\nissuer=\naudience=\n");

    g_assert_cmpint (herald_config_get_jwt_algorithm (ed), ==, HERALD_JWT_ALG_EDDSA);
    g_assert_cmpstr (herald_config_get_jwt_issuer (ed), ==, "https://idp.example");
    g_assert_cmpstr (herald_config_get_jwt_audience (ed), ==, "herald");
    /* empty = unset, as for every string key */
    g_assert_null (herald_config_get_jwt_issuer (empty));
    g_assert_null (herald_config_get_jwt_audience (empty));
  }

  g_assert_true (herald_config_validate (rs, &error));
  g_assert_no_error (error);
}

typedef struct
{
  const char *group;
  const char *key;
  const char *value;
} BadValue;

static const BadValue bad_values[] = {
  { "limits", "heartbeat-interval", "abc" },
  { "limits", "heartbeat-interval", "0" },
  { "limits", "heartbeat-interval", "3601" },
  { "limits", "heartbeat-interval", "30x" },
  { "limits", "heartbeat-interval", "-30" },
  { "limits", "heartbeat-interval", "+30" },
  { "limits", "heartbeat-interval", "0x10" },
  { "limits", "heartbeat-interval", "" },
  { "limits", "connection-timeout", "1" },
  { "limits", "connection-timeout", "86401" },
  { "limits", "max-connections", "0" },
  { "limits", "max-connections", "99999999999999999999999" },
  { "limits", "max-connections", "1000001" },
  { "limits", "max-message-size", "127" },
  { "limits", "max-message-size", "16777217" },
  { "limits", "send-queue-max-bytes", "4095" },
  { "limits", "send-queue-max-bytes", "1073741825" },
  { "limits", "max-connections-per-ip", "-1" },
  { "limits", "max-connections-per-ip", "1000001" },
  { "limits", "messages-per-second", "1.5" },
  { "limits", "max-subscriptions-per-connection", "-1" },
  { "limits", "max-subscriptions-per-connection", "1000001" },
  { "limits", "max-subscriptions-per-connection", "many" },
  { "limits", "max-subscriptions-per-connection", "128k" },
  { "limits", "max-subscriptions-per-connection", "" },
  { "server", "workers", "257" },
  { "server", "workers", "many" },
  { "server", "compression", "yes" },
  { "server", "compression", "True" },
  { "server", "listen", "0.0.0.0" },
  { "server", "listen", "127.0.0.1:8080;localhost:99999" },
  { "server", "listen", ";" },
  { "auth", "jwt-algorithm", "none" },
  { "auth", "leeway", "3601" },
  { "auth", "jwks-url", "ftp://idp.example/jwks" },
  { "auth", "jwks-url", "idp.example/jwks" },
  { "auth", "jwks-url", "https:///jwks" },
  { "auth", "jwks-refresh", "0" },
  { "auth", "jwks-refresh", "86401" },
  { "auth", "jwks-refresh", "5m" },
  { "auth", "anonymous", "maybe" },
  { "auth", "anonymous-channels", "bad channel" },
  { "auth", "anonymous-publish", "a*b" },
  { "history", "size", "100001" },
  { "history", "ttl", "31536001" },
  { "history", "ttl", "5 minutes" },
  { "redis", "url", "http://localhost:6379" },
  { "redis", "shards", "redis://a:6379;http://b:6379" },
  { "redis", "shards", ";" },
  { "redis", "cluster", "localhost" },
  { "redis", "cluster", "127.0.0.1:0" },
  { "redis", "cluster", "127.0.0.1:70000" },
  { "redis", "cluster", "a:b:7000" },
  { "redis", "sentinels", "redis://a:26379" },
  { "redis", "sentinels", "a:26379" },        /* without sentinel-master */
  { "redis", "sentinel-master", "mymaster" }, /* without sentinels */
};

static void
test_invalid_values (void)
{
  for (gsize i = 0; i < G_N_ELEMENTS (bad_values); i++)
    {
      const BadValue *bad = &bad_values[i];
      g_autoptr (HeraldConfig) config = herald_config_new ();
      g_autoptr (GError) error = NULL;
      g_autofree char *data = g_strdup_printf ("[%s]\n%s=%s\n", bad->group, bad->key, bad->value);
      /* file, line, group, key */
      g_autofree char *prefix = g_strdup_printf ("%s:2: [%s] %s: ", ORIGIN, bad->group, bad->key);

      g_test_message ("[%s] %s=%s", bad->group, bad->key, bad->value);
      g_assert_false (herald_config_load_data (config, data, -1, ORIGIN, &error));
      g_assert_error (error, HERALD_CONFIG_ERROR, HERALD_CONFIG_ERROR_INVALID);
      g_test_message ("→ %s", error->message);
      g_assert_true (g_str_has_prefix (error->message, prefix));
      /* The reason follows and is not empty */
      g_assert_cmpuint (strlen (error->message), >, strlen (prefix));
    }
}

static void
assert_redis_error (const char *data, const char *message)
{
  g_autoptr (HeraldConfig) config = herald_config_new ();
  g_autoptr (GError) error = NULL;

  g_assert_false (herald_config_load_data (config, data, -1, ORIGIN, &error));
  g_assert_error (error, HERALD_CONFIG_ERROR, HERALD_CONFIG_ERROR_INVALID);
  g_test_message ("→ %s", error->message);
  g_assert_cmpstr (error->message, ==, message);
}

static void
test_redis_selection (void)
{
  const char *const *servers;

  /* Two selections at once: the message names both keys */
  assert_redis_error ("[redis]\nurl=redis://a:6379\nshards=redis://b:6379;redis://c:6379\n",
                      ORIGIN ":3: [redis] shards: set only one of url, shards, sentinels and "
                             "cluster: url and shards are both set");
  assert_redis_error ("[redis]\ncluster=a:7000\nshards=redis://b:6379\n",
                      ORIGIN ":2: [redis] cluster: set only one of url, shards, sentinels and "
                             "cluster: shards and cluster are both set");
  assert_redis_error ("[redis]\nsentinels=a:26379\nsentinel-master=m\ncluster=a:7000\n",
                      ORIGIN ":4: [redis] cluster: set only one of url, shards, sentinels and "
                             "cluster: sentinels and cluster are both set");
  assert_redis_error ("[redis]\nsentinels=a:26379\n",
                      ORIGIN ":2: [redis] sentinels: needs sentinel-master (the name of the "
                             "master the sentinels watch)");
  assert_redis_error ("[redis]\ncluster=127.0.0.1:7000;nohost\n",
                      ORIGIN ":2: [redis] cluster: expected HOST:PORT addresses, got “nohost”");

  {
    g_autoptr (HeraldConfig) config = load_ok ("[redis]\nshards=redis://a:6379 ; redis://b:6380;\n"
                                               "password=s3cret\n");

    g_assert_cmpint (herald_config_get_redis_mode (config), ==, HERALD_REDIS_MODE_SHARDS);
    g_assert_null (herald_config_get_redis_url (config));
    servers = herald_config_get_redis_servers (config);
    g_assert_cmpuint (g_strv_length ((char **)servers), ==, 2);
    g_assert_cmpstr (servers[0], ==, "redis://a:6379");
    g_assert_cmpstr (servers[1], ==, "redis://b:6380");
    g_assert_cmpstr (herald_config_get_redis_password (config), ==, "s3cret");
  }
  {
    g_autoptr (HeraldConfig) config = load_ok ("[redis]\ncluster=127.0.0.1:7000;[::1]:7001\n");

    g_assert_cmpint (herald_config_get_redis_mode (config), ==, HERALD_REDIS_MODE_CLUSTER);
    servers = herald_config_get_redis_servers (config);
    g_assert_cmpuint (g_strv_length ((char **)servers), ==, 2);
    g_assert_cmpstr (servers[1], ==, "[::1]:7001");
    g_assert_null (herald_config_get_redis_password (config));
  }
  {
    g_autoptr (HeraldConfig) config
        = load_ok ("[redis]\nsentinels=s1:26379;s2:26379\nsentinel-master=mymaster\n");

    g_assert_cmpint (herald_config_get_redis_mode (config), ==, HERALD_REDIS_MODE_SENTINELS);
    g_assert_cmpstr (herald_config_get_redis_sentinel_master (config), ==, "mymaster");
    g_assert_cmpuint (g_strv_length ((char **)herald_config_get_redis_servers (config)), ==, 2);
  }
  {
    g_autoptr (HeraldConfig) config = load_ok ("[redis]\nurl=redis://one:6379\n");

    g_assert_cmpint (herald_config_get_redis_mode (config), ==, HERALD_REDIS_MODE_URL);
    g_assert_null (herald_config_get_redis_servers (config));
  }
  {
    g_autoptr (HeraldConfig) config = load_ok ("");

    g_assert_cmpint (herald_config_get_redis_mode (config), ==, HERALD_REDIS_MODE_NONE);
  }

  /* REDIS_URL replaces the whole selection */
  g_setenv ("REDIS_URL", "redis://env:6379", TRUE);
  {
    g_autoptr (HeraldConfig) config = load_ok ("[redis]\ncluster=127.0.0.1:7000\n");

    g_assert_cmpint (herald_config_get_redis_mode (config), ==, HERALD_REDIS_MODE_URL);
    g_assert_cmpstr (herald_config_get_redis_url (config), ==, "redis://env:6379");
    g_assert_null (herald_config_get_redis_servers (config));
  }
  g_unsetenv ("REDIS_URL");
}

static void
test_invalid_message_format (void)
{
  g_autoptr (HeraldConfig) config = herald_config_new ();
  g_autoptr (GError) error = NULL;

  g_assert_false (
      herald_config_load_data (config, "[limits]\nheartbeat-interval=abc\n", -1, ORIGIN, &error));
  g_assert_error (error, HERALD_CONFIG_ERROR, HERALD_CONFIG_ERROR_INVALID);
  g_assert_cmpstr (error->message, ==,
                   ORIGIN ":2: [limits] heartbeat-interval: expected an integer between 1 and "
                          "3600, got “abc”");
}

static void
test_failed_load_changes_nothing (void)
{
  g_autoptr (HeraldConfig) config
      = load_ok ("[limits]\nheartbeat-interval=10\n[server]\nlisten=127.0.0.1:1\n");
  g_autoptr (GError) error = NULL;

  g_assert_false (herald_config_load_data (
      config, "[limits]\nheartbeat-interval=20\n[server]\nlisten=127.0.0.1:2\n[history]\nsize=x\n",
      -1, ORIGIN, &error));
  g_assert_error (error, HERALD_CONFIG_ERROR, HERALD_CONFIG_ERROR_INVALID);
  g_assert_cmpuint (herald_config_get_heartbeat_interval (config), ==, 10);
  g_assert_cmpuint (((HeraldListenAddress *)herald_config_get_listen (config)->pdata[0])->port, ==,
                    1);
}

static void
test_syntax_error (void)
{
  g_autoptr (HeraldConfig) config = herald_config_new ();
  g_autoptr (GError) error = NULL;

  g_assert_false (herald_config_load_data (config, "[server]\ncompression=true\nthis is garbage\n",
                                           -1, ORIGIN, &error));
  g_assert_error (error, HERALD_CONFIG_ERROR, HERALD_CONFIG_ERROR_INVALID);
  g_test_message ("%s", error->message);
  g_assert_true (g_str_has_prefix (error->message, ORIGIN ":3: "));
  g_assert_nonnull (strstr (error->message, "this is garbage"));
  g_clear_error (&error);

  g_assert_false (herald_config_load_data (config, "compression=true\n", -1, ORIGIN, &error));
  g_assert_error (error, HERALD_CONFIG_ERROR, HERALD_CONFIG_ERROR_INVALID);
  g_assert_true (g_str_has_prefix (error->message, ORIGIN ":1: "));
}

static void
test_unknown_keys_warn (void)
{
  g_autoptr (HeraldConfig) config = herald_config_new ();
  g_autoptr (GError) error = NULL;

  g_test_expect_message ("Herald", G_LOG_LEVEL_WARNING,
                         ORIGIN ":2: unknown key [server] lisen (did you mean “listen”?)");
  g_test_expect_message ("Herald", G_LOG_LEVEL_WARNING, ORIGIN ":4: unknown group [frobnicate]");
  g_assert_true (herald_config_load_data (config,
                                          "[server]\nlisen=0.0.0.0:1\nworkers=2\n"
                                          "[frobnicate]\nx=1\n",
                                          -1, ORIGIN, &error));
  g_test_assert_expected_messages ();
  g_assert_no_error (error);
  g_assert_cmpuint (herald_config_get_workers (config), ==, 2);
  g_assert_cmpstr (((HeraldListenAddress *)herald_config_get_listen (config)->pdata[0])->host, ==,
                   "127.0.0.1");
}

static void
test_env_overrides (void)
{
  const char *file = "[api]\nkey=from-file\n[auth]\njwt-secret=file-secret\n"
                     "[redis]\nurl=redis://file:6379\n";
  GBytes *secret;

  g_setenv ("REDIS_URL", "redis://env:6379", TRUE);
  g_setenv ("HERALD_API_KEY", "from-env", TRUE);
  g_setenv ("HERALD_JWT_SECRET", "env-secret", TRUE);
  {
    g_autoptr (HeraldConfig) config = load_ok (file);

    g_assert_cmpstr (herald_config_get_redis_url (config), ==, "redis://env:6379");
    g_assert_cmpstr (herald_config_get_api_key (config), ==, "from-env");
    secret = herald_config_get_jwt_secret (config);
    g_assert_cmpmem (g_bytes_get_data (secret, NULL), g_bytes_get_size (secret), "env-secret", 10);
  }
  {
    /* Environment alone, no file keys */
    g_autoptr (HeraldConfig) config = load_ok ("");

    g_assert_cmpstr (herald_config_get_redis_url (config), ==, "redis://env:6379");
    g_assert_cmpstr (herald_config_get_api_key (config), ==, "from-env");
    g_assert_true (herald_config_has_token_key (config));
    g_assert_false (herald_config_get_anonymous (config));
  }

  /* Empty variables count as unset */
  g_setenv ("REDIS_URL", "", TRUE);
  g_setenv ("HERALD_API_KEY", "", TRUE);
  g_setenv ("HERALD_JWT_SECRET", "", TRUE);
  {
    g_autoptr (HeraldConfig) config = load_ok (file);

    g_assert_cmpstr (herald_config_get_redis_url (config), ==, "redis://file:6379");
    g_assert_cmpstr (herald_config_get_api_key (config), ==, "from-file");
    secret = herald_config_get_jwt_secret (config);
    g_assert_cmpmem (g_bytes_get_data (secret, NULL), g_bytes_get_size (secret), "file-secret", 11);
  }
  {
    g_autoptr (HeraldConfig) config = load_ok ("");

    g_assert_null (herald_config_get_redis_url (config));
    g_assert_null (herald_config_get_api_key (config));
    g_assert_null (herald_config_get_jwt_secret (config));
  }

  /* A bad REDIS_URL is reported under its own name */
  g_setenv ("REDIS_URL", "localhost", TRUE);
  {
    g_autoptr (HeraldConfig) config = herald_config_new ();
    g_autoptr (GError) error = NULL;

    g_assert_false (herald_config_load_data (config, "", -1, ORIGIN, &error));
    g_assert_error (error, HERALD_CONFIG_ERROR, HERALD_CONFIG_ERROR_INVALID);
    g_assert_true (g_str_has_prefix (error->message, "REDIS_URL: "));
  }
  clear_env ();
}

static void
test_file_keys (void)
{
  char *dir = tmpdir_new ();
  g_autofree char *secret_path = write_file (dir, "jwt.secret", "file-secret-value \n\n");
  g_autofree char *key_path = write_file (dir, "api.key", "api-key-from-file\r\n");
  g_autofree char *conf = write_file (dir, "herald.conf",
                                      "[auth]\n"
                                      "jwt-secret-file=jwt.secret\n"
                                      "[api]\n"
                                      "key-file=api.key\n"
                                      "[server]\n"
                                      "tls-certificate=cert.pem\n"
                                      "tls-key=/abs/key.pem\n");
  g_autofree char *cert_path = g_build_filename (dir, "cert.pem", NULL);
  g_autoptr (HeraldConfig) config = herald_config_new ();
  g_autoptr (GError) error = NULL;
  GBytes *secret;

  g_assert_true (herald_config_load (config, conf, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (herald_config_get_path (config), ==, conf);
  secret = herald_config_get_jwt_secret (config);
  g_assert_nonnull (secret);
  g_assert_cmpmem (g_bytes_get_data (secret, NULL), g_bytes_get_size (secret), "file-secret-value",
                   17);
  g_assert_cmpstr (herald_config_get_api_key (config), ==, "api-key-from-file");
  /* Relative paths are relative to the config file's directory */
  g_assert_cmpstr (herald_config_get_tls_certificate (config), ==, cert_path);
  g_assert_cmpstr (herald_config_get_tls_key (config), ==, "/abs/key.pem");

  /* The environment beats the file: a missing secret file is then not read */
  g_setenv ("HERALD_JWT_SECRET", "env", TRUE);
  g_assert_cmpint (g_unlink (secret_path), ==, 0);
  g_assert_true (herald_config_load (config, conf, &error));
  g_assert_no_error (error);
  secret = herald_config_get_jwt_secret (config);
  g_assert_cmpmem (g_bytes_get_data (secret, NULL), g_bytes_get_size (secret), "env", 3);
  clear_env ();

  /* Missing secret file: IO error naming file, group and key */
  g_assert_false (herald_config_load (config, conf, &error));
  g_assert_error (error, HERALD_CONFIG_ERROR, HERALD_CONFIG_ERROR_IO);
  g_test_message ("%s", error->message);
  g_assert_nonnull (strstr (error->message, "[auth] jwt-secret-file"));
  g_assert_true (g_str_has_prefix (error->message, conf));
  g_clear_error (&error);

  /* Empty secret file */
  g_free (write_file (dir, "jwt.secret", "\n"));
  g_assert_false (herald_config_load (config, conf, &error));
  g_assert_error (error, HERALD_CONFIG_ERROR, HERALD_CONFIG_ERROR_INVALID);
  g_assert_nonnull (strstr (error->message, "[auth] jwt-secret-file"));
  g_clear_error (&error);

  /* jwt-secret and jwt-secret-file together are ambiguous */
  g_free (write_file (dir, "herald.conf", "[auth]\njwt-secret=x\njwt-secret-file=jwt.secret\n"));
  g_assert_false (herald_config_load (config, conf, &error));
  g_assert_error (error, HERALD_CONFIG_ERROR, HERALD_CONFIG_ERROR_INVALID);
  g_clear_error (&error);

  /* Missing explicit config file */
  g_assert_cmpint (g_unlink (conf), ==, 0);
  g_assert_false (herald_config_load (config, conf, &error));
  g_assert_error (error, HERALD_CONFIG_ERROR, HERALD_CONFIG_ERROR_IO);
  g_assert_nonnull (strstr (error->message, conf));
  g_clear_error (&error);

  tmpdir_free (dir);
}

static void
test_default_path (void)
{
  g_autoptr (HeraldConfig) config = herald_config_new ();
  g_autoptr (GError) error = NULL;

  if (g_file_test (HERALD_DEFAULT_CONFIG, G_FILE_TEST_EXISTS))
    {
      g_test_skip ("a default configuration file exists on this machine");
      return;
    }
  g_assert_true (herald_config_load (config, NULL, &error));
  g_assert_no_error (error);
  g_assert_null (herald_config_get_path (config));
  g_assert_cmpuint (herald_config_get_heartbeat_interval (config), ==, 30);
  /* Nothing to reload either */
  g_assert_true (herald_config_reload_limits (config, &error));
  g_assert_no_error (error);
}

static void
test_secure_default (void)
{
  g_autoptr (GError) error = NULL;

  {
    /* No token key, public address, anonymous unset: refused */
    g_autoptr (HeraldConfig) config = load_ok ("[server]\nlisten=127.0.0.1:1;0.0.0.0:8080\n");

    g_assert_false (herald_config_validate (config, &error));
    g_assert_error (error, HERALD_CONFIG_ERROR, HERALD_CONFIG_ERROR_INVALID);
    g_test_message ("%s", error->message);
    g_assert_nonnull (strstr (error->message, "0.0.0.0:8080"));
    g_assert_nonnull (strstr (error->message, "anonymous=true"));
    g_clear_error (&error);
  }
  {
    /* The same through --listen; IPv6 shown in brackets */
    g_autoptr (HeraldConfig) config = load_ok ("");
    const char *const listen[] = { "[::]:80", NULL };

    g_assert_true (herald_config_set_listen_override (config, listen, &error));
    g_assert_false (herald_config_validate (config, &error));
    g_assert_error (error, HERALD_CONFIG_ERROR, HERALD_CONFIG_ERROR_INVALID);
    g_assert_nonnull (strstr (error->message, "[::]:80"));
    g_clear_error (&error);
  }
  {
    /* Loopback only: fine, with the anonymous-only warning */
    g_autoptr (HeraldConfig) config
        = load_ok ("[server]\nlisten=127.0.0.1:1;[::1]:2;localhost:3\n");

    g_assert_true (herald_config_validate (config, &error));
    g_test_expect_message ("Herald", G_LOG_LEVEL_WARNING, ANON_WARNING);
    herald_config_log_warnings (config);
    g_test_assert_expected_messages ();
    g_assert_no_error (error);
    g_assert_true (herald_config_get_anonymous (config));
    /* ...where anonymous clients may publish to the demo page's channels */
    g_assert_cmpstrv (herald_config_get_anonymous_publish (config),
                      ((const char *const[]){ HERALD_DEMO_CHANNELS, NULL }));
  }
  {
    /* anonymous-publish written, even empty: taken as written */
    g_autoptr (HeraldConfig) config = load_ok ("[auth]\nanonymous-publish=\n");

    g_assert_true (herald_config_validate (config, &error));
    g_assert_null (herald_config_get_anonymous_publish (config)[0]);
  }
  {
    /* Explicit anonymous=true allows the public address, still warns */
    g_autoptr (HeraldConfig) config
        = load_ok ("[server]\nlisten=0.0.0.0:8080\n[auth]\nanonymous=true\n");

    g_assert_true (herald_config_validate (config, &error));
    g_test_expect_message ("Herald", G_LOG_LEVEL_WARNING, ANON_WARNING);
    herald_config_log_warnings (config);
    g_test_assert_expected_messages ();
    g_assert_no_error (error);
    /* ...but opens no channel for anonymous publishing */
    g_assert_null (herald_config_get_anonymous_publish (config)[0]);
  }
  {
    /* With a secret: fine, no warning (any warning would abort the test) */
    g_autoptr (HeraldConfig) config
        = load_ok ("[server]\nlisten=0.0.0.0:8080\n[auth]\njwt-secret=0123456789abcdef\n");

    g_assert_true (herald_config_validate (config, &error));
    g_assert_no_error (error);
    g_assert_false (herald_config_get_anonymous (config));
    g_assert_null (herald_config_get_anonymous_publish (config)[0]);
  }
  {
    /* A secret on loopback: no anonymous publishing either */
    g_autoptr (HeraldConfig) config = load_ok ("[auth]\njwt-secret=0123456789abcdef\n");

    g_assert_true (herald_config_validate (config, &error));
    g_assert_null (herald_config_get_anonymous_publish (config)[0]);
  }
  {
    /* A secret plus explicit anonymous=true */
    g_autoptr (HeraldConfig) config
        = load_ok ("[auth]\njwt-secret=0123456789abcdef\nanonymous=true\n");

    g_assert_true (herald_config_get_anonymous (config));
  }
  {
    /* anonymous=false and no key: nobody could ever connect */
    g_autoptr (HeraldConfig) config = load_ok ("[auth]\nanonymous=false\n");

    g_assert_false (herald_config_get_anonymous (config));
    g_assert_false (herald_config_validate (config, &error));
    g_assert_error (error, HERALD_CONFIG_ERROR, HERALD_CONFIG_ERROR_INVALID);
    g_clear_error (&error);
  }
}

/* [auth] jwks-url and jwks-refresh: values, the conflicts with other key
 * sources, the anonymous rules, --print-config */
static void
test_jwks (void)
{
  g_autoptr (GError) error = NULL;

  {
    g_autoptr (HeraldConfig) config
        = load_ok ("[auth]\njwks-url= https://idp.example/.well-known/jwks.json \n");
    g_autofree char *printed = NULL;

    g_assert_cmpstr (herald_config_get_jwks_url (config), ==,
                     "https://idp.example/.well-known/jwks.json");
    g_assert_cmpuint (herald_config_get_jwks_refresh (config), ==, 300);
    g_assert_false (herald_config_get_jwt_algorithm_set (config));
    /* a token key for the anonymous rules */
    g_assert_true (herald_config_has_token_key (config));
    g_assert_false (herald_config_get_anonymous (config));
    g_assert_true (herald_config_validate (config, &error));
    g_assert_no_error (error);

    /* printed: the URL and refresh; jwt-algorithm unset, so the printed
     * file loads and validates again */
    printed = herald_config_print (config);
    g_assert_nonnull (strstr (printed, "\njwks-url=https://idp.example/.well-known/jwks.json\n"));
    g_assert_nonnull (strstr (printed, "\njwks-refresh=300\n"));
    g_assert_null (strstr (printed, "\njwt-algorithm="));
    {
      g_autoptr (HeraldConfig) again = load_ok (printed);

      g_assert_true (herald_config_validate (again, &error));
      g_assert_no_error (error);
      g_assert_cmpstr (herald_config_get_jwks_url (again), ==,
                       "https://idp.example/.well-known/jwks.json");
    }
  }
  {
    g_autoptr (HeraldConfig) config = load_ok ("[auth]\njwks-url=http://127.0.0.1:9/k\n"
                                               "jwks-refresh=60\njwt-algorithm=EdDSA\n");
    g_autofree char *printed = herald_config_print (config);

    g_assert_cmpuint (herald_config_get_jwks_refresh (config), ==, 60);
    g_assert_true (herald_config_get_jwt_algorithm_set (config));
    g_assert_cmpint (herald_config_get_jwt_algorithm (config), ==, HERALD_JWT_ALG_EDDSA);
    g_assert_true (herald_config_validate (config, &error));
    g_assert_no_error (error);
    g_assert_nonnull (strstr (printed, "\njwt-algorithm=EdDSA\n"));
  }

  /* one source of keys, and no shared-secret algorithm */
  {
    const char *bad[][2] = {
      { "[auth]\njwks-url=https://idp/k\njwt-public-key-file=/k.pem\njwt-algorithm=RS256\n",
        "not both" },
      { "[auth]\njwks-url=https://idp/k\njwt-secret=0123456789abcdef\n", "shared secret" },
      { "[auth]\njwks-url=https://idp/k\njwt-algorithm=HS256\n", "HS256" },
    };

    for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
      {
        g_autoptr (HeraldConfig) config = load_ok (bad[i][0]);

        g_assert_false (herald_config_validate (config, &error));
        g_assert_error (error, HERALD_CONFIG_ERROR, HERALD_CONFIG_ERROR_INVALID);
        g_test_message ("%s", error->message);
        g_assert_nonnull (strstr (error->message, "[auth] j"));
        g_assert_nonnull (strstr (error->message, bad[i][1]));
        g_clear_error (&error);
      }
  }
  {
    g_autoptr (HeraldConfig) config = load_ok ("[auth]\njwks-url=https://idp/k\n");
    g_autofree char *token = herald_token_generate (config, "alice", 60, NULL, NULL, &error);

    g_assert_null (token);
    g_assert_error (error, HERALD_CONFIG_ERROR, HERALD_CONFIG_ERROR_INVALID);
    g_assert_nonnull (strstr (error->message, "jwks-url"));
    g_clear_error (&error);
  }
}

static void
test_tls_and_algorithms (void)
{
  g_autoptr (GError) error = NULL;
  const char *secret = "[auth]\njwt-secret=0123456789abcdef\n";

  {
    g_autoptr (HeraldConfig) config = load_ok ("[server]\nlisten=https://127.0.0.1:8443\n"
                                               "[auth]\njwt-secret=0123456789abcdef\n");

    g_assert_false (herald_config_validate (config, &error));
    g_assert_error (error, HERALD_CONFIG_ERROR, HERALD_CONFIG_ERROR_INVALID);
    g_assert_nonnull (strstr (error->message, "tls-certificate"));
    g_clear_error (&error);
  }
  {
    /* A readable, matching pair */
    g_autofree char *cert = g_test_build_filename (G_TEST_DIST, "keys", "server-cert.pem", NULL);
    g_autofree char *key = g_test_build_filename (G_TEST_DIST, "keys", "server-key.pem", NULL);
    g_autofree char *data = g_strdup_printf ("[server]\nlisten=https://127.0.0.1:8443\n"
                                             "tls-certificate=%s\ntls-key=%s\n%s",
                                             cert, key, secret);
    g_autoptr (HeraldConfig) config = load_ok (data);

    g_assert_true (herald_config_validate (config, &error));
    g_assert_no_error (error);
  }
  {
    /* A missing key file is named as the key file, not blamed on the
     * certificate (the certificate itself is fine) */
    g_autofree char *cert = g_test_build_filename (G_TEST_DIST, "keys", "server-cert.pem", NULL);
    g_autofree char *data = g_strdup_printf ("[server]\nlisten=https://127.0.0.1:8443\n"
                                             "tls-certificate=%s\ntls-key=/nonexistent/k.pem\n%s",
                                             cert, secret);
    g_autoptr (HeraldConfig) config = load_ok (data);

    g_assert_false (herald_config_validate (config, &error));
    g_assert_error (error, HERALD_CONFIG_ERROR, HERALD_CONFIG_ERROR_INVALID);
    g_test_message ("%s", error->message);
    g_assert_nonnull (strstr (error->message, ORIGIN ":4: [server] tls-key"));
    g_assert_nonnull (strstr (error->message, "/nonexistent/k.pem"));
    g_assert_null (strstr (error->message, "tls-certificate"));
    g_clear_error (&error);
  }
  {
    /* Public key with HS256 */
    g_autoptr (HeraldConfig) config
        = load_ok ("[auth]\njwt-public-key-file=/k.pem\njwt-algorithm=HS256\n");

    g_assert_false (herald_config_validate (config, &error));
    g_assert_error (error, HERALD_CONFIG_ERROR, HERALD_CONFIG_ERROR_INVALID);
    g_assert_nonnull (strstr (error->message, "jwt-algorithm"));
    g_clear_error (&error);
  }
  {
    /* A secret with RS256 and no public key */
    g_autofree char *data = g_strconcat (secret, "jwt-algorithm=RS256\n", NULL);
    g_autoptr (HeraldConfig) config = load_ok (data);

    g_assert_false (herald_config_validate (config, &error));
    g_assert_error (error, HERALD_CONFIG_ERROR, HERALD_CONFIG_ERROR_INVALID);
    g_assert_nonnull (strstr (error->message, "RS256"));
    g_clear_error (&error);
  }
}

static void
count_notify (GObject *object, GParamSpec *pspec, gpointer user_data)
{
  (*(guint *)user_data)++;
}

static void
test_setters (void)
{
  g_autoptr (HeraldConfig) config = herald_config_new ();
  g_autoptr (GError) error = NULL;
  guint notified = 0;
  guint value = 0;

  g_signal_connect (config, "notify::heartbeat-interval", G_CALLBACK (count_notify), &notified);

  g_assert_true (herald_config_set_heartbeat_interval (config, 10, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (herald_config_get_heartbeat_interval (config), ==, 10);
  g_assert_cmpuint (notified, ==, 1);

  /* Unchanged: no notify */
  g_assert_true (herald_config_set_heartbeat_interval (config, 10, &error));
  g_assert_cmpuint (notified, ==, 1);

  /* Out of range: error, nothing changes */
  g_assert_false (herald_config_set_heartbeat_interval (config, 0, &error));
  g_assert_error (error, HERALD_CONFIG_ERROR, HERALD_CONFIG_ERROR_INVALID);
  g_assert_cmpstr (error->message, ==, "heartbeat-interval must be between 1 and 3600");
  g_clear_error (&error);
  g_assert_false (herald_config_set_heartbeat_interval (config, 3601, &error));
  g_clear_error (&error);
  g_assert_cmpuint (herald_config_get_heartbeat_interval (config), ==, 10);
  g_assert_cmpuint (notified, ==, 1);

  /* Through the property too */
  g_object_set (config, "heartbeat-interval", 20u, NULL);
  g_assert_cmpuint (notified, ==, 2);
  g_object_set (config, "heartbeat-interval", 20u, NULL);
  g_assert_cmpuint (notified, ==, 2);
  g_object_get (config, "heartbeat-interval", &value, NULL);
  g_assert_cmpuint (value, ==, 20);

  /* The other setters: bounds inclusive, outside refused */
  g_assert_true (herald_config_set_connection_timeout (config, 2, NULL));
  g_assert_false (herald_config_set_connection_timeout (config, 1, NULL));
  g_assert_true (herald_config_set_connection_timeout (config, 86400, NULL));
  g_assert_false (herald_config_set_connection_timeout (config, 86401, NULL));
  g_assert_cmpuint (herald_config_get_connection_timeout (config), ==, 86400);

  g_assert_true (herald_config_set_max_connections (config, 1, NULL));
  g_assert_false (herald_config_set_max_connections (config, 0, NULL));
  g_assert_true (herald_config_set_max_connections (config, 1000000, NULL));
  g_assert_false (herald_config_set_max_connections (config, 1000001, NULL));
  g_assert_cmpuint (herald_config_get_max_connections (config), ==, 1000000);

  g_assert_true (herald_config_set_max_message_size (config, 128, NULL));
  g_assert_false (herald_config_set_max_message_size (config, 127, NULL));
  g_assert_true (herald_config_set_max_message_size (config, 16777216, NULL));
  g_assert_false (herald_config_set_max_message_size (config, 16777217, NULL));
  g_assert_cmpuint (herald_config_get_max_message_size (config), ==, 16777216);

  g_assert_true (herald_config_set_send_queue_max_bytes (config, 4096, NULL));
  g_assert_false (herald_config_set_send_queue_max_bytes (config, 4095, NULL));
  g_assert_true (herald_config_set_send_queue_max_bytes (config, 1073741824, NULL));
  g_assert_false (herald_config_set_send_queue_max_bytes (config, 1073741825, &error));
  g_assert_error (error, HERALD_CONFIG_ERROR, HERALD_CONFIG_ERROR_INVALID);
  g_assert_nonnull (strstr (error->message, "send-queue-max-bytes"));
  g_assert_cmpuint (herald_config_get_send_queue_max_bytes (config), ==, 1073741824);

  /* Only heartbeat-interval changes were counted */
  g_assert_cmpuint (notified, ==, 2);
}

static void
test_reload_limits (void)
{
  char *dir = tmpdir_new ();
  g_autofree char *conf = write_file (dir, "herald.conf",
                                      "[server]\nworkers=2\n"
                                      "[limits]\nheartbeat-interval=10\nmax-connections=50\n"
                                      "messages-per-second=5\n"
                                      "max-subscriptions-per-connection=0\n");
  g_autoptr (HeraldConfig) config = herald_config_new ();
  g_autoptr (GError) error = NULL;
  guint heartbeat_notified = 0;
  guint timeout_notified = 0;

  g_assert_true (herald_config_load (config, conf, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (herald_config_get_heartbeat_interval (config), ==, 10);
  g_assert_cmpuint (herald_config_get_max_connections (config), ==, 50);
  g_assert_cmpuint (herald_config_get_max_subscriptions_per_connection (config), ==, 0);

  g_signal_connect (config, "notify::heartbeat-interval", G_CALLBACK (count_notify),
                    &heartbeat_notified);
  g_signal_connect (config, "notify::connection-timeout", G_CALLBACK (count_notify),
                    &timeout_notified);

  /* New limits applied; keys removed go back to defaults; other groups ignored */
  g_free (write_file (dir, "herald.conf",
                      "[server]\nworkers=4\n"
                      "[limits]\nheartbeat-interval=15\nmax-connections=50\n"
                      "max-message-size=1024\n"));
  g_assert_true (herald_config_reload_limits (config, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (herald_config_get_heartbeat_interval (config), ==, 15);
  g_assert_cmpuint (herald_config_get_max_message_size (config), ==, 1024);
  g_assert_cmpuint (herald_config_get_max_connections (config), ==, 50);
  g_assert_cmpuint (herald_config_get_messages_per_second (config), ==, 0);
  g_assert_cmpuint (herald_config_get_max_subscriptions_per_connection (config), ==, 128);
  g_assert_cmpuint (herald_config_get_workers (config), ==, 2);
  g_assert_cmpuint (heartbeat_notified, ==, 1);
  g_assert_cmpuint (timeout_notified, ==, 0);

  /* One bad value: error, nothing changes, even the valid ones before it */
  g_free (write_file (dir, "herald.conf",
                      "[limits]\nheartbeat-interval=20\nmax-connections=60\n"
                      "connection-timeout=1\n"));
  g_assert_false (herald_config_reload_limits (config, &error));
  g_assert_error (error, HERALD_CONFIG_ERROR, HERALD_CONFIG_ERROR_INVALID);
  g_assert_nonnull (strstr (error->message, "[limits] connection-timeout"));
  g_clear_error (&error);
  g_assert_cmpuint (herald_config_get_heartbeat_interval (config), ==, 15);
  g_assert_cmpuint (herald_config_get_max_connections (config), ==, 50);
  g_assert_cmpuint (heartbeat_notified, ==, 1);

  /* Broken syntax: error, nothing changes */
  g_free (write_file (dir, "herald.conf", "[limits]\nheartbeat-interval=25\n[oops\n"));
  g_assert_false (herald_config_reload_limits (config, &error));
  g_assert_error (error, HERALD_CONFIG_ERROR, HERALD_CONFIG_ERROR_INVALID);
  g_assert_nonnull (strstr (error->message, ":3:"));
  g_clear_error (&error);
  g_assert_cmpuint (herald_config_get_heartbeat_interval (config), ==, 15);

  /* File gone: IO error, nothing changes */
  g_assert_cmpint (g_unlink (conf), ==, 0);
  g_assert_false (herald_config_reload_limits (config, &error));
  g_assert_error (error, HERALD_CONFIG_ERROR, HERALD_CONFIG_ERROR_IO);
  g_clear_error (&error);
  g_assert_cmpuint (herald_config_get_heartbeat_interval (config), ==, 15);

  tmpdir_free (dir);
}

typedef struct
{
  const char *text;
  const char *host; /* NULL = must fail */
  guint port;
  gboolean tls;
  gboolean loopback;
} AddressCase;

static const AddressCase address_cases[] = {
  { "127.0.0.1:8080", "127.0.0.1", 8080, FALSE, TRUE },
  { "127.1.2.3:1", "127.1.2.3", 1, FALSE, TRUE },
  { "0.0.0.0:0", "0.0.0.0", 0, FALSE, FALSE },
  { "localhost:65535", "localhost", 65535, FALSE, TRUE },
  { "LocalHost:80", "LocalHost", 80, FALSE, TRUE },
  { "example.org:80", "example.org", 80, FALSE, FALSE },
  { "[::1]:80", "::1", 80, FALSE, TRUE },
  { "[::]:80", "::", 80, FALSE, FALSE },
  { "[fe80::1]:443", "fe80::1", 443, FALSE, FALSE },
  { "http://127.0.0.1:80", "127.0.0.1", 80, FALSE, TRUE },
  { "https://0.0.0.0:443", "0.0.0.0", 443, TRUE, FALSE },
  { "https://[::1]:8443", "::1", 8443, TRUE, TRUE },
  { "10.0.0.1:80", "10.0.0.1", 80, FALSE, FALSE },
  /* bad */
  { "127.0.0.1", NULL },
  { "127.0.0.1:", NULL },
  { "127.0.0.1:70000", NULL },
  { "127.0.0.1:-1", NULL },
  { "127.0.0.1:80x", NULL },
  { "127.0.0.1:80/", NULL },
  { ":8080", NULL },
  { "http://", NULL },
  { "https://", NULL },
  { "ftp://127.0.0.1:21", NULL },
  { "::1:80", NULL },
  { "[::1]", NULL },
  { "[::1]80", NULL },
  { "[::1:80", NULL },
  { "[127.0.0.1]:80", NULL },
  { "[nonsense]:80", NULL },
  { "garbage", NULL },
  { "bad host:80", NULL },
  { "", NULL },
};

static void
test_listen_address_parse (void)
{
  for (gsize i = 0; i < G_N_ELEMENTS (address_cases); i++)
    {
      const AddressCase *c = &address_cases[i];
      g_autoptr (GError) error = NULL;
      g_autoptr (HeraldListenAddress) address
          = herald_listen_address_parse (c->text, "--listen", &error);

      g_test_message ("“%s”", c->text);
      if (c->host == NULL)
        {
          g_assert_null (address);
          g_assert_error (error, HERALD_CONFIG_ERROR, HERALD_CONFIG_ERROR_INVALID);
          g_test_message ("→ %s", error->message);
          g_assert_true (g_str_has_prefix (error->message, "--listen: "));
          continue;
        }
      g_assert_no_error (error);
      g_assert_nonnull (address);
      g_assert_cmpstr (address->host, ==, c->host);
      g_assert_cmpuint (address->port, ==, c->port);
      g_assert_cmpint (address->tls, ==, c->tls);
      g_assert_cmpint (herald_listen_address_is_loopback (address), ==, c->loopback);
    }
}

/* [server] drain-seconds: 10 by default, 0 – 600, printed with its comment. */
static void
test_drain_seconds (void)
{
  {
    g_autoptr (HeraldConfig) config = herald_config_new ();
    g_assert_cmpuint (herald_config_get_drain_seconds (config), ==, 10);
  }
  {
    g_autoptr (HeraldConfig) config = load_ok ("[server]\ndrain-seconds=0\n");
    g_assert_cmpuint (herald_config_get_drain_seconds (config), ==, 0);
  }
  {
    g_autoptr (HeraldConfig) config = load_ok ("[server]\ndrain-seconds=600\n");
    g_autofree char *printed = herald_config_print (config);
    g_assert_cmpuint (herald_config_get_drain_seconds (config), ==, 600);
    g_assert_nonnull (strstr (printed, "\ndrain-seconds=600\n"));
    g_assert_nonnull (strstr (printed, "SIGTERM spreads"));
  }
  for (guint i = 0; i < 3; i++)
    {
      const char *bad[] = { "[server]\ndrain-seconds=601\n", "[server]\ndrain-seconds=-1\n",
                            "[server]\ndrain-seconds=soon\n" };
      g_autoptr (HeraldConfig) config = load_ok ("[server]\ndrain-seconds=4\n");
      g_autoptr (GError) error = NULL;

      g_assert_false (herald_config_load_data (config, bad[i], -1, ORIGIN, &error));
      g_assert_error (error, HERALD_CONFIG_ERROR, HERALD_CONFIG_ERROR_INVALID);
      g_assert_nonnull (strstr (error->message, "drain-seconds"));
      /* a failed load keeps what was there */
      g_assert_cmpuint (herald_config_get_drain_seconds (config), ==, 4);
    }
}

static void
test_overrides (void)
{
  g_autoptr (HeraldConfig) config = load_ok ("[server]\nlisten=127.0.0.1:1\nworkers=5\n");
  g_autoptr (GError) error = NULL;
  const char *const good[] = { "127.0.0.1:2", "[::1]:3", NULL };
  const char *const bad[] = { "127.0.0.1:4", "nope", NULL };
  GPtrArray *listen;

  /* A bad address: error naming --listen, the list stays as it was */
  g_assert_false (herald_config_set_listen_override (config, bad, &error));
  g_assert_error (error, HERALD_CONFIG_ERROR, HERALD_CONFIG_ERROR_INVALID);
  g_assert_true (g_str_has_prefix (error->message, "--listen"));
  g_clear_error (&error);
  listen = herald_config_get_listen (config);
  g_assert_cmpuint (listen->len, ==, 1);
  g_assert_cmpuint (((HeraldListenAddress *)listen->pdata[0])->port, ==, 1);

  g_assert_true (herald_config_set_listen_override (config, good, &error));
  g_assert_no_error (error);
  listen = herald_config_get_listen (config);
  g_assert_cmpuint (listen->len, ==, 2);
  g_assert_cmpuint (((HeraldListenAddress *)listen->pdata[0])->port, ==, 2);
  g_assert_cmpstr (((HeraldListenAddress *)listen->pdata[1])->host, ==, "::1");

  g_assert_cmpuint (herald_config_get_workers (config), ==, 5);
  g_assert_false (herald_config_set_workers_override (config, -1, &error));
  g_assert_error (error, HERALD_CONFIG_ERROR, HERALD_CONFIG_ERROR_INVALID);
  g_assert_true (g_str_has_prefix (error->message, "--workers"));
  g_clear_error (&error);
  g_assert_false (herald_config_set_workers_override (config, 257, &error));
  g_clear_error (&error);
  g_assert_cmpuint (herald_config_get_workers (config), ==, 5);
  g_assert_true (herald_config_set_workers_override (config, 256, &error));
  g_assert_cmpuint (herald_config_get_workers (config), ==, 256);
  g_assert_true (herald_config_set_workers_override (config, 0, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (herald_config_get_workers (config), ==, g_get_num_processors ());
}

/* [server] metrics and admin-page: unset, on only when every listen address
 * is a loopback one (--listen included); as written otherwise. */
static void
test_metrics_switches (void)
{
  g_autoptr (GError) error = NULL;

  {
    g_autoptr (HeraldConfig) config = load_ok ("");

    g_assert_true (herald_config_get_metrics (config));
    g_assert_true (herald_config_get_admin_page (config));
  }
  {
    g_autoptr (HeraldConfig) config
        = load_ok ("[server]\nlisten=127.0.0.1:1;0.0.0.0:2\n[auth]\nanonymous=true\n");

    g_assert_false (herald_config_get_metrics (config));
    g_assert_false (herald_config_get_admin_page (config));
  }
  {
    g_autoptr (HeraldConfig) config = load_ok ("");
    const char *listen[] = { "[::]:80", NULL };

    g_assert_true (herald_config_set_listen_override (config, listen, &error));
    g_assert_false (herald_config_get_metrics (config));
    g_assert_false (herald_config_get_admin_page (config));
  }
  {
    g_autoptr (HeraldConfig) config
        = load_ok ("[server]\nlisten=0.0.0.0:2\nmetrics=true\n[auth]\nanonymous=true\n");

    g_assert_true (herald_config_get_metrics (config));
    g_assert_false (herald_config_get_admin_page (config));
  }
  {
    g_autoptr (HeraldConfig) config = load_ok ("[server]\nmetrics=false\nadmin-page=false\n");

    g_assert_false (herald_config_get_metrics (config));
    g_assert_false (herald_config_get_admin_page (config));
  }
  {
    g_autoptr (HeraldConfig) config = herald_config_new ();

    g_assert_false (herald_config_load_data (config, "[server]\nmetrics=maybe\n", -1, "t", &error));
    g_assert_nonnull (strstr (error->message, "[server] metrics"));
  }
}

static void
test_namespaces (void)
{
  g_autoptr (GError) error = NULL;
  const HeraldNamespace *ns;

  {
    g_autoptr (HeraldConfig) config = load_ok ("[history]\nsize=7\nttl=8\n");

    ns = herald_config_namespace_for (config, "news:today");
    g_assert_cmpstr (ns->name, ==, "default");
    g_assert_cmpuint (ns->history_size, ==, 7);
    g_assert_cmpuint (ns->history_ttl, ==, 8);
    g_assert_true (ns->presence);
    g_assert_false (ns->join_leave);
    g_assert_cmpint (ns->publish, ==, HERALD_NS_PUBLISH_CLAIMS);
    g_assert_cmpint (ns->subscribe, ==, HERALD_NS_SUBSCRIBE_CLAIMS);
    g_assert_false (ns->publish_proxy || ns->conflate);
  }
  {
    g_autoptr (HeraldConfig) config
        = load_ok ("[history]\nsize=7\nttl=8\n"
                   "[namespace.default]\nhistory-size=9\n"
                   "[namespace.chat]\nhistory-size=0\nhistory-ttl=60\npresence=false\n"
                   "publish=all\n"
                   "[namespace.ticker]\npublish=none\n");

    /* [namespace.default] wins over [history] where both set a key */
    ns = herald_config_namespace_for (config, "plain");
    g_assert_cmpstr (ns->name, ==, "default");
    g_assert_cmpuint (ns->history_size, ==, 9);
    g_assert_cmpuint (ns->history_ttl, ==, 8);
    g_assert_true (herald_config_namespace_for (config, "other:x") == ns
                   && herald_config_namespace_for (config, "chatty:x") == ns
                   && herald_config_namespace_for (config, "chat") == ns);

    ns = herald_config_namespace_for (config, "chat:room#alice,bob");
    g_assert_cmpstr (ns->name, ==, "chat");
    g_assert_cmpuint (ns->history_size, ==, 0);
    g_assert_cmpuint (ns->history_ttl, ==, 60);
    g_assert_false (ns->presence);
    g_assert_cmpint (ns->publish, ==, HERALD_NS_PUBLISH_ALL);

    /* Other namespaces start from the spec's defaults, not [history] */
    ns = herald_config_namespace_for (config, "ticker:EURUSD");
    g_assert_cmpstr (ns->name, ==, "ticker");
    g_assert_cmpuint (ns->history_size, ==, 100);
    g_assert_cmpuint (ns->history_ttl, ==, 300);
    g_assert_cmpint (ns->publish, ==, HERALD_NS_PUBLISH_NONE);

    /* --print-config prints them and reads back to the same values */
    {
      g_autofree char *printed = herald_config_print (config);
      g_autoptr (HeraldConfig) again = load_ok (printed);

      g_assert_nonnull (strstr (printed, "[namespace.chat]\n"));
      g_assert_nonnull (strstr (printed, "publish=all\n"));
      g_assert_null (strstr (strstr (printed, "[namespace.default]"), "(no description)"));
      ns = herald_config_namespace_for (again, "chat:x");
      g_assert_cmpstr (ns->name, ==, "chat");
      g_assert_cmpint (ns->publish, ==, HERALD_NS_PUBLISH_ALL);
      g_assert_false (ns->presence);
      g_assert_cmpuint (herald_config_namespace_for (again, "x")->history_size, ==, 9);
      g_assert_cmpint (herald_config_namespace_for (again, "ticker:y")->publish, ==,
                       HERALD_NS_PUBLISH_NONE);
    }
  }
  {
    /* Unknown keys warned with file, line and key; the rest still applies */
    g_autoptr (HeraldConfig) config = herald_config_new ();

    g_test_expect_message ("Herald", G_LOG_LEVEL_WARNING,
                           ORIGIN ":3: unknown key [namespace.chat] presense"
                                  " (did you mean “presence”?)");
    g_assert_true (herald_config_load_data (
        config, "[namespace.chat]\npublish=all\npresense=false\n", -1, ORIGIN, &error));
    g_test_assert_expected_messages ();
    g_assert_no_error (error);
    g_assert_cmpint (herald_config_namespace_for (config, "chat:a")->publish, ==,
                     HERALD_NS_PUBLISH_ALL);
    g_assert_true (herald_config_namespace_for (config, "chat:a")->presence);
  }
  {
    /* --check-config: unknown keys are problems */
    g_autoptr (HeraldConfig) config = herald_config_new ();

    herald_config_set_strict (config, TRUE);
    g_assert_false (
        herald_config_load_data (config, "[namespace.chat]\nfoo=1\n", -1, ORIGIN, &error));
    g_assert_nonnull (strstr (error->message, ORIGIN ":2: unknown key [namespace.chat] foo"));
    g_clear_error (&error);
  }
  /* Invalid values stop start-up naming FILE:LINE, group and key */
  {
    const struct
    {
      const char *data;
      const char *expected;
    } bad[] = {
      { "[namespace.a]\n\npublish=some\n", ORIGIN ":3: [namespace.a] publish:" },
      { "[namespace.a]\nsubscribe=claim\n", ORIGIN ":2: [namespace.a] subscribe:" },
      { "[namespace.a]\nhistory-size=100001\n", ORIGIN ":2: [namespace.a] history-size:" },
      { "[namespace.a]\nhistory-ttl=-1\n", ORIGIN ":2: [namespace.a] history-ttl:" },
      { "[namespace.default]\npresence=maybe\n", ORIGIN ":2: [namespace.default] presence:" },
      { "[namespace.a]\njoin-leave=yes\n", ORIGIN ":2: [namespace.a] join-leave:" },
      { "[namespace.a]\nconflate=2\n", ORIGIN ":2: [namespace.a] conflate:" },
      { "[namespace.a]\npublish-proxy=on\n", ORIGIN ":2: [namespace.a] publish-proxy:" },
      /* The backend's answers need the backend */
      { "[namespace.a]\nsubscribe=proxy\n", ORIGIN ":2: [namespace.a] subscribe: subscribe=proxy "
                                                   "needs [proxy] subscribe-url" },
      { "[namespace.a]\npublish-proxy=true\n",
        ORIGIN ":2: [namespace.a] publish-proxy: "
               "publish-proxy=true needs [proxy] publish-url" },
      { "[x]\n[namespace.a:b]\npresence=true\n", ORIGIN ":2: [namespace.a:b]:" },
      { "[namespace.]\npresence=true\n", ORIGIN ":1: [namespace.]:" },
    };

    for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
      {
        g_autoptr (HeraldConfig) config = herald_config_new ();

        if (g_str_has_prefix (bad[i].data, "[x]"))
          g_test_expect_message ("Herald", G_LOG_LEVEL_WARNING, "*unknown group [x]*");
        g_assert_false (herald_config_load_data (config, bad[i].data, -1, ORIGIN, &error));
        g_test_assert_expected_messages ();
        g_assert_error (error, HERALD_CONFIG_ERROR, HERALD_CONFIG_ERROR_INVALID);
        g_assert_nonnull (strstr (error->message, bad[i].expected));
        g_clear_error (&error);
      }
  }
  /* Built: accepted */
  {
    g_autoptr (HeraldConfig) config = herald_config_new ();

    g_assert_true (herald_config_load_data (
        config, "[namespace.ticker]\nconflate=true\n[namespace.chat]\njoin-leave=true\n", -1,
        ORIGIN, &error));
    g_assert_no_error (error);
    g_assert_true (herald_config_namespace_for (config, "chat:room")->join_leave);
    g_assert_false (herald_config_namespace_for (config, "ticker:EURUSD")->join_leave);
    g_assert_true (herald_config_namespace_for (config, "ticker:EURUSD")->conflate);
    g_assert_false (herald_config_namespace_for (config, "EURUSD")->conflate);
  }
}

static void
test_reload_namespaces (void)
{
  char *dir = tmpdir_new ();
  g_autofree char *conf
      = write_file (dir, "herald.conf", "[history]\nsize=5\n[namespace.chat]\npresence=false\n");
  g_autoptr (HeraldConfig) config = herald_config_new ();
  g_autoptr (GError) error = NULL;
  const HeraldNamespace *before;

  g_assert_true (herald_config_load (config, conf, &error));
  g_assert_no_error (error);
  before = herald_config_namespace_for (config, "chat:x");
  g_assert_false (before->presence);
  g_assert_cmpuint (herald_config_namespace_for (config, "x")->history_size, ==, 5);

  /* SIGHUP: new values for new lookups; the old pointer stays readable */
  g_free (write_file (dir, "herald.conf",
                      "[history]\nsize=6\n[namespace.chat]\npublish=all\n"
                      "[namespace.feed]\npublish=none\n"));
  g_assert_true (herald_config_reload_limits (config, &error));
  g_assert_no_error (error);
  g_assert_true (herald_config_namespace_for (config, "chat:x")->presence
                 && herald_config_namespace_for (config, "chat:x")->publish
                        == HERALD_NS_PUBLISH_ALL);
  g_assert_cmpint (herald_config_namespace_for (config, "feed:x")->publish, ==,
                   HERALD_NS_PUBLISH_NONE);
  g_assert_cmpuint (herald_config_namespace_for (config, "x")->history_size, ==, 6);
  g_assert_true (g_str_equal (before->name, "chat") && !before->presence);

  /* An invalid reload changes nothing */
  g_free (write_file (dir, "herald.conf", "[namespace.chat]\npublish=everyone\n"));
  g_assert_false (herald_config_reload_limits (config, &error));
  g_assert_nonnull (strstr (error->message, "[namespace.chat] publish"));
  g_clear_error (&error);
  g_assert_cmpint (herald_config_namespace_for (config, "chat:x")->publish, ==,
                   HERALD_NS_PUBLISH_ALL);
  tmpdir_free (dir);
}

/* [proxy]: URLs, fractional timeout, forward-headers, max-in-flight */
static void
test_proxy (void)
{
  static const struct
  {
    const char *data;
    const char *expected;
  } bad[] = {
    { "[proxy]\nconnect-url=ftp://example.org/\n", ORIGIN ":2: [proxy] connect-url: expected" },
    { "[proxy]\nrpc-url=http:///x\n", ORIGIN ":2: [proxy] rpc-url: expected" },
    { "[proxy]\ntimeout=0\n", ORIGIN ":2: [proxy] timeout: expected" },
    { "[proxy]\ntimeout=0.0005\n", ORIGIN ":2: [proxy] timeout: expected" },
    { "[proxy]\ntimeout=301\n", ORIGIN ":2: [proxy] timeout: expected" },
    { "[proxy]\ntimeout=1.\n", ORIGIN ":2: [proxy] timeout: expected" },
    { "[proxy]\ntimeout=-1\n", ORIGIN ":2: [proxy] timeout: expected" },
    { "[proxy]\nforward-headers=Cookie;Bad Name\n", ORIGIN ":2: [proxy] forward-headers: " },
    { "[proxy]\nmax-in-flight=0\n", ORIGIN ":2: [proxy] max-in-flight: expected" },
  };
  g_autoptr (HeraldConfig) defaults = herald_config_new ();
  g_autoptr (HeraldConfig) config = herald_config_new ();
  g_autoptr (GError) error = NULL;
  const char *text = "[proxy]\nconnect-url=http://127.0.0.1:1/connect\n"
                     "publish-url=https://backend.example/publish\ntimeout=0.25\n"
                     "forward-headers=Cookie;X-Session\nmax-in-flight=8\n"
                     "[namespace.p]\npublish-proxy=true\n";

  g_assert_null (herald_config_get_proxy_url (defaults, HERALD_HOOK_CONNECT));
  g_assert_cmpuint (herald_config_get_proxy_timeout_ms (defaults), ==, 1000);
  g_assert_cmpuint (herald_config_get_proxy_max_in_flight (defaults), ==, 256);
  g_assert_true (g_strv_contains (herald_config_get_proxy_forward_headers (defaults), "Cookie"));
  g_assert_false (
      g_strv_contains (herald_config_get_proxy_forward_headers (defaults), "Authorization"));

  g_assert_true (herald_config_load_data (config, text, strlen (text), ORIGIN, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (herald_config_get_proxy_url (config, HERALD_HOOK_CONNECT), ==,
                   "http://127.0.0.1:1/connect");
  g_assert_cmpstr (herald_config_get_proxy_url (config, HERALD_HOOK_PUBLISH), ==,
                   "https://backend.example/publish");
  g_assert_null (herald_config_get_proxy_url (config, HERALD_HOOK_RPC));
  g_assert_cmpuint (herald_config_get_proxy_timeout_ms (config), ==, 250);
  g_assert_cmpuint (herald_config_get_proxy_max_in_flight (config), ==, 8);
  g_assert_cmpuint (g_strv_length ((char **)herald_config_get_proxy_forward_headers (config)), ==,
                    2);
  g_assert_true (herald_config_namespace_for (config, "p:x")->publish_proxy);
  {
    /* A connect hook authenticates: no token key needed to listen beyond loopback */
    g_autoptr (HeraldConfig) open = herald_config_new ();
    const char *open_text = "[server]\nlisten=0.0.0.0:0\n"
                            "[proxy]\nconnect-url=http://127.0.0.1:1/connect\n";
    g_autoptr (HeraldConfig) closed = herald_config_new ();
    const char *closed_text = "[server]\nlisten=0.0.0.0:0\n";

    g_assert_true (herald_config_load_data (open, open_text, strlen (open_text), ORIGIN, &error));
    g_assert_true (herald_config_validate (open, &error));
    g_assert_no_error (error);
    g_assert_true (
        herald_config_load_data (closed, closed_text, strlen (closed_text), ORIGIN, &error));
    g_assert_false (herald_config_validate (closed, &error));
    g_clear_error (&error);
  }

  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr (HeraldConfig) c = herald_config_new ();
      g_autoptr (GError) e = NULL;

      g_assert_false (herald_config_load_data (c, bad[i].data, strlen (bad[i].data), ORIGIN, &e));
      g_assert_nonnull (e);
      if (!g_str_has_prefix (e->message, bad[i].expected))
        g_error ("%s: got “%s”", bad[i].data, e->message);
    }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  /* The tests set these themselves */
  clear_env ();

  g_test_add_func ("/config/defaults", test_defaults);
  g_test_add_func ("/config/all-keys", test_all_keys);
  g_test_add_func ("/config/public-key", test_public_key_and_algorithms);
  g_test_add_func ("/config/invalid-values", test_invalid_values);
  g_test_add_func ("/config/invalid-message-format", test_invalid_message_format);
  g_test_add_func ("/config/failed-load-changes-nothing", test_failed_load_changes_nothing);
  g_test_add_func ("/config/syntax-error", test_syntax_error);
  g_test_add_func ("/config/unknown-keys-warn", test_unknown_keys_warn);
  g_test_add_func ("/config/env-overrides", test_env_overrides);
  g_test_add_func ("/config/redis-selection", test_redis_selection);
  g_test_add_func ("/config/file-keys", test_file_keys);
  g_test_add_func ("/config/default-path", test_default_path);
  g_test_add_func ("/config/secure-default", test_secure_default);
  g_test_add_func ("/config/tls-and-algorithms", test_tls_and_algorithms);
  g_test_add_func ("/config/jwks", test_jwks);
  g_test_add_func ("/config/metrics-switches", test_metrics_switches);
  g_test_add_func ("/config/setters", test_setters);
  g_test_add_func ("/config/reload-limits", test_reload_limits);
  g_test_add_func ("/config/listen-address-parse", test_listen_address_parse);
  g_test_add_func ("/config/overrides", test_overrides);
  g_test_add_func ("/config/namespaces", test_namespaces);
  g_test_add_func ("/config/reload-namespaces", test_reload_namespaces);
  g_test_add_func ("/config/drain-seconds", test_drain_seconds);
  g_test_add_func ("/config/proxy", test_proxy);

  return g_test_run ();
}
