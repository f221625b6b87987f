/* herald-config-print.h: heraldd --print-config.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "herald-config.h"

G_BEGIN_DECLS

/* The effective configuration (file, environment, command line and
 * defaults) as a key file that --config accepts: every known key with a
 * one-line comment. Secrets from the environment are not printed (a comment
 * says where they come from); see docs/configuration.md. */
char *herald_config_print (HeraldConfig *self);

G_END_DECLS
