/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the virtio-blk request handler and the split-ring walker
 * (vhost/src/blk.c, vring.c) on a fake guest memory: status bytes of each
 * request type, read-only refusal, and malformed rings marked broken; and
 * of the io_uring path (blk_uring.c) over a memfd: requests in flight
 * together, reads across file and zero extents, short reads at the end of
 * the file, write errors, and what it leaves to the synchronous path.
 * test_vhost_pool.c adds the queue thread with its store workers.
 */
#include "blk.h"
#include "blk_uring.h"
#include "vring.h"

#include <check.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <linux/virtio_blk.h>
#include <linux/virtio_ring.h>

#include "../unit/check_run.h"

#define GPA 0x10000ull
#define UVA 0x7f0000000000ull
#define MEM_SIZE (64u << 10)
#define NUM 8
#define DISK (1u << 20)

/* Guest memory layout: desc table, avail, used, then buffers from 4 KiB. */
#define AVAIL_OFF (16 * NUM)
#define USED_OFF 512
#define BUF_OFF 4096

static uint8_t *mem_buf, *disk;
static struct tsr_vu_mem mem;
static struct tsr_vring *vr;
static struct tsr_vreq *req;
static void *bounce;
static struct tsr_blk blk;
static unsigned ndesc, navail;

static int d_read(void *c, void *b, size_t l, uint64_t o)
{
	(void)c;
	ck_assert_uint_le(o + l, DISK);
	memcpy(b, disk + o, l);
	return 0;
}

static int d_write(void *c, const void *b, size_t l, uint64_t o)
{
	(void)c;
	ck_assert_uint_le(o + l, DISK);
	memcpy(disk + o, b, l);
	return 0;
}

static int d_zero(void *c, uint64_t o, uint64_t l)
{
	(void)c;
	ck_assert_uint_le(o + l, DISK);
	memset(disk + o, 0, l);
	return 0;
}

static int d_flush(void *c)
{
	(void)c;
	return 0;
}

static const struct tsr_blk_ops ops = {
	.read = d_read, .write = d_write, .discard = d_zero,
	.write_zeroes = d_zero, .flush = d_flush,
};

static void setup(void)
{
	mem_buf = calloc(1, MEM_SIZE);
	disk = malloc(DISK);
	for (unsigned i = 0; i < DISK; i++)
		disk[i] = (uint8_t)(i * 7 + 1);
	vr = calloc(1, sizeof(*vr));
	req = calloc(1, sizeof(*req));
	bounce = malloc(TSR_BLK_BOUNCE);
	memset(&mem, 0, sizeof(mem));
	mem.n = 1;
	mem.r[0] = (struct tsr_vu_region){ .gpa = GPA, .size = MEM_SIZE,
		.uva = UVA, .host = mem_buf };
	blk = (struct tsr_blk){ .ops = &ops, .size = DISK, .blk_size = 512,
		.discard_align = 4096, .id = "unit" };
	vr->call_fd = -1;
	ck_assert_int_eq(tsr_vring_start(vr, &mem, NUM, true, UVA,
					 UVA + AVAIL_OFF, UVA + USED_OFF, 0), 0);
	ndesc = navail = 0;
}

static void teardown(void)
{
	free(mem_buf);
	free(disk);
	free(vr);
	free(req);
	free(bounce);
}

/* Adds a descriptor at guest offset off; returns its index. */
static unsigned desc(uint64_t off, uint32_t len, uint16_t flags, uint16_t next)
{
	struct vring_desc *d = (struct vring_desc *)mem_buf + ndesc;

	d->addr = htole64(GPA + off);
	d->len = htole32(len);
	d->flags = htole16(flags);
	d->next = htole16(next);
	return ndesc++;
}

static void avail(unsigned head)
{
	struct vring_avail *a = (struct vring_avail *)(mem_buf + AVAIL_OFF);

	a->ring[navail % NUM] = htole16((uint16_t)head);
	navail++;
	a->idx = htole16((uint16_t)navail);
}

static void put_hdr(uint64_t off, uint32_t type, uint64_t sector)
{
	struct virtio_blk_outhdr h = { .type = htole32(type),
				       .sector = htole64(sector) };

	memcpy(mem_buf + off, &h, sizeof(h));
}

