#!/usr/bin/env bash
# demo.sh — build timber, generate a tiny synthetic Base/Instruct pair,
# refine it, and look at the result and at the pair's effective ranks.
#
# usage: scripts/demo.sh [WORKDIR]
#
#   WORKDIR   where the pair (and the refined model) are written; default:
#             a fresh temporary directory.  For example ./demo-out.
#             Its base/, instruct/, refined/, report.csv and
#             svd-cache.tsvd are replaced.
#
# Works from any directory.  Nothing outside WORKDIR, build/ and (for a
# missing package, as root) the system's packages is touched.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"

heading() { printf '\n==== %s ====\n' "$*"; }
note() { printf '  %s\n' "$*"; }
die() {
    printf 'demo: error: %s\n' "$*" >&2
    exit 1
}

case "${1:-}" in
-h | --help)
    sed -n '2,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
esac
(($# <= 1)) || die "at most one argument, WORKDIR (try --help)"

# The work directory, made absolute before leaving the caller's directory;
# it is created only once the build has succeeded.
work=""
if (($# == 1)); then
    [[ -n "$1" ]] || die "WORKDIR is empty"
    case "$1" in
    /*) work="$1" ;;
    *) work="$PWD/$1" ;;
    esac
fi
cd "$repo"

timber="$repo/build/timber"
gen="$repo/build/timber-gen"

# run CMD...: shows the command, then runs it; a failure ends the demo.
run() {
    local rc=0
    printf '\n$ %s\n' "$*"
    "$@" || rc=$?
    ((rc == 0)) || die "the command above failed (exit code $rc)"
}

heading "1. Build (scripts/setup.sh)"
# The fixture generator is part of the test build: ask for it explicitly,
# in case build/ was configured without the tests.
"$here/setup.sh" -- -DTIMBER_BUILD_TESTS=ON
[[ -x "$timber" ]] || die "build/timber was not built"
if [[ ! -x "$gen" ]]; then
    die "build/timber-gen was not built: the demo needs the fixture generator
  (tests/gen/)."
fi
note "timber: $timber ($("$timber" --version))"
if [[ -n "$work" ]]; then
    mkdir -p -- "$work"
    work="$(cd -- "$work" && pwd)"
else
    work="$(mktemp -d "${TMPDIR:-/tmp}/timber-demo.XXXXXX")"
fi

heading "2. Generate a tiny synthetic Base/Instruct pair"
run "$gen" "$work" --preset tiny --max-shard-size 64K --force
base="$work/base"
instruct="$work/instruct"
refined="$work/refined"
cache="$work/svd-cache.tsvd"
report="$work/report.csv"
for d in "$base" "$instruct"; do
    [[ -d "$d" ]] || die "timber-gen did not write $d"
done

heading "3. Refine Instruct with Base (gamma 0.2)"
# The cache and the report live in WORKDIR, so the demo never writes into
# ~/.cache.  The summary (and any warning) is timber's stderr.
rm -rf -- "$refined" "$cache" "$report"
run "$timber" "$base" "$instruct" "$refined" --gamma 0.2 \
    --cache "$cache" --report "$report"

heading "4. Inspect the refined checkpoint"
run "$timber" inspect "$refined"

heading "5. Effective ranks of layer 0 (Base, Instruct, and their delta)"
# The delta's spectra come from the cache step 3 wrote: nothing is
# factorised again.
run "$timber" erank "$base" "$instruct" --include 'layers\.0\.' \
    --cache "$cache"

heading "Done"
note "work directory: $work"
note "  base/            the synthetic Base checkpoint"
note "  instruct/        the synthetic Instruct checkpoint"
note "  refined/         the refined Instruct checkpoint (timber's output)"
note "  report.csv       what was done to each tensor, and why"
note "  svd-cache.tsvd   the SVD cache: another gamma needs no factorisation"
note "timber binary:     $timber"
note "try:  $timber $base $instruct $work/refined-0.5 --gamma 0.5 --cache $cache"
note "      $timber cache info $cache"
