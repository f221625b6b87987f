/* herald-test-timeout.h: how much longer the tests' bounded waits may take
 * under a slow runner (meson test --setup=asan or valgrind set
 * HERALD_TEST_TIMEOUT_SCALE, meson.build): every deadline, socket timeout and
 * process wait of the test helpers is multiplied by it. A wait stays
 * bounded; only what "too long" means changes.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>
#include <stdlib.h>

static inline guint
herald_test_timeout_scale (void)
{
  const char *text = g_getenv ("HERALD_TEST_TIMEOUT_SCALE");
  guint64 scale = text ? g_ascii_strtoull (text, NULL, 10) : 1;

  return scale >= 1 && scale <= 20 ? (guint)scale : 1;
}
