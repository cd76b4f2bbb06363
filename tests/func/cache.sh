#!/usr/bin/env bash
# The SVD cache (refinement issue 5), through the command line:
#   - a first run with --cache C computes every refined tensor ("0 tensors
#     from the cache, N computed"); a second run with another gamma takes
#     all of them from C ("N tensors from the cache, 0 computed") and writes
#     the same bytes as a --no-cache run with that gamma;
#   - `timber cache info C` lists N records, each with its route
#     (cpu/dsytrd-mrrr), `cache verify C` exits 0;
#   - one byte flipped in the middle of a record: `cache verify` exits 1
#     naming the record's offset, and a refine run recomputes exactly that
#     tensor (N-1 from the cache, 1 computed; the new record is that
#     tensor's) and still writes the same bytes;
#   - a cache written for another pair (another seed) is not applied: all
#     recomputed, output correct per timber-refcheck;
#   - a file that is not a cache: exit 1, one line naming it, the file
#     untouched, no OUT;
#   - with no --cache the cache lives under $XDG_CACHE_HOME/timber/ and a
#     second run finds it.
# The cache-size check (at most 25 % of the model's bytes) is the `size`
# mode, a ctest of its own because it writes a Qwen3-0.6B-shaped pair.
# The `dir` mode is a cache directory shared by the parts of a run:
#   - `--cache DIR/` creates DIR; two runs at once on disjoint --include /
#     --exclude halves of the pair (two parts) each compute their half and
#     append to a file of their own in DIR (2 files, named for the pair);
#   - a third run of the whole pair with another gamma takes every tensor
#     from DIR ("N tensors from the cache, 0 computed"), creates no file,
#     and writes the same bytes as a --no-cache run; `timber erank
#     --cache DIR` takes every spectrum from it;
#   - `cache info DIR` lists N records in 2 files with the files' byte
#     total, `cache verify DIR` exits 0;
#   - a distributed run: 3 parts (--part I/3) at once sharing a new cache
#     directory, finalize; then the pair split into 2 parts with another
#     gamma: each part served wholly from the 3 parts' files (0 computed),
#     and finalize's OUT is byte for byte a --no-cache run's.
#
#   usage: cache.sh MODE TIMBER TIMBER_GEN TIMBER_REFCHECK
#     MODE: flow | size | dir
# Exits 77 (skipped) without python3.  Prints "N passed, M failed".
if [ $# -ne 4 ]; then
    echo "usage: $0 MODE TIMBER TIMBER_GEN TIMBER_REFCHECK" >&2
    exit 2
fi
MODE=$1
TIMBER=$2
GEN=$3
REFCHECK=$4
FUNC=$(cd "$(dirname "$0")" && pwd)
. "$FUNC/lib.sh"
if ! command -v python3 >/dev/null 2>&1; then
    echo "SKIP: python3 not found"
    exit 77
fi

# cache_counts NAME: "HITS MISSES" from the cache line of $TMP/NAME.err
cache_counts() {
    sed -n 's/^timber: cache .*: \([0-9]*\) tensors\{0,1\} from the cache, \([0-9]*\) computed$/\1 \2/p' \
        "$TMP/$1.err"
}
refined_count() {
    sed -n 's/^timber: refined \([0-9]*\) tensor.*/\1/p' "$TMP/$1.err"
}
# size_ratio CACHE MODEL_DIR LABEL: cache bytes / model tensor bytes <= 0.25
size_ratio() {
    local cache=$1 model=$2 label=$3
    tb insp inspect "$model" --json
    local cbytes mbytes
    cbytes=$(stat -c %s "$cache")
    mbytes=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["totals"]["bytes"])' \
        "$TMP/insp.out")
    local ratio
    ratio=$(python3 -c 'import sys; print("%.4f" % (int(sys.argv[1]) / int(sys.argv[2])))' \
        "$cbytes" "$mbytes")
    echo "cache size, $label: $cbytes bytes for a $mbytes-byte model: ratio $ratio"
    check "$label: the cache is $ratio of the model's bytes, more than 0.25" \
        python3 -c 'import sys; sys.exit(not float(sys.argv[1]) <= 0.25)' "$ratio"
}

