/* public-internal.h: helpers shared by the two halves of the public API
 * (public-local.c, public-client.c); not installed, not exported. */
#pragma once

#include <jansson.h>

#include "util/error.h"
#include "vgpumig/vgpumig.h"

/* Copy an internal error into the public one; returns r. */
int public_error_from(vgpumig_error *out, const vgm_error *in, int r);
/* Fill the public error directly; returns -code. */
int public_error_set(vgpumig_error *out, int code, const char *reason, const char *message);
/* Consume j; *out (when out is not NULL) gets its compact JSON text. */
int public_dump(json_t *j, char **out, vgpumig_error *err);
