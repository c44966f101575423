/* SPDX-License-Identifier: MIT */
/*
 * Building and publishing a new layer: its map entries, in index order,
 * and the objects it adds, appended to the active pack.  Shared by commit
 * (entries from a volume) and layer import (entries from a layer blob).
 * All of it runs under store->commit_lock, from the first append to the
 * publishing transaction (FORMAT.md, "Commit").
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "layer.h"
#include "layer_build.h"
#include "meta.h"
#include "pack.h"
#include "store_handle.h"
#include "util.h"
#include "volume_internal.h"

/* Open addressing over digests, grows at half full.  Returns the slot of
 * d, or of the empty slot where it belongs. */
static size_t digest_set_slot(const struct digest_set *s, const uint8_t *d)
{
	size_t i;

	memcpy(&i, d, sizeof(i));
	for (i &= s->cap - 1; s->used[i]; i = (i + 1) & (s->cap - 1))
		if (!memcmp(s->keys[i], d, TSR_DIGEST_LEN))
			break;
	return i;
}

bool digest_set_has(const struct digest_set *s, const uint8_t *d)
{
	return s->cap && s->used[digest_set_slot(s, d)];
}

int digest_set_add(struct digest_set *s, const uint8_t *d, bool *ret_added)
{
	size_t i;

	if (2 * (s->count + 1) > s->cap) {
		struct digest_set n = { .cap = s->cap ? 2 * s->cap : 256 };

		n.keys = malloc(n.cap * TSR_DIGEST_LEN);
		n.used = calloc(n.cap, 1);
		if (!n.keys || !n.used) {
			free(n.keys);
			free(n.used);
			return -ENOMEM;
		}
		for (size_t j = 0; j < s->cap; j++) {
			if (!s->used[j])
				continue;
			i = digest_set_slot(&n, s->keys[j]);
			n.used[i] = 1;
			memcpy(n.keys[i], s->keys[j], TSR_DIGEST_LEN);
			n.count++;
		}
		free(s->keys);
		free(s->used);
		*s = n;
	}
	i = digest_set_slot(s, d);
	*ret_added = !s->used[i];
	if (s->used[i])
		return 0;
	s->used[i] = 1;
	memcpy(s->keys[i], d, TSR_DIGEST_LEN);
	s->count++;
	return 0;
}

void digest_set_free(struct digest_set *s)
{
	free(s->keys);
	free(s->used);
	memset(s, 0, sizeof(*s));
}

int layer_build_entry(struct layer_build *b, uint64_t index, const uint8_t *digest)
{
	struct layer_entry *e;
	int r = array_reserve(&b->entries, &b->cap_entries, b->nentries + 1, sizeof(*b->entries));

	if (r)
		return r;
	e = &b->entries[b->nentries++];
	e->index = index;
	if (!digest) {
		memset(e->digest, 0, TSR_DIGEST_LEN);
		return 0;
	}
	memcpy(e->digest, digest, TSR_DIGEST_LEN);
	b->data_chunks++;
	return 0;
}

int layer_build_object(struct tsr_store *store, struct layer_build *b,
		       const uint8_t digest[TSR_DIGEST_LEN], enum tsr_codec codec,
		       const void *payload, uint32_t stored_len)
{
	struct new_object *o;
	bool added;
	int r = digest_set_add(&b->appended, digest, &added);

	if (r || !added)
		return r;
	r = array_reserve(&b->new_objs, &b->cap_new, b->nnew + 1, sizeof(*b->new_objs));
	if (r)
		return r;
	o = &b->new_objs[b->nnew];
	r = pack_append(store, digest, codec, payload, stored_len, store->chunk_size, &o->rec);
	if (r)
		return r;
	memcpy(o->digest, digest, TSR_DIGEST_LEN);
	b->new_stored_bytes += OBJECT_HEADER_LEN + stored_len;
	b->nnew++;
	return 0;
}

void layer_build_free(struct layer_build *b)
{
	free(b->entries);
	free(b->new_objs);
	digest_set_free(&b->appended);
	memset(b, 0, sizeof(*b));
}

/* Adds one reference to each data entry's object (txn open).  -ENOENT
 * when an entry names an object the store does not have. */
static int add_references(struct tsr_store *store, MDB_txn *txn, const struct layer_build *b)
{
	for (uint64_t i = 0; i < b->nentries; i++) {
		const struct layer_entry *e = &b->entries[i];
		struct chunk_record rec;
		int r;

		if (buf_is_zero(e->digest, TSR_DIGEST_LEN))
			continue;
		r = chunk_record_get(store, txn, e->digest, &rec);
		if (r)
			return r;
		rec.refcount++;
		r = chunk_record_put(store, txn, e->digest, &rec);
		if (r)
			return r;
	}
	return 0;
}

