#!/bin/bash
# test-protocol.sh: the peer protocol range an agent speaks during a rolling
# upgrade: its own version and the one before, negotiated per caller through
# the Vgpumig-Protocol header; callers outside the range are refused with both
# ranges named and nothing changed; VGPUMIG_TEST_PROTOCOL makes an agent speak
# as the previous release (what the lab's mixed-version test uses).
set -u

B=${VGPUMIG_BUILD:?VGPUMIG_BUILD not set}
AGENT=$B/agent/vgpumigd
EMU=$B/tools/vgpu-sysfs-emu
CLI=$B/cli/vgpumig
T=$(mktemp -d /tmp/vgm-protocol.XXXXXX)
PID=
FAILS=0

cleanup() {
	stop_agent
	mountpoint -q "$T/sysfs" && fusermount3 -u "$T/sysfs"
	rm -rf "$T"
}
trap cleanup EXIT

check() { # check DESCRIPTION COMMAND...
	local what=$1
	shift
	if "$@"; then echo "ok   $what"; else echo "FAIL $what"; FAILS=$((FAILS + 1)); fi
}

api() { # api METHOD PATH [curl args...] -> "STATUS BODY"
	local m=$1 p=$2
	shift 2
	curl -s --max-time 20 --unix-socket "$T/a.sock" -X "$m" -o "$T/body" -w '%{http_code}' \
		"$@" "http://x$p"
	printf ' '
	cat "$T/body"
}

start_agent() { # start_agent [ENV=VALUE...]
	env "$@" "$AGENT" --config "$T/a.conf" 2>"$T/log" &
	PID=$!
	for _ in $(seq 150); do
		curl -s --max-time 2 --unix-socket "$T/a.sock" http://x/v1/host >/dev/null && return 0
		sleep 0.2
	done
	echo "agent did not start:"; cat "$T/log"
}

stop_agent() {
	[ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
	PID=
}

field() { python3 -c 'import json,sys; print(json.loads(sys.argv[1].split(" ",1)[1])[sys.argv[2]])' "$1" "$2"; }

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

# ---- this build: 1-2 ----
start_agent
r=$(api GET /v1/host -H 'Vgpumig-Protocol: 1-2')
check "a caller of this release gets protocol 2, oldest 1" \
	[ "$(field "$r" protocol_version) $(field "$r" protocol_oldest)" = "2 1" ]
r=$(api GET /v1/host)
check "a previous-release caller (no header) gets protocol 1, as it compares for equality" \
	[ "$(field "$r" protocol_version)" = 1 ]
r=$(api GET /v1/host -H 'Vgpumig-Protocol: 2-3')
check "a next-release caller (2-3) is served at 2" [ "$(field "$r" protocol_version)" = 2 ]
r=$(api GET /v1/host -H 'Vgpumig-Protocol: 3-4')
check "a caller two releases ahead gets 400 naming both ranges ($r)" \
	[ "$r" = '400 {"code":"protocol_unsupported","message":"the caller speaks vgpumig protocol 3-4; host-b speaks 1-2; hosts must be at most one release apart: upgrade host-b first"}' ]
before=$(ls "$T/sysfs/sys/bus/mdev/devices" | sort)
r=$(api POST /v1/claims -H 'Vgpumig-Protocol: 4' -H 'Content-Type: application/json' \
	--data-binary '{"migration_id":"p-1","domain_uuid":"6a1e0cbb-0000-4000-8000-00000000d0d0","domain_name":"vm","source_host":"host-a","devices":[{"source_id":"6a1e0cbb-0000-4000-8000-00000000aaaa","kind":"mdev","profile_name":"NVIDIA A100-4C"}]}')
check "a claim from outside the range is refused and changes nothing" \
	bash -c '[[ "$1" == 400\ *protocol_unsupported* && "$2" == "$3" && "$(curl -s --unix-socket "$4" -H "Vgpumig-Protocol: 2" http://x/v1/claims)" != *p-1* ]]' \
	_ "$r" "$before" "$(ls "$T/sysfs/sys/bus/mdev/devices" | sort)" "$T/a.sock"
r=$(api GET /v1/host -H 'Vgpumig-Protocol: two')
check "a malformed header: 400 invalid_request naming the header" \
	bash -c '[[ "$1" == 400\ *invalid_request*Vgpumig-Protocol* ]]' _ "$r"
check "the CLI speaks this build's range" bash -c '"$1" --socket "$2" host --json | grep -q "\"protocol_version\": *2"' _ "$CLI" "$T/a.sock"
stop_agent

# ---- as the previous release: VGPUMIG_TEST_PROTOCOL=1 ----
start_agent VGPUMIG_TEST_PROTOCOL=1
r=$(api GET /v1/host -H 'Vgpumig-Protocol: 1-2')
check "VGPUMIG_TEST_PROTOCOL=1: facts say protocol 1, oldest 1" \
	[ "$(field "$r" protocol_version) $(field "$r" protocol_oldest)" = "1 1" ]
check "and the switch is logged" grep -q "VGPUMIG_TEST_PROTOCOL: speaking protocol 1-1" "$T/log"
r=$(api GET /v1/host -H 'Vgpumig-Protocol: 2-3')
check "it refuses a caller two releases ahead, naming both" \
	bash -c '[[ "$1" == *"the caller speaks vgpumig protocol 2-3; host-b speaks 1; "*"upgrade host-b first"* ]]' _ "$r"
stop_agent
out=$(VGPUMIG_TEST_PROTOCOL=9 "$AGENT" --config "$T/a.conf" 2>&1)
check "VGPUMIG_TEST_PROTOCOL outside the range: exit 1 with a clear line ($out)" \
	bash -c '[ $1 -eq 1 ] && [ "$2" = "protocol version 9 is not one this vgpumig speaks (1 to 2)" ]' _ $? "$out"

[ "$FAILS" -eq 0 ] && echo "all passed" || echo "$FAILS failed"
[ "$FAILS" -eq 0 ]
