/* common.c: error and output helpers shared by every verb. */
#include <stdarg.h>
#include <stdio.h>

#include "cli.h"

int cli_fail(const vgm_error *err)
{
	fprintf(stderr, "vgpumig: %s\n", vgm_error_message(err));
	return CLI_FAILED;
}

int cli_failf(const char *fmt, ...)
{
	va_list ap;
	fputs("vgpumig: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return CLI_FAILED;
}

int cli_usage(const char *verb_usage, const char *fmt, ...)
{
	va_list ap;
	fputs("vgpumig: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nusage: vgpumig %s\n", verb_usage);
	return CLI_USAGE;
}

int cli_print_json(json_t *v)
{
	if (!v)
		return cli_failf("out of memory");
	int r = json_dumpf(v, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	fputc('\n', stdout);
	json_decref(v);
	return r == 0 ? CLI_OK : CLI_FAILED;
}
