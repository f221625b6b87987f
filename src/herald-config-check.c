/* herald-config-check.c: the checks that need the whole configuration
 * (file, environment and command line together): TLS files, the kind of
 * token key, what may listen beyond loopback without one. Every problem is
 * reported, not only the first.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "herald-config-internal.h"

#include <gio/gio.h>
#include <glib/gi18n.h>
#include <string.h>

typedef HeraldConfigSettings Settings;
typedef HeraldConfigProblems Problems;
typedef HeraldConfigParser Parser;

static void set_validate_error (HeraldConfig *self, GError **error, const char *format, ...)
    G_GNUC_PRINTF (3, 4);

static void
set_validate_error (HeraldConfig *self, GError **error, const char *format, ...)
{
  g_autofree char *message = NULL;
  va_list args;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);
  if (herald_config_get_path (self) != NULL)
    g_set_error (error, HERALD_CONFIG_ERROR, HERALD_CONFIG_ERROR_INVALID, "%s: %s",
                 herald_config_get_path (self), message);
  else
    g_set_error_literal (error, HERALD_CONFIG_ERROR, HERALD_CONFIG_ERROR_INVALID, message);
}

/* A file named by [server] tls-certificate or tls-key must be readable; the
 * message names the key, so a missing key file is not blamed on the certificate. */
static void
check_readable (HeraldConfig *self, Problems *problems, const char *key, const char *path,
                const char *where)
{
  g_autoptr (GError) local = NULL;
  g_autofree char *contents = NULL;

  if (g_file_get_contents (path, &contents, NULL, &local))
    return;
  /* "FILE:LINE: [server] tls-key: Failed to open file “…”: …" */
  if (where != NULL)
    g_set_error (herald_config_problems_slot (problems), HERALD_CONFIG_ERROR,
                 HERALD_CONFIG_ERROR_INVALID, "%s: [server] %s: %s", where, key, local->message);
  else
    set_validate_error (self, herald_config_problems_slot (problems), _ ("[server] %s: %s"), key,
                        local->message);
}

static void
check_tls_pair (HeraldConfig *self, Problems *problems)
{
  Settings *s = herald_config_get_settings (self);
  g_autoptr (GError) local = NULL;
  g_autoptr (GTlsCertificate) certificate = NULL;
  guint before = problems->list->len + (problems->scratch != NULL);

  check_readable (self, problems, "tls-certificate", s->tls_certificate, s->tls_certificate_where);
  check_readable (self, problems, "tls-key", s->tls_key, s->tls_key_where);
  if (problems->list->len + (problems->scratch != NULL) != before)
    return;
  certificate = g_tls_certificate_new_from_files (s->tls_certificate, s->tls_key, &local);
  if (certificate == NULL)
    set_validate_error (self, herald_config_problems_slot (problems),
                        _ ("[server] tls-certificate “%s” and tls-key “%s”: %s"),
                        s->tls_certificate, s->tls_key, local->message);
}

/* anonymous-publish when anonymous-only on loopback and the key is absent */
static const char *const demo_publish[] = { HERALD_DEMO_CHANNELS, NULL };

/**
 * herald_config_validate:
 * @self: a #HeraldConfig
 * @error: return location for a #GError
 *
 * Checks that need the whole picture, once after load and overrides:
 * https listeners need tls-certificate and tls-key, both readable and
 * matching; jwt-algorithm must match the kind of key; with no token key
 * configured and `anonymous` not set to true explicitly, non-loopback listen
 * addresses are refused. Every problem is named in @error, one per line.
 * Warnings about a valid configuration are left to
 * herald_config_log_warnings().
 *
 * Returns: %TRUE when the configuration can be used
 */

