/* herald-config-error.h: the error domain of configuration values, shared by
 * the configuration and the parsers beneath it (listen addresses).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define HERALD_CONFIG_ERROR (herald_config_error_quark ())
typedef enum
{
  HERALD_CONFIG_ERROR_INVALID, /* a bad value: message names file, group, key and reason */
  HERALD_CONFIG_ERROR_IO,      /* a file named by the config could not be read */
} HeraldConfigError;
GQuark herald_config_error_quark (void);

G_END_DECLS
