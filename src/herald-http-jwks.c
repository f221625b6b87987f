/* herald-http-jwks.c: the JWKS client ([auth] jwks-url).
 *
 * Everything here runs in the main context: one fetch at a time, over
 * libsoup's asynchronous client, read in chunks up to 1 MiB. The workers
 * only ever see whole key sets, swapped into the verifier; a token with an
 * unknown kid, verified in a worker, reaches this object through a small
 * thread-safe "wake" record posted to the main context.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "herald-http-jwks.h"
#include "herald-jwt-keys.h"
#include "herald-metrics.h"

#include <glib/gi18n.h>
#include <libsoup/soup.h>

#define READ_CHUNK 65536

/* Shared with the verifier (any thread): posts unknown kids to the main context. */
typedef struct
{
  gatomicrefcount ref;
  GMainContext *context;
  gint posted;           /* atomic: a wake-up is on its way */
  HeraldHttpJwks *owner; /* main context only; NULL once stopped */
} Wake;

struct _HeraldHttpJwks
{
  GObject parent_instance;

  char *url;
  char *shown_url; /* for logs: without a password */
  guint refresh_seconds;
  HeraldJwtVerifier *verifier;
  GMainContext *context;
  SoupSession *session;
  Wake *wake;

  GSource *refresh_source;
  GSource *retry_source; /* an unknown kid's fetch, waiting for the 10 s */
  gint64 last_start;     /* monotonic µs of the last fetch's start; 0 = never */

  /* The fetch under way */
  GCancellable *cancellable; /* non-NULL while fetching */
  SoupMessage *msg;
  GInputStream *body_stream;
  GByteArray *body;

  char *last_error;   /* what the previous fetch failed with, or NULL */
  char *last_skipped; /* the previous set's left-out keys, for logging changes only */
  char *last_ids;     /* the key ids in use, joined */
};

G_DEFINE_FINAL_TYPE (HeraldHttpJwks, herald_http_jwks, G_TYPE_OBJECT)

static void fetch (HeraldHttpJwks *self);

/* ---- the wake record ---- */

static Wake *
wake_ref (Wake *wake)
{
  g_atomic_ref_count_inc (&wake->ref);
  return wake;
}

static void
wake_unref (gpointer data)
{
  Wake *wake = data;

  if (g_atomic_ref_count_dec (&wake->ref))
    {
      g_main_context_unref (wake->context);
      g_free (wake);
    }
}

static gboolean
retry_due (gpointer data)
{
  HeraldHttpJwks *self = data;

  g_clear_pointer (&self->retry_source, g_source_unref);
  if (self->cancellable == NULL)
    fetch (self);
  return G_SOURCE_REMOVE;
}

/* A token named a kid the set does not have: fetch again, at most once per
 * 10 s counting every fetch (a later one waits for the 10 s). */
static void
kid_missed (HeraldHttpJwks *self)
{
  gint64 now = g_get_monotonic_time ();
  gint64 next = self->last_start + HERALD_HTTP_JWKS_MIN_INTERVAL_SECONDS * G_USEC_PER_SEC;

  if (self->cancellable != NULL || self->retry_source != NULL)
    return; /* a fetch is under way or already waiting */
  if (self->last_start == 0 || now >= next)
    {
      g_debug ("JWKS %s: a token names an unknown kid: fetching the key set", self->shown_url);
      fetch (self);
      return;
    }
  g_debug ("JWKS %s: a token names an unknown kid: fetching the key set in %" G_GINT64_FORMAT " ms",
           self->shown_url, (next - now) / 1000);
  self->retry_source = g_timeout_source_new ((guint)((next - now + 999) / 1000));
  g_source_set_callback (self->retry_source, retry_due, self, NULL);
  g_source_attach (self->retry_source, self->context);
}

static gboolean
wake_dispatch (gpointer data)
{
  Wake *wake = data;

  g_atomic_int_set (&wake->posted, 0);
  if (wake->owner != NULL)
    kid_missed (wake->owner);
  return G_SOURCE_REMOVE;
}

/* HeraldJwtUnknownKeyFunc: any thread. One wake-up at a time is posted,
 * however many tokens with unknown kids arrive meanwhile. */
