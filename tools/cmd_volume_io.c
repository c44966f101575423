/* SPDX-License-Identifier: MIT */
/*
 * tessera volume import/export/write/read: moving bytes between files and
 * volumes, in CLI_PIECE pieces.
 */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#define SPARSE_BLOCK 4096u

/* ---- import --------------------------------------------------------------- */

/* Size of a regular file or block device; CLI_OK or CLI_FAIL (printed). */
static int input_size(int fd, const char *path, uint64_t *ret_size)
{
	struct stat st;

	if (fstat(fd, &st) < 0) {
		cli_errno(-errno, "%s", path);
		return CLI_FAIL;
	}
	if (S_ISREG(st.st_mode)) {
		*ret_size = (uint64_t)st.st_size;
	} else if (S_ISBLK(st.st_mode)) {
		if (ioctl(fd, BLKGETSIZE64, ret_size) < 0) {
			cli_errno(-errno, "%s: cannot get the device size",
				  path);
			return CLI_FAIL;
		}
	} else {
		cli_err("%s: not a regular file or block device", path);
		return CLI_FAIL;
	}
	return CLI_OK;
}

/* Copies fd (size bytes) into vol, skipping all-zero pieces: the volume is
 * new, so they already read as zeros.  CLI_OK or CLI_FAIL (printed). */
static int import_data(struct cli *cli, struct tsr_volume *vol,
		       const char *name, int fd, const char *path,
		       uint64_t size, uint64_t *ret_data)
{
	struct cli_progress bar;
	uint64_t off = 0, data = 0;
	char *buf = malloc(CLI_PIECE);
	int status = CLI_FAIL, r;

	if (!buf) {
		cli_errno(-ENOMEM, "import");
		return CLI_FAIL;
	}
	cli_progress_init(&bar, cli, "import");
	while (off < size) {
		size_t want = size - off < CLI_PIECE ? (size_t)(size - off)
						      : CLI_PIECE;
		ssize_t n = cli_read_full(fd, buf, want);

		if (n < 0) {
			cli_errno((int)n, "%s: read", path);
			goto out;
		}
		if ((size_t)n < want) {
			cli_err("%s: ended at %llu bytes, before its size %llu",
				path, (unsigned long long)(off + (uint64_t)n),
				(unsigned long long)size);
			goto out;
		}
		if (!cli_is_zero(buf, want)) {
			r = tsr_volume_write(vol, buf, want, off);
			if (r < 0) {
				cli_errno(r, "volume '%s': write at %llu", name,
					  (unsigned long long)off);
				goto out;
			}
			data += want;
		}
		off += want;
		cli_progress_update(&bar, off, size);
	}
	r = tsr_volume_flush(vol);
	if (r < 0) {
		cli_errno(r, "volume '%s': flush", name);
		goto out;
	}
	*ret_data = data;
	status = CLI_OK;
out:
	cli_progress_done(&bar);
	free(buf);
	return status;
}

int cli_volume_import(struct cli *cli, const struct cli_cmd *cmd, int argc,
		      char **argv)
{
	const char *name, *path;
	struct tsr_volume *vol;
	char a[CLI_SIZE_BUF], b[CLI_SIZE_BUF];
	uint64_t size, data = 0;
	int fd, r, c, status = CLI_FAIL;

	c = cli_no_options(cmd, argc, argv);
	if (c != CLI_OPT_END)
		return cli_opt_status(c);
	if (cli_positionals(cmd, argc, argv, 2, 2) != CLI_OK)
		return CLI_USAGE;
	name = argv[optind];
	path = argv[optind + 1];
	if (cli_check_name(cmd, "volume", name) != CLI_OK)
		return CLI_USAGE;

	fd = openat(cli->cwd_fd, path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		cli_errno(-errno, "%s", path);
		return CLI_FAIL;
	}
	if (input_size(fd, path, &size) != CLI_OK)
		goto out_fd;
	if (size == 0) {
		cli_err("%s: is empty; a volume needs a size above 0", path);
		goto out_fd;
	}
	posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	if (cli_open_store(cli) != CLI_OK)
		goto out_fd;
	r = tsr_volume_create(cli->store, name, size, NULL);
	if (r < 0) {
		cli_volume_err(name, r);
		goto out_fd;
	}
	r = tsr_volume_open(cli->store, name, &vol);
	if (r < 0) {
		cli_volume_err(name, r);
	} else {
		status = import_data(cli, vol, name, fd, path, size, &data);
		tsr_volume_close(vol);
	}
	if (status != CLI_OK) {
		/* Do not leave a half-imported volume behind. */
		tsr_volume_remove(cli->store, name);
		goto out_fd;
	}
	cli_printf("Imported %s into volume '%s': %s, %s of it non-zero data\n",
	       path, name, cli_fmt_size(size, a), cli_fmt_size(data, b));
out_fd:
	close(fd);
	return status;
}

