/* herald-config-schema.c: what the configuration tools know about the keys
 * besides parsing them: a one-line description of each (for --print-config),
 * the closest known name to a misspelt one, and the line a key is on.
 *
 * The list of keys itself stays with the parser (herald-config.c); a key
 * added there without a description here is printed as "(no description)"
 * and caught by the test that checks every key has one.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "herald-config-private.h"

#include <glib/gi18n.h>
#include <string.h>

static const struct
{
  const char *group;
  const char *key;
  const char *text;
} descriptions[] = {
  { "server", "listen",
    N_ ("Addresses to listen on: HOST:PORT or https://HOST:PORT, ;-separated") },
  { "server", "tls-certificate", N_ ("PEM certificate (chain) for https:// listeners") },
  { "server", "tls-key", N_ ("PEM private key of tls-certificate") },
  { "server", "allowed-origins", N_ ("Origin values browsers may connect from (unset = any)") },
  { "server", "compression", N_ ("Offer permessage-deflate to WebSocket clients") },
  { "server", "workers", N_ ("Worker threads (0 = one per core)") },
  { "server", "io-uring",
    N_ ("Write to many client sockets per system call with io_uring, when the kernel allows") },
  { "server", "drain-seconds",
    N_ ("Seconds over which SIGTERM spreads reconnect hints and closes (0 = at once)") },
  { "server", "metrics",
    N_ ("Serve /metrics (unset: only when every listen address is loopback)") },
  { "server", "admin-page",
    N_ ("Serve the admin page /admin.html (unset: only when every listen address is loopback)") },
  { "limits", "max-connections", N_ ("Maximum number of client connections") },
  { "limits", "max-message-size", N_ ("Largest accepted message in bytes") },
  { "limits", "heartbeat-interval", N_ ("Seconds between server pings") },
  { "limits", "connection-timeout", N_ ("Seconds of client silence before closing") },
  { "limits", "send-queue-max-bytes", N_ ("Bytes queued for a client before it is dropped") },
  { "limits", "max-connections-per-ip", N_ ("Connections allowed per client address (0 = off)") },
  { "limits", "messages-per-second", N_ ("Messages a client may send per second (0 = off)") },
  { "limits", "handshake-timeout", N_ ("Seconds a client has to send a complete HTTP request") },
  { "auth", "jwt-secret", N_ ("HS256 shared secret for client tokens") },
  { "auth", "jwt-secret-file", N_ ("File holding the HS256 shared secret") },
  { "auth", "jwt-public-key-file", N_ ("PEM public key for RS256, ES256 or EdDSA tokens") },
  { "auth", "jwt-algorithm", N_ ("Token algorithm: HS256, RS256, ES256 or EdDSA") },
  { "auth", "leeway", N_ ("Seconds of clock skew tolerated on exp, nbf and iat") },
  { "auth", "anonymous", N_ ("Accept clients without a token (unset = only with no token key)") },
  { "auth", "anonymous-channels", N_ ("Channels anonymous clients may subscribe to") },
  { "auth", "anonymous-publish", N_ ("Channels anonymous clients may publish to") },
  { "auth", "issuer", N_ ("The \"iss\" every token must carry (unset = not checked)") },
  { "auth", "audience", N_ ("A value every token's \"aud\" must contain (unset = not checked)") },
  { "auth", "jwks-url", N_ ("JWK Set URL token keys are fetched from (RSA, EC P-256, Ed25519)") },
  { "auth", "jwks-refresh", N_ ("Seconds between two fetches of jwks-url") },
  { "api", "key", N_ ("Key for the HTTP API (unset = API disabled)") },
  { "api", "key-file", N_ ("File holding the HTTP API key") },
  { "history", "size", N_ ("Messages kept per channel for recovery (0 = none)") },
  { "history", "ttl", N_ ("Seconds a message stays in history (0 = until evicted)") },
  { "namespace.", "history-size", N_ ("Messages kept per channel of the namespace (0 = none)") },
  { "namespace.", "history-ttl", N_ ("Seconds a message stays in history (0 = until evicted)") },
  { "namespace.", "presence", N_ ("Answer presence and presence_stats (false = forbidden)") },
  { "namespace.", "join-leave", N_ ("Tell subscribers when a connection joins or leaves") },
  { "namespace.", "publish", N_ ("Client publishing: claims, none or all") },
  { "namespace.", "subscribe", N_ ("Subscribing: claims, token or proxy") },
  { "namespace.", "publish-proxy", N_ ("Ask the backend about each client publish") },
  { "namespace.", "conflate", N_ ("Replace queued messages of a slow reader by key") },
  { "redis", "url", N_ ("redis://, rediss:// or unix:// URL of Redis (unset = one node)") },
  { "redis", "shards", N_ ("redis:// URLs of independent Redis servers sharing the channels") },
  { "redis", "sentinels", N_ ("HOST:PORT of the Redis Sentinels that know the master") },
  { "redis", "sentinel-master", N_ ("Name of the master the sentinels watch") },
  { "redis", "cluster", N_ ("HOST:PORT seeds of a Redis Cluster") },
  { "redis", "password", N_ ("Password for every Redis server whose URL carries none") },
  { "proxy", "connect-url", N_ ("Backend URL asked about connections without a token") },
  { "proxy", "refresh-url", N_ ("Backend URL asked when a backend-given expire_at passes") },
  { "proxy", "subscribe-url",
    N_ ("Backend URL asked about subscribes in subscribe=proxy namespaces") },
  { "proxy", "publish-url",
    N_ ("Backend URL asked about client publishes with publish-proxy=true") },
  { "proxy", "rpc-url", N_ ("Backend URL answering the clients' rpc frames") },
  { "proxy", "timeout", N_ ("Seconds a backend has to answer (fractions allowed)") },
  { "proxy", "forward-headers", N_ ("Request headers sent to the connect hook") },
  { "proxy", "max-in-flight", N_ ("Backend requests one worker may have pending") },
};

/**
 * herald_config_describe_key:
 * @group: a group name
 * @key: a key of @group
 *
 * Returns: a one-line, translated description; "(no description)" when none
 */
