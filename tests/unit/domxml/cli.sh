#!/bin/bash
# cli.sh DATA_DIR: `vgpumig xml inspect|rewrite` as a user runs them: exit
# codes (0 ok, 1 refused with one "vgpumig: ..." line on stderr, 2 usage),
# stdin, --json in both places, byte-identical pass-through, the size limit.
set -u
DATA=${1:?usage: cli.sh DATA_DIR}
V=${VGPUMIG_BUILD:?VGPUMIG_BUILD not set}/cli/vgpumig
TMP=$(mktemp -d /tmp/vgm-domxml-cli.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
fail=0
bad() { echo "FAIL: $*"; fail=$((fail + 1)); }

# expect RC CMD...: run, check the exit code; stdout in $TMP/out, stderr in $TMP/err
expect() {
	local want=$1; shift
	"$@" >"$TMP/out" 2>"$TMP/err"
	local rc=$?
	[ $rc -eq "$want" ] || bad "exit $rc, wanted $want: $* ($(head -2 "$TMP/err"))"
	if [ "$want" -eq 1 ]; then
		[ "$(wc -l <"$TMP/err")" -eq 1 ] || bad "not one line on stderr: $*"
		grep -q '^vgpumig: ' "$TMP/err" || bad "stderr not 'vgpumig: ...': $*"
	fi
}
err_has() { grep -q -- "$1" "$TMP/err" || bad "stderr lacks '$1': $(cat "$TMP/err")"; }
out_has() { grep -q -- "$1" "$TMP/out" || bad "stdout lacks '$1'"; }

U1=c2177883-f1bb-47f0-914d-32a22e3a8804
U2=0b6e21f4-5d3a-4c8e-9f10-7a2b3c4d5e6f

# usage errors: exit 2
expect 2 "$V" xml
expect 2 "$V" xml frobnicate
expect 2 "$V" xml inspect
expect 2 "$V" xml inspect a.xml b.xml
expect 2 "$V" xml rewrite --map nonsense "$DATA/mdev-single.xml"
expect 2 "$V" xml rewrite "$DATA/mdev-single.xml" --map
expect 2 "$V" xml rewrite --bogus "$DATA/mdev-single.xml"
expect 0 "$V" xml --help
out_has 'xml rewrite'

# inspect: file, stdin, --json before or after the verb
expect 0 "$V" xml inspect "$DATA/mdev-single.xml"
out_has "mdev  $U1"
out_has 'problems: 0'
expect 0 "$V" --json xml inspect - <"$DATA/pci-vf.xml"
cmp -s "$TMP/out" "$DATA/golden/pci-vf.inspect.json" || bad "stdin --json differs from golden"
expect 0 "$V" xml inspect "$DATA/mdev-no-uuid.xml"
out_has 'problems: 1'
out_has 'has no <source><address uuid'

# refused input: exit 1 with one line
expect 1 "$V" xml inspect "$TMP/does-not-exist.xml"
err_has 'cannot read'
printf '<domain>\n<name>x</nam></domain>' >"$TMP/bad.xml"
expect 1 "$V" xml inspect "$TMP/bad.xml"
err_has 'line 2'
printf '<!DOCTYPE domain [<!ENTITY a "aaaa">]><domain><name>&a;</name></domain>' >"$TMP/dtd.xml"
expect 1 "$V" xml rewrite "$TMP/dtd.xml"
err_has 'must not contain a DTD'
head -c $((8 * 1024 * 1024 + 1)) /dev/zero | tr '\0' ' ' >"$TMP/big.xml"
expect 1 "$V" xml inspect - <"$TMP/big.xml"
err_has 'limit'

# rewrite
expect 0 "$V" xml rewrite --map "$U1=$U2" "$DATA/mdev-single.xml"
cmp -s "$TMP/out" "$DATA/golden/mdev-single.rewrite.xml" || bad "rewrite differs from golden"
expect 0 "$V" xml rewrite --json --map "$U1=$U2" - <"$DATA/mdev-single.xml"
python3 -c 'import json,sys; sys.stdout.write(json.load(open(sys.argv[1]))["xml"])' "$TMP/out" >"$TMP/x.xml" &&
	cmp -s "$TMP/x.xml" "$DATA/golden/mdev-single.rewrite.xml" || bad "rewrite --json xml differs"
expect 0 "$V" xml rewrite "$DATA/no-hostdevs.xml"
cmp -s "$TMP/out" "$DATA/no-hostdevs.xml" || bad "no-vGPU domain not passed through byte-identical"
expect 1 "$V" xml rewrite "$DATA/mdev-single.xml"
err_has "--map $U1=TARGET"
expect 0 "$V" xml rewrite --allow-unmapped "$DATA/mdev-single.xml"
cmp -s "$TMP/out" "$DATA/mdev-single.xml" || bad "--allow-unmapped with no map changed bytes"
expect 1 "$V" xml rewrite --map "$U1=$U2" --map 0000:42:00.0=0000:43:00.0 "$DATA/mdev-single.xml"
err_has '0000:42:00.0'
expect 1 "$V" xml rewrite --map "$U1=0000:43:00.0" "$DATA/mdev-single.xml"
err_has 'both be UUIDs'

echo "cli checks done, failures: $fail"
[ $fail -eq 0 ]
