/* SPDX-License-Identifier: MIT */
/*
 * fsck: checks the whole store against its own invariants (FORMAT.md) and,
 * with TSR_FSCK_REPAIR, rebuilds what the self-describing packs allow.
 *
 *  1. every pack is walked header by header; each intact object (header
 *     CRC, then decompressed bytes against the digest) is a known copy;
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
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "codec.h"
#include "layer.h"
#include "meta.h"
#include "pack.h"
#include "store_handle.h"
#include "util.h"
#include "volume_internal.h"

enum {
	OBJ_IN_INDEX = 1,      /* the index has a record for it */
	OBJ_RECORD_BAD = 2,    /* the record does not point at an intact copy */
	OBJ_COPY_FOUND = 4,    /* an intact copy was found walking the packs */
	OBJ_REFERENCED = 8,    /* some layer entry names it */
};

struct obj_info {
	uint8_t digest[TSR_DIGEST_LEN];
	uint8_t flags;
	uint64_t refs;               /* layer entries naming it */
	uint64_t stored_refs;        /* the refcount its index record holds */
	struct chunk_record good;    /* an intact copy (OBJ_COPY_FOUND) */
};

struct obj_table {
	struct obj_info *v;
	size_t cap, count;
};

struct layer_info {
	struct tsr_layer_id id;
	struct layer_record rec;
	bool damaged;                /* its own map or record is damaged */
};

struct fsck {
	struct tsr_store *store;
	unsigned flags;
	void (*report)(void *arg, const char *line);
	void *arg;
	struct tsr_fsck_stats st;
	uint64_t findings;           /* lines reported as damage */
	struct obj_table objs;
	struct layer_info *layers;
	size_t nlayers;
};

static void vreport(struct fsck *f, const char *fmt, va_list ap)
{
	char line[1024];

	vsnprintf(line, sizeof(line), fmt, ap);
	if (f->report)
		f->report(f->arg, line);
}

