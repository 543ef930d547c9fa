/* lifecycle.c: create and remove vGPUs, and read the host driver version.
 *
 * Invariants: every id from the caller is validated (UUID, PCI address, sysfs
 * name) before any path is built from it, and every refusal we can see in
 * advance (unknown parent or type, no capacity, UUID taken, VF occupied) is
 * reported before anything is written.  The kernel's own answers (EEXIST,
 * ENOSPC, EBUSY) are still mapped to the same messages, since another writer
 * can always win the race between our check and our write. */
#include <ctype.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "device/device-internal.h"
#include "util/fs.h"
#include "util/validate.h"

static int check_parent_type(const char *parent, const char *type_id, vgm_error *err)
{
	int r = vgm_check_pci_addr("parent", parent, err);
	if (r == 0)
		r = vgm_check_name("type id", type_id, err);
	return r;
}

static int no_capacity(vgm_error *err, const char *type_id, const char *name, const char *parent,
		       unsigned long long avail)
{
	return vgm_error_setr(err, ENOSPC, "no_capacity",
			      "no free instance of type '%s' (%s) on %s (%llu available)", type_id,
			      name ? name : "unknown profile", parent, avail);
}

static int mdev_create(vgm_host *h, const char *parent, const char *type_id, const char *uuid_in,
		       char **out_id, vgm_error *err)
{
	char uuid[VGM_UUID_LEN + 1];
	if (uuid_in)
		vgm_id_normalize(uuid_in, uuid, sizeof(uuid));
	else if (vgm_uuid_generate(uuid) < 0)
		return vgm_error_set(err, EIO, "could not generate a UUID: %s", strerror(errno));

	_cleanup_free_ char *tdir = vgm_path(h->root, "/sys/class/mdev_bus/%s/mdev_supported_types/%s",
					     parent, type_id);
	_cleanup_free_ char *avail_p = vgm_path(NULL, "%s/available_instances", tdir);
	_cleanup_free_ char *name_p = vgm_path(NULL, "%s/name", tdir);
	_cleanup_free_ char *create_p = vgm_path(NULL, "%s/create", tdir);
	_cleanup_free_ char *dev_p = vgm_path(h->root, "/sys/bus/mdev/devices/%s", uuid);
	_cleanup_free_ char *name = NULL;
	if (!tdir || !avail_p || !name_p || !create_p || !dev_p)
		return vgm_error_set(err, ENOMEM, "out of memory");
	if (!vgm_exists(tdir))
		return vgm_error_setr(err, ENOENT, "unknown_type",
				      "parent %s offers no vGPU type '%s'; run 'vgpumig types' to "
				      "list its types", parent, type_id);
	(void)vgm_read_attr(name_p, &name);
	unsigned long long avail = 0;
	int r = vgm_read_attr_u64(avail_p, &avail);
	if (r < 0)
		return vgm_error_setr(err, -r, "sysfs_error", "cannot read %s: %s", avail_p,
				      strerror(-r));
	if (vgm_exists(dev_p))
		goto exists;
	if (avail == 0)
		return no_capacity(err, type_id, name, parent, 0);
	r = vgm_write_attr(create_p, uuid);
	if (r == -EEXIST)
		goto exists;
	if (r == -ENOSPC || r == -EDQUOT)
		/* available_instances said there was room: report what we read, so
		 * the operator sees the driver (or a racing creator) refused it. */
		return vgm_error_setr(err, ENOSPC, "no_capacity",
				      "the driver refused a vGPU of type '%s' (%s) on %s: no space "
				      "left (%llu listed as available before the write)",
				      type_id, name ? name : "unknown profile", parent, avail);
	if (r < 0)
		return vgm_error_setr(err, -r, "create_failed",
				      "creating a vGPU of type '%s' on %s failed: writing %s: %s",
				      type_id, parent, create_p, strerror(-r));
	if (out_id && !(*out_id = strdup(uuid)))
		return vgm_error_set(err, ENOMEM, "out of memory");
	return 0;
exists:
	return vgm_error_setr(err, EEXIST, "exists",
			      "a vGPU with UUID %s already exists; remove it first or pick another "
			      "UUID", uuid);
}

static int vf_find_type(const vgm_host *h, const char *vf, const char *type_id, char **name)
{
	_cleanup_free_ char *path = vgm_path(h->root,
					     "/sys/bus/pci/devices/%s/nvidia/creatable_vgpu_types", vf);
	_cleanup_free_ char *text = NULL;
	vgm_kv *kv = NULL;
	size_t n = 0;
	if (!path)
		return -ENOMEM;
	int r = vgm_read_file(path, 256 * 1024, &text, NULL);
	if (r < 0)
		return r;
	if ((r = vgm_vf_parse_creatable(text, &kv, &n)) < 0)
		return r;
	r = -ENOENT;
	for (size_t i = 0; i < n; i++)
		if (STREQ(kv[i].key, type_id)) {
			*name = TAKE_PTR(kv[i].value);
			r = 0;
			break;
		}
	vgm_kv_array_free(kv, n);
	return r;
}

