#!/usr/bin/env bash
# The refine command line, end to end on generated pairs:
#   - usage errors exit 2 with one stderr line that names the problem and
#     points to 'timber refine --help', and create nothing;
#   - runtime errors (missing input, OUT exists, OUT inside an input,
#     --strict with a grown vocabulary, a --report that cannot be written,
#     NaN in a refined tensor) exit 1 with one line and leave nothing
#     behind;
#   - stdout stays empty in every case; the summary line counts refined,
#     copied and dropped tensors (checked against the checkpoints); the
#     grown-vocabulary warnings name the tensor and both shapes; --quiet
#     drops the summary but not the warnings;
#   - `timber refine ...` writes the same bytes as `timber ...`; --force
#     replaces OUT; --report FILE.json / FILE.csv (one row per Instruct
#     tensor plus the Base-only ones; eRank and k as `timber erank` says);
#     with where each tensor's time went, and --timings's summary line;
#     --include / --exclude (report and bytes); --threads 1 and 2 give
#     byte-identical directories.
#
#   usage: cli_refine.sh TIMBER TIMBER_GEN
# Exits 77 (skipped) without python3.  Prints "N passed, M failed".
if [ $# -ne 2 ]; then
    echo "usage: $0 TIMBER TIMBER_GEN" >&2
    exit 2
fi
TIMBER=$1
GEN=$2
FUNC=$(cd "$(dirname "$0")" && pwd)
. "$FUNC/lib.sh"
if ! command -v python3 >/dev/null 2>&1; then
    echo "SKIP: python3 not found"
    exit 77
fi
ST="python3 $FUNC/sthelp.py"

gen p --preset tiny --seed 3                       # all variants
gen ps --preset tiny --seed 4 --max-shard-size 64K # sharded
gen nv --preset tiny --seed 8 --variants 3d,low-rank,unchanged,base-only
B=$TMP/p/base
I=$TMP/p/instruct

nothing_left() { # DIR: no timber temporary under DIR
    [ -z "$(find "$1" -maxdepth 1 -name '.*' ! -name . | head -1)" ]
}

# ---- usage errors: exit 2, one line naming the problem, --help, no OUT
usage_case() {
    local label=$1 needle=$2
    shift 2
    tb usage "$@"
    expect_rc "usage: $label" 2
    check "usage: $label: stdout not empty" test ! -s "$TMP/usage.out"
    check "usage: $label: expected one stderr line, got: $(cat "$TMP/usage.err")" \
        test "$(wc -l <"$TMP/usage.err")" -eq 1
    check "usage: $label: stderr does not name '$needle': $(cat "$TMP/usage.err")" \
        grep -qF -- "$needle" "$TMP/usage.err"
    check "usage: $label: no pointer to --help: $(cat "$TMP/usage.err")" \
        grep -qF "(see 'timber refine --help')" "$TMP/usage.err"
    check "usage: $label: stderr does not start with 'timber: '" \
        grep -q '^timber: ' "$TMP/usage.err"
    check "usage: $label: OUT was created" test ! -e "$TMP/u-out"
}
usage_case "gamma -0.1" "-0.1" "$B" "$I" "$TMP/u-out" --gamma -0.1 --no-cache
usage_case "gamma 1.5" "1.5" "$B" "$I" "$TMP/u-out" --gamma 1.5 --no-cache
usage_case "gamma abc" "'abc'" "$B" "$I" "$TMP/u-out" --gamma abc --no-cache
usage_case "gamma empty" "--gamma" "$B" "$I" "$TMP/u-out" --gamma "" --no-cache
usage_case "gamma=" "--gamma" "$B" "$I" "$TMP/u-out" --gamma= --no-cache
usage_case "gamma list with a bad value" "'2'" "$B" "$I" "$TMP/u-out" \
    --gamma 0.1,2 --no-cache
usage_case "gamma missing value" "--gamma" "$B" "$I" "$TMP/u-out" --no-cache \
    --gamma
usage_case "unknown option" "--frobnicate" "$B" "$I" "$TMP/u-out" --no-cache \
    --frobnicate
usage_case "two positionals" "OUT" "$B" "$I" --no-cache
usage_case "no arguments after refine" "OUT" refine
usage_case "four positionals" "'extra'" "$B" "$I" "$TMP/u-out" extra --no-cache
usage_case "threads 0" "--threads" "$B" "$I" "$TMP/u-out" --threads 0 --no-cache
usage_case "threads x" "--threads" "$B" "$I" "$TMP/u-out" --threads x --no-cache
usage_case "report x.txt" "x.txt" "$B" "$I" "$TMP/u-out" --report x.txt \
    --no-cache
usage_case "include (" "--include" "$B" "$I" "$TMP/u-out" --include '(' \
    --no-cache
usage_case "exclude [" "--exclude" "$B" "$I" "$TMP/u-out" --exclude '[' \
    --no-cache
check "a usage error wrote a report" test ! -e "$TMP/x.txt"

# ---- runtime errors: exit 1, one line, nothing left
runtime_case() {
    local label=$1 needle=$2 out=$3
    shift 3
    tb runtime "$@"
    expect_rc "runtime: $label" 1
    check "runtime: $label: stdout not empty" test ! -s "$TMP/runtime.out"
    check "runtime: $label: expected one stderr line, got: $(cat "$TMP/runtime.err")" \
        test "$(wc -l <"$TMP/runtime.err")" -eq 1
    check "runtime: $label: stderr does not name '$needle': $(cat "$TMP/runtime.err")" \
        grep -qF -- "$needle" "$TMP/runtime.err"
    check "runtime: $label: stderr does not start with 'timber: '" \
        grep -q '^timber: ' "$TMP/runtime.err"
    check "runtime: $label: a temporary was left beside OUT" \
        nothing_left "$(dirname "$out")"
}
runtime_case "missing BASE" "$TMP/nope" "$TMP/r-out" \
    "$TMP/nope" "$I" "$TMP/r-out" --no-cache
check "missing BASE: OUT created" test ! -e "$TMP/r-out"
runtime_case "missing INSTRUCT" "$TMP/nope" "$TMP/r-out" \
    "$B" "$TMP/nope" "$TMP/r-out" --no-cache
mkdir "$TMP/exists" && touch "$TMP/exists/keep"
runtime_case "OUT exists" "--force" "$TMP/exists" \
    "$B" "$I" "$TMP/exists" --no-cache
check "OUT exists: its content was touched" \
    test "$(ls -A "$TMP/exists")" = keep
runtime_case "OUT inside INSTRUCT" "$I" "$I/sub" "$B" "$I" "$I/sub" --no-cache
check "OUT inside INSTRUCT: created" test ! -e "$I/sub"
runtime_case "OUT is BASE (with --force)" "$B" "$B" "$B" "$I" "$B" \
    --no-cache --force
runtime_case "OUT contains the inputs (with --force)" "$TMP/p" "$TMP/p" \
    "$B" "$I" "$TMP/p" --no-cache --force
check "OUT contains the inputs: the inputs were touched" \
    test -f "$B/config.json" -a -f "$I/config.json"
runtime_case "--strict with a grown vocabulary" "--strict" "$TMP/r-out" \
    "$B" "$I" "$TMP/r-out" --strict --no-cache
for w in "[528, 64]" "[512, 64]"; do
    check "--strict error does not name shape $w" \
        grep -qF "$w" "$TMP/runtime.err"
done
check "--strict: OUT created" test ! -e "$TMP/r-out"
# A report that could not be written after OUT is published is refused
# before any work: exit 1, OUT never created.
runtime_case "--report in a missing directory" "$TMP/no-dir/r.json" \
    "$TMP/r-out" "$B" "$I" "$TMP/r-out" --no-cache \
    --report "$TMP/no-dir/r.json"
check "--report in a missing directory: OUT created" test ! -e "$TMP/r-out"
mkdir "$TMP/dir.json"
runtime_case "--report is a directory" "is a directory" "$TMP/r-out" \
    "$B" "$I" "$TMP/r-out" --no-cache --report "$TMP/dir.json"
check "--report is a directory: OUT created" test ! -e "$TMP/r-out"
check "--report is a directory: something left in it" \
    test -z "$(ls -A "$TMP/dir.json")"

# NaN in a refined tensor of a pair without grown vocabulary (no warning).
cp -r "$TMP/nv/instruct" "$TMP/nan-inst"
$ST poison "$TMP/nan-inst" model.layers.1.self_attn.o_proj.weight 100
runtime_case "NaN in a refined tensor" \
    "model.layers.1.self_attn.o_proj.weight" "$TMP/r-out" \
    "$TMP/nv/base" "$TMP/nan-inst" "$TMP/r-out" --no-cache
check "NaN: the message does not say NaN: $(cat "$TMP/runtime.err")" \
    grep -qw NaN "$TMP/runtime.err"
check "NaN: the message does not give the element [1, 36]" \
    grep -qF "[1, 36]" "$TMP/runtime.err"
check "NaN: OUT created" test ! -e "$TMP/r-out"
# A NaN in a tensor that is only copied (1-D) is not an error.
cp -r "$TMP/nv/instruct" "$TMP/nan-norm"
$ST poison "$TMP/nan-norm" model.norm.weight 3
tb nan-norm "$TMP/nv/base" "$TMP/nan-norm" "$TMP/nan-norm-out" --no-cache -q
expect_rc "NaN in a copied 1-D tensor" 0
check "NaN in a copied tensor: not copied byte for byte" \
    $ST same-bytes "$TMP/nan-norm" "$TMP/nan-norm-out" model.norm.weight

# ---- a successful run: streams, summary, warnings
tb run "$B" "$I" "$TMP/out" --no-cache
expect_rc "refine" 0
check "refine printed on stdout" test ! -s "$TMP/run.out"
for t in lm_head.weight model.embed_tokens.weight; do
    check "no warning naming $t and both shapes: $(cat "$TMP/run.err")" \
        grep -qE "^timber: warning: .*'$t'.*\[528, 64\].*\[512, 64\]" \
        "$TMP/run.err"
done
# The counts the summary must give, from the checkpoints themselves.
tb inspect-b inspect "$B" --json
tb inspect-i inspect "$I" --json
read -r want_r want_c want_d < <(python3 - "$TMP/inspect-b.out" \
    "$TMP/inspect-i.out" <<'EOF'
import json, sys
b = {t["name"]: t for t in json.load(open(sys.argv[1]))["tensors"]}
i = json.load(open(sys.argv[2]))["tensors"]
fl = ("BF16", "F16", "F32", "F64")
r = sum(1 for t in i if t["name"] in b and b[t["name"]]["shape"] == t["shape"]
        and len(t["shape"]) >= 2 and t["dtype"] in fl
        and b[t["name"]]["dtype"] in fl and t["bytes"] > 0)
names = {t["name"] for t in i}
print(r, len(i) - r, sum(1 for n in b if n not in names))
EOF
)
summary=$(grep '^timber: refined' "$TMP/run.err")
check "summary '$summary' does not say refined $want_r, copied $want_c, dropped $want_d" \
    python3 -c '
import re, sys
m = re.match(r"timber: refined (\d+) tensors?, copied (\d+).*, dropped (\d+)", sys.argv[1])
sys.exit(not m or [int(x) for x in m.groups()] != [int(x) for x in sys.argv[2:]])
' "$summary" "$want_r" "$want_c" "$want_d"
check "summary does not give the reasons: $summary" \
    grep -qF "only in Instruct: 1" "$TMP/run.err"
check "no 'wrote' line" grep -qF "timber: wrote $TMP/out (" "$TMP/run.err"
check "refine wrote a line that is neither warning nor summary" \
    test -z "$(grep -v -e '^timber: warning: ' -e '^timber: refined ' \
        -e '^timber: wrote ' "$TMP/run.err")"

tb quiet "$B" "$I" "$TMP/out-q" --no-cache --quiet
expect_rc "--quiet" 0
check "--quiet: stdout not empty" test ! -s "$TMP/quiet.out"
check "--quiet: expected exactly the two warnings, got: $(cat "$TMP/quiet.err")" \
    test "$(grep -c '^timber: warning: ' "$TMP/quiet.err")" -eq 2 -a \
    "$(wc -l <"$TMP/quiet.err")" -eq 2
check "--quiet changed the output" same_tree "$TMP/out" "$TMP/out-q"

tb alias refine "$B" "$I" "$TMP/out-alias" --no-cache -q
expect_rc "timber refine" 0
check "'timber refine' and 'timber' wrote different bytes" \
    same_tree "$TMP/out" "$TMP/out-alias"
tb dashdash --no-cache -q -- "$B" "$I" "$TMP/out-dd"
expect_rc "timber -- BASE INSTRUCT OUT" 0
check "'--' changed the output" same_tree "$TMP/out" "$TMP/out-dd"

# --force replaces OUT (an old file in it disappears).
mkdir "$TMP/out-force" && echo old >"$TMP/out-force/stale.txt"
tb force "$B" "$I" "$TMP/out-force" --no-cache -q --force
expect_rc "--force" 0
check "--force kept a file of the old OUT" test ! -e "$TMP/out-force/stale.txt"
check "--force output differs from a fresh run" \
    same_tree "$TMP/out" "$TMP/out-force"
check "--force left a temporary beside OUT" nothing_left "$TMP"

# ---- reports
tb report "$B" "$I" "$TMP/out-r" --no-cache -q --report "$TMP/r.json" \
    --report "$TMP/r.csv" --timings
expect_rc "--report" 0
check "--timings: no summary line of phases on stderr: $(cat "$TMP/report.err")" \
    grep -q "^timber: timings (worker seconds over [0-9]* refined and [0-9]* copied tensors, [0-9.]* s in all): read [0-9.]*, gram [0-9.]*, reduce [0-9.]*, values [0-9.]*, vectors [0-9.]*, back [0-9.]*, project [0-9.]*, write [0-9.]*, cache [0-9.]*, wait [0-9.]*$" \
    "$TMP/report.err"
check "--timings -q: one timings line and no summary" \
    test "$(grep -c '^timber: timings' "$TMP/report.err")" = 1 -a \
    "$(grep -c '^timber: refined\|^timber: wrote' "$TMP/report.err")" = 0
check "--report printed on stdout" test ! -s "$TMP/report.out"
check "r.json is not valid JSON" python3 -m json.tool "$TMP/r.json" /dev/null
tb erank erank "$B" "$I" --no-cache -q --json "$TMP/e.json"
expect_rc "erank for the report check" 0
check "the report disagrees with the checkpoints or with timber erank" \
    python3 - "$TMP/r.json" "$TMP/r.csv" "$TMP/e.json" "$TMP/inspect-b.out" \
    "$TMP/inspect-i.out" <<'EOF'
import csv, json, sys
rj = json.load(open(sys.argv[1]))
rows = list(csv.DictReader(open(sys.argv[2], newline="")))
er = {e["name"]: e for e in json.load(open(sys.argv[3]))}
b = json.load(open(sys.argv[4]))["tensors"]
i = json.load(open(sys.argv[5]))["tensors"]
inames = [t["name"] for t in i]
want = inames + [t["name"] for t in b if t["name"] not in set(inames)]
fields = ["name", "shape", "dtype", "action", "reason", "rank", "erank", "k",
          "tail_energy", "view", "matrices"]
phases = ["read", "gram", "reduce", "values", "vectors", "back", "project",
          "write", "cache", "wait"]
timing = ["seconds"] + [p + "_s" for p in phases]
ok = True
def fail(msg):
    global ok
    ok = False
    print("report: " + msg, file=sys.stderr)
if open(sys.argv[2]).readline().strip() != ",".join(fields + timing):
    fail("CSV header is not " + ",".join(fields + timing))
tj = rj["tensors"]
if rj.get("gammas") != [0.2]:
    fail("JSON gammas %r" % rj.get("gammas"))
if [t["name"] for t in tj] != want:
    fail("JSON rows are not Instruct's tensors then the Base-only ones")
if [r["name"] for r in rows] != want:
    fail("CSV rows are not Instruct's tensors then the Base-only ones")
shapes = {t["name"]: t for t in b}
shapes.update({t["name"]: t for t in i})
for t, r in zip(tj, rows):
    n = t["name"]
    for f in fields[:5]:
        if f not in t:
            fail("%s: JSON has no %s" % (n, f))
    if t["shape"] != shapes[n]["shape"] or t["dtype"] != shapes[n]["dtype"]:
        fail("%s: JSON shape/dtype differ from the checkpoint's" % n)
    if r["shape"] != "x".join(str(d) for d in t["shape"]) or \
            r["dtype"] != t["dtype"] or r["action"] != t["action"] or \
            r["reason"] != t["reason"]:
        fail("%s: CSV and JSON rows differ" % n)
    if t["action"] == "refined":
        for f in fields[5:]:
            if f not in t or r[f] == "":
                fail("%s: refined but no %s" % (n, f))
        e = er.get(n)
        if not e:
            fail("%s: refined but not in timber erank's JSON" % n)
            continue
        if t["k"] != e["k"] or int(r["k"]) != e["k"]:
            fail("%s: k %s / %s, erank says %s" % (n, t["k"], r["k"], e["k"]))
        for v in (t["erank"], float(r["erank"])):
            if abs(v - e["erank_delta"]) > 1e-9 * max(1.0, abs(e["erank_delta"])):
                fail("%s: erank %r, erank says %r" % (n, v, e["erank_delta"]))
        if t["rank"] != e["rank"] or int(r["rank"]) != e["rank"]:
            fail("%s: rank %s, erank says %s" % (n, t["rank"], e["rank"]))
        if not 0 <= t["tail_energy"] <= 1:
            fail("%s: tail_energy %r" % (n, t["tail_energy"]))
    else:
        if n in er:
            fail("%s: %s in the report but analysed by erank" % (n, t["action"]))
        if any(r[f] != "" for f in fields[5:]):
            fail("%s: %s but the CSV has eRank fields" % (n, t["action"]))
    # Where the time went: present for every tensor written, >= 0, the
    # phases summing to at most the tensor's seconds (rounding aside);
    # a refined tensor spent time in them, a copied one only read, write
    # and wait.
    if t["action"] == "dropped":
        if "seconds" in t or "phases" in t or any(r[f] != "" for f in timing):
            fail("%s: dropped but has timings" % n)
    else:
        ph = t.get("phases", {})
        if sorted(ph) != sorted(phases) or "seconds" not in t:
            fail("%s: JSON timings %r" % (n, sorted(ph)))
            continue
        vals = [ph[p] for p in phases]
        if min(vals + [t["seconds"]]) < 0:
            fail("%s: a negative time %r" % (n, ph))
        if sum(vals) > t["seconds"] * 1.01 + 1e-4:
            fail("%s: phases sum to %g s, the tensor took %g" %
                 (n, sum(vals), t["seconds"]))
        if t["action"] == "refined" and not (sum(vals) > 0 and ph["gram"] > 0):
            fail("%s: refined, no time in its phases %r" % (n, ph))
        if t["action"] == "copied" and any(
                ph[p] for p in phases if p not in ("read", "write", "wait")):
            fail("%s: copied, but time outside read/write/wait %r" % (n, ph))
        for p in phases:
            if abs(float(r[p + "_s"]) - ph[p]) > 1e-8 * max(1.0, ph[p]):
                fail("%s: CSV %s_s %s, JSON %r" % (n, p, r[p + "_s"], ph[p]))
    want_action = "dropped" if n not in set(inames) else None
    if want_action and t["action"] != "dropped":
        fail("%s: only in Base but %s" % (n, t["action"]))
if sum(1 for t in tj if t["action"] == "refined") != len(er):
    fail("refined rows and erank rows differ in number")
sys.exit(0 if ok else 1)
EOF
check "the report run wrote other bytes" same_tree "$TMP/out" "$TMP/out-r"

# ---- selection
tb inc "$B" "$I" "$TMP/out-inc" --no-cache -q --include self_attn \
    --report "$TMP/inc.json"
expect_rc "--include self_attn" 0
check "--include self_attn: the report is wrong" \
    python3 - "$TMP/inc.json" "$TMP/r.json" <<'EOF'
import json, sys
inc = json.load(open(sys.argv[1]))["tensors"]
full = {t["name"]: t for t in json.load(open(sys.argv[2]))["tensors"]}
ok = True
for t in inc:
    f = full[t["name"]]
    if f["action"] == "refined" and "self_attn" in t["name"]:
        ok &= t["action"] == "refined"
    elif f["action"] == "refined":
        ok &= t["action"] == "copied" and t["reason"] == "not selected"
    else:
        ok &= t["action"] == f["action"] and t["reason"] == f["reason"]
    if not ok:
        print("include: %s: %s (%s)" % (t["name"], t["action"], t["reason"]),
              file=sys.stderr)
        break
ok &= any(t["action"] == "refined" for t in inc)
ok &= any(t["reason"] == "not selected" and ".mlp." in t["name"] for t in inc)
sys.exit(0 if ok else 1)
EOF
mapfile -t mlp < <(python3 -c '
import json, sys
for t in json.load(open(sys.argv[1]))["tensors"]:
    if t["reason"] == "not selected": print(t["name"])' "$TMP/inc.json")
check "--include: not-selected tensors are not Instruct's bytes" \
    $ST same-bytes "$I" "$TMP/out-inc" "${mlp[@]}"
check "--include: self_attn tensors were not refined" \
    $ST differ "$I" "$TMP/out-inc" model.layers.0.self_attn.q_proj.weight \
    model.layers.1.self_attn.o_proj.weight
check "--include: selected tensors differ from the full run" \
    $ST same-bytes "$TMP/out" "$TMP/out-inc" \
    model.layers.0.self_attn.q_proj.weight model.layers.1.self_attn.o_proj.weight

# --exclude on a pair without grown vocabulary (embed and lm_head refinable)
NB=$TMP/nv/base
NI=$TMP/nv/instruct
tb nv-all "$NB" "$NI" "$TMP/out-nv" --no-cache -q --report "$TMP/nv.json"
expect_rc "refine (no grown vocabulary)" 0
tb exc "$NB" "$NI" "$TMP/out-exc" --no-cache -q --exclude 'embed|lm_head' \
    --report "$TMP/exc.json"
expect_rc "--exclude 'embed|lm_head'" 0
check "--exclude: the report is wrong" \
    python3 - "$TMP/exc.json" "$TMP/nv.json" <<'EOF'
import json, re, sys
exc = json.load(open(sys.argv[1]))["tensors"]
full = {t["name"]: t for t in json.load(open(sys.argv[2]))["tensors"]}
assert full["model.embed_tokens.weight"]["action"] == "refined"
assert full["lm_head.weight"]["action"] == "refined"
for t in exc:
    f = full[t["name"]]
    if re.search("embed|lm_head", t["name"]) and f["action"] == "refined":
        assert t["action"] == "copied" and t["reason"] == "not selected", t
    else:
        assert t["action"] == f["action"] and t["reason"] == f["reason"], t
EOF
check "--exclude: excluded tensors are not Instruct's bytes" \
    $ST same-bytes "$NI" "$TMP/out-exc" model.embed_tokens.weight lm_head.weight
check "--exclude: the other tensors differ from the full run" \
    $ST same-bytes "$TMP/out-nv" "$TMP/out-exc" \
    model.layers.0.mlp.down_proj.weight model.variant.three_d.weight
check "--exclude: embed was not refined in the full run" \
    $ST differ "$NI" "$TMP/out-nv" model.embed_tokens.weight

# ---- the card quotes the command without the options that cannot
# change the output, so those do not change the card either
tb card1 "$TMP/ps/base" "$TMP/ps/instruct" "$TMP/out-card" --no-cache -q \
    --threads 1
expect_rc "card run 1" 0
cp "$TMP/out-card/README.md" "$TMP/card1.md"
tb card2 "$TMP/ps/base" "$TMP/ps/instruct" "$TMP/out-card" --force \
    --threads=2 --cache "$TMP/card.cache" --report "$TMP/card.json" --quiet
expect_rc "card run 2" 0
check "--threads/--cache/--report/--force/--quiet changed the card" \
    cmp -s "$TMP/card1.md" "$TMP/out-card/README.md"
check "the card quotes an option that cannot change the output" \
    grep -qx "timber $TMP/ps/base $TMP/ps/instruct $TMP/out-card" \
    "$TMP/card1.md"

# ---- determinism: threads, on a sharded pair
tb t1 "$TMP/ps/base" "$TMP/ps/instruct" "$TMP/out-t1" --no-cache -q --threads 1
expect_rc "--threads 1" 0
tb t2 "$TMP/ps/base" "$TMP/ps/instruct" "$TMP/out-t2" --no-cache -q --threads 2
expect_rc "--threads 2" 0
same_files=1
for f in "$TMP/ps/instruct"/*; do
    name=$(basename "$f")
    if ! cmp -s "$TMP/out-t1/$name" "$TMP/out-t2/$name"; then
        bad "--threads 1 and 2 differ in $name"
        same_files=0
    fi
done
[ "$same_files" = 1 ] && ok
check "--threads 1 and 2 wrote different file sets" \
    test "$(ls "$TMP/out-t1")" = "$(ls "$TMP/out-t2")"
finish
