#!/usr/bin/env bash
# hostile_stale.sh — class 5: a temporary left by a dead run never blocks
# or survives the next one, whatever the PID in its name: the PID of a
# live process (PID reuse), 1 (timber as PID 1 in one container after
# another), the test's own shell.  Liveness is the temporary's lock: one
# whose lock a live process holds (here flock(1)) is left alone, and is
# swept once that process is gone.  Also a run really killed (SIGKILL),
# beside OUT and beside a report.
#   usage: hostile_stale.sh TIMBER TIMBER_GEN REFCHECK
. "$(dirname "$0")/hostile_lib.sh"

gen_pair
snapshot in "$B" "$I"
P=$T/p
mkdir -p "$P"
sleep 600 >/dev/null 2>&1 </dev/null &
live=$!
at_exit "kill $live 2>/dev/null"
# Dead runs' leftovers under PIDs that are alive right now.
for pid in 1 $$ $live; do
    mkdir -p "$P/.out.timber-tmp.$pid.00000000deadbeef/sub"
    echo junk >"$P/.out.timber-tmp.$pid.00000000deadbeef/sub/model.safetensors"
    echo junk >"$P/.r.json.timber-tmp.$pid.00000000deadbeef"
done
# A live one: its lock held by another process.
mkdir -p "$P/.out.timber-tmp.$live.00000000000a11fe"
flock -o "$P/.out.timber-tmp.$live.00000000000a11fe" sleep 600 \
    >/dev/null 2>&1 </dev/null &
holder=$!
sleep 0.3
holder_child=$(ps -o pid= --ppid $holder | tr -d ' ')
at_exit "kill $holder $holder_child 2>/dev/null"
for i in $(seq 1 50); do
    flock -n "$P/.out.timber-tmp.$live.00000000000a11fe" true || break
    sleep 0.1
done
# Not ours (a link, a FIFO with our name pattern): never touched.
ln -s /nonexistent "$P/.out.timber-tmp.7.link"
mkfifo "$P/.out.timber-tmp.8.fifo"

run sweep -- "$B" "$I" "$P/out" --no-cache -q --report "$P/r.json"
expect_rc sweep 0
err_lines sweep 0
check "sweep: no OUT" test -s "$P/out/model.safetensors"
check "sweep: no report" test -s "$P/r.json"
for pid in 1 $$ $live; do
    check "sweep: dead run's directory (PID $pid) left" \
        test ! -e "$P/.out.timber-tmp.$pid.00000000deadbeef"
    check "sweep: dead run's report temporary (PID $pid) left" \
        test ! -e "$P/.r.json.timber-tmp.$pid.00000000deadbeef"
done
check "sweep: a live run's temporary was removed" \
    test -d "$P/.out.timber-tmp.$live.00000000000a11fe"
check "sweep: a link was touched" test -L "$P/.out.timber-tmp.7.link"
check "sweep: a FIFO was touched" test -p "$P/.out.timber-tmp.8.fifo"
unchanged in sweep
# The holder gone, its temporary is stale: swept by the next run.
kill $holder $holder_child 2>/dev/null
wait $holder 2>/dev/null
rm "$P/.out.timber-tmp.7.link" "$P/.out.timber-tmp.8.fifo"
run sweep2 -- "$B" "$I" "$P/out" --no-cache -q --force
expect_rc sweep2 0
check "sweep2: the released temporary was not swept" \
    test ! -e "$P/.out.timber-tmp.$live.00000000000a11fe"
no_temps sweep2 "$P"
no_leftovers sweep2
unchanged in sweep2

# A run really killed: its temporary (named with its PID) is swept by the
# next, which succeeds.
if "$GEN" "$T/big" --preset qwen3-0.6b --layers 2 --vocab 4096 --seed 2 \
    >"$T/gen.log" 2>&1; then
    snapshot in "$B" "$I" "$T/big"
    Q=$T/q
    mkdir -p "$Q"
    "$TIMBER" "$T/big/base" "$T/big/instruct" "$Q/out" --no-cache --threads 1 \
        >/dev/null 2>&1 &
    k=$!
    for i in $(seq 1 200); do
        compgen -G "$Q/.out.timber-tmp.$k.*" >/dev/null && break
        sleep 0.05
    done
    sleep 0.5
    kill -KILL $k
    wait $k 2>/dev/null
    check "killed: no temporary to sweep" compgen -G "$Q/.out.timber-tmp.$k.*" >/dev/null
    run after-kill -- "$T/big/base" "$T/big/instruct" "$Q/out" --no-cache -q
    expect_rc after-kill 0
    no_temps after-kill "$Q"
    no_leftovers after-kill
    unchanged in after-kill
else
    bad "timber-gen failed: $(cat "$T/gen.log")"
fi
finish
