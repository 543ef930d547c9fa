#!/bin/bash
# test-mdevctl-agreement: Debian's mdevctl, a client we did not write, reads
# the emulated tree and must agree with vgpumig on parents, type ids, names,
# descriptions, device APIs, available instances and devices; each tool must
# see what the other created or removed.
#
# mdevctl has no root option, so it runs in a private mount namespace
# (unshare -m --propagation private) where the emulator's sys/class, sys/bus
# and sys/devices are bind-mounted over /sys/class, /sys/bus and /sys/devices
# (the links in class/ and bus/ resolve into devices/).  Nothing outside the
# namespace changes.  Needs root for unshare and mount.
. "$(dirname "$0")/lib.sh"

command -v mdevctl >/dev/null || die "mdevctl is not installed (scripts/setup --deps)"
command -v unshare >/dev/null || die "unshare (util-linux) is not installed"
[ "$(id -u)" = 0 ] || die "needs root: mdevctl reads /sys, which only a private mount namespace can replace"

# mdevctl_in MOUNT ARGS...: run mdevctl with MOUNT's sysfs as /sys.
mdevctl_in() {
	local mnt=$1
	shift
	unshare -m --propagation private /bin/sh -c '
		m=$1; shift
		for d in class bus devices; do mount --bind "$m/sys/$d" "/sys/$d" || exit 125; done
		exec mdevctl "$@"' sh "$mnt" "$@"
}

# ---- normalised views, both tools: sorted JSON ----
mdevctl_types() {
	mdevctl_in "$1" types --dumpjson | jq -S '[(. // [])[] | to_entries[] | {parent: .key, types:
		([.value[] | to_entries[] | {type_id: .key, name: .value.name, available: .value.available_instances,
		  device_api: .value.device_api, description: .value.description}] | sort_by(.type_id))}]
		| sort_by(.parent)'
}
vgpumig_types() {
	VGPUMIG_SYSFS_ROOT=$1 "$VGPUMIG" types --json | jq -S '[.parents[] | select(.backend == "mdev") |
		{parent: .address, types: ([.types[] | {type_id, name, available, device_api, description}]
		| sort_by(.type_id))}] | sort_by(.parent)'
}
mdevctl_devices() {
	local out
	out=$(mdevctl_in "$1" list --dumpjson) || { echo "mdevctl list failed"; return 1; }
	jq -S '[.[] | to_entries[] | .key as $p | .value[] | to_entries[] |
		{id: .key, parent: $p, type_id: .value.mdev_type}] | sort_by(.id)' <<<"$out"
}
vgpumig_devices() {
	VGPUMIG_SYSFS_ROOT=$1 "$VGPUMIG" devices --json |
		jq -S '[.devices[] | select(.kind == "mdev") | {id, parent, type_id}] | sort_by(.id)'
}
# The plain-text listings too: "parent type available name" and "uuid parent type".
mdevctl_types_text() {
	mdevctl_in "$1" types | awk '
		/^[^ ]/ { parent = $1; next }
		/^  [^ ]/ { type = $1; next }
		/^    Available instances:/ { avail = $3; next }
		/^    Name:/ { sub(/^    Name: /, ""); print parent, type, avail, $0 }' | sort
}
vgpumig_types_text() {
	VGPUMIG_SYSFS_ROOT=$1 "$VGPUMIG" types --json |
		jq -r '.parents[] | .address as $p | .types[] | "\($p) \(.type_id) \(.available) \(.name)"' | sort
}
mdevctl_list_text() { mdevctl_in "$1" list | awk 'NF { print $1, $2, $3 }' | sort; }
vgpumig_list_text() {
	VGPUMIG_SYSFS_ROOT=$1 "$VGPUMIG" devices --json | jq -r '.devices[] | "\(.id) \(.parent) \(.type_id)"' | sort
}

# agree MOUNT LABEL: every view must match; counts are echoed to the log.
agree() {
	local m=$1 label=$2 a b
	a=$(mdevctl_types "$m")
	b=$(vgpumig_types "$m")
	if [ "$a" = "$b" ]; then
		pass "$label: types agree ($(jq length <<<"$a") parents, $(jq '[.[].types[]] | length' <<<"$a") types, $(jq '[.[].types[].available] | add' <<<"$a") available)"
	else
		fail "$label: types differ"; diff <(echo "$a") <(echo "$b") | head -20
	fi
	a=$(mdevctl_devices "$m")
	b=$(vgpumig_devices "$m")
	if [ "$a" = "$b" ]; then pass "$label: devices agree ($(jq length <<<"$a"))"
	else fail "$label: devices differ"; diff <(echo "$a") <(echo "$b") | head -20; fi
	check_eq "$label: text types agree" "$(vgpumig_types_text "$m")" "$(mdevctl_types_text "$m")"
	check_eq "$label: text list agrees" "$(vgpumig_list_text "$m")" "$(mdevctl_list_text "$m")"
}

