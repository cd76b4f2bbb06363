#!/usr/bin/env bash
# docs.sh — what docs/distributed.md tells users to run, run as written:
#
#   slurm       its submission script (the bash block after the first
#               "dist_docs" marker), on the test cluster, N = 3: both jobs
#               COMPLETED and OUT byte-identical to a one-machine run
#               (skipped unless root with Slurm installed)
#   kubernetes  its two Job manifests (the yaml block): an Indexed Job
#               whose --parts equals its completions and whose command
#               says --part auto, a finalize Job on the same volume and
#               OUT; their commands run here with /data in the test's
#               directory and JOB_COMPLETION_INDEX = 0..completions-1,
#               then finalize: OUT as one machine's
#   parallel    its GNU parallel one-liner (the sh block), as written, in
#               a directory holding base/ and instruct/
#
#   usage: docs.sh TIMBER TIMBER_GEN REFCHECK
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"
DOC=$here/../../docs/distributed.md
[ -f "$DOC" ] || { echo "no $DOC"; exit 1; }
dist_pair
# The doc's commands say "timber": this build's, first on PATH.
mkdir -p bin
ln -s "$TIMBER" bin/timber
export PATH="$T/bin:$PATH"

# The fenced blocks after each "<!-- dist_docs" marker, in order.
python3 - "$DOC" "$T" <<'PY' || { bad "cannot extract the blocks of $DOC"; finish; }
import sys
lines = open(sys.argv[1], encoding="utf-8").read().split("\n")
out, i, n = sys.argv[2], 0, 0
names = ["doc-slurm.sh", "doc-k8s.yaml", "doc-parallel.sh"]
while i < len(lines):
    if lines[i].startswith("<!-- dist_docs"):
        j = i + 1
        while not lines[j].startswith("```"):
            j += 1
        k = j + 1
        while lines[k] != "```":
            k += 1
        open(f"{out}/{names[n]}", "w").write("\n".join(lines[j + 1:k]) + "\n")
        n += 1
        i = k
    i += 1
if n != 3:
    sys.exit(f"{n} marked blocks, expected 3")
PY
ok

# ---- parallel ----------------------------------------------------------
# The line as written in a directory holding base/ and instruct/; then the
# one-machine run of the same command (less --part, after the line, so
# that it cannot have filled the cache for it).
if command -v parallel >/dev/null 2>&1; then
    mkdir par
    ln -s ../pair/base par/base
    ln -s ../pair/instruct par/instruct
    line=$(cat doc-parallel.sh)
    RC=0
    (cd par && bash ../doc-parallel.sh) >log/par.out 2>log/par.err </dev/null || RC=$?
    check "parallel: '$line' exit code $RC, expected 0: $(grep 'timber: ' log/par.err | grep -v warning | head -c 300)" [ "$RC" -eq 0 ]
    [ -d par/refined ] && mv par/refined par-refined
    (cd par && timber base instruct refined --gamma 0.2 --cache cache/ >../log/par-ref.out 2>../log/par-ref.err &&
        mv refined ../ref/par-refined) || bad "parallel: the one-machine run failed: $(cat log/par-ref.err)"
    identical "parallel: the doc's one-liner" par-refined
else
    skip "GNU parallel is not installed"
fi

# ---- kubernetes ----------------------------------------------------------
if python3 -c 'import yaml' 2>/dev/null; then
    if python3 - doc-k8s.yaml >k8s.args 2>log/k8s.err <<'PY'; then
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
assert len(docs) == 2, f"{len(docs)} documents, expected 2"
parts, fin = docs
assert parts["kind"] == "Job" and fin["kind"] == "Job"
ps, fs = parts["spec"], fin["spec"]
assert ps["completionMode"] == "Indexed", "completionMode is not Indexed"
pc = ps["template"]["spec"]["containers"][0]
fc = fs["template"]["spec"]["containers"][0]
cmd = pc["command"]
assert cmd[0] == "timber", cmd
i = cmd.index("--part")
assert cmd[i + 1] == "auto", "--part is not auto"
n = int(cmd[cmd.index("--parts") + 1])
assert n == ps["completions"], f"--parts {n} != completions {ps['completions']}"
assert ps["template"]["spec"]["restartPolicy"] == "Never"
assert fc["command"] == ["timber", "finalize", cmd[3]], fc["command"]
vol = lambda s: [(v["name"], v["persistentVolumeClaim"]["claimName"]) for v in s["template"]["spec"]["volumes"]]
assert vol(ps) == vol(fs), "the two Jobs mount other volumes"
assert pc["volumeMounts"] == fc["volumeMounts"], "the two Jobs mount at other paths"
mount = pc["volumeMounts"][0]["mountPath"]
print(mount)
print(n)
for a in cmd[1:]:
    print(a)
