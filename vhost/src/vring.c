/* SPDX-License-Identifier: MIT */
/*
 * Guest memory translation and split-virtqueue walking (virtio 1.x, 2.7).
 *
 * Shared-memory accesses go through __atomic loads and stores: the guest
 * writes the same memory concurrently, and every value is read exactly
 * once into a local before it is checked and used.
 */
#include "vring.h"
#include "guest_fault.h"

#include <endian.h>
#include <errno.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include <linux/virtio_ring.h>

/* ---- guest memory ---------------------------------------------------- */

/* Host address of [addr, addr + len) in the region whose base (in the
 * address space base_of selects) contains it, or NULL. */
static void *lookup(const struct tsr_vu_mem *m, uint64_t addr, uint64_t len,
		    bool user)
{
	for (unsigned i = 0; i < m->n; i++) {
		const struct tsr_vu_region *r = &m->r[i];
		uint64_t base = user ? r->uva : r->gpa;
		uint64_t off;

		if (addr < base)
			continue;
		off = addr - base;
		if (off >= r->size)
			continue;
		if (len > r->size - off)
			return NULL;
		return r->host + off;
	}
	return NULL;
}

void *tsr_vu_mem_uva(const struct tsr_vu_mem *m, uint64_t uva, uint64_t len)
{
	return lookup(m, uva, len, true);
}

void *tsr_vu_mem_gpa(const struct tsr_vu_mem *m, uint64_t gpa, uint64_t len)
{
	return lookup(m, gpa, len, false);
}

int tsr_vu_mem_gpa_iov(const struct tsr_vu_mem *m, uint64_t gpa, uint64_t len,
		       struct iovec *iov, unsigned max, unsigned *n)
{
	if (len > UINT64_MAX - gpa)
		return -EFAULT;
	while (len > 0) {
		const struct tsr_vu_region *r = NULL;
		uint64_t off = 0, take;

		for (unsigned i = 0; i < m->n; i++) {
			if (gpa >= m->r[i].gpa &&
			    gpa - m->r[i].gpa < m->r[i].size) {
				r = &m->r[i];
				off = gpa - r->gpa;
				break;
			}
		}
		if (!r)
			return -EFAULT;
		if (*n >= max)
			return -E2BIG;
		take = r->size - off;
		if (take > len)
			take = len;
		iov[*n].iov_base = r->host + off;
		iov[*n].iov_len = take;
		(*n)++;
		gpa += take;
		len -= take;
	}
	return 0;
}

void tsr_vu_mem_clear(struct tsr_vu_mem *m)
{
	for (unsigned i = 0; i < m->n; i++) {
		tsr_guest_fault_unwatch(m->r[i].fault_watch);
		if (m->r[i].map_base)
			munmap(m->r[i].map_base, m->r[i].map_len);
	}
	memset(m, 0, sizeof(*m));
}

/* ---- shared-memory accessors ------------------------------------------- */

static inline uint16_t ld16(const void *p)
{
	return le16toh(__atomic_load_n((const uint16_t *)p, __ATOMIC_RELAXED));
}

static inline uint16_t ld16_acquire(const void *p)
{
	return le16toh(__atomic_load_n((const uint16_t *)p, __ATOMIC_ACQUIRE));
}

static inline void st16(void *p, uint16_t v)
{
	__atomic_store_n((uint16_t *)p, htole16(v), __ATOMIC_RELAXED);
}

static inline void st32(void *p, uint32_t v)
{
	__atomic_store_n((uint32_t *)p, htole32(v), __ATOMIC_RELAXED);
}

/* A descriptor, read once. */
struct desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

static void read_desc(const struct vring_desc *d, struct desc *ret)
{
	ret->addr = le64toh(__atomic_load_n(&d->addr, __ATOMIC_RELAXED));
	ret->len = le32toh(__atomic_load_n(&d->len, __ATOMIC_RELAXED));
	ret->flags = le16toh(__atomic_load_n(&d->flags, __ATOMIC_RELAXED));
	ret->next = le16toh(__atomic_load_n(&d->next, __ATOMIC_RELAXED));
}

