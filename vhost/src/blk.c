/* SPDX-License-Identifier: MIT */
/*
 * virtio-blk request handling (virtio 1.x 5.2.6): header, data, status.
 *
 * A request is a chain: the 16-byte header (type, ioprio, sector) and, for
 * OUT / DISCARD / WRITE_ZEROES, the payload in device-readable buffers;
 * then, for IN / GET_ID, the data, and always the status byte last, in
 * device-writable buffers.  Everything in it comes from the guest: it is
 * copied out through bounds-checked iovec cursors and checked before use.
 * A malformed request gets IOERR (or UNSUPP for an unknown type); it never
 * touches a byte outside its own buffers or past the disk's end.
 */
#include "blk.h"

#include <endian.h>
#include <errno.h>
#include <string.h>

#include <linux/virtio_blk.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>

#define SECTOR 512u
#define HDR_LEN sizeof(struct virtio_blk_outhdr)
/* Most sectors in one discard / write-zeroes range (2 GiB). */
#define MAX_RANGE_SECTORS (1u << 22)

uint64_t tsr_blk_features(const struct tsr_blk *blk, unsigned queues)
{
	uint64_t f = (1ull << VIRTIO_F_VERSION_1) |
		     (1ull << VIRTIO_RING_F_INDIRECT_DESC) |
		     (1ull << VIRTIO_RING_F_EVENT_IDX) |
		     (1ull << VIRTIO_BLK_F_SEG_MAX) |
		     (1ull << VIRTIO_BLK_F_BLK_SIZE) |
		     (1ull << VIRTIO_BLK_F_FLUSH) |
		     (1ull << VIRTIO_BLK_F_DISCARD) |
		     (1ull << VIRTIO_BLK_F_WRITE_ZEROES);

	if (queues > 1)
		f |= 1ull << VIRTIO_BLK_F_MQ;
	if (blk->read_only)
		f |= 1ull << VIRTIO_BLK_F_RO;
	return f;
}

int tsr_blk_config(const struct tsr_blk *blk, unsigned queues,
		   uint16_t queue_size, uint32_t off, void *buf, size_t len)
{
	uint8_t space[256];
	struct virtio_blk_config c;

	if (off > sizeof(space) || len > sizeof(space) - off)
		return -EINVAL;
	memset(&c, 0, sizeof(c));
	c.capacity = htole64(blk->size / SECTOR);
	/* Two descriptors of a chain hold the header and the status. */
	c.seg_max = htole32(queue_size > 2 ? queue_size - 2u : 1u);
	c.blk_size = htole32(blk->blk_size);
	c.num_queues = htole16((uint16_t)queues);
	c.max_discard_sectors = htole32(MAX_RANGE_SECTORS);
	c.max_discard_seg = htole32(TSR_BLK_MAX_DISCARD_SEG);
	c.discard_sector_alignment = htole32(blk->discard_align / SECTOR);
	c.max_write_zeroes_sectors = htole32(MAX_RANGE_SECTORS);
	c.max_write_zeroes_seg = htole32(TSR_BLK_MAX_DISCARD_SEG);
	c.write_zeroes_may_unmap = 1;
	memset(space, 0, sizeof(space));
	memcpy(space, &c, sizeof(c));
	memcpy(buf, space + off, len);
	return 0;
}

/* ---- iovec cursors ------------------------------------------------------ */

static size_t iov_total(const struct iovec *iov, unsigned n)
{
	size_t t = 0;

	for (unsigned i = 0; i < n; i++)
		t += iov[i].iov_len;  /* cannot wrap: each lies in a mapping */
	return t;
}

/* Copies len bytes starting off bytes into iov[0..n) to buf.  The caller
 * checked that off + len <= the total. */
static void iov_to_buf(const struct iovec *iov, unsigned n, size_t off,
		       void *buf, size_t len)
{
	uint8_t *p = buf;

	for (unsigned i = 0; i < n && len > 0; i++) {
		size_t take;

		if (off >= iov[i].iov_len) {
			off -= iov[i].iov_len;
			continue;
		}
		take = iov[i].iov_len - off;
		if (take > len)
			take = len;
		memcpy(p, (uint8_t *)iov[i].iov_base + off, take);
		p += take;
		len -= take;
		off = 0;
	}
}

