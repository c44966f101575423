/* SPDX-License-Identifier: MIT */
/*
 * tsr_bench's shared parts: messages, time, random data, statistics,
 * scratch directories, store helpers and the timed 4 KiB readers.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"

char scratch[4096];

/* ---- messages ------------------------------------------------------------ */

void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "tsr_bench: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	exit(1);
}

void note(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "tsr_bench: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
}

/* ---- time, random data, statistics ---------------------------------------- */

uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

void rng_seed(struct rng *r, uint64_t seed)
{
	for (int i = 0; i < 4; i++)
		r->s[i] = splitmix64(&seed);
}

static inline uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

/* xoshiro256** */
uint64_t rng_next(struct rng *r)
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

uint64_t rng_below(struct rng *r, uint64_t n)
{
	return n ? rng_next(r) % n : 0;
}

void fill_random(struct rng *r, void *buf, size_t len)
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

void shuffle(uint64_t *v, uint64_t n, struct rng *r)
{
	for (uint64_t i = n; i > 1; i--) {
		uint64_t j = rng_below(r, i), t = v[i - 1];

		v[i - 1] = v[j];
		v[j] = t;
	}
}

/* Text-like data: words of a fixed pseudo-random vocabulary, chosen with a
 * skew towards frequent words, with punctuation, line breaks and some
 * numbers.  zstd level 1 on 64 KiB chunks compresses it roughly 3-4x. */
#define VOCAB 512
static char vocab[VOCAB][12];
static uint8_t vocab_len[VOCAB];

void vocab_init(uint64_t seed)
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

void fill_text(struct rng *r, void *buf, size_t len)
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

enum data_kind data_kind_of(const char *name, const char *what)
{
	if (!strcmp(name, "random"))
		return DATA_RANDOM;
	if (!strcmp(name, "text"))
		return DATA_TEXT;
	die("unknown %s data kind '%s' (random, text)", what, name);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

struct stats stats_of(uint64_t *v, size_t n)
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

const char *size_text(uint64_t n, char *buf, size_t len)
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

/* ---- scratch directories and stores ---------------------------------------- */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	if (remove(path) < 0 && errno != ENOENT)
		note("cannot remove %s: %s", path, strerror(errno));
	return 0;
}

void rm_rf(const char *path)
{
	nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

void scratch_make(void)
{
	const char *parent = O.dir ? O.dir : "/var/tmp";

	if (O.dir && mkdir(O.dir, 0755) < 0 && errno != EEXIST)
		die("mkdir %s: %s", O.dir, strerror(errno));
	snprintf(scratch, sizeof(scratch), "%s/tsr-bench.XXXXXX", parent);
	if (!mkdtemp(scratch))
		die("mkdtemp %s: %s", scratch, strerror(errno));
	note("scratch directory %s", scratch);
}

void scratch_done(void)
{
	if (!scratch[0])
		return;
	if (O.keep) {
		note("kept %s", scratch);
		return;
	}
	rm_rf(scratch);
}

struct tsr_store *store_new(const char *name, const struct tsr_open_options *oo,
			    char *path, size_t pathlen)
{
	struct tsr_init_options io = { .chunk_size = O.chunk_size, .codec = TSR_CODEC_ZSTD };
	struct tsr_store *st;

	snprintf(path, pathlen, "%s/%s", scratch, name);
	CHECK(tsr_store_init(path, &io));
	CHECK(tsr_store_open(path, oo, &st));
	return st;
}

const char *drop_caches(void)
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

/* nftw has no argument pointer: one walk at a time. */
static uint64_t walk_total;

static int du_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)path;
	(void)ftw;
	if (flag == FTW_F || flag == FTW_D || flag == FTW_DP)
		walk_total += (uint64_t)st->st_blocks * 512;
	return 0;
}

uint64_t du_bytes(const char *path)
{
	walk_total = 0;
	nftw(path, du_entry, 16, FTW_PHYS);
	return walk_total;
}

static int read_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	static char buf[1 << 20];
	ssize_t n;
	int fd;

	(void)st;
	(void)ftw;
	if (flag != FTW_F)
		return 0;
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return 0;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		walk_total += (uint64_t)n;
	close(fd);
	return 0;
}

uint64_t read_tree(const char *path)
{
	walk_total = 0;
	nftw(path, read_entry, 16, FTW_PHYS);
	return walk_total;
}

