/* herald-redis-engine.c: offsets, history and routing shared by many nodes through Redis.
 *
 * Threads. hiredis contexts are not thread-safe. Two asynchronous
 * connections (one for commands, one in SUBSCRIBE mode) live in the main
 * context the engine was created in; worker threads hand work to it through
 * a mutex-protected queue drained by an idle source. Synchronous questions
 * (recovery, "which node holds connection X") use a third, blocking
 * connection under a mutex with short timeouts (see docs/scaling.md).
 *
 * Wire format. A publish is one Lua script: it assigns the channel offset
 * and the global sequence number, stores the message in the channel's
 * history list and PUBLISHes it on `herald:ch:<channel>` as one payload
 *   "<offset> <seq> <prev-seq> <unix-time> <epoch> <channel>\n<data JSON>"
 * which every node parses once into one HeraldMessage. Direct messages go
 * on `herald:all` (users, broadcast: every node checks its registry) or on
 * `herald:node:<id>` (one connection, found through the `herald:conns` hash).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <sys/time.h>
#include <glib/gi18n.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include "herald-error.h"
#include "herald-redis-engine.h"
#include "herald-names.h"

#define CONNECT_TIMEOUT_MS 2000
#define SYNC_TIMEOUT_MS 1000
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 4000
#define HEARTBEAT_S 3
#define NODE_DEAD_S 15
#define META_TTL_S 86400
#define PIN_MS 1000
#define SUBSCRIBE_WAIT_MS 1000

/* KEYS: meta hash, history list, seq, epoch. ARGV: channel, data, size, ttl,
 * fresh epoch, meta ttl. */
static const char publish_script[]
    = "local epoch = redis.call('GET', KEYS[4])\n"
      "if not epoch then epoch = ARGV[5]; redis.call('SET', KEYS[4], epoch) end\n"
      "local prev = redis.call('HGET', KEYS[1], 'seq') or '0'\n"
      "local off = redis.call('HINCRBY', KEYS[1], 'off', 1)\n"
      "local seq = redis.call('INCR', KEYS[3])\n"
      "redis.call('HSET', KEYS[1], 'seq', seq)\n"
      "redis.call('EXPIRE', KEYS[1], ARGV[6])\n"
      "local t = redis.call('TIME')[1]\n"
      "local p = off .. ' ' .. seq .. ' ' .. prev .. ' ' .. t .. ' ' .. epoch .. ' ' .. ARGV[1]"
      " .. '\\n' .. ARGV[2]\n"
      "local size = tonumber(ARGV[3])\n"
      "if size > 0 then\n"
      "  redis.call('LPUSH', KEYS[2], p)\n"
      "  redis.call('LTRIM', KEYS[2], 0, size - 1)\n"
      "  if tonumber(ARGV[4]) > 0 then redis.call('EXPIRE', KEYS[2], ARGV[4]) end\n"
      "end\n"
      "redis.call('PUBLISH', 'herald:ch:' .. ARGV[1], p)\n"
      "return off\n";

/* KEYS: conns hash, nodes zset. ARGV: connection id, payload ("" = only
 * ask), seconds after which a silent node is dead. Returns receivers. */
static const char route_script[]
    = "local node = redis.call('HGET', KEYS[1], ARGV[1])\n"
      "if not node then return 0 end\n"
      "local seen = redis.call('ZSCORE', KEYS[2], node)\n"
      "local now = tonumber(redis.call('TIME')[1])\n"
      "if not seen or tonumber(seen) < now - tonumber(ARGV[3]) then\n"
      "  redis.call('HDEL', KEYS[1], ARGV[1])\n"
      "  return 0\n"
      "end\n"
      "if ARGV[2] == '' then return 1 end\n"
      "return redis.call('PUBLISH', 'herald:node:' .. node, ARGV[2])\n";

/* KEYS: this node's presence hash for the channel, nodes zset. ARGV: user,
 * delta, channel, dead after, key ttl. Publishes a join/leave event on the
 * channel's topic when the user's count over live nodes becomes 1 / 0. */
static const char presence_script[]
    = "local n = redis.call('HINCRBY', KEYS[1], ARGV[1], ARGV[2])\n"
      "if n <= 0 then redis.call('HDEL', KEYS[1], ARGV[1]) end\n"
      "redis.call('EXPIRE', KEYS[1], ARGV[5])\n"
      "local now = tonumber(redis.call('TIME')[1])\n"
      "local nodes = redis.call('ZRANGEBYSCORE', KEYS[2], now - tonumber(ARGV[4]), '+inf')\n"
      "local total = 0\n"
      "for _, node in ipairs(nodes) do\n"
      "  local c = redis.call('HGET', 'herald:p:' .. node .. ':' .. ARGV[3], ARGV[1])\n"
      "  if c then total = total + tonumber(c) end\n"
      "end\n"
      "local d = tonumber(ARGV[2])\n"
      "if (d > 0 and total == d) or (d < 0 and total == 0) then\n"
      "  local kind = 'leave'\n"
      "  if d > 0 then kind = 'join' end\n"
      "  redis.call('PUBLISH', 'herald:ch:' .. ARGV[3], 'P ' .. kind .. ' ' .. ARGV[1])\n"
      "end\n"
      "return total\n";

/* KEYS: this node's anonymous count for the channel. ARGV: delta, key ttl. */
static const char presence_anonymous_script[]
    = "local n = redis.call('INCRBY', KEYS[1], ARGV[1])\n"
      "if n <= 0 then redis.call('DEL', KEYS[1]) else redis.call('EXPIRE', KEYS[1], ARGV[2]) end\n"
      "return n\n";

/* KEYS: nodes zset. ARGV: channel, dead after, this node. Returns the other
 * live nodes' presence of the channel: { {user, count, user, count…},
 * anonymous connections }. */
static const char presence_query_script[]
    = "local now = tonumber(redis.call('TIME')[1])\n"
      "local nodes = redis.call('ZRANGEBYSCORE', KEYS[1], now - tonumber(ARGV[2]), '+inf')\n"
      "local out = {}\n"
      "local anon = 0\n"
      "for _, node in ipairs(nodes) do\n"
      "  if node ~= ARGV[3] then\n"
      "    local h = redis.call('HGETALL', 'herald:p:' .. node .. ':' .. ARGV[1])\n"
      "    for i = 1, #h do out[#out + 1] = h[i] end\n"
      "    local a = redis.call('GET', 'herald:pa:' .. node .. ':' .. ARGV[1])\n"
      "    if a then anon = anon + tonumber(a) end\n"
      "  end\n"
      "end\n"
      "return {out, anon}\n";

/* KEYS: nodes zset. ARGV: node id, dead after. */
static const char heartbeat_script[]
    = "local now = tonumber(redis.call('TIME')[1])\n"
      "redis.call('ZADD', KEYS[1], now, ARGV[1])\n"
      "redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - 10 * tonumber(ARGV[2]))\n"
      "return now\n";

typedef enum
{
  SUB_IDLE,
  SUB_SUBSCRIBING,
  SUB_SUBSCRIBED,
  SUB_UNSUBSCRIBING,
} SubState;

typedef struct
{
  guint refs; /* workers (and recoveries) that need this channel */
  SubState state;
  guint64 last_offset; /* newest offset seen here */
  gboolean primed;     /* last_offset was read from Redis since we subscribed */
} Chan;

typedef enum
{
  OP_PUBLISH,
  OP_RECONCILE, /* a channel's refs changed */
  OP_SEND,      /* PUBLISH payload on topic */
  OP_CONN_OPEN,
  OP_CONN_CLOSE,
  OP_PRESENCE, /* a = channel, b = user (NULL: anonymous), delta */
} OpType;

typedef struct
{
  OpType type;
  GTask *task;
  char *a; /* channel, topic, connection id */
  char *b; /* data, payload, user id */
  int delta;
  guint gen; /* presence: link generation when queued */
} Op;

struct _HeraldRedisEngine
{
  GObject parent_instance;

  HeraldConfig *config;
  HeraldRedisUrl *url;
  char *url_text;
  char *node_id;
  GMainContext *context;

  HeraldEngineSink sink;
  gpointer sink_data;

  GMutex lock; /* guards everything down to the next comment */
  GCond cond;
  char *epoch;
  char *degraded; /* NULL when ok */
  gboolean up;
  GHashTable *channels;    /* name → Chan */
  GHashTable *local_conns; /* connection id → user id or NULL */
  GHashTable *presence;    /* "channel\nuser", or "channel" for anonymous ones → GUINT
                              count of local connections */
  GQueue ops;
  GSource *drain_source;
  guint64 local_seq;    /* newest seq seen here */
  guint64 degraded_seq; /* local publishes since the link went down */
  guint link_gen;       /* bumped when the link comes up (presence re-registered) */

  /* main thread only */
  redisAsyncContext *cmd, *sub;
  GSource *cmd_source, *sub_source;
  gboolean cmd_ready, sub_ready, tearing_down, disposed;
  guint backoff_ms;
  GSource *reconnect_source, *timeout_source, *heartbeat_source;
  char *publish_sha;

  GMutex sync_lock; /* the blocking connection */
  redisContext *sync;
};

static void herald_redis_engine_iface_init (HeraldEngineInterface *iface);

G_DEFINE_TYPE_WITH_CODE (HeraldRedisEngine, herald_redis_engine, G_TYPE_OBJECT,
                         G_IMPLEMENT_INTERFACE (HERALD_TYPE_ENGINE, herald_redis_engine_iface_init))

enum
{
  PROP_0,
  PROP_CONFIG,
  N_PROPS
};
static GParamSpec *props[N_PROPS];

static void link_connect (HeraldRedisEngine *self);
static guint64 reply_u64 (redisReply *r);
static void link_down (HeraldRedisEngine *self, const char *why);
static void reconcile_channel (HeraldRedisEngine *self, const char *name);

/* ---- URL ---- */

void
herald_redis_url_free (HeraldRedisUrl *url)
{
  if (url == NULL)
    return;
  g_free (url->host);
  g_free (url->path);
  g_free (url->password);
  g_free (url);
}

/**
 * herald_redis_url_parse:
 * @url: `redis://[[user]:password@]host[:port][/db]` or `unix:///path[?db=N&password=P]`
 *
 * Returns: (transfer full): the parsed address, or %NULL with @error set.
 */
