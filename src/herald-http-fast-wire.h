/* herald-http-fast-wire.h: the fast path's HTTP/1.1 on the wire.
 *
 * Decides from a complete head whether the request is one the fast path
 * answers (herald-http-fast.h), with the API's route table
 * (herald-http-route.h): a one-pass reader for the common heads, libsoup's
 * parser for anything unusual, so both agree on what a head means; and
 * writes its responses.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <libsoup/soup.h>

#include "herald-config.h"
#include "herald-http-route.h"

G_BEGIN_DECLS

/* What the head said, kept while the body arrives. */
typedef struct
{
  HeraldApiRoute route; /* publish, broadcast, user or connection send; NONE */
  char *arg;            /* {user_id} or {id}, decoded */
  gsize length;         /* Content-Length */
  guint early;          /* 404 (API disabled) or 401, answered once the body is read */
  gboolean close;       /* close after the response */
  gboolean http10;      /* HTTP/1.0 kept alive: say so */
} HeraldHttpFastRequest;

void herald_http_fast_request_clear (HeraldHttpFastRequest *req);

typedef enum
{
  HERALD_HTTP_FAST_SIMPLE_NO,     /* not for the fast path: libsoup answers it */
  HERALD_HTTP_FAST_SIMPLE_YES,    /* answered here; @req is filled */
  HERALD_HTTP_FAST_SIMPLE_UNSURE, /* unusual: let libsoup's parser decide */
} HeraldHttpFastSimple;

/* The one-pass reader alone (tests compare it with libsoup's). */
HeraldHttpFastSimple herald_http_fast_request_decide_simple (HeraldConfig *config, const char *head,
                                                             gsize head_len,
                                                             HeraldHttpFastRequest *req);
/* libsoup's parser alone, into @headers (reused: cleared first). */
gboolean herald_http_fast_request_decide_soup (HeraldConfig *config, SoupMessageHeaders *headers,
                                               const char *head, gsize head_len,
                                               HeraldHttpFastRequest *req);
/* Whether @head[0..head_len) is answered by the fast path; fills @req. */
gboolean herald_http_fast_request_decide (HeraldConfig *config, SoupMessageHeaders *headers,
                                          const char *head, gsize head_len,
                                          HeraldHttpFastRequest *req);

/* Finds the end of a head in @buf: TRUE with @head_len, or FALSE. *bare is
 * set when the head uses bare LFs (left to libsoup). */
gboolean herald_http_fast_find_head_end (const char *buf, gsize n, gsize *head_len, gboolean *bare);
/* For tests: see herald_http_fast_read_head_for_test(). */
typedef struct
{
  int route; /* 1 publish, 2 broadcast, 3 user send, 4 connection send */
  char *arg;
  gsize length;
  guint early; /* 0, 401 or 404 */
  gboolean close;
  gboolean http10;
} HeraldHttpFastHead;
int herald_http_fast_wire_read_head_for_test (HeraldConfig *config, SoupMessageHeaders *headers,
                                              const char *head, gsize head_len, gboolean simple,
                                              HeraldHttpFastHead *out);

/* Appends a complete JSON response (no printf: once per API call). */
void herald_http_fast_append_response (GString *out, guint status, const char *body, gsize len,
                                       gboolean close, gboolean http10, gboolean www_authenticate);
/* {"name":value}. @name NULL: a publish's answer, {"offset":value}, with
 * null for offset 0 (not stored: Redis unreachable; never an invented one). */
GString *herald_http_fast_uint_body (const char *name, guint64 value);

G_END_DECLS
