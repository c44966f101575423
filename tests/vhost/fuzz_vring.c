/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the descriptor-chain walker and the virtio-blk request
 * handler (vhost/src/vring.c, blk.c) on a fake guest memory.
 *
 * Input: byte 0 picks the ring size (1 << (b % 5)), byte 1 bit 0 event
 * index, bit 1 a read-only disk; bytes 2-3 the first avail index; the rest
 * is guest memory, split in two regions (separate allocations of exactly
 * their size, so that AddressSanitizer sees any access outside them).
 * Region A is at guest address 0x1000 and holds the descriptor table, then
 * the avail ring, then the used ring; region B follows it.  The disk is
 * 64 KiB of memory, also exactly allocated.
 */
#include "blk.h"
#include "vring.h"

#include <stdlib.h>
#include <string.h>

#define GPA_BASE 0x1000ull
#define UVA_OFFSET 0x7f0000000000ull
#define DISK_SIZE (64u << 10)

static uint8_t *disk;

static int d_read(void *ctx, void *buf, size_t len, uint64_t off)
{
	(void)ctx;
	if (off > DISK_SIZE || len > DISK_SIZE - off)
		abort();  /* blk.c must have checked */
	memcpy(buf, disk + off, len);
	return 0;
}

static int d_write(void *ctx, const void *buf, size_t len, uint64_t off)
{
	(void)ctx;
	if (off > DISK_SIZE || len > DISK_SIZE - off)
		abort();
	memcpy(disk + off, buf, len);
	return 0;
}

static int d_zero(void *ctx, uint64_t off, uint64_t len)
{
	(void)ctx;
	if (off > DISK_SIZE || len > DISK_SIZE - off)
		abort();
	memset(disk + off, 0, len);
	return 0;
}

static int d_flush(void *ctx)
{
	(void)ctx;
	return 0;
}

static const struct tsr_blk_ops ops = {
	.read = d_read,
	.write = d_write,
	.discard = d_zero,
	.write_zeroes = d_zero,
	.flush = d_flush,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct tsr_vring vr;
	static struct tsr_vreq req;
	static void *bounce;
	struct tsr_vu_mem mem;
	struct tsr_blk blk = {
		.ops = &ops,
		.size = DISK_SIZE,
		.blk_size = 512,
		.discard_align = 4096,
		.id = "fuzz-disk",
	};
	uint16_t num, base;
	uint64_t avail_off, used_off;
	size_t len_a, len_b;
	uint8_t *a, *b;
	bool event_idx;

	if (size < 4)
		return 0;
	if (!disk) {
		disk = calloc(1, DISK_SIZE);
		bounce = malloc(TSR_BLK_BOUNCE);
	}
	num = (uint16_t)(1u << (data[0] % 5));
	event_idx = data[1] & 1;
	blk.read_only = data[1] & 2;
	memcpy(&base, data + 2, 2);
	data += 4;
	size -= 4;
	len_a = size / 2;
	len_b = size - len_a;
	if (len_a == 0 || len_b == 0)
		return 0;
	a = malloc(len_a);
	b = malloc(len_b);
	memcpy(a, data, len_a);
	memcpy(b, data + len_a, len_b);

	memset(&mem, 0, sizeof(mem));
	mem.n = 2;
	mem.r[0] = (struct tsr_vu_region){ .gpa = GPA_BASE, .size = len_a,
		.uva = GPA_BASE + UVA_OFFSET, .host = a };
	mem.r[1] = (struct tsr_vu_region){ .gpa = GPA_BASE + len_a,
		.size = len_b, .uva = GPA_BASE + len_a + UVA_OFFSET,
		.host = b };
	avail_off = 16ull * num;
	used_off = (avail_off + 6 + 2ull * num + 3) & ~3ull;
	vr.call_fd = -1;
	if (tsr_vring_start(&vr, &mem, num, event_idx,
			    GPA_BASE + UVA_OFFSET,
			    GPA_BASE + UVA_OFFSET + avail_off,
			    GPA_BASE + UVA_OFFSET + used_off, base) == 0) {
		/* At most one pass over the ring (plus one to see it end). */
		for (unsigned i = 0; i <= num; i++) {
			int status, r = tsr_vring_pop(&vr, &req);
			uint32_t len;

			if (r <= 0)
				break;
			len = tsr_blk_handle(&blk, &req, bounce, &status);
			tsr_vring_push(&vr, req.head, len);
		}
		tsr_vring_notify(&vr);
		(void)tsr_vring_idle(&vr);
	}
	free(a);
	free(b);
	return 0;
}
