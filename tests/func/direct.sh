#!/usr/bin/env bash
# Direct writes (src/safetensors.c, "direct writes"): the output written
# with O_DIRECT for the whole aligned blocks of every put and verbatim
# copy over 64 KiB (here the MLP tensors are copied, --exclude) is byte
# for byte the output written through the page cache (TB_DIRECT_IO=0), for a
# one-machine run, a run split into parts and finalized, a gamma sweep,
# and an OUT on tmpfs; and on a file system that takes O_DIRECT those
# bytes really went around the page cache (fincore).
#
#   usage: direct.sh TIMBER TIMBER_GEN
# Prints "N passed, M failed".
if [ $# -ne 2 ]; then
    echo "usage: $0 TIMBER TIMBER_GEN" >&2
    exit 2
fi
TIMBER=$1
GEN=$2
. "$(dirname "$0")/lib.sh"

# Tensors of 2-6 MB (q_proj 2048 x 1024 bf16, the MLP 3072 x 1024, the
# 2048-row embedding) at unaligned offsets, and the small norms between;
# the MLP's 36 of the 64 MB are copied (--exclude mlp), the rest refined.
gen pair --preset qwen3-0.6b --layers 2 --vocab 2048 --max-shard-size 24M
P=$TMP/pair

run() { # NAME OUT ARGS...: refine, expecting exit 0
    local name=$1 out=$2
    shift 2
    tb "$name" "$P/base" "$P/instruct" "$out" --no-cache -q --exclude mlp "$@"
    expect_rc "$name" 0
}

TB_DIRECT_IO=0 run buffered "$TMP/buffered" --gamma 0.2 --threads 2
run direct "$TMP/direct" --gamma 0.2 --threads 2

# The large tensors' blocks went around the page cache: of a direct
# run's shards well under all is cached, of a buffered run's nearly all
# (nothing has read either yet).
fs=$(stat -f -c %T "$TMP")
case $fs in
ext2/ext3 | ext4 | xfs | btrfs)
    resident() { # the cached and the total bytes of DIR's shards
        local f res=0 size=0
        for f in "$1"/model-*.safetensors; do
            res=$((res + $(fincore --bytes --noheadings --output RES "$f")))
            size=$((size + $(stat -c %s "$f")))
        done
        echo "$res $size"
    }
    read -r dres dsize < <(resident "$TMP/direct")
    read -r bres bsize < <(resident "$TMP/buffered")
    if [ "$dres" -lt $((dsize * 6 / 10)) ] &&
        [ "$bres" -gt $((bsize * 9 / 10)) ]; then
        ok
    else
        bad "cached after a direct run: $dres of $dsize bytes;" \
            "after a buffered one: $bres of $bsize"
    fi
    ;;
*) echo "($TMP is on $fs: residency not checked)" ;;
esac

# (compared only now: comparing reads the files into the page cache)
check "direct and buffered outputs differ" \
    same_tree "$TMP/direct" "$TMP/buffered"

# A gamma sweep: every gamma's shards, each the buffered run's bytes.
run sweep "$TMP/sweep" --gamma 0.2,0.5 --threads 2
check "gamma 0.2 of a sweep differs" \
    same_tree "$TMP/sweep/gamma-0.2" "$TMP/buffered"

# Parts write in place into shared shards: adjacent tensors of different
# parts share the blocks at their edges.
for i in 0 1 2; do
    run "part$i" "$TMP/parts" --gamma 0.2 --part "$i/3" --threads 1
done
tb finalize finalize "$TMP/parts"
expect_rc finalize 0
check "parts + finalize differ from one run" \
    same_tree "$TMP/parts" "$TMP/buffered"

# tmpfs (O_DIRECT refused by older kernels, taken by newer ones): the same.
if [ -d /dev/shm ] && [ -w /dev/shm ]; then
    shm=$(mktemp -d /dev/shm/timber-direct-XXXXXX)
    run shm "$shm/out" --gamma 0.2 --threads 2
    check "an OUT on tmpfs differs" same_tree "$shm/out" "$TMP/buffered"
    rm -rf "$shm"
fi

finish
