/* test-engine.c: the in-process engine — history bounds (size, ttl),
 * recovery decisions, stream recovery, positions and the presence table.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>

#include <json-glib/json-glib.h>

#include "herald-memory-engine.h"
#include "herald-redis-engine.h"

typedef struct
{
  HeraldConfig *config;
  HeraldEngine *engine;
  GPtrArray *presence; /* JSON texts of HERALD_TARGET_PRESENCE deliveries */
  guint channel_deliveries;
} Fixture;

static guint
sink (const HeraldDelivery *delivery, gpointer user_data)
{
  Fixture *f = user_data;

  if (delivery->kind == HERALD_TARGET_PRESENCE)
    {
      g_assert_cmpstr (delivery->target, ==, herald_message_get_channel (delivery->message));
      g_ptr_array_add (f->presence, g_strdup (herald_message_get_json (delivery->message, NULL)));
    }
  else if (delivery->kind == HERALD_TARGET_CHANNEL)
    f->channel_deliveries++;
  return 0;
}

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  const char *keyfile = data;
  g_autoptr (GError) error = NULL;

  f->config = herald_config_new ();
  if (keyfile)
    {
      herald_config_load_data (f->config, keyfile, -1, "test.conf", &error);
      g_assert_no_error (error);
    }
  f->engine = herald_memory_engine_new (f->config);
  f->presence = g_ptr_array_new_with_free_func (g_free);
  herald_engine_set_sink (f->engine, sink, f);
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  g_clear_object (&f->engine);
  g_clear_object (&f->config);
  g_ptr_array_unref (f->presence);
}

static void
on_published (GObject *source, GAsyncResult *result, gpointer user_data)
{
  guint64 *offset = user_data;
  g_autoptr (GError) error = NULL;

  g_assert_true (herald_engine_publish_finish (HERALD_ENGINE (source), result, offset, &error));
  g_assert_no_error (error);
}

static guint64
publish (Fixture *f, const char *channel, int value)
{
  g_autofree char *data = g_strdup_printf ("%d", value);
  guint64 offset = 0;

  herald_engine_publish_async (f->engine, channel, NULL, data, NULL, on_published, &offset);
  while (offset == 0)
    g_main_context_iteration (NULL, TRUE);
  return offset;
}

static void
assert_offsets (HeraldRecovery *r, guint64 first, guint64 last)
{
  g_assert_cmpuint (r->messages->len, ==, last - first + 1);
  for (guint i = 0; i < r->messages->len; i++)
    g_assert_cmpuint (herald_message_get_offset (g_ptr_array_index (r->messages, i)), ==,
                      first + i);
}

/* Publishing more than [history] size keeps exactly size messages. */
static void
test_history_size (Fixture *f, gconstpointer data)
{
  g_autofree char *epoch = herald_engine_dup_epoch (f->engine);

  for (int i = 1; i <= 12; i++)
    g_assert_cmpuint (publish (f, "c", i), ==, (guint64)i);
  g_assert_cmpuint (f->channel_deliveries, ==, 12);

  {
    g_autoptr (HeraldRecovery) r = herald_engine_recover (f->engine, "c", 7, epoch);
    g_assert_true (r->recovered);
    g_assert_cmpuint (r->top_offset, ==, 12);
    g_assert_cmpstr (r->epoch, ==, epoch);
    assert_offsets (r, 8, 12); /* the 5 kept */
  }
  {
    /* offset 7 was dropped: all or nothing */
    g_autoptr (HeraldRecovery) r = herald_engine_recover (f->engine, "c", 6, epoch);
    g_assert_false (r->recovered);
    g_assert_cmpuint (r->messages->len, ==, 0);
    g_assert_cmpuint (r->top_offset, ==, 12);
  }
  {
    g_autoptr (HeraldRecovery) r = herald_engine_recover (f->engine, "c", 0, NULL);
    g_assert_false (r->recovered);
  }
  {
    /* since the stream's start: the whole channel history is needed */
    const char *channels[] = { "c", NULL };
    g_autoptr (HeraldRecovery) r = herald_engine_recover_stream (f->engine, channels, epoch, 7);
    g_assert_true (r->recovered);
    assert_offsets (r, 8, 12);
    g_clear_pointer (&r, herald_recovery_free);
    r = herald_engine_recover_stream (f->engine, channels, epoch, 6);
    g_assert_false (r->recovered);
    g_assert_cmpuint (r->messages->len, ==, 0);
  }
}

