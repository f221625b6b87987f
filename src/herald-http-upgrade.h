/* herald-http-upgrade.h: WebSocket and SSE handshakes without libsoup.
 *
 * The keep-alive fast path (herald-http-fast.c) peeks at the first request
 * head of every plain-TCP connection. The plain handshake — "GET /ws",
 * "GET /ws/<id>" or "GET /events?…" over HTTP/1.1 with CRLF lines, plain
 * "Name: value" headers, no body and each header that matters present once
 * — is read here in one pass and decided by herald-http-handshake.c, the
 * decisions libsoup's handlers (herald-http.c) also call. The 101, the SSE
 * head or the refusal is written directly and the socket goes to
 * herald_hub_adopt(): no SoupServerMessage, no GIOStream, no signal.
 * Anything unusual — another method or path, HTTP/1.0, a body, a repeated
 * header, percent-encoding or dot segments in the path, a handshake the
 * backend must be asked about ([proxy] connect hook without a token, SSE
 * channels of a subscribe=proxy namespace) — is left to libsoup, untouched.
 *
 * Everything here runs in the worker's thread.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

#include "herald-http-handshake.h"
#include "herald-hub.h"
#include "herald-worker.h"

G_BEGIN_DECLS

typedef struct _HeraldHttpUpgrade HeraldHttpUpgrade;

HeraldHttpUpgrade *herald_http_upgrade_new (HeraldHub *hub, HeraldWorker *worker);
void herald_http_upgrade_free (HeraldHttpUpgrade *self);

typedef enum
{
  HERALD_HTTP_UPGRADE_NO,       /* not the plain case: libsoup answers it */
  HERALD_HTTP_UPGRADE_REFUSED,  /* answer call->response, then close */
  HERALD_HTTP_UPGRADE_ACCEPTED, /* give the fd to herald_http_upgrade_adopt() */
} HeraldHttpUpgradeResult;

/* One handshake between the decision and the adoption. */
typedef struct
{
  HeraldHub *hub;
  HeraldTransport transport;
  char *remote;
  HeraldJwtClaims *claims; /* NULL: anonymous */
  char *id;
  gboolean reserved; /* released by clear() unless the connection took it */
  gboolean deflate;
  char **channels; /* SSE */
  char *last_event_id;
  GString *response; /* the whole refusal, or the 101 / SSE head */
  GBytes *leftover;  /* bytes the client sent behind its head */
} HeraldHttpUpgradeCall;

void herald_http_upgrade_call_clear (HeraldHttpUpgradeCall *call);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (HeraldHttpUpgradeCall, herald_http_upgrade_call_clear)

/* Whether @head may be a handshake read here (a cheap look at its start). */
gboolean herald_http_upgrade_wants (const char *head, gsize head_len);

/* Decides the complete head @buf[0..head_len) (followed by @n - head_len
 * more bytes already received) of the connection @fd, nothing consumed. */
HeraldHttpUpgradeResult herald_http_upgrade_decide (HeraldHttpUpgrade *self, int fd,
                                                    const char *buf, gsize head_len, gsize n,
                                                    HeraldHttpUpgradeCall *call);

/* After ACCEPTED, once the caller consumed the @n bytes and gave up @fd
 * (still in the worker's epoll set: the connection takes the entry over):
 * hands the connection to the hub, which writes the head with its first
 * frames. Takes @fd. */
void herald_http_upgrade_adopt (HeraldHttpUpgrade *self, HeraldHttpUpgradeCall *call, int fd);

/* For tests: handshakes decided here (accepted or refused) in this process;
 * and turning this reader off (every handshake then goes to libsoup). */
guint herald_http_upgrade_get_n_decided_for_test (void);
void herald_http_upgrade_set_enabled_for_test (gboolean enabled);

G_END_DECLS
