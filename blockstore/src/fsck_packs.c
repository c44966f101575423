/* SPDX-License-Identifier: MIT */
/*
 * fsck step 1: every pack is walked header by header; each intact object
 * (header CRC, then decompressed bytes against the digest) is a known copy,
 * which the later steps compare the index with and repair from.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "codec.h"
#include "fsck.h"
#include "meta.h"
#include "pack.h"
#include "store_handle.h"
#include "util.h"

static bool header_valid(const uint8_t *h)
{
	return !memcmp(h, "TOBJ", 4) && get_le32(h + 60) == (uint32_t)crc32(0, h, 60);
}

/* The offset of the next valid object header at or after pos, or end.
 * Holes (space gc punched) are skipped with SEEK_DATA; data is scanned a
 * window at a time for the header magic. */
static uint64_t resync(int fd, uint64_t pos, uint64_t end)
{
	enum { WINDOW = 64 << 10 };
	uint8_t *buf = malloc(WINDOW + OBJECT_HEADER_LEN);
	uint64_t found = end;

	while (buf && pos + OBJECT_HEADER_LEN <= end) {
		off_t data = lseek(fd, (off_t)pos, SEEK_DATA);
		size_t len;

		if (data < 0)
			break;
		if ((uint64_t)data > pos)
			pos = (uint64_t)data;
		if (pos + OBJECT_HEADER_LEN > end)
			break;
		len = end - pos < WINDOW + OBJECT_HEADER_LEN ? (size_t)(end - pos)
							     : WINDOW + OBJECT_HEADER_LEN;
		if (pread_full(fd, buf, len, pos))
			break;
		for (size_t i = 0; i + OBJECT_HEADER_LEN <= len; i++) {
			if (buf[i] == 'T' && header_valid(buf + i)) {
				found = pos + i;
				goto out;
			}
		}
		pos += len - OBJECT_HEADER_LEN + 1;
	}
out:
	free(buf);
	return found;
}

static int walk_pack(struct fsck *f, uint32_t id, uint64_t committed_len, uint8_t *chunk)
{
	struct tsr_store *store = f->store;
	int fd = store->packs[id].fd;
	uint8_t hdr[OBJECT_HEADER_LEN];
	uint64_t off = PACK_HEADER_LEN;
	struct stat st;
	uint64_t end;

	if (fd < 0) {
		fsck_finding(f, "pack %08x: file missing; every object in it is lost", id);
		f->st.unrepairable++;
		return 0;
	}
	if (fstat(fd, &st) < 0)
		return -errno;
	end = (uint64_t)st.st_size < committed_len ? (uint64_t)st.st_size : committed_len;
	if ((uint64_t)st.st_size < committed_len) {
		fsck_finding(f, "pack %08x: truncated to %llu bytes, metadata expects %llu", id,
			(unsigned long long)st.st_size, (unsigned long long)committed_len);
		f->st.unrepairable++;
	}
	while (off + OBJECT_HEADER_LEN <= end) {
		struct chunk_record rec;
		uint32_t raw, stored;
		struct obj_info *o;

		if (pread_full(fd, hdr, sizeof(hdr), off))
			break;
		raw = get_le32(hdr + 8);
		stored = get_le32(hdr + 12);
		if (!header_valid(hdr) || raw != store->chunk_size || stored > codec_bound(raw) ||
		    stored > end - off - OBJECT_HEADER_LEN) {
			/* Space gc reclaimed, or a damaged header. */
			off = resync(fd, off + 1, end);
			continue;
		}
		rec = (struct chunk_record){ .pack_id = id, .codec = hdr[5], .offset = off,
					     .stored_len = stored, .raw_len = raw };
		if (pack_read_object(store, hdr + 16, &rec, chunk) == 0) {
			o = fsck_obj_get(&f->objs, hdr + 16);
			if (!o)
				return -ENOMEM;
			if (!(o->flags & OBJ_COPY_FOUND)) {
				o->flags |= OBJ_COPY_FOUND;
				o->good = rec;
			}
			f->st.bytes_checked += raw;
		}
		off += OBJECT_HEADER_LEN + stored;
	}
	return 0;
}

struct pack_walk {
	struct fsck *f;
	uint8_t *chunk;
};

static int check_pack(const MDB_val *k, const MDB_val *v, void *arg)
{
	struct pack_walk *w = arg;
	struct fsck *f = w->f;
	struct pack_record prec;
	uint32_t id;

	if (k->mv_size != 4 || pack_record_decode(v, &prec)) {
		fsck_finding(f, "pack record damaged in the metadata");
		f->st.unrepairable++;
		return 0;
	}
	id = get_be32(k->mv_data);
	if (id >= f->store->npacks) {
		fsck_finding(f, "pack %08x: recorded but not opened", id);
		f->st.unrepairable++;
		return 0;
	}
	return walk_pack(f, id, prec.committed_len, w->chunk);
}

int fsck_check_packs(struct fsck *f, uint8_t *chunk)
{
	struct pack_walk w = { .f = f, .chunk = chunk };

	return meta_walk(f->store, NULL, DB_PACKS, NULL, 0, check_pack, &w);
}
