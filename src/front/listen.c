/*
 * Listening sockets for both fronts: the address forms --listen,
 * --admin-listen and --fastcgi accept, one parser for all of them, and the
 * socket opened before the privilege drop (a port below 1024, a socket
 * directory only root may write). The front wraps the descriptor in its own
 * libuv handle.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "front/front.h"

#define BACKLOG 1024

int front_parse_inet(const char *addr, struct sockaddr_storage *ss)
{
	char host[INET6_ADDRSTRLEN];
	const char *port_s;
	uint64_t port;
	size_t n;

	memset(ss, 0, sizeof(*ss));
	if (addr[0] == '[') {
		const char *end = strchr(addr, ']');
		if (end == NULL || end[1] != ':')
			return -EINVAL;
		n = (size_t)(end - addr - 1);
		if (n >= sizeof(host))
			return -EINVAL;
		memcpy(host, addr + 1, n);
		host[n] = '\0';
		port_s = end + 2;
	} else if (strchr(addr, ':')) {
		const char *colon = strrchr(addr, ':');
		n = (size_t)(colon - addr);
		if (n == 0 || n >= sizeof(host))
			return -EINVAL;
		memcpy(host, addr, n);
		host[n] = '\0';
		port_s = colon + 1;
	} else {
		/* A bare port: loopback, as fcgiwrap and spawn-fcgi users write it. */
		snprintf(host, sizeof(host), "127.0.0.1");
		port_s = addr;
	}
	if (util_parse_uint(port_s, 65535, &port) < 0)
		return -EINVAL;
	if (addr[0] != '[' && inet_pton(AF_INET, host, &((struct sockaddr_in *)ss)->sin_addr) == 1) {
		ss->ss_family = AF_INET;
		((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
		return 0;
	}
	if (addr[0] == '[' && inet_pton(AF_INET6, host, &((struct sockaddr_in6 *)ss)->sin6_addr) == 1) {
		ss->ss_family = AF_INET6;
		((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
		return 0;
	}
	return -EINVAL;
}

/* The address bytes of an inet ss (4 or 16 in *len) and its port; NULL for
 * any other family. */
static const unsigned char *inet_bytes(const struct sockaddr_storage *ss, size_t *len, unsigned *port)
{
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)ss;
		*len = sizeof(in->sin_addr);
		*port = ntohs(in->sin_port);
		return (const unsigned char *)&in->sin_addr;
	}
	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;
		*len = sizeof(in6->sin6_addr);
		*port = ntohs(in6->sin6_port);
		return (const unsigned char *)&in6->sin6_addr;
	}
	*len = 0;
	*port = 0;
	return NULL;
}

/* 127/8 or ::1 (mapped: with ::ffff:127/104 too). */
static int is_loopback(const unsigned char *a, size_t len, int mapped)
{
	static const unsigned char v6_loopback[16] = {[15] = 1};
	static const unsigned char v4_mapped[12] = {[10] = 0xff, [11] = 0xff};

	if (len == 4)
		return a[0] == 127;
	return memcmp(a, v6_loopback, 16) == 0 || (mapped && memcmp(a, v4_mapped, 12) == 0 && a[12] == 127);
}

void front_sockaddr_text(const struct sockaddr_storage *ss, char *addr, size_t addr_size, unsigned *port)
{
	size_t len;
	const unsigned char *a = inet_bytes(ss, &len, port);

	if (a == NULL || inet_ntop(ss->ss_family, a, addr, (socklen_t)addr_size) == NULL)
		snprintf(addr, addr_size, "127.0.0.1");
}

int front_addr_is_local(const char *addr)
{
	struct sockaddr_storage ss;
	const unsigned char *a;
	size_t len;
	unsigned port;

	if (strncmp(addr, "unix:", 5) == 0)
		return addr[5] != '\0';
	if (front_parse_inet(addr, &ss) < 0)
		return 0;
	a = inet_bytes(&ss, &len, &port);
	return is_loopback(a, len, 0);
}

