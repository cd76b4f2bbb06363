#!/usr/bin/env bash
# `timber inspect` on a sharded pair written by the fixture generator:
# both halves open (exit 0), with the number of tensors and shards the
# files and the index say, totals consistent between the table and --json,
# and every tensor of the index listed in the shard the index names.
#
#   usage: gen_inspect.sh TIMBER TIMBER_GEN
# Exits 77 (skipped) when python3 is not available.  Prints
# "N passed, M failed".
set -u

if [ $# -ne 2 ]; then
    echo "usage: $0 TIMBER TIMBER_GEN" >&2
    exit 2
fi
TIMBER=$1
GEN=$2
if ! command -v python3 >/dev/null 2>&1; then
    echo "python3 not found: skipped"
    exit 77
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/timber-gen-inspect-XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT

pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() {
    fail=$((fail + 1))
    echo "FAIL: $*" >&2
}

if "$GEN" "$TMP/pair" --preset tiny --max-shard-size 64K --seed 7 \
    >"$TMP/gen.out" 2>"$TMP/gen.err"; then
    ok
else
    bad "timber-gen failed: $(cat "$TMP/gen.err")"
    echo "$pass passed, $fail failed"
    exit 1
fi

for side in base instruct; do
    dir=$TMP/pair/$side
    if "$TIMBER" inspect "$dir" >"$TMP/$side.txt" 2>"$TMP/$side.err" &&
        [ ! -s "$TMP/$side.err" ]; then
        ok
    else
        bad "timber inspect $side: $(cat "$TMP/$side.err")"
        continue
    fi
    if "$TIMBER" inspect --json "$dir" >"$TMP/$side.json" 2>"$TMP/$side.err"; then
        ok
    else
        bad "timber inspect --json $side: $(cat "$TMP/$side.err")"
        continue
    fi
    if python3 - "$dir" "$TMP/$side.json" "$TMP/$side.txt" <<'EOF'; then ok; else bad "$side: inspect disagrees with the files"; fi
import json, os, re, sys
d, j, text = sys.argv[1], json.load(open(sys.argv[2])), open(sys.argv[3]).read().splitlines()
t, tot = j["tensors"], j["totals"]
files = sorted(f for f in os.listdir(d) if f.endswith(".safetensors"))
index = json.load(open(os.path.join(d, "model.safetensors.index.json")))
wm = index["weight_map"]

assert len(files) > 1, "--max-shard-size 64K should give several shards: %s" % files
assert j["shards"] == files, (j["shards"], files)
assert tot["shards"] == len(files)
assert tot["tensors"] == len(t) == len(wm), (tot["tensors"], len(t), len(wm))
names = {x["name"]: x for x in t}
assert len(names) == len(t), "a tensor listed twice"
for name, shard in wm.items():
    assert name in names, "index tensor %s not listed" % name
    assert names[name]["shard"] == shard, (name, names[name]["shard"], shard)
assert tot["bytes"] == sum(x["bytes"] for x in t)
assert tot["bytes"] == index["metadata"]["total_size"], (tot["bytes"], index["metadata"]["total_size"])
# Every shard's bytes: tensors tile its data buffer from 0.
for f in files:
    ts = sorted((x for x in t if x["shard"] == f), key=lambda x: x["offset"])
    at = 0
    for x in ts:
        assert x["offset"] == at, (f, x)
        at += x["bytes"]
    size = os.path.getsize(os.path.join(d, f))
    with open(os.path.join(d, f), "rb") as fh:
        n = int.from_bytes(fh.read(8), "little")
    assert 8 + n + at == size, (f, n, at, size)
for extra in ("config.json", "tokenizer.json"):
    assert extra in j["extra_files"], j["extra_files"]
assert "model.safetensors.index.json" not in j["extra_files"]
# The text table: one line per tensor in the same order, then totals.
assert len(text) == len(t) + 1
for x, line in zip(t, text):
    f = line.split()
    assert f[0] == x["name"] and f[-1] == x["shard"] and int(f[-2]) == x["bytes"], line
m = re.fullmatch(r"total: (\d+) tensors?, (\d+) parameters, (\d+) bytes, (\d+) shards?", text[-1])
assert m and [int(g) for g in m.groups()] == [tot["tensors"], tot["parameters"], tot["bytes"], tot["shards"]], text[-1]
EOF
done

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
