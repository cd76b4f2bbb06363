#!/usr/bin/env bash
# slurm.sh — a refinement split across a real (one-node) Slurm cluster:
# an array of `timber ... --part auto` plus a finalize job that depends on
# it (afterok, --kill-on-invalid-dep=yes) publishes exactly the bytes of a
# one-machine run, for N = 1, 3, more parts than shards, more parts than
# tensors, a gamma sweep, an array whose ids start at 1, one with a step
# (--array=0-6:2) and one throttled to 2 tasks at a time (0-4%2).  Every job
# must end COMPLETED, and the finalize job must find the N completion
# records 0-of-N ... (N-1)-of-N (each task took its own part).  Then a
# second run with another gamma and another N, sharing a cache directory
# with the first, is served entirely from it (0 tensors computed).
#
#   usage: slurm.sh TIMBER TIMBER_GEN REFCHECK
# Exit 77 (skipped, with the reason) when not root or Slurm is missing.
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"
# shellcheck source=slurm_lib.sh
. "$here/slurm_lib.sh"
slurm_require
dist_pair
slurm_start || { bad "the Slurm cluster did not start"; finish; }

n_shards=$((NSHARDS + 2))
n_tensors=$((NTENSORS + 3))
# name  N  array  options
cases="n1 1 0-0 --no-cache
n3 3 0-2 --no-cache
nshards $n_shards 0-$((n_shards - 1)) --no-cache
ntensors $n_tensors 0-$((n_tensors - 1)) --gamma 0.5 --no-cache
sweep 4 0-3 --gamma 0,0.2,0.5 --no-cache
from1 3 1-3 --gamma 0 --no-cache
step 4 0-6:2 --gamma 0.4 --no-cache
throttled 5 0-4%2 --no-cache
cache1 3 0-2 --gamma 0.2 --cache cachedir"
mkdir cachedir

# The one-machine references first (the cache one after the distributed
# run, so that it cannot have filled the cache), then every array at once.
while read -r name n arr opts; do
    # shellcheck disable=SC2086
    [ "$name" = cache1 ] || ref "out-$name" $opts
done <<<"$cases"
ids=""
while read -r name n arr opts; do
    # shellcheck disable=SC2086
    submit_parts "$name" "$arr" "out-$name" $opts && ids="$ids $(jobs_of "$name")"
done <<<"$cases"
# shellcheck disable=SC2086
slurm_wait $ids || bad "the jobs did not finish"
while read -r name n arr opts; do
    slurm_done "$name"
    parts_left "$name" "$n"
    [ "$name" = cache1 ] || identical "$name (N=$n${opts:+, $opts})" "out-$name"
done <<<"$cases"
# ref_after OUT ARGS...: the one-machine run into OUT's name while the
# distributed OUT waits aside.
ref_after() {
    local out=$1
    [ -d "$out" ] && mv "$out" "aside-$out"
    ref "$@"
    [ -d "aside-$out" ] && mv "aside-$out" "$out"
}
ref_after out-cache1 --gamma 0.2 --cache cachedir
identical "cache1" out-cache1
files=$(find cachedir -type f | wc -l)
check "the shared cache directory holds a file per writer ($files)" [ "$files" -ge 2 ]

# Another gamma, another N, the same cache directory: nothing computed.
submit_parts cache2 0-4 out-cache2 --gamma 0.5 --cache cachedir
# shellcheck disable=SC2046
slurm_wait $(jobs_of cache2) || bad "cache2: the jobs did not finish"
slurm_done cache2
parts_left cache2 5
computed=$(computed_sum "log/cache2-[0-9]*.err")
cached=$(cached_sum "log/cache2-[0-9]*.err")
check "cache2: the parts computed nothing (computed: ${computed:-no summary}, from the cache: ${cached:-?})" \
    [ "${computed:-x}" = 0 ]
ref_after out-cache2 --gamma 0.5 --cache cachedir
identical "cache2" out-cache2
refined=$(sed -n 's/.*refined \([0-9]*\) tensors.*/\1/p' ref-out-cache2.err)
check "cache2: every refined tensor (${refined:-?}) came from the cache (${cached:-?})" \
    [ "${cached:-x}" = "${refined:-y}" ]
finish
