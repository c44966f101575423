/* SPDX-License-Identifier: MIT */
/* Append-only pack files of chunk objects (pack.c; FORMAT.md, "Pack files"). */
#ifndef TSR_PACK_H
#define TSR_PACK_H

#include <lmdb.h>
#include <stdbool.h>
#include <stdint.h>

#include <tessera/store.h>

#include "meta.h"

struct tsr_store;

#define PACK_HEADER_LEN 64
#define OBJECT_HEADER_LEN 64

/* A pack file is closed for appends once it grows past this (tests lower
 * it with TESSERA_PACK_BYTES to exercise pack rotation and compaction). */
#define TSR_PACK_TARGET_BYTES (256ull << 20)

/* One pack file (store->packs[id]).  Fields are protected by
 * store->commit_lock, except fd, which is set once at open/creation and
 * then only read. */
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

int packs_open(struct tsr_store *store);
void packs_close(struct tsr_store *store);
/* Appends one object to the active pack (store->commit_lock held).  The
 * bytes are not durable and not referenced until packs_sync_and_record()
 * and a metadata commit; ret_rec gets the location (refcount 0). */
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

#endif /* TSR_PACK_H */
