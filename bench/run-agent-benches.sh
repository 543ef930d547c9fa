#!/bin/bash
# run-agent-benches.sh [BUILD_DIR]
#
# Sets up, in a temp dir, an emulated host with 8 L40S GPUs (room for 256
# "NVIDIA L40S-1B" vGPUs), test certificates and one agent (host-b,
# libvirt_uri=none), then prints:
#   bench-hook       fork+exec+round trip of vgpumig-hook for a ~100 KB domain
#                    XML with a vGPU that has a claim (the agent rewrites it),
#                    and for a ~100 KB domain without vGPU (handed back as is)
#   bench-claim-tls  GET /v1/host and /v1/types (free counts) over mutual TLS,
#                    claim+release round trips, then 256 concurrent claims
# The default host has 8 GPUs x 32 VFs = 256 vGPU parents.
# Everything it starts is stopped by pid, the mount undone and the dir removed.
# Environment: RUNS (hook runs, 500), CLAIM_RUNS (claim round trips, 100),
# CONCURRENT (256), STATE_PARENT (see below), CATALOG/GPUS/PROFILE/TYPE/FB_MIB (the emulated host and the
# profile claimed; default L40S x8, "NVIDIA L40S-1B", the only catalog with room
# for 256; A100 2 "NVIDIA A100-4C" nvidia-471 4096 gives a small, fast host).
# Numbers only, no pass/fail.
set -euo pipefail

SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "${1:-$SRC/build}" && pwd)
RUNS=${RUNS:-500}
CLAIM_RUNS=${CLAIM_RUNS:-100}
CONCURRENT=${CONCURRENT:-256}
CATALOG=${CATALOG:-L40S}
GPUS=${GPUS:-8}
PROFILE=${PROFILE:-NVIDIA L40S-1B}
TYPE=${TYPE:-nvidia-1155}
FB_MIB=${FB_MIB:-1024}
T=$(mktemp -d /tmp/vgm-bench-XXXXXX)
# STATE_PARENT=/dev/shm puts the agent's SQLite file on a tmpfs, where its
# fsyncs cost nothing: the engine's own cost apart from the disk's.
STATE=$T/state
[ -n "${STATE_PARENT:-}" ] && STATE=$(mktemp -d "$STATE_PARENT/vgm-bench-state-XXXXXX")
EMU_PID= AGENT_PID=

