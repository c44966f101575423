/* SPDX-License-Identifier: MIT */
/*
 * `tessera image import | ls | inspect | rm`: container images as chains of
 * tessera layers, without containerd.
 *
 * Import: the archive is opened and every blob verified (imagefmt's
 * oci_image.h); then for each layer, base first, a volume on the previous
 * layer (the first gets a fresh ext4: volume_fs.h) is served by a FUSE
 * mount of this process, attached to a loop device and mounted; the layer
 * tar is applied to it, its free space trimmed, and it is committed.  A
 * layer whose OCI chain id was imported before is reused (a hold, no
 * work).  The image's record names the layers; it holds one hold on each.
 *
 * The image's record and the chain-id records that let a later import
 * reuse a layer are imagefmt's (image_store.h).
 */
#include "cli.h"
#include <tessera/mount_stack.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <tessera/fuse_server.h>
#include <tessera/image_store.h>
#include <tessera/oci_image.h>
#include <tessera/volume_fs.h>

#define DEFAULT_IMAGE_SIZE (8ull << 30)
#define COMMIT_BUSY_RETRIES 200 /* x 50 ms: the kernel releases the image late */

struct import {
	struct cli *cli;
	struct tsr_store *store;
	struct tsr_oci_image *img;
	char run_dir[64];           /* TSR_MOUNT_RUN_DIR/import-XXXXXX */
	char fuse_mnt[80];          /* run_dir/fuse */
	char root[80];              /* run_dir/root */
	char work_dir[PATH_MAX];    /* extracted blobs */
	struct tsr_fuse *fuse;
	pthread_t serve_thread;
	bool serving;
	struct tsr_layer_id *ids;   /* layers held for the image so far */
	bool *reused;
	size_t held;
	uint64_t size;
};

/* ---- helpers ------------------------------------------------------------------ */

static void *serve_main(void *arg)
{
	struct import *im = arg;

	tsr_fuse_serve(im->fuse);
	return NULL;
}

/* The path of FILE for this run: relative paths resolve against the
 * client's directory when the command was forwarded to a daemon. */
static void client_path(const struct cli *cli, const char *file, char *buf, size_t len)
{
	if (file[0] == '/' || cli->cwd_fd == AT_FDCWD)
		snprintf(buf, len, "%s", file);
	else
		snprintf(buf, len, "/proc/self/fd/%d/%s", cli->cwd_fd, file);
}

/* ---- the FUSE mount and the per-layer stack -------------------------------------- */

static int import_setup(struct import *im)
{
	struct tsr_fuse_options fo = { 0 };
	int r;

	snprintf(im->run_dir, sizeof(im->run_dir), TSR_MOUNT_RUN_DIR "/import-XXXXXX");
	if (mkdir(TSR_MOUNT_RUN_DIR, 0755) < 0 && errno != EEXIST)
		return -errno;
	if (!mkdtemp(im->run_dir)) {
		im->run_dir[0] = '\0';
		return -errno;
	}
	snprintf(im->fuse_mnt, sizeof(im->fuse_mnt), "%s/fuse", im->run_dir);
	snprintf(im->root, sizeof(im->root), "%s/root", im->run_dir);
	if (mkdir(im->fuse_mnt, 0700) < 0 || mkdir(im->root, 0755) < 0)
		return -errno;
	snprintf(im->work_dir, sizeof(im->work_dir), "/var/tmp/tessera-import-XXXXXX");
	if (!mkdtemp(im->work_dir)) {
		im->work_dir[0] = '\0';
		return -errno;
	}
	fo.mountpoint = im->fuse_mnt;
	r = tsr_fuse_mount(im->store, &fo, &im->fuse);
	if (r)
		return r;
	r = -pthread_create(&im->serve_thread, NULL, serve_main, im);
	if (r)
		return r;
	im->serving = true;
	return 0;
}