/* A request: header at BUF_OFF, data (len bytes, writable or not) at
 * BUF_OFF + 64, status at BUF_OFF + 60.  Returns the status byte. */
static int run(uint32_t type, uint64_t sector, uint32_t len, bool to_guest,
	       uint32_t *ret_used)
{
	unsigned h;
	int status;

	ndesc = 0;  /* the previous request was completed: reuse the table */
	h = ndesc;
	put_hdr(BUF_OFF, type, sector);
	mem_buf[BUF_OFF + 60] = 0xee;
	desc(BUF_OFF, 16, VRING_DESC_F_NEXT, (uint16_t)(h + 1));
	if (len)
		desc(BUF_OFF + 64, len, VRING_DESC_F_NEXT |
		     (to_guest ? VRING_DESC_F_WRITE : 0), (uint16_t)(h + 2));
	desc(BUF_OFF + 60, 1, VRING_DESC_F_WRITE, 0);
	avail(h);
	ck_assert_int_eq(tsr_vring_pop(vr, req), 1);
	*ret_used = tsr_blk_handle(&blk, req, bounce, &status);
	tsr_vring_push(vr, req->head, *ret_used);
	ck_assert_int_eq(mem_buf[BUF_OFF + 60], status);
	return status;
}

START_TEST(in_reads_the_disk)
{
	uint32_t used;

	ck_assert_int_eq(run(VIRTIO_BLK_T_IN, 8, 4096, true, &used),
			 VIRTIO_BLK_S_OK);
	ck_assert_uint_eq(used, 4097);
	ck_assert_mem_eq(mem_buf + BUF_OFF + 64, disk + 4096, 4096);
	ck_assert_int_eq(tsr_vring_pop(vr, req), 0);
}
END_TEST

START_TEST(out_writes_the_disk)
{
	uint32_t used;

	memset(mem_buf + BUF_OFF + 64, 0x5a, 1024);
	ck_assert_int_eq(run(VIRTIO_BLK_T_OUT, 2, 1024, false, &used),
			 VIRTIO_BLK_S_OK);
	ck_assert_uint_eq(used, 1);
	for (unsigned i = 0; i < 1024; i++)
		ck_assert_uint_eq(disk[1024 + i], 0x5a);
}
END_TEST

START_TEST(read_only_refuses_writes)
{
	uint8_t before[1024];
	uint32_t used;

	blk.read_only = true;
	memcpy(before, disk + 1024, sizeof(before));
	memset(mem_buf + BUF_OFF + 64, 0x5a, 1024);
	ck_assert_int_eq(run(VIRTIO_BLK_T_OUT, 2, 1024, false, &used),
			 VIRTIO_BLK_S_IOERR);
	ck_assert_mem_eq(disk + 1024, before, sizeof(before));
	put_hdr(BUF_OFF + 256, 0, 0);
	ck_assert_int_eq(run(VIRTIO_BLK_T_IN, 2, 1024, true, &used),
			 VIRTIO_BLK_S_OK);
}
END_TEST

START_TEST(out_of_range_and_unaligned_fail)
{
	uint32_t used;

	ck_assert_int_eq(run(VIRTIO_BLK_T_IN, DISK / 512, 512, true, &used),
			 VIRTIO_BLK_S_IOERR);
	ck_assert_int_eq(run(VIRTIO_BLK_T_IN, UINT64_MAX / 256, 512, true,
			     &used), VIRTIO_BLK_S_IOERR);
	ck_assert_int_eq(run(VIRTIO_BLK_T_OUT, 0, 100, false, &used),
			 VIRTIO_BLK_S_IOERR);
}
END_TEST

START_TEST(flush_get_id_and_unknown)
{
	uint32_t used;

	ck_assert_int_eq(run(VIRTIO_BLK_T_FLUSH, 0, 0, false, &used),
			 VIRTIO_BLK_S_OK);
	ck_assert_int_eq(run(VIRTIO_BLK_T_GET_ID, 0, 20, true, &used),
			 VIRTIO_BLK_S_OK);
	ck_assert_uint_eq(used, 21);
	ck_assert_str_eq((char *)mem_buf + BUF_OFF + 64, "unit");
	ck_assert_int_eq(run(42, 0, 0, false, &used), VIRTIO_BLK_S_UNSUPP);
}
END_TEST

