/* test-connection.c: what a connection keeps compactly (docs/architecture.md,
 * "Memory per connection"): its strings in one block with the address in
 * binary, the subscription list without an array for one, the worker's
 * table of connections as a set of keys inside them.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "herald-channel.h"
#include "herald-connection-table.h"
#include "herald-connection.h"
#include "herald-info.h"
#include "herald-jwt.h"

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

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/connection/strings", test_strings);
  g_test_add_func ("/connection/subscriptions", test_subscriptions);
  g_test_add_func ("/connection/table", test_table);
  return g_test_run ();
}
