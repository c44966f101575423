/* SPDX-License-Identifier: MIT */
/*
 * Unix sockets with access control (<tessera/unix_socket.h>).
 *
 * Why bind in a private directory: bind(2) creates the socket file with
 * 0777 & ~umask, and changing the umask is process-wide (other threads
 * create files meanwhile).  Binding inside a fresh 0700 directory, setting
 * the group and mode there (no one else can reach or swap the file) and
 * renaming the file into place leaves no moment in which the path names a
 * socket with a wider mode, and chmod never follows a symlink an attacker
 * planted next to the socket.
 */
#include <tessera/unix_socket.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define BACKLOG_DEFAULT 16
/* Supplementary groups read on the stack before asking for more room. */
#define PEER_GROUPS_STACK 64

static int fill_addr(struct sockaddr_un *sa, const char *path)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa->sun_path))
		return -ENAMETOOLONG;
	strcpy(sa->sun_path, path);
	return 0;
}

/* Whether a server accepts connections on the socket file at path. */
static bool someone_listens(const struct sockaddr_un *sa)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool live;

	if (fd < 0)
		return false;
	live = connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0;
	close(fd);
	return live;
}

/* Builds "<dir of path>/.tsr-sock-XXXXXX" in tmpdir. */
static int private_dir_template(const char *path, char *tmpdir, size_t size)
{
	const char *slash = strrchr(path, '/');
	int n;

	if (!slash)
		n = snprintf(tmpdir, size, ".tsr-sock-XXXXXX");
	else
		n = snprintf(tmpdir, size, "%.*s/.tsr-sock-XXXXXX",
			     (int)(slash - path), path);
	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

int tsr_unix_listen(const char *path, const struct tsr_unix_listen_options *o,
		    int *ret_fd)
{
	struct sockaddr_un sa, tmp_sa;
	char tmpdir[sizeof(sa.sun_path) + 32], tmp[sizeof(tmpdir) + 4];
	mode_t mode = o && o->mode ? o->mode : TSR_UNIX_MODE_DEFAULT;
	int backlog = o && o->backlog > 0 ? o->backlog : BACKLOG_DEFAULT;
	struct stat st;
	int fd, r;

	if (mode & ~(mode_t)0777)
		return -EINVAL;
	r = fill_addr(&sa, path);
	if (r < 0)
		return r;
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode))
			return -EEXIST;  /* not ours to replace */
		if (someone_listens(&sa))
			return -EADDRINUSE;
	}
	r = private_dir_template(path, tmpdir, sizeof(tmpdir));
	if (r < 0)
		return r;
	snprintf(tmp, sizeof(tmp), "%s/s", tmpdir);
	r = fill_addr(&tmp_sa, tmp);
	if (r < 0)
		return r;
	if (!mkdtemp(tmpdir))
		return -errno;
	snprintf(tmp, sizeof(tmp), "%s/s", tmpdir);
	fill_addr(&tmp_sa, tmp);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC |
			     (o ? o->sock_flags : 0), 0);
	if (fd < 0) {
		r = -errno;
		goto out_dir;
	}
	if (bind(fd, (struct sockaddr *)&tmp_sa, sizeof(tmp_sa)) < 0 ||
	    (o && o->has_gid && chown(tmp, (uid_t)-1, o->gid) < 0) ||
	    chmod(tmp, mode) < 0 || listen(fd, backlog) < 0 ||
	    rename(tmp, path) < 0) {
		r = -errno;
		close(fd);
		unlink(tmp);
		goto out_dir;
	}
	*ret_fd = fd;
	r = 0;
out_dir:
	rmdir(tmpdir);
	return r;
}

/* Whether gid is among the peer's supplementary groups (SO_PEERGROUPS). */
static bool peer_in_group(int fd, gid_t gid)
{
	gid_t stack[PEER_GROUPS_STACK], *groups = stack;
	socklen_t len = sizeof(stack);
	bool found = false;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) < 0) {
		if (errno != ERANGE)
			return false;
		groups = malloc(len);
		if (!groups ||
		    getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) < 0) {
			free(groups);
			return false;
		}
	}
	for (size_t i = 0; i < len / sizeof(gid_t); i++)
		if (groups[i] == gid)
			found = true;
	if (groups != stack)
		free(groups);
	return found;
}

int tsr_unix_peer_check(int fd, const struct tsr_unix_policy *policy,
			uid_t *ret_uid)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return -errno;
	if (ret_uid)
		*ret_uid = cred.uid;
	if (cred.uid == 0 || cred.uid == geteuid())
		return 0;
	if (policy && policy->has_gid &&
	    (cred.gid == policy->gid || peer_in_group(fd, policy->gid)))
		return 0;
	return -EACCES;
}

const char *tsr_unix_refusal(int r, uid_t uid,
			     const struct tsr_unix_policy *policy, char *buf,
			     size_t size)
{
	char group[32] = "";

	if (r != -EACCES) {
		snprintf(buf, size, "its credentials could not be read: %s",
			 strerror(-r));
		return buf;
	}
	if (policy && policy->has_gid)
		snprintf(group, sizeof(group), " or in group %u",
			 (unsigned)policy->gid);
	snprintf(buf, size, "uid %u is not root, this process's uid%s",
		 (unsigned)uid, group);
	return buf;
}

static bool trusted_uid(uid_t uid)
{
	return uid == 0 || uid == geteuid();
}

int tsr_unix_connect_verified(const char *path, int sock_flags, int *ret_fd)
{
	struct sockaddr_un sa;
	struct ucred cred;
	socklen_t len = sizeof(cred);
	struct stat st;
	int fd, r;

	r = fill_addr(&sa, path);
	if (r < 0)
		return r;
	if (stat(path, &st) < 0)
		return -errno;
	if (!S_ISSOCK(st.st_mode))
		return -ENOTSOCK;
	if (!trusted_uid(st.st_uid))
		return -EPERM;
	/* Connected blocking: the peer's credentials are there once
	 * connect(2) returns. */
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	/* The file may have been swapped since the stat: the credentials
	 * of the process that listens are what count. */
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	if (!trusted_uid(cred.uid)) {
		close(fd);
		return -EPERM;
	}
	if ((sock_flags & SOCK_NONBLOCK) &&
	    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	*ret_fd = fd;
	return 0;
}

int tsr_unix_parse_mode(const char *s, mode_t *ret)
{
	unsigned long v;
	char *end;

	if (!s || !*s)
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 8);
	if (errno || *end || v > 0777 || s[0] == '-' || s[0] == '+')
		return -EINVAL;
	*ret = (mode_t)v;
	return 0;
}

int tsr_unix_parse_group(const char *s, gid_t *ret)
{
	struct group gr, *found = NULL;
	char buf[4096];
	unsigned long v;
	char *end;

	if (!s || !*s)
		return -EINVAL;
	if (getgrnam_r(s, &gr, buf, sizeof(buf), &found) == 0 && found) {
		*ret = found->gr_gid;
		return 0;
	}
	errno = 0;
	v = strtoul(s, &end, 10);
	if (s[0] < '0' || s[0] > '9' || errno || *end)
		return -ENOENT;
	if (v >= (unsigned long)(gid_t)-1)
		return -EINVAL;
	*ret = (gid_t)v;
	return 0;
}
