/* herald-engine.h: where messages are ordered, stored and routed between nodes.
 *
 * The hub hands every publish and every targeted send to its engine. The
 * engine assigns offsets, keeps history, and hands messages back to the local
 * hub through its sink (in-process engine: at once; Redis engine: when they
 * come back from Redis, on every node).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>
#include "herald-config.h"
#include "herald-message.h"

G_BEGIN_DECLS

/* HeraldTargetKind: herald-message.h. */

/* What the engine hands back to the local hub. */
typedef struct
{
  HeraldTargetKind kind;
  const char *target;     /* user id or connection id */
  HeraldMessage *message; /* channel/all/user/connection */
  guint16 close_code;
  const char *close_reason;
} HeraldDelivery;

/* Returns the number of local connections the delivery reached (known at once
 * from the hub's registry; the write itself happens later on the workers). */
typedef guint (*HeraldEngineSink) (const HeraldDelivery *delivery, gpointer user_data);

/* The result of a history query. */
typedef struct
{
  gboolean recovered;  /* TRUE when every message after `since` is in @messages */
  GPtrArray *messages; /* of HeraldMessage*, in offset order */
  guint64 top_offset;  /* channel's latest offset when the query ran */
  char *epoch;
} HeraldRecovery;
/* An empty result (no messages, not recovered) of @epoch, for engines. */
HeraldRecovery *herald_recovery_new (const char *epoch);
void herald_recovery_free (HeraldRecovery *recovery);
/* Puts @recovery's messages in global (seq) order, for engines. */
void herald_recovery_sort_by_seq (HeraldRecovery *recovery);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (HeraldRecovery, herald_recovery_free)

/* The abstract base of the engines: it holds what every engine has (the
 * configuration, HeraldEngine:config, and the hub's sink); the subclasses
 * fill in the methods below. */
#define HERALD_TYPE_ENGINE (herald_engine_get_type ())
G_DECLARE_DERIVABLE_TYPE (HeraldEngine, herald_engine, HERALD, ENGINE, GObject)

struct _HeraldEngineClass
{
  GObjectClass parent_class;

  const char *(*get_name) (HeraldEngine *self);
  /* "ok", or a short human description of what is degraded */
  char *(*dup_state) (HeraldEngine *self);

  /* Thread-safe: may be called from any worker. The callback runs in the
   * caller's thread-default main context; its GTask (source object: the
   * engine) returns the offset as an int, which herald_engine_publish_finish()
   * reads. */
  void (*publish_async) (HeraldEngine *self, const char *channel, const char *key,
                         const char *data_json, GCancellable *cancellable,
                         GAsyncReadyCallback callback, gpointer user_data);
  /* Optional, thread-safe: publishes without waiting for anything (the
   * in-process engine), so the caller answers in the same loop iteration.
   * Engines that need a round trip (Redis) leave it NULL. */
  gboolean (*publish_now) (HeraldEngine *self, const char *channel, const char *key,
                           const char *data_json, guint64 *offset, GError **error);

  /* Fire and forget; return the number of local connections reached. */
  guint (*send) (HeraldEngine *self, HeraldTargetKind kind, const char *target,
                 const char *data_json);
  void (*close_connection) (HeraldEngine *self, const char *id, guint16 code, const char *reason);

  /* History after @since (exclusive) for @channel, with the epoch check.
   * Thread-safe. @epoch NULL = don't check. */
  HeraldRecovery *(*recover) (HeraldEngine *self, const char *channel, guint64 since,
                              const char *epoch);
  /* History of several channels after a stream position (SSE resume), in global order. */
  HeraldRecovery *(*recover_stream) (HeraldEngine *self, const char *const *channels,
                                     const char *epoch, guint64 since_seq);
  /* The current epoch (changes when history is lost). */
  char *(*dup_epoch) (HeraldEngine *self);

  /* The channel's latest offset (0 before its first message) and the current
   * epoch, read together. Thread-safe; cheap (sent in every `subscribed`). */
  void (*get_position) (HeraldEngine *self, const char *channel, guint64 *offset, char **epoch);
  /* The position of this node's stream of all channels (the seq in SSE ids:
   * the newest message handed to the workers) and the epoch, read together.
   * A fresh SSE stream starts with it as its id, so a reconnect before the
   * first message still resumes. Optional: FALSE = unknown (no id sent). */
  gboolean (*get_stream_position) (HeraldEngine *self, guint64 *seq, char **epoch);

  /* Presence table: how many connections each user has on each channel,
   * global to the cluster. Called from worker threads when a subscription of
   * a user's connection is added or removed (never on the delivery path).
   * presence_join returns TRUE when it is the user's first connection on
   * @channel, presence_leave TRUE when it was the last; in both cases the
   * engine delivers the event to every node's sink as a
   * HERALD_TARGET_PRESENCE delivery (target = @channel, message =
   * herald_message_new_presence()). Optional: engines without it emit no
   * join/leave events. */
  gboolean (*presence_join) (HeraldEngine *self, const char *channel, const char *user_id);
  gboolean (*presence_leave) (HeraldEngine *self, const char *channel, const char *user_id);

