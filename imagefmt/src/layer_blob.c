/* SPDX-License-Identifier: MIT */
/*
 * Layer blobs: writer and reader (format in imagefmt/FORMAT.md).  Both run
 * in one pass over a file descriptor; every byte goes through a running
 * SHA-256 that the trailer carries.  The reader treats the blob as hostile:
 * every length is checked before it is used, and nothing reaches the store
 * except through tsr_layer_import_*, which verifies objects and the layer id.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <zlib.h>

#include <tessera/layer_blob.h>

#define BLOB_MAGIC "TSRLBLB1"
#define BLOB_END_MAGIC "TSRLEND1"
#define BLOB_VERSION 1u
#define HEADER_LEN 128
#define ENTRY_LEN 40
#define OBJECT_HEADER_LEN 48
#define TRAILER_LEN 64
#define MAX_CHUNKS (1ull << 31)

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++, v >>= 8)
		p[i] = (uint8_t)v;
}

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++, v >>= 8)
		p[i] = (uint8_t)v;
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p)
{
	return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

static bool is_zero(const uint8_t *p, size_t n)
{
	while (n--)
		if (*p++)
			return false;
	return true;
}

/* A stream: the descriptor, the byte count, and two running SHA-256s: of
 * the body (everything before the trailer, which the trailer carries) and
 * of the whole blob (its address). */
struct stream {
	int fd;
	EVP_MD_CTX *sha;
	EVP_MD_CTX *whole;
	uint64_t bytes;
};

static void stream_free(struct stream *s)
{
	EVP_MD_CTX_free(s->sha);
	EVP_MD_CTX_free(s->whole);
	s->sha = s->whole = NULL;
}

static int stream_init(struct stream *s, int fd)
{
	s->fd = fd;
	s->bytes = 0;
	s->sha = EVP_MD_CTX_new();
	s->whole = EVP_MD_CTX_new();
	if (!s->sha || !s->whole || !EVP_DigestInit_ex(s->sha, EVP_sha256(), NULL) ||
	    !EVP_DigestInit_ex(s->whole, EVP_sha256(), NULL)) {
		stream_free(s);
		return -ENOMEM;
	}
	return 0;
}

/* body: the bytes count toward the trailer's digest (all but the trailer). */
static int stream_hash(struct stream *s, const void *buf, size_t len, bool body)
{
	if (body && !EVP_DigestUpdate(s->sha, buf, len))
		return -EIO;
	if (!EVP_DigestUpdate(s->whole, buf, len))
		return -EIO;
	if (body)
		s->bytes += len;
	return 0;
}

