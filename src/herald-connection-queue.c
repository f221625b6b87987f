/* herald-connection-queue.c: a connection's output queue (see the header).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>

#include "herald-connection-queue.h"

#define AT(r, i) (((r)->head + (i)) % (r)->cap)

static void
grow (HeraldConnectionQueue *q)
{
  HeraldConnectionRing *old = q->r;
  guint cap = old ? old->cap * 2 : 8;
  HeraldConnectionRing *r = g_malloc (sizeof *r + cap * sizeof (GBytes *));

  r->cap = cap;
  r->head = 0;
  r->len = 0;
  r->head_offset = 0;
  r->bytes = 0;
  r->tags = NULL;
  r->keep_first = FALSE;
  if (old)
    {
      r->len = old->len;
      r->keep_first = old->keep_first;
      r->head_offset = old->head_offset;
      r->bytes = old->bytes;
      if (old->tags)
        r->tags = g_new0 (HeraldMessage *, cap);
      for (guint i = 0; i < old->len; i++)
        {
          r->ring[i] = old->ring[AT (old, i)];
          if (r->tags)
            r->tags[i] = old->tags[AT (old, i)];
        }
      g_free (old->tags);
      g_free (old);
    }
  q->r = r;
}

void
herald_connection_queue_push (HeraldConnectionQueue *q, GBytes *frame, HeraldMessage *tag)
{
  HeraldConnectionRing *r = q->r;

  if (r == NULL || r->len == r->cap)
    {
      grow (q);
      r = q->r;
    }
  if (tag && r->tags == NULL)
    r->tags = g_new0 (HeraldMessage *, r->cap);
  r->ring[AT (r, r->len)] = frame;
  if (r->tags)
    r->tags[AT (r, r->len)] = tag ? herald_message_ref (tag) : NULL;
  r->len++;
  r->bytes += g_bytes_get_size (frame);
}

void
herald_connection_queue_keep_first (HeraldConnectionQueue *q)
{
  if (q->r != NULL && q->r->len > 0)
    q->r->keep_first = TRUE;
}

static void
forget (HeraldConnectionRing *r, guint i)
{
  g_bytes_unref (r->ring[i]);
  if (r->tags)
    g_clear_pointer (&r->tags[i], herald_message_unref);
}

/* Releases slot @i (its frame and tag) of a frame not written at all. */
static void
release (HeraldConnectionRing *r, guint i)
{
  r->bytes -= g_bytes_get_size (r->ring[i]);
  forget (r, i);
}

guint
herald_connection_queue_drop_unstarted (HeraldConnectionQueue *q)
{
  HeraldConnectionRing *r = q->r;
  guint keep, dropped = 0;

  if (r == NULL)
    return 0;
  keep = r->head_offset > 0 || r->keep_first ? 1 : 0;
  while (r->len > keep)
    {
      release (r, AT (r, r->len - 1));
      r->len--;
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
  HeraldConnectionRing *r = q->r;
  guint first, out, dropped = 0;

  if (r == NULL || r->tags == NULL || herald_message_get_key (message) == NULL)
    return 0;
  first = r->head_offset > 0 ? 1 : 0; /* a frame being written stays */
  out = first;
  /* Compacts in place: the kept frames move up, in order. */
  for (guint i = first; i < r->len; i++)
    {
      guint from = AT (r, i);

      if (r->tags[from] != NULL && same_key (r->tags[from], message))
        {
          release (r, from);
          dropped++;
          continue;
        }
      if (out != i)
        {
          guint to = AT (r, out);
          r->ring[to] = r->ring[from];
          r->tags[to] = r->tags[from];
          r->tags[from] = NULL;
        }
      out++;
    }
  r->len = out;
  return dropped;
}

int
herald_connection_queue_fill (HeraldConnectionQueue *q, struct iovec *iov, int max)
{
  HeraldConnectionRing *r = q->r;
  int n;

  if (r == NULL)
    return 0;
  n = MIN ((int)r->len, max);
  for (int i = 0; i < n; i++)
    {
      gsize size;
      const guint8 *data = g_bytes_get_data (r->ring[AT (r, i)], &size);
      iov[i].iov_base = (void *)data;
      iov[i].iov_len = size;
    }
  if (n > 0)
    {
      iov[0].iov_base = (guint8 *)iov[0].iov_base + r->head_offset;
      iov[0].iov_len -= r->head_offset;
    }
  return n;
}

void
herald_connection_queue_consume (HeraldConnectionQueue *q, gsize written)
{
  HeraldConnectionRing *r = q->r;

  if (r == NULL)
    return;
  r->bytes -= written;
  if (written > 0)
    r->keep_first = FALSE; /* started: head_offset keeps it, or it is gone */
  written += r->head_offset;
  while (r->len > 0)
    {
      gsize size = g_bytes_get_size (r->ring[r->head]);

      if (written < size)
        break;
      written -= size;
      forget (r, r->head);
      r->head = (r->head + 1) % r->cap;
      r->len--;
    }
  r->head_offset = written;
}

void
herald_connection_queue_trim (HeraldConnectionQueue *q)
{
  if (q->r == NULL || q->r->len > 0)
    return;
  g_free (q->r->tags);
  g_clear_pointer (&q->r, g_free);
}

void
herald_connection_queue_clear (HeraldConnectionQueue *q)
{
  HeraldConnectionRing *r = q->r;

  if (r == NULL)
    return;
  for (guint i = 0; i < r->len; i++)
    forget (r, AT (r, i));
  r->len = 0;
  herald_connection_queue_trim (q);
}
