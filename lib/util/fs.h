/* fs.h: small file helpers and root-relative paths.
 *
 * Every sysfs or /proc path the project touches is built by vgm_path() from a
 * configurable root ("/" on a real host, an emulator mount in tests), so no
 * code names /sys directly.  All fds are O_CLOEXEC. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "error.h"

/* Format a path and prefix it with root ("/" or NULL means none).  Returns a
 * malloc'd string or NULL on allocation failure. */
char *vgm_path(const char *root, const char *fmt, ...) _printf_(2, 3);

/* Read a whole file, refusing (EFBIG) anything larger than max bytes.  The
 * buffer is NUL-terminated; *len (optional) excludes the NUL. */
int vgm_read_file(const char *path, size_t max, char **out, size_t *len);
/* Read a small file and strip trailing whitespace (sysfs attribute style). */
int vgm_read_attr(const char *path, char **out);
/* Parse a sysfs attribute as an unsigned decimal. */
int vgm_read_attr_u64(const char *path, unsigned long long *out);
/* Write a string to an existing file in one write(2), as sysfs expects. */
int vgm_write_attr(const char *path, const char *value);
/* Read all of an fd (pipe or stdin) up to max bytes; EFBIG beyond. */
int vgm_read_fd(int fd, size_t max, char **out, size_t *len);
/* Basename of a symlink's target (e.g. mdev_type -> "nvidia-471"). */
int vgm_readlink_base(const char *path, char **out);
bool vgm_exists(const char *path);
