/* control.c: fault injection through MOUNTPOINT/.vgpu-emu/control.
 *
 * Commands, one per line (a write may carry several):
 *   fail-create ERRNO   the next create (mdev create or current_vgpu_type)
 *                       fails with ERRNO (ENOSPC, EIO, EBUSY, EINVAL,
 *                       ENOMEM, ENODEV); "fail-create none" cancels it
 *   busy-remove ID      removing instance ID (UUID or VF address) fails
 *                       with EBUSY until "clear" or "unbusy-remove ID"
 *   unbusy-remove ID
 *   block-remove ID     a write removing ID blocks (as current kernels do
 *                       while the device is open) until "unblock-remove ID"
 *                       or "clear", then removes it
 *   unblock-remove ID
 *   slow-create MS      every create waits MS milliseconds (0..600000)
 *                       before it is done; "slow-create 0" cancels
 * The blocking faults need the multi-threaded loop (not -s): refused there.
 *   clear               forget every injected fault
 *   ecc on|off [PF]     set the ECC mode shown in the information file of
 *                       physical GPU PF, or of every GPU (state, not a
 *                       fault: "clear" keeps it; not shown when reading)
 * Reading the file gives the state in the same words: a "fail-create"
 * line (ERRNO or none), a "slow-create MS" line when set, one "busy-remove ID" line
 * per busy id and one "block-remove ID" line per blocked id.
 * A malformed command fails the write with EINVAL and changes nothing. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "emu.h"
#include "xalloc.h"

static const struct {
	const char *name;
	int code;
} fault_errnos[] = {
	{ "ENOSPC", ENOSPC }, { "EIO", EIO },	  { "EBUSY", EBUSY },
	{ "EINVAL", EINVAL }, { "ENOMEM", ENOMEM }, { "ENODEV", ENODEV },
};

static const char *errno_name(int code)
{
	for (size_t i = 0; i < sizeof(fault_errnos) / sizeof(fault_errnos[0]); i++)
		if (fault_errnos[i].code == code)
			return fault_errnos[i].name;
	return "none";
}

int emu_fault_take_create(emu *e)
{
	int code = e->fail_create_errno;
	e->fail_create_errno = 0;
	return -code;
}

static bool idset_has(const emu_idset *set, const char *id)
{
	for (unsigned i = 0; i < set->n; i++)
		if (strcasecmp(set->ids[i], id) == 0)
			return true;
	return false;
}

bool emu_fault_busy(const emu *e, const char *id)
{
	return idset_has(&e->busy, id);
}

void emu_fault_wait_remove(emu *e, const char *id)
{
	while (idset_has(&e->blocked, id))
		pthread_cond_wait(&e->fault_cond, &e->lock);
}

void emu_fault_wait_create(emu *e)
{
	struct timespec until;
	if (!e->slow_create_ms)
		return;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += e->slow_create_ms / 1000;
	until.tv_nsec += (long)(e->slow_create_ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	while (e->slow_create_ms &&
	       pthread_cond_timedwait(&e->fault_cond, &e->lock, &until) != ETIMEDOUT)
		;
}

static size_t show_ids(char *s, size_t cap, const char *what, const emu_idset *set)
{
	size_t len = 0;
	for (unsigned i = 0; i < set->n; i++)
		len += (size_t)snprintf(s + len, cap - len, "%s %s\n", what, set->ids[i]);
	return len;
}

static char *show_control(tree_node *n)
{
	emu *e = n->data;
	size_t cap = 96 + (size_t)(e->busy.n + e->blocked.n) * 64, len = 0;
	char *s = xmalloc(cap);
	len += (size_t)snprintf(s, cap, "fail-create %s\n", errno_name(e->fail_create_errno));
	if (e->slow_create_ms)
		len += (size_t)snprintf(s + len, cap - len, "slow-create %u\n", e->slow_create_ms);
	len += show_ids(s + len, cap - len, "busy-remove", &e->busy);
	show_ids(s + len, cap - len, "block-remove", &e->blocked);
	return s;
}

/* An id is a UUID or a PCI address: hex digits and separators only. */
static bool id_ok(const char *id)
{
	size_t n = strlen(id);
	if (n == 0 || n > 36)
		return false;
	for (const char *p = id; *p; p++)
		if (!isxdigit((unsigned char)*p) && *p != '-' && *p != ':' && *p != '.')
			return false;
	return true;
}

static int set_fail_create(emu *e, const char *arg)
{
	if (strcasecmp(arg, "none") == 0) {
		e->fail_create_errno = 0;
		return 0;
	}
	for (size_t i = 0; i < sizeof(fault_errnos) / sizeof(fault_errnos[0]); i++) {
		if (strcasecmp(fault_errnos[i].name, arg) == 0) {
			e->fail_create_errno = fault_errnos[i].code;
			return 0;
		}
	}
	return -EINVAL;
}

