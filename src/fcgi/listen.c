/*
 * The FastCGI front's listening socket (--fastcgi ADDR, or the socket
 * spawn-fcgi or systemd hands over) and the front's life: open, start,
 * drain, close.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "internal.h"

/* ------------------------------------------------------------------ */
/* listening */

static int inherited_fd(void)
{
	const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
	int acc = 0;
	socklen_t len = sizeof(acc);

	if (pid && fds && strtol(pid, NULL, 10) == (long)getpid() && strtol(fds, NULL, 10) >= 1)
		return 3; /* systemd: SD_LISTEN_FDS_START */
	/* spawn-fcgi and the FastCGI convention: fd 0 is the listening socket. */
	if (getsockopt(0, SOL_SOCKET, SO_ACCEPTCONN, &acc, &len) == 0 && acc)
		return 0;
	return -1;
}

int fcgi_inherited_socket(void) { return inherited_fd() >= 0; }

int fcgi_front_listen(struct fcgi_front *f, const char *addr)
{
	struct front_listen_opts o = {.unix_mode = f->cfg.socket_mode, .unix_owner = f->cfg.socket_owner};
	int r;

	if (f->sock.fd >= 0 || f->listening || f->closing)
		return -EBUSY;
	if (strcmp(addr, "inherit") == 0) {
		/* the descriptor spawn-fcgi or systemd handed over */
		int fd = inherited_fd();
		char name[32];
		if (fd < 0)
			return -EINVAL;
		snprintf(name, sizeof(name), "inherited fd %d", fd);
		front_socket_adopt(fd, name, &f->sock);
		return 0;
	}
	r = front_listen_open(addr, &o, &f->sock);
	if (r == -ENOENT && f->cfg.socket_owner)
		log_warnx("fastcgi: --fastcgi-owner %s: no such user or group", f->cfg.socket_owner);
	return r;
}


/* ------------------------------------------------------------------ */
/* the front */

int fcgi_front_open(uv_loop_t *loop, struct job_engine *engine, const struct fcgi_config *cfg,
                    struct fcgi_front **out)
{
	struct fcgi_front *f = util_xcalloc(1, sizeof(*f));

	f->loop = loop;
	f->engine = engine;
	f->cfg = *cfg;
	f->sock.fd = -1;
	{
		struct front_config fc = {
			.engine = engine,
			.ops = &fcgi__wire_ops,
			.spool_dir = cfg->spool_dir,
			.body_mem_bytes = cfg->body_mem_bytes,
			.max_body_bytes = cfg->max_body_bytes,
			.max_connections = cfg->max_connections,
			.jobs_prefix = cfg->jobs_prefix,
			.max_wait_ms = cfg->max_wait_ms,
			.detach_on_disconnect = cfg->detach_on_disconnect,
			.accel_prefix = cfg->accel_prefix,
			.access_log = cfg->access_log,
			.counters = cfg->counters,
		};
		front_open(loop, &fc, &f->front);
	}
	*out = f;
	return 0;
}

int fcgi_front_start(struct fcgi_front *f)
{
	int r;

	if (f->sock.fd < 0 || f->listening)
		return -EBUSY;
	r = front_socket_wrap(f->loop, &f->sock, &f->lh);
	f->listening = 1; /* the handle is initialised: closed with the front */
	f->lh.handle.data = f;
	if (r == 0)
		r = uv_listen(&f->lh.stream, SOMAXCONN, fcgi__on_connection);
	if (r < 0) {
		log_warnx("fastcgi: cannot listen on %s: %s", f->sock.shown, uv_strerror(r));
		return r;
	}
	log_info("fastcgi on %s (on the event loop)", f->sock.shown);
	return 0;
}

static void on_listener_closed(uv_handle_t *h)
{
	struct fcgi_front *f = h->data;

	f->listening = 0;
	fcgi__front_maybe_free(f);
}

void fcgi_front_drain(struct fcgi_front *f)
{
	struct fconn *c, *next;

	if (f == NULL || f->draining)
		return;
	f->draining = 1;
	if (f->listening)
		uv_close(&f->lh.handle, on_listener_closed);
	/* Kept connections between requests are ended; the others after their
	 * answer (conn_next). */
	for (c = f->conns; c; c = next) {
		next = c->next;
		if (c->phase == FP_IDLE)
			fcgi__conn_close(c);
	}
}

unsigned fcgi_front_busy(struct fcgi_front *f) { return f ? f->busy : 0; }

void fcgi_front_close(struct fcgi_front *f)
{
	struct fconn *c, *next;

	if (f == NULL || f->closing)
		return;
	f->closing = 1;
	if (f->listening && !uv_is_closing(&f->lh.handle))
		uv_close(&f->lh.handle, on_listener_closed);
	for (c = f->conns; c; c = next) {
		next = c->next;
		c->failed = 1;
		fcgi__conn_close(c);
	}
	fcgi__front_maybe_free(f);
}
