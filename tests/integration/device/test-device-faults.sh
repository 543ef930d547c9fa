#!/bin/bash
# test-device-faults: faults injected through the emulator's control file
# reach the vgpumig CLI as clear one-line errors and leave nothing behind:
# a failing create (ENOSPC, EIO) creates nothing; a remove that returns
# EBUSY is reported as "in use" and the vGPU stays; both backends.
. "$(dirname "$0")/lib.sh"

emu_start a100 A100
export VGPUMIG_SYSFS_ROOT=$TMP/a100
C=$VGPUMIG_SYSFS_ROOT/.vgpu-emu/control
VF=0000:41:00.4
ndev() { "$VGPUMIG" devices --json | jq '.devices | length'; }

before=$(tree_state $VGPUMIG_SYSFS_ROOT)
echo "fail-create ENOSPC" >$C
expect_cli_fail "create failing ENOSPC is reported" 1 "^vgpumig: .*$VF.*" \
	create --parent $VF --type nvidia-471
check_eq "one line on stderr" 1 "$(wc -l <"$TMP/cli.err")"
check_eq "ENOSPC: nothing created" 0 "$(ndev)"
check_eq "ENOSPC: tree unchanged" "$before" "$(tree_state $VGPUMIG_SYSFS_ROOT)"
check_eq "the fault was consumed" "fail-create none" "$(cat $C)"

echo "fail-create EIO" >$C
expect_cli_fail "create failing EIO is reported" 1 "^vgpumig: .*([Ii]nput/output|EIO)" \
	create --parent $VF --type nvidia-471 --uuid 5e5e5e5e-0000-4000-8000-000000000001
check_eq "EIO: nothing created" 0 "$(ndev)"
check "EIO: no stray mdev dir" test ! -e $VGPUMIG_SYSFS_ROOT/sys/bus/mdev/devices/5e5e5e5e-0000-4000-8000-000000000001
check_eq "EIO: tree unchanged" "$before" "$(tree_state $VGPUMIG_SYSFS_ROOT)"

run_cli U err rc create --parent $VF --type nvidia-471
check_eq "create works once the fault is gone" 0 "$rc"
echo "busy-remove $U" >$C
expect_cli_fail "busy remove says in use" 1 "^vgpumig: .*$U.* in use" remove "$U"
check_eq "busy vGPU still listed" "$U" "$("$VGPUMIG" devices --json | jq -r '.devices[0].id')"
check "busy vGPU still in sysfs" test -e $VGPUMIG_SYSFS_ROOT/sys/bus/mdev/devices/$U
expect_cli_fail "still in use on retry" 1 "in use" remove "$U"
echo clear >$C
run_cli out err rc remove "$U"
check_eq "remove after clear" 0 "$rc"
check_eq "gone" 0 "$(ndev)"

# ---- the vendor VF interface ----
emu_start h100 H100
export VGPUMIG_SYSFS_ROOT=$TMP/h100
C=$VGPUMIG_SYSFS_ROOT/.vgpu-emu/control
before=$(tree_state $VGPUMIG_SYSFS_ROOT)
echo "fail-create EIO" >$C
expect_cli_fail "VF create failing EIO is reported" 1 "^vgpumig: .*$VF" create --parent $VF --type 1414
check_eq "VF EIO: nothing created" 0 "$(ndev)"
check_eq "VF EIO: current_vgpu_type still 0" 0 \
	"$(cat $VGPUMIG_SYSFS_ROOT/sys/bus/pci/devices/$VF/nvidia/current_vgpu_type)"
check_eq "VF EIO: tree unchanged" "$before" "$(tree_state $VGPUMIG_SYSFS_ROOT)"
echo "fail-create ENOSPC" >$C
expect_cli_fail "VF create failing ENOSPC is reported" 1 "^vgpumig: .*$VF" create --parent $VF --type 1414
check_eq "VF ENOSPC: nothing created" 0 "$(ndev)"
run_cli out err rc create --parent $VF --type 1414
check_eq "VF create after the faults" "0 $VF" "$rc $out"
echo "busy-remove $VF" >$C
expect_cli_fail "busy VF remove says in use" 1 "^vgpumig: .*$VF.* in use" remove $VF
check_eq "busy VF still holds its vGPU" 1414 \
	"$(cat $VGPUMIG_SYSFS_ROOT/sys/bus/pci/devices/$VF/nvidia/current_vgpu_type)"
echo clear >$C
run_cli out err rc remove $VF
check_eq "VF remove after clear" 0 "$rc"
check_eq "VF empty" 0 "$(ndev)"

finish
