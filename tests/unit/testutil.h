/* SPDX-License-Identifier: MIT */
/*
 * Small helpers shared by the unit tests: a seeded PRNG, scratch
 * directories, and assertion macros that print tsr_strerror() text.
 * Tests use only <tessera/store.h> of the library.
 */
#ifndef TSR_TESTUTIL_H
#define TSR_TESTUTIL_H

#include <check.h>
#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <tessera/store.h>

#include "check_run.h"

/* Asserts that expr returns want; prints the call, both codes and their text. */
#define TSR_CK_RET(expr, want)                                               \
	do {                                                                 \
		int tsr_ck_r_ = (expr);                                      \
		int tsr_ck_w_ = (want);                                      \
		ck_assert_msg(tsr_ck_r_ == tsr_ck_w_,                        \
			      "%s returned %d (%s), expected %d (%s)", #expr, \
			      tsr_ck_r_, tsr_strerror(tsr_ck_r_), tsr_ck_w_, \
			      tsr_strerror(tsr_ck_w_));                      \
	} while (0)
#define TSR_CK_OK(expr) TSR_CK_RET(expr, 0)

/* ---- PRNG: splitmix64, fast and good enough for test data ------------- */

struct trng {
	uint64_t s;
};

static inline uint64_t trng_next(struct trng *r)
{
	uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Uniform in [0, n); n > 0. */
static inline uint64_t trng_below(struct trng *r, uint64_t n)
{
	return trng_next(r) % n;
}

/* Uniform in [lo, hi]; lo <= hi. */
static inline uint64_t trng_range(struct trng *r, uint64_t lo, uint64_t hi)
{
	return lo + trng_below(r, hi - lo + 1);
}

static inline void trng_fill(struct trng *r, void *buf, size_t len)
{
	uint8_t *p = buf;
	while (len >= 8) {
		uint64_t v = trng_next(r);
		memcpy(p, &v, 8);
		p += 8;
		len -= 8;
	}
	if (len) {
		uint64_t v = trng_next(r);
		memcpy(p, &v, len);
	}
}

/* The run's seed: $TSR_SEED, or a fresh one.  Printed so a failure can be
 * replayed with TSR_SEED=<seed>. */
static inline uint64_t tsr_test_seed(const char *who)
{
	const char *env = getenv("TSR_SEED");
	uint64_t seed;
	if (env && *env) {
		seed = strtoull(env, NULL, 0);
	} else {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		seed = (uint64_t)ts.tv_sec * 1000003u ^ (uint64_t)ts.tv_nsec ^
		       ((uint64_t)getpid() << 32);
		seed &= 0xffffffffffffULL; /* short enough to type */
	}
	fprintf(stderr, "%s: seed=%" PRIu64 " (replay with TSR_SEED=%" PRIu64 ")\n",
		who, seed, seed);
	return seed;
}

static inline uint64_t tsr_test_env_u64(const char *name, uint64_t dflt)
{
	const char *env = getenv(name);
	if (!env || !*env)
		return dflt;
	return strtoull(env, NULL, 0);
}

/* ---- scratch directories ------------------------------------------------ */

static inline int tsr_rm_cb(const char *path, const struct stat *sb, int flag,
			    struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path) < 0 ? -errno : 0;
}

static inline int tsr_rm_rf(const char *path)
{
	return nftw(path, tsr_rm_cb, 32, FTW_DEPTH | FTW_PHYS);
}

/* The scratch directory of the running test (one per forked test). */
static char tsr_scratch[4096];

static inline void tsr_scratch_cleanup(void)
{
	if (tsr_scratch[0] && !getenv("TSR_KEEP_DIR"))
		tsr_rm_rf(tsr_scratch);
	tsr_scratch[0] = 0;
}

/* Makes a fresh mkdtemp directory $TMPDIR/tsr-<tag>-XXXXXX, removed when
 * the test passes (tsr_scratch_cleanup() at its end, and at exit).  A
 * failing assertion _exit()s Check's forked child, so the directory of a
 * failed test stays behind for a post-mortem.  TSR_KEEP_DIR=1 keeps it
 * always. */
static inline const char *tsr_scratch_dir(const char *tag)
{
	static int registered;
	const char *base = getenv("TMPDIR");
	if (!base || !*base)
		base = "/tmp";
	snprintf(tsr_scratch, sizeof(tsr_scratch), "%s/tsr-%s-XXXXXX", base, tag);
	ck_assert_msg(mkdtemp(tsr_scratch) != NULL, "mkdtemp %s: %s", tsr_scratch,
		      strerror(errno));
	if (!registered) {
		atexit(tsr_scratch_cleanup);
		registered = 1;
	}
	return tsr_scratch;
}

/* dir/sub into buf; returns buf. */
static inline char *tsr_path(char *buf, size_t size, const char *dir,
			     const char *sub)
{
	int n = snprintf(buf, size, "%s/%s", dir, sub);
	ck_assert(n > 0 && (size_t)n < size);
	return buf;
}

/* Index of the first differing byte, or -1. */
static inline long tsr_first_diff(const uint8_t *a, const uint8_t *b, size_t len)
{
	if (memcmp(a, b, len) == 0)
		return -1;
	for (size_t i = 0; i < len; i++)
		if (a[i] != b[i])
			return (long)i;
	return -1;
}

/* A new store in a scratch directory (tag names it), open; dir gets its
 * path. */
static inline struct tsr_store *tsr_scratch_store(const char *tag, char *dir, size_t len)
{
	struct tsr_store *st;

	snprintf(dir, len, "%s/store", tsr_scratch_dir(tag));
	TSR_CK_OK(tsr_store_init(dir, NULL));
	TSR_CK_OK(tsr_store_open(dir, NULL, &st));
	return st;
}

#endif /* TSR_TESTUTIL_H */