/* ---- export ---------------------------------------------------------------- */

/* Writes buf[0..len) at off, skipping all-zero SPARSE_BLOCK blocks (the
 * file was truncated, they are holes).  0 or -errno. */
static int write_sparse(int fd, const char *buf, size_t len, uint64_t off)
{
	size_t i = 0;

	while (i < len) {
		size_t start, blk;

		blk = len - i < SPARSE_BLOCK ? len - i : SPARSE_BLOCK;
		if (cli_is_zero(buf + i, blk)) {
			i += blk;
			continue;
		}
		start = i;
		while (i < len) {
			blk = len - i < SPARSE_BLOCK ? len - i : SPARSE_BLOCK;
			if (cli_is_zero(buf + i, blk))
				break;
			i += blk;
		}
		for (size_t done = start; done < i;) {
			ssize_t n = pwrite(fd, buf + done, i - done,
					   (off_t)(off + done));

			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0)
				return -errno;
			done += (size_t)n;
		}
	}
	return 0;
}

/* Opens the export target (cli_output.c: a failure removes only a file
 * this run created).  A regular file is emptied and sized, and written
 * sparse.  CLI_OK or CLI_FAIL (printed; nothing left open). */
static int open_output(struct cli *cli, const char *path, uint64_t size,
		       struct cli_output *o)
{
	uint64_t dev_size;
	int r;

	r = cli_output_open(cli, path, o);
	if (r < 0) {
		cli_errno(r, "%s", path);
		return CLI_FAIL;
	}
	if (o->regular) {
		if (ftruncate(o->fd, (off_t)size) < 0)
			goto fail_errno;
	} else if (S_ISBLK(o->st.st_mode)) {
		if (ioctl(o->fd, BLKGETSIZE64, &dev_size) < 0)
			goto fail_errno;
		if (dev_size < size) {
			cli_err("%s: device is smaller than the volume", path);
			cli_output_close(o, false);
			return CLI_FAIL;
		}
	}
	return CLI_OK;
fail_errno:
	cli_errno(-errno, "%s", path);
	cli_output_close(o, false);
	return CLI_FAIL;
}

static int export_data(struct cli *cli, struct tsr_volume *vol,
		       const char *name, int fd, const char *path, bool sparse)
{
	uint64_t size = tsr_volume_size(vol), off = 0;
	struct cli_progress bar;
	char *buf = malloc(CLI_PIECE);
	int status = CLI_FAIL, r;

	if (!buf) {
		cli_errno(-ENOMEM, "export");
		return CLI_FAIL;
	}
	cli_progress_init(&bar, cli, "export");
	while (off < size) {
		size_t n = size - off < CLI_PIECE ? (size_t)(size - off)
						  : CLI_PIECE;

		r = tsr_volume_read(vol, buf, n, off);
		if (r < 0) {
			cli_errno(r, "volume '%s': read at %llu", name,
				  (unsigned long long)off);
			goto out;
		}
		r = sparse ? write_sparse(fd, buf, n, off)
			   : cli_write_full(fd, buf, n);
		if (r < 0) {
			cli_errno(r, "%s: write", path);
			goto out;
		}
		off += n;
		cli_progress_update(&bar, off, size);
	}
	status = CLI_OK;
out:
	cli_progress_done(&bar);
	free(buf);
	return status;
}

