/* SPDX-License-Identifier: MIT */
/*
 * Internals of libtessera shared between its source files.  Nothing outside
 * blockstore/src includes this.  The on-disk format these structures load
 * and store is specified in blockstore/FORMAT.md.
 */
#ifndef TSR_INTERNAL_H
#define TSR_INTERNAL_H

#include <lmdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <tessera/store.h>

struct chunk_cache;
struct layer_map;
struct evp_md_st;

#define TSR_FORMAT_VERSION 1
#define TSR_MARKER_FILE "TESSERA"
#define TSR_LOCK_FILE "lock"
#define TSR_META_DIR "meta"
#define TSR_PACK_DIR "packs"
#define TSR_VOLUME_DIR "volumes"

/* A pack file is closed for appends once it grows past this (tests lower
 * it with TESSERA_PACK_BYTES to exercise pack rotation and compaction). */
#define TSR_PACK_TARGET_BYTES (256ull << 20)

enum meta_db {
	DB_META,          /* string key -> little-endian value */
	DB_CHUNKS,        /* digest -> struct chunk_record */
	DB_PACKS,         /* be32 pack id -> struct pack_record */
	DB_LAYERS,        /* layer id -> struct layer_record */
	DB_LAYER_CHUNKS,  /* layer id || be64 chunk index -> digest (zeros = hole) */
	DB_LAYER_NAMES,   /* name -> layer id */
	DB_VOLUMES,       /* be64 volume id -> struct volume_record */
	DB_VOLUME_NAMES,  /* name -> be64 volume id */
	DB_VOLUME_CHUNKS, /* be64 volume id || be64 chunk index -> u8 chunk state */
	DB_RECORDS,       /* namespace NUL key -> front-end record (opaque) */
	DB_COUNT,
};

/* Where a chunk object lives and how many layer map entries point at it. */
struct chunk_record {
	uint32_t pack_id;
	uint8_t codec;
	uint64_t offset;      /* of the object header in the pack */
	uint32_t stored_len;  /* payload bytes after the header */
	uint32_t raw_len;     /* uncompressed bytes (the chunk size) */
	uint64_t refcount;
};
#define CHUNK_RECORD_LEN 32

struct pack_record {
	uint64_t committed_len; /* bytes referenced by committed metadata */
	uint64_t objects;
};
#define PACK_RECORD_LEN 16

struct layer_record {
	bool has_parent;
	struct tsr_layer_id parent;
	uint64_t size;
	uint64_t created;
	uint32_t holds;
	uint32_t depth;
	uint64_t entries;
	uint64_t data_chunks;
	uint64_t new_objects;
	uint64_t new_stored_bytes;
};
#define LAYER_RECORD_LEN 96

struct volume_record {
	bool has_parent;
	struct tsr_layer_id parent;
	uint64_t size;
	uint64_t created;
	char name[TSR_NAME_MAX + 1];
};

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

/* One pack file.  Fields are protected by store->commit_lock, except fd,
 * which is set once at open/creation and then only read. */
struct pack_file {
	int fd;                  /* -1: no such pack */
	uint64_t len;            /* bytes written, committed or not */
	uint64_t committed_len;  /* bytes referenced by committed metadata */
	uint64_t objects;
	uint64_t committed_objects;
	bool dirty;              /* appended to since the last metadata commit */
	uint64_t writeback_from; /* bytes below were handed to writeback */
	bool entry_unsynced;     /* created; its directory entry not yet synced */
};

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

	/* Pack files.  Lock order: commit_lock before pack_lock. */
	pthread_rwlock_t pack_lock;      /* the packs array itself (readers vs growth) */
	struct pack_file *packs;         /* indexed by pack id; id 0 unused */
	uint32_t npacks;
	pthread_mutex_t commit_lock;     /* appends, commits, layer removal, gc */
	uint32_t active_pack;            /* 0: none yet */
	uint64_t pack_target;            /* TSR_PACK_TARGET_BYTES unless overridden */

	void (*log)(void *arg, const char *line);
	void *log_arg;
	pthread_mutex_t damage_lock;     /* damaged, ndamaged */
	uint8_t (*damaged)[TSR_DIGEST_LEN]; /* objects already logged as damaged */
	size_t ndamaged;
};

struct tsr_layer {
	struct tsr_store *store;
	struct layer_map *map;
};

/* ---- util.c ---- */
static inline void put_be64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}
static inline uint64_t get_be64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}
static inline void put_be32(uint8_t *p, uint32_t v)
{
	for (int i = 3; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}
static inline uint32_t get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline void put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++, v >>= 8)
		p[i] = (uint8_t)v;
}
static inline uint64_t get_le64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}
static inline void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++, v >>= 8)
		p[i] = (uint8_t)v;
}
static inline uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

