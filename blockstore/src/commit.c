/* SPDX-License-Identifier: MIT */
/*
 * Commit: a volume becomes a layer.  Only the chunks the volume changed are
 * read (cost follows what was written, not the volume size).  Worker
 * threads hash, check the index and compress batches of chunks; the
 * calling thread appends new objects to the pack in chunk order, then
 * publishes everything in one LMDB transaction:
 *
 *   1. new objects appended to the active pack (not yet referenced)
 *   2. fdatasync of every pack written                 -- objects durable
 *   3. one transaction: chunk records and refcounts, layer map entries,
 *      layer record, name, pack lengths, the volume's records deleted
 *   4. the volume's data file unlinked                 -- after the commit
 *
 * A crash before 3 leaves the volume as it was plus a pack tail that the
 * next open cuts off; after 3 the layer exists and the volume does not
 * (its file, if left, is swept at open).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

enum item_kind {
	ITEM_SKIP,  /* no entry: reads the same as the parent */
	ITEM_HOLE,  /* entry: zeros over parent data */
	ITEM_DATA,  /* entry: digest */
};

struct commit_item {
	uint64_t idx;
	uint8_t state;               /* CHUNK_PRESENT or CHUNK_ZEROED */
	/* Set by the worker that took it. */
	enum item_kind kind;
	bool exists;                 /* object already in the index */
	uint8_t digest[TSR_DIGEST_LEN];
	enum tsr_codec codec;
	uint32_t stored_len;
	uint8_t *payload;            /* batch buffer slot, when !exists */
	int err;
};

struct commit_batch {
	struct tsr_volume *vol;
	struct commit_item *items;
	size_t n;
	atomic_size_t next;
	uint8_t *payloads;           /* n slots of slot_len bytes */
	size_t slot_len;
};

static int process_item(struct tsr_volume *vol, MDB_txn *txn, struct codec_ctx *cctx,
			uint8_t *chunk, struct commit_item *it, uint8_t *slot, size_t slot_len)
{
	struct tsr_store *store = vol->store;
	const uint8_t *pdigest = vol->parent ? layer_map_lookup(vol->parent, it->idx) : NULL;
	uint32_t eff = volume_chunk_len(vol, it->idx);
	size_t stored;
	MDB_val v;
	int r;

	if (it->state == CHUNK_ZEROED) {
		it->kind = pdigest ? ITEM_HOLE : ITEM_SKIP;
		return 0;
	}
	r = pread_full(vol->data_fd, chunk, eff, it->idx << store->chunk_shift);
	if (r)
		return r;
	/* A chunk object is always a whole chunk: the tail of a volume's
	 * last chunk past its size is zeros. */
	memset(chunk + eff, 0, store->chunk_size - eff);
	if (buf_is_zero(chunk, store->chunk_size)) {
		it->kind = pdigest ? ITEM_HOLE : ITEM_SKIP;
		return 0;
	}
	r = digest_chunk(store, chunk, store->chunk_size, it->digest);
	if (r)
		return r;
	if (pdigest && !memcmp(pdigest, it->digest, TSR_DIGEST_LEN)) {
		it->kind = ITEM_SKIP;
		return 0;
	}
	it->kind = ITEM_DATA;
	r = meta_get(store, txn, DB_CHUNKS, it->digest, TSR_DIGEST_LEN, &v);
	if (r == 0) {
		it->exists = true;
		return 0;
	}
	if (r != -ENOENT)
		return r;
	r = codec_compress(cctx, store->codec, chunk, store->chunk_size, slot, slot_len,
			   &stored, &it->codec);
	if (r)
		return r;
	it->payload = slot;
	it->stored_len = (uint32_t)stored;
	return 0;
}

