/* herald-send-batch.c
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "herald-send-batch.h"

#include <errno.h>
#include <sys/socket.h>

#include "herald-error.h"

#if HAVE_LIBURING
#include <liburing.h>

typedef struct
{
  struct msghdr msg;
  struct iovec iov[HERALD_SEND_BATCH_IOV];
  gpointer tag;
  gsize requested;
} Entry;

struct _HeraldSendBatch
{
  struct io_uring ring;
  guint entries;
  guint queued;
  guint64 submits;
  guint64 writes;
  Entry *slots;
};

gboolean
herald_send_batch_supported (void)
{
  return TRUE;
}

HeraldSendBatch *
herald_send_batch_new (guint entries, GError **error)
{
  g_autofree HeraldSendBatch *batch = g_new0 (HeraldSendBatch, 1);
  /* One thread submits and nothing runs asynchronously: the kernel need
   * not interrupt us to post completions. Older kernels refuse the flags. */
  const unsigned flag_sets[] = { IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN, 0 };
  int ret = -EINVAL;

  g_return_val_if_fail (entries > 0 && entries <= 4096, NULL);

  for (guint i = 0; i < G_N_ELEMENTS (flag_sets); i++)
    {
      ret = io_uring_queue_init (entries, &batch->ring, flag_sets[i]);
      if (ret != -EINVAL)
        break;
    }
  if (ret < 0)
    {
      g_set_error (error, HERALD_ERROR, HERALD_ERROR_FAILED, "io_uring_queue_init: %s",
                   g_strerror (-ret));
      return NULL;
    }
  /* Saves the ring's fd lookup on every submit; optional. */
  (void)io_uring_register_ring_fd (&batch->ring);
  batch->entries = entries;
  batch->slots = g_new0 (Entry, entries);
  return g_steal_pointer (&batch);
}

void
herald_send_batch_free (HeraldSendBatch *batch)
{
  if (batch == NULL)
    return;
  io_uring_queue_exit (&batch->ring);
  g_free (batch->slots);
  g_free (batch);
}

struct iovec *
herald_send_batch_next_iov (HeraldSendBatch *batch)
{
  g_return_val_if_fail (batch != NULL && batch->queued < batch->entries, NULL);
  return batch->slots[batch->queued].iov;
}

gboolean
herald_send_batch_queue (HeraldSendBatch *batch, int fd, int n_iov, gpointer tag)
{
  Entry *e;
  struct io_uring_sqe *sqe;

  g_return_val_if_fail (batch != NULL && batch->queued < batch->entries, FALSE);
  g_return_val_if_fail (n_iov > 0 && n_iov <= HERALD_SEND_BATCH_IOV, FALSE);

  e = &batch->slots[batch->queued];
  e->msg = (struct msghdr){ .msg_iov = e->iov, .msg_iovlen = (size_t)n_iov };
  e->tag = tag;
  e->requested = 0;
  for (int i = 0; i < n_iov; i++)
    e->requested += e->iov[i].iov_len;
  /* The ring has as many entries as the batch: there is always one. */
  sqe = io_uring_get_sqe (&batch->ring);
  g_assert (sqe != NULL);
  io_uring_prep_sendmsg (sqe, fd, &e->msg, MSG_NOSIGNAL | MSG_DONTWAIT);
  io_uring_sqe_set_data64 (sqe, batch->queued);
  batch->queued++;
  return batch->queued < batch->entries;
}

static void
report (HeraldSendBatch *batch, guint index, gssize result, HeraldSendBatchDone done,
        gpointer user_data)
{
  Entry *e = &batch->slots[index];

  done (e->tag, result, e->requested, user_data);
}

guint
herald_send_batch_run (HeraldSendBatch *batch, HeraldSendBatchDone done, gpointer user_data)
{
  guint reported = 0, retries = 0;

  g_return_val_if_fail (batch != NULL && done != NULL, 0);

  while (reported < batch->queued)
    {
      struct io_uring_cqe *cqe;
      unsigned head, seen = 0;
      int ret;

      ret = io_uring_submit_and_wait (&batch->ring, 1);
      batch->submits++;
      if (ret < 0)
        {
          /* Short of resources for a moment, or a signal: try again. Any
           * other refusal is a bug of ours or the kernel's, and writing
           * the rest some other way could send bytes twice. */
          if ((ret == -EINTR || ret == -EAGAIN || ret == -EBUSY || ret == -ENOMEM)
              && ++retries < 1000)
            continue;
          g_error ("io_uring_enter: %s (set [server] io-uring=false to write with sendmsg)",
                   g_strerror (-ret));
        }
      io_uring_for_each_cqe (&batch->ring, head, cqe)
      {
        report (batch, (guint)cqe->user_data, cqe->res, done, user_data);
        seen++;
      }
      io_uring_cq_advance (&batch->ring, seen);
      reported += seen;
    }
  batch->writes += batch->queued;
  batch->queued = 0;
  return reported;
}

void
herald_send_batch_get_counts (HeraldSendBatch *batch, guint64 *submits, guint64 *writes)
{
  g_return_if_fail (batch != NULL);
  if (submits)
    *submits = batch->submits;
  if (writes)
    *writes = batch->writes;
}

#else /* !HAVE_LIBURING */

gboolean
herald_send_batch_supported (void)
{
  return FALSE;
}

HeraldSendBatch *
herald_send_batch_new (guint entries, GError **error)
{
  g_set_error_literal (error, HERALD_ERROR, HERALD_ERROR_FAILED,
                       "built without io_uring (liburing)");
  return NULL;
}

void
herald_send_batch_free (HeraldSendBatch *batch)
{
}

struct iovec *
herald_send_batch_next_iov (HeraldSendBatch *batch)
{
  g_return_val_if_reached (NULL);
}

gboolean
herald_send_batch_queue (HeraldSendBatch *batch, int fd, int n_iov, gpointer tag)
{
  g_return_val_if_reached (FALSE);
}

guint
herald_send_batch_run (HeraldSendBatch *batch, HeraldSendBatchDone done, gpointer user_data)
{
  g_return_val_if_reached (0);
}

void
herald_send_batch_get_counts (HeraldSendBatch *batch, guint64 *submits, guint64 *writes)
{
  g_return_if_reached ();
}

#endif
