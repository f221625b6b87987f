/* test-jwks.c: [auth] jwks-url against a real heraldd, with a SoupServer in
 * the test process serving the JWK Set: RSA, EC P-256 and OKP Ed25519 keys
 * (the EdDSA tokens signed by openssl), key rotation, the endpoint failing
 * at start and later (the last good set is kept, logged and counted), alg in
 * the key against the token's, and the rate limit of fetches on an unknown
 * kid — over WebSocket and SSE.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>

#include <glib/gstdio.h>

#include "herald-jwt.h"
#include "herald-test-node.h"
#include "herald-test-tokens.h"
#include "herald-test-utils.h"

#define API_KEY "jwks-test-api-key"

typedef enum
{
  SERVE_SET,    /* 200 with body */
  SERVE_STATUS, /* an error status */
  SERVE_HUGE,   /* 200, chunked, over 1 MiB */
} Serve;

/* The JWKS endpoint (main context of the test) */
typedef struct
{
  SoupServer *server;
  GUri *base;
  char *url;
  Serve serve;
  char *body;
  guint status;
  guint requests;
  gint64 request_times[16]; /* monotonic µs of the first requests */
} Endpoint;

static char *tmpdir;

static void
on_jwks (SoupServer *server, SoupServerMessage *msg, const char *path, GHashTable *query,
         gpointer data)
{
  Endpoint *e = data;

  if (e->requests < G_N_ELEMENTS (e->request_times))
    e->request_times[e->requests] = g_get_monotonic_time ();
  e->requests++;
  switch (e->serve)
    {
    case SERVE_SET:
      soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
      soup_server_message_set_response (msg, "application/json", SOUP_MEMORY_COPY, e->body,
                                        strlen (e->body));
      break;
    case SERVE_STATUS:
      soup_server_message_set_status (msg, e->status, NULL);
      soup_server_message_set_response (msg, "text/plain", SOUP_MEMORY_STATIC, "oops", 4);
      break;
    case SERVE_HUGE:
      {
        SoupMessageBody *body = soup_server_message_get_response_body (msg);
        g_autofree char *chunk = g_strnfill (256 * 1024, ' ');

        /* No Content-Length: the cap must hold while reading */
        soup_message_headers_set_encoding (soup_server_message_get_response_headers (msg),
                                           SOUP_ENCODING_CHUNKED);
        soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
        for (guint i = 0; i < 8; i++)
          soup_message_body_append (body, SOUP_MEMORY_COPY, chunk, strlen (chunk));
        soup_message_body_complete (body);
        break;
      }
    }
}

static Endpoint *
endpoint_new (void)
{
  Endpoint *e = g_new0 (Endpoint, 1);

  e->server = herald_test_server_new (&e->base);
  e->url = herald_test_url (e->base, "/jwks");
  soup_server_add_handler (e->server, "/jwks", on_jwks, e, NULL);
  e->serve = SERVE_SET;
  e->body = g_strdup ("{\"keys\":[]}");
  return e;
}

static void
endpoint_free (Endpoint *e)
{
  soup_server_disconnect (e->server);
  g_object_unref (e->server);
  g_uri_unref (e->base);
  g_free (e->url);
  g_free (e->body);
  g_free (e);
}

/* Serves {"keys":[…]} of the NULL-terminated JWK texts. */
static void
endpoint_serve (Endpoint *e, const char *first, ...)
{
  GString *out = g_string_new ("{\"keys\":[");
  va_list ap;

  va_start (ap, first);
  for (const char *jwk = first; jwk != NULL; jwk = va_arg (ap, const char *))
    {
      if (out->str[out->len - 1] != '[')
        g_string_append_c (out, ',');
      g_string_append (out, jwk);
    }
  va_end (ap);
  g_string_append (out, "]}");
  g_free (e->body);
  e->body = g_string_free (out, FALSE);
  e->serve = SERVE_SET;
}

static void
endpoint_serve_text (Endpoint *e, const char *text)
{
  g_free (e->body);
  e->body = g_strdup (text);
  e->serve = SERVE_SET;
}

