/* log.c: the agent's log, one line per event on stderr ("warn: ...").
 *
 * stderr goes to the journal under systemd, which adds time and unit; the
 * level prefix lets operators filter.  The level is the one process-wide
 * setting the HTTP threads read, so it is an atomic, not under a->lock. */
#include <stdarg.h>
#include <stdio.h>

#include "agent.h"

static int log_level = LOG_INFO_;

void agent_log_set_level(int level)
{
	__atomic_store_n(&log_level, level, __ATOMIC_RELAXED);
}

int agent_log_get_level(void)
{
	return __atomic_load_n(&log_level, __ATOMIC_RELAXED);
}

void agent_log(int level, const char *fmt, ...)
{
	char line[2048];
	va_list ap;

	if (level > agent_log_get_level())
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	/* one fprintf per line so threads do not interleave within a line */
	fprintf(stderr, "%s: %s\n", agent_log_level_name(level), line);
}
