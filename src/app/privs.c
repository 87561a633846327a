/*
 * Privileges: started as root, cgiq binds its sockets and opens its files,
 * then becomes --user/--group before any program runs; programs run as
 * --program-user, which can neither signal cgiq nor open its files.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/stat.h>
#include <unistd.h>

#include "app.h"

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

int app__privs_resolve_program(const char *name, int as_default, struct app__privs *p)
{
	struct passwd *pw = getpwnam(name);
	unsigned long n;
	int ngroups = CGI_MAX_GROUPS;

	if (pw == NULL && privs_number(name, &n) == 0)
		pw = getpwuid((uid_t)n);
	if (pw == NULL && as_default) {
		fprintf(stderr, "cgiq: programs run as their own user, %s by default, which does not exist: create it "
		        "(useradd --system --user-group --no-create-home --shell /usr/sbin/nologin %s) or name "
		        "another with --program-user\n", name, name);
		return -ENOENT;
	}
	if (pw == NULL) {
		fprintf(stderr, "cgiq: --program-user %s: no such user\n", name);
		return -ENOENT;
	}
	snprintf(p->program_user, sizeof(p->program_user), "%s", pw->pw_name);
	memset(&p->program, 0, sizeof(p->program));
	p->program.uid = pw->pw_uid;
	p->program.gid = pw->pw_gid;
	if (getgrouplist(pw->pw_name, pw->pw_gid, p->program.groups, &ngroups) < 0) {
		fprintf(stderr, "cgiq: --program-user %s: in more than %d groups\n", pw->pw_name, CGI_MAX_GROUPS);
		return -E2BIG;
	}
	p->program.ngroups = ngroups;
	p->program_active = pw->pw_uid != p->uid; /* only called with --user (check_program_user) */
	return 0;
}

/* What cgiq owns is none of its programs' business: with a program user,
 * "others" lose their access (the programs' user is one of them; the group
 * is cgiq's, which it is not in). A socket keeps its mode: clients connect
 * to it. */
static int privs_private(const struct app__privs *p, const char *path, const struct stat *st)
{
	if (!p->program_active || S_ISSOCK(st->st_mode) || (st->st_mode & S_IRWXO) == 0)
		return 0;
	if (chmod(path, st->st_mode & 07770) < 0) {
		int err = errno;
		fprintf(stderr, "cgiq: cannot make %s private to user %s: %s\n", path, p->user, strerror(err));
		return -err;
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
	if (S_ISLNK(st.st_mode))
		return 0;
	if (st.st_uid == p->uid)
		return privs_private(p, path, &st);
	/* Only what cgiq made, or what root owns (left by an earlier run as
	 * root): never take over another user's file. A sticky or
	 * world-writable directory (/tmp) is shared: never taken either. */
	if (!created && st.st_uid != 0)
		return 0;
	if (S_ISDIR(st.st_mode) && !created && (st.st_mode & (S_ISVTX | S_IWOTH)))
		return 0;
	/* Nor a system directory: --db /var/cgiq.db must not give /var away.
	 * An existing directory is taken only three levels down or deeper
	 * (/var/lib/cgiq, /srv/cgiq/spool). */
	if (S_ISDIR(st.st_mode) && !created && privs_depth(path) < 3)
		return 0;
	if (lchown(path, p->uid, p->gid) < 0) {
		int err = errno;
		fprintf(stderr, "cgiq: cannot give %s to user %s: %s\n", path, p->user, strerror(err));
		return -err;
	}
	return privs_private(p, path, &st);
}

/* Threads of this process, from /proc/self/task. */
static int privs_threads(void)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *de;
	int n = 0;

	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL)
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}

/* The drop with a program user; see app.h. As root, single-threaded. */
static int privs_drop_apart(const struct app__privs *p)
{
	const struct cgi_identity *g = &p->program;
	uid_t ru, eu, su;
	gid_t rg, eg, sg;

	if (privs_threads() != 1) {
		fprintf(stderr, "cgiq: cannot drop privileges: a thread was started before the drop\n");
		return -EPERM;
	}
	/* The programs' groups, not root's (0 among them) nor cgiq's: children
	 * keep them, and cgiq's file access is by its file-system group. */
	if (setgroups((size_t)g->ngroups, g->groups) < 0 || setresgid(p->gid, g->gid, p->gid) < 0 ||
	    setresuid(p->uid, g->uid, p->uid) < 0) {
		int err = errno;
		fprintf(stderr, "cgiq: cannot become user %s with programs as %s: %s\n", p->user, p->program_user,
		        strerror(err));
		return -err;
	}
	setfsgid(p->gid);
	setfsuid(p->uid);
	/* Trust, but verify, as below; setfsuid returns the current id when
	 * given one it refuses. */
	if (getresuid(&ru, &eu, &su) < 0 || getresgid(&rg, &eg, &sg) < 0 || ru != p->uid || su != p->uid ||
	    eu != g->uid || rg != p->gid || sg != p->gid || eg != g->gid || (uid_t)setfsuid((uid_t)-1) != p->uid ||
	    (gid_t)setfsgid((gid_t)-1) != p->gid || (p->uid != 0 && setuid(0) == 0)) {
		fprintf(stderr, "cgiq: dropping privileges to %s did not take effect\n", p->user);
		return -EPERM;
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
	if (p->program_active)
		return privs_drop_apart(p);
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

int app__privs_check_private(const struct app__privs *p, const char *const *paths, size_t n)
{
	int r = 0;

	if (!p->program_active)
		return 0;
	/* As the programs would: their ids, this thread only. */
	setfsgid(p->program.gid);
	setfsuid(p->program.uid);
	for (size_t i = 0; i < n && r == 0; i++) {
		struct stat st;
		if (paths[i] == NULL || stat(paths[i], &st) < 0)
			continue;
		if (faccessat(AT_FDCWD, paths[i], S_ISDIR(st.st_mode) ? X_OK : R_OK, AT_EACCESS) == 0) {
			fprintf(stderr, "cgiq: the programs' user %s could read %s: take it from others (chmod o-rwx)\n",
			        p->program_user, paths[i]);
			r = -EACCES;
		}
	}
	setfsgid(p->gid);
	setfsuid(p->uid);
	return r;
}

void app__privs_settle(const struct app__privs *p)
{
	if (p->program_active) {
		(void)!setresgid((gid_t)-1, p->gid, (gid_t)-1);
		(void)!setresuid((uid_t)-1, p->uid, (uid_t)-1);
	}
}
