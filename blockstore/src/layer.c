/* SPDX-License-Identifier: MIT */
/*
 * Layers: immutable chunk maps with a parent.  Their ids, names, holds,
 * removal, and read-only access through flattened maps.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "layer.h"
#include "layer_map.h"
#include "meta.h"
#include "object.h"
#include "store_handle.h"
#include "store_log.h"
#include "util.h"

/* Canonical serialization (FORMAT.md, "Layer id"):
 *   "TSRLAYR1" | be32 chunk_size | be32 0 | be64 size | parent[32] (zeros:
 *   none) | be64 count | count x (be64 index | digest[32], zeros: hole)
 * with entries in ascending index order. */
int layer_id_compute(const struct tsr_store *store, const struct tsr_layer_id *parent,
		     uint64_t size, const struct layer_entry *entries, uint64_t n,
		     struct tsr_layer_id *ret_id)
{
	static const uint8_t magic[8] = { 'T', 'S', 'R', 'L', 'A', 'Y', 'R', '1' };
	uint8_t head[8 + 4 + 4 + 8 + TSR_DIGEST_LEN + 8], ent[8 + TSR_DIGEST_LEN];
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned int len = 0;
	int ok;

	if (!ctx)
		return -ENOMEM;
	memcpy(head, magic, 8);
	put_be32(head + 8, store->chunk_size);
	put_be32(head + 12, 0);
	put_be64(head + 16, size);
	if (parent)
		memcpy(head + 24, parent->bytes, TSR_DIGEST_LEN);
	else
		memset(head + 24, 0, TSR_DIGEST_LEN);
	put_be64(head + 24 + TSR_DIGEST_LEN, n);
	ok = EVP_DigestInit_ex(ctx, (const EVP_MD *)store->sha256, NULL) &&
	     EVP_DigestUpdate(ctx, head, sizeof(head));
	for (uint64_t i = 0; ok && i < n; i++) {
		put_be64(ent, entries[i].index);
		memcpy(ent + 8, entries[i].digest, TSR_DIGEST_LEN);
		ok = EVP_DigestUpdate(ctx, ent, sizeof(ent));
	}
	ok = ok && EVP_DigestFinal_ex(ctx, ret_id->bytes, &len) && len == TSR_DIGEST_LEN;
	EVP_MD_CTX_free(ctx);
	return ok ? 0 : -EIO;
}

static int parse_prefix(const char *spec, uint8_t *ret_bytes, size_t *ret_nibbles)
{
	size_t n = strlen(spec);

	if (n < 4 || n > TSR_ID_HEX_LEN)
		return -ENOENT;
	memset(ret_bytes, 0, TSR_DIGEST_LEN);
	for (size_t i = 0; i < n; i++) {
		char c = spec[i];
		int v = (c >= '0' && c <= '9') ? c - '0' :
			(c >= 'a' && c <= 'f') ? c - 'a' + 10 :
			(c >= 'A' && c <= 'F') ? c - 'A' + 10 : -1;

		if (v < 0)
			return -ENOENT;
		ret_bytes[i / 2] |= (uint8_t)(i % 2 ? v : v << 4);
	}
	*ret_nibbles = n;
	return 0;
}

static bool id_has_prefix(const uint8_t *id, const uint8_t *prefix, size_t nibbles)
{
	if (memcmp(id, prefix, nibbles / 2))
		return false;
	return nibbles % 2 == 0 || (id[nibbles / 2] & 0xf0) == prefix[nibbles / 2];
}

struct prefix_walk {
	const uint8_t *prefix;
	size_t nibbles;
	int count;
	int (*fn)(const struct tsr_layer_id *id, const char *name, void *arg);
	void *arg;
};

static int match_prefix(const MDB_val *k, const MDB_val *v, void *arg)
{
	struct prefix_walk *w = arg;
	struct tsr_layer_id id;

	(void)v;
	/* The walk covers the whole bytes of the prefix; an odd last nibble
	 * is checked here. */
	if (k->mv_size != TSR_DIGEST_LEN || !id_has_prefix(k->mv_data, w->prefix, w->nibbles))
		return 0;
	memcpy(id.bytes, k->mv_data, TSR_DIGEST_LEN);
	w->count++;
	return w->fn ? w->fn(&id, NULL, w->arg) : 0;
}

