# lib.sh — sourced by the functional test scripts in tests/func/.
#
# Gives each script a private temporary directory $TMP (removed at exit
# unless TIMBER_TEST_KEEP=1), points XDG_CACHE_HOME into it so no run can
# touch ~/.cache, counts checks, and prints "N passed, M failed" at the end.
#
# The caller sets TIMBER and GEN (and whatever else it uses) before
# sourcing.  Helpers:
#   ok / bad MSG          count a pass / a failure (MSG goes to stderr)
#   check MSG CMD...      runs CMD; a failure if it exits non-zero
#   tb NAME ARGS...       runs timber ARGS with stdin from /dev/null:
#                         stdout in $TMP/NAME.out, stderr in $TMP/NAME.err,
#                         the exit code in $RC
#   expect_rc NAME WANT   checks $RC (after tb NAME ...) and shows the
#                         stderr on a mismatch
#   gen DIR ARGS...       timber-gen $TMP/DIR ARGS (stops the script if it
#                         fails)
#   same_tree A B         A and B hold the same files, byte for byte (their
#                         model cards but for the command they quote)
#   finish                prints the summary; exit code 0 iff no failure
set -u

TMP=$(mktemp -d "${TMPDIR:-/tmp}/timber-func-XXXXXX") || exit 1
cleanup() {
    if [ "${TIMBER_TEST_KEEP:-0}" = 1 ]; then
        echo "kept $TMP" >&2
    else
        rm -rf "$TMP"
    fi
}
trap cleanup EXIT
export XDG_CACHE_HOME=$TMP/xdg-cache

pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() {
    fail=$((fail + 1))
    echo "FAIL: $*" >&2
}
check() {
    local what=$1
    shift
    if "$@"; then ok; else bad "$what"; fi
}

RC=0
tb() {
    local name=$1
    shift
    "$TIMBER" "$@" >"$TMP/$name.out" 2>"$TMP/$name.err" </dev/null
    RC=$?
}
expect_rc() {
    local name=$1 want=$2
    if [ "$RC" -eq "$want" ]; then
        ok
    else
        bad "$name: exit $RC, expected $want; stderr:"
        sed 's/^/    /' "$TMP/$name.err" >&2
    fi
}

gen() {
    local dir=$1
    shift
    if ! "$GEN" "$TMP/$dir" "$@" >"$TMP/gen.out" 2>"$TMP/gen.err"; then
        bad "timber-gen $dir $*: $(cat "$TMP/gen.err")"
        finish
        exit 1
    fi
}

# (the model cards may differ in the command they quote, nothing else)
same_tree() {
    diff -r "$1" "$2" >/dev/null 2>&1 && return 0
    diff -r -x README.md "$1" "$2" >/dev/null 2>&1 || return 1
    local a
    for a in $(cd "$1" && find . -name README.md); do
        diff <(sed '/^```sh$/,/^```$/d' "$1/$a") \
            <(sed '/^```sh$/,/^```$/d' "$2/$a") >/dev/null 2>&1 || return 1
    done
    [ "$(cd "$1" && find . -name README.md | sort)" = \
        "$(cd "$2" && find . -name README.md | sort)" ]
}

finish() {
    echo "$pass passed, $fail failed"
    [ "$fail" -eq 0 ]
}
