/*
 * fork/exec of a CGI program (RFC 3875 3.4, 5) in its own process group so
 * the whole tree can be signalled at once.
 */
#include "cgi.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/*
 * The child is made with vfork(): it shares cgiq's memory until execve, so no
 * page tables are copied and no copy-on-write faults follow (fork() of the
 * daemon cost more than the program it started). The parent is suspended
 * until the child has exec'd or exited, which also makes the exec error
 * visible through exec_errno, written by the child into shared memory.
 * Everything the child needs is prepared before vfork(); after it, only
 * system calls run, and the child never returns from spawn_child.
 */
struct spawn_child {
	const struct cgi_spawn *opts;
	pid_t parent;
	int fds[4];   /* become 0, 1, 2, and 3 when nfds is 4 */
	int nfds;
	volatile int exec_errno;
	struct sigaction dfl;
	sigset_t empty;
	const sigset_t *reset;   /* dispositions to set to SIG_DFL */
};

/*
 * Which dispositions the child resets. Asking the kernel for each signal in
 * every child cost some thirty system calls per request, while the answer
 * hardly ever changes: it is taken once, and the signals cgiq handles itself
 * are always included, whenever their handlers were installed.
 */
static sigset_t spawn_reset_set;
static pthread_once_t spawn_reset_once = PTHREAD_ONCE_INIT;

static void spawn_reset_init(void)
{
	static const int own[] = {SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGCHLD,
	                          SIGPIPE, SIGUSR1, SIGUSR2, SIGALRM};
	struct sigaction sa;
	int sig;

	sigemptyset(&spawn_reset_set);
	for (size_t i = 0; i < sizeof(own) / sizeof(own[0]); i++)
		sigaddset(&spawn_reset_set, own[i]);
	for (sig = 1; sig < SIGRTMIN && sig < 32; sig++) {
		if (sig == SIGKILL || sig == SIGSTOP)
			continue;
		if (sigaction(sig, NULL, &sa) == 0 && sa.sa_handler != SIG_DFL)
			sigaddset(&spawn_reset_set, sig);
	}
}

static void spawn_close(int *fd)
{
	if (*fd >= 0) {
		close(*fd);
		*fd = -1;
	}
}

static __attribute__((noreturn)) void spawn_child_fail(struct spawn_child *c, int err)
{
	c->exec_errno = err;
	_exit(127);
}

/* In the child: plain system calls on values computed by the caller. */
static int spawn_limit(int resource, uint64_t soft, uint64_t hard)
{
	struct rlimit rl;

	rl.rlim_cur = soft >= (uint64_t)RLIM_INFINITY ? RLIM_INFINITY : (rlim_t)soft;
	rl.rlim_max = hard >= (uint64_t)RLIM_INFINITY ? RLIM_INFINITY : (rlim_t)hard;
	return setrlimit(resource, &rl);
}

static int spawn_apply_limits(const struct cgi_limits *l)
{
	if (l == NULL)
		return 0;
	if ((l->cpu_s && spawn_limit(RLIMIT_CPU, l->cpu_s, l->cpu_s + 1) < 0) ||
	    (l->as_bytes && spawn_limit(RLIMIT_AS, l->as_bytes, l->as_bytes) < 0) ||
	    (l->nofile && spawn_limit(RLIMIT_NOFILE, l->nofile, l->nofile) < 0) ||
	    (l->nproc && spawn_limit(RLIMIT_NPROC, l->nproc, l->nproc) < 0) ||
	    (l->fsize_bytes && spawn_limit(RLIMIT_FSIZE, l->fsize_bytes, l->fsize_bytes) < 0) ||
	    (l->core_set && spawn_limit(RLIMIT_CORE, l->core_bytes, l->core_bytes) < 0))
		return -errno;
	/* Linux: niceness is per thread; the vfork child is its own thread, so
	 * this changes the program only, never cgiq. */
	if (l->nice_set && setpriority(PRIO_PROCESS, 0, l->nice) < 0)
		return -errno;
	return 0;
}

static __attribute__((noinline, noreturn)) void spawn_child(struct spawn_child *c)
{
	int moved[4];
	int i, sig, r;

	setpgid(0, 0);
	/* The program's identity, all three ids of each kind, so that it
	 * cannot take cgiq's back. Raw system calls: glibc's wrappers would
	 * change every thread of cgiq, whose memory this child shares. First,
	 * because a change of credentials disarms the death signal. */
	if (c->opts->as != NULL) {
		const struct cgi_identity *as = c->opts->as;
		if ((as->set_groups && syscall(SYS_setgroups, (size_t)as->ngroups, as->groups) < 0) ||
		    syscall(SYS_setresgid, as->gid, as->gid, as->gid) < 0 ||
		    syscall(SYS_setresuid, as->uid, as->uid, as->uid) < 0)
			spawn_child_fail(c, errno);
	}
	/* Die with cgiq; if it already died between fork and prctl, the
	 * signal was never armed, so check by hand. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
		spawn_child_fail(c, errno);
	if (getppid() != c->parent)
		_exit(127);

	/* Ignored signals survive execve: a program inheriting SIG_IGN for
	 * SIGTERM/SIGPIPE would misbehave, and a handler must not run here, on
	 * cgiq's memory. Defaults first, then unblock, so a pending signal gets
	 * its default action. The standard signals only: cgiq never touches the
	 * real-time ones (glibc reserves the first few). */
	for (sig = 1; sig < SIGRTMIN && sig < 32; sig++) {
		if (sigismember(c->reset, sig))
			sigaction(sig, &c->dfl, NULL);
	}
	sigprocmask(SIG_SETMASK, &c->empty, NULL);

	/* If one of the ends is itself 0..3 (cgiq started with a closed stdio),
	 * move them all out of the way first: dup2 onto itself would keep
	 * FD_CLOEXEC set, and a later dup2 could overwrite it. Usually none is. */
	for (i = 0; i < c->nfds; i++)
		moved[i] = c->fds[i];
	for (i = 0; i < c->nfds; i++) {
		if (c->fds[i] < c->nfds)
			break;
	}
	if (i < c->nfds) {
		for (i = 0; i < c->nfds; i++) {
			moved[i] = fcntl(c->fds[i], F_DUPFD_CLOEXEC, c->nfds);
			if (moved[i] < 0)
				spawn_child_fail(c, errno);
		}
	}
	for (i = 0; i < c->nfds; i++)
		if (dup2(moved[i], i) < 0)
			spawn_child_fail(c, errno);
	/* Belt and braces for fds a library opened without O_CLOEXEC. */
	close_range((unsigned)c->nfds, ~0U, CLOSE_RANGE_CLOEXEC);

	if (c->opts->cwd != NULL && chdir(c->opts->cwd) < 0)
		spawn_child_fail(c, errno);
	/* Last before exec: a low RLIMIT_NOFILE or RLIMIT_AS must not break
	 * the steps above. */
	r = spawn_apply_limits(c->opts->limits);
	if (r < 0)
		spawn_child_fail(c, -r);
	execve(c->opts->path, c->opts->argv, c->opts->envp);
	spawn_child_fail(c, errno);
}

