/* SPDX-License-Identifier: MIT */
/*
 * Pack files: append-only files of self-describing chunk objects
 * (FORMAT.md, "Pack files").  Invariant: every object that committed
 * metadata points at lies below its pack's committed_len, and those bytes
 * were fdatasynced before the metadata transaction that references them
 * committed.  Bytes past committed_len belong to an interrupted commit and
 * are cut off when the store opens.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#include <zlib.h>

#include "codec.h"
#include "meta.h"
#include "pack.h"
#include "store_handle.h"
#include "util.h"

static const uint8_t pack_magic[8] = { 'T', 'S', 'R', 'P', 'A', 'C', 'K', '1' };
static const uint8_t object_magic[4] = { 'T', 'O', 'B', 'J' };

static void pack_path(uint32_t id, char *buf, size_t len)
{
	snprintf(buf, len, TSR_PACK_DIR "/%08x.pack", id);
}

static void pack_header_encode(const struct tsr_store *store, uint32_t id,
			       uint8_t out[PACK_HEADER_LEN])
{
	memset(out, 0, PACK_HEADER_LEN);
	memcpy(out, pack_magic, sizeof(pack_magic));
	put_le32(out + 8, 1); /* pack format version */
	put_le32(out + 12, store->chunk_size);
	put_le32(out + 16, id);
	put_le32(out + 60, (uint32_t)crc32(0, out, 60));
}

static void object_header_encode(const uint8_t digest[TSR_DIGEST_LEN],
				 enum tsr_codec codec, uint32_t raw_len,
				 uint32_t stored_len, uint8_t out[OBJECT_HEADER_LEN])
{
	memset(out, 0, OBJECT_HEADER_LEN);
	memcpy(out, object_magic, sizeof(object_magic));
	out[4] = 1; /* object header version */
	out[5] = (uint8_t)codec;
	put_le32(out + 8, raw_len);
	put_le32(out + 12, stored_len);
	memcpy(out + 16, digest, TSR_DIGEST_LEN);
	put_le32(out + 60, (uint32_t)crc32(0, out, 60));
}

static int packs_grow(struct tsr_store *store, uint32_t id)
{
	size_t n = store->npacks;
	int r;

	if (id < store->npacks)
		return 0;
	pthread_rwlock_wrlock(&store->pack_lock);
	r = array_reserve(&store->packs, &n, (size_t)id + 1, sizeof(*store->packs));
	if (!r && n > UINT32_MAX)
		n = UINT32_MAX;
	if (!r) {
		for (size_t i = store->npacks; i < n; i++)
			store->packs[i] = (struct pack_file){ .fd = -1 };
		store->npacks = (uint32_t)n;
	}
	pthread_rwlock_unlock(&store->pack_lock);
	return r;
}

/* Removes pack files that no committed metadata knows of: they were
 * created by a commit that did not finish. */
static void packs_remove_orphans(struct tsr_store *store)
{
	int fd = openat(store->dir_fd, TSR_PACK_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d;
	struct dirent *e;

	if (fd < 0)
		return;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return;
	}
	while ((e = readdir(d))) {
		unsigned id;
		char tail;

		if (sscanf(e->d_name, "%8x.pac%c", &id, &tail) != 2 || tail != 'k')
			continue;
		if (id == 0 || id >= store->npacks || store->packs[id].fd < 0)
			unlinkat(dirfd(d), e->d_name, 0);
	}
	closedir(d);
}

/* Opens one recorded pack and cuts off what no commit references. */
static int pack_open_recorded(const MDB_val *k, const MDB_val *v, void *arg)
{
	struct tsr_store *store = arg;
	struct pack_record rec;
	char path[64];
	uint32_t id;
	struct stat st;
	int fd, r;

	if (k->mv_size != 4 || pack_record_decode(v, &rec))
		return -EBADMSG;
	id = get_be32(k->mv_data);
	r = packs_grow(store, id);
	if (r)
		return r;
	pack_path(id, path, sizeof(path));
	fd = openat(store->dir_fd, path, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		/* A missing pack is damage for fsck to report; its objects
		 * read as EIO meanwhile. */
		return 0;
	}
	if (fstat(fd, &st) == 0 && (uint64_t)st.st_size > rec.committed_len) {
		/* Cut off the tail of an interrupted commit. */
		if (ftruncate(fd, (off_t)rec.committed_len) < 0) {
			r = -errno;
			close(fd);
			return r;
		}
	}
	store->packs[id] = (struct pack_file){
		.fd = fd,
		.len = rec.committed_len,
		.committed_len = rec.committed_len,
		.objects = rec.objects,
		.committed_objects = rec.objects,
	};
	if (id > store->active_pack)
		store->active_pack = id;
	return 0;
}

