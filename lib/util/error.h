/* error.h: the library's error report.
 *
 * Library functions return a negative errno (or NULL) and, when the caller
 * passed a vgm_error, fill it with the errno, a stable machine-readable reason
 * (used as the API's "code"), and one sentence that names the thing and the
 * fix.  The library never prints or logs above debug; the boundary (agent, CLI,
 * hook) reports the message exactly once.  A NULL vgm_error is allowed. */
#pragma once

#include <stddef.h>

#include "macro.h"

typedef struct vgm_error {
	int code;          /* positive errno */
	char reason[48];   /* stable code, e.g. "no_capacity"; "" when unset */
	char message[512]; /* one sentence, no trailing newline */
	const char *file;
	int line;
} vgm_error;

/* Fill *e (if non-NULL) and return -code.  code is a positive errno. */
int vgm_error_set_at(vgm_error *e, const char *file, int line, int code, const char *reason,
		     const char *fmt, ...) _printf_(6, 7);

#define vgm_error_set(e, code, ...) vgm_error_set_at((e), __FILE__, __LINE__, (code), NULL, __VA_ARGS__)
/* As vgm_error_set, with a stable reason string for API replies. */
#define vgm_error_setr(e, code, reason, ...)                                                       \
	vgm_error_set_at((e), __FILE__, __LINE__, (code), (reason), __VA_ARGS__)

/* Prefix the existing message with "<prefix>: " (for adding context). */
void vgm_error_prefix(vgm_error *e, const char *fmt, ...) _printf_(2, 3);
void vgm_error_clear(vgm_error *e);
/* The message, or strerror(code) when no message was set. */
const char *vgm_error_message(const vgm_error *e);
