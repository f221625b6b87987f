/* herald-proxy.c: the [proxy] hooks over libsoup's HTTP client (see the header).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <glib/gi18n.h>
#include <libsoup/soup.h>
#include <string.h>

#include "herald-error.h"
#include "herald-json.h"
#include "herald-metrics.h"
#include "herald-proxy.h"

#define READ_CHUNK 65536
#define WARN_EVERY_USEC (10 * G_USEC_PER_SEC) /* a down backend: one warning per 10 s a worker */

struct _HeraldProxy
{
  GObject parent_instance;
  HeraldConfig *config;
  SoupSession *session;
  GMainContext *context;     /* the worker's, where calls answer */
  GCancellable *cancellable; /* every call's: cancelled by herald_proxy_abort() */
  guint in_flight;
  gint64 warned_at; /* monotonic µs of the last "unavailable" warning */
};

static void herald_proxy_backend_init (HeraldBackendInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (HeraldProxy, herald_proxy, G_TYPE_OBJECT,
                               G_IMPLEMENT_INTERFACE (HERALD_TYPE_BACKEND,
                                                      herald_proxy_backend_init))

typedef struct
{
  HeraldProxy *proxy; /* owned */
  HeraldHook hook;
  gint64 started;            /* monotonic µs */
  GCancellable *cancellable; /* this call's: the timeout cancels it */
  gulong abort_id;           /* on the proxy's, which herald_proxy_abort() cancels */
  GSource *timeout;
  gboolean timed_out;
  gboolean done;
  SoupMessage *msg;
  GInputStream *stream;
  GByteArray *body;
} Call;

static void
call_free (Call *call)
{
  if (call->timeout != NULL)
    {
      g_source_destroy (call->timeout);
      g_source_unref (call->timeout);
    }
  if (call->abort_id != 0)
    g_cancellable_disconnect (call->proxy->cancellable, call->abort_id);
  g_clear_object (&call->cancellable);
  g_clear_object (&call->msg);
  g_clear_object (&call->stream);
  g_clear_pointer (&call->body, g_byte_array_unref);
  g_clear_object (&call->proxy);
  g_free (call);
}

static void
herald_proxy_dispose (GObject *object)
{
  HeraldProxy *self = HERALD_PROXY (object);

  herald_proxy_abort (self);
  g_clear_object (&self->session);
  G_OBJECT_CLASS (herald_proxy_parent_class)->dispose (object);
}

static void
herald_proxy_finalize (GObject *object)
{
  HeraldProxy *self = HERALD_PROXY (object);

  g_clear_object (&self->cancellable);
  g_clear_object (&self->config);
  g_clear_pointer (&self->context, g_main_context_unref);
  G_OBJECT_CLASS (herald_proxy_parent_class)->finalize (object);
}

static void
herald_proxy_class_init (HeraldProxyClass *klass)
{
  G_OBJECT_CLASS (klass)->dispose = herald_proxy_dispose;
  G_OBJECT_CLASS (klass)->finalize = herald_proxy_finalize;
}

static void
herald_proxy_init (HeraldProxy *self)
{
  self->cancellable = g_cancellable_new ();
}

HeraldProxy *
herald_proxy_new (HeraldConfig *config)
{
  HeraldProxy *self;
  gboolean any = FALSE;

  g_return_val_if_fail (HERALD_IS_CONFIG (config), NULL);

  for (guint i = 0; i < HERALD_N_HOOKS; i++)
    any |= herald_config_get_proxy_url (config, i) != NULL;
  if (!any)
    return NULL;
  self = g_object_new (HERALD_TYPE_PROXY, NULL);
  self->config = g_object_ref (config);
  self->context = g_main_context_ref_thread_default ();
  /* max-conns: the per-worker bound is ours (max-in-flight), not libsoup's 10 */
  self->session = soup_session_new_with_options (
      "max-conns", herald_config_get_proxy_max_in_flight (config), "max-conns-per-host",
      herald_config_get_proxy_max_in_flight (config), "user-agent", "herald/" PACKAGE_VERSION,
      NULL);
  /* The backend is the application's own: straight to it, never through an
   * HTTP proxy the environment (http_proxy, GSettings) names */
  soup_session_set_proxy_resolver (self->session, NULL);
  return self;
}

void
herald_proxy_abort (HeraldProxy *self)
{
  g_return_if_fail (HERALD_IS_PROXY (self));
  /* Once, when the worker stops: every pending call ends, none starts */
  g_cancellable_cancel (self->cancellable);
}

static void
cancel_call (GCancellable *proxy_cancellable, gpointer data)
{
  g_cancellable_cancel (data);
}

/* ---- checking answers ---- */

static gboolean
is_string_array (JsonNode *node)
{
  JsonArray *array;

  if (node == NULL)
    return TRUE;
  if (!JSON_NODE_HOLDS_ARRAY (node))
    return FALSE;
  array = json_node_get_array (node);
  for (guint i = 0; i < json_array_get_length (array); i++)
    {
      JsonNode *item = json_array_get_element (array, i);

      if (!JSON_NODE_HOLDS_VALUE (item) || json_node_get_value_type (item) != G_TYPE_STRING)
        return FALSE;
    }
  return TRUE;
}

static gboolean
is_int (JsonNode *node, gint64 min, gint64 max)
{
  return node != NULL && JSON_NODE_HOLDS_VALUE (node)
         && json_node_get_value_type (node) == G_TYPE_INT64 && json_node_get_int (node) >= min
         && json_node_get_int (node) <= max;
}

static gboolean
is_optional_string (JsonNode *node)
{
  return node == NULL
         || (JSON_NODE_HOLDS_VALUE (node) && json_node_get_value_type (node) == G_TYPE_STRING);
}

/* The hook's result fields (the rest is ignored, as Centrifugo does) */
static gboolean
result_is_valid (HeraldHook hook, JsonObject *result)
{
  JsonNode *expire_at = json_object_get_member (result, "expire_at");
  JsonNode *user = json_object_get_member (result, "user");

  switch (hook)
    {
    case HERALD_HOOK_CONNECT:
      return user != NULL && JSON_NODE_HOLDS_VALUE (user)
             && json_node_get_value_type (user) == G_TYPE_STRING
             && (expire_at == NULL || is_int (expire_at, 0, G_MAXINT64))
             && is_string_array (json_object_get_member (result, "channels"))
             && is_string_array (json_object_get_member (result, "publish"))
             && is_string_array (json_object_get_member (result, "subs"));
    case HERALD_HOOK_REFRESH:
      return is_int (expire_at, 0, G_MAXINT64);
    case HERALD_HOOK_SUBSCRIBE:
    case HERALD_HOOK_PUBLISH:
    case HERALD_HOOK_RPC:
    default:
      return TRUE;
    }
}

/**
 * herald_proxy_parse_answer:
 * @hook: the hook that answered
 * @text: (array length=length): the answer's body, any bytes
 * @result: (out): how the call counts in /metrics
 *
 * Returns: (transfer full) (nullable): the answer as a reply, or %NULL when
 *   it is not the hook's JSON (*@result is then INVALID)
 */
HeraldBackendReply *
herald_proxy_parse_answer (HeraldHook hook, const char *text, gsize length,
                           HeraldProxyResult *result)
{
  g_autoptr (JsonParser) parser = json_parser_new_immutable ();
  g_autoptr (HeraldBackendReply) reply = g_new0 (HeraldBackendReply, 1);
  JsonObject *root, *member;
  JsonNode *node;

  *result = HERALD_PROXY_RESULT_INVALID;
  /* Herald's reader first: one value, nesting bounded (json-glib's parser
   * is recursive), no integer json-glib would change */
  if (!herald_json_check_strict (text, length, NULL)
      || !json_parser_load_from_data (parser, text, (gssize)length, NULL)
      || json_parser_get_root (parser) == NULL
      || !JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)))
    return NULL;
  root = json_node_get_object (json_parser_get_root (parser));
  if ((node = json_object_get_member (root, "disconnect")) != NULL)
    {
      if (!JSON_NODE_HOLDS_OBJECT (node))
        return NULL;
      member = json_node_get_object (node);
      if (!is_int (json_object_get_member (member, "code"), 4000, 4999)
          || !is_optional_string (json_object_get_member (member, "reason")))
        return NULL;
      reply->answer = HERALD_BACKEND_DISCONNECT;
      reply->code = json_object_get_int_member (member, "code");
      reply->message = g_strdup (json_object_get_string_member_with_default (member, "reason", ""));
      *result = HERALD_PROXY_RESULT_DISCONNECT;
    }
  else if ((node = json_object_get_member (root, "error")) != NULL)
    {
      JsonNode *code;

      if (!JSON_NODE_HOLDS_OBJECT (node))
        return NULL;
      member = json_node_get_object (node);
      code = json_object_get_member (member, "code");
      if ((code != NULL && !is_int (code, G_MININT64, G_MAXINT64))
          || !is_optional_string (json_object_get_member (member, "message")))
        return NULL;
      reply->answer = HERALD_BACKEND_ERROR;
      reply->code = code != NULL ? json_node_get_int (code) : 0;
      reply->message
          = g_strdup (json_object_get_string_member_with_default (member, "message", ""));
      *result = HERALD_PROXY_RESULT_ERROR;
    }
  else if ((node = json_object_get_member (root, "result")) != NULL)
    {
      if (!JSON_NODE_HOLDS_OBJECT (node) || !result_is_valid (hook, json_node_get_object (node)))
        return NULL;
      reply->answer = HERALD_BACKEND_RESULT;
      reply->result = json_object_ref (json_node_get_object (node));
      *result = HERALD_PROXY_RESULT_OK;
    }
  else
    return NULL;
  return g_steal_pointer (&reply);
}

