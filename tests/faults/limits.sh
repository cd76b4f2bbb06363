#!/usr/bin/env bash
# limits.sh — pathological but valid inputs: each run succeeds, and the
# output agrees with the independent reference (timber-refcheck).
#
#   - a header of 100,000 tensors: inspect and refine in bounded time and
#     memory; runs with a cache (filling it, then all from it) are not
#     slower than a run without by more than a small factor (lookups stay
#     O(1) per tensor)
#   - a tensor with a zero dimension ([0, 8], [8, 0]): copied
#   - 1 x N and N x 1 matrices, and 1 x 1
#   - a delta with a single non-zero entry
#   - Base and Instruct identical (every delta 0)
#   - gamma exactly 0 and exactly 1 (1: Instruct's bytes, bit for bit),
#     also both at once (OUT/gamma-0, OUT/gamma-1)
#   usage: limits.sh TIMBER TIMBER_GEN REFCHECK
. "$(dirname "$0")/lib.sh"

HERE=$(cd "$(dirname "$0")" && pwd)

# refine_case NAME CASE GAMMA [ARGS]: stpair CASE refined with GAMMA,
# checked by the reference.
refine_case() {
    local name=$1 case=$2 gamma=$3
    shift 3
    [ -d "$T/$case" ] || python3 "$HERE/stpair.py" "$case" "$T/$case" ||
        { bad "$name: stpair.py $case failed"; return; }
    mkdir -p "$T/out-$name"
    run "$name" -- "$T/$case/base" "$T/$case/instruct" "$T/out-$name/out" \
        --gamma "$gamma" --cache "$T/$name.tsvd" "$@"
    expect_rc "$name" 0
    [ "$RC" -eq 0 ] && refcheck "$name" "$T/$case/base" "$T/$case/instruct" \
        "$T/out-$name/out" "$gamma"
}

refine_case zero-dim zero-dim 0.2
grep -q "empty tensor: 2" "$T/zero-dim.err" && ok ||
    bad "zero-dim: the empty tensors were not reported as copied: $(cat "$T/zero-dim.err")"
refine_case thin thin 0.2
refine_case single single 0.2
refine_case single-g0 single 0
refine_case identical identical 0.2
refine_case gamma-0 gamma 0
refine_case gamma-1 gamma 1
refine_case gamma-half gamma 0.5

# gamma = 1: every tensor's bytes are Instruct's.
python3 - "$T/gamma/instruct/model.safetensors" \
    "$T/out-gamma-1/out/model.safetensors" <<'PY' && ok || bad "gamma-1: output bytes differ from Instruct's"
import json, struct, sys
def tensors(p):
    b = open(p, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8:8 + n])
    return {k: b[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]]
            for k, v in h.items() if k != "__metadata__"}
a, o = tensors(sys.argv[1]), tensors(sys.argv[2])
assert a == o, sorted(k for k in a if a[k] != o.get(k))
PY

# Both at once, on a generated pair with every variant.
if "$GEN" "$T/tiny" --preset tiny --seed 9 >"$T/gen.log" 2>&1; then
    mkdir -p "$T/out-both"
    run both -- "$T/tiny/base" "$T/tiny/instruct" "$T/out-both/out" \
        --gamma 0,1 --cache "$T/both.tsvd"
    expect_rc both 0
    refcheck both-0 "$T/tiny/base" "$T/tiny/instruct" "$T/out-both/out/gamma-0" 0
    refcheck both-1 "$T/tiny/base" "$T/tiny/instruct" "$T/out-both/out/gamma-1" 1
else
    bad "timber-gen failed: $(cat "$T/gen.log")"
fi

# ---- 100,000 tensors ---------------------------------------------------------
# TIMBER_LIMITS_MANY sets another count (a quick local run).  Under ASan
# this case once took 4 minutes a run, when every small tensor got 4 MiB
# panel buffers; they are sized to the matrix now (matrix.c), ~5 s.
MANY=${TIMBER_LIMITS_MANY:-100000}
python3 "$HERE/stpair.py" many "$T/many" "$MANY" || exit 1
MEASURE=()
if [ -x /usr/bin/time ]; then
    MEASURE=(/usr/bin/time -f "%e s, %M KB max RSS" -o)
fi
# timed NAME ARGS...: a run of timber, its seconds in SECS and its peak
# RSS in KB in RSS (0 when /usr/bin/time is missing).
timed() {
    local name=$1
    shift
    local t0 t1
    t0=$(date +%s.%N)
    RC=0
    if [ ${#MEASURE[@]} -gt 0 ]; then
        "${MEASURE[@]}" "$T/$name.time" "$TIMBER" "$@" \
            >"$T/$name.out" 2>"$T/$name.err" </dev/null || RC=$?
        RSS=$(sed -n 's/.*, \([0-9]*\) KB max RSS/\1/p' "$T/$name.time")
    else
        "$TIMBER" "$@" >"$T/$name.out" 2>"$T/$name.err" </dev/null || RC=$?
        RSS=0
    fi
    t1=$(date +%s.%N)
    SECS=$(echo "$t0 $t1" | awk '{printf "%.2f", $2 - $1}')
    echo "$name: ${SECS}s, ${RSS:-?} KB max RSS"
}
# within NAME SECS MAX_SECS RSS MAX_KB
within() {
    if awk -v s="$2" -v m="$3" 'BEGIN { exit !(s <= m) }'; then
        ok
    else
        bad "$1: took ${2}s, more than ${3}s"
    fi
    if [ "${4:-0}" -le "$5" ]; then ok; else bad "$1: ${4} KB max RSS, more than $5 KB"; fi
}

timed many-inspect inspect "$T/many/instruct"
expect_rc many-inspect 0
n=$(tail -n 1 "$T/many-inspect.out")
case "$n" in "total: $MANY tensors,"*) ok ;; *) bad "many-inspect: $n" ;; esac
within many-inspect "$SECS" 120 "${RSS:-0}" 2000000
mkdir -p "$T/out-many"
# Without a cache: the yardstick for the runs with one (a cache of n
# records must cost O(1) per lookup; a linear scan made these runs 20
# times slower at 100,000 tensors).
timed many-nocache "$T/many/base" "$T/many/instruct" "$T/out-many/n" \
    --no-cache
expect_rc many-nocache 0
within many-nocache "$SECS" 600 "${RSS:-0}" 3000000
bound=$(awk -v f="$SECS" 'BEGIN { printf "%.2f", 3 * f + 10 }')
timed many-refine "$T/many/base" "$T/many/instruct" "$T/out-many/a" \
    --cache "$T/many.tsvd"
expect_rc many-refine 0
within many-refine "$SECS" "$bound" "${RSS:-0}" 3000000
refcheck many "$T/many/base" "$T/many/instruct" "$T/out-many/a" 0.2
same_tree many-refine "$T/out-many/n" "$T/out-many/a"
timed many-cached "$T/many/base" "$T/many/instruct" "$T/out-many/b" \
    --cache "$T/many.tsvd"
expect_rc many-cached 0
if [ "$(hits many-cached)" = "$MANY" ]; then ok; else bad "many-cached: $(hits many-cached) from the cache"; fi
within many-cached "$SECS" "$bound" "${RSS:-0}" 3000000
same_tree many-cached "$T/out-many/a" "$T/out-many/b"

finish
