/* SPDX-License-Identifier: MIT */
/*
 * What each Snapshots method does to the store, and how a restart repairs
 * what a killed daemon left half done.
 *
 * A view or an active snapshot is a volume named after its key
 * (snap_name_of), on its parent's layer or, without a parent, holding a
 * fresh ext4.  A committed snapshot is a layer, held by a layer name made
 * from its key: tsr_volume_commit publishes the layer under that name (a
 * layer of identical content gains a hold and the name instead), and
 * Remove drops that hold and name.  A view of a committed snapshot is a
 * volume on its layer too, mounted read-only: its lifetime, its crash
 * recovery and the pin on its parent are then those of every volume, at
 * the cost of one metadata record.
 *
 * Crash ordering (each record put and each store call is durable when it
 * returns):
 *   Prepare  volume created (+ mkfs) -> record put.  A crash between leaves
 *            a volume without record: removed on restart.
 *   Commit   pending record of NAME (volume, from_key) -> layer published
 *            under its name, the volume gone -> record of NAME final ->
 *            record of KEY deleted.  Restart: a pending record whose layer
 *            name resolves is finished; one whose volume still exists is
 *            dropped (the active snapshot is intact).
 *   Remove   volume removed / layer hold dropped -> record deleted.
 *            Restart: a record whose volume or layer name is gone is
 *            deleted.
 */
#include "internal.h"

#include <tessera/fuse_server.h>
#include <tessera/volume_fs.h>

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define LABEL_PAIR_MAX 4096       /* containerd's bound on key + value */
#define BUSY_RETRY_MS 10000       /* the kernel releasing a FUSE file */
#define BUSY_RETRY_STEP_MS 20

int snaps_init(struct snaps *s, struct tsr_store *store,
	       const struct tsr_snapshotter_options *opts)
{
	memset(s, 0, sizeof(*s));
	s->store = store;
	s->fuse_mount = strdup(opts->fuse_mount);
	if (!s->fuse_mount)
		return -ENOMEM;
	s->volume_size = opts->volume_size ? opts->volume_size
					   : TSR_SNAPSHOTTER_SIZE_DEFAULT;
	s->chunk_size = tsr_store_chunk_size(store);
	s->log = opts->log;
	s->log_arg = opts->log_arg;
	pthread_rwlock_init(&s->lock, NULL);
	loop_table_init(&s->loops);
	orphans_init(&s->orphans);
	s->kill_while_frozen = getenv("TESSERA_TEST_KILL_FROZEN") &&
			       strcmp(getenv("TESSERA_TEST_KILL_FROZEN"), "1") == 0;
	if (s->loops.unavailable)
		snaps_log(s, "no loop devices (/dev/loop-control): mounts name the "
			  "image files, containerd attaches them (slower)");
	return 0;
}

void snaps_fini(struct snaps *s)
{
	orphans_fini(&s->orphans);  /* first: its thread takes the lock */
	loop_table_fini(&s->loops);
	free(s->fuse_mount);
	pthread_rwlock_destroy(&s->lock);
}

