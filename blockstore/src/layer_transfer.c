/* SPDX-License-Identifier: MIT */
/*
 * The store's side of moving layers between stores: walking a layer's own
 * map, reading objects in their stored (compressed) form, and importing a
 * layer from entries and objects that come from outside — untrusted: every
 * object is verified against its digest and the result against the
 * expected layer id before anything is published.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "layer.h"
#include "layer_build.h"
#include "layer_map.h"
#include "meta.h"
#include "object.h"
#include "pack.h"
#include "store_handle.h"
#include "util.h"

struct tsr_layer_import {
	struct tsr_store *store;
	bool has_parent;
	struct tsr_layer_id parent;
	uint64_t size;
	uint64_t nchunks;
	uint8_t *chunk;              /* scratch for verification */
	struct layer_build build;
	int error;                   /* sticky: the first failure */
};

uint32_t tsr_store_chunk_size(const struct tsr_store *store)
{
	return store->chunk_size;
}

size_t tsr_object_stored_max(const struct tsr_store *store)
{
	return codec_bound(store->chunk_size);
}

struct entries_walk {
	int (*fn)(uint64_t index, const uint8_t *digest, void *arg);
	void *arg;
};

static int entry_one(const MDB_val *k, const MDB_val *v, void *arg)
{
	struct entries_walk *w = arg;

	if (k->mv_size != TSR_DIGEST_LEN + 8 || v->mv_size != TSR_DIGEST_LEN)
		return -EBADMSG;
	return w->fn(get_be64((const uint8_t *)k->mv_data + TSR_DIGEST_LEN),
		     buf_is_zero(v->mv_data, TSR_DIGEST_LEN) ? NULL : v->mv_data, w->arg);
}

int tsr_layer_entries(struct tsr_store *store, const struct tsr_layer_id *id,
		      int (*fn)(uint64_t index, const uint8_t *digest, void *arg), void *arg)
{
	struct entries_walk w = { .fn = fn, .arg = arg };
	struct layer_record rec;
	MDB_txn *txn;
	int r;

	r = meta_txn_begin(store, false, &txn);
	if (r)
		return r;
	r = layer_record_get(store, txn, id, &rec);
	if (!r)
		r = meta_walk(store, txn, DB_LAYER_CHUNKS, id->bytes, TSR_DIGEST_LEN, entry_one, &w);
	mdb_txn_abort(txn);
	return r;
}

int tsr_layer_digests(struct tsr_layer *layer, int (*fn)(const uint8_t *digest, void *arg),
		      void *arg)
{
	const struct layer_map *map = layer->map;
	int r = 0;

	/* The digest table holds every digest the flattened map points at
	 * (and, after overrides, possibly some it no longer does): walk the
	 * slots for the exact set. */
	for (uint64_t i = 0; i < map->nchunks && !r; i++)
		if (map->slot[i])
			r = fn(map->digests[map->slot[i] - 1], arg);
	return r;
}

int tsr_object_read_stored(struct tsr_store *store, const uint8_t digest[TSR_DIGEST_LEN],
			   enum tsr_codec *ret_codec, void *buf, size_t cap, size_t *ret_len)
{
	struct chunk_record rec;
	uint8_t *chunk;
	int r = chunk_record_get(store, NULL, digest, &rec);

	if (r)
		return r;
	if (cap < rec.stored_len)
		return -ENOBUFS;
	chunk = malloc(store->chunk_size);
	if (!chunk)
		return -ENOMEM;
	r = pack_read_stored(store, digest, &rec, buf, chunk);
	free(chunk);
	if (r == -EBADMSG || r == -EIO) {
		object_report_damage(store, digest, &rec, r);
		return -EIO;
	}
	if (r)
		return r;
	*ret_codec = (enum tsr_codec)rec.codec;
	*ret_len = rec.stored_len;
	return 0;
}