int tsr_layer_matches(struct tsr_store *store, const char *spec,
		      int (*fn)(const struct tsr_layer_id *id, const char *name, void *arg),
		      void *arg)
{
	uint8_t prefix[TSR_DIGEST_LEN];
	struct prefix_walk w = { .prefix = prefix, .fn = fn, .arg = arg };
	MDB_txn *txn;
	MDB_val v;
	int r;

	r = meta_txn_begin(store, false, &txn);
	if (r)
		return r;
	if (name_check(spec) == 0 &&
	    meta_get(store, txn, DB_LAYER_NAMES, spec, strlen(spec), &v) == 0 &&
	    v.mv_size == TSR_DIGEST_LEN) {
		struct tsr_layer_id id;

		memcpy(id.bytes, v.mv_data, TSR_DIGEST_LEN);
		w.count++;
		if (fn)
			r = fn(&id, spec, arg);
	}
	if (!r && parse_prefix(spec, prefix, &w.nibbles) == 0)
		r = meta_walk(store, txn, DB_LAYERS, prefix, w.nibbles / 2, match_prefix, &w);
	mdb_txn_abort(txn);
	return r ? r : w.count;
}

struct resolve_state {
	struct tsr_layer_id by_name, by_id;
	int names, ids;
};

static int resolve_one(const struct tsr_layer_id *id, const char *name, void *arg)
{
	struct resolve_state *s = arg;

	if (name) {
		s->by_name = *id;
		s->names++;
	} else {
		s->by_id = *id;
		s->ids++;
	}
	return 0;
}

int tsr_layer_resolve(struct tsr_store *store, const char *spec, struct tsr_layer_id *ret_id)
{
	struct resolve_state s = { 0 };
	int r = tsr_layer_matches(store, spec, resolve_one, &s);

	if (r < 0)
		return r;
	/* A name wins over an id prefix: names are chosen by people. */
	if (s.names) {
		*ret_id = s.by_name;
		return 0;
	}
	if (s.ids == 1) {
		*ret_id = s.by_id;
		return 0;
	}
	return s.ids ? TSR_ERR_AMBIGUOUS : -ENOENT;
}

int tsr_layer_stat(struct tsr_store *store, const struct tsr_layer_id *id,
		   struct tsr_layer_info *ret)
{
	struct layer_record rec;
	MDB_txn *txn;
	int r = meta_txn_begin(store, false, &txn);

	if (r)
		return r;
	r = layer_record_get(store, txn, id, &rec);
	mdb_txn_abort(txn);
	if (r)
		return r;
	*ret = (struct tsr_layer_info){
		.id = *id,
		.has_parent = rec.has_parent,
		.parent = rec.parent,
		.size = rec.size,
		.created = rec.created,
		.holds = rec.holds,
		.depth = rec.depth,
		.entries = rec.entries,
		.data_chunks = rec.data_chunks,
		.new_objects = rec.new_objects,
		.new_stored_bytes = rec.new_stored_bytes,
	};
	return 0;
}

struct layer_list_walk {
	struct tsr_store *store;
	int (*fn)(const struct tsr_layer_info *info, void *arg);
	void *arg;
};

static int layer_list_one(const MDB_val *k, const MDB_val *v, void *arg)
{
	struct layer_list_walk *w = arg;
	struct layer_record rec;
	struct tsr_layer_info info;

	if (k->mv_size != TSR_DIGEST_LEN || layer_record_decode(v, &rec)) {
		/* One damaged record must not hide the others. */
		struct tsr_layer_id bad = { 0 };
		char hex[TSR_ID_HEX_LEN + 1];

		memcpy(bad.bytes, k->mv_data, k->mv_size < TSR_DIGEST_LEN ? k->mv_size : TSR_DIGEST_LEN);
		tsr_layer_id_to_hex(&bad, hex);
		store_log(w->store, "layer %s: its record is damaged; skipped (run 'tessera fsck')",
			  hex);
		return 0;
	}
	info = (struct tsr_layer_info){
		.has_parent = rec.has_parent, .parent = rec.parent,
		.size = rec.size, .created = rec.created, .holds = rec.holds,
		.depth = rec.depth, .entries = rec.entries,
		.data_chunks = rec.data_chunks, .new_objects = rec.new_objects,
		.new_stored_bytes = rec.new_stored_bytes,
	};
	memcpy(info.id.bytes, k->mv_data, TSR_DIGEST_LEN);
	return w->fn(&info, w->arg);
}

