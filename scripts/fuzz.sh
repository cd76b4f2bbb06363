#!/usr/bin/env bash
# fuzz.sh — build timber's libFuzzer targets with clang and run each one
# for a bounded time on its seed corpus, then report.
#
# usage: scripts/fuzz.sh [SECONDS] [TARGET...]
#
#   SECONDS   how long each target runs (default 60)
#   TARGET    safetensors, index, cache (default: all three)
#
# The targets (tests/fuzz/fuzz_*.c) are built in build-fuzz/ with
# CC=clang -DTIMBER_FUZZ=ON (libFuzzer, AddressSanitizer, UBSan).  Each run
# starts from tests/fuzz/corpus/TARGET/ plus what earlier runs found
# (build-fuzz/fuzz-corpus/TARGET/, where new inputs go: the committed
# corpus is never written).  A crash, leak, timeout or out-of-memory input
# is minimized and left in build-fuzz/fuzz-artifacts/TARGET/; fix the bug,
# then copy the minimized input into tests/fuzz/regressions/TARGET/ so the
# ctest fuzz_replay_TARGET replays it in every build.
#
# Needs clang and libclang-rt-14-dev besides the build's packages: run as
# root, missing ones are installed through scripts/setup.sh; otherwise the
# script says what is missing and exits 0 having fuzzed nothing ("skipped"),
# so a CI without root still passes the rest of scripts/test.sh.
#
# Exits 1 if any target found a failing input (or the build failed).
#
# Environment:
#   TIMBER_JOBS       parallel build jobs (default: nproc)
#   TIMBER_FUZZ_ARGS  extra libFuzzer arguments for every run
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
cd "$repo"

say() { printf '[fuzz] %s\n' "$*" >&2; }
die() {
    printf '[fuzz] error: %s\n' "$*" >&2
    exit 1
}

seconds=60
targets=()
for arg in "$@"; do
    case "$arg" in
    -h | --help)
        sed -n '2,28p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    safetensors | index | cache) targets+=("$arg") ;;
    *[!0-9]* | '') die "unknown argument '$arg' (try --help)" ;;
    *) seconds="$arg" ;;
    esac