static void
on_unknown_kid (const char *kid, gpointer data)
{
  Wake *wake = data;

  if (g_atomic_int_compare_and_exchange (&wake->posted, 0, 1))
    g_main_context_invoke_full (wake->context, G_PRIORITY_DEFAULT, wake_dispatch, wake_ref (wake),
                                wake_unref);
}

/* ---- fetching ---- */

static void
fetch_cleanup (HeraldHttpJwks *self)
{
  g_clear_object (&self->cancellable);
  g_clear_object (&self->msg);
  g_clear_object (&self->body_stream);
  g_clear_pointer (&self->body, g_byte_array_unref);
}

static void
fetch_failed (HeraldHttpJwks *self, const char *reason)
{
  g_autoptr (HeraldJwtKeys) keys = herald_jwt_verifier_dup_keys (self->verifier);
  guint n = herald_jwt_keys_get_n_keys (keys);

  /* Said once per change: a dead endpoint does not fill the log. */
  if (g_strcmp0 (self->last_error, reason) != 0)
    {
      if (n > 0)
        g_warning (_ ("JWKS %s: %s; keeping the last good key set (%u key(s))"), self->shown_url,
                   reason, n);
      else
        g_warning (_ ("JWKS %s: %s; no key set yet, so every token is refused"), self->shown_url,
                   reason);
    }
  else
    g_debug ("JWKS %s: %s (again)", self->shown_url, reason);
  g_free (self->last_error);
  self->last_error = g_strdup (reason);
  herald_metrics_count_jwks_fetch (FALSE, n);
}

static void
fetch_done (HeraldHttpJwks *self)
{
  g_autoptr (GPtrArray) skipped = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (HeraldJwtKeys) keys = NULL;
  g_autofree char *skipped_text = NULL;
  g_autofree char *ids_text = NULL;
  g_auto (GStrv) ids = NULL;

  keys = herald_jwt_keys_new_from_data ((const char *)self->body->data, self->body->len, &skipped,
                                        &error);
  if (skipped != NULL)
    {
      g_ptr_array_add (skipped, NULL);
      skipped_text = g_strjoinv ("; ", (char **)skipped->pdata);
    }
  if (g_strcmp0 (skipped_text, self->last_skipped) != 0 && skipped_text != NULL)
    g_warning (_ ("JWKS %s: left out: %s"), self->shown_url, skipped_text);
  g_free (self->last_skipped);
  self->last_skipped = g_steal_pointer (&skipped_text);
  if (keys == NULL)
    {
      fetch_failed (self, error->message);
      return;
    }

  herald_jwt_verifier_set_keys (self->verifier, keys);
  ids = herald_jwt_keys_dup_ids (keys);
  ids_text = g_strjoinv (", ", ids);
  if (g_strcmp0 (ids_text, self->last_ids) != 0 || self->last_error != NULL)
    g_message (_ ("JWKS %s: %u key(s) in use (kid %s)"), self->shown_url,
               herald_jwt_keys_get_n_keys (keys), ids_text);
  else
    g_debug ("JWKS %s: unchanged", self->shown_url);
  g_free (self->last_ids);
  self->last_ids = g_steal_pointer (&ids_text);
  g_clear_pointer (&self->last_error, g_free);
  herald_metrics_count_jwks_fetch (TRUE, herald_jwt_keys_get_n_keys (keys));
}

static void
on_closed (GObject *source, GAsyncResult *result, gpointer data)
{
  g_input_stream_close_finish (G_INPUT_STREAM (source), result, NULL);
}

/* Ends the fetch under way; @reason NULL means the body is complete. */
static void
fetch_end (HeraldHttpJwks *self, const char *reason)
{
  if (self->body_stream != NULL && !g_input_stream_is_closed (self->body_stream))
    /* Not read to its end: closed without waiting (no blocking close in the main loop) */
    g_input_stream_close_async (self->body_stream, G_PRIORITY_DEFAULT, NULL, on_closed, NULL);
  if (reason != NULL)
    fetch_failed (self, reason);
  else
    fetch_done (self);
  fetch_cleanup (self);
}

static void on_read (GObject *source, GAsyncResult *result, gpointer data);

static void
read_more (HeraldHttpJwks *self)
{
  g_input_stream_read_bytes_async (self->body_stream, READ_CHUNK, G_PRIORITY_DEFAULT,
                                   self->cancellable, on_read, g_object_ref (self));
}

