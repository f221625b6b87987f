/* herald-redis-direct.h: direct messages between nodes (not channel messages).
 *
 * On `herald:all`, from node <origin>:
 *   "<origin> A\n<data>"                  every connection
 *   "<origin> U <user-len>\n<user><data>" a user's connections
 *   "<origin> S <user-len>\n<user><data>" a user's connections subscribed
 *                                          or unsubscribed by the server
 * On `herald:node:<id>`, to the node holding a connection:
 *   "C <connection>\n<data>"              that connection
 *   "X <code> <connection>\n<reason>"     close it
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "herald-engine.h"

G_BEGIN_DECLS

/* The payload of a send to @kind (HERALD_TARGET_ALL, _USER, _USER_SUBSCRIPTION
 * or _CONNECTION)
 * @target from node @origin. */
char *herald_redis_direct_format (HeraldTargetKind kind, const char *origin, const char *target,
                                  const char *data_json);
/* The payload that closes connection @id (newlines in @reason become spaces). */
char *herald_redis_direct_format_close (const char *id, guint16 code, const char *reason);

/* A received direct message, ready for the engine's sink. */
typedef struct
{
  HeraldDelivery delivery; /* points into @text and into the fields below */
  char *origin;            /* herald:all: the node it came from */
  char *target;
  HeraldMessage *message;
} HeraldRedisDirect;

/* Reads @text (@len bytes, NUL-terminated), received on `herald:all`
 * (@to_all) or on this node's topic. FALSE when malformed; clear @d either way. */
gboolean herald_redis_direct_parse (const char *text, gsize len, gboolean to_all,
                                    HeraldRedisDirect *d);
void herald_redis_direct_clear (HeraldRedisDirect *d);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (HeraldRedisDirect, herald_redis_direct_clear)

G_END_DECLS
