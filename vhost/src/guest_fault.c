/* SPDX-License-Identifier: MIT */
/*
 * The SIGBUS handler for guest memory and its registry (guest_fault.h).
 *
 * Global state, on purpose: a signal handler has no argument, so the
 * regions it must recognise have to be reachable from a global.  The
 * registry is a fixed array of slots read with atomics only (no lock, no
 * allocation: both are forbidden in a handler, and the faulting thread may
 * hold any lock).  Each slot is a seqlock: its writer (watch / unwatch,
 * serialised by the claim flag) makes seq odd, changes the fields, makes
 * it even again; the handler uses a slot only when it read the same even
 * seq before and after the fields.
 *
 * Why a stale read cannot hurt: a region is unwatched only after every
 * thread that touches it was joined (the device's queue threads and
 * store workers), so no fault in it can be in progress then, and its
 * address range is unmapped only after the unwatch.
 */
#include "guest_fault.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

struct slot {
	uint32_t claimed;     /* 0 free, 1 owned by a watch */
	uint32_t seq;         /* odd while the fields change */
	uintptr_t base;
	size_t len;           /* 0: not watching */
	uint32_t *flag;
	int efd;
};

static struct slot slots[TSR_GUEST_FAULT_SLOTS];
static struct sigaction previous;   /* written once, before installing */
static pthread_once_t once = PTHREAD_ONCE_INIT;
static int init_error;

#define LD(p) __atomic_load_n((p), __ATOMIC_RELAXED)
#define ST(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)

/* What would have happened without us. */
static void pass_on(int sig, siginfo_t *si, void *uc)
{
	if (previous.sa_flags & SA_SIGINFO) {
		previous.sa_sigaction(sig, si, uc);
		return;
	}
	if (previous.sa_handler != SIG_DFL && previous.sa_handler != SIG_IGN) {
		previous.sa_handler(sig);
		return;
	}
	/* Default action: for a fault, returning re-executes the access,
	 * which faults again and now kills; a sent signal is raised again
	 * (delivered when the handler returns). */
	signal(sig, SIG_DFL);
	if (si->si_code <= 0)
		raise(sig);
}

/* Finds a watched region holding addr; copies it to *ret. */
static bool find(uintptr_t addr, struct slot *ret)
{
	for (unsigned i = 0; i < TSR_GUEST_FAULT_SLOTS; i++) {
		struct slot *s = &slots[i];
		uint32_t seq = __atomic_load_n(&s->seq, __ATOMIC_ACQUIRE);

		if (seq & 1)
			continue;
		ret->base = LD(&s->base);
		ret->len = LD(&s->len);
		ret->flag = LD(&s->flag);
		ret->efd = LD(&s->efd);
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		if (LD(&s->seq) != seq || ret->len == 0)
			continue;
		if (addr >= ret->base && addr - ret->base < ret->len)
			return true;
	}
	return false;
}

static void on_sigbus(int sig, siginfo_t *si, void *uc)
{
	int saved_errno = errno;
	struct slot s;
	uint64_t one = 1;

	if (si->si_code <= 0 || !find((uintptr_t)si->si_addr, &s)) {
		pass_on(sig, si, uc);
		errno = saved_errno;
		return;
	}
	/* The whole region, not just the page: the device is done with it,
	 * and a hugetlbfs mapping can only be replaced in whole huge pages
	 * (the region's bounds are). */
	if (mmap((void *)s.base, s.len, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1,
		 0) == MAP_FAILED) {
		pass_on(sig, si, uc);
		errno = saved_errno;
		return;
	}
	__atomic_store_n(s.flag, 1, __ATOMIC_RELEASE);
	if (s.efd >= 0) {
		ssize_t n = write(s.efd, &one, sizeof(one));

		(void)n;
	}
	errno = saved_errno;
}

static void install(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_sigbus;
	sa.sa_flags = SA_SIGINFO | SA_RESTART;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGBUS, &sa, &previous) < 0)
		init_error = -errno;
}

int tsr_guest_fault_init(void)
{
	pthread_once(&once, install);
	return init_error;
}

int tsr_guest_fault_watch(void *base, size_t len, uint32_t *flag, int efd)
{
	for (unsigned i = 0; i < TSR_GUEST_FAULT_SLOTS; i++) {
		struct slot *s = &slots[i];
		uint32_t expect = 0;

		if (!__atomic_compare_exchange_n(&s->claimed, &expect, 1, false,
						 __ATOMIC_ACQUIRE,
						 __ATOMIC_RELAXED))
			continue;
		__atomic_fetch_add(&s->seq, 1, __ATOMIC_RELAXED);
		__atomic_thread_fence(__ATOMIC_RELEASE);
		ST(&s->base, (uintptr_t)base);
		ST(&s->flag, flag);
		ST(&s->efd, efd);
		ST(&s->len, len);
		__atomic_fetch_add(&s->seq, 1, __ATOMIC_RELEASE);
		return (int)i + 1;
	}
	return -ENOSPC;
}

void tsr_guest_fault_unwatch(int id)
{
	struct slot *s;

	if (id <= 0 || id > TSR_GUEST_FAULT_SLOTS)
		return;
	s = &slots[id - 1];
	__atomic_fetch_add(&s->seq, 1, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_RELEASE);
	ST(&s->len, 0);
	__atomic_fetch_add(&s->seq, 1, __ATOMIC_RELEASE);
	__atomic_store_n(&s->claimed, 0, __ATOMIC_RELEASE);
}