START_TEST(discard_and_write_zeroes)
{
	struct virtio_blk_discard_write_zeroes seg = {
		.sector = htole64(16), .num_sectors = htole32(8),
	};
	uint32_t used;

	memcpy(mem_buf + BUF_OFF + 64, &seg, sizeof(seg));
	ck_assert_int_eq(run(VIRTIO_BLK_T_DISCARD, 0, sizeof(seg), false,
			     &used), VIRTIO_BLK_S_OK);
	for (unsigned i = 0; i < 4096; i++)
		ck_assert_uint_eq(disk[8192 + i], 0);
	seg.flags = htole32(1);  /* UNMAP: not valid for DISCARD */
	memcpy(mem_buf + BUF_OFF + 64, &seg, sizeof(seg));
	ck_assert_int_eq(run(VIRTIO_BLK_T_DISCARD, 0, sizeof(seg), false,
			     &used), VIRTIO_BLK_S_UNSUPP);
	seg.sector = htole64(32);
	memcpy(mem_buf + BUF_OFF + 64, &seg, sizeof(seg));
	ck_assert_int_eq(run(VIRTIO_BLK_T_WRITE_ZEROES, 0, sizeof(seg), false,
			     &used), VIRTIO_BLK_S_OK);
	ck_assert_uint_eq(disk[16384], 0);
	seg.sector = htole64(DISK / 512 - 4);
	memcpy(mem_buf + BUF_OFF + 64, &seg, sizeof(seg));
	ck_assert_int_eq(run(VIRTIO_BLK_T_WRITE_ZEROES, 0, sizeof(seg), false,
			     &used), VIRTIO_BLK_S_IOERR);
	ck_assert_int_eq(run(VIRTIO_BLK_T_DISCARD, 0, 7, false, &used),
			 VIRTIO_BLK_S_IOERR);
}
END_TEST

START_TEST(indirect_and_split_header)
{
	struct vring_desc *t = (struct vring_desc *)(mem_buf + 8192);
	int status;

	put_hdr(BUF_OFF, VIRTIO_BLK_T_IN, 1);
	/* The header in two pieces, data, status: all in an indirect table. */
	t[0] = (struct vring_desc){ htole64(GPA + BUF_OFF), htole32(6),
				    htole16(VRING_DESC_F_NEXT), htole16(1) };
	t[1] = (struct vring_desc){ htole64(GPA + BUF_OFF + 6), htole32(10),
				    htole16(VRING_DESC_F_NEXT), htole16(2) };
	t[2] = (struct vring_desc){ htole64(GPA + BUF_OFF + 64), htole32(512),
				    htole16(VRING_DESC_F_NEXT |
					    VRING_DESC_F_WRITE), htole16(3) };
	t[3] = (struct vring_desc){ htole64(GPA + BUF_OFF + 60), htole32(1),
				    htole16(VRING_DESC_F_WRITE), 0 };
	avail(desc(8192, 4 * 16, VRING_DESC_F_INDIRECT, 0));
	ck_assert_int_eq(tsr_vring_pop(vr, req), 1);
	ck_assert_uint_eq(tsr_blk_handle(&blk, req, bounce, &status), 513);
	ck_assert_int_eq(status, VIRTIO_BLK_S_OK);
	ck_assert_mem_eq(mem_buf + BUF_OFF + 64, disk + 512, 512);
}
END_TEST

/* ---- malformed rings ---------------------------------------------------- */

START_TEST(descriptor_loop_breaks_the_ring)
{
	desc(BUF_OFF, 16, VRING_DESC_F_NEXT, 1);
	desc(BUF_OFF + 60, 1, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 0);
	avail(0);
	ck_assert_int_eq(tsr_vring_pop(vr, req), -EBADMSG);
	ck_assert(vr->broken);
	/* Broken stays broken: nothing more is read. */
	ck_assert_int_eq(tsr_vring_pop(vr, req), -EBADMSG);
}
END_TEST

START_TEST(bad_next_breaks_the_ring)
{
	desc(BUF_OFF, 16, VRING_DESC_F_NEXT, NUM);
	avail(0);
	ck_assert_int_eq(tsr_vring_pop(vr, req), -EBADMSG);
}
END_TEST

START_TEST(address_outside_memory_breaks_the_ring)
{
	desc(MEM_SIZE - 8, 16, 0, 0);  /* straddles the region's end */
	avail(0);
	ck_assert_int_eq(tsr_vring_pop(vr, req), -EBADMSG);
}
END_TEST

