#!/usr/bin/env bash
# `timber --version [--verbose]`: the version is the project's (CMake's),
# and the verbose facts are those of this build and this process: the BLAS
# and LAPACK files named are ones the binary really has loaded (checked
# against the dynamic linker's own list, LD_DEBUG=files), the BLAS thread count follows OPENBLAS_NUM_THREADS, and the
# compiler and build type are CMake's.
#
#   usage: version.sh TIMBER VERSION COMPILER BUILD_TYPE
# Prints "N passed, M failed".
set -u
if [ $# -ne 4 ]; then
    echo "usage: $0 TIMBER VERSION COMPILER BUILD_TYPE" >&2
    exit 2
fi
TIMBER=$1 VERSION=$2 COMPILER=$3 BUILD_TYPE=$4
TMP=$(mktemp -d "${TMPDIR:-/tmp}/timber-version-XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT

pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() {
    fail=$((fail + 1))
    echo "FAIL: $*" >&2
}
# field NAME: the value of "NAME: value" in the verbose output.
field() { sed -n "s/^$1: //p" "$TMP/v"; }

out=$("$TIMBER" --version) && [ "$out" = "timber $VERSION" ] && ok ||
    bad "--version printed '$out', not 'timber $VERSION'"
out=$("$TIMBER" -V) && [ "$out" = "timber $VERSION" ] && ok ||
    bad "-V printed '$out'"

if OPENBLAS_NUM_THREADS=1 "$TIMBER" --version --verbose >"$TMP/v" 2>"$TMP/e" &&
    [ ! -s "$TMP/e" ]; then ok; else
    bad "--version --verbose failed: $(cat "$TMP/e")"
fi
[ "$(head -n 1 "$TMP/v")" = "timber $VERSION" ] && ok ||
    bad "verbose first line: $(head -n 1 "$TMP/v")"
[ "$(field libtimber)" = "$VERSION" ] && ok ||
    bad "libtimber: '$(field libtimber)'"
case "$(field BLAS)" in
"OpenBLAS "[0-9]*"(core "*) ok ;;
*) bad "BLAS: '$(field BLAS)'" ;;
esac
case "$(field 'BLAS threads')" in
"1 (of "*" processors)") ok ;;
*) bad "BLAS threads under OPENBLAS_NUM_THREADS=1: '$(field 'BLAS threads')'" ;;
esac
OPENBLAS_NUM_THREADS=2 "$TIMBER" --version --verbose >"$TMP/v2"
grep -qx 'BLAS threads: 2 (of [0-9]* processors)' "$TMP/v2" && ok ||
    bad "BLAS threads under OPENBLAS_NUM_THREADS=2: $(grep threads "$TMP/v2")"
field LAPACK | grep -qxE '[0-9]+\.[0-9]+\.[0-9]+' && ok ||
    bad "LAPACK: '$(field LAPACK)'"
[ "$(field compiler)" = "$COMPILER" ] && ok ||
    bad "compiler: '$(field compiler)', CMake says '$COMPILER'"
want_type=${BUILD_TYPE:-(none)}
[ "$(field 'build type')" = "$want_type" ] && ok ||
    bad "build type: '$(field 'build type')', CMake says '$want_type'"

# The shared objects the dynamic linker loaded for this binary, by the
# name it found them under (ld.so's own account, LD_DEBUG=files).
maps=$(LD_DEBUG=files "$TIMBER" --version 2>&1 >/dev/null |
    sed -n 's/.*calling init: //p' | sort -u)
for lib in 'BLAS library' 'LAPACK library' 'LAPACKE library'; do
    v=$(field "$lib")
    name=${v%% -> *}
    if [ -n "$name" ] && [ -f "$name" ] && grep -qxF "$name" <<<"$maps"; then
        ok
    else
        bad "$lib: '$v' is not a file ld.so loaded for timber ($maps)"
    fi
done
# The BLAS really is the file that defines OpenBLAS's symbols.
v=$(field 'BLAS library')
nm -D --defined-only "${v##* -> }" 2>/dev/null | grep -qw openblas_get_config &&
    ok || bad "BLAS library '$v' does not define openblas_get_config"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
