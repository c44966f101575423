/* SPDX-License-Identifier: MIT */
/*
 * Benchmarks of the store's maintenance and integrity paths (issue 3):
 *
 *   gc      GB reclaimed per second after removing half the layers (unique
 *           data), with the library's packs (punching) and with small packs
 *           (TESSERA_PACK_BYTES: compaction and deletion of packs)
 *   fsck    MB/s of objects verified against their digests, cold and warm
 *   verify  the read-path cost of digest verification: 4 KiB random reads
 *           that miss the chunk cache (pack read from the page cache,
 *           decompression, SHA-256) vs reads served by the cached verdict;
 *           and SHA-256 / zstd decompression of one chunk alone
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <zstd.h>

#include "bench_util.h"

/* ---- gc ----------------------------------------------------------------------- */

/* One variant: layers of random (or text) data committed into one store,
 * every odd one removed (each holds unique data), then one tsr_store_gc.
 * du_drop_of_removed: the drop of du over the removed layers' stored bytes. */
static void gc_variant(const char *pack_bytes, enum data_kind kind, struct rng *r)
{
	struct tsr_open_options oo = { .workers = O.workers };
	struct tsr_layer_id *ids = calloc(O.layers, sizeof(*ids));
	struct tsr_store_stats ss;
	struct tsr_gc_stats gs;
	struct tsr_store *st;
	char path[4200], sname[96], param[64], name[32], sz[32];
	uint64_t layer_bytes, removed_bytes = 0, removed_stored = 0, t0, t1, du_before, du_after;
	uint64_t reclaimed;
	uint32_t cs;
	unsigned removed = 0;
	double sec, rm_sec, cpu0, cpu;

	if (!ids)
		die("out of memory");
	if (!strcmp(pack_bytes, "default")) {
		unsetenv("TESSERA_PACK_BYTES");
		snprintf(param, sizeof(param), "packs-default");
	} else {
		uint64_t v;

		if (tsr_parse_size(pack_bytes, &v) < 0 || v < MiB)
			die("--pack-bytes: bad size '%s' (at least 1M, or default)", pack_bytes);
		setenv("TESSERA_PACK_BYTES", pack_bytes, 1);
		snprintf(param, sizeof(param), "packs-%s", size_text(v, sz, sizeof(sz)));
	}
	snprintf(sname, sizeof(sname), "gc-%s", param);
	st = store_new(sname, &oo, path, sizeof(path));
	cs = store_chunk_size(st);
	layer_bytes = O.size / O.layers / cs * cs;
	if (!layer_bytes)
		die("gc: --size %" PRIu64 " is less than a chunk per layer", O.size);
	t0 = now_ns();
	for (unsigned i = 0; i < O.layers; i++) {
		snprintf(name, sizeof(name), "layer-%u", i);
		commit_layer(st, name, layer_bytes, kind, r, &ids[i]);
	}
	note("gc %s: committed %u layers of %s of %s data in %.1f s", param, O.layers,
	     size_text(layer_bytes, sz, sizeof(sz)), kind == DATA_TEXT ? "text" : "random",
	     (double)(now_ns() - t0) / 1e9);
	CHECK(tsr_store_stat(st, &ss));
	t0 = now_ns();
	for (unsigned i = 1; i < O.layers; i += 2) {
		struct tsr_layer_info li;

		snprintf(name, sizeof(name), "layer-%u", i);
		CHECK(tsr_layer_stat(st, &ids[i], &li));
		removed_stored += li.new_stored_bytes;
		CHECK(tsr_layer_remove(st, &ids[i], name));
		removed++;
		removed_bytes += layer_bytes;
	}
	rm_sec = (double)(now_ns() - t0) / 1e9;
	sync();
	du_before = du_bytes(path);
	cpu0 = cpu_seconds();
	t0 = now_ns();
	CHECK(tsr_store_gc(st, NULL, &gs));
	t1 = now_ns();
	cpu = cpu_seconds() - cpu0;
	sec = (double)(t1 - t0) / 1e9;
	du_after = du_bytes(path);
	reclaimed = gs.allocated_before > gs.allocated_after ?
		    gs.allocated_before - gs.allocated_after : 0;
	printf("{\"bench\":\"gc\",\"param\":\"%s\",\"pack_bytes\":\"%s\",\"kind\":\"%s\""
	       ",\"bytes\":%" PRIu64
	       ",\"layers\":%u,\"layer_bytes\":%" PRIu64 ",\"removed_layers\":%u"
	       ",\"removed_bytes\":%" PRIu64 ",\"removed_stored_bytes\":%" PRIu64
	       ",\"pack_bytes_before\":%" PRIu64
	       ",\"remove_seconds\":%.3f,\"seconds\":%.3f,\"cpu_seconds\":%.3f"
	       ",\"objects_removed\":%" PRIu64 ",\"object_bytes_removed\":%" PRIu64
	       ",\"packs_compacted\":%" PRIu64 ",\"packs_removed\":%" PRIu64
	       ",\"live_bytes_copied\":%" PRIu64 ",\"volume_bytes_freed\":%" PRIu64
	       ",\"allocated_before\":%" PRIu64 ",\"allocated_after\":%" PRIu64
	       ",\"reclaimed_bytes\":%" PRIu64 ",\"gb_s\":%.3f"
	       ",\"du_before\":%" PRIu64 ",\"du_after\":%" PRIu64 ",\"du_drop_of_removed\":%.4f}\n",
	       param, pack_bytes, kind == DATA_TEXT ? "text" : "random", O.size, O.layers,
	       layer_bytes, removed, removed_bytes, removed_stored,
	       ss.pack_bytes, rm_sec, sec, cpu, gs.objects_removed, gs.object_bytes_removed,
	       gs.packs_compacted, gs.packs_removed, gs.live_bytes_copied, gs.volume_bytes_freed,
	       gs.allocated_before, gs.allocated_after, reclaimed, (double)reclaimed / sec / 1e9,
	       du_before, du_after,
	       du_before > du_after ? (double)(du_before - du_after) / (double)removed_stored : 0.0);
	fflush(stdout);
	note("gc %s: %.3f s, reclaimed %" PRIu64 " bytes = %.2f GB/s; %" PRIu64
	     " packs compacted (%" PRIu64 " bytes copied), %" PRIu64 " removed; du %" PRIu64
	     " -> %" PRIu64, param, sec, reclaimed, (double)reclaimed / sec / 1e9,
	     gs.packs_compacted, gs.live_bytes_copied, gs.packs_removed, du_before, du_after);
	tsr_store_close(st);
	if (!O.keep)
		rm_rf(path);
	unsetenv("TESSERA_PACK_BYTES");
	free(ids);
}