/* ---- one call ---- */

static void
call_return (GTask *task, HeraldProxyResult result, HeraldBackendReply *reply, const char *why)
{
  Call *call = g_task_get_task_data (task);

  if (call->done)
    return;
  call->done = TRUE;
  call->proxy->in_flight--;
  if (call->timeout != NULL)
    {
      g_source_destroy (call->timeout);
      g_clear_pointer (&call->timeout, g_source_unref);
    }
  herald_metrics_observe_proxy (call->hook, result, g_get_monotonic_time () - call->started);
  if (reply != NULL)
    g_task_return_pointer (task, reply, (GDestroyNotify)herald_backend_reply_free);
  else
    {
      gint64 now = g_get_monotonic_time ();

      /* Operators see a failing backend without a line per request */
      if (call->proxy->warned_at == 0 || now - call->proxy->warned_at >= WARN_EVERY_USEC)
        {
          call->proxy->warned_at = now;
          g_warning (_ ("[proxy] %s hook %s: %s (requests fail with 503 or unavailable; "
                        "herald_proxy_requests_total counts them)"),
                     herald_hook_name (call->hook),
                     herald_config_get_proxy_url (call->proxy->config, call->hook) != NULL
                         ? herald_config_get_proxy_url (call->proxy->config, call->hook)
                         : "",
                     why);
        }
      else
        g_debug ("proxy: %s hook unavailable: %s", herald_hook_name (call->hook), why);
      g_task_return_new_error (task, HERALD_ERROR, HERALD_ERROR_UNAVAILABLE,
                               "The backend is unavailable (%s)", why);
    }
  g_object_unref (task);
}

