#!/usr/bin/env bash
# setup.sh — make sure the Debian packages timber needs are installed, then
# configure and build it (into build/ unless told otherwise).
#
# usage: scripts/setup.sh [--deps-only] [--with PKG]... [--build-dir DIR]
#                         [-- CMAKE_ARGS...]
#
#   --deps-only       check (and install) the packages, do not build
#   --with PKG        also require the Debian package PKG (repeatable;
#                     scripts/fuzz.sh adds clang and libclang-rt-14-dev)
#   --build-dir DIR   build in DIR (relative to the repository root) instead
#                     of build/
#   -- CMAKE_ARGS     extra arguments for cmake's configure step, after
#                     -DCMAKE_BUILD_TYPE=RelWithDebInfo
#
# Run as root, missing packages are installed with apt-get; run as anyone
# else, the exact `sudo apt-get install ...` line is printed and the script
# exits non-zero.  Works from any directory.  test.sh and demo.sh call it.
#
# Environment:
#   TIMBER_JOBS      parallel build jobs (default: nproc)
#   TIMBER_OPTIONAL  1 = also install the optional packages (gnuplot-nox)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
cd "$repo"

say() { printf '[setup] %s\n' "$*" >&2; }
die() {
    printf '[setup] error: %s\n' "$*" >&2
    exit 1
}

deps_only=0
build_dir=build
cmake_args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo)
extra_required=()
while (($#)); do
    case "$1" in
    --deps-only) deps_only=1 ;;
    --with)
        (($# >= 2)) || die "--with needs a package name"
        extra_required+=("$2")
        shift
        ;;
    --build-dir)
        (($# >= 2)) || die "--build-dir needs a directory"
        build_dir="$2"
        shift
        ;;
    --)
        shift
        cmake_args+=("$@")
        break
        ;;
    -h | --help)
        sed -n '2,22p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *) die "unknown argument '$1' (try --help)" ;;
    esac
    shift
done

# What the build needs (CMakeLists.txt finds the libraries with pkg-config;
# gcc brings the sanitizer runtimes), and python3, which the tests use to
# validate JSON output.
required=(
    cmake
    gcc
    make
    libc6-dev
    pkg-config
    libopenblas-dev
    liblapacke-dev
    libcjson-dev
    zlib1g-dev
    python3
)
required+=("${extra_required[@]}")
# Nice to have: plots (later).  Reported, installed only on request.
optional=(gnuplot-nox)

installed() {
    local status
    status="$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" || return 1
    [[ "$status" == *" ok installed" ]]
}

apt_install() {
    # No stdin, no questions, no recommends; quiet, with the log shown only
    # when something fails.
    local log
    log="$(mktemp "${TMPDIR:-/tmp}/timber-apt.XXXXXX")"
    export DEBIAN_FRONTEND=noninteractive
    say "running apt-get update"
    if ! apt-get update -q </dev/null >"$log" 2>&1; then
        tail -n 30 "$log" >&2
        rm -f "$log"
        die "apt-get update failed"
    fi
    say "running apt-get install -y --no-install-recommends $*"
    if ! apt-get install -y -q --no-install-recommends "$@" </dev/null \
        >"$log" 2>&1; then
        tail -n 30 "$log" >&2
        rm -f "$log"
        die "apt-get install failed"
    fi
    rm -f "$log"
}

check_packages() {
    if ! command -v dpkg-query >/dev/null 2>&1; then
        say "no dpkg-query: not a Debian system, skipping the package check"
        say "(the build needs: ${required[*]})"
        return 0
    fi
    local missing=() missing_opt=() p
    for p in "${required[@]}"; do
        installed "$p" || missing+=("$p")
    done
    for p in "${optional[@]}"; do
        installed "$p" || missing_opt+=("$p")
    done
    if [[ "${TIMBER_OPTIONAL:-0}" == 1 ]] && ((${#missing_opt[@]})); then
        missing+=("${missing_opt[@]}")
        missing_opt=()
    fi
    if ((${#missing_opt[@]})); then
        say "optional, not installed: ${missing_opt[*]} (TIMBER_OPTIONAL=1 installs it)"
    fi
    if ((${#missing[@]} == 0)); then
        say "packages: all ${#required[@]} required packages are installed"
        return 0
    fi
    say "missing packages: ${missing[*]}"
    if [[ "$(id -u)" != 0 ]]; then
        say "not running as root; install them with:"
        printf '  sudo apt-get install -y --no-install-recommends %s\n' \
            "${missing[*]}" >&2
        say "then run this script again."
        exit 1
    fi
    apt_install "${missing[@]}"
    for p in "${missing[@]}"; do
        installed "$p" || die "package $p is still not installed"
    done
    say "packages: installed ${missing[*]}"
}

check_packages
if ((deps_only)); then
    exit 0
fi

jobs="${TIMBER_JOBS:-$(nproc 2>/dev/null || echo 2)}"
# A cache written by a checkout at another path makes cmake refuse to run.
if [[ -f "$build_dir/CMakeCache.txt" ]] &&
    ! grep -qxF "CMAKE_HOME_DIRECTORY:INTERNAL=$repo" \
        "$build_dir/CMakeCache.txt"; then
    say "$build_dir/ was configured for another checkout: starting it afresh"
    rm -rf "$build_dir/CMakeCache.txt" "$build_dir/CMakeFiles"
fi
say "configuring $build_dir/ (${cmake_args[*]})"
log="$(mktemp "${TMPDIR:-/tmp}/timber-cmake.XXXXXX")"
if ! cmake -S . -B "$build_dir" "${cmake_args[@]}" >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    die "cmake could not configure $build_dir/"
fi
rm -f "$log"
say "building $build_dir/ with $jobs jobs"
cmake --build "$build_dir" -j"$jobs" || die "the build in $build_dir/ failed"
say "built $build_dir/ in $repo"