static void
node_start (HeraldTestNode *node, Endpoint *e, const char *extra)
{
  g_autofree char *conf = g_build_filename (tmpdir, "herald.conf", NULL);
  g_autofree char *text = g_strdup_printf ("[auth]\njwks-url=%s\n%s", e->url, extra);
  g_autoptr (GError) error = NULL;

  g_assert_true (g_file_set_contents (conf, text, -1, &error));
  herald_test_node_start (node, conf, NULL, API_KEY, "unused");
}

static gboolean
log_has (HeraldTestNode *node, const char *text)
{
  return strstr (node->log->str, text) != NULL;
}

/* Waits for @text in the node's log from now on (earlier lines do not count). */
#define WAIT_LOG(node, text, timeout_ms)                                                           \
  G_STMT_START                                                                                     \
  {                                                                                                \
    gsize from_ = (node)->log->len;                                                                \
    HERALD_TEST_WAIT_UNTIL (strstr ((node)->log->str + from_, (text)) != NULL, (timeout_ms));      \
  }                                                                                                \
  G_STMT_END

static char *
make_token (const char *alg, const char *kid, const char *payload)
{
  g_autofree char *header = kid != NULL
                                ? g_strdup_printf ("{\"alg\":\"%s\",\"kid\":\"%s\"}", alg, kid)
                                : g_strdup_printf ("{\"alg\":\"%s\"}", alg);

  if (strcmp (alg, "RS256") == 0)
    return herald_test_token_sign ("rsa-private.pem", FALSE, header, payload);
  if (strcmp (alg, "ES256") == 0)
    return herald_test_token_sign ("ec-private.pem", TRUE, header, payload);
  /* EdDSA by openssl: an implementation independent of the verifier's GnuTLS */
  return herald_test_token_sign_eddsa ("ed25519-private.pem", header, payload);
}

static guint
ws_status (HeraldTestNode *node, const char *token)
{
  HeraldTestClient *c = herald_test_client_connect (&node->srv);
  g_autofree char *path
      = token != NULL ? g_strdup_printf ("/ws?token=%s", token) : g_strdup ("/ws");
  guint status = herald_test_ws_handshake (c, path, NULL, NULL);

  herald_test_client_free (c);
  return status;
}

/* SSE with the token in the Authorization header */
static guint
sse_status (HeraldTestNode *node, const char *token)
{
  HeraldTestClient *c = herald_test_client_connect (&node->srv);
  g_autofree char *auth
      = token != NULL ? g_strdup_printf ("Authorization: Bearer %s\r\n", token) : g_strdup ("");
  g_autofree char *req
      = g_strdup_printf ("GET /events?channel=news HTTP/1.1\r\nHost: 127.0.0.1\r\n%s\r\n", auth);
  guint status;

  herald_test_client_send_raw (c, req, strlen (req));
  status = herald_test_client_read_head (c, NULL);
  herald_test_client_free (c);
  return status;
}

static void
expect_accepted (HeraldTestNode *node, const char *token)
{
  g_assert_cmpuint (ws_status (node, token), ==, 101);
  g_assert_cmpuint (sse_status (node, token), ==, 200);
}

static void
expect_refused (HeraldTestNode *node, const char *token)
{
  g_assert_cmpuint (ws_status (node, token), ==, 401);
  g_assert_cmpuint (sse_status (node, token), ==, 401);
}

/* Lets the main context run for @ms (the endpoint answers, the log is read). */
static void
run_for (guint ms)
{
  HeraldTestDeadline *deadline = herald_test_deadline_new (ms);

  while (!herald_test_deadline_expired (deadline))
    g_main_context_iteration (NULL, TRUE);
  herald_test_deadline_free (deadline);
}

/* RSA, EC and OKP keys; the key's algorithm decides; the connection is the
 * token's user. */
