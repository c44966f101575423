/* SPDX-License-Identifier: MIT */
/*
 * The namespace: MNT/{volumes,layers,layers/by-name,images} and their
 * entries, and the paths of those entries (fuse_server.h).
 *
 * Nothing here is cached in the daemon: every lookup, getattr and readdir
 * asks the store, so volumes and layers created or removed while mounted
 * appear and disappear (within TSR_FUSE_ENTRY_TIMEOUT for names the kernel
 * has cached; at once for new names).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>

#include <tessera/image_store.h>

#include "fuse_internal.h"

#define LINK_TARGET_LEN (3 + TSR_ID_HEX_LEN)  /* "../" + id */
#define IMAGE_TARGET_LEN (10 + TSR_ID_HEX_LEN) /* "../layers/" + id */

static bool is_dir_ino(fuse_ino_t ino)
{
	return ino == TSR_INO_ROOT || ino == TSR_INO_VOLUMES ||
	       ino == TSR_INO_LAYERS || ino == TSR_INO_BY_NAME || ino == TSR_INO_IMAGES;
}

static void fill_common(struct tsr_fuse *fuse, struct stat *st, fuse_ino_t ino)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	st->st_uid = fuse->uid;
	st->st_gid = fuse->gid;
	st->st_nlink = 1;
	st->st_blksize = fuse->chunk_size;
}

static void fill_dir(struct tsr_fuse *fuse, struct stat *st, fuse_ino_t ino)
{
	fill_common(fuse, st, ino);
	st->st_mode = S_IFDIR | 0755;
	st->st_nlink = 2;
	st->st_mtim.tv_sec = st->st_ctim.tv_sec = st->st_atim.tv_sec =
		fuse->mounted_at;
}

static void fill_volume(struct tsr_fuse *fuse, struct stat *st, fuse_ino_t ino,
			const struct tsr_volume_info *info)
{
	fill_common(fuse, st, ino);
	st->st_mode = S_IFREG | 0644;
	st->st_size = (off_t)info->size;
	st->st_blocks = (blkcnt_t)(info->allocated_bytes / 512);
	st->st_mtim.tv_sec = st->st_ctim.tv_sec = st->st_atim.tv_sec =
		(time_t)info->created;
}

static void fill_layer(struct tsr_fuse *fuse, struct stat *st, fuse_ino_t ino,
		       const struct tsr_layer_info *info)
{
	fill_common(fuse, st, ino);
	st->st_mode = S_IFREG | 0444;
	st->st_size = (off_t)info->size;
	/* Its own data chunks: what removing it could give back at most. */
	st->st_blocks = (blkcnt_t)(info->data_chunks * fuse->chunk_size / 512);
	st->st_mtim.tv_sec = st->st_ctim.tv_sec = st->st_atim.tv_sec =
		(time_t)info->created;
}

static void fill_link(struct tsr_fuse *fuse, struct stat *st, fuse_ino_t ino)
{
	fill_common(fuse, st, ino);
	st->st_mode = S_IFLNK | 0777;
	st->st_size = LINK_TARGET_LEN;
}

static void fill_image_link(struct tsr_fuse *fuse, struct stat *st, fuse_ino_t ino)
{
	fill_common(fuse, st, ino);
	st->st_mode = S_IFLNK | 0777;
	st->st_size = IMAGE_TARGET_LEN;
}

/* ---- image names ------------------------------------------------------------ */
/* Image names may hold '/' ("docker.io/library/busybox:1.36"): in the tree,
 * '/' is "%2F" and '%' is "%25", so every image is one file name. */

int tsr_fuse_image_file_name(const char *name, char *out, size_t len)
{
	size_t o = 0;

	for (; *name; name++) {
		const char *rep = *name == '/' ? "%2F" : *name == '%' ? "%25" : NULL;
		size_t n = rep ? 3 : 1;

		if (o + n >= len || o + n > TSR_NAME_MAX)
			return -ENAMETOOLONG;
		memcpy(out + o, rep ? rep : name, n);
		o += n;
	}
	out[o] = '\0';
	return 0;
}