case $MODE in
flow)
    gen p --preset tiny --seed 3
    gen q --preset tiny --seed 4
    B=$TMP/p/base
    I=$TMP/p/instruct
    C=$TMP/C

    tb first "$B" "$I" "$TMP/o1" --cache "$C" --gamma 0.2
    expect_rc "first run with --cache" 0
    N=$(refined_count first)
    check "first run: no refined count in the summary" test -n "$N"
    check "first run: refined $N tensors, expected more than 10" \
        test "${N:-0}" -gt 10
    check "first run: cache line '$(cache_counts first)', expected '0 $N'" \
        test "$(cache_counts first)" = "0 $N"
    check "first run: stdout not empty" test ! -s "$TMP/first.out"
    check "first run: the cache line does not name the file" \
        grep -qF "timber: cache $C (" "$TMP/first.err"

    tb second "$B" "$I" "$TMP/o2" --cache "$C" --gamma 0.5
    expect_rc "second run with --cache" 0
    check "second run: cache line '$(cache_counts second)', expected '$N 0'" \
        test "$(cache_counts second)" = "$N 0"
    tb nocache "$B" "$I" "$TMP/o2-ref" --no-cache --gamma 0.5 -q
    expect_rc "--no-cache run" 0
    check "cached run differs from --no-cache (but for the card's command)" \
        same_tree "$TMP/o2-ref" "$TMP/o2"
    check "cached run wrote other files" \
        test "$(ls "$TMP/o2")" = "$(ls "$TMP/o2-ref")"
    tb first-ref "$B" "$I" "$TMP/o1-ref" --no-cache --gamma 0.2 -q
    check "the run that filled the cache differs from --no-cache" \
        same_tree "$TMP/o1" "$TMP/o1-ref"

    tb info cache info "$C"
    expect_rc "cache info" 0
    records=$(grep -c ' bytes at offset ' "$TMP/info.out")
    check "cache info lists $records records, expected $N" test "$records" = "$N"
    routed=$(grep -c ' cpu/dsytrd-mrrr .* bytes at offset ' "$TMP/info.out")
    check "cache info names the route of $routed of $N records" \
        test "$routed" = "$N"
    check "cache info totals: $(tail -1 "$TMP/info.out")" \
        grep -q "^total: $N records, 0 damaged, $(stat -c %s "$C") bytes" \
        "$TMP/info.out"
    check "cache info wrote on stderr" test ! -s "$TMP/info.err"
    tb verify cache verify "$C"
    expect_rc "cache verify (intact)" 0

    # Flip one byte in the middle of the third record.
    rec=$(grep ' bytes at offset ' "$TMP/info.out" | sed -n 3p)
    name=${rec%% *}
    off=$(echo "$rec" | sed 's/.* at offset \([0-9]*\)$/\1/')
    len=$(echo "$rec" | sed 's/.* \([0-9]*\) bytes at offset .*/\1/')
    pos=$((off + len / 2))
    cp "$C" "$TMP/C.before"
    byte=$(od -An -tu1 -j "$pos" -N1 "$C" | tr -d ' ')
    printf "$(printf '\\%03o' $((byte ^ 0x5a)))" |
        dd of="$C" bs=1 seek="$pos" conv=notrunc 2>/dev/null
    check "the corruption did not change exactly one byte" \
        test "$(cmp -l "$C" "$TMP/C.before" | wc -l)" -eq 1
    tb verify2 cache verify "$C"
    expect_rc "cache verify (one byte flipped)" 1
    check "cache verify does not name offset $off: $(cat "$TMP/verify2.err")" \
        grep -q "offset $off\b" "$TMP/verify2.err"
    check "cache verify: expected one line on stderr" \
        test "$(wc -l <"$TMP/verify2.err")" -eq 1
    check "cache verify printed on stdout" test ! -s "$TMP/verify2.out"
    tb info2 cache info "$C"
    expect_rc "cache info (damaged)" 0
    check "cache info does not report the damaged record at $off" \
        grep -q "damaged record at offset $off\$" "$TMP/info2.out"

    tb third "$B" "$I" "$TMP/o3" --cache "$C" --gamma 0.5
    expect_rc "run over the damaged cache" 0
    check "damaged cache: cache line '$(cache_counts third)', expected '$((N - 1)) 1'" \
        test "$(cache_counts third)" = "$((N - 1)) 1"
    check "damaged cache: output differs from --no-cache" \
        same_tree "$TMP/o3" "$TMP/o2-ref"
    tb info3 cache info "$C"
    last=$(grep ' bytes at offset ' "$TMP/info3.out" | tail -1)
    check "the recomputed record is '${last%% *}', expected '$name'" \
        test "${last%% *}" = "$name"
    tb fourth "$B" "$I" "$TMP/o4" --cache "$C" --gamma 0.5
    check "after the repair: cache line '$(cache_counts fourth)', expected '$N 0'" \
        test "$(cache_counts fourth)" = "$N 0"

    # A cache written for another pair is not applied.
    cp "$C" "$TMP/C-other"
    tb other "$TMP/q/base" "$TMP/q/instruct" "$TMP/o5" --cache "$TMP/C-other" \
        --gamma 0.2
    expect_rc "run with another pair's cache" 0
    Nq=$(refined_count other)
    check "another pair's cache: cache line '$(cache_counts other)', expected '0 $Nq'" \
        test "$(cache_counts other)" = "0 $Nq"
    if "$REFCHECK" "$TMP/q/base" "$TMP/q/instruct" "$TMP/o5" 0.2 \
        >"$TMP/refcheck.out" 2>&1; then
        ok
    else
        bad "another pair's cache: refcheck: $(cat "$TMP/refcheck.out")"
    fi

    # Not a cache file: refused, untouched.
    printf 'this is not an SVD cache\n' >"$TMP/notcache"
    cp "$TMP/notcache" "$TMP/notcache.before"
    tb notc "$B" "$I" "$TMP/o6" --cache "$TMP/notcache" -q
    expect_rc "--cache on a file that is not a cache" 1
    check "not a cache: expected one line, got: $(cat "$TMP/notc.err")" \
        test "$(grep -vc '^timber: warning: ' "$TMP/notc.err")" -eq 1
    check "not a cache: the message does not name the file" \
        grep -qF "$TMP/notcache" "$TMP/notc.err"
    check "not a cache: the message does not say what is wrong" \
        grep -qi "cache" "$TMP/notc.err"
    check "not a cache: the file was changed" \
        cmp -s "$TMP/notcache" "$TMP/notcache.before"
    check "not a cache: OUT was written" test ! -e "$TMP/o6"
    check "not a cache: stdout not empty" test ! -s "$TMP/notc.out"

    # The default location, under XDG_CACHE_HOME.
    check "a cache exists before any default run" test ! -e "$XDG_CACHE_HOME"
    tb def1 "$B" "$I" "$TMP/o7" --gamma 0.2
    expect_rc "run with the default cache" 0
    files=$(find "$XDG_CACHE_HOME/timber" -type f 2>/dev/null | wc -l)
    check "default cache: $files files under \$XDG_CACHE_HOME/timber, expected 1" \
        test "$files" -eq 1
    check "default cache: cache line '$(cache_counts def1)', expected '0 $N'" \
        test "$(cache_counts def1)" = "0 $N"
    check "default cache: the cache line does not name a file under $XDG_CACHE_HOME/timber/" \
        grep -qF "timber: cache $XDG_CACHE_HOME/timber/" "$TMP/def1.err"
    tb def2 "$B" "$I" "$TMP/o8" --gamma 0.5
    check "default cache, second run: cache line '$(cache_counts def2)', expected '$N 0'" \
        test "$(cache_counts def2)" = "$N 0"
    check "default cache, second run: output differs from --no-cache" \
        same_tree "$TMP/o8" "$TMP/o2-ref"
    size_ratio "$C.before" "$I" "tiny"
    ;;