static void *commit_worker(void *arg)
{
	struct commit_batch *b = arg;
	struct tsr_store *store = b->vol->store;
	struct codec_ctx *cctx = NULL;
	uint8_t *chunk = malloc(store->chunk_size);
	MDB_txn *txn = NULL;
	int r;

	r = chunk ? codec_ctx_new(&cctx) : -ENOMEM;
	if (!r)
		r = meta_txn_begin(store, false, &txn);
	for (;;) {
		size_t i = atomic_fetch_add(&b->next, 1);

		if (i >= b->n)
			break;
		b->items[i].err = r ? r : process_item(b->vol, txn, cctx, chunk, &b->items[i],
						       b->payloads + i * b->slot_len, b->slot_len);
	}
	if (txn)
		mdb_txn_abort(txn);
	codec_ctx_free(cctx);
	free(chunk);
	return NULL;
}

/* Starts the workers of a batch; batch_join() waits for them. */
struct batch_run {
	pthread_t threads[64];
	unsigned started;
};

static void batch_start(struct tsr_store *store, struct commit_batch *b, struct batch_run *run)
{
	atomic_store(&b->next, 0);
	run->started = 0;
	for (unsigned i = 0; i < store->workers && i < 64; i++) {
		if (pthread_create(&run->threads[i], NULL, commit_worker, b))
			break;
		run->started++;
	}
}

static int batch_join(struct commit_batch *b, struct batch_run *run)
{
	for (unsigned i = 0; i < run->started; i++)
		pthread_join(run->threads[i], NULL);
	/* No thread could start: do the work here. */
	if (!run->started)
		commit_worker(b);
	for (size_t i = 0; i < b->n; i++)
		if (b->items[i].err)
			return b->items[i].err;
	return 0;
}

/* In chunk order: record entries and append new objects to the pack
 * (commit_lock held). */
static int collect_batch(struct tsr_store *store, struct commit_batch *b,
			 struct layer_build *res)
{
	for (size_t i = 0; i < b->n; i++) {
		struct commit_item *it = &b->items[i];
		int r;

		if (it->kind == ITEM_SKIP)
			continue;
		r = layer_build_entry(res, it->idx, it->kind == ITEM_DATA ? it->digest : NULL);
		if (!r && it->kind == ITEM_DATA && !it->exists)
			r = layer_build_object(store, res, it->digest, it->codec, it->payload,
					       it->stored_len);
		if (r)
			return r;
	}
	return 0;
}

static int check_name_free(struct tsr_store *store, const char *name)
{
	MDB_txn *txn;
	MDB_val v;
	int r;

	if (!name)
		return 0;
	r = name_check(name);
	if (r)
		return r;
	r = meta_txn_begin(store, false, &txn);
	if (r)
		return r;
	/* A name already on a layer is refused up front, before the work;
	 * publish() checks again (it may be this very content's name). */
	r = meta_get(store, txn, DB_LAYER_NAMES, name, strlen(name), &v) == 0 ? -EEXIST : 0;
	mdb_txn_abort(txn);
	return r;
}

static void batch_free(struct commit_batch *b)
{
	free(b->items);
	free(b->payloads);
}

static int batch_alloc(struct tsr_volume *vol, size_t cap, struct commit_batch *b)
{
	b->vol = vol;
	b->slot_len = codec_bound(vol->store->chunk_size);
	b->items = calloc(cap, sizeof(*b->items));
	b->payloads = malloc(cap * b->slot_len);
	return b->items && b->payloads ? 0 : -ENOMEM;
}

/* Fills b with the next changed chunks from *pos on, and asks the kernel
 * to read their range ahead: the workers then find it in the page cache
 * instead of waiting for one 64 KiB read after another. */
static void batch_fill(struct tsr_volume *vol, struct commit_batch *b, size_t cap, uint64_t *pos)
{
	unsigned shift = vol->store->chunk_shift;

	b->n = 0;
	for (; *pos < vol->nchunks && b->n < cap; (*pos)++) {
		uint8_t st = atomic_load(&vol->state[*pos]);

		if (st != CHUNK_ABSENT)
			b->items[b->n++] = (struct commit_item){ .idx = *pos, .state = st };
	}
	if (b->n)
		posix_fadvise(vol->data_fd, (off_t)(b->items[0].idx << shift),
			      (off_t)((b->items[b->n - 1].idx - b->items[0].idx + 1) << shift),
			      POSIX_FADV_WILLNEED);
}

