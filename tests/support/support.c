#include "support/support.h"

#include <CUnit/Basic.h>

#include <ctype.h>
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

uint64_t t_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int t_wait_for(int (*cond)(void *ud), void *ud, int timeout_ms)
{
	uint64_t end = t_now_ms() + (uint64_t)timeout_ms;
	for (;;) {
		if (cond(ud))
			return 1;
		if (t_now_ms() >= end)
			return 0;
		usleep(20000);
	}
}

int t_run(const char *cmd, char *out, size_t out_size)
{
	FILE *p = popen(cmd, "r");
	size_t n = 0;
	int st;

	if (p == NULL)
		return -1;
	if (out && out_size) {
		n = fread(out, 1, out_size - 1, p);
		out[n] = '\0';
	}
	while (fgetc(p) != EOF)
		;
	st = pclose(p);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *data;
	long n;

	if (f == NULL)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	data = malloc((size_t)n + 1);
	if (fread(data, 1, (size_t)n, f) != (size_t)n)
		n = 0;
	data[n] = '\0';
	fclose(f);
	if (len)
		*len = (size_t)n;
	return data;
}

char *t_slurp(const char *path) { return read_file(path, NULL); }

int t_file_has(const char *path, const char *s)
{
	char *data = read_file(path, NULL);
	int found = data && strstr(data, s) != NULL;
	free(data);
	return found;
}

struct file_wait {
	const char *path;
	const char *s;
};

static int file_wait_has(void *ud)
{
	const struct file_wait *w = ud;
	return t_file_has(w->path, w->s);
}

int t_wait_file_has(const char *path, const char *s, int timeout_ms)
{
	struct file_wait w = {path, s};
	return t_wait_for(file_wait_has, &w, timeout_ms);
}

int td_log_has(const struct tdaemon *d, const char *s) { return t_file_has(d->log, s); }

int td_wait_log(const struct tdaemon *d, const char *s, int timeout_ms)
{
	return t_wait_file_has(d->log, s, timeout_ms);
}

static int find_port(void *ud)
{
	struct tdaemon *d = ud;
	char *log = read_file(d->log, NULL);
	char *p;
	int found = 0;

	/* Only what this run logged: a restart appends to the same file. The
	 * port from "listening on", once the line that ends the start is there
	 * too: every listener (the admin one is bound after the first) and the
	 * signal handlers are ready. */
	if (log && strlen(log) >= d->log_start && strstr(log + d->log_start, ": programs from ") != NULL &&
	    (p = strstr(log + d->log_start, "listening on 127.0.0.1:")) != NULL) {
		d->port = atoi(p + strlen("listening on 127.0.0.1:"));
		found = d->port > 0;
	}
	free(log);
	return found;
}

