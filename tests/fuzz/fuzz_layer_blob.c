/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the layer blob reader (imagefmt/src/layer_blob.c).
 *
 * Each input is one byte of mode, then a blob.  Mode bit 0 asks the harness
 * to repair what a mutation cannot get right by chance before the blob is
 * read: the layer id in the header (recomputed from parent, size and the
 * entries, blockstore/FORMAT.md), the header CRC, each object header's CRC
 * and the trailer's length and SHA-256.  So the reader is reached past its
 * checksums with wrong counts, indexes, codecs, lengths and payloads.
 *
 * The blob goes through a memfd into tsr_layer_blob_read against one small
 * store made once per process (tmpfs when /dev/shm exists) holding two
 * committed layers, "base" and "child" (child's parent is base).  After each
 * input the store must be as it was: a failed import changes nothing (same
 * object, layer and volume counts, same pack bytes); a successful one is
 * undone (one hold dropped, then gc) and must leave the same counts.  The
 * two layers keep their records, and fsck finds the store clean every
 * FSCK_EVERY inputs and at exit.  Any violation aborts (a libFuzzer crash).
 *
 * TSR_FUZZ_WRITE_SEEDS=DIR: write the two layers' blobs (mode byte 1) as
 * seeds into DIR and exit.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <zlib.h>

#include <tessera/layer_blob.h>
#include <tessera/store.h>

#define CHUNK 4096u
#define LAYER_SIZE (16u * CHUNK)
#define FSCK_EVERY 16
#define MODE_FIX 0x01

static char dir[256];
static struct tsr_store *store;
static struct tsr_layer_id base_id, child_id;
static struct tsr_layer_info base_info, child_info;
static struct tsr_store_stats baseline;
static unsigned long inputs, imported, fscks;

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "fuzz_layer_blob: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	abort();
}

static void check(int r, const char *what)
{
	if (r)
		die("%s: %s", what, tsr_strerror(r));
}

/* ---- the store -------------------------------------------------------- */

/* Chunk i of a layer: a compressible pattern seeded by tag. */
static void fill(uint8_t *buf, unsigned tag)
{
	for (unsigned i = 0; i < CHUNK; i++)
		buf[i] = (uint8_t)(tag * 31 + (i / 64) * (tag | 1));
}

static void write_chunks(struct tsr_volume *vol, const unsigned *idx, const unsigned *tag,
			 size_t n)
{
	uint8_t buf[CHUNK];

	for (size_t i = 0; i < n; i++) {
		fill(buf, tag[i]);
		check(tsr_volume_write(vol, buf, CHUNK, (uint64_t)idx[i] * CHUNK), "write");
	}
}

static void make_layers(void)
{
	static const unsigned bidx[] = { 0, 1, 2, 3, 5, 9 }, btag[] = { 1, 2, 3, 4, 5, 1 };
	/* child: new data, a chunk the parent already has (no object shipped),
	 * one discarded (a hole over the parent's data). */
	static const unsigned cidx[] = { 1, 7, 12 }, ctag[] = { 6, 7, 3 };
	struct tsr_volume *vol;

	check(tsr_volume_create(store, "b", LAYER_SIZE, NULL), "volume create");
	check(tsr_volume_open(store, "b", &vol), "volume open");
	write_chunks(vol, bidx, btag, 6);
	check(tsr_volume_commit(vol, "base", NULL, &base_id), "commit base");
	check(tsr_volume_create(store, "c", 0, &base_id), "volume create");
	check(tsr_volume_open(store, "c", &vol), "volume open");
	write_chunks(vol, cidx, ctag, 3);
	check(tsr_volume_discard(vol, 2 * CHUNK, CHUNK), "discard");
	check(tsr_volume_commit(vol, "child", NULL, &child_id), "commit child");
}

static int rm_one(const char *path, const struct stat *st, int type, struct FTW *f)
{
	(void)st, (void)type, (void)f;
	return remove(path);
}