static void
test_keys (void)
{
  Endpoint *e = endpoint_new ();
  HeraldTestNode node = { 0 };
  g_autofree char *rsa = herald_test_jwk ("rsa-public.pem", "r1", "RS256");
  g_autofree char *ec = herald_test_jwk ("ec-public.pem", "e1", NULL);
  g_autofree char *okp = herald_test_jwk ("ed25519-public.pem", "o1", "EdDSA");
  g_autofree char *rs = make_token ("RS256", "r1", "{\"sub\":\"rita\"}");
  g_autofree char *es = make_token ("ES256", "e1", "{\"sub\":\"eve\"}");
  g_autofree char *ed = make_token ("EdDSA", "o1", "{\"sub\":\"olga\"}");

  endpoint_serve (e, rsa, ec, okp, NULL);
  node_start (&node, e, "");
  HERALD_TEST_WAIT_UNTIL (log_has (&node, "3 key(s) in use (kid r1, e1, o1)"), 10000);

  expect_accepted (&node, rs);
  expect_accepted (&node, es);
  expect_accepted (&node, ed);
  {
    /* the connection is the token's user */
    g_autofree char *path = g_strdup_printf ("/ws?token=%s", ed);
    HeraldTestClient *client = herald_test_client_connect (&node.srv);
    g_autoptr (JsonObject) hello = NULL;

    g_autofree char *claims = g_strdup_printf ("{\"sub\":\"olga\",\"exp\":%" G_GINT64_FORMAT "}",
                                               g_get_real_time () / G_USEC_PER_SEC + 3600);
    g_autofree char *renewed = make_token ("ES256", "e1", claims);
    g_autofree char *refresh = g_strdup_printf ("{\"type\":\"refresh\",\"token\":\"%s\"}", renewed);
    g_autoptr (JsonObject) refreshed = NULL;

    g_assert_cmpuint (herald_test_ws_handshake (client, path, NULL, NULL), ==, 101);
    hello = herald_test_ws_read_type (client, "connected");
    g_assert_cmpstr (herald_test_json_get_string (hello, "user_id"), ==, "olga");
    /* an in-band refresh is verified with the key set too, any key of it */
    herald_test_ws_send_text (client, refresh);
    refreshed = herald_test_ws_read_type (client, "refreshed");
    herald_test_client_free (client);
  }

  /* a jwks-url is a token key: no anonymous clients by default */
  expect_refused (&node, NULL);
  {
    /* alg in the key against the token's header: an ES256 token naming the
     * RSA key, an RS256 one naming the EC key, EdDSA naming the RSA key */
    g_autofree char *es_as_r1 = make_token ("ES256", "r1", "{\"sub\":\"x\"}");
    g_autofree char *rs_as_e1 = make_token ("RS256", "e1", "{\"sub\":\"x\"}");
    g_autofree char *ed_as_r1 = make_token ("EdDSA", "r1", "{\"sub\":\"x\"}");
    /* the kid picks the key: the other Ed25519 key's kid does not verify */
    g_autofree char *no_kid = make_token ("RS256", NULL, "{\"sub\":\"x\"}");
    g_autoptr (GBytes) secret = g_bytes_new_static ("a-secret", 8);
    g_autofree char *hs = herald_jwt_sign_hs256 (secret, "{\"sub\":\"x\"}");
    g_autofree char *tampered = g_strdup (ed);
    char *dot = strchr (tampered, '.');

    dot[3] = dot[3] == 'A' ? 'B' : 'A';
    expect_refused (&node, es_as_r1);
    expect_refused (&node, rs_as_e1);
    expect_refused (&node, ed_as_r1);
    expect_refused (&node, no_kid);
    expect_refused (&node, hs);
    expect_refused (&node, tampered);
  }
  herald_test_node_stop (&node);
  endpoint_free (e);
}

/* [auth] jwt-algorithm with jwks-url: the only algorithm accepted; issuer
 * applies to key-set tokens as to any. */