HeraldRedisUrl *
herald_redis_url_parse (const char *url, GError **error)
{
  g_autoptr (HeraldRedisUrl) out = g_new0 (HeraldRedisUrl, 1);
  g_autoptr (GUri) uri = NULL;
  g_autoptr (GHashTable) params = NULL;
  const char *scheme, *path, *query, *db = NULL;
  char *end = NULL;

  uri = g_uri_parse (url, G_URI_FLAGS_HAS_PASSWORD, error);
  if (uri == NULL)
    {
      g_prefix_error (error, _ ("invalid Redis URL: "));
      return NULL;
    }
  scheme = g_uri_get_scheme (uri);
  path = g_uri_get_path (uri);
  query = g_uri_get_query (uri);
  if (query)
    {
      params = g_uri_parse_params (query, -1, "&", G_URI_PARAMS_NONE, error);
      if (params == NULL)
        {
          g_prefix_error (error, _ ("invalid Redis URL: "));
          return NULL;
        }
      db = g_hash_table_lookup (params, "db");
      out->password = g_strdup (g_hash_table_lookup (params, "password"));
    }
  if (g_uri_get_password (uri) && *g_uri_get_password (uri))
    {
      g_free (out->password);
      out->password = g_strdup (g_uri_get_password (uri));
    }

  if (g_ascii_strcasecmp (scheme, "rediss") == 0)
    {
      g_set_error (error, HERALD_ERROR, HERALD_ERROR_INVALID_ARGUMENT,
                   _ ("rediss:// (TLS) is not supported by hiredis 0.14: use a local Redis, or "
                      "stunnel/spiped to a redis:// address"));
      return NULL;
    }
  if (g_ascii_strcasecmp (scheme, "unix") == 0)
    {
      if (path == NULL || path[0] != '/')
        {
          g_set_error (
              error, HERALD_ERROR, HERALD_ERROR_INVALID_ARGUMENT,
              _ ("invalid Redis URL: unix:// needs an absolute path (unix:///run/redis.sock)"));
          return NULL;
        }
      out->path = g_strdup (path);
    }
  else if (g_ascii_strcasecmp (scheme, "redis") == 0)
    {
      const char *host = g_uri_get_host (uri);
      out->host = g_strdup (host && *host ? host : "127.0.0.1");
      out->port = g_uri_get_port (uri) > 0 ? g_uri_get_port (uri) : 6379;
      if (path && path[0] == '/' && path[1] != '\0')
        db = path + 1;
    }
  else
    {
      g_set_error (error, HERALD_ERROR, HERALD_ERROR_INVALID_ARGUMENT,
                   _ ("invalid Redis URL: scheme must be redis:// or unix://"));
      return NULL;
    }
  if (db)
    {
      guint64 n = g_ascii_strtoull (db, &end, 10);
      if (end == db || *end != '\0' || n > 65535)
        {
          g_set_error (error, HERALD_ERROR, HERALD_ERROR_INVALID_ARGUMENT,
                       _ ("invalid Redis URL: database “%s” is not a number"), db);
          return NULL;
        }
      out->db = (int)n;
    }
  return g_steal_pointer (&out);
}

/* ---- small helpers ---- */

static char *
random_epoch (void)
{
  g_autofree char *id = herald_connection_id_new ();
  char *epoch = g_strndup (id, 8);

  /* SSE ids are "<epoch>-<seq>": no '-' in epochs. */
  for (char *p = epoch; *p; p++)
    if (*p == '-')
      *p = '_';
  return epoch;
}

static char *
sha1_hex (const char *text)
{
  return g_compute_checksum_for_string (G_CHECKSUM_SHA1, text, -1);
}

static void
op_free (Op *op)
{
  g_clear_object (&op->task);
  g_free (op->a);
  g_free (op->b);
  g_free (op);
}

static void
set_degraded_locked (HeraldRedisEngine *self, const char *why)
{
  g_free (self->degraded);
  self->degraded = why ? g_strdup_printf ("degraded: %s", why) : NULL;
  self->up = why == NULL;
  g_cond_broadcast (&self->cond);
}

/* A channel payload: "<offset> <seq> <prev> <time> <epoch> <channel>\n<data>". */
typedef struct
{
  guint64 offset, seq, prev;
  gint64 time;
  char *epoch;
  char *channel;
  const char *data;
} Payload;

static void
payload_clear (Payload *p)
{
  g_free (p->epoch);
  g_free (p->channel);
}

static void
payload_clear_free (gpointer data)
{
  payload_clear (data);
  g_free (data);
}

static gboolean
payload_parse (const char *text, gsize len, Payload *p)
{
  const char *nl = memchr (text, '\n', len);
  g_auto (GStrv) parts = NULL;
  g_autofree char *head = NULL;

  memset (p, 0, sizeof *p);
  if (nl == NULL || text[len] != '\0')
    return FALSE;
  head = g_strndup (text, nl - text);
  parts = g_strsplit (head, " ", 6);
  if (g_strv_length (parts) != 6)
    return FALSE;
  p->offset = g_ascii_strtoull (parts[0], NULL, 10);
  p->seq = g_ascii_strtoull (parts[1], NULL, 10);
  p->prev = g_ascii_strtoull (parts[2], NULL, 10);
  p->time = g_ascii_strtoll (parts[3], NULL, 10);
  if (p->offset == 0 || p->seq == 0 || !herald_channel_name_is_valid (parts[5]))
    return FALSE;
  p->epoch = g_strdup (parts[4]);
  p->channel = g_strdup (parts[5]);
  p->data = nl + 1;
  return *p->data != '\0';
}

static guint
deliver (HeraldRedisEngine *self, const HeraldDelivery *delivery)
{
  return self->sink ? self->sink (delivery, self->sink_data) : 0;
}

/* ---- the work queue: any thread → main context ---- */

static void run_op (HeraldRedisEngine *self, Op *op);

static gboolean
drain_ops (gpointer user_data)
{
  HeraldRedisEngine *self = user_data;
  GQueue ops = G_QUEUE_INIT;
  Op *op;

  g_mutex_lock (&self->lock);
  ops = self->ops;
  g_queue_init (&self->ops);
  g_clear_pointer (&self->drain_source, g_source_unref);
  g_mutex_unlock (&self->lock);

  while ((op = g_queue_pop_head (&ops)) != NULL)
    {
      run_op (self, op);
      op_free (op);
    }
  return G_SOURCE_REMOVE;
}

static void
push_op (HeraldRedisEngine *self, Op *op)
{
  g_mutex_lock (&self->lock);
  g_queue_push_tail (&self->ops, op);
  if (self->drain_source == NULL && !self->disposed)
    {
      self->drain_source = g_idle_source_new ();
      g_source_set_priority (self->drain_source, G_PRIORITY_DEFAULT);
      g_source_set_callback (self->drain_source, drain_ops, g_object_ref (self), g_object_unref);
      g_source_attach (self->drain_source, self->context);
    }
  g_mutex_unlock (&self->lock);
}

static Op *
op_new (OpType type, const char *a, const char *b)
{
  Op *op = g_new0 (Op, 1);
  op->type = type;
  op->a = g_strdup (a);
  op->b = g_strdup (b);
  return op;
}

/* ---- our own GSource for a hiredis async context ---- */

typedef struct
{
  GSource source;
  redisAsyncContext *ac; /* NULL once hiredis cleaned up */
  GPollFD pfd;
} RedisSource;

static void
rs_add_read (void *data)
{
  ((RedisSource *)data)->pfd.events |= G_IO_IN;
}

static void
rs_del_read (void *data)
{
  ((RedisSource *)data)->pfd.events &= ~G_IO_IN;
}

static void
rs_add_write (void *data)
{
  ((RedisSource *)data)->pfd.events |= G_IO_OUT;
}

static void
rs_del_write (void *data)
{
  ((RedisSource *)data)->pfd.events &= ~G_IO_OUT;
}

static void
rs_cleanup (void *data)
{
  RedisSource *rs = data;

  rs->ac = NULL;
  rs->pfd.events = 0;
}

static gboolean
rs_prepare (GSource *source, gint *timeout)
{
  *timeout = -1;
  return FALSE;
}

static gboolean
rs_check (GSource *source)
{
  RedisSource *rs = (RedisSource *)source;
  return rs->ac != NULL && (rs->pfd.revents & (rs->pfd.events | G_IO_ERR | G_IO_HUP)) != 0;
}

static gboolean
rs_dispatch (GSource *source, GSourceFunc callback, gpointer user_data)
{
  RedisSource *rs = (RedisSource *)source;
  gushort revents = rs->pfd.revents;

  rs->pfd.revents = 0;
  /* Either call may free the context (disconnect): check before each. */
  if (rs->ac && (revents & (G_IO_OUT | G_IO_ERR | G_IO_HUP)) && (rs->pfd.events & G_IO_OUT))
    redisAsyncHandleWrite (rs->ac);
  if (rs->ac && (revents & (G_IO_IN | G_IO_ERR | G_IO_HUP)))
    redisAsyncHandleRead (rs->ac);
  return G_SOURCE_CONTINUE;
}

static GSourceFuncs rs_funcs = { rs_prepare, rs_check, rs_dispatch, NULL, NULL, NULL };

static GSource *
redis_source_attach (redisAsyncContext *ac, GMainContext *context)
{
  RedisSource *rs = (RedisSource *)g_source_new (&rs_funcs, sizeof (RedisSource));

  rs->ac = ac;
  rs->pfd.fd = ac->c.fd;
  g_source_add_poll ((GSource *)rs, &rs->pfd);
  ac->ev.addRead = rs_add_read;
  ac->ev.delRead = rs_del_read;
  ac->ev.addWrite = rs_add_write;
  ac->ev.delWrite = rs_del_write;
  ac->ev.cleanup = rs_cleanup;
  ac->ev.data = rs;
  g_source_set_name ((GSource *)rs, "herald-redis");
  g_source_attach ((GSource *)rs, context);
  return (GSource *)rs;
}

static void
clear_source (GSource **source)
{
  if (*source)
    {
      g_source_destroy (*source);
      g_source_unref (*source);
      *source = NULL;
    }
}

/* ---- channels and subscriptions (main thread) ---- */

static void on_sub_reply (redisAsyncContext *ac, void *r, void *privdata);

