/* herald-hub.h: the hub — connections by id and user, channels, routing.
 *
 * The hub is shared by every worker thread and the main thread. Its state is
 * small and touched only when connections open or close (a registry under a
 * mutex); deliveries go to the workers by message passing, and queries about
 * live connections are gathered from the workers asynchronously. Every
 * public function here is thread-safe; async callbacks run in the caller's
 * thread-default main context.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>
#include "herald-config.h"
#include "herald-engine.h"
#include "herald-error.h"
#include "herald-info.h"
#include "herald-jwt.h"
#include "herald-worker.h"

G_BEGIN_DECLS

#define HERALD_TYPE_HUB (herald_hub_get_type ())
G_DECLARE_FINAL_TYPE (HeraldHub, herald_hub, HERALD, HUB, GObject)

/* Signals (emitted in the main context the hub was created in):
 *   "connection-opened" (const char *id, const char *user_id or "", const char *transport)
 *   "connection-closed" (const char *id, guint code, const char *reason)
 */

HeraldHub *herald_hub_new (HeraldConfig *config, HeraldEngine *engine);
HeraldConfig *herald_hub_get_config (HeraldHub *self);
/* Loads the token key named by the configuration (secret or public key file). */
gboolean herald_hub_load_keys (HeraldHub *self, GError **error);
/* The token verifier, or NULL when no token key is configured. */
HeraldJwtVerifier *herald_hub_get_verifier (HeraldHub *self);
HeraldEngine *herald_hub_get_engine (HeraldHub *self);
const char *herald_hub_get_node_id (HeraldHub *self);

/* Workers (made by herald_hub_new_worker(), herald-subscribe.h), index = position. */
guint herald_hub_add_worker (HeraldHub *self, HeraldWorker *worker);
guint herald_hub_get_n_workers (HeraldHub *self);
HeraldWorker *herald_hub_get_worker (HeraldHub *self, guint index);
/* The limits every connection reads, kept current from the configuration. */
const HeraldStreamLimits *herald_hub_get_stream_limits (HeraldHub *self);

/* --- Publishing and sending (any thread) --- */

/* The longest publish "key" (bytes). */
#define HERALD_HUB_MAX_KEY 255

/* Validates @channel, @key (NULL = none: the message's conflation key) and
 * @data_json (normalising the JSON), checks the size limit, and publishes
 * through the engine. */
void herald_hub_publish_async (HeraldHub *self, const char *channel, const char *key,
                               const char *data_json, GCancellable *cancellable,
                               GAsyncReadyCallback callback, gpointer user_data);
/* The same for data already checked and compacted by Herald's JSON reader
 * (herald_json_read_envelope(), herald_json_compact()): not read again.
 * Finish with herald_hub_publish_finish(). */
void herald_hub_publish_text_async (HeraldHub *self, const char *channel, const char *key,
                                    const char *data_json, GCancellable *cancellable,
                                    GAsyncReadyCallback callback, gpointer user_data);
gboolean herald_hub_publish_finish (HeraldHub *self, GAsyncResult *result, guint64 *offset,
                                    GError **error);
/* Synchronous publishing when the engine allows it (in-process engine). */
gboolean herald_hub_can_publish_now (HeraldHub *self);
gboolean herald_hub_publish_text_now (HeraldHub *self, const char *channel, const char *key,
                                      const char *data_json, guint64 *offset, GError **error);

/* Each validates @data_json; returns FALSE with HERALD_ERROR_INVALID_ARGUMENT or
 * LIMIT_EXCEEDED. @delivered receives the number of local connections reached. */
gboolean herald_hub_broadcast (HeraldHub *self, const char *data_json, guint *delivered,
                               GError **error);
gboolean herald_hub_send_to_user (HeraldHub *self, const char *user_id, const char *data_json,
                                  guint *delivered, GError **error);
/* HERALD_ERROR_NOT_FOUND when no such connection exists (on this node, with the
 * in-process engine). */
gboolean herald_hub_send_to_connection (HeraldHub *self, const char *id, const char *data_json,
                                        GError **error);
gboolean herald_hub_close_connection (HeraldHub *self, const char *id, guint16 code,
                                      const char *reason, GError **error);

/* --- Queries (any thread; answered by the workers) --- */
guint herald_hub_get_connection_count (HeraldHub *self);
gboolean herald_hub_has_connection (HeraldHub *self, const char *id);

void herald_hub_list_connections_async (HeraldHub *self, GAsyncReadyCallback callback,
                                        gpointer user_data);
/* Returns: (element-type HeraldConnectionInfo) sorted by connected_at */
GPtrArray *herald_hub_list_connections_finish (HeraldHub *self, GAsyncResult *result,
                                               GError **error);

void herald_hub_get_connection_async (HeraldHub *self, const char *id, GAsyncReadyCallback callback,
                                      gpointer user_data);
