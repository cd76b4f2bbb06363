#!/usr/bin/env bash
# inputs.sh — inputs that cannot be read and outputs that cannot be
# written, and non-finite values.  Each: exit 1, one line naming the file
# (and for NaN/Inf the tensor and the element), no OUT, nothing left in
# OUT's parent, the cache valid.
#
#   - a shard that is a dangling symbolic link (with and without an index),
#     a FIFO (refused at once, never waited on), a file without read
#     permission (run as 'nobody' through setpriv when root: root reads
#     anything), an unreadable config file (found only when copying)
#   - OUT's parent read-only (a read-only bind mount when root), not
#     writable (as 'nobody', or as an ordinary user), under /proc
#   - NaN in Instruct, +Inf in Base
#   usage: inputs.sh TIMBER TIMBER_GEN REFCHECK
. "$(dirname "$0")/lib.sh"

HERE=$(cd "$(dirname "$0")" && pwd)
if ! "$GEN" "$T/pair" --preset tiny --seed 4 --variants none \
    >"$T/gen.log" 2>&1; then
    echo "timber-gen failed: $(cat "$T/gen.log")"
    exit 1
fi
B=$T/pair/base
I=$T/pair/instruct
C=$T/c.tsvd
# A valid cache to keep valid.
mkdir -p "$T/warm"
run warm -- "$B" "$I" "$T/warm/out" --cache "$C" -q
expect_rc warm 0

# expect_fail NAME WHAT... -- INSTRUCT OUTPARENT [ARGS]: a run that must
# fail with exit 1 and one line containing every WHAT.
expect_fail() {
    local name=$1
    shift
    local whats=()
    while [ "$1" != "--" ]; do
        whats+=("$1")
        shift
    done
    shift
    local inst=$1 parent=$2
    shift 2
    mkdir -p "$parent"
    run "$name" -- "$B" "$inst" "$parent/out" --cache "$C" "$@"
    expect_rc "$name" 1
    one_line "$name" "${whats[@]}"
    no_out "$name" "$parent/out"
    no_temps "$name" "$parent"
    cache_ok "$name" "$C"
}

