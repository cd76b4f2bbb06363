#!/usr/bin/env bash
# scripts/bench.sh [WORKDIR] — timber's speed and memory on this machine.
#
#   1. DGEMM/SGEMM rate of this machine (OpenBLAS, every core), as the yard-
#      stick for timber's achieved rate.
#   2. A Qwen3-0.6B-shaped pair (all 28 layers, bf16, 2 x 1.2 GB): a cold
#      refine (empty SVD cache) and a re-run with another gamma from the
#      cache: wall time, peak RSS, achieved GFLOP/s of the Gram + update
#      arithmetic against the DGEMM rate.  Then the authors' script
#      (shared/reference/timber.py beside the clone) on the same pair with
#      real torch, cold and from its cache, for the speed-up.
#      Each is run BENCH_REPEAT times (default 3); the median is reported
#      with the range, because a shared machine's memory bandwidth moves
#      single runs by 10 % or more.
#   3. A Llama-3.1-8B-shaped pair with a few layers (BENCH_LLAMA_LAYERS,
#      default 2): peak RSS, which must stay under 3 GB and not grow with
#      the number of layers.
#   4. Real sizes (bench_real): a one-layer Llama-3.1-8B-shaped pair and a
#      Qwen3-30B-A3B-shaped pair (BENCH_MOE_LAYERS layers, default 1; 128
#      experts), each refined as "the layers" (--include 'layers\.', the
#      embeddings copied) and as "the embeddings" (embed_tokens and
#      lm_head alone, the layers copied), plus a run refining nothing (the
#      cost of reading and copying the pair).  Per run: wall, user, sys,
#      peak RSS, the flops of the work from the JSON report (Gram L S^2,
#      reduction 4/3 S^3, back-transform 2 S^2 p, projection 4 L S p), the
#      floor = flops / the DGEMM rate measured just before the run,
#      floor/wall;
#      and the whole model extrapolated: layers x (layer run - copy run)
#      + the embeddings run.
# Every measured run starts with its pair's inputs in the page cache
# (warm_inputs), the same state for timber and the authors' script.
# BENCH_ONLY=LIST (comma-separated: qwen06, llama-rss, llama8b, qwen30b)
# runs only those sections (the machine and DGEMM rate always).
# Figures go to stdout and to WORKDIR/bench.md; docs/performance.md records
# them by hand with the machine they came from.  Needs ~12 GB of disk
# (~30 GB with the real-size pairs).
# Nothing here is a test: no timing is asserted anywhere.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
cd "$root"

"$here/setup.sh"
bin="$root/build"

work=${1:-$(mktemp -d "${TMPDIR:-/tmp}/timber-bench.XXXXXX")}
mkdir -p "$work"
work=$(cd "$work" && pwd)
export XDG_CACHE_HOME="$work/xdg-cache" # never touch the user's cache
llama_layers=${BENCH_LLAMA_LAYERS:-2}
moe_layers=${BENCH_MOE_LAYERS:-1}
repeat=${BENCH_REPEAT:-3}
only=${BENCH_ONLY:-qwen06,llama-rss,llama8b,qwen30b}
md="$work/bench.md"
: > "$md"

