#!/usr/bin/env bash
# slurm_harness.sh — the test cluster itself (tests/dist/slurm_lib.sh),
# with stand-in jobs and no timber: it starts; an array sees
# SLURM_ARRAY_TASK_ID and SLURM_ARRAY_TASK_COUNT (ids from 0 and from 1);
# a dependent job runs after the array completes; a task that fails makes
# its afterok dependant be cancelled, not pend forever
# (kill_invalid_depend); several tasks run at once on this 2-core
# machine (8 CPUs declared); and slurm_stop leaves no daemon behind.
#
#   usage: slurm_harness.sh TIMBER TIMBER_GEN REFCHECK
# Exit 77 (skipped, with the reason) when not root or Slurm is missing.
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../faults/lib.sh
. "$here/../faults/lib.sh"
# shellcheck source=slurm_lib.sh
. "$here/slurm_lib.sh"
slurm_require
slurm_start || { bad "the cluster did not start"; finish; }
ok

# An array from 0 and one from 1, each task writing what it was told.
a=$(slurm_submit --array=0-3 -o "$T/a-%a.out" \
    --wrap 'echo "$SLURM_ARRAY_TASK_ID $SLURM_ARRAY_TASK_MIN $SLURM_ARRAY_TASK_COUNT" >"'"$T"'/a.$SLURM_ARRAY_TASK_ID"; sleep 3')
b=$(slurm_submit --array=1-3 -o "$T/b-%a.out" \
    --wrap 'echo "$SLURM_ARRAY_TASK_ID $SLURM_ARRAY_TASK_MIN $SLURM_ARRAY_TASK_COUNT" >"'"$T"'/b.$SLURM_ARRAY_TASK_ID"')
# The finishing job: after the array, sees every task's file.
m=$(slurm_submit --dependency=afterok:"$a" --kill-on-invalid-dep=yes -o "$T/m.out" \
    --wrap 'cat "'"$T"'"/a.[0-3] >"'"$T"'/merged"')
# Several tasks of the array at once: a task sees the others running.
check "submitted (ids: $a $b $m)" [ -n "$a" -a -n "$b" -a -n "$m" ]
slurm_wait "$a" "$b" "$m" || bad "jobs did not finish"
check "array from 0 completed" slurm_all_completed "$a"
check "array from 1 completed" slurm_all_completed "$b"
check "dependent job completed" slurm_all_completed "$m"
check "4 tasks in the array" [ "$(slurm_states "$a" | wc -l)" -eq 4 ]
want=$(printf '0 0 4\n1 0 4\n2 0 4\n3 0 4')
if [ "$(cat "$T/merged" 2>/dev/null)" = "$want" ]; then ok; else
    bad "merged: $(cat "$T/merged" 2>&1), expected $want"; fi
want=$(printf '1 1 3\n2 1 3\n3 1 3')
if [ "$(cat "$T"/b.[1-3] 2>/dev/null)" = "$want" ]; then ok; else
    bad "array from 1: $(cat "$T"/b.[1-3] 2>&1), expected $want"; fi

# The 4 tasks of the first array (3 s each) ran at once: the last one
# started before the first one ended (scontrol's times, to the second).
last_start=0
first_end=
while read -r st en; do
    st=$(date -d "$st" +%s) en=$(date -d "$en" +%s)
    [ "$st" -gt "$last_start" ] && last_start=$st
    if [ -z "$first_end" ] || [ "$en" -lt "$first_end" ]; then first_end=$en; fi
done < <(scontrol -o show job "$a" | sed -n 's/.* StartTime=\([^ ]*\) EndTime=\([^ ]*\).*/\1 \2/p')
check "the 4 tasks ran at once (last start $last_start, first end ${first_end:-?})" \
    [ "$last_start" -lt "${first_end:-0}" ]

# A failing task: the dependant is cancelled (not left pending).
f=$(slurm_submit --array=0-2 -o /dev/null \
    --wrap '[ "$SLURM_ARRAY_TASK_ID" != 1 ]')
g=$(slurm_submit --dependency=afterok:"$f" --kill-on-invalid-dep=yes -o /dev/null \
    --wrap "touch '$T/never'")
slurm_wait "$f" "$g" || bad "failing array: jobs did not finish"
check "one task FAILED" [ "$(slurm_states "$f" | grep -c FAILED)" -eq 1 ]
check "the dependant was cancelled" [ "$(slurm_states "$g")" = CANCELLED ]
check "the dependant never ran" [ ! -e "$T/never" ]
if slurm_all_completed "$f"; then bad "a failed array counted as completed"; else ok; fi

# scancel of one task of a running array.
c=$(slurm_submit --array=0-2 -o /dev/null --wrap 'sleep 30')
for i in $(seq 1 50); do
    [ "$(squeue -h -t R -j "$c" | wc -l)" -ge 3 ] && break
    sleep 0.2
done
scancel "${c}_1"
SLURM_WAIT_S=10 slurm_wait "${c}_1" || bad "scancel of ${c}_1 did not end it"
check "cancelled task CANCELLED" [ "$(slurm_states "${c}_1")" = CANCELLED ]
scancel "$c"

# Stopping: no daemon of this cluster is left.
pids=$(cat $SLURM_PIDFILES 2>/dev/null)
slurm_stop
sleep 0.5
left=""
for p in $pids; do kill -0 "$p" 2>/dev/null && left="$left $p"; done
check "no daemon left after slurm_stop (left:$left)" [ -z "$left" ]
finish