/* since equal to the top, beyond it, from another epoch, on an unknown channel. */
static void
test_recover_edges (Fixture *f, gconstpointer data)
{
  g_autofree char *epoch = herald_engine_dup_epoch (f->engine);

  for (int i = 1; i <= 3; i++)
    publish (f, "c", i);
  {
    g_autoptr (HeraldRecovery) r = herald_engine_recover (f->engine, "c", 3, epoch);
    g_assert_true (r->recovered);
    g_assert_cmpuint (r->messages->len, ==, 0);
    g_assert_cmpuint (r->top_offset, ==, 3);
  }
  {
    g_autoptr (HeraldRecovery) r = herald_engine_recover (f->engine, "c", 4, epoch);
    g_assert_false (r->recovered);
    g_assert_cmpuint (r->messages->len, ==, 0);
  }
  {
    g_autoptr (HeraldRecovery) r = herald_engine_recover (f->engine, "c", 1, "other");
    g_assert_false (r->recovered);
    g_assert_cmpuint (r->messages->len, ==, 0);
    g_assert_cmpstr (r->epoch, ==, epoch);
  }
  {
    g_autoptr (HeraldRecovery) r = herald_engine_recover (f->engine, "c", 1, epoch);
    g_assert_true (r->recovered);
    assert_offsets (r, 2, 3);
  }
  {
    g_autoptr (HeraldRecovery) r = herald_engine_recover (f->engine, "nothing", 0, epoch);
    g_assert_true (r->recovered);
    g_assert_cmpuint (r->top_offset, ==, 0);
    g_clear_pointer (&r, herald_recovery_free);
    r = herald_engine_recover (f->engine, "nothing", 2, epoch);
    g_assert_false (r->recovered);
  }
  {
    const char *channels[] = { "c", NULL };
    g_autoptr (HeraldRecovery) r = herald_engine_recover_stream (f->engine, channels, "other", 1);
    g_assert_false (r->recovered);
    g_clear_pointer (&r, herald_recovery_free);
    r = herald_engine_recover_stream (f->engine, channels, epoch, 99);
    g_assert_false (r->recovered);
  }
}

/* [history] size=0: nothing kept; only "nothing missed" recovers. */
static void
test_history_none (Fixture *f, gconstpointer data)
{
  const char *channels[] = { "c", NULL };

  publish (f, "c", 1);
  publish (f, "c", 2);
  {
    g_autoptr (HeraldRecovery) r = herald_engine_recover (f->engine, "c", 1, NULL);
    g_assert_false (r->recovered);
    g_clear_pointer (&r, herald_recovery_free);
    r = herald_engine_recover (f->engine, "c", 2, NULL);
    g_assert_true (r->recovered);
    g_assert_cmpuint (r->messages->len, ==, 0);
  }
  {
    g_autofree char *epoch = herald_engine_dup_epoch (f->engine);
    g_autoptr (HeraldRecovery) r = herald_engine_recover_stream (f->engine, channels, epoch, 1);
    g_assert_false (r->recovered);
    g_clear_pointer (&r, herald_recovery_free);
    r = herald_engine_recover_stream (f->engine, channels, epoch, 2);
    g_assert_true (r->recovered);
    g_assert_cmpuint (r->messages->len, ==, 0);
  }
}

