/*
 * The HTTP front's listeners and its life: opening, accepting (paused while
 * descriptors run short), draining and closing.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "internal.h"

/* Connection ids in log lines; the loop thread is the only user. */
static uint64_t conn_seq;


/* ------------------------------------------------------------------ */
/* accepting */

/*
 * Out of descriptors. libuv's own answer to EMFILE (uv__emfile_trick in its
 * stream.c) is to close a spare descriptor, accept every pending connection
 * and close it at once, so clients are dropped without a word, and a
 * callback sees an error only when the spare is gone. cgiq stops before
 * that point: when fewer than nofile_headroom descriptors are left (room for
 * the pipes of running jobs, spool files, the database), it leaves the
 * connection libuv just accepted untaken: libuv then stops watching that
 * listener (the documented effect of not calling uv_accept in the
 * callback), and new connections wait in the kernel's backlog. Accepting
 * resumes, with the held connection first, when a connection closes or on
 * a timer, once descriptors are free again. Nothing spins and nothing is
 * dropped.
 */
#define ACCEPT_RETRY_MS 250

/* 1 when the lowest free descriptor is within the headroom of the limit
 * (descriptors are handed out lowest first, so this tracks how many are in
 * use); also when even that probe fails. */
static int server_fds_low(const struct http_server *s, int *lowest)
{
	int fd = fcntl(2, F_DUPFD_CLOEXEC, 0);

	if (fd < 0)
		fd = open("/dev/null", O_RDONLY | O_CLOEXEC); /* fd 2 may be closed */
	*lowest = fd;
	if (fd < 0)
		return 1;
	close(fd);
	return s->nofile_limit > 0 && fd >= s->nofile_limit - s->nofile_headroom;
}

static void accept_resume(struct http_server *s);

static void on_accept_timer(uv_timer_t *t) { accept_resume(t->data); }

static void server_accept_pause(struct http_server *s, int lowest)
{
	if (s->accept_paused)
		return;
	s->accept_paused = 1;
	/* Once per episode, not once per connection. */
	log_warnx("descriptors running out (lowest free %d, limit %d, %u connections): "
	          "accepting paused", lowest, s->nofile_limit, s->conn_count);
	uv_timer_start(&s->accept_timer, on_accept_timer, ACCEPT_RETRY_MS, ACCEPT_RETRY_MS);
}

static void listener_take(struct listener *l);

static void accept_resume(struct http_server *s)
{
	int lowest;

	if (!s->accept_paused || s->closing || server_fds_low(s, &lowest))
		return;
	s->accept_paused = 0;
	uv_timer_stop(&s->accept_timer);
	log_info("descriptors available again (lowest free %d): accepting again", lowest);
	for (struct listener *l = s->listeners; l && !s->accept_paused; l = l->next) {
		if (l->held) {
			l->held = 0;
			listener_take(l); /* uv_accept restarts libuv's watching */
		}
	}
}

static void on_connection(uv_stream_t *server, int status)
{
	struct listener *l = server->data;
	struct http_server *s = l->srv;
	int lowest = -1;

	if (status < 0) {
		if (status == UV_EMFILE || status == UV_ENFILE)
			server_accept_pause(s, lowest);
		else
			log_warnx("accept on %s: %s", l->name, uv_strerror(status));
		return;
	}
	if (s->accept_paused || server_fds_low(s, &lowest)) {
		l->held = 1;
		server_accept_pause(s, lowest);
		return;
	}
	listener_take(l);
}

/* c's names (its tag, peer and addresses), in one allocation: a
 * connection holds them for its whole life. */
static void conn_name(struct conn *c, struct http_server *s, int is_unix)
{
	char remote[64] = "127.0.0.1", local[64] = "127.0.0.1", peer[80] = "unix", tag[112];
	size_t lt, lp, lr, ll;

	if (!is_unix) {
		struct sockaddr_storage ss;
		int len = sizeof(ss);
		uv_tcp_nodelay(&c->h.tcp, 1);
		if (uv_tcp_getpeername(&c->h.tcp, (struct sockaddr *)&ss, &len) == 0)
			front_sockaddr_text(&ss, remote, sizeof(remote), &c->remote_port);
		len = sizeof(ss);
		if (uv_tcp_getsockname(&c->h.tcp, (struct sockaddr *)&ss, &len) == 0)
			front_sockaddr_text(&ss, local, sizeof(local), &c->local_port);
		snprintf(peer, sizeof(peer), strchr(remote, ':') ? "[%s]:%u" : "%s:%u", remote, c->remote_port);
	}
	snprintf(tag, sizeof(tag), "%s %llu %s", s->cfg.admin ? "admin" : "conn", (unsigned long long)++conn_seq, peer);
	lt = strlen(tag) + 1;
	lp = strlen(peer) + 1;
	lr = strlen(remote) + 1;
	ll = strlen(local) + 1;
	c->names = util_xmalloc(lt + lp + lr + ll);
	c->tag = memcpy(c->names, tag, lt);
	c->peer = memcpy(c->names + lt, peer, lp);
	c->remote_addr = memcpy(c->names + lt + lp, remote, lr);
	c->local_addr = memcpy(c->names + lt + lp + lr, local, ll);
}

