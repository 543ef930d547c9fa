/* inventory.c: read a host's vGPU parents, profiles and instances from sysfs.
 *
 * Two backends feed one model (device.h):
 *   mdev  ROOT/sys/class/mdev_bus/<parent>/mdev_supported_types/<type>/{name,...}
 *         instances ROOT/sys/bus/mdev/devices/<uuid>, whose mdev_type link
 *         resolves to ROOT/.../<parent>/mdev_supported_types/<type>
 *   VF    ROOT/sys/bus/pci/devices/<VF>/nvidia/{creatable_vgpu_types,current_vgpu_type}
 *
 * Invariants: every directory entry is validated (vgm_name_valid, UUID or PCI
 * address) before a path is built from it; entries that fail are skipped, as
 * they cannot be NVIDIA vGPU objects.  A malformed attribute of one profile
 * never hides the rest of the host.  The result is sorted (parents by
 * address, profiles by type id in version order, instances by id) so output
 * is the same on every run. */
#include <dirent.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "device/device-internal.h"
#include "util/fs.h"
#include "util/validate.h"

int vgm_host_new(const char *sysfs_root, vgm_host **out, vgm_error *err)
{
	if (!sysfs_root || !sysfs_root[0])
		sysfs_root = getenv("VGPUMIG_SYSFS_ROOT");
	if (!sysfs_root || !sysfs_root[0])
		sysfs_root = "/";
	struct stat st;
	if (stat(sysfs_root, &st) < 0 || !S_ISDIR(st.st_mode))
		return vgm_error_setr(err, ENOENT, "bad_sysfs_root",
				      "sysfs root '%.200s' is not a directory; give --sysfs-root (or "
				      "VGPUMIG_SYSFS_ROOT) an existing tree such as an emulator mount",
				      sysfs_root);
	vgm_host *h = calloc(1, sizeof(*h));
	if (!h || !(h->root = strdup(sysfs_root))) {
		free(h);
		return vgm_error_set(err, ENOMEM, "out of memory");
	}
	*out = h;
	return 0;
}

void vgm_host_free(vgm_host *h)
{
	if (!h)
		return;
	free(h->root);
	free(h);
}

const char *vgm_host_root(const vgm_host *h)
{
	return h->root;
}

void vgm_parent_clear(vgm_parent *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->n_profiles; i++)
		vgm_profile_clear(&p->profiles[i]);
	free(p->profiles);
	free(p->address);
	free(p->physfn);
	free(p->board);
	free(p->current_type_id);
	memset(p, 0, sizeof(*p));
}

static void instance_clear(vgm_instance *i)
{
	free(i->id);
	free(i->parent);
	free(i->type_id);
	free(i->profile_name);
}

void vgm_instances_free(vgm_instance *v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		instance_clear(&v[i]);
	free(v);
}

void vgm_inventory_free(vgm_inventory *inv)
{
	if (!inv)
		return;
	for (size_t i = 0; i < inv->n_parents; i++)
		vgm_parent_clear(&inv->parents[i]);
	free(inv->parents);
	for (size_t i = 0; i < inv->n_instances; i++)
		instance_clear(&inv->instances[i]);
	free(inv->instances);
	free(inv->driver_version);
	free(inv);
}

/* Grow an array by one zeroed element; returns it or NULL. */
void *vgm_array_push(void **arr, size_t *n, size_t elsize)
{
	char *a = realloc(*arr, (*n + 1) * elsize);
	if (!a)
		return NULL;
	*arr = a;
	memset(a + *n * elsize, 0, elsize);
	return a + (*n)++ * elsize;
}

int vgm_dir_list(const char *path, bool (*keep)(const char *), char ***out, size_t *n)
{
	*out = NULL;
	*n = 0;
	DIR *d = opendir(path);
	if (!d)
		return errno == ENOENT || errno == ENOTDIR ? 0 : -errno;
	struct dirent *e;
	int r = 0;
	while ((e = readdir(d))) {
		if (!keep(e->d_name))
			continue;
		char **slot = vgm_array_push((void **)out, n, sizeof(char *));
		if (!slot || !(*slot = strdup(e->d_name))) {
			r = -ENOMEM;
			break;
		}
	}
	closedir(d);
	if (r < 0) {
		vgm_strv_free(*out, *n);
		*out = NULL;
		*n = 0;
	}
	return r;
}

