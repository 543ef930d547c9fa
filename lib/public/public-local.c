/* public-local.c: the host-local half of the public API (include/vgpumig/vgpumig.h):
 * version, inventory, domain XML, plan and check.
 *
 * Each call is a thin adapter: it runs the internal vgm_* function and turns
 * its result into the public shape (JSON text or a fixed struct), so the
 * internal types can change freely while soname 0 stays stable.  Errors are
 * copied from the internal vgm_error field by field (public_error_from). */
#include <string.h>

#include "compat/compat.h"
#include "device/device.h"
#include "domxml/domxml.h"
#include "model/model.h"
#include "public-internal.h"
#include "vgm-config.h"

const char *vgpumig_version(void)
{
	return VGM_VERSION;
}

void vgpumig_protocol_range(unsigned *oldest, unsigned *newest)
{
	if (oldest)
		*oldest = VGM_PROTOCOL_OLDEST;
	if (newest)
		*newest = VGM_PROTOCOL_VERSION;
}

void vgpumig_free(void *p)
{
	free(p);
}

int public_error_from(vgpumig_error *out, const vgm_error *in, int r)
{
	if (!out)
		return r;
	memset(out, 0, sizeof(*out));
	out->code = in->code ? in->code : -r;
	snprintf(out->reason, sizeof(out->reason), "%s", in->reason);
	snprintf(out->message, sizeof(out->message), "%s", vgm_error_message(in));
	return r;
}

int public_error_set(vgpumig_error *out, int code, const char *reason, const char *message)
{
	vgm_error e = { 0 };

	vgm_error_setr(&e, code, reason, "%s", message);
	return public_error_from(out, &e, -code);
}

/* Dump a JSON value (consumed) into malloc'd text for the caller. */
int public_dump(json_t *j, char **out, vgpumig_error *err)
{
	char *s;

	if (!out) {
		json_decref(j);
		return 0;
	}
	s = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	if (!s)
		return public_error_set(err, ENOMEM, "out_of_memory", "out of memory");
	*out = s;
	return 0;
}

int vgpumig_inventory(const char *sysfs_root, char **devices_json, char **types_json,
		      vgpumig_error *err)
{
	_cleanup_(vgm_host_freep) vgm_host *h = NULL;
	_cleanup_(vgm_inventory_freep) vgm_inventory *inv = NULL;
	vgm_error e = { 0 };
	int r;

	if ((r = vgm_host_new(sysfs_root, &h, &e)) < 0 || (r = vgm_inventory_load(h, &inv, &e)) < 0)
		return public_error_from(err, &e, r);
	if (devices_json && (r = public_dump(vgm_inventory_devices_json(inv), devices_json, err)) < 0)
		return r;
	if (types_json && (r = public_dump(vgm_inventory_types_json(inv), types_json, err)) < 0) {
		if (devices_json) {
			free(*devices_json);
			*devices_json = NULL;
		}
		return r;
	}
	return 0;
}

int vgpumig_domxml_inspect(const char *xml, size_t len, char **json, vgpumig_error *err)
{
	_cleanup_(vgm_domain_info_freep) vgm_domain_info *d = NULL;
	vgm_error e = { 0 };
	int r;

	if ((r = vgm_domxml_inspect(xml, len, &d, &e)) < 0)
		return public_error_from(err, &e, r);
	return public_dump(vgm_domain_info_to_json(d), json, err);
}

int vgpumig_domxml_rewrite(const char *xml, size_t len, const char *const *src,
			   const char *const *dst, size_t n, unsigned flags, char **out,
			   vgpumig_error *err)
{
	_cleanup_free_ vgm_idmap *map = calloc(n ? n : 1, sizeof(*map));
	vgm_error e = { 0 };
	int r;

	if (!map)
		return public_error_set(err, ENOMEM, "out_of_memory", "out of memory");
	for (size_t i = 0; i < n; i++)
		map[i] = (vgm_idmap){ .src = src[i], .dst = dst[i] };
	r = vgm_domxml_rewrite(xml, len, map, n,
			       flags & VGPUMIG_REWRITE_ALLOW_UNMAPPED ? VGM_REWRITE_ALLOW_UNMAPPED : 0,
			       out, NULL, &e);
	return r < 0 ? public_error_from(err, &e, r) : 0;
}

