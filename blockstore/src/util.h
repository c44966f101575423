/* SPDX-License-Identifier: MIT */
/*
 * Small helpers of libtessera that know nothing of a store: byte orders,
 * names, whole-length file I/O, directory syncs and growable arrays
 * (util.c).  Nothing outside blockstore/src includes this.
 */
#ifndef TSR_UTIL_H
#define TSR_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

static inline void put_be64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}
static inline uint64_t get_be64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}
static inline void put_be32(uint8_t *p, uint32_t v)
{
	for (int i = 3; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}
static inline uint32_t get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline void put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++, v >>= 8)
		p[i] = (uint8_t)v;
}
static inline uint64_t get_le64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}
static inline void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++, v >>= 8)
		p[i] = (uint8_t)v;
}
static inline uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

bool buf_is_zero(const void *buf, size_t len);
/* 0 for a valid volume / layer name, else -EINVAL. */
int name_check(const char *name);
/* pread/pwrite of exactly len bytes, retrying short transfers and EINTR.
 * pread_full reads past the end of the file as zeros. */
int pread_full(int fd, void *buf, size_t len, uint64_t off);
int pwrite_full(int fd, const void *buf, size_t len, uint64_t off);
/* fsyncs the directory path (relative to dirfd): makes the entries created,
 * renamed or removed in it durable. */
int fsync_dir(int dirfd, const char *path);
uint64_t now_seconds(void);
/* Allocated bytes of path (relative to dirfd); 0 when it cannot be stat'ed. */
uint64_t file_allocated_bytes(int dirfd, const char *path);

/* Makes the array *arrp (a pointer to any element pointer, NULL when
 * empty) hold at least want elements of elem bytes, doubling its capacity
 * *cap; on -ENOMEM the array and *cap are as they were. */
int array_reserve(void *arrp, size_t *cap, size_t want, size_t elem);

#endif /* TSR_UTIL_H */
