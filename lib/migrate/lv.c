/* lv.c: libvirt connections, domain facts, dirty rate and job-stat parsing
 * (see migrate.h).  libvirt's thread-local last error becomes our vgm_error
 * message; the per-connection error callback is a no-op so libvirt never
 * prints on its own. */
#include <errno.h>
#include <string.h>
#include <time.h>

#include <libvirt/virterror.h>

#include "migrate.h"
#include "util/validate.h"

static void quiet(void *ud, virErrorPtr e)
{
	(void)ud;
	(void)e;
}

static const char *lv_msg(void)
{
	const char *m = virGetLastErrorMessage();
	return m ? m : "unknown libvirt error";
}

int vgm_lv_open(const char *uri, virConnectPtr *out, vgm_error *err)
{
	virConnectPtr c = virConnectOpen(uri);
	if (!c)
		return vgm_error_setr(err, EHOSTUNREACH, "libvirt_unreachable",
				      "cannot connect to libvirt at '%s': %s; check that libvirtd runs there",
				      uri ? uri : "(default)", lv_msg());
	virConnSetErrorFunc(c, NULL, quiet);
	*out = c;
	return 0;
}

void vgm_lv_close(virConnectPtr c)
{
	if (c)
		virConnectClose(c);
}

int vgm_lv_lookup(virConnectPtr c, const char *name, virDomainPtr *out, vgm_error *err)
{
	virDomainPtr d = vgm_uuid_valid(name) ? virDomainLookupByUUIDString(c, name) : NULL;
	if (!d)
		d = virDomainLookupByName(c, name);
	if (!d)
		return vgm_error_setr(err, ENOENT, "domain_not_found",
				      "no domain '%s' on this host; check the name with 'virsh list --all'",
				      name);
	*out = d;
	return 0;
}

void vgm_lv_domain_free(vgm_lv_domain *d)
{
	if (!d)
		return;
	free(d->name);
	free(d->xml_live);
	free(d->xml_persistent);
	free(d);
}

int vgm_lv_domain_read(virDomainPtr dom, vgm_lv_domain **out, vgm_error *err)
{
	_cleanup_(vgm_lv_domain_freep) vgm_lv_domain *d = calloc(1, sizeof(*d));
	if (!d)
		return vgm_error_set(err, ENOMEM, "out of memory");
	const char *name = virDomainGetName(dom);
	d->name = strdup(name ? name : "");
	if (!d->name || virDomainGetUUIDString(dom, d->uuid) < 0)
		return vgm_error_set(err, ENOMEM, "cannot read the domain's name and UUID: %s", lv_msg());
	d->active = virDomainIsActive(dom) == 1;
	d->persistent = virDomainIsPersistent(dom) == 1;
	virDomainInfo info;
	if (virDomainGetInfo(dom, &info) < 0)
		return vgm_error_setr(err, EIO, "libvirt_error", "cannot read domain '%s': %s",
				      d->name, lv_msg());
	d->memory_bytes = (uint64_t)info.memory * 1024u;
	d->xml_live = virDomainGetXMLDesc(dom, VIR_DOMAIN_XML_MIGRATABLE | VIR_DOMAIN_XML_SECURE);
	if (!d->xml_live)
		return vgm_error_setr(err, EIO, "libvirt_error", "cannot read the XML of '%s': %s",
				      d->name, lv_msg());
	if (d->persistent) {
		d->xml_persistent = virDomainGetXMLDesc(
			dom, VIR_DOMAIN_XML_INACTIVE | VIR_DOMAIN_XML_MIGRATABLE | VIR_DOMAIN_XML_SECURE);
		if (!d->xml_persistent)
			return vgm_error_setr(err, EIO, "libvirt_error",
					      "cannot read the persistent XML of '%s': %s", d->name,
					      lv_msg());
	}
	*out = TAKE_PTR(d);
	return 0;
}

/* One DIRTYRATE stats record: status and MiB/s. */
static int read_dirty_stats(virDomainPtr dom, int *status, long long *start, long long *mibps)
{
	virDomainPtr doms[] = { dom, NULL };
	virDomainStatsRecordPtr *recs = NULL;
	if (virDomainListGetStats(doms, VIR_DOMAIN_STATS_DIRTYRATE, &recs, 0) < 1 || !recs[0]) {
		virDomainStatsRecordListFree(recs);
		return -EIO;
	}
	*status = -1;
	*start = -1;
	*mibps = 0;
	virTypedParamsGetInt(recs[0]->params, recs[0]->nparams, "dirtyrate.calc_status", status);
	virTypedParamsGetLLong(recs[0]->params, recs[0]->nparams, "dirtyrate.calc_start_time", start);
	virTypedParamsGetLLong(recs[0]->params, recs[0]->nparams, "dirtyrate.megabytes_per_second",
			       mibps);
	virDomainStatsRecordListFree(recs);
	return 0;
}

