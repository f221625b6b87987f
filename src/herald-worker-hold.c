/* herald-worker-hold.c: messages held behind a backend call (see the header).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "herald-worker-hold.h"

/* clang-format off */
G_DEFINE_QUARK (herald-held-input, held_input)
/* clang-format on */

static void
held_free (gpointer data)
{
  g_queue_free_full (data, (GDestroyNotify)g_bytes_unref);
}

void
herald_hold_start (HeraldConnection *connection)
{
  g_return_if_fail (HERALD_IS_CONNECTION (connection));
  if (g_object_get_qdata (G_OBJECT (connection), held_input_quark ()) == NULL)
    g_object_set_qdata_full (G_OBJECT (connection), held_input_quark (), g_queue_new (), held_free);
}

gboolean
herald_hold_take (HeraldConnection *connection, const char *text, gsize length)
{
  GQueue *held = g_object_get_qdata (G_OBJECT (connection), held_input_quark ());

  if (held == NULL)
    return FALSE;
  if (held->length >= HERALD_HOLD_MAX)
    herald_connection_close (connection, 1008, "too many messages behind a backend call");
  else
    g_queue_push_tail (held, g_bytes_new (text, length));
  return TRUE;
}

void
herald_hold_release (HeraldConnection *connection, HeraldHoldDispatch dispatch, gpointer data)
{
  g_autoptr (HeraldConnection) keep = g_object_ref (connection);
  GQueue *held = g_object_steal_qdata (G_OBJECT (connection), held_input_quark ());
  GBytes *text;

  while (held != NULL && (text = g_queue_pop_head (held)) != NULL)
    {
      GQueue *again;

      if (herald_connection_get_state (connection) == HERALD_CONNECTION_OPEN)
        dispatch (data, connection, g_bytes_get_data (text, NULL), g_bytes_get_size (text));
      g_bytes_unref (text);
      again = g_object_get_qdata (G_OBJECT (connection), held_input_quark ());
      if (again != NULL)
        {
          /* Held again: the rest wait behind the new call, still in order */
          while ((text = g_queue_pop_tail (held)) != NULL)
            g_queue_push_head (again, text);
          break;
        }
    }
  if (held != NULL)
    held_free (held);
}