static void buf_to_iov(const struct iovec *iov, unsigned n, size_t off,
		       const void *buf, size_t len)
{
	const uint8_t *p = buf;

	for (unsigned i = 0; i < n && len > 0; i++) {
		size_t take;

		if (off >= iov[i].iov_len) {
			off -= iov[i].iov_len;
			continue;
		}
		take = iov[i].iov_len - off;
		if (take > len)
			take = len;
		memcpy((uint8_t *)iov[i].iov_base + off, p, take);
		p += take;
		len -= take;
		off = 0;
	}
}

/* ---- requests ---------------------------------------------------------------- */

/* Checks that [sector, sector + bytes / 512) lies on the disk and bytes is
 * whole sectors; sets *ret_off.  0 or -EINVAL. */
static int check_range(const struct tsr_blk *blk, uint64_t sector,
		       uint64_t bytes, uint64_t *ret_off)
{
	uint64_t cap = blk->size / SECTOR;

	if (bytes % SECTOR || sector > cap || bytes / SECTOR > cap - sector)
		return -EINVAL;
	*ret_off = sector * SECTOR;
	return 0;
}

/* IN: reads the disk into the writable buffers (without the status
 * byte).  in/n_in are the data iovecs; len their total. */
static int do_read(const struct tsr_blk *blk, const struct iovec *in,
		   unsigned n_in, size_t len, uint64_t off, void *bounce)
{
	size_t done = 0;
	int r;

	if (n_in == 1)
		return blk->ops->read(blk->ctx, in[0].iov_base, len, off);
	while (done < len) {
		size_t piece = len - done;

		if (piece > TSR_BLK_BOUNCE)
			piece = TSR_BLK_BOUNCE;
		r = blk->ops->read(blk->ctx, bounce, piece, off + done);
		if (r < 0)
			return r;
		buf_to_iov(in, n_in, done, bounce, piece);
		done += piece;
	}
	return 0;
}

/* OUT: writes the readable buffers after the header, from byte `skip`. */
static int do_write(const struct tsr_blk *blk, const struct iovec *out,
		    unsigned n_out, size_t skip, size_t len, uint64_t off,
		    void *bounce)
{
	size_t done = 0;
	int r;

	if (n_out == 2 && out[0].iov_len == skip)
		return blk->ops->write(blk->ctx, out[1].iov_base, len, off);
	while (done < len) {
		size_t piece = len - done;

		if (piece > TSR_BLK_BOUNCE)
			piece = TSR_BLK_BOUNCE;
		iov_to_buf(out, n_out, skip + done, bounce, piece);
		r = blk->ops->write(blk->ctx, bounce, piece, off + done);
		if (r < 0)
			return r;
		done += piece;
	}
	return 0;
}

/* DISCARD and WRITE_ZEROES: payload of struct virtio_blk_discard_write_zeroes
 * ranges.  Returns a virtio status. */
static int do_ranges(const struct tsr_blk *blk, uint32_t type,
		     const struct iovec *out, unsigned n_out, size_t skip,
		     size_t len)
{
	struct virtio_blk_discard_write_zeroes seg[TSR_BLK_MAX_DISCARD_SEG];
	size_t n = len / sizeof(seg[0]);

	if (len == 0 || len % sizeof(seg[0]) || n > TSR_BLK_MAX_DISCARD_SEG)
		return VIRTIO_BLK_S_IOERR;
	iov_to_buf(out, n_out, skip, seg, len);
	/* Check every range before changing anything. */
	for (size_t i = 0; i < n; i++) {
		uint32_t flags = le32toh(seg[i].flags);
		uint32_t num = le32toh(seg[i].num_sectors);
		uint64_t off;

		if (type == VIRTIO_BLK_T_DISCARD ? flags != 0 :
		    (flags & ~VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP) != 0)
			return VIRTIO_BLK_S_UNSUPP;
		if (num > MAX_RANGE_SECTORS ||
		    check_range(blk, le64toh(seg[i].sector),
				(uint64_t)num * SECTOR, &off) != 0)
			return VIRTIO_BLK_S_IOERR;
	}
	for (size_t i = 0; i < n; i++) {
		uint64_t off = le64toh(seg[i].sector) * SECTOR;
		uint64_t bytes = (uint64_t)le32toh(seg[i].num_sectors) * SECTOR;
		bool unmap = type == VIRTIO_BLK_T_DISCARD ||
			     (le32toh(seg[i].flags) &
			      VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP);
		int r;

		if (bytes == 0)
			continue;
		r = unmap ? blk->ops->discard(blk->ctx, off, bytes)
			  : blk->ops->write_zeroes(blk->ctx, off, bytes);
		if (r < 0)
			return VIRTIO_BLK_S_IOERR;
	}
	return VIRTIO_BLK_S_OK;
}