int tsr_fuse_path(const char *mnt, enum tsr_fuse_kind kind, const char *name, char *out,
		  size_t len)
{
	char file[TSR_NAME_MAX + 1];
	const char *dir = kind == TSR_FUSE_VOLUME ? "volumes"
			  : kind == TSR_FUSE_LAYER ? "layers" : "images";
	int n;

	if (kind == TSR_FUSE_IMAGE) {
		if (tsr_fuse_image_file_name(name, file, sizeof(file)))
			return -ENAMETOOLONG;
		name = file;
	}
	n = snprintf(out, len, "%s/%s/%s", mnt, dir, name);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

static int image_name_unescape(const char *file, char *out, size_t len)
{
	size_t o = 0;

	for (; *file; o++) {
		if (o + 1 >= len)
			return -ENOENT;
		if (file[0] == '%' && file[1] == '2' && file[2] == 'F') {
			out[o] = '/';
			file += 3;
		} else if (file[0] == '%' && file[1] == '2' && file[2] == '5') {
			out[o] = '%';
			file += 3;
		} else if (file[0] == '%') {
			return -ENOENT; /* one spelling per name */
		} else {
			out[o] = *file++;
		}
	}
	out[o] = '\0';
	return 0;
}

/* The top layer of the image whose file name is file: 0 or -ENOENT. */
static int resolve_image(struct tsr_store *store, const char *file, struct tsr_layer_id *ret)
{
	char name[TSR_NAME_MAX + 1];

	if (image_name_unescape(file, name, sizeof(name)))
		return -ENOENT;
	return tsr_image_get(store, name, ret, NULL, NULL);
}

/* ---- layer names ---------------------------------------------------------- */

struct name_match {
	bool found;
	struct tsr_layer_id id;
};

static int name_match_fn(const struct tsr_layer_id *id, const char *name,
			 void *arg)
{
	struct name_match *m = arg;

	if (name) {  /* a match by name, not by id prefix */
		m->found = true;
		m->id = *id;
	}
	return 0;
}

/* The layer that name (a layer name, not an id) points at: 0 or -ENOENT. */
static int resolve_layer_name(struct tsr_store *store, const char *name,
			      struct tsr_layer_id *ret_id)
{
	struct name_match m = { 0 };
	int r = tsr_layer_matches(store, name, name_match_fn, &m);

	if (r < 0)
		return r;
	if (!m.found)
		return -ENOENT;
	*ret_id = m.id;
	return 0;
}

/* A layer id from its canonical (lower-case, full) hex form only, so that
 * one layer has one path. */
static int layer_id_from_name(const char *name, struct tsr_layer_id *ret_id)
{
	char hex[TSR_ID_HEX_LEN + 1];

	if (tsr_layer_id_from_hex(name, ret_id))
		return -ENOENT;
	tsr_layer_id_to_hex(ret_id, hex);
	return strcmp(hex, name) ? -ENOENT : 0;
}

int tsr_fuse_node_stat(struct tsr_fuse *fuse, const struct tsr_node *node,
		       struct stat *st)
{
	struct tsr_volume_info vinfo;
	struct tsr_layer_info linfo;
	struct tsr_layer_id id;
	int r;

	switch (node->kind) {
	case TSR_NODE_VOLUME:
		r = tsr_volume_stat(fuse->store, node->key, &vinfo);
		if (r == -ENOENT || (!r && vinfo.id != node->vol_id))
			return -ESTALE;
		if (!r)
			fill_volume(fuse, st, node->ino, &vinfo);
		return r;
	case TSR_NODE_LAYER:
		r = layer_id_from_name(node->key, &id);
		if (!r)
			r = tsr_layer_stat(fuse->store, &id, &linfo);
		if (r == -ENOENT)
			return -ESTALE;
		if (!r)
			fill_layer(fuse, st, node->ino, &linfo);
		return r;
	case TSR_NODE_LINK:
		r = resolve_layer_name(fuse->store, node->key, &id);
		if (r == -ENOENT)
			return -ESTALE;
		if (!r)
			fill_link(fuse, st, node->ino);
		return r;
	case TSR_NODE_IMAGE:
		r = resolve_image(fuse->store, node->key, &id);
		if (r == -ENOENT)
			return -ESTALE;
		if (!r)
			fill_image_link(fuse, st, node->ino);
		return r;
	case TSR_NODE_DIR:
		break;
	}
	fill_dir(fuse, st, node->ino);
	return 0;
}

/* ---- lookup / forget ------------------------------------------------------- */

static int lookup_dynamic(struct tsr_fuse *fuse, fuse_ino_t parent,
			  const char *name, struct fuse_entry_param *e)
{
	struct tsr_volume_info vinfo;
	struct tsr_layer_info linfo;
	struct tsr_layer_id id;
	struct tsr_node *node;
	int r;

	switch (parent) {
	case TSR_INO_VOLUMES:
		r = tsr_volume_stat(fuse->store, name, &vinfo);
		if (r)
			return r;
		r = tsr_inode_lookup(&fuse->inodes, TSR_NODE_VOLUME, name,
				     vinfo.id, &node);
		if (r)
			return r;
		fill_volume(fuse, &e->attr, node->ino, &vinfo);
		break;
	case TSR_INO_LAYERS:
		r = layer_id_from_name(name, &id);
		if (!r)
			r = tsr_layer_stat(fuse->store, &id, &linfo);
		if (r)
			return r;
		r = tsr_inode_lookup(&fuse->inodes, TSR_NODE_LAYER, name, 0,
				     &node);
		if (r)
			return r;
		fill_layer(fuse, &e->attr, node->ino, &linfo);
		break;
	case TSR_INO_BY_NAME:
		r = resolve_layer_name(fuse->store, name, &id);
		if (r)
			return r;
		r = tsr_inode_lookup(&fuse->inodes, TSR_NODE_LINK, name, 0,
				     &node);
		if (r)
			return r;
		fill_link(fuse, &e->attr, node->ino);
		break;
	case TSR_INO_IMAGES:
		r = resolve_image(fuse->store, name, &id);
		if (r)
			return r;
		r = tsr_inode_lookup(&fuse->inodes, TSR_NODE_IMAGE, name, 0, &node);
		if (r)
			return r;
		fill_image_link(fuse, &e->attr, node->ino);
		break;
	default:
		return is_dir_ino(parent) ? -ENOENT : -ENOTDIR;
	}
	e->ino = node->ino;
	return 0;
}

void tsr_fuse_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct tsr_fuse *fuse = tsr_fuse_from_req(req);
	struct fuse_entry_param e;
	fuse_ino_t fixed = 0;
	int r = 0;

	memset(&e, 0, sizeof(e));
	if (strlen(name) > TSR_NAME_MAX) {
		fuse_reply_err(req, ENAMETOOLONG);
		return;
	}
	if (parent == TSR_INO_ROOT && !strcmp(name, "volumes"))
		fixed = TSR_INO_VOLUMES;
	else if (parent == TSR_INO_ROOT && !strcmp(name, "layers"))
		fixed = TSR_INO_LAYERS;
	else if (parent == TSR_INO_LAYERS && !strcmp(name, "by-name"))
		fixed = TSR_INO_BY_NAME;
	else if (parent == TSR_INO_ROOT && !strcmp(name, "images"))
		fixed = TSR_INO_IMAGES;
	else if (parent == TSR_INO_ROOT)
		r = -ENOENT;
	else
		r = lookup_dynamic(fuse, parent, name, &e);

	if (fixed) {
		/* Fixed directories are not counted: forget ignores them. */
		e.ino = fixed;
		fill_dir(fuse, &e.attr, fixed);
	}
	if (r) {
		/* ENOENT, not a negative entry: new names show at once. */
		fuse_reply_err(req, -r);
		return;
	}
	e.entry_timeout = TSR_FUSE_ENTRY_TIMEOUT;
	e.attr_timeout = TSR_FUSE_ATTR_TIMEOUT;
	fuse_reply_entry(req, &e);
}

