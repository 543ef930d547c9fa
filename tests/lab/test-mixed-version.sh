#!/bin/bash
# tests/lab/test-mixed-version.sh: a rolling upgrade in the two-host lab, in TAP.
# hostA's agent speaks the previous release's protocol (VGPUMIG_TEST_PROTOCOL=1:
# its facts, the header it sends and what it accepts are protocol 1 only) while
# hostB speaks this release's 1-2, and the VM "demo" (one emulated vGPU) is
# live-migrated A->B and back with `vgpumig migrate` (test-migrate-e2e.sh's
# roundtrip1: no lost guest write, B's claim committed and named in its XML,
# B's devices released after the way back).
#
#   previous-protocol   hostA speaks 1 (facts, log), hostB 1-2
#   check               A's POST /v1/check against hostB passes the protocol check
#   roundtrip           demo A->B->A across the two versions
#
# VGPUMIG_LAB_REUSE=1 uses a lab that is already up (and leaves it up, with
# hostA's agent back on this build's protocol).
set -uo pipefail

LAB_SRC=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)
LAB=$LAB_SRC/lab
# shellcheck source=lib.sh
. "$LAB_SRC/lib.sh"
export VGPUMIG_BUILD=${VGPUMIG_BUILD:-$LAB_SRC/../../build}
VGPUMIG_BUILD=$(realpath "$VGPUMIG_BUILD")
REUSE=${VGPUMIG_LAB_REUSE:-0}
if [ "$REUSE" != 1 ]; then
	export VGPUMIG_LAB_DIR=${VGPUMIG_LAB_DIR:-$(mktemp -d /tmp/vgpumig-lab.XXXXXX)}
fi
CLI=$VGPUMIG_BUILD/cli/vgpumig
TMP=$(mktemp -d /tmp/vgpumig-mixed.XXXXXX)
LAB_IS_UP=0

restart_agent_a() { # restart_agent_a [ENV=VALUE]: hostA's agent, with the environment given
	"$LAB" agent-stop A >/dev/null 2>&1
	env "$@" "$LAB" agent-start A
}

cleanup() {
	if [ "$LAB_IS_UP" = 1 ]; then
		if [ "$REUSE" = 1 ]; then restart_agent_a >/dev/null 2>&1; else "$LAB" down >/dev/null 2>&1; fi
	fi
	rm -rf "$TMP"
	[ "$REUSE" != 1 ] && rmdir "${VGPUMIG_LAB_DIR:-/nonexistent}" 2>/dev/null
	return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

json() { python3 -c "import json,sys; j=json.load(open(sys.argv[1])); print($2)" "$1"; }

need_lab() {
	[ "$LAB_IS_UP" = 1 ] && return 0
	if [ "$REUSE" = 1 ] && "$LAB" status >/dev/null 2>&1; then
		LAB_IS_UP=1
	else
		echo "  lab up"
		"$LAB" up 2>&1 | sed 's/^/    /'
		[ "${PIPESTATUS[0]}" = 0 ] || return 1
		LAB_IS_UP=1
	fi
	lab_env_load
	[ "$LAB_AGENT_A" = 1 ] && [ "$LAB_HOOK_A" = 1 ] && [ "$LAB_VGPU_B" = 1 ] ||
		{ echo "  this test needs the emulator, agents and hook in $VGPUMIG_BUILD"; return 1; }
}

scenario_previous_protocol() {
	local ok=0
	need_lab || return 1
	restart_agent_a VGPUMIG_TEST_PROTOCOL=1 || return 1
	"$LAB" on A "$CLI" host --json >"$TMP/a.json" || return 1
	"$LAB" on B "$CLI" host --json >"$TMP/b.json" || return 1
	echo "  hostA: protocol $(json "$TMP/a.json" "j['protocol_oldest'], j['protocol_version']")"
	echo "  hostB: protocol $(json "$TMP/b.json" "j['protocol_oldest'], j['protocol_version']")"
	[ "$(json "$TMP/a.json" "j['protocol_oldest'], j['protocol_version']")" = "1 1" ] || ok=1
	[ "$(json "$TMP/b.json" "j['protocol_oldest'], j['protocol_version']")" = "1 2" ] || ok=1
	grep -q "VGPUMIG_TEST_PROTOCOL: speaking protocol 1-1" "$(host_root A)/var/log/vgpumigd.log" ||
		{ echo "  hostA's log does not say it speaks protocol 1"; ok=1; }
	return $ok
}

# POST /v1/check on A (curl: a loaded lab machine can take longer than the
# CLI's 10 s limit to measure and ask B).
scenario_check() {
	need_lab || return 1
	"$LAB" on A curl -s --max-time 120 --unix-socket /run/vgpumig/vgpumigd.sock \
		-H 'Content-Type: application/json' -d '{"domain":"demo","to":"hostB"}' \
		http://x/v1/check >"$TMP/check.json" 2>"$TMP/check.err"
	json "$TMP/check.json" "'\\n'.join('  %s %s %s: %s' % (c['name'], c['host'], c['code'], c['message']) for c in j['checks'] if c['name'] == 'protocol')" 2>/dev/null ||
		{ echo "  no check output: $(cat "$TMP/check.json" "$TMP/check.err")"; return 1; }
	[ "$(json "$TMP/check.json" "[c['code'] for c in j['checks'] if c['name'] == 'protocol']")" = "['ok', 'ok']" ] &&
		grep -q "hostB speaks vgpumig protocol 1; hostA uses 1" "$TMP/check.json" ||
		{ echo "  the protocol checks did not pass as expected"; return 1; }
}

scenario_roundtrip() {
	need_lab || return 1
	VGPUMIG_LAB_REUSE=1 "$LAB_SRC/test-migrate-e2e.sh" roundtrip1 >"$TMP/rt.out" 2>&1
	local rc=$?
	sed 's/^/  /' "$TMP/rt.out"
	return $rc
}

ALL=(previous_protocol check roundtrip)
echo "1..${#ALL[@]}"
n=0 failed=0
for s in "${ALL[@]}"; do
	n=$((n + 1))
	"scenario_$s" >"$TMP/scenario.out" 2>&1
	rc=$?
	sed 's/^/# /' "$TMP/scenario.out"
	if [ "$rc" = 0 ]; then echo "ok $n - $s"; else echo "not ok $n - $s"; failed=1; fi
done
exit $failed
