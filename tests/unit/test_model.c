/* SPDX-License-Identifier: MIT */
/*
 * Randomized model test of the store: every volume and every committed
 * layer has an in-memory shadow, and every read is compared with it.
 *
 * One Check test per chunk size (4 KiB, 64 KiB, 1 MiB).  Each runs
 * TSR_MODEL_OPS operations (default 10000) chosen by a PRNG seeded from
 * TSR_SEED (printed at start): unaligned reads, writes, discards and
 * write-zeroes crossing chunk boundaries, flushes, commits, volumes on
 * committed layers (sometimes larger than the layer), layer reads, layer
 * removal, a forced chain of 17 layers, closing and reopening the store,
 * and phases where two threads do I/O at once (disjoint ranges of one
 * volume, or two volumes).  A failure names the seed, the op number and
 * the offset of the first wrong byte.
 */
#include <pthread.h>
#include <stdarg.h>

#include "testutil.h"

#define MAX_VOLS 5
#define KEEP_LAYERS 24      /* childless layers beyond this get removed */
#define CHAIN_DEPTH 17
#define NPATTERNS 4
#define THREAD_OPS 150

enum data_kind { DATA_RANDOM, DATA_ZERO, DATA_PATTERN };

struct mvol {
	char name[32];
	struct tsr_volume *h;
	uint8_t *shadow;
	uint64_t size;
	int parent; /* index into layers, or -1 */
};

struct mlayer {
	bool live;
	struct tsr_layer_id id;
	uint8_t *shadow;
	uint64_t size;
	int parent;        /* index into layers, or -1 */
	uint32_t holds;
	int children;      /* live layers and volumes using it as parent */
	uint32_t depth;
};

struct model {
	char dir[4096];
	struct tsr_store *st;
	uint32_t cs;
	uint64_t seed;
	uint64_t op;
	const char *what;  /* current op, for messages */
	struct trng rng;

	struct mvol vols[MAX_VOLS];
	int nvols;
	struct mlayer *layers;
	int nlayers, cap_layers;
	unsigned counter;

	uint8_t *pattern[NPATTERNS]; /* one chunk each */
	uint8_t *buf, *buf2;
	size_t buflen;

	/* statistics, printed at the end */
	uint64_t n_write, n_read, n_discard, n_zero, n_flush, n_commit,
		n_dedup_commit, n_reopen, n_threads, n_layer_read, n_layer_rm,
		bytes_written, bytes_read;
};

#define MFAIL(m, fmt, ...)                                                     \
	ck_abort_msg("seed=%" PRIu64 " chunk=%u op=%" PRIu64 " (%s): " fmt,   \
		     (m)->seed, (m)->cs, (m)->op, (m)->what, ##__VA_ARGS__)

#define MCK(m, expr, want)                                                     \
	do {                                                                   \
		int mck_r_ = (expr), mck_w_ = (want);                          \
		if (mck_r_ != mck_w_)                                          \
			MFAIL(m, "%s returned %d (%s), expected %d", #expr,    \
			      mck_r_, tsr_strerror(mck_r_), mck_w_);           \
	} while (0)

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	ck_assert_msg(p != NULL, "out of memory (%zu bytes)", n);
	return p;
}

static void *xcalloc(size_t n)
{
	void *p = calloc(1, n ? n : 1);
	ck_assert_msg(p != NULL, "out of memory (%zu bytes)", n);
	return p;
}

/* Compares got with the shadow; on mismatch names the object and the
 * absolute offset of the first wrong byte. */
static void mcompare(struct model *m, const char *obj, const uint8_t *want,
		     const uint8_t *got, size_t len, uint64_t off)
{
	long d = tsr_first_diff(want, got, len);
	if (d < 0)
		return;
	uint64_t at = off + (uint64_t)d;
	MFAIL(m, "%s: read of [%" PRIu64 ", +%zu) differs at offset %" PRIu64
		 " (chunk %" PRIu64 " +%" PRIu64 "): expected 0x%02x, got 0x%02x",
	      obj, off, len, at, at / m->cs, at % m->cs, want[d], got[d]);
}

/* ---- choosing ranges and data ------------------------------------------- */

/* A length of 1 byte .. 3 chunks, biased to small, at most size. */
static uint64_t pick_len(struct trng *r, uint32_t cs, uint64_t size)
{
	uint64_t len;
	unsigned k = trng_below(r, 100);
	if (k < 35)
		len = trng_range(r, 1, 512);
	else if (k < 65)
		len = trng_range(r, 1, cs);
	else if (k < 85)
		len = trng_range(r, 1, 2 * (uint64_t)cs);
	else
		len = trng_range(r, 1, 3 * (uint64_t)cs);
	return len > size ? size : len;
}

/* A range within [lo, hi): often crossing a chunk boundary, sometimes
 * chunk-aligned whole chunks. */
