/* SPDX-License-Identifier: MIT */
/*
 * Flattened layer maps: for each chunk of a layer, the digest it reads
 * from, whichever ancestor wrote it.  Built once per layer from its
 * parent's flattened map plus its own entries, so a lookup is one array
 * index whatever the depth of the chain.  Maps are shared by every volume
 * and layer handle that reads the layer, and freed with the last of them.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "layer_map.h"
#include "meta.h"
#include "store_handle.h"
#include "util.h"

static void layer_map_free(struct layer_map *map)
{
	free(map->slot);
	free(map->digests);
	free(map);
}

static int digests_reserve(struct layer_map *map, uint64_t want, size_t *cap)
{
	/* A slot counts digests in 32 bits, 0 meaning zeros. */
	if (want > UINT32_MAX - 1)
		return -EFBIG;
	return array_reserve(&map->digests, cap, (size_t)want, TSR_DIGEST_LEN);
}

struct apply_ctx {
	struct layer_map *map;
	size_t *cap;
};

static int apply_entry(const MDB_val *k, const MDB_val *v, void *arg)
{
	struct apply_ctx *c = arg;
	struct layer_map *map = c->map;
	uint64_t idx;
	int r;

	if (k->mv_size != TSR_DIGEST_LEN + 8 || v->mv_size != TSR_DIGEST_LEN)
		return -EBADMSG;
	idx = get_be64((const uint8_t *)k->mv_data + TSR_DIGEST_LEN);
	if (idx >= map->nchunks)
		return -EBADMSG;
	if (buf_is_zero(v->mv_data, TSR_DIGEST_LEN)) {
		map->slot[idx] = 0;
		return 0;
	}
	r = digests_reserve(map, (uint64_t)map->ndigests + 1, c->cap);
	if (r)
		return r;
	memcpy(map->digests[map->ndigests], v->mv_data, TSR_DIGEST_LEN);
	map->slot[idx] = ++map->ndigests;
	return 0;
}

/* Applies the layer's own entries on top of what the map holds. */
static int apply_entries(struct tsr_store *store, MDB_txn *txn, struct layer_map *map,
			 size_t *cap)
{
	struct apply_ctx c = { .map = map, .cap = cap };

	return meta_walk(store, txn, DB_LAYER_CHUNKS, map->id.bytes, TSR_DIGEST_LEN, apply_entry,
			 &c);
}

static struct layer_map *cached(struct tsr_store *store, const struct tsr_layer_id *id)
{
	for (struct layer_map *m = store->maps; m; m = m->next)
		if (!memcmp(m->id.bytes, id->bytes, TSR_DIGEST_LEN))
			return m;
	return NULL;
}

static int build(struct tsr_store *store, const struct tsr_layer_id *id,
		 struct layer_map **ret_map)
{
	struct layer_record rec;
	struct layer_map *map, *parent = NULL;
	size_t cap = 0;
	MDB_txn *txn;
	int r;

	r = meta_txn_begin(store, false, &txn);
	if (r)
		return r;
	r = layer_record_get(store, txn, id, &rec);
	mdb_txn_abort(txn);
	if (r)
		return r;
	if (rec.has_parent) {
		r = layer_map_get(store, &rec.parent, &parent);
		if (r)
			return r == -ENOENT ? -EBADMSG : r;
	}
	map = calloc(1, sizeof(*map));
	if (!map) {
		r = -ENOMEM;
		goto out;
	}
	map->id = *id;
	map->size = rec.size;
	map->nchunks = (rec.size + store->chunk_size - 1) >> store->chunk_shift;
	map->slot = calloc(map->nchunks ? map->nchunks : 1, sizeof(*map->slot));
	if (!map->slot) {
		r = -ENOMEM;
		goto out;
	}
	if (parent) {
		uint64_t n = parent->nchunks < map->nchunks ? parent->nchunks : map->nchunks;

		r = digests_reserve(map, parent->ndigests, &cap);
		if (r)
			goto out;
		if (parent->ndigests)
			memcpy(map->digests, parent->digests,
			       (size_t)parent->ndigests * TSR_DIGEST_LEN);
		map->ndigests = parent->ndigests;
		memcpy(map->slot, parent->slot, n * sizeof(*map->slot));
	}
	r = meta_txn_begin(store, false, &txn);
	if (r)
		goto out;
	r = apply_entries(store, txn, map, &cap);
	mdb_txn_abort(txn);
out:
	if (parent)
		layer_map_put(store, parent);
	if (r) {
		if (map)
			layer_map_free(map);
		return r;
	}
	*ret_map = map;
	return 0;
}

int layer_map_get(struct tsr_store *store, const struct tsr_layer_id *id,
		  struct layer_map **ret_map)
{
	struct layer_map *map, *other;
	int r;

	pthread_mutex_lock(&store->lock);
	map = cached(store, id);
	if (map)
		map->refs++;
	pthread_mutex_unlock(&store->lock);
	if (map) {
		*ret_map = map;
		return 0;
	}
	/* Built without the lock (it reads metadata and recurses into the
	 * parent); a racing builder's copy wins and ours is dropped. */
	r = build(store, id, &map);
	if (r)
		return r;
	pthread_mutex_lock(&store->lock);
	other = cached(store, id);
	if (other) {
		other->refs++;
		pthread_mutex_unlock(&store->lock);
		layer_map_free(map);
		*ret_map = other;
		return 0;
	}
	map->refs = 1;
	map->next = store->maps;
	store->maps = map;
	pthread_mutex_unlock(&store->lock);
	*ret_map = map;
	return 0;
}

void layer_map_put(struct tsr_store *store, struct layer_map *map)
{
	struct layer_map **pp;

	pthread_mutex_lock(&store->lock);
	if (--map->refs > 0) {
		pthread_mutex_unlock(&store->lock);
		return;
	}
	for (pp = &store->maps; *pp != map; pp = &(*pp)->next)
		;
	*pp = map->next;
	pthread_mutex_unlock(&store->lock);
	layer_map_free(map);
}
