/* herald-subscribe.c: adopting a connection and the one subscribe path.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>

#include "herald-names.h"
#include "herald-router.h"
#include "herald-subscribe.h"

void
herald_subscribe_result_clear (HeraldSubscribeResult *result)
{
  g_clear_pointer (&result->epoch, g_free);
}

/* [namespace.NAME] subscribe=claims: the token's channels claim, or for
 * anonymous connections [auth] anonymous-channels */
static gboolean
may_subscribe_by_claims (HeraldHub *self, const HeraldJwtClaims *claims, const char *channel)
{
  if (claims)
    return claims->channels == NULL
           || herald_channel_pattern_match ((const char *const *)claims->channels, channel);
  return herald_channel_pattern_match (
      herald_config_get_anonymous_channels (herald_hub_get_config (self)), channel);
}

/* The one place that decides whether a connection may subscribe to (or see
 * the presence of) a channel, by the channel's namespace. */
gboolean
herald_hub_may_subscribe (HeraldHub *self, const HeraldJwtClaims *claims, const char *channel)
{
  g_return_val_if_fail (HERALD_IS_HUB (self), FALSE);
  g_return_val_if_fail (channel != NULL, FALSE);

  /* The token's subs claim: the server decided, whatever else */
  if (claims != NULL && claims->subs != NULL
      && g_strv_contains ((const char *const *)claims->subs, channel))
    return TRUE;
  /* User-limited channel "ns:room#alice,bob": those users, whatever else */
  if (strchr (channel, '#') != NULL)
    return herald_channel_user_allowed (channel, claims != NULL ? claims->sub : NULL);
  switch (herald_config_namespace_for (herald_hub_get_config (self), channel)->subscribe)
    {
    case HERALD_NS_SUBSCRIBE_CLAIMS:
      return may_subscribe_by_claims (self, claims, channel);
    case HERALD_NS_SUBSCRIBE_TOKEN: /* needs a subscription token, which claims don't give */
    case HERALD_NS_SUBSCRIBE_PROXY: /* needs the backend's answer, which claims don't give */
    default:
      return FALSE;
    }
}

guint32
herald_hub_verify_subscription_token (HeraldHub *self, HeraldConnection *connection,
                                      const char *channel, const char *token, GError **error)
{
  HeraldJwtVerifier *verifier = herald_hub_get_verifier (self);
  gint64 now = g_get_real_time () / G_USEC_PER_SEC;
  guint leeway = herald_config_get_leeway (herald_hub_get_config (self));
  g_autoptr (HeraldJwtClaims) claims = NULL;
  g_autoptr (GError) local_error = NULL;
  const char *user = herald_connection_get_user_id (connection);

  g_return_val_if_fail (HERALD_IS_HUB (self), 0);
  g_return_val_if_fail (channel != NULL, 0);

  if (token == NULL || *token == '\0')
    {
      g_set_error (error, HERALD_ERROR, HERALD_ERROR_FORBIDDEN,
                   "%s needs a subscription token (\"token\")", channel);
      return 0;
    }
  if (verifier == NULL)
    {
      g_set_error_literal (error, HERALD_ERROR, HERALD_ERROR_FORBIDDEN,
                           "Subscription tokens are not accepted: no token key configured");
      return 0;
    }
  claims = herald_jwt_verifier_verify (verifier, token, now, leeway, &local_error);
  if (claims == NULL)
    {
      g_set_error (error, HERALD_ERROR, HERALD_ERROR_FORBIDDEN, "Invalid subscription token: %s",
                   local_error->message);
      return 0;
    }
  if (claims->exp <= 0)
    {
      g_set_error_literal (error, HERALD_ERROR, HERALD_ERROR_FORBIDDEN,
                           "Invalid subscription token: it has no exp");
      return 0;
    }
  if (g_strcmp0 (claims->sub ? claims->sub : "", user ? user : "") != 0)
    {
      g_set_error_literal (error, HERALD_ERROR, HERALD_ERROR_FORBIDDEN,
                           "Invalid subscription token: it is for another user (sub)");
      return 0;
    }
  if (g_strcmp0 (claims->channel, channel) != 0)
    {
      g_set_error (error, HERALD_ERROR, HERALD_ERROR_FORBIDDEN,
                   "Invalid subscription token: it is not for %s (channel)", channel);
      return 0;
    }
  /* exp + leeway on the loop's clock (verify refused one already past it) */
  return herald_loop_now () + (guint32)MAX (claims->exp + (gint64)leeway - now, 1);
}