bool buf_is_zero(const void *buf, size_t len);
int name_check(const char *name);
/* pread/pwrite of exactly len bytes, retrying short transfers. */
int pread_full(int fd, void *buf, size_t len, uint64_t off);
int pwrite_full(int fd, const void *buf, size_t len, uint64_t off);
uint64_t now_seconds(void);
uint64_t file_allocated_bytes(int dirfd, const char *path);

/* ---- meta.c: LMDB access and record encodings ---- */
int meta_err(int rc);
int meta_open(struct tsr_store *store, const char *path, uint64_t map_bytes, bool create);
void meta_close(struct tsr_store *store);
int meta_txn_begin(struct tsr_store *store, bool write, MDB_txn **ret_txn);
/* Commits; on failure the transaction is gone either way. */
int meta_txn_commit(MDB_txn *txn);
int meta_get(struct tsr_store *store, MDB_txn *txn, enum meta_db db,
	     const void *key, size_t klen, MDB_val *ret_val);
int meta_put(struct tsr_store *store, MDB_txn *txn, enum meta_db db,
	     const void *key, size_t klen, const void *val, size_t vlen);
int meta_del(struct tsr_store *store, MDB_txn *txn, enum meta_db db,
	     const void *key, size_t klen);
/* Deletes every key of db that starts with prefix. */
int meta_del_prefix(struct tsr_store *store, MDB_txn *txn, enum meta_db db,
		    const void *prefix, size_t plen);
/* Calls fn for each record of db whose key starts with prefix (plen 0: all),
 * in key order; a non-zero return from fn stops the walk and is returned. */
int meta_walk(struct tsr_store *store, MDB_txn *txn, enum meta_db db, const void *prefix,
	      size_t plen, int (*fn)(const MDB_val *key, const MDB_val *val, void *arg), void *arg);
/* Calls fn(index, state) for each durable chunk state of volume id; a state
 * other than present or zeroed, or an index at or past nchunks, is
 * -EBADMSG. */
int volume_states_walk(struct tsr_store *store, MDB_txn *txn, uint64_t id, uint64_t nchunks,
		       int (*fn)(uint64_t index, uint8_t state, void *arg), void *arg);
int meta_get_u64(struct tsr_store *store, MDB_txn *txn, const char *key, uint64_t *ret);
int meta_put_u64(struct tsr_store *store, MDB_txn *txn, const char *key, uint64_t v);

void chunk_record_encode(const struct chunk_record *r, uint8_t out[CHUNK_RECORD_LEN]);
int chunk_record_decode(const MDB_val *v, struct chunk_record *r);
void pack_record_encode(const struct pack_record *r, uint8_t out[PACK_RECORD_LEN]);
int pack_record_decode(const MDB_val *v, struct pack_record *r);
void layer_record_encode(const struct layer_record *r, uint8_t out[LAYER_RECORD_LEN]);
int layer_record_decode(const MDB_val *v, struct layer_record *r);
/* Returns the encoded length; out must hold 64 + TSR_NAME_MAX bytes. */
size_t volume_record_encode(const struct volume_record *r, uint8_t *out);
int volume_record_decode(const MDB_val *v, struct volume_record *r);

int layer_record_get(struct tsr_store *store, MDB_txn *txn,
		     const struct tsr_layer_id *id, struct layer_record *ret);

/* ---- codec.c: hashing and compression ---- */
int digest_chunk(const struct tsr_store *store, const void *buf, size_t len,
		 uint8_t out[TSR_DIGEST_LEN]);
struct codec_ctx;
int codec_ctx_new(struct codec_ctx **ret);
void codec_ctx_free(struct codec_ctx *ctx);
size_t codec_bound(size_t len);
/* Compresses src with codec into dst; *ret_codec is TSR_CODEC_NONE (and dst
 * a copy) when compression does not pay. */
int codec_compress(struct codec_ctx *ctx, enum tsr_codec codec, const void *src,
		   size_t len, void *dst, size_t cap, size_t *ret_len,
		   enum tsr_codec *ret_codec);
/* Decompresses exactly raw_len bytes into dst; -EBADMSG on any mismatch. */
int codec_decompress(enum tsr_codec codec, const void *src, size_t len,
		     void *dst, size_t raw_len);

/* ---- pack.c: append-only pack files of chunk objects ---- */
#define PACK_HEADER_LEN 64
#define OBJECT_HEADER_LEN 64
int packs_open(struct tsr_store *store);
void packs_close(struct tsr_store *store);
/* Appends one object to the active pack (store->commit_lock held).  The
 * bytes are not durable and not referenced until packs_sync_active() and a
 * metadata commit; ret_rec gets the location (refcount 0). */