/* A line about damage (or its repair). */
static void finding(struct fsck *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void finding(struct fsck *f, const char *fmt, ...)
{
	va_list ap;

	f->findings++;
	va_start(ap, fmt);
	vreport(f, fmt, ap);
	va_end(ap);
}

/* A line about something fsck did that was not damage. */
static void note(struct fsck *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(struct fsck *f, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreport(f, fmt, ap);
	va_end(ap);
}

static void hex_of(const uint8_t *digest, char *out)
{
	struct tsr_layer_id id;

	memcpy(id.bytes, digest, TSR_DIGEST_LEN);
	tsr_layer_id_to_hex(&id, out);
}

/* Finds or adds digest; NULL only when out of memory. */
static struct obj_info *obj_get(struct obj_table *t, const uint8_t *digest)
{
	size_t i;

	if (2 * (t->count + 1) > t->cap) {
		struct obj_table n = { .cap = t->cap ? 2 * t->cap : 1024 };

		n.v = calloc(n.cap, sizeof(*n.v));
		if (!n.v)
			return NULL;
		for (size_t j = 0; j < t->cap; j++) {
			if (buf_is_zero(t->v[j].digest, TSR_DIGEST_LEN))
				continue;
			*obj_get(&n, t->v[j].digest) = t->v[j];
		}
		free(t->v);
		*t = n;
	}
	memcpy(&i, digest, sizeof(i));
	for (i &= t->cap - 1;; i = (i + 1) & (t->cap - 1)) {
		struct obj_info *o = &t->v[i];

		if (!memcmp(o->digest, digest, TSR_DIGEST_LEN))
			return o;
		if (buf_is_zero(o->digest, TSR_DIGEST_LEN)) {
			memcpy(o->digest, digest, TSR_DIGEST_LEN);
			t->count++;
			return o;
		}
	}
}

/* ---- 1. packs ---- */

static bool header_valid(const uint8_t *h)
{
	return !memcmp(h, "TOBJ", 4) && get_le32(h + 60) == (uint32_t)crc32(0, h, 60);
}

/* The offset of the next valid object header at or after pos, or end.
 * Holes (space gc punched) are skipped with SEEK_DATA; data is scanned a
 * window at a time for the header magic. */
static uint64_t resync(int fd, uint64_t pos, uint64_t end)
{
	enum { WINDOW = 64 << 10 };
	uint8_t *buf = malloc(WINDOW + OBJECT_HEADER_LEN);
	uint64_t found = end;

	while (buf && pos + OBJECT_HEADER_LEN <= end) {
		off_t data = lseek(fd, (off_t)pos, SEEK_DATA);
		size_t len;

		if (data < 0)
			break;
		if ((uint64_t)data > pos)
			pos = (uint64_t)data;
		if (pos + OBJECT_HEADER_LEN > end)
			break;
		len = end - pos < WINDOW + OBJECT_HEADER_LEN ? (size_t)(end - pos)
							     : WINDOW + OBJECT_HEADER_LEN;
		if (pread_full(fd, buf, len, pos))
			break;
		for (size_t i = 0; i + OBJECT_HEADER_LEN <= len; i++) {
			if (buf[i] == 'T' && header_valid(buf + i)) {
				found = pos + i;
				goto out;
			}
		}
		pos += len - OBJECT_HEADER_LEN + 1;
	}
out:
	free(buf);
	return found;
}

static int walk_pack(struct fsck *f, uint32_t id, uint64_t committed_len, uint8_t *chunk)
{
	struct tsr_store *store = f->store;
	int fd = store->packs[id].fd;
	uint8_t hdr[OBJECT_HEADER_LEN];
	uint64_t off = PACK_HEADER_LEN;
	struct stat st;
	uint64_t end;

	if (fd < 0) {
		finding(f, "pack %08x: file missing; every object in it is lost", id);
		f->st.unrepairable++;
		return 0;
	}
	if (fstat(fd, &st) < 0)
		return -errno;
	end = (uint64_t)st.st_size < committed_len ? (uint64_t)st.st_size : committed_len;
	if ((uint64_t)st.st_size < committed_len) {
		finding(f, "pack %08x: truncated to %llu bytes, metadata expects %llu", id,
			(unsigned long long)st.st_size, (unsigned long long)committed_len);
		f->st.unrepairable++;
	}
	while (off + OBJECT_HEADER_LEN <= end) {
		struct chunk_record rec;
		uint32_t raw, stored;
		struct obj_info *o;

		if (pread_full(fd, hdr, sizeof(hdr), off))
			break;
		raw = get_le32(hdr + 8);
		stored = get_le32(hdr + 12);
		if (!header_valid(hdr) || raw != store->chunk_size || stored > codec_bound(raw) ||
		    stored > end - off - OBJECT_HEADER_LEN) {
			/* Space gc reclaimed, or a damaged header. */
			off = resync(fd, off + 1, end);
			continue;
		}
		rec = (struct chunk_record){ .pack_id = id, .codec = hdr[5], .offset = off,
					     .stored_len = stored, .raw_len = raw };
		if (pack_read_object(store, hdr + 16, &rec, chunk) == 0) {
			o = obj_get(&f->objs, hdr + 16);
			if (!o)
				return -ENOMEM;
			if (!(o->flags & OBJ_COPY_FOUND)) {
				o->flags |= OBJ_COPY_FOUND;
				o->good = rec;
			}
			f->st.bytes_checked += raw;
		}
		off += OBJECT_HEADER_LEN + stored;
	}
	return 0;
}

struct pack_walk {
	struct fsck *f;
	uint8_t *chunk;
};

static int check_pack(const MDB_val *k, const MDB_val *v, void *arg)
{
	struct pack_walk *w = arg;
	struct fsck *f = w->f;
	struct pack_record prec;
	uint32_t id;

	if (k->mv_size != 4 || pack_record_decode(v, &prec)) {
		finding(f, "pack record damaged in the metadata");
		f->st.unrepairable++;
		return 0;
	}
	id = get_be32(k->mv_data);
	if (id >= f->store->npacks) {
		finding(f, "pack %08x: recorded but not opened", id);
		f->st.unrepairable++;
		return 0;
	}
	return walk_pack(f, id, prec.committed_len, w->chunk);
}

static int check_packs(struct fsck *f, uint8_t *chunk)
{
	struct pack_walk w = { .f = f, .chunk = chunk };
	MDB_txn *txn;
	int r = meta_txn_begin(f->store, false, &txn);

	if (r)
		return r;
	r = meta_walk(f->store, txn, DB_PACKS, NULL, 0, check_pack, &w);
	mdb_txn_abort(txn);
	return r;
}

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
		finding(f, "index: a key of %zu bytes is not a digest", k->mv_size);
		f->st.unrepairable++;
		return 0;
	}
	o = obj_get(&f->objs, k->mv_data);
	if (!o)
		return -ENOMEM;
	o->flags |= OBJ_IN_INDEX;
	hex_of(k->mv_data, hex);
	f->st.objects_checked++;
	if (chunk_record_decode(v, &rec)) {
		o->flags |= OBJ_RECORD_BAD;
		f->st.damaged_objects++;
		finding(f, "object %s: its index record is damaged", hex);
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
		finding(f, "object %s: %s (pack %08x offset %llu)", hex,
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
		finding(f, "layer %s: its record is damaged", hex);
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
		finding(f, "layer %s: map entry for chunk %llu is damaged", w->hex,
			(unsigned long long)e->index);
		memset(e->digest, 0xff, TSR_DIGEST_LEN);
		w->l->damaged = true;
		return 0;
	}
	memcpy(e->digest, v->mv_data, TSR_DIGEST_LEN);
	if (buf_is_zero(e->digest, TSR_DIGEST_LEN))
		return 0;
	w->data++;
	o = obj_get(&f->objs, e->digest);
	if (!o)
		return -ENOMEM;
	o->refs++;
	o->flags |= OBJ_REFERENCED;
	if (!(o->flags & OBJ_IN_INDEX) || (o->flags & OBJ_RECORD_BAD)) {
		char ohex[TSR_ID_HEX_LEN + 1];
		bool fixable = w->repair && (o->flags & OBJ_COPY_FOUND);

		hex_of(e->digest, ohex);
		finding(f, "object %s: %s, used by layer %s at chunk %llu%s", ohex,
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
			finding(f, "layer %s: its map does not hash to its id", hex);
			l->damaged = true;
			f->st.unrepairable++;
		}
	}
	if (l->rec.entries != n || l->rec.data_chunks != data) {
		finding(f, "layer %s: record counts %llu entries, map has %llu", hex,
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
		finding(f, "layer %s: its parent %s does not exist", hex, phex);
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
		uint8_t val[CHUNK_RECORD_LEN];
		struct chunk_record rec;
		bool bad = (o->flags & OBJ_RECORD_BAD) || ((o->flags & OBJ_REFERENCED) &&
							    !(o->flags & OBJ_IN_INDEX));
		int r;

		if (!o->flags)
			continue;
		hex_of(o->digest, hex);
		if (bad) {
			if (!(o->flags & OBJ_COPY_FOUND)) {
				if (o->flags & OBJ_REFERENCED) {
					finding(f, "object %s: no intact copy in any pack: cannot repair",
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
			chunk_record_encode(&rec, val);
			r = meta_put(f->store, wtxn, DB_CHUNKS, o->digest, TSR_DIGEST_LEN, val,
				     sizeof(val));
			if (r)
				return r;
			finding(f, "object %s: index record rebuilt from pack %08x offset %llu", hex,
				rec.pack_id, (unsigned long long)rec.offset);
			f->st.repaired++;
			continue;
		}
		if (!(o->flags & OBJ_IN_INDEX) || o->stored_refs == o->refs)
			continue;
		f->st.refcount_errors++;
		finding(f, "object %s: refcount %llu, but %llu layer entries use it", hex,
			(unsigned long long)o->stored_refs, (unsigned long long)o->refs);
		if (!wtxn) {
			f->st.unrepairable++;
			continue;
		}
		{
			MDB_val v;

			r = meta_get(f->store, wtxn, DB_CHUNKS, o->digest, TSR_DIGEST_LEN, &v);
			if (!r)
				r = chunk_record_decode(&v, &rec);
			if (r)
				return r;
			rec.refcount = o->refs;
			chunk_record_encode(&rec, val);
			r = meta_put(f->store, wtxn, DB_CHUNKS, o->digest, TSR_DIGEST_LEN, val,
				     sizeof(val));
			if (r)
				return r;
			f->st.repaired++;
		}
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
		finding(w->f, "volume '%s': chunk state of chunk %llu is damaged", w->name,
			(unsigned long long)idx);
		w->damaged = true;
	}
	return 0;
}

struct volumes_walk {
	struct fsck *f;
	MDB_txn *txn;
};

static int check_volume(const MDB_val *k, const MDB_val *v, void *arg)
{
	struct volumes_walk *vw = arg;
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
		finding(f, "volume record damaged in the metadata");
		f->st.damaged_volumes++;
		f->st.unrepairable++;
		return 0;
	}
	id = get_be64(k->mv_data);
	if (meta_get(store, vw->txn, DB_VOLUME_NAMES, rec.name, strlen(rec.name), &nv) ||
	    nv.mv_size != 8 || get_be64(nv.mv_data) != id) {
		finding(f, "volume '%s': its name does not lead to it", rec.name);
		damaged = true;
	}
	if (rec.has_parent && !layer_find(f, &rec.parent)) {
		tsr_layer_id_to_hex(&rec.parent, chex);
		finding(f, "volume '%s': its parent layer %s does not exist", rec.name, chex);
		damaged = true;
	} else if (rec.has_parent && chain_damaged(f, &rec.parent, &culprit)) {
		tsr_layer_id_to_hex(&culprit, chex);
		finding(f, "volume '%s': reads through damaged layer %s", rec.name, chex);
		damaged = true;
	}
	volume_data_path(id, path, sizeof(path));
	if (fstatat(store->dir_fd, path, &st, 0) < 0 || (uint64_t)st.st_size != rec.size) {
		finding(f, "volume '%s': data file %s is missing or not %llu bytes", rec.name,
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
	struct volumes_walk w = { .f = f, .txn = txn };

	return meta_walk(f->store, txn, DB_VOLUMES, NULL, 0, check_volume, &w);
}

struct names_walk {
	struct fsck *f;
	MDB_txn *wtxn;
};

static int check_layer_name(const MDB_val *k, const MDB_val *v, void *arg)
{
	struct names_walk *w = arg;
	struct fsck *f = w->f;
	struct tsr_layer_id id;

	if (v->mv_size == TSR_DIGEST_LEN) {
		memcpy(id.bytes, v->mv_data, TSR_DIGEST_LEN);
		if (layer_find(f, &id))
			return 0;
	}
	finding(f, "layer name '%.*s' points at no layer", (int)k->mv_size,
		(const char *)k->mv_data);
	if (w->wtxn && meta_del(f->store, w->wtxn, DB_LAYER_NAMES, k->mv_data, k->mv_size) == 0)
		f->st.repaired++;
	else
		f->st.unrepairable++;
	return 0;
}

static int check_layer_names(struct fsck *f, MDB_txn *txn, MDB_txn *wtxn)
{
	struct names_walk w = { .f = f, .wtxn = wtxn };

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
		note(&f, "metadata: cleared %d reader slots left by dead processes", dead);
	}
	r = check_packs(&f, chunk);
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
			finding(&f, "layer %s: reads through damaged layer %s", hex, chex);
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
