/* herald-connection-write.c: a connection's output leaving for the socket.
 *
 * Once per loop iteration the worker flushes the connections that queued
 * output. Each writes what it has in one sendmsg() — or, when the host has
 * a send batch (herald-send-batch.h), all of them are queued there and go
 * to the kernel in one io_uring_enter() per batch. Either way a write's
 * outcome is handled here alike: bytes written are consumed from the
 * queue, a full socket arms EPOLLOUT, an error ends the connection.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <errno.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "herald-connection-private.h"

#define MAX_IOV 64

static void
update_write_interest (HeraldConnection *self, gboolean want)
{
  guint32 events;

  if (self->write_armed == want || self->destroyed)
    return;
  self->write_armed = want;
  events = EPOLLIN | EPOLLRDHUP | (want ? EPOLLOUT : 0);
  herald_loop_modify (self->host->loop, self->fd, events, self);
}

static gssize
conn_writev (HeraldConnection *self, struct iovec *iov, int n, GError **error)
{
  if (herald_connection_tls (self))
    {
      GOutputStream *out = g_io_stream_get_output_stream (herald_connection_tls (self));
      GOutputVector vecs[MAX_IOV];
      gsize written = 0;
      GPollableReturn r;

      for (int i = 0; i < n; i++)
        {
          vecs[i].buffer = iov[i].iov_base;
          vecs[i].size = iov[i].iov_len;
        }
      r = g_pollable_output_stream_writev_nonblocking (G_POLLABLE_OUTPUT_STREAM (out), vecs, n,
                                                       &written, NULL, error);
      if (r == G_POLLABLE_RETURN_WOULD_BLOCK)
        {
          errno = EAGAIN;
          return -1;
        }
      if (r == G_POLLABLE_RETURN_FAILED)
        {
          errno = EPIPE;
          return -1;
        }
      return written;
    }
  else
    {
      struct msghdr msg = { .msg_iov = iov, .msg_iovlen = n };
      return sendmsg (self->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    }
}

void
herald_connection_maybe_finish_close (HeraldConnection *self)
{
  if (self->state != HERALD_CONNECTION_CLOSING || herald_connection_queue_len (&self->out) > 0)
    return;
  if (!self->wr_shutdown)
    {
      self->wr_shutdown = TRUE;
      if (!herald_connection_tls (self))
        shutdown (self->fd, SHUT_WR);
    }
  /* SSE streams have nothing more to hear; WebSockets wait for the peer's
   * close frame or EOF, so the client reads our close frame before any RST. */
  if (self->peer_closed || self->transport == HERALD_TRANSPORT_SSE)
    herald_connection_destroy_socket (self);
}

static void
write_failed (HeraldConnection *self, int err, const GError *error)
{
  g_debug ("connection %s: write failed: %s", self->id, error ? error->message : g_strerror (err));
  self->peer_closed = TRUE;
  herald_connection_destroy_socket (self);
}

/* Everything queued is written. */
static void
flushed (HeraldConnection *self)
{
  /* Idle connections keep no ring: that is most of them. */
  herald_connection_queue_trim (&self->out);
  update_write_interest (self, FALSE);
  herald_connection_maybe_finish_close (self);
}

void
herald_connection_flush (HeraldConnection *self)
{
  HeraldStats *stats;

  if (self->destroyed)
    return;
  stats = self->host->stats;
  while (herald_connection_queue_len (&self->out) > 0)
    {
      struct iovec iov[MAX_IOV];
      g_autoptr (GError) error = NULL;
      int n = herald_connection_queue_fill (&self->out, iov, MAX_IOV);
      gssize written;

      written = conn_writev (self, iov, n, &error);
      stats->writes_sendmsg++;
      if (written < 0)
        {
          if (errno == EINTR)
            continue;
          if (errno == EAGAIN || errno == EWOULDBLOCK)
            {
              update_write_interest (self, TRUE);
              return;
            }
          write_failed (self, errno, error);
          return;
        }
      stats->bytes_written += written;
      herald_connection_queue_consume (&self->out, written);
    }
  flushed (self);
}

/* A batched write's outcome. */
static void
batch_done (gpointer tag, gssize result, gsize requested, gpointer user_data)
{
  HeraldConnection *self = tag;

  self->in_batch = FALSE;
  if (self->destroyed)
    return;
  if (result < 0)
    {
      if (result == -EAGAIN || result == -EWOULDBLOCK)
        update_write_interest (self, TRUE);
      else if (result == -EINTR)
        herald_connection_flush (self);
      else
        write_failed (self, (int)-result, NULL);
      return;
    }
  self->host->stats->bytes_written += result;
  herald_connection_queue_consume (&self->out, result);
  if (herald_connection_queue_len (&self->out) == 0)
    flushed (self);
  else if ((gsize)result < requested)
    update_write_interest (self, TRUE); /* the socket's buffer is full */
  else
    herald_connection_flush (self); /* more than one write's iovecs were queued */
}

static void
run_batch (HeraldConnectionHost *host)
{
  guint64 before, after;

  herald_send_batch_get_counts (host->batch, &before, NULL);
  host->stats->writes_batched += herald_send_batch_run (host->batch, batch_done, NULL);
  herald_send_batch_get_counts (host->batch, &after, NULL);
  host->stats->batch_submits += after - before;
}

void
herald_connection_flush_many (HeraldConnectionHost *host, GPtrArray *connections)
{
  guint queued = 0;

  g_return_if_fail (host != NULL && connections != NULL);

  /* A socket or two gain nothing from a batch. */
  if (host->batch == NULL || connections->len < 2)
    {
      for (guint i = 0; i < connections->len; i++)
        herald_connection_flush (g_ptr_array_index (connections, i));
      return;
    }
  for (guint i = 0; i < connections->len; i++)
    {
      HeraldConnection *self = g_ptr_array_index (connections, i);
      struct iovec *iov;
      int n;

      /* Listed twice: the first write carries all of it. */
      if (self->destroyed || self->in_batch)
        continue;
      if (herald_connection_tls (self) || herald_connection_queue_len (&self->out) == 0)
        {
          herald_connection_flush (self);
          continue;
        }
      iov = herald_send_batch_next_iov (host->batch);
      n = herald_connection_queue_fill (&self->out, iov, HERALD_SEND_BATCH_IOV);
      /* @connections holds a reference until the batch has run. */
      self->in_batch = TRUE;
      queued++;
      if (!herald_send_batch_queue (host->batch, self->fd, n, self))
        {
          run_batch (host);
          queued = 0;
        }
    }
  if (queued > 0)
    run_batch (host);
}
