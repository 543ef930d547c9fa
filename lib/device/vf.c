/* vf.c: NVIDIA's SR-IOV VF vGPU interface (Ada, Hopper, Blackwell; no mdev).
 *
 *   ROOT/sys/bus/pci/devices/<VF>/nvidia/creatable_vgpu_types
 *       "ID    : vGPU Name" header (optional), then "1414 : NVIDIA H100-1-10C"
 *   ROOT/sys/bus/pci/devices/<VF>/nvidia/current_vgpu_type
 *       0 = empty; an id = the VF holds one vGPU of that type
 *
 * Each such VF is a parent of backend VF that can hold one vGPU, and when it
 * holds one it is also the instance (id = the VF's PCI address).  The type
 * list is outside text: lines whose id is not a decimal number or whose name
 * is empty or absurdly long are skipped, never trusted. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "device/device-internal.h"
#include "util/fs.h"
#include "util/validate.h"

#define CREATABLE_MAX (256 * 1024)
#define VF_NAME_MAX 128

static bool line_split(char *line, char **id, char **name)
{
	char *colon = strchr(line, ':');
	if (!colon)
		return false;
	*colon = '\0';
	char *a = line, *b = colon + 1;
	while (isspace((unsigned char)*a))
		a++;
	size_t la = strlen(a);
	while (la && isspace((unsigned char)a[la - 1]))
		a[--la] = '\0';
	while (isspace((unsigned char)*b))
		b++;
	size_t lb = strlen(b);
	while (lb && isspace((unsigned char)b[lb - 1]))
		b[--lb] = '\0';
	if (la == 0 || la > 10 || lb == 0 || lb > VF_NAME_MAX)
		return false;
	for (size_t i = 0; i < la; i++)
		if (!isdigit((unsigned char)a[i]))
			return false;
	for (size_t i = 0; i < lb; i++)
		if (!isprint((unsigned char)b[i]))
			return false;
	*id = a;
	*name = b;
	return true;
}

int vgm_vf_parse_creatable(const char *text, vgm_kv **out, size_t *n)
{
	_cleanup_free_ char *copy = strdup(text);
	*out = NULL;
	*n = 0;
	if (!copy)
		return -ENOMEM;
	char *save = NULL;
	for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *id, *name;
		if (!line_split(line, &id, &name))
			continue;
		vgm_kv *kv = vgm_array_push((void **)out, n, sizeof(*kv));
		if (!kv || !(kv->key = strdup(id)) || !(kv->value = strdup(name))) {
			vgm_kv_array_free(*out, *n);
			*out = NULL;
			*n = 0;
			return -ENOMEM;
		}
	}
	return 0;
}

bool vgm_pci_is_nvidia(const vgm_host *h, const char *addr)
{
	if (!addr || !vgm_pci_addr_valid(addr))
		return false;
	_cleanup_free_ char *path = vgm_path(h->root, "/sys/bus/pci/devices/%s/vendor", addr);
	_cleanup_free_ char *vendor = NULL;
	return path && vgm_read_attr(path, &vendor) == 0 && strcasecmp(vendor, "0x10de") == 0;
}

int vgm_vf_current_type(const vgm_host *h, const char *vf, unsigned long long *out)
{
	_cleanup_free_ char *path = vgm_path(h->root, "/sys/bus/pci/devices/%s/nvidia/current_vgpu_type",
					     vf);
	if (!path)
		return -ENOMEM;
	return vgm_read_attr_u64(path, out);
}

static int vf_profile_fill(vgm_profile *pr, vgm_kv *kv, bool free_now)
{
	pr->type_id = TAKE_PTR(kv->key);
	pr->name = TAKE_PTR(kv->value);
	pr->license_class = 0;
	int r = vgm_profile_parse_description(pr, NULL, NULL); /* license class from the name */
	pr->framebuffer_bytes = vgm_profile_framebuffer_from_name(pr->name);
	pr->max_instances = 1; /* a VF holds one vGPU */
	pr->available = free_now ? 1 : 0;
	return r;
}

int vgm_vf_parent_load(vgm_host *h, vgm_inventory *inv, const char *addr)
{
	_cleanup_free_ char *path = vgm_path(h->root,
					     "/sys/bus/pci/devices/%s/nvidia/creatable_vgpu_types", addr);
	_cleanup_free_ char *text = NULL;
	if (!path)
		return -ENOMEM;
	int r = vgm_read_file(path, CREATABLE_MAX, &text, NULL);
	if (r == -ENOENT || r == -ENOTDIR)
		return 0;
	if (r < 0)
		return r;
	unsigned long long cur = 0;
	r = vgm_vf_current_type(h, addr, &cur);
	if (r < 0 && r != -ENOENT && r != -EINVAL)
		return r;

	vgm_kv *kv = NULL;
	size_t n = 0;
	if ((r = vgm_vf_parse_creatable(text, &kv, &n)) < 0)
		return r;
	vgm_parent *p = NULL;
	if ((r = vgm_parent_add(h, inv, addr, VGM_BACKEND_VF, &p)) < 0) {
		vgm_kv_array_free(kv, n);
		return r;
	}
	if (cur && asprintf(&p->current_type_id, "%llu", cur) < 0)
		p->current_type_id = NULL, r = -ENOMEM;
	p->profiles = calloc(n ? n : 1, sizeof(*p->profiles));
	if (!p->profiles)
		r = -ENOMEM;
	for (size_t i = 0; r >= 0 && i < n; i++, p->n_profiles++)
		r = vf_profile_fill(&p->profiles[i], &kv[i], cur == 0);
	vgm_kv_array_free(kv, n);
	for (size_t i = 0; r >= 0 && i < p->n_profiles && !p->board; i++)
		p->board = vgm_profile_board(p->profiles[i].name);
	return r;
}

int vgm_vf_instance_push(vgm_inventory *inv, const char *vf, const char *type_id)
{
	vgm_instance *in = vgm_array_push((void **)&inv->instances, &inv->n_instances, sizeof(*in));
	if (!in)
		return -ENOMEM;
	in->kind = VGM_BACKEND_VF;
	in->id = strdup(vf);
	in->parent = strdup(vf);
	in->type_id = strdup(type_id);
	return in->id && in->parent && in->type_id ? 0 : -ENOMEM;
}

int vgm_vf_instances_load(vgm_inventory *inv)
{
	int r = 0;
	for (size_t i = 0; r == 0 && i < inv->n_parents; i++) {
		const vgm_parent *p = &inv->parents[i];
		if (p->backend == VGM_BACKEND_VF && p->current_type_id)
			r = vgm_vf_instance_push(inv, p->address, p->current_type_id);
	}
	return r;
}