/* Writes the new layer's records in txn. */
static int put_layer(struct tsr_store *store, MDB_txn *txn, const struct layer_build *b,
		     const struct tsr_layer_id *id, const struct tsr_layer_id *parent,
		     uint64_t size)
{
	struct layer_record rec = { 0 };
	uint8_t key[TSR_DIGEST_LEN + 8], val[LAYER_RECORD_LEN];
	int r = 0;

	for (uint64_t i = 0; i < b->nnew && !r; i++) {
		MDB_val v;

		/* Another layer may have stored the same object meanwhile
		 * (imports check the index before appending, but a copy
		 * appended here is then garbage for gc, never a second
		 * record). */
		if (meta_get(store, txn, DB_CHUNKS, b->new_objs[i].digest, TSR_DIGEST_LEN, &v) == 0)
			continue;
		r = chunk_record_put(store, txn, b->new_objs[i].digest, &b->new_objs[i].rec);
	}
	if (!r)
		r = add_references(store, txn, b);
	memcpy(key, id->bytes, TSR_DIGEST_LEN);
	for (uint64_t i = 0; i < b->nentries && !r; i++) {
		put_be64(key + TSR_DIGEST_LEN, b->entries[i].index);
		r = meta_put(store, txn, DB_LAYER_CHUNKS, key, sizeof(key), b->entries[i].digest,
			     TSR_DIGEST_LEN);
	}
	rec.depth = 1;
	if (!r && parent) {
		struct layer_record prec;

		r = layer_record_get(store, txn, parent, &prec);
		rec.depth = prec.depth + 1;
		rec.has_parent = true;
		rec.parent = *parent;
	}
	rec.size = size;
	rec.created = now_seconds();
	rec.holds = 1;
	rec.entries = b->nentries;
	rec.data_chunks = b->data_chunks;
	rec.new_objects = b->nnew;
	rec.new_stored_bytes = b->new_stored_bytes;
	layer_record_encode(&rec, val);
	if (!r)
		r = meta_put(store, txn, DB_LAYERS, id->bytes, TSR_DIGEST_LEN, val, sizeof(val));
	return r;
}

int layer_build_publish(struct tsr_store *store, struct layer_build *b,
			const struct tsr_layer_id *parent, uint64_t size, const char *name,
			const struct tsr_volume *consumed, struct tsr_layer_id *ret_id)
{
	struct layer_record existing;
	uint8_t val[LAYER_RECORD_LEN];
	struct tsr_layer_id id;
	MDB_txn *txn;
	MDB_val v;
	int r;

	r = layer_id_compute(store, parent, size, b->entries, b->nentries, &id);
	if (r)
		return r;
	r = meta_txn_begin(store, true, &txn);
	if (r)
		return r;
	r = layer_record_get(store, txn, &id, &existing);
	if (r == 0) {
		/* Identical content already stored: one more hold. */
		existing.holds++;
		layer_record_encode(&existing, val);
		r = meta_put(store, txn, DB_LAYERS, id.bytes, TSR_DIGEST_LEN, val, sizeof(val));
	} else if (r == -ENOENT) {
		r = put_layer(store, txn, b, &id, parent, size);
	}
	if (!r && name) {
		if (meta_get(store, txn, DB_LAYER_NAMES, name, strlen(name), &v) == 0 &&
		    (v.mv_size != TSR_DIGEST_LEN || memcmp(v.mv_data, id.bytes, TSR_DIGEST_LEN)))
			r = -EEXIST;
		else
			r = meta_put(store, txn, DB_LAYER_NAMES, name, strlen(name), id.bytes,
				     TSR_DIGEST_LEN);
	}
	if (!r && consumed) {
		uint8_t vkey[8];

		put_be64(vkey, consumed->id);
		r = meta_del(store, txn, DB_VOLUME_NAMES, consumed->name, strlen(consumed->name));
		if (!r)
			r = meta_del(store, txn, DB_VOLUMES, vkey, sizeof(vkey));
		if (!r)
			r = meta_del_prefix(store, txn, DB_VOLUME_CHUNKS, vkey, sizeof(vkey));
	}
	/* Crash ordering: the packs are synced before the transaction that
	 * references their objects commits. */
	if (!r)
		r = packs_sync_and_record(store, txn);
	if (r) {
		mdb_txn_abort(txn);
		return r;
	}
	r = meta_txn_commit(txn);
	if (r)
		return r;
	*ret_id = id;
	return 0;
}
