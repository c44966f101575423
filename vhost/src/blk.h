/* SPDX-License-Identifier: MIT */
/*
 * virtio-blk requests (virtio 1.x, 5.2) over a backing store given as a
 * table of operations: a tessera volume or layer in the server, memory in
 * the fuzz targets and tests.
 */
#ifndef TSR_VHOST_BLK_H
#define TSR_VHOST_BLK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vring.h"

#include <tessera/store.h>

#define TSR_BLK_ID_BYTES 20          /* VIRTIO_BLK_ID_BYTES */
#define TSR_BLK_MAX_DISCARD_SEG 16   /* ranges in one discard/write-zeroes */
#define TSR_BLK_BOUNCE (1u << 20)    /* bounce buffer of a queue */

/* Operations on the backing disk: 0 or a negative errno.  Offsets and
 * lengths are already checked against size.  discard, write_zeroes and
 * write are NULL for a read-only backing; flush is NULL when there is
 * nothing to flush.  map (NULL when the backing has no plain file ranges:
 * a layer, memory) has tsr_volume_map's contract: it lets the queue do
 * the file I/O of IN and OUT itself, through io_uring (blk_uring.c). */
struct tsr_blk_ops {
	int (*read)(void *ctx, void *buf, size_t len, uint64_t off);
	int (*write)(void *ctx, const void *buf, size_t len, uint64_t off);
	int (*discard)(void *ctx, uint64_t off, uint64_t len);
	int (*write_zeroes)(void *ctx, uint64_t off, uint64_t len);
	int (*flush)(void *ctx);
	int (*map)(void *ctx, uint64_t off, uint64_t len, bool for_write,
		   struct tsr_volume_extent *ext, unsigned max,
		   unsigned *ret_n);
};

struct tsr_blk {
	const struct tsr_blk_ops *ops;
	void *ctx;
	uint64_t size;            /* bytes; the capacity is size / 512 */
	uint32_t blk_size;        /* logical block size: 512 or 4096 */
	uint32_t discard_align;   /* bytes, a multiple of 512 (the chunk size) */
	bool read_only;           /* VIRTIO_BLK_F_RO: writes get IOERR */
	char id[TSR_BLK_ID_BYTES];  /* GET_ID answer, NUL-padded */
};

/* Device feature bits (virtio-blk and ring; not the transport's). */
uint64_t tsr_blk_features(const struct tsr_blk *blk, unsigned queues);
/* Fills buf[0..len) with the device configuration space from byte offset
 * off (struct virtio_blk_config; bytes past it read as zero).  -EINVAL
 * when off + len passes 256 bytes. */
int tsr_blk_config(const struct tsr_blk *blk, unsigned queues,
		   uint16_t queue_size, uint32_t off, void *buf, size_t len);

/* Serves one request: reads its header, does the I/O, writes data and the
 * status byte into the guest's buffers.  bounce holds TSR_BLK_BOUNCE
 * bytes.  Returns the length to put in the used element (bytes written to
 * the guest, status included); *ret_status is the virtio status, or -1
 * when the request had no room for one (used length 0). */
uint32_t tsr_blk_handle(const struct tsr_blk *blk, const struct tsr_vreq *req,
			void *bounce, int *ret_status);
/* The same on a request's iovecs given apart (iov[0..n_out) readable,
 * then n_in writable): the worker pool keeps copies of just those.
 * Thread-safe when the backing's operations are and bounce is the
 * caller's own. */
uint32_t tsr_blk_handle_iov(const struct tsr_blk *blk, const struct iovec *iov,
			    unsigned n_out, unsigned n_in, void *bounce,
			    int *ret_status);

/* A well-formed IN or OUT request, as the asynchronous path sees it.  The
 * data are the len bytes of iov[0..n_iov) that follow the first skip
 * bytes (the header of an OUT); the status byte is not among them. */
struct tsr_blk_rw {
	bool write;
	uint64_t off;              /* disk byte offset, range checked */
	size_t len;                /* > 0, whole sectors */
	const struct iovec *iov;   /* points into the request */
	unsigned n_iov;
	size_t skip;
	uint8_t *status;           /* the status byte, in guest memory */
	uint32_t used;             /* used length once it succeeded */
};

enum tsr_blk_class {
	/* IN or OUT that passed every check: *ret_rw is filled.  May be
	 * served asynchronously, or by tsr_blk_handle. */
	TSR_BLK_RW,
	/* FLUSH, DISCARD, WRITE_ZEROES: tsr_blk_handle, after the queue's
	 * requests in flight completed (a FLUSH covers every write already
	 * completed; a discard must not race a write of the same range). */
	TSR_BLK_ORDERED,
	/* Anything else (GET_ID, unknown types, malformed or refused
	 * requests, empty transfers): tsr_blk_handle answers it. */
	TSR_BLK_OTHER,
};

/* Sorts a request without serving it or touching the guest's buffers. */
enum tsr_blk_class tsr_blk_classify(const struct tsr_blk *blk,
				    const struct tsr_vreq *req,
				    struct tsr_blk_rw *ret_rw);

#endif /* TSR_VHOST_BLK_H */
