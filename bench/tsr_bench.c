/* SPDX-License-Identifier: MIT */
/*
 * tsr_bench: library-level benchmarks of libtessera (public API only).
 *
 *   tsr_bench first-write [options]   4 KiB first write (copy-up of one chunk)
 *                                     + flush into a child of parents of growing size
 *   tsr_bench commit [options]        commit throughput, random vs compressible data
 *   tsr_bench randread [options]      4 KiB random reads of a layer, cold and cached
 *
 * Results go to stdout as JSON lines, one object per figure; progress and
 * notes go to stderr.  Stores are created under a fresh directory made with
 * mkdtemp under --dir (default /var/tmp) and removed afterwards (--keep
 * keeps them).
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <tessera/store.h>

#define KiB ((uint64_t)1024)
#define MiB (1024 * KiB)
#define GiB (1024 * MiB)
#define IO_SIZE 4096u
#define IMPORT_PIECE (1 * MiB)
#define MAX_SIZES 16

/* ---- options ------------------------------------------------------------ */

struct opts {
	const char *dir;          /* parent of the scratch directory */
	bool keep;
	uint64_t sizes[MAX_SIZES];/* first-write parent sizes */
	int nsizes;
	unsigned rounds;          /* first-write rounds per size */
	uint32_t chunk_size;      /* 0 = library default */
	uint64_t size;            /* commit / randread data size */
	uint64_t working_set;     /* randread cached working set */
	uint64_t cache_bytes;     /* randread cached: cache size */
	unsigned threads;         /* randread threads */
	double duration;          /* randread seconds per phase */
	uint64_t ops;             /* randread ops per phase; 0 = until duration */
	unsigned workers;         /* commit workers; 0 = library default */
	uint64_t seed;
	const char *kinds;        /* commit: "random,text" */
	const char *phases;       /* randread: "cold,cached" */
};

static struct opts O = {
	.rounds = 200,
	.size = 1 * GiB,
	.working_set = 256 * MiB,
	.cache_bytes = 512 * MiB,
	.threads = 2,
	.duration = 10.0,
	.seed = 0x7e55e7a,
	.kinds = "random,text",
	.phases = "cold,cached",
};

static char scratch[4096];

static void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "tsr_bench: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	exit(1);
}

static void note(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "tsr_bench: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
}

#define CHECK(call)                                                          \
	do {                                                                 \
		int r_ = (call);                                             \
		if (r_ < 0)                                                  \
			die("%s:%d: %s: %s", __FILE__, __LINE__, #call,      \
			    tsr_strerror(r_));                               \
	} while (0)

/* ---- time, random data, statistics ---------------------------------------- */

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

struct rng {
	uint64_t s[4];
};

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static void rng_seed(struct rng *r, uint64_t seed)
{
	for (int i = 0; i < 4; i++)
		r->s[i] = splitmix64(&seed);
}

static inline uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

/* xoshiro256** */
static uint64_t rng_next(struct rng *r)
{
	uint64_t *s = r->s;
	uint64_t res = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return res;
}

static uint64_t rng_below(struct rng *r, uint64_t n)
{
	return n ? rng_next(r) % n : 0;
}

static void fill_random(struct rng *r, void *buf, size_t len)
{
	uint8_t *p = buf;

	while (len >= 8) {
		uint64_t v = rng_next(r);

		memcpy(p, &v, 8);
		p += 8;
		len -= 8;
	}
	if (len) {
		uint64_t v = rng_next(r);

		memcpy(p, &v, len);
	}
}

/* Text-like data: words of a fixed pseudo-random vocabulary, chosen with a
 * skew towards frequent words, with punctuation, line breaks and some
 * numbers.  zstd level 1 on 64 KiB chunks compresses it roughly 3-4x. */
#define VOCAB 512
static char vocab[VOCAB][12];
static uint8_t vocab_len[VOCAB];

static void vocab_init(uint64_t seed)
{
	static const char letters[] = "etaoinshrdlcumwfgypbvkjxqz";
	struct rng r;

	rng_seed(&r, seed ^ 0x7e47);
	for (int i = 0; i < VOCAB; i++) {
		int len = 2 + (int)rng_below(&r, 9);

		for (int j = 0; j < len; j++) {
			/* Skewed letter frequencies, like English. */
			uint64_t a = rng_below(&r, 26), b = rng_below(&r, 26);

			vocab[i][j] = letters[a < b ? a : b];
		}
		vocab_len[i] = (uint8_t)len;
	}
}

