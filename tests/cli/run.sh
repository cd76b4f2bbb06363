#!/usr/bin/env bash
# CLI golden tests: runs `timber` on small fixtures and compares stdout,
# stderr and the exit code of each case with tests/cli/golden/NAME.txt.
# Temporary paths are normalised to @FX@ so the goldens are stable.
#
#   usage: run.sh TIMBER FIXTURE_WRITER [GOLDEN_DIR]
#   UPDATE_GOLDEN=1 run.sh ...   rewrites the goldens instead of comparing
#                                (or: UPDATE_GOLDEN=1 ctest -R '^cli$')
#
# Besides the goldens it checks the stream contract (a failing command
# prints nothing on stdout and exactly one line on stderr), validates the
# --json output with python3, and checks that a command whose output cannot
# be written (stdout on /dev/full) fails.  Prints "N passed, M failed".
set -u

if [ $# -lt 2 ]; then
    echo "usage: $0 TIMBER FIXTURE_WRITER [GOLDEN_DIR]" >&2
    exit 2
fi
TIMBER=$1
FIXTURES=$2
GOLDEN=${3:-$(cd "$(dirname "$0")" && pwd)/golden}
UPDATE=${UPDATE_GOLDEN:-0}

TMP=$(mktemp -d "${TMPDIR:-/tmp}/timber-cli-XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT
FX=$TMP/fx
if ! "$FIXTURES" "$FX"; then
    echo "cannot write the fixtures" >&2
    exit 1
fi

pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() {
    fail=$((fail + 1))
    echo "FAIL: $*" >&2
}

# sed pattern matching $FX literally.
FX_RE=$(printf '%s' "$FX" | sed 's/[][\.*^$/]/\\&/g')
normalise() { sed -e "s/$FX_RE/@FX@/g"; }

# case NAME EXPECTED_EXIT ARGS...: runs timber ARGS, checks the exit code
# and the stream contract, and compares the transcript with the golden.
case_() {
    local name=$1 want=$2
    shift 2
    "$TIMBER" "$@" >"$TMP/out" 2>"$TMP/err" </dev/null
    local rc=$?
    {
        printf '$ timber'
        printf ' %s' "$@"
        printf '\n[exit %d]\n--- stdout\n' "$rc"
        cat "$TMP/out"
        printf -- '--- stderr\n'
        cat "$TMP/err"
    } | normalise >"$TMP/transcript"

    if [ "$rc" -ne "$want" ]; then
        bad "$name: exit $rc, expected $want"
    else
        ok
    fi
    if [ "$want" -ne 0 ]; then
        if [ -s "$TMP/out" ] || [ "$(wc -l <"$TMP/err")" -ne 1 ]; then
            bad "$name: a failure must print nothing on stdout and one line on stderr"
            cat "$TMP/transcript" >&2
        else
            ok
        fi
    fi

    local golden=$GOLDEN/$name.txt
    if [ "$UPDATE" = 1 ]; then
        cp "$TMP/transcript" "$golden"
        ok
    elif [ ! -f "$golden" ]; then
        bad "$name: no golden $golden (run with UPDATE_GOLDEN=1)"
    elif ! diff -u "$golden" "$TMP/transcript" >"$TMP/diff"; then
        bad "$name: output differs from $golden"
        cat "$TMP/diff" >&2
        echo "(if the change is intended: UPDATE_GOLDEN=1 ctest -R '^cli\$')" >&2
    else
        ok
    fi
}

# ------------------------------------------------------- help and usage
case_ version 0 --version
case_ version-short 0 -V
case_ version-extra 2 --version --frobnicate
case_ help 0 --help
# -h and `help` print exactly what --help prints (one golden to update
# when a command is added).
for alias in -h help; do
    "$TIMBER" --help >"$TMP/help1" 2>&1
    "$TIMBER" $alias >"$TMP/help2" 2>&1
    if cmp -s "$TMP/help1" "$TMP/help2"; then ok; else
        bad "timber $alias differs from timber --help"
    fi
done
case_ help-inspect 0 help inspect
case_ inspect-help 0 inspect --help
case_ help-nosuch 2 help nosuch
case_ help-two-commands 2 help inspect inspect
case_ no-args 2
case_ inspect-unknown-option 2 inspect --frobnicate "$FX/small"
case_ inspect-no-path 2 inspect
case_ inspect-json-no-path 2 inspect --json
case_ inspect-two-paths 2 inspect "$FX/small" "$FX/single.safetensors"

# ------------------------------------------------------------- inspect
case_ inspect-missing 1 inspect "$FX/no-such-model"
case_ inspect-short 1 inspect "$FX/bad/short.safetensors"
case_ inspect-trailing 1 inspect "$FX/bad/trailing.safetensors"
case_ inspect-dtype 1 inspect "$FX/bad/dtype.safetensors"
case_ inspect-utf8 1 inspect --json "$FX/bad/utf8.safetensors"
case_ inspect-overlap 1 inspect "$FX/bad/overlap.safetensors"
case_ inspect-size 1 inspect "$FX/bad/size.safetensors"
case_ inspect-notjson 1 inspect "$FX/bad/notjson.safetensors"
case_ inspect-bad-dir 1 inspect "$FX/bad"
case_ inspect-badindex 1 inspect "$FX/badindex"
case_ inspect-small 0 inspect "$FX/small"
case_ inspect-small-json 0 inspect --json "$FX/small"
case_ inspect-single 0 inspect "$FX/single.safetensors"
case_ inspect-single-json 0 inspect "$FX/single.safetensors" --json
case_ inspect-one-shard 0 inspect -- "$FX/small/model-00002-of-00002.safetensors"

# ------------------------------------------------------ --json contents
if command -v python3 >/dev/null 2>&1; then
    for target in "$FX/small" "$FX/single.safetensors"; do
        "$TIMBER" inspect --json "$target" >"$TMP/json"
        if python3 -m json.tool "$TMP/json" >/dev/null; then ok; else
            bad "inspect --json $target: not valid JSON"
        fi
        "$TIMBER" inspect "$target" >"$TMP/text"
        if python3 - "$TMP/json" "$TMP/text" "$target" <<'EOF'; then ok; else bad "inspect --json $target: fields"; fi
import json, re, sys
j = json.load(open(sys.argv[1]))
text = open(sys.argv[2]).read().splitlines()
t, tot = j["tensors"], j["totals"]
assert j["path"] == sys.argv[3], j["path"]
assert tot["tensors"] == len(t)
assert tot["bytes"] == sum(x["bytes"] for x in t)
assert tot["shards"] == len(j["shards"])
assert {x["shard"] for x in t} == set(j["shards"])
for x in t:
    assert set(x) == {"name", "dtype", "shape", "bytes", "shard", "offset"}, x
    assert all(isinstance(d, int) and d >= 0 for d in x["shape"]), x
# Within a shard, tensors are packed back to back from offset 0.
ends = {}
for x in t:
    assert x["offset"] == ends.get(x["shard"], 0), x
    ends[x["shard"]] = x["offset"] + x["bytes"]
# The text table says the same: one line per tensor, then the totals.
assert len(text) == len(t) + 1
for x, line in zip(t, text):
    f = line.split()
    assert f[0] == x["name"] and f[1] == x["dtype"] and f[-1] == x["shard"], line
    assert int(f[-2]) == x["bytes"], line
m = re.fullmatch(r"total: (\d+) tensors?, (\d+) parameters, (\d+) bytes, (\d+) shards?", text[-1])
assert m, text[-1]
assert [int(g) for g in m.groups()] == [tot["tensors"], tot["parameters"], tot["bytes"], tot["shards"]]
if sys.argv[3].endswith("small"):
    assert tot == {"tensors": 5, "parameters": 88, "bytes": 192, "shards": 2}, tot
    assert j["extra_files"] == ["config.json", "tokenizer.json"]
    assert j["shards"] == ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]
else:
    assert tot == {"tensors": 4, "parameters": 12, "bytes": 21, "shards": 1}, tot
    assert j["extra_files"] == []
    byname = {x["name"]: x for x in t}
    assert byname["scalar"]["shape"] == [] and byname["scalar"]["bytes"] == 4
    assert byname["empty"]["shape"] == [0, 3] and byname["empty"]["bytes"] == 0
EOF
    done
else
    echo "python3 not found: --json contents not checked" >&2
fi

# ------------------------------------------- stdout that cannot be written
if [ -w /dev/full ]; then
    for args in "inspect $FX/small" "inspect --json $FX/small" "--version" \
        "--help" "help inspect"; do
        # shellcheck disable=SC2086
        "$TIMBER" $args >/dev/full 2>"$TMP/err"
        rc=$?
        if [ "$rc" -eq 1 ] && grep -q "standard output" "$TMP/err" &&
            [ "$(wc -l <"$TMP/err")" -eq 1 ]; then
            ok
        else
            bad "timber $args > /dev/full: exit $rc, stderr: $(cat "$TMP/err")"
        fi
    done
else
    echo "/dev/full not writable: skipping the full-disk checks" >&2
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
