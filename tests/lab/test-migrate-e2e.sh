#!/bin/bash
# tests/lab/test-migrate-e2e.sh [SCENARIO...]: `vgpumig migrate` end to end on
# the two-host lab (real libvirt 9.0 + QEMU 10, agents, hooks, emulated
# vGPUs), reported in TAP.  Without arguments every scenario runs, in order,
# sharing one `lab up`.
#
#   roundtrip1   demo (1 vGPU) A->B->A with `vgpumig migrate`: the guest keeps
#                running with no lost write, B's XML names B's ids, B's claim
#                is committed, and after the way back B holds nothing
#   roundtrip2   the same with a VM that has two vGPUs
#   fastdirty    a guest dirtying faster than --bandwidth allows under
#                --max-downtime: refused by the plan or aborted early with the
#                reason; the VM still runs on A; nothing is left on B
#   abort        `vgpumig abort` mid-flight, then Ctrl-C (SIGINT) mid-flight:
#                VM stays on A, B's claim released
#   targetdown   B's agent stopped: refused before anything starts, VM on A
#   four         four VMs migrated at once onto exactly four free devices on B;
#                a fifth is refused cleanly
#
# VGPUMIG_LAB_REUSE=1 uses a lab that is already up (and leaves it up).
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
EMU=/run/vgpumig-lab/sysfs
TMP=$(mktemp -d /tmp/vgpumig-mig-test.XXXXXX)

LAB_IS_UP=0
BG_PIDS=()
cleanup() {
	local p
	for p in "${BG_PIDS[@]}"; do kill "$p" 2>/dev/null; done
	[ "$LAB_IS_UP" = 1 ] && [ "$REUSE" != 1 ] && "$LAB" down >/dev/null 2>&1
	rm -rf "$TMP"
	[ "$REUSE" != 1 ] && rmdir "${VGPUMIG_LAB_DIR:-/nonexistent}" 2>/dev/null
	return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

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
	if [ "$LAB_AGENT_A" != 1 ] || [ "$LAB_HOOK_A" != 1 ] || [ "$LAB_VGPU_B" != 1 ]; then
		echo "  these scenarios need the emulator, agents and hook in $VGPUMIG_BUILD"
		return 1
	fi
}

cli() {
	local h=$1
	shift
	"$LAB" on "$h" "$CLI" "$@"
}

# json FILE PYTHON-EXPR: evaluate EXPR with j = the parsed file.
json() { python3 -c "import json,sys; j=json.load(open(sys.argv[1])); print($2)" "$1"; }

# The newest claim for DOMAIN on HOST as "state target_id..." (or "none").
claim_of() {
	cli "$1" claims --json >"$TMP/claims.json" 2>/dev/null || { echo "none"; return; }
	json "$TMP/claims.json" "next((c['state'] + ' ' + ' '.join(m['target_id'] for m in c['mapping']) for c in j['claims'] if c['domain_name'] == '$2'), 'none')"
}
# Number of held claims on HOST.
held_claims() {
	cli "$1" claims --json >"$TMP/claims.json" 2>/dev/null || { echo "?"; return; }
	json "$TMP/claims.json" "sum(1 for c in j['claims'] if c['state'] == 'held')"
}
# mdev ids on HOST's emulator, sorted, one a line.
emu_ids() {
	"$LAB" on "$1" sh -c "ls $EMU/sys/bus/mdev/devices 2>/dev/null" | sort
}

# migrate SRC DST VM [options]: `vgpumig migrate` on SRC; output in $TMP/mig.out.
migrate() {
	local src=$1 dst=$2 vm=$3 t0 rc=0
	shift 3
	t0=$(date +%s.%N)
	cli "$src" migrate "$vm" --to "host$dst" "$@" >"$TMP/mig.out" 2>&1 || rc=$?
	echo "  vgpumig migrate $vm host$src -> host$dst $*: rc=$rc in $(elapsed "$t0") s: $(tail -1 "$TMP/mig.out")"
	return $rc
}

# The VM left A and runs on B with B's claim committed and named in its XML.
check_arrived() {
	local src=$1 dst=$2 vm=$3 ok=0 claim state ids xml_ids
	guest_alive "$dst" "$vm" || ok=1
	claim=$(claim_of "$dst" "$vm")
	state=${claim%% *}
	ids=$(tr ' ' '\n' <<<"${claim#* }" | sort)
	xml_ids=$(vgpus_in_xml "$dst" "$vm" | sort)
	if [ "$state" != committed ]; then
		echo "  host$dst claim for $vm: $claim (want committed)"
		ok=1
	elif [ "$ids" != "$xml_ids" ]; then
		echo "  host$dst XML ids [$(echo $xml_ids)] differ from its claim's targets [$(echo $ids)]"
		ok=1
	else
		echo "  host$dst: claim committed, XML names its ids: $(echo $xml_ids)"
	fi
	[ "$(domstate "$src" "$vm")" = "" ] || [ "$(domstate "$src" "$vm")" = "shut off" ] || {
		echo "  $vm still on host$src: $(domstate "$src" "$vm")"
		ok=1
	}
	return $ok
}

