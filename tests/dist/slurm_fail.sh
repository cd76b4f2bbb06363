#!/usr/bin/env bash
# slurm_fail.sh — a part lost under Slurm, named by finalize, recovered by
# running it again.  Two ways to lose one of 3 parts:
#
#   killed     task 1 SIGKILLs itself half-way through writing its tensors
#              into the shared shards (the failwrite shim, FAILWRITE_KILL)
#   cancelled  task 2 is scancel'ed while it runs
#
# Each time: the task ends FAILED / CANCELLED, the others COMPLETED; the
# dependent finalize job is cancelled by Slurm and never runs
# (--kill-on-invalid-dep=yes); `timber finalize OUT` then exits 1 with
# one line naming the part ("1/3") and nothing is published.  The part is
# run again two ways: a job of its own with `--part 1/3`, and `scontrol
# requeue` of the cancelled task (its `--part auto` then still means
# 2/3); then a second finalize job completes, and OUT is byte-identical
# to a one-machine run.
#
#   finalkill  all parts complete, the finalize job SIGKILLs itself
#              half-way through writing OUT's files: nothing published,
#              the staging kept; a second finalize job publishes the
#              one-machine bytes
#
#   usage: slurm_fail.sh TIMBER TIMBER_GEN REFCHECK FAILWRITE_SO
# Exit 77 (skipped, with the reason) when not root or Slurm is missing.
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"
# shellcheck source=slurm_lib.sh
. "$here/slurm_lib.sh"
[ -n "$SHIM" ] && [ -f "$SHIM" ] || skip_all "no failwrite shim given"
slurm_require
dist_pair
slurm_start || { bad "the Slurm cluster did not start"; finish; }

ref out-killed --gamma 0.3 --threads 1 --no-cache
ref out-cancelled --no-cache
# Task 1 of "killed": the shim kills it after 90 KB of its ~130 KB of
# shard writes (one thread, so that some tensors are surely finished).
PART_PREFIX='if [ "$SLURM_ARRAY_TASK_ID" = 1 ]; then export LD_PRELOAD='"$(printf %q "$SHIM")"' FAILWRITE_MATCH=/'"$(staging out-killed)"'/out/ FAILWRITE_AFTER=90000 FAILWRITE_KILL=1; fi; ' \
    submit_parts killed 0-2 out-killed --gamma 0.3 --threads 1 --no-cache
# "finalkill": all parts complete, the finalize job SIGKILLs itself
# half-way through writing the output's files.
ref out-finalkill --gamma 0.6 --no-cache
FIN_PREFIX='export LD_PRELOAD='"$(printf %q "$SHIM")"' FAILWRITE_MATCH=/'"$(staging out-finalkill)"'/ FAILWRITE_AFTER=3000 FAILWRITE_KILL=1; ' \
    submit_parts finalkill 0-1 out-finalkill --gamma 0.6 --no-cache
# Task 2 of "cancelled" waits before it starts timber, long enough to be
# cancelled while it runs.
PART_PREFIX='if [ "$SLURM_ARRAY_TASK_ID" = 2 ] && [ ! -e '"$T"'/log/cancelled-2.started ]; then touch '"$T"'/log/cancelled-2.started; sleep 120; fi; ' \
    submit_parts cancelled 0-2 out-cancelled --no-cache
for i in $(seq 1 300); do
    [ -e log/cancelled-2.started ] && break
    sleep 0.1
done
check "task 2 of 'cancelled' started" [ -e log/cancelled-2.started ]
scancel "${A_cancelled}_2"
# shellcheck disable=SC2046
slurm_wait $(jobs_of killed cancelled finalkill) || bad "the jobs did not finish"

