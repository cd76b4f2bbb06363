#!/usr/bin/env bash
# `timber erank` (refinement issue 6):
#   - pairs in bf16, f16, f32 and sharded, with the 3d, unchanged and
#     low-rank variants: --json is an array with one object per refined
#     tensor (name, shape, rank, erank_base, erank_instruct, erank_delta,
#     k), every value within 1e-6 relative of timber-erankcheck's float64
#     dgesvd computation; the unchanged tensor has erank_delta 0 and k 0;
#     --csv has the same rows and values; the stdout table has "layer N"
#     groups, a "per module type" summary and a total;
#   - one model: `erank` per float tensor of 2+ dimensions;
#   - --include / --exclude select the analysed tensors;
#   - spectra taken from a refine run's cache give the same values;
#   - (mode plot) --plot out.png is a PNG over 20 KB and out.svg an SVG;
#     without gnuplot it prints SKIP and exits 77.
#
#   usage: erank.sh MODE TIMBER TIMBER_GEN TIMBER_ERANKCHECK
#     MODE: values | plot
# Exits 77 (skipped) without python3.  Prints "N passed, M failed".
if [ $# -ne 4 ]; then
    echo "usage: $0 MODE TIMBER TIMBER_GEN TIMBER_ERANKCHECK" >&2
    exit 2
fi
MODE=$1
TIMBER=$2
GEN=$3
ERANKCHECK=$4
FUNC=$(cd "$(dirname "$0")" && pwd)
. "$FUNC/lib.sh"
if ! command -v python3 >/dev/null 2>&1; then
    echo "SKIP: python3 not found"
    exit 77
fi

# erankcheck LABEL ARGS...: timber-erankcheck ARGS must pass.
erankcheck() {
    local label=$1
    shift
    if "$ERANKCHECK" "$@" >"$TMP/ec.out" 2>&1; then
        ok
        echo "$label: $(tail -1 "$TMP/ec.out")"
    else
        bad "$label: timber-erankcheck disagrees:"
        sed 's/^/    /' "$TMP/ec.out" >&2
    fi
}

case $MODE in
values)
    gen bf16 --preset tiny --seed 21 --dtype bf16
    gen f16 --preset tiny --seed 22 --dtype f16
    gen f32 --preset tiny --seed 23 --dtype f32
    gen sharded --preset tiny --seed 24 --max-shard-size 64K
    for p in bf16 f16 f32 sharded; do
        B=$TMP/$p/base
        I=$TMP/$p/instruct
        tb "e-$p" erank "$B" "$I" --no-cache --json "$TMP/$p.json" \
            --csv "$TMP/$p.csv"
        expect_rc "erank $p" 0
        erankcheck "erank $p" "$B" "$I" "$TMP/$p.json"
        check "erank $p: JSON, CSV or table wrong" \
            python3 - "$TMP/$p.json" "$TMP/$p.csv" "$TMP/e-$p.out" <<'EOF'
import csv, json, re, sys
j = json.load(open(sys.argv[1]))
rows = list(csv.DictReader(open(sys.argv[2], newline="")))
table = open(sys.argv[3]).read()
assert isinstance(j, list) and j, "not a non-empty array"
for o in j:
    for f in ("name", "shape", "rank", "erank_base", "erank_instruct",
              "erank_delta", "k"):
        assert f in o, (o.get("name"), f)
names = [o["name"] for o in j]
assert "model.variant.three_d.weight" in names
assert "model.variant.low_rank.weight" in names
u = [o for o in j if o["name"] == "model.variant.unchanged.weight"]
assert len(u) == 1 and u[0]["erank_delta"] == 0 and u[0]["k"] == 0, u
t = [o for o in j if o["name"] == "model.variant.three_d.weight"][0]
assert t["shape"] == [64, 4, 32] and t["rank"] == 64, t
assert 0 < t["k"] < t["rank"], "the 3-D tensor should have a real cut: %r" % t
lr = [o for o in j if o["name"] == "model.variant.low_rank.weight"][0]
assert lr["k"] < 0.5 * lr["rank"], lr
assert [r["name"] for r in rows] == names, "CSV rows differ from the JSON"
for o, r in zip(j, rows):
    assert r["shape"] == "x".join(str(d) for d in o["shape"]), (r, o)
    assert int(r["rank"]) == o["rank"] and int(r["k"]) == o["k"], (r, o)
    for f in ("erank_base", "erank_instruct", "erank_delta"):
        assert abs(float(r[f]) - o[f]) <= 1e-12 * max(1.0, abs(o[f])), (f, r, o)
for L in (0, 1):
    assert re.search(r"^layer %d$" % L, table, re.M), "no 'layer %d' group" % L
assert re.search(r"^per module type", table, re.M), "no per-module summary"
for mod in ("q", "k", "v", "o", "gate", "up", "down"):
    assert re.search(r"^  %s +2 " % mod, table, re.M), "no summary row for " + mod
assert re.search(r"^total: %d tensors analysed$" % len(j), table, re.M), "total"
for n in names:
    assert n in table, n + " not in the table"
