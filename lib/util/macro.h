/* macro.h: ownership and small language helpers used everywhere.
 *
 * The cleanup helpers follow systemd's pattern: a variable declared with
 * _cleanup_free_ (or _cleanup_(foo_freep)) is released when it leaves scope,
 * and TAKE_PTR / TAKE_FD hand ownership on by clearing the variable.  Every
 * *_free() in this project accepts NULL so these compose without checks. */
#pragma once

#include <errno.h>
#include <stdlib.h>
#include <stdio.h>
#include <unistd.h>

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _unused_ __attribute__((unused))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define _warn_unused_ __attribute__((warn_unused_result))

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static inline void freep(void *p) { free(*(void **)p); }
static inline void closep(int *fd)
{
	if (*fd >= 0) {
		int saved = errno;
		close(*fd);
		errno = saved;
	}
}
static inline void fclosep(FILE **f)
{
	if (*f)
		fclose(*f);
}

/* An array of n malloc'd strings (v may be NULL). */
static inline void vgm_strv_free(char **v, size_t n)
{
	for (size_t i = 0; i < n && v; i++)
		free(v[i]);
	free(v);
}

#define _cleanup_free_ _cleanup_(freep)
#define _cleanup_close_ _cleanup_(closep)
#define _cleanup_fclose_ _cleanup_(fclosep)

/* Define foo_freep() for a type whose destructor is foo_free(). */
#define DEFINE_FREEP(type, func)                                                                   \
	static inline void func##p(type **p) { func(*p); }

#define TAKE_PTR(p)                                                                                \
	({                                                                                         \
		__typeof__(p) _tp = (p);                                                           \
		(p) = NULL;                                                                        \
		_tp;                                                                               \
	})

#define TAKE_FD(fd)                                                                                \
	({                                                                                         \
		int _tf = (fd);                                                                    \
		(fd) = -1;                                                                         \
		_tf;                                                                               \
	})

#define STREQ(a, b) (strcmp((a), (b)) == 0)
#define STRPTR_EQ(a, b) ((a) == (b) || ((a) && (b) && strcmp((a), (b)) == 0))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))
