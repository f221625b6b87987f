/* herald-test-server.h: a real Herald (daemon objects, worker threads,
 * loopback listener) inside the test process, and a small synchronous
 * WebSocket/SSE/HTTP client over raw sockets for what well-behaved client
 * libraries cannot send.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>
#include <json-glib/json-glib.h>

#include "herald-daemon.h"

G_BEGIN_DECLS

typedef struct
{
  HeraldConfig *config;
  HeraldDaemon *daemon;
  HeraldHub *hub;
  char *host;
  guint16 port;
  char *url; /* http://127.0.0.1:PORT */
} HeraldTestServer;

/* Starts Herald on 127.0.0.1:0 with @keyfile (GKeyFile text, may be NULL) and @workers. */
HeraldTestServer *herald_test_server_start (const char *keyfile, guint workers);
void herald_test_server_stop (HeraldTestServer *server);

typedef struct
{
  GSocket *socket;
  GByteArray *buffer; /* received, not yet parsed */
  guint16 close_code; /* set when a close frame was read */
  char *close_reason;
  gboolean closed;
} HeraldTestClient;

/* Plain TCP connection with a 5 s I/O timeout. */
HeraldTestClient *herald_test_client_connect (HeraldTestServer *server);
void herald_test_client_free (HeraldTestClient *client);
void herald_test_client_send_raw (HeraldTestClient *client, const void *data, gsize len);
/* Reads an HTTP response head; returns the status and the head text. */
guint herald_test_client_read_head (HeraldTestClient *client, char **head);
/* Reads one response with a Content-Length body (none: empty): returns the
 * body, the status in @status and the head in @head (may be NULL); NULL on
 * EOF or timeout before the whole response. */
char *herald_test_client_read_response (HeraldTestClient *client, guint *status, char **head);

/* WebSocket handshake on @path with extra header lines ("Name: value\r\n…", may be NULL).
 * Returns the HTTP status (101 on success); the head in @head if non-NULL. */
guint herald_test_ws_handshake (HeraldTestClient *client, const char *path,
                                const char *extra_headers, char **head);
/* Connects and upgrades; asserts 101 and reads the "connected" frame. */
HeraldTestClient *herald_test_ws_open (HeraldTestServer *server, const char *path,
                                       char **connection_id);

/* A masked client frame with @first_byte (FIN|RSV|opcode) and @payload. */
void herald_test_ws_send_frame (HeraldTestClient *client, guint8 first_byte, const void *payload,
                                gsize len);
void herald_test_ws_send_text (HeraldTestClient *client, const char *text);
/* Reads the next frame: returns its opcode (0x1 text, 0x8 close, 0x9 ping…) or -1 on EOF/timeout.
 * @payload receives a NUL-terminated copy. */
int herald_test_ws_read_frame (HeraldTestClient *client, char **payload, gsize *len);
/* Next text frame as JSON, skipping heartbeat pings; NULL on close/EOF (close code in client). */
JsonObject *herald_test_ws_read_json (HeraldTestClient *client);
/* Reads until the close frame or EOF; returns the close code (0 when none). */
guint16 herald_test_ws_wait_close (HeraldTestClient *client);

/* SSE: reads one event block (up to the blank line); NULL on EOF. */
char *herald_test_sse_read_event (HeraldTestClient *client);

/* Synchronous HTTP request on a fresh connection; returns the body. */
char *herald_test_http (HeraldTestServer *server, const char *method, const char *path,
                        const char *headers, const char *body, guint *status);

const char *herald_test_json_get_string (JsonObject *obj, const char *member);

/* Reliability helpers (tests/test-hostile.c). */

/* This process's resident set (VmRSS of /proc/self/status) in KiB. */
gsize herald_test_rss_kb (void);
/* Asserts RSS grew less than @max_growth_kb since @before_kb; skipped under
 * ASan and valgrind, whose quarantine and shadow memory make RSS meaningless. */
void herald_test_assert_rss_growth (gsize before_kb, gsize max_growth_kb);
/* Sends "ping" and expects "pong" on a fresh WebSocket: the server still serves. */
void herald_test_assert_serving (HeraldTestServer *server);

/* TLS: starts Herald on @listen_address (e.g. "https://127.0.0.1:0"; [server]
 * tls-certificate/tls-key must be in @keyfile). */
HeraldTestServer *herald_test_server_start_listen (const char *keyfile, guint workers,
                                                   const char *listen_address);
/* A TLS client connection accepting any server certificate; the handshake is
 * done when @handshake is TRUE. */
GIOStream *herald_test_tls_connect (HeraldTestServer *server, gboolean handshake);
/* A test client whose socket is relayed over TLS to @server: every
 * herald_test_* function above works on it unchanged. */
HeraldTestClient *herald_test_client_connect_tls (HeraldTestServer *server);

G_END_DECLS
