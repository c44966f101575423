/* SPDX-License-Identifier: MIT */
/* Small helpers: error texts, ids, sizes, names, full-length file I/O,
 * directory syncs, growable arrays. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <tessera/store.h>

#include "util.h"

const char *tsr_strerror(int err)
{
	switch (err) {
	case TSR_ERR_NOT_STORE:
		return "not a tessera store";
	case TSR_ERR_AMBIGUOUS:
		return "ambiguous: more than one candidate matches";
	case TSR_ERR_VERSION:
		return "format version not supported by this tessera";
	}
	switch (-err) {
	case 0:
		return "success";
	case EXFULL:
		return "the store's metadata map is full (open it with a larger map size)";
	case EBADMSG:
		return "a metadata record is malformed (store damaged; run 'tessera fsck')";
	case ESTALE:
		return "volume was committed or removed";
	case EBUSY:
		return "in use";
	case ENOENT:
		return "not found";
	case EEXIST:
		return "already exists";
	default:
		return strerror(-err);
	}
}

void tsr_layer_id_to_hex(const struct tsr_layer_id *id, char *buf)
{
	static const char hex[] = "0123456789abcdef";

	for (int i = 0; i < TSR_DIGEST_LEN; i++) {
		buf[2 * i] = hex[id->bytes[i] >> 4];
		buf[2 * i + 1] = hex[id->bytes[i] & 15];
	}
	buf[TSR_ID_HEX_LEN] = '\0';
}

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int tsr_layer_id_from_hex(const char *hex, struct tsr_layer_id *ret_id)
{
	struct tsr_layer_id id;

	if (strlen(hex) != TSR_ID_HEX_LEN)
		return -EINVAL;
	for (int i = 0; i < TSR_DIGEST_LEN; i++) {
		int hi = hex_value(hex[2 * i]), lo = hex_value(hex[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -EINVAL;
		id.bytes[i] = (uint8_t)(hi << 4 | lo);
	}
	*ret_id = id;
	return 0;
}

bool tsr_layer_id_is_zero(const struct tsr_layer_id *id)
{
	return buf_is_zero(id->bytes, sizeof(id->bytes));
}

int tsr_parse_size(const char *text, uint64_t *ret_size)
{
	uint64_t v = 0;
	const char *p = text;
	unsigned shift = 0;

	if (!text || !*p)
		return -EINVAL;
	for (; *p >= '0' && *p <= '9'; p++) {
		uint64_t digit = (uint64_t)(*p - '0');

		if (v > (UINT64_MAX - digit) / 10)
			return -ERANGE;
		v = v * 10 + digit;
	}
	if (p == text)
		return -EINVAL;
	switch (*p) {
	case '\0':
		break;
	case 'k': case 'K': shift = 10; p++; break;
	case 'm': case 'M': shift = 20; p++; break;
	case 'g': case 'G': shift = 30; p++; break;
	case 't': case 'T': shift = 40; p++; break;
	default:
		return -EINVAL;
	}
	/* Accept "64K", "64KiB" and "64KB" as the same binary multiple. */
	if (shift && (*p == 'i' || *p == 'I'))
		p++;
	if (shift && (*p == 'b' || *p == 'B'))
		p++;
	if (*p)
		return -EINVAL;
	if (shift && v > (UINT64_MAX >> shift))
		return -ERANGE;
	*ret_size = v << shift;
	return 0;
}

bool buf_is_zero(const void *buf, size_t len)
{
	const unsigned char *p = buf;

	/* Check the first 16 bytes, then compare the buffer with itself
	 * shifted by 16: memcmp is vectorised, a byte loop is not. */
	size_t head = len < 16 ? len : 16;
	for (size_t i = 0; i < head; i++)
		if (p[i])
			return false;
	return len <= 16 || memcmp(p, p + 16, len - 16) == 0;
}

int name_check(const char *name)
{
	size_t len;

	if (!name)
		return -EINVAL;
	len = strlen(name);
	if (len == 0 || len > TSR_NAME_MAX)
		return -EINVAL;
	if (!strcmp(name, ".") || !strcmp(name, ".."))
		return -EINVAL;
	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		if (*p == '/' || *p < 0x20 || *p == 0x7f)
			return -EINVAL;
	return 0;
}

int pread_full(int fd, void *buf, size_t len, uint64_t off)
{
	char *p = buf;

	while (len) {
		ssize_t n = pread(fd, p, len, (off_t)off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0) {
			/* Past end of file reads as zeros (sparse tail). */
			memset(p, 0, len);
			return 0;
		}
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

int pwrite_full(int fd, const void *buf, size_t len, uint64_t off)
{
	const char *p = buf;

	while (len) {
		ssize_t n = pwrite(fd, p, len, (off_t)off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

int fsync_dir(int dirfd, const char *path)
{
	int fd = openat(dirfd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int r = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		r = -errno;
	close(fd);
	return r;
}

int array_reserve(void *arrp, size_t *cap, size_t want, size_t elem)
{
	void *arr, *grown;
	size_t n = *cap ? *cap : 16;

	if (want <= *cap)
		return 0;
	while (n < want) {
		if (n > SIZE_MAX / 2)
			return -ENOMEM;
		n *= 2;
	}
	if (n > SIZE_MAX / elem)
		return -ENOMEM;
	/* arrp is a pointer to some T *: read and write it as bytes, so
	 * one helper serves every element type. */
	memcpy(&arr, arrp, sizeof(arr));
	grown = realloc(arr, n * elem);
	if (!grown)
		return -ENOMEM;
	memcpy(arrp, &grown, sizeof(grown));
	*cap = n;
	return 0;
}

uint64_t now_seconds(void)
{
	return (uint64_t)time(NULL);
}

uint64_t file_allocated_bytes(int dirfd, const char *path)
{
	struct stat st;

	if (fstatat(dirfd, path, &st, 0) < 0)
		return 0;
	return (uint64_t)st.st_blocks * 512;
}
