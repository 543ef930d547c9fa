#!/bin/bash
# test-emu-sysfs: vgpu-sysfs-emu behaves like the kernel's sysfs, checked with
# plain shell tools (no vgpumig code involved): layout and relative links,
# attribute permissions, create/remove semantics and their errnos, the
# homogeneous rule, per-VF limits, the vendor VF interface, fault injection,
# concurrent creates, daemon mode and clean unmount.
. "$(dirname "$0")/lib.sh"

U1=11111111-2222-3333-4444-555555555555
U2=22222222-2222-3333-4444-555555555555
U3=33333333-2222-3333-4444-555555555555

# write FILE VALUE: `echo VALUE > FILE`; prints the error text on failure.
write() { (printf '%s\n' "$2" >"$1") 2>&1 | sed 's/.*: //'; }
# write1 FILE TEXT: TEXT in exactly one write(2) (bash writes line by line);
# prints the error text on failure.
write1() {
	python3 -c 'import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY)
try:
    os.write(fd, sys.argv[2].encode())
except OSError as e:
    print(e.strerror)' "$1" "$2"
}

# ---- A100: mdev on SR-IOV VFs ----
emu_start a100 A100 --gpus 2 --driver-version 535.183.04
M=$TMP/a100
VF=0000:41:00.4
T=$M/sys/class/mdev_bus/$VF/mdev_supported_types
check_eq "driver version in sysfs" 535.183.04 "$(cat $M/sys/module/nvidia/version)"
check "proc version line" grep -q '^NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.183.04  ' \
	$M/proc/driver/nvidia/version
check_eq "32 VF parents on 2 GPUs" 32 "$(ls $M/sys/class/mdev_bus | wc -l)"
check_eq "mdev_bus link is relative, like the kernel's" \
	../../devices/pci0000:40/0000:40:01.1/$VF "$(readlink $M/sys/class/mdev_bus/$VF)"
check_eq "bus/pci link is relative" ../../../devices/pci0000:40/0000:40:01.1/$VF \
	"$(readlink $M/sys/bus/pci/devices/$VF)"
check_eq "VF physfn resolves to the PF" $M/sys/devices/pci0000:40/0000:40:01.1/0000:41:00.0 \
	"$(realpath $M/sys/bus/pci/devices/$VF/physfn)"
check_eq "PF virtfn15 is the 16th VF" 0000:41:02.3 \
	"$(basename "$(readlink $M/sys/bus/pci/devices/0000:41:00.0/virtfn15)")"
check_eq "second GPU on its own root port" 0000:81:00.0 \
	"$(basename "$(realpath $M/sys/bus/pci/devices/0000:81:00.4/physfn)")"
check_eq "type name" "NVIDIA A100-4C" "$(cat $T/nvidia-471/name)"
check_eq "NVIDIA description" \
	"num_heads=1, frl_config=60, framebuffer=4096M, max_resolution=4096x2160, max_instance=10" \
	"$(cat $T/nvidia-471/description)"
check_eq "device_api" vfio-pci "$(cat $T/nvidia-471/device_api)"
check_eq "create is write-only 0200" 200 "$(stat -c %a $T/nvidia-471/create)"
check_eq "reading create is refused" "Permission denied" "$( (cat $T/nvidia-471/create) 2>&1 | sed 's/.*: //')"
check_eq "writing available_instances is refused" "Permission denied" \
	"$(write $T/nvidia-471/available_instances 5)"
check_eq "nothing can be created in the tree" "Operation not permitted" \
	"$( (touch $M/sys/x) 2>&1 | sed 's/.*: //')"
check_eq "ECC line for helper tools" "ECC Mode: 	 Enabled" \
	"$(grep '^ECC' $M/proc/driver/nvidia/gpus/0000:41:00.0/information)"

check_eq "malformed UUID -> EINVAL" "Invalid argument" "$(write $T/nvidia-471/create not-a-uuid)"
check_eq "create ok" "" "$(write $T/nvidia-471/create $U1)"
D=$M/sys/bus/mdev/devices/$U1
check_eq "bus/mdev link" ../../../devices/pci0000:40/0000:40:01.1/$VF/$U1 "$(readlink $D)"
check_eq "mdev_type link" ../mdev_supported_types/nvidia-471 "$(readlink $D/mdev_type)"
check_eq "type devices/ entry" ../../../$U1 "$(readlink $T/nvidia-471/devices/$U1)"
check "iommu_group resolves to a group listing the mdev" \
	test -L "$(realpath $D/iommu_group)/devices/$U1"
