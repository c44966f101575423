/* SPDX-License-Identifier: MIT */
/*
 * Garbage collection.  Runs under commit_lock, so no commit can take a
 * reference to an object gc is dropping (a commit dedups against the index
 * under the same lock).  Every step commits metadata before it frees
 * bytes, so an interrupted gc leaves a consistent store:
 *
 *   1. one transaction deletes the records of objects with refcount 0;
 *   2. their payloads are punched out of the packs (headers stay, so packs
 *      remain walkable);
 *   3. each pack (not the active one) whose live bytes are under half of
 *      it is compacted: live objects are verified and appended to the
 *      active pack, which is fdatasynced; one transaction points their
 *      records at the copies and drops the old pack's record; then the old
 *      file is deleted.  A pack with no live object is just deleted;
 *   4. in each closed volume's data file, allocated ranges of chunks that
 *      are not present (stale bytes of unflushed writes, zeroed chunks) are
 *      punched.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "meta.h"
#include "pack.h"
#include "store_handle.h"
#include "util.h"
#include "volume_internal.h"

struct object_ref {
	uint8_t digest[TSR_DIGEST_LEN];
	struct chunk_record rec;
};

struct object_list {
	struct object_ref *v;
	size_t n, cap;
};

static int object_list_add(struct object_list *l, const void *digest,
			   const struct chunk_record *rec)
{
	int r = array_reserve(&l->v, &l->cap, l->n + 1, sizeof(*l->v));

	if (r)
		return r;
	memcpy(l->v[l->n].digest, digest, TSR_DIGEST_LEN);
	l->v[l->n].rec = *rec;
	l->n++;
	return 0;
}

static uint64_t object_bytes(const struct chunk_record *rec)
{
	return OBJECT_HEADER_LEN + (uint64_t)rec->stored_len;
}

struct drop_walk {
	struct tsr_store *store;
	struct object_list *garbage;
	uint64_t *live;
};

static int drop_if_unreferenced(const MDB_val *k, const MDB_val *v, void *arg)
{
	struct drop_walk *w = arg;
	struct chunk_record rec;
	int r;

	/* Damaged records are fsck's business, not gc's. */
	if (k->mv_size != TSR_DIGEST_LEN || chunk_record_decode(v, &rec))
		return 0;
	if (rec.refcount) {
		if (rec.pack_id < w->store->npacks)
			w->live[rec.pack_id] += object_bytes(&rec);
		return 0;
	}
	r = object_list_add(w->garbage, k->mv_data, &rec);
	return r ? r : META_WALK_DELETE;
}

/* Step 1: drops unreferenced records, returns them in garbage and the live
 * bytes per pack in live[] (npacks entries). */
static int drop_unreferenced(struct tsr_store *store, struct object_list *garbage,
			     uint64_t *live)
{
	struct drop_walk w = { .store = store, .garbage = garbage, .live = live };
	MDB_txn *txn;
	int r;

	r = meta_txn_begin(store, true, &txn);
	if (r)
		return r;
	r = meta_walk_del(store, txn, DB_CHUNKS, NULL, 0, drop_if_unreferenced, &w);
	if (r) {
		mdb_txn_abort(txn);
		return r;
	}
	return meta_txn_commit(txn);
}