/* physfn link of a PCI function, else the address itself. */
static int parent_physfn(const vgm_host *h, const char *addr, char **out)
{
	_cleanup_free_ char *path = vgm_path(h->root, "/sys/bus/pci/devices/%s/physfn", addr);
	if (!path)
		return -ENOMEM;
	char *base = NULL;
	if (vgm_readlink_base(path, &base) == 0 && vgm_pci_addr_valid(base)) {
		*out = base;
		return 0;
	}
	free(base);
	*out = strdup(addr);
	return *out ? 0 : -ENOMEM;
}

int vgm_parent_add(vgm_host *h, vgm_inventory *inv, const char *addr, vgm_backend b,
		      vgm_parent **out)
{
	vgm_parent *p = vgm_array_push((void **)&inv->parents, &inv->n_parents, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->backend = b;
	if (!(p->address = strdup(addr)))
		return -ENOMEM;
	int r = parent_physfn(h, addr, &p->physfn);
	if (r < 0)
		return r;
	*out = p;
	return 0;
}

static void parent_set_board(vgm_parent *p)
{
	for (size_t i = 0; i < p->n_profiles && !p->board; i++)
		p->board = vgm_profile_board(p->profiles[i].name);
}

static int read_attr_opt(const char *dir, const char *name, char **out)
{
	_cleanup_free_ char *path = vgm_path(NULL, "%s/%s", dir, name);
	if (!path)
		return -ENOMEM;
	int r = vgm_read_attr(path, out);
	if (r == -ENOENT) {
		*out = NULL;
		return 0;
	}
	return r;
}

static int mdev_profile_load(const char *typedir, const char *type_id, vgm_profile *pr)
{
	unsigned long long avail = 0;
	int r;
	if (!(pr->type_id = strdup(type_id)))
		return -ENOMEM;
	if ((r = read_attr_opt(typedir, "name", &pr->name)) < 0 ||
	    (r = read_attr_opt(typedir, "description", &pr->description)) < 0 ||
	    (r = read_attr_opt(typedir, "device_api", &pr->device_api)) < 0)
		return r;
	_cleanup_free_ char *ap = vgm_path(NULL, "%s/available_instances", typedir);
	if (!ap)
		return -ENOMEM;
	if (vgm_read_attr_u64(ap, &avail) == 0)
		pr->available = avail > UINT_MAX ? UINT_MAX : (unsigned)avail;
	/* A description we cannot parse still leaves name, type and counts. */
	if (vgm_profile_parse_description(pr, pr->description, NULL) == -ENOMEM)
		return -ENOMEM;
	if (!pr->framebuffer_bytes)
		pr->framebuffer_bytes = vgm_profile_framebuffer_from_name(pr->name);
	return 0;
}

static int mdev_parent_load(vgm_host *h, vgm_inventory *inv, const char *addr)
{
	_cleanup_free_ char *tdir = vgm_path(h->root, "/sys/class/mdev_bus/%s/mdev_supported_types",
					     addr);
	char **types = NULL;
	size_t nt = 0;
	vgm_parent *p = NULL;
	if (!tdir)
		return -ENOMEM;
	int r = vgm_dir_list(tdir, vgm_name_valid, &types, &nt);
	if (r >= 0)
		r = vgm_parent_add(h, inv, addr, VGM_BACKEND_MDEV, &p);
	for (size_t i = 0; r >= 0 && i < nt; i++) {
		_cleanup_free_ char *one = vgm_path(NULL, "%s/%s", tdir, types[i]);
		vgm_profile *pr = vgm_array_push((void **)&p->profiles, &p->n_profiles, sizeof(*pr));
		r = one && pr ? mdev_profile_load(one, types[i], pr) : -ENOMEM;
	}
	vgm_strv_free(types, nt);
	if (r >= 0)
		parent_set_board(p);
	return r;
}

static bool is_pci_addr(const char *s) { return vgm_pci_addr_valid(s); }
static bool is_uuid(const char *s) { return vgm_uuid_valid(s); }

static int mdev_parents_load(vgm_host *h, vgm_inventory *inv)
{
	_cleanup_free_ char *bus = vgm_path(h->root, "/sys/class/mdev_bus");
	char **names = NULL;
	size_t n = 0;
	if (!bus)
		return -ENOMEM;
	int r = vgm_dir_list(bus, vgm_name_valid, &names, &n);
	for (size_t i = 0; r >= 0 && i < n; i++)
		r = mdev_parent_load(h, inv, names[i]);
	vgm_strv_free(names, n);
	return r;
}

/* ROOT/.../<parent>/mdev_supported_types/<type>: parent and type from the
 * resolved mdev_type link.  -ENOENT when the link does not have that shape. */
static int mdev_type_link(const vgm_host *h, const char *uuid, char **parent, char **type)
{
	_cleanup_free_ char *link = vgm_path(h->root, "/sys/bus/mdev/devices/%s/mdev_type", uuid);
	if (!link)
		return -ENOMEM;
	_cleanup_free_ char *real = realpath(link, NULL);
	if (!real)
		return -errno;
	char *t = strrchr(real, '/');
	if (!t || t == real)
		return -ENOENT;
	*t = '\0';
	char *mst = strrchr(real, '/');
	if (!mst || !STREQ(mst + 1, "mdev_supported_types") || mst == real)
		return -ENOENT;
	*mst = '\0';
	char *par = strrchr(real, '/');
	if (!par || !vgm_name_valid(par + 1) || !vgm_name_valid(t + 1))
		return -ENOENT;
	*parent = strdup(par + 1);
	*type = strdup(t + 1);
	return *parent && *type ? 0 : -ENOMEM;
}

/* An instance's parent and type: from known (an earlier read that has this
 * id: an mdev's link cannot change while its UUID lives), else its link. */
static int mdev_instance_where(const vgm_host *h, const vgm_inventory *known, const char *uuid,
			       char **parent, char **type)
{
	const vgm_instance *k = known ? vgm_inventory_find_instance(known, uuid) : NULL;
	if (!k || k->kind != VGM_BACKEND_MDEV)
		return mdev_type_link(h, uuid, parent, type);
	*parent = strdup(k->parent);
	*type = strdup(k->type_id);
	return *parent && *type ? 0 : -ENOMEM;
}

static int mdev_instances_load(vgm_host *h, const vgm_inventory *known, vgm_inventory *inv)
{
	_cleanup_free_ char *dir = vgm_path(h->root, "/sys/bus/mdev/devices");
	char **ids = NULL;
	size_t n = 0;
	if (!dir)
		return -ENOMEM;
	int r = vgm_dir_list(dir, is_uuid, &ids, &n);
	for (size_t i = 0; r >= 0 && i < n; i++) {
		char *parent = NULL, *type = NULL;
		int k = mdev_instance_where(h, known, ids[i], &parent, &type);
		if (k == 0) {
			vgm_instance *in = vgm_array_push((void **)&inv->instances,
							  &inv->n_instances, sizeof(*in));
			if (!in) {
				free(parent);
				free(type);
				r = -ENOMEM;
				break;
			}
			in->kind = VGM_BACKEND_MDEV;
			in->id = strdup(ids[i]);
			in->parent = parent;
			in->type_id = type;
			r = in->id ? 0 : -ENOMEM;
		} else {
			free(parent);
			free(type);
			if (k == -ENOMEM)
				r = k;
		}
	}
	vgm_strv_free(ids, n);
	return r;
}

static int cmp_parent(const void *a, const void *b)
{
	return strcmp(((const vgm_parent *)a)->address, ((const vgm_parent *)b)->address);
}
static int cmp_profile(const void *a, const void *b)
{
	return strverscmp(((const vgm_profile *)a)->type_id, ((const vgm_profile *)b)->type_id);
}
static int cmp_instance(const void *a, const void *b)
{
	return strcmp(((const vgm_instance *)a)->id, ((const vgm_instance *)b)->id);
}

/* Fill each instance's profile name and framebuffer from its parent's
 * profile in from (inv itself, or an earlier read). */
static int instances_resolve(vgm_inventory *inv, const vgm_inventory *from)
{
	for (size_t i = 0; i < inv->n_instances; i++) {
		vgm_instance *in = &inv->instances[i];
		const vgm_parent *p = vgm_inventory_find_parent(from, in->parent);
		const vgm_profile *pr = p ? vgm_parent_find_profile(p, in->type_id) : NULL;
		if (!pr || !pr->name)
			continue;
		if (!(in->profile_name = strdup(pr->name)))
			return -ENOMEM;
		in->framebuffer_bytes = pr->framebuffer_bytes;
	}
	return 0;
}

static void inventory_sort(vgm_inventory *inv)
{
	if (inv->n_parents)
		qsort(inv->parents, inv->n_parents, sizeof(*inv->parents), cmp_parent);
	for (size_t i = 0; i < inv->n_parents; i++)
		if (inv->parents[i].n_profiles)
			qsort(inv->parents[i].profiles, inv->parents[i].n_profiles,
			      sizeof(vgm_profile), cmp_profile);
	if (inv->n_instances)
		qsort(inv->instances, inv->n_instances, sizeof(*inv->instances), cmp_instance);
}

static int vf_parents_load_all(vgm_host *h, vgm_inventory *inv)
{
	_cleanup_free_ char *dir = vgm_path(h->root, "/sys/bus/pci/devices");
	char **addrs = NULL;
	size_t n = 0;
	if (!dir)
		return -ENOMEM;
	int r = vgm_dir_list(dir, is_pci_addr, &addrs, &n);
	for (size_t i = 0; r >= 0 && i < n; i++)
		r = vgm_vf_parent_load(h, inv, addrs[i]);
	vgm_strv_free(addrs, n);
	return r;
}

void vgm_host_set_inventory_source(vgm_host *h, vgm_inventory_source load, void *ctx)
{
	h->source = load;
	h->source_ctx = ctx;
}

int vgm_inventory_load(vgm_host *h, vgm_inventory **out, vgm_error *err)
{
	if (h->source)
		return h->source(h->source_ctx, h, out, err);
	return vgm_inventory_scan(h, out, err);
}

int vgm_inventory_scan(vgm_host *h, vgm_inventory **out, vgm_error *err)
{
	_cleanup_(vgm_inventory_freep) vgm_inventory *inv = calloc(1, sizeof(*inv));
	if (!inv)
		return vgm_error_set(err, ENOMEM, "out of memory");
	int r = vgm_driver_version(h, &inv->driver_version, NULL);
	if (r < 0 && r != -ENOENT && r != -EINVAL)
		return vgm_error_set(err, -r, "reading the NVIDIA driver version under %s: %s",
				     h->root, strerror(-r));
	if ((r = mdev_parents_load(h, inv)) < 0 || (r = vf_parents_load_all(h, inv)) < 0 ||
	    (r = mdev_instances_load(h, NULL, inv)) < 0)
		return vgm_error_setr(err, -r, "sysfs_error",
				      "reading the vGPU inventory under %s failed: %s", h->root,
				      strerror(-r));
	inventory_sort(inv);
	if ((r = vgm_vf_instances_load(inv)) < 0 || (r = instances_resolve(inv, inv)) < 0)
		return vgm_error_set(err, -r, "out of memory");
	if (inv->n_instances)
		qsort(inv->instances, inv->n_instances, sizeof(*inv->instances), cmp_instance);
	*out = TAKE_PTR(inv);
	return 0;
}

const vgm_parent *vgm_inventory_find_parent(const vgm_inventory *inv, const char *address)
{
	for (size_t i = 0; address && i < inv->n_parents; i++)
		if (strcasecmp(inv->parents[i].address, address) == 0)
			return &inv->parents[i];
	return NULL;
}

const vgm_instance *vgm_inventory_find_instance(const vgm_inventory *inv, const char *id)
{
	for (size_t i = 0; id && i < inv->n_instances; i++)
		if (strcasecmp(inv->instances[i].id, id) == 0)
			return &inv->instances[i];
	return NULL;
}

const vgm_profile *vgm_parent_find_profile(const vgm_parent *p, const char *type_id)
{
	for (size_t i = 0; type_id && i < p->n_profiles; i++)
		if (STREQ(p->profiles[i].type_id, type_id))
			return &p->profiles[i];
	return NULL;
}

/* ---- per-parent reads, for a cache kept current (lib/store/invcache.c) ---- */

int vgm_inventory_load_parent(vgm_host *h, const char *address, vgm_parent *out, vgm_error *err)
{
	if (!address || !vgm_name_valid(address))
		return vgm_error_setr(err, EINVAL, "invalid_id", "'%.64s' is not a vGPU parent name",
				      address ? address : "");
	_cleanup_free_ char *mdir = vgm_path(h->root, "/sys/class/mdev_bus/%s", address);
	vgm_inventory tmp = {0};
	struct stat st;
	if (!mdir)
		return vgm_error_set(err, ENOMEM, "out of memory");
	int r = stat(mdir, &st) == 0 ? mdev_parent_load(h, &tmp, address)
				     : vgm_pci_addr_valid(address) ? vgm_vf_parent_load(h, &tmp, address)
								   : 0;
	if (r >= 0 && tmp.n_parents == 0)
		r = -ENOENT;
	if (r >= 0) {
		vgm_parent *p = &tmp.parents[0];
		if (p->n_profiles)
			qsort(p->profiles, p->n_profiles, sizeof(vgm_profile), cmp_profile);
		*out = *p;
		memset(p, 0, sizeof(*p));
	}
	for (size_t i = 0; i < tmp.n_parents; i++)
		vgm_parent_clear(&tmp.parents[i]);
	free(tmp.parents);
	if (r == -ENOENT)
		return vgm_error_setr(err, ENOENT, "no_parent", "%s is not a vGPU parent under %s now",
				      address, h->root);
	if (r < 0)
		return vgm_error_setr(err, -r, "sysfs_error", "reading vGPU parent %s under %s: %s",
				      address, h->root, strerror(-r));
	return 0;
}

/* VF backend: a VF of known holds an instance when current_vgpu_type != 0. */
static int vf_instances_scan(vgm_host *h, const vgm_inventory *known, vgm_inventory *inv)
{
	for (size_t i = 0; i < known->n_parents; i++) {
		const vgm_parent *p = &known->parents[i];
		unsigned long long cur = 0;
		if (p->backend != VGM_BACKEND_VF)
			continue;
		int r = vgm_vf_current_type(h, p->address, &cur);
		if (r == -ENOMEM)
			return r;
		if (r < 0 || cur == 0)
			continue; /* gone or free: the caller's diff sees it */
		char type[24];
		snprintf(type, sizeof(type), "%llu", cur);
		if (vgm_vf_instance_push(inv, p->address, type) < 0)
			return -ENOMEM;
	}
	return 0;
}

int vgm_inventory_load_instances(vgm_host *h, const vgm_inventory *known, vgm_instance **out,
				 size_t *n, vgm_error *err)
{
	vgm_inventory tmp = {0}, none = {0};
	if (!known)
		known = &none; /* mdev instances only, unnamed */
	int r = mdev_instances_load(h, known, &tmp);
	if (r >= 0)
		r = vf_instances_scan(h, known, &tmp);
	if (r >= 0)
		r = instances_resolve(&tmp, known);
	if (r < 0) {
		vgm_instances_free(tmp.instances, tmp.n_instances);
		return vgm_error_setr(err, -r, "sysfs_error", "reading vGPU instances under %s: %s",
				      h->root, strerror(-r));
	}
	if (tmp.n_instances)
		qsort(tmp.instances, tmp.n_instances, sizeof(*tmp.instances), cmp_instance);
	*out = tmp.instances;
	*n = tmp.n_instances;
	return 0;
}
