#!/usr/bin/env bash
# cachedir.sh — a cache directory (--cache DIR) in bad shape.  Each process
# appends only to a file of its own in DIR and reads every file of its
# pair; nothing in DIR can make a run fail or write other bytes.
#
#   - another pair's file in DIR: never applied (0 from the cache), the
#     output correct; the first pair, run again, finds all of its own with
#     no warning and creates no file
#   - a file cut short (a killed writer's tail) and a flipped byte in
#     another file: exactly those two tensors recomputed, the output the
#     --no-cache bytes, the cut file left as it was (it is another
#     process's); `cache verify DIR` exits 1 naming the flipped file and
#     offset; the recomputed records land in a new file, after which all
#     are served
#   - a file that cannot be read (chmod 000, the run as 'nobody' through
#     setpriv when root): one warning line naming it, the run goes on
#     (exit 0) with the other files, the same bytes; `cache verify DIR`
#     warns and exits 0
#   - a file named like a cache file that is not one: a warning, skipped
#   - a directory the run cannot write in (as 'nobody'): exit 1, one line
#   - refused before any work, one line, nothing created: DIR inside OUT,
#     DIR an input or inside one, DIR/ whose parent is missing; `erank
#     --cache DIR/` on a missing DIR
#   usage: cachedir.sh TIMBER TIMBER_GEN REFCHECK
. "$(dirname "$0")/lib.sh"

for s in 1 2; do
    if ! "$GEN" "$T/pair$s" --preset tiny --layers 4 --seed $s \
        >"$T/gen$s.log" 2>&1; then
        echo "timber-gen failed: $(cat "$T/gen$s.log")"
        exit 1
    fi
done
A=$T/pair1
Bp=$T/pair2
mkdir -p "$T/o"
run ref1 -- "$A/base" "$A/instruct" "$T/o/ref1" --no-cache -q
expect_rc ref1 0
run ref2 -- "$Bp/base" "$Bp/instruct" "$T/o/ref2" --no-cache -q
expect_rc ref2 0

nfiles() { find "$1" -maxdepth 1 -name '*.timber-cache' | wc -l; }
# computed NAME: tensors computed, from run NAME's cache line.
computed() {
    sed -n 's/.*from the cache, \([0-9]*\) computed$/\1/p' "$T/$1.err"
}
# cache_warnings NAME: warning lines of run NAME about the cache.
cache_warnings() {
    grep '^timber: warning: ' "$T/$1.err" | grep -v 'differs from Base' || true
}

# ---- another pair's file ---------------------------------------------------
D=$T/shared
run fill-a -- "$A/base" "$A/instruct" "$T/o/a1" --cache "$D/"
expect_rc fill-a 0
n=$(computed fill-a)
run other -- "$Bp/base" "$Bp/instruct" "$T/o/b1" --cache "$D"
expect_rc other 0
if [ "$(hits other)" = 0 ] && [ "$(computed other)" = "$n" ]; then
    ok
else
    bad "other: $(hits other) records of another pair applied, $(computed other) computed"
fi
same_tree other "$T/o/ref2" "$T/o/b1"
refcheck other "$Bp/base" "$Bp/instruct" "$T/o/b1" 0.2
if [ "$(nfiles "$D")" -eq 2 ]; then ok; else bad "other: $(nfiles "$D") files in DIR, expected 2"; fi
run again-a -- "$A/base" "$A/instruct" "$T/o/a2" --cache "$D" --gamma 0.4
expect_rc again-a 0
if [ "$(hits again-a)" = "$n" ] && [ "$(computed again-a)" = 0 ]; then
    ok
else
    bad "again-a: $(hits again-a) of $n from the cache, $(computed again-a) computed"
fi
if [ -z "$(cache_warnings again-a)" ]; then ok; else bad "again-a: $(cache_warnings again-a)"; fi
if [ "$(nfiles "$D")" -eq 2 ]; then ok; else bad "again-a: a run served wholly made a file"; fi