/* Several channels resume in global order. */
static void
test_recover_stream_order (Fixture *f, gconstpointer data)
{
  const char *channels[] = { "a", "b", NULL };
  g_autofree char *epoch = herald_engine_dup_epoch (f->engine);
  g_autoptr (HeraldRecovery) r = NULL;
  guint64 last = 0;

  publish (f, "a", 1);
  publish (f, "b", 2);
  publish (f, "z", 3);
  publish (f, "b", 4);
  publish (f, "a", 5);
  r = herald_engine_recover_stream (f->engine, channels, epoch, 1);
  g_assert_true (r->recovered);
  g_assert_cmpuint (r->messages->len, ==, 3);
  for (guint i = 0; i < r->messages->len; i++)
    {
      guint64 seq = herald_message_get_seq (g_ptr_array_index (r->messages, i));
      g_assert_cmpuint (seq, >, last);
      last = seq;
    }
  g_assert_cmpstr (herald_message_get_channel (g_ptr_array_index (r->messages, 0)), ==, "b");
  g_assert_cmpstr (herald_message_get_channel (g_ptr_array_index (r->messages, 2)), ==, "a");
  g_assert_cmpuint (r->top_offset, ==, 5);
}

/* [history] ttl=1: messages leave history after a second. The channel has
 * a subscriber, so it is not forgotten (test_forget_idle). */
static void
test_history_ttl (Fixture *f, gconstpointer data)
{
  g_autofree char *epoch = herald_engine_dup_epoch (f->engine);
  gint64 deadline = g_get_monotonic_time () + 2500 * G_TIME_SPAN_MILLISECOND;
  gboolean expired = FALSE;

  herald_engine_channel_occupied (f->engine, "c");
  publish (f, "c", 1);
  publish (f, "c", 2);
  {
    g_autoptr (HeraldRecovery) r = herald_engine_recover (f->engine, "c", 0, epoch);
    g_assert_true (r->recovered);
    assert_offsets (r, 1, 2);
  }
  while (!expired && g_get_monotonic_time () < deadline)
    {
      g_autoptr (HeraldRecovery) r = NULL;

      g_usleep (50 * G_TIME_SPAN_MILLISECOND);
      herald_memory_engine_expire (HERALD_MEMORY_ENGINE (f->engine));
      r = herald_engine_recover (f->engine, "c", 0, epoch);
      expired = !r->recovered;
      if (expired)
        g_assert_cmpuint (r->messages->len, ==, 0);
    }
  g_assert_true (expired);

  /* the offset continues; the position itself is still recoverable */
  {
    g_autoptr (HeraldRecovery) r = herald_engine_recover (f->engine, "c", 2, epoch);
    g_assert_true (r->recovered);
    g_assert_cmpuint (r->messages->len, ==, 0);
  }
  g_assert_cmpuint (publish (f, "c", 3), ==, 3);
  {
    g_autoptr (HeraldRecovery) r = herald_engine_recover (f->engine, "c", 2, epoch);
    g_assert_true (r->recovered);
    assert_offsets (r, 3, 3);
  }
  herald_engine_channel_vacated (f->engine, "c");
}

static gint64
n_channels (Fixture *f)
{
  return herald_engine_count_channels (f->engine);
}

static guint64
stream_seq (Fixture *f)
{
  guint64 seq = 0;

  g_assert_true (herald_engine_get_stream_position (f->engine, &seq, NULL));
  return seq;
}

/* Channels without subscriber are forgotten once idle for [history] ttl
 * (default 300 s, simulated with expire_at): 1000 distinct channels go,
 * one with a subscriber and one with live history stay. A channel resumed
 * after it was forgotten is never recovered from the old epoch or an old
 * stream position, and starts again at offset 1 in a new epoch. */
