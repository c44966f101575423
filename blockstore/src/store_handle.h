/* SPDX-License-Identifier: MIT */
/*
 * The store handle, struct tsr_store, and the store's directory layout.
 * Most of libtessera's files include this for the handle's fields; each
 * field says which lock protects it.  Nothing outside blockstore/src
 * includes this.  The on-disk format is specified in blockstore/FORMAT.md.
 */
#ifndef TSR_STORE_HANDLE_H
#define TSR_STORE_HANDLE_H

#include <lmdb.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <tessera/store.h>

#include "meta.h"

struct chunk_cache;
struct layer_map;
struct pack_file;
struct tsr_volume;
struct evp_md_st;

#define TSR_FORMAT_VERSION 1
#define TSR_MARKER_FILE TSR_STORE_MARKER_FILE
#define TSR_LOCK_FILE "lock"
#define TSR_META_DIR "meta"
#define TSR_PACK_DIR "packs"
#define TSR_VOLUME_DIR "volumes"

struct tsr_store {
	char *dir;
	int dir_fd;
	int lock_fd;
	MDB_env *env;
	MDB_dbi dbi[DB_COUNT];
	uint32_t chunk_size;
	unsigned chunk_shift;
	enum tsr_codec codec;
	unsigned workers;
	const struct evp_md_st *sha256;
	struct chunk_cache *cache;

	/* Lock order: volumes_lock, then lock, then LMDB's write lock. */
	pthread_mutex_t volumes_lock;    /* open_volumes and their refs */
	struct tsr_volume *open_volumes;
	pthread_mutex_t lock;            /* maps */
	struct layer_map *maps;

	/* Pack files (pack.h).  Lock order: commit_lock before pack_lock. */
	pthread_rwlock_t pack_lock;      /* the packs array itself (readers vs growth) */
	struct pack_file *packs;         /* indexed by pack id; id 0 unused */
	uint32_t npacks;
	pthread_mutex_t commit_lock;     /* appends, commits, layer removal, gc */
	uint32_t active_pack;            /* 0: none yet */
	uint64_t pack_target;            /* TSR_PACK_TARGET_BYTES unless overridden */

	void (*log)(void *arg, const char *line);
	void *log_arg;
	pthread_mutex_t damage_lock;     /* damaged, ndamaged, damaged_cap */
	uint8_t (*damaged)[TSR_DIGEST_LEN]; /* objects already logged as damaged */
	size_t ndamaged, damaged_cap;
};

#endif /* TSR_STORE_HANDLE_H */
