/* SPDX-License-Identifier: MIT */
/*
 * The command line's side of the control socket (the protocol and the
 * server are the daemon module's, <tessera/daemon.h>): forwarding a command
 * to the daemon that owns the store, and running a forwarded one in the
 * daemon on the descriptors the client handed over.
 */
#include "cli.h"

#include <tessera/daemon.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

int cli_control_forward(const char *store_dir, int argc, char **argv, int *ret_status)
{
	int fds[TSR_CONTROL_NFDS] = { STDIN_FILENO, STDOUT_FILENO, STDERR_FILENO, -1 };
	int sock, r;

	/* No socket, or one left by a daemon that died: run locally, where
	 * the store lock says who (if anyone) owns the store.  A socket that
	 * another user serves (or could have planted) gets nothing. */
	r = tsr_control_connect(store_dir, &sock);
	if (r == -EPERM)
		return r;
	if (r < 0)
		return 0;
	fds[3] = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fds[3] < 0) {
		r = -errno;
		close(sock);
		return r;
	}
	r = tsr_control_call(sock, argc, argv, fds, ret_status);
	close(fds[3]);
	close(sock);
	if (r == -E2BIG)
		return 0;  /* beyond the protocol: the local run says who owns it */
	return r < 0 ? r : 1;
}

int cli_control_run(void *arg, const struct tsr_control_request *req)
{
	const struct cli *daemon = arg;
	const int *fds = req->fds;
	struct cli cli = {
		.store_dir = daemon->store_dir,
		.store = daemon->store,
		.store_borrowed = true,
		.run_command_line = daemon->run_command_line,
		.in_fd = fds[0],
		.out_fd = fds[1],
		.err_fd = fds[2],
		.cwd_fd = fds[3],
		.out = fdopen(dup(fds[1]), "w"),
		.err = fdopen(dup(fds[2]), "w"),
		.progress = isatty(fds[2]) == 1,
	};
	int status = CLI_FAIL;

	if (cli.out && cli.err) {
		status = cli.run_command_line(&cli, req->argc, req->argv);
		fflush(cli.out);
		fflush(cli.err);
	}
	if (cli.out)
		fclose(cli.out);
	if (cli.err)
		fclose(cli.err);
	return status;
}
