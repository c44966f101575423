/* SPDX-License-Identifier: MIT */
/*
 * The mount stack: an image file (a volume or layer under a FUSE mount of
 * the store) -> a loop device -> its filesystem -> a mountpoint, and the
 * records under /run/tessera that let a later command take a stack apart.
 * Shared by `tessera mount --rootfs` / `tessera umount`, `tessera image
 * import` and the containerd snapshotter, so that a filesystem is attached
 * and mounted one way, with options chosen in one place
 * (tsr_mount_options).
 *
 *   loop devices         mount_loop.c     attach (LOOP_CONFIGURE), detach
 *   freezing             mount_freeze.c   the device of an image, its
 *                                         mountpoint, FIFREEZE / FITHAW
 *   filesystem mounts    mount_fs.c       options, mount(2), unmount with
 *                                         busy retries, mountpoint paths
 *   records, processes   mount_records.c  the files under TSR_MOUNT_RUN_DIR
 *                        mount_process.c  whether a recorded daemon lives
 *   stacks               mount_stack.c    an image's filesystem mounted and
 *                                         unmounted; a --rootfs stack up
 *                                         and down
 *
 * The records:
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
 * Functions return 0 or a negative errno and print nothing; the stack
 * functions also say which step failed (enum tsr_mount_step), for the
 * caller's message.
 */
#ifndef TESSERA_MOUNT_STACK_H
#define TESSERA_MOUNT_STACK_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <tessera/volume_fs.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TSR_MOUNT_RUN_DIR "/run/tessera"

/* ---- mount options (mount_fs.c) --------------------------------------------- */

/* What a mount is for; tsr_mount_options turns it into options. */
enum tsr_mount_flags {
	TSR_MOUNT_READ_ONLY = 1u << 0,  /* the device under it is read-only */
	/* Setuid bits and device nodes of the image take effect (no nosuid,
	 * nodev).  For mounts handed to a container runtime (the
	 * snapshotter's Mounts: the runtime confines them, as on overlayfs)
	 * and for a user's explicit `mount --rootfs --suid-dev`; every other
	 * mount of image or volume content is nosuid,nodev. */
	TSR_MOUNT_SUID_DEV = 1u << 1,
	/* Any filesystem type the kernel knows, not only those of
	 * TSR_MOUNT_FS_ALLOWED (`mount --rootfs --any-fs`). */
	TSR_MOUNT_ANY_FS = 1u << 2,
};

/* The filesystem types tessera mounts from image or volume content
 * without TSR_MOUNT_ANY_FS: the ones it makes and the ones `mount --rootfs`
 * has served (the ext4 and xfs drivers).  An image's bytes reach the
 * kernel's parser of its type; every other driver stays out of reach. */
#define TSR_MOUNT_FS_ALLOWED "ext2, ext3, ext4, xfs"

/* tsr_mount_options' refusal of a filesystem type outside
 * TSR_MOUNT_FS_ALLOWED (outside the errno range, like store.h's codes). */
#define TSR_ERR_FS_NOT_ALLOWED (-4110)

#define TSR_MOUNT_OPTIONS_MAX 8
#define TSR_MOUNT_DATA_MAX 128

/*
 * One mount's options, in the two forms they are handed on in.  Both come
 * from one table, so they agree by construction:
 *   ms_flags + data   for mount(2) ("noinit_itable", or "" for none)
 *   list              the same as a mount(8) / containerd option list:
 *                     "rw" or "ro" first, then the filesystem's ones
 *                     ("noinit_itable"); static strings, valid forever
 */
struct tsr_mount_options {
	unsigned long ms_flags;
	char data[TSR_MOUNT_DATA_MAX];
	const char *list[TSR_MOUNT_OPTIONS_MAX];
	size_t n;
};