int tsr_layer_list(struct tsr_store *store,
		   int (*fn)(const struct tsr_layer_info *info, void *arg), void *arg)
{
	struct layer_list_walk w = { .store = store, .fn = fn, .arg = arg };
	MDB_txn *txn;
	int r = meta_txn_begin(store, false, &txn);

	if (r)
		return r;
	r = meta_walk(store, txn, DB_LAYERS, NULL, 0, layer_list_one, &w);
	mdb_txn_abort(txn);
	return r;
}

struct names_walk_ctx {
	const struct tsr_layer_id *id;
	int (*fn)(const char *name, void *arg);
	void *arg;
};

static int names_walk_one(const MDB_val *k, const MDB_val *v, void *arg)
{
	struct names_walk_ctx *c = arg;
	char name[TSR_NAME_MAX + 1];

	if (v->mv_size != TSR_DIGEST_LEN || memcmp(v->mv_data, c->id->bytes, TSR_DIGEST_LEN) ||
	    k->mv_size > TSR_NAME_MAX)
		return 0;
	memcpy(name, k->mv_data, k->mv_size);
	name[k->mv_size] = '\0';
	return c->fn(name, c->arg);
}

/* Calls fn(name) for each name of id; the walk is over all names (a store
 * has few). */
static int names_walk(struct tsr_store *store, MDB_txn *txn, const struct tsr_layer_id *id,
		      int (*fn)(const char *name, void *arg), void *arg)
{
	struct names_walk_ctx c = { .id = id, .fn = fn, .arg = arg };

	return meta_walk(store, txn, DB_LAYER_NAMES, NULL, 0, names_walk_one, &c);
}

int tsr_layer_names(struct tsr_store *store, const struct tsr_layer_id *id,
		    int (*fn)(const char *name, void *arg), void *arg)
{
	MDB_txn *txn;
	int r = meta_txn_begin(store, false, &txn);

	if (r)
		return r;
	r = names_walk(store, txn, id, fn, arg);
	mdb_txn_abort(txn);
	return r;
}

int tsr_layer_name_set(struct tsr_store *store, const char *name,
		       const struct tsr_layer_id *id)
{
	struct layer_record rec;
	MDB_txn *txn;
	MDB_val v;
	int r;

	r = name_check(name);
	if (r)
		return r;
	r = meta_txn_begin(store, true, &txn);
	if (r)
		return r;
	r = layer_record_get(store, txn, id, &rec);
	if (r)
		goto abort;
	if (meta_get(store, txn, DB_LAYER_NAMES, name, strlen(name), &v) == 0) {
		r = (v.mv_size == TSR_DIGEST_LEN && !memcmp(v.mv_data, id->bytes, TSR_DIGEST_LEN))
			    ? 0 : -EEXIST;
		goto abort;
	}
	r = meta_put(store, txn, DB_LAYER_NAMES, name, strlen(name), id->bytes, TSR_DIGEST_LEN);
	if (r)
		goto abort;
	return meta_txn_commit(txn);
abort:
	mdb_txn_abort(txn);
	return r;
}

