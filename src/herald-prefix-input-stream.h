/* herald-prefix-input-stream.h: bytes already read, then the rest of a stream.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

#define HERALD_TYPE_PREFIX_INPUT_STREAM (herald_prefix_input_stream_get_type ())
G_DECLARE_FINAL_TYPE (HeraldPrefixInputStream, herald_prefix_input_stream, HERALD,
                      PREFIX_INPUT_STREAM, GInputStream)

GInputStream *herald_prefix_input_stream_new (GInputStream *base, GBytes *prefix, GIOStream *owner);

G_END_DECLS
