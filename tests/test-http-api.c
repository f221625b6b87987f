/* test-http-api.c: the HTTP server API, /healthz and /metrics, over loopback.
 *
 * The hub runs without workers, so queries about live connections answer
 * empty and sends reach nobody; what is tested here is the adapter:
 * authentication, routing, validation, error mapping, CORS and formats.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>
#include <json-glib/json-glib.h>

#include "herald-http-api.h"
#include "herald-memory-engine.h"
#include "herald-test-utils.h"

#define CONFIG_WITH_KEY "[api]\nkey=secret\n"
#define CONFIG_WITH_ORIGINS "[api]\nkey=secret\n[server]\nallowed-origins=https://app.example\n"

static const char *const auth[] = { "Authorization", "Bearer secret", NULL };

typedef struct
{
  HeraldConfig *config;
  HeraldEngine *engine;
  HeraldHub *hub;
  SoupServer *server;
  GUri *base_uri;
  SoupSession *session;
} Fixture;

/* Stands in for the core's SSE handler, to test herald_http_apply_cors() with allow_any. */
static void
any_origin_handler (SoupServer *server, SoupServerMessage *msg, const char *path, GHashTable *query,
                    gpointer user_data)
{
  herald_http_apply_cors (msg, HERALD_CONFIG (user_data), TRUE);
  soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
  soup_server_message_set_response (msg, "text/plain", SOUP_MEMORY_STATIC, "ok", 2);
}

static void
fixture_setup (Fixture *fixture, gconstpointer data)
{
  const char *config_text = data;
  g_autoptr (GError) error = NULL;

  fixture->config = herald_config_new ();
  herald_config_load_data (fixture->config, config_text, strlen (config_text), "test", &error);
  g_assert_no_error (error);
  fixture->engine = herald_memory_engine_new (fixture->config);
  fixture->hub = herald_hub_new (fixture->config, fixture->engine);

  fixture->server = herald_test_server_new (&fixture->base_uri);
  herald_http_api_register (fixture->server, fixture->hub);
  soup_server_add_handler (fixture->server, "/any-origin", any_origin_handler,
                           g_object_ref (fixture->config), g_object_unref);
  fixture->session = soup_session_new ();
}

static void
fixture_teardown (Fixture *fixture, gconstpointer data)
{
  /* The server closes its idle connections first: libsoup 3.2 leaks a
   * server connection (and its fd) that the client closes while idle. */
  soup_server_disconnect (fixture->server);
  g_clear_object (&fixture->server);
  g_clear_object (&fixture->session);
  g_clear_pointer (&fixture->base_uri, g_uri_unref);
  g_clear_object (&fixture->hub);
  g_clear_object (&fixture->engine);
  g_clear_object (&fixture->config);

  /* Let closed sockets and finished sources go. */
  while (g_main_context_iteration (NULL, FALSE))
    ;
}

/* One request to @path; @auth_headers may be NULL. */
static char *
request (Fixture *fixture, const char *method, const char *path, const char *const *headers,
         const char *body, guint *status, SoupMessageHeaders **response_headers)
{
  g_autofree char *url = herald_test_url (fixture->base_uri, path);

  return herald_test_http_request (fixture->session, method, url, headers, body, status,
                                   response_headers);
}

static JsonObject *
parse_object (const char *text)
{
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (GError) error = NULL;
  JsonNode *root;

  json_parser_load_from_data (parser, text, -1, &error);
  g_assert_no_error (error);
  root = json_parser_get_root (parser);
  g_assert_true (JSON_NODE_HOLDS_OBJECT (root));
  return json_object_ref (json_node_get_object (root));
}

/* Asserts @text is {"error": "<non-empty string>"} and nothing else. */
static void
assert_error_body (const char *text)
{
  g_autoptr (JsonObject) object = parse_object (text);

  g_assert_cmpuint (json_object_get_size (object), ==, 1);
  g_assert_true (json_object_has_member (object, "error"));
  g_assert_cmpstr (json_object_get_string_member (object, "error"), !=, "");
}

static void
assert_json_error (Fixture *fixture, const char *method, const char *path,
                   const char *const *headers, const char *body, guint expected_status)
{
  g_autoptr (SoupMessageHeaders) response_headers = NULL;
  g_autofree char *text = NULL;
  guint status = 0;

  text = request (fixture, method, path, headers, body, &status, &response_headers);
  g_assert_cmpuint (status, ==, expected_status);
  g_assert_cmpstr (soup_message_headers_get_content_type (response_headers, NULL), ==,
                   "application/json");
  assert_error_body (text);
}

static void
test_disabled (Fixture *fixture, gconstpointer data)
{
  g_autofree char *text = NULL;
  g_autoptr (JsonObject) object = NULL;
  guint status = 0;

  text = request (fixture, "GET", "/api/connections", auth, NULL, &status, NULL);
  g_assert_cmpuint (status, ==, 404);
  object = parse_object (text);
  g_assert_cmpstr (json_object_get_string_member (object, "error"), ==,
                   "HTTP API disabled: no API key configured");

  assert_json_error (fixture, "POST", "/api/publish", auth, "{\"channel\":\"a\",\"data\":1}", 404);
  assert_json_error (fixture, "OPTIONS", "/api/publish", NULL, NULL, 404);

  /* /healthz does not depend on the API key. */
  g_clear_pointer (&text, g_free);
  text = request (fixture, "GET", "/healthz", NULL, NULL, &status, NULL);
  g_assert_cmpuint (status, ==, 200);
}

