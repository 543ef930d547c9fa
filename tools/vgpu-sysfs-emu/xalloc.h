/* xalloc.h: allocation helpers for vgpu-sysfs-emu that abort on
 * out-of-memory.  The emulator is a test tool; a tree or a reply built
 * half-way would mislead the program under test, so failing loudly is the
 * honest choice (the library proper returns -ENOMEM instead). */
#pragma once

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static inline void *xoom(void *p)
{
	if (!p) {
		fputs("vgpu-sysfs-emu: out of memory\n", stderr);
		abort();
	}
	return p;
}

static inline void *xmalloc(size_t n) { return xoom(malloc(n ? n : 1)); }
static inline void *xcalloc(size_t n, size_t k) { return xoom(calloc(n ? n : 1, k ? k : 1)); }
static inline char *xstrdup(const char *s) { return xoom(strdup(s)); }
static inline char *xstrndup(const char *s, size_t n) { return xoom(strndup(s, n)); }

__attribute__((format(printf, 1, 0))) static inline char *xvasprintf(const char *fmt, va_list ap)
{
	char *s = NULL;
	if (vasprintf(&s, fmt, ap) < 0)
		xoom(NULL);
	return s;
}

__attribute__((format(printf, 1, 2))) static inline char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *s = xvasprintf(fmt, ap);
	va_end(ap);
	return s;
}