void tsr_fuse_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	tsr_inode_forget(&tsr_fuse_from_req(req)->inodes, ino, nlookup);
	fuse_reply_none(req);
}

void tsr_fuse_forget_multi(fuse_req_t req, size_t count,
			   struct fuse_forget_data *forgets)
{
	struct tsr_fuse *fuse = tsr_fuse_from_req(req);

	for (size_t i = 0; i < count; i++)
		tsr_inode_forget(&fuse->inodes, forgets[i].ino,
				 forgets[i].nlookup);
	fuse_reply_none(req);
}

/* ---- attributes --------------------------------------------------------------- */

/* 0 with *st filled, or a negative errno (-ENOENT for an unknown inode). */
static int stat_ino(struct tsr_fuse *fuse, fuse_ino_t ino, struct stat *st,
		    struct tsr_node **ret_node)
{
	struct tsr_node *node;

	*ret_node = NULL;
	if (is_dir_ino(ino)) {
		fill_dir(fuse, st, ino);
		return 0;
	}
	node = tsr_inode_get(&fuse->inodes, ino);
	if (!node)
		return -ENOENT;
	*ret_node = node;
	return tsr_fuse_node_stat(fuse, node, st);
}

void tsr_fuse_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct tsr_node *node;
	struct stat st;
	int r = stat_ino(tsr_fuse_from_req(req), ino, &st, &node);

	(void)fi;
	if (r)
		fuse_reply_err(req, -r);
	else
		fuse_reply_attr(req, &st, TSR_FUSE_ATTR_TIMEOUT);
}