# expect_states NAME TASK STATE: task TASK ended STATE, the others
# COMPLETED, and the finalize job was cancelled without running.
expect_states() {
    local name=$1 task=$2 state=$3 a="A_$1" f="F_$1" s i
    for i in 0 1 2; do
        s=$(slurm_states "${!a}_$i")
        if [ "$i" = "$task" ]; then
            check "$name: task $i ended $state (not '$s')" [ "$s" = "$state" ]
        else
            check "$name: task $i ended COMPLETED (not '$s')" [ "$s" = COMPLETED ]
        fi
    done
    s=$(slurm_states "${!f}")
    check "$name: the finalize job was cancelled (not '$s')" [ "$s" = CANCELLED ]
    check "$name: the finalize job never ran" [ ! -e "log/$name-parts" ]
    check "$name: nothing published" [ ! -e "out-$name" ]
}
expect_states killed 1 FAILED
code=$(scontrol -o show job "${A_killed}_1" | sed -n 's/.* ExitCode=\([0-9:]*\).*/\1/p')
check "killed: task 1 died of SIGKILL (ExitCode $code)" [ "$code" = 0:9 ]
# Half-way: its journal lists some tensors, and it has no completion record.
entries=$(grep -c '^t ' "$(staging out-killed)/parts/1-of-3.log" 2>/dev/null)
check "killed: task 1 died half-way (journal entries: ${entries:-none})" [ "${entries:-0}" -ge 1 ]
check "killed: task 1 left no completion record" [ ! -e "$(staging out-killed)/parts/1-of-3.done" ]
expect_states cancelled 2 CANCELLED

# recover NAME I HOW OUT ARGS...: finalize refuses and names part I/3;
# the part is run again (HOW = sbatch: as a job of its own with
# `--part I/3`; requeue: `scontrol requeue` of the array's task I, which
# keeps its Slurm variables, so `--part auto` still means I/3), then a
# finalize job after it; OUT as one machine's.
recover() {
    local name=$1 i=$2 how=$3 out=$4 r f a="A_$1"
    shift 4
    finalize "$name-refused" "$out"
    expect_rc "$name-refused" 1
    one_line "$name-refused" "$i/3"
    no_out "$name-refused" "$out"
    check "$name: the staging directory is kept" [ -d "$(staging "$out")" ]
    if [ "$how" = requeue ]; then
        r="${!a}_$i"
        scontrol requeue "$r" || bad "$name: scontrol requeue $r failed"
        # Slurm holds a requeued job back for ~2 minutes (BeginTime).
        scontrol update JobId="$r" StartTime=now || bad "$name: StartTime=now for $r failed"
    else
        r=$(slurm_submit --chdir="$T" -J "$name-rerun" -o "$T/log/$name-rerun.out" \
            -e "$T/log/$name-rerun.err" --wrap "exec $(part_cmd "$out" "$@" --part "$i/3")")
    fi
    f=$(slurm_submit --chdir="$T" -J "$name-fin2" --dependency=afterok:"$r" \
        --kill-on-invalid-dep=yes -o "$T/log/$name-fin2.out" -e "$T/log/$name-fin2.err" \
        --wrap "exec $(printf '%q ' "$TIMBER" finalize "$out")")
    slurm_wait "$r" "$f" || bad "$name: the rerun did not finish"
    if slurm_all_completed "$r" "$f"; then ok; else
        bad "$name: rerun $(slurm_states "$r"), finalize $(slurm_states "$f"): $(cat "log/$name-rerun.err" "log/$name-fin2.err" | head -c 600)"
    fi
    identical "$name: after the rerun" "$out"
}
# The finalize job killed half-way: nothing published, the staging kept;
# a second finalize job publishes the one-machine bytes.
check "finalkill: both parts COMPLETED" slurm_all_completed "$A_finalkill"
s=$(slurm_states "$F_finalkill")
code=$(scontrol -o show job "$F_finalkill" | sed -n 's/.* ExitCode=\([0-9:]*\).*/\1/p')
check "finalkill: the finalize job died of SIGKILL ($s, ExitCode $code)" [ "$s" = FAILED -a "$code" = 0:9 ]
no_out finalkill out-finalkill
check "finalkill: the staging directory is kept" [ -d "$(staging out-finalkill)" ]
f=$(slurm_submit --chdir="$T" -J finalkill-fin2 -o "$T/log/finalkill-fin2.out" \
    -e "$T/log/finalkill-fin2.err" --wrap "exec $(printf '%q ' "$TIMBER" finalize out-finalkill)")
slurm_wait "$f" || bad "finalkill: the second finalize did not finish"
check "finalkill: the second finalize COMPLETED ($(slurm_states "$f"): $(grep -v warning log/finalkill-fin2.err | head -c 300))" \
    slurm_all_completed "$f"
identical "finalkill: after a second finalize" out-finalkill

recover killed 1 sbatch out-killed --gamma 0.3 --threads 1 --no-cache
recover cancelled 2 requeue out-cancelled --no-cache
finish