static void
send_sub (HeraldRedisEngine *self, const char *verb, const char *name)
{
  g_autofree char *topic = g_strconcat ("herald:ch:", name, NULL);
  const char *argv[] = { verb, topic };

  redisAsyncCommandArgv (self->sub, on_sub_reply, NULL, 2, argv, NULL);
}

static void
reconcile_channel (HeraldRedisEngine *self, const char *name)
{
  Chan *ch;
  const char *verb = NULL;

  g_mutex_lock (&self->lock);
  ch = g_hash_table_lookup (self->channels, name);
  if (ch && self->sub_ready)
    {
      if (ch->state == SUB_IDLE && ch->refs > 0)
        {
          ch->state = SUB_SUBSCRIBING;
          verb = "SUBSCRIBE";
        }
      else if (ch->state == SUB_SUBSCRIBED && ch->refs == 0)
        {
          ch->state = SUB_UNSUBSCRIBING;
          verb = "UNSUBSCRIBE";
        }
    }
  if (ch && ch->state == SUB_IDLE && ch->refs == 0)
    g_hash_table_remove (self->channels, name);
  g_mutex_unlock (&self->lock);

  if (verb)
    {
      g_debug ("redis: %s %s", verb, name);
      send_sub (self, verb, name);
    }
}

static void
reconcile_all (HeraldRedisEngine *self)
{
  g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  GHashTableIter iter;
  gpointer key;

  g_mutex_lock (&self->lock);
  g_hash_table_iter_init (&iter, self->channels);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    g_ptr_array_add (names, g_strdup (key));
  g_mutex_unlock (&self->lock);
  for (guint i = 0; i < names->len; i++)
    reconcile_channel (self, g_ptr_array_index (names, i));
}

static void
channel_ref (HeraldRedisEngine *self, const char *name, int delta)
{
  Chan *ch;

  g_mutex_lock (&self->lock);
  ch = g_hash_table_lookup (self->channels, name);
  if (ch == NULL)
    {
      ch = g_new0 (Chan, 1);
      g_hash_table_insert (self->channels, g_strdup (name), ch);
    }
  if (delta > 0)
    ch->refs++;
  else if (ch->refs > 0)
    ch->refs--;
  g_mutex_unlock (&self->lock);
  push_op (self, op_new (OP_RECONCILE, name, NULL));
}

/* ---- receiving (main thread) ---- */

/* "join <user>" or "leave <user>" on a channel's topic. */
static void
receive_presence (HeraldRedisEngine *self, const char *channel, const char *text)
{
  g_autoptr (HeraldMessage) event = NULL;
  gboolean joined = g_str_has_prefix (text, "join ");

  if (!joined && !g_str_has_prefix (text, "leave "))
    return;
  event = herald_message_new_presence (channel, strchr (text, ' ') + 1, joined);
  deliver (self, &(HeraldDelivery){
                     .kind = HERALD_TARGET_PRESENCE, .target = channel, .message = event });
}

static void
receive_channel (HeraldRedisEngine *self, const char *name, const char *text, gsize len)
{
  g_autoptr (HeraldMessage) message = NULL;
  Payload p;
  Chan *ch;

  if (g_str_has_prefix (text, "P "))
    {
      receive_presence (self, name, text + 2);
      return;
    }
  if (!payload_parse (text, len, &p))
    {
      g_debug ("redis: ignoring a malformed channel payload");
      payload_clear (&p);
      return;
    }
  g_mutex_lock (&self->lock);
  if (g_strcmp0 (self->epoch, p.epoch) != 0)
    {
      g_free (self->epoch);
      self->epoch = g_strdup (p.epoch);
    }
  ch = g_hash_table_lookup (self->channels, p.channel);
  if (ch)
    ch->last_offset = MAX (ch->last_offset, p.offset);
  self->local_seq = MAX (self->local_seq, p.seq);
  g_mutex_unlock (&self->lock);

  message = herald_message_new_channel (p.channel, p.offset, p.seq, p.epoch, p.data);
  deliver (self, &(HeraldDelivery){ .kind = HERALD_TARGET_CHANNEL, .message = message });
  payload_clear (&p);
}

/* "<origin> A\n<data>" or "<origin> U <user-len>\n<user><data>" */
static void
receive_all (HeraldRedisEngine *self, const char *text, gsize len)
{
  const char *nl = memchr (text, '\n', len);
  g_autofree char *head = NULL;
  g_auto (GStrv) parts = NULL;
  g_autoptr (HeraldMessage) message = NULL;

  if (nl == NULL)
    return;
  head = g_strndup (text, nl - text);
  parts = g_strsplit (head, " ", 3);
  if (g_strv_length (parts) < 2 || g_str_equal (parts[0], self->node_id))
    return; /* our own: delivered locally when sent */
  if (g_str_equal (parts[1], "A"))
    {
      message = herald_message_new_direct (nl + 1);
      deliver (self, &(HeraldDelivery){ .kind = HERALD_TARGET_ALL, .message = message });
    }
  else if (g_str_equal (parts[1], "U") && parts[2])
    {
      guint64 ulen = g_ascii_strtoull (parts[2], NULL, 10);
      g_autofree char *user = NULL;

      if (ulen == 0 || ulen >= (guint64)(len - (nl + 1 - text)))
        return;
      user = g_strndup (nl + 1, ulen);
      message = herald_message_new_direct (nl + 1 + ulen);
      deliver (self,
               &(HeraldDelivery){ .kind = HERALD_TARGET_USER, .target = user, .message = message });
    }
}

/* "C <id>\n<data>" or "X <code> <id>\n<reason>" */
static void
receive_node (HeraldRedisEngine *self, const char *text, gsize len)
{
  const char *nl = memchr (text, '\n', len);
  g_autofree char *head = NULL;
  g_auto (GStrv) parts = NULL;

  if (nl == NULL)
    return;
  head = g_strndup (text, nl - text);
  parts = g_strsplit (head, " ", 3);
  if (g_strv_length (parts) == 2 && g_str_equal (parts[0], "C"))
    {
      g_autoptr (HeraldMessage) message = herald_message_new_direct (nl + 1);
      deliver (self, &(HeraldDelivery){ .kind = HERALD_TARGET_CONNECTION,
                                        .target = parts[1],
                                        .message = message });
    }
  else if (g_strv_length (parts) == 3 && g_str_equal (parts[0], "X"))
    deliver (self, &(HeraldDelivery){ .kind = HERALD_TARGET_CLOSE,
                                      .target = parts[2],
                                      .close_code = (guint16)g_ascii_strtoull (parts[1], NULL, 10),
                                      .close_reason = nl + 1 });
}

static void link_check_up (HeraldRedisEngine *self);

static void
on_sub_reply (redisAsyncContext *ac, void *r, void *privdata)
{
  HeraldRedisEngine *self = ac->data;
  redisReply *reply = r;
  const char *kind, *topic;

  if (self == NULL || reply == NULL || self->tearing_down)
    return;
  if (reply->type == REDIS_REPLY_ERROR)
    {
      g_warning (_ ("Redis: %s"), reply->str);
      return;
    }
  if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 3
      || reply->element[0]->type != REDIS_REPLY_STRING
      || reply->element[1]->type != REDIS_REPLY_STRING)
    return;
  kind = reply->element[0]->str;
  topic = reply->element[1]->str;

  if (g_str_equal (kind, "message") && reply->element[2]->type == REDIS_REPLY_STRING)
    {
      const char *text = reply->element[2]->str;
      gsize len = reply->element[2]->len;

      if (g_str_has_prefix (topic, "herald:ch:"))
        receive_channel (self, topic + strlen ("herald:ch:"), text, len);
      else if (g_str_equal (topic, "herald:all"))
        receive_all (self, text, len);
      else if (g_str_has_prefix (topic, "herald:node:"))
        receive_node (self, text, len);
    }
  else if (g_str_equal (kind, "subscribe") || g_str_equal (kind, "unsubscribe"))
    {
      gboolean subscribed = g_str_equal (kind, "subscribe");

      if (g_str_has_prefix (topic, "herald:ch:"))
        {
          const char *name = topic + strlen ("herald:ch:");
          Chan *ch;

          g_mutex_lock (&self->lock);
          ch = g_hash_table_lookup (self->channels, name);
          if (ch)
            {
              ch->state = subscribed ? SUB_SUBSCRIBED : SUB_IDLE;
              ch->primed = ch->primed && subscribed;
            }
          g_cond_broadcast (&self->cond);
          g_mutex_unlock (&self->lock);
          reconcile_channel (self, name);
        }
      else if (subscribed && g_str_has_prefix (topic, "herald:node:"))
        {
          self->sub_ready = TRUE;
          link_check_up (self);
        }
    }
}

/* ---- the link: two async connections (main thread) ---- */

static void schedule_reconnect (HeraldRedisEngine *self);

static gboolean
on_reconnect (gpointer user_data)
{
  HeraldRedisEngine *self = user_data;

  g_clear_pointer (&self->reconnect_source, g_source_unref);
  link_connect (self);
  return G_SOURCE_REMOVE;
}

static void
schedule_reconnect (HeraldRedisEngine *self)
{
  guint delay;

  if (self->reconnect_source || self->disposed)
    return;
  self->backoff_ms = CLAMP (self->backoff_ms * 2, BACKOFF_MIN_MS, BACKOFF_MAX_MS);
  /* Jitter: between half and all of the backoff, so nodes don't reconnect in step. */
  delay = self->backoff_ms / 2 + g_random_int_range (0, self->backoff_ms / 2 + 1);
  g_debug ("redis: reconnecting in %u ms", delay);
  self->reconnect_source = g_timeout_source_new (delay);
  g_source_set_callback (self->reconnect_source, on_reconnect, self, NULL);
  g_source_attach (self->reconnect_source, self->context);
}

static void
free_async (redisAsyncContext **ac, GSource **source)
{
  redisAsyncContext *c = *ac;

  *ac = NULL;
  if (c)
    {
      c->onDisconnect = NULL;
      redisAsyncFree (c); /* runs pending callbacks with NULL replies */
    }
  clear_source (source);
}

