# lib.sh — helpers shared by the distributed-run tests (sourced, not run).
#
# Every script is called by ctest as
#     bash SCRIPT.sh TIMBER TIMBER_GEN REFCHECK [FAILWRITE_SO]
# and reports like the fault tests (tests/faults/lib.sh, sourced here: $T,
# run, check, ok/bad, finish, skip_all, one_line): "N passed, M failed",
# exit 0, 1, or 77 when skipped (the reason is printed).
#
# Everything happens in $T, the current directory, with relative paths:
# the pair is pair/base and pair/instruct, a distributed run's OUT is a
# name like out-n3, and its one-machine reference is the same command
# (less --part) run to the same name and then moved to ref/out-n3, so
# that even the model card, which quotes the command, must come out
# byte-identical.

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../faults/lib.sh
. "$here/../faults/lib.sh"
abs() { case "$1" in /*) printf '%s' "$1" ;; *) printf '%s/%s' "$PWD" "$1" ;; esac; }
TIMBER=$(abs "$TIMBER")
GEN=$(abs "$GEN")
[ -n "$SHIM" ] && SHIM=$(abs "$SHIM")
cd "$T" || exit 1
mkdir -p ref log
B=pair/base
I=pair/instruct

# dist_pair [GEN OPTIONS...]: the tiny pair (every variant) cut into shards
# of at most 64 KiB, so that several parts write into one shard; sets
# NSHARDS (Instruct's shard files) and NTENSORS (Instruct's tensors).
dist_pair() {
    if ! "$GEN" pair --max-shard-size 64K "$@" >log/gen.log 2>&1; then
        echo "timber-gen failed: $(cat log/gen.log)"
        exit 1
    fi
    NSHARDS=$(find "$I" -name '*.safetensors' | wc -l)
    NTENSORS=$("$TIMBER" inspect "$I" | sed -n 's/^total: \([0-9]*\) tensors.*/\1/p')
    if [ "${NSHARDS:-0}" -lt 2 ] || [ -z "$NTENSORS" ]; then
        echo "the generated pair has $NSHARDS shards, ${NTENSORS:-?} tensors"
        exit 1
    fi
}

# ref OUT ARGS...: the one-machine run of the pair into OUT, kept as
# ref/OUT; a failure is counted and ends the script (nothing to compare).
ref() {
    local out=$1
    shift
    run "ref-$out" -- "$B" "$I" "$out" "$@"
    if [ "$RC" -ne 0 ] || [ ! -d "$out" ]; then
        bad "one-machine run into $out failed ($RC): $(head -c 600 "$T/ref-$out.err")"
        finish
    fi
    rm -rf "ref/$out"
    mv "$out" "ref/$out"
}

# part_cmd OUT ARGS...: the quoted command line of a part (ARGS end with
# its --part), for --wrap, parallel and sh -c.
part_cmd() {
    local out=$1
    shift
    printf '%q ' "$TIMBER" "$B" "$I" "$out" "$@"
}

# staging OUT: OUT's staging directory.
staging() {
    case "$1" in
    */*) printf '%s/.%s.timber-parts' "$(dirname "$1")" "$(basename "$1")" ;;
    *) printf '.%s.timber-parts' "$1" ;;
    esac
}

# identical NAME OUT: OUT was published and holds exactly the files of
# ref/OUT (hidden ones too), each byte-identical (diff -r, then cmp of
# every file), and the staging directory is gone.
identical() {
    local name=$1 out=$2 d f
    if [ ! -d "$out" ]; then
        bad "$name: $out was not published"
        return
    fi
    if ! d=$(diff -r "ref/$out" "$out" 2>&1); then
        bad "$name: $out differs from the one-machine run: $(printf '%s' "$d" | head -c 600)"
        return
    fi
    local fa fb
    fa=$(cd "ref/$out" && find . | LC_ALL=C sort)
    fb=$(cd "$out" && find . | LC_ALL=C sort)
    if [ "$fa" != "$fb" ]; then
        bad "$name: $out holds other files than the one-machine run: $(diff <(echo "$fa") <(echo "$fb") | head -c 400)"
        return
    fi
    for f in $(cd "$out" && find . -type f); do
        if ! cmp -s "ref/$out/$f" "$out/$f"; then
            bad "$name: $out/$f differs from the one-machine run's"
            return
        fi
    done
    if [ -e "$(staging "$out")" ]; then
        bad "$name: the staging directory $(staging "$out") is still there"
        return
    fi
    ok
}

# run_bg N OUT ARGS...: the N parts as plain background processes, all at
# once; each part's exit code into log/OUT-I.rc.  Returns 0 when all
# exited 0.
run_bg() {
    local n=$1 out=$2 i pids=() all=0 rc
    shift 2
    for i in $(seq 0 $((n - 1))); do
        "$TIMBER" "$B" "$I" "$out" "$@" --part "$i/$n" \
            >"log/$out-$i.out" 2>"log/$out-$i.err" </dev/null &
        pids+=($!)
    done
    for i in $(seq 0 $((n - 1))); do
        rc=0
        wait "${pids[$i]}" || rc=$?
        echo "$rc" >"log/$out-$i.rc"
        [ "$rc" -eq 0 ] || all=1
    done
    return $all
}

# finalize NAME OUT [ARGS...]: `timber finalize OUT ARGS...` (exit code in
# RC, stderr in $T/NAME.err).
finalize() {
    local name=$1 out=$2
    shift 2
    run "$name" -- finalize "$out" "$@"
}

# computed_sum GLOB: tensors the runs whose stderr files match GLOB say
# they computed (not found in the cache), summed; "" if none said.
computed_sum() {
    cat $1 2>/dev/null | sed -n 's/.* \([0-9]*\) computed.*/\1/p' |
        awk '{ s += $1; n++ } END { if (n) print s }'
}
# cached_sum GLOB: the same for tensors taken from the cache.
cached_sum() {
    cat $1 2>/dev/null | sed -n 's/.* \([0-9]*\) tensors\{0,1\} from the cache.*/\1/p' |
        awk '{ s += $1; n++ } END { if (n) print s }'
}

