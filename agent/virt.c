/* virt.c: everything the agent asks libvirt; main thread only.
 *
 * Never called from a request thread: libvirt runs the migrate hook while it
 * holds the domain's job, and the hook waits for the agent, so a libvirt call
 * from the hook route could wait for itself.  Request threads read what this
 * file leaves in the caches (in-use devices, versions in the facts).
 *
 * Per tick: list all domains; every hostdev and lab vGPU of every defined
 * domain is "in use" (a stopped VM keeps its mdev for its next start);
 * running domains with vGPUs here get their profiles, this host's driver
 * version and ECC mode, and NVML's metadata of each vGPU recorded in
 * vgpumig's metadata (virDomainSetMetadata, live and, for persistent
 * domains, config) so a migration started by anyone carries what the
 * target needs to check it (routes-hook.c).  Written only when it changed. */
#include <string.h>
#include <time.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include "metrics.h"
#include "routes.h"
#include "vgpus.h"

/* Assignments younger than this are not swept when their domain is
 * missing: a committed claim may precede the domain's definition. */
#define SWEEP_GRACE_S 120
/* libvirt adds an incoming domain right after the migrate-begin hooks; a
 * claim the hook made whose domain is still absent this long after was
 * vetoed (a later hook failed) or the migration died in prepare. */
#define HOOK_CLAIM_GRACE_S 20

struct agent_libvirt {
	char *uri;
	virConnectPtr conn;
};

static void quiet_error(void *ctx, virErrorPtr e)
{
	(void)ctx;
	log_debug("libvirt: %s", e && e->message ? e->message : "error");
}

static const char *last_error(void)
{
	virErrorPtr e = virGetLastError();

	return e && e->message ? e->message : "unknown libvirt error";
}

int agent_virt_open(const char *uri, agent_libvirt **out, vgm_error *err)
{
	agent_libvirt *v = calloc(1, sizeof(*v));

	*out = NULL;
	if (!v || !(v->uri = strdup(uri))) {
		free(v);
		return vgm_error_set(err, ENOMEM, "out of memory");
	}
	virSetErrorFunc(NULL, quiet_error);
	v->conn = virConnectOpen(uri);
	if (!v->conn)
		log_warn("libvirt %s not reachable yet (%s); retrying on every tick", uri, last_error());
	*out = v;
	return 0;
}

void agent_virt_close(agent_libvirt *v)
{
	if (!v)
		return;
	if (v->conn)
		virConnectClose(v->conn);
	free(v->uri);
	free(v);
}

static bool virt_ready(agent_libvirt *v)
{
	if (v->conn && virConnectIsAlive(v->conn) == 1)
		return true;
	if (v->conn)
		virConnectClose(v->conn);
	v->conn = virConnectOpen(v->uri);
	if (v->conn)
		log_info("connected to libvirt %s", v->uri);
	return v->conn != NULL;
}

void agent_virt_versions(agent_libvirt *v, unsigned long long *libvirt, unsigned long long *qemu)
{
	unsigned long lv = 0, hv = 0;

	*libvirt = *qemu = 0;
	if (!virt_ready(v))
		return;
	if (virConnectGetLibVersion(v->conn, &lv) == 0)
		*libvirt = lv;
	if (virConnectGetVersion(v->conn, &hv) == 0)
		*qemu = hv;
}

static int add_use(vgm_device_use **arr, size_t *n, const char *id, const char *uuid)
{
	vgm_device_use *p = realloc(*arr, (*n + 1) * sizeof(*p));

	if (!p)
		return -ENOMEM;
	*arr = p;
	p[*n].device_id = strdup(id);
	p[*n].domain_uuid = uuid ? strdup(uuid) : NULL;
	if (!p[*n].device_id)
		return -ENOMEM;
	for (char *c = p[*n].device_id; *c; c++)
		*c = (char)(*c >= 'A' && *c <= 'Z' ? *c - 'A' + 'a' : *c);
	(*n)++;
	return 0;
}

static void collect_uses(const vgm_domain_info *d, bool lab_mode, vgm_device_use **uses, size_t *n)
{
	for (size_t i = 0; i < d->n_hostdevs; i++)
		if (d->hostdevs[i].id)
			add_use(uses, n, d->hostdevs[i].id, d->uuid);
	for (size_t i = 0; lab_mode && i < d->n_meta; i++)
		if (d->meta[i].lab && d->meta[i].id)
			add_use(uses, n, d->meta[i].id, d->uuid);
}

/* This host's facts for the record: the cached GET /v1/host answer. */
static void source_facts(agent *a, vgm_meta_source *src)
{
	json_t *f = agent_facts_get(a);
	const char *v;

	*src = (vgm_meta_source){ 0 };
	if ((v = json_string_value(json_object_get(f, "host_name"))))
		src->host = strdup(v);
	if ((v = json_string_value(json_object_get(f, "driver_version"))))
		src->driver_version = strdup(v);
	if ((v = json_string_value(json_object_get(f, "ecc_mode"))))
		src->ecc = strdup(v);
	json_decref(f);
}

