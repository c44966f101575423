/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of a running queue (vhost/src/queue.c) with its store worker
 * pool (blk_pool.c), on a fake guest memory and a backing without a map
 * (like a layer: every IN goes to the pool): two store reads run at once
 * on the workers; a FLUSH behind them waits until both finished; a lone
 * read runs on the queue thread itself; stopping the queue waits for the
 * requests in flight.  Part of test_vhost_blk (see its main).
 */
#include "vhost_user.h"

#include <check.h>
#include <endian.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <linux/virtio_blk.h>
#include <linux/virtio_ring.h>

#define GPA 0x10000ull
#define UVA 0x7f0000000000ull
#define MEM_SIZE (64u << 10)
#define NUM 16
#define DISK (1u << 20)
#define AVAIL_OFF (16 * NUM)
#define USED_OFF 512
#define BUF_OFF 4096
#define REQ_STRIDE 8192u   /* header at +0, status at +60, data at +64 */
#define LEN 4096u

static uint8_t *mem_buf, *disk;
static struct tsr_vu_dev *dev;
static struct tsr_blk blk;
static unsigned ndesc, navail;

/* What the backing saw.  The gate holds reads until the test opens it. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static bool gate_open;
static unsigned entered, seq, flushes;
static unsigned read_seq[NUM], flush_seq;
static pthread_t readers[NUM];

static int d_read(void *c, void *b, size_t l, uint64_t o)
{
	(void)c;
	pthread_mutex_lock(&lock);
	readers[entered++ % NUM] = pthread_self();
	pthread_cond_broadcast(&cond);
	while (!gate_open)
		pthread_cond_wait(&cond, &lock);
	pthread_mutex_unlock(&lock);
	memcpy(b, disk + o, l);
	pthread_mutex_lock(&lock);
	read_seq[(o / LEN) % NUM] = ++seq;
	pthread_mutex_unlock(&lock);
	return 0;
}

static int d_flush(void *c)
{
	(void)c;
	pthread_mutex_lock(&lock);
	flushes++;
	flush_seq = ++seq;
	pthread_mutex_unlock(&lock);
	return 0;
}

static const struct tsr_blk_ops ops = { .read = d_read, .flush = d_flush };

static void open_gate(void)
{
	pthread_mutex_lock(&lock);
	gate_open = true;
	pthread_cond_broadcast(&cond);
	pthread_mutex_unlock(&lock);
}

/* Waits (5 s at most) until n reads entered the backing. */
static void wait_entered(unsigned n)
{
	struct timespec t;
	int r = 0;

	clock_gettime(CLOCK_REALTIME, &t);
	t.tv_sec += 5;
	pthread_mutex_lock(&lock);
	while (entered < n && r == 0)
		r = pthread_cond_timedwait(&cond, &lock, &t);
	pthread_mutex_unlock(&lock);
	ck_assert_uint_ge(entered, n);
}

static void log_line(void *arg, const char *line)
{
	(void)arg;
	fprintf(stderr, "vhost: %s\n", line);
}

static void setup(void)
{
	mem_buf = calloc(1, MEM_SIZE);
	disk = malloc(DISK);
	for (unsigned i = 0; i < DISK; i++)
		disk[i] = (uint8_t)(i * 13 + 5);
	blk = (struct tsr_blk){ .ops = &ops, .size = DISK, .blk_size = 512,
		.discard_align = 4096, .read_only = true, .id = "pool" };
	dev = calloc(1, sizeof(*dev));
	tsr_vu_dev_init(dev, &blk, 1);
	dev->log = log_line;
	dev->store_threads = 2;
	dev->mem.n = 1;
	dev->mem.r[0] = (struct tsr_vu_region){ .gpa = GPA, .size = MEM_SIZE,
		.uva = UVA, .host = mem_buf };
	dev->q[0].num = NUM;
	dev->q[0].desc_uva = UVA;
	dev->q[0].avail_uva = UVA + AVAIL_OFF;
	dev->q[0].used_uva = UVA + USED_OFF;
	dev->q[0].kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	dev->q[0].call_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	ck_assert_int_ge(dev->q[0].kick_fd, 0);
	ck_assert_int_ge(dev->q[0].call_fd, 0);
	ndesc = navail = 0;
	gate_open = false;
	entered = seq = flushes = flush_seq = 0;
	memset(read_seq, 0, sizeof(read_seq));
}

static void teardown(void)
{
	tsr_vu_queue_stop(&dev->q[0]);
	close(dev->q[0].kick_fd);
	close(dev->q[0].call_fd);
	tsr_vu_dev_free(dev);
	free(dev);
	free(mem_buf);
	free(disk);
}

static void desc(uint64_t off, uint32_t len, uint16_t flags)
{
	struct vring_desc *d = (struct vring_desc *)mem_buf + ndesc;

	d->addr = htole64(GPA + off);
	d->len = htole32(len);
	d->flags = htole16(flags);
	d->next = htole16((uint16_t)(ndesc + 1));
	ndesc++;
}

/* Request k: IN of LEN bytes at disk offset k * LEN, or a FLUSH; put in
 * the avail ring, not yet published (publish() does). */
static void put(unsigned k, uint32_t type)
{
	uint64_t base = BUF_OFF + k * REQ_STRIDE;
	struct virtio_blk_outhdr h = { .type = htole32(type),
				       .sector = htole64(k * LEN / 512) };
	struct vring_avail *a = (struct vring_avail *)(mem_buf + AVAIL_OFF);
	unsigned head = ndesc;

	memcpy(mem_buf + base, &h, sizeof(h));
	mem_buf[base + 60] = 0xee;
	desc(base, 16, VRING_DESC_F_NEXT);
	if (type == VIRTIO_BLK_T_IN)
		desc(base + 64, LEN, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE);
	desc(base + 60, 1, VRING_DESC_F_WRITE);
	a->ring[navail++ % NUM] = htole16((uint16_t)head);
}

