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
 * The store keeps the image (tsr_image_put: its name, its top layer, and
 * as metadata a JSON record of manifest and config digests, platform and
 * layers), and in a front-end record of its own:
 *   oci-chain/CHAINID  the layer id (32 bytes) a chain id was imported as
 */
#include "cli.h"
#include <tessera/mount_stack.h>

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <tessera/fuse_server.h>
#include <tessera/oci_image.h>
#include <tessera/volume_fs.h>

#define CHAIN_NS "oci-chain"
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

static int sha256_hex(const char *text, char out[TSR_OCI_DIGEST_MAX])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	struct tsr_layer_id id;

	if (!EVP_Digest(text, strlen(text), md, &n, EVP_sha256(), NULL) || n != TSR_DIGEST_LEN)
		return -EIO;
	memcpy(id.bytes, md, TSR_DIGEST_LEN);
	strcpy(out, "sha256:");
	tsr_layer_id_to_hex(&id, out + 7);
	return 0;
}

/* OCI chain ids: ChainID(L0) = DiffID(L0), ChainID(Ln) = SHA256(ChainID(Ln-1)
 * + " " + DiffID(Ln)).  Equal chain ids mean equal filesystem content. */
static int chain_id(const char *prev, const char *diff_id, char out[TSR_OCI_DIGEST_MAX])
{
	char text[2 * TSR_OCI_DIGEST_MAX + 2];

	if (!prev) {
		snprintf(out, TSR_OCI_DIGEST_MAX, "%s", diff_id);
		return 0;
	}
	snprintf(text, sizeof(text), "%s %s", prev, diff_id);
	return sha256_hex(text, out);
}

static int record_get_id(struct tsr_store *store, const char *ns, const char *key,
			 struct tsr_layer_id *ret)
{
	void *val;
	size_t len;
	int r = tsr_record_get(store, ns, key, &val, &len);

	if (r)
		return r;
	if (len == TSR_DIGEST_LEN)
		memcpy(ret->bytes, val, TSR_DIGEST_LEN);
	else
		r = -EBADMSG;
	free(val);
	return r;
}

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

/* Image names are references like "docker.io/library/busybox:1.36":
 * 1..255 printable bytes; '/' is allowed (the FUSE tree escapes it). */
static bool name_is_bad(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > TSR_NAME_MAX || !strcmp(name, ".") || !strcmp(name, ".."))
		return true;
	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return true;
	return false;
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

	snprintf(image, sizeof(image), "%s/volumes/%s", im->fuse_mnt, vname);
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

	if (record_get_id(im->store, CHAIN_NS, chain, ret_id) == 0 &&
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
	tsr_record_put(im->store, CHAIN_NS, chain, ret_id->bytes, TSR_DIGEST_LEN);
	return 0;
}

