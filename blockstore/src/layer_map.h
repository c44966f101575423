/* SPDX-License-Identifier: MIT */
/* Flattened layer maps, shared and reference-counted (layer_map.c). */
#ifndef TSR_LAYER_MAP_H
#define TSR_LAYER_MAP_H

#include <stddef.h>
#include <stdint.h>

#include <tessera/store.h>

struct tsr_store;

struct layer_map {
	struct tsr_layer_id id;
	uint64_t size;
	uint64_t nchunks;
	uint32_t *slot;                     /* per chunk: 0 = zeros, else digests[slot-1] */
	uint8_t (*digests)[TSR_DIGEST_LEN];
	uint32_t ndigests;
	int refs;                           /* protected by store->lock */
	struct layer_map *next;             /* store->maps */
};

/* A reference to the flattened map of layer id, built on first use;
 * dropped with layer_map_put. */
int layer_map_get(struct tsr_store *store, const struct tsr_layer_id *id,
		  struct layer_map **ret_map);
void layer_map_put(struct tsr_store *store, struct layer_map *map);
/* The digest of chunk idx, or NULL when it reads as zeros. */
static inline const uint8_t *layer_map_lookup(const struct layer_map *map, uint64_t idx)
{
	if (idx >= map->nchunks || map->slot[idx] == 0)
		return NULL;
	return map->digests[map->slot[idx] - 1];
}

#endif /* TSR_LAYER_MAP_H */
