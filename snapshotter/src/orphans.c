/* SPDX-License-Identifier: MIT */
/*
 * What a snapshot leaves behind when it is committed while mounted, and
 * what waits for it.
 *
 * A Commit of a mounted active snapshot publishes a copy of its volume as
 * the layer (snapshots.c) and leaves the volume itself to whatever still
 * has it mounted: the key is gone for containerd, the volume lives on
 * without a record, an orphan.  Writes to it after the commit go nowhere
 * that containerd can see.  Once no loop device holds its image any more
 * (the unmount cleared the autoclear device), the reaper removes it.
 *
 * An orphan pins its parent layer, and the store refuses to remove a layer
 * that volumes or layers use.  A Remove of a committed snapshot whose layer
 * is an ancestor of an orphan (or of a layer that waits itself) must still
 * succeed for containerd: its layer name moves, in one step, to a name
 * under SNAP_REMOVED_PREFIX, and the reaper drops that name and its hold
 * once nothing uses the layer.  Both kinds are found again from the store
 * at start (a record-less volume that a loop device still holds; a layer
 * name with the prefix), so nothing needs a record of its own.
 *
 * The lists are under the snapshotter's lock (s->lock, exclusive to
 * change them); the reaper thread takes it like a method does.
 */
#include "internal.h"

#include <tessera/fuse_server.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define REAP_INTERVAL_MS 250
#define ANCESTRY_MAX 4096  /* a bound on parent walks, beyond any real chain */

static int list_add(char ***v, size_t *n, const char *name)
{
	char **nv = realloc(*v, (*n + 1) * sizeof(**v));

	if (!nv)
		return -ENOMEM;
	*v = nv;
	nv[*n] = strdup(name);
	if (!nv[*n])
		return -ENOMEM;
	(*n)++;
	return 0;
}

static void list_drop(char **v, size_t *n, size_t i)
{
	free(v[i]);
	v[i] = v[--*n];
}

int orphan_volume_add(struct snaps *s, const char *name)
{
	return list_add(&s->orphans.volumes, &s->orphans.n_volumes, name);
}

bool orphan_volume_is(struct snaps *s, const char *name)
{
	for (size_t i = 0; i < s->orphans.n_volumes; i++)
		if (strcmp(s->orphans.volumes[i], name) == 0)
			return true;
	return false;
}

/* Whether id is in the chain of layers from cur (when has) up. */
static bool chain_has(struct tsr_store *store, bool has, struct tsr_layer_id cur,
		      const struct tsr_layer_id *id)
{
	struct tsr_layer_info li;

	for (int depth = 0; has && depth < ANCESTRY_MAX; depth++) {
		if (memcmp(&cur, id, sizeof(cur)) == 0)
			return true;
		if (tsr_layer_stat(store, &cur, &li) != 0)
			return false;
		has = li.has_parent;
		cur = li.parent;
	}
	return false;
}

bool orphans_pin(struct snaps *s, const struct tsr_layer_id *id)
{
	struct tsr_volume_info vi;
	struct tsr_layer_info li;
	struct tsr_layer_id lid;

	for (size_t i = 0; i < s->orphans.n_volumes; i++)
		if (tsr_volume_stat(s->store, s->orphans.volumes[i], &vi) == 0 &&
		    chain_has(s->store, vi.has_parent, vi.parent, id))
			return true;
	for (size_t i = 0; i < s->orphans.n_layers; i++)
		if (tsr_layer_resolve(s->store, s->orphans.layers[i], &lid) == 0 &&
		    tsr_layer_stat(s->store, &lid, &li) == 0 &&
		    chain_has(s->store, li.has_parent, li.parent, id))
			return true;
	return false;
}

int orphan_layer_defer(struct snaps *s, const char *layer_name)
{
	const char *tail = layer_name;
	char to[TSR_NAME_MAX + 1];
	int r = -EEXIST;

	if (strncmp(tail, SNAP_NAME_PREFIX, strlen(SNAP_NAME_PREFIX)) == 0)
		tail += strlen(SNAP_NAME_PREFIX);
	/* The same content may wait under several names (one per snapshot
	 * that committed it): a number makes each unique. */
	for (unsigned n = 0; r == -EEXIST && n < 1000; n++) {
		snprintf(to, sizeof(to), "%s%.40s-%u", SNAP_REMOVED_PREFIX, tail, n);
		r = tsr_layer_name_move(s->store, layer_name, to);
	}
	if (r)
		return r;
	/* Without memory the name waits for the next start's scan. */
	list_add(&s->orphans.layers, &s->orphans.n_layers, to);
	return 0;
}

int snap_volume_attached(struct snaps *s, const char *name, bool *ret_attached)
{
	char image[PATH_MAX], dev[32];
	int r;

	*ret_attached = false;
	/* Under this daemon's FUSE mount, or as a killed one's detached
	 * mount shows it. */
	for (int i = 0; i < 2; i++) {
		r = tsr_fuse_path(i ? "" : s->fuse_mount, TSR_FUSE_VOLUME, name, image,
				  sizeof(image));
		if (!r)
			r = tsr_mount_loop_find(image, dev, sizeof(dev));
		if (r == 0) {
			*ret_attached = true;
			return 0;
		}
		if (r != -ENOENT)
			return r;
	}
	return 0;
}