/* A user's connections join and leave channels through the engine's presence
 * table, which emits join/leave events for the user's first and last one.
 * Anonymous connections are not users: they emit nothing, but a cluster
 * engine counts them for the other nodes' presence answers. */
static void
presence_change (HeraldHub *self, HeraldConnection *conn, HeraldChannel *channel, int delta)
{
  HeraldEngine *engine = herald_hub_get_engine (self);
  const char *user = herald_connection_get_user_id (conn);
  const char *name = herald_channel_get_name (channel);

  if (user == NULL)
    herald_engine_presence_anonymous (engine, name, delta);
  else if (delta > 0)
    herald_engine_presence_join (engine, name, user);
  else
    herald_engine_presence_leave (engine, name, user);
}

/* join-leave=true: the channel's other subscribers, on every node, hear of a
 * connection's subscribing and leaving (herald_message_get_exclude()). */
static void
announce (HeraldHub *self, HeraldConnection *conn, HeraldChannel *channel, gboolean joined)
{
  g_autoptr (HeraldMessage) event = herald_message_new_join_leave (
      herald_channel_get_name (channel), herald_connection_get_user_id (conn),
      herald_connection_get_id (conn), joined);

  herald_engine_announce (herald_hub_get_engine (self), event);
}

static HeraldSubscription *
add_subscription (HeraldHub *self, HeraldWorker *worker, HeraldConnection *conn, const char *name)
{
  HeraldChannel *channel = herald_worker_ensure_channel (worker, name);
  HeraldSubscription *sub = herald_connection_add_subscription (conn, channel);
  const HeraldNamespace *ns = herald_config_namespace_for (herald_hub_get_config (self), name);

  /* The namespace as it is now: a SIGHUP applies to new subscriptions. */
  sub->conflate = ns->conflate != 0;
  sub->join_leave = ns->join_leave != 0;
  presence_change (self, conn, channel, +1);
  if (sub->join_leave)
    announce (self, conn, channel, TRUE);
  return sub;
}

/* One channel (WebSocket). The snapshot and the subscription happen in this
 * thread without draining the worker's inbox in between, and the channel is
 * in the worker's table before the snapshot, so the hub already posts every
 * later message here: live messages queued with an offset in the snapshot
 * are skipped, later ones delivered. Nothing is lost or duplicated. */
static void
subscribe_channel (HeraldHub *self, HeraldWorker *worker, HeraldConnection *conn,
                   const HeraldSubscribeRequest *request, HeraldSubscribeResult *result)
{
  HeraldEngine *engine = herald_hub_get_engine (self);
  const char *channel = request->channels[0];
  HeraldSubscription *sub = herald_connection_find_subscription (conn, channel);
  gboolean is_new = sub == NULL;

  if (is_new)
    sub = add_subscription (self, worker, conn, channel);
  if (request->presence >= 0)
    sub->presence = request->presence != 0;
  if (request->server)
    {
      sub->server = TRUE; /* the server's: no token's end applies any more */
      sub->expires = 0;
    }
  else if (request->expires != 0)
    {
      /* A fresh token renews; the wheel visits again at the next tick */
      sub->expires = request->expires;
      herald_worker_schedule (worker, conn, 0);
    }

  if (request->from == HERALD_SUBSCRIBE_SINCE)
    {
      g_autoptr (HeraldRecovery) recovery
          = herald_engine_recover (engine, channel, request->since, request->epoch);

      if (recovery->recovered)
        for (guint i = 0; i < recovery->messages->len; i++)
          herald_connection_deliver (conn, g_ptr_array_index (recovery->messages, i));
      sub->skip_until = recovery->top_offset;
      result->with_recovery = TRUE;
      result->recovered = recovery->recovered;
      result->offset = recovery->top_offset;
      result->epoch = g_strdup (recovery->epoch);
    }
  else
    {
      /* Every reply carries the position the live stream starts after, so a
       * client can resume with since/epoch later. A new subscription skips
       * messages up to it still queued for this worker; an existing one was
       * already live and keeps receiving them. */
      g_autofree char *epoch = NULL;
      guint64 top = 0;

      herald_engine_get_position (engine, channel, &top, &epoch);
      if (is_new)
        sub->skip_until = top;
      result->offset = top;
      result->epoch = g_strdup (epoch ? epoch : "");
    }
}

