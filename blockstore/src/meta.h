/* SPDX-License-Identifier: MIT */
/*
 * The store's metadata in LMDB (meta.c): its named databases, transactions,
 * cursor walks, and the byte encodings of its records (FORMAT.md,
 * "Metadata").  Every function returns 0 or a negative errno; LMDB's own
 * codes are translated by meta_err().
 */
#ifndef TSR_META_H
#define TSR_META_H

#include <lmdb.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <tessera/store.h>

struct tsr_store;

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

/* An LMDB return code as 0 or a negative errno: MDB_NOTFOUND -ENOENT,
 * MDB_KEYEXIST -EEXIST, MDB_MAP_FULL -EXFULL, MDB_{READERS,TXN,DBS}_FULL
 * -EAGAIN, MDB_VERSION_MISMATCH and MDB_INVALID TSR_ERR_VERSION, a
 * positive errno negated, any other MDB_* code -EIO. */
int meta_err(int rc);
int meta_open(struct tsr_store *store, const char *path, uint64_t map_bytes, bool create);
void meta_close(struct tsr_store *store);
int meta_txn_begin(struct tsr_store *store, bool write, MDB_txn **ret_txn);
/* Commits; on failure the transaction is gone either way. */
int meta_txn_commit(MDB_txn *txn);
/* *ret_val points into the map: valid until txn ends or writes again. */
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
 * in key order (txn NULL: in a read transaction of its own); a non-zero
 * return from fn stops the walk and is returned.
 * Every LMDB cursor loop of the library goes through meta_walk or
 * meta_walk_del. */
int meta_walk(struct tsr_store *store, MDB_txn *txn, enum meta_db db, const void *prefix,
	      size_t plen, int (*fn)(const MDB_val *key, const MDB_val *val, void *arg), void *arg);
/* Like meta_walk in a write transaction, but fn decides each record's fate:
 * 0 keeps it, META_WALK_DELETE deletes it, a negative errno stops the walk
 * and is returned. */
#define META_WALK_DELETE 1
int meta_walk_del(struct tsr_store *store, MDB_txn *txn, enum meta_db db, const void *prefix,
		  size_t plen, int (*fn)(const MDB_val *key, const MDB_val *val, void *arg),
		  void *arg);
int meta_get_u64(struct tsr_store *store, MDB_txn *txn, const char *key, uint64_t *ret);
int meta_put_u64(struct tsr_store *store, MDB_txn *txn, const char *key, uint64_t v);

/* Decoders return -EBADMSG for a record of the wrong size or version. */
void chunk_record_encode(const struct chunk_record *r, uint8_t out[CHUNK_RECORD_LEN]);
int chunk_record_decode(const MDB_val *v, struct chunk_record *r);
void pack_record_encode(const struct pack_record *r, uint8_t out[PACK_RECORD_LEN]);
int pack_record_decode(const MDB_val *v, struct pack_record *r);
void layer_record_encode(const struct layer_record *r, uint8_t out[LAYER_RECORD_LEN]);
int layer_record_decode(const MDB_val *v, struct layer_record *r);
/* Returns the encoded length; out must hold 64 + TSR_NAME_MAX bytes. */
size_t volume_record_encode(const struct volume_record *r, uint8_t *out);
int volume_record_decode(const MDB_val *v, struct volume_record *r);

/* The index record of object digest; txn NULL: in a read transaction of
 * its own.  -ENOENT when the index has none. */
int chunk_record_get(struct tsr_store *store, MDB_txn *txn, const uint8_t *digest,
		     struct chunk_record *ret);
int chunk_record_put(struct tsr_store *store, MDB_txn *txn, const uint8_t *digest,
		     const struct chunk_record *rec);
int layer_record_get(struct tsr_store *store, MDB_txn *txn,
		     const struct tsr_layer_id *id, struct layer_record *ret);

#endif /* TSR_META_H */