PY
        ok
        mount=$(sed -n 1p k8s.args)
        n=$(sed -n 2p k8s.args)
        # The pod's command, with the volume in $T/k8s.
        mkdir -p k8s
        args=()
        while IFS= read -r a; do
            case "$a" in "$mount"/*) a="$T/k8s/${a#"$mount"/}" ;; esac
            args+=("$a")
        done < <(sed -n '3,$p' k8s.args)
        cp -r pair/base pair/instruct k8s/
        out=${args[2]}
        pids=()
        for i in $(seq 0 $((n - 1))); do
            env -u SLURM_ARRAY_TASK_ID -u SLURM_ARRAY_TASK_MIN -u SLURM_ARRAY_TASK_COUNT \
                JOB_COMPLETION_INDEX="$i" "$TIMBER" "${args[@]}" \
                >"log/k8s-$i.out" 2>"log/k8s-$i.err" </dev/null &
            pids+=($!)
        done
        failed=0
        for p in "${pids[@]}"; do wait "$p" || failed=$((failed + 1)); done
        check "kubernetes: $failed of $n pods failed: $(cat log/k8s-*.err | grep -m2 'timber: ')" [ "$failed" -eq 0 ]
        RC=0
        "$TIMBER" finalize "$out" >log/k8s-fin.out 2>log/k8s-fin.err || RC=$?
        check "kubernetes: finalize ($RC): $(head -c 300 log/k8s-fin.err)" [ "$RC" -eq 0 ]
        # The one-machine run: the same command less --part auto --parts N,
        # after the pods (so that it cannot have filled their cache), with
        # their OUT aside.
        [ -d "$out" ] && mv "$out" "$out.dist"
        refargs=()
        skipn=0
        for a in "${args[@]}"; do
            if [ "$skipn" -gt 0 ]; then skipn=$((skipn - 1)); continue; fi
            case "$a" in --part | --parts) skipn=1; continue ;; esac
            refargs+=("$a")
        done
        RC=0
        "$TIMBER" "${refargs[@]}" >log/k8s-ref.out 2>log/k8s-ref.err || RC=$?
        check "kubernetes: the one-machine run ($RC): $(head -c 300 log/k8s-ref.err)" [ "$RC" -eq 0 ]
        mkdir -p ref/k8s
        [ -d "$out" ] && mv "$out" "ref/k8s/$(basename "$out")"
        [ -d "$out.dist" ] && mv "$out.dist" "$out"
        # identical compares $out (relative to $T) with ref/$out.
        identical "kubernetes: the Indexed Job's commands" "k8s/$(basename "$out")"
    else
        bad "kubernetes: the manifest: $(tail -n 3 log/k8s.err)"
    fi
else
    skip "kubernetes: python3 has no yaml module (python3-yaml) to read the manifest"
fi

# ---- slurm -----------------------------------------------------------------
# shellcheck source=slurm_lib.sh
. "$here/slurm_lib.sh"
if [ "$(id -u)" != 0 ] || ! PATH="$PATH:/usr/sbin" command -v slurmd >/dev/null 2>&1; then
    skip "slurm: needs root and Slurm (slurmctld, slurmd, slurm-client, munge)"
    finish
fi
slurm_start || { bad "the Slurm cluster did not start"; finish; }
ref out-doc --gamma 0.2 --no-cache
RC=0
bash doc-slurm.sh 3 "$B" "$I" out-doc --gamma 0.2 --no-cache >log/doc-slurm.out 2>&1 || RC=$?
check "slurm: the doc's script exit code $RC, expected 0: $(head -c 300 log/doc-slurm.out)" [ "$RC" -eq 0 ]
jobs=$(sed -n 's/^parts: job \([0-9]*\) .*finalize: job \([0-9]*\)$/\1 \2/p' log/doc-slurm.out)
if [ -z "$jobs" ]; then
    bad "slurm: the script did not print the job ids: $(cat log/doc-slurm.out)"
    finish
fi
# shellcheck disable=SC2086
slurm_wait $jobs || bad "slurm: the jobs did not finish"
# shellcheck disable=SC2086
if slurm_all_completed $jobs; then ok; else
    bad "slurm: job states $(for j in $jobs; do slurm_states "$j"; done | tr '\n' ' '): $(cat logs/*.log | grep -m3 'timber')"
fi
identical "slurm: the doc's script" out-doc
finish