static void
link_down (HeraldRedisEngine *self, const char *why)
{
  gboolean was_up;
  GHashTableIter iter;
  Chan *ch;

  if (self->tearing_down)
    return;
  self->tearing_down = TRUE;
  g_mutex_lock (&self->lock);
  was_up = self->up;
  set_degraded_locked (self, why);
  g_hash_table_iter_init (&iter, self->channels);
  while (g_hash_table_iter_next (&iter, NULL, (gpointer *)&ch))
    {
      ch->state = SUB_IDLE;
      ch->primed = FALSE;
    }
  g_mutex_unlock (&self->lock);
  if (was_up)
    g_warning (_ ("Redis connection lost (%s): delivering locally, reconnecting"), why);
  else
    g_debug ("redis: link down: %s", why);

  self->cmd_ready = self->sub_ready = FALSE;
  free_async (&self->cmd, &self->cmd_source);
  free_async (&self->sub, &self->sub_source);
  clear_source (&self->timeout_source);
  clear_source (&self->heartbeat_source);
  self->tearing_down = FALSE;
  schedule_reconnect (self);
}

static void
on_disconnect (const redisAsyncContext *ac, int status)
{
  HeraldRedisEngine *self = ac->data;

  if (self == NULL)
    return;
  /* hiredis frees this context itself after the callback. */
  if (ac == self->cmd)
    {
      self->cmd = NULL;
      clear_source (&self->cmd_source);
    }
  else if (ac == self->sub)
    {
      self->sub = NULL;
      clear_source (&self->sub_source);
    }
  link_down (self, ac->errstr[0] ? ac->errstr : _ ("connection closed"));
}

static void
on_connect (const redisAsyncContext *ac, int status)
{
  HeraldRedisEngine *self = ac->data;

  if (self == NULL || status == REDIS_OK)
    return;
  /* hiredis frees a context whose connect failed. */
  if (ac == self->cmd)
    {
      self->cmd = NULL;
      clear_source (&self->cmd_source);
    }
  else if (ac == self->sub)
    {
      self->sub = NULL;
      clear_source (&self->sub_source);
    }
  link_down (self, ac->errstr[0] ? ac->errstr : _ ("cannot connect"));
}

static gboolean
on_connect_timeout (gpointer user_data)
{
  HeraldRedisEngine *self = user_data;

  g_clear_pointer (&self->timeout_source, g_source_unref);
  link_down (self, _ ("connect timeout"));
  return G_SOURCE_REMOVE;
}

/* Replies to AUTH, SELECT, SCRIPT LOAD and friends: any error takes the link down. */
static void
on_setup_reply (redisAsyncContext *ac, void *r, void *privdata)
{
  HeraldRedisEngine *self = ac->data;
  redisReply *reply = r;

  if (self == NULL || reply == NULL || self->tearing_down)
    return;
  if (reply->type == REDIS_REPLY_ERROR)
    {
      g_autofree char *why = g_strdup_printf ("%s: %s", (char *)privdata, reply->str);
      g_warning (_ ("Redis refused %s"), why);
      link_down (self, why);
    }
}

/* Before any channel is subscribed on this link: every message this node
 * receives from now on has a higher seq, so fresh SSE streams can start here. */
static void
on_seq_reply (redisAsyncContext *ac, void *r, void *privdata)
{
  HeraldRedisEngine *self = ac->data;
  redisReply *reply = r;

  if (self == NULL || reply == NULL || self->tearing_down)
    return;
  g_mutex_lock (&self->lock);
  self->local_seq = MAX (self->local_seq, reply_u64 (reply));
  self->degraded_seq = 0;
  g_mutex_unlock (&self->lock);
}

static void
on_epoch_reply (redisAsyncContext *ac, void *r, void *privdata)
{
  HeraldRedisEngine *self = ac->data;
  redisReply *reply = r;

  if (self == NULL || reply == NULL || self->tearing_down)
    return;
  if (reply->type != REDIS_REPLY_STRING)
    {
      link_down (self, _ ("cannot read herald:epoch"));
      return;
    }
  g_mutex_lock (&self->lock);
  if (self->epoch && !g_str_equal (self->epoch, reply->str))
    {
      GHashTableIter iter;
      Chan *ch;

      g_warning (_ ("Redis history was lost (epoch was %s, now %s): clients will recover with "
                    "recovered:false"),
                 self->epoch, reply->str);
      g_hash_table_iter_init (&iter, self->channels);
      while (g_hash_table_iter_next (&iter, NULL, (gpointer *)&ch))
        ch->last_offset = 0;
    }
  g_free (self->epoch);
  self->epoch = g_strdup (reply->str);
  g_mutex_unlock (&self->lock);
  self->cmd_ready = TRUE;
  link_check_up (self);
}

static void
cmd_argv (HeraldRedisEngine *self, redisCallbackFn *fn, void *privdata, int argc, const char **argv,
          const size_t *lens)
{
  if (self->cmd)
    redisAsyncCommandArgv (self->cmd, fn, privdata, argc, argv, lens);
}

static void
send_auth_select (HeraldRedisEngine *self, redisAsyncContext *ac)
{
  if (self->url->password)
    {
      const char *argv[] = { "AUTH", self->url->password };
      redisAsyncCommandArgv (ac, on_setup_reply, (char *)"AUTH", 2, argv, NULL);
    }
  if (self->url->db)
    {
      g_autofree char *db = g_strdup_printf ("%d", self->url->db);
      const char *argv[] = { "SELECT", db };
      redisAsyncCommandArgv (ac, on_setup_reply, (char *)"SELECT", 2, argv, NULL);
    }
}

static void
heartbeat (HeraldRedisEngine *self)
{
  g_autofree char *dead = g_strdup_printf ("%d", NODE_DEAD_S);
  const char *argv[] = { "EVAL", heartbeat_script, "1", "herald:nodes", self->node_id, dead };

  g_autoptr (GHashTable) channels = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_autofree char *ttl = g_strdup_printf ("%d", NODE_DEAD_S);
  GHashTableIter iter;
  gpointer key, kinds_ptr;

  cmd_argv (self, on_setup_reply, (char *)"heartbeat", G_N_ELEMENTS (argv), argv, NULL);

  /* This node's presence entries live as long as it does. */
  g_mutex_lock (&self->lock);
  g_hash_table_iter_init (&iter, self->presence);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    {
      gsize len = strcspn (key, "\n");
      char *channel = g_strndup (key, len);
      /* 1: users' entries, 2: an anonymous count */
      guint kinds = GPOINTER_TO_UINT (g_hash_table_lookup (channels, channel));

      g_hash_table_replace (channels, channel,
                            GUINT_TO_POINTER (kinds | (((const char *)key)[len] ? 1 : 2)));
    }
  g_mutex_unlock (&self->lock);
  g_hash_table_iter_init (&iter, channels);
  while (g_hash_table_iter_next (&iter, &key, &kinds_ptr))
    {
      guint kinds = GPOINTER_TO_UINT (kinds_ptr);
      g_autofree char *pkey = g_strconcat ("herald:p:", self->node_id, ":", key, NULL);
      g_autofree char *akey = g_strconcat ("herald:pa:", self->node_id, ":", key, NULL);
      const char *expire[] = { "EXPIRE", pkey, ttl };
      const char *expire_anon[] = { "EXPIRE", akey, ttl };

      if (kinds & 1)
        cmd_argv (self, NULL, NULL, 3, expire, NULL);
      if (kinds & 2)
        cmd_argv (self, NULL, NULL, 3, expire_anon, NULL);
    }
}

/* After a (re)connect: Redis gets this node's presence table as it is now. */
static void
register_presence (HeraldRedisEngine *self, GHashTable *snapshot)
{
  g_autoptr (GHashTable) cleared = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_autofree char *ttl = g_strdup_printf ("%d", NODE_DEAD_S);
  GHashTableIter iter;
  gpointer key, value;

  g_hash_table_iter_init (&iter, snapshot);
  while (g_hash_table_iter_next (&iter, &key, &value))
    {
      g_autofree char *channel = g_strndup (key, strcspn (key, "\n"));
      const char *user = (const char *)key + strlen (channel) + 1;
      g_autofree char *pkey = g_strconcat ("herald:p:", self->node_id, ":", channel, NULL);
      g_autofree char *count = g_strdup_printf ("%u", GPOINTER_TO_UINT (value));
      const char *del[] = { "DEL", pkey };
      const char *hset[] = { "HSET", pkey, user, count };
      const char *expire[] = { "EXPIRE", pkey, ttl };

      if (((const char *)key)[strlen (channel)] == '\0')
        {
          /* This node's anonymous connections on the channel. */
          g_autofree char *akey = g_strconcat ("herald:pa:", self->node_id, ":", channel, NULL);
          const char *set[] = { "SET", akey, count, "EX", ttl };

          cmd_argv (self, NULL, NULL, 5, set, NULL);
          continue;
        }
      if (!g_hash_table_contains (cleared, channel))
        {
          cmd_argv (self, NULL, NULL, 2, del, NULL);
          g_hash_table_add (cleared, g_strdup (channel));
        }
      cmd_argv (self, NULL, NULL, 4, hset, NULL);
      cmd_argv (self, NULL, NULL, 3, expire, NULL);
    }
}

static gboolean
on_heartbeat (gpointer user_data)
{
  heartbeat (user_data);
  return G_SOURCE_CONTINUE;
}

static void
register_connection (HeraldRedisEngine *self, const char *id)
{
  const char *argv[] = { "HSET", "herald:conns", id, self->node_id };
  cmd_argv (self, NULL, NULL, 4, argv, NULL);
}

static void
link_check_up (HeraldRedisEngine *self)
{
  g_autoptr (GPtrArray) ids = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GHashTable) presence = NULL;
  GHashTableIter iter;
  gpointer key, value;

  if (!self->cmd_ready || !self->sub_ready)
    return;
  clear_source (&self->timeout_source);
  self->backoff_ms = 0;
  g_mutex_lock (&self->lock);
  if (self->degraded)
    g_message (_ ("Redis connection established (%s), node %s"), self->url_text, self->node_id);
  set_degraded_locked (self, NULL);
  g_hash_table_iter_init (&iter, self->local_conns);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    g_ptr_array_add (ids, g_strdup (key));
  /* Presence changes queued before this point are in the snapshot. */
  self->link_gen++;
  presence = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_hash_table_iter_init (&iter, self->presence);
  while (g_hash_table_iter_next (&iter, &key, &value))
    g_hash_table_insert (presence, g_strdup (key), value);
  g_mutex_unlock (&self->lock);
  register_presence (self, presence);

  heartbeat (self);
  self->heartbeat_source = g_timeout_source_new_seconds (HEARTBEAT_S);
  g_source_set_callback (self->heartbeat_source, on_heartbeat, self, NULL);
  g_source_attach (self->heartbeat_source, self->context);
  for (guint i = 0; i < ids->len; i++)
    register_connection (self, g_ptr_array_index (ids, i));
  reconcile_all (self);
}

