#!/bin/bash
# test-peers-d.sh: peers from the peers.d drop-in directory, as configuration
# management writes them: `vgpumigd -n` validates the whole set (naming the
# file and line at fault), and SIGHUP picks up added and removed peers, keeps
# the running config when a drop-in is broken, and leaves held claims alone.
# A peer is "known" when POST /v1/check stops answering unknown_peer for it.
set -u

B=${VGPUMIG_BUILD:?VGPUMIG_BUILD not set}
AGENT=$B/agent/vgpumigd
EMU=$B/tools/vgpu-sysfs-emu
T=$(mktemp -d /tmp/vgm-peersd.XXXXXX)
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

post() { # post PATH JSON -> "STATUS BODY"
	curl -s --max-time 20 --unix-socket "$T/a.sock" -X POST -H 'Content-Type: application/json' \
		--data-binary "$2" -o "$T/body" -w '%{http_code}' "http://x$1"
	printf ' '
	cat "$T/body"
}

peer_known() { # peer_known NAME: the agent has it (any answer but unknown_peer)
	local r
	r=$(post /v1/check "{\"domain\":\"vm\",\"to\":\"$1\"}")
	[[ "$r" != *unknown_peer* ]]
}

reload_and_wait() { # reload_and_wait PATTERN: SIGHUP, then wait for PATTERN in the log
	local n
	n=$(grep -c "$1" "$T/log")
	kill -HUP "$PID"
	for _ in $(seq 100); do
		[ "$(grep -c "$1" "$T/log")" -gt "$n" ] && return 0
		sleep 0.1
	done
	return 1
}

mkdir -p "$T/sysfs" "$T/peers.d"
"$EMU" --catalog A100 --gpus 1 --driver-version 550.90.05 "$T/sysfs" || { echo "FAIL emulator"; exit 1; }
cat >"$T/vgpumigd.conf" <<EOF
[vgpumigd]
host_name = host-b
state_dir = $T/state
sysfs_root = $T/sysfs
socket = $T/a.sock
libvirt_uri = none
EOF
printf '[peer host-a]\naddress = 127.0.0.1:7443\n' >"$T/peers.d/host-a.conf"
printf '[peer host-c]\naddress = 127.0.0.3:7443\n' >"$T/peers.d/host-c.conf"

# ---- -n over the whole set ----
out=$("$AGENT" -n --config "$T/vgpumigd.conf" 2>&1)
check "-n accepts the config with two drop-ins ($out)" [ $? -eq 0 ]
printf '[peer host-d]\naddress = 127.0.0.4\n' >"$T/peers.d/host-d.conf"
out=$("$AGENT" -n --config "$T/vgpumigd.conf" 2>&1)
rc=$?
check "-n refuses a broken drop-in, naming its file and line ($out)" \
	[ $rc -eq 1 -a "$out" = "$T/peers.d/host-d.conf:2: address '127.0.0.4' must be HOST:PORT" ]
rm "$T/peers.d/host-d.conf"

# ---- start, then change the set under a running agent ----
"$AGENT" --config "$T/vgpumigd.conf" 2>"$T/log" &
PID=$!
for _ in $(seq 150); do
	curl -s --max-time 2 --unix-socket "$T/a.sock" http://x/v1/host >/dev/null && break
	sleep 0.2
done
check "drop-in peers are known at start" bash -c "$(declare -f post peer_known); T=$T; peer_known host-a && peer_known host-c"
check "a peer in no file is unknown" bash -c "$(declare -f post peer_known); T=$T; ! peer_known host-d"

r=$(post /v1/claims '{"migration_id":"job-1","domain_uuid":"6a1e0cbb-0000-4000-8000-00000000d0d0","domain_name":"vm","source_host":"host-a","devices":[{"source_id":"6a1e0cbb-0000-4000-8000-00000000aaaa","kind":"mdev","profile_name":"NVIDIA A100-4C"}]}')
check "an incoming migration from host-a holds a claim" bash -c '[[ "$1" == 201\ *\"state\":\"held\"* ]]' _ "$r"

printf '[peer host-d]\naddress = 127.0.0.4:7443\n' >"$T/peers.d/host-d.conf"
rm "$T/peers.d/host-a.conf"
check "SIGHUP reloads the set" reload_and_wait "reloaded .*(2 peer(s)"
check "the added peer is known" bash -c "$(declare -f post peer_known); T=$T; peer_known host-d"
check "the removed peer is gone" bash -c "$(declare -f post peer_known); T=$T; ! peer_known host-a"
r=$(curl -s --unix-socket "$T/a.sock" http://x/v1/claims)
check "the claim of the removed peer's migration is still held" \
	bash -c '[[ "$1" == *job-1*\"state\":\"held\"* ]]' _ "$r"

printf 'address = 127.0.0.5:7443\n' >"$T/peers.d/host-e.conf"
check "a broken drop-in on SIGHUP is refused, naming it" \
	reload_and_wait "reload refused.*peers.d/host-e.conf:1: key 'address' outside a section"
check "and the running set stays" bash -c "$(declare -f post peer_known); T=$T; peer_known host-d && peer_known host-c"
check "the agent still runs" kill -0 "$PID"

[ "$FAILS" -eq 0 ] && echo "all passed" || echo "$FAILS failed"
[ "$FAILS" -eq 0 ]