/*
 * Images have fixed sizes and owners.  A size change is -EINVAL (what
 * ftruncate on a block device gives); setting the size an image has already
 * succeeds (qemu-img and dd do it).  Mode and owner changes are -EPERM,
 * anything on a layer -EROFS.  Time updates are accepted and not kept.
 */
void tsr_fuse_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
		      int to_set, struct fuse_file_info *fi)
{
	struct tsr_node *node;
	struct stat st;
	int r = stat_ino(tsr_fuse_from_req(req), ino, &st, &node);

	(void)fi;
	if (!r && node && node->kind == TSR_NODE_LAYER)
		r = -EROFS;
	else if (!r && (to_set & (FUSE_SET_ATTR_MODE | FUSE_SET_ATTR_UID |
				  FUSE_SET_ATTR_GID)))
		r = -EPERM;
	else if (!r && (to_set & FUSE_SET_ATTR_SIZE) &&
		 (!node || node->kind != TSR_NODE_VOLUME ||
		  attr->st_size != st.st_size))
		r = -EINVAL;
	if (r)
		fuse_reply_err(req, -r);
	else
		fuse_reply_attr(req, &st, TSR_FUSE_ATTR_TIMEOUT);
}

void tsr_fuse_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct tsr_fuse *fuse = tsr_fuse_from_req(req);
	struct tsr_node *node = tsr_inode_get(&fuse->inodes, ino);
	char target[IMAGE_TARGET_LEN + 1] = "../";
	struct tsr_layer_id id;
	int r;

	if (node && node->kind == TSR_NODE_IMAGE) {
		r = resolve_image(fuse->store, node->key, &id);
		if (r) {
			fuse_reply_err(req, r == -ENOENT ? ESTALE : -r);
			return;
		}
		strcpy(target, "../layers/");
		tsr_layer_id_to_hex(&id, target + 10);
		fuse_reply_readlink(req, target);
		return;
	}
	if (!node || node->kind != TSR_NODE_LINK) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	r = resolve_layer_name(fuse->store, node->key, &id);
	if (r) {
		fuse_reply_err(req, r == -ENOENT ? ESTALE : -r);
		return;
	}
	tsr_layer_id_to_hex(&id, target + 3);
	fuse_reply_readlink(req, target);
}

