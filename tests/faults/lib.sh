# lib.sh — helpers shared by the fault-injection tests (sourced, not run).
#
# Every script is called by ctest as
#     bash SCRIPT.sh TIMBER TIMBER_GEN REFCHECK [FAILWRITE_SO]
# and prints one line per check that fails, then "N passed, M failed";
# it exits 0 when all passed, 77 when the whole script had to be skipped
# (the reason is printed), 1 otherwise.  TIMBER_TEST_KEEP=1 keeps $T.
#
# After sourcing: $TIMBER $GEN $REFCHECK $SHIM, a private temporary
# directory $T, and XDG_CACHE_HOME inside it (no run can touch the real
# cache).  Runs use --cache FILE in $T, or --no-cache.

set -u

if [ $# -lt 3 ]; then
    echo "usage: $0 TIMBER TIMBER_GEN REFCHECK [FAILWRITE_SO]" >&2
    exit 2
fi
TIMBER=$1
GEN=$2
REFCHECK=$3
SHIM=${4:-}

T=$(mktemp -d "${TMPDIR:-/tmp}/timber-faults-XXXXXX") || exit 1
export XDG_CACHE_HOME="$T/xdg"
export HOME="$T/home"
mkdir -p "$XDG_CACHE_HOME" "$HOME"
chmod 755 "$T"

# Cleanup actions run at exit, last registered first.
CLEANUPS=()
at_exit() { CLEANUPS=("$*" "${CLEANUPS[@]}"); }
run_cleanups() {
    local c
    for c in "${CLEANUPS[@]}"; do eval "$c" || true; done
    if [ "${TIMBER_TEST_KEEP:-0}" = 1 ]; then
        echo "kept $T"
    else
        rm -rf "$T"
    fi
}
trap run_cleanups EXIT

pass=0
fail=0
skips=0
ok() { pass=$((pass + 1)); }
bad() {
    fail=$((fail + 1))
    echo "FAIL: $*"
}
skip() {
    skips=$((skips + 1))
    echo "SKIP: $*"
}
# check "what" COMMAND...: passes when the command succeeds.
check() {
    local what=$1
    shift
    if "$@"; then ok; else bad "$what"; fi
}
finish() {
    local extra=""
    [ "$skips" -gt 0 ] && extra=", $skips skipped"
    echo "$pass passed, $fail failed$extra"
    [ "$fail" -eq 0 ]
    exit $?
}
# skip_all "reason": nothing could be tested here.
skip_all() {
    echo "skipped: $*"
    exit 77
}

# run NAME [ENV=V...] -- ARGS...: runs timber with ARGS, stdout and
# stderr into $T/NAME.out and $T/NAME.err, exit code into RC.
run() {
    local name=$1
    shift
    local envs=()
    while [ $# -gt 0 ] && [ "$1" != "--" ]; do
        envs+=("$1")
        shift
    done
    [ $# -gt 0 ] && shift
    RC=0
    env ${envs[@]+"${envs[@]}"} "$TIMBER" "$@" \
        >"$T/$name.out" 2>"$T/$name.err" </dev/null || RC=$?
}

# expect_rc NAME CODE: the last run exited with CODE.
expect_rc() {
    if [ "$RC" -eq "$2" ]; then
        ok
    else
        bad "$1: exit code $RC, expected $2; stderr: $(head -c 600 "$T/$1.err")"
    fi
}

# one_line NAME SUBSTRING...: run NAME's error is exactly one line,
# "timber: ...", containing every SUBSTRING.  Warnings ("timber: warning:
# ...", one line each) may precede it; nothing else may be on stderr.
one_line() {
    local name=$1 f="$T/$1.err" s
    shift
    local errors others
    errors=$(grep -v '^timber: warning: ' "$f" | grep -c '^timber: ')
    others=$(grep -vc '^timber: ' "$f")
    if [ "$errors" -ne 1 ] || [ "$others" -ne 0 ]; then
        bad "$name: stderr is not one 'timber: ' error line: $(head -c 800 "$f")"
        return
    fi
    for s in "$@"; do
        if ! grep -v '^timber: warning: ' "$f" | grep -qF -- "$s"; then
            bad "$name: message does not contain '$s': $(cat "$f")"
            return
        fi
    done
    ok
}

# no_out NAME OUT: OUT does not exist.
no_out() {
    if [ -e "$2" ]; then bad "$1: $2 exists"; else ok; fi
}

# no_temps NAME DIR: DIR holds no temporary of timber (".*timber-tmp*",
# ".*.tmp.*").
no_temps() {
    local left
    left=$(find "$2" -maxdepth 1 \( -name '.*timber-tmp*' -o -name '.*.tmp.*' \) 2>/dev/null)
    if [ -n "$left" ]; then bad "$1: temporaries left in $2: $left"; else ok; fi
}

# empty_dir NAME DIR: DIR exists and is empty.
empty_dir() {
    local n
    n=$(find "$2" -mindepth 1 -maxdepth 1 | wc -l)
    if [ -d "$2" ] && [ "$n" -eq 0 ]; then
        ok
    else
        bad "$1: $2 should be empty: $(ls -A "$2" 2>&1 | tr '\n' ' ')"
    fi
}

# cache_ok NAME FILE: `timber cache verify FILE` exits 0.
cache_ok() {
    local out
    if out=$("$TIMBER" cache verify "$2" 2>&1); then
        ok
    else
        bad "$1: cache verify $2: $out"
    fi
}

# cache_records FILE: the number of valid records (timber cache info).
cache_records() {
    "$TIMBER" cache info "$1" 2>/dev/null | sed -n 's/^total: \([0-9]*\) record.*/\1/p'
}

# hits NAME: tensors taken from the cache, from run NAME's summary.
hits() {
    sed -n 's/.*: \([0-9]*\) tensors\{0,1\} from the cache.*/\1/p' "$T/$1.err"
}

# same_tree NAME A B: two checkpoint directories hold the same files with
# the same bytes (the model cards but for the command they quote).
same_tree() {
    local d
    if d=$(diff -r "$2" "$3" 2>&1) || d=$(same_but_command "$2" "$3"); then
        ok
    else
        bad "$1: $2 and $3 differ: $d"
    fi
}

# same_but_command A B: A and B differ at most in their cards' command
# blocks (README.md, the ```sh fence), in any gamma-* directory too.
same_but_command() {
    diff -r -x README.md "$1" "$2" || return 1
    local a
    for a in $(cd "$1" && find . -name README.md); do
        diff <(sed '/^```sh$/,/^```$/d' "$1/$a") \
            <(sed '/^```sh$/,/^```$/d' "$2/$a") || return 1
    done
    [ "$(cd "$1" && find . -name README.md | sort)" = \
        "$(cd "$2" && find . -name README.md | sort)" ]
}

# refcheck NAME BASE INSTRUCT OUT GAMMA: the independent reference agrees.
refcheck() {
    local out
    if out=$("$REFCHECK" "$2" "$3" "$4" "$5" 2>&1); then
        ok
    else
        bad "$1: refcheck: $out"
    fi
}

# The address sanitizer runtime must come first in the preload list unless
# told otherwise; the disk-full shim is preloaded on top of it.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"
