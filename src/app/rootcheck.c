/*
 * Whether the users cgiq and its programs run as can reach the CGI root and
 * the programs in it. Without this check a root the dropped user cannot
 * enter starts, says ok, and answers every request 403.
 *
 * Each user is checked in a child that has become that user, with access(2):
 * the kernel's own answer, ACLs and supplementary groups included, rather
 * than a reading of mode bits.
 */
#include <dirent.h>
#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "app.h"

/* The walk below the root stops after this many entries, this deep, and
 * this many warnings per user: a start must not wait on a huge tree. */
#define CHECK_MAX_ENTRIES 20000
#define CHECK_MAX_DEPTH 16
#define CHECK_MAX_WARNINGS 10

struct check_who {
	const char *label; /* "cgiq's user nobody" */
	int programs;      /* the programs' user: it also reads scripts */
	const struct cgi_interpreter *interps; /* --interpreter (the global ones) */
	size_t interp_count;
	unsigned entries;
	unsigned warnings;
	unsigned more;     /* warnings past CHECK_MAX_WARNINGS */
};

/* "drwx------ root:root" */
static void check_describe(const char *path, char *out, size_t size)
{
	static const char bits[] = "rwxrwxrwx";
	char mode[11];
	struct stat st;
	struct passwd *pw;
	struct group *gr;
	char owner[32], group[32];

	if (stat(path, &st) < 0) {
		snprintf(out, size, "%s", strerror(errno));
		return;
	}
	mode[0] = S_ISDIR(st.st_mode) ? 'd' : '-';
	for (int i = 0; i < 9; i++)
		mode[i + 1] = st.st_mode & (0400u >> i) ? bits[i] : '-';
	mode[10] = '\0';
	pw = getpwuid(st.st_uid);
	gr = getgrgid(st.st_gid);
	if (pw != NULL)
		snprintf(owner, sizeof(owner), "%s", pw->pw_name);
	else
		snprintf(owner, sizeof(owner), "%u", (unsigned)st.st_uid);
	if (gr != NULL)
		snprintf(group, sizeof(group), "%s", gr->gr_name);
	else
		snprintf(group, sizeof(group), "%u", (unsigned)st.st_gid);
	snprintf(out, size, "%s %s:%s", mode, owner, group);
}

static void check_warn(struct check_who *w, const char *what, const char *path, const char *effect)
{
	char desc[128];

	if (w->warnings >= CHECK_MAX_WARNINGS) {
		w->more++;
		return;
	}
	w->warnings++;
	check_describe(path, desc, sizeof(desc));
	fprintf(stderr, "cgiq: warning: %s cannot %s %s (%s): %s\n", w->label, what, path, desc, effect);
}

/* One file below the root: one an interpreter runs must be readable;
 * otherwise only one with an x bit is taken for a program (cgi_map refuses
 * the others before any permission). */
static void check_file(struct check_who *w, const char *path, const struct stat *st)
{
	if (cgi_interpreter_for(w->interps, w->interp_count, path) != NULL) {
		if (access(path, R_OK) < 0)
			check_warn(w, "read", path, w->programs ? "its interpreter could not read it" : "it gets 403");
		return;
	}
	if ((st->st_mode & 0111) == 0)
		return;
	if (access(path, X_OK) < 0)
		check_warn(w, "execute", path, w->programs ? "it would fail to start" : "it gets 403");
	else if (w->programs && access(path, R_OK) < 0)
		check_warn(w, "read", path, "as a script (#!) it cannot run; a compiled program can");
}

static void check_dir(struct check_who *w, const char *dir, unsigned depth)
{
	DIR *d;
	struct dirent *de;
	char path[PATH_MAX];
	struct stat st;

	if (depth > CHECK_MAX_DEPTH || (d = opendir(dir)) == NULL)
		return; /* not readable is fine: programs are found by name */
	while (w->entries < CHECK_MAX_ENTRIES && (de = readdir(d)) != NULL) {
		/* cgiq serves nothing whose name starts with a dot */
		if (de->d_name[0] == '.')
			continue;
		w->entries++;
		if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, de->d_name) >= sizeof(path) ||
		    lstat(path, &st) < 0)
			continue;
		if (S_ISLNK(st.st_mode) && (stat(path, &st) < 0 || S_ISDIR(st.st_mode)))
			continue; /* a linked directory may loop; its target is checked where it lies */
		if (S_ISREG(st.st_mode)) {
			check_file(w, path, &st);
		} else if (S_ISDIR(st.st_mode)) {
			if (access(path, X_OK) < 0)
				check_warn(w, "enter", path, "its programs get 403");
			else
				check_dir(w, path, depth + 1);
		}
	}
	closedir(d);
}