check_eq "remove is write-only" 200 "$(stat -c %a $D/remove)"
check_eq "duplicate UUID on another VF -> EEXIST" "File exists" \
	"$(write $M/sys/class/mdev_bus/0000:41:00.5/mdev_supported_types/nvidia-471/create $U1)"
check_eq "upper-case duplicate is the same UUID" "File exists" \
	"$(write $M/sys/class/mdev_bus/0000:41:00.5/mdev_supported_types/nvidia-471/create ${U1^^})"
check_eq "VF holding a vGPU offers nothing" "0 0 0 0 0 0" "$(echo $(cat $T/*/available_instances))"
check_eq "homogeneous rule on the other VFs of the GPU" "1 0 0 0 0 0" \
	"$(echo $(cat $M/sys/class/mdev_bus/0000:41:00.5/mdev_supported_types/*/available_instances))"
check_eq "other GPU unaffected" "1 1 1 1 1 1" \
	"$(echo $(cat $M/sys/class/mdev_bus/0000:81:00.4/mdev_supported_types/*/available_instances))"
check_eq "other type on the same GPU -> ENOSPC" "No space left on device" \
	"$(write $M/sys/class/mdev_bus/0000:41:00.5/mdev_supported_types/nvidia-472/create $U2)"
check_eq "second vGPU on the same VF -> ENOSPC" "No space left on device" \
	"$(write $T/nvidia-471/create $U2)"
check_eq "remove 0 is a no-op" "" "$(write $D/remove 0)"
check "still there" test -e $D
check_eq "remove junk -> EINVAL" "Invalid argument" "$(write $D/remove yes)"
check_eq "remove ok" "" "$(write $D/remove 1)"
check "device dir gone" test ! -e $M/sys/devices/pci0000:40/0000:40:01.1/$VF/$U1
check "bus link gone" test ! -e $D
check_eq "type devices/ empty" "" "$(ls $T/nvidia-471/devices)"
check_eq "capacity back" "1 1 1 1 1 1" "$(echo $(cat $T/*/available_instances))"

# fill GPU 0 with 40C (max 1) then check nothing else fits there
check_eq "40C on VF 0" "" "$(write $T/nvidia-476/create $U1)"
check_eq "GPU full: no 40C on VF 1" "0" \
	"$(cat $M/sys/class/mdev_bus/0000:41:00.5/mdev_supported_types/nvidia-476/available_instances)"
check_eq "GPU full: create -> ENOSPC" "No space left on device" \
	"$(write $M/sys/class/mdev_bus/0000:41:00.5/mdev_supported_types/nvidia-476/create $U2)"
write $M/sys/bus/mdev/devices/$U1/remove 1 >/dev/null

# ---- fault injection ----
C=$M/.vgpu-emu/control
check_eq "control starts clear" "fail-create none" "$(cat $C)"
check_eq "bad control command -> EINVAL" "Invalid argument" "$(write $C 'fail-create EWHAT')"
check_eq "fail-create EIO accepted" "" "$(write $C 'fail-create EIO')"
check_eq "state shows it" "fail-create EIO" "$(cat $C)"
check_eq "next create fails EIO" "Input/output error" "$(write $T/nvidia-471/create $U1)"
check "nothing created" test ! -e $M/sys/bus/mdev/devices/$U1
check_eq "fault is one-shot" "" "$(write $T/nvidia-471/create $U1)"
write $C 'fail-create ENOSPC' >/dev/null
check_eq "fail-create ENOSPC" "No space left on device" \
	"$(write $M/sys/class/mdev_bus/0000:81:00.4/mdev_supported_types/nvidia-471/create $U2)"
check_eq "busy-remove accepted" "" "$(write $C "busy-remove $U1")"
check_eq "busy remove -> EBUSY" "Device or resource busy" "$(write $M/sys/bus/mdev/devices/$U1/remove 1)"
check "busy device still there" test -e $M/sys/bus/mdev/devices/$U1
check_eq "still busy on retry" "Device or resource busy" "$(write $M/sys/bus/mdev/devices/$U1/remove 1)"
check_eq "clear" "" "$(write $C clear)"
check_eq "cleared state" "fail-create none" "$(cat $C)"
check_eq "remove after clear" "" "$(write $M/sys/bus/mdev/devices/$U1/remove 1)"

