/* herald-json.h: a fast reading of the common HTTP publish body.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

void herald_json_append_uint (GString *out, guint64 value);
gboolean herald_json_scan_publish (const char *body, gsize length, char **channel, char **data);

G_END_DECLS