static void pick_range(struct trng *r, uint32_t cs, uint64_t lo, uint64_t hi,
		       uint64_t *ret_off, uint64_t *ret_len)
{
	uint64_t span = hi - lo;
	uint64_t len = pick_len(r, cs, span);
	uint64_t off;
	unsigned k = trng_below(r, 100);
	if (k < 15) {
		/* whole chunks, aligned */
		uint64_t first = (lo + cs - 1) / cs, last = hi / cs;
		if (last > first) {
			uint64_t c = trng_range(r, first, last - 1);
			uint64_t n = trng_range(r, 1, 3);
			off = c * cs;
			len = n * cs;
			if (len > hi - off)
				len = hi - off;
			*ret_off = off;
			*ret_len = len;
			return;
		}
	}
	if (k < 50) {
		/* cross a boundary */
		uint64_t first = lo / cs + 1, last = (hi - 1) / cs;
		if (last >= first) {
			uint64_t b = trng_range(r, first, last) * cs;
			uint64_t before = trng_range(r, 1, len);
			if (before > b - lo)
				before = b - lo;
			off = b - before;
			if (len > hi - off)
				len = hi - off;
			*ret_off = off;
			*ret_len = len;
			return;
		}
	}
	off = lo + trng_below(r, span - len + 1);
	*ret_off = off;
	*ret_len = len;
}

/* Fills buf with data that belongs at [off, off+len): random, zeros, or a
 * per-chunk pattern (identical whole chunks dedup across volumes). */
static void fill_data(struct model *m, struct trng *r, uint8_t *buf, uint64_t off,
		      size_t len)
{
	unsigned k = trng_below(r, 100);
	if (k < 55) {
		trng_fill(r, buf, len);
	} else if (k < 65) {
		memset(buf, 0, len);
	} else {
		const uint8_t *pat = m->pattern[trng_below(r, NPATTERNS)];
		size_t done = 0;
		while (done < len) {
			uint64_t in = (off + done) % m->cs;
			size_t n = m->cs - in;
			if (n > len - done)
				n = len - done;
			memcpy(buf + done, pat + in, n);
			done += n;
		}
	}
}

/* ---- layers -------------------------------------------------------------- */

static int find_live_layer(struct model *m, const struct tsr_layer_id *id)
{
	for (int i = 0; i < m->nlayers; i++)
		if (m->layers[i].live &&
		    memcmp(m->layers[i].id.bytes, id->bytes, TSR_DIGEST_LEN) == 0)
			return i;
	return -1;
}

static int live_layers(struct model *m)
{
	int n = 0;
	for (int i = 0; i < m->nlayers; i++)
		n += m->layers[i].live;
	return n;
}

static int random_live_layer(struct model *m)
{
	int n = live_layers(m);
	if (!n)
		return -1;
	int k = (int)trng_below(&m->rng, n);
	for (int i = 0; i < m->nlayers; i++)
		if (m->layers[i].live && k-- == 0)
			return i;
	return -1;
}

static void layer_read_check(struct model *m, int li, bool whole)
{
	struct mlayer *L = &m->layers[li];
	struct tsr_layer *h;
	char hex[TSR_ID_HEX_LEN + 1], obj[96];
	tsr_layer_id_to_hex(&L->id, hex);
	snprintf(obj, sizeof(obj), "layer %.16s", hex);
	m->what = "layer read";
	MCK(m, tsr_layer_open(m->st, &L->id, &h), 0);
	if (tsr_layer_size(h) != L->size)
		MFAIL(m, "%s: size %" PRIu64 ", expected %" PRIu64, obj,
		      tsr_layer_size(h), L->size);
	if (whole) {
		for (uint64_t off = 0; off < L->size; off += m->buflen) {
			size_t n = L->size - off < m->buflen ? L->size - off : m->buflen;
			MCK(m, tsr_layer_read(h, m->buf, n, off), 0);
			mcompare(m, obj, L->shadow + off, m->buf, n, off);
		}
	} else {
		for (int i = 0; i < 3; i++) {
			uint64_t off, len;
			pick_range(&m->rng, m->cs, 0, L->size, &off, &len);
			MCK(m, tsr_layer_read(h, m->buf, len, off), 0);
			mcompare(m, obj, L->shadow + off, m->buf, len, off);
			m->bytes_read += len;
		}
		/* beyond the end */
		MCK(m, tsr_layer_read(h, m->buf, 1, L->size), -EINVAL);
		MCK(m, tsr_layer_read(h, m->buf, 2, L->size - 1), -EINVAL);
	}
	tsr_layer_close(h);
	m->n_layer_read++;
}

static void layer_stat_check(struct model *m, int li)
{
	struct mlayer *L = &m->layers[li];
	struct tsr_layer_info info;
	m->what = "layer stat";
	MCK(m, tsr_layer_stat(m->st, &L->id, &info), 0);
	if (memcmp(info.id.bytes, L->id.bytes, TSR_DIGEST_LEN) != 0)
		MFAIL(m, "layer stat: id differs from the one asked for");
	if (info.size != L->size)
		MFAIL(m, "layer stat: size %" PRIu64 ", expected %" PRIu64,
		      info.size, L->size);
	if (info.holds != L->holds)
		MFAIL(m, "layer stat: holds %u, expected %u", info.holds, L->holds);
	if (info.depth != L->depth)
		MFAIL(m, "layer stat: depth %u, expected %u", info.depth, L->depth);
	if (info.has_parent != (L->parent >= 0))
		MFAIL(m, "layer stat: has_parent %d, expected %d", info.has_parent,
		      L->parent >= 0);
	if (L->parent >= 0 &&
	    memcmp(info.parent.bytes, m->layers[L->parent].id.bytes, TSR_DIGEST_LEN))
		MFAIL(m, "layer stat: wrong parent id");
}

