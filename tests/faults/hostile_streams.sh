#!/usr/bin/env bash
# hostile_streams.sh — class 2: standard streams.
#   - fd 0, 1 or 2 closed at start: no file timber opens becomes fd 0-2
#     (they are reopened on /dev/null): with stderr closed and warnings
#     to print, the cache and OUT are exactly what a normal run writes
#   - stdout or stderr a broken pipe (`| head`): refine completes
#     everything it was asked for (OUT and its reports, exit 0); inspect,
#     erank and cache info exit 141 (128 + SIGPIPE), erank then publishes
#     none of its --json/--csv files
#   usage: hostile_streams.sh TIMBER TIMBER_GEN REFCHECK
. "$(dirname "$0")/hostile_lib.sh"

# A pair with warnings (shape mismatches: the tiny preset's grown vocab).
if ! "$GEN" "$T/pair" --preset tiny --seed 12 >"$T/gen.log" 2>&1; then
    echo "timber-gen failed: $(cat "$T/gen.log")"
    exit 1
fi
B=$T/pair/base
I=$T/pair/instruct
snapshot in "$B" "$I"
run ref -- "$B" "$I" "$T/ref" --cache "$T/ref.tsvd" -q
expect_rc ref 0
grep -q "warning" "$T/ref.err" && ok || bad "ref: the pair gives no warning to test with"

# closed NAME REDIRS: refine with fds closed as REDIRS says.
closed() {
    local name=$1 redir=$2
    RC=0
    eval '"$TIMBER" "$B" "$I" "$T/$name.out" --cache "$T/$name.tsvd" \
        --report "$T/$name.json" 2>"$T/$name.err" '"$redir" || RC=$?
    expect_rc "$name" 0
    same_tree "$name" "$T/ref" "$T/$name.out"
    cache_ok "$name" "$T/$name.tsvd"
    check "$name: the cache holds other records than a normal run's" \
        test "$(cache_records "$T/$name.tsvd")" = "$(cache_records "$T/ref.tsvd")"
    check "$name: no report" test -s "$T/$name.json"
    unchanged in "$name"
    no_leftovers "$name"
}
closed stderr-closed '2>&-'
closed stdout-closed '>&-'
closed stdin-closed '<&-'
closed all-closed '<&- >&- 2>&-'
# erank with stderr closed writes its table and files as usual.
RC=0
"$TIMBER" erank "$B" "$I" --cache "$T/ref.tsvd" --json "$T/e-closed.json" \
    >"$T/e-closed.txt" 2>&- || RC=$?
expect_rc erank-stderr-closed 0
check "erank, stderr closed: no JSON" test -s "$T/e-closed.json"

# A reader that is gone before timber writes: `exec 0<&-` closes the
# pipe's only read end at once; PIPESTATUS[0] is timber's exit code.
gone() { exec 0<&-; sleep 0.2; }

# refine, stderr a broken pipe: everything is done, exit 0.
"$TIMBER" "$B" "$I" "$T/pipe-out" --cache "$T/pipe.tsvd" \
    --report "$T/pipe.json" --report "$T/pipe.csv" 2>&1 >/dev/null | gone
RC=${PIPESTATUS[0]}
expect_rc refine-stderr-pipe 0
same_tree refine-stderr-pipe "$T/ref" "$T/pipe-out"
check "refine-stderr-pipe: reports missing" test -s "$T/pipe.json" -a -s "$T/pipe.csv"
cache_ok refine-stderr-pipe "$T/pipe.tsvd"
unchanged in refine-stderr-pipe
no_leftovers refine-stderr-pipe

# inspect / erank / cache info, stdout a broken pipe: 141, no message.
"$TIMBER" inspect "$I" 2>"$T/insp.err" | gone
RC=${PIPESTATUS[0]}
expect_rc inspect-pipe 141
err_lines insp 0
"$TIMBER" erank "$B" "$I" --cache "$T/ref.tsvd" --json "$T/ep.json" \
    --csv "$T/ep.csv" 2>"$T/ep.err" | gone
RC=${PIPESTATUS[0]}
expect_rc erank-pipe 141
err_lines ep 0
check "erank-pipe: published a file with its table unread" \
    test ! -e "$T/ep.json" -a ! -e "$T/ep.csv"
"$TIMBER" cache info "$T/ref.tsvd" 2>"$T/ci.err" | gone
RC=${PIPESTATUS[0]}
expect_rc cache-info-pipe 141
err_lines ci 0
# stdout a full device is still an ordinary write error: exit 1, a line.
if [ -w /dev/full ]; then
    RC=0
    "$TIMBER" inspect "$I" >/dev/full 2>"$T/full.err" || RC=$?
    expect_rc full 1
    one_line full "standard output"
fi
unchanged in pipes
no_leftovers pipes
finish
