/*
 * The ceiling any CGI gateway works under on this machine: THREADS loops that
 * do nothing but posix_spawn a program with its stdout on a pipe, read the
 * pipe to its end and waitpid, for SECONDS. No HTTP, no record, no limits.
 * scripts/bench.sh prints the result beside cgiq's figures.
 *
 *   spawn-bound PROGRAM SECONDS THREADS    prints "<programs started per second>"
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define MAX_THREADS 16

struct loop {
	pthread_t thread;
	const char *program;
	double until;
	unsigned long runs;
	int err; /* 0, or the errno that stopped this loop */
};

static double now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int run_once(const char *program)
{
	char *argv[] = {(char *)program, NULL};
	posix_spawn_file_actions_t fa;
	char buf[4096];
	int fds[2], status, r;
	pid_t pid;
	ssize_t n;

	if (pipe2(fds, O_CLOEXEC) < 0)
		return errno;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
	r = posix_spawn(&pid, program, &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(fds[1]);
	if (r != 0) {
		close(fds[0]);
		return r;
	}
	while ((n = read(fds[0], buf, sizeof(buf))) > 0 || (n < 0 && errno == EINTR))
		;
	close(fds[0]);
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return errno;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : ECHILD;
}

static void *loop_main(void *arg)
{
	struct loop *l = arg;

	while (now_s() < l->until) {
		l->err = run_once(l->program);
		if (l->err != 0)
			break;
		l->runs++;
	}
	return NULL;
}

int main(int argc, char **argv)
{
	struct loop loops[MAX_THREADS];
	unsigned long total = 0;
	double seconds, start;
	int threads, started = 0;

	if (argc != 4 || (seconds = atof(argv[2])) <= 0 || (threads = atoi(argv[3])) < 1 ||
	    threads > MAX_THREADS) {
		fprintf(stderr, "usage: spawn-bound PROGRAM SECONDS THREADS (1..%d)\n", MAX_THREADS);
		return 2;
	}
	start = now_s();
	for (int i = 0; i < threads; i++) {
		loops[i] = (struct loop){.program = argv[1], .until = start + seconds};
		if (pthread_create(&loops[i].thread, NULL, loop_main, &loops[i]) != 0)
			break;
		started++;
	}
	for (int i = 0; i < started; i++) {
		pthread_join(loops[i].thread, NULL);
		if (loops[i].err != 0) {
			fprintf(stderr, "spawn-bound: %s: %s\n", argv[1], strerror(loops[i].err));
			return 1;
		}
		total += loops[i].runs;
	}
	if (started != threads) {
		fprintf(stderr, "spawn-bound: could not start %d threads\n", threads);
		return 1;
	}
	printf("%.0f\n", (double)total / (now_s() - start));
	return 0;
}