static void cleanup(void)
{
	if (store) {
		if (inputs) {
			struct tsr_fsck_stats fs;

			if (tsr_store_fsck(store, 0, NULL, NULL, NULL, &fs))
				fprintf(stderr, "fuzz_layer_blob: fsck at exit found damage\n");
			fprintf(stderr, "fuzz_layer_blob: %lu inputs, %lu imported, %lu fsck runs\n",
				inputs, imported, fscks + 1);
		}
		tsr_store_close(store);
	}
	if (*dir)
		nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void write_seeds(const char *out)
{
	const struct tsr_layer_id *ids[] = { &base_id, &child_id };

	for (int i = 0; i < 2; i++) {
		char path[4096];
		int fd;

		snprintf(path, sizeof(path), "%s/%s.blob", out, i ? "child" : "base");
		fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0 || write(fd, "\x01", 1) != 1)
			die("%s: %s", path, strerror(errno));
		check(tsr_layer_blob_write(store, ids[i], fd, NULL, NULL), "blob write");
		close(fd);
	}
}

/* Where temp dirs go: $TSR_FUZZ_TMP (fuzz.sh's scratch dir, removed even
 * after a crash), else a tmpfs when there is one. */
static const char *scratch(void)
{
	const char *t = getenv("TSR_FUZZ_TMP");

	if (t && *t)
		return t;
	return access("/dev/shm", W_OK) ? "/tmp" : "/dev/shm";
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct tsr_init_options io = { .chunk_size = CHUNK, .codec = TSR_CODEC_ZSTD };
	struct tsr_open_options oo = { .cache_bytes = 1u << 20, .map_bytes = 64u << 20,
				       .workers = 1 };
	const char *seeds = getenv("TSR_FUZZ_WRITE_SEEDS");

	(void)argc, (void)argv;
	snprintf(dir, sizeof(dir), "%s/tsr-fuzz-store.XXXXXX", scratch());
	if (!mkdtemp(dir))
		die("mkdtemp: %s", strerror(errno));
	atexit(cleanup);
	check(tsr_store_init(dir, &io), "store init");
	check(tsr_store_open(dir, &oo, &store), "store open");
	make_layers();
	if (seeds) {
		write_seeds(seeds);
		exit(0);
	}
	check(tsr_layer_stat(store, &base_id, &base_info), "stat base");
	check(tsr_layer_stat(store, &child_id, &child_info), "stat child");
	check(tsr_store_stat(store, &baseline), "store stat");
	return 0;
}

/* ---- repairing checksums ------------------------------------------------ */

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t rd64(const uint8_t *p)
{
	return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

static void wr32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++, v >>= 8)
		p[i] = (uint8_t)v;
}

static void wr64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++, v >>= 8)
		p[i] = (uint8_t)v;
}