int cli_volume_export(struct cli *cli, const struct cli_cmd *cmd, int argc,
		      char **argv)
{
	const char *name, *path;
	struct tsr_volume *vol;
	struct cli_output out = { .fd = -1 };
	bool to_stdout;
	int status = CLI_FAIL, c, r;

	c = cli_no_options(cmd, argc, argv);
	if (c != CLI_OPT_END)
		return cli_opt_status(c);
	if (cli_positionals(cmd, argc, argv, 2, 2) != CLI_OK)
		return CLI_USAGE;
	name = argv[optind];
	path = argv[optind + 1];
	to_stdout = strcmp(path, "-") == 0;
	if (to_stdout && isatty(cli->out_fd) == 1)
		return cli_usage_err(cmd, "refusing to write an image to a "
				     "terminal");
	if (cli_open_volume(cli, name, &vol) != CLI_OK)
		return CLI_FAIL;
	if (to_stdout) {
		path = "stdout";
		status = export_data(cli, vol, name, cli->out_fd, path, false);
		goto out_vol;
	}
	if (open_output(cli, path, tsr_volume_size(vol), &out) != CLI_OK)
		goto out_vol;
	status = export_data(cli, vol, name, out.fd, path, out.regular);
	r = cli_output_close(&out, status == CLI_OK);
	if (r < 0 && status == CLI_OK) {
		cli_errno(r, "%s: fsync or close", path);
		status = CLI_FAIL;
	}
out_vol:
	tsr_volume_close(vol);
	return status;
}

/* ---- write, read ------------------------------------------------------------ */

static int past_end(const char *name, uint64_t len, uint64_t off,
		    uint64_t size)
{
	cli_err("volume '%s': %llu bytes at offset %llu would go past its "
		"end (size %llu)", name, (unsigned long long)len,
		(unsigned long long)off, (unsigned long long)size);
	return CLI_FAIL;
}

static int write_stream(struct tsr_volume *vol, const char *name, int fd,
			const char *path, uint64_t off)
{
	uint64_t size = tsr_volume_size(vol);
	char *buf = malloc(CLI_PIECE);
	int status = CLI_FAIL, r;

	if (!buf) {
		cli_errno(-ENOMEM, "write");
		return CLI_FAIL;
	}
	for (;;) {
		ssize_t n = cli_read_full(fd, buf, CLI_PIECE);

		if (n < 0) {
			cli_errno((int)n, "%s: read", path);
			goto out;
		}
		if (n == 0)
			break;
		if ((uint64_t)n > size - off) {
			past_end(name, (uint64_t)n, off, size);
			goto out;
		}
		r = tsr_volume_write(vol, buf, (size_t)n, off);
		if (r < 0) {
			cli_errno(r, "volume '%s': write at %llu", name,
				  (unsigned long long)off);
			goto out;
		}
		off += (uint64_t)n;
	}
	r = tsr_volume_flush(vol);
	if (r < 0) {
		cli_errno(r, "volume '%s': flush", name);
		goto out;
	}
	status = CLI_OK;
out:
	free(buf);
	return status;
}

/* Parses --offset and, when len is not NULL, --length.  Returns
 * CLI_OPT_END, or CLI_OPT_HELP / CLI_OPT_BAD (printed). */
static int parse_io_opts(const struct cli_cmd *cmd, int argc, char **argv,
			 uint64_t *off, bool *have_off, uint64_t *len,
			 bool *have_len)
{
	static const struct option write_opts[] = {
		{ "offset", required_argument, NULL, 'o' },
		CLI_LONGOPT_END,
	};
	static const struct option read_opts[] = {
		{ "offset", required_argument, NULL, 'o' },
		{ "length", required_argument, NULL, 'l' },
		CLI_LONGOPT_END,
	};
	int c;

	for (bool first = true;; first = false) {
		c = len ? cli_getopt(cmd, argc, argv, "o:l:", read_opts, first)
			: cli_getopt(cmd, argc, argv, "o:", write_opts, first);
		switch (c) {
		case 'o':
			if (cli_parse_size_opt(cmd, "--offset", optarg, true,
					       off) != CLI_OK)
				return CLI_OPT_BAD;
			*have_off = true;
			break;
		case 'l':
			if (cli_parse_size_opt(cmd, "--length", optarg, true,
					       len) != CLI_OK)
				return CLI_OPT_BAD;
			*have_len = true;
			break;
		default:
			return c;
		}
	}
}

