/* SPDX-License-Identifier: MIT */
/*
 * Open image files and their I/O.
 *
 * Each open of a volume file holds its own tsr_volume handle (the store
 * counts references per volume), closed at release; the last close
 * flushes.  Layer files are opened read-only with their own tsr_layer.
 *
 * Image files behave like block devices, not like growable files:
 *  - reads are short at the end (only the bytes before it), 0 at or past it;
 *  - a write is shortened at the end and one that starts at or past the end
 *    fails with ENOSPC (what a block device returns; EFBIG would suggest a
 *    file size limit);
 *  - O_TRUNC is ignored (sizes are fixed, as for a block device).
 *
 * The write path allocates nothing: libfuse reads each request into a
 * buffer it keeps per worker thread and hands us a pointer into it (the
 * `write` op, not `write_buf`, so no splice and no copy out of a pipe).
 * Reads use a buffer of TSR_FUSE_MAX_IO kept per thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdlib.h>

#include "fuse_internal.h"

static pthread_key_t read_buf_key;
static pthread_once_t read_buf_once = PTHREAD_ONCE_INIT;
static int read_buf_key_err;

static void read_buf_key_make(void)
{
	read_buf_key_err = pthread_key_create(&read_buf_key, free);
}

int tsr_fuse_io_init(void)
{
	pthread_once(&read_buf_once, read_buf_key_make);
	return -read_buf_key_err;
}

/* This thread's read buffer (TSR_FUSE_MAX_IO bytes), or NULL. */
static void *read_buf(void)
{
	void *buf = pthread_getspecific(read_buf_key);

	if (!buf) {
		buf = malloc(TSR_FUSE_MAX_IO);
		if (buf && pthread_setspecific(read_buf_key, buf)) {
			free(buf);
			buf = NULL;
		}
	}
	return buf;
}

static struct tsr_fuse_file *file_of(struct fuse_file_info *fi)
{
	return (struct tsr_fuse_file *)(uintptr_t)fi->fh;
}

static void file_close(struct tsr_fuse_file *f)
{
	if (f->vol)
		tsr_volume_close(f->vol);
	if (f->layer)
		tsr_layer_close(f->layer);
	free(f);
}

static void files_add(struct tsr_fuse *fuse, struct tsr_fuse_file *f)
{
	pthread_mutex_lock(&fuse->files_lock);
	f->next = fuse->files.next;
	f->prev = &fuse->files;
	f->next->prev = f;
	fuse->files.next = f;
	pthread_mutex_unlock(&fuse->files_lock);
}

static void files_del(struct tsr_fuse *fuse, struct tsr_fuse_file *f)
{
	pthread_mutex_lock(&fuse->files_lock);
	f->prev->next = f->next;
	f->next->prev = f->prev;
	pthread_mutex_unlock(&fuse->files_lock);
}

void tsr_fuse_close_all(struct tsr_fuse *fuse)
{
	for (;;) {
		struct tsr_fuse_file *f;

		pthread_mutex_lock(&fuse->files_lock);
		f = fuse->files.next;
		if (f == &fuse->files) {
			pthread_mutex_unlock(&fuse->files_lock);
			return;
		}
		f->prev->next = f->next;
		f->next->prev = f->prev;
		pthread_mutex_unlock(&fuse->files_lock);
		file_close(f);
	}
}

static int open_volume(struct tsr_fuse *fuse, const struct tsr_node *node,
		       struct tsr_fuse_file *f)
{
	struct tsr_volume_info info;
	int r = tsr_volume_open(fuse->store, node->key, &f->vol);

	if (r)
		return r == -ENOENT ? -ESTALE : r;
	/* The open handle pins the volume (remove is refused while it is
	 * open), so this check cannot go stale. */
	r = tsr_volume_stat(fuse->store, node->key, &info);
	if (!r && info.id != node->vol_id)
		r = -ESTALE;
	if (r) {
		tsr_volume_close(f->vol);
		f->vol = NULL;
		return r;
	}
	f->size = tsr_volume_size(f->vol);
	return 0;
}

static int open_layer(struct tsr_fuse *fuse, const struct tsr_node *node,
		      struct tsr_fuse_file *f)
{
	struct tsr_layer_id id;
	int r = tsr_layer_id_from_hex(node->key, &id);

	if (!r)
		r = tsr_layer_open(fuse->store, &id, &f->layer);
	if (r)
		return r == -ENOENT ? -ESTALE : r;
	f->size = tsr_layer_size(f->layer);
	return 0;
}