/* Where the parts of a request are: the shape both tsr_blk_handle and
 * tsr_blk_classify start from. */
struct frame {
	const struct iovec *out, *in;
	unsigned n_out, n_in;     /* n_in without trailing empty iovecs */
	uint8_t *status_p;
	size_t out_len;
	size_t data_len;          /* writable bytes before the status byte */
	bool has_hdr;             /* out_len holds a header: type, sector */
	uint32_t type;
	uint64_t sector;
};

/* false when the request has no writable byte for the status. */
static bool frame_of(const struct iovec *iov, unsigned n_out, unsigned n_in,
		     struct frame *f)
{
	struct virtio_blk_outhdr hdr;

	f->out = iov;
	f->in = iov + n_out;
	f->n_out = n_out;
	f->n_in = n_in;
	/* The status byte: the last byte of the last writable buffer.
	 * Empty iovecs (zero-length descriptors) are skipped. */
	while (f->n_in > 0 && f->in[f->n_in - 1].iov_len == 0)
		f->n_in--;
	if (f->n_in == 0)
		return false;
	f->status_p = (uint8_t *)f->in[f->n_in - 1].iov_base +
		      f->in[f->n_in - 1].iov_len - 1;
	f->data_len = iov_total(f->in, f->n_in) - 1;
	f->out_len = iov_total(f->out, f->n_out);
	f->has_hdr = f->out_len >= sizeof(hdr);
	f->type = 0;
	f->sector = 0;
	if (f->has_hdr) {
		iov_to_buf(f->out, f->n_out, 0, &hdr, sizeof(hdr));
		f->type = le32toh(hdr.type);
		f->sector = le64toh(hdr.sector);
	}
	return true;
}

enum tsr_blk_class tsr_blk_classify(const struct tsr_blk *blk,
				    const struct tsr_vreq *req,
				    struct tsr_blk_rw *ret_rw)
{
	struct frame f;
	uint64_t off;

	/* The same checks as tsr_blk_handle, in the same order: whatever
	 * is not a clean transfer goes to it for its answer. */
	if (!frame_of(req->iov, req->n_out, req->n_in, &f) || !f.has_hdr)
		return TSR_BLK_OTHER;
	switch (f.type) {
	case VIRTIO_BLK_T_IN:
		if (f.out_len != HDR_LEN ||
		    f.data_len == 0 ||
		    check_range(blk, f.sector, f.data_len, &off) != 0)
			return TSR_BLK_OTHER;
		*ret_rw = (struct tsr_blk_rw){
			.write = false, .off = off, .len = f.data_len,
			.iov = f.in, .n_iov = f.n_in, .skip = 0,
			.status = f.status_p,
			.used = (uint32_t)f.data_len + 1,
		};
		return TSR_BLK_RW;
	case VIRTIO_BLK_T_OUT: {
		size_t len = f.out_len - HDR_LEN;

		if (blk->read_only || !blk->ops->write || len == 0 ||
		    check_range(blk, f.sector, len, &off) != 0)
			return TSR_BLK_OTHER;
		*ret_rw = (struct tsr_blk_rw){
			.write = true, .off = off, .len = len,
			.iov = f.out, .n_iov = f.n_out,
			.skip = HDR_LEN,
			.status = f.status_p, .used = 1,
		};
		return TSR_BLK_RW;
	}
	case VIRTIO_BLK_T_FLUSH:
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		return TSR_BLK_ORDERED;
	default:
		return TSR_BLK_OTHER;
	}
}