# ---- A100: mdev on VFs, 2 GPUs ----
emu_start a100 A100 --gpus 2
A=$TMP/a100
agree $A "A100 fresh"
check_eq "mdevctl sees 32 parents" 32 "$(mdevctl_types $A | jq length)"
ids=()
for vf in 0000:41:00.4 0000:41:00.5 0000:41:00.6; do
	ids+=("$(VGPUMIG_SYSFS_ROOT=$A "$VGPUMIG" create --parent $vf --type nvidia-473)")
done
check_eq "vgpumig created 3" 3 "${#ids[@]}"
U=0a0b0c0d-1111-4222-8333-444455556666
check "mdevctl start creates through the emulator" \
	mdevctl_in $A start -u $U -p 0000:81:00.4 -t nvidia-476
agree $A "A100 with 4 vGPUs on 2 GPUs"
check_eq "vgpumig sees mdevctl's vGPU" "0000:81:00.4 nvidia-476 NVIDIA A100-40C" \
	"$(VGPUMIG_SYSFS_ROOT=$A "$VGPUMIG" devices --json | jq -r --arg u $U \
	'.devices[] | select(.id == $u) | "\(.parent) \(.type_id) \(.profile)"')"
check_eq "GPU 1 full after one 40C: mdevctl shows no capacity there" 0 \
	"$(mdevctl_types $A | jq '[.[] | select(.parent | startswith("0000:81")) | .types[].available] | add')"
before=$(tree_state $A)
mdevctl_in $A start -u 0a0b0c0d-1111-4222-8333-444455550000 -p 0000:41:00.7 -t nvidia-471 2>/dev/null
check_eq "mdevctl refuses a type blocked by the homogeneous rule" 1 "$?"
check_eq "and nothing changed" "$before" "$(tree_state $A)"
check "vgpumig removes mdevctl's vGPU" env VGPUMIG_SYSFS_ROOT=$A "$VGPUMIG" remove $U
check "mdevctl stops one of vgpumig's" mdevctl_in $A stop -u "${ids[1]}"
check "gone for vgpumig" test -z "$(vgpumig_devices $A | jq -r --arg u "${ids[1]}" '.[] | select(.id == $u) | .id')"
agree $A "A100 after cross removes"

# ---- M10: several vGPUs per physical GPU ----
emu_start m10 M10
M=$TMP/m10
P=$(VGPUMIG_SYSFS_ROOT=$M "$VGPUMIG" types --json | jq -r '.parents[0].address')
VGPUMIG_SYSFS_ROOT=$M "$VGPUMIG" create --parent $P --type nvidia-42 >/dev/null || fail "M10 create"
check "mdevctl start on an M10 GPU" mdevctl_in $M start -u 0a0b0c0d-1111-4222-8333-444455557777 -p $P -t nvidia-42
agree $M "M10 with 2 of M10-2Q"
check_eq "both count 2 left of M10-2Q" "2 2" \
	"$(mdevctl_types $M | jq --arg p $P '.[] | select(.parent == $p) | .types[] | select(.type_id == "nvidia-42") | .available') $(vgpumig_types $M | jq --arg p $P '.[] | select(.parent == $p) | .types[] | select(.type_id == "nvidia-42") | .available')"

# ---- L40S: many types on 32 VFs ----
emu_start l40s L40S
L=$TMP/l40s
VGPUMIG_SYSFS_ROOT=$L "$VGPUMIG" create --parent 0000:41:00.4 --type nvidia-1162 >/dev/null || fail "L40S create"
agree $L "L40S with one 8Q"
emu_stop l40s

# ---- H100: the vendor VF interface has no mdev; mdevctl must see nothing ----
emu_start h100 H100
H=$TMP/h100
VGPUMIG_SYSFS_ROOT=$H "$VGPUMIG" create --parent 0000:41:00.4 --type 1414 >/dev/null || fail "H100 create"
check_eq "mdevctl sees no mdev parents on a VF-interface board" "[]" "$(mdevctl_types $H | jq -c .)"
check_eq "mdevctl sees no mdevs" "[]" "$(mdevctl_devices $H | jq -c .)"
check_eq "vgpumig sees no mdev parents either" "[]" "$(vgpumig_types $H | jq -c .)"
check_eq "but vgpumig sees the VF vGPU" "vf 0000:41:00.4" \
	"$(VGPUMIG_SYSFS_ROOT=$H "$VGPUMIG" devices --json | jq -r '.devices[] | "\(.kind) \(.id)"')"

check "the host's own /sys never saw the emulated tree" test ! -e /sys/bus/mdev/devices/$U

finish
