/* SPDX-License-Identifier: MIT */
/* A bounded LRU cache of verified, decompressed chunks (chunk_cache.c). */
#ifndef TSR_CHUNK_CACHE_H
#define TSR_CHUNK_CACHE_H

#include <stdint.h>

#include <tessera/store.h>

struct chunk_cache;

int chunk_cache_new(uint64_t capacity_bytes, uint32_t chunk_size,
		    struct chunk_cache **ret);
void chunk_cache_free(struct chunk_cache *cache);
/* Copies len bytes at off of the cached chunk; -ENOENT when not cached. */
int chunk_cache_copy(struct chunk_cache *cache, const uint8_t digest[TSR_DIGEST_LEN],
		     uint32_t off, uint32_t len, void *dst);
/* Inserts a verified chunk (copied). */
void chunk_cache_insert(struct chunk_cache *cache, const uint8_t digest[TSR_DIGEST_LEN],
			const void *chunk);

#endif /* TSR_CHUNK_CACHE_H */
