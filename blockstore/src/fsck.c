/* SPDX-License-Identifier: MIT */
/*
 * fsck: checks the whole store against its own invariants (FORMAT.md) and,
 * with TSR_FSCK_REPAIR, rebuilds what the self-describing packs allow.
 *
 *  1. every pack is walked header by header; each intact object (header
 *     CRC, then decompressed bytes against the digest) is a known copy
 *     (fsck_packs.c);
 *  2. every index record must decode and point at an intact copy of its
 *     object;
 *  3. every layer record must decode, name an existing parent, and its
 *     map must hash to its id; its entries' objects must be in the index;
 *  4. every refcount must equal the number of map entries naming it;
 *  5. every volume's record, name, parent, data file and chunk states must
 *     agree.
 * Damage is named with every layer and volume that reads through it.
 * Runs under commit_lock: no commit or gc changes the store meanwhile.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fsck.h"
#include "layer.h"
#include "meta.h"
#include "pack.h"
#include "store_handle.h"
#include "util.h"
#include "volume_internal.h"

/* ---- 2. index ---- */

struct index_walk {
	struct fsck *f;
	uint8_t *chunk;
	const struct tsr_progress *progress;
	uint64_t done, total;
};

static int check_index_record(const MDB_val *k, const MDB_val *v, void *arg)
{
	struct index_walk *w = arg;
	struct fsck *f = w->f;
	struct chunk_record rec;
	struct obj_info *o;
	char hex[TSR_ID_HEX_LEN + 1];
	int r;

	if (k->mv_size != TSR_DIGEST_LEN) {
		fsck_finding(f, "index: a key of %zu bytes is not a digest", k->mv_size);
		f->st.unrepairable++;
		return 0;
	}
	o = fsck_obj_get(&f->objs, k->mv_data);
	if (!o)
		return -ENOMEM;
	o->flags |= OBJ_IN_INDEX;
	fsck_hex(k->mv_data, hex);
	f->st.objects_checked++;
	if (chunk_record_decode(v, &rec)) {
		o->flags |= OBJ_RECORD_BAD;
		f->st.damaged_objects++;
		fsck_finding(f, "object %s: its index record is damaged", hex);
		return 0;
	}
	/* The walk verified the copy at this location already. */
	if ((o->flags & OBJ_COPY_FOUND) && o->good.pack_id == rec.pack_id &&
	    o->good.offset == rec.offset && o->good.codec == rec.codec &&
	    o->good.stored_len == rec.stored_len)
		r = 0;
	else
		r = pack_read_object(f->store, k->mv_data, &rec, w->chunk);
	if (r == -ENOMEM)
		return r;
	if (r) {
		o->flags |= OBJ_RECORD_BAD;
		f->st.damaged_objects++;
		fsck_finding(f, "object %s: %s (pack %08x offset %llu)", hex,
			r == -EBADMSG ? "header or digest mismatch" : "unreadable",
			rec.pack_id, (unsigned long long)rec.offset);
	}
	o->stored_refs = rec.refcount;
	if (w->progress && w->progress->update && (++w->done & 255) == 0)
		w->progress->update(w->progress->arg, w->done, w->total);
	return 0;
}

static int check_index(struct fsck *f, uint8_t *chunk, const struct tsr_progress *progress)
{
	struct tsr_store *store = f->store;
	struct index_walk w = { .f = f, .chunk = chunk, .progress = progress };
	MDB_txn *txn;
	MDB_stat ms;
	int r;

	r = meta_txn_begin(store, false, &txn);
	if (r)
		return r;
	w.total = mdb_stat(txn, store->dbi[DB_CHUNKS], &ms) == 0 ? ms.ms_entries : 0;
	r = meta_walk(store, txn, DB_CHUNKS, NULL, 0, check_index_record, &w);
	mdb_txn_abort(txn);
	return r;
}

/* ---- 3. layers ---- */

struct layers_walk {
	struct fsck *f;
	size_t cap;
};

