/* herald-test-utils.h: helpers shared by Herald's tests — bounded waits on
 * the main context and a loopback HTTP server and client.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <libsoup/soup.h>

G_BEGIN_DECLS

typedef struct _HeraldTestDeadline HeraldTestDeadline;

HeraldTestDeadline *herald_test_deadline_new (guint timeout_ms);
gboolean herald_test_deadline_expired (HeraldTestDeadline *deadline);
void herald_test_deadline_free (HeraldTestDeadline *deadline);

/* Iterates the thread-default main context until @cond holds; fails the test
 * when it still does not after @timeout_ms. Never sleeps. */
#define HERALD_TEST_WAIT_UNTIL(cond, timeout_ms)                                                   \
  G_STMT_START                                                                                     \
  {                                                                                                \
    HeraldTestDeadline *herald_test_deadline_ = herald_test_deadline_new (timeout_ms);             \
    GMainContext *herald_test_context_ = g_main_context_ref_thread_default ();                     \
    gboolean herald_test_ok_;                                                                      \
    while (!(herald_test_ok_ = !!(cond)) && !herald_test_deadline_expired (herald_test_deadline_)) \
      g_main_context_iteration (herald_test_context_, TRUE);                                       \
    herald_test_deadline_free (herald_test_deadline_);                                             \
    g_main_context_unref (herald_test_context_);                                                   \
    if (!herald_test_ok_)                                                                          \
      g_error ("%s:%d: timed out after %u ms waiting for %s", __FILE__, __LINE__,                  \
               (guint)(timeout_ms), #cond);                                                        \
  }                                                                                                \
  G_STMT_END

/* A SoupServer listening on 127.0.0.1, port picked by the kernel, in the
 * thread-default main context. @base_uri receives "http://127.0.0.1:PORT/". */
SoupServer *herald_test_server_new (GUri **base_uri);

/* "http://127.0.0.1:PORT" + @path, with @path percent-encoded as given. */
char *herald_test_url (GUri *base_uri, const char *path);

/* Sends @msg with @session and waits (bounded) for the whole response.
 * Returns: (transfer full): the response body, NUL-terminated */
char *herald_test_http_send (SoupSession *session, SoupMessage *msg, guint *status);

/* One request: @headers is a NULL-terminated list of name, value, name,
 * value…; @body (may be NULL) is sent as application/json. Optionally
 * returns the response headers.
 * Returns: (transfer full): the response body, NUL-terminated */
char *herald_test_http_request (SoupSession *session, const char *method, const char *url,
                                const char *const *headers, const char *body, guint *status,
                                SoupMessageHeaders **response_headers);

G_END_DECLS
