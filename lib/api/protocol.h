/* protocol.h: the peer protocol's version range, for rolling upgrades.
 *
 * An agent speaks its own protocol version and the one before
 * (VGM_PROTOCOL_OLDEST..VGM_PROTOCOL_VERSION), so while a fleet is upgraded one
 * host at a time, hosts one release apart still migrate to each other.  Every
 * request carries the sender's range in the Vgpumig-Protocol header
 * ("OLDEST-NEWEST", or one number); a request without it comes from a release
 * before protocol 2, which spoke 1 only.  The receiver refuses a range that
 * does not overlap its own with both ranges named, and otherwise the two use
 * the highest version both speak (the "common" version).  GET /v1/host answers
 * the common version as protocol_version, so an older peer that compares it
 * for equality still sees its own.  docs/upgrades.md is the operator's view. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "util/error.h"

#define VGM_PROTOCOL_VERSION 2 /* what this build speaks natively */
#define VGM_PROTOCOL_OLDEST 1  /* and the one before: the previous release's */
#define VGM_PROTOCOL_HEADER "Vgpumig-Protocol"
#define VGM_PROTOCOL_MAX 1000000

typedef struct vgm_protocol_range {
	unsigned oldest, newest; /* 1 <= oldest <= newest */
} vgm_protocol_range;

/* This build's range. */
vgm_protocol_range vgm_protocol_native(void);
/* The range a build speaking `newest` natively accepts: newest and the one
 * before.  newest outside this build's range is -EINVAL with the fix named
 * (the test switch VGPUMIG_TEST_PROTOCOL uses this). */
int vgm_protocol_for(unsigned newest, vgm_protocol_range *out, vgm_error *err);
/* Parse a header value; NULL (no header) is the pre-2 range 1-1. */
int vgm_protocol_parse(const char *value, vgm_protocol_range *out, vgm_error *err);
/* "2" or "1-2", for headers and messages. */
void vgm_protocol_format(vgm_protocol_range r, char *buf, size_t n);
/* The highest version both speak; 0 when the ranges do not overlap. */
unsigned vgm_protocol_common(vgm_protocol_range a, vgm_protocol_range b);
/* 0 when peer overlaps self, else -EPROTO with reason "protocol_unsupported"
 * and a sentence naming both hosts' versions and the fix. */
int vgm_protocol_accept(vgm_protocol_range self, const char *self_name, vgm_protocol_range peer,
			const char *peer_name, vgm_error *err);