# ---- a cut tail in one file, a flipped byte in another ------------------------
D=$T/dmg
half='layers\.[02]\.'
run part0 -- "$A/base" "$A/instruct" "$T/o/p0" --cache "$D/" --include "$half" -q
expect_rc part0 0
run part1 -- "$A/base" "$A/instruct" "$T/o/p1" --cache "$D/" --exclude "$half" -q
expect_rc part1 0
f0=$(find "$D" -name '*.timber-cache' | sort | sed -n 1p)
f1=$(find "$D" -name '*.timber-cache' | sort | sed -n 2p)
truncate -s -100 "$f0"
size0=$(stat -c %s "$f0")
off=$("$TIMBER" cache info "$f1" | sed -n '1s/.* at offset \([0-9]*\)$/\1/p')
python3 - "$f1" "$((off + 300))" <<'PY'
import sys
p, at = sys.argv[1], int(sys.argv[2])
with open(p, "r+b") as f:
    f.seek(at)
    b = f.read(1)
    f.seek(at)
    f.write(bytes([b[0] ^ 0x5a]))
PY
run dmg-verify -- cache verify "$D"
expect_rc dmg-verify 1
one_line dmg-verify "1 damaged record" "$f1 at offset $off"
run dmg-info -- cache info "$D"
expect_rc dmg-info 0
if grep -q "damaged record at offset $off\$" "$T/dmg-info.out"; then ok; else bad "dmg-info: the damaged record is not listed"; fi
run dmg -- "$A/base" "$A/instruct" "$T/o/d1" --cache "$D" --gamma 0.2
expect_rc dmg 0
if [ "$(hits dmg)" = $((n - 2)) ] && [ "$(computed dmg)" = 2 ]; then
    ok
else
    bad "dmg: expected $((n - 2)) from the cache and 2 computed: $(grep cache "$T/dmg.err")"
fi
same_tree dmg "$T/o/ref1" "$T/o/d1"
if [ "$(stat -c %s "$f0")" = "$size0" ]; then ok; else bad "dmg: another process's cut file was changed"; fi
if [ "$(nfiles "$D")" -eq 3 ]; then ok; else bad "dmg: $(nfiles "$D") files, expected 3 (the recomputed records in a new one)"; fi
run dmg2 -- "$A/base" "$A/instruct" "$T/o/d2" --cache "$D" --gamma 0.2
expect_rc dmg2 0
if [ "$(hits dmg2)" = "$n" ]; then ok; else bad "dmg2: $(hits dmg2) of $n from the cache"; fi

# ---- a file named like a cache file that is not one --------------------------
fp=$(basename "$f0" | cut -c1-16)
fmt=$(basename "$f0" | sed 's/^[0-9a-f]*-v\([0-9]*\)-.*/\1/')
junk=$D/$fp-v$fmt-elsewhere-1-0.timber-cache
printf 'not a cache, but named like one\n' >"$junk"
run junk -- "$A/base" "$A/instruct" "$T/o/j1" --cache "$D" -q
expect_rc junk 0
w=$(cache_warnings junk)
if [ "$(printf '%s\n' "$w" | grep -c .)" -eq 1 ] && printf '%s' "$w" | grep -qF "$junk"; then
    ok
else
    bad "junk: expected one warning naming $junk: $w"
fi
same_tree junk "$T/o/ref1" "$T/o/j1"
rm -f "$junk"

# ---- a file that cannot be read ----------------------------------------------
AS=()
if [ "$(id -u)" = 0 ]; then
    if command -v setpriv >/dev/null 2>&1 && id nobody >/dev/null 2>&1 &&
        setpriv --reuid=nobody --regid="$(id -g nobody)" --clear-groups \
            test -x "$TIMBER" 2>/dev/null; then
        AS=(setpriv --reuid=nobody --regid="$(id -g nobody)" --clear-groups)
    fi
else
    AS=(env)