/* Drops one hold of a layer nothing uses as a parent. */
static void layer_remove_one(struct model *m, int li)
{
	struct mlayer *L = &m->layers[li];
	m->what = "layer remove";
	MCK(m, tsr_layer_remove(m->st, &L->id, NULL), 0);
	m->n_layer_rm++;
	if (--L->holds > 0) {
		layer_stat_check(m, li);
		layer_read_check(m, li, false);
		return;
	}
	struct tsr_layer *h;
	struct tsr_layer_info info;
	MCK(m, tsr_layer_open(m->st, &L->id, &h), -ENOENT);
	MCK(m, tsr_layer_stat(m->st, &L->id, &info), -ENOENT);
	L->live = false;
	free(L->shadow);
	L->shadow = NULL;
	if (L->parent >= 0)
		m->layers[L->parent].children--;
}

/* Keeps memory bounded: removes childless layers beyond KEEP_LAYERS. */
static void trim_layers(struct model *m)
{
	while (live_layers(m) > KEEP_LAYERS) {
		int cand[256], n = 0;
		for (int i = 0; i < m->nlayers && n < 256; i++)
			if (m->layers[i].live && m->layers[i].children == 0)
				cand[n++] = i;
		if (!n)
			return;
		int li = cand[trng_below(&m->rng, n)];
		uint32_t holds = m->layers[li].holds;
		for (uint32_t i = 0; i < holds; i++)
			layer_remove_one(m, li);
	}
}

/* A layer that is used as a parent refuses removal of its last hold. */
static void layer_remove_busy(struct model *m)
{
	for (int i = 0; i < m->nlayers; i++) {
		struct mlayer *L = &m->layers[i];
		if (L->live && L->children > 0 && L->holds == 1) {
			m->what = "layer remove (busy)";
			MCK(m, tsr_layer_remove(m->st, &L->id, NULL), -EBUSY);
			layer_stat_check(m, i);
			layer_read_check(m, i, false);
			return;
		}
	}
}

/* ---- volumes ------------------------------------------------------------- */

static uint64_t pick_vol_size(struct model *m)
{
	uint64_t mib = trng_range(&m->rng, 1, 4) << 20;
	if (m->cs == TSR_CHUNK_SIZE_MAX && mib < (2u << 20))
		mib = 2u << 20;
	switch (trng_below(&m->rng, 4)) {
	case 0:
		return mib;                                  /* chunk multiple */
	case 1:
		return mib + 5000;                           /* e.g. 3 MiB + 5000 */
	default:
		return mib + trng_range(&m->rng, 1, m->cs - 1);
	}
}

static int vol_slot(struct model *m)
{
	ck_assert(m->nvols < MAX_VOLS);
	return m->nvols++;
}

/* Creates and opens a volume, on layer li or on nothing (li < 0).
 * size 0 with a parent means the parent's size. */
static int vol_create(struct model *m, int li, uint64_t size)
{
	int vi = vol_slot(m);
	struct mvol *v = &m->vols[vi];
	snprintf(v->name, sizeof(v->name), "vol%u", m->counter++);
	m->what = "volume create";
	v->parent = li;
	if (li >= 0) {
		struct mlayer *L = &m->layers[li];
		uint64_t want = size ? size : L->size;
		if (size && size < L->size)
			MFAIL(m, "model bug: child smaller than parent");
		if (trng_below(&m->rng, 8) == 0 && L->size > 1)
			MCK(m, tsr_volume_create(m->st, v->name, L->size - 1, &L->id),
			    -EINVAL);
		MCK(m, tsr_volume_create(m->st, v->name, size, &L->id), 0);
		v->size = want;
		v->shadow = xcalloc(want);
		memcpy(v->shadow, L->shadow, L->size);
		L->children++;
	} else {
		ck_assert(size > 0);
		MCK(m, tsr_volume_create(m->st, v->name, size, NULL), 0);
		v->size = size;
		v->shadow = xcalloc(size);
	}
	MCK(m, tsr_volume_create(m->st, v->name, v->size, NULL), -EEXIST);
	MCK(m, tsr_volume_open(m->st, v->name, &v->h), 0);
	if (tsr_volume_size(v->h) != v->size)
		MFAIL(m, "%s: size %" PRIu64 ", expected %" PRIu64, v->name,
		      tsr_volume_size(v->h), v->size);
	if (tsr_volume_chunk_size(v->h) != m->cs)
		MFAIL(m, "%s: chunk size %u, expected %u", v->name,
		      tsr_volume_chunk_size(v->h), m->cs);
	/* a larger child: the space beyond the parent reads as zeros */
	if (li >= 0 && v->size > m->layers[li].size) {
		uint64_t off = m->layers[li].size, len = v->size - off;
		if (len > m->buflen)
			len = m->buflen;
		m->what = "read of the grown part";
		MCK(m, tsr_volume_read(v->h, m->buf, len, off), 0);
		mcompare(m, v->name, v->shadow + off, m->buf, len, off);
	}
	return vi;
}

static void vol_drop_slot(struct model *m, int vi)
{
	free(m->vols[vi].shadow);
	m->vols[vi] = m->vols[m->nvols - 1];
	memset(&m->vols[m->nvols - 1], 0, sizeof(m->vols[0]));
	m->nvols--;
}

static void vol_verify(struct model *m, int vi)
{
	struct mvol *v = &m->vols[vi];
	m->what = "full volume read";
	for (uint64_t off = 0; off < v->size; off += m->buflen) {
		size_t n = v->size - off < m->buflen ? v->size - off : m->buflen;
		MCK(m, tsr_volume_read(v->h, m->buf, n, off), 0);
		mcompare(m, v->name, v->shadow + off, m->buf, n, off);
	}
}

