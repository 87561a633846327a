#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static enum log_level current_level = LOG_LEVEL_INFO;
/* Where lines go. With --log-file this descriptor number stays the same for
 * the life of the process: log_reopen replaces the file behind it with
 * dup3(), which is atomic, so other threads writing a line at that moment
 * write either to the old file or to the new one, never to a closed fd. */
static int log_fd = STDERR_FILENO;
static char *log_path;

void log_set_level(enum log_level level) { current_level = level; }
enum log_level log_get_level(void) { return current_level; }

/* The pid every line names, asked of the kernel once (glibc does not keep
 * it), and again in a child made by fork(). */
static pid_t log_pid;
static pthread_once_t log_pid_once = PTHREAD_ONCE_INIT;

static void log_pid_forked(void) { log_pid = getpid(); }

static void log_pid_init(void)
{
	log_pid = getpid();
	pthread_atfork(NULL, NULL, log_pid_forked);
}

static void log_line(enum log_level level, int errnum, const char *fmt, va_list ap)
{
	static const char *names[] = {"error", "warn", "info", "debug"};
	char line[4096];
	char when[32];
	size_t n;
	int r;

	if (level > current_level)
		return;
	pthread_once(&log_pid_once, log_pid_init);
	util_iso_time(util_now_us(), when, sizeof(when));
	r = snprintf(line, sizeof(line), "%s cgiq[%d] %s: ", when, (int)log_pid, names[level]);
	n = r < 0 ? 0 : (size_t)r;
	r = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	if (r > 0)
		n += (size_t)r;
	if (n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	if (errnum != 0) {
		r = snprintf(line + n, sizeof(line) - n, ": %s", strerror(errnum));
		if (r > 0)
			n += (size_t)r;
		if (n > sizeof(line) - 2)
			n = sizeof(line) - 2;
	}
	line[n++] = '\n';
	/* One write per line so that lines of different threads never interleave. */
	while (write(log_fd, line, n) < 0 && errno == EINTR)
		;
}

static int open_log(const char *path)
{
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);
	return fd < 0 ? -errno : fd;
}

int log_open_file(const char *path)
{
	int fd;

	if (log_path != NULL)
		return -EBUSY;
	fd = open_log(path);
	if (fd < 0)
		return fd;
	log_path = util_xstrdup(path);
	log_fd = fd;
	return 0;
}

int log_reopen(void)
{
	int fd;

	if (log_path == NULL)
		return 0;
	fd = open_log(log_path);
	if (fd < 0)
		return fd;
	if (dup3(fd, log_fd, O_CLOEXEC) < 0) {
		int err = -errno;
		close(fd);
		return err;
	}
	close(fd);
	return 0;
}

const char *log_file_path(void) { return log_path; }

#define LOG_FN(name, level, with_errno)                                    \
	void name(const char *fmt, ...)                                    \
	{                                                                  \
		int saved = errno;                                         \
		va_list ap;                                                \
		va_start(ap, fmt);                                         \
		log_line(level, (with_errno) ? saved : 0, fmt, ap);        \
		va_end(ap);                                                \
		errno = saved;                                             \
	}

LOG_FN(log_error, LOG_LEVEL_ERROR, 0)
LOG_FN(log_warn, LOG_LEVEL_WARN, 1)
LOG_FN(log_warnx, LOG_LEVEL_WARN, 0)
LOG_FN(log_info, LOG_LEVEL_INFO, 0)
LOG_FN(log_debug, LOG_LEVEL_DEBUG, 0)

static size_t escaped_len(unsigned char c)
{
	return (c >= 0x20 && c < 0x7f && c != '\\' && c != '"') ? 1 : 4;
}

char *log_escape(char *dst, size_t dst_size, const char *src, size_t src_len)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0, total = 0, room;
	int truncated;

	/* Only cut (and add "...") when the whole escaped text does not fit. */
	for (size_t i = 0; i < src_len && total < dst_size; i++)
		total += escaped_len((unsigned char)src[i]);
	truncated = total + 1 > dst_size;
	room = truncated ? dst_size - 4 : dst_size - 1;

	for (size_t i = 0; i < src_len; i++) {
		unsigned char c = (unsigned char)src[i];
		size_t need = escaped_len(c);
		if (o + need > room)
			break;
		if (need == 1) {
			dst[o++] = (char)c;
		} else {
			dst[o++] = '\\';
			dst[o++] = 'x';
			dst[o++] = hex[c >> 4];
			dst[o++] = hex[c & 15];
		}
	}
	if (truncated) {
		memcpy(dst + o, "...", 3);
		o += 3;
	}
	dst[o] = '\0';
	return dst;
}