cleanup() {
	[ -n "$AGENT_PID" ] && kill "$AGENT_PID" 2>/dev/null && wait "$AGENT_PID" 2>/dev/null
	if [ -n "$EMU_PID" ]; then
		fusermount3 -u "$T/sysfs" 2>/dev/null || fusermount3 -u -z "$T/sysfs" 2>/dev/null || true
		for _ in $(seq 50); do kill -0 "$EMU_PID" 2>/dev/null || break; sleep 0.1; done
		kill "$EMU_PID" 2>/dev/null || true
		wait "$EMU_PID" 2>/dev/null || true
	fi
	rm -rf "$T"
	[ "$STATE" = "$T/state" ] || rm -rf "$STATE"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_for() { # wait_for SECONDS COMMAND...
	local end=$((SECONDS + $1))
	shift
	until "$@" >/dev/null 2>&1; do
		[ $SECONDS -lt $end ] || { echo "run-agent-benches: timed out waiting for: $*" >&2; return 1; }
		sleep 0.05
	done
}

"$SRC/scripts/mkcerts" "$T/certs" host-a host-b
mkdir -p "$T/sysfs" "$STATE"
"$BUILD/tools/vgpu-sysfs-emu" --catalog "$CATALOG" --gpus "$GPUS" --driver-version 550.90.05 -f "$T/sysfs" >"$T/emu.log" 2>&1 &
EMU_PID=$!
wait_for 10 test -d "$T/sysfs/sys/class/mdev_bus"

PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$T/vgpumigd.conf" <<EOF
[vgpumigd]
host_name = host-b
state_dir = $STATE
sysfs_root = $T/sysfs
socket = $T/b.sock
listen = 127.0.0.1:$PORT
tls_cert = $T/certs/host-b.pem
tls_key = $T/certs/host-b-key.pem
tls_ca = $T/certs/ca.pem
libvirt_uri = none
lease_seconds = 3600
log_level = warn

[peer host-a]
address = 127.0.0.1:1
EOF
START=$(date +%s.%N)
"$BUILD/agent/vgpumigd" --config "$T/vgpumigd.conf" 2>"$T/agent.log" &
AGENT_PID=$!
# The agent reads the whole inventory once at start (seconds on 256 parents
# under load); every request after that answers from its kept-current copy.
wait_for 300 curl -sf --unix-socket "$T/b.sock" http://localhost/v1/host || { cat "$T/agent.log" >&2; exit 1; }
READY=$(date +%s.%N)

# ~100 KB domains: many disks and NICs, one L40S-1B vGPU (or none).
DOM_UUID=8f0c7a52-3b1e-4d6a-9c2f-5e7d1b3a9c01
SRC_VGPU=0b1c2d3e-4f50-4617-8293-a4b5c6d7e8f9
python3 - "$T" "$DOM_UUID" "$SRC_VGPU" "$PROFILE" "$TYPE" "$FB_MIB" <<'EOF'
import sys
t, dom, vgpu, profile, type_id, fb_mib = sys.argv[1:7]
def domain(with_vgpu):
    meta = (f"  <metadata>\n    <vgpumig:vgpus xmlns:vgpumig='http://vgpumig.dev/xmlns/domain/1'>\n"
            f"      <vgpumig:vgpu id='{vgpu}' kind='mdev' profile='{profile}' type='{type_id}' "
            f"framebuffer='{int(fb_mib) << 20}'/>\n    </vgpumig:vgpus>\n  </metadata>\n") if with_vgpu else ""
    devs = []
    i = 0
    while sum(map(len, devs)) < 100 * 1024:
        devs.append(f"    <disk type='file' device='disk'>\n      <driver name='qemu' type='qcow2' cache='none' io='native'/>\n"
                    f"      <source file='/var/lib/libvirt/images/bench-vm-data-{i:04d}.qcow2'/>\n"
                    f"      <target dev='vd{i:04d}' bus='virtio'/>\n"
                    f"      <address type='pci' domain='0x0000' bus='0x{(i // 32) + 8:02x}' slot='0x{i % 32:02x}' function='0x0'/>\n    </disk>\n")
        i += 1
    if with_vgpu:
        devs.append(f"    <hostdev mode='subsystem' type='mdev' managed='no' model='vfio-pci' display='off'>\n"
                    f"      <source>\n        <address uuid='{vgpu}'/>\n      </source>\n"
                    f"      <address type='pci' domain='0x0000' bus='0x07' slot='0x00' function='0x0'/>\n    </hostdev>\n")
    return (f"<domain type='kvm'>\n  <name>bench-vm</name>\n  <uuid>{dom}</uuid>\n{meta}"
            f"  <memory unit='KiB'>16777216</memory>\n  <vcpu placement='static'>8</vcpu>\n"
            f"  <os>\n    <type arch='x86_64' machine='pc-q35-7.2'>hvm</type>\n  </os>\n"
            f"  <devices>\n    <emulator>/usr/bin/qemu-system-x86_64</emulator>\n{''.join(devs)}  </devices>\n</domain>\n")
open(f"{t}/vgpu.xml", "w").write(domain(True))
open(f"{t}/plain.xml", "w").write(domain(False))
EOF

# The source (host-a) claims for the domain first, as `vgpumig migrate` does.
PEER_CURL=(curl -sf --cert "$T/certs/host-a.pem" --key "$T/certs/host-a-key.pem" --cacert "$T/certs/ca.pem")
cat >"$T/claim.json" <<EOF
{"migration_id": "bench-hook", "domain_uuid": "$DOM_UUID", "domain_name": "bench-vm",
 "source_host": "host-a", "devices": [{"source_id": "$SRC_VGPU", "kind": "mdev",
 "profile_name": "$PROFILE", "framebuffer_bytes": $((FB_MIB << 20)), "type_id": "$TYPE"}]}
EOF
HOOK_CLAIM=$("${PEER_CURL[@]}" -H 'Content-Type: application/json' -d @"$T/claim.json" \
	"https://127.0.0.1:$PORT/v1/claims" | python3 -c 'import json, sys; print(json.load(sys.stdin)["claim_id"])')

PARENTS=$(ls "$T/sysfs/sys/class/mdev_bus" | wc -l)
echo "== host: $CATALOG x$GPUS ($PARENTS vGPU parents), profile $PROFILE; load: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs"
echo "== agent state dir: $STATE"
echo "== agent start to ready (one full inventory read): $(echo "$READY - $START" | bc) s"
echo "== vGPU domain with a claim (agent round trip + rewrite)"
"$BUILD/bench/bench-hook" --hook "$BUILD/hook/vgpumig-hook" --socket "$T/b.sock" \
	--xml "$T/vgpu.xml" --runs "$RUNS" --domain bench-vm
echo "== domain without vGPU (the agent hands it back unchanged)"
"$BUILD/bench/bench-hook" --hook "$BUILD/hook/vgpumig-hook" --socket "$T/b.sock" \
	--xml "$T/plain.xml" --runs "$RUNS" --domain bench-vm
# Give the hook's vGPU back so the claim bench has the whole host.
"${PEER_CURL[@]}" -X DELETE "https://127.0.0.1:$PORT/v1/claims/$HOOK_CLAIM" >/dev/null
echo "== claims over mutual TLS"
"$BUILD/bench/bench-claim-tls" --peer "127.0.0.1:$PORT" --cert "$T/certs/host-a.pem" \
	--key "$T/certs/host-a-key.pem" --ca "$T/certs/ca.pem" --runs "$CLAIM_RUNS" \
	--concurrent "$CONCURRENT" --profile "$PROFILE" --type "$TYPE" --fb-mib "$FB_MIB"
echo "== load after: $(cut -d' ' -f1-3 /proc/loadavg)"