roundtrip() {
	local vm=$1 ok=0 b_ids_before b_ids_after
	need_lab || return 1
	guest_alive A "$vm" || return 1
	b_ids_before=$(emu_ids B)
	migrate A B "$vm" --max-downtime 2s || return 1
	grep -q "downtime" "$TMP/mig.out" || { echo "  no closing summary"; ok=1; }
	check_arrived A B "$vm" || ok=1
	migrate B A "$vm" --max-downtime 2s || return 1
	check_arrived B A "$vm" || ok=1
	absent B "$vm" || ok=1
	b_ids_after=$(emu_ids B)
	if [ "$b_ids_before" != "$b_ids_after" ]; then
		echo "  hostB devices before [$(echo $b_ids_before)] after [$(echo $b_ids_after)]: not released"
		ok=1
	else
		echo "  hostB released what it created (devices as before)"
	fi
	return $ok
}

scenario_roundtrip1() { roundtrip demo; }

scenario_roundtrip2() {
	need_lab || return 1
	if ! vs A dominfo duo >/dev/null 2>&1; then
		"$LAB" define A duo --vgpus 2 --memory 128 >/dev/null || return 1
	fi
	[ "$(vgpus_in_xml A duo | wc -l)" = 2 ] || { echo "  duo has no two vGPUs"; return 1; }
	roundtrip duo
}

# Nothing of VM on B, no held claim there, VM alive on A.
stayed_on_a() {
	local vm=$1 ok=0 i
	guest_alive A "$vm" || ok=1
	absent B "$vm" || ok=1
	for i in $(seq 30); do
		[ "$(held_claims B)" = 0 ] && break
		sleep 0.5
	done
	if [ "$(held_claims B)" != 0 ]; then
		echo "  hostB still holds $(held_claims B) claim(s)"
		ok=1
	else
		echo "  hostB holds no claim"
	fi
	return $ok
}

scenario_fastdirty() {
	local ok=0 rc=0
	need_lab || return 1
	if ! vs A dominfo hot >/dev/null 2>&1; then
		"$LAB" define A hot --vgpus 1 --memory 192 --dirty-size 48 --dirty-rate 32 >/dev/null || return 1
	fi
	migrate A B hot --bandwidth 4M --max-downtime 300ms --timeout 60s && rc=0 || rc=$?
	if [ "$rc" = 0 ]; then
		echo "  the migration went through"
		return 1
	fi
	if ! grep -qE "never converges|cannot converge|not converg|exceeds --timeout|did not finish|did not switch over|floor" "$TMP/mig.out"; then
		echo "  the reason does not say why: $(tail -2 "$TMP/mig.out" | tr '\n' ' ')"
		ok=1
	fi
	stayed_on_a hot || ok=1
	vs A destroy hot >/dev/null 2>&1
	return $ok
}

# Start a slow migration of demo in the background; wait until it moves RAM.
start_slow() {
	local i
	cli A migrate demo --to hostB --bandwidth 3M --json >"$TMP/bg.out" 2>&1 &
	BG=$!
	BG_PIDS+=("$BG")
	for i in $(seq 150); do
		grep -q '"phase": *"migrating"' "$TMP/bg.out" 2>/dev/null && grep -q '"iteration": *[1-9]' "$TMP/bg.out" && return 0
		grep -q '"phase":"migrating"' "$TMP/bg.out" 2>/dev/null && grep -q '"iteration":[1-9]' "$TMP/bg.out" && return 0
		sleep 0.2
	done
	echo "  the migration did not start moving RAM: $(tail -c 300 "$TMP/bg.out")"
	return 1
}

scenario_abort() {
	local ok=0 rc
	need_lab || return 1
	guest_alive A demo || return 1
	start_slow || return 1
	cli A abort demo >"$TMP/abort.out" 2>&1
	rc=$?
	echo "  vgpumig abort demo: rc=$rc: $(tail -1 "$TMP/abort.out")"
	[ "$rc" = 0 ] || ok=1
	wait "$BG"
	rc=$?
	echo "  the migrate command ended: rc=$rc: $(tail -1 "$TMP/bg.out" | cut -c1-200)"
	[ "$rc" = 1 ] || ok=1
	grep -q '"state":"aborted"' "$TMP/bg.out" || { echo "  not reported as aborted"; ok=1; }
	stayed_on_a demo || ok=1

	# Ctrl-C on the command: it asks the agent to abort and waits.  The
	# signal goes to vgpumig itself (BG is the `lab on` wrapper).
	start_slow || return 1
	kill -INT "$(pgrep -n -f -- "$CLI migrate demo --to hostB --bandwidth 3M")"
	wait "$BG"
	rc=$?
	echo "  SIGINT: the migrate command ended: rc=$rc: $(tail -1 "$TMP/bg.out" | cut -c1-200)"
	[ "$rc" = 1 ] || ok=1
	grep -q '"state":"aborted"' "$TMP/bg.out" || { echo "  not reported as aborted"; ok=1; }
	stayed_on_a demo || ok=1
	return $ok
}