int vgm_lv_dirty_rate(virDomainPtr dom, int seconds, uint64_t *bps, vgm_error *err)
{
	if (seconds < 1 || seconds > 60)
		return vgm_error_setr(err, EINVAL, "bad_request", "dirty-rate period must be 1..60 s");
	int status;
	long long before, start, mibps;
	if (read_dirty_stats(dom, &status, &before, &mibps) < 0)
		before = -1;
	/* dirty-bitmap mode counts every page; page sampling (the fallback)
	 * only samples 512 pages per GiB, too few on small guests. */
	char msg[384]; /* copied before virDomainGetName resets libvirt's last error */
	if (virDomainStartDirtyRateCalc(dom, seconds, VIR_DOMAIN_DIRTYRATE_MODE_DIRTY_BITMAP) < 0 &&
	    virDomainStartDirtyRateCalc(dom, seconds, 0) < 0) {
		snprintf(msg, sizeof(msg), "%s", lv_msg());
		return vgm_error_setr(err, EIO, "dirty_rate_failed",
				      "cannot start measuring the dirty rate of '%s': %s",
				      virDomainGetName(dom), msg);
	}
	struct timespec ts = { 0, 100 * 1000 * 1000 };
	for (int i = 0; i < (seconds + 10) * 10; i++) {
		nanosleep(&ts, NULL);
		if (read_dirty_stats(dom, &status, &start, &mibps) < 0)
			break;
		if (status == VIR_DOMAIN_DIRTYRATE_MEASURED && start != before) {
			*bps = (uint64_t)(mibps > 0 ? mibps : 0) * 1024u * 1024u;
			return 0;
		}
	}
	snprintf(msg, sizeof(msg), "%s", lv_msg());
	return vgm_error_setr(err, ETIMEDOUT, "dirty_rate_failed",
			      "the dirty rate of '%s' was not measured within %d s: %s",
			      virDomainGetName(dom), seconds + 10, msg);
}

static uint64_t ull(virTypedParameterPtr p, int n, const char *name, bool *have)
{
	unsigned long long v = 0;
	bool got = virTypedParamsGetULLong(p, n, name, &v) == 1;
	if (have)
		*have = got;
	return got ? (uint64_t)v : 0;
}

void vgm_lv_sample_from_params(virTypedParameterPtr p, int n, vgm_job_sample *x)
{
	memset(x, 0, sizeof(*x));
	if (virInitialize() < 0) /* idempotent; the typed-param helpers need it */
		return;
	bool have;
	x->time_elapsed_ms = ull(p, n, VIR_DOMAIN_JOB_TIME_ELAPSED, NULL);
	x->data_total = ull(p, n, VIR_DOMAIN_JOB_DATA_TOTAL, NULL);
	x->data_processed = ull(p, n, VIR_DOMAIN_JOB_DATA_PROCESSED, NULL);
	x->data_remaining = ull(p, n, VIR_DOMAIN_JOB_DATA_REMAINING, NULL);
	x->memory_total = ull(p, n, VIR_DOMAIN_JOB_MEMORY_TOTAL, NULL);
	x->memory_processed = ull(p, n, VIR_DOMAIN_JOB_MEMORY_PROCESSED, NULL);
	x->memory_remaining = ull(p, n, VIR_DOMAIN_JOB_MEMORY_REMAINING, NULL);
	x->memory_iteration = ull(p, n, VIR_DOMAIN_JOB_MEMORY_ITERATION, NULL);
	uint64_t page = ull(p, n, VIR_DOMAIN_JOB_MEMORY_PAGE_SIZE, NULL);
	uint64_t dirty_pages = ull(p, n, VIR_DOMAIN_JOB_MEMORY_DIRTY_RATE, &have);
	if (have) {
		x->memory_dirty_rate_bps = dirty_pages * (page ? page : 4096);
		x->have |= VGM_SAMPLE_HAVE_DIRTY;
	}
	x->memory_bps = ull(p, n, VIR_DOMAIN_JOB_MEMORY_BPS, &have);
	if (have)
		x->have |= VGM_SAMPLE_HAVE_BPS;
	/* libvirt >= 10.6 only; not in 9.0's headers, so by name. */
	x->vfio_data_transferred = ull(p, n, "vfio_data_transferred", &have);
	if (have)
		x->have |= VGM_SAMPLE_HAVE_VFIO;
}
