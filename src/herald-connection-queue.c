/* herald-connection-queue.c: a connection's output queue (see the header).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>

#include "herald-connection-queue.h"

#define AT(q, i) (((q)->head + (i)) % (q)->cap)

static void
grow (HeraldConnectionQueue *q)
{
  guint cap = q->cap ? q->cap * 2 : 8;
  GBytes **ring = g_new (GBytes *, cap);
  HeraldMessage **tags = q->tags ? g_new0 (HeraldMessage *, cap) : NULL;

  for (guint i = 0; i < q->len; i++)
    {
      ring[i] = q->ring[AT (q, i)];
      if (tags)
        tags[i] = q->tags[AT (q, i)];
    }
  g_free (q->ring);
  g_free (q->tags);
  q->ring = ring;
  q->tags = tags;
  q->cap = cap;
  q->head = 0;
}

void
herald_connection_queue_push (HeraldConnectionQueue *q, GBytes *frame, HeraldMessage *tag)
{
  if (q->len == q->cap)
    grow (q);
  if (tag && q->tags == NULL)
    q->tags = g_new0 (HeraldMessage *, q->cap);
  q->ring[AT (q, q->len)] = frame;
  if (q->tags)
    q->tags[AT (q, q->len)] = tag ? herald_message_ref (tag) : NULL;
  q->len++;
  q->bytes += g_bytes_get_size (frame);
}

static void
forget (HeraldConnectionQueue *q, guint i)
{
  g_bytes_unref (q->ring[i]);
  if (q->tags)
    g_clear_pointer (&q->tags[i], herald_message_unref);
}

/* Releases slot @i (its frame and tag) of a frame not written at all. */
static void
release (HeraldConnectionQueue *q, guint i)
{
  q->bytes -= g_bytes_get_size (q->ring[i]);
  forget (q, i);
}

guint
herald_connection_queue_drop_unstarted (HeraldConnectionQueue *q)
{
  guint keep = q->head_offset > 0 || q->keep_first ? 1 : 0;
  guint dropped = 0;

  while (q->len > keep)
    {
      release (q, AT (q, q->len - 1));
      q->len--;
      dropped++;
    }
  return dropped;
}

static gboolean
same_key (HeraldMessage *a, HeraldMessage *b)
{
  const char *ka = herald_message_get_key (a);

  return a != NULL && ka != NULL && g_strcmp0 (ka, herald_message_get_key (b)) == 0
         && g_strcmp0 (herald_message_get_channel (a), herald_message_get_channel (b)) == 0;
}

guint
herald_connection_queue_conflate (HeraldConnectionQueue *q, HeraldMessage *message)
{
  guint first = q->head_offset > 0 ? 1 : 0; /* a frame being written stays */
  guint out = first, dropped = 0;

  if (q->tags == NULL || herald_message_get_key (message) == NULL)
    return 0;
  /* Compacts in place: the kept frames move up, in order. */
  for (guint i = first; i < q->len; i++)
    {
      guint from = AT (q, i);

      if (q->tags[from] != NULL && same_key (q->tags[from], message))
        {
          release (q, from);
          dropped++;
          continue;
        }
      if (out != i)
        {
          guint to = AT (q, out);
          q->ring[to] = q->ring[from];
          q->tags[to] = q->tags[from];
          q->tags[from] = NULL;
        }
      out++;
    }
  q->len = out;
  return dropped;
}

int
herald_connection_queue_fill (HeraldConnectionQueue *q, struct iovec *iov, int max)
{
  int n = MIN ((int)q->len, max);

  for (int i = 0; i < n; i++)
    {
      gsize size;
      const guint8 *data = g_bytes_get_data (q->ring[AT (q, i)], &size);
      iov[i].iov_base = (void *)data;
      iov[i].iov_len = size;
    }
  if (n > 0)
    {
      iov[0].iov_base = (guint8 *)iov[0].iov_base + q->head_offset;
      iov[0].iov_len -= q->head_offset;
    }
  return n;
}

void
herald_connection_queue_consume (HeraldConnectionQueue *q, gsize written)
{
  q->bytes -= written;
  if (written > 0)
    q->keep_first = FALSE; /* started: head_offset keeps it, or it is gone */
  written += q->head_offset;
  while (q->len > 0)
    {
      gsize size = g_bytes_get_size (q->ring[q->head]);

      if (written < size)
        break;
      written -= size;
      forget (q, q->head);
      q->head = (q->head + 1) % q->cap;
      q->len--;
    }
  q->head_offset = written;
}

void
herald_connection_queue_trim (HeraldConnectionQueue *q)
{
  if (q->len > 0)
    return;
  g_clear_pointer (&q->ring, g_free);
  g_clear_pointer (&q->tags, g_free);
  q->cap = q->head = 0;
  q->head_offset = 0;
}

void
herald_connection_queue_clear (HeraldConnectionQueue *q)
{
  for (guint i = 0; i < q->len; i++)
    forget (q, AT (q, i));
  q->len = 0;
  herald_connection_queue_trim (q);
  q->bytes = 0;
}
