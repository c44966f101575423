/* SPDX-License-Identifier: MIT */
/* Reading chunk objects by digest: cache, else index -> pack -> verify. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "chunk_cache.h"
#include "meta.h"
#include "object.h"
#include "pack.h"
#include "store_handle.h"
#include "store_log.h"
#include "util.h"

static int object_lookup(struct tsr_store *store, const uint8_t digest[TSR_DIGEST_LEN],
			 struct chunk_record *ret_rec)
{
	int r = chunk_record_get(store, NULL, digest, ret_rec);

	/* A layer entry whose object is missing from the index is damage. */
	return r == -ENOENT ? -EIO : r;
}

/* Reads, verifies and caches the object at found into chunk. */
static int object_read_whole(struct tsr_store *store, const uint8_t digest[TSR_DIGEST_LEN],
			     const struct chunk_record *found, uint8_t *chunk)
{
	struct chunk_record rec = *found;
	int r = pack_read_object(store, digest, &rec, chunk);

	if (r) {
		/* gc may have moved the object between our lookup and the
		 * read: look again, and read again if it did. */
		struct chunk_record again;

		if (object_lookup(store, digest, &again) == 0 &&
		    (again.pack_id != rec.pack_id || again.offset != rec.offset)) {
			rec = again;
			r = pack_read_object(store, digest, &rec, chunk);
		}
	}
	if (!r) {
		/* Only verified chunks enter the cache: a hit needs no check. */
		chunk_cache_insert(store->cache, digest, chunk);
	} else if (r == -EBADMSG || r == -EIO) {
		object_report_damage(store, digest, &rec, r);
		r = -EIO;
	}
	return r;
}

int object_read(struct tsr_store *store, const uint8_t digest[TSR_DIGEST_LEN],
		uint32_t off, uint32_t len, void *dst)
{
	uint8_t *chunk;
	int r;

	if (chunk_cache_copy(store->cache, digest, off, len, dst) == 0)
		return 0;
	/* A miss: decode into scratch, so dst only ever gets verified bytes. */
	chunk = malloc(store->chunk_size);
	if (!chunk)
		return -ENOMEM;
	r = object_read_chunk(store, digest, chunk);
	if (!r)
		memcpy(dst, chunk + off, len);
	free(chunk);
	return r;
}

int object_read_chunk(struct tsr_store *store, const uint8_t digest[TSR_DIGEST_LEN],
		      uint8_t *chunk)
{
	struct chunk_record rec;
	int r;

	if (chunk_cache_copy(store->cache, digest, 0, store->chunk_size, chunk) == 0)
		return 0;
	r = object_lookup(store, digest, &rec);
	if (r) {
		if (r == -EIO || r == -EBADMSG) {
			object_report_damage(store, digest, NULL, r);
			r = -EIO;
		}
		return r;
	}
	return object_read_whole(store, digest, &rec, chunk);
}

void object_report_damage(struct tsr_store *store, const uint8_t digest[TSR_DIGEST_LEN],
			  const struct chunk_record *rec, int err)
{
	struct tsr_layer_id id;
	char hex[TSR_ID_HEX_LEN + 1];
	bool seen = false;

	pthread_mutex_lock(&store->damage_lock);
	for (size_t i = 0; i < store->ndamaged && !seen; i++)
		seen = !memcmp(store->damaged[i], digest, TSR_DIGEST_LEN);
	if (!seen) {
		if (array_reserve(&store->damaged, &store->damaged_cap, store->ndamaged + 1,
				  TSR_DIGEST_LEN) == 0)
			memcpy(store->damaged[store->ndamaged++], digest, TSR_DIGEST_LEN);
	}
	pthread_mutex_unlock(&store->damage_lock);
	if (seen)
		return;
	memcpy(id.bytes, digest, TSR_DIGEST_LEN);
	tsr_layer_id_to_hex(&id, hex);
	if (rec)
		store_log(store, "chunk object %s is damaged (%s; pack %08x offset %llu): "
			  "reads of it fail with EIO; run 'tessera fsck'", hex,
			  err == -EBADMSG ? "digest or header mismatch" : "unreadable",
			  rec->pack_id, (unsigned long long)rec->offset);
	else
		store_log(store, "chunk object %s is missing from the index: reads of it "
			  "fail with EIO; run 'tessera fsck'", hex);
}
