/* herald-test-node.h: real redis-server and heraldd processes for the
 * multi-node tests (test-redis, test-redis-shards, …).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <hiredis/hiredis.h>
#include <json-glib/json-glib.h>

#include "herald-test-server.h"

G_BEGIN_DECLS

/* One heraldd process; only srv's host, port and url are used. */
typedef struct
{
  GSubprocess *process;
  GDataInputStream *stderr_lines;
  GString *log; /* everything the daemon printed so far */
  HeraldTestServer srv;
  gboolean eof;
  char *auth;   /* "Authorization: Bearer <api key>\r\n" */
  char *secret; /* the HS256 connection-token secret of its config */
} HeraldTestNode;

/* A child-setup function: children die with the test, even when it aborts. */
void herald_test_die_with_parent (gpointer data);
/* A loopback TCP port that was free a moment ago. */
guint16 herald_test_free_port (void);

/* redis-server on 127.0.0.1:@port, no persistence, @password may be NULL;
 * waits (bounded) until it answers PING. */
GSubprocess *herald_test_redis_start (guint16 port, const char *password);
void herald_test_redis_stop (GSubprocess **redis);
/* One command on a fresh connection; NULL when Redis does not answer. */
redisReply *herald_test_redis_vcmd (guint16 port, const char *password, const char *format,
                                    va_list ap);
gboolean herald_test_redis_answers (guint16 port, const char *password);
/* PUBSUB NUMSUB @topic; -1 when Redis does not answer. */
long long herald_test_redis_numsub (guint16 port, const char *password, const char *topic);

/* Starts $HERALDD --config @conf on a free port with two workers; REDIS_URL
 * set to @redis_url (NULL: unset), HERALD_API_KEY to @api_key; @secret is the
 * config's connection-token secret, kept for herald_test_node_ws_open().
 * Waits (bounded) until it listens. */
void herald_test_node_start (HeraldTestNode *node, const char *conf, const char *redis_url,
                             const char *api_key, const char *secret);
/* SIGTERM, then waits (bounded) for the exit; frees what start allocated. */
void herald_test_node_stop (HeraldTestNode *node);
/* The same with SIGKILL: a node that dies without saying goodbye. */
void herald_test_node_kill (HeraldTestNode *node);

char *herald_test_node_api (HeraldTestNode *node, const char *method, const char *path,
                            const char *body, guint *status);
gboolean herald_test_node_healthy (HeraldTestNode *node);
/* POST /api/publish; asserts 200 and returns the answer's offset. */
guint64 herald_test_node_publish (HeraldTestNode *node, const char *channel, const char *data);
/* A WebSocket as @user (NULL: anonymous), "connected" read. */
HeraldTestClient *herald_test_node_ws_open (HeraldTestNode *node, const char *user,
                                            char **connection_id);

/* Reads frames until one of @type (others are dropped). */
JsonObject *herald_test_ws_read_type (HeraldTestClient *client, const char *type);
/* Sends subscribe and waits for "subscribed". */
void herald_test_ws_subscribe (HeraldTestClient *client, const char *channel);

G_END_DECLS