# block-remove: the write waits (as current kernels do while the device is
# open) and everything else goes on; unblocking lets it finish.
write $T/nvidia-471/create $U1 >/dev/null
check_eq "block-remove accepted" "" "$(write $C "block-remove $U1")"
check_eq "state shows the block" "$(printf 'fail-create none\nblock-remove %s' $U1)" "$(cat $C)"
(write $M/sys/bus/mdev/devices/$U1/remove 1 >$TMP/blocked.out; echo done >>$TMP/blocked.out) &
BLOCKED=$!
sleep 0.5
check "the blocked remove has not returned" test ! -s $TMP/blocked.out
check "the device is still there while its remove blocks" test -e $M/sys/bus/mdev/devices/$U1
check_eq "other reads answer meanwhile" "0" \
	"$(timeout 2 cat $M/sys/class/mdev_bus/$VF/mdev_supported_types/nvidia-476/available_instances)"
check_eq "other creates answer meanwhile" "" \
	"$(timeout 2 bash -c "printf '%s\n' $U2 >$M/sys/class/mdev_bus/0000:41:00.5/mdev_supported_types/nvidia-471/create" 2>&1)"
check_eq "unblock-remove" "" "$(write $C "unblock-remove $U1")"
wait $BLOCKED
check_eq "the blocked remove then succeeds" "done" "$(cat $TMP/blocked.out)"
check "and the device is gone" test ! -e $M/sys/bus/mdev/devices/$U1
write $M/sys/bus/mdev/devices/$U2/remove 1 >/dev/null

# slow-create: every create takes that long; reads are not held up.
check_eq "bad slow-create -> EINVAL" "Invalid argument" "$(write $C 'slow-create 600001')"
check_eq "slow-create accepted" "" "$(write $C 'slow-create 800')"
t0=$(date +%s%N)
(write $T/nvidia-471/create $U1 >$TMP/slow.out) &
SLOW=$!
sleep 0.2
check_eq "a read during a slow create answers" "fail-create none
slow-create 800" "$(timeout 1 cat $C)"
wait $SLOW
t1=$(date +%s%N)
check "the create took at least the delay" test $(( (t1 - t0) / 1000000 )) -ge 700
check "and made the device" test -e $M/sys/bus/mdev/devices/$U1
write $C clear >/dev/null
write $M/sys/bus/mdev/devices/$U1/remove 1 >/dev/null
check_eq "ecc off for one GPU" "" "$(write $C 'ecc off 0000:81:00.0')"
check_eq "that GPU shows ECC disabled" "ECC Mode: 	 Disabled" \
	"$(grep '^ECC' $M/proc/driver/nvidia/gpus/0000:81:00.0/information)"
check_eq "the other keeps it" "ECC Mode: 	 Enabled" \
	"$(grep '^ECC' $M/proc/driver/nvidia/gpus/0000:41:00.0/information)"
check_eq "ecc for an unknown GPU -> EINVAL" "Invalid argument" "$(write $C 'ecc on 0000:99:00.0')"
check_eq "a bad line undoes the whole write" "Invalid argument" "$(write1 $C $'ecc on\nbogus\n')"
check_eq "so ECC is unchanged" "ECC Mode: 	 Disabled" \
	"$(grep '^ECC' $M/proc/driver/nvidia/gpus/0000:81:00.0/information)"
check_eq "several commands in one write" "" "$(write1 $C $'fail-create EIO\nbusy-remove 0000:41:00.4\n')"
check_eq "all applied" $'fail-create EIO\nbusy-remove 0000:41:00.4' "$(cat $C)"
write $C clear >/dev/null
check_eq "ecc on for every GPU" "" "$(write $C 'ecc on')"
check_eq "all enabled" "Enabled Enabled" \
	"$(echo $(grep -h '^ECC' $M/proc/driver/nvidia/gpus/*/information | awk '{ print $NF }'))"