uint32_t tsr_blk_handle(const struct tsr_blk *blk, const struct tsr_vreq *req,
			void *bounce, int *ret_status)
{
	return tsr_blk_handle_iov(blk, req->iov, req->n_out, req->n_in, bounce,
				  ret_status);
}

uint32_t tsr_blk_handle_iov(const struct tsr_blk *blk, const struct iovec *iov,
			    unsigned n_out, unsigned n_in, void *bounce,
			    int *ret_status)
{
	struct frame f;
	const struct iovec *out, *in;
	size_t out_len, data_len;
	uint8_t *status_p;
	uint32_t type, used = 0;
	uint64_t sector, off;
	int status;

	if (!frame_of(iov, n_out, n_in, &f)) {
		*ret_status = -1;
		return 0;
	}
	out = f.out;
	in = f.in;
	n_out = f.n_out;
	n_in = f.n_in;
	status_p = f.status_p;
	out_len = f.out_len;
	data_len = f.data_len;
	if (!f.has_hdr) {
		status = VIRTIO_BLK_S_IOERR;
		goto done;
	}
	type = f.type;
	sector = f.sector;

	switch (type) {
	case VIRTIO_BLK_T_IN:
		if (out_len != HDR_LEN ||
		    check_range(blk, sector, data_len, &off) != 0) {
			status = VIRTIO_BLK_S_IOERR;
			break;
		}
		/* The data iovecs end where the status byte begins: trim
		 * the last one by a byte (a copy: req is const). */
		{
			struct iovec last = in[n_in - 1];
			int r;

			if (last.iov_len == 1) {
				r = data_len ? do_read(blk, in, n_in - 1,
						       data_len, off, bounce)
					     : 0;
			} else if (n_in == 1) {
				last.iov_len--;
				r = do_read(blk, &last, 1, data_len, off,
					    bounce);
			} else {
				/* Read all but the status byte, using the
				 * cursor's bound (data_len). */
				r = data_len ? do_read(blk, in, n_in, data_len,
						       off, bounce)
					     : 0;
			}
			status = r < 0 ? VIRTIO_BLK_S_IOERR : VIRTIO_BLK_S_OK;
			if (r == 0)
				used = (uint32_t)data_len;
		}
		break;
	case VIRTIO_BLK_T_OUT: {
		size_t len = out_len - HDR_LEN;

		if (blk->read_only || !blk->ops->write ||
		    check_range(blk, sector, len, &off) != 0) {
			status = VIRTIO_BLK_S_IOERR;
			break;
		}
		status = len && do_write(blk, out, n_out,
					 HDR_LEN, len,
					 off, bounce) < 0
				 ? VIRTIO_BLK_S_IOERR : VIRTIO_BLK_S_OK;
		break;
	}
	case VIRTIO_BLK_T_FLUSH:
		status = blk->ops->flush && blk->ops->flush(blk->ctx) < 0
				 ? VIRTIO_BLK_S_IOERR : VIRTIO_BLK_S_OK;
		break;
	case VIRTIO_BLK_T_GET_ID: {
		size_t len = data_len < TSR_BLK_ID_BYTES ? data_len
							 : TSR_BLK_ID_BYTES;

		buf_to_iov(in, n_in, 0, blk->id, len);
		used = (uint32_t)len;
		status = VIRTIO_BLK_S_OK;
		break;
	}
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		if (blk->read_only || !blk->ops->discard ||
		    !blk->ops->write_zeroes) {
			status = VIRTIO_BLK_S_IOERR;
			break;
		}
		status = do_ranges(blk, type, out, n_out, HDR_LEN,
				   out_len - HDR_LEN);
		break;
	default:
		status = VIRTIO_BLK_S_UNSUPP;
		break;
	}
done:
	*status_p = (uint8_t)status;
	*ret_status = status;
	return used + 1;
}