static void reap_volumes(struct snaps *s)
{
	size_t i = s->orphans.n_volumes;
	const char *name;
	bool attached;
	int r;

	while (i--) {
		name = s->orphans.volumes[i];
		r = snap_volume_attached(s, name, &attached);
		if (!r && attached)
			continue;  /* still mounted somewhere */
		if (!r)
			r = tsr_volume_remove(s->store, name);
		if (r == -EBUSY)
			continue;  /* the kernel lets the image file go a moment after the device */
		if (r == 0 || r == -ENOENT)
			snaps_log(s, "removed volume %s of a snapshot committed while mounted: "
				  "it is unmounted", name);
		else
			snaps_log(s, "cannot remove volume %s of a snapshot committed while "
				  "mounted: %s (left for tessera volume rm)", name, tsr_strerror(r));
		list_drop(s->orphans.volumes, &s->orphans.n_volumes, i);
	}
}

static void reap_layers(struct snaps *s)
{
	struct tsr_layer_id id;
	bool progress = true;
	const char *name;
	int r;

	/* A layer waits for its children: removing one may free its parent
	 * in the next pass. */
	while (progress) {
		size_t i = s->orphans.n_layers;

		progress = false;
		while (i--) {
			name = s->orphans.layers[i];
			r = tsr_layer_resolve(s->store, name, &id);
			if (!r)
				r = tsr_layer_remove(s->store, &id, name);
			if (r == -EBUSY)
				continue;
			if (r && r != -ENOENT)
				snaps_log(s, "cannot remove layer %s of a removed snapshot: %s",
					  name, tsr_strerror(r));
			list_drop(s->orphans.layers, &s->orphans.n_layers, i);
			progress = true;
		}
	}
}

void orphans_reap(struct snaps *s)
{
	if (s->orphans.n_volumes)
		reap_volumes(s);
	if (s->orphans.n_layers)
		reap_layers(s);
}

/* ---- at start ------------------------------------------------------------------- */

static int find_deferred(const char *name, void *arg)
{
	struct snaps *s = arg;

	if (strncmp(name, SNAP_REMOVED_PREFIX, strlen(SNAP_REMOVED_PREFIX)) != 0)
		return 0;
	return list_add(&s->orphans.layers, &s->orphans.n_layers, name);
}

static int layer_find_deferred(const struct tsr_layer_info *info, void *arg)
{
	return tsr_layer_names(((struct snaps *)arg)->store, &info->id, find_deferred, arg);
}

int orphans_recover(struct snaps *s)
{
	int r = tsr_layer_list(s->store, layer_find_deferred, s);

	orphans_reap(s);
	return r;
}

int orphan_volume_recover(struct snaps *s, const char *name, bool *ret_kept)
{
	int r = snap_volume_attached(s, name, ret_kept);

	if (!r && *ret_kept)
		r = orphan_volume_add(s, name);
	return r;
}

/* ---- the reaper thread ------------------------------------------------------------- */

static void *reaper_main(void *arg)
{
	struct snaps *s = arg;
	struct snap_orphans *o = &s->orphans;
	struct timespec until;
	size_t waiting;

	pthread_mutex_lock(&o->lock);
	while (!o->stop) {
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_nsec += REAP_INTERVAL_MS * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&o->wake, &o->lock, &until);
		if (o->stop)
			break;
		pthread_mutex_unlock(&o->lock);
		pthread_rwlock_rdlock(&s->lock);
		waiting = o->n_volumes + o->n_layers;
		pthread_rwlock_unlock(&s->lock);
		if (waiting) {
			pthread_rwlock_wrlock(&s->lock);
			orphans_reap(s);
			pthread_rwlock_unlock(&s->lock);
		}
		pthread_mutex_lock(&o->lock);
	}
	pthread_mutex_unlock(&o->lock);
	return NULL;
}

void orphans_init(struct snap_orphans *o)
{
	pthread_condattr_t ca;

	memset(o, 0, sizeof(*o));
	pthread_mutex_init(&o->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&o->wake, &ca);
	pthread_condattr_destroy(&ca);
}

int orphans_start(struct snaps *s)
{
	int r = -pthread_create(&s->orphans.thread, NULL, reaper_main, s);

	if (!r)
		s->orphans.started = true;
	return r;
}

void orphans_fini(struct snap_orphans *o)
{
	if (o->started) {
		pthread_mutex_lock(&o->lock);
		o->stop = true;
		pthread_cond_signal(&o->wake);
		pthread_mutex_unlock(&o->lock);
		pthread_join(o->thread, NULL);
	}
	while (o->n_volumes)
		list_drop(o->volumes, &o->n_volumes, o->n_volumes - 1);
	while (o->n_layers)
		list_drop(o->layers, &o->n_layers, o->n_layers - 1);
	free(o->volumes);
	free(o->layers);
	pthread_cond_destroy(&o->wake);
	pthread_mutex_destroy(&o->lock);
}
