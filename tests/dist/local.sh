#!/usr/bin/env bash
# local.sh — a refinement split into parts without a scheduler, on one
# machine, byte-identical to a one-machine run:
#
#   background  N = 5 parts started at once as plain background processes
#               (more parts than shards' worth of work: several write the
#               same shard files at the same time), then `timber finalize`
#   parallel    GNU parallel -j2 over `--part {}/N` (skipped when GNU
#               parallel is not installed), a gamma sweep
#   in order    the parts one after another in reverse order, N larger
#               than the number of tensors; a part run a second time once
#               complete changes nothing
#   refused     finalize before any part ran, and with one part missing:
#               exit 1, one line naming the missing parts, nothing
#               published; then the missing part alone, and finalize
#               publishes
#   cache file  one --cache FILE for 4 parts at once: one uses it, the
#               others warn "cache in use" and go on; the same bytes
#   disagree    a part with another gamma, or another N, than the
#               manifest's: exit 1, one line, the staging untouched
#   cache       a run with --cache DIR, then another gamma with another N
#               on the same directory: every tensor from the cache
#
#   usage: local.sh TIMBER TIMBER_GEN REFCHECK
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"
dist_pair

# background: all parts at once, several of them into one shard file.
"$TIMBER" plan "$B" "$I" --parts 5 --json >log/plan-5.json 2>&1
"$TIMBER" inspect "$I" --json >log/inspect.json 2>&1
if msg=$(python3 "$here/plan_check.py" shared log/plan-5.json log/inspect.json 2>&1); then ok; else
    bad "background: $msg"
fi
ref out-bg --no-cache
if run_bg 5 out-bg --no-cache; then ok; else
    bad "background: a part failed: $(cat log/out-bg-*.err | grep 'timber: ' | head -c 600)"
fi
finalize fin-bg out-bg
expect_rc fin-bg 0
identical "background, N=5" out-bg

# GNU parallel, two at a time, a sweep.
if command -v parallel >/dev/null 2>&1 && parallel --version 2>/dev/null | grep -q 'GNU parallel'; then
    ref out-par --gamma 0,0.2,0.5 --no-cache
    n=4
    RC=0
    # shellcheck disable=SC2046
    parallel --will-cite -j2 "$TIMBER" "$B" "$I" out-par --gamma 0,0.2,0.5 --no-cache \
        --part '{}/'$n ::: $(seq 0 $((n - 1))) >log/par.out 2>log/par.err </dev/null || RC=$?
    expect_rc par 0
    finalize fin-par out-par
    expect_rc fin-par 0
    identical "GNU parallel, N=$n, gamma sweep" out-par
else
    skip "GNU parallel is not installed (apt-get install parallel; scripts/test.sh does as root)"
fi

# One after another, last part first, more parts than tensors; a
# completed part run again.
n=$((NTENSORS + 2))
ref out-seq --gamma 0.7 --no-cache
all=0
for i in $(seq $((n - 1)) -1 0); do
    run "seq-$i" -- "$B" "$I" out-seq --gamma 0.7 --no-cache --part "$i/$n"
    [ "$RC" -eq 0 ] || { all=1; bad "part $i/$n failed ($RC): $(head -c 400 "$T/seq-$i.err")"; }
done
[ "$all" -eq 0 ] && ok
before=$(cd "$(staging out-seq)" && find . -type f -exec cksum {} + | LC_ALL=C sort)
run seq-again -- "$B" "$I" out-seq --gamma 0.7 --no-cache --part "3/$n"
expect_rc seq-again 0
after=$(cd "$(staging out-seq)" && find . -type f -exec cksum {} + | LC_ALL=C sort)
check "a completed part run again rewrites nothing" [ "$before" = "$after" ]
finalize fin-seq out-seq
expect_rc fin-seq 0
identical "in reverse order, N=$n" out-seq

