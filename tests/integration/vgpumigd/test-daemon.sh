#!/bin/bash
# test-daemon.sh: vgpumigd as a process: config check (-n), API basics and
# error bodies, metrics, hook events without libvirt, SIGHUP reload (refused
# when broken, applied when sound) and a clean SIGTERM shutdown.
# Runs one agent with libvirt_uri=none on an emulator mount in a temp dir.
set -u

B=${VGPUMIG_BUILD:?VGPUMIG_BUILD not set}
AGENT=$B/agent/vgpumigd
EMU=$B/tools/vgpu-sysfs-emu
T=$(mktemp -d /tmp/vgm-daemon.XXXXXX)
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
	if "$@"; then
		echo "ok   $what"
	else
		echo "FAIL $what"
		FAILS=$((FAILS + 1))
	fi
}

api() { # api METHOD PATH [curl args...] -> "STATUS BODY" on stdout
	local m=$1 p=$2
	shift 2
	curl -s --max-time 20 --unix-socket "$T/a.sock" -X "$m" -o "$T/body" -w '%{http_code}' \
		"$@" "http://x$p"
	printf ' '
	cat "$T/body"
}

json_post() { api POST "$1" -H 'Content-Type: application/json' --data-binary "$2"; }

write_config() {
	cat >"$T/a.conf" <<EOF
# written by test-daemon.sh
[vgpumigd]
host_name = host-b
state_dir = $T/state
sysfs_root = $T/sysfs
socket = $T/a.sock
libvirt_uri = none
lease_seconds = 60
log_level = ${1:-info}
EOF
}

mkdir -p "$T/sysfs"
"$EMU" --catalog A100 --gpus 1 --driver-version 550.90.05 "$T/sysfs" || { echo "FAIL emulator"; exit 1; }

# ---- -n ----
write_config
out=$("$AGENT" -n --config "$T/a.conf" 2>&1)
check "-n accepts a sound config (exit 0)" [ $? -eq 0 ]
printf '[vgpumigd]\nsocket = %s/a.sock\nbogus = 1\n' "$T" >"$T/bad.conf"
out=$("$AGENT" -n --config "$T/bad.conf" 2>&1)
rc=$?
check "-n refuses an unknown key: exit 1, FILE:LINE: message ($out)" \
	[ $rc -eq 1 -a "$out" = "$T/bad.conf:3: unknown key 'bogus' in [vgpumigd]" ]

# ---- start ----
"$AGENT" --config "$T/a.conf" 2>"$T/log" &
PID=$!
for _ in $(seq 150); do
	[ -S "$T/a.sock" ] && curl -s --max-time 2 --unix-socket "$T/a.sock" http://x/v1/host >/dev/null && break
	sleep 0.2
done
check "socket is mode 0660" [ "$(stat -c %a "$T/a.sock")" = 660 ]

r=$(api GET /v1/host)
check "GET /v1/host: 200 with host_name and protocol_version" \
	bash -c '[[ "$1" == 200\ * && "$1" == *\"host_name\":\"host-b\"* && "$1" == *\"protocol_version\":1* ]]' _ "$r"
r=$(api GET /v1/nope)
check "unknown path: 404 JSON error" bash -c '[[ "$1" == 404\ *\"code\":\"not_found\"* ]]' _ "$r"
r=$(api PUT /v1/host)
check "wrong method: 405 JSON error" bash -c '[[ "$1" == 405\ *method_not_allowed* ]]' _ "$r"
r=$(api POST /v1/claims --data-binary '{}')
check "form content type: 415" bash -c '[[ "$1" == 415\ * ]]' _ "$r"
r=$(json_post /v1/claims '{"migration_id":"m"')
check "malformed JSON: 400 invalid_request" bash -c '[[ "$1" == 400\ *invalid_request* ]]' _ "$r"
head -c $((2 * 1024 * 1024)) /dev/zero | tr '\0' ' ' >"$T/big.json"
r=$(api POST /v1/claims -H 'Content-Type: application/json' --data-binary @"$T/big.json")
check "2 MiB body: 413 payload_too_large" bash -c '[[ "$1" == 413\ *payload_too_large* ]]' _ "$r"