/* Only for a child that failed before or at exec: it has exited or is about
 * to, so this does not block for long. ECHILD (someone else reaped it) is fine. */
static void spawn_reap(pid_t pid)
{
	int status, r;

	do
		r = waitpid(pid, &status, 0);
	while (r < 0 && errno == EINTR);
}

/* fd is a fresh pipe end: no other status flag is set that F_SETFL could clear. */
static int spawn_nonblock(int fd)
{
	return fcntl(fd, F_SETFL, O_NONBLOCK) < 0 ? -errno : 0;
}

/* What the child needs, computed before vfork: its descriptors 0..3, the
 * default disposition and empty mask it installs, the signals to reset. */
static void spawn_child_prepare(struct spawn_child *c, const struct cgi_spawn *opts, int fd0, int fd1, int fd2,
                                int fd3)
{
	memset(c, 0, sizeof(*c));
	c->opts = opts;
	c->parent = getpid();
	c->fds[0] = fd0;
	c->fds[1] = fd1;
	c->fds[2] = fd2;
	c->fds[3] = fd3;
	c->nfds = opts->progress_fd ? 4 : 3;
	c->exec_errno = 0;
	c->dfl.sa_handler = SIG_DFL;
	sigemptyset(&c->dfl.sa_mask);
	sigemptyset(&c->empty);
	pthread_once(&spawn_reset_once, spawn_reset_init);
	c->reset = &spawn_reset_set;
}

int cgi_spawn_start(const struct cgi_spawn *opts, struct cgi_proc *out)
{
	int in[2] = {-1, -1}, outp[2] = {-1, -1}, errp[2] = {-1, -1}, prog[2] = {-1, -1};
	struct spawn_child c;
	sigset_t all, old;
	pid_t pid;
	int err = 0;

	out->pid = -1;
	out->stdin_fd = out->stdout_fd = out->stderr_fd = out->progress_fd = -1;

	if ((opts->stdin_fd < 0 && pipe2(in, O_CLOEXEC) < 0) || pipe2(outp, O_CLOEXEC) < 0 ||
	    pipe2(errp, O_CLOEXEC) < 0 || (opts->progress_fd && pipe2(prog, O_CLOEXEC) < 0)) {
		err = -errno;
		goto fail;
	}

	spawn_child_prepare(&c, opts, opts->stdin_fd >= 0 ? opts->stdin_fd : in[0], outp[1], errp[1], prog[1]);

	/* With every signal blocked across vfork, none of cgiq's handlers can
	 * run in the child (on cgiq's memory) before the dispositions are reset. */
	if (!opts->signals_blocked) {
		sigfillset(&all);
		pthread_sigmask(SIG_SETMASK, &all, &old);
	}
	pid = vfork();
	if (pid == 0)
		spawn_child(&c); /* does not return */
	if (pid < 0)
		err = -errno;
	if (!opts->signals_blocked)
		pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (pid < 0)
		goto fail;

	/* vfork: the child has run setpgid(0, 0) and exec'd (or failed) by now. */
	spawn_close(&in[0]);
	spawn_close(&outp[1]);
	spawn_close(&errp[1]);
	spawn_close(&prog[1]);
	if (c.exec_errno != 0) {
		err = -c.exec_errno;
		spawn_reap(pid);
		goto fail;
	}

	if ((in[1] >= 0 && (err = spawn_nonblock(in[1])) < 0) ||
	    (err = spawn_nonblock(outp[0])) < 0 || (err = spawn_nonblock(errp[0])) < 0) {
		kill(-pid, SIGKILL);
		spawn_reap(pid);
		goto fail;
	}

	out->pid = pid;
	out->stdin_fd = in[1];
	out->stdout_fd = outp[0];
	out->stderr_fd = errp[0];
	out->progress_fd = prog[0];
	return 0;

fail:
	spawn_close(&in[0]);
	spawn_close(&in[1]);
	spawn_close(&outp[0]);
	spawn_close(&outp[1]);
	spawn_close(&errp[0]);
	spawn_close(&errp[1]);
	spawn_close(&prog[0]);
	spawn_close(&prog[1]);
	return err;
}
