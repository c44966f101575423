/* SPDX-License-Identifier: MIT */
/*
 * Internals of the FUSE front-end, shared by its files:
 *   fuse_session.c  mount, serve, exit, destroy, stale mounts, the ops table
 *   inode_table.c   inode numbers <-> names the kernel has looked up
 *   fuse_ns.c       the namespace: lookup, getattr, readdir, readlink, statfs
 *   fuse_io.c       open image files and their I/O
 */
#ifndef TSR_FUSE_INTERNAL_H
#define TSR_FUSE_INTERNAL_H

#define FUSE_USE_VERSION 314

#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

#include <tessera/fuse_server.h>
#include <tessera/store.h>

/* Fixed inodes; everything else is numbered from TSR_INO_FIRST_DYNAMIC. */
enum {
	TSR_INO_ROOT = FUSE_ROOT_ID,    /* 1: MNT */
	TSR_INO_VOLUMES = 2,            /* MNT/volumes */
	TSR_INO_LAYERS = 3,             /* MNT/layers */
	TSR_INO_BY_NAME = 4,            /* MNT/layers/by-name */
	TSR_INO_IMAGES = 5,             /* MNT/images */
	TSR_INO_FIRST_DYNAMIC = 16,
};

/* Largest read or write request: the kernel's max_pages (256 pages of 4 KiB)
 * and the size of the per-thread read buffer. */
#define TSR_FUSE_MAX_IO (1u << 20)

/* Kernel cache lifetimes (seconds).  The store has no change notification,
 * so names are re-checked this often; a missing name is never cached
 * (lookup replies ENOENT, not a negative entry), so a new volume shows up
 * at once.  An inode whose name went away or now names another volume
 * answers ESTALE, which makes the kernel redo its path walk. */
#define TSR_FUSE_ENTRY_TIMEOUT 1.0
#define TSR_FUSE_ATTR_TIMEOUT 1.0

enum tsr_node_kind {
	TSR_NODE_DIR,
	TSR_NODE_VOLUME,   /* key: volume name; vol_id tells incarnations apart */
	TSR_NODE_LAYER,    /* key: 64 hex digits of the layer id */
	TSR_NODE_LINK,     /* key: layer name (in layers/by-name) */
	TSR_NODE_IMAGE,    /* key: escaped image name (in images) */
};

/* An inode the kernel knows.  Lives from its first lookup until the kernel
 * forgets every lookup of it.  kind, key, ino and vol_id never change after
 * creation, so the namespace code reads them without the table lock. */
struct tsr_node {
	fuse_ino_t ino;
	enum tsr_node_kind kind;
	uint64_t vol_id;           /* TSR_NODE_VOLUME: the store's volume id */
	uint64_t nlookup;          /* protected by table->lock */
	bool named;                /* in the name index; protected by table->lock */
	struct tsr_node *ino_next; /* hash chains; protected by table->lock */
	struct tsr_node *key_next;
	char key[];
};

#define TSR_NODE_BUCKETS 1024u

struct tsr_inode_table {
	pthread_mutex_t lock;      /* leaf lock: nothing is called with it held */
	fuse_ino_t next_ino;
	struct tsr_node *by_ino[TSR_NODE_BUCKETS];
	struct tsr_node *by_key[TSR_NODE_BUCKETS];
};

int tsr_inode_table_init(struct tsr_inode_table *t);
void tsr_inode_table_fini(struct tsr_inode_table *t);
/* Finds the node for (kind, key, vol_id) or makes one, and counts one
 * lookup of it.  A node of the same kind and key but another vol_id (a
 * volume removed and created again) leaves the name index: it lives on
 * under its old number, answering ESTALE, until forgotten.  -ENOMEM. */
int tsr_inode_lookup(struct tsr_inode_table *t, enum tsr_node_kind kind,
		     const char *key, uint64_t vol_id, struct tsr_node **ret_node);
/* The node for ino, or NULL.  The pointer stays valid while the kernel holds
 * a lookup of ino, which it does for the whole of any request on it. */
struct tsr_node *tsr_inode_get(struct tsr_inode_table *t, fuse_ino_t ino);
/* The number of a node of (kind, key) currently in the name index, or 0. */
fuse_ino_t tsr_inode_peek(struct tsr_inode_table *t, enum tsr_node_kind kind,
			  const char *key);
/* Drops n lookups; the node is freed at zero. */
void tsr_inode_forget(struct tsr_inode_table *t, fuse_ino_t ino, uint64_t n);

/* One open of an image file (fi->fh).  vol or layer is set, never both. */
struct tsr_fuse_file {
	struct tsr_volume *vol;
	struct tsr_layer *layer;
	uint64_t size;
	struct tsr_fuse_file *prev, *next;  /* protected by fuse->files_lock */
};

struct tsr_fuse {
	struct tsr_store *store;
	struct fuse_session *se;
	char *mountpoint;
	unsigned max_threads;
	uint32_t chunk_size;
	uid_t uid;
	gid_t gid;
	bool mounted;
	time_t mounted_at;      /* times of the directories */

	struct tsr_inode_table inodes;

	pthread_mutex_t files_lock;         /* leaf lock */
	struct tsr_fuse_file files;         /* list head of open files */

	/* tsr_fuse_exit -> waker thread: see fuse_session.c. */
	int exit_fd;                        /* eventfd */
	pthread_t waker;
	bool waker_started;
	volatile bool waker_stop;
};

static inline struct tsr_fuse *tsr_fuse_from_req(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

/* fuse_ns.c */
void tsr_fuse_lookup(fuse_req_t req, fuse_ino_t parent, const char *name);
void tsr_fuse_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup);
void tsr_fuse_forget_multi(fuse_req_t req, size_t count,
			   struct fuse_forget_data *forgets);
void tsr_fuse_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void tsr_fuse_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
		      int to_set, struct fuse_file_info *fi);
void tsr_fuse_readlink(fuse_req_t req, fuse_ino_t ino);
void tsr_fuse_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void tsr_fuse_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		      struct fuse_file_info *fi);
void tsr_fuse_releasedir(fuse_req_t req, fuse_ino_t ino,
			 struct fuse_file_info *fi);
void tsr_fuse_statfs(fuse_req_t req, fuse_ino_t ino);
/* Fills *st for a node from the store: 0, -ESTALE when the name is gone or
 * names another volume now, or another negative errno. */
int tsr_fuse_node_stat(struct tsr_fuse *fuse, const struct tsr_node *node,
		       struct stat *st);

/* fuse_io.c */
void tsr_fuse_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void tsr_fuse_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		   struct fuse_file_info *fi);
void tsr_fuse_write(fuse_req_t req, fuse_ino_t ino, const char *buf,
		    size_t size, off_t off, struct fuse_file_info *fi);
void tsr_fuse_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
		    struct fuse_file_info *fi);
void tsr_fuse_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void tsr_fuse_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off,
			off_t len, struct fuse_file_info *fi);
void tsr_fuse_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
/* Closes every file still open (flushing volumes); for tsr_fuse_destroy. */
void tsr_fuse_close_all(struct tsr_fuse *fuse);
int tsr_fuse_io_init(void);

#endif /* TSR_FUSE_INTERNAL_H */
