/* device-internal.h: pieces shared by the files of lib/device, not public API. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "device/device.h"

struct vgm_host {
	char *root; /* sysfs root: "/" on a real host, any directory in tests */
	vgm_inventory_source source; /* NULL: vgm_inventory_load scans sysfs */
	void *source_ctx;
};

/* Grow *arr by one zeroed element of elsize bytes; returns it or NULL. */
void *vgm_array_push(void **arr, size_t *n, size_t elsize);
/* Names in a directory that pass keep(); a missing directory is empty. */
int vgm_dir_list(const char *path, bool (*keep)(const char *), char ***out, size_t *n);

/* Append a parent with its address and physfn set (inventory.c). */
int vgm_parent_add(vgm_host *h, vgm_inventory *inv, const char *addr, vgm_backend b,
		   vgm_parent **out);

/* VF backend (vf.c). */
int vgm_vf_parent_load(vgm_host *h, vgm_inventory *inv, const char *addr);
int vgm_vf_instances_load(vgm_inventory *inv);
/* Append the instance a VF holding type_id is (id and parent: the VF). */
int vgm_vf_instance_push(vgm_inventory *inv, const char *vf, const char *type_id);
/* Parse creatable_vgpu_types text into {id, name} pairs, skipping header and
 * malformed lines. */
int vgm_vf_parse_creatable(const char *text, vgm_kv **out, size_t *n);
void vgm_kv_array_free(vgm_kv *kv, size_t n);
/* Read a VF's current_vgpu_type (0 = none).  -ENOENT when the VF has no
 * NVIDIA vGPU interface. */
int vgm_vf_current_type(const vgm_host *h, const char *vf, unsigned long long *out);
