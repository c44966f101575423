/* SPDX-License-Identifier: MIT */
/* Making and trimming the filesystem on a volume (e2fsprogs, FITRIM). */
#include <tessera/volume_fs.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* Runs argv with stdout and stderr into a pipe; the first line of output
 * goes to err on failure.  0, -ENOEXEC (not installed) or -EIO. */
static int run(char *const argv[], char *err, size_t errlen)
{
	posix_spawn_file_actions_t fa;
	char out[512];
	size_t got = 0;
	int pfd[2], status, r;
	pid_t pid;
	ssize_t n;

	if (pipe2(pfd, O_CLOEXEC) < 0)
		return -errno;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, pfd[1], STDOUT_FILENO);
	posix_spawn_file_actions_adddup2(&fa, pfd[1], STDERR_FILENO);
	r = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(pfd[1]);
	if (r) {
		close(pfd[0]);
		if (err && errlen)
			snprintf(err, errlen, "%s: %s", argv[0], strerror(r));
		return r == ENOENT ? -ENOEXEC : -r;
	}
	while ((n = read(pfd[0], out + got, sizeof(out) - 1 - got)) > 0 ||
	       (n < 0 && errno == EINTR))
		if (n > 0)
			got += (size_t)n;
	close(pfd[0]);
	out[got] = '\0';
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -errno;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	if (err && errlen) {
		char *nl = strchr(out, '\n');

		if (nl)
			*nl = '\0';
		snprintf(err, errlen, "%s failed: %s", argv[0], got ? out : "no output");
	}
	return WIFEXITED(status) && WEXITSTATUS(status) == 127 ? -ENOEXEC : -EIO;
}

int tsr_volume_fs_make(const char *image, uint32_t chunk_size, const char *label,
		       char *err, size_t errlen)
{
	char ext[96], dev[4096 + 16];
	unsigned stride = chunk_size >= 4096 ? chunk_size / 4096 : 1;
	int r;

	snprintf(ext, sizeof(ext), "stride=%u,stripe_width=%u,lazy_itable_init=1,discard", stride,
		 stride);
	{
		char *argv[] = { "mkfs.ext4", "-q", "-F", "-b", "4096", "-E", ext, "-L",
				 (char *)(label ? label : ""), (char *)image, NULL };

		r = run(argv, err, errlen);
		if (r)
			return r;
	}
	/* mke2fs always makes lost+found; an imported image must hold
	 * exactly its layers' files, so it goes (e2fsck recreates it when it
	 * needs one). */
	snprintf(dev, sizeof(dev), "%s", image);
	{
		char *argv[] = { "debugfs", "-w", "-R", "rmdir lost+found", dev, NULL };

		return run(argv, err, errlen);
	}
}

int tsr_volume_fs_trim(const char *mountpoint, uint64_t *ret_trimmed)
{
	struct fstrim_range range = { .start = 0, .len = UINT64_MAX, .minlen = 0 };
	int fd = open(mountpoint, O_RDONLY | O_DIRECTORY | O_CLOEXEC), r = 0;

	if (fd < 0)
		return -errno;
	if (ioctl(fd, FITRIM, &range) < 0)
		r = -errno;
	close(fd);
	if (!r && ret_trimmed)
		*ret_trimmed = range.len;
	return r;
}