static void import_teardown(struct import *im)
{
	if (im->serving) {
		tsr_fuse_exit(im->fuse);
		pthread_join(im->serve_thread, NULL);
	}
	if (im->fuse)
		tsr_fuse_destroy(im->fuse);
	if (im->run_dir[0]) {
		rmdir(im->root);
		rmdir(im->fuse_mnt);
		rmdir(im->run_dir);
	}
	if (im->work_dir[0]) {
		tsr_oci_workdir_clean(im->work_dir);
		rmdir(im->work_dir);
	}
	tsr_oci_image_free(im->img);
}

/* Applies layer i to volume vname (mounted through loop), then trims. */
static int apply_on_volume(struct import *im, size_t i, const char *vname, bool fresh)
{
	const struct tsr_oci_layer *l = &im->img->layers[i];
	struct tsr_oci_apply_stats st;
	char image[PATH_MAX + 300], err[512];
	struct tsr_image_mount m;
	enum tsr_mount_step step;
	int r, r2;

	r = tsr_fuse_path(im->fuse_mnt, TSR_FUSE_VOLUME, vname, image, sizeof(image));
	if (r) {
		cli_errno(r, "image import: the image file of volume %s", vname);
		return r;
	}
	if (fresh) {
		r = tsr_volume_fs_make(image, tsr_store_chunk_size(im->store), NULL, err,
				       sizeof(err));
		if (r) {
			cli_err("image import: making the filesystem: %s", err);
			return r;
		}
	}
	r = tsr_mount_image(image, im->root, "ext4", 0, &m, &step);
	if (r) {
		if (step == TSR_MOUNT_STEP_ATTACH)
			cli_errno(r, "image import: attaching %s to a loop device", image);
		else
			cli_errno(r, "image import: mounting %s", m.loop_dev);
		return r;
	}
	r = tsr_oci_apply_layer(l->path, im->root, &st, err, sizeof(err));
	if (r)
		cli_err("image import: layer %zu (%s): %s", i + 1, l->digest, err);
	else if ((r = tsr_volume_fs_trim(im->root, NULL)) < 0)
		cli_errno(r, "image import: trimming layer %zu", i + 1);
	r2 = tsr_unmount_image(im->root, m.loop_dev, image, &step);
	if (r2 && !r && step == TSR_MOUNT_STEP_UNMOUNT) {
		r = r2;
		cli_errno(r, "image import: unmounting layer %zu", i + 1);
	}
	if (!r)
		fprintf(cli_errf(), "layer %zu/%zu: %s: %llu entries, %llu files, %llu whiteouts\n",
			i + 1, im->img->n_layers, l->digest, (unsigned long long)st.entries,
			(unsigned long long)st.files,
			(unsigned long long)(st.whiteouts + st.opaques));
	return r;
}

/* Commits vname; the kernel may still hold the image file open for a
 * moment after the loop device let go of it. */
static int commit_volume(struct import *im, const char *vname, struct tsr_layer_id *ret_id)
{
	for (int tries = 0;; tries++) {
		struct tsr_volume *vol;
		int r = tsr_volume_open(im->store, vname, &vol);

		if (!r)
			r = tsr_volume_commit(vol, NULL, NULL, ret_id);
		if (r != -EBUSY || tries == COMMIT_BUSY_RETRIES)
			return r;
		usleep(50 * 1000);
	}
}

/* Imports layer i on parent (NULL for the base); *ret_id gets a layer
 * holding one hold for the image. */
static int import_layer(struct import *im, size_t i, const struct tsr_layer_id *parent,
			const char *chain, struct tsr_layer_id *ret_id, bool *ret_reused)
{
	struct tsr_layer_info li;
	char vname[64];
	int r;

	if (tsr_oci_chain_get(im->store, chain, ret_id) == 0 &&
	    tsr_layer_stat(im->store, ret_id, &li) == 0 &&
	    (i == 0 ? !li.has_parent
		    : li.has_parent && !memcmp(li.parent.bytes, parent->bytes, TSR_DIGEST_LEN))) {
		*ret_reused = true;
		fprintf(cli_errf(), "layer %zu/%zu: %s: already in the store\n", i + 1,
			im->img->n_layers, im->img->layers[i].digest);
		return tsr_layer_hold(im->store, ret_id);
	}
	*ret_reused = false;
	snprintf(vname, sizeof(vname), "image-import.%ld.%zu", (long)getpid(), i);
	r = tsr_volume_create(im->store, vname, parent ? 0 : im->size, parent);
	if (r) {
		cli_errno(r, "image import: creating volume %s", vname);
		return r;
	}
	r = apply_on_volume(im, i, vname, parent == NULL);
	if (!r) {
		r = commit_volume(im, vname, ret_id);
		if (r)
			cli_errno(r, "image import: committing layer %zu", i + 1);
	}
	if (r) {
		tsr_volume_remove(im->store, vname);
		return r;
	}
	/* The chain id names this layer from now on (a later import of an
	 * image sharing the base finds it). */
	tsr_oci_chain_put(im->store, chain, ret_id);
	return 0;
}