/* Commits volume vi; returns the layer index. */
static int vol_commit(struct model *m, int vi)
{
	struct mvol *v = &m->vols[vi];
	struct tsr_layer_id id;
	char lname[32];
	const char *name = NULL;
	if (trng_below(&m->rng, 4) == 0) {
		snprintf(lname, sizeof(lname), "layer%u", m->counter++);
		name = lname;
	}
	m->what = "commit";
	int r = tsr_volume_commit(v->h, name, NULL, &id);
	v->h = NULL; /* consumed */
	if (r != 0)
		MFAIL(m, "commit of %s returned %d (%s)", v->name, r, tsr_strerror(r));
	m->n_commit++;
	{
		struct tsr_volume *h;
		MCK(m, tsr_volume_open(m->st, v->name, &h), -ENOENT);
	}
	if (name) {
		struct tsr_layer_id got;
		MCK(m, tsr_layer_resolve(m->st, name, &got), 0);
		if (memcmp(got.bytes, id.bytes, TSR_DIGEST_LEN))
			MFAIL(m, "layer name %s resolves to another id", name);
	}

	int li = find_live_layer(m, &id);
	if (li >= 0) {
		/* identical content: the existing layer gains a hold */
		struct mlayer *L = &m->layers[li];
		if (L->size != v->size)
			MFAIL(m, "commit of %s gave existing layer of size %" PRIu64
				 " for a volume of size %" PRIu64,
			      v->name, L->size, v->size);
		mcompare(m, "commit that matched an existing layer id", L->shadow,
			 v->shadow, v->size, 0);
		if (L->parent != v->parent)
			MFAIL(m, "commit of %s matched a layer with another parent",
			      v->name);
		L->holds++;
		if (v->parent >= 0)
			m->layers[v->parent].children--;
		free(v->shadow);
		m->n_dedup_commit++;
	} else {
		if (m->nlayers == m->cap_layers) {
			m->cap_layers = m->cap_layers ? 2 * m->cap_layers : 64;
			m->layers = realloc(m->layers,
					    m->cap_layers * sizeof(m->layers[0]));
			ck_assert(m->layers != NULL);
		}
		li = m->nlayers++;
		struct mlayer *L = &m->layers[li];
		memset(L, 0, sizeof(*L));
		L->live = true;
		L->id = id;
		L->shadow = v->shadow; /* the volume's shadow becomes the layer's */
		L->size = v->size;
		L->parent = v->parent; /* the volume's child count moves to it */
		L->holds = 1;
		L->depth = v->parent >= 0 ? m->layers[v->parent].depth + 1 : 1;
	}
	v->shadow = NULL;
	vol_drop_slot(m, vi);
	layer_stat_check(m, li);
	return li;
}

static void vol_remove(struct model *m, int vi)
{
	struct mvol *v = &m->vols[vi];
	struct tsr_volume *h;
	m->what = "volume remove";
	tsr_volume_close(v->h);
	MCK(m, tsr_volume_remove(m->st, v->name), 0);
	MCK(m, tsr_volume_open(m->st, v->name, &h), -ENOENT);
	MCK(m, tsr_volume_remove(m->st, v->name), -ENOENT);
	if (v->parent >= 0)
		m->layers[v->parent].children--;
	vol_drop_slot(m, vi);
}

/* One I/O op on v within [lo, hi).  Used by the main loop and by the
 * threads (each with its own rng and buffers). */
struct io_ctx {
	struct model *m;
	struct trng *r;
	struct mvol *v;
	uint64_t lo, hi;
	uint8_t *buf;
	uint64_t n_write, n_read, n_discard, n_zero, n_flush, bytes_w, bytes_r;
	/* first failure, for threads (Check asserts only in the main thread) */
	char err[512];
};

static void io_fail(struct io_ctx *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void io_fail(struct io_ctx *c, const char *fmt, ...)
{
	if (c->err[0])
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->err, sizeof(c->err), fmt, ap);
	va_end(ap);
}