static int write_records(struct import *im, const char *name, char chains[][TSR_OCI_DIGEST_MAX])
{
	json_t *rec = json_object(), *layers = json_array(), *config;
	char hex[TSR_ID_HEX_LEN + 1];
	char *text;
	int r;

	config = json_loadb(im->img->config_json, im->img->config_len, 0, NULL);
	for (size_t i = 0; i < im->img->n_layers; i++) {
		json_t *l = json_object();

		tsr_layer_id_to_hex(&im->ids[i], hex);
		json_object_set_new(l, "layer", json_string(hex));
		json_object_set_new(l, "blob", json_string(im->img->layers[i].digest));
		json_object_set_new(l, "diff_id", json_string(im->img->layers[i].diff_id));
		json_object_set_new(l, "chain_id", json_string(chains[i]));
		json_object_set_new(l, "reused", json_boolean(im->reused[i]));
		json_array_append_new(layers, l);
	}
	json_object_set_new(rec, "name", json_string(name));
	json_object_set_new(rec, "manifest", json_string(im->img->manifest_digest));
	json_object_set_new(rec, "config", json_string(im->img->config_digest));
	json_object_set_new(rec, "platform", json_string(im->img->platform));
	json_object_set_new(rec, "imported", json_integer((json_int_t)time(NULL)));
	json_object_set_new(rec, "layers", layers);
	if (config)
		json_object_set_new(rec, "image_config", config);
	text = json_dumps(rec, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(rec);
	if (!text)
		return -ENOMEM;
	r = tsr_image_put(im->store, name, &im->ids[im->img->n_layers - 1], text, strlen(text));
	free(text);
	return r;
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
	if (want_name && name_is_bad(want_name))
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
	if (name_is_bad(name)) {
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
		r = chain_id(i ? chains[i - 1] : NULL, im.img->layers[i].diff_id, chains[i]);
		if (!r)
			r = import_layer(&im, i, i ? &im.ids[i - 1] : NULL, chains[i], &im.ids[i],
					 &im.reused[i]);
		if (r)
			goto out;
		im.held++;
	}
	r = write_records(&im, name, chains);
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

struct image_rec {
	json_t *root;
	const char *name, *manifest, *platform;
	json_t *layers;
	size_t n;
	time_t imported;
};

static int image_parse(const void *val, size_t len, struct image_rec *ret)
{
	json_t *root = json_loadb(val, len, 0, NULL);

	if (!root)
		return -EBADMSG;
	*ret = (struct image_rec){
		.root = root,
		.name = json_string_value(json_object_get(root, "name")),
		.manifest = json_string_value(json_object_get(root, "manifest")),
		.platform = json_string_value(json_object_get(root, "platform")),
		.layers = json_object_get(root, "layers"),
		.imported = (time_t)json_integer_value(json_object_get(root, "imported")),
	};
	ret->n = json_array_size(ret->layers);
	if (!ret->name || !ret->manifest || !json_is_array(ret->layers) || !ret->n) {
		json_decref(root);
		return -EBADMSG;
	}
	return 0;
}

/* The layer id of entry i of an image record. */
static int image_layer(const struct image_rec *im, size_t i, struct tsr_layer_id *ret)
{
	const char *hex = json_string_value(json_object_get(json_array_get(im->layers, i), "layer"));

	return hex ? tsr_layer_id_from_hex(hex, ret) : -EBADMSG;
}

static int ls_one(const char *key, const struct tsr_layer_id *top_id, const void *val,
		  size_t len, void *arg)
{
	struct image_rec im;
	struct tsr_layer_id top;
	char id[TSR_ID_HEX_LEN + 1], when[CLI_TIME_BUF];

	(void)arg;
	top = *top_id;
	if (image_parse(val, len, &im)) {
		cli_printf("%-40s (damaged record)\n", key);
		return 0;
	}
	cli_printf("%-40s %6zu  %-12s  %-12s  %s\n", key, im.n, cli_fmt_short_id(&top, id),
		   im.platform ? im.platform : "-", cli_fmt_time((uint64_t)im.imported, when));
	json_decref(im.root);
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

static int load_image(struct cli *cli, const char *name, struct image_rec *ret)
{
	void *val;
	size_t len;
	int r;

	if (cli_open_store(cli) != CLI_OK)
		return CLI_FAIL;
	r = tsr_image_get(cli->store, name, NULL, &val, &len);
	if (r == -ENOENT) {
		cli_err("image '%s': no such image", name);
		return CLI_FAIL;
	}
	if (!r) {
		r = image_parse(val, len, ret);
		free(val);
	}
	if (r) {
		cli_errno(r, "image '%s'", name);
		return CLI_FAIL;
	}
	return CLI_OK;
}

static int run_inspect(struct cli *cli, const struct cli_cmd *cmd, int argc, char **argv)
{
	struct image_rec im;
	char *text;
	int c = cli_no_options(cmd, argc, argv);

	if (c != CLI_OPT_END)
		return cli_opt_status(c);
	if (cli_positionals(cmd, argc, argv, 1, 1) != CLI_OK)
		return CLI_USAGE;
	if (load_image(cli, argv[optind], &im) != CLI_OK)
		return CLI_FAIL;
	text = json_dumps(im.root, JSON_INDENT(2) | JSON_SORT_KEYS);
	json_decref(im.root);
	if (!text) {
		cli_errno(-ENOMEM, "image inspect");
		return CLI_FAIL;
	}
	cli_printf("%s\n", text);
	free(text);
	return CLI_OK;
}

/* Drops the chain-id records whose layer is gone. */
static void forget_chain(struct tsr_store *store, const struct image_rec *im, size_t i)
{
	const char *chain = json_string_value(json_object_get(json_array_get(im->layers, i),
							       "chain_id"));
	struct tsr_layer_id id;
	struct tsr_layer_info li;

	if (chain && record_get_id(store, CHAIN_NS, chain, &id) == 0 &&
	    tsr_layer_stat(store, &id, &li) == -ENOENT)
		tsr_record_del(store, CHAIN_NS, chain);
}

static int run_rm(struct cli *cli, const struct cli_cmd *cmd, int argc, char **argv)
{
	struct image_rec im;
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
		json_decref(im.root);
		return CLI_FAIL;
	}
	for (size_t i = im.n; i-- > 0;) {
		struct tsr_layer_id id;

		r = image_layer(&im, i, &id);
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
		forget_chain(cli->store, &im, i);
	}
	json_decref(im.root);
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
