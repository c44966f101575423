/* SPDX-License-Identifier: MIT */
/* Reading chunk objects by digest: cache, else index -> pack -> verify. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static int object_lookup(struct tsr_store *store, const uint8_t digest[TSR_DIGEST_LEN],
			 struct chunk_record *ret_rec)
{
	MDB_txn *txn;
	MDB_val v;
	int r = meta_txn_begin(store, false, &txn);

	if (r)
		return r;
	r = meta_get(store, txn, DB_CHUNKS, digest, TSR_DIGEST_LEN, &v);
	if (!r)
		r = chunk_record_decode(&v, ret_rec);
	mdb_txn_abort(txn);
	/* A layer entry whose object is missing from the index is damage. */
	return r == -ENOENT ? -EIO : r;
}

int object_read(struct tsr_store *store, const uint8_t digest[TSR_DIGEST_LEN],
		uint32_t off, uint32_t len, void *dst)
{
	struct chunk_record rec;
	uint8_t *chunk;
	int r;

	if (chunk_cache_copy(store->cache, digest, off, len, dst) == 0)
		return 0;
	r = object_lookup(store, digest, &rec);
	if (r)
		return r;
	chunk = malloc(store->chunk_size);
	if (!chunk)
		return -ENOMEM;
	r = pack_read_object(store, digest, &rec, chunk);
	if (!r) {
		chunk_cache_insert(store->cache, digest, chunk);
		memcpy(dst, chunk + off, len);
	}
	free(chunk);
	return r;
}
