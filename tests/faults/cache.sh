#!/usr/bin/env bash
# cache.sh — SVD cache files that must not be trusted.  A record is applied
# only when its CRC and its whole key (name, shape, dtypes, the CRCs of
# both tensors' bytes, transform version, route) match; the output is always what
# a run without a cache writes.
#
#   - a cache from a different pair (same names and shapes, other values):
#     nothing applied, output correct, both pairs' records then coexist
#   - a cache of an older format (right magic, version 0): exit 1 with one
#     line naming it (given with --cache), the file untouched; at the
#     default location: a warning, and the run goes on without it
#   - the previous format, 2 (before records named their route): refused
#     with --cache; at the default location never opened (another name)
#   - a cache corrupted in the middle: that record is recomputed, the
#     others used, the output correct; `cache verify` names the damage
#   - a cache whose last record was cut short (a killed run): dropped on
#     the next open, output correct, verify passes
#   usage: cache.sh TIMBER TIMBER_GEN REFCHECK
. "$(dirname "$0")/lib.sh"

for s in 1 2; do
    if ! "$GEN" "$T/pair$s" --preset tiny --seed $s >"$T/gen$s.log" 2>&1; then
        echo "timber-gen failed: $(cat "$T/gen$s.log")"
        exit 1
    fi
done
A=$T/pair1
Bp=$T/pair2
mkdir -p "$T/ref1" "$T/ref2"
run ref1 -- "$A/base" "$A/instruct" "$T/ref1/out" --no-cache -q
expect_rc ref1 0
run ref2 -- "$Bp/base" "$Bp/instruct" "$T/ref2/out" --no-cache -q
expect_rc ref2 0
refcheck ref2 "$Bp/base" "$Bp/instruct" "$T/ref2/out" 0.2

# ---- a cache from a different pair ----------------------------------------
C=$T/shared.tsvd
mkdir -p "$T/o"
run other-a -- "$A/base" "$A/instruct" "$T/o/a" --cache "$C"
expect_rc other-a 0
na=$(cache_records "$C")
run other-b -- "$Bp/base" "$Bp/instruct" "$T/o/b" --cache "$C"
expect_rc other-b 0
if [ "$(hits other-b)" = 0 ]; then
    ok
else
    bad "other-b: $(hits other-b) records of another pair were applied"
fi
same_tree other-b "$T/ref2/out" "$T/o/b"
refcheck other-b "$Bp/base" "$Bp/instruct" "$T/o/b" 0.2
cache_ok other-b "$C"
nb=$(cache_records "$C")
if [ "$nb" -eq $((2 * na)) ]; then ok; else bad "other-b: $nb records, expected $((2 * na))"; fi
# ... and pair A still finds all of its own.
run other-a2 -- "$A/base" "$A/instruct" "$T/o/a2" --cache "$C"
expect_rc other-a2 0
if [ "$(hits other-a2)" = "$na" ]; then ok; else bad "other-a2: $(hits other-a2) of $na from the cache"; fi
same_tree other-a2 "$T/ref1/out" "$T/o/a2"

# ---- an older format ---------------------------------------------------------
python3 - "$T/old.tsvd" <<'PY'
import struct, sys, zlib
h = b"TIMBERSV" + struct.pack("<IIQI", 0, 32, 0x1234, 1)
open(sys.argv[1], "wb").write(h + struct.pack("<I", zlib.crc32(h)) + b"old records")
PY
cp "$T/old.tsvd" "$T/old.copy"
mkdir -p "$T/p-old"
run old -- "$A/base" "$A/instruct" "$T/p-old/out" --cache "$T/old.tsvd"
expect_rc old 1
one_line old "$T/old.tsvd" "cache format version 0"
no_out old "$T/p-old/out"
empty_dir "old: OUT's parent" "$T/p-old"
if cmp -s "$T/old.tsvd" "$T/old.copy"; then ok; else bad "old: the old cache file was modified"; fi
run old-info -- cache info "$T/old.tsvd"
expect_rc old-info 1
one_line old-info "$T/old.tsvd" "cache format version 0"
# At the default location (this pair's file under XDG_CACHE_HOME): a
# warning, and the run goes on without the cache.
run default -- "$A/base" "$A/instruct" "$T/p-old/d1" -q
expect_rc default 0
def=$(find "$XDG_CACHE_HOME/timber" -name '*.tsvd' | head -n 1)
if [ -n "$def" ]; then
    ok
    cp "$T/old.tsvd" "$def"
    run default-old -- "$A/base" "$A/instruct" "$T/p-old/d2"
    expect_rc default-old 0
    if grep -q "^timber: warning: .*cache format version 0.*continuing without the cache" \
        "$T/default-old.err"; then
        ok
    else
        bad "default-old: no warning about the old cache: $(cat "$T/default-old.err")"
    fi
    same_tree default-old "$T/ref1/out" "$T/p-old/d2"