static int cmp_location(const void *a, const void *b)
{
	const struct chunk_record *x = &((const struct object_ref *)a)->rec;
	const struct chunk_record *y = &((const struct object_ref *)b)->rec;

	if (x->pack_id != y->pack_id)
		return x->pack_id < y->pack_id ? -1 : 1;
	return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* Step 2: punches the garbage out of the packs, each run of adjacent
 * garbage objects (headers included) as one range: objects are not block
 * aligned, so object by object would leave every shared block allocated,
 * and one call per object is slow. */
static void punch_garbage(struct tsr_store *store, struct object_list *garbage)
{
	size_t i = 0;

	if (!garbage->n)
		return; /* v may be NULL: qsort must not see it (UBSan) */
	qsort(garbage->v, garbage->n, sizeof(*garbage->v), cmp_location);
	while (i < garbage->n) {
		struct chunk_record run = garbage->v[i].rec;
		uint64_t end = run.offset + object_bytes(&run);

		for (i++; i < garbage->n && garbage->v[i].rec.pack_id == run.pack_id &&
			  garbage->v[i].rec.offset == end; i++)
			end += object_bytes(&garbage->v[i].rec);
		pack_punch_range(store, run.pack_id, run.offset, end - run.offset);
	}
}

struct pack_filter {
	uint32_t id;
	struct object_list *out;
};

static int collect_in_pack(const MDB_val *k, const MDB_val *v, void *arg)
{
	struct pack_filter *pf = arg;
	struct chunk_record rec;

	if (k->mv_size == TSR_DIGEST_LEN && chunk_record_decode(v, &rec) == 0 &&
	    rec.pack_id == pf->id)
		return object_list_add(pf->out, k->mv_data, &rec);
	return 0;
}

/* The live objects stored in pack id. */
static int live_objects_in(struct tsr_store *store, uint32_t id, struct object_list *out)
{
	struct pack_filter pf = { .id = id, .out = out };
	MDB_txn *txn;
	int r = meta_txn_begin(store, false, &txn);

	if (r)
		return r;
	r = meta_walk(store, txn, DB_CHUNKS, NULL, 0, collect_in_pack, &pf);
	mdb_txn_abort(txn);
	return r;
}

/* Step 3 for one pack. */
static int compact_pack(struct tsr_store *store, uint32_t id, struct tsr_gc_stats *st)
{
	struct object_list live = { 0 };
	uint8_t *scratch = NULL;
	MDB_txn *txn = NULL;
	uint8_t key[4];
	uint64_t copied = 0;
	int r;

	r = live_objects_in(store, id, &live);
	if (r)
		return r;
	if (live.n) {
		scratch = malloc(store->chunk_size);
		if (!scratch) {
			r = -ENOMEM;
			goto out;
		}
	}
	for (size_t i = 0; i < live.n; i++) {
		struct chunk_record moved;

		r = pack_copy_object(store, live.v[i].digest, &live.v[i].rec, scratch, &moved);
		if (r) {
			/* A damaged object stays where it is, and so does its
			 * pack: fsck reports it, gc does not move it. */
			goto rollback;
		}
		moved.refcount = live.v[i].rec.refcount;
		live.v[i].rec = moved;
		copied += object_bytes(&moved);
	}
	r = meta_txn_begin(store, true, &txn);
	if (r)
		goto rollback;
	for (size_t i = 0; i < live.n && !r; i++)
		r = chunk_record_put(store, txn, live.v[i].digest, &live.v[i].rec);
	put_be32(key, id);
	if (!r)
		r = meta_del(store, txn, DB_PACKS, key, sizeof(key));
	/* Crash ordering: the copies are durable before the records move. */
	if (!r)
		r = packs_sync_and_record(store, txn);
	if (r) {
		mdb_txn_abort(txn);
		goto rollback;
	}
	r = meta_txn_commit(txn);
	if (r)
		goto rollback;
	packs_committed(store);
	pack_remove(store, id);
	st->packs_removed++;
	if (live.n)
		st->packs_compacted++;
	st->live_bytes_copied += copied;
	goto out;
rollback:
	packs_rollback(store);
out:
	free(scratch);
	free(live.v);
	return r;
}

static int note_state(uint64_t index, uint8_t st, void *arg)
{
	((uint8_t *)arg)[index] = st;
	return 0;
}

/* Step 4 for one closed volume. */
static int trim_volume(struct tsr_store *store, uint64_t id, uint64_t size,
		       struct tsr_gc_stats *st)
{
	uint64_t nchunks = (size + store->chunk_size - 1) >> store->chunk_shift;
	uint8_t *state = calloc(nchunks ? nchunks : 1, 1);
	char path[64];
	MDB_txn *txn;
	off_t pos = 0;
	int r, fd;

	if (!state)
		return -ENOMEM;
	r = meta_txn_begin(store, false, &txn);
	if (r)
		goto out;
	r = volume_states_walk(store, txn, id, nchunks, note_state, state);
	mdb_txn_abort(txn);
	if (r)
		goto out;

	volume_data_path(id, path, sizeof(path));
	fd = openat(store->dir_fd, path, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		r = errno == ENOENT ? 0 : -errno;
		goto out;
	}
	/* Walk the allocated extents; punch what no present chunk covers. */
	for (;;) {
		off_t data = lseek(fd, pos, SEEK_DATA), hole;

		if (data < 0)
			break;
		hole = lseek(fd, data, SEEK_HOLE);
		if (hole <= data)
			break;
		for (uint64_t idx = (uint64_t)data >> store->chunk_shift;
		     idx < nchunks && (off_t)(idx << store->chunk_shift) < hole; idx++) {
			uint64_t a = idx << store->chunk_shift, b = a + store->chunk_size;

			if (state[idx] == CHUNK_PRESENT)
				continue;
			if (a < (uint64_t)data)
				a = (uint64_t)data;
			if (b > (uint64_t)hole)
				b = (uint64_t)hole;
			if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				      (off_t)a, (off_t)(b - a)) == 0)
				st->volume_bytes_freed += b - a;
		}
		pos = hole;
	}
	close(fd);
