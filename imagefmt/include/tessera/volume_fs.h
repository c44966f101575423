/* SPDX-License-Identifier: MIT */
/*
 * Filesystems on volumes: what a raw image (a volume, a layer, a loop
 * device over one) holds, and making one.  Shared by `tessera mount
 * --rootfs`, `tessera volume stat` / `layer stat`, image import and the
 * snapshotter.  Loop devices and mounting are <tessera/mount_stack.h>.
 *
 * Detection uses libblkid's superblock probe (ext4, xfs, btrfs, erofs,
 * swap, LUKS, LVM... whatever libblkid knows).  Partition tables are not
 * looked at: a whole-disk image with a partition table "holds no
 * filesystem".
 *
 * Functions return 0, a negative errno or a TSR_ERR_* code of
 * <tessera/store.h>, like the rest of tessera:
 *  -ENOMEDIUM         no signature found: the image holds no filesystem
 *  TSR_ERR_AMBIGUOUS  more than one signature (e.g. leftovers of an older
 *                     mkfs): libblkid refuses to choose (wipefs(8) lists
 *                     them)
 */
#ifndef TESSERA_VOLUME_FS_H
#define TESSERA_VOLUME_FS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <tessera/store.h> /* TSR_ERR_AMBIGUOUS */

#ifdef __cplusplus
extern "C" {
#endif

/* How far into each end of an image tsr_volume_fs_detect_read() looks.
 * Every superblock libblkid probes for lies in the first or the last MiB. */
#define TSR_VOLUME_FS_PROBE_BYTES (1u << 20)

struct tsr_fs_info {
	char type[32];    /* libblkid's TYPE: "ext4", "xfs", "swap"...; never empty */
	char usage[16];   /* "filesystem", "raid", "crypto" or "other" */
	char uuid[64];    /* "" when the signature carries no UUID */
	char label[256];  /* "" when it carries no label */
};

/* Probes a block device or an image file (opened read-only).  ret is written
 * only on success. */
int tsr_volume_fs_detect(const char *device_or_file, struct tsr_fs_info *ret);

/* Probes an open file descriptor of a block device or of a file whose size
 * is the image's size (read with pread; the offset is not used). */
int tsr_volume_fs_detect_fd(int fd, struct tsr_fs_info *ret);

/* Reads len bytes at off of an image: 0, or a negative errno. */
typedef int (*tsr_volume_fs_read_fn)(void *arg, void *buf, size_t len,
				     uint64_t off);

/* Probes an image of size bytes that is reachable only through read (a
 * volume or a layer of an open store, with tsr_volume_read/tsr_layer_read):
 * its first and last TSR_VOLUME_FS_PROBE_BYTES are copied at their offsets
 * into a sparse memfd of the full size, which is then probed.  Errors of
 * read_fn are returned as they are. */
int tsr_volume_fs_detect_read(uint64_t size, tsr_volume_fs_read_fn read_fn,
			      void *arg, struct tsr_fs_info *ret);

/* Makes an ext4 filesystem on an image file (a volume's file under a FUSE
 * mount): block groups aligned to chunks (stride and stripe width = the
 * chunk size), and an empty root: no lost+found, so an imported image or a
 * snapshot holds exactly what is put there.  label may be NULL.  Runs
 * mkfs.ext4 and debugfs (e2fsprogs); their first line of complaint goes to
 * err.  -ENOEXEC when they are missing. */
int tsr_volume_fs_make(const char *image, uint32_t chunk_size, const char *label,
		       char *err, size_t errlen);

/* FITRIM on a mounted filesystem: its free blocks are discarded, so a
 * layer committed afterwards holds no freed data.  *ret_trimmed (may be
 * NULL) gets the bytes the filesystem reported. */
int tsr_volume_fs_trim(const char *mountpoint, uint64_t *ret_trimmed);

#ifdef __cplusplus
}
#endif
#endif /* TESSERA_VOLUME_FS_H */