/* A pipeline of two batches: while the workers hash and compress batch
 * k+1, this thread appends batch k to the pack and starts its writeback,
 * so the final fdatasync has little left to write. */
static int commit_locked(struct tsr_volume *vol, const char *name,
			 const struct tsr_progress *progress, struct tsr_layer_id *ret_id)
{
	struct tsr_store *store = vol->store;
	struct layer_build res = { 0 };
	struct commit_batch batch[2] = { { 0 }, { 0 } };
	struct commit_batch *cur = &batch[0], *prev = NULL;
	struct batch_run run;
	uint64_t total = 0, done = 0, pos = 0;
	size_t cap;
	int r;

	for (uint64_t i = 0; i < vol->nchunks; i++)
		if (atomic_load(&vol->state[i]) != CHUNK_ABSENT)
			total++;
	/* Two batches of about 32 MiB of payload slots each bound memory. */
	cap = (32ull << 20) / store->chunk_size;
	if (cap < 16)
		cap = 16;
	if (cap > 512)
		cap = 512;
	r = batch_alloc(vol, cap, &batch[0]);
	if (!r)
		r = batch_alloc(vol, cap, &batch[1]);
	if (r)
		goto out;
	if (progress && progress->update)
		progress->update(progress->arg, 0, total);
	for (;;) {
		int rc;

		batch_fill(vol, cur, cap, &pos);
		if (cur->n)
			batch_start(store, cur, &run);
		if (prev) {
			r = collect_batch(store, prev, &res);
			if (!r)
				packs_start_writeback(store);
			done += prev->n;
			if (!r && progress && progress->update)
				progress->update(progress->arg, done, total);
		}
		if (!cur->n)
			break;
		rc = batch_join(cur, &run);
		if (!r)
			r = rc;
		if (r)
			break;
		prev = cur;
		cur = cur == &batch[0] ? &batch[1] : &batch[0];
	}
	if (!r)
		r = layer_build_publish(store, &res, vol->parent ? &vol->parent->id : NULL,
					vol->size, name, vol, ret_id);
	if (r)
		packs_rollback(store);
	else
		packs_committed(store);
out:
	batch_free(&batch[0]);
	batch_free(&batch[1]);
	layer_build_free(&res);
	return r;
}
int tsr_volume_commit(struct tsr_volume *vol, const char *name,
		      const struct tsr_progress *progress, struct tsr_layer_id *ret_id)
{
	struct tsr_store *store = vol->store;
	char path[64];
	int r;

	pthread_mutex_lock(&store->volumes_lock);
	if (vol->refs != 1) {
		pthread_mutex_unlock(&store->volumes_lock);
		tsr_volume_close(vol);
		return -EBUSY;
	}
	vol->committing = true;
	pthread_mutex_unlock(&store->volumes_lock);

	r = check_name_free(store, name);
	if (!r) {
		/* One commit at a time: pack appends and the transaction that
		 * publishes them must not interleave with another commit's. */
		pthread_mutex_lock(&store->commit_lock);
		r = commit_locked(vol, name, progress, ret_id);
		pthread_mutex_unlock(&store->commit_lock);
	}

	pthread_mutex_lock(&store->volumes_lock);
	vol->committing = false;
	if (r) {
		pthread_mutex_unlock(&store->volumes_lock);
		tsr_volume_close(vol);
		return r;
	}
	for (struct tsr_volume **pp = &store->open_volumes; *pp; pp = &(*pp)->next)
		if (*pp == vol) {
			*pp = vol->next;
			break;
		}
	pthread_mutex_unlock(&store->volumes_lock);
	/* The volume is gone from the metadata; its file goes after. */
	volume_data_path(vol->id, path, sizeof(path));
	unlinkat(store->dir_fd, path, 0);
	volume_free(vol);
	return 0;
}