static void
on_read (GObject *source, GAsyncResult *result, gpointer data)
{
  g_autoptr (HeraldHttpJwks) self = data;
  g_autoptr (GError) error = NULL;
  g_autoptr (GBytes) chunk
      = g_input_stream_read_bytes_finish (G_INPUT_STREAM (source), result, &error);

  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED) || self->body_stream == NULL)
    return;
  if (chunk == NULL)
    {
      g_autofree char *reason
          = g_strdup_printf (_ ("reading the answer failed: %s"), error->message);

      fetch_end (self, reason);
      return;
    }
  if (g_bytes_get_size (chunk) == 0)
    {
      fetch_end (self, NULL);
      return;
    }
  if (self->body->len + g_bytes_get_size (chunk) > HERALD_JWT_KEYS_MAX_DOCUMENT)
    {
      g_autofree char *reason = g_strdup_printf (_ ("the answer is larger than %d bytes"),
                                                 HERALD_JWT_KEYS_MAX_DOCUMENT);

      fetch_end (self, reason);
      return;
    }
  g_byte_array_append (self->body, g_bytes_get_data (chunk, NULL), g_bytes_get_size (chunk));
  read_more (self);
}

static void
on_sent (GObject *source, GAsyncResult *result, gpointer data)
{
  g_autoptr (HeraldHttpJwks) self = data;
  g_autoptr (GError) error = NULL;
  g_autoptr (GInputStream) stream
      = soup_session_send_finish (SOUP_SESSION (source), result, &error);
  guint status;
  goffset length;

  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED) || self->msg == NULL)
    return;
  if (stream == NULL)
    {
      g_autofree char *reason = g_strdup_printf (_ ("the request failed: %s"), error->message);

      fetch_end (self, reason);
      return;
    }
  self->body_stream = g_steal_pointer (&stream);
  status = soup_message_get_status (self->msg);
  if (status != SOUP_STATUS_OK)
    {
      g_autofree char *reason = g_strdup_printf (_ ("answered HTTP %u instead of 200"), status);

      fetch_end (self, reason);
      return;
    }
  length = soup_message_headers_get_content_length (soup_message_get_response_headers (self->msg));
  if (length > HERALD_JWT_KEYS_MAX_DOCUMENT)
    {
      g_autofree char *reason = g_strdup_printf (_ ("the answer is larger than %d bytes"),
                                                 HERALD_JWT_KEYS_MAX_DOCUMENT);

      fetch_end (self, reason);
      return;
    }
  self->body = g_byte_array_new ();
  read_more (self);
}

static void
fetch (HeraldHttpJwks *self)
{
  if (self->cancellable != NULL)
    return;
  if (self->retry_source != NULL)
    {
      g_source_destroy (self->retry_source);
      g_clear_pointer (&self->retry_source, g_source_unref);
    }
  self->last_start = g_get_monotonic_time ();
  self->cancellable = g_cancellable_new ();
  self->msg = soup_message_new (SOUP_METHOD_GET, self->url);
  soup_message_headers_replace (soup_message_get_request_headers (self->msg), "Accept",
                                "application/jwk-set+json, application/json");
  g_debug ("JWKS %s: fetching", self->shown_url);
  soup_session_send_async (self->session, self->msg, G_PRIORITY_DEFAULT, self->cancellable, on_sent,
                           g_object_ref (self));
}

static gboolean
refresh_due (gpointer data)
{
  fetch (data);
  return G_SOURCE_CONTINUE;
}

/* ---- GObject ---- */

static void
herald_http_jwks_dispose (GObject *object)
{
  herald_http_jwks_stop (HERALD_HTTP_JWKS (object));
  G_OBJECT_CLASS (herald_http_jwks_parent_class)->dispose (object);
}

static void
herald_http_jwks_finalize (GObject *object)
{
  HeraldHttpJwks *self = HERALD_HTTP_JWKS (object);

  g_free (self->url);
  g_free (self->shown_url);
  g_clear_object (&self->verifier);
  g_clear_object (&self->session);
  g_main_context_unref (self->context);
  wake_unref (self->wake);
  g_free (self->last_error);
  g_free (self->last_skipped);
  g_free (self->last_ids);
  G_OBJECT_CLASS (herald_http_jwks_parent_class)->finalize (object);
}