static redisAsyncContext *
async_connect (HeraldRedisEngine *self, GSource **source)
{
  redisAsyncContext *ac = self->url->path ? redisAsyncConnectUnix (self->url->path)
                                          : redisAsyncConnect (self->url->host, self->url->port);

  if (ac == NULL)
    return NULL;
  if (ac->err)
    {
      g_debug ("redis: connect: %s", ac->errstr);
      redisAsyncFree (ac);
      return NULL;
    }
  ac->data = self;
  redisAsyncSetConnectCallback (ac, on_connect);
  redisAsyncSetDisconnectCallback (ac, on_disconnect);
  *source = redis_source_attach (ac, self->context);
  return ac;
}

static void
link_connect (HeraldRedisEngine *self)
{
  g_autofree char *fresh = random_epoch ();
  g_autofree char *node_topic = g_strconcat ("herald:node:", self->node_id, NULL);

  if (self->disposed)
    return;
  self->cmd = async_connect (self, &self->cmd_source);
  self->sub = self->cmd ? async_connect (self, &self->sub_source) : NULL;
  if (self->cmd == NULL || self->sub == NULL)
    {
      free_async (&self->cmd, &self->cmd_source);
      link_down (self, _ ("cannot connect"));
      return;
    }
  self->timeout_source = g_timeout_source_new (CONNECT_TIMEOUT_MS);
  g_source_set_callback (self->timeout_source, on_connect_timeout, self, NULL);
  g_source_attach (self->timeout_source, self->context);

  send_auth_select (self, self->cmd);
  {
    const char *load[] = { "SCRIPT", "LOAD", publish_script };
    const char *setnx[] = { "SET", "herald:epoch", fresh, "NX" };
    const char *get[] = { "GET", "herald:epoch" };
    const char *seq[] = { "GET", "herald:seq" };
    cmd_argv (self, on_setup_reply, (char *)"SCRIPT LOAD", 3, load, NULL);
    cmd_argv (self, on_setup_reply, (char *)"SET herald:epoch", 4, setnx, NULL);
    cmd_argv (self, on_seq_reply, NULL, 2, seq, NULL);
    cmd_argv (self, on_epoch_reply, NULL, 2, get, NULL);
  }
  send_auth_select (self, self->sub);
  {
    const char *argv[] = { "SUBSCRIBE", "herald:all", node_topic };
    redisAsyncCommandArgv (self->sub, on_sub_reply, NULL, 3, argv, NULL);
  }
}

/* ---- operations (main thread) ---- */