void volume_fill(struct tsr_volume *vol, uint64_t size, enum data_kind kind, struct rng *r)
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

void volume_fill_file(struct tsr_volume *vol, uint64_t size, const char *path)
{
	uint8_t *buf = malloc(IMPORT_PIECE);
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (!buf)
		die("out of memory");
	if (fd < 0)
		die("%s: %s", path, strerror(errno));
	for (uint64_t off = 0; off < size; off += IMPORT_PIECE) {
		size_t n = size - off < IMPORT_PIECE ? (size_t)(size - off) : IMPORT_PIECE;
		ssize_t got = pread(fd, buf, n, (off_t)off);

		if (got < 0)
			die("%s: %s", path, strerror(errno));
		if ((size_t)got != n)
			die("%s: short read at %" PRIu64, path, off);
		CHECK(tsr_volume_write(vol, buf, n, off));
	}
	close(fd);
	free(buf);
	CHECK(tsr_volume_flush(vol));
}

uint64_t file_size(const char *path)
{
	struct stat sb;

	if (stat(path, &sb) < 0)
		die("%s: %s", path, strerror(errno));
	if (!S_ISREG(sb.st_mode))
		die("%s: not a regular file", path);
	return (uint64_t)sb.st_size;
}

double cpu_seconds(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru) < 0)
		return 0;
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

void commit_layer(struct tsr_store *st, const char *name, uint64_t size,
		  enum data_kind kind, struct rng *r, struct tsr_layer_id *ret)
{
	struct tsr_volume *vol;

	CHECK(tsr_volume_create(st, name, size, NULL));
	CHECK(tsr_volume_open(st, name, &vol));
	volume_fill(vol, size, kind, r);
	CHECK(tsr_volume_commit(vol, name, NULL, ret));
}

void import_layer(struct tsr_store *st, const char *name, uint64_t size,
		  struct rng *r, struct tsr_layer_id *ret)
{
	char sz[32];
	uint64_t t0 = now_ns();

	commit_layer(st, name, size, DATA_RANDOM, r, ret);
	note("imported %s of random data as layer %s in %.1f s",
	     size_text(size, sz, sizeof(sz)), name, (double)(now_ns() - t0) / 1e9);
	/* Settle: the commit unlinked the volume's data file; let the
	 * filesystem write back and free (and, on a filesystem mounted with
	 * discard, discard) it now rather than inside the first timed
	 * rounds.  The timed rounds measure a parent imported earlier. */
	sync();
}

uint32_t store_chunk_size(struct tsr_store *st)
{
	struct tsr_store_stats ss;

	CHECK(tsr_store_stat(st, &ss));
	return ss.chunk_size;
}

/* ---- timed 4 KiB readers of a layer ------------------------------------------ */

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

void rr_measure(struct rr_shared *sh, unsigned threads, double duration, uint64_t seed,
		const char *label, struct rr_result *res)
{
	struct rr_thread *th = calloc(threads, sizeof(*th));
	uint64_t t0, t1, total = 0, *all;
	size_t k = 0;

	if (!th)
		die("out of memory");
	sh->deadline = now_ns() + (uint64_t)(duration * 1e9);
	t0 = now_ns();
	for (unsigned i = 0; i < threads; i++) {
		th[i].sh = sh;
		th[i].seed = seed + 1000 * (i + 1);
		if (pthread_create(&th[i].tid, NULL, rr_main, &th[i]))
			die("pthread_create failed");
	}
	for (unsigned i = 0; i < threads; i++)
		pthread_join(th[i].tid, NULL);
	t1 = now_ns();
	for (unsigned i = 0; i < threads; i++) {
		if (th[i].err)
			die("%s: tsr_layer_read: %s", label, tsr_strerror(th[i].err));
		total += th[i].n;
	}
	all = malloc((total ? total : 1) * sizeof(*all));
	if (!all)
		die("out of memory");
	for (unsigned i = 0; i < threads; i++) {
		memcpy(all + k, th[i].lat, th[i].n * sizeof(*all));
		k += th[i].n;
		free(th[i].lat);
	}
	res->ops = total;
	res->seconds = (double)(t1 - t0) / 1e9;
	res->s = stats_of(all, total);
	free(all);
	free(th);
}