fi
if [ ${#AS[@]} -gt 0 ]; then
    chmod -R a+rX "$A"
    mkdir -p "$T/nobody"
    chmod 777 "$T/nobody" "$D"
    chmod 644 "$D"/*.timber-cache
    chmod 000 "$f1"
    lost=$("$TIMBER" cache info "$f1" | sed -n 's/^total: \([0-9]*\) record.*/\1/p')
    RC=0
    "${AS[@]}" "$TIMBER" "$A/base" "$A/instruct" "$T/nobody/out" --cache "$D" \
        >"$T/perm.out" 2>"$T/perm.err" </dev/null || RC=$?
    expect_rc perm 0
    w=$(cache_warnings perm)
    if [ "$(printf '%s\n' "$w" | grep -c .)" -eq 1 ] &&
        printf '%s' "$w" | grep -qF "$f1" &&
        printf '%s' "$w" | grep -q "Permission denied"; then
        ok
    else
        bad "perm: expected one warning naming $f1 (Permission denied): $w"
    fi
    # f1's records are recomputed (the one it lost to the flipped byte
    # is in the third file), the rest come from the other files
    if [ "${lost:-0}" -gt 0 ] && [ "$(hits perm)" = $((n - lost)) ]; then
        ok
    else
        bad "perm: $(hits perm) from the cache, expected $n less the unreadable file's ${lost:-?}"
    fi
    same_tree perm "$T/o/ref1" "$T/nobody/out"
    RC=0
    "${AS[@]}" "$TIMBER" cache verify "$D" >"$T/perm-verify.out" \
        2>"$T/perm-verify.err" </dev/null || RC=$?
    expect_rc perm-verify 0
    if grep -qF "$f1" "$T/perm-verify.err" && grep -q "not read" "$T/perm-verify.out"; then
        ok
    else
        bad "perm-verify: $(cat "$T/perm-verify.out" "$T/perm-verify.err")"
    fi
    chmod 644 "$f1"
    # A directory it cannot write in: refused before any work.
    mkdir -p "$T/rodir"
    chmod 555 "$T/rodir"
    RC=0
    "${AS[@]}" "$TIMBER" "$A/base" "$A/instruct" "$T/nobody/out2" --cache "$T/rodir" \
        >"$T/rodir.out" 2>"$T/rodir.err" </dev/null || RC=$?
    expect_rc rodir 1
    one_line rodir "$T/rodir: cannot write in the cache directory" "Permission denied"
    no_out rodir "$T/nobody/out2"
else
    skip "an unreadable cache file: running as root without setpriv or a 'nobody' user"
fi

# ---- refused before any work ---------------------------------------------------
# one_refusal NAME SUBSTRING ARGS...: exit 1, one line with SUBSTRING,
# no OUT.
one_refusal() {
    local name=$1 what=$2 out=$3
    shift 2
    run "$name" -- "$A/base" "$A/instruct" "$@" -q
    expect_rc "$name" 1
    one_line "$name" "$what"
    no_out "$name" "$out"
}
mkdir -p "$T/r"
one_refusal in-out "lies inside the output directory" "$T/r/out" --cache "$T/r/out/c/"
run out-exists -- "$A/base" "$A/instruct" "$T/r/out2" --no-cache -q
expect_rc out-exists 0
sums() { (cd "$1" && find . -type f -exec md5sum {} + | sort); }
out2=$(sums "$T/r/out2")
run in-out2 -- "$A/base" "$A/instruct" "$T/r/out2" --cache "$T/r/out2/" --force -q
expect_rc in-out2 1
one_line in-out2 "is the output directory"
if [ -z "$(find "$T/r/out2" -name '*.timber-cache')" ] &&
    [ "$(sums "$T/r/out2")" = "$out2" ]; then
    ok
else
    bad "in-out2: OUT was changed"
fi
before=$(ls -A "$A/instruct")
one_refusal is-input "is the input" "$T/r/o3" --cache "$A/instruct/"
one_refusal in-input "lies inside the input" "$T/r/o4" --cache "$A/instruct/c/"
if [ "$(ls -A "$A/instruct")" = "$before" ]; then ok; else bad "in-input: the input directory changed"; fi
one_refusal no-parent "cannot create the cache directory" "$T/r/o5" --cache "$T/r/no/such/"
no_out no-parent-dir "$T/r/no"
run erank-missing -- erank "$A/base" "$A/instruct" --cache "$T/r/missing/" -q
expect_rc erank-missing 1
one_line erank-missing "$T/r/missing/"
no_out erank-missing "$T/r/missing"

finish