/* The "subs" of the connected greeting: {"<channel>":{"offset":N,"epoch":"…"}}
 * for each of @channels in the token's subs claim; NULL when none. */
static JsonNode *
greeting_subs (HeraldEngine *engine, HeraldConnection *conn, const char *const *channels)
{
  const HeraldJwtClaims *claims = herald_connection_get_claims (conn);
  g_autoptr (JsonObject) subs = NULL;

  if (claims == NULL || claims->subs == NULL)
    return NULL;
  for (guint i = 0; channels[i]; i++)
    {
      g_autofree char *epoch = NULL;
      JsonObject *position;
      guint64 offset = 0;

      if (!g_strv_contains ((const char *const *)claims->subs, channels[i]))
        continue;
      herald_engine_get_position (engine, channels[i], &offset, &epoch);
      position = json_object_new ();
      json_object_set_int_member (position, "offset", (gint64)offset);
      json_object_set_string_member (position, "epoch", epoch ? epoch : "");
      if (subs == NULL)
        subs = json_object_new ();
      json_object_set_object_member (subs, channels[i], position);
    }
  return subs ? json_node_init_object (json_node_alloc (), subs) : NULL;
}

/* A stream of channels (SSE), resumed after Last-Event-ID when given. */
static void
subscribe_stream (HeraldHub *self, HeraldWorker *worker, HeraldConnection *conn,
                  const HeraldSubscribeRequest *request)
{
  HeraldEngine *engine = herald_hub_get_engine (self);
  const char *const *channels = request->channels;
  guint n = g_strv_length ((char **)channels);
  g_autofree guint64 *positions = g_new0 (guint64, n + 1);
  g_autoptr (HeraldRecovery) recovery = NULL;
  g_autofree char *greeting_id = NULL;
  gboolean resuming = request->last_event_id && *request->last_event_id;
  gboolean resume = FALSE;
  gboolean reset = FALSE;

  /* The channels go into this worker's table first, so the hub posts every
   * message published from now on here; otherwise one published between the
   * snapshot below and the subscription would reach neither. */
  for (guint i = 0; i < n; i++)
    herald_worker_ensure_channel (worker, channels[i]);

  /* Each channel's offset before the snapshot: when resuming, messages up to
   * it still queued for this worker are skipped (the client had them, or gets
   * them in the replay); read before the snapshot so nothing in between is
   * lost. A fresh stream skips nothing: a message published after the
   * channel went into the table but before its offset was read (the Redis
   * engine reads it once the node's SUBSCRIBE is confirmed) comes live and in
   * no replay, so skipping it lost it (tests/test-redis.c sse-resume, under
   * load). Reading the offsets still waits for that SUBSCRIBE, so the
   * "connected" event goes out only once the stream receives messages. */
  for (guint i = 0; i < n; i++)
    herald_engine_get_position (engine, channels[i], &positions[i], NULL);

  if (resuming)
    {
      g_autofree char *epoch = NULL;
      guint64 since = 0;

      if (herald_sse_id_parse (request->last_event_id, &epoch, &since))
        {
          recovery = herald_engine_recover_stream (engine, channels, epoch, since);
          resume = recovery->recovered;
        }
      else /* not ours: ask beyond any position, only for the current one */
        recovery = herald_engine_recover_stream (engine, channels, NULL, G_MAXUINT64);
      if (!resume)
        {
          /* Resuming from the reset continues from here, not from the start
           * of history. */
          greeting_id
              = herald_sse_id_format (recovery->epoch ? recovery->epoch : "", recovery->top_offset);
          reset = TRUE;
        }
    }
  else
    {
      /* A fresh stream starts at the node's current position, read after the
       * channel positions: a reconnect before the first message resumes from
       * here (messages published in between may arrive live, never twice). */
      g_autofree char *current = NULL;
      guint64 seq = 0;

      if (herald_engine_get_stream_position_of (engine, channels, &seq, &current)
          && current != NULL)
        greeting_id = herald_sse_id_format (current, seq);
    }
  herald_connection_set_greeting_subs (conn, greeting_subs (engine, conn, channels));
  herald_connection_send_sse_greeting (conn, greeting_id, reset);

  for (guint i = 0; i < n; i++)
    {
      HeraldSubscription *sub;

      if (herald_connection_find_subscription (conn, channels[i]))
        continue;
      sub = add_subscription (self, worker, conn, channels[i]);
      sub->skip_until = resuming ? positions[i] : 0;
      if (request->presence >= 0)
        sub->presence = request->presence != 0;
      /* Messages in the replay are skipped if they also arrive live. */
      for (guint j = 0; resume && j < recovery->messages->len; j++)
        {
          HeraldMessage *m = g_ptr_array_index (recovery->messages, j);
          if (g_str_equal (herald_message_get_channel (m), channels[i]))
            sub->skip_until = MAX (sub->skip_until, herald_message_get_offset (m));
        }
    }
  for (guint j = 0; resume && j < recovery->messages->len; j++)
    herald_connection_deliver (conn, g_ptr_array_index (recovery->messages, j));
}

