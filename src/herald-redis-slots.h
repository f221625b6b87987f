/* herald-redis-slots.h: Redis Cluster key slots (CRC16 of the key, or of
 * its {hash tag}, modulo 16384), the first piece of [redis] cluster routing.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define HERALD_REDIS_SLOTS 16384

/* CRC16-CCITT (XMODEM), the checksum Redis Cluster uses */
guint16 herald_redis_crc16 (const char *data, gsize len);

/* The slot of @key (@len bytes): when the key has a non-empty {tag}, only
 * the tag (the text between the first '{' and the next '}') is hashed */
guint herald_redis_key_slot (const char *key, gsize len);

/* Reads a cluster redirection error ("MOVED 3999 127.0.0.1:6381" or
 * "ASK …"): TRUE and *@ask, *@slot, *@addr (HOST:PORT, g_free() it) when
 * @error is one. */
gboolean herald_redis_parse_redirect (const char *error, gboolean *ask, guint *slot, char **addr);

/* Splits "HOST:PORT" (the last ':' separates; "[v6]:PORT" allowed). */
gboolean herald_redis_split_addr (const char *addr, char **host, int *port);

G_END_DECLS
