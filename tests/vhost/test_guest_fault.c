/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the SIGBUS handler for guest memory (vhost/src/
 * guest_fault.c): a watched mapping of a file that shrinks under it is
 * replaced by zero pages, its flag and eventfd are set, and the process
 * goes on, also in a thread that blocks every other signal (as queue
 * threads and store workers do); a fault in a mapping nobody watches
 * still gets the action it had before (death, or a sanitizer's report).  Part of test_vhost_blk (see its main).
 */
#include "guest_fault.h"

#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define PAGES 4

static long page;

/* A mapping of PAGES pages of an unsealed temporary file; *ret_fd is
 * the file. */
static uint8_t *map_file(int *ret_fd)
{
	char path[] = "/tmp/tsr-guest-fault-XXXXXX";
	int fd = mkstemp(path);
	uint8_t *p;

	ck_assert_int_ge(fd, 0);
	unlink(path);
	page = sysconf(_SC_PAGESIZE);
	ck_assert_int_eq(ftruncate(fd, PAGES * page), 0);
	p = mmap(NULL, PAGES * page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ck_assert_ptr_ne(p, MAP_FAILED);
	memset(p, 0xab, PAGES * page);
	*ret_fd = fd;
	return p;
}

START_TEST(shrunk_watched_mapping_reads_zeros)
{
	uint32_t flag = 0;
	uint64_t v = 0;
	int fd, efd, id;
	uint8_t *p = map_file(&fd);
	volatile uint8_t *vp = p;

	ck_assert_int_eq(tsr_guest_fault_init(), 0);
	efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	ck_assert_int_ge(efd, 0);
	id = tsr_guest_fault_watch(p, PAGES * page, &flag, efd);
	ck_assert_int_gt(id, 0);
	ck_assert_int_eq(vp[2 * page], 0xab);
	/* The front-end shrinks its file to one page. */
	ck_assert_int_eq(ftruncate(fd, page), 0);
	ck_assert_int_eq(vp[3 * page + 5], 0);      /* faulted, survived */
	ck_assert_uint_eq(__atomic_load_n(&flag, __ATOMIC_ACQUIRE), 1);
	ck_assert_int_eq(read(efd, &v, sizeof(v)), (int)sizeof(v));
	ck_assert_uint_eq(v, 1);
	/* The whole region is zero pages now, writable, and faults no
	 * more. */
	ck_assert_int_eq(vp[0], 0);
	vp[page] = 7;
	ck_assert_int_eq(vp[page], 7);
	ck_assert_int_eq(read(efd, &v, sizeof(v)), -1);
	tsr_guest_fault_unwatch(id);
	munmap(p, PAGES * page);
	close(efd);
	close(fd);
}
END_TEST

struct reader {
	volatile uint8_t *p;
	int value;
};

static void *read_with_signals_blocked(void *arg)
{
	struct reader *r = arg;
	sigset_t all;

	/* What queue.c and blk_pool.c do. */
	sigfillset(&all);
	sigdelset(&all, SIGBUS);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	r->value = r->p[2 * page];
	return NULL;
}

START_TEST(fault_on_a_worker_thread)
{
	uint32_t flag = 0;
	int fd, id;
	uint8_t *p = map_file(&fd);
	struct reader r = { .p = p, .value = -1 };
	pthread_t t;

	ck_assert_int_eq(tsr_guest_fault_init(), 0);
	id = tsr_guest_fault_watch(p, PAGES * page, &flag, -1);
	ck_assert_int_gt(id, 0);
	ck_assert_int_eq(ftruncate(fd, 0), 0);
	ck_assert_int_eq(pthread_create(&t, NULL, read_with_signals_blocked,
					&r), 0);
	pthread_join(t, NULL);
	ck_assert_int_eq(r.value, 0);
	ck_assert_uint_eq(flag, 1);
	tsr_guest_fault_unwatch(id);
	munmap(p, PAGES * page);
	close(fd);
}
END_TEST

START_TEST(fault_outside_guest_memory_still_kills)
{
	int fd, st;
	uint8_t *p = map_file(&fd);
	uint8_t *q;
	uint32_t flag = 0;
	pid_t pid;

	ck_assert_int_eq(tsr_guest_fault_init(), 0);
	/* A watched region elsewhere does not cover this one. */
	q = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
		 -1, 0);
	ck_assert_int_gt(tsr_guest_fault_watch(q, page, &flag, -1), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		volatile uint8_t *vp = p;

		if (ftruncate(fd, 0) < 0)
			_exit(3);
		/* Not reached: the access must not complete. */
		_exit(vp[page] == 0 ? 10 : 11);
	}
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	/* Killed by SIGBUS; or, under AddressSanitizer, whose SIGBUS
	 * handler was there first, its report and exit(1), or abort() with
	 * ASAN_OPTIONS=abort_on_error=1 (as tools/test.sh runs it). */
	ck_assert_msg((WIFSIGNALED(st) && (WTERMSIG(st) == SIGBUS || WTERMSIG(st) == SIGABRT)) ||
		      (WIFEXITED(st) && WEXITSTATUS(st) == 1),
		      "status %#x: the unwatched fault did not kill", st);
	ck_assert_uint_eq(flag, 0);
	munmap(p, PAGES * page);
	close(fd);
}
END_TEST

START_TEST(slots_run_out_and_come_back)
{
	static int ids[TSR_GUEST_FAULT_SLOTS + 1];
	uint32_t flag = 0;
	int n = 0, id;

	while ((id = tsr_guest_fault_watch(&flag, 1, &flag, -1)) > 0)
		ids[n++] = id;
	ck_assert_int_eq(id, -ENOSPC);
	ck_assert_int_le(n, TSR_GUEST_FAULT_SLOTS);
	tsr_guest_fault_unwatch(ids[0]);
	ids[0] = tsr_guest_fault_watch(&flag, 1, &flag, -1);
	ck_assert_int_gt(ids[0], 0);
	for (int i = 0; i < n; i++)
		tsr_guest_fault_unwatch(ids[i]);
}
END_TEST

TCase *guest_fault_tcase(void);

TCase *guest_fault_tcase(void)
{
	TCase *tc = tcase_create("guest memory faults");

	tcase_add_test(tc, shrunk_watched_mapping_reads_zeros);
	tcase_add_test(tc, fault_on_a_worker_thread);
	tcase_add_test(tc, fault_outside_guest_memory_still_kills);
	tcase_add_test(tc, slots_run_out_and_come_back);
	return tc;
}
