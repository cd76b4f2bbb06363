# hostile_lib.sh — what the hostile-situation tests (hostile_*.sh, issue
# #11's classes) share, on top of lib.sh (sourced, not run).
#
# Every case asserts the same four things: the exit code, the number of
# lines on stderr, that the inputs are byte-for-byte unchanged (checksums
# before and after), and that nothing is left behind (no OUT, no
# temporary anywhere under $T).
. "$(dirname "$0")/lib.sh"

HERE=$(cd "$(dirname "$0")" && pwd)

# snapshot NAME PATH...: every file under PATH (type, mode, link target,
# SHA-256 of its bytes) into $T/NAME.snap.
snap_of() {
    find "$@" -printf '%p %y %m %l\n' 2>/dev/null | LC_ALL=C sort
    find "$@" -type f -exec sha256sum {} + 2>/dev/null | LC_ALL=C sort
}
snapshot() {
    local n=$1
    shift
    snap_of "$@" >"$T/$n.snap"
    printf '%s\0' "$@" >"$T/$n.paths"
}
# unchanged NAME WHAT: the paths of snapshot NAME are as they were.
unchanged() {
    local paths=()
    mapfile -d '' -t paths <"$T/$1.paths"
    if snap_of "${paths[@]}" | cmp -s - "$T/$1.snap"; then
        ok
    else
        bad "$2: the inputs changed: $(snap_of "${paths[@]}" | diff "$T/$1.snap" - | head -5)"
    fi
}

# err_lines NAME N: run NAME wrote exactly N lines on stderr.
err_lines() {
    local n
    n=$(wc -l <"$T/$1.err")
    if [ "$n" -eq "$2" ]; then ok; else bad "$1: $n stderr lines, expected $2: $(head -c 600 "$T/$1.err")"; fi
}

# no_leftovers NAME: no temporary of timber anywhere under $T (except
# what KEEP_TEMPS lists, a grep -v pattern).
no_leftovers() {
    local left
    left=$(find "$T" \( -name '*.timber-tmp.*' -o -name '*.timber-new.*' \
        -o -name 'timber-plot*' \) 2>/dev/null | grep -v -e "${KEEP_TEMPS:-^$}")
    if [ -n "$left" ]; then bad "$1: left behind: $left"; else ok; fi
}

# refused NAME CODE LINES WHAT... -- ARGS: timber ARGS exits CODE with
# LINES stderr lines (the last naming every WHAT when CODE is not 0),
# inputs unchanged (snapshot "in"), nothing left behind.
refused() {
    local name=$1 code=$2 lines=$3
    shift 3
    local whats=()
    while [ "$1" != "--" ]; do
        whats+=("$1")
        shift
    done
    shift
    run "$name" -- "$@"
    expect_rc "$name" "$code"
    err_lines "$name" "$lines"
    if [ "${#whats[@]}" -gt 0 ]; then
        local w
        for w in "${whats[@]}"; do
            grep -qF -- "$w" "$T/$name.err" && ok ||
                bad "$name: stderr lacks '$w': $(cat "$T/$name.err")"
        done
    fi
    unchanged in "$name"
    no_leftovers "$name"
}

# A small generated pair, snapshotted as "in".
gen_pair() {
    if ! "$GEN" "$T/pair" --preset tiny --seed 11 --variants none \
        >"$T/gen.log" 2>&1; then
        echo "timber-gen failed: $(cat "$T/gen.log")"
        exit 1
    fi
    B=$T/pair/base
    I=$T/pair/instruct
}