static void
test_forget_idle (Fixture *f, gconstpointer data)
{
  HeraldMemoryEngine *mem = HERALD_MEMORY_ENGINE (f->engine);
  g_autofree char *epoch = herald_engine_dup_epoch (f->engine);
  g_autofree char *new_epoch = NULL;
  guint64 before_n5, after_all, offset = 99;
  gint64 live_time;

  g_assert_cmpint (n_channels (f), ==, 0);
  herald_engine_channel_occupied (f->engine, "kept.sub");
  g_assert_cmpuint (publish (f, "kept.sub", 0), ==, 1);
  before_n5 = stream_seq (f);
  for (int i = 0; i < 1000; i++)
    {
      g_autofree char *name = g_strdup_printf ("n.%d", i);
      g_assert_cmpuint (publish (f, name, i), ==, 1);
      if (i == 5)
        before_n5 = stream_seq (f) - 1;
    }
  after_all = stream_seq (f);
  g_assert_cmpint (n_channels (f), ==, 1001);

  g_usleep (20 * G_TIME_SPAN_MILLISECOND);
  live_time = g_get_monotonic_time ();
  publish (f, "kept.history", 1);
  g_assert_cmpint (n_channels (f), ==, 1002);

  /* Within the ttl nothing goes. */
  herald_memory_engine_expire_at (mem, live_time + 100 * G_USEC_PER_SEC);
  g_assert_cmpint (n_channels (f), ==, 1002);

  /* The 1000 have been idle for 300 s; kept.history not yet; kept.sub has a
   * subscriber. */
  herald_memory_engine_expire_at (mem, live_time + 300 * G_USEC_PER_SEC - 1);
  g_assert_cmpint (n_channels (f), ==, 2);
  {
    g_autoptr (HeraldRecovery) r = herald_engine_recover (f->engine, "kept.history", 0, epoch);
    g_assert_true (r->recovered);
    assert_offsets (r, 1, 1);
  }

  /* A forgotten channel: the old epoch never recovers, nor an old offset
   * without epoch; the position reported is a new epoch at offset 0. */
  {
    g_autoptr (HeraldRecovery) r = herald_engine_recover (f->engine, "n.5", 1, epoch);
    g_assert_false (r->recovered);
    g_assert_cmpuint (r->messages->len, ==, 0);
    g_assert_cmpuint (r->top_offset, ==, 0);
    g_assert_cmpstr (r->epoch, !=, epoch);
    g_clear_pointer (&r, herald_recovery_free);
    r = herald_engine_recover (f->engine, "n.5", 1, NULL);
    g_assert_false (r->recovered);
  }
  herald_engine_get_position (f->engine, "n.5", &offset, &new_epoch);
  g_assert_cmpuint (offset, ==, 0);
  g_assert_cmpstr (new_epoch, !=, epoch);
  g_assert_null (strchr (new_epoch, '-'));
  g_assert_cmpint (n_channels (f), ==, 2); /* asking creates nothing */

  /* SSE: a position before the forgotten message cannot be resumed; after
   * every message of the forgotten channels it can. */
  {
    const char *channels[] = { "n.5", NULL };
    g_autoptr (HeraldRecovery) r
        = herald_engine_recover_stream (f->engine, channels, epoch, before_n5);
    g_assert_false (r->recovered);
    g_clear_pointer (&r, herald_recovery_free);
    g_assert_cmpuint (stream_seq (f), >, after_all);
    r = herald_engine_recover_stream (f->engine, channels, epoch, stream_seq (f));
    g_assert_true (r->recovered);
  }

  /* Its next life: offset 1 in the epoch reported while it was absent. */
  g_assert_cmpuint (publish (f, "n.5", 5), ==, 1);
  {
    g_autofree char *epoch_now = NULL;
    g_autoptr (HeraldRecovery) r = herald_engine_recover (f->engine, "n.5", 0, new_epoch);

    g_assert_true (r->recovered);
    assert_offsets (r, 1, 1);
    g_clear_pointer (&r, herald_recovery_free);
    r = herald_engine_recover (f->engine, "n.5", 0, epoch);
    g_assert_false (r->recovered);
    herald_engine_get_position (f->engine, "n.5", &offset, &epoch_now);
    g_assert_cmpuint (offset, ==, 1);
    g_assert_cmpstr (epoch_now, ==, new_epoch);
  }
  {
    /* The stream position before its first life is still not resumable. */
    const char *channels[] = { "n.5", NULL };
    g_autoptr (HeraldRecovery) r
        = herald_engine_recover_stream (f->engine, channels, epoch, before_n5);
    g_assert_false (r->recovered);
  }

  /* The subscribed channel kept its offsets. */
  g_assert_cmpuint (publish (f, "kept.sub", 1), ==, 2);
  herald_engine_channel_vacated (f->engine, "kept.sub");
  herald_memory_engine_expire_at (mem, g_get_monotonic_time () + 301 * G_USEC_PER_SEC);
  g_assert_cmpint (n_channels (f), ==, 0);
}

