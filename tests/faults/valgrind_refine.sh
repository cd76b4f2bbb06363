#!/usr/bin/env bash
# valgrind_refine.sh — complete runs of timber under valgrind's memcheck
# with --leak-check=full: any invalid access, use of uninitialised memory,
# or definite/indirect leak fails the test.  Run in the ordinary build
# (valgrind cannot run sanitizer binaries; the sanitizer build has
# LeakSanitizer on every test instead).
#
#   - refine a generated tiny pair (every variant) with a fresh cache,
#     then again from the cache, with two gammas, and with a JSON report
#   - inspect, erank, cache info/verify
#   - failure paths: NaN in a tensor, an existing OUT, a truncated shard
#   usage: valgrind_refine.sh TIMBER TIMBER_GEN REFCHECK
. "$(dirname "$0")/lib.sh"

command -v valgrind >/dev/null 2>&1 || skip_all "valgrind is not installed"
HERE=$(cd "$(dirname "$0")" && pwd)
VG=(valgrind -q --error-exitcode=99 --leak-check=full
    --errors-for-leak-kinds=definite,indirect --track-origins=yes)

"$GEN" "$T/pair" --preset tiny --seed 6 >"$T/gen.log" 2>&1 || {
    echo "timber-gen failed: $(cat "$T/gen.log")"
    exit 1
}
B=$T/pair/base
I=$T/pair/instruct

# vg NAME CODE ARGS...: timber ARGS under valgrind; must exit with CODE
# (99: valgrind found an error).
vg() {
    local name=$1 code=$2
    shift 2
    RC=0
    "${VG[@]}" "$TIMBER" "$@" >"$T/$name.out" 2>"$T/$name.err" </dev/null ||
        RC=$?
    if [ "$RC" -eq "$code" ]; then
        ok
    else
        bad "$name: exit $RC, expected $code: $(grep -v '^timber: warning' "$T/$name.err" | head -c 1500)"
    fi
}

mkdir -p "$T/o"
vg refine 0 "$B" "$I" "$T/o/a" --cache "$T/c.tsvd" --report "$T/r.json"
refcheck refine "$B" "$I" "$T/o/a" 0.2
vg cached 0 "$B" "$I" "$T/o/b" --cache "$T/c.tsvd" --gamma 0,0.5 --threads 2
refcheck cached "$B" "$I" "$T/o/b/gamma-0.5" 0.5
vg inspect 0 inspect "$I" --json
vg erank 0 erank "$B" "$I" --cache "$T/c.tsvd"
vg info 0 cache info "$T/c.tsvd"
vg verify 0 cache verify "$T/c.tsvd"

python3 "$HERE/stpair.py" nan-instruct "$T/nan" || exit 1
vg nan 1 "$T/nan/base" "$T/nan/instruct" "$T/o/nan" --cache "$T/nan.tsvd"
vg exists 1 "$B" "$I" "$T/o/a" --no-cache
mkdir -p "$T/short"
cp "$I"/* "$T/short/"
truncate -s -1 "$T/short/model.safetensors"
vg short 1 "$B" "$T/short" "$T/o/short" --no-cache

finish
