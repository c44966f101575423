/* SPDX-License-Identifier: MIT */
/*
 * A new layer being built: its entries, the objects it appends, and its
 * publication (layer_build.c).  Shared by commit and layer import.
 */
#ifndef TSR_LAYER_BUILD_H
#define TSR_LAYER_BUILD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <tessera/store.h>

#include "layer.h"
#include "meta.h"

struct tsr_store;
struct tsr_volume;

/* A set of digests (open addressing). */
struct digest_set {
	uint8_t (*keys)[TSR_DIGEST_LEN];
	uint8_t *used;
	size_t cap, count;
};
int digest_set_add(struct digest_set *s, const uint8_t *d, bool *ret_added);
bool digest_set_has(const struct digest_set *s, const uint8_t *d);
void digest_set_free(struct digest_set *s);

struct new_object {
	uint8_t digest[TSR_DIGEST_LEN];
	struct chunk_record rec;
};

/* Entries are added in ascending index order. */
struct layer_build {
	struct layer_entry *entries;
	size_t nentries, cap_entries;
	uint64_t data_chunks;
	struct new_object *new_objs;    /* objects appended for this layer */
	size_t nnew, cap_new;
	uint64_t new_stored_bytes;
	struct digest_set appended;
};
/* digest NULL: a hole. */
int layer_build_entry(struct layer_build *b, uint64_t index, const uint8_t *digest);
/* Appends an object (once per digest) to the active pack; commit_lock held. */
int layer_build_object(struct tsr_store *store, struct layer_build *b,
		       const uint8_t digest[TSR_DIGEST_LEN], enum tsr_codec codec,
		       const void *payload, uint32_t stored_len);
/* Computes the id, syncs the packs and publishes in one transaction (a
 * hold on an existing identical layer, else the new layer), names it, and
 * deletes the consumed volume's records when consumed is not NULL.
 * commit_lock held; the caller calls packs_committed or packs_rollback. */
int layer_build_publish(struct tsr_store *store, struct layer_build *b,
			const struct tsr_layer_id *parent, uint64_t size, const char *name,
			const struct tsr_volume *consumed, struct tsr_layer_id *ret_id);
void layer_build_free(struct layer_build *b);

#endif /* TSR_LAYER_BUILD_H */
