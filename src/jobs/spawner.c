/*
 * The spawner: threads that start programs, so that the event loop never
 * waits while a child is created and exec'd (vfork suspends the calling
 * thread until then). Requests go in under a lock; results come back to the
 * loop through a uv_async_t.
 *
 * Two threads: while one is suspended in vfork, for as long as the child
 * takes to reach its exec, the other starts the next program. With one, a
 * 2-core machine sat partly idle under load (measured: +7 to +14% requests/s
 * for a trivial program with two; a third gained nothing).
 *
 * PR_SET_PDEATHSIG fires when the thread that created a child exits, so the
 * threads live until the engine is closed, when no job is running any more.
 */
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>

#include "internal.h"

#define SPAWNER_THREADS 2

struct jobs__spawner {
	pthread_t threads[SPAWNER_THREADS];
	int nthreads;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	struct jobs__spawn_req *waiting, *waiting_tail; /* under lock */
	struct jobs__spawn_req *done, *done_tail; /* under lock */
	int stopping;
	uv_async_t async;
	void (*on_done)(struct jobs__spawn_req *req, void *ctx);
	void *ctx;
	void (*on_closed)(void *ctx);
};

static void push(struct jobs__spawn_req **head, struct jobs__spawn_req **tail, struct jobs__spawn_req *r)
{
	r->next = NULL;
	if (*tail)
		(*tail)->next = r;
	else
		*head = r;
	*tail = r;
}

static void *spawner_main(void *arg)
{
	struct jobs__spawner *s = arg;
	sigset_t all;

	pthread_setname_np(pthread_self(), "cgiq-spawner");
	/* No signal handler ever runs on this thread, and children start with
	 * everything blocked until they have reset their dispositions. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, NULL);

	pthread_mutex_lock(&s->lock);
	for (;;) {
		while (s->waiting == NULL && !s->stopping)
			pthread_cond_wait(&s->wake, &s->lock);
		if (s->waiting == NULL)
			break;
		struct jobs__spawn_req *r = s->waiting;
		s->waiting = r->next;
		if (s->waiting == NULL)
			s->waiting_tail = NULL;
		pthread_mutex_unlock(&s->lock);

		r->err = cgi_spawn_start(&r->opts, &r->proc);

		pthread_mutex_lock(&s->lock);
		push(&s->done, &s->done_tail, r);
		uv_async_send(&s->async);
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

static void on_async(uv_async_t *h)
{
	struct jobs__spawner *s = h->data;
	struct jobs__spawn_req *list;

	pthread_mutex_lock(&s->lock);
	list = s->done;
	s->done = s->done_tail = NULL;
	pthread_mutex_unlock(&s->lock);
	while (list) {
		struct jobs__spawn_req *next = list->next;
		s->on_done(list, s->ctx);
		list = next;
	}
}

int jobs__spawner_open(uv_loop_t *loop, void (*on_done)(struct jobs__spawn_req *req, void *ctx),
                       void *ctx, struct jobs__spawner **out)
{
	struct jobs__spawner *s = util_xcalloc(1, sizeof(*s));
	int r;

	s->on_done = on_done;
	s->ctx = ctx;
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->wake, NULL);
	r = uv_async_init(loop, &s->async, on_async);
	if (r < 0) {
		pthread_mutex_destroy(&s->lock);
		pthread_cond_destroy(&s->wake);
		free(s);
		return r;
	}
	s->async.data = s;
	*out = s;
	return 0;
}

int jobs__spawner_run(struct jobs__spawner *s)
{
	int r = 0;

	for (int i = s->nthreads; i < SPAWNER_THREADS; i++) {
		r = pthread_create(&s->threads[i], NULL, spawner_main, s);
		if (r != 0)
			break;
		s->nthreads++;
	}
	return s->nthreads > 0 ? 0 : -r;
}

void jobs__spawner_submit(struct jobs__spawner *s, struct jobs__spawn_req *req)
{
	pthread_mutex_lock(&s->lock);
	push(&s->waiting, &s->waiting_tail, req);
	pthread_cond_signal(&s->wake);
	pthread_mutex_unlock(&s->lock);
}

static void on_async_closed(uv_handle_t *h)
{
	struct jobs__spawner *s = h->data;
	void (*cb)(void *) = s->on_closed;
	void *ctx = s->ctx;

	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->wake);
	free(s);
	cb(ctx);
}

void jobs__spawner_close(struct jobs__spawner *s, void (*on_closed)(void *ctx))
{
	pthread_mutex_lock(&s->lock);
	s->stopping = 1;
	pthread_cond_broadcast(&s->wake);
	pthread_mutex_unlock(&s->lock);
	for (int i = 0; i < s->nthreads; i++)
		pthread_join(s->threads[i], NULL);
	on_async(&s->async); /* results that arrived after the last wake-up */
	s->on_closed = on_closed;
	uv_close((uv_handle_t *)&s->async, on_async_closed);
}
