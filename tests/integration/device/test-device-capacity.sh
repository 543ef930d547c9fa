#!/bin/bash
# test-device-capacity: the vgpumig device verbs against the emulator's
# capacity rules: create until full (A100 on VFs, M10 on GPUs), the
# homogeneous-type rule as seen by `vgpumig types --json`, remove frees
# capacity, duplicate UUIDs refused.
. "$(dirname "$0")/lib.sh"

emu_start a100 A100 --gpus 2
export VGPUMIG_SYSFS_ROOT=$TMP/a100

# avail TYPE [PHYSFN]: total available of TYPE (over the parents of PHYSFN).
avail() {
	"$VGPUMIG" types --json | jq --arg t "$1" --arg pf "${2:-}" \
		'[.parents[] | select($pf == "" or .physfn == $pf) | .types[] |
		  select(.type_id == $t) | .available] | add'
}
# first_free TYPE PHYSFN: first parent of PHYSFN that can create TYPE now.
first_free() {
	"$VGPUMIG" types --json | jq -r --arg t "$1" --arg pf "$2" \
		'[.parents[] | select(.physfn == $pf) | select(any(.types[]; .type_id == $t and .available > 0))
		  | .address][0] // empty'
}
# others_avail PHYSFN TYPE: sum of available of every other type on PHYSFN.
others_avail() {
	"$VGPUMIG" types --json | jq --arg t "$2" --arg pf "$1" \
		'[.parents[] | select(.physfn == $pf) | .types[] | select(.type_id != $t) | .available] | add'
}

GPU0=0000:41:00.0
GPU1=0000:81:00.0
check_eq "types lists 32 VF parents" 32 "$("$VGPUMIG" types --json | jq '.parents | length')"
check_eq "parents carry their physfn" 16 \
	"$("$VGPUMIG" types --json | jq --arg pf $GPU0 '[.parents[] | select(.physfn == $pf)] | length')"
check_eq "driver version" 550.90.05 "$("$VGPUMIG" types --json | jq -r .driver_version)"
check_eq "A100-4C offered on every VF of GPU 0 before any create" 16 "$(avail nvidia-471 $GPU0)"
check_eq "no devices yet" 0 "$("$VGPUMIG" devices --json | jq '.devices | length')"

# ---- create until full: A100-4C allows 10 per GPU ----
created=()
for i in $(seq 10); do
	p=$(first_free nvidia-471 $GPU0)
	run_cli out err rc create --parent "$p" --type nvidia-471
	if [ "$rc" = 0 ] && [ -n "$out" ]; then created+=("$out"); else fail "create $i on $p: $err"; fi
	if [ "$i" = 1 ]; then
		check_eq "homogeneous rule: other types on GPU 0 show 0" 0 "$(others_avail $GPU0 nvidia-471)"
		check_eq "A100-4C still on the 15 free VFs" 15 "$(avail nvidia-471 $GPU0)"
		check_eq "GPU 1 unaffected" 96 "$(others_avail $GPU1 none)"
	fi
done
check_eq "10 creations succeeded" 10 "${#created[@]}"
check_eq "devices lists them" 10 "$("$VGPUMIG" devices --json | jq '.devices | length')"
check_eq "each VF holds one" 10 "$("$VGPUMIG" devices --json | jq '[.devices[].parent] | unique | length')"
check_eq "GPU 0 full: nothing available" 0 "$(avail nvidia-471 $GPU0)"
check_eq "GPU 0 full: other types 0" 0 "$(others_avail $GPU0 nvidia-471)"
check "no VF of GPU 0 offers 4C" test -z "$(first_free nvidia-471 $GPU0)"
free_vf=$("$VGPUMIG" types --json | jq -r --arg pf $GPU0 \
	'[.parents[] | select(.physfn == $pf) | .address] - ['"$("$VGPUMIG" devices --json | jq -c '[.devices[].parent]' | tr -d '[]')"'] | .[0]')
check "a VF without a vGPU is left" test -n "$free_vf"
before=$(tree_state $VGPUMIG_SYSFS_ROOT)
expect_cli_fail "11th create refused with a clear reason" 1 \
	"^vgpumig: no free instance of type 'nvidia-471' \(NVIDIA A100-4C\) on $free_vf \(0 available\)" \
	create --parent "$free_vf" --type nvidia-471
expect_cli_fail "other type on the full GPU refused" 1 "no free instance of type 'nvidia-476'" \
	create --parent "$free_vf" --type nvidia-476