/*
 * The options to mount a filesystem of type fs_type on a tessera image
 * with (flags: enum tsr_mount_flags):
 *   ext4 writable     noinit_itable: no background inode-table zeroing.  A
 *                     volume's unwritten chunks read as zeros already;
 *                     zeroing would only write chunks (and grow a layer
 *                     committed later) for nothing.
 *   ext3/ext4 ro      noload: no journal replay, the device cannot be
 *                     written (a layer; its writer unmounted it cleanly)
 *   xfs ro            norecovery, for the same reason
 * Every other type: none of its own.  Without TSR_MOUNT_SUID_DEV every
 * mount is also nosuid,nodev (MS_NOSUID | MS_NODEV, "nosuid", "nodev").
 * TSR_ERR_FS_NOT_ALLOWED for a type outside TSR_MOUNT_FS_ALLOWED without
 * TSR_MOUNT_ANY_FS; -EINVAL for unknown flags.
 */
int tsr_mount_options(const char *fs_type, unsigned flags, struct tsr_mount_options *ret);

/* ---- loop devices (mount_loop.c) -------------------------------------------- */

/* Attaches image (a volume or layer file) to a free loop device with
 * LOOP_CONFIGURE: autoclear, read-only and direct I/O as asked, 512-byte
 * sectors.  *ret_dev gets "/dev/loopN"; *ret_fd a read-only descriptor of it:
 * with autoclear the device detaches at its last close, so keep it open
 * while the device is meant to stay (closing it after a mount leaves the
 * detach to the unmount).  *ret_dio (may be NULL): whether the kernel took
 * direct I/O.  Makes the /dev node when nothing (udev) did. */
int tsr_mount_loop_attach(const char *image, bool read_only, bool direct_io, char *ret_dev,
			  size_t dev_size, int *ret_fd, bool *ret_dio);

/* Detaches dev when it is still attached to image (a loop device freed by
 * autoclear may have been reused for something else meanwhile).  0 also
 * when it is no longer attached to image. */
int tsr_mount_loop_detach(const char *dev, const char *image);

/* ---- filesystem mounts (mount_fs.c) ----------------------------------------- */

/* Mounts the filesystem of type fs_type on dev at mountpoint with the
 * options of tsr_mount_options(fs_type, flags). */
int tsr_mount_fs(const char *dev, const char *mountpoint, const char *fs_type, unsigned flags);

/* Unmounts mountpoint (not following a symlink).  0 also when nothing is
 * mounted there.  -EBUSY is retried for busy_retry_ms (0: not at all): a
 * loop device just released may hold an image on a FUSE mount a moment
 * longer.  -ENOTCONN: a FUSE mount whose daemon died (tsr_fuse_clean_stale
 * takes it away). */
int tsr_mount_unmount(const char *mountpoint, int busy_retry_ms);

/* An absolute, normalized form of path without resolving its last
 * component through a mount that may be dead (realpath of the parent plus
 * the last name; realpath of path itself when it works). */
int tsr_mount_abs_path(const char *path, char *buf, size_t size);

/* ---- freezing a filesystem on a loop device (mount_freeze.c) --------------- */

/* The loop device attached to image (a volume or layer file): "/dev/loopN"
 * in ret_dev, or -ENOENT when no device is.  image is matched as the
 * kernel shows a device's file: the path it had when attached or, once the
 * FUSE mount it is on was detached (its daemon died), its path relative to
 * that mount ("/volumes/NAME"). */
int tsr_mount_loop_find(const char *image, char *ret_dev, size_t dev_size);

/* A mountpoint, in the caller's mount namespace, of the filesystem on the
 * block device dev (a mount of its root): -ENOENT when it is not mounted
 * there. */
int tsr_mount_point_of(dev_t dev, char *buf, size_t size);

/* Freezes the filesystem mounted at mountpoint (FIFREEZE): its dirty data
 * and metadata reach the device, then writers wait until the thaw; the
 * device holds a clean filesystem meanwhile.  *ret_fd is for
 * tsr_mount_thaw, which always closes it.  A freeze outlives its caller's
 * process: tsr_mount_thaw_image undoes what a dead one left.  The caller
 * must not hold anything the filesystem's writeback needs (for a FUSE
 * image, the daemon serving it must go on serving writes). */
int tsr_mount_freeze(const char *mountpoint, int *ret_fd);
int tsr_mount_thaw(int fd);