int front_addr_same(const char *a, const char *b)
{
	static const unsigned char any[16];
	struct sockaddr_storage x, y;
	const unsigned char *ax, *ay;
	size_t lx, ly;
	unsigned px, py;

	if (strncmp(a, "unix:", 5) == 0 || strncmp(b, "unix:", 5) == 0)
		return strcmp(a, b) == 0;
	if (front_parse_inet(a, &x) < 0 || front_parse_inet(b, &y) < 0 || x.ss_family != y.ss_family)
		return 0;
	ax = inet_bytes(&x, &lx, &px);
	ay = inet_bytes(&y, &ly, &py);
	if (px == 0 || px != py)
		return 0; /* port 0: two free ports, never the same */
	/* A wildcard listener covers every address of its family. */
	return memcmp(ax, ay, lx) == 0 || memcmp(ax, any, lx) == 0 || memcmp(ay, any, ly) == 0;
}

int front_peer_allowed(const char *const *allow, const struct sockaddr_storage *ss, char *text, size_t size)
{
	size_t len;
	unsigned port;
	const unsigned char *addr = inet_bytes(ss, &len, &port);

	if (addr == NULL) {
		snprintf(text, size, "unix");
		return 1;
	}
	if (inet_ntop(ss->ss_family, addr, text, (socklen_t)size) == NULL)
		snprintf(text, size, "?");
	if (allow == NULL || allow[0] == NULL)
		return is_loopback(addr, len, 1);
	for (size_t i = 0; allow[i]; i++) {
		unsigned char want[16];
		if (len == 4 && inet_pton(AF_INET, allow[i], want) == 1 && memcmp(want, addr, 4) == 0)
			return 1;
		if (len == 16 && inet_pton(AF_INET6, allow[i], want) == 1 && memcmp(want, addr, 16) == 0)
			return 1;
		/* an IPv4 entry matches a v4-mapped peer on a dual-stack socket */
		if (len == 16 && IN6_IS_ADDR_V4MAPPED((const struct in6_addr *)addr) &&
		    inet_pton(AF_INET, allow[i], want) == 1 && memcmp(want, addr + 12, 4) == 0)
			return 1;
	}
	return 0;
}

/* "user", "user:group" or ":group" owns path. -ENOENT: no such user or group. */
int front_owner_resolve(const char *owner, uid_t *uid, gid_t *gid, const char **what)
{
	char *copy = util_xstrdup(owner), *colon = strchr(copy, ':');
	int r = 0;

	*uid = (uid_t)-1;
	*gid = (gid_t)-1;
	if (colon)
		*colon++ = '\0';
	if (copy[0]) {
		struct passwd *pw = getpwnam(copy);
		if (pw == NULL) {
			*what = "no such user";
			r = -ENOENT;
			goto out;
		}
		*uid = pw->pw_uid;
		if (colon == NULL)
			*gid = pw->pw_gid; /* "user" alone: with the user's group */
	}
	if (colon && colon[0]) {
		struct group *gr = getgrnam(colon);
		if (gr == NULL) {
			*what = "no such group";
			r = -ENOENT;
			goto out;
		}
		*gid = gr->gr_gid;
	}
out:
	free(copy);
	return r;
}

static int set_owner(const char *path, const char *owner)
{
	const char *what;
	uid_t uid;
	gid_t gid;
	int r = front_owner_resolve(owner, &uid, &gid, &what);

	if (r == 0 && chown(path, uid, gid) < 0)
		r = -errno;
	return r;
}

static int open_unix(const char *path, const struct front_listen_opts *o, struct front_socket *s)
{
	struct sockaddr_un sa;
	struct stat st;
	int fd, r;

	if (*path == '\0')
		return -EINVAL;
	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	/* A socket left by a previous run; never remove anything else. */
	if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
		unlink(path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	/* Before listen(): nobody connects while the mode is still umask's.
	 * Connecting needs write permission, so the mode decides who may. */
	r = o->unix_mode && chmod(path, o->unix_mode) < 0 ? -errno : 0;
	if (r == 0 && o->unix_owner)
		r = set_owner(path, o->unix_owner);
	if (r == 0 && listen(fd, BACKLOG) < 0)
		r = -errno;
	if (r < 0) {
		close(fd);
		unlink(path);
		return r;
	}
	s->fd = fd;
	s->is_unix = 1;
	s->unix_path = util_xstrdup(path);
	snprintf(s->shown, sizeof(s->shown), "unix:%s", path);
	return 0;
}

static int open_inet(const char *addr, struct front_socket *s)
{
	struct sockaddr_storage ss;
	socklen_t len;
	char ip[INET6_ADDRSTRLEN];
	unsigned port;
	int fd, r, one = 1;

	if (front_parse_inet(addr, &ss) < 0)
		return -EINVAL;
	len = ss.ss_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, BACKLOG) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	/* The port bound, which port 0 leaves to the kernel. */
	len = sizeof(ss);
	getsockname(fd, (struct sockaddr *)&ss, &len);
	front_sockaddr_text(&ss, ip, sizeof(ip), &port);
	snprintf(s->shown, sizeof(s->shown), ss.ss_family == AF_INET6 ? "[%s]:%u" : "%s:%u", ip, port);
	s->fd = fd;
	return 0;
}