static int spawn_daemon(struct tdaemon *d, const char *const *extra)
{
	const char *argv[64];
	int n = 0;
	int fd;

	argv[n++] = CGIQ_BIN;
	argv[n++] = "--listen";
	argv[n++] = "127.0.0.1:0";
	argv[n++] = "--cgi-root";
	argv[n++] = d->cgi_root;
	argv[n++] = "--db";
	argv[n++] = d->db;
	argv[n++] = "--spool";
	argv[n++] = "spool";
	if (!d->opts.no_allow_root && d->opts.user == NULL)
		argv[n++] = "--allow-root";
	if (d->opts.user) {
		argv[n++] = "--user";
		argv[n++] = d->opts.user;
	}
	for (int i = 0; extra && extra[i] && n < 62; i++)
		argv[n++] = extra[i];
	argv[n] = NULL;

	struct stat st;

	d->port = 0;
	d->log_start = stat(d->log, &st) == 0 ? (size_t)st.st_size : 0;
	d->pid = fork();
	if (d->pid < 0)
		return -1;
	if (d->pid == 0) {
		if (chdir(d->dir) < 0)
			_exit(126);
		fd = open(d->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
		if (fd < 0)
			_exit(126);
		dup2(fd, 2);
		fd = open("/dev/null", O_RDWR);
		dup2(fd, 0);
		dup2(fd, 1);
		if (d->opts.rlimit_nofile > 0) {
			struct rlimit rl = {(rlim_t)d->opts.rlimit_nofile, (rlim_t)d->opts.rlimit_nofile};
			if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
				_exit(126);
		}
		execv(CGIQ_BIN, (char *const *)argv);
		_exit(127);
	}
	if (!t_wait_for(find_port, d, 20000)) {
		fprintf(stderr, "cgiq did not start; its log:\n");
		char *log = read_file(d->log, NULL);
		fprintf(stderr, "%s\n", log ? log : "(none)");
		free(log);
		td_kill9(d);
		return -1;
	}
	return 0;
}

int td_start(struct tdaemon *d, const char *cgi_root, const char *const *extra)
{
	return td_start_opts(d, cgi_root, extra, NULL);
}

int td_start_opts(struct tdaemon *d, const char *cgi_root, const char *const *extra,
                  const struct td_options *opts)
{
	char cmd[2048];

	memset(d, 0, sizeof(*d));
	if (opts)
		d->opts = *opts;
	snprintf(d->dir, sizeof(d->dir), "/tmp/cgiq-test-XXXXXX");
	if (mkdtemp(d->dir) == NULL)
		return -1;
	/* mkdtemp makes it 0700: the user cgiq becomes must reach its db,
	 * spool and programs in there. */
	if (d->opts.user && chmod(d->dir, 0755) < 0)
		return -1;
	snprintf(d->db, sizeof(d->db), "%s/cgiq.db", d->dir);
	snprintf(d->log, sizeof(d->log), "%s/cgiq.log", d->dir);
	if (cgi_root) {
		snprintf(d->cgi_root, sizeof(d->cgi_root), "%s", cgi_root);
	} else {
		snprintf(d->cgi_root, sizeof(d->cgi_root), "%s/cgi-bin", d->dir);
		snprintf(cmd, sizeof(cmd),
		         "mkdir -p '%s' && cp -p '%s'/cgi-bin/* '%s'/ && cp -p '%s'/* '%s'/ && "
		         "cp -p '%s/examples/hello-c' '%s'/",
		         d->cgi_root, CGIQ_EXAMPLES, d->cgi_root, CGIQ_FIXTURES, d->cgi_root, CGIQ_BUILD_DIR,
		         d->cgi_root);
		if (t_run(cmd, NULL, 0) != 0)
			return -1;
	}
	return spawn_daemon(d, extra);
}

int td_restart(struct tdaemon *d, const char *const *extra) { return spawn_daemon(d, extra); }

/* A stop that went wrong: the end of this run's log, for whoever reads the
 * test's output (the directory is removed with the test). */
static void td_show_log_tail(const struct tdaemon *d, const char *why)
{
	FILE *f = fopen(d->log, "r");
	char line[1024];
	long size;
	int n = 0;

	fprintf(stderr, "\n  cgiq (%s): %s; the end of its log %s:\n", d->dir, why, d->log);
	if (f == NULL)
		return;
	fseek(f, 0, SEEK_END);
	size = ftell(f);
	/* the last 8 KiB of this run (a sanitizer's report included) */
	fseek(f, size - (long)d->log_start > 8192 ? size - 8192 : (long)d->log_start, SEEK_SET);
	while (fgets(line, sizeof(line), f) && n++ < 100)
		fprintf(stderr, "    %s", line);
	fclose(f);
}

int td_stop(struct tdaemon *d)
{
	uint64_t end = t_now_ms() + 15000;
	char why[64];
	int st, rc;

	if (d->pid <= 0)
		return -1;
	kill(d->pid, SIGTERM);
	while (t_now_ms() < end) {
		pid_t r = waitpid(d->pid, &st, WNOHANG);
		if (r == d->pid) {
			d->pid = 0;
			rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
			if (rc != 0) {
				snprintf(why, sizeof(why), "exit status %d after SIGTERM", rc);
				td_show_log_tail(d, why);
			}
			return rc;
		}
		usleep(20000);
	}
	td_show_log_tail(d, "still running 15 s after SIGTERM");
	td_kill9(d);
	return -1;
}

void td_kill9(struct tdaemon *d)
{
	if (d->pid > 0) {
		kill(d->pid, SIGKILL);
		waitpid(d->pid, NULL, 0);
		d->pid = 0;
	}
}

void td_cleanup(struct tdaemon *d)
{
	char cmd[600];
	if (d->dir[0] == '\0')
		return;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", d->dir);
	t_run(cmd, NULL, 0);
	d->dir[0] = '\0';
}

struct rd;
static void reader_forget(void);

int t_connect(int port)
{
	struct sockaddr_in sa;
	struct timeval tv = {10, 0};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	reader_forget(); /* a new connection may reuse a closed one's number */
	return fd;
}

int t_send(int fd, const void *data, size_t len)
{
	const char *p = data;
	while (len > 0) {
		ssize_t w = send(fd, p, len, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

int t_send_str(int fd, const char *s) { return t_send(fd, s, strlen(s)); }

/* A small reader with a deadline over a blocking socket. */
struct rd {
	int fd;
	uint64_t end;
	char buf[65536];
	size_t off, len;
	int eof;
};

static int rd_fill(struct rd *r)
{
	struct pollfd p = {r->fd, POLLIN, 0};
	ssize_t n;
	uint64_t now = t_now_ms();

	if (r->eof)
		return 0;
	if (now >= r->end)
		return -1;
	if (poll(&p, 1, (int)(r->end - now)) <= 0)
		return -1;
	n = recv(r->fd, r->buf, sizeof(r->buf), 0);
	if (n <= 0) {
		r->eof = 1;
		return 0;
	}
	r->off = 0;
	r->len = (size_t)n;
	return 1;
}

/* Reads one line (up to and including LF) into out. Returns length or -1. */
static int rd_line(struct rd *r, char *out, size_t out_size)
{
	size_t n = 0;
	for (;;) {
		if (r->off == r->len) {
			int f = rd_fill(r);
			if (f <= 0)
				return -1;
		}
		char c = r->buf[r->off++];
		if (n + 1 < out_size)
			out[n++] = c;
		if (c == '\n') {
			out[n] = '\0';
			return (int)n;
		}
	}
}

static int rd_bytes(struct rd *r, char *out, size_t want)
{
	size_t got = 0;
	while (got < want) {
		if (r->off == r->len) {
			int f = rd_fill(r);
			if (f <= 0)
				return -1;
		}
		size_t n = r->len - r->off;
		if (n > want - got)
			n = want - got;
		memcpy(out + got, r->buf + r->off, n);
		r->off += n;
		got += n;
	}
	return 0;
}

const char *t_header(const struct tresp *r, const char *name, char *out, size_t out_size)
{
	size_t nl = strlen(name);
	const char *p = strchr(r->head, '\n');
	while (p && *++p) {
		if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
			const char *v = p + nl + 1;
			size_t n = 0;
			while (*v == ' ')
				v++;
			while (v[n] && v[n] != '\r' && v[n] != '\n')
				n++;
			if (n >= out_size)
				n = out_size - 1;
			memcpy(out, v, n);
			out[n] = '\0';
			return out;
		}
		p = strchr(p, '\n');
	}
	return NULL;
}

/* One reader per thread, kept across responses of one connection
 * (pipelining). */
static _Thread_local struct rd reader = {.fd = -1};
static void reader_forget(void) { reader.fd = -1; }

int t_read_response(int fd, struct tresp *r, int is_head, int timeout_ms)
{
	struct rd *rd = &reader;
	char line[8192];
	char cl[32];
	int n;

	memset(r, 0, sizeof(*r));
	if (rd->fd != fd) {
		memset(rd, 0, sizeof(*rd));
		rd->fd = fd;
	}
	rd->end = t_now_ms() + (uint64_t)timeout_ms;
	for (;;) {
		size_t hlen = 0;
		int status;
		n = rd_line(rd, line, sizeof(line));
		if (n < 0 || strncmp(line, "HTTP/1.", 7) != 0 || strlen(line) < 12)
			return -1;
		status = atoi(line + 9);
		hlen = (size_t)n;
		memcpy(r->head, line, (size_t)n + 1);
		for (;;) {
			n = rd_line(rd, line, sizeof(line));
			if (n < 0)
				return -1;
			if (hlen + (size_t)n + 1 < sizeof(r->head)) {
				memcpy(r->head + hlen, line, (size_t)n + 1);
				hlen += (size_t)n;
			}
			if (strcmp(line, "\r\n") == 0 || strcmp(line, "\n") == 0)
				break;
		}
		if (status >= 100 && status < 200) {
			if (r->interim_count < T_MAX_INTERIM) {
				snprintf(r->interim_raw[r->interim_count], sizeof(r->interim_raw[0]), "%s", r->head);
				r->interim[r->interim_count++] = status;
			}
			continue;
		}
		r->status = status;
		break;
	}
	if (is_head || r->status == 204 || r->status == 304) {
		r->body = calloc(1, 1);
	} else if (t_header(r, "Content-Length", cl, sizeof(cl))) {
		r->body_len = strtoull(cl, NULL, 10);
		r->body = malloc(r->body_len + 1);
		if (rd_bytes(rd, r->body, r->body_len) < 0)
			return -1;
		r->body[r->body_len] = '\0';
	} else {
		size_t cap = 65536;
		r->body = malloc(cap);
		for (;;) {
			if (rd->off == rd->len && rd_fill(rd) <= 0)
				break;
			size_t k = rd->len - rd->off;
			if (r->body_len + k + 1 > cap) {
				cap = (r->body_len + k + 1) * 2;
				r->body = realloc(r->body, cap);
			}
			memcpy(r->body + r->body_len, rd->buf + rd->off, k);
			r->body_len += k;
			rd->off = rd->len;
		}
		r->body[r->body_len] = '\0';
		r->closed = rd->eof;
	}
	return 0;
}

void t_resp_free(struct tresp *r)
{
	free(r->body);
	r->body = NULL;
}

int t_wait_closed(int fd, int timeout_ms)
{
	uint64_t end = t_now_ms() + (uint64_t)timeout_ms;
	char buf[4096];
	for (;;) {
		struct pollfd p = {fd, POLLIN, 0};
		uint64_t now = t_now_ms();
		if (now >= end)
			return 0;
		if (poll(&p, 1, (int)(end - now)) <= 0)
			return 0;
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		if (n <= 0)
			return 1;
	}
}

const char *t_job_field(const struct tdaemon *d, const char *id, const char *column, char *out, size_t size)
{
	char cmd[1024];
	snprintf(cmd, sizeof(cmd), "sqlite3 '%s' \"SELECT %s FROM jobs WHERE id='%s'\"", d->db, column, id);
	out[0] = '\0';
	t_run(cmd, out, size);
	out[strcspn(out, "\n")] = '\0';
	return out;
}

const char *t_last_job_id(const struct tdaemon *d, char *out, size_t size)
{
	char cmd[1024];
	snprintf(cmd, sizeof(cmd), "sqlite3 '%s' \"SELECT id FROM jobs ORDER BY created_at DESC, rowid DESC LIMIT 1\"",
	         d->db);
	out[0] = '\0';
	t_run(cmd, out, size);
	out[strcspn(out, "\n")] = '\0';
	return out;
}

int t_group_alive(pid_t pgid)
{
	DIR *dir = opendir("/proc");
	struct dirent *e;
	int count = 0;

	if (dir == NULL)
		return -1;
	while ((e = readdir(dir)) != NULL) {
		char path[64], stat[512];
		if (!isdigit((unsigned char)e->d_name[0]))
			continue;
		snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
		FILE *f = fopen(path, "r");
		if (f == NULL)
			continue;
		size_t n = fread(stat, 1, sizeof(stat) - 1, f);
		fclose(f);
		stat[n] = '\0';
		/* pid (comm) state ppid pgrp ... ; comm may hold spaces: parse after the last ')' */
		char *p = strrchr(stat, ')');
		char st;
		int ppid, pgrp;
		if (p && sscanf(p + 1, " %c %d %d", &st, &ppid, &pgrp) == 3 && pgrp == pgid && st != 'Z')
			count++;
	}
	closedir(dir);
	return count;
}

/* ------------------------------------------------------------------ */
/* helper servers */

int t_free_port(void)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port = 0;

	if (fd < 0)
		return 0;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
		port = ntohs(sa.sin_port);
	close(fd);
	return port;
}

static int proc_alive(pid_t pid)
{
	int st;
	return pid > 0 && waitpid(pid, &st, WNOHANG) == 0;
}

int ts_start(struct tserver *s, const char *dir, const char *name, char *const argv[], const char *wait_path)
{
	uint64_t end = t_now_ms() + 10000;
	struct stat st;

	memset(s, 0, sizeof(*s));
	snprintf(s->dir, sizeof(s->dir), "%s", dir);
	snprintf(s->log, sizeof(s->log), "%s/%s.log", dir, name);
	s->pid = fork();
	if (s->pid < 0)
		return -1;
	if (s->pid == 0) {
		/* Its own process group: ts_stop stops whatever it forks too
		 * (fcgiwrap's children do not exit with their parent). */
		setpgid(0, 0);
		int fd = open(s->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
		if (fd < 0)
			_exit(126);
		dup2(fd, 1);
		dup2(fd, 2);
		fd = open("/dev/null", O_RDONLY);
		dup2(fd, 0);
		execv(argv[0], argv);
		_exit(127);
	}
	while (wait_path && stat(wait_path, &st) != 0) {
		if (t_now_ms() >= end || !proc_alive(s->pid)) {
			char *log = read_file(s->log, NULL);
			fprintf(stderr, "%s did not start; its log:\n%s\n", argv[0], log ? log : "(none)");
			free(log);
			ts_stop(s);
			return -1;
		}
		usleep(20000);
	}
	return 0;
}

void ts_stop(struct tserver *s)
{
	uint64_t end = t_now_ms() + 10000;

	if (s->pid <= 0)
		return;
	setpgid(s->pid, s->pid); /* (in case the child has not run yet) */
	kill(-s->pid, SIGTERM);
	while (t_now_ms() < end) {
		pid_t r = waitpid(s->pid, NULL, WNOHANG);
		if (r == s->pid || (r < 0 && errno == ECHILD))
			break;
		usleep(20000);
	}
	/* The leader is reaped or still ours: its group id cannot have been
	 * reused while any member lives. Whatever is left goes now. */
	kill(-s->pid, SIGKILL);
	waitpid(s->pid, NULL, 0);
	end = t_now_ms() + 5000;
	while (t_group_alive(s->pid) > 0 && t_now_ms() < end)
		usleep(20000);
	s->pid = 0;
}

static int port_answers(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), ok;
	struct sockaddr_in sa;

	if (fd < 0)
		return 0;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	return ok;
}

int tn_start(struct tserver *n, const char *dir, int port, const char *http_body)
{
	char conf[400], errlog[400], cmd[1400];
	char *argv[] = {"/usr/sbin/nginx", "-p", NULL, "-e", errlog, "-c", conf, NULL};
	uint64_t end;
	FILE *f;

	snprintf(conf, sizeof(conf), "%s/nginx.conf", dir);
	snprintf(errlog, sizeof(errlog), "%s/nginx-error.log", dir);
	snprintf(cmd, sizeof(cmd), "mkdir -p '%s/nginx'", dir);
	if (t_run(cmd, NULL, 0) != 0)
		return -1;
	f = fopen(conf, "w");
	if (f == NULL)
		return -1;
	fprintf(f,
	        "%s\n"
	        "worker_processes 1;\n"
	        "daemon off;\n"
	        "pid %s/nginx.pid;\n"
	        "error_log %s info;\n"
	        "events { worker_connections 256; }\n"
	        "http {\n"
	        "\taccess_log off;\n"
	        "\tclient_body_temp_path %s/nginx/body;\n"
	        "\tfastcgi_temp_path %s/nginx/fastcgi;\n"
	        "\tproxy_temp_path %s/nginx/proxy;\n"
	        "\tscgi_temp_path %s/nginx/scgi;\n"
	        "\tuwsgi_temp_path %s/nginx/uwsgi;\n",
	        getuid() == 0 ? "user root root;" : "", dir, errlog, dir, dir, dir, dir, dir);
	/* the body, with %PORT% replaced */
	for (const char *p = http_body; *p;) {
		const char *m = strstr(p, "%PORT%");
		if (m == NULL) {
			fputs(p, f);
			break;
		}
		fwrite(p, 1, (size_t)(m - p), f);
		fprintf(f, "%d", port);
		p = m + 6;
	}
	fputs("}\n", f);
	fclose(f);
	argv[2] = (char *)dir;
	if (ts_start(n, dir, "nginx", argv, NULL) < 0)
		return -1;
	n->port = port;
	end = t_now_ms() + 10000;
	while (!port_answers(port)) {
		if (t_now_ms() >= end || !proc_alive(n->pid)) {
			char *log = read_file(errlog, NULL), *cl = read_file(n->log, NULL);
			fprintf(stderr, "nginx did not start:\n%s\n%s\n", log ? log : "", cl ? cl : "");
			free(log);
			free(cl);
			ts_stop(n);
			return -1;
		}
		usleep(20000);
	}
	return 0;
}

struct job_wait {
	const struct tdaemon *d;
	const char *a;   /* the job id (state waits) */
	const char *b;   /* the wanted state */
	int64_t since_us;
	char out[64];
};

int64_t t_wall_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int new_job_seen(void *ud)
{
	struct job_wait *w = ud;
	char cmd[1024];

	snprintf(cmd, sizeof(cmd),
	         "sqlite3 '%s' \"SELECT id FROM jobs WHERE created_at >= %lld"
	         " ORDER BY created_at DESC, rowid DESC LIMIT 1\"",
	         w->d->db, (long long)w->since_us);
	w->out[0] = '\0';
	t_run(cmd, w->out, sizeof(w->out));
	w->out[strcspn(w->out, "\n")] = '\0';
	return w->out[0] != '\0';
}

const char *t_wait_new_job(const struct tdaemon *d, int64_t since_us, char *out, int ms)
{
	struct job_wait w = {d, NULL, NULL, since_us, ""};
	if (!t_wait_for(new_job_seen, &w, ms))
		w.out[0] = '\0';
	memcpy(out, w.out, sizeof(w.out));
	return out;
}

static int job_in_state(void *ud)
{
	struct job_wait *w = ud;
	t_job_field(w->d, w->a, "state", w->out, sizeof(w->out));
	return strcmp(w->out, w->b) == 0;
}

int t_wait_job_state(const struct tdaemon *d, const char *id, const char *state, int ms)
{
	struct job_wait w = {d, id, state, 0, ""};
	return t_wait_for(job_in_state, &w, ms);
}

char *t_pattern(size_t n)
{
	char *p = malloc(n ? n : 1);
	for (size_t i = 0; i < n; i++)
		p[i] = (char)((i * 7 + i / 251) & 0xff);
	return p;
}

int t_cunit_run(void)
{
	unsigned failed;

	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failed = CU_get_number_of_failures() + CU_get_number_of_suites_failed();
	CU_cleanup_registry();
	return (int)failed;
}

int t_pdfinfo_ok(const char *dir, const char *name, const void *body, size_t len)
{
	char path[600], cmd[800], out[4096];
	FILE *f;
	int ok;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (f == NULL)
		return 0;
	ok = fwrite(body, 1, len, f) == len;
	if (fclose(f) != 0)
		ok = 0;
	snprintf(cmd, sizeof(cmd), "pdfinfo '%s' 2>&1", path);
	return ok && t_run(cmd, out, sizeof(out)) == 0 && strstr(out, "Pages:") != NULL;
}

int t_get(int port, const char *target, struct tresp *r, int timeout_ms)
{
	char req[1024];
	int fd = t_connect(port), rc = -1;

	memset(r, 0, sizeof(*r));
	if (fd < 0)
		return -1;
	snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", target);
	if (t_send_str(fd, req) == 0)
		rc = t_read_response(fd, r, 0, timeout_ms);
	close(fd);
	return rc;
}

int t_submit_async(int port, const char *target, char *id, size_t size)
{
	char req[1024], loc[256];
	const char *slash;
	struct tresp r;
	int fd = t_connect(port), ok;

	if (fd < 0)
		return -1;
	snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: t\r\nPrefer: respond-async\r\nConnection: close\r\n\r\n",
	         target);
	ok = t_send_str(fd, req) == 0 && t_read_response(fd, &r, 0, 20000) == 0;
	close(fd);
	if (!ok)
		return -1;
	ok = r.status == 202 && t_header(&r, "Location", loc, sizeof(loc)) != NULL && (slash = strrchr(loc, '/')) != NULL;
	t_resp_free(&r);
	if (!ok)
		return -1;
	snprintf(id, size, "%s", slash + 1);
	return 0;
}

long long t_metric(int admin_port, const char *sample)
{
	struct tresp r;
	long long v = -1;
	const char *p;
	size_t n = strlen(sample);

	if (t_get(admin_port, "/metrics", &r, 5000) == 0 && r.body != NULL) {
		for (p = r.body; (p = strstr(p, sample)) != NULL; p += n) {
			if (p != r.body && p[-1] == '\n') {
				v = strtoll(p + n, NULL, 10);
				break;
			}
		}
	}
	t_resp_free(&r);
	return v;
}

long t_proc_kb(pid_t pid, const char *field)
{
	char path[64], line[256];
	size_t n = strlen(field);
	long kb = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, field, n) == 0 && line[n] == ':') {
			kb = atol(line + n + 1);
			break;
		}
	fclose(f);
	return kb;
}
