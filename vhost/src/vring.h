/* SPDX-License-Identifier: MIT */
/*
 * Guest memory and split virtqueues, as a vhost-user back-end sees them.
 *
 * Everything the guest can write is untrusted: the ring indexes, the
 * descriptors, the indirect tables, the addresses and lengths in them.
 * Every guest address is translated through the memory table with checks
 * that cannot overflow, every chain is bounded, and a ring that breaks the
 * rules is marked broken and not touched again.  No function here touches
 * memory outside the regions of the table.
 */
#ifndef TSR_VHOST_VRING_H
#define TSR_VHOST_VRING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#define TSR_VU_MAX_REGIONS 8        /* VHOST_MEMORY_BASELINE_NREGIONS */
#define TSR_VU_MAX_QUEUE_SIZE 1024  /* largest ring accepted */
/* Most iovecs one request maps to: every descriptor of the longest chain
 * (an indirect table as long as the largest ring) split across two
 * regions. */
#define TSR_VU_MAX_IOV (2 * TSR_VU_MAX_QUEUE_SIZE)

/* One region of guest memory, mapped in this process. */
struct tsr_vu_region {
	uint64_t gpa;      /* guest physical address of the first byte */
	uint64_t size;     /* > 0; gpa + size and uva + size do not overflow */
	uint64_t uva;      /* the front-end's virtual address of it */
	uint8_t *host;     /* our mapping of the first byte */
	void *map_base;    /* what to munmap (NULL: not ours, e.g. fuzzing) */
	size_t map_len;
	int fault_watch;   /* guest_fault.h watch of the mapping, or 0 */
};

/* The memory table.  Changed only while no queue thread runs. */
struct tsr_vu_mem {
	unsigned n;
	struct tsr_vu_region r[TSR_VU_MAX_REGIONS];
};

/* Host address of [uva, uva + len) when it lies inside one region, else
 * NULL.  len may be 0 only if uva is inside a region. */
void *tsr_vu_mem_uva(const struct tsr_vu_mem *m, uint64_t uva, uint64_t len);
/* The same for a guest physical address. */
void *tsr_vu_mem_gpa(const struct tsr_vu_mem *m, uint64_t gpa, uint64_t len);
/* Appends iovecs for [gpa, gpa + len), which may span regions, at
 * iov[*n..max).  0; -EFAULT when a byte is outside every region (or the
 * range wraps); -E2BIG when more than max iovecs would be needed. */
int tsr_vu_mem_gpa_iov(const struct tsr_vu_mem *m, uint64_t gpa, uint64_t len,
		       struct iovec *iov, unsigned max, unsigned *n);
/* Unmaps every region we mapped (ending their fault watches) and empties
 * the table.  No thread may touch the regions any more. */
void tsr_vu_mem_clear(struct tsr_vu_mem *m);

/* One request taken from a ring: iov[0..n_out) the device reads (driver
 * to device), iov[n_out..n_out + n_in) the device writes. */
struct tsr_vreq {
	uint16_t head;
	unsigned n_out, n_in;
	struct iovec iov[TSR_VU_MAX_IOV];
};

struct vring_desc;
struct vring_avail;
struct vring_used;

/* A split virtqueue.  The control thread sets it up while the ring is
 * stopped; while started, only the queue's thread uses it. */
struct tsr_vring {
	const struct tsr_vu_mem *mem;
	uint16_t num;            /* power of two, 1..TSR_VU_MAX_QUEUE_SIZE */
	bool event_idx;          /* VIRTIO_RING_F_EVENT_IDX negotiated */
	int call_fd;             /* eventfd to signal used buffers, or -1 */
	struct vring_desc *desc;
	struct vring_avail *avail;
	struct vring_used *used;
	uint16_t last_avail;     /* next avail entry to take */
	uint16_t used_idx;       /* our copy of used->idx */
	uint16_t signalled_used; /* used_idx at the last call, if valid */
	bool signalled_valid;
	bool pushed;             /* used entries added since the last call */
	bool broken;             /* set once; the ring is not touched again */
	const char *why;         /* what broke it */
	/* Copy of the indirect table being walked: read once, so the guest
	 * cannot change a descriptor between its check and its use. */
	uint8_t indirect[TSR_VU_MAX_QUEUE_SIZE * 16] __attribute__((aligned(16)));
};

/* Points the ring at its three areas (front-end virtual addresses, as in
 * VHOST_USER_SET_VRING_ADDR), checking that each lies inside one region
 * and is aligned.  base is the first avail index to take; the used index
 * is read from the ring.  0 or -EFAULT (vr->why says which area). */
int tsr_vring_start(struct tsr_vring *vr, const struct tsr_vu_mem *mem,
		    uint16_t num, bool event_idx, uint64_t desc_uva,
		    uint64_t avail_uva, uint64_t used_uva, uint16_t base);

/* Takes the next request.  1: *req is filled; 0: the ring is empty;
 * -EBADMSG: the ring is malformed; it is now broken (vr->why says how). */
int tsr_vring_pop(struct tsr_vring *vr, struct tsr_vreq *req);
/* Returns a request to the guest with len bytes written into its
 * device-writable buffers. */
void tsr_vring_push(struct tsr_vring *vr, uint16_t head, uint32_t len);
/* Signals the call eventfd if used entries were pushed since the last
 * signal and the driver asked for it (used_event / NO_INTERRUPT). */
void tsr_vring_notify(struct tsr_vring *vr);
/* Asks the driver to kick when it adds entries (avail_event with
 * EVENT_IDX), then checks again: true when the ring has no entry, so it
 * is safe to sleep until the next kick. */
bool tsr_vring_idle(struct tsr_vring *vr);

#endif /* TSR_VHOST_VRING_H */
