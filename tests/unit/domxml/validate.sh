#!/bin/bash
# validate.sh DATA_DIR: the domain XML inputs against libvirt's own schema.
#  - every input validates with virt-xml-validate, except those listed in
#    DATA_DIR/schema-invalid.txt (which must then fail: the list stays honest);
#  - for each valid input, `vgpumig xml rewrite` with its NAME.map (or with no
#    map and --allow-unmapped) produces XML that still validates, unless the
#    golden says the rewrite is refused, in which case the CLI must exit 1;
#  - `vgpumig xml inspect --json` prints exactly golden/NAME.inspect.json.
set -u
DATA=${1:?usage: validate.sh DATA_DIR}
VGPUMIG=${VGPUMIG_BUILD:?VGPUMIG_BUILD not set}/cli/vgpumig
command -v virt-xml-validate >/dev/null || { echo "virt-xml-validate missing (libvirt-clients)"; exit 1; }
[ -x "$VGPUMIG" ] || { echo "$VGPUMIG not built"; exit 1; }
TMP=$(mktemp -d /tmp/vgm-domxml-validate.XXXXXX)
trap 'rm -rf "$TMP"' EXIT

fail=0 validated=0 rewritten=0
bad() { echo "FAIL: $*"; fail=$((fail + 1)); }

expected_invalid() {
	grep -v '^#' "$DATA/schema-invalid.txt" | awk '{print $1}' | grep -qx "$1"
}

map_args() { # NAME.map -> --map SRC=DST ... [--allow-unmapped]
	local line
	while read -r line; do
		case "$line" in
		'#'* | '') ;;
		allow-unmapped) printf '%s\n' --allow-unmapped ;;
		*) printf '%s\n' --map "$line" ;;
		esac
	done <"$1"
}

for xml in "$DATA"/*.xml; do
	name=$(basename "$xml" .xml)
	# the CLI prints exactly the golden inspect JSON
	if ! "$VGPUMIG" xml inspect --json "$xml" >"$TMP/$name.json" 2>"$TMP/$name.err"; then
		bad "$name: inspect failed: $(cat "$TMP/$name.err")"
	elif ! cmp -s "$TMP/$name.json" "$DATA/golden/$name.inspect.json"; then
		bad "$name: inspect --json differs from golden/$name.inspect.json"
	fi
	if ! virt-xml-validate "$xml" domain >"$TMP/v.log" 2>&1; then
		expected_invalid "$name.xml" || bad "$name: input fails virt-xml-validate: $(head -3 "$TMP/v.log")"
		continue
	fi
	expected_invalid "$name.xml" && { bad "$name: listed in schema-invalid.txt but validates"; continue; }
	validated=$((validated + 1))
	args=(--allow-unmapped)
	[ -f "$DATA/$name.map" ] && mapfile -t args < <(map_args "$DATA/$name.map")
	"$VGPUMIG" xml rewrite "${args[@]}" "$xml" >"$TMP/$name.out" 2>"$TMP/$name.err"
	rc=$?
	if [ -f "$DATA/golden/$name.rewrite.err" ]; then
		[ $rc -eq 1 ] || bad "$name: rewrite should be refused (exit 1), got $rc"
		continue
	fi
	[ $rc -eq 0 ] || { bad "$name: rewrite failed ($rc): $(cat "$TMP/$name.err")"; continue; }
	if [ -f "$DATA/golden/$name.rewrite.xml" ] && ! cmp -s "$TMP/$name.out" "$DATA/golden/$name.rewrite.xml"; then
		bad "$name: CLI rewrite differs from golden/$name.rewrite.xml"
	fi
	if virt-xml-validate "$TMP/$name.out" domain >"$TMP/v.log" 2>&1; then
		rewritten=$((rewritten + 1))
	else
		bad "$name: rewritten XML fails virt-xml-validate: $(head -3 "$TMP/v.log")"
	fi
done
echo "validated inputs: $validated, rewritten outputs validated: $rewritten, failures: $fail"
[ "$validated" -ge 10 ] || bad "only $validated inputs validated; expected at least 10"
[ $fail -eq 0 ]
