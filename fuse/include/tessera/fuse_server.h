/* SPDX-License-Identifier: MIT */
/*
 * The FUSE front-end: serves an open store as a filesystem of disk images.
 *
 *   MNT/volumes/NAME          read-write raw image of volume NAME
 *   MNT/layers/ID             read-only raw image of layer ID (64 hex digits)
 *   MNT/layers/by-name/NAME   symlink to ../ID for each layer name
 *   MNT/images/NAME           symlink to ../layers/ID, the top layer of
 *                             image NAME (imagefmt's image_store.h), with
 *                             '/' in the name as "%2F" and '%' as "%25"
 *
 * File sizes are the volume and layer sizes.  fsync/fdatasync flush the
 * volume; fallocate(PUNCH_HOLE) discards and fallocate(ZERO_RANGE) writes
 * zeroes.  Volumes and layers created or removed in the store while it is
 * mounted appear and disappear.  Images act like block devices at their
 * end: reads are short, writes starting at or past the end fail with
 * ENOSPC, sizes cannot change.  Uses <tessera/store.h> and, for the
 * images, <tessera/image_store.h>.
 *
 * Functions return 0 or a negative errno, like the rest of tessera.
 */
#ifndef TESSERA_FUSE_SERVER_H
#define TESSERA_FUSE_SERVER_H

#include <stdbool.h>
#include <stddef.h>

#include <tessera/store.h>

#ifdef __cplusplus
extern "C" {
#endif

struct tsr_fuse;

struct tsr_fuse_options {
	const char *mountpoint;   /* an existing directory */
	unsigned max_threads;     /* request threads; 0 = default */
	bool allow_other;         /* let other users open the images (root only) */
	bool debug;               /* libfuse request tracing on stderr */
};

/* Mounts the filesystem (the mountpoint is live when this returns; requests
 * queue until tsr_fuse_serve runs).  -ENOTCONN at the mountpoint means a
 * dead daemon's mount: see tsr_fuse_clean_stale(). */
int tsr_fuse_mount(struct tsr_store *store, const struct tsr_fuse_options *opts,
		   struct tsr_fuse **ret_fuse);
/* Serves requests on a pool of threads until the filesystem is unmounted
 * or tsr_fuse_exit() is called.  Returns 0 on a clean end.  Marks the
 * calling thread PR_SET_IO_FLUSHER first (inherited by the request
 * threads); without the privilege for it, says so on stderr and serves. */
int tsr_fuse_serve(struct tsr_fuse *fuse);
/* Makes tsr_fuse_serve return; safe from a signal handler. */
void tsr_fuse_exit(struct tsr_fuse *fuse);
/* Flushes and closes every volume the filesystem has open, unmounts if
 * still mounted (lazily: files a loop device holds then fail), and frees.
 * Call it when tsr_fuse_serve has returned, or was never called. */
void tsr_fuse_destroy(struct tsr_fuse *fuse);

/* When path is the mountpoint of a FUSE filesystem whose daemon is gone
 * (stat fails with ENOTCONN), detaches it (lazy unmount, needs
 * CAP_SYS_ADMIN) and returns 1; returns 0 when stat succeeds (nothing to
 * clean), or a negative errno (stat's or umount2's). */
int tsr_fuse_clean_stale(const char *path);

/* ---- paths in the tree ------------------------------------------------------ */

enum tsr_fuse_kind {
	TSR_FUSE_VOLUME = 1,  /* MNT/volumes/NAME */
	TSR_FUSE_LAYER = 2,   /* MNT/layers/ID: name is the id's 64 hex digits */
	TSR_FUSE_IMAGE = 3,   /* MNT/images/ESCAPED-NAME */
};

/* The file name of image name under MNT/images: '/' becomes "%2F" and '%'
 * "%25", one spelling per name.  -ENAMETOOLONG when it does not fit len or
 * is longer than a file name can be (TSR_NAME_MAX). */
int tsr_fuse_image_file_name(const char *name, char *out, size_t len);
/* The path of the file of a volume, layer or image under the mountpoint
 * mnt of this filesystem.  -ENAMETOOLONG when it does not fit len. */
int tsr_fuse_path(const char *mnt, enum tsr_fuse_kind kind, const char *name, char *out,
		  size_t len);

#ifdef __cplusplus
}
#endif
#endif /* TESSERA_FUSE_SERVER_H */
