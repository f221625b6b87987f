/* herald-error.c: the error domains shared by all layers.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "herald-error.h"

/* The quarks' names as written: clang-format would space out their dashes. */
/* clang-format off */
G_DEFINE_QUARK (herald-error-quark, herald_error)
G_DEFINE_QUARK (herald-config-error-quark, herald_config_error)
/* clang-format on */
