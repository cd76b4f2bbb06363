#!/usr/bin/env bash
# interop.sh MODE TIMBER VENV — timber against the real Hugging Face stack
# (ctest label "hf"; tests/README.md).  VENV is made by pyenv.sh (torch
# 2.13.0 first, then transformers, safetensors, tokenizers,
# huggingface_hub); no index reachable = exit 77, skipped, with the reason.
#
#   pairs  Pairs made by transformers (make_pairs.py): Llama f32 and bf16
#          with added vocabulary, Qwen3 bf16 tied, Qwen3-MoE bf16 per
#          expert and f32 with stacked experts; each refined by timber and
#          judged by check.py refined (transformers loads it, logits equal
#          a float64 refinement, generate, shards, index, card); the
#          authors' script (../shared/reference/timber.py, run with real
#          torch) on the same pairs agrees within its float32 tolerance
#          (check.py authors).
#   hub    Repo ids from a Hub cache laid out as huggingface_hub lays it
#          out (hub_cache.py), with huggingface_hub's own offline lookups
#          as the judge: refine/erank/inspect take ORG/NAME[@REV], the
#          card names the repo ids, errors name the places looked in.
#
# Prints "N passed, M failed".
set -u
if [ $# -ne 3 ]; then
    echo "usage: $0 pairs|hub TIMBER VENV" >&2
    exit 2
fi
MODE=$1
TIMBER=$2
VENV=${TIMBER_PYENV:-$3}
HERE=$(cd "$(dirname "$0")" && pwd)
FUNC=$HERE/../func
GEN=unused
. "$FUNC/lib.sh"
# The authors' script lies in shared/ beside the clone (CI) or one level
# further up (a developer's clone under wt/); never copied into the repo.
REPO=$(cd "$HERE/../.." && pwd)
REFERENCE=${TIMBER_REFERENCE:-}
for r in "$REPO/../shared/reference/timber.py" \
    "$REPO/../../shared/reference/timber.py"; do
    [ -z "$REFERENCE" ] && [ -f "$r" ] && REFERENCE=$r
done

bash "$HERE/pyenv.sh" "$VENV"
rc=$?
if [ $rc -eq 77 ]; then
    echo "SKIP: the Python packages cannot be installed here (no package index reachable)"
    exit 77
fi
[ $rc -eq 0 ] || { echo "FAIL: pyenv.sh $VENV failed"; exit 1; }
PY=$VENV/bin/python
# Nothing may reach the network; no progress bars in the logs.
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_HUB_DISABLE_PROGRESS_BARS=1
export TQDM_DISABLE=1 HF_HUB_DISABLE_TELEMETRY=1
export HF_HOME=$TMP/hf-home
VERSION=$("$TIMBER" --version | sed 's/^timber //')

# pycheck NAME ARGS...: check.py ARGS, its counts added to ours.
pycheck() {
    local name=$1
    shift
    "$PY" "$HERE/check.py" "$@" >"$TMP/$name.py.out" 2>"$TMP/$name.py.err"
    local r=$? p f
    p=$(sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\1/p' "$TMP/$name.py.out")
    f=$(sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\2/p' "$TMP/$name.py.out")
    pass=$((pass + ${p:-0}))
    fail=$((fail + ${f:-0}))
    if [ $r -ne 0 ]; then
        [ -n "$f" ] && [ "$f" -gt 0 ] || fail=$((fail + 1))
        echo "FAIL: check.py $name:" >&2
        tail -n 25 "$TMP/$name.py.err" >&2
    fi
}

if [ "$MODE" = pairs ]; then
    if [ -z "$REFERENCE" ]; then
        bad "the authors' script is not in $REPO/../shared/reference/ nor $REPO/../../shared/reference/ (set TIMBER_REFERENCE)"
    fi
    P=$TMP/pairs
    cases="llama-f32 llama-bf16-extra qwen3-bf16 qwen3_moe-bf16 qwen3_moe-f32-fused"
    if ! "$PY" "$HERE/make_pairs.py" "$P" $cases >"$TMP/make.log" 2>&1; then
        cat "$TMP/make.log" >&2
        bad "make_pairs.py failed"
        finish
        exit 1
    fi
    # case gamma view authors?  (view: expert = the default, stacked
    # experts refined per expert; flatten = --matrix-view flatten, the
    # authors' d0 x rest, which is what their script must agree with)
    while read -r c g view authors; do
        o=$P/out-$c-$view
        args=()
        [ "$view" = flatten ] && args=(--matrix-view flatten)
        tb "refine-$c-$view" "$P/$c/base" "$P/$c/instruct" "$o" \
            --gamma "$g" --cache "$TMP/svd-$c-$view.tsvd" "${args[@]}"
        expect_rc "timber refine $c ($view)" 0
        [ "$RC" -eq 0 ] || continue
        pycheck "$c-$view" refined "$P/$c/base" "$P/$c/instruct" "$o" \
            "$g" "$view" "$VERSION" instruct base
        # Again from the SVD cache (per-expert records included): the
        # same bytes.
        tb "again-$c-$view" "$P/$c/base" "$P/$c/instruct" "$o.again" \
            --gamma "$g" --cache "$TMP/svd-$c-$view.tsvd" "${args[@]}"
        expect_rc "timber refine $c ($view) from the cache" 0
        check "$c ($view): the run from the cache wrote other bytes" \
            same_tree "$o" "$o.again"
        check "$c ($view): the second run did not come from the cache" \
            grep -q ' 0 computed$' "$TMP/again-$c-$view.err"
        if [ "$authors" = yes ] && [ -n "$REFERENCE" ]; then
            if "$PY" "$REFERENCE" "$P/$c/base" "$P/$c/instruct" \
                "$P/authors-$c" "$g" --svd_cache_path "$TMP/svd-$c.pt" \
                >"$TMP/authors-$c.log" 2>&1; then
                ok
                pycheck "authors-$c" authors "$o" "$P/authors-$c" \
                    "$P/$c/instruct" "$P/$c/base"
            else
                bad "the authors' script failed on $c: $(tail -n 3 "$TMP/authors-$c.log")"
            fi
        fi
    done <<'EOF'
llama-f32 0.2 expert yes
llama-bf16-extra 0 expert no
qwen3-bf16 0.5 expert yes
qwen3_moe-bf16 0.2 expert yes
qwen3_moe-f32-fused 0.2 expert no
qwen3_moe-f32-fused 0.2 flatten yes
EOF
    # Stacked experts: the two views are different transforms, and the
    # report says which each tensor got.
    f=$P/out-qwen3_moe-f32-fused
    check "stacked experts: per-expert and flatten outputs are the same" \
        python3 "$FUNC/sthelp.py" differ "$f-expert" "$f-flatten" \
        model.layers.0.mlp.experts.gate_up_proj \
        model.layers.1.mlp.experts.down_proj
    for view in auto flatten; do
        tb "report-$view" "$P/qwen3_moe-f32-fused/base" \
            "$P/qwen3_moe-f32-fused/instruct" "$TMP/rep-$view" --no-cache \
            -q --matrix-view "$view" --report "$TMP/rep-$view.csv"
        expect_rc "report ($view)" 0
    done
    # (the view and the matrix count are followed by the timing columns)
    check "the report does not say per-expert for a stacked tensor" \
        grep -qE '^model.layers.0.mlp.experts.gate_up_proj,8x64x64,F32,refined,,64,.*,per-expert,8,' \
        "$TMP/rep-auto.csv"
    # (k < 8 there: the flattened stack has a real cut, so the authors'
    # comparison below is not of two copies of Instruct.)
    check "the report does not say flatten (with a cut) under --matrix-view flatten" \
        grep -qE '^model.layers.0.mlp.experts.gate_up_proj,8x64x64,F32,refined,,8,[0-9.]+,[1-7],.*,flatten,1,' \
        "$TMP/rep-flatten.csv"
    check "the report does not say matrix for a 2-D tensor" \
        grep -q '^model.layers.0.self_attn.q_proj.weight,64x64,F32,refined,,64,.*,matrix,1,' \
        "$TMP/rep-auto.csv"
    # erank follows the same views: a row per expert, NAME[e].
    tb erank-fused erank "$P/qwen3_moe-f32-fused/base" \
        "$P/qwen3_moe-f32-fused/instruct" --no-cache --json "$TMP/e.json"
    expect_rc "erank of stacked experts" 0
    check "erank: no row per expert" \
        grep -q '"model.layers.1.mlp.experts.down_proj\[3\]"' "$TMP/e.json"
    # The authors' script cannot take added vocabulary: it subtracts
    # tensors of different shapes (checked, so the "no" above is true).
    if [ -z "$REFERENCE" ]; then
        :
    elif "$PY" "$REFERENCE" "$P/llama-bf16-extra/base" \
        "$P/llama-bf16-extra/instruct" "$P/authors-extra" 0 \
        --svd_cache_path "$TMP/svd-extra.pt" >"$TMP/authors-extra.log" 2>&1; then
        bad "the authors' script now handles added vocabulary: compare it too"
    else
        ok
    fi
    finish
    exit
fi

if [ "$MODE" = hub ]; then
    pycheck hub-layout hub "$TIMBER" "$TMP/hub" "$VERSION"
    finish
    exit
fi
echo "unknown mode $MODE" >&2
exit 2
