#!/usr/bin/env bash
# hostile_special.sh — class 7: special files and text.
#   - a cache, report, erank file or model path that is a FIFO or a device:
#     refused at once (each run under `timeout`: a wait would be a hang),
#     erank and cache info included; exit 1, one line
#   - tensor names and paths with control characters (newline, ESC, tab):
#     escaped (\xNN) in every human-readable line, so one name is one line:
#     the warning, the erank table, cache info, inspect, error messages
#   - the gnuplot script: model paths with quotes, newlines and gnuplot
#     commands in them, and a TMPDIR with quotes, inject nothing
#   usage: hostile_special.sh TIMBER TIMBER_GEN REFCHECK
. "$(dirname "$0")/hostile_lib.sh"

gen_pair
C=$T/c.tsvd
run warm -- "$B" "$I" "$T/warm" --cache "$C" -q
expect_rc warm 0
mkfifo "$T/fifo" "$T/fifo.json" "$T/fifo.tsvd"
mkdir -p "$T/w"
snapshot in "$B" "$I" "$C"

# quick NAME WHAT -- ARGS: refused within 60 s (never blocking).
quick() {
    local name=$1 what=$2
    shift 3
    refused "$name" 1 1 "$what" -- "$@"
    [ "$RC" -eq 124 ] && bad "$name: blocked"
}
T60=(timeout 60)
quick cache-fifo "$T/fifo.tsvd" -- "$B" "$I" "$T/w/o1" --cache "$T/fifo.tsvd"
quick cache-dev /dev/null -- "$B" "$I" "$T/w/o2" --cache /dev/null
quick report-fifo "$T/fifo.json" -- "$B" "$I" "$T/w/o3" --cache "$C" --report "$T/fifo.json"
ln -s /dev/null "$T/dev.json"
quick report-dev "$T/dev.json" -- "$B" "$I" "$T/w/o4" --cache "$C" --report "$T/dev.json"
quick erank-cache-fifo "$T/fifo.tsvd" -- erank "$B" "$I" -q --cache "$T/fifo.tsvd"
quick erank-json-fifo "$T/fifo.json" -- erank "$B" "$I" -q --cache "$C" --json "$T/fifo.json"
quick cache-info-fifo "$T/fifo.tsvd" -- cache info "$T/fifo.tsvd"
quick cache-verify-dev /dev/null -- cache verify /dev/null
quick inspect-fifo "$T/fifo" -- inspect "$T/fifo"
quick model-fifo "$T/fifo" -- "$T/fifo" "$I" "$T/w/o5" --no-cache
quick erank-model-fifo "$T/fifo" -- erank "$T/fifo" -q
quick inspect-dev /dev/zero -- inspect /dev/zero
for o in o1 o2 o3 o4 o5; do no_out "$o" "$T/w/$o"; done

# ---- control characters in names ------------------------------------------
python3 "$HERE/stpair.py" ctrl-names "$T/ctl" || exit 1
CB=$T/ctl/base
CI=$T/ctl/instruct
snapshot in "$CB" "$CI"
run ctl -- "$CB" "$CI" "$T/ctl-out" --cache "$T/ctl.tsvd"
expect_rc ctl 0
# one warning + the three summary lines, and no raw control byte
err_lines ctl 4
check "ctl: a raw control character on stderr" \
    test "$(tr -d '\n' <"$T/ctl.err" | LC_ALL=C grep -c '[[:cntrl:]]')" = 0
grep -qF 'grown\x0avocab' "$T/ctl.err" && ok || bad "ctl: warning does not show \\x0a: $(cat "$T/ctl.err")"
run ctl-erank -- erank "$CB" "$CI" --cache "$T/ctl.tsvd" -q
expect_rc ctl-erank 0
# header, 2 layer lines, 3 rows, blank, 2 headings, 1 module, total
check "ctl-erank: $(wc -l <"$T/ctl-erank.out") table lines, expected 11" \
    test "$(wc -l <"$T/ctl-erank.out")" = 11
check "ctl-erank: a raw control character in the table" \
    test "$(tr -d '\n' <"$T/ctl-erank.out" | LC_ALL=C grep -c '[[:cntrl:]]')" = 0
grep -qF 'evil\x0aname' "$T/ctl-erank.out" && grep -qF '\x1b[31mred' "$T/ctl-erank.out" &&
    grep -qF 'tab\x09here\x41' "$T/ctl-erank.out" && ok ||
    bad "ctl-erank: names not escaped: $(cat "$T/ctl-erank.out")"
run ctl-info -- cache info "$T/ctl.tsvd"
expect_rc ctl-info 0
check "ctl-info: $(wc -l <"$T/ctl-info.out") lines for 3 records" \
    test "$(wc -l <"$T/ctl-info.out")" = 4
check "ctl-info: a raw control character" \
    test "$(tr -d '\n' <"$T/ctl-info.out" | LC_ALL=C grep -c '[[:cntrl:]]')" = 0
run ctl-inspect -- inspect "$CI"
expect_rc ctl-inspect 0
check "ctl-inspect: $(wc -l <"$T/ctl-inspect.out") lines for 4 tensors" \
    test "$(wc -l <"$T/ctl-inspect.out")" = 5
# A path with a newline and ESC in an error message: one line.
bad_dir=$T/$'new\nline\e[2J'
mkdir -p "$bad_dir"
refused ctl-path 1 1 'new\x0aline\x1b[2J' -- inspect "$bad_dir"
unchanged in ctl

# ---- gnuplot ------------------------------------------------------------
if command -v gnuplot >/dev/null; then
    evil=$T/$'a\'b"c\nsystem("touch '"$T"'/pwned")\n`touch '"$T"'/pwned2`@x'
    mkdir -p "$evil"
    cp -a "$CI" "$evil/instruct"
    tmpd=$T/$'tmp\'dir'
    mkdir -p "$tmpd"
    snapshot in "$CB" "$evil"
    run plot TMPDIR="$tmpd" -- erank "$CB" "$evil/instruct" --cache "$T/ctl.tsvd" -q \
        --plot "$T/w/p'x.png"
    expect_rc plot 0
    check "plot: no picture" test -s "$T/w/p'x.png"
    check "plot: injected a command" test ! -e "$T/pwned" -a ! -e "$T/pwned2"
    check "plot: left its work directory" test -z "$(ls -A "$tmpd")"
    unchanged in plot
    no_leftovers plot
else
    skip "gnuplot not installed: the plot's quoting is not tested"
fi
finish
