#!/usr/bin/env bash
# hostile_checkpoint.sh — class 6: checkpoint directories.
#   - model.safetensors.index.json a dangling link, a looping link, a
#     directory, a FIFO, or unreadable (as 'nobody' when root): an error
#     naming it, never "no index" (which would refine whatever shards are
#     there: half a model with exit 0)
#   - the index parsed as strictly as a shard header: trailing bytes,
#     \u0000, invalid UTF-8, a raw control character, a bad number
#   - an output header over the reader's 100,000,000-byte limit (Instruct's
#     metadata just under it, timber's keys added): refused before any work
#   Each: exit 1, one line, inputs unchanged, nothing written.
#   usage: hostile_checkpoint.sh TIMBER TIMBER_GEN REFCHECK
. "$(dirname "$0")/hostile_lib.sh"

if ! "$GEN" "$T/pair" --preset tiny --seed 13 --variants none \
    --max-shard-size 64K >"$T/gen.log" 2>&1; then
    echo "timber-gen failed: $(cat "$T/gen.log")"
    exit 1
fi
B=$T/pair/base
I=$T/pair/instruct
IDX=model.safetensors.index.json
check "the pair has an index" test -f "$I/$IDX"

# variant NAME: a copy of Instruct whose index is replaced by the caller.
variant() {
    rm -rf "$T/$1"
    cp -a "$I" "$T/$1"
    rm "$T/$1/$IDX"
    V=$T/$1
}
# bad_index NAME WHAT...: refine and erank and inspect all refuse V.
bad_index() {
    local name=$1
    shift
    snapshot in "$B" "$V"
    refused "$name" 1 1 "$V/$IDX" "$@" -- "$B" "$V" "$T/out-$name" --no-cache
    no_out "$name" "$T/out-$name"
    refused "$name-erank" 1 1 "$V/$IDX" -- erank "$B" "$V" --no-cache -q
    refused "$name-inspect" 1 1 "$V/$IDX" -- inspect "$V"
}

variant dangling
ln -s gone.json "$V/$IDX"
bad_index dangling "dangling symbolic link"
variant looping
ln -s "$IDX" "$V/$IDX"
bad_index looping "Too many levels of symbolic links"
variant loop2
ln -s b.json "$V/$IDX"
ln -s "$IDX" "$V/b.json"
bad_index loop2 "symbolic links"
variant isdir
mkdir "$V/$IDX"
bad_index isdir "not a readable regular file"
variant fifo
mkfifo "$V/$IDX"
bad_index fifo "not a readable regular file"
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
    variant unreadable
    cp "$I/$IDX" "$V/$IDX"
    chmod -R a+rX "$T"
    chmod 600 "$V/$IDX"
    snapshot in "$B" "$V"
    RC=0
    setpriv --reuid=nobody --regid=nogroup --clear-groups "$TIMBER" inspect "$V" \
        >"$T/unreadable.out" 2>"$T/unreadable.err" || RC=$?
    expect_rc unreadable 1
    one_line unreadable "$V/$IDX" "Permission denied"
    unchanged in unreadable
elif [ "$(id -u)" != 0 ]; then
    variant unreadable
    cp "$I/$IDX" "$V/$IDX"
    chmod 000 "$V/$IDX"
    bad_index unreadable "Permission denied"
else
    skip "unreadable index: root without setpriv reads anything"
fi

# strict JSON: each variant of the real index
strict() {
    local name=$1 what=$2 py=$3
    variant "$name"
    python3 - "$I/$IDX" "$V/$IDX" "$py" <<'PY'
import sys
src, dst, how = sys.argv[1:]
t = open(src, "rb").read()
if how == "trailing":
    t = t.rstrip() + b" {}"
elif how == "nul":
    t = t.replace(b'"metadata": {', b'"metadata": {"a\\u0000b": 1, ', 1) \
        if b'"metadata": {' in t else t.replace(b"{", b'{"a\\u0000b": 1, ', 1)
elif how == "utf8":
    t = t.replace(b"{", b'{"\xc3\x28": 1, ', 1)
elif how == "control":
    t = t.replace(b"{", b'{"a\x01b": 1, ', 1)
elif how == "number":
    t = t.replace(b"{", b'{"n": 01, ', 1)
open(dst, "wb").write(t)
PY
    bad_index "$name" "$what"
}
strict trailing "unexpected text after the index's JSON value" trailing
strict nul '\u0000' nul
strict utf8 "not valid UTF-8" utf8
strict control "raw control character" control
strict number "not valid JSON" number

# An output header over the limit: refused before any shard is written.
if python3 "$HERE/stpair.py" huge-meta "$T/huge"; then
    snapshot in "$T/huge"
    run huge-inspect -- inspect "$T/huge/instruct"
    expect_rc huge-inspect 0
    refused huge 1 1 "over the 100000000-byte limit" "/model.safetensors: its header would be" -- \
        "$T/huge/base" "$T/huge/instruct" "$T/huge/out" --no-cache
    no_out huge "$T/huge/out"
    rm -rf "$T/huge"
else
    bad "stpair.py huge-meta failed"
fi
finish