static int fail(int r, char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int fail(int r, char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return r;
}

static int check_key(const char *what, const char *key, char *err, size_t errlen)
{
	if (!*key)
		return fail(-EINVAL, err, errlen, "%s is empty", what);
	if (strlen(key) > TSR_RECORD_KEY_MAX)
		return fail(-EINVAL, err, errlen, "%s is longer than %d bytes", what,
			    TSR_RECORD_KEY_MAX);
	return 0;
}

static int check_labels(const struct snap_label *l, size_t n, char *err, size_t errlen)
{
	for (size_t i = 0; i < n; i++) {
		if (!*l[i].key)
			return fail(-EINVAL, err, errlen, "empty label key");
		if (strlen(l[i].key) + strlen(l[i].val) > LABEL_PAIR_MAX)
			return fail(-EINVAL, err, errlen, "label %.64s: key and value "
				    "exceed %d bytes", l[i].key, LABEL_PAIR_MAX);
	}
	return 0;
}

static int set_labels(struct snap_rec *rec, const struct snap_label *l, size_t n)
{
	int r = 0;

	snap_rec_labels_clear(rec);
	for (size_t i = 0; !r && i < n; i++)
		r = snap_rec_label_set(rec, l[i].key, l[i].val);
	return r;
}

struct child_ctx {
	const char *key;
	bool found;
};

static int find_child(const char *key, const struct snap_rec *rec, void *arg)
{
	struct child_ctx *ctx = arg;

	(void)key;
	if (rec && strcmp(rec->parent, ctx->key) == 0) {
		ctx->found = true;
		return 1;
	}
	return 0;
}

static int has_children(struct snaps *s, const char *key, bool *ret)
{
	struct child_ctx ctx = { key, false };
	int r = snap_rec_list(s->store, find_child, &ctx);

	if (r < 0)
		return r;
	*ret = ctx.found;
	return 0;
}

/* One step of waiting while a volume or device is busy: the kernel lets an
 * image file go (a loop device's autoclear) a moment after the unmount
 * containerd waited for.  A method waits BUSY_RETRY_MS in all. */
static void busy_wait(int *waited_ms)
{
	usleep(BUSY_RETRY_STEP_MS * 1000);
	*waited_ms += BUSY_RETRY_STEP_MS;
}

/* Removes a volume, waiting while it is busy; *waited_ms: the method's
 * budget spent so far. */
static int volume_remove(struct snaps *s, const char *name, int *waited_ms)
{
	int r;

	while ((r = tsr_volume_remove(s->store, name)) == -EBUSY &&
	       *waited_ms < BUSY_RETRY_MS)
		busy_wait(waited_ms);
	return r == -ENOENT ? 0 : r;
}

int snaps_mount_of(struct snaps *s, const char *key, const struct snap_rec *rec,
		   struct snap_mount *m)
{
	char hex[TSR_ID_HEX_LEN + 1], image[sizeof(m->source)];
	bool read_only = rec->kind != SNAP_ACTIVE;
	struct tsr_mount_options o;
	int n, r, cause;

	memset(m, 0, sizeof(*m));
	m->type = "ext4";
	if (rec->kind == SNAP_COMMITTED) {
		tsr_layer_id_to_hex(&rec->layer, hex);
		r = tsr_fuse_path(s->fuse_mount, TSR_FUSE_LAYER, hex, image, sizeof(image));
	} else {
		r = tsr_fuse_path(s->fuse_mount, TSR_FUSE_VOLUME, rec->volume, image, sizeof(image));
	}
	if (r)
		return r;
	n = (int)strlen(image);
	r = loop_table_get(&s->loops, key, image, read_only, m->source, sizeof(m->source),
			   &cause);
	if (cause)
		snaps_log(s, "cannot attach loop devices (%s): from now on mounts name "
			  "the image files, containerd attaches them (slower)",
			  tsr_strerror(cause));
	if (r == -ENODEV) {
		/* No loop devices for us (a container without
		 * /dev/loop-control, say): containerd attaches them. */
		memcpy(m->source, image, (size_t)n + 1);
		m->options[m->n_options++] = "loop";
	} else if (r) {
		return r;
	}
	/* The options every tessera mount of an ext4 gets (rw: noinit_itable;
	 * ro: noload, nothing to replay, its writer unmounted it cleanly).
	 * containerd mounts these for a container, whose runtime decides what
	 * its setuid binaries and device nodes may do, as on overlayfs: no
	 * nosuid,nodev here (docs/security.md). */
	r = tsr_mount_options(m->type, TSR_MOUNT_SUID_DEV |
				       (read_only ? TSR_MOUNT_READ_ONLY : 0), &o);
	for (size_t i = 0; !r && i < o.n; i++)
		m->options[m->n_options++] = o.list[i];
	return r;
}

/* ---- Prepare, View ---------------------------------------------------------------- */

static int make_fs(struct snaps *s, const char *volume, char *err, size_t errlen)
{
	char path[PATH_MAX], msg[256] = "";
	int r;

	r = tsr_fuse_path(s->fuse_mount, TSR_FUSE_VOLUME, volume, path, sizeof(path));
	if (!r)
		r = tsr_volume_fs_make(path, s->chunk_size, NULL, msg, sizeof(msg));
	if (r < 0)
		return fail(r, err, errlen, "making the filesystem: %s%s%s",
			    tsr_strerror(r), msg[0] ? ": " : "", msg);
	return 0;
}

int snaps_prepare(struct snaps *s, const struct snap_args *a, bool view,
		  struct snap_mount *ret_mount, char *err, size_t errlen)
{
	struct snap_rec *rec = NULL, *prec = NULL;
	char name[SNAP_NAME_LEN + 1];
	bool created = false;
	int r, waited = 0;

	r = check_key("key", a->key, err, errlen);
	if (!r)
		r = check_labels(a->labels, a->n_labels, err, errlen);
	if (r)
		return r;
	pthread_rwlock_wrlock(&s->lock);
	r = snap_rec_get(s->store, a->key, &rec);
	if (r == 0) {
		r = fail(-EEXIST, err, errlen, "snapshot %s already exists", a->key);
		goto out;
	}
	if (r != -ENOENT)
		goto store_err;
	rec = NULL;
	if (*a->parent) {
		r = snap_rec_get(s->store, a->parent, &prec);
		if (r == -ENOENT) {
			r = fail(-ENOENT, err, errlen, "parent snapshot %s does not exist",
				 a->parent);
			goto out;
		}
		if (r)
			goto store_err;
		if (prec->kind != SNAP_COMMITTED || prec->pending) {
			r = fail(-EINVAL, err, errlen, "parent %s is not a committed "
				 "snapshot", a->parent);
			goto out;
		}
	}
	/* The key's usual volume name, unless an orphan of an earlier
	 * snapshot of the same key still has it (committed while mounted). */
	for (unsigned gen = 0;; gen++) {
		snap_name_gen(a->key, gen, name);
		if (gen == 64 || !orphan_volume_is(s, name))
			break;
	}
	r = tsr_volume_create(s->store, name, prec ? 0 : s->volume_size,
			      prec ? &prec->layer : NULL);
	if (r == -EEXIST && !orphan_volume_is(s, name)) {
		/* Left by a crash before its record was written. */
		r = volume_remove(s, name, &waited);
		if (!r)
			r = tsr_volume_create(s->store, name, prec ? 0 : s->volume_size,
					      prec ? &prec->layer : NULL);
	}
	if (r)
		goto store_err;
	created = true;
	if (!prec) {
		r = make_fs(s, name, err, errlen);
		if (r)
			goto out;
	}
	rec = snap_rec_new(view ? SNAP_VIEW : SNAP_ACTIVE);
	if (!rec ||
	    (r = snap_rec_set(&rec->parent, a->parent)) != 0 ||
	    (r = snap_rec_set(&rec->volume, name)) != 0 ||
	    (r = set_labels(rec, a->labels, a->n_labels)) != 0) {
		r = -ENOMEM;
		goto store_err;
	}
	rec->created_ns = rec->updated_ns = snap_now_ns();
	r = snaps_mount_of(s, a->key, rec, ret_mount);
	if (r) {
		r = fail(r, err, errlen, "attaching a loop device: %s", tsr_strerror(r));
		goto out;
	}
	r = snap_rec_put(s->store, a->key, rec);
	if (r)
		goto store_err;
	goto out;
store_err:
	fail(r, err, errlen, "%s", tsr_strerror(r));
out:
	if (r && created) {
		loop_table_put(&s->loops, a->key, false);
		volume_remove(s, name, &waited);
	}
	pthread_rwlock_unlock(&s->lock);
	snap_rec_free(rec);
	snap_rec_free(prec);
	return r;
}

/* ---- Commit ------------------------------------------------------------------------ */

/*
 * Commits a snapshot whose filesystem is mounted: freezes it (the freeze
 * writes its dirty state through the loop device into the volume, served
 * by this daemon's FUSE threads, which need none of the locks held here),
 * publishes a copy of the volume as the layer lname, thaws.  The volume
 * stays, with its mount.  *ret_frozen: whether the freeze happened;
 * -ENOENT without it when no mountpoint of the key's device is in this
 * mount namespace.
 */
static int commit_frozen(struct snaps *s, const char *key, const char *volume,
			 const char *lname, struct tsr_layer_id *ret_id, bool *ret_frozen,
			 char *err, size_t errlen)
{
	char dev[32], mnt[PATH_MAX];
	struct tsr_volume *vol;
	struct stat st;
	int fd, r, t;

	*ret_frozen = false;
	r = loop_table_dev(&s->loops, key, dev, sizeof(dev));
	if (!r && stat(dev, &st) < 0)
		r = -errno;
	if (!r)
		r = tsr_mount_point_of(st.st_rdev, mnt, sizeof(mnt));
	if (r)
		return r;
	r = tsr_mount_freeze(mnt, &fd);
	if (r)
		return fail(r, err, errlen, "freezing the filesystem of snapshot %s at %s: %s",
			    key, mnt, tsr_strerror(r));
	*ret_frozen = true;
	r = tsr_volume_open(s->store, volume, &vol);
	if (!r) {
		r = tsr_volume_commit_copy(vol, lname, NULL, ret_id);
		tsr_volume_close(vol);
	}
	if (s->kill_while_frozen) {
		snaps_log(s, "TESSERA_TEST_KILL_FROZEN: killed with %s frozen", mnt);
		raise(SIGKILL);
	}
	t = tsr_mount_thaw(fd);
	if (t)
		snaps_log(s, "thawing the filesystem of snapshot %s at %s: %s", key, mnt,
			  tsr_strerror(t));
	if (r)
		return fail(r, err, errlen, "committing mounted snapshot %s: %s", key,
			    tsr_strerror(r));
	return 0;
}

int snaps_commit(struct snaps *s, const char *name, const struct snap_args *a,
		 char *err, size_t errlen)
{
	struct snap_rec *rec = NULL, *crec = NULL;
	char lname[SNAP_NAME_LEN + 1];
	struct tsr_layer_id id;
	struct tsr_volume *vol;
	bool frozen = false;
	int r, waited = 0;

	r = check_key("name", name, err, errlen);
	if (!r)
		r = check_key("key", a->key, err, errlen);
	if (!r)
		r = check_labels(a->labels, a->n_labels, err, errlen);
	if (r)
		return r;
	pthread_rwlock_wrlock(&s->lock);
	r = snap_rec_get(s->store, a->key, &rec);
	if (r == -ENOENT) {
		r = fail(r, err, errlen, "snapshot %s does not exist", a->key);
		goto out;
	}
	if (r)
		goto store_err;
	if (rec->kind != SNAP_ACTIVE) {
		r = fail(-EBUSY, err, errlen, "snapshot %s is not active", a->key);
		goto out;
	}
	r = snap_rec_get(s->store, name, &crec);
	if (r == 0) {
		r = fail(-EEXIST, err, errlen, "snapshot %s already exists", name);
		goto out;
	}
	if (r != -ENOENT)
		goto store_err;
	snap_name_of(name, lname);
	crec = snap_rec_new(SNAP_COMMITTED);
	if (!crec ||
	    (r = snap_rec_set(&crec->parent, rec->parent)) != 0 ||
	    (r = snap_rec_set(&crec->volume, rec->volume)) != 0 ||
	    (r = snap_rec_set(&crec->layer_name, lname)) != 0 ||
	    (r = snap_rec_set(&crec->from_key, a->key)) != 0 ||
	    (r = set_labels(crec, a->labels, a->n_labels)) != 0) {
		r = -ENOMEM;
		goto store_err;
	}
	crec->pending = true;
	crec->created_ns = crec->updated_ns = snap_now_ns();
	r = snap_rec_put(s->store, name, crec);
	if (r)
		goto store_err;
	/* Durable: the pending record.  From here a restart finishes the
	 * commit if the layer got published, or drops the record.  A
	 * snapshot mounted nowhere is consumed: its loop device goes first
	 * (the kernel lets the image file go a moment after it, -EBUSY
	 * meanwhile).  A mounted one is frozen and copied. */
	for (;;) {
		r = loop_table_put(&s->loops, a->key, true);
		if (r != -EBUSY)
			break;
		r = commit_frozen(s, a->key, rec->volume, lname, &id, &frozen, err, errlen);
		if (frozen || r != -ENOENT)
			break;
		/* Mounted, but not in this mount namespace (or a lazy
		 * unmount is under way): nothing here can freeze it. */
		if (waited >= BUSY_RETRY_MS) {
			r = fail(-EBUSY, err, errlen, "snapshot %s is mounted where tessera "
				 "cannot freeze it (another mount namespace?): unmount it "
				 "before committing", a->key);
			break;
		}
		busy_wait(&waited);
	}
	while (!r && !frozen) {
		r = tsr_volume_open(s->store, rec->volume, &vol);
		if (!r)
			r = tsr_volume_commit(vol, lname, NULL, &id);  /* consumes vol */
		if (r != -EBUSY || waited >= BUSY_RETRY_MS)
			break;
		busy_wait(&waited);
		r = 0;
	}
	if (r) {
		snap_rec_del(s->store, name);
		if (r == -EBUSY && !*err)
			r = fail(r, err, errlen, "snapshot %s is in use (still mounted?)",
				 a->key);
		else if (!*err)
			goto store_err;
		goto out;
	}
	if (frozen) {
		/* The device stays with its mount (autoclear at the unmount);
		 * the volume, with the writes still to come, is an orphan. */
		loop_table_put(&s->loops, a->key, false);
		if (orphan_volume_add(s, rec->volume))
			snaps_log(s, "out of memory: volume %s (of %s, committed while "
				  "mounted) is left until the next start", rec->volume, a->key);
	}
	/* Durable: the layer under lname; the volume is gone. */
	crec->pending = false;
	crec->has_layer = true;
	crec->layer = id;
	snap_rec_set(&crec->volume, "");
	snap_rec_set(&crec->from_key, "");
	r = snap_rec_put(s->store, name, crec);
	if (!r)
		r = snap_rec_del(s->store, a->key);
	if (r)
		goto store_err;
	goto out;
store_err:
	fail(r, err, errlen, "%s", tsr_strerror(r));
out:
	pthread_rwlock_unlock(&s->lock);
	snap_rec_free(rec);
	snap_rec_free(crec);
	return r;
}

/* ---- Remove, Stat, Update, Usage, Cleanup ------------------------------------------- */

int snaps_remove(struct snaps *s, const char *key, char *err, size_t errlen)
{
	struct snap_rec *rec = NULL;
	bool children;
	int r, waited = 0;

	pthread_rwlock_wrlock(&s->lock);
	r = snap_rec_get(s->store, key, &rec);
	if (r == -ENOENT) {
		r = fail(r, err, errlen, "snapshot %s does not exist", key);
		goto out;
	}
	if (r)
		goto store_err;
	if (rec->pending) {
		r = fail(-EBUSY, err, errlen, "snapshot %s is being committed", key);
		goto out;
	}
	r = has_children(s, key, &children);
	if (r)
		goto store_err;
	if (children) {
		r = fail(-ENOTEMPTY, err, errlen, "cannot remove snapshot %s: it has children",
			 key);
		goto out;
	}
	while ((r = loop_table_put(&s->loops, key, true)) == -EBUSY && waited < BUSY_RETRY_MS)
		busy_wait(&waited);
	if (r == -EBUSY) {
		r = fail(r, err, errlen, "cannot remove snapshot %s: it is in use "
			 "(mounted)", key);
		goto out;
	}
	if (r) {
		r = fail(r, err, errlen, "checking whether the device of snapshot %s is "
			 "mounted: %s", key, tsr_strerror(r));
		goto out;
	}
	if (rec->kind == SNAP_COMMITTED) {
		r = tsr_layer_remove(s->store, &rec->layer, rec->layer_name);
		if (r == -ENOENT)
			r = 0;  /* gone already: only the record is left */
		if (r == -EBUSY && orphans_pin(s, &rec->layer)) {
			/* Used by the volume of a snapshot committed while
			 * mounted: the layer goes once that is unmounted. */
			r = orphan_layer_defer(s, rec->layer_name);
			if (r == -ENOENT)
				r = 0;
		}
		if (r == -EBUSY) {
			r = fail(r, err, errlen, "cannot remove snapshot %s: its layer has "
				 "children outside the snapshotter", key);
			goto out;
		}
	} else {
		r = volume_remove(s, rec->volume, &waited);
		if (r == -EBUSY) {
			r = fail(r, err, errlen, "cannot remove snapshot %s: it is in use "
				 "(still mounted?)", key);
			goto out;
		}
	}
	if (!r)
		r = snap_rec_del(s->store, key);
	if (r)
		goto store_err;
	goto out;
store_err:
	fail(r, err, errlen, "%s", tsr_strerror(r));
out:
	pthread_rwlock_unlock(&s->lock);
	snap_rec_free(rec);
	return r;
}

int snaps_stat_locked(struct snaps *s, const char *key, struct snap_rec **ret_rec,
		      char *err, size_t errlen)
{
	struct snap_rec *rec;
	int r = snap_rec_get(s->store, key, &rec);

	if (r == 0 && rec->pending) {
		snap_rec_free(rec);
		r = -ENOENT;
	}
	if (r == -ENOENT)
		return fail(r, err, errlen, "snapshot %s does not exist", key);
	if (r)
		return fail(r, err, errlen, "%s", tsr_strerror(r));
	*ret_rec = rec;
	return 0;
}

static const char *label_in(const struct snap_label *l, size_t n, const char *key)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(l[i].key, key) == 0)
			return l[i].val;
	return NULL;
}