/* A subscriber that never saw a publish leaves nothing behind, at once, and
 * changes no epoch. */
static void
test_forget_unused (Fixture *f, gconstpointer data)
{
  g_autofree char *epoch = herald_engine_dup_epoch (f->engine);
  g_autofree char *epoch2 = NULL;
  guint64 offset = 99;

  herald_engine_channel_occupied (f->engine, "quiet");
  herald_engine_channel_occupied (f->engine, "quiet"); /* a second worker */
  g_assert_cmpint (n_channels (f), ==, 1);
  herald_engine_channel_vacated (f->engine, "quiet");
  g_assert_cmpint (n_channels (f), ==, 1);
  herald_engine_channel_vacated (f->engine, "quiet");
  g_assert_cmpint (n_channels (f), ==, 0);
  herald_engine_get_position (f->engine, "quiet", &offset, &epoch2);
  g_assert_cmpuint (offset, ==, 0);
  g_assert_cmpstr (epoch2, ==, epoch);
}

/* Creating channels forgets idle ones too (bounded work per creation), so
 * forgetting keeps pace with ever new names without waiting for a sweep. */
static void
test_forget_on_creation (Fixture *f, gconstpointer data)
{
  for (int i = 0; i < 100; i++)
    {
      g_autofree char *name = g_strdup_printf ("old.%d", i);
      publish (f, name, i);
    }
  g_assert_cmpint (n_channels (f), ==, 100);
  g_usleep (1100 * G_TIME_SPAN_MILLISECOND); /* ttl=1: the old ones are idle long enough */
  for (int i = 0; i < 100; i++)
    {
      g_autofree char *name = g_strdup_printf ("new.%d", i);
      publish (f, name, i);
    }
  /* 100 creations forgot up to 200 idle channels: all the old ones. */
  g_assert_cmpint (n_channels (f), <=, 100);
  {
    guint64 offset = 99;

    herald_engine_get_position (f->engine, "new.99", &offset, NULL);
    g_assert_cmpuint (offset, ==, 1);
  }
}

/* ttl=0: history never expires, so a channel with history is kept; one
 * without history (size=0) is forgotten after 300 s idle. */
static void
test_forget_ttl_zero (Fixture *f, gconstpointer data)
{
  HeraldMemoryEngine *mem = HERALD_MEMORY_ENGINE (f->engine);
  gboolean no_history = herald_config_get_history_size (f->config) == 0;

  publish (f, "c", 1);
  herald_memory_engine_expire_at (mem, g_get_monotonic_time () + 299 * G_USEC_PER_SEC);
  g_assert_cmpint (n_channels (f), ==, 1);
  herald_memory_engine_expire_at (mem, g_get_monotonic_time () + 301 * G_USEC_PER_SEC);
  g_assert_cmpint (n_channels (f), ==, no_history ? 0 : 1);
  if (!no_history)
    {
      g_autofree char *epoch = herald_engine_dup_epoch (f->engine);
      g_autoptr (HeraldRecovery) r = NULL;

      herald_memory_engine_expire_at (mem, g_get_monotonic_time ()
                                               + (gint64)400 * 24 * 3600 * G_USEC_PER_SEC);
      g_assert_cmpint (n_channels (f), ==, 1);
      r = herald_engine_recover (f->engine, "c", 0, epoch);
      g_assert_true (r->recovered);
      assert_offsets (r, 1, 1);
    }
}