START_TEST(wrapping_address_breaks_the_ring)
{
	struct vring_desc *d = (struct vring_desc *)mem_buf;

	desc(0, 16, 0, 0);
	d->addr = htole64(UINT64_MAX - 4);
	avail(0);
	ck_assert_int_eq(tsr_vring_pop(vr, req), -EBADMSG);
}
END_TEST

START_TEST(nested_indirect_breaks_the_ring)
{
	struct vring_desc *t = (struct vring_desc *)(mem_buf + 8192);

	t[0] = (struct vring_desc){ htole64(GPA + 8192), htole32(16),
				    htole16(VRING_DESC_F_INDIRECT), 0 };
	avail(desc(8192, 16, VRING_DESC_F_INDIRECT, 0));
	ck_assert_int_eq(tsr_vring_pop(vr, req), -EBADMSG);
}
END_TEST

START_TEST(avail_index_jump_breaks_the_ring)
{
	struct vring_avail *a = (struct vring_avail *)(mem_buf + AVAIL_OFF);

	a->idx = htole16(NUM + 1);
	ck_assert_int_eq(tsr_vring_pop(vr, req), -EBADMSG);
}
END_TEST

START_TEST(readable_after_writable_breaks_the_ring)
{
	desc(BUF_OFF + 60, 1, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 1);
	desc(BUF_OFF, 16, 0, 0);
	avail(0);
	ck_assert_int_eq(tsr_vring_pop(vr, req), -EBADMSG);
}
END_TEST

START_TEST(rings_outside_memory_are_refused)
{
	ck_assert_int_eq(tsr_vring_start(vr, &mem, NUM, true, UVA + MEM_SIZE - 64,
					 UVA + AVAIL_OFF, UVA + USED_OFF, 0),
			 -EFAULT);
	ck_assert_int_eq(tsr_vring_start(vr, &mem, 3, true, UVA,
					 UVA + AVAIL_OFF, UVA + USED_OFF, 0),
			 -EFAULT);
	ck_assert_int_eq(tsr_vring_start(vr, &mem, NUM, true, UVA + 8,
					 UVA + AVAIL_OFF, UVA + USED_OFF, 0),
			 -EFAULT);
}
END_TEST

START_TEST(no_status_byte_gets_no_status)
{
	int status;

	put_hdr(BUF_OFF, VIRTIO_BLK_T_FLUSH, 0);
	avail(desc(BUF_OFF, 16, 0, 0));
	ck_assert_int_eq(tsr_vring_pop(vr, req), 1);
	ck_assert_uint_eq(tsr_blk_handle(&blk, req, bounce, &status), 0);
	ck_assert_int_eq(status, -1);
}
END_TEST

/* ---- the io_uring path -------------------------------------------------- */

/* The disk as the map describes it: [0, DISK/2) is in file_fd at the same
 * offset (FILE), [DISK/2, 3/4 DISK) reads as zeros (ZERO; STORE for
 * writes), the rest only the "store" can serve (STORE). */
static int file_fd = -1;
static int map_fd = -1;        /* the fd FILE extents name */

static enum tsr_extent_kind kind_at(uint64_t off, bool for_write)
{
	if (off < DISK / 2)
		return TSR_EXTENT_FILE;
	if (off < DISK / 4 * 3)
		return for_write ? TSR_EXTENT_STORE : TSR_EXTENT_ZERO;
	return TSR_EXTENT_STORE;
}

static int d_map(void *c, uint64_t off, uint64_t len, bool for_write,
		 struct tsr_volume_extent *ext, unsigned max, unsigned *ret_n)
{
	static const uint64_t bounds[] = { DISK / 2, DISK / 4 * 3, DISK };
	unsigned n = 0;

	(void)c;
	ck_assert_uint_le(off + len, DISK);
	while (len > 0) {
		uint64_t end = 0, piece;
		enum tsr_extent_kind k = kind_at(off, for_write);

		for (unsigned i = 0; i < 3 && !end; i++)
			if (off < bounds[i])
				end = bounds[i];
		piece = end - off < len ? end - off : len;
		if (n && ext[n - 1].kind == k) {
			ext[n - 1].len += piece;
		} else {
			if (n == max)
				break;
			ext[n++] = (struct tsr_volume_extent){
				.off = off, .len = piece, .kind = k,
				.fd = k == TSR_EXTENT_FILE ? map_fd : -1,
				.file_off = k == TSR_EXTENT_FILE ? off : 0,
			};
		}
		off += piece;
		len -= piece;
	}
	*ret_n = n;
	return 0;
}