static int load_layer(const MDB_val *k, const MDB_val *v, void *arg)
{
	struct layers_walk *w = arg;
	struct fsck *f = w->f;
	struct layer_info *l;

	if (array_reserve(&f->layers, &w->cap, f->nlayers + 1, sizeof(*f->layers)))
		return -ENOMEM;
	l = &f->layers[f->nlayers];
	memset(l, 0, sizeof(*l));
	if (k->mv_size != TSR_DIGEST_LEN)
		return 0;
	memcpy(l->id.bytes, k->mv_data, TSR_DIGEST_LEN);
	if (layer_record_decode(v, &l->rec)) {
		char hex[TSR_ID_HEX_LEN + 1];

		tsr_layer_id_to_hex(&l->id, hex);
		fsck_finding(f, "layer %s: its record is damaged", hex);
		l->damaged = true;
		f->st.unrepairable++;
	}
	f->nlayers++;
	return 0;
}

static int load_layers(struct fsck *f, MDB_txn *txn)
{
	struct layers_walk w = { .f = f };

	return meta_walk(f->store, txn, DB_LAYERS, NULL, 0, load_layer, &w);
}

static struct layer_info *layer_find(struct fsck *f, const struct tsr_layer_id *id)
{
	size_t lo = 0, hi = f->nlayers;

	/* f->layers is in LMDB key order: sorted by id. */
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = memcmp(f->layers[mid].id.bytes, id->bytes, TSR_DIGEST_LEN);

