#!/bin/bash
# test-device-path-tricks: ids that try to escape the sysfs tree (.., /,
# absolute paths, odd lengths) are refused by vgpumig with a clear error
# before any path is built, and nothing in the emulated sysfs changes.
. "$(dirname "$0")/lib.sh"

emu_start a100 A100
emu_start h100 H100
LONG=$(printf 'a%.0s' $(seq 5000))

# refused ROOT DESC args...: exit 1, one "vgpumig: ..." line, no change.
refused() {
	local root=$1 desc=$2 before
	shift 2
	before=$(tree_state "$root")
	VGPUMIG_SYSFS_ROOT=$root expect_cli_fail "$desc" 1 "^vgpumig: " "$@"
	check_eq "$desc: one line" 1 "$(wc -l <"$TMP/cli.err")"
	check_eq "$desc: nothing changed" "$before" "$(tree_state "$root")"
}

A=$TMP/a100
U=$(VGPUMIG_SYSFS_ROOT=$A "$VGPUMIG" create --parent 0000:41:00.4 --type nvidia-471)
check "a vGPU to aim at" test -n "$U"
refused $A "parent with .." create --parent ../../x --type nvidia-471
refused $A "parent that walks to a sibling" create --parent 0000:41:00.4/../0000:41:00.5 --type nvidia-471
refused $A "absolute parent" create --parent /sys/class/mdev_bus/0000:41:00.5 --type nvidia-471
refused $A "parent with a trailing slash" create --parent 0000:41:00.5/ --type nvidia-471
refused $A "huge parent" create --parent "$LONG" --type nvidia-471
refused $A "type with .." create --parent 0000:41:00.5 --type ../../x
refused $A "type that walks to another type" create --parent 0000:41:00.5 --type nvidia-472/../nvidia-471
refused $A "type ." create --parent 0000:41:00.5 --type .
refused $A "type .." create --parent 0000:41:00.5 --type ..
refused $A "empty type" create --parent 0000:41:00.5 --type ""
refused $A "huge type" create --parent 0000:41:00.5 --type "$LONG"
refused $A "type with a newline" create --parent 0000:41:00.5 --type $'nvidia-471\nx'
refused $A "unknown type" create --parent 0000:41:00.5 --type nvidia-9999
refused $A "uuid with a path" create --parent 0000:41:00.5 --type nvidia-471 --uuid ../../../etc/passwd
refused $A "uuid with a trailing newline" create --parent 0000:41:00.5 --type nvidia-471 \
	--uuid $'0a0b0c0d-1111-4222-8333-444455556666\n'
refused $A "remove with .." remove ../../../x
refused $A "remove by absolute path" remove /sys/bus/mdev/devices/$U
refused $A "remove uuid/.." remove "$U/../$U"
refused $A "remove ." remove .
refused $A "remove a UUID that does not exist" remove 0a0b0c0d-1111-4222-8333-444455556666
refused $A "remove a PCI parent that holds nothing" remove 0000:41:00.5
check "the aimed-at vGPU survived" test -e $A/sys/bus/mdev/devices/$U

H=$TMP/h100
refused $H "VF type with .." create --parent 0000:41:00.4 --type ../current_vgpu_type
refused $H "VF type 0 (the remove value)" create --parent 0000:41:00.4 --type 0
refused $H "VF type with a path" create --parent 0000:41:00.4 --type 1414/../1420
refused $H "VF create with a UUID" create --parent 0000:41:00.4 --type 1414 \
	--uuid 0a0b0c0d-1111-4222-8333-444455556666
refused $H "PF is not a VF parent" create --parent 0000:41:00.0 --type 1414
refused $H "VF remove with .." remove 0000:41:00.4/..

finish