int cli_volume_write(struct cli *cli, const struct cli_cmd *cmd, int argc,
		      char **argv)
{
	const char *name, *path = "-";
	struct tsr_volume *vol;
	uint64_t off = 0, size, in_size;
	bool have_off = false;
	int fd = cli->in_fd, status, c;

	c = parse_io_opts(cmd, argc, argv, &off, &have_off, NULL, NULL);
	if (c != CLI_OPT_END)
		return cli_opt_status(c);
	if (cli_positionals(cmd, argc, argv, 1, 2) != CLI_OK)
		return CLI_USAGE;
	if (!have_off)
		return cli_usage_err(cmd, "--offset is required");
	name = argv[optind];
	if (optind + 1 < argc)
		path = argv[optind + 1];
	if (strcmp(path, "-") == 0) {
		path = "stdin";
	} else {
		fd = openat(cli->cwd_fd, path, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			cli_errno(-errno, "%s", path);
			return CLI_FAIL;
		}
	}
	status = CLI_FAIL;
	if (cli_open_volume(cli, name, &vol) != CLI_OK)
		goto out_fd;
	size = tsr_volume_size(vol);
	if (off > size) {
		past_end(name, 0, off, size);
		goto out_vol;
	}
	/* A file's length is known: refuse before writing anything. */
	if (fd != cli->in_fd && input_size(fd, path, &in_size) == CLI_OK &&
	    in_size > size - off) {
		past_end(name, in_size, off, size);
		goto out_vol;
	}
	status = write_stream(vol, name, fd, path, off);
out_vol:
	tsr_volume_close(vol);
out_fd:
	if (fd != cli->in_fd)
		close(fd);
	return status;
}

int cli_volume_read(struct cli *cli, const struct cli_cmd *cmd, int argc,
		      char **argv)
{
	const char *name;
	struct tsr_volume *vol;
	uint64_t off = 0, len = 0, size;
	bool have_off = false, have_len = false;
	char *buf = NULL;
	int status, r, c;

	c = parse_io_opts(cmd, argc, argv, &off, &have_off, &len, &have_len);
	if (c != CLI_OPT_END)
		return cli_opt_status(c);
	if (cli_positionals(cmd, argc, argv, 1, 1) != CLI_OK)
		return CLI_USAGE;
	name = argv[optind];
	if (cli_open_volume(cli, name, &vol) != CLI_OK)
		return CLI_FAIL;
	status = CLI_FAIL;
	size = tsr_volume_size(vol);
	if (off > size) {
		past_end(name, 0, off, size);
		goto out;
	}
	if (!have_len)
		len = size - off;
	if (len > size - off) {
		past_end(name, len, off, size);
		goto out;
	}
	buf = malloc(CLI_PIECE);
	if (!buf) {
		cli_errno(-ENOMEM, "read");
		goto out;
	}
	while (len > 0) {
		size_t n = len < CLI_PIECE ? (size_t)len : CLI_PIECE;

		r = tsr_volume_read(vol, buf, n, off);
		if (r < 0) {
			cli_errno(r, "volume '%s': read at %llu", name,
				  (unsigned long long)off);
			goto out;
		}
		r = cli_write_full(cli->out_fd, buf, n);
		if (r < 0) {
			cli_errno(r, "stdout");
			goto out;
		}
		off += n;
		len -= n;
	}
	status = CLI_OK;
out:
	free(buf);
	tsr_volume_close(vol);
	return status;
}