  /* Cluster engines (optional; the in-process engine leaves them NULL,
   * except channel_occupied/vacated, which tell it what not to forget).
   * channel_occupied/vacated: a worker's channel table gained its first /
   * lost its last subscriber of @channel (called once per worker, from the
   * worker thread; the engine counts). connection_opened/closed: the local
   * registry changed (any thread). has_connection: TRUE when another node
   * holds connection @id (may ask Redis; bounded). */
  void (*channel_occupied) (HeraldEngine *self, const char *channel);
  void (*channel_vacated) (HeraldEngine *self, const char *channel);
  void (*connection_opened) (HeraldEngine *self, const char *id, const char *user_id);
  void (*connection_closed) (HeraldEngine *self, const char *id);
  gboolean (*has_connection) (HeraldEngine *self, const char *id);
  /* Presence at scale, cluster-wide: the counts of @channel (distinct
   * users; connections, users' and anonymous ones), kept as members come
   * and go and read in constant time, and up to @limit users in name order
   * after @after (NULL: from the first; @limit 0: only the counts), *@more
   * when users follow the last one. Returns the page (NULL-terminated), or
   * NULL with @error (HERALD_ERROR_UNAVAILABLE) when the engine cannot tell.
   * Any thread; may wait for Redis (bounded), so never from a worker. */
  char **(*query_presence) (HeraldEngine *self, const char *channel, const char *after, guint limit,
                            guint *users, guint *connections, gboolean *more, GError **error);
  /* Optional: the connections of @user_id on every node, counted
   * cluster-wide as connections open and close (connection_opened/closed),
   * as they are when asked (one opening meanwhile may or may not be
   * counted). Any thread; may wait for Redis (bounded), so never from a
   * worker. Without it the hub counts this node's connections (all of them
   * for an engine without other nodes). */
  guint (*count_user_connections) (HeraldEngine *self, const char *user_id);
  /* An anonymous connection's subscription of @channel was added (+1) or
   * removed (-1): counted in the presence answers, no event. */
  void (*presence_anonymous) (HeraldEngine *self, const char *channel, int delta);
  /* Optional: hands a channel event (a join/leave, HERALD_TARGET_JOIN_LEAVE)
   * to this node's sink at once and to the other nodes' (cluster engines).
   * Without it the event is delivered locally. Any thread. */
  void (*announce) (HeraldEngine *self, HeraldMessage *event);
  /* Optional: the channels the engine keeps state for on this node (for
   * /metrics `herald_channels`); any thread. */
  gint64 (*count_channels) (HeraldEngine *self);
  /* Optional: the engine's own /metrics samples (with HELP and TYPE lines,
   * herald-metrics.h), appended to @out; any thread. */
  void (*append_metrics) (HeraldEngine *self, GString *out);
};

/* For engines: the configuration (history size and ttl). */
HeraldConfig *herald_engine_get_config (HeraldEngine *self);
/* For engines: hands @delivery to the hub's sink; returns the local
 * connections it reached (0 before a sink is set). */
guint herald_engine_deliver (HeraldEngine *self, const HeraldDelivery *delivery);
/* For engines: a fresh random epoch (8 characters, no '-': SSE ids are
 * "<epoch>-<seq>"). */
char *herald_engine_new_epoch (void);

const char *herald_engine_get_name (HeraldEngine *self);
char *herald_engine_dup_state (HeraldEngine *self);
void herald_engine_set_sink (HeraldEngine *self, HeraldEngineSink sink, gpointer user_data);
/* @key: the publish's conflation key (NULL = none), kept with the message. */
void herald_engine_publish_async (HeraldEngine *self, const char *channel, const char *key,
                                  const char *data_json, GCancellable *cancellable,
                                  GAsyncReadyCallback callback, gpointer user_data);
gboolean herald_engine_publish_finish (HeraldEngine *self, GAsyncResult *result, guint64 *offset,
                                       GError **error);
gboolean herald_engine_can_publish_now (HeraldEngine *self);
gboolean herald_engine_publish_now (HeraldEngine *self, const char *channel, const char *key,
                                    const char *data_json, guint64 *offset, GError **error);
void herald_engine_announce (HeraldEngine *self, HeraldMessage *event);
guint herald_engine_send (HeraldEngine *self, HeraldTargetKind kind, const char *target,
                          const char *data_json);
void herald_engine_close_connection (HeraldEngine *self, const char *id, guint16 code,
                                     const char *reason);
HeraldRecovery *herald_engine_recover (HeraldEngine *self, const char *channel, guint64 since,
                                       const char *epoch);
HeraldRecovery *herald_engine_recover_stream (HeraldEngine *self, const char *const *channels,
                                              const char *epoch, guint64 since_seq);
char *herald_engine_dup_epoch (HeraldEngine *self);
void herald_engine_get_position (HeraldEngine *self, const char *channel, guint64 *offset,
                                 char **epoch);
gboolean herald_engine_get_stream_position (HeraldEngine *self, guint64 *seq, char **epoch);
gboolean herald_engine_presence_join (HeraldEngine *self, const char *channel, const char *user_id);
gboolean herald_engine_presence_leave (HeraldEngine *self, const char *channel,
                                       const char *user_id);
void herald_engine_channel_occupied (HeraldEngine *self, const char *channel);
void herald_engine_channel_vacated (HeraldEngine *self, const char *channel);
void herald_engine_connection_opened (HeraldEngine *self, const char *id, const char *user_id);
void herald_engine_connection_closed (HeraldEngine *self, const char *id);
gboolean herald_engine_has_connection (HeraldEngine *self, const char *id);
void herald_engine_presence_anonymous (HeraldEngine *self, const char *channel, int delta);
/* -1 when the engine does not count them (the hub's registry knows this
 * node's). */
gint64 herald_engine_count_user_connections (HeraldEngine *self, const char *user_id);
/* -1 when the engine does not count them. */
gint64 herald_engine_count_channels (HeraldEngine *self);
char **herald_engine_query_presence (HeraldEngine *self, const char *channel, const char *after,
                                     guint limit, guint *users, guint *connections, gboolean *more,
                                     GError **error);
void herald_engine_append_metrics (HeraldEngine *self, GString *out);

G_END_DECLS
