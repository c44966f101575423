/* SPDX-License-Identifier: MIT */
/*
 * The pieces `tessera mount` and `tessera umount` put together, and the
 * records that let a later `tessera umount` take them apart:
 *
 *   /run/tessera/mounts/<escaped MNT>   a FUSE daemon's record: its pid, its
 *                                       store and its mountpoint.  Written by
 *                                       the daemon once its mount is live,
 *                                       removed by it when it exits.
 *   /run/tessera/fuse/<store hash>/     the private FUSE mountpoint of
 *                                       `mount --rootfs` for one store, shared
 *                                       by every rootfs stack of that store
 *   /run/tessera/rootfs/<escaped MNT>   a --rootfs stack: the FUSE mount and
 *                                       daemon under it, the image, the loop
 *                                       device, the filesystem type
 *   /run/tessera/rootfs.lock            flock held while a stack goes up or
 *                                       down, so that one stack cannot take
 *                                       the shared FUSE mount away while
 *                                       another attaches to it
 *
 * Records are "key=value" lines, written to a temporary file and renamed
 * into place, so a reader sees a whole record or none.  Paths in them are
 * absolute and hold no newline.  /run is a tmpfs: the records vanish at
 * reboot, with the mounts they describe.
 *
 * Functions return 0 or a negative errno.
 */
#ifndef TESSERA_MOUNT_STACK_H
#define TESSERA_MOUNT_STACK_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define MOUNT_RUN_DIR "/run/tessera"

/* ---- FUSE daemon records --------------------------------------------------- */

struct mount_daemon {
	pid_t pid;
	char store[PATH_MAX];       /* absolute store directory */
	char mountpoint[PATH_MAX];  /* absolute FUSE mountpoint */
};

int mount_daemon_write(const struct mount_daemon *d);
/* -ENOENT when mountpoint has no record. */
int mount_daemon_read(const char *mountpoint, struct mount_daemon *ret);
/* Removes the record of mountpoint when it names pid (pid 0: whatever it
 * names).  0 also when there is none. */
int mount_daemon_remove(const char *mountpoint, pid_t pid);

/* Finds a live daemon serving the store at store_abs (any mountpoint):
 * 0 and its record, or -ENOENT. */
int mount_daemon_find(const char *store_abs, struct mount_daemon *ret);
/* Whether path is a private FUSE mountpoint of `mount --rootfs` (which
 * `tessera umount` of the last stack over it takes down). */
bool mount_fuse_dir_is_private(const char *path);

/* The private FUSE mountpoint of `mount --rootfs` for the store at
 * store_abs: MOUNT_RUN_DIR/fuse/<16 hex digits of a hash of the path>. */
int mount_fuse_dir(const char *store_abs, char *buf, size_t size);

/* ---- processes -------------------------------------------------------------- */

bool mount_pid_alive(pid_t pid);
/* Waits until pid has exited, at most timeout_ms: 0, or -ETIMEDOUT.  A
 * child of the caller is reaped. */
int mount_wait_pid(pid_t pid, int timeout_ms);

/* ---- --rootfs stacks ------------------------------------------------------- */

struct mount_stack {
	char mountpoint[PATH_MAX];  /* where the filesystem is mounted */
	char store[PATH_MAX];
	char fuse_mnt[PATH_MAX];    /* the FUSE mount the image comes from */
	pid_t daemon_pid;           /* the daemon serving fuse_mnt */
	char source[320];           /* "volume:NAME" or "layer:ID" */
	char image[PATH_MAX];       /* the image file, under fuse_mnt */
	char loop_dev[32];          /* "/dev/loopN" */
	char fs_type[32];
	bool read_only;
	bool direct_io;             /* the loop device does direct I/O */
};

int mount_stack_write(const struct mount_stack *s);
/* -ENOENT when mountpoint has no stack record; -EBADMSG for a damaged one. */
int mount_stack_read(const char *mountpoint, struct mount_stack *ret);
int mount_stack_remove(const char *mountpoint);
/* Number of stack records other than the one of mountpoint whose FUSE
 * mount is fuse_mnt, or a negative errno. */
int mount_stack_users(const char *fuse_mnt, const char *mountpoint);

/* Takes the flock of MOUNT_RUN_DIR/rootfs.lock (waiting for it); returns
 * the descriptor holding it, or a negative errno.  A forked child must
 * close it: the lock belongs to the open file, which fork shares. */
int mount_stack_lock(void);

/* ---- loop devices -------------------------------------------------------------- */

/* (Attaching: tsr_volume_fs_loop_attach of <tessera/volume_fs.h>.) */
/* Detaches dev when it is still attached to image (a loop device freed by
 * autoclear may have been reused for something else meanwhile).  0 also
 * when it is no longer attached to image. */
int mount_loop_detach(const char *dev, const char *image);

/* ---- filesystems ------------------------------------------------------------------- */

/* Mounts the filesystem of type fs_type on dev at mountpoint; read-only
 * mounts do not replay a journal (ext3/ext4 "noload", xfs "norecovery"),
 * since the device under them cannot be written. */
int mount_fs(const char *dev, const char *mountpoint, const char *fs_type,
	     bool read_only);

/* An absolute, normalized form of path without resolving its last
 * component through a mount that may be dead (realpath of the parent plus
 * the last name; realpath of path itself when it works). */
int mount_abs_path(const char *path, char *buf, size_t size);

#endif /* TESSERA_MOUNT_STACK_H */
