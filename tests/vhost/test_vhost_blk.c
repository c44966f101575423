/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the virtio-blk request handler and the split-ring walker
 * (vhost/src/blk.c, vring.c) on a fake guest memory: status bytes of each
 * request type, read-only refusal, and malformed rings marked broken.
 */
#include "blk.h"
#include "vring.h"

#include <check.h>
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <linux/virtio_blk.h>
#include <linux/virtio_ring.h>

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

int main(void)
{
	Suite *s = suite_create("vhost_blk");
	TCase *req_tc = tcase_create("requests");
	TCase *ring_tc = tcase_create("malformed rings");
	SRunner *sr;
	int failed;

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
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
