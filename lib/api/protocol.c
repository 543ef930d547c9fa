/* protocol.c: see protocol.h.  Pure functions over version ranges: no I/O, so
 * the agent's request check, the client's header and the compat check all
 * agree on one definition of "compatible". */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/protocol.h"

vgm_protocol_range vgm_protocol_native(void)
{
	return (vgm_protocol_range){ VGM_PROTOCOL_OLDEST, VGM_PROTOCOL_VERSION };
}

int vgm_protocol_for(unsigned newest, vgm_protocol_range *out, vgm_error *err)
{
	if (newest < VGM_PROTOCOL_OLDEST || newest > VGM_PROTOCOL_VERSION)
		return vgm_error_setr(err, EINVAL, "invalid_config",
				      "protocol version %u is not one this vgpumig speaks (%u to %u)",
				      newest, VGM_PROTOCOL_OLDEST, VGM_PROTOCOL_VERSION);
	*out = (vgm_protocol_range){ newest > 1 ? newest - 1 : 1, newest };
	return 0;
}

static int parse_number(const char *s, char **end, unsigned *out)
{
	unsigned long v;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoul(s, end, 10);
	if (errno || v < 1 || v > VGM_PROTOCOL_MAX)
		return -EINVAL;
	*out = (unsigned)v;
	return 0;
}

int vgm_protocol_parse(const char *value, vgm_protocol_range *out, vgm_error *err)
{
	vgm_protocol_range r;
	char *end;

	if (!value) {
		*out = (vgm_protocol_range){ 1, 1 };
		return 0;
	}
	if (parse_number(value, &end, &r.oldest) < 0)
		goto bad;
	r.newest = r.oldest;
	if (*end == '-' && parse_number(end + 1, &end, &r.newest) < 0)
		goto bad;
	if (*end || r.newest < r.oldest)
		goto bad;
	*out = r;
	return 0;
bad:
	return vgm_error_setr(err, EINVAL, "invalid_request",
			      "header %s: '%.32s' is not a protocol version or range like 1-2",
			      VGM_PROTOCOL_HEADER, value);
}

void vgm_protocol_format(vgm_protocol_range r, char *buf, size_t n)
{
	if (r.oldest == r.newest)
		snprintf(buf, n, "%u", r.newest);
	else
		snprintf(buf, n, "%u-%u", r.oldest, r.newest);
}

unsigned vgm_protocol_common(vgm_protocol_range a, vgm_protocol_range b)
{
	unsigned hi = a.newest < b.newest ? a.newest : b.newest;
	unsigned lo = a.oldest > b.oldest ? a.oldest : b.oldest;

	return hi >= lo ? hi : 0;
}

int vgm_protocol_accept(vgm_protocol_range self, const char *self_name, vgm_protocol_range peer,
			const char *peer_name, vgm_error *err)
{
	char s[32], p[32];
	const char *older;

	if (vgm_protocol_common(self, peer))
		return 0;
	vgm_protocol_format(self, s, sizeof(s));
	vgm_protocol_format(peer, p, sizeof(p));
	older = peer.newest < self.oldest ? peer_name : self_name;
	return vgm_error_setr(err, EPROTO, "protocol_unsupported",
			      "%s speaks vgpumig protocol %s; %s speaks %s; hosts must be at most one "
			      "release apart: upgrade %s first",
			      peer_name, p, self_name, s, older);
}
