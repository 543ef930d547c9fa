/* facts.c: the host facts behind GET /v1/host.
 *
 * Facts are collected by the main thread (it alone may ask libvirt for
 * versions) at start and on every housekeeping tick, and cached; request
 * threads return the cached copy, refreshed from sysfs when no cache exists
 * yet.  The JSON is lib/compat's facts form (what peers decode with
 * vgm_facts_from_json) plus agent_version, lab_mode and gathered_at
 * (unix seconds of the gathering); versions are null
 * when libvirt_uri=none. */
#include <string.h>
#include <time.h>

#include "compat/compat.h"
#include "routes.h"
#include "vgpus.h"
#include "vgm-config.h"

/* The versions come from the agent's own libvirt connection (no new
 * connection per tick), so drop compat's "libvirt not asked" note. */
static void set_versions(vgm_facts *f, agent_libvirt *virt)
{
	size_t keep = 0;

	agent_virt_versions(virt, &f->libvirt_version, &f->qemu_version);
	if (!f->libvirt_version)
		return;
	for (size_t i = 0; i < f->n_notes; i++) {
		if (strstr(f->notes[i], "libvirt"))
			free(f->notes[i]);
		else
			f->notes[keep++] = f->notes[i];
	}
	f->n_notes = keep;
}

json_t *agent_facts_collect(agent *a, agent_libvirt *virt)
{
	_cleanup_free_ char *name = agent_host_name(a);
	_cleanup_(vgm_facts_freep) vgm_facts *f = NULL;
	vgm_error err = { 0 };
	json_t *o;

	if (vgm_facts_gather(a->host, a->nvml, name, NULL, &f, &err) < 0) {
		log_warn("gathering host facts: %s", vgm_error_message(&err));
		return NULL;
	}
	if (virt)
		set_versions(f, virt);
	f->protocol_version = a->protocol.newest;
	f->protocol_oldest = a->protocol.oldest;
	o = vgm_facts_to_json(f);
	if (o) {
		json_object_set_new(o, "agent_version", json_string(VGM_VERSION));
		json_object_set_new(o, "lab_mode", json_boolean(agent_lab_mode(a)));
		json_object_set_new(o, "gathered_at", json_integer((json_int_t)time(NULL)));
	}
	return o;
}

void agent_nvml_open(agent *a)
{
	vgm_error err = { 0 };

	if (vgm_nvml_open(NULL, &a->nvml, &err) == 0)
		log_info("NVML loaded: ECC, vGPU streaming and NVIDIA's migration verdict come from it");
	else
		log_info("%s; ECC mode and NVIDIA's migration verdict are reported as unknown",
			 vgm_error_message(&err));
}

json_t *agent_facts_get(agent *a)
{
	json_t *f;

	pthread_mutex_lock(&a->lock);
	f = a->facts ? json_deep_copy(a->facts) : NULL;
	pthread_mutex_unlock(&a->lock);
	return f ? f : agent_facts_collect(a, NULL);
}

/* The source's blob for one vGPU: recorded in the metadata, or read now. */
static char *vgpu_blob(agent *a, const vgm_domain_info *d, const char *id, bool live_here)
{
	char *hex = NULL;

	if (live_here && a->nvml && vgm_nvml_vgpu_metadata(a->nvml, id, &hex, NULL) == 0)
		return hex;
	for (size_t i = 0; d && i < d->n_meta; i++)
		if (strcasecmp(d->meta[i].id, id) == 0 && d->meta[i].nvml_metadata)
			return strdup(d->meta[i].nvml_metadata);
	return NULL;
}

void agent_nvml_verdict(agent *a, const vgm_domain_info *d, const agent_vgpu *v, size_t n,
			bool live_here, const vgm_facts *target, vgm_nvml_summary *out)
{
	_cleanup_free_ const char **ids = calloc(n + 1, sizeof(*ids));
	_cleanup_free_ char **blobs = calloc(n + 1, sizeof(*blobs));

	if (!ids || !blobs) {
		memset(out, 0, sizeof(*out));
		out->verdict = -1;
		snprintf(out->why, sizeof(out->why), "out of memory");
		return;
	}
	for (size_t i = 0; i < n; i++) {
		ids[i] = v[i].id;
		blobs[i] = vgpu_blob(a, d, v[i].id, live_here);
	}
	vgm_compat_nvml_verdict(a->nvml, ids, (const char *const *)blobs, n, target, out);
	for (size_t i = 0; i < n; i++)
		free(blobs[i]);
}
