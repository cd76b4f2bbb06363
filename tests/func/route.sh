#!/usr/bin/env bash
# The spectrum's reductions at a large order against the float64
# reference: a pair with two 2560 x 2048 matrices (timber-gen qwen3-moe
# --layers 0 --vocab 2560: the embedding and the untied lm_head, S = 2048)
# refined with the reduction forced to each route by timber-refine-route
# (two-stage dense -> band -> tridiagonal, and one-stage dsytrd), on 1 and
# 2 threads; every output checked by timber-refcheck --exact, and the 1-
# and 2-thread outputs of a route byte-identical.  Then `timber` itself
# (the route tb_spectrum_route_for picks for S = 2048) checked the same
# way.
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

refcheck() {
    local dir=$1 label=$2
    if "$REFCHECK" "$TMP/big/base" "$TMP/big/instruct" "$dir" 0.2 --exact \
        >"$TMP/rc.out" 2>"$TMP/rc.err"; then
        ok
        echo "$label: $(cat "$TMP/rc.out")"
    else
        bad "$label: timber-refcheck disagrees:"
        cat "$TMP/rc.out" "$TMP/rc.err" | sed 's/^/    /' >&2
    fi
}

gen big --preset qwen3-moe --layers 0 --vocab 2560 --seed 21
for r in twostage dsytrd; do
    for t in 1 2; do
        if "$ROUTE" "$r" "$TMP/big/base" "$TMP/big/instruct" \
            "$TMP/out-$r-$t" 0.2 "$t" 2>"$TMP/route.err"; then
            ok
        else
            bad "timber-refine-route $r (threads $t): $(cat "$TMP/route.err")"
            continue
        fi
    done
    refcheck "$TMP/out-$r-1" "$r, 1 thread"
    check "$r: --threads 1 and 2 differ" \
        same_tree "$TMP/out-$r-1" "$TMP/out-$r-2"
done
tb default "$TMP/big/base" "$TMP/big/instruct" "$TMP/out-default" \
    --gamma 0.2 --no-cache -q
expect_rc default 0
refcheck "$TMP/out-default" "timber (default route)"
finish