/* ---- ring setup ------------------------------------------------------------ */

int tsr_vring_start(struct tsr_vring *vr, const struct tsr_vu_mem *mem,
		    uint16_t num, bool event_idx, uint64_t desc_uva,
		    uint64_t avail_uva, uint64_t used_uva, uint16_t base)
{
	/* Sizes per virtio 1.x 2.7: both rings end with the event field. */
	uint64_t desc_len = 16ull * num;
	uint64_t avail_len = 4 + 2ull * num + 2;
	uint64_t used_len = 4 + 8ull * num + 2;

	vr->broken = false;
	vr->why = NULL;
	if (num == 0 || num > TSR_VU_MAX_QUEUE_SIZE || (num & (num - 1))) {
		vr->why = "ring size is not a power of two up to 1024";
		return -EFAULT;
	}
	if ((desc_uva & 15) || (avail_uva & 1) || (used_uva & 3)) {
		vr->why = "ring areas are misaligned";
		return -EFAULT;
	}
	vr->desc = tsr_vu_mem_uva(mem, desc_uva, desc_len);
	vr->avail = tsr_vu_mem_uva(mem, avail_uva, avail_len);
	vr->used = tsr_vu_mem_uva(mem, used_uva, used_len);
	if (!vr->desc || !vr->avail || !vr->used) {
		vr->why = "ring areas are outside guest memory";
		return -EFAULT;
	}
	/* Our mappings must be aligned too (a region's mmap offset need not
	 * be): the ring fields are accessed atomically. */
	if (((uintptr_t)vr->desc & 15) || ((uintptr_t)vr->avail & 1) ||
	    ((uintptr_t)vr->used & 3)) {
		vr->why = "ring areas are misaligned in our mapping";
		return -EFAULT;
	}
	vr->mem = mem;
	vr->num = num;
	vr->event_idx = event_idx;
	vr->last_avail = base;
	vr->used_idx = ld16(&vr->used->idx);
	vr->signalled_valid = false;
	vr->pushed = false;
	return 0;
}

static int broken(struct tsr_vring *vr, const char *why)
{
	vr->broken = true;
	vr->why = why;
	return -EBADMSG;
}

/* ---- walking a chain ------------------------------------------------------- */

/* Copies the indirect table at [gpa, gpa + len) into vr->indirect.
 * 0 or -EFAULT. */
static int copy_indirect(struct tsr_vring *vr, uint64_t gpa, uint32_t len)
{
	struct iovec iov[TSR_VU_MAX_REGIONS];
	unsigned n = 0;
	size_t done = 0;

	if (tsr_vu_mem_gpa_iov(vr->mem, gpa, len, iov, TSR_VU_MAX_REGIONS,
			       &n) != 0)
		return -EFAULT;
	for (unsigned i = 0; i < n; i++) {
		memcpy(vr->indirect + done, iov[i].iov_base, iov[i].iov_len);
		done += iov[i].iov_len;
	}
	return 0;
}

