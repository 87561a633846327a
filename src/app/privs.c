/*
 * Privileges: started as root, cgiq binds its sockets and opens its files,
 * then becomes --user/--group before any program runs.
 */
#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "app/app.h"

/* A user or group given by name, or as a number (as in chown). */
static int privs_number(const char *s, unsigned long *out)
{
	char *end;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	*out = strtoul(s, &end, 10);
	return errno == 0 && *end == '\0' && *out < UINT_MAX ? 0 : -EINVAL;
}

int app__privs_resolve(const char *user, const char *group, struct app__privs *out)
{
	unsigned long n;

	memset(out, 0, sizeof(*out));
	if (user == NULL)
		return 0;
	struct passwd *pw = getpwnam(user);
	if (pw == NULL && privs_number(user, &n) == 0)
		pw = getpwuid((uid_t)n);
	if (pw == NULL) {
		fprintf(stderr, "cgiq: --user %s: no such user\n", user);
		return -ENOENT;
	}
	out->active = 1;
	out->uid = pw->pw_uid;
	out->gid = pw->pw_gid;
	snprintf(out->user, sizeof(out->user), "%s", pw->pw_name);
	if (group != NULL) {
		struct group *gr = getgrnam(group);
		if (gr == NULL && privs_number(group, &n) == 0)
			gr = getgrgid((gid_t)n);
		if (gr == NULL) {
			fprintf(stderr, "cgiq: --group %s: no such group\n", group);
			return -ENOENT;
		}
		out->gid = gr->gr_gid;
		out->only_group = 1;
	}
	return 0;
}

/* Components of path's canonical form: "/" 0, "/var" 1, "/var/lib/cgiq" 3. */
static int privs_depth(const char *path)
{
	char real[PATH_MAX];
	int n = 0;

	if (realpath(path, real) == NULL)
		return 0;
	for (const char *p = real; *p; p++)
		if (*p == '/' && p[1] != '\0')
			n++;
	return n;
}

int app__privs_own(const struct app__privs *p, const char *path, int created)
{
	struct stat st;

	if (!p->active)
		return 0;
	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	/* Only what cgiq made, or what root owns (left by an earlier run as
	 * root): never take over another user's file. A sticky or
	 * world-writable directory (/tmp) is shared: never taken either. */
	if (!created && st.st_uid != 0)
		return 0;
	if (S_ISLNK(st.st_mode))
		return 0;
	if (S_ISDIR(st.st_mode) && !created && (st.st_mode & (S_ISVTX | S_IWOTH)))
		return 0;
	/* Nor a system directory: --db /var/cgiq.db must not give /var away.
	 * An existing directory is taken only three levels down or deeper
	 * (/var/lib/cgiq, /srv/cgiq/spool). */
	if (S_ISDIR(st.st_mode) && !created && privs_depth(path) < 3)
		return 0;
	if (st.st_uid == p->uid && st.st_gid == p->gid)
		return 0;
	if (lchown(path, p->uid, p->gid) < 0) {
		int err = errno;
		fprintf(stderr, "cgiq: cannot give %s to user %s: %s\n", path, p->user, strerror(err));
		return -err;
	}
	return 0;
}

int app__privs_drop(const struct app__privs *p)
{
	int r;

	if (!p->active)
		return 0;
	if (geteuid() != 0) {
		/* Already the target: nothing to drop, nothing to refuse. */
		if (getuid() == p->uid && geteuid() == p->uid && getgid() == p->gid && getegid() == p->gid)
			return 0;
		fprintf(stderr, "cgiq: --user %s: cgiq must be started as root to change user\n", p->user);
		return -EPERM;
	}
	/* Supplementary groups first, while still root: root's (0 among them)
	 * must not survive into the daemon. */
	if (p->only_group)
		r = setgroups(1, &p->gid);
	else
		r = initgroups(p->user, p->gid);
	if (r < 0 || setgid(p->gid) < 0 || setuid(p->uid) < 0) {
		int err = errno;
		fprintf(stderr, "cgiq: cannot become user %s (uid %u, gid %u): %s\n", p->user,
		        (unsigned)p->uid, (unsigned)p->gid, strerror(err));
		return -err;
	}
	/* Trust, but verify: a half-done change (saved set-user-ID still 0)
	 * would let a compromised program's exploit of cgiq get root back. */
	if (getuid() != p->uid || geteuid() != p->uid || getgid() != p->gid || getegid() != p->gid ||
	    (p->uid != 0 && setuid(0) == 0)) {
		fprintf(stderr, "cgiq: dropping privileges to %s did not take effect\n", p->user);
		return -EPERM;
	}
	return 0;
}