# ---- M10: mdev on the physical GPUs, several per parent ----
emu_start m10 M10
M=$TMP/m10
check_eq "M10 has 4 GPUs" 4 "$(ls $M/sys/class/mdev_bus | wc -l)"
P=$(ls $M/sys/class/mdev_bus | head -1)
T=$M/sys/class/mdev_bus/$P/mdev_supported_types
check "M10 GPUs sit behind a PCIe switch" \
	grep -q '^../../devices/pci0000:40/0000:40:01.1/0000:41:00.0/0000:42:08.0/' \
	<<<"$(readlink $M/sys/class/mdev_bus/$P)"
check_eq "M10 ECC off by default" "ECC Mode: 	 Disabled" \
	"$(grep '^ECC' $M/proc/driver/nvidia/gpus/$P/information)"
check_eq "M10-2Q name" "GRID M10-2Q" "$(cat $T/nvidia-42/name)"
check_eq "M10-2Q max 4" 4 "$(cat $T/nvidia-42/available_instances)"
# 8 concurrent creates of a max-4 type: exactly 4 win (the emulator's lock)
writers=()
for i in 1 2 3 4 5 6 7 8; do
	(printf '%s\n' "0000000$i-aaaa-bbbb-cccc-dddddddddddd" >$T/nvidia-42/create) 2>/dev/null &
	writers+=($!)
done
wait "${writers[@]}"
check_eq "concurrent creates stop at max_instance" 4 "$(ls $T/nvidia-42/devices | wc -l)"
check_eq "bus list agrees" 4 "$(ls $M/sys/bus/mdev/devices | wc -l)"
check_eq "type full" 0 "$(cat $T/nvidia-42/available_instances)"
check_eq "other types 0 on this GPU" 0 "$(cat $T/*/available_instances | sort -u)"
for d in $T/nvidia-42/devices/*; do write $d/remove 1 >/dev/null; done
check_eq "all removed" "" "$(ls $M/sys/bus/mdev/devices)"
check_eq "capacity restored" 4 "$(cat $T/nvidia-42/available_instances)"
# a "remove" opened before the mdev went away must not reach a new mdev
# re-created with the same UUID (kernfs gives ENODEV)
echo $U1 >$T/nvidia-39/create
check_eq "stale remove handle -> ENODEV, new mdev untouched" "No such device True" "$(python3 -c '
import os, sys
bus, create, u = sys.argv[1:]
fd = os.open(f"{bus}/{u}/remove", os.O_WRONLY)
os.write(os.open(f"{bus}/{u}/remove", os.O_WRONLY), b"1")
os.write(os.open(create, os.O_WRONLY), u.encode())
try:
    os.write(fd, b"1")
    print("written")
except OSError as e:
    print(e.strerror, os.path.exists(f"{bus}/{u}"))' $M/sys/bus/mdev/devices $T/nvidia-39/create $U1)"
write $M/sys/bus/mdev/devices/$U1/remove 1 >/dev/null
emu_stop m10

# ---- H100: vendor VF interface, no mdev ----
emu_start h100 H100 --ecc off
M=$TMP/h100
VF=0000:41:00.4
N=$M/sys/bus/pci/devices/$VF/nvidia
check "no mdev class on the VF interface" test ! -e $M/sys/class/mdev_bus
check_eq "H100 ECC forced off" "ECC Mode: 	 Disabled" \
	"$(grep '^ECC' $M/proc/driver/nvidia/gpus/0000:41:00.0/information)"
check_eq "creatable header" "ID    : vGPU Name" "$(head -1 $N/creatable_vgpu_types)"
check_eq "first creatable" "1414  : NVIDIA H100-1-10C" "$(sed -n 2p $N/creatable_vgpu_types)"
check_eq "14 creatable types" 15 "$(wc -l <$N/creatable_vgpu_types)"
check_eq "current 0" 0 "$(cat $N/current_vgpu_type)"
check_eq "unknown id -> EINVAL" "Invalid argument" "$(write $N/current_vgpu_type 9999)"
check_eq "junk -> EINVAL" "Invalid argument" "$(write $N/current_vgpu_type abc)"
check_eq "create 1414" "" "$(write $N/current_vgpu_type 1414)"
check_eq "current shows it" 1414 "$(cat $N/current_vgpu_type)"
check_eq "holding VF lists only the type it holds" "1414  : NVIDIA H100-1-10C" \
	"$(tail -n +2 $N/creatable_vgpu_types)"
N2=$M/sys/bus/pci/devices/0000:41:00.5/nvidia
check_eq "other VFs list only the type in use" "1414  : NVIDIA H100-1-10C" \
	"$(tail -n +2 $N2/creatable_vgpu_types)"
check_eq "other type on the GPU -> ENOSPC" "No space left on device" "$(write $N2/current_vgpu_type 1420)"
check_eq "second id on a busy VF -> EBUSY" "Device or resource busy" "$(write $N/current_vgpu_type 1414)"
# fill the GPU: 1-10C allows 7
for vf in 0000:41:00.5 0000:41:00.6 0000:41:00.7 0000:41:01.0 0000:41:01.1 0000:41:01.2; do
	write $M/sys/bus/pci/devices/$vf/nvidia/current_vgpu_type 1414 >/dev/null
done
check_eq "GPU full: 7 VFs hold 1414" 7 \
	"$(grep -lx 1414 $M/sys/bus/pci/devices/*/nvidia/current_vgpu_type | wc -l)"
