# lib.sh: shared helpers for the device integration tests (sourced, not run).
#
# Each test mounts its own vgpu-sysfs-emu in a unique temp dir, drives the
# vgpumig CLI against it (VGPUMIG_SYSFS_ROOT), and unmounts on exit.  The
# emulator runs in the foreground (-f) as our child so that its exit status is
# checked at the end: under ASan a leak or error in the emulator fails the
# test.  A missing facility (no /dev/fuse, no fusermount3) fails loudly.
#
# Checks count failures and go on; `finish` prints a summary and sets the
# exit status.
set -uo pipefail

: "${VGPUMIG_BUILD:?run through meson test (VGPUMIG_BUILD unset)}"
EMU_BIN="$VGPUMIG_BUILD/tools/vgpu-sysfs-emu"
VGPUMIG="$VGPUMIG_BUILD/cli/vgpumig"
TEST_NAME=$(basename "$0" .sh)
TMP=$(mktemp -d "/tmp/vgm-$TEST_NAME.XXXXXX")
EMU_PIDS=()
EMU_MOUNTS=()
FAILS=0
CHECKS=0

die() { echo "FATAL: $*" >&2; exit 1; }

for tool in fusermount3 jq; do
	command -v "$tool" >/dev/null || die "$tool is not installed (scripts/setup --deps)"
done
[ -c /dev/fuse ] || die "/dev/fuse is missing: FUSE is required for the emulator tests"
[ -x "$EMU_BIN" ] || die "emulator not built: $EMU_BIN"
[ -x "$VGPUMIG" ] || die "CLI not built: $VGPUMIG"

# emu_reap PID MOUNT: after unmounting, wait for the emulator to exit and
# return its status.  Unmounting ends it unless another mount namespace made
# while it was mounted (e.g. a lab host started meanwhile) still holds a
# copy of the mount; then, after a generous wait, SIGTERM stops it cleanly.
emu_reap() {
	local pid=$1 mnt=$2 i state
	for i in $(seq 100); do
		state=$(awk '{ print $3 }' /proc/$pid/stat 2>/dev/null)
		[ -z "$state" ] || [ "$state" = Z ] && break
		sleep 0.1
	done
	if [ -n "$state" ] && [ "$state" != Z ]; then
		echo "# $mnt: still served after unmount (held by another mount namespace); SIGTERM" >&2
		kill -TERM "$pid" 2>/dev/null
	fi
	wait "$pid"
}

cleanup() {
	local i rc
	for i in "${!EMU_MOUNTS[@]}"; do
		fusermount3 -u "${EMU_MOUNTS[$i]}" 2>/dev/null || fusermount3 -u -z "${EMU_MOUNTS[$i]}" 2>/dev/null
		emu_reap "${EMU_PIDS[$i]}" "${EMU_MOUNTS[$i]}"
		rc=$?
		if [ "$rc" != 0 ]; then
			echo "FAIL: emulator ${EMU_MOUNTS[$i]} exited $rc:" >&2
			cat "${EMU_MOUNTS[$i]}.log" >&2
			FAILS=$((FAILS + 1))
		fi
	done
	EMU_MOUNTS=()
	EMU_PIDS=()
	rm -rf "$TMP"
}
trap 'cleanup; [ "$FAILS" = 0 ] || exit 1' EXIT

# emu_start NAME CATALOG [emulator options...]: mount at $TMP/NAME and print
# the mount point.  Waits until the mount serves the control file.
emu_start() {
	local name=$1 mnt="$TMP/$1" i
	shift
	mkdir -p "$mnt"
	"$EMU_BIN" --catalog "$@" -f "$mnt" >"$mnt.log" 2>&1 &
	EMU_PIDS+=($!)
	EMU_MOUNTS+=("$mnt")
	for i in $(seq 200); do
		[ -e "$mnt/.vgpu-emu/control" ] && return 0
		kill -0 "${EMU_PIDS[-1]}" 2>/dev/null || break
		sleep 0.05
	done
	cat "$mnt.log" >&2
	die "emulator did not mount at $mnt"
}

# emu_stop NAME: unmount one emulator now (its exit status is checked).
emu_stop() {
	local mnt="$TMP/$1" i rc
	for i in "${!EMU_MOUNTS[@]}"; do
		[ "${EMU_MOUNTS[$i]}" = "$mnt" ] || continue
		fusermount3 -u "$mnt"
		emu_reap "${EMU_PIDS[$i]}" "$mnt"
		rc=$?
		check "emulator at $1 exits 0 after unmount" [ "$rc" = 0 ]
		unset 'EMU_MOUNTS[i]' 'EMU_PIDS[i]'
	done
}

pass() { CHECKS=$((CHECKS + 1)); echo "ok - $*"; }
fail() { CHECKS=$((CHECKS + 1)); FAILS=$((FAILS + 1)); echo "FAIL - $*"; }

# check DESC CMD...: CMD must succeed.
check() {
	local desc=$1
	shift
	if "$@"; then pass "$desc"; else fail "$desc"; fi
}

# check_eq DESC EXPECTED ACTUAL
check_eq() {
	if [ "$2" = "$3" ]; then pass "$1"; else fail "$1: expected '$2', got '$3'"; fi
}

# run_cli OUTVAR ERRVAR RCVAR args...: run vgpumig, capture stdout, stderr, status.
run_cli() {
	local __o=$1 __e=$2 __r=$3 __rc
	shift 3
	"$VGPUMIG" "$@" >"$TMP/cli.out" 2>"$TMP/cli.err"
	__rc=$?
	printf -v "$__o" '%s' "$(cat "$TMP/cli.out")"
	printf -v "$__e" '%s' "$(cat "$TMP/cli.err")"
	printf -v "$__r" '%s' "$__rc"
}

# expect_cli_fail DESC STATUS PATTERN args...: vgpumig must exit STATUS with
# a one-line stderr matching PATTERN (grep -E).
expect_cli_fail() {
	local desc=$1 want=$2 pat=$3 out err rc
	shift 3
	run_cli out err rc "$@"
	if [ "$rc" != "$want" ]; then
		fail "$desc: exit $rc, wanted $want (stderr: $err)"
	elif ! grep -Eq -- "$pat" <<<"$err"; then
		fail "$desc: stderr '$err' does not match /$pat/"
	else
		pass "$desc"
	fi
}

# A fingerprint of the emulated state: every path, link target and readable
# attribute.  Equal fingerprints mean nothing changed.
tree_state() {
	local mnt=$1
	(cd "$mnt" && find sys proc -printf '%p %y %l\n' | sort &&
		find sys proc -type f -perm -0444 -print0 | sort -z | xargs -0 cat) |
		md5sum | cut -d' ' -f1
}

finish() {
	echo "# $TEST_NAME: $CHECKS checks, $FAILS failed"
	[ "$FAILS" = 0 ]
}