static int run_import(struct cli *cli, const struct cli_cmd *cmd, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "name", required_argument, NULL, 'n' },
		{ "size", required_argument, NULL, 's' },
		{ "platform", required_argument, NULL, 'p' },
		{ "ref", required_argument, NULL, 'r' },
		CLI_LONGOPT_END,
	};
	struct tsr_oci_open_opts oo = { .flags = TSR_OCI_VERIFY_DIFF_IDS };
	struct import im = { .cli = cli, .size = DEFAULT_IMAGE_SIZE };
	char path[PATH_MAX + 64], err[512], name[TSR_NAME_MAX + 1] = "";
	char (*chains)[TSR_OCI_DIGEST_MAX] = NULL;
	const char *want_name = NULL;
	int c, r, status = CLI_FAIL;

	for (bool first = true;; first = false) {
		c = cli_getopt(cmd, argc, argv, "n:s:p:r:", longopts, first);
		if (c == CLI_OPT_END)
			break;
		switch (c) {
		case 'n':
			want_name = optarg;
			break;
		case 's':
			if (cli_parse_size_opt(cmd, "--size", optarg, false, &im.size) != CLI_OK)
				return CLI_USAGE;
			break;
		case 'p':
			oo.platform = optarg;
			break;
		case 'r':
			oo.ref = optarg;
			break;
		default:
			return cli_opt_status(c);
		}
	}
	if (cli_positionals(cmd, argc, argv, 1, 1) != CLI_OK)
		return CLI_USAGE;
	if (want_name && !tsr_image_name_ok(want_name))
		return cli_usage_err(cmd, "'%s' cannot name an image", want_name);
	if (geteuid() != 0) {
		cli_err("image import: needs root (it mounts each layer's filesystem)");
		return CLI_FAIL;
	}
	if (cli_open_store(cli) != CLI_OK)
		return CLI_FAIL;
	im.store = cli->store;
	client_path(cli, argv[optind], path, sizeof(path));
	r = import_setup(&im);
	if (r) {
		cli_errno(r, "image import: setting up");
		goto out;
	}
	r = tsr_oci_image_open(path, im.work_dir, &oo, &im.img, err, sizeof(err));
	if (r) {
		cli_err("image import: %s: %s", argv[optind], err);
		goto out;
	}
	if (!im.img->n_layers) {
		cli_err("image import: %s: the image has no layers", argv[optind]);
		goto out;
	}
	snprintf(name, sizeof(name), "%s",
		 want_name ? want_name : im.img->ref_name ? im.img->ref_name
							 : im.img->manifest_digest);
	if (!tsr_image_name_ok(name)) {
		cli_err("image import: '%s' cannot name an image; give --name", name);
		goto out;
	}
	if (tsr_image_get(im.store, name, NULL, NULL, NULL) == 0) {
		cli_err("image import: an image named '%s' exists (tessera image rm %s)", name,
			name);
		goto out;
	}
	im.ids = calloc(im.img->n_layers, sizeof(*im.ids));
	im.reused = calloc(im.img->n_layers, sizeof(*im.reused));
	chains = calloc(im.img->n_layers, sizeof(*chains));
	if (!im.ids || !im.reused || !chains) {
		cli_errno(-ENOMEM, "image import");
		goto out;
	}
	for (size_t i = 0; i < im.img->n_layers; i++) {
		r = tsr_oci_chain_id(i ? chains[i - 1] : NULL, im.img->layers[i].diff_id,
				     chains[i]);
		if (!r)
			r = import_layer(&im, i, i ? &im.ids[i - 1] : NULL, chains[i], &im.ids[i],
					 &im.reused[i]);
		if (r)
			goto out;
		im.held++;
	}
	r = tsr_image_record_write(im.store, name, im.img, im.ids, im.reused, chains);
	if (r) {
		cli_errno(r, "image import: recording image '%s'", name);
		goto out;
	}
	{
		char hex[TSR_ID_HEX_LEN + 1];

		tsr_layer_id_to_hex(&im.ids[im.img->n_layers - 1], hex);
		cli_printf("%s %s\n", name, hex);
	}
	status = CLI_OK;
