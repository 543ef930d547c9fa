#!/bin/bash
# test-example.sh: docs/example-orchestrator, linked against the shared
# libvgpumig.so.0 (public API only), runs against a real agent on the
# emulator: inventory, inspect, rewrite, plan, check, claim, events, a
# refused bad id.  scripts/package-check runs the same program built
# against the installed pkg-config file.
#   test-example.sh [EXAMPLE_BINARY [AGENT [EMULATOR]]]   (default: the build's)
set -u

B=${VGPUMIG_BUILD:?VGPUMIG_BUILD not set}
SRC=${VGPUMIG_SRC:-$(cd "$(dirname "$0")/../../.." && pwd)}
EXAMPLE=${1:-$B/docs/example-orchestrator}
AGENT=${2:-$B/agent/vgpumigd}
EMU=${3:-$B/tools/vgpu-sysfs-emu}
T=$(mktemp -d /tmp/vgm-example.XXXXXX)
PID=
FAILS=0

cleanup() {
	[ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
	mountpoint -q "$T/sysfs" && fusermount3 -u "$T/sysfs"
	rm -rf "$T"
}
trap cleanup EXIT

check() { # check DESCRIPTION COMMAND...
	local what=$1
	shift
	if "$@"; then echo "ok   $what"; else echo "FAIL $what"; FAILS=$((FAILS + 1)); fi
}

has_line() { grep -qxF -- "$2" <<<"$1"; }

mkdir -p "$T/sysfs"
"$EMU" --catalog A100 --gpus 1 --driver-version 550.90.05 "$T/sysfs" || { echo "FAIL emulator"; exit 1; }
cat >"$T/a.conf" <<EOF
[vgpumigd]
host_name = host-b
state_dir = $T/state
sysfs_root = $T/sysfs
socket = $T/a.sock
libvirt_uri = none
EOF
"$AGENT" --config "$T/a.conf" 2>"$T/log" &
PID=$!
for _ in $(seq 150); do
	curl -s --max-time 2 --unix-socket "$T/a.sock" http://x/v1/host >/dev/null && break
	sleep 0.2
done

SRCU=c2177883-f1bb-47f0-914d-32a22e3a8804
DSTU=0b6e21f4-5d3a-4c8e-9f10-7a2b3c4d5e6f
out=$("$EXAMPLE" "$T/a.sock" "$T/sysfs" "$SRC/tests/data/domxml/mdev-single.xml" $SRCU $DSTU 2>&1)
rc=$?
echo "$out" | sed 's/^/  | /'
check "the example exits 0" [ $rc -eq 0 ]
check "it reports the library's version" grep -q "^library [0-9.]*, peer protocol [0-9]*\.\.[0-9]*$" <<<"$out"
check "inventory finds the emulator's types" has_line "$out" "inventory: vGPU types found"
check "inspect finds the source vGPU" has_line "$out" "inspect: the domain has the source vGPU"
check "rewrite puts the target vGPU in place" has_line "$out" "rewrite: target vGPU in place"
check "plan fits 10 s" grep -q "^plan: ok, total [0-9]* ms, downtime [0-9]* ms$" <<<"$out"
check "check runs the domain checks" grep -q "^check: [0-9]* failed (domain checked)$" <<<"$out"
check "claim held" grep -q "^claim: [0-9a-f-]* held$" <<<"$out"
check "the started event commits it" has_line "$out" "claims: committed after start"
check "the release event ends it" has_line "$out" "event: released on domain end"
check "a bad claim id is refused, naming it" grep -q "^bad id refused: .*'../etc'" <<<"$out"

r=$("$EXAMPLE" "$T/a.sock" "$T/sysfs" "$SRC/tests/data/domxml/mdev-single.xml" $DSTU $SRCU 2>&1)
rc=$?
check "a map that leaves the domain's vGPU without a target: exit 1 with the library's words" \
	bash -c '[ $1 -eq 1 ] && [[ "$2" == *"example: rewrite: "*"$3"*"has no target"* ]]' _ $rc "$r" $SRCU

[ "$FAILS" -eq 0 ] && echo "all passed" || echo "$FAILS failed"
[ "$FAILS" -eq 0 ]