/* Takes the connection libuv accepted on l. */
static void listener_take(struct listener *l)
{
	uv_stream_t *server = &l->h.stream;
	struct http_server *s = l->srv;
	struct conn *c;
	int r;

	c = util_xcalloc(1, sizeof(*c));
	c->srv = s;
	c->is_unix = l->is_unix;
	if (l->is_unix)
		r = uv_pipe_init(s->loop, &c->h.pipe, 0);
	else
		r = uv_tcp_init(s->loop, &c->h.tcp);
	if (r < 0) {
		free(c);
		return;
	}
	c->h.handle.data = c;
	uv_timer_init(s->loop, &c->timer);
	c->timer.data = c;
	c->handles_open = 2;
	c->tag = c->peer = c->remote_addr = c->local_addr = "-";
	c->next = s->conns;
	if (s->conns)
		s->conns->prev = c;
	s->conns = c;
	s->conn_count++;
	buf_init(&c->in, PIPELINE_MAX_BYTES + FRONT_READ_BYTES);
	c->parser = http_req_parser_new(&s->cfg.limits, http__on_body, c);

	r = uv_accept(server, &c->h.stream);
	if (r < 0) {
		log_warnx("accept on %s: %s", l->name, uv_strerror(r));
		http__conn_close(c);
		return;
	}
	conn_name(c, s, l->is_unix);
	c->req = front_req_new(s->front, c, c->tag);
	c->handles_open++;
	if (front_req_refused(c->req)) {
		/* Answered at once (503, Retry-After), before its request is read. */
		c->keep_alive = 0;
		c->linger = 1;
		c->close_after = 1;
		front_req_serve(c->req);
		return;
	}
	c->reading = 1;
	uv_read_start(&c->h.stream, front_alloc_cb, http__on_conn_read);
	http__conn_process(c);
}

/* ------------------------------------------------------------------ */
/* public */

int http_server_open(uv_loop_t *loop, struct job_engine *engine, const struct http_server_config *cfg,
                     struct http_server **out)
{
	struct http_server *s = util_xcalloc(1, sizeof(*s));
	s->loop = loop;
	s->engine = engine;
	s->cfg = *cfg;
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < INT_MAX)
		s->nofile_limit = (int)rl.rlim_cur;
	/* Room for what jobs and the store open besides connections. */
	s->nofile_headroom = s->nofile_limit / 8 < 16 ? 16 : s->nofile_limit / 8 > 256 ? 256 : s->nofile_limit / 8;
	s->on_conn_freed = accept_resume;
	{
		struct front_config fc = {
			.engine = engine,
			.ops = &http__wire_ops,
			.spool_dir = cfg->spool_dir,
			.body_mem_bytes = cfg->body_mem_bytes,
			.max_body_bytes = 0, /* the parser's limit: 413 */
			.max_connections = cfg->max_connections,
			.jobs_prefix = cfg->jobs_prefix,
			.max_wait_ms = cfg->max_wait_ms,
			.detach_on_disconnect = cfg->detach_on_disconnect,
			.access_log = cfg->admin ? NULL : cfg->access_log,
			.counters = cfg->admin ? NULL : cfg->counters,
			.mime = cfg->mime,
		};
		front_open(loop, &fc, &s->front);
	}
	uv_timer_init(loop, &s->accept_timer);
	s->accept_timer.data = s;
	s->handles_open++;
	*out = s;
	return 0;
}

static void on_listener_closed(uv_handle_t *h)
{
	struct listener *l = h->data;
	struct http_server *s = l->srv;
	if (l->unix_path)
		unlink(l->unix_path);
	free(l->unix_path);
	free(l->name);
	free(l);
	s->handles_open--;
	http__server_maybe_free(s);
}

int http_server_listen(struct http_server *s, const char *addr)
{
	struct front_listen_opts o = {.unix_mode = s->cfg.unix_mode};
	struct front_socket fs;
	struct listener *l;
	int r = front_listen_open(addr, &o, &fs);

	if (r < 0)
		return r;
	l = util_xcalloc(1, sizeof(*l));
	l->srv = s;
	l->is_unix = fs.is_unix;
	r = front_socket_wrap(s->loop, &fs, &l->h);
	l->h.handle.data = l;
	s->handles_open++;
	if (r == 0)
		r = uv_listen(&l->h.stream, 1024, on_connection);
	l->name = util_xstrdup(r == 0 ? fs.shown : addr);
	l->unix_path = fs.unix_path; /* removed when the listener closes */
	fs.unix_path = NULL;
	front_socket_release(&fs);
	if (r < 0) {
		uv_close(&l->h.handle, on_listener_closed);
		return r;
	}
	l->next = s->listeners;
	s->listeners = l;
	log_info("%s on %s", s->cfg.admin ? "admin listener" : "listening", fs.shown);
	return 0;
}

void http_server_drain(struct http_server *s)
{
	struct conn *c, *next;

	if (s == NULL || s->closing || s->draining)
		return;
	s->draining = 1;
	for (struct listener *l = s->listeners; l; l = l->next)
		uv_close(&l->h.handle, on_listener_closed);
	s->listeners = NULL;
	/* Idle keep-alive connections: nothing is lost by closing them now.
	 * Those with a request under way are answered (a new job: 503) and
	 * closed after their response. */
	for (c = s->conns; c; c = next) {
		next = c->next;
		if (c->phase == PH_HEAD && !c->head_started && c->writes_pending == 0 && c->in.len == 0)
			http__conn_close(c);
	}
}

unsigned http_server_connections(const struct http_server *s)
{
	return s ? s->conn_count : 0;
}

static void on_accept_timer_closed(uv_handle_t *h)
{
	struct http_server *s = h->data;
	s->handles_open--;
	http__server_maybe_free(s);
}

void http_server_close(struct http_server *s)
{
	if (s == NULL || s->closing)
		return;
	s->closing = 1;
	uv_close((uv_handle_t *)&s->accept_timer, on_accept_timer_closed);
	for (struct listener *l = s->listeners; l; l = l->next)
		uv_close(&l->h.handle, on_listener_closed);
	s->listeners = NULL;
	for (struct conn *c = s->conns; c; c = c->next)
		http__conn_close(c);
	http__server_maybe_free(s);
}