int pack_append(struct tsr_store *store, const uint8_t digest[TSR_DIGEST_LEN],
		enum tsr_codec codec, const void *payload, uint32_t stored_len,
		uint32_t raw_len, struct chunk_record *ret_rec);
/* fdatasyncs every pack appended to since the last commit and records
 * their lengths in txn (commit_lock held).  Call packs_committed() after
 * txn commits, packs_rollback() if it fails. */
int packs_sync_and_record(struct tsr_store *store, MDB_txn *txn);
void packs_committed(struct tsr_store *store);
/* Starts (does not wait for) writeback of the active pack's new bytes. */
void packs_start_writeback(struct tsr_store *store);
/* Forgets appends after a failed commit: truncates back to committed length. */
void packs_rollback(struct tsr_store *store);
/* Reads and verifies one object: raw_len bytes of the chunk into dst.
 * -EBADMSG when its header or digest does not match, -EIO when its pack is
 * gone. */
int pack_read_object(struct tsr_store *store, const uint8_t digest[TSR_DIGEST_LEN],
		     const struct chunk_record *rec, void *dst);
/* Verifies an object (scratch: chunk_size bytes) and copies its stored
 * payload (rec->stored_len bytes) into payload. */
int pack_read_stored(struct tsr_store *store, const uint8_t digest[TSR_DIGEST_LEN],
		     const struct chunk_record *rec, void *payload, void *scratch);
/* Verifies an object (scratch: chunk_size bytes) and appends a copy of it
 * to the active pack; ret_rec gets the new location (commit_lock held). */
int pack_copy_object(struct tsr_store *store, const uint8_t digest[TSR_DIGEST_LEN],
		     const struct chunk_record *rec, void *scratch,
		     struct chunk_record *ret_rec);
/* Punches [off, off+len) of pack id: unreferenced objects only. */
int pack_punch_range(struct tsr_store *store, uint32_t id, uint64_t off, uint64_t len);
/* Closes and deletes a pack no metadata references any more. */
void pack_remove(struct tsr_store *store, uint32_t id);
uint64_t pack_allocated_bytes(struct tsr_store *store);

/* ---- chunk_cache.c: verified, decompressed chunks ---- */
int chunk_cache_new(uint64_t capacity_bytes, uint32_t chunk_size,
		    struct chunk_cache **ret);
void chunk_cache_free(struct chunk_cache *cache);
/* Copies len bytes at off of the cached chunk; -ENOENT when not cached. */
int chunk_cache_copy(struct chunk_cache *cache, const uint8_t digest[TSR_DIGEST_LEN],
		     uint32_t off, uint32_t len, void *dst);
/* Inserts a verified chunk (copied). */
void chunk_cache_insert(struct chunk_cache *cache, const uint8_t digest[TSR_DIGEST_LEN],
			const void *chunk);

/* ---- object.c: reading chunk objects by digest ---- */
/* Reports a damaged object through the store's log, once per digest. */
void object_report_damage(struct tsr_store *store, const uint8_t digest[TSR_DIGEST_LEN],
			  const struct chunk_record *rec, int err);
void store_log(struct tsr_store *store, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Copies len bytes at off of the chunk named digest, verified. */
int object_read(struct tsr_store *store, const uint8_t digest[TSR_DIGEST_LEN],
		uint32_t off, uint32_t len, void *dst);
/* The whole chunk, verified, into chunk (chunk_size bytes of scratch: a
 * miss decodes straight into it, so after an error it holds garbage and
 * must not reach a reader).  For copy-up, which owns its buffer. */
int object_read_chunk(struct tsr_store *store, const uint8_t digest[TSR_DIGEST_LEN],
		      uint8_t *chunk);

/* ---- layer_map.c: flattened layer maps ---- */
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

/* ---- layer.c ---- */
/* SHA-256 of the canonical serialization (FORMAT.md).  entries are sorted by
 * index; a hole has an all-zero digest. */
struct layer_entry {
	uint64_t index;
	uint8_t digest[TSR_DIGEST_LEN];
};
int layer_id_compute(const struct tsr_store *store, const struct tsr_layer_id *parent,
		     uint64_t size, const struct layer_entry *entries, uint64_t n,
		     struct tsr_layer_id *ret_id);
bool layer_has_children(struct tsr_store *store, MDB_txn *txn,
			const struct tsr_layer_id *id);

/* ---- layer_build.c: a new layer's entries and objects, published ---- */
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
	uint64_t nentries, cap_entries;
	uint64_t data_chunks;
	struct new_object *new_objs;    /* objects appended for this layer */
	uint64_t nnew, cap_new;
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

/* ---- volume.c ---- */
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

#endif /* TSR_INTERNAL_H */
