/*
 * Many clients waiting on one long job (scripts/bench_waiting.sh): CLIENTS
 * connections to 127.0.0.1:PORT each send one GET of PATH with
 * "Prefer: processing" (so each gets 102s), then wait for the final answer.
 * Measured: how late each 102 after the first is against its schedule
 * (INTERVAL_MS after the one before it was due, counted from the first:
 * the gateway's timers under the load of all the others), how late the
 * first is (AFTER_MS after the client sent its request: that also counts
 * the time the gateway took to accept and read it among all the others),
 * how many clients got a whole 200, and the gateway's memory:
 * its VmRSS (process PID) before the clients connect and once every client
 * has had its first 102, divided by CLIENTS.
 *
 *   bench-waiting PORT PATH CLIENTS SECONDS AFTER_MS INTERVAL_MS PID
 *
 * Prints one line of "key=value" fields; exit status 0 when every client
 * was answered 200 with its whole body within SECONDS, else 1.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 256          /* connections being opened at once */
#define CLIENT_BUF 4096    /* what one client keeps of its answer */

struct client {
	int fd;
	int state;             /* 0 connecting, 1 sent, 2 answered, 3 failed */
	double sent_ms;
	double first_ms;       /* when the first 102 arrived */
	unsigned n102;
	size_t have;           /* bytes in buf */
	long long body_left;   /* of the final answer, -1 before its head */
	char buf[CLIENT_BUF];
};

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static long rss_kb(long pid)
{
	char path[64], line[256];
	long kb = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%ld/status", pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, "VmRSS:", 6) == 0)
			kb = strtol(line + 6, NULL, 10);
	fclose(f);
	return kb;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* Lateness of the 102s after the first [0], and of the first ones [1]. */
static struct lateness {
	double *v;
	size_t n, cap;
} late[2];

static void note_late(int first, double ms)
{
	{
		struct lateness *l = &late[first];
		if (l->n == l->cap) {
			l->cap = l->cap ? 2 * l->cap : 4096;
			l->v = realloc(l->v, l->cap * sizeof(*l->v));
			if (l->v == NULL)
				abort();
		}
		l->v[l->n++] = ms;
	}
}

static double pct(const struct lateness *l, double p)
{
	return l->n ? l->v[(size_t)((l->n - 1) * p)] : -1.0;
}

/* Reads the answer's blocks as they come: 102 heads (timed), then the
 * final head and its body. Returns 1 when the client is done (answered or
 * failed). */
static int client_read(struct client *c, double after_ms, double interval_ms)
{
	for (;;) {
		ssize_t n = read(c->fd, c->buf + c->have, sizeof(c->buf) - c->have);
		if (n < 0 && errno == EAGAIN)
			return 0;
		if (n <= 0) {
			c->state = 3;
			return 1;
		}
		if (c->body_left >= 0) {
			c->body_left -= n;
			if (c->body_left <= 0) {
				c->state = c->body_left == 0 ? 2 : 3;
				return 1;
			}
			continue;
		}
		c->have += (size_t)n;
		for (;;) {
			char *end = memmem(c->buf, c->have, "\r\n\r\n", 4);
			size_t head_len;
			if (end == NULL) {
				if (c->have == sizeof(c->buf)) {
					c->state = 3;
					return 1;
				}
				break;
			}
			head_len = (size_t)(end - c->buf) + 4;
			if (strncmp(c->buf, "HTTP/1.1 102 ", 13) == 0) {
				double t = now_ms();
				if (c->n102 == 0) {
					c->first_ms = t;
					note_late(1, t - (c->sent_ms + after_ms));
				} else {
					note_late(0, t - (c->first_ms + c->n102 * interval_ms));
				}
				c->n102++;
			} else if (strncmp(c->buf, "HTTP/1.1 200 ", 13) == 0) {
				const char *cl = memmem(c->buf, head_len, "Content-Length: ", 16);
				long long len = cl ? strtoll(cl + 16, NULL, 10) : -1;
				long long extra = (long long)(c->have - head_len);
				if (len < 0 || extra > len) {
					c->state = 3;
					return 1;
				}
				c->body_left = len - extra;
				c->have = 0;
				if (c->body_left == 0) {
					c->state = 2;
					return 1;
				}
				break;
			} else {
				c->state = 3;
				return 1;
			}
			memmove(c->buf, c->buf + head_len, c->have - head_len);
			c->have -= head_len;
		}
	}
}

int main(int argc, char **argv)
{
	struct sockaddr_in sa;
	struct epoll_event ev, evs[512];
	struct rlimit rl;
	struct client *cl;
	char req[512];
	int ep, port, clients, opened = 0, connecting = 0, all_waiting = 0;
	unsigned answered = 0, failed = 0, done = 0, total102 = 0;
	double seconds, after_ms, interval_ms, until;
	long pid, rss_base, rss_wait = -1;
	size_t req_len;

	if (argc != 8) {
		fprintf(stderr, "usage: bench-waiting PORT PATH CLIENTS SECONDS AFTER_MS INTERVAL_MS PID\n");
		return 2;
	}
	port = atoi(argv[1]);
	clients = atoi(argv[3]);
	seconds = atof(argv[4]);
	after_ms = atof(argv[5]);
	interval_ms = atof(argv[6]);
	pid = atol(argv[7]);
	if (port <= 0 || clients <= 0 || seconds <= 0 || interval_ms <= 0)
		return 2;
	rl.rlim_cur = rl.rlim_max = (rlim_t)clients + 64;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
		perror("bench-waiting: setrlimit");
		return 2;
	}
	req_len = (size_t)snprintf(req, sizeof(req),
	                           "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUser-Agent: bench-waiting\r\n"
	                           "Prefer: processing\r\n\r\n",
	                           argv[2], port);
	cl = calloc((size_t)clients, sizeof(*cl));
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (cl == NULL || ep < 0)
		return 2;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((unsigned short)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	rss_base = rss_kb(pid);
	until = now_ms() + seconds * 1000;

	while (done < (unsigned)clients && now_ms() < until) {
		/* Open connections a batch at a time: a burst of thousands would
		 * overflow the listen backlog and wait for SYN retries. */
		while (opened < clients && connecting < BATCH) {
			struct client *c = &cl[opened];
			c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
			c->body_left = -1;
			if (c->fd < 0 || (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 && errno != EINPROGRESS)) {
				c->state = 3;
				failed++;
				done++;
				opened++;
				continue;
			}
			ev.events = EPOLLOUT;
			ev.data.u32 = (unsigned)opened;
			epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
			opened++;
			connecting++;
		}
		int n = epoll_wait(ep, evs, 512, 50);
		for (int i = 0; i < n; i++) {
			struct client *c = &cl[evs[i].data.u32];
			if (c->state == 0) {
				int err = 0;
				socklen_t el = sizeof(err);
				connecting--;
				getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
				if (err || write(c->fd, req, req_len) != (ssize_t)req_len) {
					c->state = 3;
				} else {
					c->state = 1;
					c->sent_ms = now_ms();
					ev.events = EPOLLIN;
					ev.data.u32 = evs[i].data.u32;
					epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
					continue;
				}
			} else if (c->state == 1 && !client_read(c, after_ms, interval_ms)) {
				continue;
			}
			epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
			close(c->fd);
			done++;
			if (c->state == 2)
				answered++;
			else
				failed++;
		}
		if (!all_waiting && opened == clients) {
			int w = 1;
			for (int i = 0; i < clients && w; i++)
				w = cl[i].n102 > 0 || cl[i].state >= 2;
			if (w) {
				all_waiting = 1;
				rss_wait = rss_kb(pid);
			}
		}
	}
	for (int i = 0; i < clients; i++)
		total102 += cl[i].n102;
	for (int k = 0; k < 2; k++)
		qsort(late[k].v, late[k].n, sizeof(*late[k].v), cmp_double);
	printf("clients=%d answered=%u failed=%u 102s=%u lateness_p50_ms=%.1f lateness_p99_ms=%.1f "
	       "lateness_max_ms=%.1f first_p50_ms=%.1f first_p99_ms=%.1f rss_base_kb=%ld rss_waiting_kb=%ld per_client_bytes=%.0f\n",
	       clients, answered, failed + (unsigned)clients - done, total102, pct(&late[0], 0.5), pct(&late[0], 0.99),
	       pct(&late[0], 1.0), pct(&late[1], 0.5), pct(&late[1], 0.99), rss_base, rss_wait,
	       rss_wait >= 0 && rss_base >= 0 ? (rss_wait - rss_base) * 1024.0 / clients : -1.0);
	return answered == (unsigned)clients ? 0 : 1;
}
