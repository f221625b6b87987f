/* herald-error.h: Herald's error domain, shared by the hub and its adapters
 * (the D-Bus adapter maps each code to io.github.herald.Herald1.Error.*,
 * the HTTP API to a status code).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define HERALD_ERROR (herald_error_quark ())
typedef enum
{
  HERALD_ERROR_FAILED,
  HERALD_ERROR_INVALID_ARGUMENT, /* bad JSON, bad channel name, out-of-range value */
  HERALD_ERROR_NOT_FOUND,        /* unknown connection, channel, … */
  HERALD_ERROR_LIMIT_EXCEEDED,   /* message too large, too many connections */
  HERALD_ERROR_FORBIDDEN,
  HERALD_ERROR_UNAVAILABLE, /* engine not reachable */
  HERALD_ERROR_IN_USE,      /* connection id already taken */
} HeraldError;
GQuark herald_error_quark (void);

G_END_DECLS
