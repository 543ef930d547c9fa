/* sysfs.c: lays out the emulated /sys and /proc the way the kernel and the
 * NVIDIA driver do (see emu.h for the model behind the attributes).
 *
 *   /sys/devices/pci0000:40/0000:40:01.1/0000:41:00.0          physical GPU
 *   /sys/devices/pci0000:40/0000:40:01.1/0000:41:00.4          VF (physfn -> PF)
 *   <parent>/mdev_supported_types/nvidia-471/{name,description,device_api,
 *            available_instances,create,devices/}
 *   <parent>/<uuid>/{mdev_type,remove,iommu_group,subsystem,driver}
 *   /sys/class/mdev_bus/<parent>, /sys/bus/pci/devices/<fn>,
 *   /sys/bus/mdev/devices/<uuid>, /sys/kernel/iommu_groups/<n>/devices/<dev>
 *   <VF>/nvidia/{creatable_vgpu_types,current_vgpu_type}   vendor VF boards
 *   /sys/module/nvidia/version, /proc/driver/nvidia/version,
 *   /proc/driver/nvidia/gpus/<PF>/information (with an "ECC Mode:" line)
 *
 * Every link is created from absolute in-tree paths and stored relative
 * (tree_add_link), exactly as sysfs shows them. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emu.h"
#include "xalloc.h"

#define PCI_BUS_DIR "/sys/bus/pci/devices"
#define MDEV_BUS_DIR "/sys/bus/mdev/devices"
#define MDEV_CLASS_DIR "/sys/class/mdev_bus"
#define IOMMU_DIR "/sys/kernel/iommu_groups"
#define MDEV_DRIVER "/sys/bus/mdev/drivers/nvidia-vgpu-vfio"

static char *type_dir_path(const emu_parent *p, unsigned profile)
{
	return xasprintf("%s/mdev_supported_types/nvidia-%u", p->dev_path,
			 p->emu->cat->profiles[profile].type_num);
}

static void add_iommu_group(emu *e, unsigned group, const char *dev_path, tree_node *dev_dir)
{
	char *gdir = xasprintf(IOMMU_DIR "/%u", group);
	char *ddir = xasprintf("%s/devices", gdir);
	tree_node *devs = tree_mkdir_p(e->root, ddir);
	tree_add_link(devs, strrchr(dev_path, '/') + 1, dev_path);
	tree_add_link(dev_dir, "iommu_group", gdir);
	free(ddir);
	free(gdir);
}

/* ---- mdev type attributes ---- */

static char *show_available(tree_node *n)
{
	emu_type_ref *t = n->data;
	return xasprintf("%u\n", emu_available(t->parent, t->profile));
}

/* The kernel's create_store accepts exactly a UUID, optionally followed by
 * one newline, in any hex case. */
static bool parse_uuid(const char *buf, size_t len, char out[37])
{
	if (len == 37 && buf[36] == '\n')
		len = 36;
	if (len != 36)
		return false;
	for (size_t i = 0; i < 36; i++) {
		bool dash = i == 8 || i == 13 || i == 18 || i == 23;
		if (dash ? buf[i] != '-' : !isxdigit((unsigned char)buf[i]))
			return false;
		out[i] = (char)tolower((unsigned char)buf[i]);
	}
	out[36] = '\0';
	return true;
}

static int store_create(tree_node *n, const char *buf, size_t len)
{
	emu_type_ref *t = n->data;
	char uuid[37];
	if (!parse_uuid(buf, len, uuid))
		return -EINVAL;
	return emu_create(t->parent, t->profile, uuid);
}

static void add_mdev_type(emu *e, emu_parent *p, unsigned profile)
{
	const emu_profile *pr = &e->cat->profiles[profile];
	char *path = type_dir_path(p, profile);
	tree_node *dir = tree_mkdir_p(e->root, path);
	emu_type_ref *ref = &e->type_refs[(size_t)(p - e->parents) * e->cat->n_profiles + profile];
	tree_add_text(dir, "name", "%s\n", pr->name);
	tree_add_text(dir, "description",
		      "num_heads=%u, frl_config=%u, framebuffer=%uM, max_resolution=%s, "
		      "max_instance=%u\n",
		      pr->num_heads, pr->frl_config, pr->fb_mib, pr->max_resolution,
		      pr->max_instance);
	tree_add_text(dir, "device_api", "vfio-pci\n");
	tree_add_attr(dir, "available_instances", 0444, show_available, NULL, ref);
	tree_add_attr(dir, "create", 0200, NULL, store_create, ref);
	tree_mkdir_p(dir, "devices");
	free(path);
}

/* ---- vendor VF interface (nvidia/) ---- */

static bool vf_creatable(const emu_parent *p, unsigned profile)
{
	return p->used == 0 && emu_available(p, profile) > 0;
}

/* The types a VF can take now.  A VF that holds a vGPU lists just the type
 * it holds, so its name stays discoverable (a modelling choice, see
 * docs/vgpu-sysfs-emu.md); writing another id to it still fails EBUSY. */
