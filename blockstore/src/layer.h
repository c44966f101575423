/* SPDX-License-Identifier: MIT */
/* Layers: ids, the layer handle, and what other files ask of them (layer.c). */
#ifndef TSR_LAYER_H
#define TSR_LAYER_H

#include <stdint.h>

#include <tessera/store.h>

struct tsr_store;
struct layer_map;

struct tsr_layer {
	struct tsr_store *store;
	struct layer_map *map;
};

/* One entry of a layer's own map; a hole has an all-zero digest. */
struct layer_entry {
	uint64_t index;
	uint8_t digest[TSR_DIGEST_LEN];
};
/* SHA-256 of the canonical serialization (FORMAT.md); entries are sorted
 * by index. */
int layer_id_compute(const struct tsr_store *store, const struct tsr_layer_id *parent,
		     uint64_t size, const struct layer_entry *entries, uint64_t n,
		     struct tsr_layer_id *ret_id);

#endif /* TSR_LAYER_H */