# ---- claims and hook events without libvirt ----
DOM=6a1e0cbb-0000-4000-8000-00000000d0d0
SRC=6a1e0cbb-0000-4000-8000-00000000aaaa
before=$(ls "$T/sysfs/sys/bus/mdev/devices" | sort)
r=$(json_post /v1/claims "{\"migration_id\":\"d-1\",\"domain_uuid\":\"$DOM\",\"domain_name\":\"vm\",\"source_host\":\"host-a\",\"devices\":[{\"source_id\":\"$SRC\",\"kind\":\"mdev\",\"profile_name\":\"NVIDIA A100-4C\"}]}")
check "claim: 201 held" bash -c '[[ "$1" == 201\ *\"state\":\"held\"* ]]' _ "$r"
check "the claim created a device" [ "$(ls "$T/sysfs/sys/bus/mdev/devices" | wc -l)" -eq $(($(echo -n "$before" | grep -c .) + 1)) ]
r=$(json_post /v1/hook/event "{\"domain_uuid\":\"$DOM\",\"domain_name\":\"vm\",\"op\":\"started\",\"sub_op\":\"begin\"}")
check "started begin commits the held claim" bash -c '[[ "$1" == 200\ *committed* ]]' _ "$r"
r=$(api GET /v1/claims)
check "the claim is committed" bash -c '[[ "$1" == *\"state\":\"committed\"* ]]' _ "$r"
r=$(api GET /metrics)
check "metrics: one assigned device, one committed claim, request counters" \
	bash -c '[[ "$1" == *"vgpumig_devices{state=\"assigned\"} 1"* && "$1" == *"vgpumig_claims{state=\"committed\"} 1"* && "$1" == *"vgpumig_http_requests_total{method=\"POST\",route=\"/v1/claims\",code=\"201\"} 1"* ]]' _ "$r"
r=$(json_post /v1/hook/event "{\"domain_uuid\":\"$DOM\",\"domain_name\":\"vm\",\"op\":\"release\",\"sub_op\":\"end\"}")
check "release end releases the assignment (no libvirt to ask)" \
	bash -c '[[ "$1" == 200\ *released_assignments* ]]' _ "$r"
after=$(ls "$T/sysfs/sys/bus/mdev/devices" | sort)
check "the device created for the claim is removed" [ "$before" = "$after" ]
r=$(json_post /v1/hook/event '{"domain_name":"vm","op":"release","sub_op":"end"}')
check "release end without domain_uuid: 400" bash -c '[[ "$1" == 400\ * ]]' _ "$r"

# ---- reload ----
echo "bogus = 1" >>"$T/a.conf"
kill -HUP "$PID"
for _ in $(seq 50); do grep -q "reload refused" "$T/log" && break; sleep 0.1; done
check "a broken config is refused on SIGHUP, naming its line" grep -q "reload refused.*a.conf:10: unknown key 'bogus'" "$T/log"
check "the agent still answers" bash -c '[[ "$(curl -s --unix-socket "$1" -o /dev/null -w %{http_code} http://x/v1/host)" == 200 ]]' _ "$T/a.sock"
write_config debug
printf '[peer host-a]\naddress = 127.0.0.1:7443\n' >>"$T/a.conf"
kill -HUP "$PID"
for _ in $(seq 50); do grep -q "^info: reloaded" "$T/log" && break; sleep 0.1; done
check "a sound config is applied on SIGHUP" grep -q "reloaded .*1 peer(s), log_level debug" "$T/log"

# ---- shutdown ----
kill -TERM "$PID"
wait "$PID"
rc=$?
PID=
check "SIGTERM: exit 0" [ $rc -eq 0 ]
check "SIGTERM: socket removed" [ ! -e "$T/a.sock" ]

if [ $FAILS -ne 0 ]; then
	echo "$FAILS check(s) failed; agent log:"
	cat "$T/log"
	exit 1
fi
echo "all checks passed"
