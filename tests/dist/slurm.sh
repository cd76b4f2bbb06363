#!/usr/bin/env bash
# slurm.sh — a refinement split across a real (one-node) Slurm cluster:
# an array of `timber ... --part auto` plus a finalize job that depends on
# it (afterok, --kill-on-invalid-dep=yes) publishes exactly the bytes of a
# one-machine run, for N = 1, 3, more parts than shards, more parts than
# tensors, a gamma sweep, an array whose ids start at 1, one with a step
# (--array=0-6:2), one throttled to 2 tasks at a time (0-4%2), and
# another pair (f16 over f32, stacked experts) swept over two gammas.  Every job
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
other 6 0-5 @other --gamma 0.1,0.9 --no-cache
cache1 3 0-2 --gamma 0.2 --cache cachedir"
mkdir cachedir
# "@other": another pair, f16 over an f32 Base, stacked experts, 3 layers.
if ! "$GEN" other --dtype f16 --base-dtype f32 --layers 3 --max-shard-size 96K \
    --variants 3d,experts3d,low-rank,instruct-only >log/gen-other.log 2>&1; then
    bad "timber-gen (other) failed: $(cat log/gen-other.log)"
    finish
fi
# pair_of OPTS: sets B and I for the case's pair, and OPTS without it.
pair_of() {
    B=pair/base I=pair/instruct OPTS=$1
    case "$1" in @other*) B=other/base I=other/instruct OPTS=${1#@other} ;; esac
}

# The one-machine references first (the cache one after the distributed
# run, so that it cannot have filled the cache), then every array at once.
while read -r name n arr opts; do
    pair_of "$opts"
    # shellcheck disable=SC2086
    [ "$name" = cache1 ] || ref "out-$name" $OPTS
done <<<"$cases"
ids=""
while read -r name n arr opts; do
    pair_of "$opts"
    # shellcheck disable=SC2086
    submit_parts "$name" "$arr" "out-$name" $OPTS && ids="$ids $(jobs_of "$name")"
done <<<"$cases"
pair_of ""
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
