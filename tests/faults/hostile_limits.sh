#!/usr/bin/env bash
# hostile_limits.sh — class 3: resource limits.
#   - ulimit -v at several limits: exit 0 with the right output, or exit 1
#     with one "out of memory" line; never a hang (OpenBLAS 0.3.21 spins
#     forever when its buffer cannot be mapped: timber checks the run's
#     need up front, resources.c)
#   - ulimit -n 1024 with a 182-shard pair swept over 7 gammas (1274
#     output shards): works, and so it does under ulimit -n 32 (the fds
#     held do not grow with shards x gammas)
#   - a full fd table (ulimit -n 4..12) and ulimit -f: exit 0 or 1 with
#     one line, nothing left behind
#   usage: hostile_limits.sh TIMBER TIMBER_GEN REFCHECK
. "$(dirname "$0")/hostile_lib.sh"

# limited NAME LIMITS -- ARGS: timber ARGS under the ulimit options LIMITS
# (one word, e.g. "-v 500000"), killed after 300 s (a hang).
limited() {
    local name=$1 lim=$2
    shift 3
    RC=0
    timeout -s KILL 300 bash -c 'ulimit '"$lim"' || exit 99; exec "$0" "$@"' \
        "$TIMBER" "$@" >"$T/$name.out" 2>"$T/$name.err" </dev/null || RC=$?
    if [ "$RC" -eq 137 ]; then bad "$name: hung (killed after 300 s)"; fi
}

# ---- memory -------------------------------------------------------------
if ldd "$TIMBER" 2>/dev/null | grep -q libasan; then
    skip "ulimit -v: AddressSanitizer reserves terabytes of address space"
else
    "$GEN" "$T/q" --preset qwen3-0.6b --layers 2 --vocab 4096 --seed 3 \
        >"$T/gen.log" 2>&1 || { echo "timber-gen: $(cat "$T/gen.log")"; exit 1; }
    snapshot in "$T/q"
    run qref -- "$T/q/base" "$T/q/instruct" "$T/qref" --no-cache -q --threads 2
    expect_rc qref 0
    for kb in 200000 400000 600000 700000 800000 1000000 1400000 2000000; do
        for th in 1 2; do
            n=v$kb-t$th
            rm -rf "$T/$n"
            limited "$n" "-v $kb" -- "$T/q/base" "$T/q/instruct" "$T/$n" \
                --no-cache -q --threads $th
            if [ "$RC" -eq 0 ]; then
                same_tree "$n" "$T/qref" "$T/$n"
                err_lines "$n" 0
            elif [ "$RC" -eq 1 ]; then
                one_line "$n" "out of memory"
                no_out "$n" "$T/$n"
            else
                bad "$n: exit $RC: $(head -c 400 "$T/$n.err")"
            fi
            unchanged in "$n"
            no_leftovers "$n"
            echo "ulimit -v $kb, --threads $th: exit $RC"
        done
    done
    rm -rf "$T/q" "$T/qref" "$T"/v*-t*
fi

# ---- file descriptors ----------------------------------------------------
"$GEN" "$T/m" --preset tiny --seed 5 --variants none --layers 20 \
    --max-shard-size 1K >"$T/gen.log" 2>&1 ||
    { echo "timber-gen: $(cat "$T/gen.log")"; exit 1; }
nshards=$(ls "$T/m/instruct"/*.safetensors | wc -l)
check "the sharded pair has $nshards shards, expected > 160" test "$nshards" -gt 160
snapshot in "$T/m"
G=0,0.1,0.2,0.3,0.5,0.7,1
run mref -- "$T/m/base" "$T/m/instruct" "$T/mref" --no-cache -q --gamma $G --threads 2
expect_rc mref 0
for nf in 1024 32; do
    limited "n$nf" "-n $nf" -- "$T/m/base" "$T/m/instruct" "$T/n$nf" \
        --cache "$T/n$nf.tsvd" -q --gamma $G --threads 2
    expect_rc "n$nf" 0
    err_lines "n$nf" 0
    same_tree "n$nf" "$T/mref" "$T/n$nf"
    unchanged in "n$nf"
    no_leftovers "n$nf"
done
# A full fd table, at every size from "nothing free" up (below 4 the
# dynamic loader cannot open timber's libraries: exit 127, not timber's).
for nf in 4 5 6 7 8 10 12; do
    limited "full$nf" "-n $nf" -- "$T/m/base" "$T/m/instruct" "$T/full$nf" \
        --cache "$T/full$nf.tsvd" -q --threads 2 --report "$T/full$nf.json"
    if [ "$RC" -eq 0 ]; then
        ok
    elif [ "$RC" -eq 127 ] && grep -q "error while loading shared libraries" "$T/full$nf.err"; then
        ok # fds inherited from the caller left the loader none: not timber's
    elif [ "$RC" -eq 1 ]; then
        one_line "full$nf"
        no_out "full$nf" "$T/full$nf"
        check "full$nf: a report without its OUT" test ! -e "$T/full$nf.json"
    else
        bad "full$nf: exit $RC: $(head -c 400 "$T/full$nf.err")"
    fi
    [ -e "$T/full$nf.tsvd" ] && cache_ok "full$nf" "$T/full$nf.tsvd"
    unchanged in "full$nf"
    no_leftovers "full$nf"
done

# ---- file size -------------------------------------------------------------
for kb in 1 64 600; do
    limited "fsize$kb" "-f $kb" -- "$T/m/base" "$T/m/instruct" "$T/fsize$kb" \
        --cache "$T/fsize$kb.tsvd" -q --threads 2
    expect_rc "fsize$kb" 1
    one_line "fsize$kb" "File too large"
    no_out "fsize$kb" "$T/fsize$kb"
    [ -e "$T/fsize$kb.tsvd" ] && cache_ok "fsize$kb" "$T/fsize$kb.tsvd"
    unchanged in "fsize$kb"
    no_leftovers "fsize$kb"
done
finish