done
((${#targets[@]})) || targets=(safetensors index cache)
((seconds > 0)) || die "SECONDS must be positive"

build_dir=build-fuzz
jobs="${TIMBER_JOBS:-$(nproc 2>/dev/null || echo 2)}"

# Can clang build and link a libFuzzer program here?
toolchain_ok() {
    command -v clang >/dev/null 2>&1 || return 1
    local t
    t="$(mktemp -d "${TMPDIR:-/tmp}/timber-fuzzcheck.XXXXXX")"
    printf '%s\n' '#include <stddef.h>' '#include <stdint.h>' \
        'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);' \
        'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)' \
        '{ (void)d; (void)n; return 0; }' >"$t/probe.c"
    local rc=0
    clang -fsanitize=fuzzer,address,undefined "$t/probe.c" -o "$t/probe" \
        >/dev/null 2>&1 || rc=1
    rm -rf "$t"
    return $rc
}

if ! toolchain_ok; then
    if [[ "$(id -u)" != 0 ]]; then
        say "skipped: clang with libFuzzer is not available and this is not"
        say "root, so it cannot be installed; to fuzz, run:"
        printf '  sudo apt-get install -y --no-install-recommends clang libclang-rt-14-dev\n' >&2
        exit 0
    fi
    say "clang with libFuzzer is missing: installing it"
    "$here/setup.sh" --deps-only --with clang --with libclang-rt-14-dev ||
        die "could not install clang and libclang-rt-14-dev"
    toolchain_ok || die "clang still cannot link a libFuzzer program"
else
    # The rest of the build's packages (cmake, the libraries).
    "$here/setup.sh" --deps-only >/dev/null 2>&1 ||
        "$here/setup.sh" --deps-only || die "the build's packages are missing"
fi

# ---- build ----------------------------------------------------------------
if [[ -f "$build_dir/CMakeCache.txt" ]] &&
    ! grep -qxF "CMAKE_HOME_DIRECTORY:INTERNAL=$repo" \
        "$build_dir/CMakeCache.txt"; then
    say "$build_dir/ was configured for another checkout: starting it afresh"
    rm -rf "$build_dir/CMakeCache.txt" "$build_dir/CMakeFiles"
fi
say "configuring $build_dir/ (clang, TIMBER_FUZZ=ON)"
log="$(mktemp "${TMPDIR:-/tmp}/timber-fuzz-cmake.XXXXXX")"
if ! CC=clang cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DTIMBER_FUZZ=ON >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    die "cmake could not configure $build_dir/"
fi
rm -f "$log"
build_targets=()
for t in "${targets[@]}"; do build_targets+=(--target "fuzz_$t"); done
say "building ${targets[*]/#/fuzz_}"
cmake --build "$build_dir" -j"$jobs" "${build_targets[@]}" >/dev/null ||
    cmake --build "$build_dir" -j1 "${build_targets[@]}" ||
    die "the fuzz targets did not build"

# ---- run ------------------------------------------------------------------
declare -A max_len=([safetensors]=8192 [index]=4096 [cache]=8192)
# The index and cache targets write a file per input: on /dev/shm (when
# there is one) that costs nothing, on a disk the fsyncs dominate.
scratch_root="${TMPDIR:-/tmp}"
[[ -d /dev/shm && -w /dev/shm ]] && scratch_root=/dev/shm
scratch="$(mktemp -d "$scratch_root/timber-fuzz-scratch.XXXXXX")"
trap 'rm -rf "$scratch"' EXIT
failed=()
summary=()
for t in "${targets[@]}"; do
    bin="$build_dir/tests/fuzz/fuzz_$t"
    work="$build_dir/fuzz-corpus/$t"
    art="$build_dir/fuzz-artifacts/$t"
    logf="$build_dir/fuzz-logs/$t.log"
    mkdir -p "$work" "$art" "$(dirname "$logf")"
    rm -f "$art"/crash-* "$art"/leak-* "$art"/timeout-* "$art"/oom-* \
        "$art"/slow-unit-*
    say "fuzzing $t for ${seconds}s (log: $logf)"
    rc=0
    # Leaks are failures; a report stops the run.  ASAN_OPTIONS from the
    # caller (e.g. scripts/test.sh's sanitizer pass) is replaced.
    ASAN_OPTIONS="detect_leaks=1:abort_on_error=0" \
        UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" \
        TIMBER_FUZZ_SCRATCH="$scratch" \
        "$bin" -max_total_time="$seconds" -timeout=25 -rss_limit_mb=2048 \
        -max_len="${max_len[$t]}" -dict="tests/fuzz/dict/$t.dict" \
        -artifact_prefix="$art/" -print_final_stats=1 \
        ${TIMBER_FUZZ_ARGS:-} "$work" "tests/fuzz/corpus/$t" \
        </dev/null >"$logf" 2>&1 || rc=$?
    runs="$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$logf" |
        grep -o '[0-9]*$' | tail -n 1)"
    cov="$(grep -o 'cov: [0-9]* ft: [0-9]*' "$logf" | tail -n 1)"
    corpus="$(find "$work" -type f | wc -l)"
    artifact="$(find "$art" -maxdepth 1 -type f \( -name 'crash-*' -o \
        -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) |
        head -n 1)"
    if ((rc == 0)) && [[ -z "$artifact" ]]; then
        summary+=("$t: ok, ${runs:-?} runs, ${cov:-no coverage line}, $corpus inputs in $work")
        continue
    fi
    failed+=("$t")
    grep -m 3 -E '^(==[0-9]+==ERROR|SUMMARY|.*runtime error|.*fuzz invariant)' \
        "$logf" >&2 || tail -n 20 "$logf" >&2
    if [[ -n "$artifact" ]]; then
        min="$art/minimized-$(basename "$artifact")"
        say "minimizing $artifact"
        TIMBER_FUZZ_SCRATCH="$scratch" ASAN_OPTIONS="detect_leaks=1" \
            "$bin" -minimize_crash=1 -max_total_time=60 -runs=100000 \
            -exact_artifact_path="$min" "$artifact" \
            </dev/null >"$logf.minimize" 2>&1 || true
        [[ -s "$min" ]] || min="$artifact"
        summary+=("$t: FAILED (exit $rc): input $min; after the fix: cp $min tests/fuzz/regressions/$t/")
    else
        summary+=("$t: FAILED (exit $rc), no input saved; see $logf")
    fi
done

say "summary (${seconds}s per target):"
for line in "${summary[@]}"; do say "  $line"; done
if ((${#failed[@]})); then
    say "FAILED: ${failed[*]}"
    exit 1
fi
say "no failing input found"