void tsr_fuse_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct tsr_fuse *fuse = tsr_fuse_from_req(req);
	struct tsr_node *node = tsr_inode_get(&fuse->inodes, ino);
	struct tsr_fuse_file *f;
	int r;

	if (!node || node->kind == TSR_NODE_DIR) {
		fuse_reply_err(req, node ? EISDIR : ENOENT);
		return;
	}
	if (node->kind == TSR_NODE_LAYER && (fi->flags & O_ACCMODE) != O_RDONLY) {
		fuse_reply_err(req, EROFS);
		return;
	}
	f = calloc(1, sizeof(*f));
	if (!f) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	if (node->kind == TSR_NODE_VOLUME) {
		r = open_volume(fuse, node, f);
		/* Not cached in the kernel: under a loop device the data
		 * would be cached twice, and the store's own writers (commit,
		 * import) would leave stale pages behind.  See README.md. */
		fi->direct_io = 1;
		fi->keep_cache = 0;
	} else if (node->kind == TSR_NODE_LAYER) {
		r = open_layer(fuse, node, f);
		/* A layer never changes: its pages stay valid across opens. */
		fi->keep_cache = 1;
	} else {
		r = -ELOOP;
	}
	if (r) {
		free(f);
		fuse_reply_err(req, -r);
		return;
	}
	fi->fh = (uintptr_t)f;
	files_add(fuse, f);
	if (fuse_reply_open(req, fi) == -ENOENT) {  /* interrupted: no release */
		files_del(fuse, f);
		file_close(f);
	}
}

void tsr_fuse_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct tsr_fuse_file *f = file_of(fi);

	(void)ino;
	files_del(tsr_fuse_from_req(req), f);
	file_close(f);
	fuse_reply_err(req, 0);
}

void tsr_fuse_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		   struct fuse_file_info *fi)
{
	struct tsr_fuse_file *f = file_of(fi);
	void *buf, *big = NULL;
	size_t len;
	int r;

	(void)ino;
	if (off < 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	if ((uint64_t)off >= f->size || !size) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	len = size;
	if (len > f->size - (uint64_t)off)
		len = (size_t)(f->size - (uint64_t)off);
	/* The kernel never asks for more than max_read (the mount option is
	 * TSR_FUSE_MAX_IO); a larger request still works, on the heap. */
	buf = len <= TSR_FUSE_MAX_IO ? read_buf() : (big = malloc(len));
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	if (f->vol)
		r = tsr_volume_read(f->vol, buf, len, (uint64_t)off);
	else
		r = tsr_layer_read(f->layer, buf, len, (uint64_t)off);
	if (r)
		fuse_reply_err(req, -r);  /* -EIO of a damaged chunk too */
	else
		fuse_reply_buf(req, buf, len);
	free(big);
}

void tsr_fuse_write(fuse_req_t req, fuse_ino_t ino, const char *buf,
		    size_t size, off_t off, struct fuse_file_info *fi)
{
	struct tsr_fuse_file *f = file_of(fi);
	size_t len = size;
	int r;

	(void)ino;
	if (!f->vol) {
		fuse_reply_err(req, EROFS);
		return;
	}
	if (off < 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	if ((uint64_t)off >= f->size) {
		fuse_reply_err(req, size ? ENOSPC : 0);
		return;
	}
	if (len > f->size - (uint64_t)off)
		len = (size_t)(f->size - (uint64_t)off);
	r = len ? tsr_volume_write(f->vol, buf, len, (uint64_t)off) : 0;
	if (r)
		fuse_reply_err(req, -r);
	else
		fuse_reply_write(req, len);
}

/* fsync and fdatasync both make every acknowledged write durable: the
 * volume has no metadata a datasync could skip. */
void tsr_fuse_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
		    struct fuse_file_info *fi)
{
	struct tsr_fuse_file *f = file_of(fi);

	(void)ino;
	(void)datasync;
	fuse_reply_err(req, f->vol ? -tsr_volume_flush(f->vol) : 0);
}

/* close(2): nothing to write back (no daemon-side cache); the last release
 * of a volume flushes it. */
void tsr_fuse_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	(void)fi;
	fuse_reply_err(req, 0);
}

/*
 * PUNCH_HOLE|KEEP_SIZE -> discard, ZERO_RANGE[|KEEP_SIZE] -> write-zeroes,
 * clamped to the image's end.  A ZERO_RANGE without KEEP_SIZE that reaches
 * past the end would have to grow the file: ENOSPC, as for writes.  Every
 * other mode (plain allocation, COLLAPSE, INSERT, ...) is EOPNOTSUPP.
 */
void tsr_fuse_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off,
			off_t len, struct fuse_file_info *fi)
{
	struct tsr_fuse_file *f = file_of(fi);
	bool keep = mode & FALLOC_FL_KEEP_SIZE;
	int op = mode & ~FALLOC_FL_KEEP_SIZE;
	uint64_t n;
	int r;

	(void)ino;
	if (!f->vol) {
		fuse_reply_err(req, EROFS);
		return;
	}
	if (off < 0 || len <= 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	if ((op != FALLOC_FL_PUNCH_HOLE || !keep) && op != FALLOC_FL_ZERO_RANGE) {
		fuse_reply_err(req, EOPNOTSUPP);
		return;
	}
	if ((uint64_t)off >= f->size ||
	    (uint64_t)len > f->size - (uint64_t)off) {
		if (!keep) {
			fuse_reply_err(req, ENOSPC);
			return;
		}
		if ((uint64_t)off >= f->size) {
			fuse_reply_err(req, 0);
			return;
		}
		n = f->size - (uint64_t)off;
	} else {
		n = (uint64_t)len;
	}
	if (op == FALLOC_FL_PUNCH_HOLE)
		r = tsr_volume_discard(f->vol, (uint64_t)off, n);
	else
		r = tsr_volume_write_zeroes(f->vol, (uint64_t)off, n);
	fuse_reply_err(req, -r);
}
