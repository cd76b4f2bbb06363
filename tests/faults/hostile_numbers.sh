#!/usr/bin/env bash
# hostile_numbers.sh — class 8: numbers.
#   - --gamma -0 is 0: the directory gamma-0, the metadata "0"; and it is
#     the same output as --gamma 0
#   - blanks around a gamma are taken alike on both sides (' 0.5', '0.5 ');
#     a blank-only or empty gamma is refused (exit 2, one line)
#   - subnormal gammas are accepted (their value), like any number in [0, 1]
#   - an F16 output that would overflow to +-Inf from finite inputs: exit
#     1, one line naming the tensor and the element, nothing written
#   usage: hostile_numbers.sh TIMBER TIMBER_GEN REFCHECK
. "$(dirname "$0")/hostile_lib.sh"

gen_pair
snapshot in "$B" "$I"
meta_gamma() { # SHARD: its timber.gamma
    python3 - "$1" <<'PY'
import json, struct, sys
b = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", b[:8])[0]
print(json.loads(b[8:8 + n])["__metadata__"]["timber.gamma"])
PY
}
run g0 -- "$B" "$I" "$T/g0" --no-cache -q --gamma 0,1
run gm0 -- "$B" "$I" "$T/gm0" --no-cache -q --gamma -0,1
expect_rc gm0 0
check "gamma -0: no gamma-0 directory: $(ls "$T/gm0" 2>&1)" test -d "$T/gm0/gamma-0"
check "gamma -0: metadata is not 0" test "$(meta_gamma "$T/gm0/gamma-0/model.safetensors")" = 0
same_tree gm0 "$T/g0" "$T/gm0"
run gm0-one -- "$B" "$I" "$T/gm0-one" --no-cache -q --gamma -0
expect_rc gm0-one 0
check "gamma -0 alone: metadata is not 0" test "$(meta_gamma "$T/gm0-one/model.safetensors")" = 0
run g-1 -- "$B" "$I" "$T/g-1" --no-cache -q --gamma=-0.0,1e-0
expect_rc g-1 0
same_tree g-1 "$T/g0" "$T/g-1"

run half -- "$B" "$I" "$T/half" --no-cache -q --gamma 0.5
for sp in ' 0.5' '0.5 ' ' 0.5 ' $'\t0.5'; do
    n=blank$(printf %s "$sp" | od -An -tx1 | tr -d ' \n')
    run "$n" -- "$B" "$I" "$T/$n" --no-cache -q --gamma "$sp"
    expect_rc "$n" 0
    same_tree "$n" "$T/half" "$T/$n"
done
for sp in '' ' ' '0.5,' ',0.5' '0.5 0.6' '-0.1' '1.0000001' 'nan' 'inf' '0x'; do
    n=badg$(printf %s "$sp" | od -An -tx1 | tr -d ' \n')
    refused "$n" 2 1 "--gamma" -- "$B" "$I" "$T/$n" --no-cache -q --gamma "$sp"
    no_out "$n" "$T/$n"
done
for sub in 4.9e-324 2.2250738585072009e-308 1e-310 1e-400; do
    run "sub$sub" -- "$B" "$I" "$T/sub$sub" --no-cache -q --gamma "$sub"
    expect_rc "sub$sub" 0
    err_lines "sub$sub" 0
done
# A subnormal is its value: at 1e-310 the output is gamma 0's to within
# rounding (identical here), 1e-400 reads as 0.
run g0one -- "$B" "$I" "$T/g0one" --no-cache -q --gamma 0
for sub in 1e-310 1e-400; do
    cmp -s "$T/g0one/model.safetensors" "$T/sub$sub/model.safetensors" 2>/dev/null ||
        python3 - "$T/g0one/model.safetensors" "$T/sub$sub/model.safetensors" <<'PY' && ok || bad "sub$sub: tensors differ from gamma 0's"
import json, struct, sys
def t(p):
    b = open(p, "rb").read(); n = struct.unpack("<Q", b[:8])[0]
    return b[8 + n:]
sys.exit(0 if t(sys.argv[1]) == t(sys.argv[2]) else 1)
PY
done
unchanged in gammas
no_leftovers gammas

# ---- F16 overflow ------------------------------------------------------------
python3 "$HERE/stpair.py" f16-overflow "$T/f16" || exit 1
snapshot in "$T/f16"
mkdir -p "$T/fo"
refused f16 1 1 "tensor 'big'" "beyond what F16 can hold" "+Inf" -- \
    "$T/f16/base" "$T/f16/instruct" "$T/fo/out" --gamma 0 --cache "$T/f16.tsvd"
no_out f16 "$T/fo/out"
empty_dir "f16: OUT's parent" "$T/fo"
cache_ok f16 "$T/f16.tsvd"
# gamma 1 is Instruct itself: nothing overflows
run f16-g1 -- "$T/f16/base" "$T/f16/instruct" "$T/fo/out1" --gamma 1 --no-cache -q
expect_rc f16-g1 0
finish