# Refused: nothing run yet, then one part missing.
finalize fin-none out-none
expect_rc fin-none 1
no_out fin-none out-none
if [ "$(grep -c '^timber: ' "$T/fin-none.err")" -eq 1 ]; then ok; else
    bad "finalize of a run never started: $(cat "$T/fin-none.err")"
fi
ref out-miss --no-cache
for i in 0 2 3; do
    run "miss-$i" -- "$B" "$I" out-miss --no-cache --part "$i/4"
    expect_rc "miss-$i" 0
done
finalize fin-miss out-miss
expect_rc fin-miss 1
one_line fin-miss "1/4"
no_out fin-miss out-miss
if grep -qE '(^|[^0-9])(0|2|3)/4' "$T/fin-miss.err"; then
    bad "fin-miss names complete parts too: $(cat "$T/fin-miss.err")"
else ok; fi
run miss-1 -- "$B" "$I" out-miss --no-cache --part 1/4
expect_rc miss-1 0
finalize fin-miss2 out-miss
expect_rc fin-miss2 0
identical "one part run late" out-miss

# One --cache FILE for parts at once: one part at a time uses it, the
# others say so and go on without it; the output is the same.
ref out-cf --cache cache.tsvd
rm -f cache.tsvd
if run_bg 4 out-cf --cache cache.tsvd; then ok; else
    bad "cache file: a part failed: $(cat log/out-cf-*.err | grep 'timber: ' | grep -v warning | head -c 400)"
fi
check "cache file: a part said the cache was in use" grep -q 'cache in use by another timber run' log/out-cf-*.err
finalize fin-cf out-cf
expect_rc fin-cf 0
identical "cache file shared by parts at once" out-cf

# A part that disagrees with the manifest (another gamma, another N)
# refuses to start, names what differs, and changes nothing.
run dis-0 -- "$B" "$I" out-dis --gamma 0.2 --no-cache --part 0/3
expect_rc dis-0 0
before=$(cd "$(staging out-dis)" && find . -type f -exec cksum {} + | LC_ALL=C sort)
run dis-gamma -- "$B" "$I" out-dis --gamma 0.4 --no-cache --part 1/3
expect_rc dis-gamma 1
one_line dis-gamma gamma
run dis-n -- "$B" "$I" out-dis --gamma 0.2 --no-cache --part 1/4
expect_rc dis-n 1
one_line dis-n 4
after=$(cd "$(staging out-dis)" && find . -type f -exec cksum {} + | LC_ALL=C sort)
check "a disagreeing part changed nothing in the staging directory" [ "$before" = "$after" ]

# The shared cache directory: gamma 0.2 in 3 parts, then 0.5 in 5.
mkdir cachedir
run_bg 3 out-c1 --gamma 0.2 --cache cachedir || bad "cache: a part of the first run failed: $(cat log/out-c1-*.err | head -c 400)"
finalize fin-c1 out-c1
expect_rc fin-c1 0
run_bg 5 out-c2 --gamma 0.5 --cache cachedir || bad "cache: a part of the second run failed: $(cat log/out-c2-*.err | head -c 400)"
computed=$(computed_sum "log/out-c2-*.err")
cached=$(cached_sum "log/out-c2-*.err")
check "cache: the second run computed nothing (computed: ${computed:-no summary}, from the cache: ${cached:-?})" \
    [ "${computed:-x}" = 0 ]
finalize fin-c2 out-c2
expect_rc fin-c2 0
mv out-c2 dist-c2
ref out-c2 --gamma 0.5 --cache cachedir
mv dist-c2 out-c2
identical "cache: gamma 0.5 from the cache" out-c2
refined=$(sed -n 's/.*refined \([0-9]*\) tensors.*/\1/p' ref-out-c2.err)
check "cache: every refined tensor (${refined:-?}) came from the cache (${cached:-?})" \
    [ "${cached:-x}" = "${refined:-y}" ]
finish