/* The first directory from / down to root (itself included) that cannot be
 * entered, in out. Returns 0 when there is none. */
static int check_path_blocked(const char *root, char *out, size_t size)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s", root);
	for (char *p = path + 1;; p++) {
		char c = *p;
		if (c != '/' && c != '\0')
			continue;
		*p = '\0';
		if (access(path, X_OK) < 0) {
			snprintf(out, size, "%s", path);
			return -1;
		}
		*p = c;
		if (c == '\0')
			return 0;
	}
}

/* In the child, as the user: 0 fine, 1 warnings printed, 2 the root
 * cannot be entered. */
static int check_as(struct check_who *w, const char *root)
{
	char blocked[PATH_MAX], desc[128];

	if (check_path_blocked(root, blocked, sizeof(blocked)) < 0) {
		check_describe(blocked, desc, sizeof(desc));
		fprintf(stderr, "cgiq: --cgi-root %s: %s cannot enter %s (%s): %s\n", root, w->label, blocked, desc,
		        w->programs ? "no program could run" : "every request would get 403");
		return 2;
	}
	check_dir(w, root, 0);
	if (w->more > 0)
		fprintf(stderr, "cgiq: warning: and %u more like these for %s\n", w->more, w->label);
	if (w->entries >= CHECK_MAX_ENTRIES)
		fprintf(stderr, "cgiq: note: the check of %s stopped after %u entries\n", root, w->entries);
	return w->warnings > 0 ? 1 : 0;
}

/* Becomes uid/gid with groups (n < 0: the user's own, by initgroups), in a
 * child; returns what check_as returned, or 0 when the check cannot be
 * made (it is a check, not a condition of the start). */
static int check_in_child(struct check_who *w, const char *root, const char *user, uid_t uid, gid_t gid,
                          const gid_t *groups, int n)
{
	pid_t pid;
	int status;

	fflush(stderr);
	pid = fork();
	if (pid < 0)
		return 0;
	if (pid == 0) {
		int r = 0;
		if (geteuid() != uid || getegid() != gid) {
			r = n < 0 ? initgroups(user, gid) : setgroups((size_t)n, groups);
			if (r == 0)
				r = setgid(gid);
			if (r == 0)
				r = setuid(uid);
		}
		_exit(r == 0 ? check_as(w, root) : 0);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return 0;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 0;
}

int app__check_cgi_root(const struct app__privs *p, const char *root, const struct cgi_interpreter *interps,
                        size_t interp_count)
{
	char label[96];
	struct check_who w = {.label = label, .interps = interps, .interp_count = interp_count};
	int r = 0, r2;

	if (!p->active) {
		struct passwd *pw = getpwuid(geteuid());
		if (pw != NULL)
			snprintf(label, sizeof(label), "cgiq's user %s", pw->pw_name);
		else
			snprintf(label, sizeof(label), "cgiq's user (uid %u)", (unsigned)geteuid());
		w.programs = 1; /* programs run as cgiq's user */
		return check_in_child(&w, root, NULL, geteuid(), getegid(), NULL, 0);
	}
	/* Only root can become another user; check_root has said so. */
	if (geteuid() != 0 && (p->uid != geteuid() || p->gid != getegid()))
		return 0;
	snprintf(label, sizeof(label), "cgiq's user %s", p->user);
	w.programs = !p->program_active;
	/* The drop's groups (privs.c): the programs' with a program user, else
	 * --group alone or the user's. */
	if (p->program_active)
		r = check_in_child(&w, root, p->user, p->uid, p->gid, p->program.groups, p->program.ngroups);
	else
		r = check_in_child(&w, root, p->user, p->uid, p->gid, &p->gid, p->only_group ? 1 : -1);
	if (!p->program_active || r == 2)
		return r;
	snprintf(label, sizeof(label), "the programs' user %s", p->program_user);
	memset(&w, 0, sizeof(w));
	w.label = label;
	w.programs = 1;
	w.interps = interps;
	w.interp_count = interp_count;
	r2 = check_in_child(&w, root, p->program_user, p->program.uid, p->program.gid, p->program.groups,
	                    p->program.ngroups);
	return r2 > r ? r2 : r;
}
