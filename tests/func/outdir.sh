#!/usr/bin/env bash
# The output directory is a normal Hugging Face checkpoint of Instruct's
# architecture:
#   - sharded pair: OUT has Instruct's shard file names, an index whose
#     weight_map lists exactly the tensors written (the Instruct-only one
#     included, no Base-only one) in the shards that hold them, total_size
#     = the sum of tensor bytes (from `timber inspect --json`);
#   - every shard's __metadata__ has format=pt and the timber.* keys
#     (version, gamma, include, exclude, fingerprint), all strings;
#   - config.json, generation_config.json and the tokenizer files are
#     Instruct's copies (cmp; they differ from Base's), nothing else is
#     there; OUT opens with `timber inspect`;
#   - an unsharded pair gives model.safetensors and no index;
#   - a gamma list gives OUT/gamma-<g>/, each a complete checkpoint with
#     its own timber.gamma;
#   - no temporary is left in OUT's parent.
#
#   usage: outdir.sh TIMBER TIMBER_GEN
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

gen sh --preset tiny --seed 5 --max-shard-size 64K
gen one --preset tiny --seed 6
# Instruct's own card: its license goes into OUT's card, its text does not.
printf -- '---\nlanguage:\n- en\nlicense: mit\n---\n# Instruct card body\n' \
    >"$TMP/sh/instruct/README.md"

# check_out PAIR OUT GAMMA_TEXT INCLUDE EXCLUDE: the output contract.
check_out() {
    local pair=$TMP/$1 out=$2 gtext=$3 inc=$4 exc=$5
    tb inspect-out inspect "$out" --json
    expect_rc "timber inspect $out" 0
    tb inspect-inst inspect "$pair/instruct" --json
    check "$out: not the checkpoint it should be" \
        python3 - "$FUNC" "$pair" "$out" "$TMP/inspect-out.out" \
        "$TMP/inspect-inst.out" "$gtext" "$inc" "$exc" <<'EOF'
import filecmp, json, os, sys
sys.path.insert(0, sys.argv[1])
import sthelp
pair, out, insp_out, insp_inst = sys.argv[2:6]
gtext, inc, exc = sys.argv[6:9]
inst, base = pair + "/instruct", pair + "/base"
errors = []
def expect(cond, msg):
    if not cond:
        errors.append(msg)

# Instruct's files, but the card is timber's own (Instruct's is not
# carried over: it describes another model).
files_i = sorted(set(os.listdir(inst)) | {"README.md"})
files_o = sorted(os.listdir(out))
expect(files_o == files_i, "files %s, Instruct has %s" % (files_o, files_i))
card = open(os.path.join(out, "README.md")).read()
expect(card.startswith("---\nbase_model:\n- \"instruct\"\n- \"base\"\n"
                       "base_model_relation: merge\nlibrary_name: "
                       "transformers\n"), "card front matter: %r" % card[:200])
expect("tags:\n- timber\n---\n" in card, "card: no tags: [timber]")
expect("| gamma | %s" % gtext in card, "card: no gamma %s" % gtext)
expect("arXiv:2509.23595" in card, "card: no arXiv link")
if os.path.exists(os.path.join(inst, "README.md")):
    expect("Instruct card body" not in card, "card: Instruct's card was copied")
    expect("\nlicense: mit\ntags:" in card, "card: Instruct's license missing")
shards_i = [f for f in files_i if f.endswith(".safetensors")]
shards_o = [f for f in files_o if f.endswith(".safetensors")]
expect(shards_o == shards_i, "shards %s, Instruct's %s" % (shards_o, shards_i))

jo = json.load(open(insp_out))
ji = json.load(open(insp_inst))
to = {t["name"]: t for t in jo["tensors"]}
ti = {t["name"]: t for t in ji["tensors"]}
tb_ = sthelp.tensors(base)
expect(set(to) == set(ti), "tensors differ from Instruct's: %s" %
       sorted(set(to) ^ set(ti)))
for n, t in ti.items():
    if n in to:
        expect((to[n]["dtype"], to[n]["shape"], to[n]["shard"]) ==
               (t["dtype"], t["shape"], t["shard"]),
               "%s: dtype/shape/shard differ from Instruct's" % n)
for n in tb_:
    if n not in ti:
        expect(n not in to, "%s (only in Base) was written" % n)
expect(any(n not in tb_ for n in to), "no Instruct-only tensor in OUT")

index = os.path.join(out, "model.safetensors.index.json")
if len(shards_i) > 1:
    idx = json.load(open(index))
    wm = idx["weight_map"]
    expect(set(wm) == set(to), "index lists %s, OUT holds %s" %
           (sorted(set(wm) - set(to)), sorted(set(to) - set(wm))))
    for n, s in wm.items():
        if n in to:
            expect(to[n]["shard"] == s,
                   "index puts %s in %s, it is in %s" % (n, s, to[n]["shard"]))
    total = sum(t["bytes"] for t in jo["tensors"])
    expect(idx["metadata"]["total_size"] == total,
           "total_size %r, tensors hold %d bytes" %
           (idx["metadata"]["total_size"], total))
    expect(total == jo["totals"]["bytes"], "inspect totals disagree")
else:
    expect(not os.path.exists(index), "an index for a single shard")

for f, (n, h) in sthelp.shard_headers(out).items():
    md = h.get("__metadata__")
    expect(isinstance(md, dict), "%s: no __metadata__" % f)
    if not isinstance(md, dict):
        continue
    expect(md.get("format") == "pt", "%s: format %r" % (f, md.get("format")))
    for k in ("timber.version", "timber.gamma", "timber.include",
              "timber.exclude", "timber.fingerprint"):
        expect(k in md, "%s: no %s" % (f, k))
    expect(all(isinstance(v, str) for v in md.values()),
           "%s: a metadata value is not a string" % f)
    expect(md.get("timber.gamma") == gtext,
           "%s: timber.gamma %r, expected %r" % (f, md.get("timber.gamma"), gtext))
    # The selection: a JSON array of the regexes (a plain string, empty
    # for none, in older versions).
    def regexes(v):
        if isinstance(v, str) and v.startswith("["):
            return json.loads(v)
        return [v] if v else []
    expect(regexes(md.get("timber.include", "")) == ([inc] if inc else []) and
           regexes(md.get("timber.exclude", "")) == ([exc] if exc else []),
           "%s: include/exclude %r/%r" % (f, md.get("timber.include"),
                                           md.get("timber.exclude")))
    expect(n % 8 == 0, "%s: header length %d not a multiple of 8" % (f, n))

for f in files_i:
    if f.endswith(".safetensors") or f in ("model.safetensors.index.json",
                                           "README.md"):
        continue
    expect(filecmp.cmp(os.path.join(inst, f), os.path.join(out, f),
                       shallow=False), "%s is not Instruct's copy" % f)
for f in ("config.json", "generation_config.json", "tokenizer_config.json"):
    expect(not filecmp.cmp(os.path.join(base, f), os.path.join(out, f),
                           shallow=False), "%s is Base's" % f)
for e in errors:
    print("outdir: " + e, file=sys.stderr)
sys.exit(1 if errors else 0)
EOF
}

