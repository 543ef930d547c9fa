/* limit.h: one value type for an optional limit (max downtime, bandwidth,
 * timeout, ...), carried unchanged from the wire to the controller.
 *
 * Modelled on libvirt's qemuMigrationParamValue: "not given" is its own
 * state, never a magic 0, so "no --max-downtime" and "--max-downtime 0"
 * cannot be confused anywhere on the way. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

typedef struct vgm_limit {
	bool set;       /* the operator (or config) gave a value */
	uint64_t value; /* unit fixed by the field's name: _ms, _bps, _bytes */
} vgm_limit;

#define VGM_LIMIT_UNSET ((vgm_limit){ .set = false, .value = 0 })

static inline vgm_limit vgm_limit_of(uint64_t value)
{
	return (vgm_limit){ .set = true, .value = value };
}

/* The value, or fallback when not set. */
static inline uint64_t vgm_limit_or(vgm_limit l, uint64_t fallback)
{
	return l.set ? l.value : fallback;
}