void tsr_fuse_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct tsr_fuse *fuse = tsr_fuse_from_req(req);
	struct statvfs sv;

	(void)ino;
	memset(&sv, 0, sizeof(sv));
	sv.f_bsize = fuse->chunk_size;
	sv.f_frsize = fuse->chunk_size;
	sv.f_namemax = TSR_NAME_MAX;
	fuse_reply_statfs(req, &sv);
}

/* ---- directories ------------------------------------------------------------ */

/* A snapshot of one directory, taken when it is read from offset 0; the
 * offset of an entry is its index + 1. */
struct dir_entry {
	fuse_ino_t ino;
	mode_t type;
	char *name;
};

struct dir_handle {
	size_t count, cap;
	struct dir_entry *ents;
	int err;   /* first error of a list callback */
};

static void dir_clear(struct dir_handle *d)
{
	for (size_t i = 0; i < d->count; i++)
		free(d->ents[i].name);
	free(d->ents);
	d->ents = NULL;
	d->count = d->cap = 0;
	d->err = 0;
}

static int dir_add(struct dir_handle *d, const char *name, fuse_ino_t ino,
		   mode_t type)
{
	if (d->count == d->cap) {
		size_t cap = d->cap ? 2 * d->cap : 16;
		struct dir_entry *e = realloc(d->ents, cap * sizeof(*e));

		if (!e)
			return -ENOMEM;
		d->ents = e;
		d->cap = cap;
	}
	d->ents[d->count].name = strdup(name);
	if (!d->ents[d->count].name)
		return -ENOMEM;
	/* readdir's d_ino is informational: the node's number when the
	 * kernel has looked the name up, else FUSE's "unknown". */
	d->ents[d->count].ino = ino ? ino : 0xffffffffu;
	d->ents[d->count].type = type;
	d->count++;
	return 0;
}

struct list_ctx {
	struct tsr_fuse *fuse;
	struct dir_handle *d;
	size_t nids;
	size_t cap;
	struct tsr_layer_id *ids;
};

static int list_volume_fn(const struct tsr_volume_info *info, void *arg)
{
	struct list_ctx *c = arg;

	return dir_add(c->d, info->name,
		       tsr_inode_peek(&c->fuse->inodes, TSR_NODE_VOLUME,
				      info->name),
		       S_IFREG);
}

static int list_layer_fn(const struct tsr_layer_info *info, void *arg)
{
	struct list_ctx *c = arg;

	if (c->nids == c->cap) {
		size_t cap = c->cap ? 2 * c->cap : 16;
		struct tsr_layer_id *ids = realloc(c->ids, cap * sizeof(*ids));

		if (!ids)
			return -ENOMEM;
		c->ids = ids;
		c->cap = cap;
	}
	c->ids[c->nids++] = info->id;
	return 0;
}

static int list_name_fn(const char *name, void *arg)
{
	struct list_ctx *c = arg;

	return dir_add(c->d, name,
		       tsr_inode_peek(&c->fuse->inodes, TSR_NODE_LINK, name),
		       S_IFLNK);
}

static int list_image_fn(const char *name, const struct tsr_layer_id *top, const void *meta,
			 size_t len, void *arg)
{
	struct list_ctx *c = arg;
	char file[TSR_NAME_MAX + 1];

	(void)top;
	(void)meta;
	(void)len;
	if (tsr_fuse_image_file_name(name, file, sizeof(file)))
		return 0; /* not representable as a file name: not listed */
	return dir_add(c->d, file, tsr_inode_peek(&c->fuse->inodes, TSR_NODE_IMAGE, file),
		       S_IFLNK);
}