# Sharded pair, OUT alone in its parent.
mkdir "$TMP/parent"
tb run "$TMP/sh/base" "$TMP/sh/instruct" "$TMP/parent/out" --no-cache -q
expect_rc "refine sharded" 0
check_out sh "$TMP/parent/out" 0.2 "" ""
check "something beside OUT in its parent: $(ls -A "$TMP/parent")" \
    test "$(ls -A "$TMP/parent")" = out

# With a selection, the metadata says so.
tb sel "$TMP/sh/base" "$TMP/sh/instruct" "$TMP/parent/sel" --no-cache -q \
    --gamma 0.55 --include 'layers' --exclude 'k_proj'
expect_rc "refine with a selection" 0
check_out sh "$TMP/parent/sel" 0.55 layers k_proj

# --force over an existing OUT: still nothing beside it.
tb force "$TMP/sh/base" "$TMP/sh/instruct" "$TMP/parent/out" --no-cache -q \
    --force --gamma 0
expect_rc "refine --force" 0
check_out sh "$TMP/parent/out" 0 "" ""
check "something beside OUT after --force: $(ls -A "$TMP/parent")" \
    test "$(ls -A "$TMP/parent" | tr '\n' ' ')" = "out sel "

# One shard: model.safetensors, no index.
mkdir -p "$TMP/parent1"
tb one "$TMP/one/base" "$TMP/one/instruct" "$TMP/parent1/out" --no-cache -q
expect_rc "refine single shard" 0
check_out one "$TMP/parent1/out" 0.2 "" ""

# A gamma list: a directory per gamma, each complete.
mkdir -p "$TMP/parent2"
tb list "$TMP/sh/base" "$TMP/sh/instruct" "$TMP/parent2/out" --no-cache -q \
    --gamma 0.5,0,1
expect_rc "refine --gamma 0.5,0,1" 0
check "gamma list: OUT holds $(ls -A "$TMP/parent2/out" | tr '\n' ' ')" \
    test "$(ls -A "$TMP/parent2/out" | tr '\n' ' ')" = "gamma-0 gamma-0.5 gamma-1 "
for g in 0.5 0 1; do
    check_out sh "$TMP/parent2/out/gamma-$g" "$g" "" ""
done
check "something beside the gamma-list OUT" \
    test "$(ls -A "$TMP/parent2")" = out
finish
