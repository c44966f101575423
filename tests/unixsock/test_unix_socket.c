/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of <tessera/unix_socket.h>: the socket file's mode whatever
 * the umask, stale and foreign files, the SO_PEERCRED policy and the
 * client's check of the server.  The tests that need another uid run
 * only as root (they fork a child that drops to nobody).
 */
#include <check.h>
#include <grp.h>
#include <signal.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <tessera/unix_socket.h>

#include "../unit/check_run.h"

#define NOBODY 65534

static char dir[] = "/tmp/tsr-unixsock-XXXXXX";
static char path[128];

static void setup(void)
{
	strcpy(dir, "/tmp/tsr-unixsock-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	/* Reachable by nobody, for the tests that drop privileges. */
	chmod(dir, 0755);
	snprintf(path, sizeof(path), "%s/s.sock", dir);
}

static void teardown(void)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	ck_assert_int_eq(system(cmd), 0);
}

static int entries_in_dir(void)
{
	char cmd[256];
	FILE *f;
	int n = -1;

	snprintf(cmd, sizeof(cmd), "ls -A %s | wc -l", dir);
	f = popen(cmd, "r");
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(fscanf(f, "%d", &n), 1);
	pclose(f);
	return n;
}

static int connect_plain(const char *p)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	strcpy(sa.sun_path, p);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -errno;
	}
	return fd;
}

START_TEST(mode_ignores_umask)
{
	mode_t old = umask(0);
	struct stat st;
	int fd;

	ck_assert_int_eq(tsr_unix_listen(path, NULL, &fd), 0);
	umask(old);
	ck_assert_int_eq(lstat(path, &st), 0);
	ck_assert(S_ISSOCK(st.st_mode));
	ck_assert_int_eq(st.st_mode & 07777, 0600);
	ck_assert_int_eq(st.st_uid, geteuid());
	/* Only the socket is left in the directory: the private one used
	 * for the bind is gone. */
	ck_assert_int_eq(entries_in_dir(), 1);
	close(fd);
}
END_TEST

START_TEST(mode_and_group)
{
	struct tsr_unix_listen_options o = {
		.mode = 0660, .has_gid = true, .gid = 100,
	};
	struct stat st;
	int fd;

	if (geteuid() != 0)
		return;  /* chown to another group needs root */
	umask(022);
	ck_assert_int_eq(tsr_unix_listen(path, &o, &fd), 0);
	ck_assert_int_eq(lstat(path, &st), 0);
	ck_assert_int_eq(st.st_mode & 07777, 0660);
	ck_assert_int_eq(st.st_gid, 100);
	close(fd);
	o.mode = 01777;
	ck_assert_int_eq(tsr_unix_listen(path, &o, &fd), -EINVAL);
}
END_TEST

START_TEST(stale_live_and_foreign)
{
	struct stat st;
	int fd, fd2, c;

	ck_assert_int_eq(tsr_unix_listen(path, NULL, &fd), 0);
	/* Someone listens: refused, and the live socket still works. */
	ck_assert_int_eq(tsr_unix_listen(path, NULL, &fd2), -EADDRINUSE);
	c = connect_plain(path);
	ck_assert_int_ge(c, 0);
	close(c);
	/* Nobody listens any more: replaced. */
	close(fd);
	ck_assert_int_eq(tsr_unix_listen(path, NULL, &fd), 0);
	c = connect_plain(path);
	ck_assert_int_ge(c, 0);
	close(c);
	close(fd);
	/* A regular file is never replaced. */
	unlink(path);
	fd = open(path, O_CREAT | O_WRONLY, 0644);
	ck_assert_int_ge(fd, 0);
	close(fd);
	ck_assert_int_eq(tsr_unix_listen(path, NULL, &fd), -EEXIST);
	ck_assert_int_eq(lstat(path, &st), 0);
	ck_assert(S_ISREG(st.st_mode));
	ck_assert_int_eq(entries_in_dir(), 1);
}
END_TEST

START_TEST(parse)
{
	mode_t m;
	gid_t g;

	ck_assert_int_eq(tsr_unix_parse_mode("0660", &m), 0);
	ck_assert_int_eq(m, 0660);
	ck_assert_int_eq(tsr_unix_parse_mode("600", &m), 0);
	ck_assert_int_eq(m, 0600);
	ck_assert_int_eq(tsr_unix_parse_mode("1777", &m), -EINVAL);
	ck_assert_int_eq(tsr_unix_parse_mode("08", &m), -EINVAL);
	ck_assert_int_eq(tsr_unix_parse_mode("", &m), -EINVAL);
	ck_assert_int_eq(tsr_unix_parse_group("root", &g), 0);
	ck_assert_int_eq(g, 0);
	ck_assert_int_eq(tsr_unix_parse_group("4242", &g), 0);
	ck_assert_int_eq(g, 4242);
	ck_assert_int_eq(tsr_unix_parse_group("no-such-group-xyz", &g),
			 -ENOENT);
}
END_TEST

