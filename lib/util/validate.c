/* validate.c: see validate.h. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "validate.h"

bool vgm_uuid_valid(const char *s)
{
	if (!s || strlen(s) != VGM_UUID_LEN)
		return false;
	for (size_t i = 0; i < VGM_UUID_LEN; i++) {
		bool dash = i == 8 || i == 13 || i == 18 || i == 23;
		if (dash ? s[i] != '-' : !isxdigit((unsigned char)s[i]))
			return false;
	}
	return true;
}

bool vgm_pci_addr_valid(const char *s)
{
	/* dddd:bb:ss.f, function 0-7, slot 00-1f */
	static const char shape[] = "xxxx:xx:xx.x";
	if (!s || strlen(s) != sizeof(shape) - 1)
		return false;
	for (size_t i = 0; shape[i]; i++) {
		if (shape[i] == 'x' ? !isxdigit((unsigned char)s[i]) : s[i] != shape[i])
			return false;
	}
	unsigned slot = 0;
	if (sscanf(s + 8, "%2x", &slot) != 1 || slot > 0x1f || s[11] < '0' || s[11] > '7')
		return false;
	return true;
}

bool vgm_name_valid(const char *s)
{
	if (!s || !s[0] || strlen(s) > 128 || STREQ(s, ".") || STREQ(s, ".."))
		return false;
	for (const char *p = s; *p; p++) {
		unsigned char c = (unsigned char)*p;
		if (!isalnum(c) && c != '_' && c != '-' && c != '.' && c != ':')
			return false;
	}
	return true;
}

void vgm_id_normalize(const char *in, char *out, size_t outsz)
{
	size_t i = 0;
	for (; in[i] && i + 1 < outsz; i++)
		out[i] = (char)tolower((unsigned char)in[i]);
	if (outsz)
		out[i] = '\0';
}

int vgm_uuid_generate(char out[VGM_UUID_LEN + 1])
{
	unsigned char b[16];
	size_t got = 0;
	while (got < sizeof(b)) {
		ssize_t k = getrandom(b + got, sizeof(b) - got, 0);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		got += (size_t)k;
	}
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
	snprintf(out, VGM_UUID_LEN + 1,
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
		 b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
		 b[15]);
	return 0;
}

/* Outside input is echoed in messages: keep it on one line and short. */
static const char *printable(const char *s, char *buf, size_t size)
{
	size_t i = 0;
	for (; s && s[i] && i + 1 < size; i++) {
		unsigned char c = (unsigned char)s[i];
		buf[i] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
	}
	buf[i] = '\0';
	return buf;
}

int vgm_check_uuid(const char *what, const char *s, vgm_error *err)
{
	char shown[65];
	if (vgm_uuid_valid(s))
		return 0;
	return vgm_error_setr(err, EINVAL, "invalid_id",
			      "%s '%s' is not a UUID; give 36 characters like "
			      "c2177883-f1bb-47f0-914d-32a22e3a8804",
			      what, printable(s, shown, sizeof(shown)));
}

int vgm_check_pci_addr(const char *what, const char *s, vgm_error *err)
{
	char shown[65];
	if (vgm_pci_addr_valid(s))
		return 0;
	return vgm_error_setr(err, EINVAL, "invalid_id",
			      "%s '%s' is not a PCI address; give domain:bus:slot.function "
			      "like 0000:41:00.4",
			      what, printable(s, shown, sizeof(shown)));
}

int vgm_check_name(const char *what, const char *s, vgm_error *err)
{
	char shown[65];
	if (vgm_name_valid(s))
		return 0;
	return vgm_error_setr(err, EINVAL, "invalid_name",
			      "%s '%s' is not a valid sysfs name; use letters, digits, '_', "
			      "'-', '.' or ':' only (no '/' or '..')",
			      what, printable(s, shown, sizeof(shown)));
}