/* Returns false after recording a failure in c->err. */
static bool io_op(struct io_ctx *c, unsigned kind)
{
	struct model *m = c->m;
	struct mvol *v = c->v;
	uint64_t off, len;
	int r;
	pick_range(c->r, m->cs, c->lo, c->hi, &off, &len);
	switch (kind) {
	case 0: /* write */
		fill_data(m, c->r, c->buf, off, len);
		r = tsr_volume_write(v->h, c->buf, len, off);
		if (r) {
			io_fail(c, "%s: write [%" PRIu64 ", +%" PRIu64 ") returned %d (%s)",
				v->name, off, len, r, tsr_strerror(r));
			return false;
		}
		memcpy(v->shadow + off, c->buf, len);
		c->n_write++;
		c->bytes_w += len;
		return true;
	case 1: { /* read */
		r = tsr_volume_read(v->h, c->buf, len, off);
		if (r) {
			io_fail(c, "%s: read [%" PRIu64 ", +%" PRIu64 ") returned %d (%s)",
				v->name, off, len, r, tsr_strerror(r));
			return false;
		}
		long d = tsr_first_diff(v->shadow + off, c->buf, len);
		if (d >= 0) {
			uint64_t at = off + (uint64_t)d;
			io_fail(c, "%s: read of [%" PRIu64 ", +%" PRIu64 ") differs at offset %" PRIu64
				   " (chunk %" PRIu64 " +%" PRIu64 "): expected 0x%02x, got 0x%02x",
				v->name, off, len, at, at / m->cs, at % m->cs,
				v->shadow[at], c->buf[d]);
			return false;
		}
		c->n_read++;
		c->bytes_r += len;
		return true;
	}
	case 2: /* discard */
	case 3: /* write zeroes */
		r = kind == 2 ? tsr_volume_discard(v->h, off, len)
			      : tsr_volume_write_zeroes(v->h, off, len);
		if (r) {
			io_fail(c, "%s: %s [%" PRIu64 ", +%" PRIu64 ") returned %d (%s)",
				v->name, kind == 2 ? "discard" : "write_zeroes", off, len,
				r, tsr_strerror(r));
			return false;
		}
		memset(v->shadow + off, 0, len);
		if (kind == 2)
			c->n_discard++;
		else
			c->n_zero++;
		return true;
	default: /* flush */
		r = tsr_volume_flush(v->h);
		if (r) {
			io_fail(c, "%s: flush returned %d (%s)", v->name, r, tsr_strerror(r));
			return false;
		}
		c->n_flush++;
		return true;
	}
}

static unsigned pick_io_kind(struct trng *r)
{
	unsigned k = trng_below(r, 100);
	if (k < 42)
		return 0;
	if (k < 82)
		return 1;
	if (k < 89)
		return 2;
	if (k < 96)
		return 3;
	return 4;
}

static void main_io(struct model *m, unsigned kind)
{
	int vi = (int)trng_below(&m->rng, m->nvols);
	struct io_ctx c = {
		.m = m, .r = &m->rng, .v = &m->vols[vi], .lo = 0,
		.hi = m->vols[vi].size, .buf = m->buf,
	};
	static const char *names[] = { "write", "read", "discard", "write_zeroes",
				       "flush" };
	m->what = names[kind];
	if (!io_op(&c, kind))
		MFAIL(m, "%s", c.err);
	m->n_write += c.n_write;
	m->n_read += c.n_read;
	m->n_discard += c.n_discard;
	m->n_zero += c.n_zero;
	m->n_flush += c.n_flush;
	m->bytes_written += c.bytes_w;
	m->bytes_read += c.bytes_r;
}

/* Writes, reads and discards beyond the end are -EINVAL and change
 * nothing. */
static void past_end(struct model *m)
{
	struct mvol *v = &m->vols[trng_below(&m->rng, m->nvols)];
	uint64_t size = v->size;
	m->what = "I/O beyond the end";
	memset(m->buf, 0xa5, 16);
	MCK(m, tsr_volume_write(v->h, m->buf, 1, size), -EINVAL);
	MCK(m, tsr_volume_write(v->h, m->buf, 16, size - 8), -EINVAL);
	MCK(m, tsr_volume_write(v->h, m->buf, 16, UINT64_MAX - 4), -EINVAL);
	MCK(m, tsr_volume_read(v->h, m->buf, 1, size), -EINVAL);
	MCK(m, tsr_volume_read(v->h, m->buf, 16, size - 8), -EINVAL);
	MCK(m, tsr_volume_read(v->h, m->buf, 16, UINT64_MAX - 4), -EINVAL);
	MCK(m, tsr_volume_discard(v->h, size - 8, 16), -EINVAL);
	MCK(m, tsr_volume_discard(v->h, UINT64_MAX - 4, 16), -EINVAL);
	MCK(m, tsr_volume_write_zeroes(v->h, size - 8, 16), -EINVAL);
	MCK(m, tsr_volume_write_zeroes(v->h, 8, UINT64_MAX - 4), -EINVAL);
	/* the last bytes are untouched */
	MCK(m, tsr_volume_read(v->h, m->buf, 8, size - 8), 0);
	mcompare(m, v->name, v->shadow + size - 8, m->buf, 8, size - 8);
}

/* Two volumes on the same parent (or none) get the same writes and are
 * committed: equal content, equal layer id, two holds. */
static void twin_commit(struct model *m)
{
	while (m->nvols > MAX_VOLS - 2)
		vol_remove(m, (int)trng_below(&m->rng, m->nvols));
	int li = trng_below(&m->rng, 4) ? random_live_layer(m) : -1;
	uint64_t size = li >= 0 ? m->layers[li].size : pick_vol_size(m);
	int a = vol_create(m, li, li >= 0 ? 0 : size);
	int b = vol_create(m, li, li >= 0 ? 0 : size);
	unsigned nw = (unsigned)trng_below(&m->rng, 4);
	for (unsigned i = 0; i < nw; i++) {
		uint64_t off, len;
		pick_range(&m->rng, m->cs, 0, size, &off, &len);
		fill_data(m, &m->rng, m->buf, off, len);
		m->what = "twin write";
		MCK(m, tsr_volume_write(m->vols[a].h, m->buf, len, off), 0);
		MCK(m, tsr_volume_write(m->vols[b].h, m->buf, len, off), 0);
		memcpy(m->vols[a].shadow + off, m->buf, len);
		memcpy(m->vols[b].shadow + off, m->buf, len);
	}
	int la = vol_commit(m, a);
	if (b == m->nvols) /* vol_commit moved the last slot into a */
		b = a;
	uint32_t holds = m->layers[la].holds;
	int lb = vol_commit(m, b);
	if (lb != la) {
		char ha[TSR_ID_HEX_LEN + 1], hb[TSR_ID_HEX_LEN + 1];
		tsr_layer_id_to_hex(&m->layers[la].id, ha);
		tsr_layer_id_to_hex(&m->layers[lb].id, hb);
		MFAIL(m, "two volumes with equal content and parent committed to two ids: "
			 "%s and %s", ha, hb);
	}
	if (m->layers[la].holds != holds + 1)
		MFAIL(m, "twin commit: holds %u, expected %u", m->layers[la].holds, holds + 1);
	if (m->nvols == 0 || trng_below(&m->rng, 2))
		vol_create(m, la, 0);
	trim_layers(m);
}