/* Forks a child that becomes uid/gid nobody (with extra group `extra`
 * unless it is 0) and connects to path; returns its pid. */
static pid_t connect_as_nobody(gid_t extra)
{
	pid_t pid = fork();

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		gid_t groups[1] = { extra };
		int fd;

		if (setgroups(extra ? 1 : 0, groups) < 0 ||
		    setresgid(NOBODY, NOBODY, NOBODY) < 0 ||
		    setresuid(NOBODY, NOBODY, NOBODY) < 0)
			_exit(2);
		fd = connect_plain(path);
		if (fd < 0)
			_exit(3);
		/* Held until the server has looked at us. */
		char b;
		(void)read(fd, &b, 1);
		_exit(0);
	}
	return pid;
}

static int check_child(int lfd, const struct tsr_unix_policy *pol,
		       uid_t *uid)
{
	int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC), r;

	ck_assert_int_ge(c, 0);
	r = tsr_unix_peer_check(c, pol, uid);
	close(c);
	return r;
}

START_TEST(peer_policy)
{
	struct tsr_unix_listen_options o = { .mode = 0666 };
	struct tsr_unix_policy pol = { .has_gid = true, .gid = 4242 };
	uid_t uid = 0;
	int lfd, c, st;
	pid_t pid;

	if (geteuid() != 0)
		return;
	ck_assert_int_eq(tsr_unix_listen(path, &o, &lfd), 0);
	/* Ourselves: allowed. */
	c = connect_plain(path);
	ck_assert_int_ge(c, 0);
	ck_assert_int_eq(check_child(lfd, NULL, NULL), 0);
	close(c);
	/* Another uid: refused by default and naming it. */
	pid = connect_as_nobody(0);
	ck_assert_int_eq(check_child(lfd, NULL, &uid), -EACCES);
	ck_assert_int_eq(uid, NOBODY);
	{
		char why[128];

		ck_assert_str_eq(tsr_unix_refusal(-EACCES, uid, &pol, why,
						  sizeof(why)),
				 "uid 65534 is not root, this process's uid "
				 "or in group 4242");
	}
	waitpid(pid, &st, 0);
	ck_assert_int_eq(WEXITSTATUS(st), 0);
	/* Not in the policy's group: refused. */
	pid = connect_as_nobody(0);
	ck_assert_int_eq(check_child(lfd, &pol, NULL), -EACCES);
	waitpid(pid, &st, 0);
	/* A supplementary member of it: allowed. */
	pid = connect_as_nobody(4242);
	ck_assert_int_eq(check_child(lfd, &pol, NULL), 0);
	waitpid(pid, &st, 0);
	ck_assert_int_eq(WEXITSTATUS(st), 0);
	close(lfd);
}
END_TEST

START_TEST(client_verifies_server)
{
	int lfd, fd, pipefd[2], st;
	char b;
	pid_t pid;

	/* Our own server: connected. */
	ck_assert_int_eq(tsr_unix_listen(path, NULL, &lfd), 0);
	ck_assert_int_eq(tsr_unix_connect_verified(path, SOCK_NONBLOCK, &fd),
			 0);
	ck_assert(fcntl(fd, F_GETFL) & O_NONBLOCK);
	close(fd);
	close(lfd);
	unlink(path);
	ck_assert_int_eq(tsr_unix_connect_verified(dir, 0, &fd), -ENOTSOCK);
	if (geteuid() != 0)
		return;
	/* A server of another uid (socket file and process): refused
	 * before anything could be sent. */
	ck_assert_int_eq(pipe(pipefd), 0);
	chmod(dir, 0777);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct tsr_unix_listen_options o = { .mode = 0666 };
		int r;

		if (setresgid(NOBODY, NOBODY, NOBODY) < 0 ||
		    setresuid(NOBODY, NOBODY, NOBODY) < 0)
			_exit(2);
		r = tsr_unix_listen(path, &o, &lfd);
		if (r < 0)
			_exit(10 - r);
		(void)write(pipefd[1], "r", 1);
		for (;;)
			pause();  /* until the parent kills it */
	}
	close(pipefd[1]);
	if (read(pipefd[0], &b, 1) != 1) {
		waitpid(pid, &st, 0);
		ck_abort_msg("the server of nobody did not start: %d",
			     WEXITSTATUS(st));
	}
	ck_assert_int_eq(tsr_unix_connect_verified(path, 0, &fd), -EPERM);
	/* Even with the socket file handed to root, the listening
	 * process's uid refuses it. */
	ck_assert_int_eq(chown(path, 0, 0), 0);
	ck_assert_int_eq(tsr_unix_connect_verified(path, 0, &fd), -EPERM);
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	close(pipefd[0]);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("unix_socket");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, mode_ignores_umask);
	tcase_add_test(tc, mode_and_group);
	tcase_add_test(tc, stale_live_and_foreign);
	tcase_add_test(tc, parse);
	tcase_add_test(tc, peer_policy);
	tcase_add_test(tc, client_verifies_server);
	suite_add_tcase(s, tc);
	return tsr_run_suite(s);
}