static int dir_fill(struct tsr_fuse *fuse, fuse_ino_t ino, struct dir_handle *d)
{
	struct list_ctx c = { .fuse = fuse, .d = d };
	fuse_ino_t parent = ino == TSR_INO_BY_NAME ? TSR_INO_LAYERS
						   : TSR_INO_ROOT;
	char hex[TSR_ID_HEX_LEN + 1];
	int r;

	r = dir_add(d, ".", ino, S_IFDIR);
	if (!r)
		r = dir_add(d, "..", parent, S_IFDIR);
	if (r)
		return r;
	switch (ino) {
	case TSR_INO_ROOT:
		r = dir_add(d, "volumes", TSR_INO_VOLUMES, S_IFDIR);
		if (!r)
			r = dir_add(d, "layers", TSR_INO_LAYERS, S_IFDIR);
		if (!r)
			r = dir_add(d, "images", TSR_INO_IMAGES, S_IFDIR);
		return r;
	case TSR_INO_IMAGES:
		return tsr_image_list(fuse->store, list_image_fn, &c);
	case TSR_INO_VOLUMES:
		return tsr_volume_list(fuse->store, list_volume_fn, &c);
	case TSR_INO_LAYERS:
		r = dir_add(d, "by-name", TSR_INO_BY_NAME, S_IFDIR);
		if (!r)
			r = tsr_layer_list(fuse->store, list_layer_fn, &c);
		for (size_t i = 0; !r && i < c.nids; i++) {
			tsr_layer_id_to_hex(&c.ids[i], hex);
			r = dir_add(d, hex,
				    tsr_inode_peek(&fuse->inodes,
						   TSR_NODE_LAYER, hex),
				    S_IFREG);
		}
		break;
	case TSR_INO_BY_NAME:
		/* Ids first, names after: no store call inside a list
		 * callback. */
		r = tsr_layer_list(fuse->store, list_layer_fn, &c);
		for (size_t i = 0; !r && i < c.nids; i++) {
			r = tsr_layer_names(fuse->store, &c.ids[i],
					    list_name_fn, &c);
			if (r == -ENOENT)  /* removed meanwhile */
				r = 0;
		}
		break;
	default:
		return -ENOTDIR;
	}
	free(c.ids);
	return r;
}

void tsr_fuse_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct dir_handle *d;

	if (!is_dir_ino(ino)) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	d = calloc(1, sizeof(*d));
	if (!d) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	fi->fh = (uintptr_t)d;
	if (fuse_reply_open(req, fi) == -ENOENT)  /* interrupted */
		free(d);
}

void tsr_fuse_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		      struct fuse_file_info *fi)
{
	struct tsr_fuse *fuse = tsr_fuse_from_req(req);
	struct dir_handle *d = (struct dir_handle *)(uintptr_t)fi->fh;
	size_t pos = 0;
	char *buf;
	int r;

	if (off == 0) {
		dir_clear(d);
		r = dir_fill(fuse, ino, d);
		if (r) {
			dir_clear(d);
			fuse_reply_err(req, -r);
			return;
		}
	}
	buf = malloc(size);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	for (size_t i = off < 0 ? d->count : (size_t)off; i < d->count; i++) {
		struct stat st = {
			.st_ino = d->ents[i].ino,
			.st_mode = d->ents[i].type,
		};
		size_t need = fuse_add_direntry(req, buf + pos, size - pos,
						d->ents[i].name, &st,
						(off_t)(i + 1));

		if (need > size - pos)
			break;
		pos += need;
	}
	fuse_reply_buf(req, buf, pos);
	free(buf);
}

void tsr_fuse_releasedir(fuse_req_t req, fuse_ino_t ino,
			 struct fuse_file_info *fi)
{
	struct dir_handle *d = (struct dir_handle *)(uintptr_t)fi->fh;

	(void)ino;
	dir_clear(d);
	free(d);
	fuse_reply_err(req, 0);
}
