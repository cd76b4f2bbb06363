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
# Figures go to stdout and to WORKDIR/bench.md; docs/performance.md records
# them by hand with the machine they came from.  Needs ~12 GB of disk.
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
repeat=${BENCH_REPEAT:-3}
md="$work/bench.md"

log() { printf '\n== %s\n' "$*"; }

# Runs a command (its stdout discarded), prints "wall_s peak_rss_kb cpu_s"
# of it (children included; cpu = user + system).
measure() {
    python3 - "$@" <<'PY'
import resource, subprocess, sys, time
t0 = time.monotonic()
rc = subprocess.call(sys.argv[1:], stdout=subprocess.DEVNULL)
wall = time.monotonic() - t0
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
if rc != 0:
    sys.exit(f"bench: command failed with exit code {rc}: {' '.join(sys.argv[1:])}")
print(f"{wall:.2f} {ru.ru_maxrss} {ru.ru_utime + ru.ru_stime:.1f}")
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

log "machine"
cpu=$(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')
cores=$(nproc)
mem=$(free -g | awk '/Mem:/ {print $2 " GB"}')
echo "$cpu, $cores cores, $mem"
read -r dgemm sgemm < <("$bin/timber-dgemm-rate" | awk '/dgemm/ {d=$2} /sgemm/ {s=$2} END {print d, s}')
echo "DGEMM $dgemm GFLOP/s, SGEMM $sgemm GFLOP/s (2048^3, OpenBLAS, $cores threads)"

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
    measure "$bin/timber" "$q/base" "$q/instruct" "$q/out-cold" \
        --gamma 0.2 --cache "$q/svd.tsvd" --report "$q/cold.json" >> "$work/cold.runs"
    echo "cold run $i: $(tail -1 "$work/cold.runs" | awk '{print $1 " s wall, " $3 " s CPU"}')"
done
for i in $(seq "$repeat"); do
    rm -rf "$q/out-cached"
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
    read -r a_cold a_kb _ < <(measure "$venv/bin/python" "$ref" "$q/base" "$q/instruct" \
        "$q/out-authors" 0.2 --svd_cache_path "$q/authors-svd.pt")
    rm -rf "$q/out-authors"
    read -r a_cached _ _ < <(measure "$venv/bin/python" "$ref" "$q/base" "$q/instruct" \
        "$q/out-authors" 0.5 --svd_cache_path "$q/authors-svd.pt")
    rm -rf "$q/out-authors"
    echo "authors' script: ${a_cold} s cold (peak RSS $((a_kb / 1024)) MB), ${a_cached} s from its cache (gamma 0.5), same pair and machine"
    echo "speed-up:      $(python3 -c "print(f'{$a_cold/$cold_s:.1f}')")x cold, $(python3 -c "print(f'{$a_cached/$cached_s:.1f}')")x cached"
fi

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

cat > "$md" <<EOF
| measurement | value |
|---|---|
| machine | $cpu, $cores cores, $mem |
| DGEMM / SGEMM (2048³, OpenBLAS) | $dgemm / $sgemm GFLOP/s |
| Qwen3-0.6B cold refine (median of $repeat) | ${cold_s} s (range $cold_range), $cold_cpu CPU-s, peak RSS $((cold_kb / 1024)) MB, $rate_cold GFLOP/s |
| Qwen3-0.6B re-run from cache, other gamma (median of $repeat) | ${cached_s} s (range $cached_range), $cached_cpu CPU-s, peak RSS $((cached_kb / 1024)) MB |
| the authors' script, same pair (real torch) | ${a_cold} s cold, peak RSS $((a_kb / 1024)) MB; ${a_cached} s from its cache |
| cache size | $cache_bytes B = ${cache_share} % of the bf16 model |
| Llama-3.1-8B ($llama_layers layers) cold refine | ${llama_s} s, peak RSS $llama_gb GB |
EOF
log "summary (also in $md)"
cat "$md"
