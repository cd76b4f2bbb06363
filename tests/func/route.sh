#!/usr/bin/env bash
# The spectrum's two reductions at large orders against the float64
# reference (timber-refcheck --exact), each also byte-identical on 1 and
# 2 threads:
#   - S = 2048 (timber-gen qwen3-moe --layers 0 --vocab 2560: the
#     embedding and the untied lm_head, 2560 x 2048 each): `timber`
#     itself, which takes the two-stage route there, and one-stage dsytrd
#     forced by timber-refine-route;
#   - S = 1024 (qwen3-0.6b --layers 0 --vocab 2560: the tied embedding,
#     2560 x 1024, S = TB_TWOSTAGE_MIN_S): `timber`, which takes the
#     two-stage route from there on.
#
#   usage: route.sh TIMBER TIMBER_GEN TIMBER_REFCHECK TIMBER_REFINE_ROUTE
# Prints "N passed, M failed".
if [ $# -ne 4 ]; then
    echo "usage: $0 TIMBER TIMBER_GEN TIMBER_REFCHECK TIMBER_REFINE_ROUTE" >&2
    exit 2
fi
TIMBER=$1
GEN=$2
REFCHECK=$3
ROUTE=$4
. "$(dirname "$0")/lib.sh"

# refcheck PAIR OUTDIR LABEL
refcheck() {
    local pair=$1 dir=$2 label=$3
    if "$REFCHECK" "$TMP/$pair/base" "$TMP/$pair/instruct" "$dir" 0.2 \
        --exact >"$TMP/rc.out" 2>"$TMP/rc.err"; then
        ok
        echo "$label: $(cat "$TMP/rc.out")"
    else
        bad "$label: timber-refcheck disagrees:"
        cat "$TMP/rc.out" "$TMP/rc.err" | sed 's/^/    /' >&2
    fi
}

# refine PAIR OUT THREADS [ROUTE]: timber, or timber-refine-route ROUTE
refine() {
    local pair=$1 out=$2 t=$3 r=${4:-}
    if [ -z "$r" ]; then
        tb "$out" "$TMP/$pair/base" "$TMP/$pair/instruct" "$TMP/$out" \
            --gamma 0.2 --no-cache -q --threads "$t"
        expect_rc "$out" 0
    elif "$ROUTE" "$r" "$TMP/$pair/base" "$TMP/$pair/instruct" \
        "$TMP/$out" 0.2 "$t" 2>"$TMP/route.err"; then
        ok
    else
        bad "timber-refine-route $r (threads $t): $(cat "$TMP/route.err")"
    fi
}

# S = 2048
gen s2048 --preset qwen3-moe --layers 0 --vocab 2560 --seed 21
for r in "" dsytrd; do
    label=${r:-default}
    refine s2048 "out-2048-$label-1" 1 $r
    refine s2048 "out-2048-$label-2" 2 $r
    refcheck s2048 "$TMP/out-2048-$label-1" "S = 2048, $label route"
    check "S = 2048, $label route: --threads 1 and 2 differ" \
        same_tree "$TMP/out-2048-$label-1" "$TMP/out-2048-$label-2"
done

# S = 1024: the smallest order of the two-stage route, the default there
gen s1024 --preset qwen3-0.6b --layers 0 --vocab 2560 --seed 22
refine s1024 out-1024-1 1
refine s1024 out-1024-2 2
refcheck s1024 "$TMP/out-1024-1" "S = 1024, default route"
check "S = 1024: --threads 1 and 2 differ" \
    same_tree "$TMP/out-1024-1" "$TMP/out-1024-2"
finish