void bench_gc(void)
{
	char *list = strdup(O.pack_bytes), *save = NULL;
	struct rng r;

	if (!list)
		die("out of memory");
	rng_seed(&r, O.seed ^ 0x6c);
	vocab_init(O.seed);
	for (char *v = strtok_r(list, ",", &save); v; v = strtok_r(NULL, ",", &save))
		gc_variant(v, data_kind_of(O.kinds_set ? O.kinds : "random", "gc"), &r);
	free(list);
}

/* ---- fsck --------------------------------------------------------------------- */

static void fsck_report(void *arg, const char *line)
{
	(*(uint64_t *)arg)++;
	note("fsck: %s", line);
}

void bench_fsck(void)
{
	struct tsr_open_options oo = { .workers = O.workers };
	const char *phases = O.phases_set ? O.phases : "cold,warm";
	char *list = strdup(phases), *save = NULL;
	struct tsr_layer_id id;
	struct tsr_store_stats ss;
	struct tsr_store *st;
	char path[4200], sz[32];
	uint64_t half = O.size / 2, t0;
	struct rng r;

	if (!list)
		die("out of memory");
	rng_seed(&r, O.seed ^ 0xf5c);
	vocab_init(O.seed);
	st = store_new("fsck", &oo, path, sizeof(path));
	t0 = now_ns();
	commit_layer(st, "text", half, DATA_TEXT, &r, &id);
	commit_layer(st, "random", O.size - half, DATA_RANDOM, &r, &id);
	CHECK(tsr_store_stat(st, &ss));
	note("fsck: committed %s (half text, half random) in %.1f s: %" PRIu64
	     " objects, %" PRIu64 " bytes in packs", size_text(O.size, sz, sizeof(sz)),
	     (double)(now_ns() - t0) / 1e9, ss.objects, ss.stored_bytes);
	tsr_store_close(st);

	for (char *ph = strtok_r(list, ",", &save); ph; ph = strtok_r(NULL, ",", &save)) {
		struct tsr_fsck_stats fs;
		const char *how;
		uint64_t findings = 0, t1;
		double sec, cpu0, cpu;
		int rc;

		if (!strcmp(ph, "cold")) {
			how = drop_caches();
		} else if (!strcmp(ph, "warm")) {
			read_tree(path);
			how = "packs read once first (page cache)";
		} else {
			die("unknown fsck phase '%s' (cold, warm)", ph);
		}
		CHECK(tsr_store_open(path, &oo, &st));
		cpu0 = cpu_seconds();
		t0 = now_ns();
		rc = tsr_store_fsck(st, 0, fsck_report, &findings, NULL, &fs);
		t1 = now_ns();
		cpu = cpu_seconds() - cpu0;
		if (rc < 0)
			die("tsr_store_fsck: %s", tsr_strerror(rc));
		sec = (double)(t1 - t0) / 1e9;
		printf("{\"bench\":\"fsck\",\"param\":\"%s\",\"cache\":\"%s\",\"bytes\":%" PRIu64
		       ",\"stored_bytes\":%" PRIu64 ",\"objects_checked\":%" PRIu64
		       ",\"bytes_checked\":%" PRIu64 ",\"seconds\":%.3f,\"cpu_seconds\":%.3f"
		       ",\"mb_s\":%.1f,\"stored_mb_s\":%.1f,\"objects_s\":%.0f"
		       ",\"result\":%d,\"findings\":%" PRIu64 ",\"damaged_objects\":%" PRIu64 "}\n",
		       ph, how, O.size, ss.stored_bytes, fs.objects_checked, fs.bytes_checked, sec,
		       cpu, (double)fs.bytes_checked / sec / 1e6,
		       (double)ss.stored_bytes / sec / 1e6, (double)fs.objects_checked / sec, rc,
		       findings, fs.damaged_objects);
		fflush(stdout);
		note("fsck %s: %" PRIu64 " objects, %" PRIu64 " bytes in %.2f s = %.1f MB/s"
		     " (%.2f CPU-s), result %d", ph, fs.objects_checked, fs.bytes_checked, sec,
		     (double)fs.bytes_checked / sec / 1e6, cpu, rc);
		tsr_store_close(st);
	}
	free(list);
	if (!O.keep)
		rm_rf(path);
}