int tsr_vring_pop(struct tsr_vring *vr, struct tsr_vreq *req)
{
	const struct vring_desc *table = vr->desc;
	unsigned limit = vr->num, count = 0;
	bool in_indirect = false;
	uint16_t avail_idx, head, idx;
	struct desc d;

	if (vr->broken)
		return -EBADMSG;
	avail_idx = ld16_acquire(&vr->avail->idx);
	/* The acquire above orders the reads of the entry and the
	 * descriptors after the read of the index (the driver's wmb). */
	if (avail_idx == vr->last_avail)
		return 0;
	if ((uint16_t)(avail_idx - vr->last_avail) > vr->num)
		return broken(vr, "available index moved by more than the "
			      "ring size");
	head = ld16(&vr->avail->ring[vr->last_avail & (vr->num - 1)]);
	if (head >= vr->num)
		return broken(vr, "available entry is not a descriptor index");

	req->head = head;
	req->n_out = req->n_in = 0;
	idx = head;
	for (;;) {
		/* At most `limit` descriptors: a loop or an over-long chain
		 * ends here. */
		if (count++ >= limit)
			return broken(vr, "descriptor chain longer than its "
				      "table (a loop?)");
		read_desc(&table[idx], &d);
		if (d.flags & VRING_DESC_F_INDIRECT) {
			if (in_indirect)
				return broken(vr, "nested indirect table");
			if (count != 1)
				return broken(vr, "indirect descriptor inside "
					      "a chain");
			if (d.flags & VRING_DESC_F_NEXT)
				return broken(vr, "indirect descriptor with "
					      "NEXT");
			if (d.len == 0 || d.len % 16 ||
			    d.len / 16 > TSR_VU_MAX_QUEUE_SIZE)
				return broken(vr, "bad indirect table length");
			if (copy_indirect(vr, d.addr, d.len) != 0)
				return broken(vr, "indirect table outside "
					      "guest memory");
			table = (const struct vring_desc *)vr->indirect;
			limit = d.len / 16;
			count = 0;
			idx = 0;
			in_indirect = true;
			continue;
		}
		if (d.flags & VRING_DESC_F_WRITE) {
			unsigned n = req->n_out + req->n_in;

			if (tsr_vu_mem_gpa_iov(vr->mem, d.addr, d.len, req->iov,
					       TSR_VU_MAX_IOV, &n) != 0)
				return broken(vr, "descriptor outside guest "
					      "memory");
			req->n_in = n - req->n_out;
		} else {
			if (req->n_in)
				return broken(vr, "readable descriptor after "
					      "a writable one");
			if (tsr_vu_mem_gpa_iov(vr->mem, d.addr, d.len, req->iov,
					       TSR_VU_MAX_IOV,
					       &req->n_out) != 0)
				return broken(vr, "descriptor outside guest "
					      "memory");
		}
		if (!(d.flags & VRING_DESC_F_NEXT))
			break;
		idx = d.next;
		if (idx >= limit)
			return broken(vr, "next descriptor out of the table");
	}
	vr->last_avail++;
	return 1;
}

/* ---- completing ------------------------------------------------------------ */

void tsr_vring_push(struct tsr_vring *vr, uint16_t head, uint32_t len)
{
	struct vring_used_elem *e = &vr->used->ring[vr->used_idx & (vr->num - 1)];

	st32(&e->id, head);
	st32(&e->len, len);
	vr->used_idx++;
	/* Release: the element is visible before the index that
	 * publishes it (the device's wmb of 2.7.8). */
	__atomic_store_n(&vr->used->idx, htole16(vr->used_idx),
			 __ATOMIC_RELEASE);
	vr->pushed = true;
}

void tsr_vring_notify(struct tsr_vring *vr)
{
	bool need;

	if (!vr->pushed || vr->broken)
		return;
	vr->pushed = false;
	/* Full barrier: our store of used->idx is ordered before the load
	 * of used_event / flags, pairing with the driver's barrier between
	 * writing used_event and reading used->idx. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (vr->event_idx) {
		uint16_t ev = ld16(&vr->avail->ring[vr->num]);

		need = !vr->signalled_valid ||
		       vring_need_event(ev, vr->used_idx, vr->signalled_used);
		vr->signalled_used = vr->used_idx;
		vr->signalled_valid = true;
	} else {
		need = !(ld16(&vr->avail->flags) & VRING_AVAIL_F_NO_INTERRUPT);
	}
	if (need && vr->call_fd >= 0)
		(void)eventfd_write(vr->call_fd, 1);
}

bool tsr_vring_idle(struct tsr_vring *vr)
{
	if (vr->broken)
		return true;
	if (vr->event_idx)
		st16(&vr->used->ring[vr->num], vr->last_avail);
	/* Full barrier: avail_event is visible before we look at the
	 * index again, pairing with the driver's barrier between writing
	 * avail->idx and reading avail_event. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return ld16(&vr->avail->idx) == vr->last_avail;
}
