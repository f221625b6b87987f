/* herald-backend.h: the application's backend, asked by the hub.
 *
 * The hooks of [proxy] (docs/integration.md) seen from below the fronts: the
 * hub and the stream know no HTTP, so they ask a HeraldBackend, which a
 * front implements (herald-proxy.c, over libsoup's client). One backend per
 * worker, called in that worker's thread; the answer comes back in the
 * caller's thread-default main context, never blocking it.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>
#include <json-glib/json-glib.h>

#include "herald-config.h"

G_BEGIN_DECLS

typedef enum
{
  HERALD_BACKEND_RESULT,     /* {"result":{…}} */
  HERALD_BACKEND_ERROR,      /* {"error":{"code":N,"message":"…"}} */
  HERALD_BACKEND_DISCONNECT, /* {"disconnect":{"code":4000–4999,"reason":"…"}} */
} HeraldBackendAnswer;

/* A well-formed answer; anything else fails with HERALD_ERROR_UNAVAILABLE. */
typedef struct
{
  HeraldBackendAnswer answer;
  JsonObject *result; /* RESULT: the "result" object, checked for the hook's fields */
  gint64 code;        /* ERROR: the backend's code (0 when absent); DISCONNECT: 4000–4999 */
  char *message;      /* ERROR: its message; DISCONNECT: the reason ("" when absent) */
} HeraldBackendReply;

void herald_backend_reply_free (HeraldBackendReply *reply);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (HeraldBackendReply, herald_backend_reply_free)

#define HERALD_TYPE_BACKEND (herald_backend_get_type ())
G_DECLARE_INTERFACE (HeraldBackend, herald_backend, HERALD, BACKEND, GObject)

struct _HeraldBackendInterface
{
  GTypeInterface parent_iface;

  void (*call_async) (HeraldBackend *self, HeraldHook hook, JsonNode *body,
                      GCancellable *cancellable, GAsyncReadyCallback callback, gpointer user_data);
  HeraldBackendReply *(*call_finish) (HeraldBackend *self, GAsyncResult *result, GError **error);
};

/* POSTs @body (a JSON object) to @hook's URL. The hook must be configured
 * (herald_config_get_proxy_url()). */
void herald_backend_call_async (HeraldBackend *self, HeraldHook hook, JsonNode *body,
                                GCancellable *cancellable, GAsyncReadyCallback callback,
                                gpointer user_data);
/* Returns: (transfer full): the answer, or NULL with HERALD_ERROR_UNAVAILABLE
 * (down, too slow, 5xx, too large, not the hook's JSON, too many pending). */
HeraldBackendReply *herald_backend_call_finish (HeraldBackend *self, GAsyncResult *result,
                                                GError **error);

/* Seconds a refresh the backend could not answer waits before it is asked again */
#define HERALD_BACKEND_REFRESH_RETRY 5

G_END_DECLS
