/* herald-listen-address.c: "HOST:PORT", "http://HOST:PORT", "https://HOST:PORT".
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>
#include <gio/gio.h>
#include <glib/gi18n.h>

#include "herald-config-error.h"
#include "herald-listen-address.h"

/**
 * herald_listen_address_free:
 * @address: (nullable): an address
 *
 * Frees @address.
 */
void
herald_listen_address_free (HeraldListenAddress *address)
{
  if (address == NULL)
    return;
  g_free (address->host);
  g_free (address);
}

static gboolean
is_hostname (const char *host)
{
  gsize len = strlen (host);

  if (len == 0 || len > 253 || host[0] == '-' || host[0] == '.')
    return FALSE;
  for (const char *p = host; *p; p++)
    if (!g_ascii_isalnum (*p) && *p != '-' && *p != '.')
      return FALSE;
  return TRUE;
}

static void
set_address_error (GError **error, const char *what, const char *text, const char *reason)
{
  if (what != NULL)
    g_set_error (error, HERALD_CONFIG_ERROR, HERALD_CONFIG_ERROR_INVALID, "%s: “%s”: %s", what,
                 text, reason);
  else
    g_set_error (error, HERALD_CONFIG_ERROR, HERALD_CONFIG_ERROR_INVALID, "“%s”: %s", text, reason);
}

/**
 * herald_listen_address_parse:
 * @text: "HOST:PORT", "http://HOST:PORT" or "https://HOST:PORT"; IPv6 hosts in brackets
 * @what: (nullable): where @text came from, prefixed to error messages
 *   (e.g. "--listen" or "FILE: [server] listen")
 * @error: return location for a #GError
 *
 * Parses one listen address. The port is required and may be 0 (pick a free
 * port). The host is an IPv4 address, a bracketed IPv6 address or a host name.
 *
 * Returns: (transfer full): the address, or %NULL with @error set
 *   (%HERALD_CONFIG_ERROR_INVALID).
 */
HeraldListenAddress *
herald_listen_address_parse (const char *text, const char *what, GError **error)
{
  g_autoptr (HeraldListenAddress) address = NULL;
  g_autofree char *host = NULL;
  const char *rest = text;
  const char *port_text;
  guint64 port;
  gboolean tls = FALSE;

  g_return_val_if_fail (text != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (g_ascii_strncasecmp (rest, "https://", 8) == 0)
    {
      tls = TRUE;
      rest += 8;
    }
  else if (g_ascii_strncasecmp (rest, "http://", 7) == 0)
    rest += 7;
  else if (strstr (rest, "://") != NULL)
    {
      set_address_error (error, what, text,
                         _ ("only http:// and https:// addresses are supported"));
      return NULL;
    }

  if (*rest == '[')
    {
      const char *close = strchr (rest, ']');
      g_autoptr (GInetAddress) inet = NULL;

      if (close == NULL)
        {
          set_address_error (error, what, text, _ ("missing “]” after IPv6 address"));
          return NULL;
        }
      host = g_strndup (rest + 1, close - rest - 1);
      inet = g_inet_address_new_from_string (host);
      if (inet == NULL || g_inet_address_get_family (inet) != G_SOCKET_FAMILY_IPV6)
        {
          set_address_error (error, what, text, _ ("not a valid IPv6 address in brackets"));
          return NULL;
        }
      if (close[1] != ':')
        {
          set_address_error (error, what, text, _ ("missing port (expected [IPV6]:PORT)"));
          return NULL;
        }
      port_text = close + 2;
    }
  else
    {
      const char *colon = strrchr (rest, ':');

      if (colon == NULL)
        {
          set_address_error (error, what, text, _ ("missing port (expected HOST:PORT)"));
          return NULL;
        }
      host = g_strndup (rest, colon - rest);
      if (*host == '\0')
        {
          set_address_error (error, what, text,
                             _ ("missing host (use 0.0.0.0 or [::] for all interfaces)"));
          return NULL;
        }
      if (strchr (host, ':') != NULL)
        {
          set_address_error (error, what, text,
                             _ ("IPv6 addresses must be written in brackets, e.g. [::1]:8080"));
          return NULL;
        }
      if (!is_hostname (host))
        {
          set_address_error (error, what, text, _ ("not a valid host name or IP address"));
          return NULL;
        }
      port_text = colon + 1;
    }

  if (*port_text == '\0')
    {
      set_address_error (error, what, text, _ ("missing port (expected HOST:PORT)"));
      return NULL;
    }
  if (!g_ascii_string_to_unsigned (port_text, 10, 0, G_MAXUINT16, &port, NULL))
    {
      set_address_error (error, what, text, _ ("the port must be a number between 0 and 65535"));
      return NULL;
    }

  address = g_new0 (HeraldListenAddress, 1);
  address->host = g_steal_pointer (&host);
  address->port = (guint16)port;
  address->tls = tls;
  return g_steal_pointer (&address);
}

/**
 * herald_listen_address_is_loopback:
 * @address: an address
 *
 * Whether @address only accepts connections from this machine: 127.0.0.0/8,
 * ::1 or the name "localhost". Other host names are not resolved and count
 * as non-loopback.
 *
 * Returns: %TRUE for a loopback address
 */
gboolean
herald_listen_address_is_loopback (const HeraldListenAddress *address)
{
  g_autoptr (GInetAddress) inet = NULL;

  g_return_val_if_fail (address != NULL, FALSE);

  if (g_ascii_strcasecmp (address->host, "localhost") == 0
      || g_ascii_strcasecmp (address->host, "localhost.") == 0)
    return TRUE;
  inet = g_inet_address_new_from_string (address->host);
  return inet != NULL && g_inet_address_get_is_loopback (inet);
}

char *
herald_listen_address_to_string (const HeraldListenAddress *address)
{
  gboolean v6 = strchr (address->host, ':') != NULL;

  return g_strdup_printf ("%s%s%s%s:%u", address->tls ? "https://" : "", v6 ? "[" : "",
                          address->host, v6 ? "]" : "", address->port);
}
