#!/usr/bin/env bash
# plan.sh — `timber plan BASE INSTRUCT --parts N --json`, the split the
# parts follow:
#
#   cover        every tensor of Instruct in exactly one part, each part
#                number in 0..N-1, the per-part totals the sums of its
#                tensors' estimates; for N = 1, 3, 7 and N larger than the
#                number of tensors (empty parts, no error)
#   determined   the same bytes twice, and for a copy of the pair in
#                another directory (a function of the headers and N only)
#   followed     each part of a real run (`--part I/3 --report`) refines
#                exactly the tensors the plan gives it
#   balanced     on a pair of many similar tensors (timber-gen tiny,
#                24 layers, no variants; 170 refined matrices) the most
#                loaded part's estimated flops and bytes are each at most
#                1.10 x the mean for N = 2, 4, 8, 16; on every pair, the
#                spread of flops between parts is at most the largest
#                single tensor's flops plus 50 flops a byte of its bytes
#                (largest first, each to the least loaded part)
#
#   usage: plan.sh TIMBER TIMBER_GEN REFCHECK
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"
dist_pair

# plan_ok NAME BASE INSTRUCT N [BOUND]: the JSON plan of N parts is
# well-formed and covers Instruct's tensors once (python3 checks it);
# with BOUND, max/mean of flops and bytes <= BOUND.
plan_ok() {
    local name=$1 b=$2 i=$3 n=$4 bound=${5:-0} msg
    run "$name" -- plan "$b" "$i" --parts "$n" --json
    if [ "$RC" -ne 0 ]; then
        bad "$name: timber plan exited $RC: $(head -c 400 "$T/$name.err")"
        return
    fi
    "$TIMBER" inspect "$i" --json >"$T/$name.inspect" 2>/dev/null
    if msg=$(python3 "$here/plan_check.py" plan "$T/$name.out" "$T/$name.inspect" "$n" "$bound" 2>&1); then ok; else bad "$name: $msg"; fi
}

for n in 1 3 7 $((NTENSORS + 5)); do
    plan_ok "plan-$n" "$B" "$I" "$n"
done

# Determined: twice, and from a copy of the pair elsewhere.
run plan-a -- plan "$B" "$I" --parts 5 --json
run plan-b -- plan "$B" "$I" --parts 5 --json
check "the same plan twice" cmp -s "$T/plan-a.out" "$T/plan-b.out"
mkdir copy
cp -r pair/base pair/instruct copy/
run plan-c -- plan copy/base copy/instruct --parts 5 --json
check "the same plan for a copy of the pair" cmp -s "$T/plan-a.out" "$T/plan-c.out"
run plan-table -- plan "$B" "$I" --parts 5
expect_rc plan-table 0
check "the table names every part" [ "$(grep -cE '^[0-4] ' "$T/plan-table.out")" -eq 5 ]

# Followed: each part refines what the plan gives it.
for i in 0 1 2; do
    run "part-$i" -- "$B" "$I" out-f --no-cache --part "$i/3" --report "$T/part-$i.json"
    expect_rc "part-$i" 0
done
run plan-3 -- plan "$B" "$I" --parts 3 --json
if msg=$(python3 "$here/plan_check.py" followed "$T/plan-3.out" "$T" 2>&1); then ok; else bad "followed: $msg"; fi

# Balanced, on many similar tensors.
if ! "$GEN" many --layers 24 --variants none >log/gen-many.log 2>&1; then
    bad "timber-gen (24 layers) failed: $(cat log/gen-many.log)"
    finish
fi
for n in 2 4 8 16; do
    plan_ok "many-$n" many/base many/instruct "$n" 1.10
done
finish
