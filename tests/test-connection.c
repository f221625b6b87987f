/* test-connection.c: what a connection keeps compactly (docs/architecture.md,
 * "Memory per connection"): its strings in one block with the address in
 * binary, the subscription list without an array for one, the worker's
 * table of connections as a set of keys inside them.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>

#include "herald-channel.h"
#include "herald-config.h"
#include "herald-connection-table.h"
#include "herald-connection.h"
#include "herald-error.h"
#include "herald-hub.h"
#include "herald-info.h"
#include "herald-jwt.h"
#include "herald-memory-engine.h"
#include "herald-names.h"

static HeraldStats stats;
static HeraldStreamLimits limits = { 25, 60, 0, 0, 1 << 20, 65536 };
static const HeraldConnectionHostFuncs funcs = { 0 };
static HeraldConnectionHost host = { &funcs, NULL, NULL, &stats, NULL, 0, NULL, &limits };

static HeraldConnection *
make (const char *id, const char *user, const char *address)
{
  HeraldConnectionSetup setup = { 0 };

  setup.id = id;
  setup.transport = HERALD_TRANSPORT_WEBSOCKET;
  setup.fd = -1;
  setup.remote_address = address;
  if (user)
    {
      setup.claims = g_new0 (HeraldJwtClaims, 1);
      setup.claims->sub = g_strdup (user);
    }
  return herald_connection_new (&host, &setup);
}

static void
check_strings (const char *id, const char *user, const char *address)
{
  g_autoptr (HeraldConnection) conn = make (id, user, address);
  HeraldConnectionInfo *info = herald_connection_get_info (conn);

  g_assert_cmpstr (herald_connection_get_id (conn), ==, id);
  g_assert_cmpstr (herald_connection_get_user_id (conn), ==, user);
  g_assert_cmpstr (info->id, ==, id);
  g_assert_cmpstr (info->user_id, ==, user);
  g_assert_cmpstr (info->remote_address, ==, address);
  herald_connection_info_free (info);
}

static void
test_strings (void)
{
  const char *addresses[]
      = { "127.0.0.1", "10.1.2.3", "::1", "2001:db8::42", "fe80::1%eth0", "unix:/run/x", "", NULL };
  const char *users[] = { NULL, "alice", "" };

  for (guint u = 0; u < G_N_ELEMENTS (users); u++)
    for (guint a = 0; a < G_N_ELEMENTS (addresses); a++)
      check_strings ("Zm9vYmFyYmF6cXV4cXV1eA", users[u], addresses[a]);
  check_strings ("a", NULL, "192.168.0.1");
  check_strings ("a-much-longer-requested-connection-id-of-sixty-four-characters-x", "bob",
                 "::ffff:1.2.3.4");
}

static void
test_subscriptions (void)
{
  g_autoptr (HeraldConnection) conn = make ("c1", NULL, "127.0.0.1");
  HeraldChannel *channels[5];
  HeraldSubscription *subs[5];

  g_assert_cmpuint (herald_connection_get_n_subscriptions (conn), ==, 0);
  g_assert_null (herald_connection_find_subscription (conn, "ch0"));
  for (guint i = 0; i < G_N_ELEMENTS (channels); i++)
    {
      g_autofree char *name = g_strdup_printf ("ch%u", i);
      channels[i] = herald_channel_new (name);
      subs[i] = herald_connection_add_subscription (conn, channels[i]);
      g_assert_cmpuint (herald_connection_get_n_subscriptions (conn), ==, i + 1);
      g_assert_true (herald_connection_find_subscription (conn, name) == subs[i]);
      g_assert_cmpuint (herald_channel_get_n_subscribers (channels[i]), ==, 1);
    }
  /* Down to one (inline again), then none, then up again. */
  herald_connection_remove_subscription (conn, subs[1]);
  herald_connection_remove_subscription (conn, subs[4]);
  herald_connection_remove_subscription (conn, subs[0]);
  herald_connection_remove_subscription (conn, subs[3]);
  g_assert_cmpuint (herald_connection_get_n_subscriptions (conn), ==, 1);
  g_assert_true (herald_connection_get_subscription (conn, 0) == subs[2]);
  g_assert_null (herald_connection_find_subscription (conn, "ch1"));
  g_assert_true (herald_connection_find_subscription (conn, "ch2") == subs[2]);
  herald_connection_remove_subscription (conn, subs[2]);
  g_assert_cmpuint (herald_connection_get_n_subscriptions (conn), ==, 0);
  for (guint i = 0; i < G_N_ELEMENTS (channels); i++)
    g_assert_cmpuint (herald_channel_get_n_subscribers (channels[i]), ==, 0);
  subs[0] = herald_connection_add_subscription (conn, channels[0]);
  subs[1] = herald_connection_add_subscription (conn, channels[1]);
  g_assert_cmpuint (herald_connection_get_n_subscriptions (conn), ==, 2);
  /* Finalising frees what is left (ASan and valgrind check it). */
  g_clear_object (&conn);
  for (guint i = 0; i < G_N_ELEMENTS (channels); i++)
    g_object_unref (channels[i]);
}