/* A failed read or send: the timeout cancelled it, or the network failed */
static void
call_failed (GTask *task, GError *error)
{
  Call *call = g_task_get_task_data (task);

  if (call->timed_out)
    call_return (task, HERALD_PROXY_RESULT_TIMEOUT, NULL, "no answer within [proxy] timeout");
  else
    call_return (task, HERALD_PROXY_RESULT_UNREACHABLE, NULL, error->message);
}

static gboolean
on_timeout (gpointer data)
{
  GTask *task = data;
  Call *call = g_task_get_task_data (task);

  call->timed_out = TRUE;
  g_clear_pointer (&call->timeout, g_source_unref); /* the context destroys it */
  g_cancellable_cancel (call->cancellable);
  return G_SOURCE_REMOVE;
}

static void on_read (GObject *source, GAsyncResult *res, gpointer data);

static void
read_more (GTask *task)
{
  Call *call = g_task_get_task_data (task);

  g_input_stream_read_bytes_async (call->stream, READ_CHUNK, G_PRIORITY_DEFAULT, call->cancellable,
                                   on_read, task);
}

static void
on_read (GObject *source, GAsyncResult *res, gpointer data)
{
  GTask *task = data;
  Call *call = g_task_get_task_data (task);
  g_autoptr (GError) error = NULL;
  g_autoptr (GBytes) bytes
      = g_input_stream_read_bytes_finish (G_INPUT_STREAM (source), res, &error);
  HeraldProxyResult result;
  HeraldBackendReply *reply;

  if (bytes == NULL)
    {
      call_failed (task, error);
      return;
    }
  if (g_bytes_get_size (bytes) > 0)
    {
      if (call->body->len + g_bytes_get_size (bytes) > HERALD_PROXY_MAX_ANSWER)
        {
          call_return (task, HERALD_PROXY_RESULT_INVALID, NULL, "answer over 1 MiB");
          return;
        }
      g_byte_array_append (call->body, g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes));
      read_more (task);
      return;
    }
  reply = herald_proxy_parse_answer (call->hook, (const char *)call->body->data, call->body->len,
                                     &result);
  call_return (task, result, reply, "the answer is not the hook's JSON");
}