		if (!c)
			return &f->layers[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* A walk callback's "stop here, no error" (meta_walk returns it as is). */
#define WALK_STOP 1

struct map_walk {
	struct fsck *f;
	struct layer_info *l;
	const char *hex;
	bool repair;
	struct layer_entry *entries;
	size_t n, cap;
	uint64_t data;
};

static int check_map_entry(const MDB_val *k, const MDB_val *v, void *arg)
{
	struct map_walk *w = arg;
	struct fsck *f = w->f;
	struct layer_entry *e;
	struct obj_info *o;

	if (k->mv_size != TSR_DIGEST_LEN + 8)
		return WALK_STOP;
	if (array_reserve(&w->entries, &w->cap, w->n + 1, sizeof(*w->entries)))
		return -ENOMEM;
	e = &w->entries[w->n++];
	e->index = get_be64((const uint8_t *)k->mv_data + TSR_DIGEST_LEN);
	if (v->mv_size != TSR_DIGEST_LEN) {
		fsck_finding(f, "layer %s: map entry for chunk %llu is damaged", w->hex,
			(unsigned long long)e->index);
		memset(e->digest, 0xff, TSR_DIGEST_LEN);
		w->l->damaged = true;
		return 0;
	}
	memcpy(e->digest, v->mv_data, TSR_DIGEST_LEN);
	if (buf_is_zero(e->digest, TSR_DIGEST_LEN))
		return 0;
	w->data++;
	o = fsck_obj_get(&f->objs, e->digest);
	if (!o)
		return -ENOMEM;
	o->refs++;
	o->flags |= OBJ_REFERENCED;
	if (!(o->flags & OBJ_IN_INDEX) || (o->flags & OBJ_RECORD_BAD)) {
		char ohex[TSR_ID_HEX_LEN + 1];
		bool fixable = w->repair && (o->flags & OBJ_COPY_FOUND);

		fsck_hex(e->digest, ohex);
		fsck_finding(f, "object %s: %s, used by layer %s at chunk %llu%s", ohex,
			(o->flags & OBJ_IN_INDEX) ? "damaged" : "missing from the index",
			w->hex, (unsigned long long)e->index,
			fixable ? " (an intact copy exists in the packs)" : "");
		if (!fixable)
			w->l->damaged = true;
	}
	return 0;
}

static int check_layer_map(struct fsck *f, MDB_txn *txn, struct layer_info *l, bool repair,
			   MDB_txn *wtxn)
{
	struct tsr_store *store = f->store;
	char hex[TSR_ID_HEX_LEN + 1];
	struct map_walk w = { .f = f, .l = l, .hex = hex, .repair = repair };
	struct layer_entry *entries;
	size_t n;
	uint64_t data;
	struct tsr_layer_id computed;
	int r;

	tsr_layer_id_to_hex(&l->id, hex);
	r = meta_walk(store, txn, DB_LAYER_CHUNKS, l->id.bytes, TSR_DIGEST_LEN, check_map_entry,
		      &w);
	if (r == WALK_STOP)
		r = 0;
	entries = w.entries;
	n = w.n;
	data = w.data;
	if (r)
		goto out;
	if (!l->damaged || n) {
		r = layer_id_compute(store, l->rec.has_parent ? &l->rec.parent : NULL, l->rec.size,
				     entries, n, &computed);
		if (r)
			goto out;
		if (memcmp(computed.bytes, l->id.bytes, TSR_DIGEST_LEN)) {
			fsck_finding(f, "layer %s: its map does not hash to its id", hex);
			l->damaged = true;
			f->st.unrepairable++;
		}
	}
	if (l->rec.entries != n || l->rec.data_chunks != data) {
		fsck_finding(f, "layer %s: record counts %llu entries, map has %llu", hex,
			(unsigned long long)l->rec.entries, (unsigned long long)n);
		if (repair) {
			uint8_t val[LAYER_RECORD_LEN];

			l->rec.entries = n;
			l->rec.data_chunks = data;
			layer_record_encode(&l->rec, val);
			r = meta_put(store, wtxn, DB_LAYERS, l->id.bytes, TSR_DIGEST_LEN, val,
				     sizeof(val));
			f->st.repaired++;
		} else {
			f->st.unrepairable++;
		}
	}
	if (l->rec.has_parent && !layer_find(f, &l->rec.parent)) {
		char phex[TSR_ID_HEX_LEN + 1];

		tsr_layer_id_to_hex(&l->rec.parent, phex);
		fsck_finding(f, "layer %s: its parent %s does not exist", hex, phex);
		l->damaged = true;
		f->st.unrepairable++;
	}
out:
	free(entries);
	return r;
}

/* True when layer l or one of its ancestors is damaged. */
static bool chain_damaged(struct fsck *f, const struct tsr_layer_id *id,
			  struct tsr_layer_id *ret_culprit)
{
	for (size_t depth = 0; depth <= f->nlayers; depth++) {
		struct layer_info *l = layer_find(f, id);

		if (!l)
			return false;
		if (l->damaged) {
			*ret_culprit = l->id;
			return true;
		}
		if (!l->rec.has_parent)
			return false;
		id = &l->rec.parent;
	}
	return false; /* a cycle: reported as a hash mismatch already */
}

/* ---- 4. refcounts and repairs of the index ---- */

static int check_refcounts(struct fsck *f, MDB_txn *wtxn)
{
	for (size_t i = 0; i < f->objs.cap; i++) {
		struct obj_info *o = &f->objs.v[i];
		char hex[TSR_ID_HEX_LEN + 1];
		struct chunk_record rec;
		bool bad = (o->flags & OBJ_RECORD_BAD) || ((o->flags & OBJ_REFERENCED) &&
							    !(o->flags & OBJ_IN_INDEX));
		int r;

		if (!o->flags)
			continue;
		fsck_hex(o->digest, hex);
		if (bad) {
			if (!(o->flags & OBJ_COPY_FOUND)) {
				if (o->flags & OBJ_REFERENCED) {
					fsck_finding(f, "object %s: no intact copy in any pack: cannot repair",
						hex);
					f->st.unrepairable++;
				} else if (wtxn) {
					/* Garbage anyway: drop the broken record. */
					meta_del(f->store, wtxn, DB_CHUNKS, o->digest, TSR_DIGEST_LEN);
					f->st.repaired++;
				} else {
					f->st.unrepairable++;
				}
				continue;
			}
			if (!wtxn) {
				f->st.unrepairable++;
				continue;
			}
			rec = o->good;
			rec.refcount = o->refs;
			r = chunk_record_put(f->store, wtxn, o->digest, &rec);
			if (r)
				return r;
			fsck_finding(f, "object %s: index record rebuilt from pack %08x offset %llu", hex,
				rec.pack_id, (unsigned long long)rec.offset);
			f->st.repaired++;
			continue;
		}
		if (!(o->flags & OBJ_IN_INDEX) || o->stored_refs == o->refs)
			continue;
		f->st.refcount_errors++;
		fsck_finding(f, "object %s: refcount %llu, but %llu layer entries use it", hex,
			(unsigned long long)o->stored_refs, (unsigned long long)o->refs);
		if (!wtxn) {
			f->st.unrepairable++;
			continue;
		}
		r = chunk_record_get(f->store, wtxn, o->digest, &rec);
		if (r)
			return r;
		rec.refcount = o->refs;
		r = chunk_record_put(f->store, wtxn, o->digest, &rec);
		if (r)
			return r;
		f->st.repaired++;
	}
	return 0;
}

/* ---- 5. volumes and names ---- */

struct states_walk {
	struct fsck *f;
	const char *name;
	uint64_t nchunks;
	bool damaged;
};

static int check_volume_state(const MDB_val *k, const MDB_val *v, void *arg)
{
	struct states_walk *w = arg;
	uint64_t idx;

	if (k->mv_size != 16)
		return WALK_STOP;
	idx = get_be64((const uint8_t *)k->mv_data + 8);
	if (idx >= w->nchunks || v->mv_size != 1 ||
	    (*(uint8_t *)v->mv_data != CHUNK_PRESENT && *(uint8_t *)v->mv_data != CHUNK_ZEROED)) {
		fsck_finding(w->f, "volume '%s': chunk state of chunk %llu is damaged", w->name,
			(unsigned long long)idx);
		w->damaged = true;
	}
	return 0;
}

/* A walk of fsck's that also reads or writes through another transaction. */
struct txn_walk {
	struct fsck *f;
	MDB_txn *txn;
};

static int check_volume(const MDB_val *k, const MDB_val *v, void *arg)
{
	struct txn_walk *vw = arg;
	struct fsck *f = vw->f;
	struct tsr_store *store = f->store;
	struct volume_record rec;
	struct tsr_layer_id culprit;
	char path[64], chex[TSR_ID_HEX_LEN + 1];
	struct states_walk sw = { .f = f };
	uint64_t id;
	uint8_t prefix[8];
	MDB_val nv;
	struct stat st;
	bool damaged = false;

	if (k->mv_size != 8 || volume_record_decode(v, &rec)) {
		fsck_finding(f, "volume record damaged in the metadata");
		f->st.damaged_volumes++;
		f->st.unrepairable++;
		return 0;
	}
	id = get_be64(k->mv_data);
	if (meta_get(store, vw->txn, DB_VOLUME_NAMES, rec.name, strlen(rec.name), &nv) ||
	    nv.mv_size != 8 || get_be64(nv.mv_data) != id) {
		fsck_finding(f, "volume '%s': its name does not lead to it", rec.name);
		damaged = true;
	}
	if (rec.has_parent && !layer_find(f, &rec.parent)) {
		tsr_layer_id_to_hex(&rec.parent, chex);
		fsck_finding(f, "volume '%s': its parent layer %s does not exist", rec.name, chex);
		damaged = true;
	} else if (rec.has_parent && chain_damaged(f, &rec.parent, &culprit)) {
		tsr_layer_id_to_hex(&culprit, chex);
		fsck_finding(f, "volume '%s': reads through damaged layer %s", rec.name, chex);
		damaged = true;
	}
	volume_data_path(id, path, sizeof(path));
	if (fstatat(store->dir_fd, path, &st, 0) < 0 || (uint64_t)st.st_size != rec.size) {
		fsck_finding(f, "volume '%s': data file %s is missing or not %llu bytes", rec.name,
			path, (unsigned long long)rec.size);
		damaged = true;
	}
	sw.name = rec.name;
	sw.nchunks = (rec.size + store->chunk_size - 1) >> store->chunk_shift;
	put_be64(prefix, id);
	/* A failed walk of the states is not a finding of its own: what it
	 * could read was checked. */
	meta_walk(store, vw->txn, DB_VOLUME_CHUNKS, prefix, sizeof(prefix), check_volume_state,
		  &sw);
	if (damaged || sw.damaged) {
		f->st.damaged_volumes++;
		f->st.unrepairable++;
	}
	return 0;
}

static int check_volumes(struct fsck *f, MDB_txn *txn)
{
	struct txn_walk w = { .f = f, .txn = txn };

	return meta_walk(f->store, txn, DB_VOLUMES, NULL, 0, check_volume, &w);
}

static int check_layer_name(const MDB_val *k, const MDB_val *v, void *arg)
{
	struct txn_walk *w = arg;
	struct fsck *f = w->f;
	struct tsr_layer_id id;

	if (v->mv_size == TSR_DIGEST_LEN) {
		memcpy(id.bytes, v->mv_data, TSR_DIGEST_LEN);
		if (layer_find(f, &id))
			return 0;
	}
	fsck_finding(f, "layer name '%.*s' points at no layer", (int)k->mv_size,
		(const char *)k->mv_data);
	if (w->txn && meta_del(f->store, w->txn, DB_LAYER_NAMES, k->mv_data, k->mv_size) == 0)
		f->st.repaired++;
	else
		f->st.unrepairable++;
	return 0;
}

static int check_layer_names(struct fsck *f, MDB_txn *txn, MDB_txn *wtxn)
{
	struct txn_walk w = { .f = f, .txn = wtxn };

	return meta_walk(f->store, txn, DB_LAYER_NAMES, NULL, 0, check_layer_name, &w);
}

int tsr_store_fsck(struct tsr_store *store, unsigned flags,
		   void (*report)(void *arg, const char *line), void *arg,
		   const struct tsr_progress *progress, struct tsr_fsck_stats *ret_stats)
{
	struct fsck f = { .store = store, .flags = flags, .report = report, .arg = arg };
	bool repair = flags & TSR_FSCK_REPAIR;
	MDB_txn *txn = NULL, *wtxn = NULL;
	uint8_t *chunk = malloc(store->chunk_size);
	int r, dead = 0;

	if (!chunk)
		return -ENOMEM;
	pthread_mutex_lock(&store->commit_lock);
	if (mdb_reader_check(store->env, &dead) == 0 && dead > 0) {
		f.st.stale_readers = (uint64_t)dead;
		fsck_note(&f, "metadata: cleared %d reader slots left by dead processes", dead);
	}
	r = fsck_check_packs(&f, chunk);
	if (!r)
		r = check_index(&f, chunk, progress);
	if (!r)
		r = meta_txn_begin(store, false, &txn);
	if (!r && repair)
		r = meta_txn_begin(store, true, &wtxn);
	if (!r)
		r = load_layers(&f, txn);
	for (size_t i = 0; !r && i < f.nlayers; i++)
		if (!buf_is_zero(f.layers[i].id.bytes, TSR_DIGEST_LEN))
			r = check_layer_map(&f, txn, &f.layers[i], repair, wtxn);
	for (size_t i = 0; !r && i < f.nlayers; i++) {
		struct tsr_layer_id culprit;
		char hex[TSR_ID_HEX_LEN + 1], chex[TSR_ID_HEX_LEN + 1];

		if (f.layers[i].damaged) {
			f.st.damaged_layers++;
			continue;
		}
		if (f.layers[i].rec.has_parent &&
		    chain_damaged(&f, &f.layers[i].rec.parent, &culprit)) {
			tsr_layer_id_to_hex(&f.layers[i].id, hex);
			tsr_layer_id_to_hex(&culprit, chex);
			fsck_finding(&f, "layer %s: reads through damaged layer %s", hex, chex);
			f.st.damaged_layers++;
		}
	}
	if (!r)
		r = check_refcounts(&f, wtxn);
	if (!r)
		r = check_volumes(&f, txn);
	if (!r)
		r = check_layer_names(&f, txn, wtxn);
	if (txn)
		mdb_txn_abort(txn);
	if (wtxn) {
		if (!r)
			r = meta_txn_commit(wtxn);
		else
			mdb_txn_abort(wtxn);
	}
	pthread_mutex_unlock(&store->commit_lock);
	if (progress && progress->update)
		progress->update(progress->arg, 1, 1);
	free(chunk);
	free(f.objs.v);
	free(f.layers);
	if (r)
		return r;
	if (ret_stats)
		*ret_stats = f.st;
	/* Damage remains when anything could not be repaired, or, without
	 * repair, when anything was found at all. */
	if (repair)
		return f.st.unrepairable || f.st.damaged_layers || f.st.damaged_volumes ? 1 : 0;
	return f.findings ? 1 : 0;
}
