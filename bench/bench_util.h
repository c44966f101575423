/* SPDX-License-Identifier: MIT */
/*
 * Shared by the parts of tsr_bench: options, messages, time, random data,
 * statistics, scratch directories, store helpers, timed 4 KiB readers, and
 * the benchmarks' entry points.
 *
 *   bench_util.c   everything below up to "readers"
 *   bench_store.c  first-write, commit, randread (issue 2)
 *   bench_maint.c  gc, fsck, verify (issue 3)
 *   tsr_bench.c    main: options, usage, gen
 */
#ifndef TSR_BENCH_UTIL_H
#define TSR_BENCH_UTIL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <tessera/store.h>

#define KiB ((uint64_t)1024)
#define MiB (1024 * KiB)
#define GiB (1024 * MiB)
#define IO_SIZE 4096u
#define IMPORT_PIECE (1 * MiB)
#define MAX_SIZES 16

/* ---- options (tsr_bench.c parses them) ----------------------------------- */

struct opts {
	const char *dir;          /* parent of the scratch directory */
	bool keep;
	uint64_t sizes[MAX_SIZES];/* first-write parent sizes */
	int nsizes;
	unsigned rounds;          /* first-write rounds per size */
	uint32_t chunk_size;      /* 0 = library default */
	uint64_t size;            /* commit / randread / gc / fsck data size */
	uint64_t working_set;     /* randread cached working set */
	uint64_t cache_bytes;     /* randread cached / verify hit: cache size */
	unsigned threads;         /* randread threads */
	double duration;          /* randread / verify seconds per phase */
	uint64_t ops;             /* randread ops per phase; 0 = until duration */
	unsigned workers;         /* commit workers; 0 = library default */
	uint64_t seed;
	const char *kinds;        /* commit: "random,text"; verify: data kinds */
	const char *phases;       /* randread: "cold,cached"; fsck: "cold,warm" */
	unsigned layers;          /* gc: layers committed */
	const char *pack_bytes;   /* gc: "default,64M,48M" (TESSERA_PACK_BYTES) */
	const char *thread_list;  /* verify: "1,2" (NULL: that) */
	const char *source;       /* commit: the file kind "file" commits */
	bool size_set, duration_set, kinds_set, phases_set;
};

extern struct opts O;
extern char scratch[4096];

/* ---- messages ------------------------------------------------------------ */

__attribute__((format(printf, 1, 2), noreturn)) void die(const char *fmt, ...);
__attribute__((format(printf, 1, 2))) void note(const char *fmt, ...);

#define CHECK(call)                                                          \
	do {                                                                 \
		int r_ = (call);                                             \
		if (r_ < 0)                                                  \
			die("%s:%d: %s: %s", __FILE__, __LINE__, #call,      \
			    tsr_strerror(r_));                               \
	} while (0)

/* ---- time, random data, statistics ---------------------------------------- */

uint64_t now_ns(void);

struct rng {
	uint64_t s[4];
};

void rng_seed(struct rng *r, uint64_t seed);
uint64_t rng_next(struct rng *r);   /* xoshiro256** */
uint64_t rng_below(struct rng *r, uint64_t n);
void fill_random(struct rng *r, void *buf, size_t len);
void shuffle(uint64_t *v, uint64_t n, struct rng *r);

/* Text-like data: words of a pseudo-random vocabulary (vocab_init first). */
void vocab_init(uint64_t seed);
void fill_text(struct rng *r, void *buf, size_t len);

enum data_kind { DATA_RANDOM, DATA_TEXT };
/* "random" or "text"; dies on anything else (what names the caller). */
enum data_kind data_kind_of(const char *name, const char *what);

struct stats {
	double p50, p99, mean, min, max;
};

/* Sorts v; percentiles by nearest rank; microseconds. */
struct stats stats_of(uint64_t *v, size_t n);
const char *size_text(uint64_t n, char *buf, size_t len);

/* ---- scratch directories and stores ---------------------------------------- */

void rm_rf(const char *path);
void scratch_make(void);
void scratch_done(void);
/* Creates and opens scratch/name; its path goes to path. */
struct tsr_store *store_new(const char *name, const struct tsr_open_options *oo,
			    char *path, size_t pathlen);
/* Drops the kernel's page cache when we may; says what was done. */
const char *drop_caches(void);
/* Allocated bytes of every file under path (what `du -s -B1` prints). */
uint64_t du_bytes(const char *path);
/* Reads every regular file under path once (cat > /dev/null); bytes read. */
uint64_t read_tree(const char *path);

/* Writes size bytes (random or text) into vol in 1 MiB pieces, flushes. */
void volume_fill(struct tsr_volume *vol, uint64_t size, enum data_kind kind,
		 struct rng *r);
/* Writes the first size bytes of the file path into vol the same way. */
void volume_fill_file(struct tsr_volume *vol, uint64_t size, const char *path);
/* Size of the file path (dies if it is not a readable regular file). */
uint64_t file_size(const char *path);
/* CPU seconds (user + system) of the whole process so far, all threads. */
double cpu_seconds(void);
/* A new volume of random data committed as layer name. */
void import_layer(struct tsr_store *st, const char *name, uint64_t size,
		  struct rng *r, struct tsr_layer_id *ret);
/* The same for either kind; quiet (no note). */
void commit_layer(struct tsr_store *st, const char *name, uint64_t size,
		  enum data_kind kind, struct rng *r, struct tsr_layer_id *ret);
uint32_t store_chunk_size(struct tsr_store *st);

/* ---- timed 4 KiB readers of a layer ------------------------------------------ */

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

struct rr_result {
	uint64_t ops;
	double seconds;
	struct stats s;
};

/* Runs threads readers over sh for duration seconds (or sh->max_ops, or the
 * end of sh->perm); reader i is seeded seed + 1000 * (i + 1).  label names
 * the phase in an error. */
void rr_measure(struct rr_shared *sh, unsigned threads, double duration, uint64_t seed,
		const char *label, struct rr_result *res);

/* ---- benchmarks ----------------------------------------------------------- */

void bench_first_write(void);  /* bench_store.c */
void bench_commit(void);
void bench_randread(void);
void bench_gc(void);           /* bench_maint.c */
void bench_fsck(void);
void bench_verify(void);

#endif
