/* SPDX-License-Identifier: MIT */
/*
 * Volumes: creating, removing, listing, opening and closing them.  Their
 * I/O is in volume_io.c.  Handles on one volume share one state: the
 * store keeps the open volumes in a list under volumes_lock.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "layer_map.h"
#include "meta.h"
#include "store_handle.h"
#include "util.h"
#include "volume_internal.h"

/* Volumes may not address more chunks than a layer map slot can count. */
#define VOLUME_MAX_CHUNKS (1ull << 31)

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
		r = fsync_dir(store->dir_fd, TSR_VOLUME_DIR);
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