/* ---- verify ------------------------------------------------------------------- */

/* Runs the 4 KiB readers at each thread count on a freshly opened store
 * with cache_bytes; "hit" warms the chunk cache with the whole layer. */
static void verify_phase(const char *path, const struct tsr_layer_id *id, const char *kind,
			 const char *phase, uint64_t cache_bytes, double duration,
			 uint64_t stored)
{
	struct tsr_open_options oo = { .workers = O.workers, .cache_bytes = cache_bytes };
	char *list = strdup(O.thread_list ? O.thread_list : "1,2"), *save = NULL;
	struct tsr_layer *layer;
	struct tsr_store *st;
	uint64_t size;
	uint32_t cs;

	if (!list)
		die("out of memory");
	CHECK(tsr_store_open(path, &oo, &st));
	CHECK(tsr_layer_open(st, id, &layer));
	cs = store_chunk_size(st);
	size = tsr_layer_size(layer);
	if (!strcmp(phase, "hit")) {
		uint8_t *buf = malloc(cs);

		if (!buf)
			die("out of memory");
		for (uint64_t off = 0; off < size; off += cs)
			CHECK(tsr_layer_read(layer, buf, size - off < cs ? size - off : cs, off));
		free(buf);
	}
	for (char *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		struct rr_shared sh = { .layer = layer, .cs = cs, .span = size };
		struct rr_result res;
		unsigned threads = (unsigned)strtoul(t, NULL, 10);
		char label[64];

		snprintf(label, sizeof(label), "verify %s %s", kind, phase);
		rr_measure(&sh, threads, duration, O.seed + threads + (uint64_t)phase[0], label,
			   &res);
		printf("{\"bench\":\"verify\",\"param\":\"%s\",\"kind\":\"%s\",\"threads\":%u"
		       ",\"io_bytes\":%u,\"layer_bytes\":%" PRIu64 ",\"stored_bytes\":%" PRIu64
		       ",\"chunk_size\":%" PRIu32 ",\"cache_bytes\":%" PRIu64
		       ",\"ops\":%" PRIu64 ",\"seconds\":%.3f,\"iops\":%.0f"
		       ",\"p50_us\":%.2f,\"p99_us\":%.2f,\"mean_us\":%.2f,\"max_us\":%.1f}\n",
		       phase, kind, threads, IO_SIZE, size, stored, cs, cache_bytes, res.ops,
		       res.seconds, (double)res.ops / res.seconds, res.s.p50, res.s.p99,
		       res.s.mean, res.s.max);
		fflush(stdout);
		note("verify %s %s, %u thread(s): %.0f IOPS, p50 %.2f us, p99 %.2f us", kind,
		     phase, threads, (double)res.ops / res.seconds, res.s.p50, res.s.p99);
	}
	free(list);
	tsr_layer_close(layer);
	tsr_store_close(st);
}

