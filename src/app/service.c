/*
 * Running as a service: the database lock, systemd's readiness protocol
 * (sd_notify, spoken here without libsystemd) and socket activation.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "app.h"
#include "util/util.h"

/* ---------------- the database lock ---------------- */

int app_lock_db(const char *db, int *out_fd, char *msg, size_t msg_size)
{
	char path[4096], holder[32];
	int fd, err;
	ssize_t n;

	if (snprintf(path, sizeof(path), "%s.lock", db) >= (int)sizeof(path)) {
		snprintf(msg, msg_size, "the database path %s is too long", db);
		return -ENAMETOOLONG;
	}
	/* A file of its own: opening and closing a second descriptor of the
	 * SQLite file would drop SQLite's POSIX locks on it. flock() locks
	 * belong to this open file description, which is close-on-exec, so no
	 * program cgiq runs can hold it after cgiq is gone. */
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);
	if (fd < 0) {
		err = -errno;
		snprintf(msg, msg_size, "cannot open the lock file %s: %s", path, strerror(-err));
		return err;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		err = -errno;
		if (err == -EWOULDBLOCK) {
			n = pread(fd, holder, sizeof(holder) - 1, 0);
			holder[n > 0 ? n : 0] = '\0';
			holder[strcspn(holder, "\n")] = '\0';
			snprintf(msg, msg_size,
			         "the job database %s is in use by another cgiq (pid %s, lock %s); "
			         "two daemons never write one database",
			         db, holder[0] ? holder : "unknown", path);
		} else {
			snprintf(msg, msg_size, "cannot lock %s: %s", path, strerror(-err));
		}
		close(fd);
		return err;
	}
	/* For the message above, and for operators. */
	n = snprintf(holder, sizeof(holder), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) < 0 || pwrite(fd, holder, (size_t)n, 0) != n)
		log_warn("cannot write the pid into %s", path);
	*out_fd = fd;
	return 0;
}

/* ---------------- sd_notify ---------------- */

int app_notify(const char *state)
{
	const char *where = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa;
	socklen_t len;
	size_t n;
	int fd, r = 0;

	if (where == NULL || where[0] == '\0')
		return 0;
	n = strlen(where);
	if ((where[0] != '/' && where[0] != '@') || n >= sizeof(sa.sun_path))
		return -EINVAL;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, where, n);
	/* "@name": Linux abstract namespace, a leading NUL and no terminator. */
	if (where[0] == '@')
		sa.sun_path[0] = '\0';
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (where[0] == '/'));
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa, len) < 0)
		r = -errno;
	close(fd);
	if (r < 0)
		log_warnx("sd_notify %s to %s: %s", state, where, strerror(-r));
	return r;
}

/* ---------------- socket activation ---------------- */

#define SD_LISTEN_FDS_START 3
#define MAX_INHERITED 16

static char addr_text[MAX_INHERITED][16];

int app_socket_activation(struct app_inherited *out, char *msg, size_t msg_size)
{
	const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
	const char *names = getenv("LISTEN_FDNAMES");
	uint64_t want_pid, count;

	memset(out, 0, sizeof(*out));
	if (pid == NULL || fds == NULL)
		return 0;
	/* For another process (an exec'ed wrapper's child): not ours. */
	if (util_parse_uint(pid, INT32_MAX, &want_pid) < 0 || want_pid != (uint64_t)getpid())
		return 0;
	if (util_parse_uint(fds, MAX_INHERITED, &count) < 0) {
		snprintf(msg, msg_size, "LISTEN_FDS=%s: expected 0 to %d sockets", fds, MAX_INHERITED);
		return -EINVAL;
	}
	for (unsigned i = 0; i < count; i++) {
		int fd = SD_LISTEN_FDS_START + (int)i;
		char name[64] = "";
		size_t n = 0;

		/* names: "http:fastcgi", in fd order; missing ones are unnamed */
		if (names) {
			const char *p = names;
			for (unsigned k = 0; k < i && p; k++) {
				p = strchr(p, ':');
				if (p)
					p++;
			}
			if (p) {
				n = strcspn(p, ":");
				if (n >= sizeof(name))
					n = sizeof(name) - 1;
				memcpy(name, p, n);
				name[n] = '\0';
			}
		}
		fcntl(fd, F_SETFD, FD_CLOEXEC);
		snprintf(addr_text[i], sizeof(addr_text[i]), "fd:%d", fd);
		if (strcmp(name, "http") == 0) {
			out->http[out->http_count++] = addr_text[i];
		} else if (strcmp(name, "fastcgi") == 0 || count == 1) {
			/* One socket with no name of ours (systemd's default name is
			 * the unit's): FastCGI, as fcgiwrap setups expect. */
			if (out->fastcgi) {
				snprintf(msg, msg_size, "two inherited FastCGI sockets (fd %s and %d)", out->fastcgi + 3,
				         fd);
				return -EINVAL;
			}
			out->fastcgi = addr_text[i];
		} else {
			char esc[80];
			snprintf(msg, msg_size,
			         "inherited socket fd %d is named \"%s\": expected FileDescriptorName=http or fastcgi",
			         fd, log_escape(esc, sizeof(esc), name, strlen(name)));
			return -EINVAL;
		}
	}
	/* Programs get an environment built from scratch anyway; this keeps a
	 * later getenv in this process from taking them for its own again. */
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	out->active = 1;
	return 0;
}