static int vf_create(vgm_host *h, const char *vf, const char *type_id, char **out_id,
		     vgm_error *err)
{
	unsigned long long cur = 0;
	_cleanup_free_ char *name = NULL;
	if (!type_id[0] || strspn(type_id, "0123456789") != strlen(type_id) || STREQ(type_id, "0"))
		return vgm_error_setr(err, EINVAL, "invalid_name",
				      "type id '%.32s' is not a VF vGPU type; give a number from "
				      "'vgpumig types' such as 1414", type_id);
	int r = vgm_vf_current_type(h, vf, &cur);
	if (r < 0)
		return vgm_error_setr(err, -r, "sysfs_error", "cannot read current_vgpu_type of %s: %s",
				      vf, strerror(-r));
	if (cur != 0)
		return vgm_error_setr(err, EBUSY, "no_capacity",
				      "VF %s already holds a vGPU of type %llu; remove it first or "
				      "pick a free VF", vf, cur);
	r = vf_find_type(h, vf, type_id, &name);
	if (r == -ENOENT)
		return no_capacity(err, type_id, NULL, vf, 0);
	if (r < 0)
		return vgm_error_setr(err, -r, "sysfs_error", "cannot read the creatable types of %s: %s",
				      vf, strerror(-r));
	_cleanup_free_ char *cur_p = vgm_path(h->root, "/sys/bus/pci/devices/%s/nvidia/current_vgpu_type",
					      vf);
	if (!cur_p)
		return vgm_error_set(err, ENOMEM, "out of memory");
	r = vgm_write_attr(cur_p, type_id);
	if (r == -ENOSPC || r == -EBUSY || r == -EEXIST)
		return no_capacity(err, type_id, name, vf, 0);
	if (r < 0)
		return vgm_error_setr(err, -r, "create_failed",
				      "creating a vGPU of type %s (%s) on VF %s failed: %s", type_id,
				      name, vf, strerror(-r));
	if (out_id && !(*out_id = strdup(vf)))
		return vgm_error_set(err, ENOMEM, "out of memory");
	return 0;
}

int vgm_device_create(vgm_host *h, const char *parent, const char *type_id, const char *uuid,
		      char **out_id, vgm_error *err)
{
	int r = check_parent_type(parent, type_id, err);
	if (r < 0)
		return r;
	if (uuid && (r = vgm_check_uuid("vGPU UUID", uuid, err)) < 0)
		return r;
	char addr[VGM_UUID_LEN + 1];
	vgm_id_normalize(parent, addr, sizeof(addr));
	_cleanup_free_ char *mdev_p = vgm_path(h->root, "/sys/class/mdev_bus/%s", addr);
	_cleanup_free_ char *vf_p = vgm_path(h->root, "/sys/bus/pci/devices/%s/nvidia/current_vgpu_type",
					     addr);
	if (!mdev_p || !vf_p)
		return vgm_error_set(err, ENOMEM, "out of memory");
	if (vgm_exists(mdev_p))
		return mdev_create(h, addr, type_id, uuid, out_id, err);
	if (vgm_exists(vf_p)) {
		if (uuid)
			return vgm_error_setr(err, EINVAL, "invalid_id",
					      "%s is a VF-backend parent: its vGPU has no UUID (the VF "
					      "address is its id); drop --uuid", addr);
		return vf_create(h, addr, type_id, out_id, err);
	}
	return vgm_error_setr(err, ENOENT, "unknown_parent",
			      "%s is not a vGPU parent on this host (no mdev_bus entry, no NVIDIA "
			      "VF interface); run 'vgpumig types' to list parents", addr);
}

static int mdev_remove(vgm_host *h, const char *uuid, vgm_error *err)
{
	_cleanup_free_ char *dev_p = vgm_path(h->root, "/sys/bus/mdev/devices/%s", uuid);
	_cleanup_free_ char *rm_p = vgm_path(h->root, "/sys/bus/mdev/devices/%s/remove", uuid);
	if (!dev_p || !rm_p)
		return vgm_error_set(err, ENOMEM, "out of memory");
	if (!vgm_exists(dev_p))
		return vgm_error_setr(err, ENOENT, "not_found",
				      "no vGPU with UUID %s on this host; run 'vgpumig devices'", uuid);
	int r = vgm_write_attr(rm_p, "1");
	if (r == -EBUSY)
		return vgm_error_setr(err, EBUSY, "in_use",
				      "vGPU %s is in use (remove returned EBUSY); stop the VM using "
				      "it first", uuid);
	if (r < 0)
		return vgm_error_setr(err, -r, "remove_failed", "removing vGPU %s failed: %s", uuid,
				      strerror(-r));
	return 0;
}

