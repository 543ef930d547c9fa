/* lv-life.c: the domain lifecycle calls cold migration needs (graceful
 * shutdown with a deadline, destroy, define, start, undefine), each turning
 * libvirt's last error into a vgm_error that names the domain and the host.
 * Every undo-side call is idempotent: starting a running domain, undefining
 * an absent one and destroying a stopped one succeed. */
#include <errno.h>
#include <string.h>
#include <time.h>

#include <libvirt/virterror.h>

#include "migrate.h"

#define SHUTDOWN_POLL_MS 250

static const char *lv_msg(void)
{
	const char *m = virGetLastErrorMessage();
	return m ? m : "unknown libvirt error";
}

/* The message is copied first: every libvirt call, virDomainGetName too,
 * resets the thread's last error. */
static int lv_fail(vgm_error *err, virDomainPtr dom, const char *what)
{
	char msg[384];
	snprintf(msg, sizeof(msg), "%s", lv_msg());
	const char *name = dom ? virDomainGetName(dom) : NULL;
	return vgm_error_setr(err, EIO, "libvirt_error", "cannot %s domain '%s': %s", what,
			      name ? name : "?", msg);
}

static bool is_off(virDomainPtr dom)
{
	int state = 0, reason = 0;
	if (virDomainGetState(dom, &state, &reason, 0) < 0)
		return false;
	return state == VIR_DOMAIN_SHUTOFF;
}

int vgm_lv_shutdown_wait(virDomainPtr dom, uint64_t timeout_ms, vgm_error *err)
{
	if (is_off(dom))
		return 0;
	if (virDomainShutdown(dom) < 0)
		return lv_fail(err, dom, "shut down");
	struct timespec nap = { 0, SHUTDOWN_POLL_MS * 1000000L };
	for (uint64_t waited = 0; waited < timeout_ms; waited += SHUTDOWN_POLL_MS) {
		if (is_off(dom))
			return 0;
		nanosleep(&nap, NULL);
	}
	if (is_off(dom))
		return 0;
	return vgm_error_setr(err, ETIMEDOUT, "shutdown_timeout",
			      "domain '%s' still runs %llu ms after the shutdown request",
			      virDomainGetName(dom), (unsigned long long)timeout_ms);
}

int vgm_lv_destroy(virDomainPtr dom, vgm_error *err)
{
	if (is_off(dom) || virDomainDestroy(dom) == 0 || is_off(dom))
		return 0;
	return lv_fail(err, dom, "destroy");
}

int vgm_lv_start(virDomainPtr dom, vgm_error *err)
{
	if (virDomainIsActive(dom) == 1 || virDomainCreate(dom) == 0)
		return 0;
	return lv_fail(err, dom, "start");
}

int vgm_lv_define(virConnectPtr c, const char *xml, virDomainPtr *out, vgm_error *err)
{
	virDomainPtr d = virDomainDefineXML(c, xml);
	if (!d)
		return vgm_error_setr(err, EIO, "libvirt_error", "cannot define the domain: %s",
				      lv_msg());
	*out = d;
	return 0;
}

/* NVRAM is host-local (libvirt keeps it under /var/lib/libvirt): keep it
 * rather than fail on domains that have one; drivers that know no such
 * flag (the test driver) get the plain call. */
int vgm_lv_undefine(virDomainPtr dom, vgm_error *err)
{
	if (virDomainIsActive(dom) == 1 && vgm_lv_destroy(dom, err) < 0)
		return -EIO;
	if (virDomainUndefineFlags(dom, VIR_DOMAIN_UNDEFINE_KEEP_NVRAM) == 0 ||
	    virDomainUndefine(dom) == 0)
		return 0;
	return lv_fail(err, dom, "undefine");
}

int vgm_lv_undefine_uuid(virConnectPtr c, const char *uuid, vgm_error *err)
{
	virDomainPtr d = virDomainLookupByUUIDString(c, uuid);
	if (!d)
		return 0;
	int r = vgm_lv_undefine(d, err);
	virDomainFree(d);
	return r;
}