/* [limits] max-subscriptions-per-connection (0 = no limit): counts the
 * request's channels the connection is not subscribed to yet, each once. */
static gboolean
within_subscription_limit (HeraldHub *self, HeraldConnection *conn,
                           const HeraldSubscribeRequest *request, GError **error)
{
  guint max = herald_config_get_max_subscriptions_per_connection (herald_hub_get_config (self));
  guint total = herald_connection_get_n_subscriptions (conn);

  if (max == 0)
    return TRUE;
  for (guint i = 0; request->channels[i]; i++)
    {
      gboolean seen = herald_connection_find_subscription (conn, request->channels[i]) != NULL;

      for (guint j = 0; !seen && j < i; j++)
        seen = g_str_equal (request->channels[i], request->channels[j]);
      if (!seen)
        total++;
    }
  if (total <= max)
    return TRUE;
  g_set_error (error, HERALD_ERROR, HERALD_ERROR_LIMIT_EXCEEDED,
               "Too many subscriptions: at most %u per connection "
               "([limits] max-subscriptions-per-connection)",
               max);
  return FALSE;
}

gboolean
herald_hub_subscribe (HeraldHub *self, HeraldWorker *worker, HeraldConnection *connection,
                      const HeraldSubscribeRequest *request, HeraldSubscribeResult *result,
                      GError **error)
{
  const HeraldJwtClaims *claims;

  g_return_val_if_fail (HERALD_IS_HUB (self), FALSE);
  g_return_val_if_fail (HERALD_IS_WORKER (worker), FALSE);
  g_return_val_if_fail (HERALD_IS_CONNECTION (connection), FALSE);
  g_return_val_if_fail (request != NULL && request->channels != NULL, FALSE);
  g_return_val_if_fail (result != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  memset (result, 0, sizeof *result);
  if (request->channels[0] == NULL
      || (request->from != HERALD_SUBSCRIBE_STREAM && request->channels[1] != NULL))
    {
      g_set_error_literal (error, HERALD_ERROR, HERALD_ERROR_INVALID_ARGUMENT,
                           request->channels[0] == NULL ? "Name at least one channel"
                                                        : "Name exactly one channel");
      return FALSE;
    }
  claims = herald_connection_get_claims (connection);
  for (guint i = 0; request->channels[i]; i++)
    {
      if (!herald_channel_name_is_valid (request->channels[i]))
        {
          g_set_error_literal (
              error, HERALD_ERROR, HERALD_ERROR_INVALID_ARGUMENT,
              "Invalid channel name: use 1–255 characters of A-Z a-z 0-9 _ . : @ / - # ,");
          return FALSE;
        }
      if (!request->allowed && !request->server && request->expires == 0
          && !herald_hub_may_subscribe (self, claims, request->channels[i]))
        {
          g_set_error (error, HERALD_ERROR, HERALD_ERROR_FORBIDDEN,
                       "Not allowed to subscribe to %s", request->channels[i]);
          return FALSE;
        }
    }

  if (!within_subscription_limit (self, connection, request, error))
    return FALSE;

  if (request->from == HERALD_SUBSCRIBE_STREAM)
    subscribe_stream (self, worker, connection, request);
  else
    subscribe_channel (self, worker, connection, request, result);
  return TRUE;
}

void
herald_hub_unsubscribe (HeraldHub *self, HeraldWorker *worker, HeraldConnection *connection,
                        HeraldSubscription *subscription)
{
  HeraldChannel *channel;

  g_return_if_fail (HERALD_IS_HUB (self));
  g_return_if_fail (HERALD_IS_CONNECTION (connection));
  g_return_if_fail (subscription != NULL && subscription->connection == connection);

  channel = subscription->channel;
  if (subscription->join_leave)
    announce (self, connection, channel, FALSE);
  presence_change (self, connection, channel, -1);
  herald_connection_remove_subscription (connection, subscription);
  herald_worker_release_channel (worker, channel);
}

/* The token's subs claim on a WebSocket: each channel subscribed live, the
 * positions kept for the greeting. Returns the first error (a limit). */
static GError *
subscribe_claimed (HeraldHub *self, HeraldWorker *worker, HeraldConnection *conn)
{
  const HeraldJwtClaims *claims = herald_connection_get_claims (conn);
  g_autoptr (JsonObject) subs = NULL;

  if (claims == NULL || claims->subs == NULL)
    return NULL;
  subs = json_object_new ();
  for (guint i = 0; claims->subs[i]; i++)
    {
      const char *channels[] = { claims->subs[i], NULL };
      /* The server's: it outlives a refresh whose claims leave it out */
      HeraldSubscribeRequest request
          = { .channels = channels, .from = HERALD_SUBSCRIBE_LIVE, .presence = -1, .server = TRUE };
      g_auto (HeraldSubscribeResult) result = { 0 };
      GError *error = NULL;
      JsonObject *position;

      if (!herald_hub_subscribe (self, worker, conn, &request, &result, &error))
        return error;
      position = json_object_new ();
      json_object_set_int_member (position, "offset", (gint64)result.offset);
      json_object_set_string_member (position, "epoch", result.epoch);
      json_object_set_object_member (subs, claims->subs[i], position);
    }
  herald_connection_set_greeting_subs (conn, json_node_init_object (json_node_alloc (), subs));
  return NULL;
}

HeraldConnection *
herald_hub_adopt (HeraldHub *self, HeraldWorker *worker, HeraldConnectionSetup *setup,
                  const HeraldSubscribeRequest *subscribe)
{
  g_autoptr (HeraldConnection) conn = NULL;
  g_autoptr (GError) subs_error = NULL;

  g_return_val_if_fail (HERALD_IS_HUB (self), NULL);
  g_return_val_if_fail (HERALD_IS_WORKER (worker), NULL);
  g_return_val_if_fail (setup != NULL && setup->id != NULL, NULL);
  g_return_val_if_fail (setup->fd >= 0, NULL);

  conn = herald_connection_new (herald_worker_get_host (worker), setup);
  herald_worker_add_connection (worker, conn);
  herald_hub_connection_opened (self, setup->id, herald_connection_get_user_id (conn),
                                setup->transport);
  /* WebSocket: the token's subs before the greeting, which carries their
   * positions (nothing is queued meanwhile: live subscriptions replay nothing,
   * and the inbox is not drained in between). SSE: they are in @subscribe. */
  if (setup->transport == HERALD_TRANSPORT_WEBSOCKET)
    subs_error = subscribe_claimed (self, worker, conn);
  herald_connection_start (conn);
  if (subs_error != NULL)
    herald_connection_close (conn, 1008, subs_error->message);
  if (subscribe != NULL)
    {
      g_auto (HeraldSubscribeResult) result = { 0 };
      g_autoptr (GError) error = NULL;

      /* The front checked the request before it answered the handshake. */
      if (!herald_hub_subscribe (self, worker, conn, subscribe, &result, &error))
        herald_connection_close (conn, 1008, error->message);
    }
  herald_worker_drain_late (worker, conn);
  return g_steal_pointer (&conn);
}

/* ---- what the workers report (their threads) ---- */

/* A worker's owner: the hub, and the router for its connections' messages. */
typedef struct
{
  HeraldHub *hub;
  HeraldRouter *router;
} Owner;

static void
owner_free (Owner *owner)
{
  g_clear_object (&owner->router);
  g_free (owner);
}

static void
owner_channel_occupied (gpointer data, HeraldWorker *worker, const char *channel)
{
  Owner *owner = data;
  herald_hub_channel_occupied (owner->hub, channel, herald_worker_get_index (worker));
}

static void
owner_channel_vacated (gpointer data, HeraldWorker *worker, const char *channel)
{
  Owner *owner = data;
  herald_hub_channel_vacated (owner->hub, channel, herald_worker_get_index (worker));
}

static void
owner_received (gpointer data, HeraldWorker *worker, HeraldConnection *connection, const char *text,
                gsize length)
{
  Owner *owner = data;
  herald_router_dispatch (owner->router, connection, text, length);
}

static void
owner_unsubscribe (gpointer data, HeraldWorker *worker, HeraldConnection *connection,
                   HeraldSubscription *subscription)
{
  Owner *owner = data;
  herald_hub_unsubscribe (owner->hub, worker, connection, subscription);
}

/* {"type":…,"channel":…,"server":true} to @conn: a WebSocket frame, or an
 * SSE event of that type; @builder is an open object. */
static void
send_event (HeraldConnection *conn, const char *type, JsonBuilder *builder)
{
  g_autoptr (JsonNode) root = NULL;
  g_autoptr (JsonGenerator) gen = NULL;
  g_autoptr (GBytes) event = NULL;
  g_autofree char *text = NULL;
  gsize len = 0;

  json_builder_end_object (builder);
  if (herald_connection_get_transport (conn) == HERALD_TRANSPORT_WEBSOCKET)
    {
      herald_connection_send_json (conn, builder);
      return;
    }
  root = json_builder_get_root (builder);
  gen = json_generator_new ();
  json_generator_set_root (gen, root);
  text = json_generator_to_data (gen, &len);
  event = herald_sse_event_new (NULL, type, text, len);
  herald_connection_enqueue (conn, event);
}

/* POST /api/users/{id}/subscribe|unsubscribe reached one of the user's
 * connections here: @message is the frame it gets (herald-hub-subs.c). */
static void
owner_server_subscription (gpointer data, HeraldWorker *worker, HeraldConnection *conn,
                           HeraldMessage *message)
{
  Owner *owner = data;
  g_autoptr (JsonParser) parser = json_parser_new_immutable ();
  g_autoptr (JsonBuilder) b = json_builder_new ();
  g_autoptr (GError) error = NULL;
  JsonObject *frame;
  JsonNode *node;
  const char *type, *channel;
  gsize len = 0;
  const char *json = herald_message_get_json (message, &len);

  /* A direct message: {"type":"message","data":<the frame>} */
  if (herald_connection_get_state (conn) != HERALD_CONNECTION_OPEN
      || !json_parser_load_from_data (parser, json, (gssize)len, NULL)
      || !JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)))
    return;
  node = json_object_get_member (json_node_get_object (json_parser_get_root (parser)), "data");
  if (node == NULL || !JSON_NODE_HOLDS_OBJECT (node))
    return;
  frame = json_node_get_object (node);
  type = json_object_get_string_member_with_default (frame, "type", "");
  channel = json_object_get_string_member_with_default (frame, "channel", "");
  if (!herald_channel_name_is_valid (channel))
    return;
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "type");
  json_builder_add_string_value (b, type);
  json_builder_set_member_name (b, "channel");
  json_builder_add_string_value (b, channel);
  json_builder_set_member_name (b, "server");
  json_builder_add_boolean_value (b, TRUE);
  if (g_str_equal (type, "subscribed"))
    {
      const char *channels[] = { channel, NULL };
      HeraldSubscribeRequest request
          = { .channels = channels, .from = HERALD_SUBSCRIBE_LIVE, .presence = -1, .server = TRUE };
      g_auto (HeraldSubscribeResult) result = { 0 };

      if (!herald_hub_subscribe (owner->hub, worker, conn, &request, &result, &error))
        {
          g_debug ("connection %s: server subscription to %s refused: %s",
                   herald_connection_get_id (conn), channel, error->message);
          return;
        }
      json_builder_set_member_name (b, "offset");
      json_builder_add_int_value (b, (gint64)result.offset);
      json_builder_set_member_name (b, "epoch");
      json_builder_add_string_value (b, result.epoch);
    }
  else if (g_str_equal (type, "unsubscribed"))
    {
      HeraldSubscription *sub = herald_connection_find_subscription (conn, channel);

      if (sub != NULL)
        herald_hub_unsubscribe (owner->hub, worker, conn, sub);
    }
  else
    return;
  send_event (conn, type, b);
}