static void
on_publish_reply (redisAsyncContext *ac, void *r, void *privdata)
{
  GTask *task = privdata;
  redisReply *reply = r;

  if (reply == NULL)
    g_task_return_new_error (task, HERALD_ERROR, HERALD_ERROR_UNAVAILABLE,
                             _ ("Redis connection lost during publish"));
  else if (reply->type == REDIS_REPLY_INTEGER)
    g_task_return_int (task, (gssize)reply->integer);
  else
    g_task_return_new_error (task, HERALD_ERROR, HERALD_ERROR_UNAVAILABLE, _ ("Redis: %s"),
                             reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply");
  g_object_unref (task);
}

/* Redis unreachable: deliver to this node's subscribers with a local offset. */
static void
publish_locally (HeraldRedisEngine *self, Op *op)
{
  g_autoptr (HeraldMessage) message = NULL;
  guint64 offset = 0, seq;
  g_autofree char *epoch = NULL;
  Chan *ch;

  g_mutex_lock (&self->lock);
  ch = g_hash_table_lookup (self->channels, op->a);
  if (ch)
    offset = ++ch->last_offset;
  /* Provisional: not recorded in local_seq, which follows Redis. */
  seq = self->local_seq + ++self->degraded_seq;
  epoch = g_strdup (self->epoch);
  g_mutex_unlock (&self->lock);

  if (ch)
    {
      message = herald_message_new_channel (op->a, offset, seq, epoch, op->b);
      deliver (self, &(HeraldDelivery){ .kind = HERALD_TARGET_CHANNEL, .message = message });
    }
  g_task_return_int (op->task, (gssize)offset);
}

static void
run_publish (HeraldRedisEngine *self, Op *op)
{
  g_autofree char *meta = g_strconcat ("herald:m:", op->a, NULL);
  g_autofree char *history = g_strconcat ("herald:h:", op->a, NULL);
  g_autofree char *size = g_strdup_printf ("%u", herald_config_get_history_size (self->config));
  g_autofree char *ttl = g_strdup_printf ("%u", herald_config_get_history_ttl (self->config));
  g_autofree char *fresh = random_epoch ();
  g_autofree char *meta_ttl = g_strdup_printf ("%d", META_TTL_S);
  const char *argv[] = { "EVALSHA",
                         self->publish_sha,
                         "4",
                         meta,
                         history,
                         "herald:seq",
                         "herald:epoch",
                         op->a,
                         op->b,
                         size,
                         ttl,
                         fresh,
                         meta_ttl };

  if (!self->cmd_ready || !self->sub_ready || self->cmd == NULL)
    {
      publish_locally (self, op);
      return;
    }
  if (redisAsyncCommandArgv (self->cmd, on_publish_reply, op->task, G_N_ELEMENTS (argv), argv, NULL)
      == REDIS_OK)
    op->task = NULL; /* the reply callback owns it now */
  else
    g_task_return_new_error (op->task, HERALD_ERROR, HERALD_ERROR_UNAVAILABLE,
                             _ ("Redis connection lost during publish"));
}

static void
run_op (HeraldRedisEngine *self, Op *op)
{
  gboolean up = self->cmd_ready && self->sub_ready && self->cmd != NULL;

  switch (op->type)
    {
    case OP_PUBLISH:
      run_publish (self, op);
      break;
    case OP_RECONCILE:
      reconcile_channel (self, op->a);
      break;
    case OP_SEND:
      if (up)
        {
          const char *argv[] = { "PUBLISH", op->a, op->b };
          cmd_argv (self, NULL, NULL, 3, argv, NULL);
        }
      break;
    case OP_CONN_OPEN:
      if (up)
        register_connection (self, op->a);
      break;
    case OP_PRESENCE:
      if (up && op->gen == self->link_gen && op->b == NULL)
        {
          g_autofree char *akey = g_strconcat ("herald:pa:", self->node_id, ":", op->a, NULL);
          g_autofree char *delta = g_strdup_printf ("%d", op->delta);
          g_autofree char *dead = g_strdup_printf ("%d", NODE_DEAD_S);
          const char *argv[] = { "EVAL", presence_anonymous_script, "1", akey, delta, dead };
          cmd_argv (self, on_setup_reply, (char *)"presence", G_N_ELEMENTS (argv), argv, NULL);
        }
      else if (up && op->gen == self->link_gen)
        {
          g_autofree char *pkey = g_strconcat ("herald:p:", self->node_id, ":", op->a, NULL);
          g_autofree char *delta = g_strdup_printf ("%d", op->delta);
          g_autofree char *dead = g_strdup_printf ("%d", NODE_DEAD_S);
          const char *argv[] = { "EVAL", presence_script, "2",   pkey, "herald:nodes",
                                 op->b,  delta,           op->a, dead, dead };
          cmd_argv (self, on_setup_reply, (char *)"presence", G_N_ELEMENTS (argv), argv, NULL);
        }
      break;
    case OP_CONN_CLOSE:
      if (up)
        {
          const char *argv[] = { "HDEL", "herald:conns", op->a };
          cmd_argv (self, NULL, NULL, 3, argv, NULL);
        }
      break;
    }
}

/* ---- the blocking connection (any thread, under sync_lock) ---- */

static redisContext *
sync_get (HeraldRedisEngine *self)
{
  struct timeval connect_tv = { 0, 500 * 1000 };
  struct timeval tv = { SYNC_TIMEOUT_MS / 1000, (SYNC_TIMEOUT_MS % 1000) * 1000 };
  redisContext *c;
  redisReply *reply;

  if (self->sync)
    return self->sync;
  c = self->url->path ? redisConnectUnixWithTimeout (self->url->path, connect_tv)
                      : redisConnectWithTimeout (self->url->host, self->url->port, connect_tv);
  if (c == NULL || c->err)
    {
      g_debug ("redis: sync connect: %s", c ? c->errstr : "out of memory");
      if (c)
        redisFree (c);
      return NULL;
    }
  redisSetTimeout (c, tv);
  if (self->url->password)
    {
      const char *argv[] = { "AUTH", self->url->password };
      reply = redisCommandArgv (c, 2, argv, NULL);
      if (reply == NULL || reply->type == REDIS_REPLY_ERROR)
        goto fail;
      freeReplyObject (reply);
    }
  if (self->url->db)
    {
      g_autofree char *db = g_strdup_printf ("%d", self->url->db);
      const char *argv[] = { "SELECT", db };
      reply = redisCommandArgv (c, 2, argv, NULL);
      if (reply == NULL || reply->type == REDIS_REPLY_ERROR)
        goto fail;
      freeReplyObject (reply);
    }
  self->sync = c;
  return c;

fail:
  if (reply)
    freeReplyObject (reply);
  redisFree (c);
  return NULL;
}

/* Runs @n pipelined commands; returns @n replies (free with sync_free) or NULL. */
static redisReply **
sync_run (HeraldRedisEngine *self, guint n, const char *const *const *argvs, const int *argcs)
{
  redisReply **replies = g_new0 (redisReply *, n);
  gboolean reused;
  redisContext *c;

  g_mutex_lock (&self->sync_lock);
again:
  reused = self->sync != NULL;
  c = sync_get (self);
  if (c == NULL)
    goto fail;
  for (guint i = 0; i < n; i++)
    redisAppendCommandArgv (c, argcs[i], (const char **)argvs[i], NULL);
  for (guint i = 0; i < n; i++)
    if (redisGetReply (c, (void **)&replies[i]) != REDIS_OK)
      {
        /* A kept connection that Redis closed meanwhile (restart): the
         * commands never ran, so one retry on a fresh connection is safe. */
        int saved = errno;
        gboolean stale
            = reused && i == 0
              && (c->err == REDIS_ERR_EOF
                  || (c->err == REDIS_ERR_IO && (saved == EPIPE || saved == ECONNRESET)));

        g_debug ("redis: sync: %s%s", c->errstr, stale ? " (stale, retrying)" : "");
        redisFree (c);
        self->sync = NULL;
        if (stale)
          goto again;
        goto fail;
      }
  g_mutex_unlock (&self->sync_lock);
  return replies;

fail:
  g_mutex_unlock (&self->sync_lock);
  for (guint i = 0; i < n; i++)
    if (replies[i])
      freeReplyObject (replies[i]);
  g_free (replies);
  return NULL;
}

static void
sync_free (redisReply **replies, guint n)
{
  if (replies == NULL)
    return;
  for (guint i = 0; i < n; i++)
    if (replies[i])
      freeReplyObject (replies[i]);
  g_free (replies);
}

static gboolean
is_up (HeraldRedisEngine *self)
{
  gboolean up;

  g_mutex_lock (&self->lock);
  up = self->up;
  g_mutex_unlock (&self->lock);
  return up;
}

/* Routes a payload to the node holding @id; "" only asks. Returns receivers. */
static guint
route_to_connection (HeraldRedisEngine *self, const char *id, const char *payload)
{
  g_autofree char *dead = g_strdup_printf ("%d", NODE_DEAD_S);
  const char *argv[]
      = { "EVAL", route_script, "2", "herald:conns", "herald:nodes", id, payload, dead };
  const char *const *argvs[] = { argv };
  int argcs[] = { G_N_ELEMENTS (argv) };
  redisReply **r;
  guint n = 0;

  if (!is_up (self))
    return 0;
  r = sync_run (self, 1, argvs, argcs);
  if (r && r[0]->type == REDIS_REPLY_INTEGER)
    n = (guint)r[0]->integer;
  else if (r && r[0]->type == REDIS_REPLY_ERROR)
    g_warning (_ ("Redis: %s"), r[0]->str);
  sync_free (r, 1);
  return n;
}

/* ---- HeraldEngine ---- */

static const char *
redis_get_name (HeraldEngine *engine)
{
  return "redis";
}

static char *
redis_dup_state (HeraldEngine *engine)
{
  HeraldRedisEngine *self = HERALD_REDIS_ENGINE (engine);
  char *state;

  g_mutex_lock (&self->lock);
  state = g_strdup (self->degraded ? self->degraded : "ok");
  g_mutex_unlock (&self->lock);
  return state;
}

static void
redis_set_sink (HeraldEngine *engine, HeraldEngineSink sink, gpointer user_data)
{
  HeraldRedisEngine *self = HERALD_REDIS_ENGINE (engine);
  self->sink = sink;
  self->sink_data = user_data;
}

static void
redis_publish_async (HeraldEngine *engine, const char *channel, const char *data_json,
                     GCancellable *cancellable, GAsyncReadyCallback callback, gpointer user_data)
{
  HeraldRedisEngine *self = HERALD_REDIS_ENGINE (engine);
  Op *op = op_new (OP_PUBLISH, channel, data_json);

  /* Created here: it completes in the caller's thread-default context. */
  op->task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (op->task, redis_publish_async);
  push_op (self, op);
}

static gboolean
redis_publish_finish (HeraldEngine *engine, GAsyncResult *result, guint64 *offset, GError **error)
{
  gssize value = g_task_propagate_int (G_TASK (result), error);

  if (value < 0)
    return FALSE;
  if (offset)
    *offset = (guint64)value;
  return TRUE;
}

static guint
redis_send (HeraldEngine *engine, HeraldTargetKind kind, const char *target, const char *data_json)
{
  HeraldRedisEngine *self = HERALD_REDIS_ENGINE (engine);
  g_autoptr (HeraldMessage) message = herald_message_new_direct (data_json);
  guint reached;
  char *payload = NULL;

  /* Local connections get it at once (and still do when Redis is down);
   * other nodes skip what they see coming from us. */
  reached = deliver (self, &(HeraldDelivery){ .kind = kind, .target = target, .message = message });
  switch (kind)
    {
    case HERALD_TARGET_ALL:
      payload = g_strdup_printf ("%s A\n%s", self->node_id, data_json);
      break;
    case HERALD_TARGET_USER:
      payload
          = g_strdup_printf ("%s U %zu\n%s%s", self->node_id, strlen (target), target, data_json);
      break;
    case HERALD_TARGET_CONNECTION:
      if (reached == 0)
        {
          g_autofree char *p = g_strdup_printf ("C %s\n%s", target, data_json);
          reached = route_to_connection (self, target, p);
        }
      return reached;
    default:
      return reached;
    }
  {
    Op *op = op_new (OP_SEND, "herald:all", NULL);
    op->b = payload;
    push_op (self, op);
  }
  return reached;
}

static void
redis_close_connection (HeraldEngine *engine, const char *id, guint16 code, const char *reason)
{
  HeraldRedisEngine *self = HERALD_REDIS_ENGINE (engine);
  g_autofree char *payload = NULL;
  g_autofree char *clean = g_strdup (reason ? reason : "");

  if (deliver (self, &(HeraldDelivery){ .kind = HERALD_TARGET_CLOSE,
                                        .target = id,
                                        .close_code = code,
                                        .close_reason = reason })
      > 0)
    return;
  g_strdelimit (clean, "\n", ' ');
  payload = g_strdup_printf ("X %u %s\n%s", code, id, clean);
  route_to_connection (self, id, payload);
}

static gboolean
redis_has_connection (HeraldEngine *engine, const char *id)
{
  return route_to_connection (HERALD_REDIS_ENGINE (engine), id, "") > 0;
}

static void
redis_connection_opened (HeraldEngine *engine, const char *id, const char *user_id)
{
  HeraldRedisEngine *self = HERALD_REDIS_ENGINE (engine);

  g_mutex_lock (&self->lock);
  g_hash_table_replace (self->local_conns, g_strdup (id), g_strdup (user_id));
  g_mutex_unlock (&self->lock);
  push_op (self, op_new (OP_CONN_OPEN, id, NULL));
}

static void
redis_connection_closed (HeraldEngine *engine, const char *id)
{
  HeraldRedisEngine *self = HERALD_REDIS_ENGINE (engine);

  g_mutex_lock (&self->lock);
  g_hash_table_remove (self->local_conns, id);
  g_mutex_unlock (&self->lock);
  push_op (self, op_new (OP_CONN_CLOSE, id, NULL));
}

static void
redis_channel_occupied (HeraldEngine *engine, const char *channel)
{
  channel_ref (HERALD_REDIS_ENGINE (engine), channel, +1);
}

static void
redis_channel_vacated (HeraldEngine *engine, const char *channel)
{
  channel_ref (HERALD_REDIS_ENGINE (engine), channel, -1);
}

/* The local table gives this node's first/last connection of a user; the
 * cluster-wide join/leave events come back from Redis on the channel's topic
 * (or, while Redis is down, are delivered locally). */
static gboolean
presence_adjust (HeraldRedisEngine *self, const char *channel, const char *user_id, int delta)
{
  g_autofree char *key = g_strconcat (channel, "\n", user_id, NULL);
  Op *op = op_new (OP_PRESENCE, channel, user_id);
  gboolean changed, up;
  guint count;

  g_mutex_lock (&self->lock);
  count = GPOINTER_TO_UINT (g_hash_table_lookup (self->presence, key));
  if (delta < 0 && count == 0)
    {
      g_mutex_unlock (&self->lock);
      op_free (op);
      return FALSE;
    }
  count += delta;
  changed = delta > 0 ? count == 1 : count == 0;
  if (count == 0)
    g_hash_table_remove (self->presence, key);
  else
    g_hash_table_insert (self->presence, g_steal_pointer (&key), GUINT_TO_POINTER (count));
  op->delta = delta;
  op->gen = self->link_gen;
  up = self->up;
  if (changed && !up)
    {
      g_autoptr (HeraldMessage) event = herald_message_new_presence (channel, user_id, delta > 0);
      deliver (self, &(HeraldDelivery){
                         .kind = HERALD_TARGET_PRESENCE, .target = channel, .message = event });
    }
  g_mutex_unlock (&self->lock);
  push_op (self, op);
  return changed;
}

/* Anonymous connections: counted, never an event (they are not users). */
static void
redis_presence_anonymous (HeraldEngine *engine, const char *channel, int delta)
{
  HeraldRedisEngine *self = HERALD_REDIS_ENGINE (engine);
  Op *op = op_new (OP_PRESENCE, channel, NULL);
  guint count;

  g_mutex_lock (&self->lock);
  count = GPOINTER_TO_UINT (g_hash_table_lookup (self->presence, channel));
  if (delta < 0 && count == 0)
    {
      g_mutex_unlock (&self->lock);
      op_free (op);
      return;
    }
  count += delta;
  if (count == 0)
    g_hash_table_remove (self->presence, channel);
  else
    g_hash_table_insert (self->presence, g_strdup (channel), GUINT_TO_POINTER (count));
  op->delta = delta;
  op->gen = self->link_gen;
  g_mutex_unlock (&self->lock);
  push_op (self, op);
}

static gboolean
redis_presence_join (HeraldEngine *engine, const char *channel, const char *user_id)
{
  return presence_adjust (HERALD_REDIS_ENGINE (engine), channel, user_id, +1);
}

static gboolean
redis_presence_leave (HeraldEngine *engine, const char *channel, const char *user_id)
{
  return presence_adjust (HERALD_REDIS_ENGINE (engine), channel, user_id, -1);
}

static void
redis_collect_presence (HeraldEngine *engine, const char *channel, GHashTable *users,
                        guint *connections)
{
  HeraldRedisEngine *self = HERALD_REDIS_ENGINE (engine);
  g_autofree char *dead = g_strdup_printf ("%d", NODE_DEAD_S);
  const char *argv[]
      = { "EVAL", presence_query_script, "1", "herald:nodes", channel, dead, self->node_id };
  const char *const *argvs[] = { argv };
  int argcs[] = { G_N_ELEMENTS (argv) };
  redisReply **r;

  if (!is_up (self) || (r = sync_run (self, 1, argvs, argcs)) == NULL)
    return;
  if (r[0]->type == REDIS_REPLY_ARRAY && r[0]->elements == 2
      && r[0]->element[0]->type == REDIS_REPLY_ARRAY)
    {
      redisReply *pairs = r[0]->element[0];

      for (gsize i = 0; i + 1 < pairs->elements; i += 2)
        {
          redisReply *user = pairs->element[i];
          guint64 count = reply_u64 (pairs->element[i + 1]);
          if (user->type != REDIS_REPLY_STRING || count == 0)
            continue;
          g_hash_table_add (users, g_strdup (user->str));
          *connections += (guint)count;
        }
      *connections += (guint)reply_u64 (r[0]->element[1]);
    }
  sync_free (r, 1);
}

typedef struct
{
  HeraldRedisEngine *self;
  char *channel;
} Pin;

static gboolean
unpin (gpointer user_data)
{
  Pin *pin = user_data;

  channel_ref (pin->self, pin->channel, -1);
  return G_SOURCE_REMOVE;
}

static void
pin_free (gpointer data)
{
  Pin *pin = data;
  g_object_unref (pin->self);
  g_free (pin->channel);
  g_free (pin);
}

/* Before a history snapshot, this node must already hear the channel live,
 * or messages published between the snapshot and the SUBSCRIBE would be
 * lost. Keep the channel subscribed a second (the caller subscribes
 * its connection meanwhile) and wait, bounded, for Redis to confirm. */
static gboolean
pin_and_wait (HeraldRedisEngine *self, const char *channel)
{
  Pin *pin = g_new0 (Pin, 1);
  GSource *source = g_timeout_source_new (PIN_MS);
  gint64 deadline = g_get_monotonic_time () + SUBSCRIBE_WAIT_MS * 1000;
  gboolean ok = FALSE;
  Chan *ch;

  pin->self = g_object_ref (self);
  pin->channel = g_strdup (channel);
  channel_ref (self, channel, +1);
  g_source_set_callback (source, unpin, pin, pin_free);
  g_source_attach (source, self->context);
  g_source_unref (source);

  g_mutex_lock (&self->lock);
  while (self->up)
    {
      ch = g_hash_table_lookup (self->channels, channel);
      if (ch && ch->state == SUB_SUBSCRIBED)
        {
          ok = TRUE;
          break;
        }
      if (!g_cond_wait_until (&self->cond, &self->lock, deadline))
        break;
    }
  g_mutex_unlock (&self->lock);
  return ok;
}

static HeraldRecovery *
recovery_new (HeraldRedisEngine *self)
{
  HeraldRecovery *r = g_new0 (HeraldRecovery, 1);

  r->messages = g_ptr_array_new_with_free_func ((GDestroyNotify)herald_message_unref);
  g_mutex_lock (&self->lock);
  r->epoch = g_strdup (self->epoch);
  g_mutex_unlock (&self->lock);
  return r;
}

static guint64
reply_u64 (redisReply *r)
{
  if (r == NULL)
    return 0;
  if (r->type == REDIS_REPLY_INTEGER)
    return (guint64)r->integer;
  if (r->type == REDIS_REPLY_STRING)
    return g_ascii_strtoull (r->str, NULL, 10);
  return 0;
}

/* The channel's retained history, oldest first, without messages older than the ttl. */
static GPtrArray *
parse_history (HeraldRedisEngine *self, redisReply *list, gint64 now)
{
  GPtrArray *out = g_ptr_array_new_with_free_func ((GDestroyNotify)payload_clear_free);
  guint ttl = herald_config_get_history_ttl (self->config);

  if (list == NULL || list->type != REDIS_REPLY_ARRAY)
    return out;
  for (gsize i = list->elements; i > 0; i--)
    {
      redisReply *e = list->element[i - 1];
      Payload *p = g_new0 (Payload, 1);

      if (e->type != REDIS_REPLY_STRING || !payload_parse (e->str, e->len, p)
          || (ttl > 0 && now - p->time >= (gint64)ttl))
        {
          /* Expired (or unreadable): what came before it is gone too. */
          payload_clear_free (p);
          g_ptr_array_set_size (out, 0);
          continue;
        }
      g_ptr_array_add (out, p);
    }
  return out;
}

static gint64
reply_time (redisReply *r)
{
  if (r && r->type == REDIS_REPLY_ARRAY && r->elements >= 1
      && r->element[0]->type == REDIS_REPLY_STRING)
    return g_ascii_strtoll (r->element[0]->str, NULL, 10);
  return g_get_real_time () / G_USEC_PER_SEC;
}

static HeraldMessage *
payload_message (const Payload *p)
{
  return herald_message_new_channel (p->channel, p->offset, p->seq, p->epoch, p->data);
}

static guint64
local_offset (HeraldRedisEngine *self, const char *channel)
{
  guint64 offset = 0;
  Chan *ch;

  g_mutex_lock (&self->lock);
  ch = g_hash_table_lookup (self->channels, channel);
  if (ch)
    offset = ch->last_offset;
  g_mutex_unlock (&self->lock);
  return offset;
}

static HeraldRecovery *
redis_recover (HeraldEngine *engine, const char *channel, guint64 since, const char *epoch)
{
  HeraldRedisEngine *self = HERALD_REDIS_ENGINE (engine);
  HeraldRecovery *r = recovery_new (self);
  g_autofree char *meta = g_strconcat ("herald:m:", channel, NULL);
  g_autofree char *history = g_strconcat ("herald:h:", channel, NULL);
  const char *a0[] = { "GET", "herald:epoch" };
  const char *a1[] = { "HGET", meta, "off" };
  const char *a2[] = { "LRANGE", history, "0", "-1" };
  const char *a3[] = { "TIME" };
  const char *const *argvs[] = { a0, a1, a2, a3 };
  int argcs[] = { 2, 3, 4, 1 };
  g_autoptr (GPtrArray) kept = NULL;
  redisReply **replies = NULL;
  guint64 top;

  if (!pin_and_wait (self, channel) || (replies = sync_run (self, 4, argvs, argcs)) == NULL)
    {
      /* Degraded: nothing can be recovered; live delivery still works. */
      r->recovered = FALSE;
      r->top_offset = local_offset (self, channel);
      return r;
    }
  if (replies[0]->type == REDIS_REPLY_STRING)
    {
      g_free (r->epoch);
      r->epoch = g_strdup (replies[0]->str);
    }
  top = reply_u64 (replies[1]);
  kept = parse_history (self, replies[2], reply_time (replies[3]));
  /* A publish may run between HGET and LRANGE: the list is then newer. */
  if (kept->len > 0)
    top = MAX (top, ((Payload *)g_ptr_array_index (kept, kept->len - 1))->offset);
  r->top_offset = top;

  if (epoch != NULL && *epoch != '\0' && g_strcmp0 (epoch, r->epoch) != 0)
    r->recovered = FALSE; /* history of that epoch is gone */
  else if (since > top)
    r->recovered = FALSE;
  else if (since == top)
    r->recovered = TRUE;
  else if (kept->len == 0 || ((Payload *)g_ptr_array_index (kept, 0))->offset > since + 1)
    r->recovered = FALSE; /* some of the missed messages were dropped */
  else
    {
      r->recovered = TRUE;
      for (guint i = 0; i < kept->len; i++)
        {
          Payload *p = g_ptr_array_index (kept, i);
          if (p->offset > since)
            g_ptr_array_add (r->messages, payload_message (p));
        }
    }
  sync_free (replies, 4);
  return r;
}

static gint
compare_seq (gconstpointer a, gconstpointer b)
{
  guint64 sa = herald_message_get_seq (*(HeraldMessage **)a);
  guint64 sb = herald_message_get_seq (*(HeraldMessage **)b);
  return sa < sb ? -1 : sa > sb;
}

static HeraldRecovery *
redis_recover_stream (HeraldEngine *engine, const char *const *channels, const char *epoch,
                      guint64 since_seq)
{
  HeraldRedisEngine *self = HERALD_REDIS_ENGINE (engine);
  HeraldRecovery *r = recovery_new (self);
  guint n_channels = g_strv_length ((char **)channels);
  guint n = 3 + 2 * n_channels;
  g_autofree const char ***argvs = g_new0 (const char **, n);
  g_autofree int *argcs = g_new0 (int, n);
  g_autoptr (GPtrArray) keys = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GPtrArray) argv_store = g_ptr_array_new_with_free_func (g_free);
  redisReply **replies = NULL;
  gboolean ok = TRUE;
  gint64 now;

  for (guint i = 0; channels[i]; i++)
    ok = pin_and_wait (self, channels[i]) && ok;
  if (!ok)
    {
      r->recovered = FALSE;
      return r;
    }

#define ARGV(...)                                                                                  \
  ({                                                                                               \
    const char *tmp_[] = { __VA_ARGS__ };                                                          \
    const char **v_ = g_memdup2 (tmp_, sizeof tmp_);                                               \
    g_ptr_array_add (argv_store, v_);                                                              \
    v_;                                                                                            \
  })
  argvs[0] = ARGV ("GET", "herald:epoch");
  argcs[0] = 2;
  argvs[1] = ARGV ("GET", "herald:seq");
  argcs[1] = 2;
  argvs[2] = ARGV ("TIME");
  argcs[2] = 1;
  for (guint i = 0; channels[i]; i++)
    {
      char *meta = g_strconcat ("herald:m:", channels[i], NULL);
      char *history = g_strconcat ("herald:h:", channels[i], NULL);
      g_ptr_array_add (keys, meta);
      g_ptr_array_add (keys, history);
      argvs[3 + 2 * i] = ARGV ("HGET", meta, "seq");
      argcs[3 + 2 * i] = 3;
      argvs[4 + 2 * i] = ARGV ("LRANGE", history, "0", "-1");
      argcs[4 + 2 * i] = 4;
    }
#undef ARGV

  replies = sync_run (self, n, (const char *const *const *)argvs, argcs);
  if (replies == NULL)
    {
      r->recovered = FALSE;
      return r;
    }
  if (replies[0]->type == REDIS_REPLY_STRING)
    {
      g_free (r->epoch);
      r->epoch = g_strdup (replies[0]->str);
    }
  r->top_offset = reply_u64 (replies[1]);
  now = reply_time (replies[2]);
  r->recovered = g_strcmp0 (epoch, r->epoch) == 0 && since_seq <= r->top_offset;
  for (guint i = 0; r->recovered && channels[i]; i++)
    {
      guint64 last_seq = reply_u64 (replies[3 + 2 * i]);
      g_autoptr (GPtrArray) kept = parse_history (self, replies[4 + 2 * i], now);

      /* Every message of the channel newer than since_seq must be kept: the
       * one before the oldest kept (or the newest, if none) must be older. */
      if ((kept->len == 0 && last_seq > since_seq)
          || (kept->len > 0 && ((Payload *)g_ptr_array_index (kept, 0))->prev > since_seq))
        {
          r->recovered = FALSE;
          break;
        }
      for (guint j = 0; j < kept->len; j++)
        {
          Payload *p = g_ptr_array_index (kept, j);
          if (p->seq > since_seq)
            g_ptr_array_add (r->messages, payload_message (p));
        }
    }
  if (!r->recovered)
    g_ptr_array_set_size (r->messages, 0);
  g_ptr_array_sort (r->messages, compare_seq);
  sync_free (replies, n);
  return r;
}