int snaps_update(struct snaps *s, const char *key, const struct snap_label *labels,
		 size_t n_labels, char *const *paths, size_t n_paths,
		 struct snap_rec **ret_rec, char *err, size_t errlen)
{
	struct snap_rec *rec = NULL;
	int r = check_labels(labels, n_labels, err, errlen);

	if (r)
		return r;
	for (size_t i = 0; i < n_paths; i++)
		if (strcmp(paths[i], "labels") != 0 && strncmp(paths[i], "labels.", 7) != 0)
			return fail(-EINVAL, err, errlen, "cannot update field %.64s "
				    "of snapshot %s", paths[i], key);
	pthread_rwlock_wrlock(&s->lock);
	r = snaps_stat_locked(s, key, &rec, err, errlen);
	if (r)
		goto out;
	if (!n_paths)
		r = set_labels(rec, labels, n_labels);
	for (size_t i = 0; !r && i < n_paths; i++) {
		if (strcmp(paths[i], "labels") == 0)
			r = set_labels(rec, labels, n_labels);
		else
			r = snap_rec_label_set(rec, paths[i] + 7,
					       label_in(labels, n_labels, paths[i] + 7));
	}
	rec->updated_ns = snap_now_ns();
	if (!r)
		r = snap_rec_put(s->store, key, rec);
	if (r) {
		fail(r, err, errlen, "%s", tsr_strerror(r));
		goto out;
	}
	*ret_rec = rec;
	rec = NULL;
out:
	pthread_rwlock_unlock(&s->lock);
	snap_rec_free(rec);
	return r;
}