static void source_clear(vgm_meta_source *src)
{
	free(src->host);
	free(src->driver_version);
	free(src->ecc);
}

/* Does the domain's record already say all of this? */
static bool meta_current(const vgm_domain_info *d, const vgm_meta_source *src,
			 const vgm_meta_vgpu *meta, size_t n)
{
	const vgm_meta_source *had = &d->meta_source;

	if (!STRPTR_EQ(had->host, src->host) || !STRPTR_EQ(had->driver_version, src->driver_version) ||
	    !STRPTR_EQ(had->ecc, src->ecc))
		return false;
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < d->n_meta; j++)
			if (strcasecmp(d->meta[j].id, meta[i].id) == 0 &&
			    !STRPTR_EQ(d->meta[j].nvml_metadata, meta[i].nvml_metadata))
				return false;
	return true;
}

static size_t count_blobs(const vgm_meta_vgpu *meta, size_t n)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++)
		k += meta[i].nvml_metadata != NULL;
	return k;
}

/* Profiles, the source's driver and ECC, and NVML's blob of every vGPU: what
 * a target needs to check a migration that plain virsh started. */
static void record_metadata(agent *a, virDomainPtr dom, const vgm_domain_info *d,
			    const agent_vgpu *v, size_t n)
{
	_cleanup_free_ vgm_meta_vgpu *meta = calloc(n, sizeof(*meta));
	_cleanup_free_ char *xml = NULL;
	vgm_meta_source src;
	vgm_error err = { 0 };
	unsigned flags = VIR_DOMAIN_AFFECT_LIVE;

	if (!meta)
		return;
	source_facts(a, &src);
	for (size_t i = 0; i < n; i++) {
		meta[i] = (vgm_meta_vgpu){ .id = v[i].id, .kind = v[i].kind,
					   .profile_name = v[i].profile_name, .type_id = v[i].type_id,
					   .framebuffer_bytes = v[i].framebuffer_bytes, .lab = v[i].lab };
		if (a->nvml)
			vgm_nvml_vgpu_metadata(a->nvml, v[i].id, &meta[i].nvml_metadata, NULL);
	}
	if (agent_vgpus_match_meta(d, v, n) && meta_current(d, &src, meta, n))
		goto out;
	if (vgm_domxml_format_metadata_src(&src, meta, n, &xml, &err) < 0) {
		log_warn("domain %s: cannot format vGPU metadata: %s", d->name, vgm_error_message(&err));
		goto out;
	}
	if (virDomainIsPersistent(dom) == 1)
		flags |= VIR_DOMAIN_AFFECT_CONFIG;
	if (virDomainSetMetadata(dom, VIR_DOMAIN_METADATA_ELEMENT, xml, VGM_METADATA_PREFIX,
				 VGM_METADATA_NS, flags) < 0)
		log_warn("domain %s: cannot record vGPU metadata: %s", d->name, last_error());
	else
		log_info("domain %s: recorded %zu vGPU profile(s), driver %s, ECC %s and NVML "
			 "metadata of %zu vGPU(s) in its metadata", d->name, n,
			 src.driver_version ? src.driver_version : "unknown",
			 src.ecc ? src.ecc : "unknown", count_blobs(meta, n));
out:
	for (size_t i = 0; i < n; i++)
		free(meta[i].nvml_metadata);
	source_clear(&src);
}

/* Running (or paused by a user) and no job in progress: a metadata write
 * needs a modify job, which would wait behind a migration for libvirt's
 * 30 s job timeout and stall this loop. */
static bool settled(virDomainPtr dom)
{
	virDomainJobInfo job;
	int state = 0, reason = 0;

	if (virDomainGetState(dom, &state, &reason, 0) < 0)
		return false;
	if (state != VIR_DOMAIN_RUNNING && !(state == VIR_DOMAIN_PAUSED && reason == VIR_DOMAIN_PAUSED_USER))
		return false;
	if (virDomainGetJobInfo(dom, &job) < 0) {
		virErrorPtr e = virGetLastError();

		return e && e->code == VIR_ERR_NO_SUPPORT; /* drivers without jobs */
	}
	return job.type == VIR_DOMAIN_JOB_NONE;
}

/* false when the domain's devices could not be read: then nobody can tell
 * what it uses. */
static bool sync_domain(agent *a, virDomainPtr dom, const vgm_inventory *inv, bool lab_mode,
			vgm_device_use **uses, size_t *n_uses)
{
	_cleanup_free_ char *xml = virDomainGetXMLDesc(dom, 0);
	_cleanup_(vgm_domain_info_freep) vgm_domain_info *d = NULL;
	agent_vgpu *v = NULL;
	size_t n = 0;

	if (!xml) {
		virErrorPtr e = virGetLastError();

		/* undefined between the listing and now: it uses nothing */
		return e && e->code == VIR_ERR_NO_DOMAIN;
	}
	if (vgm_domxml_inspect(xml, strlen(xml), &d, NULL) < 0)
		return false;
	collect_uses(d, lab_mode, uses, n_uses);
	if (!inv || !settled(dom))
		return true;
	if (agent_vgpus_local(d, inv, lab_mode, &v, &n) < 0)
		return true;
	if (n)
		record_metadata(a, dom, d, v, n);
	agent_vgpus_free(v, n);
	return true;
}