static const struct tsr_blk_ops map_ops = {
	.read = d_read, .write = d_write, .discard = d_zero,
	.write_zeroes = d_zero, .flush = d_flush, .map = d_map,
};

struct done_rec {
	uint16_t head;
	uint32_t used;
	int status;
};
static struct done_rec done_log[NUM];
static unsigned ndone;

static void on_done(void *arg, uint16_t head, uint32_t used, int status)
{
	(void)arg;
	ck_assert_uint_lt(ndone, NUM);
	done_log[ndone++] = (struct done_rec){ head, used, status };
}

static struct tsr_blk_uring *ring;

static void uring_setup(void)
{
	setup();
	blk.ops = &map_ops;
	file_fd = memfd_create("vhost-blk-test", MFD_CLOEXEC);
	ck_assert_int_ge(file_fd, 0);
	ck_assert_int_eq(pwrite(file_fd, disk, DISK / 2, 0), DISK / 2);
	map_fd = file_fd;
	ndone = 0;
	ring = NULL;
}

static void uring_teardown(void)
{
	tsr_blk_uring_free(ring);
	close(file_fd);
	teardown();
}

/* The ring, or false (test skipped, with the reason) where the kernel
 * refuses io_uring. */
static bool uring_up(void)
{
	int r = tsr_blk_uring_new(&blk, NUM, on_done, NULL, &ring);

	if (r == -ENOSYS || r == -EPERM || r == -EACCES) {
		fprintf(stderr, "SKIP: io_uring unavailable: %s\n",
			strerror(-r));
		ring = NULL;
		return false;
	}
	ck_assert_int_eq(r, 0);
	return true;
}

#define REQ_STRIDE (12u << 10)

static uint8_t *req_base(unsigned k)
{
	return mem_buf + BUF_OFF + k * REQ_STRIDE;
}

/* Request k (descriptors 2k and 2k+1, buffers at req_base(k)): a header,
 * then len data bytes right after it, then the status byte.  IN: the data
 * and status in one writable descriptor; OUT: header and data in one
 * readable one.  Pops it and classifies it into *rw. */
static enum tsr_blk_class put_req(unsigned k, uint32_t type, uint64_t off,
				  uint32_t len, struct tsr_blk_rw *rw)
{
	uint64_t base = BUF_OFF + k * REQ_STRIDE;
	bool in = type == VIRTIO_BLK_T_IN;

	ndesc = 2 * k;
	put_hdr(base, type, off / 512);
	req_base(k)[16 + len] = 0xee;
	if (in) {
		desc(base, 16, VRING_DESC_F_NEXT, (uint16_t)(2 * k + 1));
		desc(base + 16, len + 1, VRING_DESC_F_WRITE, 0);
	} else {
		desc(base, 16 + len, VRING_DESC_F_NEXT, (uint16_t)(2 * k + 1));
		desc(base + 16 + len, 1, VRING_DESC_F_WRITE, 0);
	}
	avail(2 * k);
	ck_assert_int_eq(tsr_vring_pop(vr, req), 1);
	ck_assert_uint_eq(req->head, 2 * k);
	return tsr_blk_classify(&blk, req, rw);
}

static const struct done_rec *done_of(unsigned k)
{
	for (unsigned i = 0; i < ndone; i++)
		if (done_log[i].head == 2 * k)
			return &done_log[i];
	ck_abort_msg("request %u did not finish", k);
	return NULL;
}