# ---- under Slurm (tests/dist/slurm_lib.sh started) ---------------------
# submit_parts NAME ARRAY OUT ARGS...: submits the array (--array=ARRAY)
# of `timber PAIR OUT ARGS... --part auto`, then a finalize job that
# waits for it (--dependency=afterok, --kill-on-invalid-dep=yes).  The
# finalize job first lists the staging directory's parts/ into
# log/NAME-parts (what the parts left, before finalize removes it).  Job
# ids into A_NAME and F_NAME; each task's stderr in log/NAME-TASK.err.
# PART_PREFIX and FIN_PREFIX, when set, are shell code run in each task,
# and in the finalize job, before timber.
submit_parts() {
    local name=$1 arr=$2 out=$3 a f cmd fin
    shift 3
    cmd=$(part_cmd "$out" "$@" --part auto)
    a=$(slurm_submit --chdir="$T" --array="$arr" -J "$name" \
        -o "$T/log/$name-%a.out" -e "$T/log/$name-%a.err" \
        --wrap "${PART_PREFIX:-}exec $cmd") || {
        bad "$name: sbatch of the array failed"
        return 1
    }
    fin="ls $(staging "$out")/parts >$T/log/$name-parts 2>&1; ${FIN_PREFIX:-}exec $(printf '%q ' "$TIMBER" finalize "$out")"
    f=$(slurm_submit --chdir="$T" -J "$name-fin" \
        --dependency=afterok:"$a" --kill-on-invalid-dep=yes \
        -o "$T/log/$name-fin.out" -e "$T/log/$name-fin.err" --wrap "$fin") || {
        bad "$name: sbatch of the finalize job failed"
        return 1
    }
    printf -v "A_$name" '%s' "$a"
    printf -v "F_$name" '%s' "$f"
}

# jobs_of NAME...: the job ids submit_parts gave them.
jobs_of() {
    local n v
    for n in "$@"; do
        v="A_$n"; printf '%s ' "${!v}"
        v="F_$n"; printf '%s ' "${!v}"
    done
}

# parts_left NAME N: the finalize job of NAME found exactly the N
# completion records 0-of-N.done ... (N-1)-of-N.done (so every task took
# its own I and the right N from Slurm's variables).
parts_left() {
    local name=$1 n=$2 want got
    want=$(for i in $(seq 0 $((n - 1))); do echo "$i-of-$n.done"; done | LC_ALL=C sort)
    got=$(grep '\.done$' "log/$name-parts" 2>/dev/null | LC_ALL=C sort)
    if [ "$got" = "$want" ]; then ok; else
        bad "$name: the parts left $(tr "\n" " " 2>/dev/null <"log/$name-parts" | head -c 300), expected 0-of-$n.done .. $((n - 1))-of-$n.done"
    fi
}

# slurm_done NAME: the array and the finalize job of NAME COMPLETED.
slurm_done() {
    local a="A_$1" f="F_$1"
    if slurm_all_completed "${!a}" "${!f}"; then ok; else
        bad "$1: job states: array $(slurm_states "${!a}" | uniq -c | tr -s ' \n' ' '), finalize $(slurm_states "${!f}"); $(cat "log/$1-fin.err" 2>/dev/null | head -c 400) $(cat "log/$1"-[0-9]*.err 2>/dev/null | grep -m3 'timber: ' )"
    fi
}