static void fill_text(struct rng *r, void *buf, size_t len)
{
	uint8_t *p = buf, *end = p + len;
	unsigned col = 0;

	while (p < end) {
		uint64_t v = rng_next(r);
		/* Product of three uniforms: frequent words near index 0. */
		uint64_t w = ((v & 0x3ff) * ((v >> 10) & 0x3ff) * ((v >> 20) & 0x3ff)) >> 21;
		char tmp[32];
		size_t n;

		if (((v >> 32) & 63) == 0) {
			n = (size_t)snprintf(tmp, sizeof(tmp), "%" PRIu64 " ",
					     (v >> 40) % 100000);
		} else {
			memcpy(tmp, vocab[w], vocab_len[w]);
			n = vocab_len[w];
			switch ((v >> 38) & 15) {
			case 0:
				tmp[n++] = ',';
				break;
			case 1:
				tmp[n++] = '.';
				break;
			default:
				break;
			}
			tmp[n++] = ' ';
		}
		col += (unsigned)n;
		if (col > 72) {
			tmp[n - 1] = '\n';
			col = 0;
		}
		if (n > (size_t)(end - p))
			n = (size_t)(end - p);
		memcpy(p, tmp, n);
		p += n;
	}
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

struct stats {
	double p50, p99, mean, min, max;
};

/* Sorts v; percentiles by nearest rank; microseconds. */
static struct stats stats_of(uint64_t *v, size_t n)
{
	struct stats s = { 0 };
	double sum = 0;

	if (!n)
		return s;
	qsort(v, n, sizeof(*v), cmp_u64);
	for (size_t i = 0; i < n; i++)
		sum += (double)v[i];
	s.mean = sum / (double)n / 1e3;
	s.min = (double)v[0] / 1e3;
	s.max = (double)v[n - 1] / 1e3;
	s.p50 = (double)v[(n * 50 + 99) / 100 - 1] / 1e3;
	s.p99 = (double)v[(n * 99 + 99) / 100 - 1] / 1e3;
	return s;
}

static const char *size_text(uint64_t n, char *buf, size_t len)
{
	if (n >= GiB && n % GiB == 0)
		snprintf(buf, len, "%" PRIu64 "GiB", n / GiB);
	else if (n >= MiB && n % MiB == 0)
		snprintf(buf, len, "%" PRIu64 "MiB", n / MiB);
	else if (n >= KiB && n % KiB == 0)
		snprintf(buf, len, "%" PRIu64 "KiB", n / KiB);
	else
		snprintf(buf, len, "%" PRIu64 "B", n);
	return buf;
}

/* ---- scratch directories ------------------------------------------------- */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	if (remove(path) < 0 && errno != ENOENT)
		note("cannot remove %s: %s", path, strerror(errno));
	return 0;
}