static void be(uint8_t *p, uint64_t v, int n)
{
	for (int i = n - 1; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static void sha256(const uint8_t *p, size_t n, uint8_t out[32])
{
	unsigned len = 0;

	if (!EVP_Digest(p, n, out, &len, EVP_sha256(), NULL))
		die("EVP_Digest failed");
}

/* Layer id of FORMAT.md's canonical serialization over the entries the
 * blob holds (when the header's count fits in it). */
static void fix_layer_id(uint8_t *b, size_t len)
{
	uint64_t n = rd64(b + 88);
	EVP_MD_CTX *ctx;
	uint8_t h[64];
	unsigned out = 0;

	if (n > (len - 128) / 40)
		return;
	memcpy(h, "TSRLAYR1", 8);
	be(h + 8, rd32(b + 12), 4);
	be(h + 12, 0, 4);
	be(h + 16, rd64(b + 16), 8);
	memcpy(h + 24, b + 24, 32);
	ctx = EVP_MD_CTX_new();
	if (!ctx || !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) ||
	    !EVP_DigestUpdate(ctx, h, 56))
		die("EVP failed");
	be(h, n, 8);
	EVP_DigestUpdate(ctx, h, 8);
	for (uint64_t i = 0; i < n; i++) {
		be(h, rd64(b + 128 + 40 * i), 8);
		EVP_DigestUpdate(ctx, h, 8);
		EVP_DigestUpdate(ctx, b + 128 + 40 * i + 8, 32);
	}
	EVP_DigestFinal_ex(ctx, b + 56, &out);
	EVP_MD_CTX_free(ctx);
}

static void fix_checksums(uint8_t *b, size_t len)
{
	uint64_t n, off;

	if (len < 128)
		return;
	fix_layer_id(b, len);
	wr32(b + 124, (uint32_t)crc32(0, b, 124));
	n = rd64(b + 88);
	if (n > (len - 128) / 40)
		return;
	off = 128 + 40 * n;
	for (uint64_t i = rd64(b + 96); i && len - off >= 48; i--) {
		wr32(b + off + 44, (uint32_t)crc32(0, b + off, 44));
		if (rd32(b + off + 36) > len - off - 48)
			return;
		off += 48 + rd32(b + off + 36);
	}
	if (len - off >= 64) {
		wr64(b + off + 8, off);
		sha256(b, off, b + off + 16);
	}
}

/* ---- one input ---------------------------------------------------------- */

/* Field by field: the struct has padding. */
static bool same_layer(const struct tsr_layer_info *a, const struct tsr_layer_info *b)
{
	return !memcmp(&a->id, &b->id, sizeof(a->id)) && a->has_parent == b->has_parent &&
	       !memcmp(&a->parent, &b->parent, sizeof(a->parent)) && a->size == b->size &&
	       a->created == b->created && a->holds == b->holds && a->depth == b->depth &&
	       a->entries == b->entries && a->data_chunks == b->data_chunks &&
	       a->new_objects == b->new_objects && a->new_stored_bytes == b->new_stored_bytes;
}

static void expect_baseline(const char *after)
{
	struct tsr_store_stats st;
	struct tsr_layer_info li;

	check(tsr_store_stat(store, &st), "store stat");
	if (st.objects != baseline.objects || st.layers != baseline.layers ||
	    st.volumes != baseline.volumes || st.referenced != baseline.referenced ||
	    st.stored_bytes != baseline.stored_bytes)
		die("%s: store changed: objects %llu -> %llu, layers %llu -> %llu, "
		    "referenced %llu -> %llu, stored bytes %llu -> %llu", after,
		    (unsigned long long)baseline.objects, (unsigned long long)st.objects,
		    (unsigned long long)baseline.layers, (unsigned long long)st.layers,
		    (unsigned long long)baseline.referenced, (unsigned long long)st.referenced,
		    (unsigned long long)baseline.stored_bytes,
		    (unsigned long long)st.stored_bytes);
	check(tsr_layer_stat(store, &base_id, &li), "stat base");
	if (!same_layer(&li, &base_info))
		die("%s: layer base changed (holds %u -> %u, entries %llu -> %llu)", after,
		    base_info.holds, li.holds, (unsigned long long)base_info.entries,
		    (unsigned long long)li.entries);
	check(tsr_layer_stat(store, &child_id, &li), "stat child");
	if (!same_layer(&li, &child_info))
		die("%s: layer child changed (holds %u -> %u, entries %llu -> %llu)", after,
		    child_info.holds, li.holds, (unsigned long long)child_info.entries,
		    (unsigned long long)li.entries);
}

static void report(void *arg, const char *line)
{
	(void)arg;
	fprintf(stderr, "fsck: %s\n", line);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tsr_layer_blob_info info;
	struct tsr_layer_id id;
	uint8_t *b;
	int fd, r;

	if (size < 1)
		return 0;
	b = malloc(size);
	if (!b)
		return 0;
	memcpy(b, data + 1, size - 1);
	if (data[0] & MODE_FIX)
		fix_checksums(b, size - 1);
	fd = memfd_create("blob", MFD_CLOEXEC);
	if (fd < 0 || write(fd, b, size - 1) != (ssize_t)(size - 1) || lseek(fd, 0, SEEK_SET))
		die("memfd: %s", strerror(errno));
	free(b);
	r = tsr_layer_blob_read(store, fd, NULL, 0, NULL, &info, &id);
	close(fd);
	inputs++;
	if (r > 0)
		die("tsr_layer_blob_read returned %d", r);
	if (!r) {
		struct tsr_gc_stats gs;

		/* Undo the import: its hold, then whatever objects it added. */
		imported++;
		check(tsr_layer_remove(store, &id, NULL), "layer remove");
		check(tsr_store_gc(store, NULL, &gs), "gc");
		expect_baseline("after a successful import");
	} else {
		expect_baseline("after a failed import");
	}
	if (inputs % FSCK_EVERY == 0) {
		struct tsr_fsck_stats fs;

		fscks++;
		r = tsr_store_fsck(store, 0, report, NULL, NULL, &fs);
		if (r)
			die("fsck after %lu inputs: %d (%s)", inputs, r,
			    r < 0 ? tsr_strerror(r) : "damage");
	}
	return 0;
}