static void
herald_http_jwks_class_init (HeraldHttpJwksClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = herald_http_jwks_dispose;
  object_class->finalize = herald_http_jwks_finalize;
}

static void
herald_http_jwks_init (HeraldHttpJwks *self)
{
}

/**
 * herald_http_jwks_new:
 * @url: the JWK Set's http:// or https:// URL
 * @refresh_seconds: seconds between two fetches (at least 1)
 * @verifier: a verifier made by herald_jwt_verifier_new_key_set(), not yet
 *   used by other threads
 *
 * Returns: (transfer full): a client working in the thread-default main
 *   context; nothing is fetched before herald_http_jwks_start()
 */
HeraldHttpJwks *
herald_http_jwks_new (const char *url, guint refresh_seconds, HeraldJwtVerifier *verifier)
{
  HeraldHttpJwks *self;
  g_autoptr (GUri) uri = NULL;

  g_return_val_if_fail (url != NULL, NULL);
  g_return_val_if_fail (refresh_seconds > 0, NULL);
  g_return_val_if_fail (HERALD_IS_JWT_VERIFIER (verifier), NULL);
  g_return_val_if_fail (herald_jwt_verifier_uses_key_set (verifier), NULL);

  self = g_object_new (HERALD_TYPE_HTTP_JWKS, NULL);
  self->url = g_strdup (url);
  uri = g_uri_parse (url, G_URI_FLAGS_HAS_PASSWORD, NULL);
  self->shown_url
      = uri != NULL ? g_uri_to_string_partial (uri, G_URI_HIDE_PASSWORD) : g_strdup (url);
  self->refresh_seconds = refresh_seconds;
  self->verifier = g_object_ref (verifier);
  self->context = g_main_context_ref_thread_default ();
  self->session = soup_session_new_with_options ("timeout", HERALD_HTTP_JWKS_TIMEOUT_SECONDS,
                                                 "user-agent", "herald/" PACKAGE_VERSION, NULL);
  self->wake = g_new0 (Wake, 1);
  g_atomic_ref_count_init (&self->wake->ref);
  self->wake->context = g_main_context_ref (self->context);
  self->wake->owner = self;
  herald_jwt_verifier_set_unknown_key_func (verifier, on_unknown_kid, wake_ref (self->wake),
                                            wake_unref);
  return self;
}

/**
 * herald_http_jwks_start:
 * @self: a #HeraldHttpJwks
 *
 * Fetches the key set now (without waiting for it: until it arrives every
 * token is refused as having an unknown kid) and every refresh interval.
 */
void
herald_http_jwks_start (HeraldHttpJwks *self)
{
  g_return_if_fail (HERALD_IS_HTTP_JWKS (self));
  g_return_if_fail (self->refresh_source == NULL);

  fetch (self);
  self->refresh_source = g_timeout_source_new_seconds (self->refresh_seconds);
  g_source_set_callback (self->refresh_source, refresh_due, self, NULL);
  g_source_attach (self->refresh_source, self->context);
}

/**
 * herald_http_jwks_stop:
 * @self: a #HeraldHttpJwks
 *
 * Cancels the fetch under way and the timers; tokens with unknown kids no
 * longer fetch. The key set in the verifier stays.
 */
void
herald_http_jwks_stop (HeraldHttpJwks *self)
{
  g_return_if_fail (HERALD_IS_HTTP_JWKS (self));

  self->wake->owner = NULL;
  if (self->cancellable != NULL)
    g_cancellable_cancel (self->cancellable);
  if (self->body_stream != NULL && !g_input_stream_is_closed (self->body_stream))
    g_input_stream_close_async (self->body_stream, G_PRIORITY_DEFAULT, NULL, on_closed, NULL);
  fetch_cleanup (self);
  if (self->refresh_source != NULL)
    {
      g_source_destroy (self->refresh_source);
      g_clear_pointer (&self->refresh_source, g_source_unref);
    }
  if (self->retry_source != NULL)
    {
      g_source_destroy (self->retry_source);
      g_clear_pointer (&self->retry_source, g_source_unref);
    }
}
