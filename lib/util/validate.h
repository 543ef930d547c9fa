/* validate.h: checks for identifiers that come from outside (CLI, API, XML,
 * sysfs names) before any path is built from them.  Canonical forms only:
 * a UUID is 36 lowercase-or-uppercase hex chars with dashes at 8-4-4-4-12; a
 * PCI address is dddd:bb:ss.f in hex; a sysfs name component has no '/', is
 * not "." or "..", and uses [A-Za-z0-9_.:-] only. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "error.h"

#define VGM_UUID_LEN 36

bool vgm_uuid_valid(const char *s);
bool vgm_pci_addr_valid(const char *s);
bool vgm_name_valid(const char *s);
/* Lowercase copy of a UUID or PCI address into out (at least 37 bytes). */
void vgm_id_normalize(const char *in, char *out, size_t outsz);
/* A random (version 4) UUID, lowercase, NUL-terminated. */
int vgm_uuid_generate(char out[VGM_UUID_LEN + 1]);

/* Return 0 or fill err with a message naming what (e.g. "type id") and the fix. */
int vgm_check_uuid(const char *what, const char *s, vgm_error *err);
int vgm_check_pci_addr(const char *what, const char *s, vgm_error *err);
int vgm_check_name(const char *what, const char *s, vgm_error *err);
