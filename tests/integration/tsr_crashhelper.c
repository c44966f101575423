/* SPDX-License-Identifier: MIT */
/*
 * tsr_crashhelper: does for the integration tests what the tessera command
 * cannot: write + flush and then wait to be killed, hold a store open, fill
 * a small LMDB map, print store statistics as key=value lines.  Uses only
 * <tessera/store.h>.
 *
 *   tsr_crashhelper init STORE [CHUNK_SIZE [none|zlib|zstd]]
 *   tsr_crashhelper import STORE VOLUME FILE      volume sized as FILE
 *   tsr_crashhelper create STORE VOLUME SIZE [PARENT_LAYER]
 *   tsr_crashhelper commit STORE VOLUME [NAME]    prints the layer id
 *   tsr_crashhelper export STORE VOLUME|layer:SPEC FILE
 *   tsr_crashhelper read STORE VOLUME OFF LEN     bytes to stdout
 *   tsr_crashhelper write-hold STORE VOLUME OFF FILE
 *          writes FILE at OFF, flushes, prints "flushed usec=N" and sleeps
 *          until killed
 *   tsr_crashhelper hold STORE                    prints "holding pid=N", sleeps
 *   tsr_crashhelper stat STORE                    key=value lines
 *   tsr_crashhelper layer-rm STORE LAYER
 *   tsr_crashhelper mapfull STORE_DIR             fills a small map (-EXFULL),
 *          then checks that every committed layer reads back after reopening
 *          with the default map.  Exit 0 pass, 1 fail, 77 skipped.
 *
 * $TSR_HELPER_MAP_BYTES sets tsr_open_options.map_bytes.  Exit status: 0,
 * or 1 with one line on stderr naming the step and the error.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <tessera/store.h>

#define IO_BLOCK (1u << 20)

static const char *prog = "tsr_crashhelper";

static int fail(const char *what, int err)
{
	fprintf(stderr, "%s: %s: %s\n", prog, what, tsr_strerror(err));
	return 1;
}

static int usage(void)
{
	fprintf(stderr, "%s: bad usage (see the comment at the top of tsr_crashhelper.c)\n",
		prog);
	return 2;
}

static int parse_u64(const char *s, uint64_t *ret)
{
	return tsr_parse_size(s, ret);
}

static int open_store(const char *dir, struct tsr_store **ret)
{
	struct tsr_open_options o = { 0 };
	const char *mb = getenv("TSR_HELPER_MAP_BYTES");
	if (mb && *mb && parse_u64(mb, &o.map_bytes) != 0)
		return -EINVAL;
	return tsr_store_open(dir, &o, ret);
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int cmd_init(int argc, char **argv)
{
	struct tsr_init_options io = { 0 };
	uint64_t cs = 0;
	if (argc < 1 || argc > 3)
		return usage();
	if (argc >= 2 && parse_u64(argv[1], &cs) != 0)
		return usage();
	io.chunk_size = (uint32_t)cs;
	io.codec = TSR_CODEC_ZSTD;
	if (argc == 3) {
		if (!strcmp(argv[2], "none"))
			io.codec = TSR_CODEC_NONE;
		else if (!strcmp(argv[2], "zlib"))
			io.codec = TSR_CODEC_ZLIB;
		else if (strcmp(argv[2], "zstd"))
			return usage();
	}
	int r = tsr_store_init(argv[0], &io);
	return r ? fail("init", r) : 0;
}

static int write_file(struct tsr_volume *v, int fd, uint64_t off, uint64_t *ret_len)
{
	char *buf = malloc(IO_BLOCK);
	uint64_t done = 0;
	int r = 0;
	if (!buf)
		return -ENOMEM;
	for (;;) {
		ssize_t n = read(fd, buf, IO_BLOCK);
		if (n < 0) {
			r = -errno;
			break;
		}
		if (n == 0)
			break;
		r = tsr_volume_write(v, buf, (size_t)n, off + done);
		if (r)
			break;
		done += (uint64_t)n;
	}
	free(buf);
	if (!r && ret_len)
		*ret_len = done;
	return r;
}

static int cmd_import(int argc, char **argv)
{
	struct tsr_store *st;
	struct tsr_volume *v;
	struct stat sb;
	int r, fd;
	if (argc != 3)
		return usage();
	fd = open(argv[2], O_RDONLY);
	if (fd < 0 || fstat(fd, &sb) < 0)
		return fail(argv[2], -errno);
	if ((r = open_store(argv[0], &st)))
		return fail("open store", r);
	if ((r = tsr_volume_create(st, argv[1], (uint64_t)sb.st_size, NULL)))
		return fail("volume create", r);
	if ((r = tsr_volume_open(st, argv[1], &v)))
		return fail("volume open", r);
	double t0 = now();
	if ((r = write_file(v, fd, 0, NULL)))
		return fail("write", r);
	if ((r = tsr_volume_flush(v)))
		return fail("flush", r);
	fprintf(stderr, "%s: imported %" PRIu64 " MiB in %.2f s\n", prog,
		(uint64_t)sb.st_size >> 20, now() - t0);
	tsr_volume_close(v);
	tsr_store_close(st);
	close(fd);
	return 0;
}

static int cmd_create(int argc, char **argv)
{
	struct tsr_store *st;
	struct tsr_layer_id parent;
	uint64_t size;
	int r;
	if (argc != 3 && argc != 4)
		return usage();
	if (parse_u64(argv[2], &size))
		return usage();
	if ((r = open_store(argv[0], &st)))
		return fail("open store", r);
	if (argc == 4 && (r = tsr_layer_resolve(st, argv[3], &parent)))
		return fail("resolve parent", r);
	if ((r = tsr_volume_create(st, argv[1], size, argc == 4 ? &parent : NULL)))
		return fail("volume create", r);
	tsr_store_close(st);
	return 0;
}

static int cmd_commit(int argc, char **argv)
{
	struct tsr_store *st;
	struct tsr_volume *v;
	struct tsr_layer_id id;
	char hex[TSR_ID_HEX_LEN + 1];
	int r;
	if (argc != 2 && argc != 3)
		return usage();
	if ((r = open_store(argv[0], &st)))
		return fail("open store", r);
	if ((r = tsr_volume_open(st, argv[1], &v)))
		return fail("volume open", r);
	double t0 = now();
	if ((r = tsr_volume_commit(v, argc == 3 ? argv[2] : NULL, NULL, &id)))
		return fail("commit", r);
	fprintf(stderr, "%s: committed %s in %.2f s\n", prog, argv[1], now() - t0);
	tsr_layer_id_to_hex(&id, hex);
	printf("%s\n", hex);
	tsr_store_close(st);
	return 0;
}

static int cmd_export(int argc, char **argv)
{
	struct tsr_store *st;
	struct tsr_volume *v = NULL;
	struct tsr_layer *l = NULL;
	uint64_t size;
	int r, fd;
	if (argc != 3)
		return usage();
	if ((r = open_store(argv[0], &st)))
		return fail("open store", r);
	if (!strncmp(argv[1], "layer:", 6)) {
		struct tsr_layer_id id;
		if ((r = tsr_layer_resolve(st, argv[1] + 6, &id)))
			return fail("resolve layer", r);
		if ((r = tsr_layer_open(st, &id, &l)))
			return fail("layer open", r);
		size = tsr_layer_size(l);
	} else {
		if ((r = tsr_volume_open(st, argv[1], &v)))
			return fail("volume open", r);
		size = tsr_volume_size(v);
	}
	fd = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		return fail(argv[2], -errno);
	char *buf = malloc(IO_BLOCK);
	if (!buf)
		return fail("malloc", -ENOMEM);
	for (uint64_t off = 0; off < size;) {
		size_t n = size - off < IO_BLOCK ? size - off : IO_BLOCK;
		r = l ? tsr_layer_read(l, buf, n, off) : tsr_volume_read(v, buf, n, off);
		if (r)
			return fail("read", r);
		if (write(fd, buf, n) != (ssize_t)n)
			return fail(argv[2], -errno);
		off += n;
	}
	free(buf);
	if (close(fd) < 0)
		return fail(argv[2], -errno);
	if (l)
		tsr_layer_close(l);
	if (v)
		tsr_volume_close(v);
	tsr_store_close(st);
	return 0;
}

static int cmd_read(int argc, char **argv)
{
	struct tsr_store *st;
	struct tsr_volume *v;
	uint64_t off, len;
	int r;
	if (argc != 4 || parse_u64(argv[2], &off) || parse_u64(argv[3], &len) ||
	    len > (256u << 20))
		return usage();
	if ((r = open_store(argv[0], &st)))
		return fail("open store", r);
	if ((r = tsr_volume_open(st, argv[1], &v)))
		return fail("volume open", r);
	char *buf = malloc(len ? len : 1);
	if (!buf)
		return fail("malloc", -ENOMEM);
	if ((r = tsr_volume_read(v, buf, len, off)))
		return fail("read", r);
	if (fwrite(buf, 1, len, stdout) != len || fflush(stdout))
		return fail("stdout", -errno);
	free(buf);
	tsr_volume_close(v);
	tsr_store_close(st);
	return 0;
}

static int cmd_write_hold(int argc, char **argv)
{
	struct tsr_store *st;
	struct tsr_volume *v;
	uint64_t off, len;
	int r, fd;
	if (argc != 4 || parse_u64(argv[2], &off))
		return usage();
	fd = open(argv[3], O_RDONLY);
	if (fd < 0)
		return fail(argv[3], -errno);
	if ((r = open_store(argv[0], &st)))
		return fail("open store", r);
	if ((r = tsr_volume_open(st, argv[1], &v)))
		return fail("volume open", r);
	double t0 = now();
	if ((r = write_file(v, fd, off, &len)))
		return fail("write", r);
	double t1 = now();
	if ((r = tsr_volume_flush(v)))
		return fail("flush", r);
	double t2 = now();
	printf("flushed bytes=%" PRIu64 " write_usec=%.0f flush_usec=%.0f\n", len,
	       (t1 - t0) * 1e6, (t2 - t1) * 1e6);
	fflush(stdout);
	for (;;)
		pause();
}

static int cmd_hold(int argc, char **argv)
{
	struct tsr_store *st;
	int r;
	if (argc != 1)
		return usage();
	if ((r = open_store(argv[0], &st)))
		return fail("open store", r);
	printf("holding pid=%d\n", (int)getpid());
	fflush(stdout);
	for (;;)
		pause();
}

static int cmd_stat(int argc, char **argv)
{
	struct tsr_store *st;
	struct tsr_store_stats s;
	int r;
	if (argc != 1)
		return usage();
	if ((r = open_store(argv[0], &st)))
		return fail("open store", r);
	if ((r = tsr_store_stat(st, &s)))
		return fail("stat", r);
	printf("chunk_size=%u\ncodec=%d\nobjects=%" PRIu64 "\nobject_bytes=%" PRIu64
	       "\nstored_bytes=%" PRIu64 "\nreferenced=%" PRIu64 "\nlayers=%" PRIu64
	       "\nvolumes=%" PRIu64 "\npack_bytes=%" PRIu64 "\nvolume_bytes=%" PRIu64
	       "\nmeta_bytes=%" PRIu64 "\n",
	       s.chunk_size, (int)s.codec, s.objects, s.object_bytes, s.stored_bytes,
	       s.referenced, s.layers, s.volumes, s.pack_bytes, s.volume_bytes,
	       s.meta_bytes);
	tsr_store_close(st);
	return 0;
}

static int cmd_layer_rm(int argc, char **argv)
{
	struct tsr_store *st;
	struct tsr_layer_id id;
	int r;
	if (argc != 2)
		return usage();
	if ((r = open_store(argv[0], &st)))
		return fail("open store", r);
	if ((r = tsr_layer_resolve(st, argv[1], &id)))
		return fail("resolve layer", r);
	if ((r = tsr_layer_remove(st, &id, NULL)))
		return fail("layer remove", r);
	tsr_store_close(st);
	return 0;
}

/* ---- mapfull ------------------------------------------------------------ */

