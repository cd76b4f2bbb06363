#!/usr/bin/env bash
# Agreement with the paper: `timber BASE INSTRUCT OUT --gamma G` on pairs
# from timber-gen, each output checked by timber-refcheck (an independent
# float64 dgesdd implementation) with --exact: every refined BF16, F16 and
# F32 element bit-identical to the reference (what the README claims and
# every pair measured meets; refcheck's general bound, >= 99.99 % identical
# and <= 1 ULP, F32 within 1e-6, is looser), F64 within 1e-12 of the
# largest magnitude, everything not refined byte-identical to Instruct.
#
#   usage: agree.sh MODE TIMBER TIMBER_GEN TIMBER_REFCHECK
#
# MODE picks a group (one ctest each, so they run in parallel):
#   dtypes     tiny pairs in bf16, f16, f32 and f64, each with gamma 0,
#              0.2, 0.55 and 1
#   layouts    a sharded pair (--max-shard-size 64K), Base f32 + Instruct
#              bf16, Base bf16 + Instruct f16, two more seeds, and a gamma
#              list (--gamma 0,0.5 writes OUT/gamma-0 and OUT/gamma-0.5)
#   streaming  matrices larger than one panel (2^19 doubles): a tall
#              70000 x 64 embedding and lm_head (--vocab 70000; beyond
#              the 2^22 elements read whole, so streamed) and a wide
#              64 x 16384 matrix (variant wide, read whole; test_refine
#              checks that streaming it gives the same bytes), in bf16
#              and f16
#   qwen3      realistic 1024-wide shapes: qwen3-0.6b --layers 1 --vocab 4096
#              (~20 s; refcheck's dgesdd handles 1024-wide deltas quickly)
# Prints "N passed, M failed".
if [ $# -ne 4 ]; then
    echo "usage: $0 MODE TIMBER TIMBER_GEN TIMBER_REFCHECK" >&2
    exit 2
fi
MODE=$1
TIMBER=$2
GEN=$3
REFCHECK=$4
. "$(dirname "$0")/lib.sh"

# agree PAIR OUT GAMMA [timber options...]: refine, then refcheck.
agree() {
    local pair=$1 out=$2 g=$3
    shift 3
    local label="$pair gamma $g${*:+ ($*)}"
    tb refine "$TMP/$pair/base" "$TMP/$pair/instruct" "$TMP/$out" \
        --gamma "$g" --no-cache -q "$@"
    if [ "$RC" -ne 0 ]; then
        bad "$label: timber exited $RC: $(cat "$TMP/refine.err")"
        return
    fi
    ok
    check "$label: refine printed on stdout" test ! -s "$TMP/refine.out"
    refcheck "$pair" "$TMP/$out" "$g" "$label"
}

# refcheck PAIR OUTDIR GAMMA LABEL
refcheck() {
    if "$REFCHECK" "$TMP/$1/base" "$TMP/$1/instruct" "$2" "$3" --exact \
        >"$TMP/rc.out" 2>"$TMP/rc.err"; then
        ok
        echo "$4: $(cat "$TMP/rc.out")"
    else
        bad "$4: timber-refcheck disagrees:"
        cat "$TMP/rc.out" "$TMP/rc.err" | sed 's/^/    /' >&2
    fi
}

case $MODE in
dtypes)
    for dt in bf16 f16 f32 f64; do
        gen "$dt" --preset tiny --dtype "$dt" --seed 11
        for g in 0 0.2 0.55 1; do
            agree "$dt" "out-$dt-$g" "$g"
            rm -rf "${TMP:?}/out-$dt-$g"
        done
    done
    ;;
layouts)
    gen sharded --preset tiny --seed 5 --max-shard-size 64K
    n=$(find "$TMP/sharded/instruct" -name '*.safetensors' | wc -l)
    check "--max-shard-size 64K gave $n shards, expected several" \
        test "$n" -gt 2
    agree sharded out-sharded 0.2
    gen b32-ibf16 --preset tiny --seed 6 --base-dtype f32 --dtype bf16
    agree b32-ibf16 out-b32-ibf16 0.2
    agree b32-ibf16 out-b32-ibf16-0 0
    gen bbf16-if16 --preset tiny --seed 7 --base-dtype bf16 --dtype f16
    agree bbf16-if16 out-bbf16-if16 0.2
    agree bbf16-if16 out-bbf16-if16-1 0.55
    for seed in 2 123456789; do
        gen "seed$seed" --preset tiny --seed "$seed"
        agree "seed$seed" "out-seed$seed" 0.2
    done

    # A list of gammas: one complete checkpoint per value.
    tb list "$TMP/sharded/base" "$TMP/sharded/instruct" "$TMP/out-list" \
        --gamma 0,0.5 --no-cache -q
    expect_rc list 0
    check "--gamma 0,0.5 printed on stdout" test ! -s "$TMP/list.out"
    got=$(cd "$TMP/out-list" 2>/dev/null && ls -A | tr '\n' ' ')
    check "--gamma 0,0.5 wrote '$got', expected 'gamma-0 gamma-0.5 '" \
        test "$got" = "gamma-0 gamma-0.5 "
    for g in 0 0.5; do
        refcheck sharded "$TMP/out-list/gamma-$g" "$g" "sharded list gamma-$g"
        check "gamma-$g has Instruct's shard names" \
            test "$(cd "$TMP/out-list/gamma-$g" && ls ./*.safetensors)" = \
            "$(cd "$TMP/sharded/instruct" && ls ./*.safetensors)"
    done
    # Each list member equals a run with that gamma alone.
    agree sharded out-single-0.5 0.5
    check "OUT/gamma-0.5 differs from a run with --gamma 0.5" \
        same_tree "$TMP/out-list/gamma-0.5" "$TMP/out-single-0.5"
    ;;
streaming)
    for dt in bf16 f16; do
        gen "big-$dt" --preset tiny --dtype "$dt" --seed 9 --vocab 70000 \
            --variants 3d,low-rank,unchanged,instruct-only,wide
        for g in 0 0.2; do
            agree "big-$dt" "out-big-$dt-$g" "$g"
            rm -rf "${TMP:?}/out-big-$dt-$g"
        done
    done
    ;;
qwen3)
    gen qwen3 --preset qwen3-0.6b --layers 1 --vocab 4096 --seed 1
    agree qwen3 out-qwen3 0.2
    ;;
*)
    echo "agree.sh: unknown mode '$MODE'" >&2
    exit 2
    ;;
esac
finish
