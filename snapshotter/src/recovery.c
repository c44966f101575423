/* SPDX-License-Identifier: MIT */
/*
 * How a restart repairs what a killed daemon left half done (the crash
 * ordering of each method is in snapshots.c):
 *
 *   - filesystems it left frozen (a Commit of a mounted snapshot) thawed;
 *   - pending commits finished (the layer got its name) or dropped;
 *   - records whose volume or layer is gone dropped;
 *   - snapshot volumes without a record removed, unless a loop device
 *     still holds one (the volume of a snapshot committed while mounted:
 *     an orphan until unmounted, orphans.c);
 *   - layers whose removal waits for orphans found again.
 */
#include "internal.h"

#include <tessera/fuse_server.h>

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

struct rec_list {
	char **keys;
	struct snap_rec **recs;
	size_t n, cap;
};

static int collect(const char *key, const struct snap_rec *rec, void *arg)
{
	struct rec_list *l = arg;
	uint8_t *buf;
	size_t len;
	int r;

	if (!rec)
		return 0;  /* damaged: left alone */
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 64;
		char **k = realloc(l->keys, cap * sizeof(*k));
		struct snap_rec **rr;

		if (!k)
			return -ENOMEM;
		l->keys = k;
		rr = realloc(l->recs, cap * sizeof(*rr));
		if (!rr)
			return -ENOMEM;
		l->recs = rr;
		l->cap = cap;
	}
	/* A copy: rec belongs to the walk. */
	r = snap_rec_encode(rec, &buf, &len);
	if (r)
		return r;
	r = snap_rec_decode(buf, len, &l->recs[l->n]);
	free(buf);
	if (r)
		return r;
	l->keys[l->n] = strdup(key);
	if (!l->keys[l->n]) {
		snap_rec_free(l->recs[l->n]);
		return -ENOMEM;
	}
	l->n++;
	return 0;
}

static void rec_list_free(struct rec_list *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->keys[i]);
		snap_rec_free(l->recs[i]);
	}
	free(l->keys);
	free(l->recs);
	memset(l, 0, sizeof(*l));
}

static bool volume_exists(struct snaps *s, const char *name)
{
	struct tsr_volume_info vi;

	return *name && tsr_volume_stat(s->store, name, &vi) == 0;
}

/* A commit of a mounted snapshot freezes its filesystem between its
 * pending record and its final one: a daemon killed there left it frozen.
 * (Under this daemon's FUSE mount, or a killed one's detached mount.) */
static void thaw_left_frozen(struct snaps *s, const char *volume)
{
	char image[PATH_MAX];
	int n;

	for (int i = 0; *volume && i < 2; i++) {
		if (tsr_fuse_path(i ? "" : s->fuse_mount, TSR_FUSE_VOLUME, volume, image,
				  sizeof(image)))
			continue;
		n = tsr_mount_thaw_image(image);
		if (n > 0)
			snaps_log(s, "recovery: thawed the filesystem of volume %s, left frozen "
				  "by a commit", volume);
	}
}

static void recover_pending(struct snaps *s, const char *name, struct snap_rec *rec)
{
	struct tsr_layer_id id;

	thaw_left_frozen(s, rec->volume);

	if (tsr_layer_resolve(s->store, rec->layer_name, &id) == 0) {
		rec->pending = false;
		rec->has_layer = true;
		rec->layer = id;
		snap_rec_set(&rec->volume, "");
		if (snap_rec_put(s->store, name, rec) == 0 && *rec->from_key)
			snap_rec_del(s->store, rec->from_key);
		snaps_log(s, "recovery: finished the commit of %s", name);
		snap_rec_set(&rec->from_key, "");
		return;
	}
	snap_rec_del(s->store, name);
	if (volume_exists(s, rec->volume))
		snaps_log(s, "recovery: undid the unfinished commit of %s", name);
	else
		snaps_log(s, "recovery: commit of %s lost: neither its layer nor its "
			  "volume exists", name);
}

struct unused_volumes {
	struct rec_list *live;
	char **names;
	size_t n;
};

static int find_unused(const struct tsr_volume_info *vi, void *arg)
{
	struct unused_volumes *o = arg;
	char **names;

	if (strncmp(vi->name, SNAP_NAME_PREFIX, strlen(SNAP_NAME_PREFIX)) != 0)
		return 0;
	for (size_t i = 0; i < o->live->n; i++)
		if (strcmp(o->live->recs[i]->volume, vi->name) == 0)
			return 0;
	names = realloc(o->names, (o->n + 1) * sizeof(*names));
	if (!names)
		return -ENOMEM;
	o->names = names;
	o->names[o->n] = strdup(vi->name);
	if (!o->names[o->n])
		return -ENOMEM;
	o->n++;
	return 0;
}

int snaps_recover(struct snaps *s)
{
	struct rec_list l = { 0 };
	struct unused_volumes o = { .live = &l };
	struct tsr_layer_id id;
	struct snap_rec *rec;
	int r;

	pthread_rwlock_wrlock(&s->lock);
	r = snap_rec_list(s->store, collect, &l);
	for (size_t i = 0; !r && i < l.n; i++)
		if (l.recs[i]->pending)
			recover_pending(s, l.keys[i], l.recs[i]);
	rec_list_free(&l);
	if (!r)
		r = snap_rec_list(s->store, collect, &l);
	for (size_t i = 0; !r && i < l.n; i++) {
		rec = l.recs[i];
		if (rec->kind == SNAP_COMMITTED) {
			if (tsr_layer_resolve(s->store, rec->layer_name, &id) == 0 &&
			    memcmp(&id, &rec->layer, sizeof(id)) == 0)
				continue;
			snaps_log(s, "recovery: dropped %s: its layer is gone", l.keys[i]);
		} else {
			if (volume_exists(s, rec->volume))
				continue;
			snaps_log(s, "recovery: dropped %s: its volume is gone", l.keys[i]);
		}
		snap_rec_del(s->store, l.keys[i]);
		snap_rec_set(&rec->volume, "");
	}
	if (!r)
		r = tsr_volume_list(s->store, find_unused, &o);
	for (size_t i = 0; i < o.n; i++) {
		bool kept = false;

		if (!r && orphan_volume_recover(s, o.names[i], &kept) == 0 && kept)
			snaps_log(s, "recovery: volume %s (of a snapshot committed while "
				  "mounted) is kept until it is unmounted", o.names[i]);
		else if (!r && tsr_volume_remove(s->store, o.names[i]) == 0)
			snaps_log(s, "recovery: removed volume %s (no snapshot uses it)",
				  o.names[i]);
		free(o.names[i]);
	}
	free(o.names);
	rec_list_free(&l);
	if (!r)
		r = orphans_recover(s);
	pthread_rwlock_unlock(&s->lock);
	return r;
}
