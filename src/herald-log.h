/* herald-log.h: structured log records about one connection.
 *
 * Besides the text, each record carries journal fields an operator can
 * filter on (docs/logging.md):
 *   HERALD_CONNECTION_ID   the connection's id
 *   HERALD_CHANNEL         the channel concerned, when there is one
 *   HERALD_CLOSE_CODE      the close code, for records about a close
 *   HERALD_CLOSE_REASON    the close reason, likewise
 * e.g. `journalctl -u heraldd HERALD_CONNECTION_ID=abc`.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

void herald_log_connection_full (const char *log_domain, const char *file, const char *line,
                                 const char *func, GLogLevelFlags level,
                                 const char *connection_id, const char *channel,
                                 guint close_code, const char *close_reason, const char *format,
                                 ...) G_GNUC_PRINTF (10, 11);

/**
 * herald_log_connection:
 * @level: a #GLogLevelFlags, e.g. %G_LOG_LEVEL_DEBUG
 * @id: the connection id
 * @channel: (nullable): the channel concerned, or %NULL
 * @code: the close code, or 0 when the record is not about a close
 * @reason: (nullable): the close reason, or %NULL
 * @...: printf-style format and arguments of the message
 *
 * Logs a message about connection @id with the HERALD_* journal fields, and
 * the code location like g_log_structured() does.
 */
#define herald_log_connection(level, id, channel, code, reason, ...)                          \
  herald_log_connection_full (G_LOG_DOMAIN, __FILE__, G_STRINGIFY (__LINE__), G_STRFUNC,     \
                              (level), (id), (channel), (code), (reason), __VA_ARGS__)

G_END_DECLS