static void
owner_release (gpointer data, const char *id, guint16 code, const char *reason, gboolean was_open)
{
  Owner *owner = data;
  herald_hub_release_connection (owner->hub, id, code, reason, was_open);
}

static gboolean
owner_expired (gpointer data, HeraldWorker *worker, HeraldConnection *connection)
{
  Owner *owner = data;
  return herald_router_expired (owner->router, connection);
}

static const HeraldWorkerOwnerFuncs owner_funcs = {
  .channel_occupied = owner_channel_occupied,
  .channel_vacated = owner_channel_vacated,
  .received = owner_received,
  .unsubscribe = owner_unsubscribe,
  .server_subscription = owner_server_subscription,
  .release = owner_release,
  .expired = owner_expired,
};

HeraldWorker *
herald_hub_new_worker (HeraldHub *self)
{
  HeraldWorker *worker;
  Owner *owner;

  g_return_val_if_fail (HERALD_IS_HUB (self), NULL);

  owner = g_new0 (Owner, 1);
  owner->hub = self;
  worker = herald_worker_new (&owner_funcs, owner, herald_hub_get_n_workers (self),
                              herald_hub_get_stream_limits (self));
  owner->router = herald_router_new (self, worker);
  g_object_set_data_full (G_OBJECT (worker), "herald-owner", owner, (GDestroyNotify)owner_free);
  herald_hub_add_worker (self, worker);
  g_object_unref (worker); /* the hub's now */
  return worker;
}