EOF
        check "erank $p: wrote on stderr: $(cat "$TMP/e-$p.err")" \
            test -z "$(grep -v '^timber: warning: ' "$TMP/e-$p.err")"
    done

    B=$TMP/bf16/base
    I=$TMP/bf16/instruct
    # One model.
    tb single erank "$I" --no-cache --json "$TMP/single.json" \
        --csv "$TMP/single.csv"
    expect_rc "erank MODEL" 0
    erankcheck "erank MODEL" --model "$I" "$TMP/single.json"
    check "erank MODEL: JSON has no 'erank' on every row, or pair fields" \
        python3 -c '
import json, sys
j = json.load(open(sys.argv[1]))
assert j and all(isinstance(o.get("erank"), float) and "erank_delta" not in o
                 for o in j)
assert any(o["name"] == "lm_head.weight" for o in j)' "$TMP/single.json"
    check "erank MODEL: no per-module summary" \
        grep -q "^per module type" "$TMP/single.out"

    # Selection.
    tb inc erank "$B" "$I" --no-cache --include self_attn --json "$TMP/inc.json"
    expect_rc "erank --include self_attn" 0
    erankcheck "erank --include self_attn" "$B" "$I" "$TMP/inc.json" \
        --select self_attn
    tb inc2 erank "$B" "$I" --no-cache --include q_proj --include 'down' \
        --json "$TMP/inc2.json"
    expect_rc "erank --include q_proj --include down" 0
    erankcheck "erank two --include" "$B" "$I" "$TMP/inc2.json" \
        --select 'q_proj|down'
    tb exc erank "$B" "$I" --no-cache --exclude 'mlp|variant' \
        --json "$TMP/exc.json"
    expect_rc "erank --exclude" 0
    erankcheck "erank --exclude 'mlp|variant'" "$B" "$I" "$TMP/exc.json" \
        --select 'self_attn'
    tb single-inc erank "$I" --no-cache --include 'layers\.1\.' \
        --json "$TMP/single-inc.json"
    expect_rc "erank MODEL --include" 0
    erankcheck "erank MODEL --include" --model "$I" "$TMP/single-inc.json" \
        --select 'layers\.1\.'

    # Spectra from a refine run's cache: same numbers, marked from_cache.
    tb fill "$B" "$I" "$TMP/o" --cache "$TMP/C" -q
    expect_rc "refine to fill a cache" 0
    tb cached erank "$B" "$I" --cache "$TMP/C" --json "$TMP/cached.json"
    expect_rc "erank --cache" 0
    check "erank --cache: values differ from --no-cache, or not from the cache" \
        python3 - "$TMP/cached.json" "$TMP/bf16.json" <<'EOF'
import json, sys
a = json.load(open(sys.argv[1]))
b = {o["name"]: o for o in json.load(open(sys.argv[2]))}
assert len(a) == len(b)
for o in a:
    p = b[o["name"]]
    assert o["from_cache"] is True, o["name"]
    assert o["k"] == p["k"], o["name"]
    for f in ("erank_base", "erank_instruct", "erank_delta"):
        assert abs(o[f] - p[f]) <= 1e-9 * max(1.0, abs(p[f])), (o["name"], f)
EOF
    check "erank --cache changed the cache" \
        test "$(stat -c %s "$TMP/C")" -gt 0

    # Usage: a plot file with another extension.
    tb badplot erank "$B" "$I" --no-cache --plot "$TMP/x.jpg"
    expect_rc "erank --plot x.jpg" 2
    check "erank --plot x.jpg: no pointer to --help" \
        grep -qF "(see 'timber erank --help')" "$TMP/badplot.err"
    tb none erank
    expect_rc "erank without arguments" 2
    ;;
plot)
    if ! command -v gnuplot >/dev/null 2>&1; then
        echo "SKIP: gnuplot is not installed (apt-get install gnuplot-nox)"
        exit 77
    fi
    gen p --preset tiny --seed 25 --layers 4
    B=$TMP/p/base
    I=$TMP/p/instruct
    tb png erank "$B" "$I" --no-cache -q --plot "$TMP/out.png"
    expect_rc "erank --plot out.png" 0
    check "out.png: not a PNG (signature $(od -An -tx1 -N8 "$TMP/out.png" 2>/dev/null))" \
        test "$(od -An -tx1 -N8 "$TMP/out.png" 2>/dev/null | tr -d ' ')" = 89504e470d0a1a0a
    size=$(stat -c %s "$TMP/out.png" 2>/dev/null || echo 0)
    check "out.png: $size bytes, expected more than 20 KB" test "$size" -gt 20480
    tb svg erank "$B" "$I" --no-cache -q --plot "$TMP/out.svg"
    expect_rc "erank --plot out.svg" 0
    check "out.svg: no <svg element" grep -q "<svg" "$TMP/out.svg"
    tb png1 erank "$I" --no-cache -q --plot "$TMP/one.png"
    expect_rc "erank MODEL --plot one.png" 0
    check "one.png: not a PNG" \
        test "$(od -An -tx1 -N8 "$TMP/one.png" 2>/dev/null | tr -d ' ')" = 89504e470d0a1a0a
    check "a plot left a temporary beside it" \
        test -z "$(find "$TMP" -mindepth 1 -maxdepth 1 \( -name '*.tmp*' -o -name '*timber-*' \))"
    ;;
*)
    echo "erank.sh: unknown mode '$MODE'" >&2
    exit 2
    ;;
esac
finish