dir)
    gen p --preset tiny --layers 6 --seed 5
    B=$TMP/p/base
    I=$TMP/p/instruct
    D=$TMP/shared
    tb ref "$B" "$I" "$TMP/ref" --no-cache --gamma 0.5
    expect_rc "--no-cache run" 0
    N=$(refined_count ref)
    check "--no-cache run: refined '$N' tensors, expected more than 30" \
        test "${N:-0}" -gt 30
    check "a cache directory exists before the first part" test ! -e "$D"

    # Two parts at once: layers 0, 2, 4 and everything else.
    half='layers\.[024]\.'
    "$TIMBER" "$B" "$I" "$TMP/part0" --cache "$D/" --include "$half" \
        >"$TMP/part0.out" 2>"$TMP/part0.err" </dev/null &
    p0=$!
    "$TIMBER" "$B" "$I" "$TMP/part1" --cache "$D/" --exclude "$half" \
        >"$TMP/part1.out" 2>"$TMP/part1.err" </dev/null &
    p1=$!
    rc0=0
    wait $p0 || rc0=$?
    rc1=0
    wait $p1 || rc1=$?
    check "part 0 exited $rc0: $(cat "$TMP/part0.err")" test "$rc0" -eq 0
    check "part 1 exited $rc1: $(cat "$TMP/part1.err")" test "$rc1" -eq 0
    n0=$(refined_count part0)
    n1=$(refined_count part1)
    check "parts refined '$n0' + '$n1' tensors, expected $N in all, both some" \
        test "${n0:-0}" -gt 0 -a "${n1:-0}" -gt 0 -a "$((${n0:-0} + ${n1:-0}))" = "$N"
    check "part 0: cache line '$(cache_counts part0)', expected '0 $n0'" \
        test "$(cache_counts part0)" = "0 $n0"
    check "part 1: cache line '$(cache_counts part1)', expected '0 $n1'" \
        test "$(cache_counts part1)" = "0 $n1"
    check "the cache line does not name the directory: $(grep cache "$TMP/part0.err")" \
        grep -qF "timber: cache $D/ (" "$TMP/part0.err"
    files=$(find "$D" -type f | wc -l)
    check "after two parts: $files files in the cache directory, expected 2" \
        test "$files" -eq 2
    fp=$(python3 -c 'import json, struct, sys
f = open(sys.argv[1], "rb")
n = struct.unpack("<Q", f.read(8))[0]
print(json.loads(f.read(n))["__metadata__"]["timber.fingerprint"])' \
        "$TMP/part0/model.safetensors" 2>&1)
    named=$(find "$D" -name "${fp:-none}-v*-*-*-*.timber-cache" | wc -l)
    check "the files are not named '<fingerprint $fp>-v<format>-<host>-<pid>-<random>.timber-cache': $(ls "$D")" \
        test "$named" -eq 2

    # The whole pair, another gamma: served from both parts' files.
    tb whole "$B" "$I" "$TMP/whole" --cache "$D" --gamma 0.5
    expect_rc "whole run over the cache directory" 0
    check "whole run: cache line '$(cache_counts whole)', expected '$N 0'" \
        test "$(cache_counts whole)" = "$N 0"
    check "whole run from the cache directory differs from --no-cache" \
        same_tree "$TMP/ref" "$TMP/whole"
    files=$(find "$D" -type f | wc -l)
    check "a run served wholly from the cache made a file: $files files" \
        test "$files" -eq 2
    check "whole run: a warning: $(grep warning "$TMP/whole.err" | grep -v 'differs from Base')" \
        test -z "$(grep '^timber: warning: ' "$TMP/whole.err" | grep -v 'differs from Base')"
    tb erank erank "$B" "$I" --cache "$D" --json "$TMP/erank.json" -q
    expect_rc "erank --cache DIR" 0
    cached=$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(sum(1 for x in r if x["from_cache"]), len(r))' \
        "$TMP/erank.json" 2>&1)
    check "erank --cache DIR: '$cached' rows from the cache of all, expected all" \
        python3 -c 'import sys; a, b = sys.argv[1].split(); sys.exit(a != b or int(a) == 0)' "$cached"

    tb info cache info "$D"
    expect_rc "cache info DIR" 0
    records=$(grep -c ' bytes at offset ' "$TMP/info.out")
    check "cache info DIR lists $records records, expected $N" test "$records" = "$N"
    bytes=$(find "$D" -type f -printf '%s\n' | awk '{ s += $1 } END { print s }')
    check "cache info DIR totals: $(tail -1 "$TMP/info.out"), expected $N records, $bytes bytes in 2 files" \
        grep -qx "total: $N records, 0 damaged, $bytes bytes in 2 files" "$TMP/info.out"
    check "cache info DIR: not one 'file' line per file" \
        test "$(grep -c "^file $D/.*: [0-9]* records, 0 damaged, [0-9]* bytes, format [0-9]*, pair $fp\$" "$TMP/info.out")" -eq 2
    check "cache info DIR wrote on stderr: $(cat "$TMP/info.err")" test ! -s "$TMP/info.err"
    tb verify cache verify "$D/"
    expect_rc "cache verify DIR/" 0
    check "cache verify DIR: $(cat "$TMP/verify.out")" \
        grep -qx "$D/: ok, $N records intact in 2 files" "$TMP/verify.out"

    # Parts of a distributed run, then another split and another gamma.
    # Every run is in a directory of its own with the pair at ../p, so the
    # model cards read the same.
    D2=$TMP/parts-cache
    TIMBER=$(cd "$(dirname "$TIMBER")" && pwd)/$(basename "$TIMBER")
    mkdir -p "$TMP/d3" "$TMP/d2" "$TMP/dref"
    (cd "$TMP/dref" && "$TIMBER" ../p/base ../p/instruct out --no-cache \
        --gamma 0.5 -q) 2>"$TMP/dref.err" </dev/null
    check "--no-cache reference: $(cat "$TMP/dref.err")" test -d "$TMP/dref/out"
    # part N I [ARGS...]: part I/N in $TMP/dN, in the background
    part() {
        local n=$1 i=$2
        shift 2
        (cd "$TMP/d$n" && exec "$TIMBER" ../p/base ../p/instruct out \
            --part "$i/$n" "$@") >"$TMP/d$n-$i.out" 2>"$TMP/d$n-$i.err" \
            </dev/null &
    }
    part 3 0 --cache "$D2/"
    part 3 1 --cache "$D2/"
    part 3 2 --cache "$D2/"
    wait
    (cd "$TMP/d3" && "$TIMBER" finalize out -q) 2>"$TMP/d3-fin.err" </dev/null
    check "3 parts: finalize failed: $(cat "$TMP/d3-fin.err" "$TMP"/d3-?.err)" \
        test -d "$TMP/d3/out"
    computed=0
    for i in 0 1 2; do
        c=$(cache_counts "d3-$i")
        case $c in
        *[0-9]) computed=$((computed + ${c#* })) ;;
        *) bad "3 parts: part $i: no cache line: $(cat "$TMP/d3-$i.err")" ;;
        esac
    done
    check "3 parts computed $computed tensors in all, expected $N" \
        test "$computed" = "$N"
    files=$(find "$D2" -name '*.timber-cache' | wc -l)
    check "3 parts: $files files in the cache directory, expected 3" \
        test "$files" -eq 3
    part 2 0 --cache "$D2" --gamma 0.5
    part 2 1 --cache "$D2" --gamma 0.5
    wait
    for i in 0 1; do
        c=$(cache_counts "d2-$i")
        check "2 parts, gamma 0.5: part $i's cache line '$c', expected 'H 0' (H > 0)" \
            test "${c#* }" = 0 -a "${c%% *}" -gt 0
    done
    (cd "$TMP/d2" && "$TIMBER" finalize out -q) 2>"$TMP/d2-fin.err" </dev/null
    check "2 parts: finalize failed: $(cat "$TMP/d2-fin.err")" test -d "$TMP/d2/out"
    check "2 parts from the cache directory differ from a --no-cache run" \
        diff -r "$TMP/dref/out" "$TMP/d2/out"
    files=$(find "$D2" -name '*.timber-cache' | wc -l)
    check "parts served wholly from the cache made files: $files" \
        test "$files" -eq 3
    ;;
size)
    gen q06 --preset qwen3-0.6b --layers 2 --seed 1
    tb q06 "$TMP/q06/base" "$TMP/q06/instruct" "$TMP/q06-out" \
        --cache "$TMP/q06.cache"
    expect_rc "qwen3-0.6b --layers 2 with --cache" 0
    N=$(refined_count q06)
    check "qwen3-0.6b: cache line '$(cache_counts q06)', expected '0 $N'" \
        test "$(cache_counts q06)" = "0 $N"
    rm -rf "${TMP:?}/q06-out"
    size_ratio "$TMP/q06.cache" "$TMP/q06/instruct" "qwen3-0.6b --layers 2"
    ;;
*)
    echo "cache.sh: unknown mode '$MODE'" >&2
    exit 2
    ;;
esac
finish
