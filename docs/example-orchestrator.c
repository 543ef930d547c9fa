/* example-orchestrator.c: what an orchestrator does with libvgpumig's public API.
 *
 *   cc -o example-orchestrator example-orchestrator.c $(pkg-config --cflags --libs vgpumig)
 *   ./example-orchestrator SOCKET SYSFS_ROOT DOMAIN.xml SRC_UUID DST_UUID
 *
 * It walks the whole surface once, as a scheduler placing a VM would: this host's
 * inventory, the domain's vGPUs, the destination XML for a chosen target vGPU, a
 * plan, the pre-checks from the agent's facts, then a claim on the agent, the
 * lifecycle events that commit and end it, and a refused bad id.  Each step prints
 * one line; the exit status is 0 only when every step did what it should.
 * (A real orchestrator parses the JSON with its own library; this example stays
 * dependency-free and only looks for a key or two with strstr.) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vgpumig/vgpumig.h>

static int fail(const char *step, const vgpumig_error *e)
{
	fprintf(stderr, "example: %s: %s (%s)\n", step, e->message, e->reason);
	return 1;
}

static char *read_all(const char *path, size_t *len)
{
	FILE *f = fopen(path, "re");
	char *buf = NULL;
	long n;

	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
	    (buf = malloc((size_t)n + 1)) && fread(buf, 1, (size_t)n, f) == (size_t)n) {
		buf[n] = '\0';
		*len = (size_t)n;
	} else {
		free(buf);
		buf = NULL;
	}
	fclose(f);
	return buf;
}

/* The value of "key":"..." in a JSON text, copied into out. */
static int json_string_field(const char *json, const char *key, char *out, size_t n)
{
	char pat[64];
	const char *p, *end;

	snprintf(pat, sizeof(pat), "\"%s\":\"", key);
	if (!(p = strstr(json, pat)) || !(end = strchr(p += strlen(pat), '"')) ||
	    (size_t)(end - p) >= n)
		return -1;
	memcpy(out, p, (size_t)(end - p));
	out[end - p] = '\0';
	return 0;
}

static int local_steps(const char *sysfs, const char *xml, size_t len, const char *src,
		       const char *dst)
{
	vgpumig_error e;
	char *types = NULL, *info = NULL, *out = NULL;
	const char *srcs[] = { src }, *dsts[] = { dst };
	unsigned oldest, newest;

	vgpumig_protocol_range(&oldest, &newest);
	printf("library %s, peer protocol %u..%u\n", vgpumig_version(), oldest, newest);
	if (vgpumig_inventory(sysfs, NULL, &types, &e) < 0)
		return fail("inventory", &e);
	printf("inventory: %s\n", strstr(types, "\"name\"") ? "vGPU types found" : "no vGPU types");
	vgpumig_free(types);
	if (vgpumig_domxml_inspect(xml, len, &info, &e) < 0)
		return fail("inspect", &e);
	printf("inspect: %s\n", strstr(info, src) ? "the domain has the source vGPU" : info);
	vgpumig_free(info);
	if (vgpumig_domxml_rewrite(xml, len, srcs, dsts, 1, 0, &out, &e) < 0)
		return fail("rewrite", &e);
	printf("rewrite: %s\n", strstr(out, dst) && !strstr(out, src) ? "target vGPU in place" : out);
	vgpumig_free(out);

	vgpumig_plan_input in = { .ram_bytes = 4ull << 30, .vgpu_state_bytes = 4ull << 30,
				  .bandwidth_bps = 1250000000, .dirty_bps = 50000000,
				  .max_downtime_ms = 10000 };
	vgpumig_plan p;
	if (vgpumig_plan_compute(&in, &p, &e) < 0)
		return fail("plan", &e);
	printf("plan: %s, total %.0f ms, downtime %.0f ms\n", p.verdict, p.total_ms, p.downtime_ms);
	return 0;
}

static int agent_steps(vgpumig_client *c, const char *xml, size_t len, const char *src)
{
	vgpumig_error e;
	char *facts = NULL, *checks = NULL, *claim = NULL, *claims = NULL, req[512], id[128];
	int failed;

	if (vgpumig_client_host(c, &facts, &e) < 0)
		return fail("host facts", &e);
	failed = vgpumig_check(facts, facts, xml, len, &checks, &e);
	vgpumig_free(facts);
	if (failed < 0)
		return fail("check", &e);
	printf("check: %d failed (%s)\n", failed, strstr(checks, "\"viommu\"") ? "domain checked" : checks);
	vgpumig_free(checks);

	snprintf(req, sizeof(req),
		 "{\"migration_id\":\"example-1\",\"domain_uuid\":\"6a1e0cbb-0000-4000-8000-0000000e0001\","
		 "\"domain_name\":\"example-vm\",\"source_host\":\"elsewhere\",\"devices\":[{\"source_id\":"
		 "\"%s\",\"kind\":\"mdev\",\"profile_name\":\"NVIDIA A100-4C\"}]}", src);
	if (vgpumig_client_claim(c, req, &claim, &e) < 0)
		return fail("claim", &e);
	if (json_string_field(claim, "claim_id", id, sizeof(id)) < 0)
		return fail("claim", &(vgpumig_error){ .message = "reply without claim_id" });
	printf("claim: %s held\n", id);
	vgpumig_free(claim);
	if (vgpumig_client_event(c, "example-vm", "6a1e0cbb-0000-4000-8000-0000000e0001", "started",
				 "begin", &e) < 0)
		return fail("event started", &e);
	if (vgpumig_client_claims(c, &claims, &e) < 0)
		return fail("claims", &e);
	printf("claims: %s\n", strstr(claims, "\"committed\"") ? "committed after start" : claims);
	vgpumig_free(claims);
	if (vgpumig_client_event(c, "example-vm", "6a1e0cbb-0000-4000-8000-0000000e0001", "release",
				 "end", &e) < 0)
		return fail("event release", &e);
	printf("event: released on domain end\n");
	if (vgpumig_client_claim_release(c, "../etc", &e) == 0)
		return fail("bad id", &(vgpumig_error){ .message = "a path trick was accepted" });
	printf("bad id refused: %s\n", e.message);
	return 0;
}

int main(int argc, char **argv)
{
	vgpumig_client *c = NULL;
	vgpumig_error e;
	size_t len = 0;
	char *xml;
	int r;

	if (argc != 6) {
		fprintf(stderr, "usage: %s SOCKET SYSFS_ROOT DOMAIN.xml SRC_UUID DST_UUID\n", argv[0]);
		return 2;
	}
	if (!(xml = read_all(argv[3], &len))) {
		fprintf(stderr, "example: cannot read %s\n", argv[3]);
		return 1;
	}
	r = local_steps(argv[2], xml, len, argv[4], argv[5]);
	if (r == 0 && vgpumig_client_open_unix(argv[1], &c, &e) < 0)
		r = fail("connect", &e);
	if (r == 0) /* a claim may create a vGPU: give a busy host time */
		vgpumig_client_set_timeout(c, 0, 60000);
	if (r == 0)
		r = agent_steps(c, xml, len, argv[4]);
	vgpumig_client_close(c);
	free(xml);
	return r;
}