check_eq "refusals changed nothing" "$before" "$(tree_state $VGPUMIG_SYSFS_ROOT)"
check_eq "GPU 1 still offers 40C" 16 "$(avail nvidia-476 $GPU1)"

# ---- JSON fields of one device ----
d=$("$VGPUMIG" devices --json | jq -c --arg id "${created[0]}" '.devices[] | select(.id == $id)')
check_eq "device kind" mdev "$(jq -r .kind <<<"$d")"
check_eq "device type" nvidia-471 "$(jq -r .type_id <<<"$d")"
check_eq "device profile" "NVIDIA A100-4C" "$(jq -r .profile <<<"$d")"
check_eq "device framebuffer" 4294967296 "$(jq -r .framebuffer_bytes <<<"$d")"
check_eq "device parent is its sysfs parent" \
	"$(basename "$(dirname "$(realpath $VGPUMIG_SYSFS_ROOT/sys/bus/mdev/devices/${created[0]})")")" \
	"$(jq -r .parent <<<"$d")"

# ---- duplicate UUID ----
p1=$(first_free nvidia-471 $GPU1)
expect_cli_fail "duplicate UUID refused" 1 "${created[0]}.*already exists" \
	create --parent "$p1" --type nvidia-471 --uuid "${created[0]}"
check_eq "duplicate created nothing on GPU 1" 0 \
	"$("$VGPUMIG" devices --json | jq --arg pf "${p1%.*}" '[.devices[] | select(.parent | startswith("0000:81"))] | length')"

# ---- remove frees capacity ----
run_cli out err rc remove "${created[3]}"
check_eq "remove exits 0" 0 "$rc"
check_eq "9 devices left" 9 "$("$VGPUMIG" devices --json | jq '.devices | length')"
# each of the 7 empty VFs offers 1 again, since the GPU has room for a 10th
check_eq "A100-4C offered again on the 7 empty VFs" 7 "$(avail nvidia-471 $GPU0)"
check_eq "other types still blocked (9 remain)" 0 "$(others_avail $GPU0 nvidia-471)"
U=0a0b0c0d-1111-4222-8333-444455556666
run_cli out err rc create --parent "$(first_free nvidia-471 $GPU0)" --type nvidia-471 --uuid $U
check_eq "re-create with a chosen UUID" "0 $U" "$rc $out"
expect_cli_fail "removing an unknown UUID fails" 1 "." remove 99999999-8888-4777-8666-555544443333
for id in "${created[@]}" $U; do
	[ "$id" = "${created[3]}" ] && continue
	"$VGPUMIG" remove "$id" >/dev/null || fail "remove $id"
done
check_eq "all removed" 0 "$("$VGPUMIG" devices --json | jq '.devices | length')"
check_eq "GPU 0 offers every type again" 96 "$(others_avail $GPU0 none)"

# ---- M10: several vGPUs per parent (the GPU itself) ----
emu_start m10 M10
export VGPUMIG_SYSFS_ROOT=$TMP/m10
P=$("$VGPUMIG" types --json | jq -r '.parents[0].address')
check_eq "M10 parent is its own physfn" "$P" \
	"$("$VGPUMIG" types --json | jq -r '.parents[0].physfn')"
check_eq "M10 board" M10 "$("$VGPUMIG" types --json | jq -r '.parents[0].board')"
check_eq "M10-1Q max 8" 8 "$("$VGPUMIG" types --json | jq '.parents[0].types[] | select(.name == "GRID M10-1Q") | .available')"
for i in $(seq 8); do
	"$VGPUMIG" create --parent "$P" --type nvidia-39 >/dev/null || fail "M10 create $i"
done
check_eq "8 on one GPU" 8 "$("$VGPUMIG" devices --json | jq --arg p "$P" '[.devices[] | select(.parent == $p)] | length')"
expect_cli_fail "9th M10-1Q refused" 1 "no free instance of type 'nvidia-39' \(GRID M10-1Q\) on $P \(0 available\)" \
	create --parent "$P" --type nvidia-39
check_eq "other M10 GPUs untouched" 0 \
	"$("$VGPUMIG" types --json | jq --arg p "$P" '[.parents[] | select(.address != $p) | .types[] | select(.available != .max_instances)] | length')"
unset VGPUMIG_SYSFS_ROOT
check_eq "--sysfs-root works like the environment" 8 \
	"$("$VGPUMIG" --sysfs-root $TMP/m10 devices --json | jq '.devices | length')"

finish
