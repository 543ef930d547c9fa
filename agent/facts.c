/* facts.c: the host facts behind GET /v1/host.
 *
 * Facts are collected by the main thread (it alone may ask libvirt for
 * versions) at start and on every housekeeping tick, and cached; request
 * threads return the cached copy, refreshed from sysfs when no cache exists
 * yet.  Versions are reported as "major.minor.micro" strings, absent when
 * libvirt_uri=none. */
#include <string.h>
#include <sys/utsname.h>

#include "api/wire.h"
#include "routes.h"
#include "vgm-config.h"

static json_t *version_string(unsigned long long v)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%llu.%llu.%llu", v / 1000000, (v / 1000) % 1000, v % 1000);
	return json_string(buf);
}

/* Backend and board families from the inventory ("mdev"/"vf", ["A100"]). */
static void facts_from_inventory(agent *a, json_t *o)
{
	_cleanup_(vgm_inventory_freep) vgm_inventory *inv = NULL;
	json_t *boards = json_array();
	const char *backend = NULL;
	vgm_error err = { 0 };

	if (vgm_inventory_load(a->host, &inv, &err) < 0) {
		json_object_set_new(o, "inventory_error", json_string(vgm_error_message(&err)));
		json_decref(boards);
		return;
	}
	for (size_t i = 0; i < inv->n_parents; i++) {
		const vgm_parent *p = &inv->parents[i];
		bool seen = false;

		backend = vgm_backend_to_string(p->backend);
		for (size_t j = 0; p->board && j < json_array_size(boards); j++)
			seen |= STREQ(json_string_value(json_array_get(boards, j)), p->board);
		if (p->board && !seen)
			json_array_append_new(boards, json_string(p->board));
	}
	json_object_set_new(o, "backend", backend ? json_string(backend) : json_null());
	json_object_set_new(o, "boards", boards);
	json_object_set_new(o, "gpus", json_integer((json_int_t)inv->n_parents));
	json_object_set_new(o, "driver_version",
			    inv->driver_version ? json_string(inv->driver_version) : json_null());
}

json_t *agent_facts_collect(agent *a, agent_libvirt *virt)
{
	_cleanup_free_ char *name = agent_host_name(a);
	json_t *o = json_object();
	struct utsname u;
	unsigned long long lv = 0, qv = 0;

	if (!o)
		return NULL;
	json_object_set_new(o, "host_name", json_string(name ? name : "?"));
	json_object_set_new(o, "protocol_version", json_integer(VGM_WIRE_PROTOCOL));
	json_object_set_new(o, "agent_version", json_string(VGM_VERSION));
	if (uname(&u) == 0) {
		json_object_set_new(o, "kernel_version", json_string(u.release));
		json_object_set_new(o, "arch", json_string(u.machine));
	}
	if (virt)
		agent_virt_versions(virt, &lv, &qv);
	json_object_set_new(o, "libvirt_version", lv ? version_string(lv) : json_null());
	json_object_set_new(o, "qemu_version", qv ? version_string(qv) : json_null());
	json_object_set_new(o, "ecc_mode", json_null()); /* not exposed by the vGPU sysfs ABI */
	json_object_set_new(o, "lab_mode", json_boolean(agent_lab_mode(a)));
	facts_from_inventory(a, o);
	return o;
}

json_t *agent_facts_get(agent *a)
{
	json_t *f;

	pthread_mutex_lock(&a->lock);
	f = a->facts ? json_deep_copy(a->facts) : NULL;
	pthread_mutex_unlock(&a->lock);
	return f ? f : agent_facts_collect(a, NULL);
}
