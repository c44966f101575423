/* SPDX-License-Identifier: MIT */
/*
 * The volume handle and what the rest of the library asks of volumes
 * (volume.c: life cycle; volume_io.c: I/O).
 */
#ifndef TSR_VOLUME_INTERNAL_H
#define TSR_VOLUME_INTERNAL_H

#include <lmdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <tessera/store.h>

#include "store_handle.h"

struct layer_map;

/* Per-chunk state of a volume.  ABSENT: the chunk reads from the parent (or
 * zeros without one) and its range of the data file may hold stale bytes of
 * unflushed writes.  PRESENT: the data file holds the chunk.  ZEROED: the
 * chunk reads as zeros whatever the parent holds. */
enum chunk_state {
	CHUNK_ABSENT = 0,
	CHUNK_PRESENT = 1,
	CHUNK_ZEROED = 2,
};

#define VOLUME_STRIPES 64

struct tsr_volume {
	struct tsr_store *store;
	uint64_t id;
	char name[TSR_NAME_MAX + 1];
	uint64_t size;
	uint64_t nchunks;
	int data_fd;
	struct layer_map *parent;  /* NULL without a parent */
	int refs;                  /* protected by store->volumes_lock */
	bool committing;           /* protected by store->volumes_lock */
	struct tsr_volume *next;   /* store->open_volumes, under volumes_lock */

	/* Written under stripe[idx % VOLUME_STRIPES]; read without locks. */
	_Atomic uint8_t *state;
	pthread_mutex_t stripe[VOLUME_STRIPES];

	/* Lock order: stripe before meta_lock. */
	pthread_mutex_t meta_lock;
	uint64_t *dirty_bits;      /* chunks whose state changed since the last flush */
	uint64_t *dirty_list;
	uint64_t ndirty;
	uint64_t flush_requested;  /* flush sequence numbers, under meta_lock */
	uint64_t flush_done;
	bool flushing;
	int flush_error;           /* sticky: once a flush failed, all do */
	pthread_cond_t flush_cond;
};

static inline void volume_data_path(uint64_t id, char *buf, size_t len)
{
	snprintf(buf, len, TSR_VOLUME_DIR "/%016llx.data", (unsigned long long)id);
}
static inline uint32_t volume_chunk_len(const struct tsr_volume *vol, uint64_t idx)
{
	uint64_t base = idx << vol->store->chunk_shift;
	uint64_t left = vol->size - base;

	return left < vol->store->chunk_size ? (uint32_t)left : vol->store->chunk_size;
}
/* Frees a volume whose last reference is gone (volumes_lock not held). */
void volume_free(struct tsr_volume *vol);
/* Calls fn(index, state) for each durable chunk state of volume id; a state
 * other than present or zeroed, or an index at or past nchunks, is
 * -EBADMSG. */
int volume_states_walk(struct tsr_store *store, MDB_txn *txn, uint64_t id, uint64_t nchunks,
		       int (*fn)(uint64_t index, uint8_t state, void *arg), void *arg);

#endif /* TSR_VOLUME_INTERNAL_H */