# copy_instruct DIR: a private copy of Instruct.
copy_instruct() {
    mkdir -p "$1"
    cp "$I"/* "$1/"
}

# ---- unreadable inputs ---------------------------------------------------
copy_instruct "$T/dangling"
rm "$T/dangling/model.safetensors"
ln -s nowhere.safetensors "$T/dangling/model.safetensors"
expect_fail dangling "$T/dangling/model.safetensors" "dangling symbolic link" \
    -- "$T/dangling" "$T/p-dangling"

copy_instruct "$T/dangling-idx"
mv "$T/dangling-idx/model.safetensors" "$T/dangling-idx/model-00001-of-00001.safetensors"
python3 - "$T/dangling-idx" <<'PY'
import json, sys, struct
d = sys.argv[1]
with open(d + "/model-00001-of-00001.safetensors", "rb") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    h = json.loads(f.read(n))
wm = {k: "model-00001-of-00001.safetensors" for k in h if k != "__metadata__"}
with open(d + "/model.safetensors.index.json", "w") as f:
    json.dump({"metadata": {}, "weight_map": wm}, f)
PY
rm "$T/dangling-idx/model-00001-of-00001.safetensors"
ln -s gone "$T/dangling-idx/model-00001-of-00001.safetensors"
expect_fail dangling-index "$T/dangling-idx/model.safetensors.index.json" \
    "model-00001-of-00001.safetensors" "does not exist" \
    -- "$T/dangling-idx" "$T/p-dangling-idx"

copy_instruct "$T/fifo"
rm "$T/fifo/model.safetensors"
mkfifo "$T/fifo/model.safetensors"
RC=0
timeout 30 "$TIMBER" "$B" "$T/fifo" "$T/p-fifo/out" --cache "$C" \
    >"$T/fifo.out" 2>"$T/fifo.err" </dev/null || RC=$?
if [ "$RC" -eq 124 ]; then
    bad "fifo: timber waited on a FIFO shard"
else
    expect_rc fifo 1
    one_line fifo "$T/fifo/model.safetensors" "not a regular file"
fi

copy_instruct "$T/noconfig"
chmod 000 "$T/noconfig/config.json"

# as_nobody: the command prefix that runs as an unprivileged user, if the
# permission tests can run at all (root reads anything).
AS=()
if [ "$(id -u)" = 0 ]; then
    if command -v setpriv >/dev/null 2>&1 && id nobody >/dev/null 2>&1 &&
        setpriv --reuid=nobody --regid="$(id -g nobody)" --clear-groups \
            test -x "$TIMBER" 2>/dev/null; then
        AS=(setpriv --reuid=nobody --regid="$(id -g nobody)" --clear-groups)
    fi
else
    AS=(env)
fi
if [ ${#AS[@]} -gt 0 ]; then
    # Everything the unprivileged run needs to reach is world-readable.
    chmod -R a+rX "$T/pair" "$T/noconfig"
    chmod 000 "$T/noconfig/config.json"
    copy_instruct "$T/noread"
    chmod -R a+rX "$T/noread"
    chmod 000 "$T/noread/model.safetensors"
    mkdir -p "$T/nobody" "$T/p-noread" "$T/p-noconfig" "$T/p-ro"
    chmod 777 "$T/nobody" "$T/p-noread" "$T/p-noconfig"
    chmod 555 "$T/p-ro"
    for c in noread noconfig ro; do
        case $c in
        noread) inst=$T/noread what=("$T/noread/model.safetensors" "Permission denied") ;;
        noconfig) inst=$T/noconfig what=("$T/noconfig/config.json" "Permission denied") ;;
        ro) inst=$I what=("$T/p-ro/out: cannot create its temporary directory" "Permission denied") ;;
        esac
        RC=0
        "${AS[@]}" env XDG_CACHE_HOME="$T/nobody" "$TIMBER" "$B" "$inst" \
            "$T/p-$c/out" --cache "$T/nobody/c.tsvd" \
            >"$T/perm-$c.out" 2>"$T/perm-$c.err" </dev/null || RC=$?
        expect_rc "perm-$c" 1
        one_line "perm-$c" "${what[@]}"
        no_out "perm-$c" "$T/p-$c/out"
        no_temps "perm-$c" "$T/p-$c"
        [ -e "$T/nobody/c.tsvd" ] && cache_ok "perm-$c" "$T/nobody/c.tsvd"
    done
else
    skip "unreadable files and a non-writable OUT parent: running as root without setpriv or a 'nobody' user, so permissions cannot be denied"
    # Root: the config file is still found only when copying... if the
    # permission is ignored the run succeeds; nothing to check.
fi

# ---- OUT's parent cannot be written -------------------------------------
if [ "$(id -u)" = 0 ] && mkdir -p "$T/robind" &&
    mount --bind "$T/robind" "$T/robind" 2>/dev/null; then
    at_exit "umount '$T/robind'"
    if mount -o remount,ro,bind "$T/robind" 2>/dev/null; then
        expect_fail ro-mount "$T/robind/out: cannot create" "Read-only file system" \
            -- "$I" "$T/robind"
    else
        skip "read-only bind mount: remount,ro refused"
    fi
else
    skip "read-only bind mount: not root, or mount --bind is not permitted here"
fi
# Under /proc nothing can be created, by anyone.
run proc -- "$B" "$I" /proc/timber-test-out --cache "$C"
expect_rc proc 1
one_line proc "/proc/timber-test-out: cannot create"
no_out proc /proc/timber-test-out

# ---- NaN and Inf ------------------------------------------------------------
python3 "$HERE/stpair.py" nan-instruct "$T/nan" || exit 1
python3 "$HERE/stpair.py" inf-base "$T/inf" || exit 1
mkdir -p "$T/p-nan" "$T/p-inf"
run nan -- "$T/nan/base" "$T/nan/instruct" "$T/p-nan/out" --cache "$T/nan.tsvd"
expect_rc nan 1
one_line nan "$T/nan/instruct/model.safetensors" "tensor 'layer.w'" \
    "element [2, 3] is NaN"
no_out nan "$T/p-nan/out"
empty_dir "nan: OUT's parent" "$T/p-nan"
cache_ok nan "$T/nan.tsvd"
run inf -- "$T/inf/base" "$T/inf/instruct" "$T/p-inf/out" --cache "$T/inf.tsvd"
expect_rc inf 1
one_line inf "$T/inf/base/model.safetensors" "tensor 'layer.w'" \
    "element [4, 1] is +Inf"
no_out inf "$T/p-inf/out"
empty_dir "inf: OUT's parent" "$T/p-inf"
cache_ok inf "$T/inf.tsvd"

finish