static char *show_creatable(tree_node *n)
{
	emu_parent *p = n->data;
	const emu_catalog *c = p->emu->cat;
	emu_instance *held = emu_parent_instance(p);
	size_t cap = 32 + c->n_profiles * 64, len = 0;
	char *s = xmalloc(cap);
	len += (size_t)snprintf(s, cap, "%-6s: %s\n", "ID", "vGPU Name");
	for (unsigned t = 0; t < c->n_profiles; t++)
		if (held ? held->profile == t : vf_creatable(p, t))
			len += (size_t)snprintf(s + len, cap - len, "%-6u: %s\n",
						c->profiles[t].type_num, c->profiles[t].name);
	return s;
}

static char *show_current(tree_node *n)
{
	emu_parent *p = n->data;
	emu_instance *i = emu_parent_instance(p);
	return xasprintf("%u\n", i ? p->emu->cat->profiles[i->profile].type_num : 0);
}

/* Writing a type id creates a vGPU on the VF; writing 0 removes it.
 * Unknown ids and junk give EINVAL, a VF that already holds a vGPU EBUSY,
 * a known id that is not creatable now ENOSPC. */
static int store_current(tree_node *n, const char *buf, size_t len)
{
	emu_parent *p = n->data;
	const emu_catalog *c = p->emu->cat;
	char tmp[32];
	while (len && isspace((unsigned char)buf[len - 1]))
		len--;
	if (len == 0 || len >= sizeof(tmp))
		return -EINVAL;
	memcpy(tmp, buf, len);
	tmp[len] = '\0';
	char *end;
	errno = 0;
	unsigned long id = strtoul(tmp, &end, 10);
	if (errno || *end || !isdigit((unsigned char)tmp[0]))
		return -EINVAL;
	emu_instance *held = emu_parent_instance(p);
	if (id == 0)
		return held ? emu_remove(held) : 0;
	if (held)
		return -EBUSY;
	for (unsigned t = 0; t < c->n_profiles; t++)
		if (c->profiles[t].type_num == id)
			return emu_create(p, t, p->addr); /* ENOSPC unless creatable */
	return -EINVAL;
}

/* ---- PCI functions ---- */

static tree_node *add_pci_function(emu *e, const char *bridge, const char *addr, unsigned dev_id,
				   char **path_out)
{
	char *path = xasprintf("%s/%s", bridge, addr);
	tree_node *dir = tree_mkdir_p(e->root, path);
	tree_add_text(dir, "vendor", "0x10de\n");
	tree_add_text(dir, "device", "0x%04x\n", dev_id);
	tree_add_text(dir, "class", "0x030200\n");
	tree_add_link(dir, "subsystem", "/sys/bus/pci");
	tree_add_link(dir, "driver", "/sys/bus/pci/drivers/nvidia");
	add_iommu_group(e, e->next_iommu_group++, path, dir);
	tree_add_link(tree_mkdir_p(e->root, PCI_BUS_DIR), addr, path);
	*path_out = path;
	return dir;
}

/* The driver's per-GPU information file, plus an "ECC Mode:" line (ours). */
static char *show_gpu_info(tree_node *n)
{
	emu_gpu *g = n->data;
	emu *e = g->emu;
	return xasprintf("Model: \t\t %s\nIRQ:   \t\t %u\nGPU UUID: \t GPU-6e1f0c2a-%04x-4b7d-9a3e-"
			 "5f2c8d1b%04x\nVideo BIOS: \t 92.00.45.00.06\nBus Type: \t PCIe\n"
			 "DMA Size: \t 47 bits\nDMA Mask: \t 0x7fffffffffff\nBus Location: \t %s\n"
			 "Device Minor: \t %u\nGPU Excluded:\t No\nECC Mode: \t %s\n",
			 e->cat->model, 120 + g->index, g->index, g->index, g->addr, g->index,
			 g->ecc ? "Enabled" : "Disabled");
}

static void add_gpu_info(emu *e, emu_gpu *g)
{
	char *dir = xasprintf("/proc/driver/nvidia/gpus/%s", g->addr);
	tree_node *d = tree_mkdir_p(e->root, dir);
	tree_add_attr(d, "information", 0444, show_gpu_info, NULL, g);
	free(dir);
}

static void add_parent_interface(emu *e, emu_parent *p)
{
	if (e->cat->layout == EMU_VENDOR_VF) {
		tree_node *nv = tree_mkdir_p(p->dev_dir, "nvidia");
		tree_add_attr(nv, "creatable_vgpu_types", 0444, show_creatable, NULL, p);
		tree_add_attr(nv, "current_vgpu_type", 0644, show_current, store_current, p);
		return;
	}
	for (unsigned t = 0; t < e->cat->n_profiles; t++)
		add_mdev_type(e, p, t);
	tree_add_link(tree_mkdir_p(e->root, MDEV_CLASS_DIR), p->addr, p->dev_path);
}