/* Times fn over one chunk for about a second; prints a "verify" line. */
static void time_alone(const char *param, const char *what, uint32_t cs,
		       void (*fn)(void *arg), void *arg)
{
	uint64_t *lat = malloc(1000000 * sizeof(*lat)), n = 0, start = now_ns();
	struct stats s;

	if (!lat)
		die("out of memory");
	while (n < 1000000 && now_ns() - start < 1000000000ull) {
		uint64_t t0 = now_ns();

		fn(arg);
		lat[n++] = now_ns() - t0;
	}
	s = stats_of(lat, n);
	printf("{\"bench\":\"verify\",\"param\":\"%s\",\"what\":\"%s\",\"bytes\":%" PRIu32
	       ",\"ops\":%" PRIu64 ",\"p50_us\":%.2f,\"p99_us\":%.2f,\"mean_us\":%.2f"
	       ",\"mb_s\":%.1f}\n", param, what, cs, n, s.p50, s.p99, s.mean,
	       s.mean > 0 ? (double)cs / s.mean : 0.0);
	fflush(stdout);
	note("verify %s (%s): p50 %.2f us, %.0f MB/s", param, what, s.p50,
	     s.mean > 0 ? (double)cs / s.mean : 0.0);
	free(lat);
}

struct alone {
	const EVP_MD *md;
	uint8_t *raw, *comp, *out;
	size_t cs, clen;
	int fd;
	uint64_t fsize;
	struct rng r;
};

static void sha_once(void *arg)
{
	struct alone *a = arg;
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned len;

	if (!EVP_Digest(a->raw, a->cs, md, &len, a->md, NULL))
		die("EVP_Digest failed");
}

static void unzstd_once(void *arg)
{
	struct alone *a = arg;
	size_t n = ZSTD_decompress(a->out, a->cs, a->comp, a->clen);

	if (ZSTD_isError(n) || n != a->cs)
		die("ZSTD_decompress: %s", ZSTD_getErrorName(n));
}

static void pread_once(void *arg)
{
	struct alone *a = arg;
	uint64_t off = rng_below(&a->r, (a->fsize - a->cs) / 4096) * 4096;

	if (pread(a->fd, a->out, a->cs, (off_t)off) != (ssize_t)a->cs)
		die("pread: %s", strerror(errno));
}

/* The largest file under the store: a pack (nftw has no argument). */
static char biggest_path[4200];
static off_t biggest_size;

