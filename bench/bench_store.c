/* SPDX-License-Identifier: MIT */
/*
 * The chunk store's benchmarks (issue 2): first-write (4 KiB write + flush
 * into a chunk inherited from a parent), commit throughput, and random 4 KiB
 * reads of a committed layer, cold and cached.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_util.h"

/* ---- first-write ---------------------------------------------------------- */

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
void bench_first_write(void)
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

/* The kinds: "random" and "text" are generated (bench_util.c); "file" is
 * the first --size bytes of --source (all of it when --size is not given or
 * is larger), e.g. a tar of a typical image's files. */
void bench_commit(void)
{
	char *kinds = strdup(O.kinds), *save = NULL;
	struct rng r;

	rng_seed(&r, O.seed ^ 0xc0);
	vocab_init(O.seed);
	for (char *k = strtok_r(kinds, ",", &save); k; k = strtok_r(NULL, ",", &save)) {
		enum data_kind kind = DATA_RANDOM;
		bool from_file = !strcmp(k, "file");
		struct tsr_open_options oo = { .workers = O.workers };
		struct tsr_store *st;
		struct tsr_volume *vol;
		struct tsr_layer_id id;
		struct tsr_layer_info li;
		struct tsr_store_stats ss;
		char path[4200], sname[64], sz[32];
		uint64_t t0, t1, size = O.size;
		double sec, cpu0, cpu;
		long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

		if (from_file) {
			uint64_t fsz;

			if (!O.source)
				die("commit: kind 'file' needs --source FILE");
			fsz = file_size(O.source);
			if (!O.size_set || size > fsz)
				size = fsz;
			if (size < IO_SIZE)
				die("commit: %s is smaller than 4 KiB", O.source);
		} else {
			kind = data_kind_of(k, "commit");
		}
		snprintf(sname, sizeof(sname), "commit-%s", k);
		st = store_new(sname, &oo, path, sizeof(path));
		CHECK(tsr_volume_create(st, "vol", size, NULL));
		CHECK(tsr_volume_open(st, "vol", &vol));
		t0 = now_ns();
		if (from_file)
			volume_fill_file(vol, size, O.source);
		else
			volume_fill(vol, size, kind, &r);
		note("commit %s: wrote and flushed %s in %.1f s; committing", k,
		     size_text(size, sz, sizeof(sz)), (double)(now_ns() - t0) / 1e9);
		/* CPU of the process (every thread) during the commit only. */
		cpu0 = cpu_seconds();
		t0 = now_ns();
		CHECK(tsr_volume_commit(vol, NULL, NULL, &id));
		t1 = now_ns();
		cpu = cpu_seconds() - cpu0;
		sec = (double)(t1 - t0) / 1e9;
		CHECK(tsr_layer_stat(st, &id, &li));
		CHECK(tsr_store_stat(st, &ss));
		printf("{\"bench\":\"commit\",\"param\":\"%s\",\"bytes\":%" PRIu64
		       ",\"chunk_size\":%" PRIu32 ",\"workers\":%u,\"online_cpus\":%ld"
		       ",\"seconds\":%.3f,\"bytes_per_s\":%.0f,\"mb_s\":%.1f,\"mib_s\":%.1f"
		       ",\"cpu_seconds\":%.3f,\"cpu_s_per_gib\":%.3f,\"cpus_used\":%.2f"
		       ",\"stored_bytes\":%" PRIu64 ",\"pack_bytes\":%" PRIu64
		       ",\"objects\":%" PRIu64 ",\"ratio\":%.3f",
		       k, size, ss.chunk_size, O.workers, ncpu, sec, (double)size / sec,
		       (double)size / sec / 1e6, (double)size / sec / (double)MiB,
		       cpu, cpu / ((double)size / (double)GiB), cpu / sec,
		       li.new_stored_bytes, ss.pack_bytes, ss.objects,
		       li.new_stored_bytes ? (double)size / (double)li.new_stored_bytes : 0.0);
		if (from_file) {
			fputs(",\"source\":\"", stdout);
			for (const char *c = O.source; *c; c++)
				if (*c == '"' || *c == '\\')
					printf("\\%c", *c);
				else if ((unsigned char)*c >= 0x20)
					putchar(*c);
			putchar('"');
		}
		puts("}");
		fflush(stdout);
		note("commit %s: %.2f s, %.1f MB/s, %.2f CPU-s (%.2f CPU-s/GiB, %.2f CPUs), "
		     "stored %" PRIu64 " bytes (%.2fx)", k, sec, (double)size / sec / 1e6, cpu,
		     cpu / ((double)size / (double)GiB), cpu / sec, li.new_stored_bytes,
		     li.new_stored_bytes ? (double)size / (double)li.new_stored_bytes : 0.0);
		tsr_store_close(st);
		if (!O.keep)
			rm_rf(path);
	}
	free(kinds);
}

/* ---- randread ------------------------------------------------------------- */

static void rr_run(const char *phase, struct rr_shared *sh, const char *cache_note,
		   uint64_t cache_bytes, uint64_t layer_bytes)
{
	struct rr_result res;
	uint64_t total;
	struct stats s;
	double sec;
	char ws[32], label[64];

	snprintf(label, sizeof(label), "randread %s", phase);
	rr_measure(sh, O.threads, O.duration, O.seed + (uint64_t)phase[1], label, &res);
	total = res.ops;
	sec = res.seconds;
	s = res.s;
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
}

void bench_randread(void)
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
		sh.cs = store_chunk_size(st);
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
		sh.cs = store_chunk_size(st);
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

