# lib.sh — checks shared by the installation tests (install_tree.sh,
# package.sh), sourced by them: counting, and the checks of an installed
# timber (run it on a generated pair, read its man page).
#
# The caller sets TMP (a scratch directory it removes), GEN (timber-gen)
# and BUILT (build/timber, the reference).

pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() {
    fail=$((fail + 1))
    echo "FAIL: $*" >&2
}
finish() {
    echo "$pass passed, $fail failed"
    [ "$fail" -eq 0 ]
}

# check_runs LABEL TIMBER: TIMBER --version matches build/timber's, and
# TIMBER refines a generated pair into exactly the bytes build/timber
# writes (the installed binary is the one that was built, only stripped).
check_runs() {
    local label=$1 timber=$2
    local want got
    want=$("$BUILT" --version)
    got=$("$timber" --version 2>&1) && [ "$got" = "$want" ] && ok ||
        bad "$label: timber --version says '$got', build/timber '$want'"
    "$timber" --version --verbose >"$TMP/verbose" 2>&1 &&
        grep -q '^BLAS library: /' "$TMP/verbose" && ok ||
        bad "$label: timber --version --verbose: $(cat "$TMP/verbose")"
    if [ ! -d "$TMP/pair" ]; then
        "$GEN" "$TMP/pair" --preset tiny --seed 16 >/dev/null 2>"$TMP/gen.err" ||
            bad "timber-gen: $(cat "$TMP/gen.err")"
        # The same OUT path for both runs: the model card records the
        # command line.
        "$BUILT" "$TMP/pair/base" "$TMP/pair/instruct" "$TMP/out" \
            --gamma 0.2 --no-cache -q 2>"$TMP/want.err" ||
            bad "build/timber refine: $(cat "$TMP/want.err")"
        mv "$TMP/out" "$TMP/want"
    fi
    rm -rf "$TMP/got" "$TMP/out"
    if "$timber" "$TMP/pair/base" "$TMP/pair/instruct" "$TMP/out" \
        --gamma 0.2 --no-cache -q 2>"$TMP/got.err" && mv "$TMP/out" "$TMP/got"; then
        if diff -r "$TMP/want" "$TMP/got" >/dev/null &&
            [ -n "$(ls "$TMP/got"/*.safetensors 2>/dev/null)" ]; then
            ok
        else
            bad "$label: its output differs from build/timber's"
        fi
    else
        bad "$label: refine failed: $(cat "$TMP/got.err")"
    fi
    "$timber" inspect "$TMP/got" >/dev/null 2>"$TMP/inspect.err" && ok ||
        bad "$label: timber inspect: $(cat "$TMP/inspect.err")"
}

# check_man LABEL MANPATH WANT_FILE: `man timber` with MANPATH (man's own
# search path when empty) finds WANT_FILE and shows this version's page.
check_man() {
    local label=$1 manpath=$2 want=$3
    with_manpath() {
        if [ -n "$manpath" ]; then MANPATH=$manpath "$@"; else env -u MANPATH "$@"; fi
    }
    if ! command -v man >/dev/null 2>&1; then
        echo "man is not installed (apt-get install man-db): $label's man page not shown"
        return 0
    fi
    local found
    found=$(with_manpath man -w timber 2>&1)
    [ "$found" = "$want" ] && ok ||
        bad "$label: man -w timber: '$found', want '$want'"
    with_manpath env MANWIDTH=80 MANPAGER=cat PAGER=cat man timber \
        >"$TMP/man.txt" 2>"$TMP/man.err"
    if grep -q "^TIMBER(1)" "$TMP/man.txt" &&
        grep -q "timber $("$BUILT" --version | cut -d' ' -f2)" "$TMP/man.txt" &&
        grep -q -- "--gamma G\[,G...\]" "$TMP/man.txt"; then ok; else
        bad "$label: man timber: $(head -c 300 "$TMP/man.txt") $(cat "$TMP/man.err")"
    fi
    with_manpath man -l "$want" >/dev/null 2>"$TMP/man.err" &&
        [ ! -s "$TMP/man.err" ] && ok ||
        bad "$label: man -l $want: $(cat "$TMP/man.err")"
}
