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

/* A point in time for people, relative to now (both unix seconds):
 * "in 42 s", "in 4 min", "3 min ago" within an hour, else ISO 8601 UTC
 * "2026-12-05T07:30:00Z"; t <= 0 (never / not set) -> "-".  Returns buf. */
const char *vgm_format_when(int64_t t, int64_t now, char *buf, size_t n);
/* The vGPU part of a progress line.  transferred < 0: libvirt does not
 * report vfio_data_transferred, so say what moves at switchover:
 *   "vGPU 1 (2.0 GiB of 4.0 GiB sent)"   "vGPU 1 (4.0 GiB at switchover)"
 *   "no vGPU" when count is 0.  Returns buf. */
const char *vgm_format_vgpu_progress(unsigned count, uint64_t framebuffer_bytes,
				     int64_t transferred, char *buf, size_t n);
/* Percent (0-100) of a migration sent for the progress bar: RAM, plus the
 * vGPU's state when libvirt reports it (vgpu_sent >= 0; re-sent dirty state
 * never counts past the framebuffer).  0 while nothing is known. */
int vgm_progress_percent(uint64_t ram_total, uint64_t ram_remaining, uint64_t vgpu_bytes,
			 int64_t vgpu_sent);