int tsr_layer_import_begin(struct tsr_store *store, const struct tsr_layer_id *parent,
			   uint64_t size, uint32_t chunk_size, struct tsr_layer_import **ret_imp)
{
	struct tsr_layer_import *imp;
	int r = 0;

	if (chunk_size != store->chunk_size || size == 0 ||
	    ((size - 1) >> store->chunk_shift) >= (1ull << 31))
		return -EINVAL;
	imp = calloc(1, sizeof(*imp));
	if (!imp)
		return -ENOMEM;
	imp->store = store;
	imp->size = size;
	imp->nchunks = (size + store->chunk_size - 1) >> store->chunk_shift;
	imp->chunk = malloc(store->chunk_size);
	if (!imp->chunk) {
		free(imp);
		return -ENOMEM;
	}
	pthread_mutex_lock(&store->commit_lock);
	if (parent) {
		struct layer_record prec;
		MDB_txn *txn;

		r = meta_txn_begin(store, false, &txn);
		if (!r) {
			r = layer_record_get(store, txn, parent, &prec);
			mdb_txn_abort(txn);
		}
		if (!r && prec.size > size)
			r = -EINVAL;
		imp->has_parent = true;
		imp->parent = *parent;
	}
	if (r) {
		pthread_mutex_unlock(&store->commit_lock);
		free(imp->chunk);
		free(imp);
		return r;
	}
	*ret_imp = imp;
	return 0;
}

int tsr_layer_import_object(struct tsr_layer_import *imp, const uint8_t digest[TSR_DIGEST_LEN],
			    enum tsr_codec codec, const void *payload, size_t len)
{
	struct tsr_store *store = imp->store;
	uint8_t check[TSR_DIGEST_LEN];
	MDB_txn *txn;
	MDB_val v;
	int r;

	if (imp->error)
		return imp->error;
	if (digest_set_has(&imp->build.appended, digest))
		return 0;
	r = meta_txn_begin(store, false, &txn);
	if (r)
		return r;
	r = meta_get(store, txn, DB_CHUNKS, digest, TSR_DIGEST_LEN, &v);
	mdb_txn_abort(txn);
	if (r == 0)
		return 0; /* the store has it: nothing to verify or store */
	if (r != -ENOENT)
		return r;
	if (codec > TSR_CODEC_ZSTD || len > codec_bound(store->chunk_size))
		return -EBADMSG;
	r = codec_decompress(codec, payload, len, imp->chunk, store->chunk_size);
	if (!r)
		r = digest_chunk(store, imp->chunk, store->chunk_size, check);
	if (!r && memcmp(check, digest, TSR_DIGEST_LEN))
		r = -EBADMSG;
	if (!r && buf_is_zero(imp->chunk, store->chunk_size))
		r = -EBADMSG; /* zero chunks are holes, never objects */
	if (!r)
		r = layer_build_object(store, &imp->build, digest, codec, payload, (uint32_t)len);
	if (r && r != -EBADMSG)
		imp->error = r;
	return r;
}

int tsr_layer_import_entry(struct tsr_layer_import *imp, uint64_t index, const uint8_t *digest)
{
	const struct layer_build *b = &imp->build;

	if (imp->error)
		return imp->error;
	if (index >= imp->nchunks || (b->nentries && index <= b->entries[b->nentries - 1].index))
		return -EINVAL;
	if (digest && buf_is_zero(digest, TSR_DIGEST_LEN))
		digest = NULL;
	return layer_build_entry(&imp->build, index, digest);
}

static void import_free(struct tsr_layer_import *imp)
{
	pthread_mutex_unlock(&imp->store->commit_lock);
	layer_build_free(&imp->build);
	free(imp->chunk);
	free(imp);
}

void tsr_layer_import_abort(struct tsr_layer_import *imp)
{
	if (!imp)
		return;
	packs_rollback(imp->store);
	import_free(imp);
}

int tsr_layer_import_commit(struct tsr_layer_import *imp, const char *name,
			    const struct tsr_layer_id *expect, struct tsr_layer_id *ret_id)
{
	struct tsr_store *store = imp->store;
	struct tsr_layer_id id;
	int r = imp->error;

	if (!r && name)
		r = name_check(name);
	if (!r && expect) {
		r = layer_id_compute(store, imp->has_parent ? &imp->parent : NULL, imp->size,
				     imp->build.entries, imp->build.nentries, &id);
		if (!r && memcmp(id.bytes, expect->bytes, TSR_DIGEST_LEN))
			r = -EBADMSG;
	}
	if (!r)
		r = layer_build_publish(store, &imp->build, imp->has_parent ? &imp->parent : NULL,
					imp->size, name, NULL, &id);
	if (r == -ENOENT)
		r = -EBADMSG; /* an entry names an object nobody provided */
	if (r) {
		tsr_layer_import_abort(imp);
		return r;
	}
	packs_committed(store);
	import_free(imp);
	*ret_id = id;
	return 0;
}