static void
test_auth (Fixture *fixture, gconstpointer data)
{
  static const char *const wrong_same_length[] = { "Authorization", "Bearer secreT", NULL };
  static const char *const wrong_longer[] = { "Authorization", "Bearer secret2", NULL };
  static const char *const wrong_shorter[] = { "Authorization", "Bearer secre", NULL };
  static const char *const empty[] = { "Authorization", "Bearer ", NULL };
  static const char *const basic[] = { "Authorization", "Basic c2VjcmV0", NULL };
  static const char *const bare_key[] = { "Authorization", "secret", NULL };
  static const char *const lowercase_scheme[] = { "Authorization", "bearer secret", NULL };
  const char *const *refused[]
      = { NULL, wrong_same_length, wrong_longer, wrong_shorter, empty, basic, bare_key };
  g_autofree char *text = NULL;
  guint status = 0;

  for (guint i = 0; i < G_N_ELEMENTS (refused); i++)
    {
      g_autoptr (SoupMessageHeaders) response_headers = NULL;
      g_autofree char *body = NULL;

      body
          = request (fixture, "GET", "/api/channels", refused[i], NULL, &status, &response_headers);
      g_assert_cmpuint (status, ==, 401);
      g_assert_cmpstr (soup_message_headers_get_one (response_headers, "WWW-Authenticate"), ==,
                       "Bearer");
      g_assert_cmpstr (soup_message_headers_get_content_type (response_headers, NULL), ==,
                       "application/json");
      assert_error_body (body);
    }

  /* Unauthenticated requests learn nothing about which paths exist. */
  assert_json_error (fixture, "GET", "/api/nope", NULL, NULL, 401);
  assert_json_error (fixture, "POST", "/api/publish", NULL, "{\"channel\":\"a\",\"data\":1}", 401);

  text = request (fixture, "GET", "/api/channels", lowercase_scheme, NULL, &status, NULL);
  g_assert_cmpuint (status, ==, 200);
  g_clear_pointer (&text, g_free);
  text = request (fixture, "GET", "/api/channels", auth, NULL, &status, NULL);
  g_assert_cmpuint (status, ==, 200);
}

static guint64
publish (Fixture *fixture, const char *body)
{
  g_autoptr (SoupMessageHeaders) response_headers = NULL;
  g_autofree char *text = NULL;
  g_autoptr (JsonObject) object = NULL;
  guint status = 0;

  text = request (fixture, "POST", "/api/publish", auth, body, &status, &response_headers);
  g_assert_cmpuint (status, ==, 200);
  g_assert_cmpstr (soup_message_headers_get_content_type (response_headers, NULL), ==,
                   "application/json");
  object = parse_object (text);
  g_assert_cmpuint (json_object_get_size (object), ==, 1);
  g_assert_true (json_object_has_member (object, "offset"));
  return json_object_get_int_member (object, "offset");
}

static void
test_publish (Fixture *fixture, gconstpointer data)
{
  guint64 news1, news2, news3, other1, slashed1, slashed2;

  news1 = publish (fixture, "{\"channel\":\"news\",\"data\":{\"title\":\"hello\"}}");
  news2 = publish (fixture, "{\"channel\":\"news\",\"data\":[1,2,3]}");
  other1 = publish (fixture, "{\"channel\":\"other\",\"data\":\"text\"}");
  news3 = publish (fixture, "{\"data\":null,\"channel\":\"news\"}");
  slashed1 = publish (fixture, "{\"channel\":\"team/a:b@c\",\"data\":42}");
  slashed2 = publish (fixture, "{\"channel\":\"team/a:b@c\",\"data\":43}");

  g_assert_cmpuint (news2, ==, news1 + 1);
  g_assert_cmpuint (news3, ==, news2 + 1);
  g_assert_cmpuint (slashed2, ==, slashed1 + 1);
  /* Offsets are per channel: "other" starts where "news" did. */
  g_assert_cmpuint (other1, ==, news1);
}

static void
test_publish_errors (Fixture *fixture, gconstpointer data)
{
  static const char *const bodies[] = {
    "{\"channel\":\"news\",",                /* bad JSON */
    "not json at all",                       /* bad JSON */
    "",                                      /* empty */
    "[1,2]",                                 /* not an object */
    "\"news\"",                              /* not an object */
    "{\"data\":1}",                          /* missing channel */
    "{\"channel\":7,\"data\":1}",            /* channel not a string */
    "{\"channel\":null,\"data\":1}",         /* channel not a string */
    "{\"channel\":\"bad name\",\"data\":1}", /* invalid channel name */
    "{\"channel\":\"\",\"data\":1}",         /* empty channel name */
    "{\"channel\":\"news\"}",                /* missing data */
    "{\"channel\":\"a\xff\",\"data\":1}",    /* not UTF-8 */
  };

  for (guint i = 0; i < G_N_ELEMENTS (bodies); i++)
    {
      /* Escaped: raw invalid UTF-8 would reach stdout as "[Invalid UTF-8] …", which is not TAP. */
      g_autofree char *shown = g_strescape (bodies[i], NULL);

      g_test_message ("body: %s", shown);
      assert_json_error (fixture, "POST", "/api/publish", auth, bodies[i], 400);
    }
}

