/* test-send-batch.c: herald-send-batch.h on socket pairs — many writes per
 * run and more writes than the batch holds, a full socket answering
 * -EAGAIN instead of waiting, a partial write, a closed peer. Skipped
 * where io_uring is not built in or the kernel refuses it (the sendmsg
 * path is then the only one, tested by every other test).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "herald-send-batch.h"

typedef struct
{
  int index;
  gssize result;
  gsize requested;
  int reports;
} Outcome;

static void
on_done (gpointer tag, gssize result, gsize requested, gpointer user_data)
{
  Outcome *o = tag;
  int *calls = user_data;

  o->result = result;
  o->requested = requested;
  o->reports++;
  (*calls)++;
}

static HeraldSendBatch *
batch_or_skip (guint entries)
{
  g_autoptr (GError) error = NULL;
  HeraldSendBatch *batch = herald_send_batch_new (entries, &error);

  if (batch == NULL)
    {
      g_autofree char *why = g_strdup_printf ("no io_uring: %s", error->message);
      g_test_skip (why);
    }
  return batch;
}

static void
pair (int fds[2])
{
  g_assert_cmpint (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), ==, 0);
  g_assert_cmpint (fcntl (fds[0], F_SETFL, O_NONBLOCK), ==, 0);
}

static gsize
read_all (int fd, char *buf, gsize size)
{
  gsize got = 0;

  g_assert_cmpint (fcntl (fd, F_SETFL, O_NONBLOCK), ==, 0);
  while (got < size)
    {
      gssize n = read (fd, buf + got, size - got);
      if (n <= 0)
        break;
      got += (gsize)n;
    }
  return got;
}

/* 20 sockets through a batch of 8: three system calls' worth, each write
 * of two iovecs arriving whole on its own socket. */
static void
test_many_writes (void)
{
  HeraldSendBatch *batch = batch_or_skip (8);
  int fds[20][2];
  Outcome out[20] = { 0 };
  char *heads[20];
  int calls = 0;
  guint64 submits = 0, writes = 0;

  if (batch == NULL)
    return;
  for (int i = 0; i < 20; i++)
    pair (fds[i]);
  for (int i = 0; i < 20; i++)
    {
      struct iovec *iov = herald_send_batch_next_iov (batch);
      g_autofree char *a = g_strdup_printf ("head-%02d|", i);
      static const char tail[] = "tail";
      gboolean room;

      heads[i] = g_strdup (a);
      iov[0] = (struct iovec){ heads[i], strlen (a) };
      iov[1] = (struct iovec){ (void *)tail, 4 };
      out[i].index = i;
      room = herald_send_batch_queue (batch, fds[i][0], 2, &out[i]);
      if (!room)
        {
          g_assert_cmpuint (herald_send_batch_run (batch, on_done, &calls), ==, 8);
          g_assert_cmpint (calls % 8, ==, 0);
        }
    }
  herald_send_batch_run (batch, on_done, &calls);
  g_assert_cmpint (calls, ==, 20);
  for (int i = 0; i < 20; i++)
    {
      char buf[64] = { 0 };
      g_autofree char *want = g_strdup_printf ("head-%02d|tail", i);

      g_assert_cmpint (out[i].reports, ==, 1);
      g_assert_cmpint (out[i].result, ==, (gssize)strlen (want));
      g_assert_cmpuint (out[i].requested, ==, strlen (want));
      g_assert_cmpuint (read_all (fds[i][1], buf, sizeof buf - 1), ==, strlen (want));
      g_assert_cmpstr (buf, ==, want);
      close (fds[i][0]);
      close (fds[i][1]);
      g_free (heads[i]);
    }
  herald_send_batch_get_counts (batch, &submits, &writes);
  g_assert_cmpuint (writes, ==, 20);
  g_assert_cmpuint (submits, >=, 3);
  g_assert_cmpuint (submits, <=, 6);
  herald_send_batch_free (batch);
}

/* A socket whose buffer is full answers -EAGAIN at once (MSG_DONTWAIT: the
 * write is not parked in the kernel), a write larger than the room left is
 * partial, and a closed peer is -EPIPE; the others in the batch go out. */
static void
test_full_partial_closed (void)
{
  HeraldSendBatch *batch = batch_or_skip (8);
  int full[2], part[2], gone[2], ok[2];
  Outcome o_full = { 0 }, o_part = { 0 }, o_gone = { 0 }, o_ok = { 0 };
  static char big[1 << 20];
  int calls = 0, size = 16384;
  struct iovec *iov;

  if (batch == NULL)
    return;
  pair (full);
  pair (part);
  pair (gone);
  pair (ok);
  setsockopt (full[0], SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
  setsockopt (part[0], SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
  /* Fill @full to the brim. */
  while (send (full[0], big, sizeof big, MSG_DONTWAIT) > 0)
    ;
  close (gone[1]);

  iov = herald_send_batch_next_iov (batch);
  iov[0] = (struct iovec){ big, 100 };
  herald_send_batch_queue (batch, full[0], 1, &o_full);
  iov = herald_send_batch_next_iov (batch);
  iov[0] = (struct iovec){ big, sizeof big };
  herald_send_batch_queue (batch, part[0], 1, &o_part);
  iov = herald_send_batch_next_iov (batch);
  iov[0] = (struct iovec){ big, 10 };
  herald_send_batch_queue (batch, gone[0], 1, &o_gone);
  iov = herald_send_batch_next_iov (batch);
  iov[0] = (struct iovec){ (void *)"fine", 4 };
  herald_send_batch_queue (batch, ok[0], 1, &o_ok);
  g_assert_cmpuint (herald_send_batch_run (batch, on_done, &calls), ==, 4);

  g_assert_cmpint (o_full.result, ==, -EAGAIN);
  g_assert_cmpint (o_part.result, >, 0);
  g_assert_cmpint (o_part.result, <, (gssize)sizeof big);
  g_assert_cmpuint (o_part.requested, ==, sizeof big);
  g_assert_cmpint (o_gone.result, ==, -EPIPE);
  g_assert_cmpint (o_ok.result, ==, 4);
  g_assert_cmpint (calls, ==, 4);

  /* Nothing of the -EAGAIN write reaches the socket later. */
  {
    char buf[4096];
    gsize drained = 0;
    gssize n;

    g_assert_cmpint (fcntl (full[1], F_SETFL, O_NONBLOCK), ==, 0);
    while ((n = read (full[1], buf, sizeof buf)) > 0)
      drained += (gsize)n;
    g_usleep (50000);
    g_assert_cmpint (read (full[1], buf, sizeof buf), <, 0);
    g_assert_cmpuint (drained, >, 0);
  }
  close (full[0]);
  close (full[1]);
  close (part[0]);
  close (part[1]);
  close (gone[0]);
  close (ok[0]);
  close (ok[1]);
  herald_send_batch_free (batch);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/send-batch/many-writes", test_many_writes);
  g_test_add_func ("/send-batch/full-partial-closed", test_full_partial_closed);
  return g_test_run ();
}
