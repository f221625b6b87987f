/* herald-worker-hold.h: a connection's messages held behind a pending
 * backend call ([proxy] subscribe and publish hooks), in order.
 *
 * The queue hangs on the connection (its qdata), so nothing is kept for a
 * connection that holds nothing. Worker thread only; the worker uses it
 * (herald_worker_hold_input(), herald_worker_release_input()).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "herald-connection.h"

G_BEGIN_DECLS

/* Messages one connection may have waiting; past it the connection is closed 1008 */
#define HERALD_HOLD_MAX 256

typedef void (*HeraldHoldDispatch) (gpointer data, HeraldConnection *connection, const char *text,
                                    gsize length);

/* From now on @connection's messages wait */
void herald_hold_start (HeraldConnection *connection);
/* TRUE when @connection holds its messages: @text was queued (or the
 * connection closed for too many) */
gboolean herald_hold_take (HeraldConnection *connection, const char *text, gsize length);
/* Hands the held messages to @dispatch in order, until one holds again */
void herald_hold_release (HeraldConnection *connection, HeraldHoldDispatch dispatch, gpointer data);

G_END_DECLS
