/* SPDX-License-Identifier: MIT */
/*
 * `tessera image import | ls | inspect | rm`: container images as chains of
 * tessera layers, without containerd.
 *
 * Import: the archive is opened and every blob verified (imagefmt's
 * oci_image.h) in a private work dir, then imported layer by layer
 * (imagefmt's oci_import.h).  This file serves the store over a FUSE mount
 * of this process for the duration (the library reaches each volume's
 * image file through it), prints the library's progress and errors, and
 * cleans up.
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
#include <tessera/oci_import.h>

#define DEFAULT_IMAGE_SIZE (8ull << 30)

struct import {
	struct tsr_oci_image *img;
	char run_dir[64];           /* TSR_MOUNT_RUN_DIR/import-XXXXXX */
	char fuse_mnt[80];          /* run_dir/fuse */
	char root[80];              /* run_dir/root */
	char work_dir[PATH_MAX];    /* extracted blobs */
	struct tsr_fuse *fuse;
	pthread_t serve_thread;
	bool serving;
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

/* ---- the FUSE mount the import reaches the volumes through ------------------------ */

static int import_setup(struct import *im, struct tsr_store *store)
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
	r = tsr_fuse_mount(store, &fo, &im->fuse);
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

/* oci_import.h's volume_file: the volume's file under our FUSE mount. */
static int volume_file(void *arg, const char *volume, char *buf, size_t len)
{
	const struct import *im = arg;

	return tsr_fuse_path(im->fuse_mnt, TSR_FUSE_VOLUME, volume, buf, len);
}

static void print_progress(void *arg, const struct tsr_oci_import_progress *p)
{
	(void)arg;
	if (p->reused)
		fprintf(cli_errf(), "layer %zu/%zu: %s: already in the store\n", p->layer + 1,
			p->n_layers, p->digest);
	else
		fprintf(cli_errf(), "layer %zu/%zu: %s: %llu entries, %llu files, %llu whiteouts\n",
			p->layer + 1, p->n_layers, p->digest,
			(unsigned long long)p->stats->entries,
			(unsigned long long)p->stats->files,
			(unsigned long long)(p->stats->whiteouts + p->stats->opaques));
}

/* The caps not given: the whole import at most what the work dir's and
 * the store's filesystems can take (tsr_oci_extract_cap), one layer at
 * most the whole. */
static int default_caps(const struct import *im, const char *store_dir,
			struct tsr_oci_open_opts *oo)
{
	uint64_t work, store;
	int r;

	if (!oo->max_total) {
		r = tsr_oci_extract_cap_for(im->work_dir, &work);
		if (!r)
			r = tsr_oci_extract_cap_for(store_dir, &store);
		if (r)
			return r;
		oo->max_total = work < store ? work : store;
	}
	if (!oo->max_blob || oo->max_blob > oo->max_total)
		oo->max_blob = oo->max_total;
	return 0;
}

