#!/usr/bin/env bash
# disk_full.sh — the disk fills up while timber writes the output or the
# cache (a file, or a cache directory's own file).  Expected: exit 1, one
# line naming the file and "No space left on
# device", no OUT, nothing left in OUT's parent, the cache still valid
# (`timber cache verify` exits 0) and usable (the next run takes the
# records it holds and writes the same bytes as an undisturbed run).
#
# A second pair with tensors of megabytes (a one-layer Qwen3-0.6B shape)
# fills the disk during the large writes that go to the file direct,
# from a thread of their own (write-behind, safetensors.c): the failure
# of a write in flight must surface the same way.
#
# The disk is made full two ways: an LD_PRELOAD shim (tests/faults/
# failwrite.c) that fails writes to chosen files with ENOSPC after N bytes,
# which works for anyone; and, when running as root where mount works, a
# real 300 KiB tmpfs.
#   usage: disk_full.sh TIMBER TIMBER_GEN REFCHECK FAILWRITE_SO
. "$(dirname "$0")/lib.sh"

[ -n "$SHIM" ] && [ -f "$SHIM" ] || skip_all "no failwrite shim given"

if ! "$GEN" "$T/pair" --preset tiny --seed 3 >"$T/gen.log" 2>&1; then
    echo "timber-gen failed: $(cat "$T/gen.log")"
    exit 1
fi
B=$T/pair/base
I=$T/pair/instruct
REF=$T/ref/out

# The undisturbed run every other output is compared with.
mkdir -p "$T/ref"
run ref -- "$B" "$I" "$T/ref/out" --no-cache -q
expect_rc ref 0
refcheck ref "$B" "$I" "$T/ref/out" 0.2

# case NAME MATCH AFTER WHAT: one run with writes to files matching MATCH
# failing after AFTER bytes; WHAT is the file the message must name.
# Leaves the cache in $T/NAME.cache/c.tsvd.
disk_full_case() {
    local name=$1 match=$2 after=$3 what=$4
    local P=$T/$name.parent C=$T/$name.cache
    mkdir -p "$P" "$C"
    run "$name" LD_PRELOAD="$SHIM" FAILWRITE_MATCH="$match" \
        FAILWRITE_AFTER="$after" -- "$B" "$I" "$P/out" --cache "$C/c.tsvd"
    expect_rc "$name" 1
    one_line "$name" "$what" "No space left on device"
    no_out "$name" "$P/out"
    empty_dir "$name: OUT's parent" "$P"
    # Valid, or not there at all (a cache that never got its header is
    # removed again).
    [ -e "$C/c.tsvd" ] && cache_ok "$name" "$C/c.tsvd"
    # Usable: the next run (no fault) succeeds, takes what the cache
    # holds, and writes exactly the undisturbed output.
    local n
    n=0
    [ -e "$C/c.tsvd" ] && n=$(cache_records "$C/c.tsvd")
    run "$name-again" -- "$B" "$I" "$P/out" --cache "$C/c.tsvd"
    expect_rc "$name-again" 0
    if [ "$(hits "$name-again")" = "${n:-x}" ]; then
        ok
    else
        bad "$name-again: $(hits "$name-again") tensors from the cache, the file held ${n:-?} records"
    fi
    same_tree "$name-again" "$REF" "$P/out"
    cache_ok "$name-again" "$C/c.tsvd"
}

# 1. The output's shard: the full disk is under OUT (its temporary).
disk_full_case out-shard timber-tmp 100000 "$T/out-shard.parent/.out.timber-tmp."
# 2. The output's extra files and index: room for the shard only.
shard_bytes=$(stat -c %s "$T/ref/out/model.safetensors")
disk_full_case out-extras timber-tmp $((shard_bytes + 100)) "$T/out-extras.parent/.out.timber-tmp."
# 3. The cache: its header and a few records fit, then the disk is full.
disk_full_case cache c.tsvd 9000 "$T/cache.cache/c.tsvd"
# 4. The cache cannot even get its header.
disk_full_case cache-header c.tsvd 10 "$T/cache-header.cache/c.tsvd"