int vgpumig_plan_compute(const vgpumig_plan_input *in, vgpumig_plan *out, vgpumig_error *err)
{
	vgm_model_input mi = {
		.ram_bytes = in->ram_bytes,
		.vgpu_state_bytes = in->vgpu_state_bytes,
		.bandwidth_bps = in->bandwidth_bps,
		.dirty_bps = in->dirty_bps,
		.costs = vgm_model_default_costs(),
	};
	vgm_plan p;
	vgm_verdict v;
	vgm_error e = { 0 };
	int r;

	/* as the agent plans: QEMU's limit leaves room for the fixed switchover cost */
	uint64_t dl = vgm_model_qemu_downtime_ms(&mi.costs, in->max_downtime_ms);
	mi.downtime_limit_ms = dl ? dl : 1;
	if ((r = vgm_model_plan(&mi, &p, &e)) < 0)
		return public_error_from(err, &e, r);
	vgm_model_verdict(&p, in->max_downtime_ms, in->timeout_ms, &v);
	memset(out, 0, sizeof(*out));
	out->converges = p.converges;
	out->ok = v.ok;
	out->iterations = p.iterations;
	out->total_ms = p.total_s < 0 ? -1 : p.total_s * 1e3;
	out->downtime_ms = p.downtime_s < 0 ? -1 : p.downtime_s * 1e3;
	out->bytes_total = p.bytes_total;
	snprintf(out->verdict, sizeof(out->verdict), "%s", v.code);
	snprintf(out->reason, sizeof(out->reason), "%s", v.reason);
	return 0;
}

static int facts_parse(const char *text, const char *which, vgm_facts **out, vgpumig_error *err)
{
	_cleanup_(json_decrefp) json_t *j = NULL;
	json_error_t je;
	vgm_error e = { 0 };
	int r;

	if (!text)
		return public_error_set(err, EINVAL, "invalid_facts",
					"no facts given; pass the JSON of GET /v1/host");
	j = json_loads(text, JSON_REJECT_DUPLICATES, &je);
	if (!j) {
		vgm_error_setr(&e, EINVAL, "invalid_facts", "%s facts are not JSON: %s", which, je.text);
		return public_error_from(err, &e, -EINVAL);
	}
	if ((r = vgm_facts_from_json(j, out, &e)) < 0) {
		vgm_error_prefix(&e, "%s facts", which);
		return public_error_from(err, &e, r);
	}
	return 0;
}

int vgpumig_check(const char *source_facts, const char *target_facts, const char *domain_xml,
		  size_t xml_len, char **results_json, vgpumig_error *err)
{
	_cleanup_(vgm_facts_freep) vgm_facts *s = NULL;
	_cleanup_(vgm_facts_freep) vgm_facts *t = NULL;
	_cleanup_(vgm_domain_info_freep) vgm_domain_info *d = NULL;
	_cleanup_(vgm_check_list_freep) vgm_check_list *l = NULL;
	vgm_error e = { 0 };
	int r;

	if ((r = facts_parse(source_facts, "source", &s, err)) < 0 ||
	    (r = facts_parse(target_facts, "target", &t, err)) < 0)
		return r;
	if (domain_xml && (r = vgm_domxml_inspect(domain_xml, xml_len, &d, &e)) < 0)
		return public_error_from(err, &e, r);
	vgm_check_input in = { .source = s, .target = t, .domain = d };
	if ((r = vgm_compat_check(&in, &l, &e)) < 0)
		return public_error_from(err, &e, r);
	if ((r = public_dump(vgm_check_list_to_json(l), results_json, err)) < 0)
		return r;
	return (int)l->n_failed;
}