static int run_import(struct cli *cli, const struct cli_cmd *cmd, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "name", required_argument, NULL, 'n' },
		{ "size", required_argument, NULL, 's' },
		{ "platform", required_argument, NULL, 'p' },
		{ "ref", required_argument, NULL, 'r' },
		{ "max-extract", required_argument, NULL, 'X' },
		{ "max-layer", required_argument, NULL, 'L' },
		CLI_LONGOPT_END,
	};
	struct tsr_oci_open_opts oo = { .flags = TSR_OCI_VERIFY_DIFF_IDS };
	struct import im = { 0 };
	struct tsr_oci_import_opts io = {
		.size = DEFAULT_IMAGE_SIZE, .mount_dir = im.root,
		.volume_file = volume_file, .volume_file_arg = &im,
		.progress = print_progress,
	};
	struct tsr_oci_import_fail fail = { 0 };
	struct tsr_layer_id top;
	char path[PATH_MAX + 64], err[1024], name[TSR_NAME_MAX + 1];
	int c, r, status = CLI_FAIL;

	for (bool first = true;; first = false) {
		c = cli_getopt(cmd, argc, argv, "n:s:p:r:X:L:", longopts, first);
		if (c == CLI_OPT_END)
			break;
		switch (c) {
		case 'n':
			io.name = optarg;
			break;
		case 's':
			if (cli_parse_size_opt(cmd, "--size", optarg, false, &io.size) != CLI_OK)
				return CLI_USAGE;
			break;
		case 'p':
			oo.platform = optarg;
			break;
		case 'r':
			oo.ref = optarg;
			break;
		case 'X':
			if (cli_parse_size_opt(cmd, "--max-extract", optarg, false,
					       &oo.max_total) != CLI_OK)
				return CLI_USAGE;
			break;
		case 'L':
			if (cli_parse_size_opt(cmd, "--max-layer", optarg, false,
					       &oo.max_blob) != CLI_OK)
				return CLI_USAGE;
			break;
		default:
			return cli_opt_status(c);
		}
	}
	if (cli_positionals(cmd, argc, argv, 1, 1) != CLI_OK)
		return CLI_USAGE;
	if (io.name && !tsr_image_name_ok(io.name))
		return cli_usage_err(cmd, "'%s' cannot name an image", io.name);
	if (geteuid() != 0) {
		cli_err("image import: needs root (it mounts each layer's filesystem)");
		return CLI_FAIL;
	}
	if (cli_open_store(cli) != CLI_OK)
		return CLI_FAIL;
	client_path(cli, argv[optind], path, sizeof(path));
	r = import_setup(&im, cli->store);
	if (r) {
		cli_errno(r, "image import: setting up");
		goto out;
	}
	r = default_caps(&im, cli->store_dir, &oo);
	if (r) {
		cli_errno(r, "image import: free space of %s", im.work_dir);
		goto out;
	}
	r = tsr_oci_image_open(path, im.work_dir, &oo, &im.img, err, sizeof(err));
	if (r == -EFBIG) {
		cli_err("image import: %s (--max-extract, --max-layer)", err);
		goto out;
	}
	if (r) {
		cli_err("image import: %s: %s", argv[optind], err);
		goto out;
	}
	r = tsr_oci_import(cli->store, im.img, &io, name, sizeof(name), &top, &fail, err,
			   sizeof(err));
	if (r == -EEXIST && fail.step == TSR_OCI_IMPORT_NAME)
		cli_err("image import: %s (tessera image rm %s)", err, name);
	else if (r == -EINVAL && fail.step == TSR_OCI_IMPORT_NAME)
		cli_err("image import: %s; give --name", err);
	else if (r == -EINVAL && !im.img->n_layers)
		cli_err("image import: %s: %s", argv[optind], err);
	else if (r)
		cli_err("image import: %s", err);
	if (!r) {
		char hex[TSR_ID_HEX_LEN + 1];

		tsr_layer_id_to_hex(&top, hex);
		cli_printf("%s %s\n", name, hex);
		status = CLI_OK;
	}
out:
	import_teardown(&im);
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
		.args = "FILE [--name NAME] [--size SIZE] [--platform OS/ARCH] [--ref REF] "
			"[--max-extract SIZE] [--max-layer SIZE]",
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
			   "  --max-extract SIZE   at most SIZE bytes extracted in all: the blobs "
			   "written\n"
			   "                       to the work dir plus what compressed layers "
			   "expand to\n"
			   "                       (default: the free space of the work dir's "
			   "and the\n"
			   "                       store's filesystems less a margin, at most "
			   "256G)\n"
			   "  --max-layer SIZE     at most SIZE bytes for one blob or one layer "
			   "expanded\n"
			   "                       (default: the --max-extract cap)\n"
			   "                       Past a cap the import stops while "
			   "decompressing and\n"
			   "                       leaves nothing behind.\n"
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