int tsr_layer_name_move(struct tsr_store *store, const char *from, const char *to)
{
	uint8_t id[TSR_DIGEST_LEN];
	MDB_txn *txn;
	MDB_val v;
	int r;

	r = name_check(from);
	if (!r)
		r = name_check(to);
	if (r)
		return r;
	r = meta_txn_begin(store, true, &txn);
	if (r)
		return r;
	r = meta_get(store, txn, DB_LAYER_NAMES, from, strlen(from), &v);
	if (!r && v.mv_size != TSR_DIGEST_LEN)
		r = -EBADMSG;
	if (r)
		goto abort;
	memcpy(id, v.mv_data, TSR_DIGEST_LEN);
	if (meta_get(store, txn, DB_LAYER_NAMES, to, strlen(to), &v) == 0) {
		r = -EEXIST;
		goto abort;
	}
	r = meta_put(store, txn, DB_LAYER_NAMES, to, strlen(to), id, TSR_DIGEST_LEN);
	if (!r)
		r = meta_del(store, txn, DB_LAYER_NAMES, from, strlen(from));
	if (r)
		goto abort;
	return meta_txn_commit(txn);
abort:
	mdb_txn_abort(txn);
	return r;
}

static int layer_is_child(const MDB_val *k, const MDB_val *v, void *arg)
{
	struct layer_record rec;

	(void)k;
	return layer_record_decode(v, &rec) == 0 && rec.has_parent &&
	       !memcmp(rec.parent.bytes, arg, TSR_DIGEST_LEN);
}

static int volume_is_child(const MDB_val *k, const MDB_val *v, void *arg)
{
	struct volume_record rec;

	(void)k;
	return volume_record_decode(v, &rec) == 0 && rec.has_parent &&
	       !memcmp(rec.parent.bytes, arg, TSR_DIGEST_LEN);
}

static bool layer_has_children(struct tsr_store *store, MDB_txn *txn, const struct tsr_layer_id *id)
{
	/* A walk stops at the first child with 1; an error counts as a child
	 * (refuse removal rather than orphan one). */
	return meta_walk(store, txn, DB_LAYERS, NULL, 0, layer_is_child, (void *)id->bytes) ||
	       meta_walk(store, txn, DB_VOLUMES, NULL, 0, volume_is_child, (void *)id->bytes);
}

static int delete_name(const char *name, void *arg)
{
	void **a = arg;

	return meta_del(a[0], a[1], DB_LAYER_NAMES, name, strlen(name));
}

struct delete_walk {
	struct tsr_store *store;
	MDB_txn *txn;
};

/* Drops one map entry and the reference it holds. */
static int delete_entry(const MDB_val *k, const MDB_val *v, void *arg)
{
	struct delete_walk *w = arg;
	uint8_t digest[TSR_DIGEST_LEN];
	struct chunk_record rec;
	int r;

	if (k->mv_size != TSR_DIGEST_LEN + 8)
		return 0; /* not a map entry of this layer: leave it */
	if (v->mv_size != TSR_DIGEST_LEN)
		return -EBADMSG;
	memcpy(digest, v->mv_data, TSR_DIGEST_LEN);
	if (buf_is_zero(digest, TSR_DIGEST_LEN))
		return META_WALK_DELETE;
	r = chunk_record_get(w->store, w->txn, digest, &rec);
	if (!r) {
		if (rec.refcount)
			rec.refcount--;
		r = chunk_record_put(w->store, w->txn, digest, &rec);
	} else if (r == -ENOENT) {
		r = 0; /* already missing: damage for fsck, not a reason to keep the layer */
	}
	return r ? r : META_WALK_DELETE;
}

/* Drops the layer's map entries and the references they hold (txn open,
 * commit_lock held).  Objects left with no reference stay in their packs
 * until gc reclaims them. */
static int layer_delete(struct tsr_store *store, MDB_txn *txn, const struct tsr_layer_id *id)
{
	struct delete_walk w = { .store = store, .txn = txn };
	void *arg[2] = { store, txn };
	int r;

	r = meta_walk_del(store, txn, DB_LAYER_CHUNKS, id->bytes, TSR_DIGEST_LEN, delete_entry, &w);
	if (r)
		return r;
	r = names_walk(store, txn, id, delete_name, arg);
	if (!r)
		r = meta_del(store, txn, DB_LAYERS, id->bytes, TSR_DIGEST_LEN);
	return r;
}

