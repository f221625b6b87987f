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

G_END_DECLS
