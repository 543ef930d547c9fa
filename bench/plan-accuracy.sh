#!/bin/bash
# bench/plan-accuracy.sh [RESULTS.jsonl]: plan accuracy on real lab migrations.
#
# Needs a lab that is up (tests/lab/lab up; VGPUMIG_LAB_DIR / VGPUMIG_BUILD as
# for the lab).  For each guest dirty rate D in $DIRTY (MiB/s) it defines a VM
# "acc" on hostA (256 MiB, the dirtier rewriting a 160 MiB buffer at D), then
# for each bandwidth B in $BW (MiB/s) migrates it with
#   vgpumig migrate acc --to OTHER --bandwidth B --max-downtime 1s --force --json
# alternating hostA -> hostB -> hostA, and appends one line per run to
# RESULTS.jsonl: {"dirty_bps", "working_set_bytes", "bandwidth_bps", "done":
# <the last --json event>}.  Then bench-plan prints predicted vs measured.
set -uo pipefail
SRC=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
BUILD=$(realpath "${VGPUMIG_BUILD:-$SRC/build}")
export VGPUMIG_BUILD=$BUILD
LAB=$SRC/tests/lab/lab
CLI=$BUILD/cli/vgpumig
OUT=${1:-$(mktemp /tmp/plan-accuracy.XXXXXX.jsonl)}
DIRTY=${DIRTY:-"0 4 10"}
BW=${BW:-"12 24 48"}
SIZE=160
VM=acc

"$LAB" status >/dev/null 2>&1 || { echo "plan-accuracy: the lab is not up (tests/lab/lab up)" >&2; exit 1; }
vs() { local h=$1; shift; "$LAB" on "$h" virsh -q -c qemu:///system "$@"; }
where() { for h in A B; do [ "$(vs $h domstate $VM 2>/dev/null)" = running ] && echo $h && return; done; }
drop_vm() {
	local h
	for h in A B; do
		vs $h destroy $VM >/dev/null 2>&1
		vs $h undefine $VM >/dev/null 2>&1
	done
	return 0
}
trap drop_vm EXIT

: >"$OUT"
for d in $DIRTY; do
	drop_vm
	"$LAB" define A $VM --vgpus 1 --memory 256 --dirty-size $SIZE --dirty-rate "$d" >/dev/null || exit 1
	sleep 5 # let the dirtier make its first pass over the buffer
	for b in $BW; do
		h=$(where)
		[ -n "$h" ] || { echo "plan-accuracy: $VM runs nowhere" >&2; exit 1; }
		o=$([ "$h" = A ] && echo B || echo A)
		ev=$("$LAB" on "$h" "$CLI" migrate $VM --to "host$o" --bandwidth "${b}M" --max-downtime 1s \
			--force --json 2>/dev/null | tail -1)
		printf '{"dirty_bps": %d, "working_set_bytes": %d, "bandwidth_bps": %d, "done": %s}\n' \
			$((d * 1048576)) $((SIZE * 1048576)) $((b * 1048576)) "${ev:-null}" >>"$OUT"
		echo "dirty ${d} MiB/s, bandwidth ${b} MiB/s, host$h -> host$o: $(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); r=d.get("result") or {}; print(d["state"], r.get("wall_ms"), "ms wall,", r.get("downtime_ms"), "ms down")' "${ev:-null}" 2>/dev/null)" >&2
	done
done
"$BUILD/bench/bench-plan" "$OUT"
echo "results: $OUT"
