/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the vhost-user message parser and the device's
 * handling of every message (vhost/src/vhost_msg.c, vhost_dev.c).
 *
 * Input: a sequence of records, each one byte giving how many descriptors
 * come with the message (each a memfd of 64 KiB: SET_MEM_TABLE maps them)
 * followed by the message bytes (12-byte header + payload).  Queue
 * threads are not started (no_threads); fuzz_vring covers the rings.
 */
#include "vhost_user.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define MEMFD_SIZE (64 << 10)

static int memfd = -1;

static int sink(void *arg, const void *buf, size_t len)
{
	uint32_t size;

	(void)arg;
	/* A reply is a header with the reply flag and its payload. */
	if (len < VU_HDR_SIZE)
		abort();
	memcpy(&size, (const uint8_t *)buf + 8, 4);
	if (size != len - VU_HDR_SIZE)
		abort();
	return 0;
}

static void quiet(void *arg, const char *line)
{
	(void)arg;
	(void)line;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct tsr_vu_msg msg;
	static const struct tsr_blk_ops ops;  /* never called: no queue runs */
	struct tsr_blk blk = {
		.ops = &ops,
		.size = 1 << 20,
		.blk_size = 512,
		.discard_align = 65536,
		.id = "fuzz",
	};
	struct tsr_vu_dev dev;

	if (memfd < 0) {
		memfd = memfd_create("fuzz-guest", MFD_CLOEXEC);
		if (memfd < 0 || ftruncate(memfd, MEMFD_SIZE) < 0)
			abort();
	}
	memset(&dev, 0, sizeof(dev));
	tsr_vu_dev_init(&dev, &blk, 2);
	dev.send = sink;
	dev.log = quiet;
	dev.no_threads = true;
	while (size > 0) {
		unsigned nfds = data[0] % (VU_MAX_FDS + 1);
		size_t used;

		data++;
		size--;
		if (tsr_vu_msg_parse(data, size, &msg, &used) < 0)
			break;
		data += used;
		size -= used;
		msg.nfds = nfds;
		for (unsigned i = 0; i < nfds; i++)
			msg.fds[i] = dup(memfd);
		if (tsr_vu_dev_handle(&dev, &msg) < 0)
			break;
	}
	tsr_vu_dev_reset(&dev);
	tsr_vu_dev_free(&dev);
	return 0;
}
