/* units.h: the units operators type and read (durations, bandwidths, sizes).
 *
 * Suffixes are binary: K = KiB, M = MiB, G = GiB, T = TiB (so "100M" is
 * 100 * 2^20 bytes/s; "100MB" and "100MiB" mean the same).  libvirt takes
 * migration bandwidth in MiB/s, which is why binary is the natural choice.
 * Durations: "500ms", "2s", "1m", "1h"; a bare number is milliseconds. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "util/error.h"

/* "2s" -> 2000.  -EINVAL (reason "bad_duration") for garbage, negatives, overflow. */
int vgm_parse_duration_ms(const char *s, uint64_t *ms, vgm_error *err);
/* "100M" -> 104857600 bytes/s; a bare number is bytes/s.  reason "bad_bandwidth". */
int vgm_parse_bandwidth_bps(const char *s, uint64_t *bps, vgm_error *err);

/* "40.0 MiB", "512 B", "1.5 GiB" into buf; returns buf. */
const char *vgm_format_bytes(uint64_t bytes, char *buf, size_t n);
/* "250 ms", "2.4 s", "3m05s" into buf; negative -> "never"; returns buf. */
const char *vgm_format_seconds(double s, char *buf, size_t n);
