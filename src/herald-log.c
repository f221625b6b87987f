/* herald-log.c: structured log records about one connection.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "herald-log.h"

/* syslog priorities, as GLib's g_log_structured() assigns them */
static const char *
priority_for_level (GLogLevelFlags level)
{
  if (level & G_LOG_LEVEL_ERROR)
    return "3";
  if (level & (G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING))
    return "4";
  if (level & G_LOG_LEVEL_MESSAGE)
    return "5";
  if (level & G_LOG_LEVEL_INFO)
    return "6";
  return "7";
}

/**
 * herald_log_connection_full:
 *
 * The function behind herald_log_connection(); call that instead.
 */
void
herald_log_connection_full (const char *log_domain, const char *file, const char *line,
                            const char *func, GLogLevelFlags level, const char *connection_id,
                            const char *channel, guint close_code, const char *close_reason,
                            const char *format, ...)
{
  g_autofree char *message = NULL;
  char code_text[16];
  GLogField fields[10];
  gsize n = 0;
  va_list args;

  /* Debug records are dropped unless --verbose or G_MESSAGES_DEBUG asks for
   * them: don't format what nobody will see. */
  if (g_log_writer_default_would_drop (level, log_domain))
    return;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);

  fields[n++] = (GLogField){ "MESSAGE", message, -1 };
  fields[n++] = (GLogField){ "PRIORITY", priority_for_level (level), -1 };
  fields[n++] = (GLogField){ "GLIB_DOMAIN", log_domain != NULL ? log_domain : "Herald", -1 };
  fields[n++] = (GLogField){ "CODE_FILE", file, -1 };
  fields[n++] = (GLogField){ "CODE_LINE", line, -1 };
  fields[n++] = (GLogField){ "CODE_FUNC", func, -1 };
  if (connection_id != NULL)
    fields[n++] = (GLogField){ "HERALD_CONNECTION_ID", connection_id, -1 };
  if (channel != NULL)
    fields[n++] = (GLogField){ "HERALD_CHANNEL", channel, -1 };
  if (close_code != 0)
    {
      g_snprintf (code_text, sizeof code_text, "%u", close_code);
      fields[n++] = (GLogField){ "HERALD_CLOSE_CODE", code_text, -1 };
      fields[n++] = (GLogField){ "HERALD_CLOSE_REASON", close_reason != NULL ? close_reason : "",
                                 -1 };
    }
  g_assert (n <= G_N_ELEMENTS (fields));
  g_log_structured_array (level, fields, n);
}