out:
	free(state);
	return r;
}

struct closed_volume {
	uint64_t id, size;
	char name[TSR_NAME_MAX + 1];
};

struct volumes_walk {
	struct closed_volume *v;
	size_t n, cap;
};

static int note_volume(const MDB_val *k, const MDB_val *v, void *arg)
{
	struct volumes_walk *w = arg;
	struct volume_record rec;

	if (k->mv_size != 8 || volume_record_decode(v, &rec))
		return 0;
	if (array_reserve(&w->v, &w->cap, w->n + 1, sizeof(*w->v)))
		return -ENOMEM;
	w->v[w->n].id = get_be64(k->mv_data);
	w->v[w->n].size = rec.size;
	strcpy(w->v[w->n].name, rec.name);
	w->n++;
	return 0;
}

static int trim_closed_volumes(struct tsr_store *store, struct tsr_gc_stats *st)
{
	struct volumes_walk w = { 0 };
	struct closed_volume *vols;
	size_t n;
	int r = meta_walk(store, NULL, DB_VOLUMES, NULL, 0, note_volume, &w);

	vols = w.v;
	n = w.n;
	for (size_t i = 0; i < n && !r; i++) {
		bool open = false;

		/* volumes_lock keeps the volume closed while its file is
		 * trimmed. */
		pthread_mutex_lock(&store->volumes_lock);
		for (struct tsr_volume *o = store->open_volumes; o && !open; o = o->next)
			open = o->id == vols[i].id;
		if (!open)
			r = trim_volume(store, vols[i].id, vols[i].size, st);
		if (r == -EBADMSG)
			r = 0; /* damaged states: fsck reports them; leave that file */
		pthread_mutex_unlock(&store->volumes_lock);
	}
	free(vols);
	return r;
}

static uint64_t volumes_allocated(struct tsr_store *store)
{
	struct tsr_store_stats s;

	return tsr_store_stat(store, &s) == 0 ? s.volume_bytes : 0;
}

int tsr_store_gc(struct tsr_store *store, const struct tsr_progress *progress,
		 struct tsr_gc_stats *ret_stats)
{
	struct tsr_gc_stats st = { 0 };
	struct object_list garbage = { 0 };
	uint64_t *live = NULL, total, done = 0;
	uint32_t npacks;
	int r;

	st.allocated_before = pack_allocated_bytes(store) + volumes_allocated(store);
	pthread_mutex_lock(&store->commit_lock);
	npacks = store->npacks;
	total = 2 + npacks;
	if (progress && progress->update)
		progress->update(progress->arg, 0, total);
	live = calloc(npacks ? npacks : 1, sizeof(*live));
	r = live ? drop_unreferenced(store, &garbage, live) : -ENOMEM;
	if (r)
		goto out;
	st.objects_removed = garbage.n;
	for (size_t i = 0; i < garbage.n; i++)
		st.object_bytes_removed += object_bytes(&garbage.v[i].rec);
	punch_garbage(store, &garbage);
	if (progress && progress->update)
		progress->update(progress->arg, ++done, total);
	for (uint32_t id = 1; id < npacks && !r; id++) {
		struct pack_file *p = &store->packs[id];

		/* The active pack takes appends; it is compacted once it is
		 * no longer active. */
		if (p->fd >= 0 && id != store->active_pack &&
		    p->committed_len > PACK_HEADER_LEN &&
		    live[id] < (p->committed_len - PACK_HEADER_LEN) / 2)
			r = compact_pack(store, id, &st);
		if (progress && progress->update)
			progress->update(progress->arg, ++done, total);
	}
	if (!r)
		r = trim_closed_volumes(store, &st);
	if (progress && progress->update)
		progress->update(progress->arg, total, total);
out:
	pthread_mutex_unlock(&store->commit_lock);
	free(live);
	free(garbage.v);
	st.allocated_after = pack_allocated_bytes(store) + volumes_allocated(store);
	if (!r && ret_stats)
		*ret_stats = st;
	return r;
}