static void
test_position (Fixture *f, gconstpointer data)
{
  g_autofree char *epoch = herald_engine_dup_epoch (f->engine);
  g_autofree char *epoch2 = NULL;
  guint64 offset = 99;

  g_assert_cmpuint (strlen (epoch), >, 0);
  g_assert_null (strchr (epoch, '-'));
  herald_engine_get_position (f->engine, "c", &offset, &epoch2);
  g_assert_cmpuint (offset, ==, 0);
  g_assert_cmpstr (epoch2, ==, epoch);
  publish (f, "c", 1);
  publish (f, "c", 2);
  publish (f, "d", 3);
  herald_engine_get_position (f->engine, "c", &offset, NULL);
  g_assert_cmpuint (offset, ==, 2);
  herald_engine_get_position (f->engine, "d", &offset, NULL);
  g_assert_cmpuint (offset, ==, 1);
}

/* Join on a user's first connection to a channel, leave on its last. */
static void
test_presence_table (Fixture *f, gconstpointer data)
{
  g_assert_true (herald_engine_presence_join (f->engine, "room", "alice"));
  g_assert_false (herald_engine_presence_join (f->engine, "room", "alice"));
  g_assert_true (herald_engine_presence_join (f->engine, "room", "bob"));
  g_assert_true (herald_engine_presence_join (f->engine, "other", "alice"));
  g_assert_false (herald_engine_presence_leave (f->engine, "room", "alice"));
  g_assert_true (herald_engine_presence_leave (f->engine, "room", "alice"));
  g_assert_true (herald_engine_presence_join (f->engine, "room", "alice"));
  g_assert_true (herald_engine_presence_leave (f->engine, "room", "bob"));

  g_assert_cmpuint (f->presence->len, ==, 6);
  g_assert_cmpstr (f->presence->pdata[0], ==,
                   "{\"type\":\"join\",\"channel\":\"room\",\"user_id\":\"alice\"}");
  g_assert_cmpstr (f->presence->pdata[1], ==,
                   "{\"type\":\"join\",\"channel\":\"room\",\"user_id\":\"bob\"}");
  g_assert_cmpstr (f->presence->pdata[2], ==,
                   "{\"type\":\"join\",\"channel\":\"other\",\"user_id\":\"alice\"}");
  g_assert_cmpstr (f->presence->pdata[3], ==,
                   "{\"type\":\"leave\",\"channel\":\"room\",\"user_id\":\"alice\"}");
  g_assert_cmpstr (f->presence->pdata[4], ==,
                   "{\"type\":\"join\",\"channel\":\"room\",\"user_id\":\"alice\"}");
  g_assert_cmpstr (f->presence->pdata[5], ==,
                   "{\"type\":\"leave\",\"channel\":\"room\",\"user_id\":\"bob\"}");
  /* presence events are not history */
  {
    g_autoptr (HeraldRecovery) r = herald_engine_recover (f->engine, "room", 0, NULL);
    g_assert_true (r->recovered);
    g_assert_cmpuint (r->top_offset, ==, 0);
  }
}

/* User ids are escaped in events. */
static void
test_presence_escaping (Fixture *f, gconstpointer data)
{
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (GError) error = NULL;
  JsonObject *obj;

  g_assert_true (herald_engine_presence_join (f->engine, "room", "a\"b\\c\n"));
  g_assert_cmpuint (f->presence->len, ==, 1);
  json_parser_load_from_data (parser, f->presence->pdata[0], -1, &error);
  g_assert_no_error (error);
  obj = json_node_get_object (json_parser_get_root (parser));
  g_assert_cmpstr (json_object_get_string_member (obj, "user_id"), ==, "a\"b\\c\n");
}

/* Both engines take their configuration, their sink and the publish result
 * from one base class: one "config" property, declared once. */