agent_pid() {
	local h=$1
	awk '$3 == "agent" {print $1}' "$VGPUMIG_LAB_DIR/hosts/$h/pids" | while read -r p; do
		pid_running "$p" 2>/dev/null && echo "$p"
	done | tail -1
}
pid_running() {
	local s
	s=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
	[ -n "$s" ] && [ "$s" != Z ]
}
# Start B's agent again exactly as `lab up` does (found by `lab down` through
# the host's network namespace).
restart_agent() {
	local h=$1 d r i
	d=$VGPUMIG_LAB_DIR/hosts/$h
	r=$d/root
	setsid nsenter -t "$(cat "$d/holder.pid")" -n -u -m --wd=/ -- "$VGPUMIG_BUILD/agent/vgpumigd" \
		--config "$d/agent/vgpumigd.conf" </dev/null >>"$r/var/log/vgpumigd.log" 2>&1 &
	echo "$! $(awk '{print $22}' "/proc/$!/stat") agent" >>"$d/pids"
	for i in $(seq 300); do
		[ -S "$r/run/vgpumig/vgpumigd.sock" ] && return 0
		sleep 0.1
	done
	return 1
}

scenario_targetdown() {
	local ok=0 p rc=0 t0
	need_lab || return 1
	p=$(agent_pid B)
	[ -n "$p" ] || { echo "  no agent on hostB"; return 1; }
	kill "$p"
	for _ in $(seq 50); do pid_running "$p" || break; sleep 0.1; done
	rm -f "$VGPUMIG_LAB_DIR/hosts/B/root/run/vgpumig/vgpumigd.sock"
	t0=$(date +%s.%N)
	migrate A B demo && rc=0 || rc=$?
	if [ "$rc" = 0 ]; then
		echo "  migrated although hostB's agent is down"
		ok=1
	fi
	grep -q "hostB" "$TMP/mig.out" || { echo "  the reason does not name hostB"; ok=1; }
	guest_alive A demo || ok=1
	absent B demo || ok=1
	restart_agent B || { echo "  could not restart hostB's agent"; ok=1; }
	return $ok
}

scenario_four() {
	local ok=0 vm i rc pids=() ids
	need_lab || return 1
	for i in 1 2 3 4 5; do
		if ! vs A dominfo "q$i" >/dev/null 2>&1; then
			"$LAB" define A "q$i" --vgpus 1 --memory 96 --dirty-size 8 --dirty-rate 2 >/dev/null ||
				{ echo "  cannot define q$i on hostA"; return 1; }
		fi
	done
	# Exactly four free devices on B: fill B's emulator to capacity behind
	# the agent's back, leave four instances free and let a VM defined on B
	# hold all the others.  (A one-shot injected create fault is no "full
	# host": the agent rightly retries a refused creation from a fresh read.)
	local u
	ids=()
	while u=$("$LAB" mdev-create B 2>/dev/null); do ids+=("${u%%|*}"); done
	[ ${#ids[@]} -ge 4 ] || { echo "  hostB had only ${#ids[@]} free vGPUs"; return 1; }
	if [ ${#ids[@]} -gt 4 ]; then
		"$LAB" define B filler $(printf -- '--vgpu-uuid %s ' "${ids[@]:4}") --no-start >/dev/null ||
			{ echo "  cannot define the filler VM on hostB"; return 1; }
	fi
	# The agent learns of newly defined domains on its next housekeeping tick
	# (5 s); claims made through the peer API use that view.
	sleep 6
	echo "  hostB: full but four free vGPUs ($((${#ids[@]} - 4)) held by VM filler)"
	for i in 1 2 3 4; do
		cli A migrate "q$i" --to hostB >"$TMP/four$i.out" 2>&1 &
		pids+=($!)
	done
	for i in 1 2 3 4; do
		wait "${pids[$((i - 1))]}"
		rc=$?
		echo "  q$i: rc=$rc: $(tail -1 "$TMP/four$i.out")"
		[ "$rc" = 0 ] || ok=1
	done
	for i in 1 2 3 4; do
		[ "$(domstate B "q$i")" = running ] || { echo "  q$i not running on hostB"; ok=1; }
	done
	migrate A B q5 && rc=0 || rc=$?
	if [ "$rc" = 0 ]; then
		echo "  the fifth VM was migrated onto a full host"
		ok=1
	fi
	stayed_on_a q5 || ok=1
	vs B undefine filler >/dev/null 2>&1
	for i in 1 2 3 4; do vs B destroy "q$i" >/dev/null 2>&1; vs B undefine "q$i" >/dev/null 2>&1; done
	vs A destroy q5 >/dev/null 2>&1
	return $ok
}

ALL=(roundtrip1 roundtrip2 fastdirty abort targetdown four)
[ $# -gt 0 ] && ALL=("$@")
echo "1..${#ALL[@]}"
n=0 failed=0
for s in "${ALL[@]}"; do
	n=$((n + 1))
	"scenario_$s" >"$TMP/scenario.out" 2>&1
	rc=$?
	sed 's/^/# /' "$TMP/scenario.out"
	if [ "$rc" = 0 ]; then
		echo "ok $n - $s"
	else
		echo "not ok $n - $s"
		failed=1
	fi
done
exit $failed
