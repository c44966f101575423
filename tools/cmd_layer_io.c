/* SPDX-License-Identifier: MIT */
/*
 * `tessera layer export` and `tessera layer import`: layers moved between
 * stores as layer blobs (imagefmt/FORMAT.md).
 */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include <tessera/layer_blob.h>

int cli_layer_export(struct cli *cli, const struct cli_cmd *cmd, int argc, char **argv)
{
	struct tsr_layer_blob_info info;
	struct tsr_layer_id id;
	struct cli_progress bar;
	char hex[TSR_ID_HEX_LEN + 1], size[CLI_SIZE_BUF];
	const char *spec, *path;
	struct cli_output out = { .fd = -1 };
	bool to_stdout;
	int c, fd, r;

	c = cli_no_options(cmd, argc, argv);
	if (c != CLI_OPT_END)
		return cli_opt_status(c);
	if (cli_positionals(cmd, argc, argv, 2, 2) != CLI_OK)
		return CLI_USAGE;
	spec = argv[optind];
	path = argv[optind + 1];
	to_stdout = strcmp(path, "-") == 0;
	if (to_stdout && isatty(cli->out_fd) == 1)
		return cli_usage_err(cmd, "refusing to write a blob to a terminal");
	if (cli_open_store(cli) != CLI_OK || cli_resolve_layer(cli, spec, &id) != CLI_OK)
		return CLI_FAIL;
	if (!to_stdout) {
		r = cli_output_open(cli, path, &out);
		if (r < 0) {
			cli_errno(r, "%s", path);
			return CLI_FAIL;
		}
	}
	fd = to_stdout ? cli->out_fd : out.fd;
	cli_progress_init(&bar, cli, "export");
	r = tsr_layer_blob_write(cli->store, &id, fd, &bar.ops, &info);
	cli_progress_done(&bar);
	if (!to_stdout) {
		/* Removes PATH on failure only if this run created it. */
		int c2 = cli_output_close(&out, r == 0);

		if (r == 0 && c2 < 0) {
			cli_errno(c2, "%s", path);
			return CLI_FAIL;
		}
	}
	if (r)
		return cli_layer_err(spec, r);
	if (!to_stdout) {
		struct tsr_layer_id blob;

		memcpy(blob.bytes, info.blob_digest, TSR_DIGEST_LEN);
		tsr_layer_id_to_hex(&blob, hex);
		cli_printf("Exported layer %s to %s: %llu entries, %llu objects, %s (sha256:%s)\n",
			   spec, path, (unsigned long long)info.entries,
			   (unsigned long long)info.objects, cli_fmt_size(info.bytes, size), hex);
	}
	return CLI_OK;
}

int cli_layer_import(struct cli *cli, const struct cli_cmd *cmd, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "name", required_argument, NULL, 'n' },
		{ "max-size", required_argument, NULL, 'm' },
		CLI_LONGOPT_END,
	};
	struct tsr_layer_blob_info info;
	struct tsr_layer_id id;
	struct cli_progress bar;
	char hex[TSR_ID_HEX_LEN + 1], size[CLI_SIZE_BUF], limit[CLI_SIZE_BUF];
	const char *path, *name = NULL;
	uint64_t max_size = TSR_LAYER_BLOB_MAX_SIZE_DEFAULT;
	int c, fd, r;

	for (bool first = true;; first = false) {
		c = cli_getopt(cmd, argc, argv, "n:", longopts, first);
		if (c == CLI_OPT_END)
			break;
		if (c == 'n')
			name = optarg;
		else if (c == 'm') {
			if (cli_parse_size_opt(cmd, "--max-size", optarg, false, &max_size) != CLI_OK)
				return CLI_USAGE;
		} else
			return cli_opt_status(c);
	}
	if (cli_positionals(cmd, argc, argv, 1, 1) != CLI_OK)
		return CLI_USAGE;
	if (name && cli_check_name(cmd, "layer", name) != CLI_OK)
		return CLI_USAGE;
	path = argv[optind];
	fd = strcmp(path, "-") == 0 ? cli->in_fd : openat(cli->cwd_fd, path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		cli_errno(-errno, "%s", path);
		return CLI_FAIL;
	}
	if (cli_open_store(cli) != CLI_OK) {
		if (fd != cli->in_fd)
			close(fd);
		return CLI_FAIL;
	}
	cli_progress_init(&bar, cli, "import");
	r = tsr_layer_blob_read(cli->store, fd, name, max_size, &bar.ops, &info, &id);
	cli_progress_done(&bar);
	if (fd != cli->in_fd)
		close(fd);
	switch (r) {
	case 0:
		tsr_layer_id_to_hex(&id, hex);
		cli_printf("%s\n", hex);
		return CLI_OK;
	case -ENOENT:
		tsr_layer_id_to_hex(&info.parent, hex);
		cli_err("layer import: %s: its parent layer %s is not in the store (import the "
			"parent's blob first)", path, hex);
		return CLI_FAIL;
	case -EFBIG:
		cli_err("layer import: %s: the blob claims a layer of %s, more than the limit of "
			"%s (--max-size); the store is unchanged", path,
			cli_fmt_size(info.size, size), cli_fmt_size(max_size, limit));
		return CLI_FAIL;
	case -EINVAL:
		cli_err("layer import: %s: chunk size %u, but the store's is %u", path,
			info.chunk_size, tsr_store_chunk_size(cli->store));
		return CLI_FAIL;
	case -EBADMSG:
		cli_err("layer import: %s: not a valid layer blob, or it does not verify; the "
			"store is unchanged", path);
		return CLI_FAIL;
	case -EEXIST:
		cli_err("layer import: the name '%s' is taken by another layer", name);
		return CLI_FAIL;
	default:
		cli_errno(r, "layer import: %s", path);
		return CLI_FAIL;
	}
}
