/* herald-send-batch.h: many sockets' writes in one system call.
 *
 * A worker's flush writes to every connection that has output. With
 * io_uring (liburing, optional at build time) those writes are queued as
 * one SENDMSG each, flagged MSG_DONTWAIT, and handed to the kernel in one
 * io_uring_enter(); each is tried at once in that call (a full socket
 * answers -EAGAIN rather than waiting), so every completion is there when
 * the call returns and no buffer outlives the flush. Without io_uring —
 * not built, refused by the kernel (old kernel, seccomp, the
 * kernel.io_uring_disabled sysctl) or `[server] io-uring=false` — the
 * caller writes with sendmsg(), one call per socket.
 *
 * Plain data owned by one thread (the worker that made it).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>
#include <sys/uio.h>

G_BEGIN_DECLS

/* iovecs one queued write may carry; a longer queue is written in turns. */
#define HERALD_SEND_BATCH_IOV 16

typedef struct _HeraldSendBatch HeraldSendBatch;

/* One write done: @result is bytes written or -errno; @requested what was asked. */
typedef void (*HeraldSendBatchDone) (gpointer tag, gssize result, gsize requested,
                                     gpointer user_data);

/* TRUE when built with io_uring. */
gboolean herald_send_batch_supported (void);
/* A batch of up to @entries writes, or NULL and @error when io_uring is not
 * built in or the kernel refuses it. Call it in the thread that submits. */
HeraldSendBatch *herald_send_batch_new (guint entries, GError **error);
void herald_send_batch_free (HeraldSendBatch *batch);
/* The iovecs (HERALD_SEND_BATCH_IOV of them) of the next write to queue. */
struct iovec *herald_send_batch_next_iov (HeraldSendBatch *batch);
/* Queues the write whose @n_iov iovecs were filled in next_iov(); returns
 * FALSE when the batch is full and must run before the next one. */
gboolean herald_send_batch_queue (HeraldSendBatch *batch, int fd, int n_iov, gpointer tag);
/* Writes everything queued (one system call per full batch) and reports
 * each write to @done (in completion order). Returns how many were written. */
guint herald_send_batch_run (HeraldSendBatch *batch, HeraldSendBatchDone done, gpointer user_data);
/* How many io_uring_enter() calls and writes went through @batch. */
void herald_send_batch_get_counts (HeraldSendBatch *batch, guint64 *submits, guint64 *writes);

G_END_DECLS