const char *
herald_config_describe_key (const char *group, const char *key)
{
  /* Every [namespace.NAME] group has the keys of "namespace." */
  if (g_str_has_prefix (group, "namespace."))
    group = "namespace.";
  for (gsize i = 0; i < G_N_ELEMENTS (descriptions); i++)
    if (strcmp (descriptions[i].group, group) == 0 && strcmp (descriptions[i].key, key) == 0)
      return _ (descriptions[i].text);
  return _ ("(no description)");
}

/* Levenshtein distance, case-insensitive; names are short (< 64 bytes) */
static guint
distance (const char *a, const char *b)
{
  gsize la = strlen (a), lb = strlen (b);
  guint row[65];

  if (la > 64 || lb > 64)
    return G_MAXUINT;
  for (gsize j = 0; j <= lb; j++)
    row[j] = (guint)j;
  for (gsize i = 1; i <= la; i++)
    {
      guint diagonal = row[0];

      row[0] = (guint)i;
      for (gsize j = 1; j <= lb; j++)
        {
          guint above = row[j];
          guint cost = g_ascii_tolower (a[i - 1]) == g_ascii_tolower (b[j - 1]) ? 0 : 1;

          row[j] = MIN (MIN (row[j] + 1, row[j - 1] + 1), diagonal + cost);
          diagonal = above;
        }
    }
  return row[lb];
}

/* The closest of @names to @name, if at most a third of its letters (and at
 * least one) need changing */
static const char *
closest (const char *name, const char *const *names, guint n_names)
{
  const char *best = NULL;
  guint best_distance = MAX (1, (guint)strlen (name) / 3) + 1;

  for (guint i = 0; i < n_names; i++)
    {
      guint d = distance (name, names[i]);

      if (d < best_distance)
        {
          best = names[i];
          best_distance = d;
        }
    }
  return best;
}

/**
 * herald_config_suggest_group:
 * @group: an unknown group name
 *
 * Returns: (nullable): the known group closest to @group, or %NULL
 */
const char *
herald_config_suggest_group (const char *group)
{
  const char *names[16];
  guint n = 0;

  for (const char *g; n < G_N_ELEMENTS (names) && (g = herald_config_known_group (n)) != NULL;)
    names[n++] = g;
  return closest (group, names, n);
}

/**
 * herald_config_suggest_key:
 * @group: a known group
 * @key: an unknown key of @group
 *
 * Returns: (nullable): the key of @group closest to @key; failing that,
 *   "[other] key" when @key belongs to another group; or %NULL
 */
const char *
herald_config_suggest_key (const char *group, const char *key)
{
  const char *const *keys = herald_config_known_keys (group);
  const char *best;

  if (keys == NULL)
    return NULL;
  best = closest (key, keys, g_strv_length ((char **)keys));
  if (best != NULL)
    return best;
  /* Right key, wrong group: "[auth] key" for the API key and the like */
  for (guint i = 0; herald_config_known_group (i) != NULL; i++)
    {
      const char *other = herald_config_known_group (i);
      const char *const *other_keys = herald_config_known_keys (other);

      if (strcmp (other, group) != 0 && g_strv_contains (other_keys, key))
        {
          g_autofree char *hint = g_strdup_printf ("[%s] %s", other, key);

          return g_intern_string (hint);
        }
    }
  return NULL;
}

/**
 * herald_config_find_line:
 * @data: (nullable): key file text
 * @length: its length
 * @group: the group
 * @key: (nullable): a key of @group, or %NULL for the group header
 *
 * Returns: the 1-based line of the group header or of the first "key=" line
 *   of @group, 0 when not found (or @data is %NULL)
 */
guint
herald_config_find_line (const char *data, gsize length, const char *group, const char *key)
{
  g_autofree char *current = NULL;
  gsize pos = 0;
  guint line = 0;

  if (data == NULL)
    return 0;
  while (pos < length)
    {
      const char *start = data + pos;
      const char *nl = memchr (start, '\n', length - pos);
      gsize len = nl != NULL ? (gsize)(nl - start) : length - pos;
      g_autofree char *text = g_strstrip (g_strndup (start, len));

      line++;
      pos += len + 1;
      if (text[0] == '[')
        {
          char *close = strrchr (text, ']');

          g_free (current);
          current = g_strndup (text + 1, close != NULL ? (gsize)(close - text - 1) : 0);
          if (key == NULL && strcmp (current, group) == 0)
            return line;
        }
      else if (key != NULL && current != NULL && strcmp (current, group) == 0 && text[0] != '#')
        {
          gsize n = strcspn (text, "=[");
          g_autofree char *name = g_strstrip (g_strndup (text, n));

          if (text[n] != '\0' && strcmp (name, key) == 0)
            return line;
        }
    }
  return 0;
}
