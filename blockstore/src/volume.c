/* SPDX-License-Identifier: MIT */
/*
 * Volumes: writable, fixed-size, byte-addressed.  Writes land in place in
 * the volume's sparse data file; a per-chunk state (ABSENT / PRESENT /
 * ZEROED, see internal.h) says where each chunk reads from.  Nothing on
 * this path hashes or compresses: commit does that.
 *
 * Invariants
 *  - A chunk becomes PRESENT only after the data file holds all of it:
 *    the bytes written, and for the rest either the parent's bytes (copy on
 *    write of that one chunk) or zeros (a punched hole).
 *  - The state of a chunk changes only under its stripe lock, and only
 *    after the data-file change it describes was issued; so a flush that
 *    snapshots states and then fdatasyncs the file never persists a state
 *    whose data it did not sync.
 *
 * Flush protocol (FORMAT.md, "Flush"): fdatasync the data file, then
 * persist the changed chunk states in one LMDB transaction.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

/* Volumes may not address more chunks than a layer map slot can count. */
#define VOLUME_MAX_CHUNKS (1ull << 31)

static int sync_volume_dir(struct tsr_store *store)
{
	int fd = openat(store->dir_fd, TSR_VOLUME_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int r = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		r = -errno;
	close(fd);
	return r;
}

static int volume_id_by_name(struct tsr_store *store, MDB_txn *txn, const char *name,
			     uint64_t *ret_id)
{
	MDB_val v;
	int r = meta_get(store, txn, DB_VOLUME_NAMES, name, strlen(name), &v);

	if (r)
		return r;
	if (v.mv_size != 8)
		return -EBADMSG;
	*ret_id = get_be64(v.mv_data);
	return 0;
}

int tsr_volume_create(struct tsr_store *store, const char *name, uint64_t size,
		      const struct tsr_layer_id *parent)
{
	struct volume_record rec = { 0 };
	uint8_t key[8], val[64 + TSR_NAME_MAX];
	char path[64];
	MDB_txn *txn;
	uint64_t id;
	MDB_val v;
	int r, fd;

	r = name_check(name);
	if (r)
		return r;
	r = meta_txn_begin(store, true, &txn);
	if (r)
		return r;
	if (meta_get(store, txn, DB_VOLUME_NAMES, name, strlen(name), &v) == 0) {
		r = -EEXIST;
		goto abort;
	}
	if (parent) {
		struct layer_record lrec;

		r = layer_record_get(store, txn, parent, &lrec);
		if (r)
			goto abort;
		if (size == 0)
			size = lrec.size;
		if (size < lrec.size) {
			r = -EINVAL;
			goto abort;
		}
		rec.has_parent = true;
		rec.parent = *parent;
	}
	if (size == 0 || ((size - 1) >> store->chunk_shift) >= VOLUME_MAX_CHUNKS ||
	    size > (uint64_t)INT64_MAX) {
		r = -EINVAL;
		goto abort;
	}
	rec.size = size;
	rec.created = now_seconds();
	strcpy(rec.name, name);
	r = meta_get_u64(store, txn, "next_volume_id", &id);
	if (!r)
		r = meta_put_u64(store, txn, "next_volume_id", id + 1);
	if (r)
		goto abort;

	/* The data file exists (sparse, full size) before the metadata that
	 * names it; a crash in between leaves an orphan swept at open. */
	volume_data_path(id, path, sizeof(path));
	fd = openat(store->dir_fd, path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		r = -errno;
		goto abort;
	}
	if (ftruncate(fd, (off_t)size) < 0 || fsync(fd) < 0)
		r = -errno;
	close(fd);
	if (!r)
		r = sync_volume_dir(store);
	if (r)
		goto unlink;

	put_be64(key, id);
	r = meta_put(store, txn, DB_VOLUMES, key, sizeof(key), val,
		     volume_record_encode(&rec, val));
	if (!r)
		r = meta_put(store, txn, DB_VOLUME_NAMES, name, strlen(name), key, sizeof(key));
	if (r)
		goto unlink;
	r = meta_txn_commit(txn);
	if (r) {
		unlinkat(store->dir_fd, path, 0);
		return r;
	}
	return 0;
unlink:
	unlinkat(store->dir_fd, path, 0);
abort:
	mdb_txn_abort(txn);
	return r;
}

static struct tsr_volume *find_open(struct tsr_store *store, const char *name)
{
	for (struct tsr_volume *v = store->open_volumes; v; v = v->next)
		if (!strcmp(v->name, name))
			return v;
	return NULL;
}

int tsr_volume_remove(struct tsr_store *store, const char *name)
{
	uint8_t key[8];
	char path[64];
	MDB_txn *txn;
	uint64_t id;
	int r;

	r = name_check(name);
	if (r)
		return r;
	pthread_mutex_lock(&store->volumes_lock);
	if (find_open(store, name)) {
		r = -EBUSY;
		goto out;
	}
	r = meta_txn_begin(store, true, &txn);
	if (r)
		goto out;
	r = volume_id_by_name(store, txn, name, &id);
	if (r)
		goto abort;
	put_be64(key, id);
	r = meta_del(store, txn, DB_VOLUME_NAMES, name, strlen(name));
	if (!r)
		r = meta_del(store, txn, DB_VOLUMES, key, sizeof(key));
	if (!r)
		r = meta_del_prefix(store, txn, DB_VOLUME_CHUNKS, key, sizeof(key));
	if (r)
		goto abort;
	r = meta_txn_commit(txn);
	if (r)
		goto out;
	/* After the commit: a crash before this unlink leaves an orphan. */
	volume_data_path(id, path, sizeof(path));
	unlinkat(store->dir_fd, path, 0);
	goto out;
abort:
	mdb_txn_abort(txn);
out:
	pthread_mutex_unlock(&store->volumes_lock);
	return r;
}

struct states_walk {
	uint64_t nchunks;
	int (*fn)(uint64_t index, uint8_t state, void *arg);
	void *arg;
};

static int states_walk_one(const MDB_val *k, const MDB_val *v, void *arg)
{
	struct states_walk *w = arg;
	uint64_t idx;
	uint8_t st;

	if (k->mv_size != 16 || v->mv_size != 1)
		return -EBADMSG;
	idx = get_be64((const uint8_t *)k->mv_data + 8);
	st = *(const uint8_t *)v->mv_data;
	if (idx >= w->nchunks || (st != CHUNK_PRESENT && st != CHUNK_ZEROED))
		return -EBADMSG;
	return w->fn(idx, st, w->arg);
}

int volume_states_walk(struct tsr_store *store, MDB_txn *txn, uint64_t id, uint64_t nchunks,
		       int (*fn)(uint64_t index, uint8_t state, void *arg), void *arg)
{
	struct states_walk w = { .nchunks = nchunks, .fn = fn, .arg = arg };
	uint8_t prefix[8];

	put_be64(prefix, id);
	return meta_walk(store, txn, DB_VOLUME_CHUNKS, prefix, sizeof(prefix), states_walk_one, &w);
}

static int count_state(uint64_t index, uint8_t state, void *arg)
{
	struct tsr_volume_info *info = arg;

	(void)index;
	if (state == CHUNK_PRESENT)
		info->chunks_written++;
	else
		info->chunks_zeroed++;
	return 0;
}

static int volume_info_load(struct tsr_store *store, MDB_txn *txn, uint64_t id,
			    struct tsr_volume_info *ret)
{
	struct volume_record rec;
	uint8_t key[8];
	char path[64];
	MDB_val v;
	int r;

	put_be64(key, id);
	r = meta_get(store, txn, DB_VOLUMES, key, sizeof(key), &v);
	if (!r)
		r = volume_record_decode(&v, &rec);
	if (r)
		return r == -ENOENT ? -EBADMSG : r;
	memset(ret, 0, sizeof(*ret));
	strcpy(ret->name, rec.name);
	ret->id = id;
	ret->size = rec.size;
	ret->has_parent = rec.has_parent;
	ret->parent = rec.parent;
	ret->created = rec.created;
	r = volume_states_walk(store, txn, id,
			       (rec.size + store->chunk_size - 1) >> store->chunk_shift, count_state, ret);
	if (r)
		return r;
	volume_data_path(id, path, sizeof(path));
	ret->allocated_bytes = file_allocated_bytes(store->dir_fd, path);
	return 0;
}

int tsr_volume_stat(struct tsr_store *store, const char *name,
		    struct tsr_volume_info *ret_info)
{
	MDB_txn *txn;
	uint64_t id;
	int r;

	r = name_check(name);
	if (r)
		return r;
	r = meta_txn_begin(store, false, &txn);
	if (r)
		return r;
	r = volume_id_by_name(store, txn, name, &id);
	if (!r)
		r = volume_info_load(store, txn, id, ret_info);
	mdb_txn_abort(txn);
	return r;
}

struct list_walk {
	struct tsr_store *store;
	MDB_txn *txn;
	int (*fn)(const struct tsr_volume_info *info, void *arg);
	void *arg;
};

static int list_one(const MDB_val *k, const MDB_val *v, void *arg)
{
	struct list_walk *w = arg;
	struct tsr_volume_info info;
	int r;

	(void)k;
	if (v->mv_size != 8)
		return -EBADMSG;
	r = volume_info_load(w->store, w->txn, get_be64(v->mv_data), &info);
	return r ? r : w->fn(&info, w->arg);
}

int tsr_volume_list(struct tsr_store *store,
		    int (*fn)(const struct tsr_volume_info *info, void *arg), void *arg)
{
	struct list_walk w = { .store = store, .fn = fn, .arg = arg };
	int r = meta_txn_begin(store, false, &w.txn);

	if (r)
		return r;
	r = meta_walk(store, w.txn, DB_VOLUME_NAMES, NULL, 0, list_one, &w);
	mdb_txn_abort(w.txn);
	return r;
}

/* ---- open / close ---- */

void volume_free(struct tsr_volume *vol)
{
	if (vol->parent)
		layer_map_put(vol->store, vol->parent);
	if (vol->data_fd >= 0)
		close(vol->data_fd);
	for (int i = 0; i < VOLUME_STRIPES; i++)
		pthread_mutex_destroy(&vol->stripe[i]);
	pthread_mutex_destroy(&vol->meta_lock);
	pthread_cond_destroy(&vol->flush_cond);
	free((void *)vol->state);
	free(vol->dirty_bits);
	free(vol);
}

static int load_state(uint64_t index, uint8_t state, void *arg)
{
	struct tsr_volume *vol = arg;

	atomic_store_explicit(&vol->state[index], state, memory_order_relaxed);
	return 0;
}

static int volume_load(struct tsr_store *store, const char *name, struct tsr_volume **ret)
{
	struct volume_record rec;
	struct tsr_volume *vol;
	uint8_t key[8];
	char path[64];
	MDB_txn *txn;
	MDB_val v;
	uint64_t id;
	int r;

	vol = calloc(1, sizeof(*vol));
	if (!vol)
		return -ENOMEM;
	vol->store = store;
	vol->data_fd = -1;
	for (int i = 0; i < VOLUME_STRIPES; i++)
		pthread_mutex_init(&vol->stripe[i], NULL);
	pthread_mutex_init(&vol->meta_lock, NULL);
	pthread_cond_init(&vol->flush_cond, NULL);

	r = meta_txn_begin(store, false, &txn);
	if (r)
		goto fail;
	r = volume_id_by_name(store, txn, name, &id);
	if (r)
		goto fail_txn;
	put_be64(key, id);
	r = meta_get(store, txn, DB_VOLUMES, key, sizeof(key), &v);
	if (!r)
		r = volume_record_decode(&v, &rec);
	if (r) {
		r = r == -ENOENT ? -EBADMSG : r;
		goto fail_txn;
	}
	vol->id = id;
	strcpy(vol->name, rec.name);
	vol->size = rec.size;
	vol->nchunks = (rec.size + store->chunk_size - 1) >> store->chunk_shift;
	vol->state = calloc(vol->nchunks, sizeof(*vol->state));
	vol->dirty_bits = calloc((vol->nchunks + 63) / 64, sizeof(uint64_t));
	if (!vol->state || !vol->dirty_bits) {
		r = -ENOMEM;
		goto fail_txn;
	}
	r = volume_states_walk(store, txn, vol->id, vol->nchunks, load_state, vol);
	mdb_txn_abort(txn);
	if (r)
		goto fail;
	if (rec.has_parent) {
		r = layer_map_get(store, &rec.parent, &vol->parent);
		if (r)
			goto fail;
	}
	volume_data_path(id, path, sizeof(path));
	vol->data_fd = openat(store->dir_fd, path, O_RDWR | O_CLOEXEC);
	if (vol->data_fd < 0 && errno == ENOENT) {
		/* The file of a volume that never held flushed data may be
		 * lost with its directory entry; recreate it empty. */
		vol->data_fd = openat(store->dir_fd, path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
		if (vol->data_fd >= 0 && ftruncate(vol->data_fd, (off_t)vol->size) < 0)
			r = -errno;
	}
	if (vol->data_fd < 0)
		r = -errno;
	if (r)
		goto fail;
	*ret = vol;
	return 0;
fail_txn:
	mdb_txn_abort(txn);
fail:
	volume_free(vol);
	return r;
}

int tsr_volume_open(struct tsr_store *store, const char *name, struct tsr_volume **ret_vol)
{
	struct tsr_volume *vol;
	int r;

	r = name_check(name);
	if (r)
		return r;
	/* Held across the load so that a concurrent remove, commit or second
	 * open of the same name sees one consistent answer. */
	pthread_mutex_lock(&store->volumes_lock);
	vol = find_open(store, name);
	if (vol) {
		if (vol->committing) {
			r = -EBUSY;
		} else {
			vol->refs++;
			*ret_vol = vol;
		}
		pthread_mutex_unlock(&store->volumes_lock);
		return r;
	}
	r = volume_load(store, name, &vol);
	if (!r) {
		vol->refs = 1;
		vol->next = store->open_volumes;
		store->open_volumes = vol;
		*ret_vol = vol;
	}
	pthread_mutex_unlock(&store->volumes_lock);
	return r;
}

static void unlink_open(struct tsr_store *store, struct tsr_volume *vol)
{
	struct tsr_volume **pp;

	for (pp = &store->open_volumes; *pp && *pp != vol; pp = &(*pp)->next)
		;
	if (*pp)
		*pp = vol->next;
}

void tsr_volume_close(struct tsr_volume *vol)
{
	struct tsr_store *store = vol->store;

	pthread_mutex_lock(&store->volumes_lock);
	if (--vol->refs > 0) {
		pthread_mutex_unlock(&store->volumes_lock);
		return;
	}
	/* Flushed before leaving the open list: a new open of the name must
	 * load a state that includes every write made through this one.  A
	 * flush error here has no caller to report to; the writes it loses
	 * were never acknowledged by a flush. */
	tsr_volume_flush(vol);
	unlink_open(store, vol);
	pthread_mutex_unlock(&store->volumes_lock);
	volume_free(vol);
}

uint64_t tsr_volume_size(const struct tsr_volume *vol)
{
	return vol->size;
}

uint32_t tsr_volume_chunk_size(const struct tsr_volume *vol)
{
	return vol->store->chunk_size;
}

/* ---- I/O ---- */

static int check_range(const struct tsr_volume *vol, uint64_t off, uint64_t len)
{
	if (off > vol->size || len > vol->size - off)
		return -EINVAL;
	return 0;
}

static uint8_t state_get(struct tsr_volume *vol, uint64_t idx)
{
	return atomic_load_explicit(&vol->state[idx], memory_order_acquire);
}

/* Caller holds the chunk's stripe lock and has issued the data-file change
 * the new state describes. */
static void state_set(struct tsr_volume *vol, uint64_t idx, uint8_t st)
{
	uint64_t bit = 1ull << (idx & 63);

	/* Release: a lock-free reader that sees st also sees the data. */
	atomic_store_explicit(&vol->state[idx], st, memory_order_release);
	pthread_mutex_lock(&vol->meta_lock);
	if (!(vol->dirty_bits[idx / 64] & bit)) {
		vol->dirty_bits[idx / 64] |= bit;
		vol->ndirty++;
	}
	pthread_mutex_unlock(&vol->meta_lock);
}

static pthread_mutex_t *stripe_of(struct tsr_volume *vol, uint64_t idx)
{
	return &vol->stripe[idx % VOLUME_STRIPES];
}

/* Makes [off, off+len) of the data file read as zeros, freeing whole
 * blocks.  Falls back to writing zeros where holes are not supported. */
static int data_zero(struct tsr_volume *vol, uint64_t off, uint64_t len)
{
	static const uint8_t zeros[4096];

	if (fallocate(vol->data_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		      (off_t)off, (off_t)len) == 0)
		return 0;
	if (errno != EOPNOTSUPP)
		return -errno;
	while (len) {
		size_t n = len < sizeof(zeros) ? (size_t)len : sizeof(zeros);
		int r = pwrite_full(vol->data_fd, zeros, n, off);

		if (r)
			return r;
		off += n;
		len -= n;
	}
	return 0;
}

int tsr_volume_read(struct tsr_volume *vol, void *buf, size_t len, uint64_t off)
{
	struct tsr_store *store = vol->store;
	uint8_t *dst = buf;
	int r = check_range(vol, off, len);

	while (!r && len) {
		uint64_t idx = off >> store->chunk_shift;
		uint32_t in = (uint32_t)(off & (store->chunk_size - 1));
		size_t n = store->chunk_size - in;
		const uint8_t *digest;

		if (n > len)
			n = len;
		switch (state_get(vol, idx)) {
		case CHUNK_PRESENT:
			r = pread_full(vol->data_fd, dst, n, off);
			break;
		case CHUNK_ZEROED:
			memset(dst, 0, n);
			break;
		default:
			digest = vol->parent ? layer_map_lookup(vol->parent, idx) : NULL;
			if (digest)
				r = object_read(store, digest, in, (uint32_t)n, dst);
			else
				memset(dst, 0, n);
			break;
		}
		dst += n;
		off += n;
		len -= n;
	}
	return r;
}

/* Writes the whole chunk idx: the parent's bytes with [in, in+n) replaced
 * by src (or zeros when src is NULL).  The copy-on-write of one chunk. */
static int chunk_copy_up(struct tsr_volume *vol, uint64_t idx, const uint8_t *digest,
			 uint32_t in, uint32_t n, const void *src)
{
	uint32_t eff = volume_chunk_len(vol, idx);
	uint8_t *chunk = malloc(vol->store->chunk_size);
	int r;

	if (!chunk)
		return -ENOMEM;
	r = object_read(vol->store, digest, 0, eff, chunk);
	if (!r) {
		if (src)
			memcpy(chunk + in, src, n);
		else
			memset(chunk + in, 0, n);
		r = pwrite_full(vol->data_fd, chunk, eff, idx << vol->store->chunk_shift);
	}
	free(chunk);
	return r;
}

static int chunk_write(struct tsr_volume *vol, uint64_t idx, uint32_t in, uint32_t n,
		       const void *src)
{
	uint64_t base = idx << vol->store->chunk_shift;
	uint32_t eff = volume_chunk_len(vol, idx);
	pthread_mutex_t *lock = stripe_of(vol, idx);
	const uint8_t *digest;
	uint8_t st;
	int r;

	pthread_mutex_lock(lock);
	st = state_get(vol, idx);
	if (st == CHUNK_PRESENT) {
		r = pwrite_full(vol->data_fd, src, n, base + in);
		pthread_mutex_unlock(lock);
		return r;
	}
	digest = (st == CHUNK_ABSENT && vol->parent) ? layer_map_lookup(vol->parent, idx) : NULL;
	if (in == 0 && n == eff) {
		r = pwrite_full(vol->data_fd, src, n, base);
	} else if (digest) {
		r = chunk_copy_up(vol, idx, digest, in, n, src);
	} else {
		/* The rest of the chunk must read as zeros, whatever stale
		 * bytes an unflushed write before a crash left there. */
		r = data_zero(vol, base, eff);
		if (!r)
			r = pwrite_full(vol->data_fd, src, n, base + in);
	}
	if (!r)
		state_set(vol, idx, CHUNK_PRESENT);
	pthread_mutex_unlock(lock);
	return r;
}

static int chunk_zero(struct tsr_volume *vol, uint64_t idx, uint32_t in, uint32_t n)
{
	uint64_t base = idx << vol->store->chunk_shift;
	uint32_t eff = volume_chunk_len(vol, idx);
	pthread_mutex_t *lock = stripe_of(vol, idx);
	const uint8_t *digest;
	uint8_t st;
	int r = 0;

	pthread_mutex_lock(lock);
	st = state_get(vol, idx);
	digest = (st == CHUNK_ABSENT && vol->parent) ? layer_map_lookup(vol->parent, idx) : NULL;
	if (in == 0 && n == eff) {
		if (st == CHUNK_PRESENT) {
			r = data_zero(vol, base, eff);
			if (!r)
				state_set(vol, idx, CHUNK_ZEROED);
		} else if (digest) {
			state_set(vol, idx, CHUNK_ZEROED);
		}
	} else if (st == CHUNK_PRESENT) {
		r = data_zero(vol, base + in, n);
	} else if (digest) {
		r = chunk_copy_up(vol, idx, digest, in, n, NULL);
		if (!r)
			state_set(vol, idx, CHUNK_PRESENT);
	}
	/* ZEROED, or ABSENT without parent data: already reads as zeros. */
	pthread_mutex_unlock(lock);
	return r;
}

int tsr_volume_write(struct tsr_volume *vol, const void *buf, size_t len, uint64_t off)
{
	struct tsr_store *store = vol->store;
	const uint8_t *src = buf;
	int r = check_range(vol, off, len);

	while (!r && len) {
		uint64_t idx = off >> store->chunk_shift;
		uint32_t in = (uint32_t)(off & (store->chunk_size - 1));
		size_t n = store->chunk_size - in;

		if (n > len)
			n = len;
		r = chunk_write(vol, idx, in, (uint32_t)n, src);
		src += n;
		off += n;
		len -= n;
	}
	return r;
}

int tsr_volume_write_zeroes(struct tsr_volume *vol, uint64_t off, uint64_t len)
{
	struct tsr_store *store = vol->store;
	int r = check_range(vol, off, len);

	while (!r && len) {
		uint64_t idx = off >> store->chunk_shift;
		uint32_t in = (uint32_t)(off & (store->chunk_size - 1));
		uint64_t n = store->chunk_size - in;

		if (n > len)
			n = len;
		r = chunk_zero(vol, idx, in, (uint32_t)n);
		off += n;
		len -= n;
	}
	return r;
}

int tsr_volume_discard(struct tsr_volume *vol, uint64_t off, uint64_t len)
{
	/* Discarded ranges read as zeros afterwards (DESIGN: a discarded
	 * chunk that exists in the parent must read as zeros), which is what
	 * write-zeroes does; whole chunks free their space in both. */
	return tsr_volume_write_zeroes(vol, off, len);
}

/* ---- flush ---- */

struct state_change {
	uint64_t idx;
	uint8_t state;
};

static int persist_states(struct tsr_volume *vol, const struct state_change *c, uint64_t n)
{
	struct tsr_store *store = vol->store;
	MDB_txn *txn;
	uint8_t key[16];
	int r;

	r = meta_txn_begin(store, true, &txn);
	if (r)
		return r;
	put_be64(key, vol->id);
	for (uint64_t i = 0; i < n && !r; i++) {
		put_be64(key + 8, c[i].idx);
		r = meta_put(store, txn, DB_VOLUME_CHUNKS, key, sizeof(key), &c[i].state, 1);
	}
	if (r) {
		mdb_txn_abort(txn);
		return r;
	}
	return meta_txn_commit(txn);
}

/* Takes the dirty set (meta_lock held).  Returns the number of changes. */
static int take_dirty(struct tsr_volume *vol, struct state_change **ret, uint64_t *ret_n)
{
	struct state_change *c = NULL;
	uint64_t n = 0;

	if (vol->ndirty) {
		c = malloc(vol->ndirty * sizeof(*c));
		if (!c)
			return -ENOMEM;
		for (uint64_t w = 0; w < (vol->nchunks + 63) / 64; w++) {
			uint64_t bits = vol->dirty_bits[w];

			while (bits) {
				uint64_t idx = w * 64 + (uint64_t)__builtin_ctzll(bits);

				bits &= bits - 1;
				c[n].idx = idx;
				c[n].state = state_get(vol, idx);
				n++;
			}
			vol->dirty_bits[w] = 0;
		}
		vol->ndirty = 0;
	}
	*ret = c;
	*ret_n = n;
	return 0;
}

int tsr_volume_flush(struct tsr_volume *vol)
{
	uint64_t target;
	int r;

	pthread_mutex_lock(&vol->meta_lock);
	target = ++vol->flush_requested;
	while (vol->flush_done < target && !vol->flush_error) {
		struct state_change *changes = NULL;
		uint64_t run, n = 0;

		if (vol->flushing) {
			/* Group commit: the flush in progress may have begun
			 * before our writes; wait and then run (or join) the
			 * next one. */
			pthread_cond_wait(&vol->flush_cond, &vol->meta_lock);
			continue;
		}
		vol->flushing = true;
		run = vol->flush_requested;
		r = take_dirty(vol, &changes, &n);
		pthread_mutex_unlock(&vol->meta_lock);

		/* Crash ordering: data first, then the states that point at
		 * it.  After the fdatasync every write acknowledged before
		 * this flush began is on disk; after the LMDB commit so is
		 * every state change. */
		if (!r && fdatasync(vol->data_fd) < 0)
			r = -errno;
		if (!r && n)
			r = persist_states(vol, changes, n);
		free(changes);

		pthread_mutex_lock(&vol->meta_lock);
		if (r)
			vol->flush_error = r;
		vol->flushing = false;
		vol->flush_done = run;
		pthread_cond_broadcast(&vol->flush_cond);
	}
	r = vol->flush_error;
	pthread_mutex_unlock(&vol->meta_lock);
	return r;
}
