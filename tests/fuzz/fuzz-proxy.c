/* fuzz-proxy.c: the backend proxy's answer reader (herald_proxy_parse_answer)
 * for every hook, and the claims a connect result grants.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdint.h>
#include <string.h>

#include "herald-proxy.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  for (guint hook = 0; hook < HERALD_N_HOOKS; hook++)
    {
      HeraldProxyResult result = HERALD_PROXY_N_RESULTS;
      g_autoptr (HeraldBackendReply) reply
          = herald_proxy_parse_answer (hook, (const char *)data, size, &result);

      g_assert_cmpint (result, <, HERALD_PROXY_N_RESULTS);
      if (reply == NULL)
        {
          g_assert_cmpint (result, ==, HERALD_PROXY_RESULT_INVALID);
          continue;
        }
      if (reply->answer != HERALD_BACKEND_RESULT)
        g_assert_nonnull (reply->message);
      if (reply->answer == HERALD_BACKEND_DISCONNECT)
        g_assert_true (reply->code >= 4000 && reply->code <= 4999);
      if (reply->answer == HERALD_BACKEND_RESULT)
        {
          g_assert_nonnull (reply->result);
          if (hook == HERALD_HOOK_CONNECT)
            {
              g_autoptr (HeraldJwtClaims) claims = herald_proxy_claims_from_result (reply->result);

              g_assert_nonnull (claims->channels);
              g_assert_nonnull (claims->publish);
              g_assert_true (claims->exp >= 0);
            }
          if (hook == HERALD_HOOK_REFRESH)
            g_assert_true (json_object_get_int_member (reply->result, "expire_at") >= 0);
        }
    }
  return 0;
}