# warm_inputs DIR: DIR's pair read once, so every measured run (timber's
# and the authors' script's alike) starts with its inputs in the page
# cache, as after a download.  timber-gen writes its shards with O_DIRECT
# (the writer's direct writes), so a pair it has just made is not cached,
# and whichever tool ran first would pay the disk reads for both: 7.34
# worker-seconds of "read" in a cold Qwen3-0.6B run against 2.25.
warm_inputs() {
    cat "$1"/base/*.safetensors "$1"/instruct/*.safetensors > /dev/null
}

# wanted SECTION: whether BENCH_ONLY names it
wanted() { [[ ",$only," == *",$1,"* ]]; }

log() { printf '\n== %s\n' "$*"; }

# Runs a command (its stdout discarded), prints "wall_s peak_rss_kb cpu_s
# user_s sys_s" of it (children included; cpu = user + system).
measure() {
    python3 - "$@" <<'PY'
import resource, subprocess, sys, time
t0 = time.monotonic()
rc = subprocess.call(sys.argv[1:], stdout=subprocess.DEVNULL)
wall = time.monotonic() - t0
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
if rc != 0:
    sys.exit(f"bench: command failed with exit code {rc}: {' '.join(sys.argv[1:])}")
print(f"{wall:.2f} {ru.ru_maxrss} {ru.ru_utime + ru.ru_stime:.1f} "
      f"{ru.ru_utime:.1f} {ru.ru_stime:.1f}")
PY
}

# median of the numbers on stdin, then "min-max"
median_range() {
    python3 -c '
import sys, statistics
v = [float(x) for x in sys.stdin.read().split()]
print(f"{statistics.median(v):.2f} {min(v):.2f}-{max(v):.2f}")'
}

# GFLOPs of the arithmetic timber does for a run, from its JSON report:
# Gram (m n S), tridiagonal reduction (4/3 S^3), projection (4 m n p).
work_gflop() {
    python3 - "$1" <<'PY'
import json, sys
rep = json.load(open(sys.argv[1]))
total = 0.0
for t in rep["tensors"]:
    if t["action"] != "refined":
        continue
    m, n, r, k = t["rows"], t["cols"], t["rank"], t["k"]
    p = min(k, r - k)
    total += m * n * r + 4.0 / 3.0 * r ** 3 + 4.0 * m * n * p
print(f"{total / 1e9:.1f}")
PY
}

update_gflop() {
    python3 - "$1" <<'PY'
import json, sys
rep = json.load(open(sys.argv[1]))
total = 0.0
for t in rep["tensors"]:
    if t["action"] == "refined":
        r, k = t["rank"], t["k"]
        total += 4.0 * t["rows"] * t["cols"] * min(k, r - k)
print(f"{total / 1e9:.1f}")
PY
}

# Where a run's time went, from its JSON report (docs/cli.md, "Timings"):
# the per-phase seconds of every tensor, summed (worker seconds: about
# threads x wall when every worker is busy), each with its share.
phase_breakdown() {
    python3 - "$1" <<'PY'
import json, sys
rep = json.load(open(sys.argv[1]))
phases = ["read", "gram", "reduce", "values", "vectors", "back", "project",
          "write", "cache", "wait"]
sums = dict.fromkeys(phases, 0.0)
total = 0.0
for t in rep["tensors"]:
    if "phases" not in t:
        continue
    total += t["seconds"]
    for p in phases:
        sums[p] += t["phases"][p]
share = lambda v: 100.0 * v / total if total > 0 else 0.0
print("phases (worker s, %.1f in all): " % total +
      ", ".join("%s %.2f (%.0f%%)" % (p, sums[p], share(sums[p]))
                for p in phases))
PY
}

# flops of a run's work from its JSON report, in GFLOP: "gram reduction
# backtransform projection total" (per matrix, S = rank, L = the other
# side, p = min(k, S - k); a stacked tensor counts its matrices).
real_gflop() {
    python3 - "$1" <<'PY'
import json, sys
rep = json.load(open(sys.argv[1]))
g = red = bt = pr = 0.0
for t in rep["tensors"]:
    if t["action"] != "refined":
        continue
    S, k = t["rank"], t["k"]
    L = t["rows"] * t["cols"] / S
    p = min(k, S - k)
    e = t.get("matrices", 1)
    g += e * L * S * S
    red += e * 4.0 / 3.0 * S ** 3
    bt += e * 2.0 * S * S * p
    pr += e * 4.0 * L * S * p
tot = g + red + bt + pr
print(" ".join(f"{x / 1e9:.1f}" for x in (g, red, bt, pr, tot)))
PY
}

# real_run LABEL DIR ARGS...: one cold refine of DIR's pair (--no-cache,
# one thread per core), its figures printed and appended to
# $work/real.rows as "label wall user sys rss_kb gflop dgemm".  The DGEMM
# rate is measured again just before the run: on a shared machine it
# moves from minute to minute, and the floor must be this run's.
real_run() {
    local label=$1 d=$2
    shift 2
    rm -rf "$d/out"
    local wall rss cpu user sys gram red bt proj tot floor ratio dgemm
    warm_inputs "$d"
    dgemm=$("$bin/timber-dgemm-rate" | awk '/dgemm/ {print $2}')
    read -r wall rss cpu user sys < <(measure "$bin/timber" "$d/base" \
        "$d/instruct" "$d/out" --gamma 0.2 --no-cache \
        --report "$d/$label.json" "$@")
    rm -rf "$d/out"
    read -r gram red bt proj tot < <(real_gflop "$d/$label.json")
    floor=$(python3 -c "print(f'{$tot/$dgemm:.1f}')")
    ratio=$(python3 -c "print(f'{$tot/$dgemm/$wall:.2f}')")
    echo "$label: $wall s wall, $user user, $sys sys, peak RSS" \
        "$((rss / 1024)) MB; $tot GFLOP (Gram $gram, reduction $red," \
        "back-transform $bt, projection $proj), floor $floor s at DGEMM" \
        "$dgemm, floor/wall $ratio"
    echo "  $(phase_breakdown "$d/$label.json")"
    echo "$label $wall $user $sys $rss $tot $dgemm" >> "$work/real.rows"
}

# bench_real NAME PRESET MODEL_LAYERS GEN_ARGS...: a pair of PRESET's
# shapes made by timber-gen GEN_ARGS (one or two layers), refined as its
# layers (--include 'layers\.': the embeddings copied), as the embeddings
# (embed_tokens and lm_head: the layers copied), and not at all (every
# tensor copied: what reading and writing the pair costs, which both runs
# above pay); its rows of the table, and the whole model of MODEL_LAYERS
# layers extrapolated: MODEL_LAYERS x (layers - copy) / layers + the
# embeddings run.
bench_real() {
    local name=$1 preset=$2 model_layers=$3
    shift 3
    local d="$work/$name"
    log "$name: $preset-shaped pair (timber-gen $*), bf16, $cores threads"
    if [ ! -f "$d/instruct/model.safetensors" ] &&
        [ ! -f "$d/instruct/model.safetensors.index.json" ]; then
        "$bin/timber-gen" "$d" --preset "$preset" --force "$@" >/dev/null
    fi
    local layers
    layers=$(python3 -c "import json, sys; print(json.load(open(sys.argv[1]))['num_hidden_layers'])" "$d/instruct/config.json")
    : > "$work/real.rows"
    real_run "$name-layer" "$d" --include 'layers\.'
    real_run "$name-embeddings" "$d" --include 'embed_tokens|lm_head'
    real_run "$name-copy" "$d" --include '^$'
    python3 - "$work/real.rows" "$layers" "$model_layers" "$name" \
        >> "$md" <<'PY'
import sys
rows = {}
for line in open(sys.argv[1]):
    label, wall, user, sys_s, rss, gf, dg = line.split()
    rows[label.rsplit("-", 1)[1]] = (float(wall), float(user), float(sys_s),
                                     int(rss), float(gf), float(dg))
n, L, name = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
for kind in ("layer", "embeddings", "copy"):
    w, u, s, rss, gf, dg = rows[kind]
    floor = gf / dg
    what = {"layer": f"{n} layer{'s' if n > 1 else ''}",
            "embeddings": "embeddings",
            "copy": "nothing refined (every tensor copied)"}[kind]
    print(f"| {name}: {what} | {w:.1f} s | {u:.1f} | {s:.1f} | "
          f"{rss / 1048576:.2f} GB | {gf / 1000:.2f} TFLOP | {dg:.0f} | "
          f"{floor:.1f} s | {floor / w:.2f} |")
# The whole model: the layer run less what copying costs, per layer, times
# the model's layers, plus the embeddings run; its floor at each part's
# own DGEMM rate.
lw, lu, ls, lr, lf, ld = rows["layer"]
ew, eu, es, er, ef, ed = rows["embeddings"]
whole = L * (lw - rows["copy"][0]) / n + ew
flops = L * lf / n + ef
floor = L * lf / n / ld + ef / ed
print(f"| {name}: whole model ({L} layers), extrapolated | "
      f"{whole / 60:.1f} min | | | | {flops / 1000:.1f} TFLOP | | "
      f"{floor / 60:.1f} min | {floor / whole:.2f} |")
PY
    tail -4 "$md"
}

bench_llama8b() {
    bench_real llama8b llama-3.1-8b 32 --layers 1
}

bench_qwen30b() {
    bench_real qwen30b qwen3-moe 48 --layers "$moe_layers"
}

bench_qwen06() {
    log "Qwen3-0.6B-shaped pair (28 layers, bf16)"
    q="$work/qwen3-0.6b"
    if [ ! -f "$q/instruct/model.safetensors" ]; then
        "$bin/timber-gen" "$q" --preset qwen3-0.6b --force
    fi
    : > "$work/cold.runs"
    : > "$work/cached.runs"
    for i in $(seq "$repeat"); do
        # cold: an empty cache every time; the last one's cache serves the
        # re-runs below
        rm -rf "$q/out-cold" "$q/svd.tsvd"
        warm_inputs "$q"
        measure "$bin/timber" "$q/base" "$q/instruct" "$q/out-cold" \
            --gamma 0.2 --cache "$q/svd.tsvd" --report "$q/cold.json" >> "$work/cold.runs"
        echo "cold run $i: $(tail -1 "$work/cold.runs" | awk '{print $1 " s wall, " $3 " s CPU"}')"
    done
    for i in $(seq "$repeat"); do
        rm -rf "$q/out-cached"
        warm_inputs "$q"
        measure "$bin/timber" "$q/base" "$q/instruct" "$q/out-cached" \
            --gamma 0.5 --cache "$q/svd.tsvd" --report "$q/cached.json" >> "$work/cached.runs"
        echo "cached run $i: $(tail -1 "$work/cached.runs" | awk '{print $1 " s wall, " $3 " s CPU"}')"
    done
    read -r cold_s cold_range < <(awk '{print $1}' "$work/cold.runs" | median_range)
    read -r cached_s cached_range < <(awk '{print $1}' "$work/cached.runs" | median_range)
    read -r cold_cpu _ < <(awk '{print $3}' "$work/cold.runs" | median_range)
    read -r cached_cpu _ < <(awk '{print $3}' "$work/cached.runs" | median_range)
    cold_kb=$(awk 'BEGIN {m = 0} $2 > m {m = $2} END {print m}' "$work/cold.runs")
    cached_kb=$(awk 'BEGIN {m = 0} $2 > m {m = $2} END {print m}' "$work/cached.runs")
    cold_gf=$(work_gflop "$q/cold.json")
    upd_gf=$(update_gflop "$q/cold.json")
    model_bytes=$(du -b "$q/instruct/model.safetensors" | cut -f1)
    cache_bytes=$(du -b "$q/svd.tsvd" | cut -f1)
    rate_cold=$(python3 -c "print(f'{$cold_gf/$cold_s:.1f}')")
    rate_cached=$(python3 -c "print(f'{$upd_gf/$cached_s:.1f}')")
    cache_share=$(python3 -c "print(f'{100*$cache_bytes/$model_bytes:.1f}')")
    echo "cold refine:   median ${cold_s} s (range $cold_range s over $repeat runs, $cold_cpu CPU-s), peak RSS $((cold_kb / 1024)) MB, $cold_gf GFLOP -> $rate_cold GFLOP/s (DGEMM $dgemm)"
    echo "cached re-run: median ${cached_s} s (range $cached_range s, $cached_cpu CPU-s), peak RSS $((cached_kb / 1024)) MB, $upd_gf GFLOP -> $rate_cached GFLOP/s (DGEMM $dgemm)"
    echo "cache file:    $cache_bytes bytes = ${cache_share}% of the bf16 model"
    echo "cold, last run: $(phase_breakdown "$q/cold.json")"
    echo "cached, last run: $(phase_breakdown "$q/cached.json")"

    # The authors' script on the same pair and machine, with real torch (the
    # venv of the interop tests, tests/hf/pyenv.sh): cold, then from its own
    # SVD cache with another gamma, as timber was run above.
    venv=${TIMBER_PYENV:-$root/build/pyenv}
    ref=${TIMBER_REFERENCE:-}
    for r in "$root/../shared/reference/timber.py" "$root/../../shared/reference/timber.py"; do
        [ -z "$ref" ] && [ -f "$r" ] && ref=$r
    done
    a_cold=NA a_cached=NA a_kb=0
    if [ -z "$ref" ]; then
        echo "authors' script: not found beside the clone (shared/reference/timber.py; set TIMBER_REFERENCE)"
    elif ! bash "$root/tests/hf/pyenv.sh" "$venv"; then
        echo "authors' script: torch cannot be installed here (tests/hf/pyenv.sh)"
    else
        rm -rf "$q/out-authors" "$q/authors-svd.pt"
        warm_inputs "$q"
        read -r a_cold a_kb _ < <(measure "$venv/bin/python" "$ref" "$q/base" "$q/instruct" \
            "$q/out-authors" 0.2 --svd_cache_path "$q/authors-svd.pt")
        rm -rf "$q/out-authors"
        warm_inputs "$q"
        read -r a_cached _ _ < <(measure "$venv/bin/python" "$ref" "$q/base" "$q/instruct" \
            "$q/out-authors" 0.5 --svd_cache_path "$q/authors-svd.pt")
        rm -rf "$q/out-authors"
        echo "authors' script: ${a_cold} s cold (peak RSS $((a_kb / 1024)) MB), ${a_cached} s from its cache (gamma 0.5), same pair and machine"
        echo "speed-up:      $(python3 -c "print(f'{$a_cold/$cold_s:.1f}')")x cold, $(python3 -c "print(f'{$a_cached/$cached_s:.1f}')")x cached"
    fi

cat >> "$md" <<EOF
| Qwen3-0.6B cold refine (median of $repeat) | ${cold_s} s (range $cold_range), $cold_cpu CPU-s, peak RSS $((cold_kb / 1024)) MB, $rate_cold GFLOP/s |
| Qwen3-0.6B re-run from cache, other gamma (median of $repeat) | ${cached_s} s (range $cached_range), $cached_cpu CPU-s, peak RSS $((cached_kb / 1024)) MB |
| the authors' script, same pair (real torch) | ${a_cold} s cold, peak RSS $((a_kb / 1024)) MB; ${a_cached} s from its cache |
| cache size | $cache_bytes B = ${cache_share} % of the bf16 model |
EOF
}

bench_llama_rss() {
    log "Llama-3.1-8B-shaped pair ($llama_layers layers, bf16)"
    l="$work/llama-3.1-8b-$llama_layers"
    if [ ! -f "$l/instruct/model.safetensors" ] && [ ! -f "$l/instruct/model.safetensors.index.json" ]; then
        "$bin/timber-gen" "$l" --preset llama-3.1-8b --layers "$llama_layers" --force
    fi
    rm -rf "$l/out" "$l/svd.tsvd"
    read -r llama_s llama_kb _ < <(measure "$bin/timber" "$l/base" "$l/instruct" "$l/out" \
        --gamma 0.2 --cache "$l/svd.tsvd" --report "$l/cold.json")
    llama_gb=$(python3 -c "print(f'{$llama_kb/1048576:.2f}')")
    echo "cold refine: ${llama_s} s, peak RSS $llama_gb GB (limit 3 GB)"
    echo "$(phase_breakdown "$l/cold.json")"

cat >> "$md" <<EOF
| Llama-3.1-8B ($llama_layers layers) cold refine | ${llama_s} s, peak RSS $llama_gb GB |
EOF
}

log "machine"
cpu=$(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')
cores=$(nproc)
mem=$(free -g | awk '/Mem:/ {print $2 " GB"}')
echo "$cpu, $cores cores, $mem"
read -r dgemm sgemm < <("$bin/timber-dgemm-rate" | awk '/dgemm/ {d=$2} /sgemm/ {s=$2} END {print d, s}')
echo "DGEMM $dgemm GFLOP/s, SGEMM $sgemm GFLOP/s (2048^3, OpenBLAS, $cores threads)"

cat >> "$md" <<EOF
| measurement | value |
|---|---|
| machine | $cpu, $cores cores, $mem |
| DGEMM / SGEMM (2048³, OpenBLAS) | $dgemm / $sgemm GFLOP/s |
EOF

wanted qwen06 && bench_qwen06
wanted llama-rss && bench_llama_rss
if wanted llama8b || wanted qwen30b; then
    cat >> "$md" <<EOF

| real-size run | wall | user | sys | peak RSS | work | DGEMM GFLOP/s | floor | floor/wall |
|---|---|---|---|---|---|---|---|---|
EOF
fi
wanted llama8b && bench_llama8b
wanted qwen30b && bench_qwen30b
log "summary (also in $md)"
cat "$md"
