/* SPDX-License-Identifier: MIT */
/*
 * Filesystems on volumes: detection with libblkid.
 */
#include <tessera/volume_fs.h>

#include <blkid.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* Copies libblkid's value NAME into buf ("" when the probe has none). */
static void copy_value(blkid_probe pr, const char *name, char *buf,
		       size_t size)
{
	const char *data = NULL;
	size_t len = 0;

	buf[0] = '\0';
	if (blkid_probe_lookup_value(pr, name, &data, &len) == 0 && data)
		snprintf(buf, size, "%s", data);
}

int tsr_volume_fs_detect_fd(int fd, struct tsr_fs_info *ret)
{
	struct tsr_fs_info info;
	blkid_probe pr;
	int r;

	pr = blkid_new_probe();
	if (!pr)
		return -ENOMEM;
	/* The probe reads fd with pread and does not close it. */
	errno = 0;
	if (blkid_probe_set_device(pr, fd, 0, 0) != 0) {
		r = errno ? -errno : -EIO;
		goto out;
	}
	blkid_probe_enable_superblocks(pr, 1);
	blkid_probe_set_superblocks_flags(pr, BLKID_SUBLKS_TYPE |
					  BLKID_SUBLKS_USAGE |
					  BLKID_SUBLKS_UUID |
					  BLKID_SUBLKS_LABEL);
	blkid_probe_enable_partitions(pr, 0);
	errno = 0;
	/* 0 found, 1 nothing found, -2 ambivalent, -1 error (errno). */
	switch (blkid_do_safeprobe(pr)) {
	case 0:
		break;
	case 1:
		r = -ENOMEDIUM;
		goto out;
	case -2:
		r = TSR_ERR_AMBIGUOUS;
		goto out;
	default:
		r = errno ? -errno : -EIO;
		goto out;
	}
	copy_value(pr, "TYPE", info.type, sizeof(info.type));
	copy_value(pr, "USAGE", info.usage, sizeof(info.usage));
	copy_value(pr, "UUID", info.uuid, sizeof(info.uuid));
	copy_value(pr, "LABEL", info.label, sizeof(info.label));
	if (!info.type[0]) {
		r = -ENOMEDIUM;
		goto out;
	}
	if (!info.usage[0])
		snprintf(info.usage, sizeof(info.usage), "other");
	*ret = info;
	r = 0;
out:
	blkid_free_probe(pr);
	return r;
}

int tsr_volume_fs_detect(const char *device_or_file, struct tsr_fs_info *ret)
{
	int fd, r;

	fd = open(device_or_file, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	r = tsr_volume_fs_detect_fd(fd, ret);
	close(fd);
	return r;
}

/* Copies [off, off + len) of the image into fd at the same offset. */
static int copy_range(int fd, tsr_volume_fs_read_fn read_fn,
		      void *arg, void *buf, uint64_t off, uint64_t len)
{
	ssize_t n;
	int r;

	if (len == 0)
		return 0;
	r = read_fn(arg, buf, (size_t)len, off);
	if (r < 0)
		return r;
	for (size_t done = 0; done < len; done += (size_t)n) {
		n = pwrite(fd, (char *)buf + done, (size_t)len - done,
			   (off_t)(off + done));
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO;
	}
	return 0;
}

int tsr_volume_fs_detect_read(uint64_t size, tsr_volume_fs_read_fn read_fn,
			      void *arg, struct tsr_fs_info *ret)
{
	const uint64_t probe = TSR_VOLUME_FS_PROBE_BYTES;
	uint64_t head, tail_off;
	void *buf;
	int fd, r;

	if (size > (uint64_t)INT64_MAX)
		return -EFBIG;
	buf = malloc(probe);
	if (!buf)
		return -ENOMEM;
	fd = memfd_create("tessera-fs-probe", MFD_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		goto out;
	}
	/* Sparse: only the two ends take memory. */
	if (ftruncate(fd, (off_t)size) < 0) {
		r = -errno;
		goto out;
	}
	head = size < probe ? size : probe;
	tail_off = size > 2 * probe ? size - probe : head;
	r = copy_range(fd, read_fn, arg, buf, 0, head);
	if (r == 0)
		r = copy_range(fd, read_fn, arg, buf, tail_off, size - tail_off);
	if (r == 0)
		r = tsr_volume_fs_detect_fd(fd, ret);
out:
	if (fd >= 0)
		close(fd);
	free(buf);
	return r;
}
