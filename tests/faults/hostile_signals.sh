#!/usr/bin/env bash
# hostile_signals.sh — class 4: the signals that stop a run.  SIGHUP (the
# terminal closed), SIGQUIT, SIGUSR1, SIGUSR2, SIGALRM and SIGXFSZ, sent
# mid-run (after the first cache record), and SIGINT / SIGTERM as before:
# exit 128 + the signal's number (SIGXFSZ: 1), one line naming it, no
# OUT, no temporary, the cache valid with the finished records, the
# inputs unchanged; then a run with the same cache resumes and writes the
# undisturbed output.  And SIGPIPE never stops a run (class 2).
#   usage: hostile_signals.sh TIMBER TIMBER_GEN REFCHECK
. "$(dirname "$0")/hostile_lib.sh"

if ! "$GEN" "$T/pair" --preset qwen3-0.6b --layers 2 --vocab 4096 --seed 7 \
    >"$T/gen.log" 2>&1; then
    echo "timber-gen failed: $(cat "$T/gen.log")"
    exit 1
fi
B=$T/pair/base
I=$T/pair/instruct
snapshot in "$B" "$I"
run ref -- "$B" "$I" "$T/ref" --no-cache -q --threads 1
expect_rc ref 0

for sig in HUP QUIT USR1 USR2 ALRM XFSZ INT TERM; do
    num=$(kill -l $sig)
    code=$((128 + num))
    [ $sig = XFSZ ] && code=1
    P=$T/p$sig
    C=$T/$sig.tsvd
    mkdir -p "$P"
    "$TIMBER" "$B" "$I" "$P/out" --cache "$C" --threads 1 \
        >"$T/$sig.out" 2>"$T/$sig.err" </dev/null &
    pid=$!
    started=0
    sleep 0.5
    for i in $(seq 1 1200); do
        if [ -f "$C" ] && [ "$(stat -c %s "$C")" -gt 32 ]; then started=1; break; fi
        kill -0 $pid 2>/dev/null || break
        sleep 0.05
    done
    if [ $started = 0 ]; then
        wait $pid
        bad "$sig: the run ended before its first cache record: $(cat "$T/$sig.err")"
        continue
    fi
    kill -$sig $pid
    RC=0
    wait $pid || RC=$?
    expect_rc "$sig" "$code"
    one_line "$sig" "SIG$sig" "temporary files were removed"
    err_lines "$sig" 1
    no_out "$sig" "$P/out"
    empty_dir "$sig: OUT's parent" "$P"
    cache_ok "$sig" "$C"
    unchanged in "$sig"
    no_leftovers "$sig"
    # resumable: the finished records are used, the output is the same
    run "$sig-resume" -- "$B" "$I" "$P/out" --cache "$C" --threads 1
    expect_rc "$sig-resume" 0
    h=$(hits "$sig-resume")
    check "$sig-resume: nothing from the cache" test "${h:-0}" -ge 1
    same_tree "$sig-resume" "$T/ref" "$P/out"
done
finish
