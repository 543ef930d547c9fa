/* fs.c: see fs.h. */
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs.h"

char *vgm_path(const char *root, const char *fmt, ...)
{
	_cleanup_free_ char *rel = NULL;
	char *out = NULL;
	va_list ap;

	va_start(ap, fmt);
	int r = vasprintf(&rel, fmt, ap);
	va_end(ap);
	if (r < 0)
		return NULL;
	if (!root || !root[0] || STREQ(root, "/"))
		return TAKE_PTR(rel);
	size_t rl = strlen(root);
	while (rl > 1 && root[rl - 1] == '/')
		rl--;
	if (asprintf(&out, "%.*s%s%s", (int)rl, root, rel[0] == '/' ? "" : "/", rel) < 0)
		return NULL;
	return out;
}

int vgm_read_fd(int fd, size_t max, char **out, size_t *len)
{
	size_t cap = 4096, n = 0;
	_cleanup_free_ char *buf = malloc(cap + 1);
	if (!buf)
		return -ENOMEM;
	for (;;) {
		if (n == cap) {
			if (cap > max)
				return -EFBIG;
			size_t ncap = cap * 2;
			char *nb = realloc(buf, ncap + 1);
			if (!nb)
				return -ENOMEM;
			buf = nb;
			cap = ncap;
		}
		ssize_t k = read(fd, buf + n, cap - n);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (k == 0)
			break;
		n += (size_t)k;
		if (n > max)
			return -EFBIG;
	}
	buf[n] = '\0';
	if (len)
		*len = n;
	*out = TAKE_PTR(buf);
	return 0;
}

int vgm_read_file(const char *path, size_t max, char **out, size_t *len)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -errno;
	return vgm_read_fd(fd, max, out, len);
}

int vgm_read_attr(const char *path, char **out)
{
	char *s = NULL;
	size_t n = 0;
	int r = vgm_read_file(path, 64 * 1024, &s, &n);
	if (r < 0)
		return r;
	while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
		s[--n] = '\0';
	*out = s;
	return 0;
}

int vgm_read_attr_u64(const char *path, unsigned long long *out)
{
	_cleanup_free_ char *s = NULL;
	int r = vgm_read_attr(path, &s);
	if (r < 0)
		return r;
	char *end = NULL;
	errno = 0;
	if (s[0] < '0' || s[0] > '9')
		return -EINVAL;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end)
		return -EINVAL;
	*out = v;
	return 0;
}

int vgm_write_attr(const char *path, const char *value)
{
	_cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -errno;
	size_t n = strlen(value);
	ssize_t k;
	do
		k = write(fd, value, n);
	while (k < 0 && errno == EINTR);
	if (k < 0)
		return -errno;
	if ((size_t)k != n)
		return -EIO;
	return 0;
}

int vgm_readlink_base(const char *path, char **out)
{
	char buf[PATH_MAX];
	ssize_t k = readlink(path, buf, sizeof(buf) - 1);
	if (k < 0)
		return -errno;
	buf[k] = '\0';
	while (k > 1 && buf[k - 1] == '/')
		buf[--k] = '\0';
	const char *b = strrchr(buf, '/');
	char *s = strdup(b ? b + 1 : buf);
	if (!s)
		return -ENOMEM;
	*out = s;
	return 0;
}

bool vgm_exists(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0;
}