static void
test_shared_base (Fixture *f, gconstpointer data)
{
  GType types[] = { HERALD_TYPE_MEMORY_ENGINE, HERALD_TYPE_REDIS_ENGINE };
  g_autoptr (HeraldConfig) config = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (HeraldEngine) redis = NULL;

  for (gsize i = 0; i < G_N_ELEMENTS (types); i++)
    {
      g_autoptr (GTypeClass) klass = g_type_class_ref (types[i]);
      GParamSpec *pspec = g_object_class_find_property (G_OBJECT_CLASS (klass), "config");

      g_assert_true (g_type_is_a (types[i], HERALD_TYPE_ENGINE));
      g_assert_nonnull (pspec);
      g_assert_true (pspec->owner_type == HERALD_TYPE_ENGINE);
    }
  g_object_get (f->engine, "config", &config, NULL);
  g_assert_true (config == f->config);
  g_assert_true (herald_engine_get_config (f->engine) == f->config);

  /* Not started: nothing connects. */
  redis = herald_redis_engine_new (f->config, "redis://127.0.0.1:1", &error);
  g_assert_no_error (error);
  g_assert_true (herald_engine_get_config (redis) == f->config);
}

/* [namespace.NAME] history-size per channel: "small:" keeps 2, "none:" 0,
 * the default namespace [namespace.default] 4 over [history] 5. */
static void
test_namespace_history (Fixture *f, gconstpointer data)
{
  g_autofree char *epoch = herald_engine_dup_epoch (f->engine);
  const struct
  {
    const char *channel;
    guint64 first_kept; /* of 10 published; 11 = none */
  } cases[] = { { "small:c", 9 }, { "none:c", 11 }, { "c", 7 }, { "other:c", 7 } };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      for (int v = 1; v <= 10; v++)
        publish (f, cases[i].channel, v);
      {
        g_autoptr (HeraldRecovery) r
            = herald_engine_recover (f->engine, cases[i].channel, cases[i].first_kept - 1, epoch);
        g_autoptr (HeraldRecovery) older
            = herald_engine_recover (f->engine, cases[i].channel, cases[i].first_kept - 2, epoch);

        g_assert_true (r->recovered);
        g_assert_cmpuint (r->messages->len, ==, 11 - cases[i].first_kept);
        g_assert_false (older->recovered);
      }
    }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

#define ADD(path, func, conf)                                                                      \
  g_test_add (path, Fixture, conf, fixture_setup, func, fixture_teardown)
  ADD ("/engine/history-size", test_history_size, "[history]\nsize=5\n");
  ADD ("/engine/recover-edges", test_recover_edges, NULL);
  ADD ("/engine/history-none", test_history_none, "[history]\nsize=0\n");
  ADD ("/engine/recover-stream-order", test_recover_stream_order, NULL);
  ADD ("/engine/history-ttl", test_history_ttl, "[history]\nttl=1\n");
  ADD ("/engine/position", test_position, NULL);
  ADD ("/engine/forget-idle", test_forget_idle, NULL);
  ADD ("/engine/forget-unused", test_forget_unused, NULL);
  ADD ("/engine/forget-on-creation", test_forget_on_creation, "[history]\nttl=1\n");
  ADD ("/engine/forget-ttl-zero", test_forget_ttl_zero, "[history]\nttl=0\n");
  ADD ("/engine/forget-ttl-zero-no-history", test_forget_ttl_zero, "[history]\nttl=0\nsize=0\n");
  ADD ("/engine/presence-table", test_presence_table, NULL);
  ADD ("/engine/presence-escaping", test_presence_escaping, NULL);
  ADD ("/engine/shared-base", test_shared_base, NULL);
  ADD ("/engine/namespace-history", test_namespace_history,
       "[history]\nsize=5\n[namespace.default]\nhistory-size=4\n"
       "[namespace.small]\nhistory-size=2\n[namespace.none]\nhistory-size=0\n");
#undef ADD
  return g_test_run ();
}
