/* version.c: dotted version numbers as the checks compare them.
 *
 * Only the leading "major[.minor[.micro]]" counts, so distribution kernels
 * ("6.1.0-27-amd64", "5.14.0-427.13.1.el9_4.x86_64") and release candidates
 * compare by their upstream base.  Missing parts are 0 ("5.18" == "5.18.0"). */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "compat/compat.h"

int vgm_version_parse(const char *s, unsigned v[3])
{
	v[0] = v[1] = v[2] = 0;
	if (!s || !isdigit((unsigned char)s[0]))
		return -EINVAL;
	for (int i = 0; i < 3; i++) {
		unsigned long x = 0;
		int digits = 0;
		while (isdigit((unsigned char)*s)) {
			x = x * 10 + (unsigned long)(*s++ - '0');
			if (++digits > 9)
				return -EINVAL;
		}
		v[i] = (unsigned)x;
		if (*s != '.' || !isdigit((unsigned char)s[1]))
			break;
		s++;
	}
	return 0;
}

int vgm_version_cmp(const char *a, const char *b)
{
	unsigned va[3], vb[3];
	bool oka = vgm_version_parse(a, va) == 0, okb = vgm_version_parse(b, vb) == 0;
	if (!oka || !okb)
		return (int)oka - (int)okb;
	for (int i = 0; i < 3; i++)
		if (va[i] != vb[i])
			return va[i] < vb[i] ? -1 : 1;
	return 0;
}

char *vgm_version_format(unsigned long long v, char *buf, size_t n)
{
	snprintf(buf, n, "%llu.%llu.%llu", v / 1000000, (v / 1000) % 1000, v % 1000);
	return buf;
}