/* Thaws every filesystem of the caller's mount namespace mounted from a
 * loop device on image (matched as by tsr_mount_loop_find): what a process
 * that died between freeze and thaw left.  The number thawed (those not
 * frozen are left alone), or a negative errno. */
int tsr_mount_thaw_image(const char *image);

/* ---- an image's filesystem (mount_stack.c) ---------------------------------- */

/* The step of a mount stack that failed, for the caller's message. */
enum tsr_mount_step {
	TSR_MOUNT_STEP_NONE,
	TSR_MOUNT_STEP_ATTACH,   /* attaching the image to a loop device */
	TSR_MOUNT_STEP_PROBE,    /* what the device holds: see tsr_mount_image */
	TSR_MOUNT_STEP_MOUNT,    /* mounting its filesystem */
	TSR_MOUNT_STEP_RECORD,   /* writing or removing the stack's record */
	TSR_MOUNT_STEP_UNMOUNT,  /* unmounting the filesystem */
	TSR_MOUNT_STEP_DETACH,   /* detaching the loop device */
	TSR_MOUNT_STEP_STACKS,   /* reading the other stacks' records */
	TSR_MOUNT_STEP_FUSE,     /* the caller's stop of the FUSE daemon */
};

/* An image's filesystem mounted through a loop device. */
struct tsr_image_mount {
	char loop_dev[32];       /* "/dev/loopN" */
	bool direct_io;          /* the loop device does direct I/O */
	struct tsr_fs_info fs;   /* what the device holds (type only, when given) */
};

/*
 * Attaches image to a loop device (direct I/O, read-only with
 * TSR_MOUNT_READ_ONLY) and mounts its filesystem at mountpoint with
 * tsr_mount_options(type, flags), type being fs_type or, when fs_type is
 * NULL, what the device holds.  The mount then holds the device: the
 * unmount detaches it (autoclear).  On failure nothing is left and
 * *ret_step says which step failed; at TSR_MOUNT_STEP_PROBE, besides the
 * errors of tsr_volume_fs_detect (-ENOMEDIUM, TSR_ERR_AMBIGUOUS...), -EMEDIUMTYPE:
 * the device holds no filesystem but ret->fs.type (ret->fs.usage), and
 * TSR_ERR_FS_NOT_ALLOWED: a filesystem of a type the policy refuses
 * (ret->fs.type; TSR_MOUNT_ANY_FS lifts it); ret is filled as far as it
 * got.
 */
int tsr_mount_image(const char *image, const char *mountpoint, const char *fs_type,
		    unsigned flags, struct tsr_image_mount *ret, enum tsr_mount_step *ret_step);

/* Unmounts what tsr_mount_image mounted at mountpoint (0 also when it is
 * not mounted) and detaches loop_dev if it is still attached to image.
 * *ret_step: which failed. */
int tsr_unmount_image(const char *mountpoint, const char *loop_dev, const char *image,
		      enum tsr_mount_step *ret_step);

/* ---- FUSE daemon records (mount_records.c) ---------------------------------- */

struct tsr_mount_daemon {
	pid_t pid;
	char store[PATH_MAX];       /* absolute store directory */
	char mountpoint[PATH_MAX];  /* absolute FUSE mountpoint */
};

int tsr_mount_daemon_write(const struct tsr_mount_daemon *d);
/* -ENOENT when mountpoint has no record. */
int tsr_mount_daemon_read(const char *mountpoint, struct tsr_mount_daemon *ret);
/* Removes the record of mountpoint when it names pid (pid 0: whatever it
 * names).  0 also when there is none. */
int tsr_mount_daemon_remove(const char *mountpoint, pid_t pid);

/* Finds a live daemon serving the store at store_abs whose FUSE mount is
 * there (any mountpoint): 0 and its record, or -ENOENT. */
int tsr_mount_daemon_find(const char *store_abs, struct tsr_mount_daemon *ret);

/* The private FUSE mountpoint of `mount --rootfs` for the store at
 * store_abs: TSR_MOUNT_RUN_DIR/fuse/<16 hex digits of a hash of the path>,
 * made if missing. */
int tsr_mount_fuse_dir(const char *store_abs, char *buf, size_t size);
/* Whether path is such a private FUSE mountpoint (which the last stack
 * over it takes down). */
