/* SPDX-License-Identifier: MIT */
/*
 * Volume I/O: read, write, discard, write-zeroes and flush at any offset
 * and length.  Writes land in place in the volume's sparse data file; the
 * per-chunk state (ABSENT / PRESENT / ZEROED, volume_internal.h) says where each
 * chunk reads from.  Nothing here hashes or compresses: commit does.
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
 *
 * tsr_volume_map hands out the data file's ranges of PRESENT chunks to
 * front-ends that read and write them themselves (io_uring).  That is
 * safe because only chunk_zero (discard, write-zeroes) and commit take a
 * chunk out of PRESENT, and a chunk leaving PRESENT stops reading its
 * data-file bytes: any later partial write re-zeroes the rest of the
 * chunk before it becomes PRESENT again (chunk_write).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "layer_map.h"
#include "meta.h"
#include "object.h"
#include "store_handle.h"
#include "util.h"
#include "volume_internal.h"

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

/* ---- mapping for front-ends that do their own file I/O ---- */

/* What serves chunk idx.  The state is read with acquire, as in
 * tsr_volume_read: a PRESENT seen here comes with the data-file bytes it
 * describes.  A write to a chunk that is not PRESENT must go through
 * chunk_write (copy-up, zeroing the rest, the state change); so must a
 * read of an ABSENT chunk whose parent has data (object_read verifies
 * it).  ABSENT ranges of the data file may hold stale bytes of unflushed
 * writes: they are never handed out as FILE. */
static enum tsr_extent_kind chunk_kind(struct tsr_volume *vol, uint64_t idx, bool for_write)
{
	uint8_t st = state_get(vol, idx);

	if (st == CHUNK_PRESENT)
		return TSR_EXTENT_FILE;
	if (for_write)
		return TSR_EXTENT_STORE;
	if (st == CHUNK_ZEROED)
		return TSR_EXTENT_ZERO;
	if (vol->parent && layer_map_lookup(vol->parent, idx))
		return TSR_EXTENT_STORE;
	return TSR_EXTENT_ZERO;
}

int tsr_volume_map(struct tsr_volume *vol, uint64_t off, uint64_t len, bool for_write,
		   struct tsr_volume_extent *ext, unsigned max, unsigned *ret_n)
{
	struct tsr_store *store = vol->store;
	unsigned n = 0;
	int r = check_range(vol, off, len);

	if (r)
		return r;
	if (max == 0)
		return -EINVAL;
	while (len) {
		uint64_t idx = off >> store->chunk_shift;
		uint32_t in = (uint32_t)(off & (store->chunk_size - 1));
		uint64_t piece = store->chunk_size - in;
		enum tsr_extent_kind kind = chunk_kind(vol, idx, for_write);
		struct tsr_volume_extent *last = n ? &ext[n - 1] : NULL;

		if (piece > len)
			piece = len;
		/* Chunks sit in the data file at their own offset, so FILE
		 * extents that touch in the volume touch in the file. */
		if (last && last->kind == kind) {
			last->len += piece;
		} else {
			if (n == max)
				break;
			ext[n++] = (struct tsr_volume_extent){
				.off = off,
				.len = piece,
				.kind = kind,
				.fd = kind == TSR_EXTENT_FILE ? vol->data_fd : -1,
				.file_off = kind == TSR_EXTENT_FILE ? off : 0,
			};
		}
		off += piece;
		len -= piece;
	}
	*ret_n = n;
	return 0;
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
	r = object_read_chunk(vol->store, digest, chunk);
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
		 * every state change.  The fdatasync runs even when no state
		 * changed: writes through tsr_volume_map's FILE extents
		 * reach the data file without passing through here. */
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
