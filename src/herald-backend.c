/* herald-backend.c: the backend interface (see herald-backend.h).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "herald-backend.h"

G_DEFINE_INTERFACE (HeraldBackend, herald_backend, G_TYPE_OBJECT)

static void
herald_backend_default_init (HeraldBackendInterface *iface)
{
}

void
herald_backend_reply_free (HeraldBackendReply *reply)
{
  if (reply == NULL)
    return;
  g_clear_pointer (&reply->result, json_object_unref);
  g_free (reply->message);
  g_free (reply);
}

void
herald_backend_call_async (HeraldBackend *self, HeraldHook hook, JsonNode *body,
                           GCancellable *cancellable, GAsyncReadyCallback callback,
                           gpointer user_data)
{
  g_return_if_fail (HERALD_IS_BACKEND (self));
  g_return_if_fail (hook < HERALD_N_HOOKS);
  g_return_if_fail (body != NULL && JSON_NODE_HOLDS_OBJECT (body));

  HERALD_BACKEND_GET_IFACE (self)->call_async (self, hook, body, cancellable, callback, user_data);
}

HeraldBackendReply *
herald_backend_call_finish (HeraldBackend *self, GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (HERALD_IS_BACKEND (self), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  return HERALD_BACKEND_GET_IFACE (self)->call_finish (self, result, error);
}