/* A body of @size bytes: {"channel":"news","data":"xxx…"} */
static char *
make_body (gsize size)
{
  const char *head = "{\"channel\":\"news\",\"data\":\"";
  GString *body = g_string_new (head);

  while (body->len < size - 2)
    g_string_append_c (body, 'x');
  g_string_append (body, "\"}");
  return g_string_free (body, FALSE);
}

static char *
send_chunked (Fixture *fixture, const char *path, const char *body, guint *status,
              SoupMessageHeaders **response_headers)
{
  char *text;
  g_autofree char *url = herald_test_url (fixture->base_uri, path);
  g_autoptr (SoupMessage) msg = soup_message_new ("POST", url);
  g_autoptr (GBytes) bytes = g_bytes_new (body, strlen (body));
  g_autoptr (GInputStream) stream = g_memory_input_stream_new_from_bytes (bytes);

  soup_message_headers_append (soup_message_get_request_headers (msg), "Authorization",
                               "Bearer secret");
  soup_message_set_request_body (msg, "application/json", stream, -1);
  g_assert_cmpint (soup_message_headers_get_encoding (soup_message_get_request_headers (msg)), ==,
                   SOUP_ENCODING_CHUNKED);
  text = herald_test_http_send (fixture->session, msg, status);
  if (response_headers != NULL)
    *response_headers = soup_message_headers_ref (soup_message_get_response_headers (msg));
  return text;
}

/* Sends only the head of a request with `Expect: 100-continue` and returns
 * the status line the server answers with, before any body is sent. */
