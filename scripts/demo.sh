#!/usr/bin/env bash
# demo.sh — build timber, generate a tiny synthetic Base/Instruct pair, and
# run timber on it.
#
# usage: scripts/demo.sh [WORKDIR]
#
#   WORKDIR   where the pair (and the refined model) are written; default:
#             a fresh temporary directory.  For example ./demo-out.
#             Its base/, instruct/ and refined/ are replaced.
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
    sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
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
"$here/setup.sh"
[[ -x "$timber" ]] || die "build/timber was not built"
if [[ ! -x "$gen" ]]; then
    die "build/timber-gen was not built: the fixture generator (tests/gen/)
  is not in this version yet, so the demo has no checkpoint pair to use."
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
for d in "$base" "$instruct"; do
    [[ -d "$d" ]] || die "timber-gen did not write $d"
done

heading "3. Inspect the Base checkpoint"
run "$timber" inspect "$base"

heading "4. Inspect the Instruct checkpoint"
run "$timber" inspect "$instruct"

heading "5. Refine Instruct with Base (gamma 0.2)"
# ---------------------------------------------------------------------------
# REFINE SWITCH: set to 1 once `timber BASE INSTRUCT OUT` is implemented.
refine_enabled=0
# ---------------------------------------------------------------------------
if ((refine_enabled)); then
    rm -rf -- "$refined"
    run "$timber" "$base" "$instruct" "$refined" --gamma 0.2
    heading "6. Inspect the refined checkpoint"
    run "$timber" inspect "$refined"
else
    note "skipped: refinement is still being built in this version."
    note "it will run:  timber $base $instruct $refined --gamma 0.2"
fi

heading "Done"
note "work directory: $work"
note "  base/      the synthetic Base checkpoint"
note "  instruct/  the synthetic Instruct checkpoint"
if ((refine_enabled)); then
    note "  refined/   the refined Instruct checkpoint (timber's output)"
fi
note "timber binary:  $timber"
note "try:            $timber inspect $instruct --json"