/*
 * Usage is what the snapshot added to the store itself.  An active
 * snapshot or a view: the chunks written to its volume, whole and
 * uncompressed (chunks written x chunk size).  A committed one: the bytes
 * of the chunk objects its layer stored first (compressed, as stored).  A
 * chunk shared with other layers (dedup) counts once, in the layer that
 * stored it first, so the sizes of all committed snapshots add up to the
 * store's object bytes.  Inodes are not known (0).
 */
int snaps_usage(struct snaps *s, const char *key, int64_t *ret_size, int64_t *ret_inodes,
		char *err, size_t errlen)
{
	struct tsr_volume_info vi;
	struct tsr_layer_info li;
	struct snap_rec *rec = NULL;
	uint64_t bytes;
	int r;

	pthread_rwlock_rdlock(&s->lock);
	r = snaps_stat_locked(s, key, &rec, err, errlen);
	if (r)
		goto out;
	if (rec->kind == SNAP_COMMITTED) {
		r = tsr_layer_stat(s->store, &rec->layer, &li);
		bytes = li.new_stored_bytes;
	} else {
		r = tsr_volume_stat(s->store, rec->volume, &vi);
		bytes = vi.chunks_written * s->chunk_size;
	}
	if (r) {
		fail(r, err, errlen, "%s", tsr_strerror(r));
	} else {
		*ret_size = (int64_t)bytes;
		*ret_inodes = rec->inodes;
	}
	snap_rec_free(rec);
out:
	pthread_rwlock_unlock(&s->lock);
	return r;
}

int snaps_cleanup(struct snaps *s, char *err, size_t errlen)
{
	struct tsr_gc_stats st;
	struct timespec t0, t1;
	int r;

	/* GC is safe beside the store's other users; keep methods that
	 * change snapshots out meanwhile all the same. */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	pthread_rwlock_rdlock(&s->lock);
	r = tsr_store_gc(s->store, NULL, &st);
	pthread_rwlock_unlock(&s->lock);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (r)
		return fail(r, err, errlen, "gc: %s", tsr_strerror(r));
	snaps_log(s, "cleanup: %llu objects removed, %llu -> %llu bytes allocated, %.1f ms",
		  (unsigned long long)st.objects_removed,
		  (unsigned long long)st.allocated_before,
		  (unsigned long long)st.allocated_after,
		  (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
	return 0;
}