/* ---- store open / close ---------------------------------------------------- */

static void store_open(struct model *m)
{
	struct tsr_open_options o = { 0 };
	if (trng_below(&m->rng, 2))
		o.cache_bytes = 8u << 20; /* small cache: evictions */
	m->what = "store open";
	MCK(m, tsr_store_open(m->dir, &o, &m->st), 0);
}

struct list_ctx {
	struct model *m;
	int n;
};

static int count_vol(const struct tsr_volume_info *info, void *arg)
{
	struct list_ctx *c = arg;
	struct model *m = c->m;
	int i;
	for (i = 0; i < m->nvols; i++)
		if (strcmp(m->vols[i].name, info->name) == 0)
			break;
	if (i == m->nvols)
		MFAIL(m, "volume list: unknown volume %s", info->name);
	if (info->size != m->vols[i].size)
		MFAIL(m, "volume list: %s has size %" PRIu64 ", expected %" PRIu64,
		      info->name, info->size, m->vols[i].size);
	if (info->has_parent != (m->vols[i].parent >= 0))
		MFAIL(m, "volume list: %s has_parent %d", info->name, info->has_parent);
	c->n++;
	return 0;
}

static int count_layer(const struct tsr_layer_info *info, void *arg)
{
	struct list_ctx *c = arg;
	if (find_live_layer(c->m, &info->id) < 0)
		MFAIL(c->m, "layer list: a layer the model does not know");
	c->n++;
	return 0;
}

static void check_lists(struct model *m)
{
	struct list_ctx c = { .m = m };
	struct tsr_store_stats s;
	m->what = "lists";
	MCK(m, tsr_volume_list(m->st, count_vol, &c), 0);
	if (c.n != m->nvols)
		MFAIL(m, "volume list: %d volumes, expected %d", c.n, m->nvols);
	c.n = 0;
	MCK(m, tsr_layer_list(m->st, count_layer, &c), 0);
	if (c.n != live_layers(m))
		MFAIL(m, "layer list: %d layers, expected %d", c.n, live_layers(m));
	MCK(m, tsr_store_stat(m->st, &s), 0);
	if (s.chunk_size != m->cs)
		MFAIL(m, "store stat: chunk size %u", s.chunk_size);
	if (s.volumes != (uint64_t)m->nvols || s.layers != (uint64_t)live_layers(m))
		MFAIL(m, "store stat: %" PRIu64 " volumes, %" PRIu64
			 " layers; expected %d, %d",
		      s.volumes, s.layers, m->nvols, live_layers(m));
}

/* Closes every handle and the store, opens them again and checks that
 * everything persisted. */
static void reopen(struct model *m, bool verify_all_layers)
{
	m->what = "store close";
	for (int i = 0; i < m->nvols; i++) {
		tsr_volume_close(m->vols[i].h);
		m->vols[i].h = NULL;
	}
	tsr_store_close(m->st);
	m->st = NULL;
	store_open(m);
	for (int i = 0; i < m->nvols; i++) {
		struct mvol *v = &m->vols[i];
		m->what = "volume reopen";
		MCK(m, tsr_volume_open(m->st, v->name, &v->h), 0);
		if (tsr_volume_size(v->h) != v->size)
			MFAIL(m, "%s: size %" PRIu64 " after reopen, expected %" PRIu64,
			      v->name, tsr_volume_size(v->h), v->size);
		vol_verify(m, i);
	}
	check_lists(m);
	if (verify_all_layers) {
		for (int i = 0; i < m->nlayers; i++)
			if (m->layers[i].live) {
				layer_stat_check(m, i);
				layer_read_check(m, i, true);
			}
	} else {
		for (int k = 0; k < 4; k++) {
			int li = random_live_layer(m);
			if (li >= 0)
				layer_read_check(m, li, true);
		}
	}
	m->n_reopen++;
}

/* ---- threads ---------------------------------------------------------------- */

struct worker {
	struct io_ctx c;
	struct trng rng;
	pthread_t t;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	for (int i = 0; i < THREAD_OPS; i++)
		if (!io_op(&w->c, pick_io_kind(w->c.r)))
			break;
	return NULL;
}

/* Two threads at once: on disjoint ranges of one volume (the boundary is
 * not always chunk-aligned, so both may touch one chunk), or on two
 * volumes. */
