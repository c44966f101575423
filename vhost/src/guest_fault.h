/* SPDX-License-Identifier: MIT */
/*
 * Surviving a front-end that shrinks its guest memory under us.
 *
 * Guest memory is a MAP_SHARED mapping of a file the front-end passed
 * (a memfd, a /dev/shm or hugetlbfs file).  When the front-end truncates
 * it, the next access past the new end raises SIGBUS; the default action
 * kills the process (and, under `tessera serve`, FUSE and the snapshotter
 * with it).  A sealed memfd (F_SEAL_SHRINK) cannot shrink, but QEMU's
 * file-backed memory cannot be sealed, so every mapped region is watched:
 * a SIGBUS whose address lies in a watched region replaces the whole
 * mapping of that region with anonymous zero pages (mmap MAP_FIXED), sets
 * the device's flag, writes its eventfd and returns, so the faulting
 * access completes on the new pages; the device is then reset by its
 * server.  A SIGBUS anywhere else gets the action it had before (the
 * default one: the process dies as it would have).
 *
 * The faulting thread may hold locks (the store's, while it copies into
 * guest memory): the handler takes none and returns, so they are released
 * as usual.  Threads that touch guest memory must not block SIGBUS (a
 * blocked fault signal kills the process): queue.c and blk_pool.c leave it
 * unblocked.
 */
#ifndef TSR_VHOST_GUEST_FAULT_H
#define TSR_VHOST_GUEST_FAULT_H

#include <stddef.h>
#include <stdint.h>

/* Most regions watched at once: TSR_VHOST_MAX_DEVICES-like headroom for
 * the 8 regions of each of many devices in one process. */
#define TSR_GUEST_FAULT_SLOTS 256

/* Installs the SIGBUS handler (once per process; later calls do nothing).
 * 0 or -errno. */
int tsr_guest_fault_init(void);

/* Watches [base, base + len), a mapping of guest memory: on a fault in it
 * *flag is set to 1 and, when efd >= 0, 1 is added to that eventfd.  flag
 * (and efd) must stay valid until tsr_guest_fault_unwatch.  Returns a
 * watch id > 0, or -ENOSPC when every slot is taken. */
int tsr_guest_fault_watch(void *base, size_t len, uint32_t *flag, int efd);

/* Stops watching; call before unmapping, once no thread can touch the
 * mapping any more.  id 0 does nothing. */
void tsr_guest_fault_unwatch(int id);

#endif /* TSR_VHOST_GUEST_FAULT_H */
