/* SPDX-License-Identifier: MIT */
/*
 * tsr_bench: library-level benchmarks of libtessera (public API only).
 *
 *   tsr_bench first-write [options]   4 KiB first write (copy-up of one chunk)
 *                                     + flush into a child of parents of growing size
 *   tsr_bench commit [options]        commit throughput, random vs compressible data
 *                                     (generated, or the bytes of --source FILE)
 *   tsr_bench randread [options]      4 KiB random reads of a layer, cold and cached
 *   tsr_bench gc [options]            gc throughput after removing half the layers
 *   tsr_bench fsck [options]          fsck throughput (digest check of every object)
 *   tsr_bench verify [options]        read-path cost of digest verification
 *
 * Results go to stdout as JSON lines, one object per figure; progress and
 * notes go to stderr.  Stores are created under a fresh directory made with
 * mkdtemp under --dir (default /var/tmp) and removed afterwards (--keep
 * keeps them).
 *
 * This file: options, usage, gen.  The benchmarks are in bench_store.c
 * (issue 2's) and bench_maint.c (issue 3's); shared parts in bench_util.c.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"

struct opts O = {
	.rounds = 200,
	.size = 1 * GiB,
	.working_set = 256 * MiB,
	.cache_bytes = 512 * MiB,
	.threads = 2,
	.duration = 10.0,
	.seed = 0x7e55e7a,
	.kinds = "random,text",
	.phases = "cold,cached",
	.layers = 16,
	.pack_bytes = "default,64M,48M",
};

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
		"               (or of a file's bytes: --source); CPU-seconds per GiB\n"
		"  randread     4 KiB random reads of a committed layer, cold and cached\n"
		"  gc           commit --layers layers of random data (--size in all), remove\n"
		"               every other one, time tsr_store_gc; per --pack-bytes variant\n"
		"  fsck         tsr_store_fsck of a store of --size (half text, half random),\n"
		"               page cache dropped (cold) and warm\n"
		"  verify       4 KiB random reads of a --size layer whose packs are in the page\n"
		"               cache: chunk cache of 4 chunks (every read a miss: read,\n"
		"               decompress, SHA-256) vs one holding the layer (cached verdict);\n"
		"               and SHA-256 / zstd decompression of one chunk alone\n"
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
		"  --size SIZE        volume size (default 1G; with file: the file's size)\n"
		"  --kinds LIST       data kinds: random,text,file (default random,text;\n"
		"                     with --source: file)\n"
		"  --source FILE      kind file commits the first --size bytes of FILE\n"
		"                     (e.g. a tar of a typical image's files)\n"
		"randread:\n"
		"  --size SIZE        layer size (default 1G)\n"
		"  --working-set SIZE cached phase: span of the reads (default 256M)\n"
		"  --cache SIZE       cached phase: cache_bytes (default 512M)\n"
		"  --threads N        reader threads (default 2)\n"
		"  --duration SEC     seconds per phase (default 10)\n"
		"  --ops N            stop a phase after N reads (default: by duration)\n"
		"  --phases LIST      cold,cached (default both)\n"
		"gc:\n"
		"  --size SIZE        data in all layers (default 1G)\n"
		"  --layers N         layers committed (default 16); the odd ones are removed\n"
		"  --kinds KIND       data of the layers: random (default) or text\n"
		"  --pack-bytes LIST  variants: pack size (TESSERA_PACK_BYTES), \"default\" = the\n"
		"                     library's (default: default,64M,48M)\n"
		"fsck:\n"
		"  --size SIZE        data in the store (default 1G)\n"
		"  --phases LIST      cold,warm (default both)\n"
		"verify:\n"
		"  --size SIZE        layer size = working set (default 256M)\n"
		"  --kinds LIST       data kinds: text,random (default both)\n"
		"  --threads LIST     reader threads per run (default 1,2)\n"
		"  --cache SIZE       cache_bytes of the hit phase (default 512M)\n"
		"  --duration SEC     seconds per phase (default 5)\n");
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

/* Checks a list of thread counts; returns the first. */
static unsigned parse_threads(const char *text)
{
	char *list = strdup(text), *save = NULL;
	unsigned first = 0;

	if (!list)
		die("out of memory");
	for (char *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		unsigned n = (unsigned)parse_uint("--threads", t);

		if (!n)
			die("--threads must be > 0");
		if (!first)
			first = n;
	}
	free(list);
	if (!first)
		die("--threads must be > 0");
	return first;
}

int main(int argc, char **argv)
{
	enum { OPT_DIR = 256, OPT_KEEP, OPT_CHUNK, OPT_SEED, OPT_WORKERS, OPT_SIZES,
	       OPT_ROUNDS, OPT_SIZE, OPT_KINDS, OPT_WS, OPT_CACHE, OPT_THREADS,
	       OPT_DURATION, OPT_OPS, OPT_PHASES, OPT_LAYERS, OPT_PACK_BYTES, OPT_SOURCE };
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
		{ "layers", required_argument, NULL, OPT_LAYERS },
		{ "pack-bytes", required_argument, NULL, OPT_PACK_BYTES },
		{ "source", required_argument, NULL, OPT_SOURCE },
		{ NULL, 0, NULL, 0 },
	};
	static const struct {
		const char *name;
		void (*fn)(void);
	} benches[] = {
		{ "first-write", bench_first_write },
		{ "commit", bench_commit },
		{ "randread", bench_randread },
		{ "gc", bench_gc },
		{ "fsck", bench_fsck },
		{ "verify", bench_verify },
	};
	void (*run)(void) = NULL;
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
			O.size_set = true;
			break;
		case OPT_KINDS:
			O.kinds = optarg;
			O.kinds_set = true;
			break;
		case OPT_WS:
			O.working_set = parse_size_arg("--working-set", optarg);
			break;
		case OPT_CACHE:
			O.cache_bytes = parse_size_arg("--cache", optarg);
			break;
		case OPT_THREADS:
			/* A list for verify; one number for randread. */
			O.thread_list = optarg;
			O.threads = parse_threads(optarg);
			break;
		case OPT_DURATION:
			O.duration = strtod(optarg, NULL);
			if (O.duration <= 0)
				die("--duration must be > 0");
			O.duration_set = true;
			break;
		case OPT_OPS:
			O.ops = parse_uint("--ops", optarg);
			break;
		case OPT_PHASES:
			O.phases = optarg;
			O.phases_set = true;
			break;
		case OPT_LAYERS:
			O.layers = (unsigned)parse_uint("--layers", optarg);
			if (O.layers < 2)
				die("--layers must be at least 2");
			break;
		case OPT_PACK_BYTES:
			O.pack_bytes = optarg;
			break;
		case OPT_SOURCE:
			O.source = optarg;
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
	if (O.source && !O.kinds_set)
		O.kinds = "file";
	if (O.source && strcmp(bench, "commit"))
		die("--source: only the commit benchmark takes it");

	if (!strcmp(bench, "gen")) {
		bench_gen();
		return fflush(stdout) ? 1 : 0;
	}
	for (size_t i = 0; i < sizeof(benches) / sizeof(benches[0]); i++)
		if (!strcmp(bench, benches[i].name))
			run = benches[i].fn;
	if (!run)
		die("unknown benchmark '%s' (first-write, commit, randread, gc, fsck, verify, gen;"
		    " --help)", bench);
	if (!strcmp(bench, "randread") && O.thread_list && strchr(O.thread_list, ','))
		die("randread: --threads takes one number");
	scratch_make();
	run();
	scratch_done();
	return 0;
}
