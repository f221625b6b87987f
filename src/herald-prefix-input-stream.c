/* herald-prefix-input-stream.c: bytes already read, then the rest of a stream.
 *
 * The HTTP fast path reads a kept-alive connection's requests itself. When a
 * later request on it is one libsoup must answer, the bytes Herald already
 * took off the socket go to libsoup first, through this stream: it yields
 * @prefix, then reads @base. It is pollable when @base is (libsoup needs
 * that), and closing it closes @owner, the socket's connection.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>

#include "herald-prefix-input-stream.h"

struct _HeraldPrefixInputStream
{
  GInputStream parent_instance;

  GInputStream *base;
  GBytes *prefix; /* NULL once consumed */
  gsize pos;
  GIOStream *owner; /* closed with this stream; may be NULL */
};

static void herald_prefix_input_stream_pollable_iface_init (GPollableInputStreamInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (
    HeraldPrefixInputStream, herald_prefix_input_stream, G_TYPE_INPUT_STREAM,
    G_IMPLEMENT_INTERFACE (G_TYPE_POLLABLE_INPUT_STREAM,
                           herald_prefix_input_stream_pollable_iface_init))

enum
{
  PROP_0,
  PROP_BASE,
  PROP_PREFIX,
  PROP_OWNER,
  N_PROPS
};
static GParamSpec *props[N_PROPS];

static gboolean
has_prefix (HeraldPrefixInputStream *self)
{
  return self->prefix != NULL;
}

static gssize
take_prefix (HeraldPrefixInputStream *self, void *buffer, gsize count)
{
  gsize size = 0;
  const guint8 *data = g_bytes_get_data (self->prefix, &size);
  gsize n = MIN (count, size - self->pos);

  memcpy (buffer, data + self->pos, n);
  self->pos += n;
  if (self->pos == size)
    g_clear_pointer (&self->prefix, g_bytes_unref);
  return n;
}

static gssize
prefix_read (GInputStream *stream, void *buffer, gsize count, GCancellable *cancellable,
             GError **error)
{
  HeraldPrefixInputStream *self = HERALD_PREFIX_INPUT_STREAM (stream);

  if (has_prefix (self) && count > 0)
    return take_prefix (self, buffer, count);
  return g_input_stream_read (self->base, buffer, count, cancellable, error);
}

static gboolean
prefix_close (GInputStream *stream, GCancellable *cancellable, GError **error)
{
  HeraldPrefixInputStream *self = HERALD_PREFIX_INPUT_STREAM (stream);

  g_clear_pointer (&self->prefix, g_bytes_unref);
  if (self->owner)
    return g_io_stream_close (self->owner, cancellable, error);
  return g_input_stream_close (self->base, cancellable, error);
}

static gboolean
prefix_can_poll (GPollableInputStream *stream)
{
  HeraldPrefixInputStream *self = HERALD_PREFIX_INPUT_STREAM (stream);

  return G_IS_POLLABLE_INPUT_STREAM (self->base)
         && g_pollable_input_stream_can_poll (G_POLLABLE_INPUT_STREAM (self->base));
}

static gboolean
prefix_is_readable (GPollableInputStream *stream)
{
  HeraldPrefixInputStream *self = HERALD_PREFIX_INPUT_STREAM (stream);

  return has_prefix (self)
         || g_pollable_input_stream_is_readable (G_POLLABLE_INPUT_STREAM (self->base));
}

static GSource *
prefix_create_source (GPollableInputStream *stream, GCancellable *cancellable)
{
  HeraldPrefixInputStream *self = HERALD_PREFIX_INPUT_STREAM (stream);
  g_autoptr (GSource) child = NULL;

  /* Readable at once while the prefix lasts. */
  if (has_prefix (self))
    child = g_timeout_source_new (0);
  else
    child
        = g_pollable_input_stream_create_source (G_POLLABLE_INPUT_STREAM (self->base), cancellable);
  return g_pollable_source_new_full (stream, child, cancellable);
}

static gssize
prefix_read_nonblocking (GPollableInputStream *stream, void *buffer, gsize count, GError **error)
{
  HeraldPrefixInputStream *self = HERALD_PREFIX_INPUT_STREAM (stream);

  if (has_prefix (self) && count > 0)
    return take_prefix (self, buffer, count);
  return g_pollable_input_stream_read_nonblocking (G_POLLABLE_INPUT_STREAM (self->base), buffer,
                                                   count, NULL, error);
}

static void
herald_prefix_input_stream_pollable_iface_init (GPollableInputStreamInterface *iface)
{
  iface->can_poll = prefix_can_poll;
  iface->is_readable = prefix_is_readable;
  iface->create_source = prefix_create_source;
  iface->read_nonblocking = prefix_read_nonblocking;
}

static void
herald_prefix_input_stream_finalize (GObject *object)
{
  HeraldPrefixInputStream *self = HERALD_PREFIX_INPUT_STREAM (object);

  g_clear_object (&self->base);
  g_clear_pointer (&self->prefix, g_bytes_unref);
  g_clear_object (&self->owner);
  G_OBJECT_CLASS (herald_prefix_input_stream_parent_class)->finalize (object);
}

static void
herald_prefix_input_stream_set_property (GObject *object, guint prop_id, const GValue *value,
                                         GParamSpec *pspec)
{
  HeraldPrefixInputStream *self = HERALD_PREFIX_INPUT_STREAM (object);

  switch (prop_id)
    {
    case PROP_BASE:
      self->base = g_value_dup_object (value);
      break;
    case PROP_PREFIX:
      self->prefix = g_value_dup_boxed (value);
      if (self->prefix && g_bytes_get_size (self->prefix) == 0)
        g_clear_pointer (&self->prefix, g_bytes_unref);
      break;
    case PROP_OWNER:
      self->owner = g_value_dup_object (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
herald_prefix_input_stream_get_property (GObject *object, guint prop_id, GValue *value,
                                         GParamSpec *pspec)
{
  HeraldPrefixInputStream *self = HERALD_PREFIX_INPUT_STREAM (object);

  switch (prop_id)
    {
    case PROP_BASE:
      g_value_set_object (value, self->base);
      break;
    case PROP_PREFIX:
      g_value_set_boxed (value, self->prefix);
      break;
    case PROP_OWNER:
      g_value_set_object (value, self->owner);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
herald_prefix_input_stream_class_init (HeraldPrefixInputStreamClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GInputStreamClass *stream_class = G_INPUT_STREAM_CLASS (klass);

  object_class->finalize = herald_prefix_input_stream_finalize;
  object_class->set_property = herald_prefix_input_stream_set_property;
  object_class->get_property = herald_prefix_input_stream_get_property;
  stream_class->read_fn = prefix_read;
  stream_class->close_fn = prefix_close;

  props[PROP_BASE]
      = g_param_spec_object ("base", NULL, NULL, G_TYPE_INPUT_STREAM,
                             G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);
  props[PROP_PREFIX]
      = g_param_spec_boxed ("prefix", NULL, NULL, G_TYPE_BYTES,
                            G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);
  props[PROP_OWNER]
      = g_param_spec_object ("owner", NULL, NULL, G_TYPE_IO_STREAM,
                             G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties (object_class, N_PROPS, props);
}

static void
herald_prefix_input_stream_init (HeraldPrefixInputStream *self)
{
}

/**
 * herald_prefix_input_stream_new:
 * @base: the stream to read once @prefix is consumed
 * @prefix: (nullable): bytes to yield first
 * @owner: (nullable): closed when this stream is closed (else @base is)
 *
 * Returns: (transfer full): the stream.
 */
GInputStream *
herald_prefix_input_stream_new (GInputStream *base, GBytes *prefix, GIOStream *owner)
{
  g_return_val_if_fail (G_IS_INPUT_STREAM (base), NULL);
  return g_object_new (HERALD_TYPE_PREFIX_INPUT_STREAM, "base", base, "prefix", prefix, "owner",
                       owner, NULL);
}