/* "fd:N": a listening socket this process was given (systemd socket
 * activation); its family says TCP or unix. Never unlinked at close: the
 * socket file belongs to whoever made it. */
static int open_inherited(const char *addr, struct front_socket *s)
{
	uint64_t fd;
	int acc = 0;
	socklen_t alen = sizeof(acc);

	if (util_parse_uint(addr + 3, INT32_MAX, &fd) < 0 || fd < 3)
		return -EINVAL;
	/* a listening socket (front_socket_adopt reads its address) */
	if (getsockopt((int)fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &alen) < 0 || !acc)
		return -ENOTSOCK;
	front_socket_adopt((int)fd, addr, s);
	return 0;
}

void front_socket_adopt(int fd, const char *name, struct front_socket *s)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	memset(&ss, 0, sizeof(ss));
	getsockname(fd, (struct sockaddr *)&ss, &len);
	fcntl(fd, F_SETFD, FD_CLOEXEC);
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	s->fd = fd;
	s->is_unix = ss.ss_family == AF_UNIX;
	if (s->is_unix) {
		snprintf(s->shown, sizeof(s->shown), "%s (unix:%s)", name, ((struct sockaddr_un *)&ss)->sun_path);
	} else {
		char ip[INET6_ADDRSTRLEN];
		unsigned port;
		front_sockaddr_text(&ss, ip, sizeof(ip), &port);
		snprintf(s->shown, sizeof(s->shown), ss.ss_family == AF_INET6 ? "%s ([%s]:%u)" : "%s (%s:%u)", name, ip,
		         port);
	}
}

int front_listen_check(const char *addr)
{
	struct sockaddr_storage ss;
	struct sockaddr_un sa;
	uint64_t fd;

	if (strncmp(addr, "fd:", 3) == 0)
		return util_parse_uint(addr + 3, INT32_MAX, &fd) < 0 || fd < 3 ? -EINVAL : 0;
	if (strncmp(addr, "unix:", 5) == 0) {
		if (addr[5] == '\0')
			return -EINVAL;
		return strlen(addr + 5) >= sizeof(sa.sun_path) ? -ENAMETOOLONG : 0;
	}
	return front_parse_inet(addr, &ss);
}

int front_listen_open(const char *addr, const struct front_listen_opts *o, struct front_socket *s)
{
	static const struct front_listen_opts none;
	int r;

	memset(s, 0, sizeof(*s));
	s->fd = -1;
	/* The same reading as --check-config's (front_listen_check). */
	if ((r = front_listen_check(addr)) < 0)
		return r;
	if (strncmp(addr, "fd:", 3) == 0)
		return open_inherited(addr, s);
	if (strncmp(addr, "unix:", 5) == 0)
		return open_unix(addr + 5, o ? o : &none, s);
	return open_inet(addr, s);
}

int front_socket_wrap(uv_loop_t *loop, struct front_socket *s, union front_stream *h)
{
	int r = s->is_unix ? uv_pipe_init(loop, &h->pipe, 0) : uv_tcp_init(loop, &h->tcp);
	if (r < 0)
		return r;
	r = s->is_unix ? uv_pipe_open(&h->pipe, s->fd) : uv_tcp_open(&h->tcp, s->fd);
	if (r == 0)
		s->fd = -1; /* the handle owns it now */
	return r;
}

void front_socket_release(struct front_socket *s)
{
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
	if (s->unix_path) {
		unlink(s->unix_path);
		free(s->unix_path);
		s->unix_path = NULL;
	}
}