static int stream_write(struct stream *s, const void *buf, size_t len, bool body)
{
	const uint8_t *p = buf;

	if (stream_hash(s, buf, len, body))
		return -EIO;
	while (len) {
		ssize_t n = write(s->fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Reads exactly len bytes; a short blob is malformed. */
static int stream_read(struct stream *s, void *buf, size_t len, bool body)
{
	uint8_t *p = buf;
	size_t want = len;

	while (want) {
		ssize_t n = read(s->fd, p, want);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EBADMSG;
		p += n;
		want -= (size_t)n;
	}
	return stream_hash(s, buf, len, body);
}

static int digest_final(EVP_MD_CTX *ctx, uint8_t out[TSR_DIGEST_LEN])
{
	unsigned int n = 0;

	return EVP_DigestFinal_ex(ctx, out, &n) && n == TSR_DIGEST_LEN ? 0 : -EIO;
}

/* ---- digest sets: a sorted array, binary searched ---- */

struct digest_list {
	uint8_t (*v)[TSR_DIGEST_LEN];
	size_t n, cap;
};

static int list_add(struct digest_list *l, const uint8_t *d)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 1024;
		void *p = realloc(l->v, cap * TSR_DIGEST_LEN);

		if (!p)
			return -ENOMEM;
		l->v = p;
		l->cap = cap;
	}
	memcpy(l->v[l->n++], d, TSR_DIGEST_LEN);
	return 0;
}

static int cmp_digest(const void *a, const void *b)
{
	return memcmp(a, b, TSR_DIGEST_LEN);
}

static void list_sort(struct digest_list *l)
{
	if (l->n)
		qsort(l->v, l->n, TSR_DIGEST_LEN, cmp_digest);
}

static bool list_has(const struct digest_list *l, const uint8_t *d)
{
	return l->n && bsearch(d, l->v, l->n, TSR_DIGEST_LEN, cmp_digest);
}

/* A set of digests with insertion; open addressing, grows at half full. */
struct digest_set {
	uint8_t (*v)[TSR_DIGEST_LEN];
	size_t n, cap;
};

/* 1 when added, 0 when present, or -ENOMEM. */
static int set_add(struct digest_set *s, const uint8_t *d)
{
	size_t i;

	if (2 * (s->n + 1) > s->cap) {
		struct digest_set g = { .cap = s->cap ? 2 * s->cap : 1024 };

		g.v = calloc(g.cap, TSR_DIGEST_LEN);
		if (!g.v)
			return -ENOMEM;
		for (size_t j = 0; j < s->cap; j++)
			if (!is_zero(s->v[j], TSR_DIGEST_LEN))
				set_add(&g, s->v[j]);
		free(s->v);
		*s = g;
	}
	memcpy(&i, d, sizeof(i));
	for (i &= s->cap - 1; !is_zero(s->v[i], TSR_DIGEST_LEN); i = (i + 1) & (s->cap - 1))
		if (!memcmp(s->v[i], d, TSR_DIGEST_LEN))
			return 0;
	memcpy(s->v[i], d, TSR_DIGEST_LEN);
	s->n++;
	return 1;
}

/* ---- writer ---- */

struct entry {
	uint64_t index;
	uint8_t digest[TSR_DIGEST_LEN];
	bool hole;
};

struct entries {
	struct entry *v;
	size_t n, cap;
};

static int collect_entry(uint64_t index, const uint8_t *digest, void *arg)
{
	struct entries *e = arg;

	if (e->n == e->cap) {
		size_t cap = e->cap ? 2 * e->cap : 1024;
		void *p = realloc(e->v, cap * sizeof(*e->v));

		if (!p)
			return -ENOMEM;
		e->v = p;
		e->cap = cap;
	}
	e->v[e->n].index = index;
	e->v[e->n].hole = digest == NULL;
	if (digest)
		memcpy(e->v[e->n].digest, digest, TSR_DIGEST_LEN);
	else
		memset(e->v[e->n].digest, 0, TSR_DIGEST_LEN);
	e->n++;
	return 0;
}

static int collect_digest(const uint8_t *digest, void *arg)
{
	return list_add(arg, digest);
}

/* The objects to ship: those the entries name and the parent's content
 * lacks, each once, in order of first use. */
static int plan_objects(struct tsr_store *store, const struct tsr_layer_info *li,
			const struct entries *e, struct digest_list *ret)
{
	struct digest_list provided = { 0 };
	struct digest_set seen = { 0 };
	int r = 0;

	if (li->has_parent) {
		struct tsr_layer *parent;

		r = tsr_layer_open(store, &li->parent, &parent);
		if (r)
			return r;
		r = tsr_layer_digests(parent, collect_digest, &provided);
		tsr_layer_close(parent);
		list_sort(&provided);
	}
	for (size_t i = 0; i < e->n && !r; i++) {
		const uint8_t *d = e->v[i].digest;

		if (e->v[i].hole || list_has(&provided, d))
			continue;
		r = set_add(&seen, d);
		if (r == 1)
			r = list_add(ret, d);
	}
	free(provided.v);
	free(seen.v);
	return r;
}

int tsr_layer_blob_write(struct tsr_store *store, const struct tsr_layer_id *id, int fd,
			 const struct tsr_progress *progress, struct tsr_layer_blob_info *ret_info)
{
	struct tsr_layer_info li;
	struct entries e = { 0 };
	struct digest_list objs = { 0 };
	struct stream s = { .sha = NULL };
	uint8_t hdr[HEADER_LEN], *payload = NULL;
	size_t cap = tsr_object_stored_max(store);
	uint8_t trailer[TRAILER_LEN];
	int r;

	r = tsr_layer_stat(store, id, &li);
	if (!r)
		r = tsr_layer_entries(store, id, collect_entry, &e);
	if (!r)
		r = plan_objects(store, &li, &e, &objs);
	if (!r)
		r = stream_init(&s, fd);
	if (!r && !(payload = malloc(cap)))
		r = -ENOMEM;
	if (r)
		goto out;

	memset(hdr, 0, sizeof(hdr));
	memcpy(hdr, BLOB_MAGIC, 8);
	put32(hdr + 8, BLOB_VERSION);
	put32(hdr + 12, tsr_store_chunk_size(store));
	put64(hdr + 16, li.size);
	if (li.has_parent)
		memcpy(hdr + 24, li.parent.bytes, TSR_DIGEST_LEN);
	memcpy(hdr + 56, id->bytes, TSR_DIGEST_LEN);
	put64(hdr + 88, e.n);
	put64(hdr + 96, objs.n);
	put32(hdr + 124, (uint32_t)crc32(0, hdr, 124));
	r = stream_write(&s, hdr, sizeof(hdr), true);
	for (size_t i = 0; i < e.n && !r; i++) {
		uint8_t ent[ENTRY_LEN];

		put64(ent, e.v[i].index);
		memcpy(ent + 8, e.v[i].digest, TSR_DIGEST_LEN);
		r = stream_write(&s, ent, sizeof(ent), true);
	}
	if (progress && progress->update)
		progress->update(progress->arg, 0, objs.n);
	for (size_t i = 0; i < objs.n && !r; i++) {
		uint8_t oh[OBJECT_HEADER_LEN];
		enum tsr_codec codec;
		size_t len;

		r = tsr_object_read_stored(store, objs.v[i], &codec, payload, cap, &len);
		if (r)
			break;
		memset(oh, 0, sizeof(oh));
		memcpy(oh, objs.v[i], TSR_DIGEST_LEN);
		oh[32] = (uint8_t)codec;
		put32(oh + 36, (uint32_t)len);
		put32(oh + 40, tsr_store_chunk_size(store));
		put32(oh + 44, (uint32_t)crc32(0, oh, 44));
		r = stream_write(&s, oh, sizeof(oh), true);
		if (!r)
			r = stream_write(&s, payload, len, true);
		if (!r && progress && progress->update && (i % 64 == 63 || i + 1 == objs.n))
			progress->update(progress->arg, i + 1, objs.n);
	}
	if (r)
		goto out;
	memset(trailer, 0, sizeof(trailer));
	memcpy(trailer, BLOB_END_MAGIC, 8);
	put64(trailer + 8, s.bytes);
	r = digest_final(s.sha, trailer + 16);
	if (!r)
		r = stream_write(&s, trailer, sizeof(trailer), false);
	if (!r && ret_info) {
		*ret_info = (struct tsr_layer_blob_info){
			.id = *id, .has_parent = li.has_parent, .parent = li.parent,
			.chunk_size = tsr_store_chunk_size(store), .size = li.size,
			.entries = e.n, .objects = objs.n, .bytes = s.bytes + TRAILER_LEN,
		};
		r = digest_final(s.whole, ret_info->blob_digest);
	}
out:
	stream_free(&s);
	free(payload);
	free(e.v);
	free(objs.v);
	return r;
}

/* ---- reader ---- */

static int parse_header(const uint8_t *h, struct tsr_layer_blob_info *info)
{
	uint64_t nchunks;

	if (memcmp(h, BLOB_MAGIC, 8) || get32(h + 124) != (uint32_t)crc32(0, h, 124) ||
	    !is_zero(h + 104, 20))
		return -EBADMSG;
	if (get32(h + 8) != BLOB_VERSION)
		return TSR_ERR_VERSION;
	info->chunk_size = get32(h + 12);
	info->size = get64(h + 16);
	info->has_parent = !is_zero(h + 24, TSR_DIGEST_LEN);
	memcpy(info->parent.bytes, h + 24, TSR_DIGEST_LEN);
	memcpy(info->id.bytes, h + 56, TSR_DIGEST_LEN);
	info->entries = get64(h + 88);
	info->objects = get64(h + 96);
	if (info->chunk_size < TSR_CHUNK_SIZE_MIN || info->chunk_size > TSR_CHUNK_SIZE_MAX ||
	    (info->chunk_size & (info->chunk_size - 1)) || info->size == 0)
		return -EBADMSG;
	nchunks = (info->size - 1) / info->chunk_size + 1;
	if (nchunks > MAX_CHUNKS || info->entries > nchunks || info->objects > info->entries)
		return -EBADMSG;
	return 0;
}

struct reader {
	struct tsr_store *store;
	struct stream s;
	struct tsr_layer_import *imp;
	struct tsr_layer_blob_info *info;
	struct digest_list named;     /* digests the entries name, sorted */
	uint8_t *payload;
	size_t cap;
};

static int read_entries(struct reader *rd)
{
	uint64_t nchunks = (rd->info->size - 1) / rd->info->chunk_size + 1;
	bool first = true;
	uint64_t last = 0;

	for (uint64_t i = 0; i < rd->info->entries; i++) {
		uint8_t ent[ENTRY_LEN];
		uint64_t index;
		bool hole;
		int r = stream_read(&rd->s, ent, sizeof(ent), true);

		if (r)
			return r;
		index = get64(ent);
		hole = is_zero(ent + 8, TSR_DIGEST_LEN);
		if (index >= nchunks || (!first && index <= last))
			return -EBADMSG;
		first = false;
		last = index;
		r = tsr_layer_import_entry(rd->imp, index, hole ? NULL : ent + 8);
		if (!r && !hole)
			r = list_add(&rd->named, ent + 8);
		if (r)
			return r == -EINVAL ? -EBADMSG : r;
	}
	list_sort(&rd->named);
	return 0;
}

static int read_objects(struct reader *rd, const struct tsr_progress *progress)
{
	for (uint64_t i = 0; i < rd->info->objects; i++) {
		uint8_t oh[OBJECT_HEADER_LEN];
		uint32_t stored;
		int r = stream_read(&rd->s, oh, sizeof(oh), true);

		if (r)
			return r;
		stored = get32(oh + 36);
		if (get32(oh + 44) != (uint32_t)crc32(0, oh, 44) || oh[32] > TSR_CODEC_ZSTD ||
		    !is_zero(oh + 33, 3) || get32(oh + 40) != rd->info->chunk_size ||
		    stored > rd->cap || !list_has(&rd->named, oh))
			return -EBADMSG;
		r = stream_read(&rd->s, rd->payload, stored, true);
		if (!r)
			r = tsr_layer_import_object(rd->imp, oh, (enum tsr_codec)oh[32], rd->payload,
						    stored);
		if (r)
			return r;
		if (progress && progress->update && (i % 64 == 63 || i + 1 == rd->info->objects))
			progress->update(progress->arg, i + 1, rd->info->objects);
	}
	return 0;
}

static int read_trailer(struct reader *rd)
{
	uint8_t t[TRAILER_LEN], body[TSR_DIGEST_LEN], extra;
	uint64_t body_len = rd->s.bytes;
	ssize_t n;
	int r;

	r = digest_final(rd->s.sha, body);
	if (!r)
		r = stream_read(&rd->s, t, sizeof(t), false);
	if (r)
		return r;
	if (memcmp(t, BLOB_END_MAGIC, 8) || get64(t + 8) != body_len ||
	    memcmp(t + 16, body, TSR_DIGEST_LEN) || !is_zero(t + 48, 16))
		return -EBADMSG;
	/* Nothing may follow the trailer. */
	do
		n = read(rd->s.fd, &extra, 1);
	while (n < 0 && errno == EINTR);
	if (n != 0)
		return n < 0 ? -errno : -EBADMSG;
	rd->info->bytes = body_len + TRAILER_LEN;
	return digest_final(rd->s.whole, rd->info->blob_digest);
}

int tsr_layer_blob_read(struct tsr_store *store, int fd, const char *name, uint64_t max_size,
			const struct tsr_progress *progress, struct tsr_layer_blob_info *info,
			struct tsr_layer_id *ret_id)
{
	struct tsr_layer_blob_info local;
	struct reader rd = { .store = store, .info = info ? info : &local };
	uint8_t hdr[HEADER_LEN];
	int r;

	memset(rd.info, 0, sizeof(*rd.info));
	rd.cap = tsr_object_stored_max(store);
	r = stream_init(&rd.s, fd);
	if (r)
		return r;
	rd.payload = malloc(rd.cap);
	if (!rd.payload) {
		r = -ENOMEM;
		goto out;
	}
	r = stream_read(&rd.s, hdr, sizeof(hdr), true);
	if (!r)
		r = parse_header(hdr, rd.info);
	if (!r && rd.info->size > (max_size ? max_size : TSR_LAYER_BLOB_MAX_SIZE_DEFAULT))
		r = -EFBIG;
	if (!r && rd.info->chunk_size != tsr_store_chunk_size(store))
		r = -EINVAL;
	if (!r)
		r = tsr_layer_import_begin(store, rd.info->has_parent ? &rd.info->parent : NULL,
					   rd.info->size, rd.info->chunk_size, &rd.imp);
	if (!r)
		r = read_entries(&rd);
	if (!r)
		r = read_objects(&rd, progress);
	if (!r)
		r = read_trailer(&rd);
	if (!r) {
		r = tsr_layer_import_commit(rd.imp, name, &rd.info->id, ret_id);
		rd.imp = NULL;
	}
out:
	if (rd.imp)
		tsr_layer_import_abort(rd.imp);
	stream_free(&rd.s);
	free(rd.payload);
	free(rd.named.v);
	return r;
}
