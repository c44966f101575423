/* SPDX-License-Identifier: MIT */
/*
 * Commit: a volume becomes a layer.  Only the chunks the volume changed are
 * read (cost follows what was written, not the volume size).  Worker
 * threads hash, check the index and compress chunks; the calling thread
 * appends new objects to the pack in chunk order, then
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

#include "codec.h"
#include "layer_build.h"
#include "layer_map.h"
#include "meta.h"
#include "pack.h"
#include "store_handle.h"
#include "util.h"
#include "volume_internal.h"

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
	uint8_t *payload;            /* pipe buffer, when !exists */
	int err;
};

/*
 * The pipeline: worker threads claim changed chunks in chunk order and work
 * on them in parallel; the calling thread takes the finished ones in the
 * same order, appends their objects to the pack and starts writeback.  The
 * items live in a ring of `slots` entries: a worker may claim item k only
 * once item k - slots has been taken, which bounds memory (slots payload
 * buffers) without making a fast worker wait for a slow one, as a batch
 * barrier would.
 *
 * Invariant (under lock): taken <= claimed <= taken + slots; the item with
 * sequence number k lives in slot k % slots while taken <= k < claimed.
 */
struct commit_slot {
	struct commit_item item;
	bool done;                   /* the worker finished it (under lock) */
};

struct commit_pipe {
	struct tsr_volume *vol;
	/* The chunk states committed: the volume's own (no writer changes
	 * them while it is consumed) or a copy taken at the start of a
	 * commit that keeps the volume. */
	const _Atomic uint8_t *live_states;
	const uint8_t *states;
	pthread_mutex_t lock;
	pthread_cond_t space;        /* a slot was freed, or stop */
	pthread_cond_t finished;     /* an item was finished */
	struct commit_slot *slots;
	uint8_t *payloads;           /* nslots buffers of slot_len bytes */
	size_t nslots, slot_len;
	uint64_t total;              /* changed chunks in the volume */
	uint64_t claimed, taken;     /* sequence numbers */
	uint64_t scan_pos;           /* next chunk index to look at */
	uint64_t readahead_to;       /* chunk index the kernel was asked to read up to */
	bool stop;                   /* an error or the end: workers leave */
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

static uint8_t pipe_state(const struct commit_pipe *p, uint64_t idx)
{
	return p->states ? p->states[idx] : atomic_load(&p->live_states[idx]);
}

/* Readahead window, in chunks past the newest claimed one: the workers
 * then find the volume's data in the page cache instead of waiting for one
 * chunk-sized read after another. */
#define COMMIT_READAHEAD_CHUNKS 256

/* Claims the next changed chunk; false when there is none or the pipe
 * stops.  Called with the lock held.  *ret_ahead is a byte range for the
 * caller to ask the kernel to read ahead once it dropped the lock (length
 * 0: none), so that no other worker waits on that system call. */
static bool pipe_claim(struct commit_pipe *p, struct commit_slot **ret_slot, uint8_t **ret_buf,
		       off_t ret_ahead[2])
{
	struct tsr_volume *vol = p->vol;
	unsigned shift = vol->store->chunk_shift;
	uint64_t seq;
	uint8_t st = CHUNK_ABSENT;

	ret_ahead[0] = ret_ahead[1] = 0;
	while (!p->stop && p->claimed < p->total && p->claimed >= p->taken + p->nslots)
		pthread_cond_wait(&p->space, &p->lock);
	if (p->stop || p->claimed >= p->total)
		return false;
	while (p->scan_pos < vol->nchunks &&
	       (st = pipe_state(p, p->scan_pos)) == CHUNK_ABSENT)
		p->scan_pos++;
	if (p->scan_pos >= vol->nchunks) {  /* fewer than counted: cannot be */
		p->stop = true;
		return false;
	}
	seq = p->claimed++;
	p->slots[seq % p->nslots] = (struct commit_slot){
		.item = { .idx = p->scan_pos, .state = st },
	};
	*ret_slot = &p->slots[seq % p->nslots];
	*ret_buf = p->payloads + (seq % p->nslots) * p->slot_len;
	if (p->scan_pos >= p->readahead_to) {
		uint64_t to = p->scan_pos + COMMIT_READAHEAD_CHUNKS;

		if (to > vol->nchunks)
			to = vol->nchunks;
		ret_ahead[0] = (off_t)(p->scan_pos << shift);
		ret_ahead[1] = (off_t)((to - p->scan_pos) << shift);
		p->readahead_to = to;
	}
	p->scan_pos++;
	return true;
}

static void *commit_worker(void *arg)
{
	struct commit_pipe *p = arg;
	struct tsr_store *store = p->vol->store;
	struct codec_ctx *cctx = NULL;
	uint8_t *chunk = malloc(store->chunk_size);
	MDB_txn *txn = NULL;
	int r;

	r = chunk ? codec_ctx_new(&cctx) : -ENOMEM;
	if (!r)
		r = meta_txn_begin(store, false, &txn);
	pthread_mutex_lock(&p->lock);
	for (;;) {
		struct commit_slot *slot;
		uint8_t *buf;
		off_t ahead[2];

		if (!pipe_claim(p, &slot, &buf, ahead))
			break;
		pthread_mutex_unlock(&p->lock);
		if (ahead[1])
			posix_fadvise(p->vol->data_fd, ahead[0], ahead[1], POSIX_FADV_WILLNEED);
		slot->item.err = r ? r : process_item(p->vol, txn, cctx, chunk, &slot->item,
						      buf, p->slot_len);
		pthread_mutex_lock(&p->lock);
		slot->done = true;
		pthread_cond_broadcast(&p->finished);
	}
	pthread_mutex_unlock(&p->lock);
	if (txn)
		mdb_txn_abort(txn);
	codec_ctx_free(cctx);
	free(chunk);
	return NULL;
}

/* Waits for the item with sequence number p->taken; NULL when the pipe
 * stopped before it was claimed. */
static struct commit_item *pipe_next(struct commit_pipe *p)
{
	struct commit_slot *s = &p->slots[p->taken % p->nslots];
	bool ready;