static int vf_remove(vgm_host *h, const char *vf, vgm_error *err)
{
	unsigned long long cur = 0;
	int r = vgm_vf_current_type(h, vf, &cur);
	if (r == -ENOENT || (r == 0 && cur == 0))
		return vgm_error_setr(err, ENOENT, "not_found",
				      "%s holds no vGPU on this host; run 'vgpumig devices'", vf);
	if (r < 0)
		return vgm_error_setr(err, -r, "sysfs_error", "cannot read current_vgpu_type of %s: %s",
				      vf, strerror(-r));
	_cleanup_free_ char *cur_p = vgm_path(h->root, "/sys/bus/pci/devices/%s/nvidia/current_vgpu_type",
					      vf);
	if (!cur_p)
		return vgm_error_set(err, ENOMEM, "out of memory");
	r = vgm_write_attr(cur_p, "0");
	if (r == -EBUSY)
		return vgm_error_setr(err, EBUSY, "in_use",
				      "vGPU %s is in use (current_vgpu_type returned EBUSY); stop the "
				      "VM using it first", vf);
	if (r < 0)
		return vgm_error_setr(err, -r, "remove_failed", "removing the vGPU on VF %s failed: %s",
				      vf, strerror(-r));
	return 0;
}

int vgm_device_remove(vgm_host *h, const char *id, vgm_error *err)
{
	char norm[VGM_UUID_LEN + 1];
	if (vgm_uuid_valid(id)) {
		vgm_id_normalize(id, norm, sizeof(norm));
		return mdev_remove(h, norm, err);
	}
	if (vgm_pci_addr_valid(id)) {
		vgm_id_normalize(id, norm, sizeof(norm));
		return vf_remove(h, norm, err);
	}
	return vgm_error_setr(err, EINVAL, "invalid_id",
			      "'%.64s' is neither a vGPU UUID nor a VF PCI address; run 'vgpumig "
			      "devices' for the ids", id ? id : "");
}

static bool version_valid(const char *v)
{
	size_t n = strlen(v);
	if (n == 0 || n > 32 || !isdigit((unsigned char)v[0]))
		return false;
	return strspn(v, "0123456789.") == n;
}

/* "NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.90.05  Fri May 31 ..."
 * (or "... Open Kernel Module for x86_64  550.90.05 ..."): the first token
 * after "NVRM version:" that looks like a version. */
static int proc_version_parse(char *text, char **out)
{
	char *line = strstr(text, "NVRM version:");
	if (!line)
		return -EINVAL;
	line += strlen("NVRM version:");
	char *nl = strchr(line, '\n');
	if (nl)
		*nl = '\0';
	char *save = NULL;
	for (char *t = strtok_r(line, " \t", &save); t; t = strtok_r(NULL, " \t", &save))
		if (version_valid(t) && strchr(t, '.')) {
			*out = strdup(t);
			return *out ? 0 : -ENOMEM;
		}
	return -EINVAL;
}

int vgm_driver_version(vgm_host *h, char **out, vgm_error *err)
{
	_cleanup_free_ char *mod_p = vgm_path(h->root, "/sys/module/nvidia/version");
	_cleanup_free_ char *proc_p = vgm_path(h->root, "/proc/driver/nvidia/version");
	_cleanup_free_ char *v = NULL;
	if (!mod_p || !proc_p)
		return vgm_error_set(err, ENOMEM, "out of memory");
	int r = vgm_read_attr(mod_p, &v);
	if (r == 0 && version_valid(v)) {
		*out = TAKE_PTR(v);
		return 0;
	}
	_cleanup_free_ char *text = NULL;
	r = vgm_read_file(proc_p, 64 * 1024, &text, NULL);
	if (r == -ENOENT)
		return vgm_error_setr(err, ENOENT, "no_driver",
				      "no NVIDIA driver version under %s (neither "
				      "sys/module/nvidia/version nor proc/driver/nvidia/version); is "
				      "the nvidia vGPU host driver loaded?", h->root);
	if (r < 0)
		return vgm_error_setr(err, -r, "sysfs_error", "cannot read %s: %s", proc_p,
				      strerror(-r));
	r = proc_version_parse(text, out);
	if (r == -EINVAL)
		return vgm_error_setr(err, EINVAL, "no_driver",
				      "%s has no 'NVRM version:' line with a version number", proc_p);
	return r < 0 ? vgm_error_set(err, -r, "out of memory") : 0;
}