static void rm_rf(const char *path)
{
	nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void scratch_make(void)
{
	const char *parent = O.dir ? O.dir : "/var/tmp";

	if (O.dir && mkdir(O.dir, 0755) < 0 && errno != EEXIST)
		die("mkdir %s: %s", O.dir, strerror(errno));
	snprintf(scratch, sizeof(scratch), "%s/tsr-bench.XXXXXX", parent);
	if (!mkdtemp(scratch))
		die("mkdtemp %s: %s", scratch, strerror(errno));
	note("scratch directory %s", scratch);
}

static void scratch_done(void)
{
	if (!scratch[0])
		return;
	if (O.keep) {
		note("kept %s", scratch);
		return;
	}
	rm_rf(scratch);
}

static struct tsr_store *store_new(const char *name, const struct tsr_open_options *oo,
				   char *path, size_t pathlen)
{
	struct tsr_init_options io = { .chunk_size = O.chunk_size, .codec = TSR_CODEC_ZSTD };
	struct tsr_store *st;

	snprintf(path, pathlen, "%s/%s", scratch, name);
	CHECK(tsr_store_init(path, &io));
	CHECK(tsr_store_open(path, oo, &st));
	return st;
}

/* Drops the kernel's page cache when we may; says what was done. */
static const char *drop_caches(void)
{
	int fd;

	sync();
	fd = open("/proc/sys/vm/drop_caches", O_WRONLY);
	if (fd < 0)
		return "reopen-only (not root: page cache kept)";
	if (write(fd, "3\n", 2) != 2) {
		close(fd);
		return "reopen-only (drop_caches write failed: page cache kept)";
	}
	close(fd);
	return "reopen+drop_caches";
}

/* Writes size bytes (random or text) into a new volume in 1 MiB pieces,
 * flushes, and optionally commits it. */
enum data_kind { DATA_RANDOM, DATA_TEXT };

static void volume_fill(struct tsr_volume *vol, uint64_t size, enum data_kind kind,
			struct rng *r)
{
	uint8_t *buf = malloc(IMPORT_PIECE);

	if (!buf)
		die("out of memory");
	for (uint64_t off = 0; off < size; off += IMPORT_PIECE) {
		size_t n = size - off < IMPORT_PIECE ? (size_t)(size - off) : IMPORT_PIECE;

		if (kind == DATA_RANDOM)
			fill_random(r, buf, n);
		else
			fill_text(r, buf, n);
		CHECK(tsr_volume_write(vol, buf, n, off));
	}
	free(buf);
	CHECK(tsr_volume_flush(vol));
}

static void import_layer(struct tsr_store *st, const char *name, uint64_t size,
			 struct rng *r, struct tsr_layer_id *ret)
{
	struct tsr_volume *vol;
	char sz[32];
	uint64_t t0 = now_ns();

	CHECK(tsr_volume_create(st, name, size, NULL));
	CHECK(tsr_volume_open(st, name, &vol));
	volume_fill(vol, size, DATA_RANDOM, r);
	CHECK(tsr_volume_commit(vol, name, NULL, ret));
	note("imported %s of random data as layer %s in %.1f s",
	     size_text(size, sz, sizeof(sz)), name, (double)(now_ns() - t0) / 1e9);
	/* Settle: the commit unlinked the volume's data file; let the
	 * filesystem write back and free (and, on a filesystem mounted with
	 * discard, discard) it now rather than inside the first timed
	 * rounds.  The timed rounds measure a parent imported earlier. */
	sync();
}

/* ---- first-write ---------------------------------------------------------- */

static void shuffle(uint64_t *v, uint64_t n, struct rng *r)
{
	for (uint64_t i = n; i > 1; i--) {
		uint64_t j = rng_below(r, i), t = v[i - 1];

		v[i - 1] = v[j];
		v[j] = t;
	}
}

/* One parent size of first-write: its store, parent layer, current child. */
struct fw_size {
	uint64_t size;
	char sz[32], path[4200], child[64];
	struct tsr_store *st;
	struct tsr_layer_id parent;
	struct tsr_volume *vol;
	uint32_t cs;
	uint64_t *perm, nchunks, used, children, alloc_sum, written_sum;
	uint64_t *lat, *wlat, *flat, *rlat;
};

static void fw_child_done(struct fw_size *f, const struct tsr_open_options *oo, bool reopen)
{
	struct tsr_volume_info info;

	tsr_volume_close(f->vol);
	f->vol = NULL;
	CHECK(tsr_volume_stat(f->st, f->child, &info));
	f->alloc_sum += info.allocated_bytes;
	f->written_sum += info.chunks_written;
	if (reopen) {
		/* An empty chunk cache: no round of a small parent copies up a
		 * chunk an earlier child of it already read. */
		tsr_store_close(f->st);
		CHECK(tsr_store_open(f->path, oo, &f->st));
	}
}

/* One first write: a 4 KiB write into a chunk of the parent this child has
 * not written, then a flush. */
static void fw_round(struct fw_size *f, unsigned i, const struct tsr_open_options *oo,
		     struct rng *r)
{
	uint64_t idx, off, t0, t1, t2;
	uint8_t buf[IO_SIZE];

	if (!f->vol || f->used == f->nchunks) {
		/* When a small parent runs out of chunks, take a fresh child
		 * of the same parent. */
		if (f->vol)
			fw_child_done(f, oo, true);
		snprintf(f->child, sizeof(f->child), "child-%" PRIu64, f->children++);
		CHECK(tsr_volume_create(f->st, f->child, 0, &f->parent));
		CHECK(tsr_volume_open(f->st, f->child, &f->vol));
		for (uint64_t k = 0; k < f->nchunks; k++)
			f->perm[k] = k;
		shuffle(f->perm, f->nchunks, r);
		f->used = 0;
	}
	idx = f->perm[f->used++];
	off = idx * f->cs + rng_below(r, f->cs / IO_SIZE) * IO_SIZE;
	if (off + IO_SIZE > f->size)
		off = f->size - IO_SIZE;
	fill_random(r, buf, sizeof(buf));
	t0 = now_ns();
	CHECK(tsr_volume_write(f->vol, buf, sizeof(buf), off));
	t1 = now_ns();
	CHECK(tsr_volume_flush(f->vol));
	t2 = now_ns();
	f->lat[i] = t2 - t0;
	f->wlat[i] = t1 - t0;
	f->flat[i] = t2 - t1;
}

/* Baseline: the same write + flush into a chunk this child already holds
 * (no copy-up, no new chunk state). */
static void fw_rewrite(struct fw_size *f, unsigned i, struct rng *r)
{
	uint64_t idx = f->perm[rng_below(r, f->used)], t0;
	uint64_t off = idx * f->cs + rng_below(r, f->cs / IO_SIZE) * IO_SIZE;
	uint8_t buf[IO_SIZE];

	if (off + IO_SIZE > f->size)
		off = f->size - IO_SIZE;
	fill_random(r, buf, sizeof(buf));
	t0 = now_ns();
	CHECK(tsr_volume_write(f->vol, buf, sizeof(buf), off));
	CHECK(tsr_volume_flush(f->vol));
	f->rlat[i] = now_ns() - t0;
}

/*
 * All parents are imported first (one store each); then the rounds of the
 * sizes are interleaved (round i of every size, then round i+1...), so that
 * whatever else the machine does at the time weighs on every size alike.
 */
static void bench_first_write(void)
{
	struct tsr_open_options oo = { .workers = O.workers };
	struct fw_size *fs = calloc((size_t)O.nsizes, sizeof(*fs));
	struct rng r;

	if (!fs)
		die("out of memory");
	rng_seed(&r, O.seed);
	for (int si = 0; si < O.nsizes; si++) {
		struct fw_size *f = &fs[si];
		char sname[64];
		struct tsr_volume *probe;

		f->size = O.sizes[si];
		size_text(f->size, f->sz, sizeof(f->sz));
		snprintf(sname, sizeof(sname), "first-write-%s", f->sz);
		f->st = store_new(sname, &oo, f->path, sizeof(f->path));
		import_layer(f->st, "parent", f->size, &r, &f->parent);
		CHECK(tsr_volume_create(f->st, "probe", 0, &f->parent));
		CHECK(tsr_volume_open(f->st, "probe", &probe));
		f->cs = tsr_volume_chunk_size(probe);
		tsr_volume_close(probe);
		CHECK(tsr_volume_remove(f->st, "probe"));
		f->nchunks = (f->size + f->cs - 1) / f->cs;
		f->perm = malloc(f->nchunks * sizeof(*f->perm));
		f->lat = calloc(O.rounds, sizeof(*f->lat));
		f->wlat = calloc(O.rounds, sizeof(*f->wlat));
		f->flat = calloc(O.rounds, sizeof(*f->flat));
		f->rlat = calloc(O.rounds, sizeof(*f->rlat));
		if (!f->perm || !f->lat || !f->wlat || !f->flat || !f->rlat)
			die("out of memory");
	}
	sync();
	note("first-write: %u rounds per size, interleaved over %d sizes", O.rounds, O.nsizes);
	for (unsigned i = 0; i < O.rounds; i++)
		for (int si = 0; si < O.nsizes; si++)
			fw_round(&fs[si], i, &oo, &r);
	for (unsigned i = 0; i < O.rounds; i++)
		for (int si = 0; si < O.nsizes; si++)
			fw_rewrite(&fs[si], i, &r);

	for (int si = 0; si < O.nsizes; si++) {
		struct fw_size *f = &fs[si];
		struct stats s, ws, fls, rs;

		fw_child_done(f, &oo, false);
		s = stats_of(f->lat, O.rounds);
		ws = stats_of(f->wlat, O.rounds);
		fls = stats_of(f->flat, O.rounds);
		rs = stats_of(f->rlat, O.rounds);
		printf("{\"bench\":\"first-write\",\"param\":\"%s\",\"parent_bytes\":%" PRIu64
		       ",\"chunk_size\":%" PRIu32 ",\"rounds\":%u,\"children\":%" PRIu64
		       ",\"p50_us\":%.1f,\"p99_us\":%.1f,\"mean_us\":%.1f,\"min_us\":%.1f,\"max_us\":%.1f"
		       ",\"write_p50_us\":%.1f,\"write_p99_us\":%.1f,\"flush_p50_us\":%.1f,\"flush_p99_us\":%.1f"
		       ",\"rewrite_p50_us\":%.1f,\"rewrite_p99_us\":%.1f"
		       ",\"alloc_bytes_per_write\":%.0f}\n",
		       f->sz, f->size, f->cs, O.rounds, f->children, s.p50, s.p99, s.mean, s.min,
		       s.max, ws.p50, ws.p99, fls.p50, fls.p99, rs.p50, rs.p99,
		       f->written_sum ? (double)f->alloc_sum / (double)f->written_sum : 0.0);
		fflush(stdout);
		note("first-write %s: p50 %.1f us, p99 %.1f us (write %.1f + flush %.1f); rewrite p50 %.1f us",
		     f->sz, s.p50, s.p99, ws.p50, fls.p50, rs.p50);
		if (si == O.nsizes - 1 && O.nsizes > 1) {
			double first = stats_of(fs[0].lat, O.rounds).p50;

			if (first > 0)
				printf("{\"bench\":\"first-write\",\"param\":\"ratio\",\"of\":\"p50(%s)/p50(%s)\""
				       ",\"ratio_p50\":%.3f}\n", f->sz, fs[0].sz, s.p50 / first);
		}
	}
	for (int si = 0; si < O.nsizes; si++) {
		struct fw_size *f = &fs[si];

		tsr_store_close(f->st);
		if (!O.keep)
			rm_rf(f->path);
		free(f->perm);
		free(f->lat);
		free(f->wlat);
		free(f->flat);
		free(f->rlat);
	}
	free(fs);
}

/* ---- commit --------------------------------------------------------------- */

static void bench_commit(void)
{
	char *kinds = strdup(O.kinds), *save = NULL;
	struct rng r;

	rng_seed(&r, O.seed ^ 0xc0);
	vocab_init(O.seed);
	for (char *k = strtok_r(kinds, ",", &save); k; k = strtok_r(NULL, ",", &save)) {
		enum data_kind kind;
		struct tsr_open_options oo = { .workers = O.workers };
		struct tsr_store *st;
		struct tsr_volume *vol;
		struct tsr_layer_id id;
		struct tsr_layer_info li;
		struct tsr_store_stats ss;
		char path[4200], sname[64], sz[32];
		uint64_t t0, t1;
		double sec;
		long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

		if (!strcmp(k, "random"))
			kind = DATA_RANDOM;
		else if (!strcmp(k, "text"))
			kind = DATA_TEXT;
		else
			die("unknown commit data kind '%s' (random, text)", k);
		snprintf(sname, sizeof(sname), "commit-%s", k);
		st = store_new(sname, &oo, path, sizeof(path));
		CHECK(tsr_volume_create(st, "vol", O.size, NULL));
		CHECK(tsr_volume_open(st, "vol", &vol));
		t0 = now_ns();
		volume_fill(vol, O.size, kind, &r);
		note("commit %s: wrote and flushed %s in %.1f s; committing", k,
		     size_text(O.size, sz, sizeof(sz)), (double)(now_ns() - t0) / 1e9);
		t0 = now_ns();
		CHECK(tsr_volume_commit(vol, NULL, NULL, &id));
		t1 = now_ns();
		sec = (double)(t1 - t0) / 1e9;
		CHECK(tsr_layer_stat(st, &id, &li));
		CHECK(tsr_store_stat(st, &ss));
		printf("{\"bench\":\"commit\",\"param\":\"%s\",\"bytes\":%" PRIu64
		       ",\"chunk_size\":%" PRIu32 ",\"workers\":%u,\"online_cpus\":%ld"
		       ",\"seconds\":%.3f,\"bytes_per_s\":%.0f,\"mb_s\":%.1f,\"mib_s\":%.1f"
		       ",\"stored_bytes\":%" PRIu64 ",\"pack_bytes\":%" PRIu64
		       ",\"objects\":%" PRIu64 ",\"ratio\":%.3f}\n",
		       k, O.size, ss.chunk_size, O.workers, ncpu, sec, (double)O.size / sec,
		       (double)O.size / sec / 1e6, (double)O.size / sec / (double)MiB,
		       li.new_stored_bytes, ss.pack_bytes, ss.objects,
		       li.new_stored_bytes ? (double)O.size / (double)li.new_stored_bytes : 0.0);
		fflush(stdout);
		note("commit %s: %.2f s, %.1f MB/s, stored %" PRIu64 " bytes (%.2fx)", k, sec,
		     (double)O.size / sec / 1e6, li.new_stored_bytes,
		     li.new_stored_bytes ? (double)O.size / (double)li.new_stored_bytes : 0.0);
		tsr_store_close(st);
		if (!O.keep)
			rm_rf(path);
	}
	free(kinds);
}

/* ---- randread ------------------------------------------------------------- */

struct rr_shared {
	struct tsr_layer *layer;
	uint32_t cs;
	uint64_t span;              /* reads fall in [0, span) */
	const uint64_t *perm;       /* cold: chunk order, each chunk once */
	uint64_t nperm;
	_Atomic uint64_t next;      /* cold: next slot of perm */
	_Atomic uint64_t issued;    /* ops started (for the --ops limit) */
	uint64_t max_ops;
	uint64_t deadline;          /* now_ns() limit */
};

struct rr_thread {
	pthread_t tid;
	struct rr_shared *sh;
	uint64_t seed;
	uint64_t *lat;
	size_t n, cap;
	int err;
};

static void *rr_main(void *arg)
{
	struct rr_thread *t = arg;
	struct rr_shared *sh = t->sh;
	struct rng r;
	uint8_t buf[IO_SIZE];

	rng_seed(&r, t->seed);
	for (;;) {
		uint64_t off, t0, t1;
		int e;

		if (sh->max_ops && atomic_fetch_add(&sh->issued, 1) >= sh->max_ops)
			break;
		if ((t->n & 63) == 0 && now_ns() >= sh->deadline)
			break;
		if (sh->perm) {
			uint64_t slot = atomic_fetch_add(&sh->next, 1);

			if (slot >= sh->nperm)
				break;
			off = sh->perm[slot] * sh->cs + rng_below(&r, sh->cs / IO_SIZE) * IO_SIZE;
		} else {
			off = rng_below(&r, sh->span / IO_SIZE) * IO_SIZE;
		}
		if (off + IO_SIZE > sh->span)
			off = sh->span - IO_SIZE;
		t0 = now_ns();
		e = tsr_layer_read(sh->layer, buf, IO_SIZE, off);
		t1 = now_ns();
		if (e < 0) {
			t->err = e;
			break;
		}
		if (t->n == t->cap) {
			size_t cap = t->cap ? t->cap * 2 : 65536;
			uint64_t *nl = realloc(t->lat, cap * sizeof(*nl));

			if (!nl) {
				t->err = -ENOMEM;
				break;
			}
			t->lat = nl;
			t->cap = cap;
		}
		t->lat[t->n++] = t1 - t0;
	}
	return NULL;
}

static void rr_run(const char *phase, struct rr_shared *sh, const char *cache_note,
		   uint64_t cache_bytes, uint64_t layer_bytes)
{
	struct rr_thread *th = calloc(O.threads, sizeof(*th));
	uint64_t t0, t1, total = 0, *all;
	size_t k = 0;
	struct stats s;
	double sec;
	char ws[32];

	if (!th)
		die("out of memory");
	sh->deadline = now_ns() + (uint64_t)(O.duration * 1e9);
	t0 = now_ns();
	for (unsigned i = 0; i < O.threads; i++) {
		th[i].sh = sh;
		th[i].seed = O.seed + 1000 * (i + 1) + (uint64_t)phase[1];
		if (pthread_create(&th[i].tid, NULL, rr_main, &th[i]))
			die("pthread_create failed");
	}
	for (unsigned i = 0; i < O.threads; i++)
		pthread_join(th[i].tid, NULL);
	t1 = now_ns();
	for (unsigned i = 0; i < O.threads; i++) {
		if (th[i].err)
			die("randread %s: tsr_layer_read: %s", phase, tsr_strerror(th[i].err));
		total += th[i].n;
	}
	all = malloc((total ? total : 1) * sizeof(*all));
	if (!all)
		die("out of memory");
	for (unsigned i = 0; i < O.threads; i++) {
		memcpy(all + k, th[i].lat, th[i].n * sizeof(*all));
		k += th[i].n;
		free(th[i].lat);
	}
	sec = (double)(t1 - t0) / 1e9;
	s = stats_of(all, total);
	printf("{\"bench\":\"randread\",\"param\":\"%s\",\"threads\":%u,\"io_bytes\":%u"
	       ",\"layer_bytes\":%" PRIu64 ",\"span_bytes\":%" PRIu64 ",\"chunk_size\":%" PRIu32
	       ",\"cache_bytes\":%" PRIu64 ",\"cache\":\"%s\",\"pattern\":\"%s\""
	       ",\"ops\":%" PRIu64 ",\"seconds\":%.3f,\"iops\":%.0f"
	       ",\"p50_us\":%.2f,\"p99_us\":%.2f,\"mean_us\":%.2f,\"max_us\":%.1f}\n",
	       phase, O.threads, IO_SIZE, layer_bytes, sh->span, sh->cs, cache_bytes, cache_note,
	       sh->perm ? "each read in a distinct, never-read chunk" : "uniform random 4 KiB-aligned",
	       total, sec, (double)total / sec, s.p50, s.p99, s.mean, s.max);
	fflush(stdout);
	note("randread %s (span %s): %" PRIu64 " ops in %.2f s = %.0f IOPS, p50 %.2f us, p99 %.2f us",
	     phase, size_text(sh->span, ws, sizeof(ws)), total, sec, (double)total / sec, s.p50,
	     s.p99);
	free(all);
	free(th);
}

static void bench_randread(void)
{
	struct tsr_open_options oo = { .workers = O.workers };
	struct tsr_store *st;
	struct tsr_layer_id id;
	struct tsr_layer *layer;
	char path[4200];
	struct rng r;
	uint64_t ws = O.working_set < O.size ? O.working_set : O.size;

	rng_seed(&r, O.seed ^ 0x4ead);
	st = store_new("randread", &oo, path, sizeof(path));
	import_layer(st, "data", O.size, &r, &id);
	tsr_store_close(st);

	if (strstr(O.phases, "cold")) {
		struct rr_shared sh = { 0 };
		const char *how = drop_caches();
		uint64_t *perm;

		note("randread cold: %s", how);
		CHECK(tsr_store_open(path, &oo, &st));
		CHECK(tsr_layer_open(st, &id, &layer));
		sh.layer = layer;
		sh.cs = 0;
		{
			struct tsr_store_stats ss;

			CHECK(tsr_store_stat(st, &ss));
			sh.cs = ss.chunk_size;
		}
		sh.span = tsr_layer_size(layer);
		sh.nperm = (sh.span + sh.cs - 1) / sh.cs;
		perm = malloc(sh.nperm * sizeof(*perm));
		if (!perm)
			die("out of memory");
		for (uint64_t k = 0; k < sh.nperm; k++)
			perm[k] = k;
		shuffle(perm, sh.nperm, &r);
		sh.perm = perm;
		sh.max_ops = O.ops;
		rr_run("cold", &sh, how, 0, O.size);
		free(perm);
		tsr_layer_close(layer);
		tsr_store_close(st);
	}

	if (strstr(O.phases, "cached")) {
		struct tsr_open_options co = oo;
		struct rr_shared sh = { 0 };
		uint8_t *buf;
		uint64_t t0;

		co.cache_bytes = O.cache_bytes;
		CHECK(tsr_store_open(path, &co, &st));
		CHECK(tsr_layer_open(st, &id, &layer));
		{
			struct tsr_store_stats ss;

			CHECK(tsr_store_stat(st, &ss));
			sh.cs = ss.chunk_size;
		}
		/* Warm: read the working set once, whole chunks. */
		buf = malloc(sh.cs);
		if (!buf)
			die("out of memory");
		t0 = now_ns();
		for (uint64_t off = 0; off < ws; off += sh.cs) {
			size_t n = ws - off < sh.cs ? (size_t)(ws - off) : sh.cs;

			CHECK(tsr_layer_read(layer, buf, n, off));
		}
		free(buf);
		note("randread cached: warmed %" PRIu64 " MiB in %.2f s", ws / MiB,
		     (double)(now_ns() - t0) / 1e9);
		sh.layer = layer;
		sh.span = ws;
		sh.max_ops = O.ops;
		rr_run("cached", &sh, "warmed (working set read once)", O.cache_bytes, O.size);
		tsr_layer_close(layer);
		tsr_store_close(st);
	}
	if (!O.keep)
		rm_rf(path);
}

/* ---- gen ------------------------------------------------------------------ */

/* Writes --size bytes of the commit benchmark's data (--kinds: the first
 * kind) to stdout, e.g. to measure a compressor on it:
 *   tsr_bench gen --kinds text --size 64M > f && zstd -b1 -B64K f */
static void bench_gen(void)
{
	enum data_kind kind = strncmp(O.kinds, "text", 4) ? DATA_RANDOM : DATA_TEXT;
	uint8_t *buf = malloc(IMPORT_PIECE);
	struct rng r;

	if (!buf)
		die("out of memory");
	rng_seed(&r, O.seed ^ 0xc0);
	vocab_init(O.seed);
	for (uint64_t off = 0; off < O.size; off += IMPORT_PIECE) {
		size_t n = O.size - off < IMPORT_PIECE ? (size_t)(O.size - off) : IMPORT_PIECE;

		if (kind == DATA_RANDOM)
			fill_random(&r, buf, n);
		else
			fill_text(&r, buf, n);
		if (fwrite(buf, 1, n, stdout) != n)
			die("write: %s", strerror(errno));
	}
	free(buf);
}

/* ---- main ----------------------------------------------------------------- */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: tsr_bench <benchmark> [options]\n"
		"\n"
		"benchmarks (results: JSON lines on stdout; progress on stderr):\n"
		"  first-write  for each parent size: import random data as a layer, then N\n"
		"               rounds of a 4 KiB write into a chunk the child has not written\n"
		"               + tsr_volume_flush; p50/p99/mean per size and p50(last)/p50(first)\n"
		"  commit       commit throughput of a volume of random and of text-like data\n"
		"  randread     4 KiB random reads of a committed layer, cold and cached\n"
		"  gen          write --size bytes of the commit data (--kinds random|text)\n"
		"               to stdout\n"
		"\n"
		"options:\n"
		"  --dir DIR          make the scratch directory under DIR (default /var/tmp)\n"
		"  --keep             keep the stores afterwards\n"
		"  --chunk-size SIZE  chunk size of the stores (default: the library's)\n"
		"  --seed N           random seed\n"
		"  --workers N        commit workers (default 0: the library's default)\n"
		"first-write:\n"
		"  --sizes LIST       parent sizes (default 1M,16M,256M,1G)\n"
		"  --rounds N         rounds per size (default 200)\n"
		"commit:\n"
		"  --size SIZE        volume size (default 1G)\n"
		"  --kinds LIST       data kinds: random,text (default both)\n"
		"randread:\n"
		"  --size SIZE        layer size (default 1G)\n"
		"  --working-set SIZE cached phase: span of the reads (default 256M)\n"
		"  --cache SIZE       cached phase: cache_bytes (default 512M)\n"
		"  --threads N        reader threads (default 2)\n"
		"  --duration SEC     seconds per phase (default 10)\n"
		"  --ops N            stop a phase after N reads (default: by duration)\n"
		"  --phases LIST      cold,cached (default both)\n");
}