static int idset_set(emu_idset *set, const char *id, bool in)
{
	if (!id_ok(id))
		return -EINVAL;
	for (unsigned i = 0; i < set->n; i++) {
		if (strcasecmp(set->ids[i], id) != 0)
			continue;
		if (!in)
			memmove(set->ids[i], set->ids[i + 1], (set->n - i - 1) * sizeof(set->ids[0]));
		set->n -= !in;
		return 0;
	}
	if (!in)
		return 0;
	if (set->n >= EMU_MAX_BUSY)
		return -ENOSPC;
	snprintf(set->ids[set->n++], sizeof(set->ids[0]), "%s", id);
	return 0;
}

/* A blocking fault on the only FUSE thread would also block the write that
 * lifts it. */
static int set_blocked(emu *e, const char *id, bool in)
{
	if (in && e->single_thread)
		return -EINVAL;
	return idset_set(&e->blocked, id, in);
}

static int set_slow_create(emu *e, const char *arg)
{
	char *end;
	errno = 0;
	unsigned long ms = strtoul(arg, &end, 10);
	if (errno || *end || !isdigit((unsigned char)arg[0]) || ms > EMU_MAX_SLOW_CREATE_MS ||
	    (ms && e->single_thread))
		return -EINVAL;
	e->slow_create_ms = (unsigned)ms;
	return 0;
}

static int set_ecc(emu *e, const char *mode, const char *gpu)
{
	bool on = strcmp(mode, "on") == 0;
	bool found = false;
	if (!on && strcmp(mode, "off") != 0)
		return -EINVAL;
	for (unsigned i = 0; i < e->n_gpus; i++) {
		if (gpu && strcasecmp(gpu, e->gpus[i].addr) != 0)
			continue;
		e->gpus[i].ecc = on;
		found = true;
	}
	return found ? 0 : -EINVAL;
}

static int run_command(emu *e, char *line)
{
	char *save = NULL;
	char *cmd = strtok_r(line, " \t\r", &save);
	char *arg = strtok_r(NULL, " \t\r", &save);
	char *arg2 = strtok_r(NULL, " \t\r", &save);
	if (!cmd)
		return 0; /* blank line */
	if (strtok_r(NULL, " \t\r", &save))
		return -EINVAL;
	if (strcmp(cmd, "ecc") == 0 && arg)
		return set_ecc(e, arg, arg2);
	if (arg2)
		return -EINVAL;
	if (strcmp(cmd, "clear") == 0 && !arg) {
		e->fail_create_errno = 0;
		e->busy.n = 0;
		e->blocked.n = 0;
		e->slow_create_ms = 0;
		return 0;
	}
	if (!arg)
		return -EINVAL;
	if (strcmp(cmd, "fail-create") == 0)
		return set_fail_create(e, arg);
	if (strcmp(cmd, "busy-remove") == 0)
		return idset_set(&e->busy, arg, true);
	if (strcmp(cmd, "unbusy-remove") == 0)
		return idset_set(&e->busy, arg, false);
	if (strcmp(cmd, "block-remove") == 0)
		return set_blocked(e, arg, true);
	if (strcmp(cmd, "unblock-remove") == 0)
		return set_blocked(e, arg, false);
	if (strcmp(cmd, "slow-create") == 0)
		return set_slow_create(e, arg);
	return -EINVAL;
}

/* Apply every line or none: a bad line restores the state saved before. */
static int store_control(tree_node *n, const char *buf, size_t len)
{
	emu *e = n->data;
	int saved_fail = e->fail_create_errno;
	unsigned saved_slow = e->slow_create_ms;
	emu_idset *saved_sets = xmalloc(2 * sizeof(emu_idset));
	bool *saved_ecc = xcalloc(e->n_gpus, sizeof(bool));
	saved_sets[0] = e->busy;
	saved_sets[1] = e->blocked;
	for (unsigned i = 0; i < e->n_gpus; i++)
		saved_ecc[i] = e->gpus[i].ecc;
	char *text = xstrndup(buf, len), *save = NULL;
	int r = 0;
	for (char *line = strtok_r(text, "\n", &save); line && r == 0;
	     line = strtok_r(NULL, "\n", &save))
		r = run_command(e, line);
	free(text);
	if (r < 0) {
		e->fail_create_errno = saved_fail;
		e->slow_create_ms = saved_slow;
		e->busy = saved_sets[0];
		e->blocked = saved_sets[1];
		for (unsigned i = 0; i < e->n_gpus; i++)
			e->gpus[i].ecc = saved_ecc[i];
	}
	/* a lifted block or a shorter delay: let the waiting writes look again */
	pthread_cond_broadcast(&e->fault_cond);
	free(saved_sets);
	free(saved_ecc);
	return r;
}

void emu_control_add(emu *e)
{
	tree_node *dir = tree_mkdir_p(e->root, "/.vgpu-emu");
	tree_add_attr(dir, "control", 0600, show_control, store_control, e);
}