/* HERALD_ERROR_NOT_FOUND when unknown */
HeraldConnectionInfo *herald_hub_get_connection_finish (HeraldHub *self, GAsyncResult *result,
                                                        GError **error);

void herald_hub_list_channels_async (HeraldHub *self, GAsyncReadyCallback callback,
                                     gpointer user_data);
/* Returns: (element-type HeraldChannelInfo) sorted by name */
GPtrArray *herald_hub_list_channels_finish (HeraldHub *self, GAsyncResult *result, GError **error);

/* Subscribes (or unsubscribes) every connection of @user_id, on every node,
 * to @channel, whatever their claims say (herald-hub-subs.c); each gets
 * {"type":"subscribed"|"unsubscribed","channel":…,"server":true}.
 * The answer comes in the caller's thread-default context; its
 * @connections: the user's connections on every node as the engine counts
 * them (herald_engine_count_user_connections(); without that, this node's).
 * HERALD_ERROR_INVALID_ARGUMENT for a bad user id or channel. */
void herald_hub_subscribe_user_async (HeraldHub *self, const char *user_id, const char *channel,
                                      gboolean subscribe, GAsyncReadyCallback callback,
                                      gpointer user_data);
gboolean herald_hub_subscribe_user_finish (HeraldHub *self, GAsyncResult *result,
                                           guint *connections, GError **error);

/* Presence at scale (herald-hub-presence.c), from the engine: the counts in
 * constant time and, unless @stats_only, one page of at most @limit users
 * (0: HERALD_PRESENCE_PAGE_MAX; larger ones are clamped) after @cursor
 * (NULL: from the first), a value a page of this channel gave as `next`.
 * Errors: HERALD_ERROR_INVALID_ARGUMENT for a cursor this channel did not
 * give, HERALD_ERROR_UNAVAILABLE when the engine cannot tell. */
#define HERALD_PRESENCE_PAGE_MAX 1000
void herald_hub_get_presence_async (HeraldHub *self, const char *channel, gboolean stats_only,
                                    guint limit, const char *cursor, GAsyncReadyCallback callback,
                                    gpointer user_data);
HeraldPresence *herald_hub_get_presence_finish (HeraldHub *self, GAsyncResult *result,
                                                GError **error);

void herald_hub_get_stats_async (HeraldHub *self, GAsyncReadyCallback callback, gpointer user_data);
/* Returns: (transfer full): a HeraldStats to g_free() */
HeraldStats *herald_hub_get_stats_finish (HeraldHub *self, GAsyncResult *result, GError **error);

/* Engine health for /healthz and D-Bus. */
char *herald_hub_dup_engine_state (HeraldHub *self);

/* --- Used by workers --- */

/* Reserves @id for a new connection: HERALD_ERROR_IN_USE when taken,
 * HERALD_ERROR_LIMIT_EXCEEDED over max-connections or max-connections-per-ip. */
gboolean herald_hub_reserve_connection (HeraldHub *self, const char *id, const char *user_id,
                                        const char *remote_ip, guint worker_index, GError **error);
void herald_hub_connection_opened (HeraldHub *self, const char *id, const char *user_id,
                                   HeraldTransport transport);
void herald_hub_release_connection (HeraldHub *self, const char *id, guint16 code,
                                    const char *reason, gboolean was_open);
/* In a worker's thread (its front): connection-opened/-closed queued by this
 * thread wake the main context once per herald_hub_flush_signals() (the end
 * of each loop iteration) instead of once each; FALSE before the thread's
 * last work. */
void herald_hub_defer_signals (HeraldHub *self, gboolean defer);
void herald_hub_flush_signals (HeraldHub *self);
gboolean herald_hub_has_deferred_signals (HeraldHub *self);
void herald_hub_count_published (HeraldHub *self);
guint64 herald_hub_get_n_published (HeraldHub *self);
/* A worker's channel table gained its first / lost its last subscriber of @channel. */
void herald_hub_channel_occupied (HeraldHub *self, const char *channel, guint worker_index);
void herald_hub_channel_vacated (HeraldHub *self, const char *channel, guint worker_index);

/* Graceful shutdown: every worker sends each connection its reconnect hint
 * and closes it with 1001 at a moment spread over [server] drain-seconds, then
 * stops accepting; @callback runs (in the caller's context) when all are
 * closed or @timeout_ms after the drain window. */
void herald_hub_shutdown_async (HeraldHub *self, guint timeout_ms, GAsyncReadyCallback callback,
                                gpointer user_data);
gboolean herald_hub_shutdown_finish (HeraldHub *self, GAsyncResult *result, GError **error);
gboolean herald_hub_is_draining (HeraldHub *self);

/* Posts a function to run in every worker's thread (limits changed, etc.). */
void herald_hub_foreach_worker (HeraldHub *self, HeraldWorkerFunc func, gpointer user_data);

G_END_DECLS
