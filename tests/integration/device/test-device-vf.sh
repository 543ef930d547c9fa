#!/bin/bash
# test-device-vf: the NVIDIA SR-IOV VF interface (H100, no mdev) through the
# vgpumig CLI: VFs listed as parents with their creatable types, create by
# type id, the VF address as the vGPU id, the homogeneous rule and the
# per-GPU limit as creatable lists shrink, remove.
. "$(dirname "$0")/lib.sh"

emu_start h100 H100 --gpus 2
export VGPUMIG_SYSFS_ROOT=$TMP/h100
VF=0000:41:00.4
SYS=$VGPUMIG_SYSFS_ROOT/sys/bus/pci/devices
types() { "$VGPUMIG" types --json; }
parent() { types | jq -c --arg a "$1" '.parents[] | select(.address == $a)'; }

check_eq "64 VF parents on 2 GPUs" 64 "$(types | jq '.parents | length')"
check_eq "backend vf" vf "$(parent $VF | jq -r .backend)"
check_eq "physfn is the PF" 0000:41:00.0 "$(parent $VF | jq -r .physfn)"
check_eq "no current type" null "$(parent $VF | jq -r .current_type_id)"
check_eq "14 creatable types" 14 "$(parent $VF | jq '.types | length')"
check_eq "1414 is H100-1-10C" "NVIDIA H100-1-10C" \
	"$(parent $VF | jq -r '.types[] | select(.type_id == "1414") | .name')"
check_eq "framebuffer from the name" 10737418240 \
	"$(parent $VF | jq -r '.types[] | select(.type_id == "1414") | .framebuffer_bytes')"
check "the PF is not a parent" test -z "$(parent 0000:41:00.0)"

run_cli out err rc create --parent $VF --type 1414
check_eq "create prints the VF address" "0 $VF" "$rc $out"
check_eq "sysfs holds it" 1414 "$(cat $SYS/$VF/nvidia/current_vgpu_type)"
d=$("$VGPUMIG" devices --json | jq -c '.devices[0]')
check_eq "devices: kind vf" vf "$(jq -r .kind <<<"$d")"
check_eq "devices: id is the VF" $VF "$(jq -r .id <<<"$d")"
check_eq "devices: parent is the VF" $VF "$(jq -r .parent <<<"$d")"
check_eq "devices: type and profile" "1414 NVIDIA H100-1-10C" "$(jq -r '"\(.type_id) \(.profile)"' <<<"$d")"
check_eq "types: current type" 1414 "$(parent $VF | jq -r .current_type_id)"
check_eq "homogeneous rule: a sibling VF offers only 1414" '["1414"]' \
	"$(parent 0000:41:00.5 | jq -c '[.types[] | select(.available > 0) | .type_id]')"
check_eq "other GPU offers everything" 14 \
	"$(parent 0000:81:00.4 | jq '[.types[] | select(.available > 0)] | length')"
expect_cli_fail "a second vGPU on the same VF is refused" 1 "^vgpumig: .*$VF" \
	create --parent $VF --type 1414
expect_cli_fail "another type on the GPU is refused" 1 "^vgpumig: .*1420" \
	create --parent 0000:41:00.5 --type 1420
check_eq "refusal left the sibling empty" 0 "$(cat $SYS/0000:41:00.5/nvidia/current_vgpu_type)"

# fill the GPU: 1-10C allows 7
made=($VF)
for i in $(seq 6); do
	p=$(types | jq -r '[.parents[] | select(.physfn == "0000:41:00.0" and .current_type_id == null)
		| select(any(.types[]; .type_id == "1414" and .available > 0)) | .address][0] // empty')
	run_cli out err rc create --parent "$p" --type 1414
	[ "$rc" = 0 ] && made+=("$out") || fail "VF create $i on '$p': $err"
done
check_eq "7 vGPUs on GPU 0" 7 "$("$VGPUMIG" devices --json | jq '[.devices[] | select(.id | startswith("0000:41:"))] | length')"
free=$(types | jq -r '[.parents[] | select(.physfn == "0000:41:00.0" and .current_type_id == null) | .address][0]')
check_eq "a full GPU's free VFs offer nothing" 0 "$(parent "$free" | jq '[.types[] | select(.available > 0)] | length')"
expect_cli_fail "8th 1-10C refused" 1 "^vgpumig: .*$free" create --parent "$free" --type 1414
check_eq "still empty" 0 "$(cat $SYS/$free/nvidia/current_vgpu_type)"

run_cli out err rc remove $VF
check_eq "remove by VF address" 0 "$rc"
check_eq "sysfs freed" 0 "$(cat $SYS/$VF/nvidia/current_vgpu_type)"
check_eq "capacity back: free VFs offer 1414 again" '["1414"]' \
	"$(parent "$free" | jq -c '[.types[] | select(.available > 0) | .type_id]')"
for id in "${made[@]:1}"; do "$VGPUMIG" remove "$id" >/dev/null || fail "remove $id"; done
check_eq "all removed" 0 "$("$VGPUMIG" devices --json | jq '.devices | length')"
check_eq "GPU 0 offers all 14 types again" 14 \
	"$(parent 0000:41:00.5 | jq '[.types[] | select(.available > 0)] | length')"
run_cli out err rc create --parent 0000:41:00.5 --type 1427
check_eq "after emptying, a different type fits" "0 0000:41:00.5" "$rc $out"
"$VGPUMIG" remove 0000:41:00.5 >/dev/null

finish