static uint64_t parse_size_arg(const char *opt, const char *text)
{
	uint64_t v;

	if (tsr_parse_size(text, &v) < 0 || v == 0)
		die("%s: bad size '%s'", opt, text);
	return v;
}

static uint64_t parse_uint(const char *opt, const char *text)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(text, &end, 0);
	if (errno || end == text || *end)
		die("%s: bad number '%s'", opt, text);
	return v;
}

int main(int argc, char **argv)
{
	enum { OPT_DIR = 256, OPT_KEEP, OPT_CHUNK, OPT_SEED, OPT_WORKERS, OPT_SIZES,
	       OPT_ROUNDS, OPT_SIZE, OPT_KINDS, OPT_WS, OPT_CACHE, OPT_THREADS,
	       OPT_DURATION, OPT_OPS, OPT_PHASES };
	static const struct option lo[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "dir", required_argument, NULL, OPT_DIR },
		{ "keep", no_argument, NULL, OPT_KEEP },
		{ "chunk-size", required_argument, NULL, OPT_CHUNK },
		{ "seed", required_argument, NULL, OPT_SEED },
		{ "workers", required_argument, NULL, OPT_WORKERS },
		{ "sizes", required_argument, NULL, OPT_SIZES },
		{ "rounds", required_argument, NULL, OPT_ROUNDS },
		{ "size", required_argument, NULL, OPT_SIZE },
		{ "kinds", required_argument, NULL, OPT_KINDS },
		{ "working-set", required_argument, NULL, OPT_WS },
		{ "cache", required_argument, NULL, OPT_CACHE },
		{ "threads", required_argument, NULL, OPT_THREADS },
		{ "duration", required_argument, NULL, OPT_DURATION },
		{ "ops", required_argument, NULL, OPT_OPS },
		{ "phases", required_argument, NULL, OPT_PHASES },
		{ NULL, 0, NULL, 0 },
	};
	const char *bench;
	char *sizes = NULL;
	int c;

	setvbuf(stdout, NULL, _IOLBF, 0);
	while ((c = getopt_long(argc, argv, "+h", lo, NULL)) != -1) {
		switch (c) {
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	bench = argv[optind];
	optind++;
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case 'h':
			usage(stdout);
			return 0;
		case OPT_DIR:
			O.dir = optarg;
			break;
		case OPT_KEEP:
			O.keep = true;
			break;
		case OPT_CHUNK:
			O.chunk_size = (uint32_t)parse_size_arg("--chunk-size", optarg);
			break;
		case OPT_SEED:
			O.seed = parse_uint("--seed", optarg);
			break;
		case OPT_WORKERS:
			O.workers = (unsigned)parse_uint("--workers", optarg);
			break;
		case OPT_SIZES:
			sizes = optarg;
			break;
		case OPT_ROUNDS:
			O.rounds = (unsigned)parse_uint("--rounds", optarg);
			if (!O.rounds)
				die("--rounds must be > 0");
			break;
		case OPT_SIZE:
			O.size = parse_size_arg("--size", optarg);
			break;
		case OPT_KINDS:
			O.kinds = optarg;
			break;
		case OPT_WS:
			O.working_set = parse_size_arg("--working-set", optarg);
			break;
		case OPT_CACHE:
			O.cache_bytes = parse_size_arg("--cache", optarg);
			break;
		case OPT_THREADS:
			O.threads = (unsigned)parse_uint("--threads", optarg);
			if (!O.threads)
				die("--threads must be > 0");
			break;
		case OPT_DURATION:
			O.duration = strtod(optarg, NULL);
			if (O.duration <= 0)
				die("--duration must be > 0");
			break;
		case OPT_OPS:
			O.ops = parse_uint("--ops", optarg);
			break;
		case OPT_PHASES:
			O.phases = optarg;
			break;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc)
		die("unexpected argument '%s'", argv[optind]);

	{
		char *list = strdup(sizes ? sizes : "1M,16M,256M,1G"), *save = NULL;

		for (char *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
			if (O.nsizes == MAX_SIZES)
				die("--sizes: at most %d sizes", MAX_SIZES);
			O.sizes[O.nsizes++] = parse_size_arg("--sizes", t);
			if (O.sizes[O.nsizes - 1] < IO_SIZE)
				die("--sizes: %s is smaller than 4 KiB", t);
		}
		free(list);
	}
	if (O.size < IO_SIZE)
		die("--size must be at least 4 KiB");

	if (!strcmp(bench, "gen")) {
		bench_gen();
		return fflush(stdout) ? 1 : 0;
	}
	if (strcmp(bench, "first-write") && strcmp(bench, "commit") && strcmp(bench, "randread"))
		die("unknown benchmark '%s' (first-write, commit, randread, gen; --help)", bench);
	scratch_make();
	if (!strcmp(bench, "first-write"))
		bench_first_write();
	else if (!strcmp(bench, "commit"))
		bench_commit();
	else
		bench_randread();
	scratch_done();
	return 0;
}