static void
test_pinned (void)
{
  Endpoint *e = endpoint_new ();
  HeraldTestNode node = { 0 };
  g_autofree char *rsa = herald_test_jwk ("rsa-public.pem", "r1", NULL);
  g_autofree char *okp = herald_test_jwk ("ed25519-public.pem", "o1", NULL);
  g_autofree char *rs = make_token ("RS256", "r1", "{\"sub\":\"rita\",\"iss\":\"idp\"}");
  g_autofree char *ed = make_token ("EdDSA", "o1", "{\"sub\":\"olga\",\"iss\":\"idp\"}");
  g_autofree char *ed_no_iss = make_token ("EdDSA", "o1", "{\"sub\":\"olga\"}");

  endpoint_serve (e, rsa, okp, NULL);
  node_start (&node, e, "jwt-algorithm=EdDSA\nissuer=idp\n");
  HERALD_TEST_WAIT_UNTIL (log_has (&node, "2 key(s) in use (kid r1, o1)"), 10000);
  expect_accepted (&node, ed);
  expect_refused (&node, rs);
  expect_refused (&node, ed_no_iss);
  herald_test_node_stop (&node);
  endpoint_free (e);
}

static guint64
metric (HeraldTestNode *node, const char *series)
{
  guint status = 0;
  g_autofree char *text = herald_test_node_api (node, "GET", "/metrics", NULL, &status);
  g_autofree char *needle = g_strdup_printf ("\n%s ", series);
  const char *at;

  g_assert_cmpuint (status, ==, 200);
  at = strstr (text, needle);
  g_assert_nonnull (at);
  return g_ascii_strtoull (at + strlen (needle), NULL, 10);
}

/* Rotation (a kid appears, another goes), then the endpoint failing in every
 * way: the last good set stays, each failure logged and counted. */
static void
test_rotation_and_failures (void)
{
  Endpoint *e = endpoint_new ();
  HeraldTestNode node = { 0 };
  g_autofree char *rsa = herald_test_jwk ("rsa-public.pem", "old", NULL);
  g_autofree char *ec = herald_test_jwk ("ec-public.pem", "new", NULL);
  g_autofree char *old_token = make_token ("RS256", "old", "{\"sub\":\"a\"}");
  g_autofree char *new_token = make_token ("ES256", "new", "{\"sub\":\"b\"}");
  struct
  {
    Serve serve;
    guint status;
    const char *body;
    const char *logged;
  } failures[] = {
    { SERVE_STATUS, 500, NULL, "answered HTTP 500 instead of 200; keeping the last good key set" },
    { SERVE_STATUS, 404, NULL, "answered HTTP 404" },
    { SERVE_SET, 0, "{\"keys\":[", "the key set is not valid JSON" },
    { SERVE_SET, 0, "{\"jwks\":[]}", "not a JWK Set" },
    { SERVE_SET, 0, "<html>hello</html>", "the key set is not valid JSON" },
    { SERVE_SET, 0, "{\"keys\":[{\"kty\":\"oct\",\"kid\":\"s\",\"k\":\"AA\"}]}",
      "kty \"oct\" is not supported" },
    { SERVE_HUGE, 0, NULL, "the answer is larger than 1048576 bytes" },
  };

  endpoint_serve (e, rsa, NULL);
  node_start (&node, e, "jwks-refresh=1\n");
  HERALD_TEST_WAIT_UNTIL (log_has (&node, "1 key(s) in use (kid old)"), 10000);
  expect_accepted (&node, old_token);
  expect_refused (&node, new_token);

  /* a new kid appears */
  endpoint_serve (e, rsa, ec, NULL);
  WAIT_LOG (&node, "2 key(s) in use (kid old, new)", 10000);
  expect_accepted (&node, old_token);
  expect_accepted (&node, new_token);
  /* the old one is removed */
  endpoint_serve (e, ec, NULL);
  WAIT_LOG (&node, "1 key(s) in use (kid new)", 10000);
  expect_refused (&node, old_token);
  expect_accepted (&node, new_token);

  for (guint i = 0; i < G_N_ELEMENTS (failures); i++)
    {
      g_test_message ("failure %u: %s", i, failures[i].logged);
      if (failures[i].body != NULL)
        endpoint_serve_text (e, failures[i].body);
      e->serve = failures[i].serve;
      e->status = failures[i].status;
      WAIT_LOG (&node, failures[i].logged, 10000);
      expect_accepted (&node, new_token);
      expect_refused (&node, old_token);
    }
  g_assert_cmpuint (metric (&node, "herald_jwks_fetches_total{result=\"error\"}"), >=,
                    G_N_ELEMENTS (failures));
  g_assert_cmpuint (metric (&node, "herald_jwks_fetches_total{result=\"ok\"}"), >=, 3);
  g_assert_cmpuint (metric (&node, "herald_jwks_keys"), ==, 1);

  /* the endpoint comes back with the old key again */
  endpoint_serve (e, rsa, NULL);
  WAIT_LOG (&node, "1 key(s) in use (kid old)", 10000);
  expect_accepted (&node, old_token);
  expect_refused (&node, new_token);
  herald_test_node_stop (&node);
  endpoint_free (e);
}

