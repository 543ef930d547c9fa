/* units.c: see units.h.  Parsing is strict: one number, one known suffix,
 * nothing after it, no sign, no overflow. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "units.h"

#define VGM_MIB_ (1024.0 * 1024.0)

/* Split "12.5ms" into 12.5 and "ms".  Returns 0 or -EINVAL. */
static int split_number(const char *s, double *num, const char **suffix)
{
	if (!s || !isdigit((unsigned char)s[0]))
		return -EINVAL;
	char *end = NULL;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || !isfinite(v) || v < 0)
		return -EINVAL;
	*num = v;
	*suffix = end;
	return 0;
}

int vgm_parse_duration_ms(const char *s, uint64_t *ms, vgm_error *err)
{
	static const struct { const char *sfx; double mult; } units[] = {
		{ "", 1 }, { "ms", 1 }, { "s", 1000 }, { "m", 60000 }, { "min", 60000 }, { "h", 3600000 },
	};
	double v;
	const char *sfx;
	if (split_number(s, &v, &sfx) == 0)
		for (size_t i = 0; i < ARRAY_SIZE(units); i++)
			if (strcasecmp(sfx, units[i].sfx) == 0 && v * units[i].mult < 1e15) {
				*ms = (uint64_t)llround(v * units[i].mult);
				return 0;
			}
	return vgm_error_setr(err, EINVAL, "bad_duration",
			      "'%s' is not a duration; use a number with ms, s, m or h (e.g. 500ms, 2s, 1m)",
			      s ? s : "");
}

int vgm_parse_bandwidth_bps(const char *s, uint64_t *bps, vgm_error *err)
{
	static const struct { const char *sfx; double mult; } units[] = {
		{ "", 1 }, { "B", 1 },
		{ "K", 1024.0 }, { "KB", 1024.0 }, { "KiB", 1024.0 },
		{ "M", VGM_MIB_ }, { "MB", VGM_MIB_ }, { "MiB", VGM_MIB_ },
		{ "G", VGM_MIB_ * 1024 }, { "GB", VGM_MIB_ * 1024 }, { "GiB", VGM_MIB_ * 1024 },
		{ "T", VGM_MIB_ * 1048576 }, { "TB", VGM_MIB_ * 1048576 }, { "TiB", VGM_MIB_ * 1048576 },
	};
	double v;
	const char *sfx;
	if (split_number(s, &v, &sfx) == 0) {
		/* "/s" may follow the unit: "100M/s" */
		char unit[8] = "";
		size_t n = strcspn(sfx, "/");
		if (n < sizeof(unit) && (sfx[n] == '\0' || strcasecmp(sfx + n, "/s") == 0)) {
			memcpy(unit, sfx, n);
			unit[n] = '\0';
			for (size_t i = 0; i < ARRAY_SIZE(units); i++)
				if (strcasecmp(unit, units[i].sfx) == 0 && v * units[i].mult >= 1 &&
				    v * units[i].mult < 1.8e19) {
					*bps = (uint64_t)llround(v * units[i].mult);
					return 0;
				}
		}
	}
	return vgm_error_setr(err, EINVAL, "bad_bandwidth",
			      "'%s' is not a bandwidth; use bytes/s with a binary suffix K, M, G (e.g. 100M = 100 MiB/s)",
			      s ? s : "");
}

const char *vgm_format_bytes(uint64_t bytes, char *buf, size_t n)
{
	static const char *const names[] = { "KiB", "MiB", "GiB", "TiB", "PiB" };
	if (bytes < 1024) {
		snprintf(buf, n, "%llu B", (unsigned long long)bytes);
		return buf;
	}
	double v = (double)bytes / 1024.0;
	size_t i = 0;
	while (v >= 1024.0 && i + 1 < ARRAY_SIZE(names)) {
		v /= 1024.0;
		i++;
	}
	snprintf(buf, n, "%.1f %s", v, names[i]);
	return buf;
}

const char *vgm_format_seconds(double s, char *buf, size_t n)
{
	if (s < 0 || !isfinite(s))
		snprintf(buf, n, "never");
	else if (s < 1.0)
		snprintf(buf, n, "%.0f ms", s * 1000.0);
	else if (s < 120.0)
		snprintf(buf, n, "%.1f s", s);
	else {
		unsigned long t = (unsigned long)llround(s);
		if (t < 3600)
			snprintf(buf, n, "%lum%02lus", t / 60, t % 60);
		else
			snprintf(buf, n, "%luh%02lum", t / 3600, (t % 3600) / 60);
	}
	return buf;
}

/* "in 4 min" / "4 min ago" for |d| < 1 h, which is what leases and recent
 * events are; beyond that an absolute date reads better than "in 731 min". */
const char *vgm_format_when(int64_t t, int64_t now, char *buf, size_t n)
{
	int64_t d = t - now, a = d < 0 ? -d : d;
	if (t <= 0) {
		snprintf(buf, n, "-");
		return buf;
	}
	if (a < 3600) {
		char num[32];
		if (a < 60)
			snprintf(num, sizeof(num), "%lld s", (long long)a);
		else
			snprintf(num, sizeof(num), "%lld min", (long long)((a + 30) / 60));
		if (d >= 0)
			snprintf(buf, n, "in %s", num);
		else
			snprintf(buf, n, "%s ago", num);
		return buf;
	}
	time_t tt = (time_t)t;
	struct tm tm;
	if (!gmtime_r(&tt, &tm) || strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(buf, n, "%lld", (long long)t);
	return buf;
}

const char *vgm_format_vgpu_progress(unsigned count, uint64_t framebuffer_bytes,
				     int64_t transferred, char *buf, size_t n)
{
	char a[32], b[32];
	if (count == 0)
		snprintf(buf, n, "no vGPU");
	else if (transferred >= 0)
		snprintf(buf, n, "vGPU %u (%s of %s sent)", count,
			 vgm_format_bytes((uint64_t)transferred, a, sizeof(a)),
			 vgm_format_bytes(framebuffer_bytes, b, sizeof(b)));
	else
		snprintf(buf, n, "vGPU %u (%s at switchover)", count,
			 vgm_format_bytes(framebuffer_bytes, a, sizeof(a)));
	return buf;
}

int vgm_progress_percent(uint64_t ram_total, uint64_t ram_remaining, uint64_t vgpu_bytes,
			 int64_t vgpu_sent)
{
	double total = (double)ram_total, rem = (double)MIN(ram_remaining, ram_total);
	if (vgpu_sent >= 0 && vgpu_bytes > 0) {
		total += (double)vgpu_bytes;
		rem += (uint64_t)vgpu_sent < vgpu_bytes ? (double)(vgpu_bytes - (uint64_t)vgpu_sent) : 0;
	}
	if (total <= 0)
		return 0;
	long pct = lround(100.0 * (1.0 - rem / total));
	return pct < 0 ? 0 : pct > 100 ? 100 : (int)pct;
}