/* The offset the live stream of @channel starts after on this node: the
 * newest offset this node has handed to its workers. Once per subscription
 * of the node to the channel it is read from Redis (after the SUBSCRIBE is
 * confirmed, so every later message arrives live); then it is a lock. */
static void
redis_get_position (HeraldEngine *engine, const char *channel, guint64 *offset, char **epoch)
{
  HeraldRedisEngine *self = HERALD_REDIS_ENGINE (engine);
  g_autofree char *meta = g_strconcat ("herald:m:", channel, NULL);
  const char *a0[] = { "GET", "herald:epoch" };
  const char *a1[] = { "HGET", meta, "off" };
  const char *const *argvs[] = { a0, a1 };
  int argcs[] = { 2, 3 };
  redisReply **replies = NULL;
  guint64 top = 0;
  Chan *ch;

  g_mutex_lock (&self->lock);
  ch = g_hash_table_lookup (self->channels, channel);
  if (!self->up || (ch && ch->state == SUB_SUBSCRIBED && ch->primed))
    {
      top = ch ? ch->last_offset : 0;
      goto out;
    }
  g_mutex_unlock (&self->lock);

  if (pin_and_wait (self, channel))
    replies = sync_run (self, 2, argvs, argcs);
  g_mutex_lock (&self->lock);
  ch = g_hash_table_lookup (self->channels, channel);
  if (replies && replies[0]->type == REDIS_REPLY_STRING
      && g_strcmp0 (replies[0]->str, self->epoch) != 0)
    {
      g_free (self->epoch);
      self->epoch = g_strdup (replies[0]->str);
    }
  if (replies && ch)
    {
      ch->last_offset = MAX (ch->last_offset, reply_u64 (replies[1]));
      ch->primed = ch->state == SUB_SUBSCRIBED;
    }
  top = ch ? ch->last_offset : (replies ? reply_u64 (replies[1]) : 0);
  sync_free (replies, 2);

out:
  if (offset)
    *offset = top;
  if (epoch)
    *epoch = g_strdup (self->epoch);
  g_mutex_unlock (&self->lock);
}