static void
on_sent (GObject *source, GAsyncResult *res, gpointer data)
{
  GTask *task = data;
  Call *call = g_task_get_task_data (task);
  g_autoptr (GError) error = NULL;
  guint status;
  goffset length;

  call->stream = soup_session_send_finish (SOUP_SESSION (source), res, &error);
  if (call->stream == NULL)
    {
      call_failed (task, error);
      return;
    }
  status = soup_message_get_status (call->msg);
  if (status < 200 || status > 299)
    {
      g_autofree char *why = g_strdup_printf ("HTTP %u", status);

      call_return (task, HERALD_PROXY_RESULT_HTTP_ERROR, NULL, why);
      return;
    }
  length = soup_message_headers_get_content_length (soup_message_get_response_headers (call->msg));
  if (length > HERALD_PROXY_MAX_ANSWER)
    {
      call_return (task, HERALD_PROXY_RESULT_INVALID, NULL, "answer over 1 MiB");
      return;
    }
  call->body = g_byte_array_new ();
  read_more (task);
}

static void
proxy_call_async (HeraldBackend *backend, HeraldHook hook, JsonNode *body,
                  GCancellable *cancellable, GAsyncReadyCallback callback, gpointer user_data)
{
  HeraldProxy *self = HERALD_PROXY (backend);
  GTask *task = g_task_new (self, cancellable, callback, user_data);
  const char *url = herald_config_get_proxy_url (self->config, hook);
  Call *call = g_new0 (Call, 1);
  g_autofree char *text = NULL;
  gsize length = 0;

  call->proxy = g_object_ref (self);
  call->hook = hook;
  call->started = g_get_monotonic_time ();
  call->cancellable = g_cancellable_new ();
  call->abort_id = g_cancellable_connect (self->cancellable, G_CALLBACK (cancel_call),
                                          call->cancellable, NULL);
  g_task_set_task_data (task, call, (GDestroyNotify)call_free);
  g_task_set_source_tag (task, proxy_call_async);
  self->in_flight++;

  if (url == NULL)
    {
      call_return (task, HERALD_PROXY_RESULT_UNREACHABLE, NULL, "the hook has no URL");
      return;
    }
  if (self->in_flight > herald_config_get_proxy_max_in_flight (self->config))
    {
      call_return (task, HERALD_PROXY_RESULT_OVERLOADED, NULL,
                   "[proxy] max-in-flight calls are pending");
      return;
    }
  call->msg = soup_message_new (SOUP_METHOD_POST, url);
  if (call->msg == NULL)
    {
      call_return (task, HERALD_PROXY_RESULT_UNREACHABLE, NULL, "invalid URL");
      return;
    }
  text = json_to_string (body, FALSE);
  length = strlen (text);
  soup_message_set_request_body_from_bytes (call->msg, "application/json",
                                            g_bytes_new_take (g_steal_pointer (&text), length));
  soup_message_headers_replace (soup_message_get_request_headers (call->msg), "Accept",
                                "application/json");
  call->timeout = g_timeout_source_new (herald_config_get_proxy_timeout_ms (self->config));
  g_source_set_callback (call->timeout, on_timeout, task, NULL);
  g_source_attach (call->timeout, self->context);
  soup_session_send_async (self->session, call->msg, G_PRIORITY_DEFAULT, call->cancellable, on_sent,
                           task);
}

static HeraldBackendReply *
proxy_call_finish (HeraldBackend *backend, GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, backend), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

static void
herald_proxy_backend_init (HeraldBackendInterface *iface)
{
  iface->call_async = proxy_call_async;
  iface->call_finish = proxy_call_finish;
}

/* ---- connect results ---- */

static char **
string_array (JsonObject *object, const char *name)
{
  JsonNode *node = json_object_get_member (object, name);
  g_autoptr (GStrvBuilder) builder = g_strv_builder_new ();

  if (node != NULL && JSON_NODE_HOLDS_ARRAY (node))
    {
      JsonArray *array = json_node_get_array (node);

      for (guint i = 0; i < json_array_get_length (array); i++)
        g_strv_builder_add (builder, json_array_get_string_element (array, i));
    }
  return g_strv_builder_end (builder);
}

HeraldJwtClaims *
herald_proxy_claims_from_result (JsonObject *result)
{
  HeraldJwtClaims *claims = g_new0 (HeraldJwtClaims, 1);
  const char *user = json_object_get_string_member_with_default (result, "user", "");

  g_return_val_if_fail (result != NULL, NULL);
  /* "" = an anonymous connection with the backend's permissions */
  claims->sub = *user != '\0' ? g_strdup (user) : NULL;
  claims->exp = json_object_get_int_member_with_default (result, "expire_at", 0);
  claims->iat = g_get_real_time () / G_USEC_PER_SEC;
  /* Absent means none (unlike a token, where an absent channels claim
   * leaves the channels to the namespaces) */
  claims->channels = string_array (result, "channels");
  claims->publish = string_array (result, "publish");
  claims->subs = json_object_has_member (result, "subs") ? string_array (result, "subs") : NULL;
  return claims;
}