static void publish(bool kick)
{
	struct vring_avail *a = (struct vring_avail *)(mem_buf + AVAIL_OFF);

	__atomic_store_n(&a->idx, htole16((uint16_t)navail), __ATOMIC_RELEASE);
	if (kick)
		ck_assert_int_eq(eventfd_write(dev->q[0].kick_fd, 1), 0);
}

static struct vring_used *used_ring(void)
{
	return (struct vring_used *)(mem_buf + USED_OFF);
}

static uint16_t used_idx(void)
{
	return le16toh(__atomic_load_n(&used_ring()->idx, __ATOMIC_ACQUIRE));
}

/* Waits (5 s at most) until n requests were returned. */
static void wait_used(uint16_t n)
{
	for (int i = 0; i < 500 && used_idx() < n; i++) {
		struct pollfd pfd = { .fd = dev->q[0].call_fd, .events = POLLIN };
		eventfd_t v;

		if (poll(&pfd, 1, 10) > 0)
			(void)eventfd_read(dev->q[0].call_fd, &v);
	}
	ck_assert_uint_eq(used_idx(), n);
}

static void check_read(unsigned k)
{
	uint64_t base = BUF_OFF + k * REQ_STRIDE;

	ck_assert_uint_eq(mem_buf[base + 60], VIRTIO_BLK_S_OK);
	ck_assert_mem_eq(mem_buf + base + 64, disk + k * LEN, LEN);
}

START_TEST(store_reads_run_together_and_flush_waits)
{
	struct vring_used *u = used_ring();

	put(0, VIRTIO_BLK_T_IN);
	put(1, VIRTIO_BLK_T_IN);
	publish(false);
	ck_assert_int_eq(tsr_vu_queue_start(&dev->q[0]), 0);
	/* Both reads are in the backing at once, on workers. */
	wait_entered(2);
	ck_assert(!pthread_equal(readers[0], dev->q[0].thread));
	ck_assert(!pthread_equal(readers[1], dev->q[0].thread));
	ck_assert(!pthread_equal(readers[0], readers[1]));
	/* A FLUSH behind them waits for both. */
	put(2, VIRTIO_BLK_T_FLUSH);
	publish(true);
	usleep(50 * 1000);
	pthread_mutex_lock(&lock);
	ck_assert_uint_eq(flushes, 0);
	pthread_mutex_unlock(&lock);
	ck_assert_uint_eq(used_idx(), 0);
	open_gate();
	wait_used(3);
	ck_assert_uint_eq(flushes, 1);
	ck_assert_uint_gt(flush_seq, read_seq[0]);
	ck_assert_uint_gt(flush_seq, read_seq[1]);
	check_read(0);
	check_read(1);
	ck_assert_uint_eq(mem_buf[BUF_OFF + 2 * REQ_STRIDE + 60],
			  VIRTIO_BLK_S_OK);
	/* The FLUSH (descriptors 6, 7) is returned last. */
	ck_assert_uint_eq(le32toh(u->ring[2].id), 6);
	ck_assert_uint_eq(le32toh(u->ring[2].len), 1);
	ck_assert_uint_eq(le32toh(u->ring[0].len), LEN + 1);
}
END_TEST

START_TEST(lone_store_read_runs_on_the_queue_thread)
{
	open_gate();
	put(0, VIRTIO_BLK_T_IN);
	publish(false);
	ck_assert_int_eq(tsr_vu_queue_start(&dev->q[0]), 0);
	wait_used(1);
	ck_assert(pthread_equal(readers[0], dev->q[0].thread));
	check_read(0);
}
END_TEST

static void *open_later(void *arg)
{
	(void)arg;
	usleep(100 * 1000);
	open_gate();
	return NULL;
}

START_TEST(stop_waits_for_requests_in_flight)
{
	pthread_t t;

	put(0, VIRTIO_BLK_T_IN);
	put(1, VIRTIO_BLK_T_IN);
	put(2, VIRTIO_BLK_T_IN);
	publish(false);
	ck_assert_int_eq(tsr_vu_queue_start(&dev->q[0]), 0);
	wait_entered(2);
	ck_assert_int_eq(pthread_create(&t, NULL, open_later, NULL), 0);
	tsr_vu_queue_stop(&dev->q[0]);
	/* Nothing outstanding once the thread was joined. */
	ck_assert_uint_eq(used_idx(), 3);
	ck_assert_uint_eq(dev->q[0].base, 3);
	pthread_join(t, NULL);
	check_read(0);
	check_read(1);
	check_read(2);
}
END_TEST

START_TEST(without_workers_the_queue_thread_serves_all)
{
	dev->store_threads = 0;
	open_gate();
	put(0, VIRTIO_BLK_T_IN);
	put(1, VIRTIO_BLK_T_IN);
	publish(false);
	ck_assert_int_eq(tsr_vu_queue_start(&dev->q[0]), 0);
	wait_used(2);
	ck_assert(pthread_equal(readers[0], dev->q[0].thread));
	ck_assert(pthread_equal(readers[1], dev->q[0].thread));
	check_read(0);
	check_read(1);
}
END_TEST

TCase *pool_tcase(void);

TCase *pool_tcase(void)
{
	TCase *tc = tcase_create("store workers");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, store_reads_run_together_and_flush_waits);
	tcase_add_test(tc, lone_store_read_runs_on_the_queue_thread);
	tcase_add_test(tc, stop_waits_for_requests_in_flight);
	tcase_add_test(tc, without_workers_the_queue_thread_serves_all);
	return tc;
}