static void thread_phase(struct model *m)
{
	struct worker w[2];
	bool same = m->nvols < 2 || trng_below(&m->rng, 2);
	int a = (int)trng_below(&m->rng, m->nvols), b = a;
	if (!same)
		while (b == a)
			b = (int)trng_below(&m->rng, m->nvols);
	memset(w, 0, sizeof(w));
	for (int i = 0; i < 2; i++) {
		w[i].rng.s = m->seed ^ (m->op * 2 + i + 1) * 0x2545f4914f6cdd1dULL;
		w[i].c.m = m;
		w[i].c.r = &w[i].rng;
		w[i].c.buf = xmalloc(m->buflen);
	}
	if (same) {
		struct mvol *v = &m->vols[a];
		uint64_t mid = trng_range(&m->rng, v->size / 4, 3 * v->size / 4);
		if (trng_below(&m->rng, 2))
			mid -= mid % m->cs;
		if (mid == 0)
			mid = 1;
		w[0].c.v = w[1].c.v = v;
		w[0].c.lo = 0;
		w[0].c.hi = mid;
		w[1].c.lo = mid;
		w[1].c.hi = v->size;
	} else {
		w[0].c.v = &m->vols[a];
		w[1].c.v = &m->vols[b];
		w[0].c.hi = m->vols[a].size;
		w[1].c.hi = m->vols[b].size;
	}
	m->what = same ? "two threads on one volume" : "two threads on two volumes";
	for (int i = 0; i < 2; i++)
		ck_assert(pthread_create(&w[i].t, NULL, worker_main, &w[i]) == 0);
	for (int i = 0; i < 2; i++)
		pthread_join(w[i].t, NULL);
	for (int i = 0; i < 2; i++) {
		if (w[i].c.err[0])
			MFAIL(m, "thread %d [%" PRIu64 ", %" PRIu64 "): %s", i, w[i].c.lo,
			      w[i].c.hi, w[i].c.err);
		m->n_write += w[i].c.n_write;
		m->n_read += w[i].c.n_read;
		m->bytes_written += w[i].c.bytes_w;
		free(w[i].c.buf);
	}
	vol_verify(m, a);
	if (!same)
		vol_verify(m, b);
	m->n_threads++;
}

/* ---- the forced chain --------------------------------------------------------- */

/* A parentless volume, committed and reopened as a child CHAIN_DEPTH times,
 * with a few writes each time.  Checks depth and reads through it. */
static void build_chain(struct model *m)
{
	while (m->nvols >= MAX_VOLS)
		vol_remove(m, (int)trng_below(&m->rng, m->nvols));
	uint64_t size = (1u << 20) + 5000;
	if (m->cs == TSR_CHUNK_SIZE_MAX)
		size = (2u << 20) + 5000;
	int vi = vol_create(m, -1, size);
	int li = -1;
	for (int d = 0; d < CHAIN_DEPTH; d++) {
		struct io_ctx c = {
			.m = m, .r = &m->rng, .v = &m->vols[vi], .lo = 0,
			.hi = m->vols[vi].size, .buf = m->buf,
		};
		for (int k = 0; k < 4; k++) {
			m->what = "chain write";
			unsigned kind = trng_below(&m->rng, 4) ? 0 : 2 + trng_below(&m->rng, 2);
			if (!io_op(&c, kind))
				MFAIL(m, "chain depth %d: %s", d, c.err);
		}
		/* make each layer distinct from the other chain layers */
		uint64_t stamp = m->op * 100 + d;
		m->what = "chain write";
		MCK(m, tsr_volume_write(m->vols[vi].h, &stamp, sizeof(stamp),
					(uint64_t)d * 64),
		    0);
		memcpy(m->vols[vi].shadow + (uint64_t)d * 64, &stamp, sizeof(stamp));
		li = vol_commit(m, vi);
		uint64_t grow = 0;
		if (trng_below(&m->rng, 4) == 0 && m->layers[li].size < (6u << 20))
			grow = m->layers[li].size + trng_range(&m->rng, 1, m->cs + 777);
		vi = vol_create(m, li, grow);
	}
	if (m->layers[li].depth < CHAIN_DEPTH)
		MFAIL(m, "chain: depth %u", m->layers[li].depth);
	layer_stat_check(m, li);
	vol_verify(m, vi);
	/* every layer of the chain still reads its own content */
	for (int i = li; i >= 0; i = m->layers[i].parent)
		layer_read_check(m, i, false);
}

/* ---- the test ----------------------------------------------------------------- */