static void in_use_unknown(agent *a)
{
	pthread_mutex_lock(&a->lock);
	a->in_use_known = false;
	pthread_mutex_unlock(&a->lock);
}

/* Assignments whose domain left while we did not hear the hook. */
static void sweep_assignments(agent *a)
{
	vgm_assignment *asg = NULL;
	size_t n = 0;
	int64_t now = time(NULL);

	if (vgm_assignments_list(a->store, &asg, &n, NULL) < 0)
		return;
	for (size_t i = 0; i < n; i++) {
		bool seen = false;

		for (size_t j = 0; j < i; j++)
			seen |= STREQ(asg[j].domain_uuid, asg[i].domain_uuid);
		if (!seen && now - asg[i].since > SWEEP_GRACE_S &&
		    agent_virt_domain_left(a, asg[i].domain_uuid) == 1)
			agent_queue_event(a, asg[i].domain_uuid, asg[i].domain_name);
	}
	vgm_assignments_free(asg, n);
}

/* Hook-made claims (migration id "hook-...") whose domain never arrived:
 * release them now instead of holding the devices for the whole lease. */
static void sweep_hook_claims(agent *a)
{
	vgm_claim *c = NULL;
	size_t n = 0;
	int64_t now = time(NULL);
	vgm_error err = { 0 };

	if (vgm_claims_list(a->store, false, &c, &n, NULL) < 0)
		return;
	for (size_t i = 0; i < n; i++) {
		if (c[i].state != VGM_CLAIM_HELD || strncmp(c[i].migration_id, "hook-", 5) != 0 ||
		    now - c[i].created_at < HOOK_CLAIM_GRACE_S ||
		    agent_virt_domain_left(a, c[i].domain_uuid) != 1)
			continue;
		if (vgm_claims_release(a->store, a->host, c[i].claim_id, &err) < 0) {
			log_error("releasing claim %s of domain %s: %s", c[i].claim_id,
				  c[i].domain_name, vgm_error_message(&err));
			continue;
		}
		log_info("claim %s of domain %s released: the incoming migration never arrived "
			 "(%lld s after the hook claimed; another hook vetoed it or it failed)",
			 c[i].claim_id, c[i].domain_name, (long long)(now - c[i].created_at));
		agent_metrics_migration(a->metrics, "incoming_vetoed");
	}
	vgm_claims_free(c, n);
}

void agent_virt_sync(agent *a)
{
	_cleanup_(vgm_inventory_freep) vgm_inventory *inv = NULL;
	vgm_device_use *uses = NULL, *old;
	size_t n_uses = 0, n_old;
	virDomainPtr *doms = NULL;
	int n;
	bool lab = agent_lab_mode(a);

	bool known = true;

	if (!virt_ready(a->virt)) {
		in_use_unknown(a);
		return;
	}
	n = virConnectListAllDomains(a->virt->conn, &doms, 0);
	if (n < 0) {
		log_warn("listing libvirt domains: %s", last_error());
		in_use_unknown(a);
		return;
	}
	vgm_inventory_load(a->host, &inv, NULL);
	for (int i = 0; i < n; i++) {
		known &= sync_domain(a, doms[i], inv, lab, &uses, &n_uses);
		virDomainFree(doms[i]);
	}
	free(doms);
	if (!known)
		log_warn("libvirt: a domain's XML could not be read; no vGPU is removed until "
			 "every domain's can");
	pthread_mutex_lock(&a->lock);
	old = a->in_use;
	n_old = a->n_in_use;
	a->in_use = uses;
	a->n_in_use = n_uses;
	a->in_use_known = known;
	pthread_mutex_unlock(&a->lock);
	vgm_device_uses_free(old, n_old);
	sweep_assignments(a);
	sweep_hook_claims(a);
}

int agent_virt_domain_left(agent *a, const char *domain_uuid)
{
	virDomainPtr dom;
	int state = 0, reason = 0, r;

	if (!a->virt || !virt_ready(a->virt))
		return -1;
	dom = virDomainLookupByUUIDString(a->virt->conn, domain_uuid);
	if (!dom) {
		virErrorPtr e = virGetLastError();

		return e && e->code == VIR_ERR_NO_DOMAIN ? 1 : -1;
	}
	r = virDomainGetState(dom, &state, &reason, 0);
	virDomainFree(dom);
	if (r < 0)
		return -1;
	return state == VIR_DOMAIN_SHUTOFF && reason == VIR_DOMAIN_SHUTOFF_MIGRATED;
}
