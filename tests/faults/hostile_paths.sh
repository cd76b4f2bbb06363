#!/usr/bin/env bash
# hostile_paths.sh — class 1: nothing the user named may clobber an input,
# OUT, the cache or another named file.  Each refused before any work:
# exit 1, one line naming both paths, inputs unchanged, nothing written.
# Compared by device and inode: spelled through "..", a symbolic link, a
# hard link or (as root) a bind mount, it is still refused.
#   usage: hostile_paths.sh TIMBER TIMBER_GEN REFCHECK
. "$(dirname "$0")/hostile_lib.sh"

gen_pair
C=$T/c.tsvd
run warm -- "$B" "$I" "$T/warm" --cache "$C" -q
expect_rc warm 0
rm -rf "$T/warm"
snapshot in "$B" "$I" "$C"
mkdir -p "$T/w"
ln -s "$I" "$T/w/inst-link"
ln "$I/model.safetensors" "$T/w/hard.json"

# refine_refused NAME WHAT... -- ARGS (after BASE INSTRUCT)
rr() {
    local name=$1
    shift
    local whats=()
    while [ "$1" != "--" ]; do whats+=("$1"); shift; done
    shift
    refused "$name" 1 1 "${whats[@]}" -- "$B" "$I" "$@"
    no_out "$name" "$T/w/out"
}

rr report-is-out "$T/w/out.json" "the output directory" -- \
    "$T/w/out.json" --cache "$C" --report "$T/w/out.json"
rr report-twice-dotdot "$T/w/../c.tsvd.json" "the file" -- \
    "$T/w/out" --cache "$C" --report "$C.json" --report "$T/w/../c.tsvd.json"
rr report-twice "the file" -- \
    "$T/w/out" --cache "$C" --report "$T/w/r.json" --report "$T/w/./r.json"
rr report-is-cache-file "$T/c.json" "the cache" -- \
    "$T/w/out" --cache "$T/c.json" --report "$T/c.json"
rr cache-in-out "$T/w/out/c.tsvd" "the output directory" -- \
    "$T/w/out" --cache "$T/w/out/c.tsvd" --force
rr cache-in-input "$I/c.tsvd" "the input" -- \
    "$T/w/out" --cache "$I/c.tsvd"
rr cache-is-shard "$T/w/inst-link/model.safetensors" "is a file of the input" -- \
    "$T/w/out" --cache "$T/w/inst-link/model.safetensors"
rr report-in-input-link "$T/w/inst-link/r.json" "the input" -- \
    "$T/w/out" --cache "$C" --report "$T/w/inst-link/r.json"
rr report-hard-link "$T/w/hard.json" "is a file of the input" -- \
    "$T/w/out" --cache "$C" --report "$T/w/hard.json"
rr out-in-input "$I/sub/../out" "the input" -- "$I/sub/../out" --cache "$C"
rr out-in-input-link "$T/w/inst-link/out" "the input" -- \
    "$T/w/inst-link/out" --cache "$C"
mkdir -p "$T/holder"
cp -a "$B" "$T/holder/b"
snapshot in "$B" "$I" "$C" "$T/holder"
refused input-in-out 1 1 "the output directory" "$T/holder" -- \
    "$T/holder/b" "$I" "$T/holder" --force --cache "$C"
check "input-in-out: OUT (holding an input) was replaced" test -d "$T/holder/b"

# erank's files
re() {
    local name=$1
    shift
    local whats=()
    while [ "$1" != "--" ]; do whats+=("$1"); shift; done
    shift
    refused "$name" 1 1 "${whats[@]}" -- erank "$B" "$I" -q "$@"
}
re erank-json-shard "the input" -- --cache "$C" --json "$T/w/hard.json"
re erank-csv-in-input "the input" -- --cache "$C" --csv "$I/e.csv"
re erank-json-is-cache "the cache" -- --cache "$C" --json "$C"
re erank-json-is-csv "the file" -- --cache "$C" --json "$T/w/e.x" --csv "$T/w/e.x"
re erank-plot-in-input "the input" -- --cache "$C" --plot "$T/w/inst-link/p.png"
check "erank: a refused run wrote a file" test -z "$(ls "$T/w" | grep -v -e inst-link -e hard.json)"

# Bind mounts (root only): the same directory under another name.
if [ "$(id -u)" = 0 ] && mkdir -p "$T/bind" && mount --bind "$I" "$T/bind" 2>/dev/null; then
    at_exit umount "$T/bind"
    rr bind-out "$T/bind/out" "the input" -- "$T/bind/out" --cache "$C"
    rr bind-report "$T/bind/r.json" "the input" -- \
        "$T/w/out" --cache "$C" --report "$T/bind/r.json"
    rr bind-cache "$T/bind/model.safetensors" "the input" -- \
        "$T/w/out" --cache "$T/bind/model.safetensors"
else
    skip "bind mounts: not root, or mount --bind unavailable here"
fi

# And the legitimate runs still work: report, cache and OUT side by side.
run fine -- "$B" "$I" "$T/w/out" --cache "$C" -q --report "$T/w/r.json" \
    --report "$T/w/r.csv"
expect_rc fine 0
err_lines fine 0
check "fine: no report" test -s "$T/w/r.json" -a -s "$T/w/r.csv"
unchanged in fine
no_leftovers fine
finish