#define MF_CHUNKS 64
#define MF_CS 4096u
#define MF_MAX_LAYERS 4000

static void mf_fill(uint8_t *buf, unsigned layer, unsigned chunk)
{
	uint64_t x = (uint64_t)layer * 1000003u + chunk + 1;
	for (unsigned i = 0; i < MF_CS; i += 8) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		memcpy(buf + i, &x, 8);
	}
}

static int mf_check_layer(struct tsr_store *st, const struct tsr_layer_id *id,
			  unsigned k)
{
	struct tsr_layer *l;
	uint8_t want[MF_CS], got[MF_CS];
	int r = tsr_layer_open(st, id, &l);
	if (r)
		return r;
	for (unsigned c = 0; c < MF_CHUNKS && !r; c++) {
		mf_fill(want, k, c);
		r = tsr_layer_read(l, got, MF_CS, (uint64_t)c * MF_CS);
		if (!r && memcmp(want, got, MF_CS))
			r = -EBADMSG;
	}
	tsr_layer_close(l);
	return r;
}

static int cmd_mapfull(int argc, char **argv)
{
	struct tsr_init_options io = { .chunk_size = MF_CS, .codec = TSR_CODEC_NONE };
	struct tsr_open_options oo = { .map_bytes = 1u << 20 };
	struct tsr_store *st;
	struct tsr_layer_id *ids = calloc(MF_MAX_LAYERS, sizeof(*ids));
	uint8_t buf[MF_CS];
	const char *failed_at = NULL;
	unsigned k;
	int r;
	if (argc != 1 || !ids)
		return usage();
	const char *mb = getenv("TSR_HELPER_MAP_BYTES");
	if (mb && *mb && parse_u64(mb, &oo.map_bytes))
		return usage();
	if ((r = tsr_store_init(argv[0], &io)))
		return fail("init", r);
	if ((r = tsr_store_open(argv[0], &oo, &st))) {
		if (r == -EXFULL || r == -EINVAL) {
			printf("skipped: open with map_bytes=%" PRIu64 " returned %s\n",
			       oo.map_bytes, tsr_strerror(r));
			return 77;
		}
		return fail("open with a small map", r);
	}
	for (k = 0; k < MF_MAX_LAYERS; k++) {
		char name[32];
		struct tsr_volume *v;
		snprintf(name, sizeof(name), "mf%u", k);
		failed_at = "volume create";
		if ((r = tsr_volume_create(st, name, MF_CHUNKS * MF_CS, NULL)))
			break;
		failed_at = "volume open";
		if ((r = tsr_volume_open(st, name, &v)))
			break;
		failed_at = "write";
		for (unsigned c = 0; c < MF_CHUNKS && !r; c++) {
			mf_fill(buf, k, c);
			r = tsr_volume_write(v, buf, MF_CS, (uint64_t)c * MF_CS);
		}
		if (!r) {
			failed_at = "flush";
			r = tsr_volume_flush(v);
		}
		if (r) {
			tsr_volume_close(v);
			break;
		}
		failed_at = "commit";
		if ((r = tsr_volume_commit(v, NULL, NULL, &ids[k])))
			break;
	}
	if (k == MF_MAX_LAYERS) {
		printf("skipped: %u layers of %u chunks fit in map_bytes=%" PRIu64
		       " (map size not honored?)\n", k, MF_CHUNKS, oo.map_bytes);
		tsr_store_close(st);
		return 77;
	}
	if (r != -EXFULL) {
		printf("FAIL: mapfull: after %u layers, %s returned %d (%s), expected "
		       "-EXFULL (%s)\n", k, failed_at, r, tsr_strerror(r),
		       tsr_strerror(-EXFULL));
		tsr_store_close(st);
		return 1;
	}
	printf("map full after %u layers at %s: %s\n", k, failed_at, tsr_strerror(r));
	/* the store still works read-only with the small map */
	for (unsigned i = 0; i < k; i += 7)
		if ((r = mf_check_layer(st, &ids[i], i))) {
			printf("FAIL: mapfull: layer %u unreadable with a full map: %s\n", i,
			       tsr_strerror(r));
			return 1;
		}
	tsr_store_close(st);
	/* with the default map everything committed is there, and it grows */
	if ((r = tsr_store_open(argv[0], NULL, &st)))
		return fail("reopen with the default map", r);
	for (unsigned i = 0; i < k; i++)
		if ((r = mf_check_layer(st, &ids[i], i))) {
			printf("FAIL: mapfull: layer %u of %u lost after reopen: %s\n", i, k,
			       tsr_strerror(r));
			return 1;
		}
	{
		char name[32];
		struct tsr_volume *v;
		struct tsr_volume_info info;
		struct tsr_layer_id id;
		snprintf(name, sizeof(name), "mf%u", k);
		/* the volume that failed: absent, or usable */
		if (tsr_volume_stat(st, name, &info) == 0) {
			if ((r = tsr_volume_open(st, name, &v)))
				return fail("open of the volume that hit the full map", r);
			if ((r = tsr_volume_read(v, buf, MF_CS, 0)))
				return fail("read of the volume that hit the full map", r);
			tsr_volume_close(v);
			if ((r = tsr_volume_remove(st, name)))
				return fail("remove of the volume that hit the full map", r);
		}
		if ((r = tsr_volume_create(st, name, MF_CHUNKS * MF_CS, NULL)) ||
		    (r = tsr_volume_open(st, name, &v)))
			return fail("volume create after reopen", r);
		for (unsigned c = 0; c < MF_CHUNKS && !r; c++) {
			mf_fill(buf, k, c);
			r = tsr_volume_write(v, buf, MF_CS, (uint64_t)c * MF_CS);
		}
		if (r || (r = tsr_volume_commit(v, NULL, NULL, &id)))
			return fail("commit after reopen with the default map", r);
		if ((r = mf_check_layer(st, &id, k)))
			return fail("read of the new layer", r);
	}
	tsr_store_close(st);
	free(ids);
	printf("mapfull: %u layers intact after -EXFULL; commit works with the default map\n",
	       k);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*fn)(int argc, char **argv);
	} cmds[] = {
		{ "init", cmd_init },       { "import", cmd_import },
		{ "create", cmd_create },   { "commit", cmd_commit },
		{ "export", cmd_export },   { "read", cmd_read },
		{ "write-hold", cmd_write_hold }, { "hold", cmd_hold },
		{ "stat", cmd_stat },       { "layer-rm", cmd_layer_rm },
		{ "mapfull", cmd_mapfull },
	};
	if (argc < 2)
		return usage();
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (!strcmp(argv[1], cmds[i].name))
			return cmds[i].fn(argc - 2, argv + 2);
	return usage();
}