gboolean
herald_config_validate (HeraldConfig *self, GError **error)
{
  Settings *s;
  GPtrArray *listen;
  gboolean any_tls = FALSE;
  gboolean all_loopback = TRUE;
  Problems problems;
  gboolean ok;

  g_return_val_if_fail (HERALD_IS_CONFIG (self), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  s = herald_config_get_settings (self);
  listen = herald_config_get_listen (self);
  herald_config_problems_init (&problems);

  for (guint i = 0; i < listen->len; i++)
    any_tls |= ((HeraldListenAddress *)listen->pdata[i])->tls;
  if ((s->tls_certificate == NULL) != (s->tls_key == NULL))
    set_validate_error (self, herald_config_problems_slot (&problems),
                        _ ("[server] tls-certificate and tls-key must be set together"));
  else if (s->tls_certificate != NULL)
    check_tls_pair (self, &problems);
  if (any_tls && s->tls_certificate == NULL)
    set_validate_error (self, herald_config_problems_slot (&problems),
                        _ ("[server] listen: https:// addresses need [server] tls-certificate "
                           "and tls-key"));

  if (s->jwt_public_key_file != NULL && s->jwt_algorithm == HERALD_JWT_ALG_HS256)
    set_validate_error (self, herald_config_problems_slot (&problems),
                        _ ("[auth] jwt-algorithm: jwt-public-key-file needs RS256, ES256 or "
                           "EdDSA (HS256 uses a shared secret)"));
  if (s->jwt_public_key_file == NULL && s->jwt_algorithm != HERALD_JWT_ALG_HS256
      && s->jwt_secret != NULL)
    set_validate_error (self, herald_config_problems_slot (&problems),
                        _ ("[auth] jwt-algorithm: %s needs jwt-public-key-file; a shared secret "
                           "(jwt-secret, jwt-secret-file or HERALD_JWT_SECRET) only works with "
                           "HS256"),
                        s->jwt_algorithm == HERALD_JWT_ALG_RS256   ? "RS256"
                        : s->jwt_algorithm == HERALD_JWT_ALG_ES256 ? "ES256"
                                                                   : "EdDSA");

  if (s->jwks_url != NULL)
    {
      /* One source of keys: a token would otherwise have two ways to be
       * checked and the operator one more thing to get wrong. */
      if (s->jwt_public_key_file != NULL)
        set_validate_error (self, herald_config_problems_slot (&problems),
                            _ ("[auth] jwks-url: set either jwks-url or jwt-public-key-file, "
                               "not both"));
      if (s->jwt_secret != NULL)
        set_validate_error (self, herald_config_problems_slot (&problems),
                            _ ("[auth] jwks-url: cannot be used with a shared secret (jwt-secret, "
                               "jwt-secret-file or HERALD_JWT_SECRET): the key set's keys are "
                               "public keys"));
      if (s->jwt_algorithm_set && s->jwt_algorithm == HERALD_JWT_ALG_HS256)
        set_validate_error (self, herald_config_problems_slot (&problems),
                            _ ("[auth] jwt-algorithm: HS256 cannot be used with jwks-url; set "
                               "RS256, ES256 or EdDSA, or leave it unset to accept each key's "
                               "own algorithm"));
    }

  /* A connect hook authenticates the tokenless connections: not anonymous-only */
  if (!herald_config_has_token_key (self) && s->proxy_urls[HERALD_HOOK_CONNECT] == NULL)
    {
      if (s->anonymous_set && !s->anonymous)
        set_validate_error (self, herald_config_problems_slot (&problems),
                            _ ("[auth] anonymous: is false but no token key is configured, so "
                               "no client could connect: set jwt-secret, jwt-secret-file, "
                               "HERALD_JWT_SECRET, jwt-public-key-file or jwks-url"));
      if (!s->anonymous_set)
        for (guint i = 0; i < listen->len; i++)
          {
            const HeraldListenAddress *address = listen->pdata[i];

            if (!herald_listen_address_is_loopback (address))
              {
                g_autofree char *text = herald_listen_address_to_string (address);

                set_validate_error (self, herald_config_problems_slot (&problems),
                                    _ ("refusing to listen on %s without authentication: set "
                                       "[auth] jwt-secret (or jwt-secret-file, HERALD_JWT_SECRET, "
                                       "jwt-public-key-file, jwks-url), or anonymous=true to allow "
                                       "anonymous clients from the network"),
                                    text);
                all_loopback = FALSE;
              }
          }
      /* Anonymous-only on loopback with neither key written: the demo
       * page's channels are writable, so its Publish works. */
      if (!s->anonymous_set && !s->anonymous_publish_set && all_loopback)
        {
          g_strfreev (s->anonymous_publish);
          s->anonymous_publish = g_strdupv ((char **)demo_publish);
        }
    }
  ok = herald_config_problems_take (&problems, error);
  herald_config_problems_clear (&problems);
  return ok;
}

/**
 * herald_config_log_warnings:
 * @self: a validated #HeraldConfig
 *
 * Logs what is worth a warning about a valid configuration (no token key:
 * anonymous-only). Called once the daemon really starts, so it never
 * precedes a fatal error.
 */
void
herald_config_log_warnings (HeraldConfig *self)
{
  g_return_if_fail (HERALD_IS_CONFIG (self));

  if (!herald_config_has_token_key (self)
      && herald_config_get_proxy_url (self, HERALD_HOOK_CONNECT) == NULL)
    g_warning (_ ("No token key configured ([auth] jwt-secret, jwt-secret-file, "
                  "jwt-public-key-file, jwks-url or HERALD_JWT_SECRET): running anonymous-only"));
}
