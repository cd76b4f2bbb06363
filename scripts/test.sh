#!/usr/bin/env bash
# test.sh — build timber and run the whole test suite, twice: a normal
# build in build/, then an AddressSanitizer + UndefinedBehaviorSanitizer
# build in build-asan/ where any sanitizer report fails the test; then
# fuzz each libFuzzer target for a bounded time (scripts/fuzz.sh, in
# build-fuzz/; skipped with a message when clang cannot be installed).
# Besides the build's packages it installs (as root) those the
# installation tests use: dpkg-dev, man-db, bash-completion, zsh; and
# those of the distributed tests: slurmctld, slurmd, slurm-client, munge,
# parallel (as root only: slurmd must run as root).  As
# root, the package test installs the .deb for real and removes it again
# (TIMBER_TEST_SYSTEM_INSTALL=0 keeps it to a scratch root).
#
# usage: scripts/test.sh [--quick] [--no-fuzz] [--help]
#
#   --quick     skip the sanitizer pass and the fuzzing
#               (same as TIMBER_SKIP_SANITIZE=1 TIMBER_SKIP_FUZZ=1)
#   --no-fuzz   skip the fuzzing (same as TIMBER_SKIP_FUZZ=1)
#
# Exits non-zero if the build or any test fails.  Works from any directory,
# with no terminal and no stdin (CI runs it as .ci/run).
#
# Environment:
#   TIMBER_SKIP_SANITIZE  1 = skip the sanitizer pass
#   TIMBER_SKIP_FUZZ      1 = skip the fuzzing
#   TIMBER_FUZZ_SECONDS   seconds per fuzz target (default 45; 3 targets)
#   TIMBER_OPTIONAL       0 = do not install the optional packages (gnuplot)
#   TIMBER_TEST_JOBS      tests run in parallel (default 1)
#   TIMBER_TEST_TIMEOUT   seconds a test may run unless it sets its own
#                         TIMEOUT (default 600)
#   TIMBER_JOBS           parallel build jobs (default: nproc)
#   TIMBER_PYENV          the venv of the Hugging Face tests (label hf;
#                         default build/pyenv)
#   TIMBER_TEST_SYSTEM_INSTALL  0 = never apt-get install the .deb
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
cd "$repo"

say() { printf '[test] %s\n' "$*" >&2; }
die() {
    printf '[test] error: %s\n' "$*" >&2
    exit 1
}

sanitize=1
[[ "${TIMBER_SKIP_SANITIZE:-0}" == 1 ]] && sanitize=0
fuzz=1
[[ "${TIMBER_SKIP_FUZZ:-0}" == 1 ]] && fuzz=0
for arg in "$@"; do
    case "$arg" in
    --quick)
        sanitize=0
        fuzz=0
        ;;
    --no-sanitize) sanitize=0 ;;
    --no-fuzz) fuzz=0 ;;
    -h | --help)
        sed -n '2,34p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *) die "unknown argument '$arg' (try --help)" ;;
    esac
done

test_jobs="${TIMBER_TEST_JOBS:-1}"
# The Hugging Face interop tests (ctest label hf) install torch,
# transformers, safetensors, tokenizers and huggingface_hub into one venv
# under build/, shared by both passes (tests/hf/pyenv.sh).
export TIMBER_PYENV="${TIMBER_PYENV:-$repo/build/pyenv}"
test_timeout="${TIMBER_TEST_TIMEOUT:-600}"
start=$SECONDS

elapsed() {
    local s=$((SECONDS - start))
    printf '%dm%02ds' $((s / 60)) $((s % 60))
}

# run_ctest DIR: the suite in DIR; prints a closing line and fails on any
# failed test.
run_ctest() {
    local dir="$1"
    say "running the tests in $dir/"
    if ! ctest --test-dir "$dir" --output-on-failure --timeout "$test_timeout" \
        -j"$test_jobs" </dev/null; then
        say "FAILED: tests in $dir/ (after $(elapsed))"
        return 1
    fi
    say "passed: tests in $dir/ (after $(elapsed))"
}

status=0

# The tests of plots need gnuplot: the test run installs the optional
# packages too (when root), so that no test is skipped for want of them.
export TIMBER_OPTIONAL="${TIMBER_OPTIONAL:-1}"
# What the installation tests (tests/install/) use besides the build's
# packages: dpkg-shlibdeps for the .deb's Depends, man, bash-completion's
# loader and zsh, whose completions they exercise.
test_packages=(--with dpkg-dev --with man-db --with bash-completion --with zsh)
# The distributed tests (tests/dist/) start a one-node Slurm cluster and
# run GNU parallel.  Only root can run slurmd, so only root installs them;
# run as anyone else, the Slurm tests are skipped (exit 77) with the reason.
if [[ "$(id -u)" == 0 ]]; then
    test_packages+=(--with slurmctld --with slurmd --with slurm-client
        --with munge --with parallel)
fi

# ---- pass 1: the normal build --------------------------------------------
say "pass 1: RelWithDebInfo build in build/"
"$here/setup.sh" "${test_packages[@]}" ||
    die "setup or build failed (after $(elapsed))"
run_ctest build || status=1

# ---- pass 2: sanitizers ---------------------------------------------------
if ((sanitize)); then
    say "pass 2: AddressSanitizer + UBSan build in build-asan/"
    "$here/setup.sh" "${test_packages[@]}" --build-dir build-asan -- \
        -DTIMBER_SANITIZE=ON ||
        die "the sanitizer build failed (after $(elapsed))"
    # Any report stops the program with exit code 86, which no timber
    # command uses, so a test expecting "exit 1" cannot pass by accident.
    # Leaks count as errors.  The caller's own options come last and win.
    export ASAN_OPTIONS="halt_on_error=1:detect_leaks=1:exitcode=86:abort_on_error=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
    export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:exitcode=86${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
    export LSAN_OPTIONS="exitcode=86${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
    run_ctest build-asan || status=1
else
    say "pass 2 skipped (--quick / TIMBER_SKIP_SANITIZE=1)"
fi

# ---- pass 3: fuzzing ------------------------------------------------------
if ((fuzz)); then
    fuzz_seconds="${TIMBER_FUZZ_SECONDS:-45}"
    say "pass 3: fuzzing each target for ${fuzz_seconds}s in build-fuzz/"
    # fuzz.sh exits 0 with a "skipped" line when clang cannot be had.
    if ! "$here/fuzz.sh" "$fuzz_seconds"; then
        say "FAILED: fuzzing (after $(elapsed))"
        status=1
    else
        say "passed: fuzzing (after $(elapsed))"
    fi
else
    say "pass 3 skipped (--quick / --no-fuzz / TIMBER_SKIP_FUZZ=1)"
fi

if ((status)); then
    say "FAILED after $(elapsed)"
    exit 1
fi
say "all passes succeeded in $(elapsed)"