bool tsr_mount_fuse_dir_is_private(const char *path);

/* ---- processes (mount_process.c) -------------------------------------------- */

/* Whether pid runs (a zombie has exited: its files, and so the store lock,
 * are released). */
bool tsr_mount_pid_alive(pid_t pid);
/* Waits until pid has exited, at most timeout_ms: 0, or -ETIMEDOUT.  A
 * child of the caller is reaped. */
int tsr_mount_wait_pid(pid_t pid, int timeout_ms);

/* ---- --rootfs stacks (mount_records.c, mount_stack.c) ----------------------- */

struct tsr_mount_stack {
	char mountpoint[PATH_MAX];  /* where the filesystem is mounted */
	char store[PATH_MAX];
	char fuse_mnt[PATH_MAX];    /* the FUSE mount the image comes from */
	pid_t daemon_pid;           /* the daemon serving fuse_mnt */
	char source[320];           /* "image:NAME", "volume:NAME" or "layer:ID" */
	char image[PATH_MAX];       /* the image file, under fuse_mnt */
	char loop_dev[32];          /* "/dev/loopN" */
	char fs_type[32];
	bool read_only;
	bool direct_io;             /* the loop device does direct I/O */
};

int tsr_mount_stack_write(const struct tsr_mount_stack *s);
/* -ENOENT when mountpoint has no stack record; -EBADMSG for a damaged one. */
int tsr_mount_stack_read(const char *mountpoint, struct tsr_mount_stack *ret);
int tsr_mount_stack_remove(const char *mountpoint);
/* Number of stack records other than the one of mountpoint whose FUSE
 * mount is fuse_mnt, or a negative errno. */
int tsr_mount_stack_users(const char *fuse_mnt, const char *mountpoint);

/* Takes the flock of TSR_MOUNT_RUN_DIR/rootfs.lock (waiting for it);
 * returns the descriptor holding it, or a negative errno.  A forked child
 * must close it: the lock belongs to the open file, which fork shares. */
int tsr_mount_stack_lock(void);

/*
 * Puts a stack up over a FUSE mount the caller serves.  On entry s has
 * mountpoint, store, fuse_mnt, daemon_pid, source, image and read_only; on
 * return also loop_dev, fs_type and direct_io (on failure as far as it
 * got).  On success the filesystem is mounted at s->mountpoint
 * (tsr_mount_image, its type probed) and the stack recorded.  The record
 * is written before the mount, so that no mount is ever left without one;
 * a step that fails undoes the ones before it (a record that cannot be
 * removed then describes nothing mounted, and tsr_mount_stack_down takes
 * it away).  flags: TSR_MOUNT_SUID_DEV, TSR_MOUNT_ANY_FS as the user asked
 * (read-only comes from s->read_only).  *ret_fs: what the device holds (see
 * tsr_mount_image for TSR_MOUNT_STEP_PROBE).  The caller holds
 * tsr_mount_stack_lock.
 */
int tsr_mount_stack_up(struct tsr_mount_stack *s, unsigned flags, struct tsr_fs_info *ret_fs,
		       enum tsr_mount_step *ret_step);

/* Stops the FUSE daemon of fuse_mnt (pid), for tsr_mount_stack_down: 0,
 * or a negative errno after saying why (the caller's own output). */
typedef int (*tsr_mount_fuse_stop_fn)(void *arg, const char *fuse_mnt, pid_t pid);

/*
 * Takes stack s down in the order it went up: the filesystem (-EBUSY when
 * something uses it; no retry), the loop device, the FUSE mount, if it is a
 * private one and no other stack uses it (stop_fuse, then its directory),
 * the record.  Stops at the first step that fails (*ret_step), so that
 * running it again continues from there.  The caller holds
 * tsr_mount_stack_lock.
 */
int tsr_mount_stack_down(const struct tsr_mount_stack *s, tsr_mount_fuse_stop_fn stop_fuse,
			 void *arg, enum tsr_mount_step *ret_step);

#ifdef __cplusplus
}
#endif
#endif /* TESSERA_MOUNT_STACK_H */