static char *
status_line_before_body (Fixture *fixture, const char *head)
{
  g_autoptr (GSocketClient) client = g_socket_client_new ();
  g_autoptr (GSocketConnection) connection = NULL;
  g_autoptr (GError) error = NULL;
  GSocket *socket;
  char buffer[512];
  gssize n;

  connection = g_socket_client_connect_to_host (client, g_uri_get_host (fixture->base_uri),
                                                g_uri_get_port (fixture->base_uri), NULL, &error);
  g_assert_no_error (error);
  socket = g_socket_connection_get_socket (connection);
  g_socket_set_blocking (socket, FALSE);
  g_assert_cmpint (g_socket_send (socket, head, strlen (head), NULL, &error), ==, strlen (head));
  g_assert_no_error (error);

  HERALD_TEST_WAIT_UNTIL (g_socket_condition_check (socket, G_IO_IN) != 0, 5000);
  n = g_socket_receive (socket, buffer, sizeof buffer - 1, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (n, >, 0);
  buffer[n] = '\0';
  return g_strndup (buffer, strcspn (buffer, "\r"));
}

static void
test_oversize_early (Fixture *fixture, gconstpointer data)
{
  g_autofree char *line = NULL;

  /* Refused from Content-Length alone, without reading the body. */
  line = status_line_before_body (fixture, "POST /api/publish HTTP/1.1\r\n"
                                           "Host: 127.0.0.1\r\n"
                                           "Authorization: Bearer secret\r\n"
                                           "Content-Type: application/json\r\n"
                                           "Content-Length: 100000000\r\n"
                                           "Expect: 100-continue\r\n\r\n");
  g_assert_cmpstr (line, ==, "HTTP/1.1 413 Request Entity Too Large");
  g_clear_pointer (&line, g_free);

  /* Authentication, too, is decided before the body. */
  line = status_line_before_body (fixture, "POST /api/publish HTTP/1.1\r\n"
                                           "Host: 127.0.0.1\r\n"
                                           "Content-Length: 20\r\n"
                                           "Expect: 100-continue\r\n\r\n");
  g_assert_cmpstr (line, ==, "HTTP/1.1 401 Unauthorized");
  g_clear_pointer (&line, g_free);

  /* A body within the limit is asked for. */
  line = status_line_before_body (fixture, "POST /api/publish HTTP/1.1\r\n"
                                           "Host: 127.0.0.1\r\n"
                                           "Authorization: Bearer secret\r\n"
                                           "Content-Length: 20\r\n"
                                           "Expect: 100-continue\r\n\r\n");
  g_assert_cmpstr (line, ==, "HTTP/1.1 100 Continue");
}

static void
test_oversize (Fixture *fixture, gconstpointer data)
{
  gsize max = herald_config_get_max_message_size (fixture->config);
  g_autofree char *too_big = make_body (max + 1);
  g_autofree char *way_too_big = make_body (4 * max);
  g_autofree char *just_fits = make_body (max);
  g_autoptr (SoupMessageHeaders) headers = NULL;
  g_autofree char *text = NULL;
  guint status = 0;

  g_assert_cmpuint (strlen (too_big), ==, max + 1);
  g_assert_cmpuint (strlen (just_fits), ==, max);

  assert_json_error (fixture, "POST", "/api/publish", auth, too_big, 413);
  assert_json_error (fixture, "POST", "/api/publish", auth, way_too_big, 413);
  assert_json_error (fixture, "POST", "/api/broadcast", auth, way_too_big, 413);

  /* Without Content-Length the body is counted as it arrives. */
  text = send_chunked (fixture, "/api/publish", way_too_big, &status, &headers);
  g_assert_cmpuint (status, ==, 413);
  assert_error_body (text);
  g_assert_true (soup_message_headers_header_contains (headers, "Connection", "close"));
  g_clear_pointer (&text, g_free);

  text = send_chunked (fixture, "/api/publish", "{\"channel\":\"news\",\"data\":1}", &status, NULL);
  g_assert_cmpuint (status, ==, 200);
  g_clear_pointer (&text, g_free);

  /* A chunked body of many chunks that just fits arrives whole. */
  text = send_chunked (fixture, "/api/publish", just_fits, &status, NULL);
  g_assert_cmpuint (status, ==, 200);
  g_clear_pointer (&text, g_free);

  /* The server is still serving after refusing big bodies. */
  text = request (fixture, "GET", "/api/channels", auth, NULL, &status, NULL);
  g_assert_cmpuint (status, ==, 200);
}

static void
assert_delivered (Fixture *fixture, const char *path, const char *body, gint64 expected)
{
  g_autofree char *text = NULL;
  g_autoptr (JsonObject) object = NULL;
  guint status = 0;

  text = request (fixture, "POST", path, auth, body, &status, NULL);
  g_assert_cmpuint (status, ==, 200);
  object = parse_object (text);
  g_assert_cmpint (json_object_get_int_member (object, "delivered"), ==, expected);
}

static void
test_broadcast (Fixture *fixture, gconstpointer data)
{
  assert_delivered (fixture, "/api/broadcast", "{\"data\":{\"a\":1}}", 0);
  assert_json_error (fixture, "POST", "/api/broadcast", auth, "{\"a\":1}", 400);
  assert_json_error (fixture, "POST", "/api/broadcast", auth, "{\"data\":", 400);
}

static void
test_user_send (Fixture *fixture, gconstpointer data)
{
  assert_delivered (fixture, "/api/users/alice/send", "{\"data\":\"hi\"}", 0);
  /* User ids may hold characters that need escaping in a path. */
  assert_delivered (fixture, "/api/users/auth0%7Calice%2Fx/send", "{\"data\":\"hi\"}", 0);
  assert_json_error (fixture, "POST", "/api/users/alice/send", auth, "{}", 400);
  assert_json_error (fixture, "POST", "/api/users/alice/send", auth, "nope", 400);
  assert_json_error (fixture, "POST", "/api/users//send", auth, "{\"data\":1}", 404);
}

static void
test_connection_unknown (Fixture *fixture, gconstpointer data)
{
  assert_json_error (fixture, "POST", "/api/connections/nosuchconnection/send", auth,
                     "{\"data\":1}", 404);
  assert_json_error (fixture, "DELETE", "/api/connections/nosuchconnection", auth, NULL, 404);
  assert_json_error (fixture, "GET", "/api/connections/nosuchconnection", auth, NULL, 404);
  /* Not a valid connection id: cannot exist. */
  assert_json_error (fixture, "GET", "/api/connections/a%20b", auth, NULL, 404);
  assert_json_error (fixture, "GET", "/api/connections/a/b", auth, NULL, 404);
}

static void
test_queries (Fixture *fixture, gconstpointer data)
{
  g_autofree char *text = NULL;
  g_autoptr (JsonObject) object = NULL;
  JsonArray *array;
  guint status = 0;

  text = request (fixture, "GET", "/api/connections", auth, NULL, &status, NULL);
  g_assert_cmpuint (status, ==, 200);
  object = parse_object (text);
  array = json_object_get_array_member (object, "connections");
  g_assert_nonnull (array);
  g_assert_cmpuint (json_array_get_length (array), ==, 0);
  g_clear_pointer (&object, json_object_unref);
  g_clear_pointer (&text, g_free);

  text = request (fixture, "GET", "/api/channels", auth, NULL, &status, NULL);
  g_assert_cmpuint (status, ==, 200);
  object = parse_object (text);
  g_assert_nonnull (json_object_get_array_member (object, "channels"));
  g_clear_pointer (&object, json_object_unref);
  g_clear_pointer (&text, g_free);

  /* Channel names with '/', ':' and '@', plain or percent-encoded. */
  {
    static const char *const paths[] = {
      "/api/channels/team/a:b@c/presence",
      "/api/channels/team%2Fa%3Ab%40c/presence",
    };

    for (guint i = 0; i < G_N_ELEMENTS (paths); i++)
      {
        text = request (fixture, "GET", paths[i], auth, NULL, &status, NULL);
        g_assert_cmpuint (status, ==, 200);
        object = parse_object (text);
        g_assert_cmpstr (json_object_get_string_member (object, "channel"), ==, "team/a:b@c");
        g_assert_cmpuint (json_array_get_length (json_object_get_array_member (object, "users")),
                          ==, 0);
        g_assert_cmpint (json_object_get_int_member (object, "connections"), ==, 0);
        g_clear_pointer (&object, json_object_unref);
        g_clear_pointer (&text, g_free);
      }
  }

  /* A channel literally named "x/presence". */
  text = request (fixture, "GET", "/api/channels/x/presence/presence", auth, NULL, &status, NULL);
  g_assert_cmpuint (status, ==, 200);
  object = parse_object (text);
  g_assert_cmpstr (json_object_get_string_member (object, "channel"), ==, "x/presence");

  assert_json_error (fixture, "GET", "/api/channels/bad%20name/presence", auth, NULL, 400);
}

static void
test_method_not_allowed (Fixture *fixture, gconstpointer data)
{
  static const struct
  {
    const char *method;
    const char *path;
    const char *allow;
  } cases[] = {
    { "GET", "/api/publish", "POST, OPTIONS" },
    { "DELETE", "/api/broadcast", "POST, OPTIONS" },
    { "POST", "/api/connections", "GET, OPTIONS" },
    { "PUT", "/api/connections/abc", "GET, DELETE, OPTIONS" },
    { "GET", "/api/connections/abc/send", "POST, OPTIONS" },
    { "POST", "/api/channels/news/presence", "GET, OPTIONS" },
    { "GET", "/api/users/alice/send", "POST, OPTIONS" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr (SoupMessageHeaders) response_headers = NULL;
      g_autofree char *text = NULL;
      guint status = 0;

      text = request (fixture, cases[i].method, cases[i].path, auth, NULL, &status,
                      &response_headers);
      g_assert_cmpuint (status, ==, 405);
      g_assert_cmpstr (soup_message_headers_get_one (response_headers, "Allow"), ==,
                       cases[i].allow);
      assert_error_body (text);
    }

  assert_json_error (fixture, "POST", "/healthz", NULL, NULL, 405);
  assert_json_error (fixture, "DELETE", "/metrics", NULL, NULL, 405);
}

static void
test_unknown_path (Fixture *fixture, gconstpointer data)
{
  assert_json_error (fixture, "GET", "/api", auth, NULL, 404);
  assert_json_error (fixture, "GET", "/api/", auth, NULL, 404);
  assert_json_error (fixture, "GET", "/api/nope", auth, NULL, 404);
  assert_json_error (fixture, "POST", "/api/publish/extra", auth, "{}", 404);
  assert_json_error (fixture, "GET", "/healthz/extra", NULL, NULL, 404);
}

static void
test_cors (Fixture *fixture, gconstpointer data)
{
  static const char *const preflight[] = { "Origin",
                                           "https://app.example",
                                           "Access-Control-Request-Method",
                                           "POST",
                                           "Access-Control-Request-Headers",
                                           "authorization, content-type",
                                           NULL };
  static const char *const allowed[]
      = { "Authorization", "Bearer secret", "Origin", "https://app.example", NULL };
  static const char *const other[]
      = { "Authorization", "Bearer secret", "Origin", "https://evil.example", NULL };
  g_autoptr (SoupMessageHeaders) headers = NULL;
  g_autofree char *text = NULL;
  guint status = 0;

  /* Preflight: no API key needed. */
  text = request (fixture, "OPTIONS", "/api/publish", preflight, NULL, &status, &headers);
  g_assert_cmpuint (status, ==, 204);
  g_assert_cmpstr (soup_message_headers_get_one (headers, "Access-Control-Allow-Origin"), ==,
                   "https://app.example");
  g_assert_cmpstr (soup_message_headers_get_one (headers, "Access-Control-Allow-Credentials"), ==,
                   "true");
  g_assert_cmpstr (soup_message_headers_get_one (headers, "Access-Control-Allow-Methods"), ==,
                   "GET, POST, DELETE, OPTIONS");
  g_assert_cmpstr (soup_message_headers_get_one (headers, "Access-Control-Allow-Headers"), ==,
                   "Authorization, Content-Type");
  g_assert_cmpstr (soup_message_headers_get_one (headers, "Access-Control-Max-Age"), ==, "600");
  g_assert_true (soup_message_headers_header_contains (headers, "Vary", "Origin"));
  g_clear_pointer (&headers, soup_message_headers_unref);
  g_clear_pointer (&text, g_free);

  /* An allowed origin on a real request, and on an error response. */
  text = request (fixture, "GET", "/api/channels", allowed, NULL, &status, &headers);
  g_assert_cmpuint (status, ==, 200);
  g_assert_cmpstr (soup_message_headers_get_one (headers, "Access-Control-Allow-Origin"), ==,
                   "https://app.example");
  g_assert_cmpstr (soup_message_headers_get_one (headers, "Access-Control-Allow-Credentials"), ==,
                   "true");
  g_assert_true (soup_message_headers_header_contains (headers, "Vary", "Origin"));
  g_clear_pointer (&headers, soup_message_headers_unref);
  g_clear_pointer (&text, g_free);

  text = request (fixture, "GET", "/api/channels", allowed + 2, NULL, &status, &headers);
  g_assert_cmpuint (status, ==, 401);
  g_assert_cmpstr (soup_message_headers_get_one (headers, "Access-Control-Allow-Origin"), ==,
                   "https://app.example");
  g_clear_pointer (&headers, soup_message_headers_unref);
  g_clear_pointer (&text, g_free);

  /* Another origin gets no CORS grant. */
  text = request (fixture, "GET", "/api/channels", other, NULL, &status, &headers);
  g_assert_cmpuint (status, ==, 200);
  g_assert_null (soup_message_headers_get_one (headers, "Access-Control-Allow-Origin"));
  g_assert_null (soup_message_headers_get_one (headers, "Access-Control-Allow-Credentials"));
  g_clear_pointer (&headers, soup_message_headers_unref);
  g_clear_pointer (&text, g_free);

  /* allow_any does not widen a configured list. */
  text = request (fixture, "GET", "/any-origin", other + 2, NULL, &status, &headers);
  g_assert_cmpuint (status, ==, 200);
  g_assert_null (soup_message_headers_get_one (headers, "Access-Control-Allow-Origin"));
}

static void
test_cors_unset (Fixture *fixture, gconstpointer data)
{
  static const char *const origin[]
      = { "Authorization", "Bearer secret", "Origin", "https://app.example", NULL };
  g_autoptr (SoupMessageHeaders) headers = NULL;
  g_autofree char *text = NULL;
  guint status = 0;

  /* The API grants nothing without allowed-origins… */
  text = request (fixture, "GET", "/api/channels", origin, NULL, &status, &headers);
  g_assert_cmpuint (status, ==, 200);
  g_assert_null (soup_message_headers_get_one (headers, "Access-Control-Allow-Origin"));
  g_clear_pointer (&headers, soup_message_headers_unref);
  g_clear_pointer (&text, g_free);

  /* …while allow_any (SSE) answers "*". */
  text = request (fixture, "GET", "/any-origin", origin + 2, NULL, &status, &headers);
  g_assert_cmpuint (status, ==, 200);
  g_assert_cmpstr (soup_message_headers_get_one (headers, "Access-Control-Allow-Origin"), ==, "*");
  g_assert_null (soup_message_headers_get_one (headers, "Access-Control-Allow-Credentials"));
}

static void
test_healthz (Fixture *fixture, gconstpointer data)
{
  g_autoptr (SoupMessageHeaders) headers = NULL;
  g_autofree char *text = NULL;
  g_autoptr (JsonObject) object = NULL;
  guint status = 0;

  text = request (fixture, "GET", "/healthz", NULL, NULL, &status, &headers);
  g_assert_cmpuint (status, ==, 200);
  g_assert_cmpstr (soup_message_headers_get_content_type (headers, NULL), ==, "application/json");
  object = parse_object (text);
  g_assert_cmpstr (json_object_get_string_member (object, "status"), ==, "ok");
  g_assert_cmpstr (json_object_get_string_member (object, "engine"), ==, "ok");
  g_assert_cmpint (json_object_get_int_member (object, "connections"), ==, 0);
  g_clear_pointer (&headers, soup_message_headers_unref);
  g_clear_pointer (&text, g_free);

  /* Probes may use HEAD. */
  text = request (fixture, "HEAD", "/healthz", NULL, NULL, &status, &headers);
  g_assert_cmpuint (status, ==, 200);
  g_assert_cmpstr (text, ==, "");
}

static guint
count_open_fds (void)
{
  g_autoptr (GDir) dir = g_dir_open ("/proc/self/fd", 0, NULL);
  guint n = 0;

  g_assert_nonnull (dir);
  while (g_dir_read_name (dir) != NULL)
    n++;
  return n;
}

/* Clients that close their connection after each call (curl, probes) must
 * not leave the server holding one fd per call. */
static void
test_no_fd_leak (Fixture *fixture, gconstpointer data)
{
  static const struct
  {
    const char *method;
    const char *path;
    const char *body;
  } calls[] = {
    { "GET", "/healthz", NULL },
    { "GET", "/metrics", NULL },
    { "GET", "/api/channels", NULL },
    { "POST", "/api/publish", "{\"channel\":\"news\",\"data\":1}" },
    { "GET", "/api/nope", NULL },
  };
  guint before;

  if (!g_file_test ("/proc/self/fd", G_FILE_TEST_IS_DIR))
    {
      g_test_skip ("no /proc/self/fd");
      return;
    }

  before = count_open_fds ();
  for (guint round = 0; round < 10; round++)
    for (guint i = 0; i < G_N_ELEMENTS (calls); i++)
      {
        g_autoptr (SoupSession) session = soup_session_new ();
        g_autofree char *url = herald_test_url (fixture->base_uri, calls[i].path);
        g_autofree char *text = NULL;

        text = herald_test_http_request (session, calls[i].method, url, auth, calls[i].body, NULL,
                                         NULL);
      }
  /* The server notices the closes on its next iterations. */
  HERALD_TEST_WAIT_UNTIL (count_open_fds () <= before + 2, 5000);
}

static const char *const metric_names[] = {
  "herald_connections",
  "herald_connections_opened_total",
  "herald_messages_received_total",
  "herald_messages_published_total",
  "herald_deliveries_total",
  "herald_bytes_written_total",
  "herald_send_queue_bytes",
  "herald_dropped_total",
  "herald_channels",
  "herald_closes_total",
  "herald_info",
};

/* "x_bucket", "x_sum" or "x_count" of a histogram x that is typed */
static gboolean
histogram_part (GHashTable *typed, const char *name)
{
  const char *const suffixes[] = { "_bucket", "_sum", "_count" };

  for (guint i = 0; i < G_N_ELEMENTS (suffixes); i++)
    if (g_str_has_suffix (name, suffixes[i]))
      {
        g_autofree char *base = g_strndup (name, strlen (name) - strlen (suffixes[i]));

        if (g_strcmp0 (g_hash_table_lookup (typed, base), "histogram") == 0)
          return TRUE;
      }
  return FALSE;
}

/* Checks @text line by line against the 0.0.4 text format and returns the
 * sample values by "name{labels}". Every sample follows its HELP and TYPE. */
static GHashTable *
parse_metrics (const char *text)
{
  g_autoptr (GHashTable) samples = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  g_autoptr (GHashTable) typed = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  g_autoptr (GHashTable) helped = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_autoptr (GRegex) help_re
      = g_regex_new ("^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) \\S.*$", 0, 0, NULL);
  g_autoptr (GRegex) type_re = g_regex_new (
      "^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$", 0, 0, NULL);
  g_autoptr (GRegex) sample_re = g_regex_new (
      "^([a-zA-Z_:][a-zA-Z0-9_:]*)(\\{([a-zA-Z_][a-zA-Z0-9_]*=\"([^\"\\\\]|\\\\.)*\",?)*\\})? "
      "([0-9]+(\\.[0-9]+)?)$",
      0, 0, NULL);
  g_auto (GStrv) lines = NULL;

  g_assert_true (g_str_has_suffix (text, "\n"));
  lines = g_strsplit (text, "\n", -1);
  for (guint i = 0; lines[i] != NULL && lines[i + 1] != NULL; i++)
    {
      const char *line = lines[i];
      g_autoptr (GMatchInfo) match = NULL;

      if (g_regex_match (help_re, line, 0, &match))
        {
          g_hash_table_add (helped, g_match_info_fetch (match, 1));
          continue;
        }
      g_clear_pointer (&match, g_match_info_free);
      if (g_regex_match (type_re, line, 0, &match))
        {
          char *name = g_match_info_fetch (match, 1);

          g_assert_true (g_hash_table_contains (helped, name));
          g_assert_false (g_hash_table_contains (typed, name));
          g_hash_table_insert (typed, name, g_match_info_fetch (match, 2));
        }
      else
        {
          g_autofree char *name = NULL;
          const char *space;

          g_clear_pointer (&match, g_match_info_free);
          if (!g_regex_match (sample_re, line, 0, &match))
            g_error ("not a metrics line: “%s”", line);
          name = g_match_info_fetch (match, 1);
          g_assert_true (g_hash_table_contains (typed, name) || histogram_part (typed, name));
          space = strrchr (line, ' ');
          g_hash_table_insert (samples, g_strndup (line, space - line), g_strdup (space + 1));
        }
    }
  return g_steal_pointer (&samples);
}

static void
assert_all_metrics (GHashTable *samples)
{
  for (guint i = 0; i < G_N_ELEMENTS (metric_names); i++)
    {
      GHashTableIter iter;
      const char *key;
      gboolean found = FALSE;

      g_hash_table_iter_init (&iter, samples);
      while (g_hash_table_iter_next (&iter, (gpointer *)&key, NULL))
        {
          gsize len = strlen (metric_names[i]);

          if (strncmp (key, metric_names[i], len) == 0 && (key[len] == '\0' || key[len] == '{'))
            found = TRUE;
        }
      if (!found)
        g_error ("metric %s missing", metric_names[i]);
    }
}

static void
test_metrics (Fixture *fixture, gconstpointer data)
{
  g_autoptr (SoupMessageHeaders) headers = NULL;
  g_autoptr (GHashTable) samples = NULL;
  g_autofree char *text = NULL;
  g_autofree char *info = NULL;
  guint status = 0;

  text = request (fixture, "GET", "/metrics", NULL, NULL, &status, &headers);
  g_assert_cmpuint (status, ==, 200);
  g_assert_cmpstr (soup_message_headers_get_one (headers, "Content-Type"), ==,
                   "text/plain; version=0.0.4");
  samples = parse_metrics (text);
  assert_all_metrics (samples);

  g_assert_cmpstr (g_hash_table_lookup (samples, "herald_connections{transport=\"websocket\"}"), ==,
                   "0");
  g_assert_cmpstr (g_hash_table_lookup (samples, "herald_connections{transport=\"sse\"}"), ==, "0");
  g_assert_cmpstr (g_hash_table_lookup (samples, "herald_closes_total{code=\"4004\"}"), ==, "0");
  {
    g_autofree char *channels
        = g_strdup_printf ("%" G_GINT64_FORMAT, herald_engine_count_channels (fixture->engine));
    g_assert_cmpstr (g_hash_table_lookup (samples, "herald_channels"), ==, channels);
  }
  info = g_strdup_printf ("herald_info{version=\"%s\",engine=\"%s\",node=\"%s\"}", PACKAGE_VERSION,
                          herald_engine_get_name (fixture->engine),
                          herald_hub_get_node_id (fixture->hub));
  g_assert_cmpstr (g_hash_table_lookup (samples, info), ==, "1");
}

static void
test_metrics_render (void)
{
  HeraldStats stats = { 0 };
  g_autoptr (GHashTable) samples = NULL;
  g_autofree char *text = NULL;
  guint n_codes = 0;

  stats.connections_websocket = 3;
  stats.connections_sse = 2;
  stats.connections_opened = 17;
  stats.messages_received = 5;
  stats.messages_published = 11;
  stats.deliveries = 12345678901234ULL;
  stats.bytes_written = 999;
  stats.bytes_queued = 42;
  stats.dropped = 7;
  stats.engine_channels = 21;
  stats.closes[herald_close_code_index (4004)] = 9;
  stats.closes[herald_close_code_index (1000)] = 4;

  text = herald_metrics_render (&stats, "mem\"ory\\", "node\n1", "ok");
  samples = parse_metrics (text);
  assert_all_metrics (samples);

#define ASSERT_SAMPLE(key, value) g_assert_cmpstr (g_hash_table_lookup (samples, key), ==, value)
  ASSERT_SAMPLE ("herald_connections{transport=\"websocket\"}", "3");
  ASSERT_SAMPLE ("herald_connections{transport=\"sse\"}", "2");
  ASSERT_SAMPLE ("herald_connections_opened_total", "17");
  ASSERT_SAMPLE ("herald_messages_received_total", "5");
  ASSERT_SAMPLE ("herald_messages_published_total", "11");
  ASSERT_SAMPLE ("herald_deliveries_total", "12345678901234");
  ASSERT_SAMPLE ("herald_bytes_written_total", "999");
  ASSERT_SAMPLE ("herald_send_queue_bytes", "42");
  ASSERT_SAMPLE ("herald_dropped_total", "7");
  ASSERT_SAMPLE ("herald_channels", "21");
  ASSERT_SAMPLE ("herald_closes_total{code=\"4004\"}", "9");
  ASSERT_SAMPLE ("herald_closes_total{code=\"1000\"}", "4");
  ASSERT_SAMPLE ("herald_closes_total{code=\"4001\"}", "0");
#undef ASSERT_SAMPLE

  /* One sample per counted close code. */
  for (guint i = 0; i < G_N_ELEMENTS (herald_close_codes); i++)
    {
      g_autofree char *key = NULL;

      if (herald_close_codes[i] == 0)
        continue;
      key = g_strdup_printf ("herald_closes_total{code=\"%u\"}", herald_close_codes[i]);
      g_assert_true (g_hash_table_contains (samples, key));
      n_codes++;
    }
  g_assert_cmpuint (n_codes, >, 0);

  /* Label values are escaped. */
  g_assert_nonnull (strstr (text, "engine=\"mem\\\"ory\\\\\",node=\"node\\n1\"} 1\n"));
  g_assert_nonnull (strstr (text, "# TYPE herald_deliveries_total counter\n"));
  g_assert_nonnull (strstr (text, "# TYPE herald_send_queue_bytes gauge\n"));
  g_assert_nonnull (strstr (text, "# TYPE herald_connections gauge\n"));
  g_assert_cmpstr (g_hash_table_lookup (samples, "herald_engine_up"), ==, "1");
  g_assert_cmpstr (g_hash_table_lookup (samples, "herald_engine_state{state=\"ok\"}"), ==, "1");

  /* A degraded engine (the Redis engine's state names the reason) */
  {
    g_autofree char *degraded
        = herald_metrics_render (&stats, "redis", "n", "degraded: connecting to Redis");
    g_autoptr (GHashTable) d = parse_metrics (degraded);

    g_assert_cmpstr (g_hash_table_lookup (d, "herald_engine_up"), ==, "0");
    g_assert_cmpstr (g_hash_table_lookup (d, "herald_engine_state{state=\"ok\"}"), ==, "0");
    g_assert_cmpstr (g_hash_table_lookup (d, "herald_engine_state{state=\"degraded\"}"), ==, "1");
  }
}

int
main (int argc, char **argv)
{
  /* The environment would override the configured key. */
  g_unsetenv ("HERALD_API_KEY");
  g_test_init (&argc, &argv, NULL);

#define ADD(path, config, func)                                                                    \
  g_test_add (path, Fixture, config, fixture_setup, func, fixture_teardown)
  ADD ("/http-api/disabled", "", test_disabled);
  ADD ("/http-api/auth", CONFIG_WITH_KEY, test_auth);
  ADD ("/http-api/publish", CONFIG_WITH_KEY, test_publish);
  ADD ("/http-api/publish-errors", CONFIG_WITH_KEY, test_publish_errors);
  ADD ("/http-api/oversize", CONFIG_WITH_KEY, test_oversize);
  ADD ("/http-api/oversize-early", CONFIG_WITH_KEY, test_oversize_early);
  ADD ("/http-api/broadcast", CONFIG_WITH_KEY, test_broadcast);
  ADD ("/http-api/user-send", CONFIG_WITH_KEY, test_user_send);
  ADD ("/http-api/connection-unknown", CONFIG_WITH_KEY, test_connection_unknown);
  ADD ("/http-api/queries", CONFIG_WITH_KEY, test_queries);
  ADD ("/http-api/method-not-allowed", CONFIG_WITH_KEY, test_method_not_allowed);
  ADD ("/http-api/unknown-path", CONFIG_WITH_KEY, test_unknown_path);
  ADD ("/http-api/cors", CONFIG_WITH_ORIGINS, test_cors);
  ADD ("/http-api/cors-unset", CONFIG_WITH_KEY, test_cors_unset);
  ADD ("/http-api/healthz", CONFIG_WITH_KEY, test_healthz);
  ADD ("/http-api/metrics", CONFIG_WITH_KEY, test_metrics);
  ADD ("/http-api/no-fd-leak", CONFIG_WITH_KEY, test_no_fd_leak);
#undef ADD
  g_test_add_func ("/http-api/metrics-render", test_metrics_render);

  return g_test_run ();
}
