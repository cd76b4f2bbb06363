#!/usr/bin/env bash
# A run split into parts (`--part I/N` then `timber finalize OUT`) writes
# exactly what one run writes, whatever the order of the parts:
#   - N = 1, 2, 3, 7 (more than the shards) and 60 (more than the
#     tensors), parts run in reverse order, then finalize: OUT is byte for
#     byte the one-machine run's (its card included), the staging
#     directory is gone and nothing else is left beside OUT;
#   - a gamma sweep with its three parts running at once;
#   - a missing part: finalize exits 1 with one line naming it and the
#     command to rerun it, publishes nothing, keeps the staging; after
#     the part, finalize succeeds;
#   - a part killed (SIGKILL) mid-run and run again: it keeps what its
#     journal shows is on disk and computes the rest (a cached rerun
#     recomputes exactly the tensors not recorded); the result is
#     identical;
#   - bytes damaged after a part completed: finalize names the tensor
#     (with two damaged, the same one on 1 and 2 threads, every time)
#     and its part and publishes nothing; rerunning that part redoes
#     exactly that tensor;
#   - a damaged completion record, a part with other options or another
#     N: refused with one line naming the file and what differs;
#   - --part auto from SLURM_ARRAY_TASK_* (with MIN and STEP) and from
#     JOB_COMPLETION_INDEX with --parts; usage errors;
#   - `timber plan --json`: every tensor in exactly one part,
#     deterministic, and the parts' completion records hold the tensors
#     the plan assigns them.
#
#   usage: parts.sh TIMBER TIMBER_GEN
# Prints "N passed, M failed".
if [ $# -ne 2 ]; then
    echo "usage: $0 TIMBER TIMBER_GEN" >&2
    exit 2
fi
TIMBER=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
export TIMBER
GEN=$2
FUNC=$(cd "$(dirname "$0")" && pwd)
. "$FUNC/lib.sh"

gen pair --preset tiny --layers 3 --seed 11 --max-shard-size 64K \
    --variants instruct-only,base-only,3d,experts3d
nshards=$(ls "$TMP/pair/instruct"/*.safetensors | wc -l)
[ "$nshards" -ge 3 ] && ok || bad "the pair has $nshards shards, not >= 3"

# run DIR ARGS...: timber ARGS in $TMP/DIR (created), with the pair at
# ../pair, so every run's command line (and card) reads the same.
run() {
    local dir=$1 name
    shift
    name=$(basename "$dir")-$RANDOM
    mkdir -p "$TMP/$dir"
    (cd "$TMP/$dir" && "$TIMBER" "$@") >"$TMP/$name.out" \
        2>"$TMP/last.err" </dev/null
    RC=$?
}
P="../pair/base ../pair/instruct out"

run ref $P --no-cache -q
[ $RC -eq 0 ] && ok || bad "one-machine run: exit $RC: $(cat "$TMP/last.err")"
ntensors=$("$TIMBER" inspect "$TMP/pair/instruct" --json |
    python3 -c 'import json,sys; print(len(json.load(sys.stdin)["tensors"]))')
[ "$ntensors" -lt 60 ] && ok || bad "the pair has $ntensors tensors"

# nothing_beside DIR: DIR holds OUT and nothing else (no staging, no
# temporary).
nothing_beside() {
    [ "$(ls -A "$TMP/$1")" = out ]
}

for N in 1 2 3 7 60; do
    d=n$N
    for ((i = N - 1; i >= 0; i--)); do
        run $d $P --no-cache -q --part $i/$N
        [ $RC -eq 0 ] || bad "N=$N: part $i: exit $RC: $(cat "$TMP/last.err")"
    done
    [ -e "$TMP/$d/out" ] && bad "N=$N: OUT exists before finalize" || ok
    run $d finalize out -q
    [ $RC -eq 0 ] && ok || bad "N=$N: finalize: exit $RC: $(cat "$TMP/last.err")"
    diff -r "$TMP/ref/out" "$TMP/$d/out" >/dev/null && ok ||
        bad "N=$N: OUT differs from the one-machine run"
    check "N=$N: something is left beside OUT: $(ls -A "$TMP/$d")" \
        nothing_beside $d
done

# A sweep, its parts at once.
run sweep-ref $P --no-cache -q --gamma 0,0.2,0.5
mkdir -p "$TMP/sweep"
(
    cd "$TMP/sweep" || exit 1
    for i in 0 1 2; do
        "$TIMBER" $P --no-cache -q --gamma 0,0.2,0.5 --part $i/3 &
    done
    wait
) 2>"$TMP/sweep.err"
run sweep finalize out
[ $RC -eq 0 ] && ok || bad "sweep finalize: exit $RC: $(cat "$TMP/last.err")"
diff -r "$TMP/sweep-ref/out" "$TMP/sweep/out" >/dev/null && ok ||
    bad "sweep: OUT differs from the one-machine run"

# A missing part.
for i in 0 1 3; do run miss $P --no-cache -q --part $i/4; done
run miss finalize out
[ $RC -eq 1 ] && ok || bad "finalize with part 2/4 missing: exit $RC"
[ "$(wc -l <"$TMP/last.err")" -eq 1 ] && ok ||
    bad "finalize with a part missing: not one line: $(cat "$TMP/last.err")"
grep -q 'part 2/4 of 4 is not complete' "$TMP/last.err" && ok ||
    bad "finalize does not name part 2/4: $(cat "$TMP/last.err")"
grep -qF -- "--no-cache -q --part 2/4" "$TMP/last.err" && ok ||
    bad "finalize does not give the part's command: $(cat "$TMP/last.err")"
[ ! -e "$TMP/miss/out" ] && [ -d "$TMP/miss/.out.timber-parts" ] && ok ||
    bad "finalize with a part missing published or removed something"
run miss $P --no-cache -q --part 2/4
run miss finalize out -q
[ $RC -eq 0 ] && diff -r "$TMP/ref/out" "$TMP/miss/out" >/dev/null && ok ||
    bad "after the missing part: exit $RC, or OUT differs"

# Killed mid-run, then run again: on a pair large enough to be caught in
# the middle (whatever the journal holds when the kill lands, the rerun
# must complete it to the same bytes).
gen big --preset qwen3-0.6b --layers 1 --vocab 4096 --seed 3
PB="../big/base ../big/instruct out"
run bigref $PB --no-cache -q
mkdir -p "$TMP/kill"
(cd "$TMP/kill" && exec "$TIMBER" $PB -q --cache ../kill.cache --threads 1 \
    --part 0/1) 2>/dev/null &
pid=$!
# After the first journal line (or the end), kill it.
for _ in $(seq 200); do
    [ -s "$TMP/kill/.out.timber-parts/parts/0-of-1.log" ] && break
    kill -0 $pid 2>/dev/null || break
    sleep 0.05
done
sleep 0.3
kill -KILL $pid 2>/dev/null
wait $pid 2>/dev/null
logged=$(grep -c '^t ' "$TMP/kill/.out.timber-parts/parts/0-of-1.log" \
    2>/dev/null || echo 0)
run kill $PB --cache ../kill.cache --threads 1 --part 0/1
[ $RC -eq 0 ] && ok || bad "the killed part, rerun: exit $RC: $(cat "$TMP/last.err")"
if [ "$logged" -gt 0 ]; then
    grep -q "($logged of them kept from an earlier run of this part)" \
        "$TMP/last.err" && ok ||
        bad "the rerun does not say it kept the $logged journalled tensors: $(cat "$TMP/last.err")"
fi
# A complete part run again keeps everything and computes nothing.
nbig=$("$TIMBER" inspect "$TMP/big/instruct" --json |
    python3 -c 'import json,sys; print(len(json.load(sys.stdin)["tensors"]))')
run kill $PB --cache ../kill.cache --threads 1 --part 0/1
grep -q "($nbig of them kept from an earlier run of this part)" \
    "$TMP/last.err" && ok ||
    bad "a complete part rerun does not keep all $nbig tensors: $(cat "$TMP/last.err")"
# A finalize killed after copying Instruct's files left them in the
# staging: finalize again makes them again.
cp "$TMP/big/instruct/config.json" "$TMP/kill/.out.timber-parts/out/"
run kill finalize out -q
diff -r "$TMP/bigref/out" "$TMP/kill/out" >/dev/null && ok ||
    bad "killed after $logged tensors and rerun: OUT differs"

# Damage after completion: one refined tensor's bytes in the staging.
for i in 0 1; do run dmg $P -q --cache ../dmg.cache --part $i/2; done
shard=$(ls "$TMP/dmg/.out.timber-parts/out/"*.safetensors | head -1)
read -r tname toff < <(python3 - "$shard" <<'EOF'
import json, struct, sys
with open(sys.argv[1], "rb") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    h = json.loads(f.read(n))
for k, v in sorted(h.items()):
    if k != "__metadata__" and len(v["shape"]) == 2:
        print(k, 8 + n + v["data_offsets"][0] + 3)
        break
EOF
)
printf '\x55' | dd of="$shard" bs=1 seek="$toff" conv=notrunc 2>/dev/null
run dmg finalize out
[ $RC -eq 1 ] && ok || bad "finalize over damaged bytes: exit $RC"
grep -qF "tensor '$tname'" "$TMP/last.err" && grep -q 'part [01]/2' "$TMP/last.err" &&
    ok || bad "finalize does not name '$tname' and its part: $(cat "$TMP/last.err")"
[ ! -e "$TMP/dmg/out" ] && ok || bad "finalize published damaged bytes"
dpart=$(grep -o 'part [01]/2' "$TMP/last.err" | head -1 | cut -c6)
# Two damaged tensors (a copy of that staging, another tensor damaged as
# well): finalize reads the tensors back on every core, yet names the same
# one of the two every time (the first in the plan's order).
cp -a "$TMP/dmg" "$TMP/dmg2"
shard2=$(ls "$TMP/dmg2/.out.timber-parts/out/"*.safetensors | tail -1)
read -r tname2 toff2 < <(python3 - "$shard2" <<'EOF'
import json, struct, sys
with open(sys.argv[1], "rb") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    h = json.loads(f.read(n))
names = [k for k, v in sorted(h.items())
         if k != "__metadata__" and len(v["shape"]) == 2]
v = h[names[-1]]
print(names[-1], 8 + n + v["data_offsets"][0] + 3)
EOF
)
printf '\x55' | dd of="$shard2" bs=1 seek="$toff2" conv=notrunc 2>/dev/null
named=""
for t in 1 2 2 2; do
    run dmg2 finalize out --threads "$t"
    [ $RC -eq 1 ] && ok || bad "finalize over two damaged tensors: exit $RC"
    got=$(grep -o "tensor '[^']*'" "$TMP/last.err" | head -1)
    [ -n "$named" ] || named=$got
    [ "$got" = "$named" ] && ok ||
        bad "finalize named $got, then $named, over the same two damaged tensors"
done
case "$named" in
"tensor '$tname'" | "tensor '$tname2'") ok ;;
*) bad "finalize named $named, not '$tname' or '$tname2'" ;;
esac
[ "$tname" != "$tname2" ] && ok || bad "the two damaged tensors are one"
rm -rf "$TMP/dmg2"
run dmg $P --cache ../dmg.cache --part "$dpart/2"
grep -q 'cache .*: 1 tensor from the cache, 0 computed' "$TMP/last.err" && ok ||
    bad "rerunning part $dpart/2 did not redo exactly the damaged tensor: $(cat "$TMP/last.err")"
run dmg finalize out -q
diff -r "$TMP/ref/out" "$TMP/dmg/out" >/dev/null && ok ||
    bad "after rerunning the damaged part: OUT differs"

# A damaged completion record; other options; another N.
for i in 0 1 2; do run rec $P --no-cache -q --part $i/3; done
# (one checksum changed: the record's own checksum no longer matches)
sed -i '5s/ [0-9a-f]\{8\} / 00000000 /' "$TMP/rec/.out.timber-parts/parts/1-of-3.done"
run rec finalize out
[ $RC -eq 1 ] && grep -q 'part 1/3 of 3 is not complete' "$TMP/last.err" &&
    grep -q 'damaged' "$TMP/last.err" && ok ||
    bad "a damaged record: exit $RC: $(cat "$TMP/last.err")"
run rec $P --no-cache -q --part 1/3 --gamma 0.5
[ $RC -eq 1 ] && grep -q 'run.json: it was started with --gamma 0.2, this part has 0.5' \
    "$TMP/last.err" && [ "$(wc -l <"$TMP/last.err")" -eq 1 ] && ok ||
    bad "a part with another gamma: exit $RC: $(cat "$TMP/last.err")"
run rec $P --no-cache -q --part 1/4
[ $RC -eq 1 ] && grep -q 'started as 3 parts, this is one of 4' \
    "$TMP/last.err" && ok ||
    bad "a part of another N: exit $RC: $(cat "$TMP/last.err")"
run rec $P --no-cache -q --part 1/3
run rec finalize out -q
diff -r "$TMP/ref/out" "$TMP/rec/out" >/dev/null && ok ||
    bad "after rerunning the part with the damaged record: OUT differs"

# --part auto.
auto() {
    local want=$1
    shift
    (cd "$TMP/auto" && env -u SLURM_ARRAY_TASK_ID -u SLURM_ARRAY_TASK_MIN \
        -u SLURM_ARRAY_TASK_STEP -u SLURM_ARRAY_TASK_COUNT \
        -u JOB_COMPLETION_INDEX "$@" "$TIMBER" $P --no-cache --part auto \
        ${PARTS:-}) >/dev/null 2>"$TMP/last.err" </dev/null
    RC=$?
    if [ "$want" = usage ]; then
        [ $RC -eq 2 ] && ok || bad "--part auto with $*: exit $RC, not 2"
    else
        grep -q "^timber: part $want of out complete" "$TMP/last.err" && ok ||
            bad "--part auto with $*: not part $want: $(cat "$TMP/last.err")"
    fi
}
mkdir -p "$TMP/auto"
auto 1/3 SLURM_ARRAY_TASK_ID=5 SLURM_ARRAY_TASK_MIN=4 SLURM_ARRAY_TASK_COUNT=3
auto 2/3 SLURM_ARRAY_TASK_ID=6 SLURM_ARRAY_TASK_MIN=2 SLURM_ARRAY_TASK_STEP=2 \
    SLURM_ARRAY_TASK_COUNT=3
auto 0/3 SLURM_ARRAY_TASK_ID=0 SLURM_ARRAY_TASK_COUNT=3
auto usage SLURM_ARRAY_TASK_ID=3 SLURM_ARRAY_TASK_COUNT=3
auto usage JOB_COMPLETION_INDEX=1
PARTS="--parts 3" auto 1/3 JOB_COMPLETION_INDEX=1
PARTS="--parts 3" auto usage JOB_COMPLETION_INDEX=3
PARTS="--parts 4" auto usage SLURM_ARRAY_TASK_ID=0 SLURM_ARRAY_TASK_COUNT=3
auto usage -u SLURM_ARRAY_TASK_ID -u JOB_COMPLETION_INDEX
run auto finalize out -q
diff -r "$TMP/ref/out" "$TMP/auto/out" >/dev/null && ok ||
    bad "--part auto parts: OUT differs"
for bad_part in 3/3 x 1/0 -1/3 1/100001 "1/3 --parts 4"; do
    run usage $P --no-cache --part $bad_part
    [ $RC -eq 2 ] && [ "$(wc -l <"$TMP/last.err")" -eq 1 ] && ok ||
        bad "--part $bad_part: exit $RC: $(cat "$TMP/last.err")"
done
run usage $P --no-cache --parts 3
[ $RC -eq 2 ] && ok || bad "--parts without --part auto: exit $RC"
run usage finalize out
[ $RC -eq 1 ] && grep -q 'no distributed run to finalize' "$TMP/last.err" &&
    ok || bad "finalize without parts: exit $RC: $(cat "$TMP/last.err")"
for bad_threads in 0 x 65; do
    run usage finalize out --threads "$bad_threads"
    [ $RC -eq 2 ] && grep -q -- '--threads' "$TMP/last.err" && ok ||
        bad "finalize --threads $bad_threads: exit $RC: $(cat "$TMP/last.err")"
done
# A part refuses an existing OUT without --force; finalize --force
# replaces it.
run n3 $P --no-cache -q --part 0/3
[ $RC -eq 1 ] && grep -q 'already exists' "$TMP/last.err" && ok ||
    bad "a part over an existing OUT: exit $RC: $(cat "$TMP/last.err")"
for i in 0 1 2; do run n3 $P --no-cache -q --force --gamma 0.5 --part $i/3; done
run n3 finalize out --force -q
run n3ref $P --no-cache -q --gamma 0.5
[ $RC -eq 0 ] && diff -r "$TMP/n3ref/out" "$TMP/n3/out" >/dev/null && ok ||
    bad "finalize --force over an existing OUT"

# The plan.
"$TIMBER" plan "$TMP/pair/base" "$TMP/pair/instruct" --parts 7 --json \
    >"$TMP/plan1.json" && ok || bad "timber plan --json failed"
"$TIMBER" plan "$TMP/pair/base" "$TMP/pair/instruct" --parts 7 --json \
    >"$TMP/plan2.json"
cmp -s "$TMP/plan1.json" "$TMP/plan2.json" && ok || bad "plan is not deterministic"
for i in 0 1 2 3 4 5 6; do run plan $P --no-cache -q --part $i/7; done
check "the plan does not match the parts' records" python3 - "$TMP" <<'EOF'
import json, subprocess, sys
tmp = sys.argv[1]
plan = json.load(open(tmp + "/plan1.json"))
names = [t["name"] for t in plan["tensors"]]
inst = json.loads(subprocess.run(
    [__import__("os").environ.get("TIMBER", "timber"), "inspect",
     tmp + "/pair/instruct", "--json"], capture_output=True).stdout)
ok = sorted(names) == sorted(t["name"] for t in inst["tensors"])
ok = ok and len(set(names)) == len(names) and plan["parts"] == 7
ok = ok and sum(p["tensors"] for p in plan["per_part"]) == len(names)
for p in range(7):
    lines = open(f"{tmp}/plan/.out.timber-parts/parts/{p}-of-7.done").read()
    items = [int(l.split()[1]) for l in lines.splitlines() if l.startswith("t ")]
    want = [i for i, t in enumerate(plan["tensors"]) if t["part"] == p]
    ok = ok and sorted(items) == want
sys.exit(0 if ok else 1)
EOF
finish