# 4a. The output's shard of the large pair: the disk fills 3 MB into a
# shard of 38 MB written in direct 1-4 MiB pieces.
if "$GEN" "$T/big" --preset qwen3-0.6b --layers 1 --vocab 512 --seed 5 \
    >"$T/gen-big.log" 2>&1; then
    B=$T/big/base I=$T/big/instruct REF=$T/big-ref/out
    mkdir -p "$T/big-ref"
    run big-ref -- "$B" "$I" "$REF" --no-cache -q
    expect_rc big-ref 0
    disk_full_case out-shard-direct timber-tmp 3000000 \
        "$T/out-shard-direct.parent/.out.timber-tmp."
    B=$T/pair/base I=$T/pair/instruct REF=$T/ref/out
else
    bad "timber-gen (large pair) failed: $(cat "$T/gen-big.log")"
fi

# 4b. A cache directory (--cache DIR/): the run's own file fills after a
# few records, or cannot get its header (then it is removed again); either
# way the directory is a valid cache and the next run takes what it holds.
dir_full_case() {
    local name=$1 after=$2
    local P=$T/$name.parent C=$T/$name.cache
    mkdir -p "$P"
    run "$name" LD_PRELOAD="$SHIM" FAILWRITE_MATCH=.timber-cache \
        FAILWRITE_AFTER="$after" -- "$B" "$I" "$P/out" --cache "$C/"
    expect_rc "$name" 1
    one_line "$name" "$C/" ".timber-cache" "No space left on device"
    no_out "$name" "$P/out"
    empty_dir "$name: OUT's parent" "$P"
    local n files
    n=$(cache_records "$C")
    files=$(find "$C" -name '*.timber-cache' | wc -l)
    if [ "$after" -lt 32 ]; then
        [ "$files" -eq 0 ] && ok || bad "$name: $files files left without a header"
    else
        [ "$files" -eq 1 ] && [ "${n:-0}" -gt 0 ] && ok ||
            bad "$name: $files files, ${n:-?} records, expected 1 file with some"
    fi
    cache_ok "$name" "$C"
    run "$name-again" -- "$B" "$I" "$P/out" --cache "$C"
    expect_rc "$name-again" 0
    if [ "$(hits "$name-again")" = "${n:-x}" ]; then
        ok
    else
        bad "$name-again: $(hits "$name-again") tensors from the cache, the directory held ${n:-?} records"
    fi
    same_tree "$name-again" "$T/ref/out" "$P/out"
}
dir_full_case cachedir 9000
dir_full_case cachedir-header 10

# 5. A real full file system: a 300 KiB tmpfs (root only).
M=$T/tmpfs
mkdir -p "$M"
if [ "$(id -u)" = 0 ] && mount -t tmpfs -o size=300k tmpfs "$M" 2>/dev/null; then
    at_exit "umount '$M'"
    # The output (385 KB) does not fit.
    mkdir -p "$M/p" "$T/tmpfs-cache"
    run tmpfs-out -- "$B" "$I" "$M/p/out" --cache "$T/tmpfs-cache/c.tsvd"
    expect_rc tmpfs-out 1
    one_line tmpfs-out "$M/p/" "No space left on device"
    no_out tmpfs-out "$M/p/out"
    empty_dir "tmpfs-out: OUT's parent" "$M/p"
    cache_ok tmpfs-out "$T/tmpfs-cache/c.tsvd"
    # The cache on the full file system: room for a few records only.
    rm -rf "$M/p"
    mkdir -p "$M/c" "$T/tmpfs-parent"
    head -c $((300 * 1024 - 12 * 1024)) /dev/zero >"$M/filler" 2>/dev/null
    run tmpfs-cache -- "$B" "$I" "$T/tmpfs-parent/out" --cache "$M/c/c.tsvd"
    expect_rc tmpfs-cache 1
    one_line tmpfs-cache "$M/c/c.tsvd" "No space left on device"
    no_out tmpfs-cache "$T/tmpfs-parent/out"
    empty_dir "tmpfs-cache: OUT's parent" "$T/tmpfs-parent"
    cache_ok tmpfs-cache "$M/c/c.tsvd"
    rm -f "$M/filler"
    run tmpfs-cache-again -- "$B" "$I" "$T/tmpfs-parent/out" --cache "$M/c/c.tsvd"
    expect_rc tmpfs-cache-again 0
    same_tree tmpfs-cache-again "$T/ref/out" "$T/tmpfs-parent/out"
else
    skip "real full file system: not root, or mount -t tmpfs is not permitted here"
fi

finish
