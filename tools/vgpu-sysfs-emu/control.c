/* control.c: fault injection through MOUNTPOINT/.vgpu-emu/control.
 *
 * Commands, one per line (a write may carry several):
 *   fail-create ERRNO   the next create (mdev create or current_vgpu_type)
 *                       fails with ERRNO (ENOSPC, EIO, EBUSY, EINVAL,
 *                       ENOMEM, ENODEV); "fail-create none" cancels it
 *   busy-remove ID      removing instance ID (UUID or VF address) fails
 *                       with EBUSY until "clear" or "unbusy-remove ID"
 *   unbusy-remove ID
 *   clear               forget every injected fault
 *   ecc on|off [PF]     set the ECC mode shown in the information file of
 *                       physical GPU PF, or of every GPU (state, not a
 *                       fault: "clear" keeps it; not shown when reading)
 * Reading the file gives the state in the same words: a "fail-create"
 * line (ERRNO or none) and one "busy-remove ID" line per busy id.
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

bool emu_fault_busy(const emu *e, const char *id)
{
	for (unsigned i = 0; i < e->n_busy; i++)
		if (strcasecmp(e->busy[i], id) == 0)
			return true;
	return false;
}

static char *show_control(tree_node *n)
{
	emu *e = n->data;
	size_t cap = 64 + (size_t)e->n_busy * 64, len = 0;
	char *s = xmalloc(cap);
	len += (size_t)snprintf(s, cap, "fail-create %s\n", errno_name(e->fail_create_errno));
	for (unsigned i = 0; i < e->n_busy; i++)
		len += (size_t)snprintf(s + len, cap - len, "busy-remove %s\n", e->busy[i]);
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

static int set_busy(emu *e, const char *id, bool busy)
{
	if (!id_ok(id))
		return -EINVAL;
	for (unsigned i = 0; i < e->n_busy; i++) {
		if (strcasecmp(e->busy[i], id) != 0)
			continue;
		if (!busy)
			memmove(e->busy[i], e->busy[i + 1], (e->n_busy - i - 1) * sizeof(e->busy[0]));
		e->n_busy -= !busy;
		return 0;
	}
	if (!busy)
		return 0;
	if (e->n_busy >= EMU_MAX_BUSY)
		return -ENOSPC;
	snprintf(e->busy[e->n_busy++], sizeof(e->busy[0]), "%s", id);
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
		e->n_busy = 0;
		return 0;
	}
	if (!arg)
		return -EINVAL;
	if (strcmp(cmd, "fail-create") == 0)
		return set_fail_create(e, arg);
	if (strcmp(cmd, "busy-remove") == 0)
		return set_busy(e, arg, true);
	if (strcmp(cmd, "unbusy-remove") == 0)
		return set_busy(e, arg, false);
	return -EINVAL;
}

/* Apply every line or none: a bad line restores the state saved before. */
static int store_control(tree_node *n, const char *buf, size_t len)
{
	emu *e = n->data;
	int saved_fail = e->fail_create_errno;
	unsigned saved_n = e->n_busy;
	char saved_busy[EMU_MAX_BUSY][37];
	bool *saved_ecc = xcalloc(e->n_gpus, sizeof(bool));
	memcpy(saved_busy, e->busy, sizeof(saved_busy));
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
		e->n_busy = saved_n;
		memcpy(e->busy, saved_busy, sizeof(saved_busy));
		for (unsigned i = 0; i < e->n_gpus; i++)
			e->gpus[i].ecc = saved_ecc[i];
	}
	free(saved_ecc);
	return r;
}

void emu_control_add(emu *e)
{
	tree_node *dir = tree_mkdir_p(e->root, "/.vgpu-emu");
	tree_add_attr(dir, "control", 0600, show_control, store_control, e);
}