out:
	if (status != CLI_OK) {
		/* Drop what this import held, top first. */
		while (im.held > 0) {
			im.held--;
			tsr_layer_remove(im.store, &im.ids[im.held], NULL);
		}
	}
	import_teardown(&im);
	free(im.ids);
	free(im.reused);
	free(chains);
	return status;
}

/* ---- ls, inspect, rm ------------------------------------------------------------- */

static int ls_one(const char *key, const struct tsr_layer_id *top_id, const void *val,
		  size_t len, void *arg)
{
	struct tsr_image_record im;
	struct tsr_layer_id top;
	char id[TSR_ID_HEX_LEN + 1], when[CLI_TIME_BUF];

	(void)arg;
	top = *top_id;
	if (tsr_image_record_parse(val, len, &im)) {
		cli_printf("%-40s (damaged record)\n", key);
		return 0;
	}
	cli_printf("%-40s %6zu  %-12s  %-12s  %s\n", key, im.n_layers, cli_fmt_short_id(&top, id),
		   im.platform ? im.platform : "-", cli_fmt_time((uint64_t)im.imported, when));
	tsr_image_record_free(&im);
	return 0;
}

static int run_ls(struct cli *cli, const struct cli_cmd *cmd, int argc, char **argv)
{
	int c = cli_no_options(cmd, argc, argv), r;

	if (c != CLI_OPT_END)
		return cli_opt_status(c);
	if (cli_positionals(cmd, argc, argv, 0, 0) != CLI_OK)
		return CLI_USAGE;
	if (cli_open_store(cli) != CLI_OK)
		return CLI_FAIL;
	cli_printf("%-40s %6s  %-12s  %-12s  %s\n", "NAME", "LAYERS", "TOP LAYER", "PLATFORM",
		   "IMPORTED");
	r = tsr_image_list(cli->store, ls_one, NULL);
	if (r) {
		cli_errno(r, "image ls");
		return CLI_FAIL;
	}
	return CLI_OK;
}

static int load_image(struct cli *cli, const char *name, struct tsr_image_record *ret)
{
	int r;

	if (cli_open_store(cli) != CLI_OK)
		return CLI_FAIL;
	r = tsr_image_record_load(cli->store, name, ret);
	if (r == -ENOENT) {
		cli_err("image '%s': no such image", name);
		return CLI_FAIL;
	}
	if (r) {
		cli_errno(r, "image '%s'", name);
		return CLI_FAIL;
	}
	return CLI_OK;
}

static int run_inspect(struct cli *cli, const struct cli_cmd *cmd, int argc, char **argv)
{
	struct tsr_image_record im;
	char *text;
	int c = cli_no_options(cmd, argc, argv);

	if (c != CLI_OPT_END)
		return cli_opt_status(c);
	if (cli_positionals(cmd, argc, argv, 1, 1) != CLI_OK)
		return CLI_USAGE;
	if (load_image(cli, argv[optind], &im) != CLI_OK)
		return CLI_FAIL;
	text = tsr_image_record_text(&im);
	tsr_image_record_free(&im);
	if (!text) {
		cli_errno(-ENOMEM, "image inspect");
		return CLI_FAIL;
	}
	cli_printf("%s\n", text);
	free(text);
	return CLI_OK;
}

