/* herald-config-error.c
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "herald-config-error.h"

/* clang-format off */
G_DEFINE_QUARK (herald-config-error-quark, herald_config_error)
/* clang-format on */
