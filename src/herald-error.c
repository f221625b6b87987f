/* herald-error.c: the error domain shared by all layers.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "herald-error.h"

/* The quark's name as written: clang-format would space out its dashes. */
/* clang-format off */
G_DEFINE_QUARK (herald-error-quark, herald_error)
/* clang-format on */
