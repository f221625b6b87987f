/* herald-redis-link.h: the Redis engine's two asynchronous connections, one
 * for commands and one in SUBSCRIBE mode, in one main context: connecting
 * (AUTH, SELECT, a bounded wait), and reconnecting with jittered backoff
 * whenever either is lost.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>
#include <hiredis/async.h>

#include "herald-redis-url.h"

G_BEGIN_DECLS

typedef struct _HeraldRedisLink HeraldRedisLink;

/* What the link tells its owner, in the link's main context. */
typedef struct
{
  /* Both connections were opened and authenticated (queued): send the setup
   * commands, then call herald_redis_link_up() once their answers came. */
  void (*connected) (gpointer owner);
  /* The link was lost (@why): pending commands then get NULL replies; the
   * link reconnects by itself. */
  void (*down) (gpointer owner, const char *why);
  /* A reply on the subscription connection (a message, or a confirmation). */
  void (*sub_reply) (gpointer owner, redisReply *reply);
} HeraldRedisLinkEvents;

/* @url must outlive the link. */
HeraldRedisLink *herald_redis_link_new (const HeraldRedisUrl *url, GMainContext *context,
                                        const HeraldRedisLinkEvents *events, gpointer owner);
/* Closes both connections for good (pending commands get NULL replies). */
void herald_redis_link_free (HeraldRedisLink *link);

void herald_redis_link_connect (HeraldRedisLink *link);
/* The owner's setup is done: the connect timeout stops, the backoff resets. */
void herald_redis_link_up (HeraldRedisLink *link);
/* The owner found the link unusable: down, then reconnect. */
void herald_redis_link_fail (HeraldRedisLink *link, const char *why);

/* The address (the URL's host and port) changed: drop the connections, if
 * any, and connect again at once. */
void herald_redis_link_reconnect_now (HeraldRedisLink *link, const char *why);

/* For a reply callback of a command sent here: the owner, or NULL while the
 * link tears down (the reply is then NULL or stale: ignore it). */
gpointer herald_redis_link_owner (const redisAsyncContext *ac);

/* A command on the command connection; REDIS_ERR when it is not connected
 * (@fn is then never called). */
int herald_redis_link_command (HeraldRedisLink *link, redisCallbackFn *fn, void *privdata, int argc,
                               const char **argv, const size_t *lens);
/* A command whose refusal (an error reply) means the link is unusable:
 * warns naming @what, then fails the link. */
void herald_redis_link_command_checked (HeraldRedisLink *link, const char *what, int argc,
                                        const char **argv);
/* A (UN)SUBSCRIBE on the subscription connection; replies go to sub_reply. */
void herald_redis_link_subscribe (HeraldRedisLink *link, int argc, const char **argv);

G_END_DECLS