static int run_rm(struct cli *cli, const struct cli_cmd *cmd, int argc, char **argv)
{
	struct tsr_image_record im;
	const char *name;
	int c = cli_no_options(cmd, argc, argv), r, status = CLI_OK;

	if (c != CLI_OPT_END)
		return cli_opt_status(c);
	if (cli_positionals(cmd, argc, argv, 1, 1) != CLI_OK)
		return CLI_USAGE;
	name = argv[optind];
	if (load_image(cli, name, &im) != CLI_OK)
		return CLI_FAIL;
	/* The image goes first: a crash after this leaves holds nothing
	 * drops, never an image naming layers that are gone. */
	r = tsr_image_remove(cli->store, name);
	if (r) {
		cli_errno(r, "image rm: '%s'", name);
		tsr_image_record_free(&im);
		return CLI_FAIL;
	}
	for (size_t i = im.n_layers; i-- > 0;) {
		struct tsr_layer_id id;

		r = tsr_image_record_layer(&im, i, &id);
		if (!r)
			r = tsr_layer_remove(cli->store, &id, NULL);
		if (r == -EBUSY) {
			char hex[TSR_ID_HEX_LEN + 1];

			tsr_layer_id_to_hex(&id, hex);
			cli_err("image rm: layer %s of '%s' is the parent of other layers or "
				"volumes: kept", hex, name);
			status = CLI_FAIL;
			break;
		}
		if (r && r != -ENOENT) {
			cli_errno(r, "image rm: layer %zu of '%s'", i + 1, name);
			status = CLI_FAIL;
			break;
		}
		tsr_oci_chain_forget(cli->store, &im, i);
	}
	tsr_image_record_free(&im);
	return status;
}

static const struct cli_cmd image_cmds[] = {
	{
		.name = "import",
		.path = "image import",
		.args = "FILE [--name NAME] [--size SIZE] [--platform OS/ARCH] [--ref REF]",
		.summary = "Imports a container image archive as a chain of layers, one per "
			   "image layer; prints the image name and its top layer id.",
		.details = "FILE is an OCI image layout tar (skopeo copy ... oci-archive:, or a "
			   "tar of a umoci\nlayout) or a 'docker save' tar.  Every blob is "
			   "verified against the manifest.\nEach layer is applied (whiteouts, "
			   "hard links, devices, owners, modes, mtimes,\nxattrs) to an ext4 "
			   "filesystem on a volume over the previous layer, then\ncommitted.  "
			   "Layers already imported (same OCI chain id) are reused.\n"
			   "Options:\n"
			   "  --name NAME          the image's name (default: its ref name, or "
			   "its manifest\n"
			   "                       digest)\n"
			   "  --size SIZE          size of the image's filesystem (default 8G)\n"
			   "  --platform OS/ARCH   which manifest of a multi-platform image "
			   "(default:\n"
			   "                       the only one, else linux/amd64)\n"
			   "  --ref REF            which manifest, by its ref name annotation\n"
			   "Needs root.  Mount the result with 'tessera mount --rootfs NAME MNT'.\n",
		.run = run_import,
	},
	{
		.name = "ls",
		.path = "image ls",
		.args = "",
		.summary = "Lists the images: name, layers, top layer, platform, import time.",
		.run = run_ls,
	},
	{
		.name = "inspect",
		.path = "image inspect",
		.args = "NAME",
		.summary = "Prints the record of image NAME as JSON: manifest and config "
			   "digests, its layers (tessera layer, blob, diff id, chain id) and "
			   "the image config.",
		.run = run_inspect,
	},
	{
		.name = "rm",
		.path = "image rm",
		.args = "NAME",
		.summary = "Removes image NAME and drops its hold on each of its layers; "
			   "layers no other image or volume uses are removed (their chunks "
			   "go with 'tessera gc').",
		.run = run_rm,
	},
	{ 0 },
};

const struct cli_cmd cli_cmd_image = {
	.name = "image",
	.path = "image",
	.args = "COMMAND [ARGS...]",
	.summary = "Imports, lists, inspects and removes container images.",
	.subs = image_cmds,
};