int packs_open(struct tsr_store *store)
{
	int r = meta_walk(store, NULL, DB_PACKS, NULL, 0, pack_open_recorded, store);

	if (r)
		return r;
	packs_remove_orphans(store);
	return 0;
}

void packs_close(struct tsr_store *store)
{
	for (uint32_t i = 0; i < store->npacks; i++)
		if (store->packs[i].fd >= 0)
			close(store->packs[i].fd);
	free(store->packs);
	store->packs = NULL;
	store->npacks = 0;
}

/* Starts pack id with its header written.  Neither the header nor the
 * directory entry is synced here: packs_sync_and_record() does both before
 * the transaction that records the pack, and a pack without a record is an
 * orphan that the next open removes.  (Syncing here stalled the commit
 * pipeline for a journal commit at every pack rollover.) */
static int pack_create(struct tsr_store *store, uint32_t id)
{
	uint8_t hdr[PACK_HEADER_LEN];
	char path[64];
	int fd, r;

	r = packs_grow(store, id);
	if (r)
		return r;
	pack_path(id, path, sizeof(path));
	fd = openat(store->dir_fd, path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	pack_header_encode(store, id, hdr);
	r = pwrite_full(fd, hdr, sizeof(hdr), 0);
	if (r) {
		close(fd);
		unlinkat(store->dir_fd, path, 0);
		return r;
	}
	pthread_rwlock_wrlock(&store->pack_lock);
	store->packs[id] = (struct pack_file){
		.fd = fd, .len = PACK_HEADER_LEN, .committed_len = 0, .dirty = true,
		.entry_unsynced = true,
	};
	pthread_rwlock_unlock(&store->pack_lock);
	store->active_pack = id;
	return 0;
}

int pack_append(struct tsr_store *store, const uint8_t digest[TSR_DIGEST_LEN],
		enum tsr_codec codec, const void *payload, uint32_t stored_len,
		uint32_t raw_len, struct chunk_record *ret_rec)
{
	uint8_t hdr[OBJECT_HEADER_LEN];
	struct pack_file *p;
	struct iovec iov[2];
	uint64_t off;
	ssize_t n;
	int r;

	if (!store->active_pack || store->packs[store->active_pack].fd < 0 ||
	    store->packs[store->active_pack].len >= store->pack_target) {
		r = pack_create(store, store->active_pack + 1);
		if (r)
			return r;
	}
	p = &store->packs[store->active_pack];
	off = p->len;
	object_header_encode(digest, codec, raw_len, stored_len, hdr);
	iov[0] = (struct iovec){ .iov_base = hdr, .iov_len = sizeof(hdr) };
	iov[1] = (struct iovec){ .iov_base = (void *)payload, .iov_len = stored_len };
	n = pwritev(p->fd, iov, 2, (off_t)off);
	if (n < 0)
		return -errno;
	if ((size_t)n != sizeof(hdr) + stored_len) {
		/* A short write is a full disk in practice; the tail is cut
		 * off by rollback. */
		return -ENOSPC;
	}
	p->len = off + (uint64_t)n;
	p->objects++;
	p->dirty = true;
	*ret_rec = (struct chunk_record){
		.pack_id = store->active_pack,
		.codec = (uint8_t)codec,
		.offset = off,
		.stored_len = stored_len,
		.raw_len = raw_len,
		.refcount = 0,
	};
	return 0;
}

int packs_sync_and_record(struct tsr_store *store, MDB_txn *txn)
{
	bool new_entries = false;

	for (uint32_t id = 1; id < store->npacks; id++) {
		struct pack_file *p = &store->packs[id];
		struct pack_record rec = { .committed_len = p->len, .objects = p->objects };
		uint8_t key[4], val[PACK_RECORD_LEN];
		int r;

		if (p->fd < 0 || !p->dirty)
			continue;
		/* Crash ordering: the objects are durable before the
		 * transaction that points at them can commit. */
		if (fdatasync(p->fd) < 0)
			return -errno;
		new_entries |= p->entry_unsynced;
		put_be32(key, id);
		pack_record_encode(&rec, val);
		r = meta_put(store, txn, DB_PACKS, key, sizeof(key), val, sizeof(val));
		if (r)
			return r;
	}
	if (new_entries) {
		int r = fsync_dir(store->dir_fd, TSR_PACK_DIR);

		if (r)
			return r;
		for (uint32_t id = 1; id < store->npacks; id++)
			store->packs[id].entry_unsynced = false;
	}
	return 0;
}

void packs_start_writeback(struct tsr_store *store)
{
	struct pack_file *p;

	if (!store->active_pack || store->active_pack >= store->npacks)
		return;
	p = &store->packs[store->active_pack];
	if (p->fd < 0 || p->len <= p->writeback_from)
		return;
	/* Asynchronous: only starts writeback; durability still comes from
	 * the fdatasync in packs_sync_and_record(). */
	sync_file_range(p->fd, (off_t)p->writeback_from, (off_t)(p->len - p->writeback_from),
			SYNC_FILE_RANGE_WRITE);
	p->writeback_from = p->len;
}

void packs_committed(struct tsr_store *store)
{
	for (uint32_t id = 1; id < store->npacks; id++) {
		struct pack_file *p = &store->packs[id];

		if (p->fd < 0 || !p->dirty)
			continue;
		p->committed_len = p->len;
		p->committed_objects = p->objects;
		p->dirty = false;
	}
}

void packs_rollback(struct tsr_store *store)
{
	for (uint32_t id = 1; id < store->npacks; id++) {
		struct pack_file *p = &store->packs[id];

		if (p->fd < 0 || !p->dirty)
			continue;
		if (p->committed_len == 0) {
			/* Created by the failed commit: its header stays; the
			 * pack is recorded by the next successful commit. */
			p->len = PACK_HEADER_LEN;
			p->objects = 0;
			p->writeback_from = p->len;
			if (ftruncate(p->fd, PACK_HEADER_LEN) < 0) {
				/* Left for the orphan sweep at next open. */
			}
			continue;
		}
		p->len = p->committed_len;
		p->objects = p->committed_objects;
		p->writeback_from = p->len;
		p->dirty = false;
		if (ftruncate(p->fd, (off_t)p->committed_len) < 0) {
			/* Harmless: the tail is cut off at next open. */
		}
	}
}

/* Reads an object's header and payload into buf (OBJECT_HEADER_LEN +
 * stored_len bytes) and checks the header against rec and digest.  The
 * pack lock is held across the read so gc cannot close the file under it. */
static int pack_read_checked(struct tsr_store *store, const uint8_t digest[TSR_DIGEST_LEN],
			     const struct chunk_record *rec, uint8_t *buf)
{
	size_t total = OBJECT_HEADER_LEN + (size_t)rec->stored_len;
	int fd = -1, r;

	pthread_rwlock_rdlock(&store->pack_lock);
	if (rec->pack_id < store->npacks)
		fd = store->packs[rec->pack_id].fd;
	r = fd < 0 ? -EIO : pread_full(fd, buf, total, rec->offset);
	pthread_rwlock_unlock(&store->pack_lock);
	if (r)
		return r;
	if (memcmp(buf, object_magic, sizeof(object_magic)) || buf[4] != 1 ||
	    get_le32(buf + 60) != (uint32_t)crc32(0, buf, 60) ||
	    buf[5] != rec->codec || get_le32(buf + 8) != rec->raw_len ||
	    get_le32(buf + 12) != rec->stored_len ||
	    memcmp(buf + 16, digest, TSR_DIGEST_LEN))
		return -EBADMSG;
	return 0;
}

static int pack_buf_alloc(const struct tsr_store *store, const struct chunk_record *rec,
			  uint8_t **ret)
{
	if (rec->raw_len != store->chunk_size || rec->stored_len > codec_bound(rec->raw_len))
		return -EBADMSG;
	*ret = malloc(OBJECT_HEADER_LEN + (size_t)rec->stored_len);
	return *ret ? 0 : -ENOMEM;
}

/* Reads an object and verifies it: its header against rec and digest, its
 * payload by decompressing it into chunk (raw_len bytes) and hashing.
 * *ret_buf (malloc'd) holds the header and the stored payload. */
static int read_verified(struct tsr_store *store, const uint8_t digest[TSR_DIGEST_LEN],
			 const struct chunk_record *rec, void *chunk, uint8_t **ret_buf)
{
	uint8_t *buf, check[TSR_DIGEST_LEN];
	int r = pack_buf_alloc(store, rec, &buf);

	if (r)
		return r;
	r = pack_read_checked(store, digest, rec, buf);
	if (!r)
		r = codec_decompress((enum tsr_codec)rec->codec, buf + OBJECT_HEADER_LEN,
				     rec->stored_len, chunk, rec->raw_len);
	if (!r)
		r = digest_chunk(store, chunk, rec->raw_len, check);
	if (!r && memcmp(check, digest, TSR_DIGEST_LEN))
		r = -EBADMSG;
	if (r) {
		free(buf);
		return r;
	}
	*ret_buf = buf;
	return 0;
}

int pack_read_object(struct tsr_store *store, const uint8_t digest[TSR_DIGEST_LEN],
		     const struct chunk_record *rec, void *dst)
{
	uint8_t *buf;
	int r = read_verified(store, digest, rec, dst, &buf);

	if (!r)
		free(buf);
	return r;
}

int pack_read_stored(struct tsr_store *store, const uint8_t digest[TSR_DIGEST_LEN],
		     const struct chunk_record *rec, void *payload, void *scratch)
{
	uint8_t *buf;
	int r = read_verified(store, digest, rec, scratch, &buf);

	if (r)
		return r;
	memcpy(payload, buf + OBJECT_HEADER_LEN, rec->stored_len);
	free(buf);
	return 0;
}

int pack_copy_object(struct tsr_store *store, const uint8_t digest[TSR_DIGEST_LEN],
		     const struct chunk_record *rec, void *scratch,
		     struct chunk_record *ret_rec)
{
	uint8_t *buf;
	/* Verify before copying: compaction must not carry damage forward
	 * under a fresh header. */
	int r = read_verified(store, digest, rec, scratch, &buf);

	if (r)
		return r;
	r = pack_append(store, digest, (enum tsr_codec)rec->codec, buf + OBJECT_HEADER_LEN,
			rec->stored_len, rec->raw_len, ret_rec);
	free(buf);
	return r;
}

int pack_punch_range(struct tsr_store *store, uint32_t id, uint64_t off, uint64_t len)
{
	int fd = -1, r = 0;

	pthread_rwlock_rdlock(&store->pack_lock);
	if (id < store->npacks)
		fd = store->packs[id].fd;
	/* Punched bytes read as zeros: a pack walk skips them (FORMAT.md). */
	if (fd >= 0 && len &&
	    fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len) < 0)
		r = errno == EOPNOTSUPP ? 0 : -errno;
	pthread_rwlock_unlock(&store->pack_lock);
	return r;
}

void pack_remove(struct tsr_store *store, uint32_t id)
{
	char path[64];
	int fd = -1;

	pthread_rwlock_wrlock(&store->pack_lock);
	if (id < store->npacks) {
		fd = store->packs[id].fd;
		store->packs[id] = (struct pack_file){ .fd = -1 };
	}
	pthread_rwlock_unlock(&store->pack_lock);
	if (fd >= 0)
		close(fd);
	pack_path(id, path, sizeof(path));
	unlinkat(store->dir_fd, path, 0);
}

uint64_t pack_allocated_bytes(struct tsr_store *store)
{
	uint64_t total = 0;

	pthread_rwlock_rdlock(&store->pack_lock);
	for (uint32_t id = 1; id < store->npacks; id++) {
		char path[64];

		if (store->packs[id].fd < 0)
			continue;
		pack_path(id, path, sizeof(path));
		total += file_allocated_bytes(store->dir_fd, path);
	}
	pthread_rwlock_unlock(&store->pack_lock);
	return total;
}