static void add_gpu(emu *e, unsigned i)
{
	const emu_catalog *c = e->cat;
	char bridge[256];
	char *pf_path;
	emu_catalog_gpu_bridge(c, i, bridge, sizeof(bridge));
	tree_node *pf = add_pci_function(e, bridge, e->gpus[i].addr, c->device_id, &pf_path);
	add_gpu_info(e, &e->gpus[i]);
	if (c->layout == EMU_MDEV_ON_PF) {
		emu_parent *p = &e->parents[i];
		p->dev_path = pf_path;
		p->dev_dir = pf;
		add_parent_interface(e, p);
		return;
	}
	tree_add_text(pf, "sriov_totalvfs", "%u\n", c->n_vfs);
	tree_add_text(pf, "sriov_numvfs", "%u\n", c->n_vfs);
	for (unsigned k = 0; k < c->n_vfs; k++) {
		emu_parent *p = &e->parents[i * c->n_vfs + k];
		p->dev_dir = add_pci_function(e, bridge, p->addr, c->vf_device_id, &p->dev_path);
		tree_add_link(p->dev_dir, "physfn", pf_path);
		char name[32];
		snprintf(name, sizeof(name), "virtfn%u", k);
		tree_add_link(pf, name, p->dev_path);
		add_parent_interface(e, p);
	}
	free(pf_path);
}

void emu_build_tree(emu *e)
{
	tree_mkdir_p(e->root, "/sys/class");
	tree_mkdir_p(e->root, "/sys/bus/pci/drivers/nvidia");
	tree_mkdir_p(e->root, PCI_BUS_DIR);
	if (e->cat->layout != EMU_VENDOR_VF) {
		/* the mdev core only exists when a driver registered a parent */
		tree_mkdir_p(e->root, MDEV_CLASS_DIR);
		tree_mkdir_p(e->root, MDEV_BUS_DIR);
		tree_mkdir_p(e->root, MDEV_DRIVER);
	}
	tree_mkdir_p(e->root, IOMMU_DIR);
	for (unsigned i = 0; i < e->n_gpus; i++)
		add_gpu(e, i);
	tree_add_text(tree_mkdir_p(e->root, "/sys/module/nvidia"), "version", "%s\n",
		      e->driver_version);
	tree_add_text(tree_mkdir_p(e->root, "/proc/driver/nvidia"), "version",
		      "NVRM version: NVIDIA UNIX x86_64 Kernel Module  %s  Fri May 31 09:30:47 UTC "
		      "2024\nGCC version:  gcc version 12.2.0 (Debian 12.2.0-14)\n",
		      e->driver_version);
}

/* ---- instances ---- */

static int store_remove(tree_node *n, const char *buf, size_t len)
{
	char tmp[32];
	if (len == 0 || len >= sizeof(tmp))
		return -EINVAL;
	memcpy(tmp, buf, len);
	tmp[len] = '\0';
	char *end;
	errno = 0;
	unsigned long v = strtoul(tmp, &end, 0);
	if (errno || end == tmp || (*end && !(end[0] == '\n' && !end[1])))
		return -EINVAL;
	return v ? emu_remove(n->data) : 0;
}

void emu_instance_add_nodes(emu *e, emu_instance *inst)
{
	if (e->cat->layout == EMU_VENDOR_VF)
		return; /* current_vgpu_type shows it */
	emu_parent *p = inst->parent;
	char *path = xasprintf("%s/%s", p->dev_path, inst->id);
	char *type_path = type_dir_path(p, inst->profile);
	char *devs = xasprintf("%s/devices", type_path);
	tree_node *dir = tree_mkdir_p(e->root, path);
	tree_add_link(dir, "mdev_type", type_path);
	tree_add_attr(dir, "remove", 0200, NULL, store_remove, inst);
	tree_add_link(dir, "subsystem", "/sys/bus/mdev");
	tree_add_link(dir, "driver", MDEV_DRIVER);
	add_iommu_group(e, inst->iommu_group, path, dir);
	tree_add_link(tree_lookup(e->root, devs), inst->id, path);
	tree_add_link(tree_lookup(e->root, MDEV_BUS_DIR), inst->id, path);
	free(devs);
	free(type_path);
	free(path);
}

void emu_instance_remove_nodes(emu *e, emu_instance *inst)
{
	if (e->cat->layout == EMU_VENDOR_VF)
		return;
	char *type_path = type_dir_path(inst->parent, inst->profile);
	char *devs = xasprintf("%s/devices/%s", type_path, inst->id);
	char *group = xasprintf(IOMMU_DIR "/%u", inst->iommu_group);
	tree_remove(tree_lookup(e->root, devs));
	tree_remove(tree_child(tree_lookup(e->root, MDEV_BUS_DIR), inst->id));
	tree_remove(tree_lookup(e->root, group));
	tree_remove(tree_child(inst->parent->dev_dir, inst->id));
	free(group);
	free(devs);
	free(type_path);
}