else
    bad "default: no cache file under $XDG_CACHE_HOME/timber"
fi

# ---- the previous format (2: records that do not name their route) ---------
# Given with --cache it is refused like any other version; at the default
# location it has another name (.v2.tsvd), so it is never opened: the run
# uses (and creates) its .v3.tsvd and leaves the old file as it was.
python3 - "$T/v2.tsvd" <<'PY'
import struct, sys, zlib
h = b"TIMBERSV" + struct.pack("<IIQI", 2, 32, 0x1234, 2)
open(sys.argv[1], "wb").write(h + struct.pack("<I", zlib.crc32(h)) + b"v2 records")
PY
cp "$T/v2.tsvd" "$T/v2.copy"
mkdir -p "$T/p-v2"
run v2 -- "$A/base" "$A/instruct" "$T/p-v2/out" --cache "$T/v2.tsvd"
expect_rc v2 1
one_line v2 "$T/v2.tsvd" "cache format version 2, this timber reads version 3"
no_out v2 "$T/p-v2/out"
if cmp -s "$T/v2.tsvd" "$T/v2.copy"; then ok; else bad "v2: the format-2 cache file was modified"; fi
if [ -n "$def" ]; then
    case $def in
    *.v3.tsvd) ok ;;
    *) bad "default: the cache file $def is not named .v3.tsvd" ;;
    esac
    v2def=${def%.v3.tsvd}.v2.tsvd
    rm -f "$def"
    cp "$T/v2.tsvd" "$v2def"
    run default-v2 -- "$A/base" "$A/instruct" "$T/p-v2/d1"
    expect_rc default-v2 0
    if grep -q "^timber: cache .*\.v3\.tsvd .*: 0 tensors from the cache" \
        "$T/default-v2.err" && ! grep -q "warning: .*cache" "$T/default-v2.err"; then
        ok
    else
        bad "default-v2: expected a fresh .v3 cache and no cache warning: $(cat "$T/default-v2.err")"
    fi
    if cmp -s "$v2def" "$T/v2.copy"; then ok; else bad "default-v2: the .v2.tsvd file was modified"; fi
    if [ -s "$def" ]; then ok; else bad "default-v2: no fresh $def"; fi
    same_tree default-v2 "$T/ref1/out" "$T/p-v2/d1"
    rm -f "$v2def"
fi

# ---- corrupted in the middle ------------------------------------------------
C=$T/damaged.tsvd
mkdir -p "$T/p-dam"
run dam-fill -- "$A/base" "$A/instruct" "$T/p-dam/o1" --cache "$C" -q
expect_rc dam-fill 0
n=$(cache_records "$C")
python3 - "$C" <<'PY'
import os, sys
p = sys.argv[1]
size = os.path.getsize(p)
with open(p, "r+b") as f:
    f.seek(size // 2)
    b = f.read(1)
    f.seek(size // 2)
    f.write(bytes([b[0] ^ 0x5a]))
PY
run dam-verify -- cache verify "$C"
expect_rc dam-verify 1
one_line dam-verify "$C" "1 damaged record"
run dam -- "$A/base" "$A/instruct" "$T/p-dam/o2" --cache "$C"
expect_rc dam 0
if [ "$(hits dam)" = $((n - 1)) ] && grep -q ", 1 computed" "$T/dam.err"; then
    ok
else
    bad "dam: expected $((n - 1)) from the cache and 1 computed: $(cat "$T/dam.err")"
fi
same_tree dam "$T/ref1/out" "$T/p-dam/o2"
refcheck dam "$A/base" "$A/instruct" "$T/p-dam/o2" 0.2
# The recomputed record was appended: every tensor is found again.
run dam2 -- "$A/base" "$A/instruct" "$T/p-dam/o3" --cache "$C"
expect_rc dam2 0
if [ "$(hits dam2)" = "$n" ]; then ok; else bad "dam2: $(hits dam2) of $n from the cache"; fi

# ---- an unfinished last record ----------------------------------------------
C=$T/cut.tsvd
run cut-fill -- "$A/base" "$A/instruct" "$T/p-dam/o4" --cache "$C" -q
expect_rc cut-fill 0
truncate -s -100 "$C"
run cut -- "$A/base" "$A/instruct" "$T/p-dam/o5" --cache "$C"
expect_rc cut 0
if [ "$(hits cut)" = $((n - 1)) ]; then ok; else bad "cut: $(hits cut) of $((n - 1)) from the cache"; fi
same_tree cut "$T/ref1/out" "$T/p-dam/o5"
cache_ok cut "$C"

finish