static int biggest_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)ftw;
	if (flag == FTW_F && st->st_size > biggest_size) {
		biggest_size = st->st_size;
		snprintf(biggest_path, sizeof(biggest_path), "%s", path);
	}
	return 0;
}

/* The parts of a miss, each alone on one chunk: SHA-256 (EVP, as the
 * library), zstd decompression of a text chunk compressed at level -1, and
 * a pread of a chunk from a pack in the page cache. */
static void verify_alone(const char *path, uint32_t cs)
{
	struct alone a = { .cs = cs };
	ZSTD_CCtx *cctx = ZSTD_createCCtx();
	size_t bound = ZSTD_compressBound(cs);

	a.md = EVP_MD_fetch(NULL, "SHA256", NULL);
	a.raw = malloc(cs);
	a.out = malloc(cs);
	a.comp = malloc(bound);
	if (!a.md || !a.raw || !a.out || !a.comp || !cctx)
		die("out of memory (or no SHA256)");
	rng_seed(&a.r, O.seed ^ 0x5a);
	vocab_init(O.seed);
	fill_text(&a.r, a.raw, cs);
	time_alone("sha256", "EVP SHA-256 of one chunk", cs, sha_once, &a);
	ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, -1);
	a.clen = ZSTD_compress2(cctx, a.comp, bound, a.raw, cs);
	if (ZSTD_isError(a.clen))
		die("ZSTD_compress2: %s", ZSTD_getErrorName(a.clen));
	time_alone("zstd-decompress", "zstd -1 text chunk decompressed", cs, unzstd_once, &a);
	biggest_size = 0;
	nftw(path, biggest_entry, 16, FTW_PHYS);
	a.fd = open(biggest_path, O_RDONLY);
	a.fsize = (uint64_t)biggest_size;
	if (a.fd >= 0 && a.fsize > 2 * (uint64_t)cs) {
		time_alone("pread", "pread of one chunk of a pack in the page cache", cs,
			   pread_once, &a);
		close(a.fd);
	}
	ZSTD_freeCCtx(cctx);
	EVP_MD_free((EVP_MD *)a.md);
	free(a.raw);
	free(a.out);
	free(a.comp);
}

void bench_verify(void)
{
	const char *kinds = O.kinds_set ? O.kinds : "text,random";
	char *list = strdup(kinds), *save = NULL, path[4200] = "";
	uint64_t size = O.size_set ? O.size : 256 * MiB;
	double duration = O.duration_set ? O.duration : 5.0;
	uint32_t cs = 0;
	struct rng r;

	if (!list)
		die("out of memory");
	rng_seed(&r, O.seed ^ 0xe71f);
	vocab_init(O.seed);
	for (char *k = strtok_r(list, ",", &save); k; k = strtok_r(NULL, ",", &save)) {
		enum data_kind kind = data_kind_of(k, "verify");
		struct tsr_open_options oo = { .workers = O.workers };
		struct tsr_layer_info li;
		struct tsr_layer_id id;
		struct tsr_store *st;
		char sname[64];

		snprintf(sname, sizeof(sname), "verify-%s", k);
		st = store_new(sname, &oo, path, sizeof(path));
		cs = store_chunk_size(st);
		commit_layer(st, "data", size, kind, &r, &id);
		CHECK(tsr_layer_stat(st, &id, &li));
		tsr_store_close(st);
		if (O.cache_bytes < size)
			note("verify: --cache %" PRIu64 " is smaller than the layer: hits will miss",
			     O.cache_bytes);
		/* Every pack in the page cache: a miss reads no disk. */
		note("verify %s: read %" PRIu64 " bytes of the store into the page cache", k,
		     read_tree(path));
		verify_phase(path, &id, k, "miss", 4 * (uint64_t)cs, duration, li.new_stored_bytes);
		verify_phase(path, &id, k, "hit", O.cache_bytes, duration, li.new_stored_bytes);
		/* The parts of a miss are timed after the last kind, next to
		 * its store (its packs are in the page cache). */
		if (!save || !*save)
			verify_alone(path, cs);
		if (!O.keep)
			rm_rf(path);
	}
	free(list);
}