int tsr_layer_remove(struct tsr_store *store, const struct tsr_layer_id *id, const char *name)
{
	struct layer_record rec;
	uint8_t val[LAYER_RECORD_LEN];
	MDB_txn *txn;
	MDB_val v;
	int r;

	pthread_mutex_lock(&store->commit_lock);
	r = meta_txn_begin(store, true, &txn);
	if (r)
		goto out;
	r = layer_record_get(store, txn, id, &rec);
	if (r)
		goto abort;
	if (name) {
		r = meta_get(store, txn, DB_LAYER_NAMES, name, strlen(name), &v);
		if (!r && (v.mv_size != TSR_DIGEST_LEN ||
			   memcmp(v.mv_data, id->bytes, TSR_DIGEST_LEN)))
			r = -ENOENT;
		if (r)
			goto abort;
	}
	if (rec.holds <= 1) {
		if (layer_has_children(store, txn, id)) {
			r = -EBUSY;
			goto abort;
		}
		r = layer_delete(store, txn, id);
	} else {
		rec.holds--;
		layer_record_encode(&rec, val);
		r = meta_put(store, txn, DB_LAYERS, id->bytes, TSR_DIGEST_LEN, val, sizeof(val));
		if (!r && name)
			r = meta_del(store, txn, DB_LAYER_NAMES, name, strlen(name));
	}
	if (r)
		goto abort;
	r = meta_txn_commit(txn);
	goto out;
abort:
	mdb_txn_abort(txn);
out:
	pthread_mutex_unlock(&store->commit_lock);
	return r;
}

int tsr_layer_hold(struct tsr_store *store, const struct tsr_layer_id *id)
{
	struct layer_record rec;
	uint8_t val[LAYER_RECORD_LEN];
	MDB_txn *txn;
	int r;

	pthread_mutex_lock(&store->commit_lock);
	r = meta_txn_begin(store, true, &txn);
	if (r)
		goto out;
	r = layer_record_get(store, txn, id, &rec);
	if (!r && rec.holds == UINT32_MAX)
		r = -EOVERFLOW;
	if (!r) {
		rec.holds++;
		layer_record_encode(&rec, val);
		r = meta_put(store, txn, DB_LAYERS, id->bytes, TSR_DIGEST_LEN, val, sizeof(val));
	}
	if (r)
		mdb_txn_abort(txn);
	else
		r = meta_txn_commit(txn);
out:
	pthread_mutex_unlock(&store->commit_lock);
	return r;
}

int tsr_layer_open(struct tsr_store *store, const struct tsr_layer_id *id,
		   struct tsr_layer **ret_layer)
{
	struct tsr_layer *layer = calloc(1, sizeof(*layer));
	int r;

	if (!layer)
		return -ENOMEM;
	layer->store = store;
	r = layer_map_get(store, id, &layer->map);
	if (r) {
		free(layer);
		return r;
	}
	*ret_layer = layer;
	return 0;
}

void tsr_layer_close(struct tsr_layer *layer)
{
	if (!layer)
		return;
	layer_map_put(layer->store, layer->map);
	free(layer);
}

uint64_t tsr_layer_size(const struct tsr_layer *layer)
{
	return layer->map->size;
}

int tsr_layer_read(struct tsr_layer *layer, void *buf, size_t len, uint64_t off)
{
	struct tsr_store *store = layer->store;
	uint8_t *dst = buf;

	if (off > layer->map->size || len > layer->map->size - off)
		return -EINVAL;
	while (len) {
		uint64_t idx = off >> store->chunk_shift;
		uint32_t in = (uint32_t)(off & (store->chunk_size - 1));
		size_t n = store->chunk_size - in;
		const uint8_t *digest = layer_map_lookup(layer->map, idx);
		int r;

		if (n > len)
			n = len;
		if (digest) {
			r = object_read(store, digest, in, (uint32_t)n, dst);
			if (r)
				return r;
		} else {
			memset(dst, 0, n);
		}
		dst += n;
		off += n;
		len -= n;
	}
	return 0;
}
