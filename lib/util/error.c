/* error.c: see error.h. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "error.h"

int vgm_error_set_at(vgm_error *e, const char *file, int line, int code, const char *reason,
		     const char *fmt, ...)
{
	if (code < 0)
		code = -code;
	if (code == 0)
		code = EIO;
	if (!e)
		return -code;

	va_list ap;
	va_start(ap, fmt);
	vsnprintf(e->message, sizeof(e->message), fmt, ap);
	va_end(ap);
	e->code = code;
	snprintf(e->reason, sizeof(e->reason), "%s", reason ? reason : "");
	e->file = file;
	e->line = line;
	return -code;
}

void vgm_error_prefix(vgm_error *e, const char *fmt, ...)
{
	if (!e)
		return;
	/* Joined in a buffer large enough for both, then cut to fit. */
	char prefix[256], joined[sizeof(prefix) + sizeof(e->message) + 2];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	snprintf(joined, sizeof(joined), "%s: %s", prefix, e->message);
	snprintf(e->message, sizeof(e->message), "%.*s", (int)sizeof(e->message) - 1, joined);
}

void vgm_error_clear(vgm_error *e)
{
	if (e)
		memset(e, 0, sizeof(*e));
}

const char *vgm_error_message(const vgm_error *e)
{
	if (!e)
		return "unknown error";
	if (e->message[0])
		return e->message;
	return strerror(e->code ? e->code : EIO);
}
