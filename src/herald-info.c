/* herald-info.c
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "herald-info.h"

const guint16 herald_close_codes[16]
    = { 1000, 1001, 1002, 1003, 1006, 1007, 1008, 1009, 1011, 4001, 4002, 4003, 4004, 4029, 0, 0 };

guint
herald_close_code_index (guint16 code)
{
  for (guint i = 0; i < 14; i++)
    if (herald_close_codes[i] == code)
      return i;
  return 15; /* "other" */
}

const char *
herald_transport_to_string (HeraldTransport transport)
{
  return transport == HERALD_TRANSPORT_SSE ? "sse" : "websocket";
}

void
herald_connection_info_free (HeraldConnectionInfo *info)
{
  if (info == NULL)
    return;
  g_free (info->id);
  g_free (info->user_id);
  g_free (info->remote_address);
  g_strfreev (info->channels);
  g_free (info);
}

void
herald_channel_info_free (HeraldChannelInfo *info)
{
  if (info == NULL)
    return;
  g_free (info->name);
  g_free (info);
}

void
herald_presence_free (HeraldPresence *presence)
{
  if (presence == NULL)
    return;
  g_free (presence->channel);
  g_strfreev (presence->users);
  g_free (presence->next);
  g_free (presence);
}