static void
test_table (void)
{
  g_autoptr (GHashTable) table = herald_connection_table_new ();
  HeraldConnection *a = make ("aaa", NULL, NULL);
  HeraldConnection *b = make ("bbb", "u", "::1");
  HeraldConnection *conn;
  GHashTableIter iter;
  guint n = 0;

  herald_connection_table_add (table, a);
  herald_connection_table_add (table, b);
  g_assert_cmpuint (g_hash_table_size (table), ==, 2);
  g_assert_true (herald_connection_table_lookup (table, "aaa") == a);
  g_assert_true (herald_connection_table_lookup (table, "bbb") == b);
  g_assert_null (herald_connection_table_lookup (table, "ccc"));
  g_hash_table_iter_init (&iter, table);
  while (herald_connection_table_iter_next (&iter, &conn))
    {
      g_assert_true (conn == a || conn == b);
      n++;
    }
  g_assert_cmpuint (n, ==, 2);
  /* Steal leaves the table's reference to the caller. */
  g_assert_true (herald_connection_table_steal (table, a));
  g_assert_false (herald_connection_table_steal (table, a));
  g_assert_null (herald_connection_table_lookup (table, "aaa"));
  g_object_unref (a); /* the table's */
  g_object_unref (a); /* ours */
  g_object_unref (b); /* ours; the table drops its own */
}

/* The bucket starts full (the rate) and refills with time. */
static void
test_token_bucket (void)
{
  g_autoptr (HeraldConnection) conn = NULL;

  limits.messages_per_second = 3;
  conn = make ("t1", NULL, NULL);
  for (int i = 0; i < 3; i++)
    g_assert_true (herald_connection_take_token (conn));
  g_assert_false (herald_connection_take_token (conn));
  g_usleep (400 * 1000); /* at least 1.2 tokens (more on a busy machine) */
  g_assert_true (herald_connection_take_token (conn));
  limits.messages_per_second = 0;
  g_assert_true (herald_connection_take_token (conn));
}

static void
test_address_pack (void)
{
  const char *packable[] = { "127.0.0.1", "0.0.0.0",      "255.255.255.255", "::1",
                             "::",        "2001:db8::42", "::ffff:1.2.3.4" };
  const char *text[]
      = { "",          "x", "1.2.3", "01.2.3.4", "::FFFF:1.2.3.4", "2001:DB8::1", "fe80::1%eth0",
          "1.2.3.4:80" };
  guint8 packed[16];
  char buf[HERALD_ADDRESS_TEXT_MAX];

  for (guint i = 0; i < G_N_ELEMENTS (packable); i++)
    {
      gsize len = herald_address_pack (packable[i], packed);
      g_assert_cmpuint (len, ==, strchr (packable[i], ':') ? 16 : 4);
      g_assert_cmpstr (herald_address_unpack (packed, len, buf), ==, packable[i]);
    }
  for (guint i = 0; i < G_N_ELEMENTS (text); i++)
    g_assert_cmpuint (herald_address_pack (text[i], packed), ==, 0);
  g_assert_cmpuint (herald_address_pack (NULL, packed), ==, 0);
}

/* The registry keeps the address packed; releasing must give the count
 * back under the same key, or max-connections-per-ip would leak. */
static void
test_registry_per_ip (void)
{
  const char *conf = "[limits]\nmax-connections-per-ip=1\n";
  const char *ips[] = { "127.0.0.1", "::1", "::FFFF:10.0.0.1", "not-an-ip", NULL };
  g_autoptr (HeraldConfig) config = herald_config_new ();
  g_autoptr (HeraldEngine) engine = NULL;
  g_autoptr (HeraldHub) hub = NULL;
  g_autoptr (GError) error = NULL;

  herald_config_load_data (config, conf, strlen (conf), "test", &error);
  g_assert_no_error (error);
  engine = herald_memory_engine_new (config);
  hub = herald_hub_new (config, engine);
  for (int round = 0; round < 3; round++)
    for (guint i = 0; i < G_N_ELEMENTS (ips); i++)
      {
        g_autofree char *id = g_strdup_printf ("c%u", i);
        g_autofree char *other = g_strdup_printf ("d%u", i);
        const char *user = i % 2 ? "user" : NULL;

        g_assert_true (herald_hub_reserve_connection (hub, id, user, ips[i], 0, &error));
        g_assert_no_error (error);
        if (ips[i] != NULL)
          {
            g_assert_false (herald_hub_reserve_connection (hub, other, NULL, ips[i], 0, &error));
            g_assert_error (error, HERALD_ERROR, HERALD_ERROR_LIMIT_EXCEEDED);
            g_clear_error (&error);
          }
        herald_hub_connection_opened (hub, id, user, HERALD_TRANSPORT_WEBSOCKET);
        g_assert_true (herald_hub_has_connection (hub, id));
        herald_hub_release_connection (hub, id, 1000, "bye", TRUE);
        g_assert_false (herald_hub_has_connection (hub, id));
      }
  /* Signals were posted to this thread's context. */
  while (g_main_context_iteration (NULL, FALSE))
    ;
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/connection/strings", test_strings);
  g_test_add_func ("/connection/subscriptions", test_subscriptions);
  g_test_add_func ("/connection/table", test_table);
  g_test_add_func ("/connection/token-bucket", test_token_bucket);
  g_test_add_func ("/connection/address-pack", test_address_pack);
  g_test_add_func ("/connection/registry-per-ip", test_registry_per_ip);
  return g_test_run ();
}