START_TEST(uring_serves_requests_in_flight_together)
{
	struct tsr_blk_rw rw;
	uint8_t got[4096];

	if (!uring_up())
		return;
	/* 0: a read of the file; 1: a read across the file's end into the
	 * zero range; 2: a write of the file; 3: a read of a STORE range */
	ck_assert_int_eq(put_req(0, VIRTIO_BLK_T_IN, 8192, 4096, &rw),
			 TSR_BLK_RW);
	ck_assert_int_eq(tsr_blk_uring_start(ring, &rw, req->head), 1);
	memset(req_base(1) + 16, 0xcc, 8192);
	ck_assert_int_eq(put_req(1, VIRTIO_BLK_T_IN, DISK / 2 - 2048, 8192,
				 &rw), TSR_BLK_RW);
	ck_assert_int_eq(tsr_blk_uring_start(ring, &rw, req->head), 1);
	memset(req_base(2) + 16, 0x77, 4096);
	ck_assert_int_eq(put_req(2, VIRTIO_BLK_T_OUT, 65536, 4096, &rw),
			 TSR_BLK_RW);
	ck_assert_int_eq(tsr_blk_uring_start(ring, &rw, req->head), 1);
	ck_assert_int_eq(put_req(3, VIRTIO_BLK_T_IN, DISK - 4096, 4096, &rw),
			 TSR_BLK_RW);
	ck_assert_int_eq(tsr_blk_uring_start(ring, &rw, req->head), 0);
	ck_assert_uint_eq(tsr_blk_uring_inflight(ring), 3);
	tsr_blk_uring_drain(ring);
	ck_assert_uint_eq(tsr_blk_uring_inflight(ring), 0);
	ck_assert_uint_eq(ndone, 3);

	ck_assert_int_eq(done_of(0)->status, VIRTIO_BLK_S_OK);
	ck_assert_uint_eq(done_of(0)->used, 4097);
	ck_assert_uint_eq(req_base(0)[16 + 4096], VIRTIO_BLK_S_OK);
	ck_assert_mem_eq(req_base(0) + 16, disk + 8192, 4096);

	ck_assert_int_eq(done_of(1)->status, VIRTIO_BLK_S_OK);
	ck_assert_uint_eq(done_of(1)->used, 8193);
	ck_assert_mem_eq(req_base(1) + 16, disk + DISK / 2 - 2048, 2048);
	for (unsigned i = 2048; i < 8192; i++)
		ck_assert_uint_eq(req_base(1)[16 + i], 0);
	ck_assert_uint_eq(req_base(1)[16 + 8192], VIRTIO_BLK_S_OK);

	ck_assert_int_eq(done_of(2)->status, VIRTIO_BLK_S_OK);
	ck_assert_uint_eq(done_of(2)->used, 1);
	ck_assert_int_eq(pread(file_fd, got, 4096, 65536), 4096);
	for (unsigned i = 0; i < 4096; i++)
		ck_assert_uint_eq(got[i], 0x77);
	/* the slots came back: as many requests fit again */
	ck_assert(tsr_blk_uring_has_room(ring));
}
END_TEST

START_TEST(uring_read_past_end_of_file_reads_zeros)
{
	struct tsr_blk_rw rw;

	if (!uring_up())
		return;
	/* The file ends 1 KiB into the request: a short read, then none. */
	ck_assert_int_eq(ftruncate(file_fd, DISK / 4), 0);
	memset(req_base(0) + 16, 0xcc, 4096);
	ck_assert_int_eq(put_req(0, VIRTIO_BLK_T_IN, DISK / 4 - 1024, 4096,
				 &rw), TSR_BLK_RW);
	ck_assert_int_eq(tsr_blk_uring_start(ring, &rw, req->head), 1);
	tsr_blk_uring_drain(ring);
	ck_assert_uint_eq(ndone, 1);
	ck_assert_int_eq(done_log[0].status, VIRTIO_BLK_S_OK);
	ck_assert_mem_eq(req_base(0) + 16, disk + DISK / 4 - 1024, 1024);
	for (unsigned i = 1024; i < 4096; i++)
		ck_assert_uint_eq(req_base(0)[16 + i], 0);
}
END_TEST

START_TEST(uring_write_error_is_ioerr)
{
	struct tsr_blk_rw rw;
	char path[64];

	if (!uring_up())
		return;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", file_fd);
	map_fd = open(path, O_RDONLY | O_CLOEXEC);
	ck_assert_int_ge(map_fd, 0);
	ck_assert_int_eq(put_req(0, VIRTIO_BLK_T_OUT, 0, 4096, &rw),
			 TSR_BLK_RW);
	ck_assert_int_eq(tsr_blk_uring_start(ring, &rw, req->head), 1);
	tsr_blk_uring_drain(ring);
	ck_assert_uint_eq(ndone, 1);
	ck_assert_int_eq(done_log[0].status, VIRTIO_BLK_S_IOERR);
	ck_assert_uint_eq(done_log[0].used, 1);
	ck_assert_uint_eq(req_base(0)[16 + 4096], VIRTIO_BLK_S_IOERR);
	close(map_fd);
}
END_TEST