	pthread_mutex_lock(&p->lock);
	for (;;) {
		ready = p->taken < p->claimed && s->done;
		if (ready || (p->stop && p->taken >= p->claimed))
			break;
		pthread_cond_wait(&p->finished, &p->lock);
	}
	pthread_mutex_unlock(&p->lock);
	return ready ? &s->item : NULL;
}

/* The item pipe_next() returned was appended: its slot is free. */
static void pipe_release(struct commit_pipe *p)
{
	pthread_mutex_lock(&p->lock);
	p->taken++;
	pthread_cond_broadcast(&p->space);
	pthread_mutex_unlock(&p->lock);
}

static void pipe_stop(struct commit_pipe *p)
{
	pthread_mutex_lock(&p->lock);
	p->stop = true;
	pthread_cond_broadcast(&p->space);
	pthread_cond_broadcast(&p->finished);
	pthread_mutex_unlock(&p->lock);
}

/* Records the item's entry and appends its object to the pack when new
 * (commit_lock held). */
static int collect_item(struct tsr_store *store, const struct commit_item *it,
			struct layer_build *res)
{
	int r;

	if (it->err)
		return it->err;
	if (it->kind == ITEM_SKIP)
		return 0;
	r = layer_build_entry(res, it->idx, it->kind == ITEM_DATA ? it->digest : NULL);
	if (!r && it->kind == ITEM_DATA && !it->exists)
		r = layer_build_object(store, res, it->digest, it->codec, it->payload,
				       it->stored_len);
	return r;
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

static void pipe_free(struct commit_pipe *p)
{
	pthread_cond_destroy(&p->finished);
	pthread_cond_destroy(&p->space);
	pthread_mutex_destroy(&p->lock);
	free(p->slots);
	free(p->payloads);
}

/* states: a copy of the chunk states to commit, or NULL for the volume's
 * own. */
static int pipe_init(struct tsr_volume *vol, const uint8_t *states, struct commit_pipe *p)
{
	struct tsr_store *store = vol->store;

	*p = (struct commit_pipe){ .vol = vol, .live_states = vol->state, .states = states };
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->space, NULL);
	pthread_cond_init(&p->finished, NULL);
	for (uint64_t i = 0; i < vol->nchunks; i++)
		if (pipe_state(p, i) != CHUNK_ABSENT)
			p->total++;
	/* About 64 MiB of payload buffers bound memory. */
	p->nslots = (64ull << 20) / store->chunk_size;
	if (p->nslots < 4ull * store->workers)
		p->nslots = 4ull * store->workers;
	if (p->nslots > 1024)
		p->nslots = 1024;
	p->slot_len = codec_bound(store->chunk_size);
	p->slots = calloc(p->nslots, sizeof(*p->slots));
	p->payloads = malloc(p->nslots * p->slot_len);
	return p->slots && p->payloads ? 0 : -ENOMEM;
}

/* Writeback is started every this many bytes appended, so the final
 * fdatasync has little left to write. */
#define COMMIT_WRITEBACK_EVERY (8u << 20)

/* Commits the chunks of states (NULL: the volume's own, and the volume is
 * consumed: its records go in the transaction that publishes the layer). */
static int commit_locked(struct tsr_volume *vol, const uint8_t *states, const char *name,
			 const struct tsr_progress *progress, struct tsr_layer_id *ret_id)
{
	struct tsr_store *store = vol->store;
	struct layer_build res = { 0 };
	struct commit_pipe pipe;
	pthread_t threads[64];
	unsigned started = 0;
	uint64_t appended = 0;
	int r;

	r = pipe_init(vol, states, &pipe);
	if (r)
		goto out;
	if (progress && progress->update)
		progress->update(progress->arg, 0, pipe.total);
	for (unsigned i = 0; i < store->workers && i < 64 && pipe.total; i++) {
		if (pthread_create(&threads[i], NULL, commit_worker, &pipe))
			break;
		started++;
	}
	if (!started && pipe.total)
		r = -EAGAIN;
	while (!r && pipe.taken < pipe.total) {
		const struct commit_item *it = pipe_next(&pipe);

		if (!it) {
			r = -EIO;  /* the pipe stopped early: the volume changed under it */
			break;
		}
		r = collect_item(store, it, &res);
		if (!r && it->kind == ITEM_DATA && !it->exists) {
			appended += it->stored_len;
			if (appended >= COMMIT_WRITEBACK_EVERY) {
				packs_start_writeback(store);
				appended = 0;
			}
		}
		pipe_release(&pipe);
		if (!r && progress && progress->update &&
		    (pipe.taken % 256 == 0 || pipe.taken == pipe.total))
			progress->update(progress->arg, pipe.taken, pipe.total);
	}
	pipe_stop(&pipe);
	for (unsigned i = 0; i < started; i++)
		pthread_join(threads[i], NULL);
	if (!r)
		r = layer_build_publish(store, &res, vol->parent ? &vol->parent->id : NULL,
					vol->size, name, states ? NULL : vol, ret_id);
	if (r)
		packs_rollback(store);
	else
		packs_committed(store);
out:
	pipe_free(&pipe);
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
		r = commit_locked(vol, NULL, name, progress, ret_id);
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

int tsr_volume_commit_copy(struct tsr_volume *vol, const char *name,
			   const struct tsr_progress *progress, struct tsr_layer_id *ret_id)
{
	struct tsr_store *store = vol->store;
	uint8_t *states = malloc(vol->nchunks ? vol->nchunks : 1);
	int r;

	if (!states)
		return -ENOMEM;
	/* The chunks as they are now.  A state changes only under its
	 * stripe lock, from ABSENT never back to ABSENT: a chunk seen
	 * PRESENT or ZEROED here stays in the data file or reads as zeros,
	 * whatever writes come meanwhile (whose bytes the layer may or may
	 * not get, as with any write that overlaps a read). */
	for (uint64_t i = 0; i < vol->nchunks; i++)
		states[i] = atomic_load(&vol->state[i]);
	r = check_name_free(store, name);
	if (!r) {
		pthread_mutex_lock(&store->commit_lock);
		r = commit_locked(vol, states, name, progress, ret_id);
		pthread_mutex_unlock(&store->commit_lock);
	}
	free(states);
	return r;
}
