# tests/lab/lib.sh: shell helpers for lab tests and scripts/demo (source it).
#
# Needs LAB (path of tests/lab/lab).  Hosts are named A/B or hostA/hostB.
# Every check prints one line saying what it saw; a failing check returns 1
# and never exits, so a scenario can report it and go on cleaning up.

lab() { "$LAB" "$@"; }
# virsh on a host, quiet, against its own daemon.
vs() {
	local h=$1
	shift
	"$LAB" on "$h" virsh -q -c qemu:///system "$@"
}
lab_env_load() { eval "$("$LAB" env)"; }
host_root() {
	local v="LAB_ROOT_${1#host}"
	echo "${!v}"
}
serial_log() { echo "$(host_root "$1")/var/log/libvirt/qemu/$2-serial.log"; }
hook_log() { echo "$(host_root "$1")/var/log/libvirt/hook-calls.log"; }

elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }'; }
domstate() { vs "$1" domstate "$2" 2>/dev/null | head -1; }

# beats HOST VM: number of heartbeat lines in the VM's serial log on HOST.
beats() {
	local n
	n=$(grep -c '^beat ' "$(serial_log "$1" "$2")" 2>/dev/null) || true
	echo "${n:-0}"
}

# guest_alive HOST VM: the VM runs on HOST, its heartbeat advances there
# (two new beats within 15 s), the dirtier saw no lost write (bad=0, no
# MISMATCH) and the kernel did not oops.
guest_alive() {
	local h=$1 vm=$2 log b0 b1 i last
	log=$(serial_log "$h" "$vm")
	if [ "$(domstate "$h" "$vm")" != running ]; then
		echo "  $vm on $h: not running ($(domstate "$h" "$vm"))"
		return 1
	fi
	b0=$(beats "$h" "$vm")
	for i in $(seq 150); do
		b1=$(beats "$h" "$vm")
		[ "$b1" -ge $((b0 + 2)) ] && break
		sleep 0.1
	done
	last=$(grep '^beat ' "$log" | tail -1 | tr -d '\r')
	if [ "$b1" -lt $((b0 + 2)) ]; then
		echo "  $vm on $h: heartbeat stuck at $b1 beats (last: ${last:-none})"
		return 1
	fi
	if grep -qE 'MISMATCH|Oops|Kernel panic|BUG:' "$log"; then
		echo "  $vm on $h: guest reports: $(grep -m1 -E 'MISMATCH|Oops|Kernel panic|BUG:' "$log" | tr -d '\r')"
		return 1
	fi
	case "$last" in
	*" bad=0 "*) ;;
	*)
		echo "  $vm on $h: lost writes: $last"
		return 1
		;;
	esac
	echo "  $vm on $h: alive, beats $b0 -> $b1, $last"
}

# absent HOST VM: HOST has no domain of that name, running or defined.
absent() {
	if vs "$1" dominfo "$2" >/dev/null 2>&1; then
		echo "  $2 still exists on $1 ($(domstate "$1" "$2"))"
		return 1
	fi
	echo "  $2: none on $1"
}

# migrate_virsh SRC DST VM [virsh migrate options]: plain libvirt live
# migration, run on SRC; prints the outcome and the wall time.
migrate_virsh() {
	local src=${1#host} dst=${2#host} vm=$3 t0 rc=0 out
	shift 3
	# libvirt keeps a bandwidth cap on the domain from earlier migrations
	# (sticky); a plain migration here means an unthrottled one.
	vs "$src" migrate-setspeed "$vm" 0 >/dev/null 2>&1
	t0=$(date +%s.%N)
	out=$(vs "$src" migrate --live "$@" "$vm" "qemu+tcp://host$dst/system" 2>&1) || rc=$?
	echo "  virsh migrate --live $* $vm host$src -> host$dst: rc=$rc in $(elapsed "$t0") s${out:+: $out}"
	return $rc
}

# vgpus_in_xml HOST VM: the ids in the VM's vgpumig metadata on HOST, one a line.
vgpus_in_xml() {
	vs "$1" dumpxml "$2" | grep -o '<vgpumig:vgpu [^>]*' | sed -n "s/.* id=[\"']\([^\"']*\).*/\1/p"
}