START_TEST(uring_leaves_the_rest_to_the_synchronous_path)
{
	struct tsr_blk_rw rw;

	if (!uring_up())
		return;
	/* a write to a range that is not FILE; an all-zero read */
	ck_assert_int_eq(put_req(0, VIRTIO_BLK_T_OUT, DISK / 2, 4096, &rw),
			 TSR_BLK_RW);
	ck_assert_int_eq(tsr_blk_uring_start(ring, &rw, req->head), 0);
	ck_assert_int_eq(put_req(1, VIRTIO_BLK_T_IN, DISK / 2, 4096, &rw),
			 TSR_BLK_RW);
	ck_assert_int_eq(tsr_blk_uring_start(ring, &rw, req->head), 0);
	ck_assert_uint_eq(tsr_blk_uring_inflight(ring), 0);
	/* ordered and other requests are classified so */
	ck_assert_int_eq(put_req(2, VIRTIO_BLK_T_FLUSH, 0, 0, &rw),
			 TSR_BLK_ORDERED);
	ck_assert_int_eq(put_req(3, VIRTIO_BLK_T_IN, DISK, 4096, &rw),
			 TSR_BLK_OTHER);
	blk.read_only = true;
	ck_assert_int_eq(put_req(0, VIRTIO_BLK_T_OUT, 0, 4096, &rw),
			 TSR_BLK_OTHER);
	ck_assert_uint_eq(ndone, 0);
}
END_TEST

/* test_vhost_pool.c: a running queue with its store workers. */
TCase *pool_tcase(void);
/* test_guest_fault.c: the SIGBUS handler for guest memory. */
TCase *guest_fault_tcase(void);

int main(void)
{
	Suite *s = suite_create("vhost_blk");
	TCase *req_tc = tcase_create("requests");
	TCase *ring_tc = tcase_create("malformed rings");
	TCase *uring_tc = tcase_create("io_uring");

	tcase_add_checked_fixture(req_tc, setup, teardown);
	tcase_add_test(req_tc, in_reads_the_disk);
	tcase_add_test(req_tc, out_writes_the_disk);
	tcase_add_test(req_tc, read_only_refuses_writes);
	tcase_add_test(req_tc, out_of_range_and_unaligned_fail);
	tcase_add_test(req_tc, flush_get_id_and_unknown);
	tcase_add_test(req_tc, discard_and_write_zeroes);
	tcase_add_test(req_tc, indirect_and_split_header);
	tcase_add_test(req_tc, no_status_byte_gets_no_status);
	suite_add_tcase(s, req_tc);
	tcase_add_checked_fixture(ring_tc, setup, teardown);
	tcase_add_test(ring_tc, descriptor_loop_breaks_the_ring);
	tcase_add_test(ring_tc, bad_next_breaks_the_ring);
	tcase_add_test(ring_tc, address_outside_memory_breaks_the_ring);
	tcase_add_test(ring_tc, wrapping_address_breaks_the_ring);
	tcase_add_test(ring_tc, nested_indirect_breaks_the_ring);
	tcase_add_test(ring_tc, avail_index_jump_breaks_the_ring);
	tcase_add_test(ring_tc, readable_after_writable_breaks_the_ring);
	tcase_add_test(ring_tc, rings_outside_memory_are_refused);
	suite_add_tcase(s, ring_tc);
	tcase_add_checked_fixture(uring_tc, uring_setup, uring_teardown);
	tcase_add_test(uring_tc, uring_serves_requests_in_flight_together);
	tcase_add_test(uring_tc, uring_read_past_end_of_file_reads_zeros);
	tcase_add_test(uring_tc, uring_write_error_is_ioerr);
	tcase_add_test(uring_tc, uring_leaves_the_rest_to_the_synchronous_path);
	suite_add_tcase(s, uring_tc);
	suite_add_tcase(s, pool_tcase());
	suite_add_tcase(s, guest_fault_tcase());
	return tsr_run_suite(s);
}