check_eq "GPU full: free VF lists nothing" "ID    : vGPU Name" \
	"$(cat $M/sys/bus/pci/devices/0000:41:01.3/nvidia/creatable_vgpu_types)"
check_eq "GPU full: create -> ENOSPC" "No space left on device" \
	"$(write $M/sys/bus/pci/devices/0000:41:01.3/nvidia/current_vgpu_type 1414)"
write $M/.vgpu-emu/control "busy-remove $VF" >/dev/null
check_eq "busy VF remove -> EBUSY" "Device or resource busy" "$(write $N/current_vgpu_type 0)"
check_eq "still held" 1414 "$(cat $N/current_vgpu_type)"
write $M/.vgpu-emu/control clear >/dev/null
check_eq "remove by writing 0" "" "$(write $N/current_vgpu_type 0)"
check_eq "freed" 0 "$(cat $N/current_vgpu_type)"
check_eq "freed VF can create again" "1414  : NVIDIA H100-1-10C" "$(tail -n +2 $N/creatable_vgpu_types)"
emu_stop h100

# ---- L40S, daemon mode: returns once mounted; fusermount3 -u ends it ----
D=$TMP/l40s-daemon
mkdir -p $D
check "daemon mode returns 0" "$EMU_BIN" --catalog L40S $D
check_eq "mounted on return" "NVIDIA L40S-48Q" \
	"$(cat $D/sys/class/mdev_bus/0000:41:00.4/mdev_supported_types/nvidia-1166/name)"
check_eq "L40S has 32 VFs" 32 "$(ls $D/sys/class/mdev_bus | wc -l)"
check "unmount" fusermount3 -u $D
check "mount gone" test ! -e $D/sys
# The daemon exits once unmounted; if another mount namespace made
# meanwhile still holds the mount (see lib.sh emu_reap), SIGTERM must end it.
daemon_gone() {
	local i pat="vgpu-sysfs-emu --catalog L40S $D\$"
	for i in $(seq 100); do
		pgrep -f "$pat" >/dev/null || return 0
		sleep 0.1
	done
	echo "# daemon still served after unmount (mount held elsewhere); SIGTERM"
	pkill -TERM -f "$pat"
	for i in $(seq 100); do
		pgrep -f "$pat" >/dev/null || return 0
		sleep 0.1
	done
	return 1
}
check "daemon exits after unmount" daemon_gone
check_eq "bad catalog is a usage error" 2 "$("$EMU_BIN" --catalog X $D >/dev/null 2>&1; echo $?)"
check_eq "bad --gpus is a usage error" 2 "$("$EMU_BIN" --catalog A100 --gpus 0 $D >/dev/null 2>&1; echo $?)"
check_eq "--catalog without a value is a usage error" 2 "$("$EMU_BIN" $D --catalog >/dev/null 2>&1; echo $?)"
check_eq "no mount point is a usage error" 2 "$("$EMU_BIN" --catalog M10 >/dev/null 2>&1; echo $?)"
check "--version" grep -q '^vgpu-sysfs-emu [0-9]' <<<"$("$EMU_BIN" --version)"

finish
