#!/usr/bin/env bash
# midrun.sh — a run stopped or disturbed half-way, on a pair big enough to
# take seconds (timber-gen --preset qwen3-0.6b --layers 2, ~360 MB a side):
#
#   SIGINT / SIGTERM  exit 130 / 143 with one line, no OUT, no temporary
#                     left, and the cache keeps every finished record
#                     (`timber cache verify` exits 0)
#   SIGKILL           no OUT; the killed run's temporary directory is swept
#                     by the next run, which resumes from the cache (its
#                     summary counts tensors from the cache) and writes
#                     exactly the bytes of an uninterrupted run
#   truncation        the Instruct shard is cut to half its size while the
#                     run reads it: exit 1, one line naming the shard, no
#                     OUT, no temporary, the cache valid and never fed a
#                     record computed from the vanished bytes
#   rewriting         4 KiB of the Instruct shard overwritten in place (same
#                     size): exit 1 naming it, no OUT, the cache valid
#
# Each signal is sent once the run has written its first cache record
# (and at least a second after it started), so there is work to keep.
#   usage: midrun.sh TIMBER TIMBER_GEN REFCHECK
. "$(dirname "$0")/lib.sh"

if ! "$GEN" "$T/pair" --preset qwen3-0.6b --layers 2 --seed 5 \
    >"$T/gen.log" 2>&1; then
    echo "timber-gen failed: $(cat "$T/gen.log")"
    exit 1
fi
B=$T/pair/base
I=$T/pair/instruct

# start NAME OUT CACHE [ARGS...]: timber in the background (PID in PID).
start() {
    local name=$1 out=$2 cache=$3
    shift 3
    "$TIMBER" "$B" "${I_OVERRIDE:-$I}" "$out" --cache "$cache" "$@" \
        >"$T/$name.out" 2>"$T/$name.err" </dev/null &
    PID=$!
}

# wait_first_record CACHE: until the cache holds a record (or 120 s), and
# at least a second since the start.
wait_first_record() {
    local i
    sleep 1
    for i in $(seq 1 1200); do
        if [ -f "$1" ] && [ "$(stat -c %s "$1")" -gt 32 ]; then
            return 0
        fi
        kill -0 "$PID" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

# finish_run NAME: waits for PID, exit code into RC.
finish_run() {
    RC=0
    { wait "$PID"; } 2>/dev/null || RC=$?
}

# ---- SIGINT and SIGTERM ----------------------------------------------------
for sig in INT TERM; do
    code=130
    [ $sig = TERM ] && code=143
    P=$T/sig$sig.parent
    mkdir -p "$P"
    C=$T/sig$sig.tsvd
    start "sig$sig" "$P/out" "$C"
    if ! wait_first_record "$C"; then
        finish_run "sig$sig"
        bad "sig$sig: the run ended (exit $RC) before its first cache record: $(cat "$T/sig$sig.err")"
        continue
    fi
    kill -$sig "$PID"
    finish_run "sig$sig"
    expect_rc "sig$sig" $code
    one_line "sig$sig" "interrupted by SIG$sig" "$P/out was not written" \
        "temporary files were removed"
    no_out "sig$sig" "$P/out"
    empty_dir "sig$sig: OUT's parent" "$P"
    cache_ok "sig$sig" "$C"
    n=$(cache_records "$C")
    if [ "${n:-0}" -ge 1 ]; then ok; else bad "sig$sig: the cache lost its records ($n)"; fi
done

# ---- SIGKILL, then resume --------------------------------------------------
mkdir -p "$T/ref"
run ref -- "$B" "$I" "$T/ref/out" --no-cache -q
expect_rc ref 0

P=$T/kill.parent
mkdir -p "$P"
C=$T/kill.tsvd
start kill "$P/out" "$C"
if wait_first_record "$C"; then
    killed=$PID
    kill -KILL "$PID"
    finish_run kill
    expect_rc kill 137
    no_out kill "$P/out"
    if compgen -G "$P/.out.timber-tmp.$killed.*" >/dev/null; then
        ok
    else
        bad "kill: no temporary directory .out.timber-tmp.$killed.* to sweep: $(ls -A "$P")"
    fi
    cache_ok kill "$C"
    n=$(cache_records "$C")
    run resume -- "$B" "$I" "$P/out" --cache "$C"
    expect_rc resume 0
    h=$(hits resume)
    if [ "${h:-0}" -ge 1 ] && [ "${h:-0}" = "${n:-x}" ]; then
        ok
    else
        bad "resume: ${h:-?} tensors from the cache; the killed run had written ${n:-?} records: $(cat "$T/resume.err")"
    fi
    same_tree resume "$T/ref/out" "$P/out"
    if compgen -G "$P/.out.timber-tmp.$killed.*" >/dev/null; then
        bad "resume: the killed run's temporary directory was not swept"
    else
        ok
    fi
    no_temps resume "$P"
    cache_ok resume "$C"
else
    finish_run kill
    bad "kill: the run ended (exit $RC) before its first cache record"
fi

# ---- an input shard truncated while it is read -----------------------------
mkdir -p "$T/trunc-inst"
cp "$I"/* "$T/trunc-inst/"
shard=$T/trunc-inst/model.safetensors
size=$(stat -c %s "$shard")
P=$T/trunc.parent
mkdir -p "$P"
C=$T/trunc.tsvd
I_OVERRIDE=$T/trunc-inst start trunc "$P/out" "$C"
if wait_first_record "$C"; then
    truncate -s $((size / 2)) "$shard"
    finish_run trunc
    if [ "$RC" -eq 135 ] || [ "$RC" -eq 138 ]; then
        bad "trunc: killed by SIGBUS (exit $RC): the mapped shard shrank under the run"
    else
        expect_rc trunc 1
        one_line trunc "$shard" "shrank"
    fi
    no_out trunc "$P/out"
    empty_dir "trunc: OUT's parent" "$P"
    cache_ok trunc "$C"
    # Every record the cache kept is right: a run on the intact pair
    # from that cache writes exactly the reference bytes.
    run trunc-again -- "$B" "$I" "$P/out" --cache "$C"
    expect_rc trunc-again 0
    same_tree trunc-again "$T/ref/out" "$P/out"
else
    finish_run trunc
    bad "trunc: the run ended (exit $RC) before its first cache record"
fi

# ---- an input shard rewritten in place (same size) --------------------------
# The mapping then shows a mixture of old and new bytes; the file's new
# modification time gives it away before OUT is published.
rm -rf "$T/trunc-inst"
mkdir -p "$T/rw-inst"
cp "$I"/* "$T/rw-inst/"
shard=$T/rw-inst/model.safetensors
P=$T/rw.parent
mkdir -p "$P"
C=$T/rw.tsvd
I_OVERRIDE=$T/rw-inst start rw "$P/out" "$C"
if wait_first_record "$C"; then
    # 4 KiB near the end replaced in place by other (finite) weights
    # of the same file.
    dd if="$shard" of="$shard" bs=4096 count=1 skip=1000 conv=notrunc \
        seek=$(($(stat -c %s "$shard") / 4096 - 2)) 2>/dev/null
    finish_run rw
    expect_rc rw 1
    one_line rw "$shard" "rewritten"
    no_out rw "$P/out"
    empty_dir "rw: OUT's parent" "$P"
    cache_ok rw "$C"
else
    finish_run rw
    bad "rw: the run ended (exit $RC) before its first cache record"
fi

finish