/* The seq of the newest message handed to the workers: Redis delivers in
 * seq order, so later deliveries have higher ones. Unknown while degraded
 * (local seqs are provisional). */
static gboolean
redis_get_stream_position (HeraldEngine *engine, guint64 *seq, char **epoch)
{
  HeraldRedisEngine *self = HERALD_REDIS_ENGINE (engine);
  gboolean ok;

  g_mutex_lock (&self->lock);
  ok = self->up && self->epoch != NULL;
  if (ok && seq)
    *seq = self->local_seq;
  if (ok && epoch)
    *epoch = g_strdup (self->epoch);
  g_mutex_unlock (&self->lock);
  return ok;
}

static char *
redis_dup_epoch (HeraldEngine *engine)
{
  HeraldRedisEngine *self = HERALD_REDIS_ENGINE (engine);
  char *epoch;

  g_mutex_lock (&self->lock);
  epoch = g_strdup (self->epoch);
  g_mutex_unlock (&self->lock);
  return epoch;
}

static void
herald_redis_engine_iface_init (HeraldEngineInterface *iface)
{
  iface->get_name = redis_get_name;
  iface->dup_state = redis_dup_state;
  iface->set_sink = redis_set_sink;
  iface->publish_async = redis_publish_async;
  iface->publish_finish = redis_publish_finish;
  iface->send = redis_send;
  iface->close_connection = redis_close_connection;
  iface->recover = redis_recover;
  iface->recover_stream = redis_recover_stream;
  iface->dup_epoch = redis_dup_epoch;
  iface->get_position = redis_get_position;
  iface->get_stream_position = redis_get_stream_position;
  iface->presence_join = redis_presence_join;
  iface->presence_leave = redis_presence_leave;
  iface->collect_presence = redis_collect_presence;
  iface->presence_anonymous = redis_presence_anonymous;
  iface->channel_occupied = redis_channel_occupied;
  iface->channel_vacated = redis_channel_vacated;
  iface->connection_opened = redis_connection_opened;
  iface->connection_closed = redis_connection_closed;
  iface->has_connection = redis_has_connection;
}

/* ---- GObject ---- */

static void
herald_redis_engine_dispose (GObject *object)
{
  HeraldRedisEngine *self = HERALD_REDIS_ENGINE (object);
  Op *op;

  g_mutex_lock (&self->lock);
  self->disposed = TRUE;
  g_mutex_unlock (&self->lock);
  self->tearing_down = TRUE;
  free_async (&self->cmd, &self->cmd_source);
  free_async (&self->sub, &self->sub_source);
  clear_source (&self->timeout_source);
  clear_source (&self->heartbeat_source);
  clear_source (&self->reconnect_source);
  g_mutex_lock (&self->lock);
  clear_source (&self->drain_source);
  while ((op = g_queue_pop_head (&self->ops)) != NULL)
    {
      if (op->task)
        g_task_return_new_error (op->task, HERALD_ERROR, HERALD_ERROR_UNAVAILABLE,
                                 _ ("shutting down"));
      op_free (op);
    }
  g_mutex_unlock (&self->lock);
  g_mutex_lock (&self->sync_lock);
  g_clear_pointer (&self->sync, redisFree);
  g_mutex_unlock (&self->sync_lock);
  G_OBJECT_CLASS (herald_redis_engine_parent_class)->dispose (object);
}

static void
herald_redis_engine_finalize (GObject *object)
{
  HeraldRedisEngine *self = HERALD_REDIS_ENGINE (object);

  g_clear_object (&self->config);
  g_clear_pointer (&self->url, herald_redis_url_free);
  g_free (self->url_text);
  g_free (self->node_id);
  g_free (self->epoch);
  g_free (self->degraded);
  g_free (self->publish_sha);
  g_hash_table_unref (self->channels);
  g_hash_table_unref (self->local_conns);
  g_hash_table_unref (self->presence);
  g_main_context_unref (self->context);
  g_mutex_clear (&self->lock);
  g_mutex_clear (&self->sync_lock);
  g_cond_clear (&self->cond);
  G_OBJECT_CLASS (herald_redis_engine_parent_class)->finalize (object);
}

static void
herald_redis_engine_set_property (GObject *object, guint prop_id, const GValue *value,
                                  GParamSpec *pspec)
{
  HeraldRedisEngine *self = HERALD_REDIS_ENGINE (object);

  switch (prop_id)
    {
    case PROP_CONFIG:
      self->config = g_value_dup_object (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
herald_redis_engine_get_property (GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
  HeraldRedisEngine *self = HERALD_REDIS_ENGINE (object);

  switch (prop_id)
    {
    case PROP_CONFIG:
      g_value_set_object (value, self->config);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
herald_redis_engine_class_init (HeraldRedisEngineClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = herald_redis_engine_dispose;
  object_class->finalize = herald_redis_engine_finalize;
  object_class->set_property = herald_redis_engine_set_property;
  object_class->get_property = herald_redis_engine_get_property;

  props[PROP_CONFIG]
      = g_param_spec_object ("config", NULL, NULL, HERALD_TYPE_CONFIG,
                             G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties (object_class, N_PROPS, props);
}

static void
herald_redis_engine_init (HeraldRedisEngine *self)
{
  g_mutex_init (&self->lock);
  g_mutex_init (&self->sync_lock);
  g_cond_init (&self->cond);
  self->channels = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  self->local_conns = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  self->presence = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  self->context = g_main_context_ref_thread_default ();
  self->publish_sha = sha1_hex (publish_script);
  self->degraded = g_strdup ("degraded: connecting to Redis");
}

/**
 * herald_redis_engine_new:
 * @config: the configuration (history size and ttl)
 * @url: the Redis address
 *
 * Returns: (transfer full): the Redis engine, not yet connected, or %NULL
 *   when @url is malformed.
 */
HeraldEngine *
herald_redis_engine_new (HeraldConfig *config, const char *url, GError **error)
{
  g_autoptr (HeraldRedisUrl) parsed = herald_redis_url_parse (url, error);
  HeraldRedisEngine *self;

  if (parsed == NULL)
    return NULL;
  self = g_object_new (HERALD_TYPE_REDIS_ENGINE, "config", config, NULL);
  self->url = g_steal_pointer (&parsed);
  self->url_text = self->url->path ? g_strdup_printf ("unix:%s", self->url->path)
                                   : g_strdup_printf ("%s:%d", self->url->host, self->url->port);
  return HERALD_ENGINE (self);
}

/**
 * herald_redis_engine_start:
 * @node_id: this node's id (the hub's)
 *
 * Starts connecting; until Redis answers, the engine is degraded.
 */
void
herald_redis_engine_start (HeraldRedisEngine *self, const char *node_id)
{
  g_return_if_fail (self->node_id == NULL);
  self->node_id = g_strdup (node_id);
  link_connect (self);
}