/* Down at start: every token is refused until a set arrives; an unknown kid
 * fetches again, at most once per 10 s counting the start. */
static void
test_down_at_start_and_rate_limit (void)
{
  Endpoint *e = endpoint_new ();
  HeraldTestNode node = { 0 };
  g_autofree char *rsa = herald_test_jwk ("rsa-public.pem", "r1", NULL);
  g_autofree char *rs = make_token ("RS256", "r1", "{\"sub\":\"rita\"}");
  g_autofree char *unknown = make_token ("RS256", "zz", "{\"sub\":\"rita\"}");

  e->serve = SERVE_STATUS;
  e->status = 503;
  node_start (&node, e, "jwks-refresh=300\n");
  HERALD_TEST_WAIT_UNTIL (log_has (&node, "answered HTTP 503 instead of 200; no key set yet"),
                          10000);
  g_assert_cmpuint (e->requests, ==, 1);

  /* tokens with the kid: refused now; they ask for one fetch, which waits
   * for the 10 s after the start */
  for (guint i = 0; i < 5; i++)
    expect_refused (&node, rs);
  endpoint_serve (e, rsa, NULL);
  run_for (500);
  g_assert_cmpuint (e->requests, ==, 1);
  HERALD_TEST_WAIT_UNTIL (log_has (&node, "1 key(s) in use (kid r1)"), 15000);
  g_assert_cmpuint (e->requests, ==, 2);
  g_assert_cmpint (e->request_times[1] - e->request_times[0], >=, 9 * G_USEC_PER_SEC);
  expect_accepted (&node, rs);

  /* unknown kids: one more fetch 10 s after the last, however many ask */
  for (guint i = 0; i < 5; i++)
    expect_refused (&node, unknown);
  run_for (500);
  g_assert_cmpuint (e->requests, ==, 2);
  HERALD_TEST_WAIT_UNTIL (e->requests == 3, 15000);
  g_assert_cmpint (e->request_times[2] - e->request_times[1], >=, 9 * G_USEC_PER_SEC);
  run_for (500);
  g_assert_cmpuint (e->requests, ==, 3);
  /* the set was the same: known tokens still work */
  expect_accepted (&node, rs);
  herald_test_node_stop (&node);
  g_assert_cmpuint (e->requests, ==, 3);
  endpoint_free (e);
}

int
main (int argc, char **argv)
{
  int status;

  g_test_init (&argc, &argv, NULL);
  tmpdir = g_dir_make_tmp ("herald-jwks-XXXXXX", NULL);
  g_assert_nonnull (tmpdir);

  g_test_add_func ("/jwks/keys", test_keys);
  g_test_add_func ("/jwks/pinned", test_pinned);
  g_test_add_func ("/jwks/rotation-and-failures", test_rotation_and_failures);
  g_test_add_func ("/jwks/down-at-start-and-rate-limit", test_down_at_start_and_rate_limit);

  status = g_test_run ();
  {
    g_autofree char *conf = g_build_filename (tmpdir, "herald.conf", NULL);

    g_unlink (conf);
    g_rmdir (tmpdir);
  }
  return status;
}