static void model_run(uint32_t cs)
{
	struct model *m = xcalloc(sizeof(*m));
	char tag[32];
	snprintf(tag, sizeof(tag), "model%u", cs >> 10);
	m->seed = tsr_test_seed(tag);
	m->rng.s = m->seed ^ ((uint64_t)cs * 0x9e3779b97f4a7c15ULL);
	m->cs = cs;
	uint64_t ops = tsr_test_env_u64("TSR_MODEL_OPS", 10000);
	m->buflen = 3 * (size_t)cs + 4096;
	if (m->buflen < (1u << 20))
		m->buflen = 1u << 20;
	m->buf = xmalloc(m->buflen);
	m->buf2 = xmalloc(m->buflen);
	for (int i = 0; i < NPATTERNS; i++) {
		m->pattern[i] = xmalloc(cs);
		trng_fill(&m->rng, m->pattern[i], cs);
	}
	const char *scratch = tsr_scratch_dir(tag);
	tsr_path(m->dir, sizeof(m->dir), scratch, "store");

	struct tsr_init_options io = { .chunk_size = cs };
	io.codec = (enum tsr_codec)trng_below(&m->rng, 3);
	m->what = "init";
	MCK(m, tsr_store_init(m->dir, &io), 0);
	store_open(m);

	vol_create(m, -1, pick_vol_size(m));
	vol_create(m, -1, pick_vol_size(m));

	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	uint64_t chain_at = ops / 3;
	bool chained = false;
	for (m->op = 0; m->op < ops; m->op++) {
		if (m->op == chain_at) {
			build_chain(m);
			chained = true;
			continue;
		}
		unsigned k = trng_below(&m->rng, 1000);
		if (k < 880) {
			main_io(m, pick_io_kind(&m->rng));
		} else if (k < 900) {
			past_end(m);
		} else if (k < 920) {
			/* commit, then sometimes a volume on the new layer */
			int li = vol_commit(m, (int)trng_below(&m->rng, m->nvols));
			if (m->nvols == 0 || trng_below(&m->rng, 3)) {
				uint64_t size = 0;
				if (trng_below(&m->rng, 3) == 0 &&
				    m->layers[li].size < (6u << 20))
					size = m->layers[li].size +
					       trng_range(&m->rng, 1, 2 * (uint64_t)m->cs + 999);
				vol_create(m, li, size);
			}
			trim_layers(m);
		} else if (k < 935) {
			/* a new volume on a committed layer, or on nothing */
			if (m->nvols >= MAX_VOLS)
				vol_remove(m, (int)trng_below(&m->rng, m->nvols));
			int li = random_live_layer(m);
			if (li >= 0 && trng_below(&m->rng, 4))
				vol_create(m, li, trng_below(&m->rng, 2) ? 0 : m->layers[li].size);
			else
				vol_create(m, -1, pick_vol_size(m));
		} else if (k < 940) {
			if (m->nvols > 1)
				vol_remove(m, (int)trng_below(&m->rng, m->nvols));
		} else if (k < 970) {
			int li = random_live_layer(m);
			if (li >= 0)
				layer_read_check(m, li, false);
		} else if (k < 975) {
			layer_remove_busy(m);
		} else if (k < 985) {
			/* drop a hold of some childless layer */
			int li = random_live_layer(m);
			if (li >= 0 && m->layers[li].children == 0)
				layer_remove_one(m, li);
		} else if (k < 988) {
			reopen(m, false);
		} else if (k < 992) {
			twin_commit(m);
		} else {
			thread_phase(m);
		}
		if (m->nvols == 0)
			vol_create(m, -1, pick_vol_size(m));
	}
	ck_assert(chained || ops <= chain_at);

	/* verify everything, then once more after a reopen */
	for (int i = 0; i < m->nvols; i++)
		vol_verify(m, i);
	for (int i = 0; i < m->nlayers; i++)
		if (m->layers[i].live) {
			layer_stat_check(m, i);
			layer_read_check(m, i, true);
		}
	m->op = ops;
	reopen(m, true);

	clock_gettime(CLOCK_MONOTONIC, &t1);
	fprintf(stderr,
		"%s: %" PRIu64 " ops in %.1f s: %" PRIu64 " writes (%" PRIu64
		" MiB), %" PRIu64 " reads (%" PRIu64 " MiB), %" PRIu64 " discards, %" PRIu64
		" write-zeroes, %" PRIu64 " flushes, %" PRIu64 " commits (%" PRIu64
		" to an existing id), %" PRIu64 " layer reads, %" PRIu64
		" layer removals, %" PRIu64 " reopens, %" PRIu64
		" thread phases, %d layers live, codec %d\n",
		tag, ops, (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9,
		m->n_write, m->bytes_written >> 20, m->n_read, m->bytes_read >> 20,
		m->n_discard, m->n_zero, m->n_flush, m->n_commit, m->n_dedup_commit,
		m->n_layer_read, m->n_layer_rm, m->n_reopen, m->n_threads,
		live_layers(m), (int)io.codec);

	for (int i = 0; i < m->nvols; i++) {
		tsr_volume_close(m->vols[i].h);
		free(m->vols[i].shadow);
	}
	tsr_store_close(m->st);
	for (int i = 0; i < m->nlayers; i++)
		free(m->layers[i].shadow);
	free(m->layers);
	for (int i = 0; i < NPATTERNS; i++)
		free(m->pattern[i]);
	free(m->buf);
	free(m->buf2);
	free(m);
	tsr_scratch_cleanup();
}

START_TEST(test_model_chunk_4k)
{
	model_run(4u << 10);
}
END_TEST

START_TEST(test_model_chunk_64k)
{
	model_run(64u << 10);
}
END_TEST

START_TEST(test_model_chunk_1m)
{
	model_run(1u << 20);
}
END_TEST

static Suite *model_suite(void)
{
	Suite *s = suite_create("model");
	/* generous: the ASan build is several times slower */
	int timeout = (int)tsr_test_env_u64("TSR_MODEL_TIMEOUT", 1200);
	TCase *tc = tcase_create("chunk_4k");
	tcase_set_timeout(tc, timeout);
	tcase_add_test(tc, test_model_chunk_4k);
	suite_add_tcase(s, tc);
	tc = tcase_create("chunk_64k");
	tcase_set_timeout(tc, timeout);
	tcase_add_test(tc, test_model_chunk_64k);
	suite_add_tcase(s, tc);
	tc = tcase_create("chunk_1m");
	tcase_set_timeout(tc, timeout);
	tcase_add_test(tc, test_model_chunk_1m);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tsr_run_suite(model_suite());
}
