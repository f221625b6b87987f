/* herald-redis-wire.h: one connection to one Redis server, driven by a
 * GMainContext, with its own RESP reader (hiredis' redisReader): commands
 * answered in order through callbacks, and, on a pub/sub wire, the pushes
 * of sharded pub/sub (SSUBSCRIBE, which hiredis 0.14's async client does
 * not know). Used by the Redis Cluster engine (herald-redis-cluster-pool.c).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>
#include <hiredis/hiredis.h>

G_BEGIN_DECLS

typedef struct _HeraldRedisWire HeraldRedisWire;

/* A command's answer; @reply is NULL when the wire was lost or closed first.
 * The wire frees @reply after the call. */
typedef void (*HeraldRedisWireReplyFn) (redisReply *reply, gpointer privdata);

typedef struct
{
  /* Connected (and authenticated): commands queued so far are on their way. */
  void (*ready) (HeraldRedisWire *wire, gpointer owner);
  /* Pub/sub wires: a reply no command waits for (smessage, ssubscribe,
   * sunsubscribe, or an error such as MOVED for an SSUBSCRIBE). */
  void (*push) (HeraldRedisWire *wire, redisReply *reply, gpointer owner);
  /* The wire is dead (@why); pending callbacks already got NULL. Free it
   * later, not from this callback. */
  void (*down) (HeraldRedisWire *wire, const char *why, gpointer owner);
} HeraldRedisWireEvents;

/* Starts connecting to @host:@port (AUTH with @password when set) in @context. */
HeraldRedisWire *herald_redis_wire_new (const char *host, int port, const char *password,
                                        gboolean pubsub, GMainContext *context,
                                        const HeraldRedisWireEvents *events, gpointer owner);
/* Closes it for good: pending callbacks get NULL, no events follow. */
void herald_redis_wire_free (HeraldRedisWire *wire);

gboolean herald_redis_wire_is_ready (HeraldRedisWire *wire);
gboolean herald_redis_wire_is_dead (HeraldRedisWire *wire);
/* Queues a command (sent once connected); @fn (may be NULL) gets its reply.
 * FALSE, and @fn is never called, when the wire is dead. */
gboolean herald_redis_wire_command (HeraldRedisWire *wire, int argc, const char **argv,
                                    const size_t *lens, HeraldRedisWireReplyFn fn,
                                    gpointer privdata);
/* Pub/sub wires: a command whose answers come as pushes (SSUBSCRIBE…). */
gboolean herald_redis_wire_send (HeraldRedisWire *wire, int argc, const char **argv);
/* How long (ms) the oldest unanswered command has waited; 0 when none. */
gint64 herald_redis_wire_wait_ms (HeraldRedisWire *wire);
/* Takes the wire down with @why (e.g. a command timed out). */
void herald_redis_wire_fail (HeraldRedisWire *wire, const char *why);

G_END_DECLS
