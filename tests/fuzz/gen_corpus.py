#!/usr/bin/env python3
"""gen_corpus.py — writes the seed corpus of timber's fuzz targets.

usage: tests/fuzz/gen_corpus.py [DIR]     (default: tests/fuzz/corpus)

Deterministic; the files it writes are committed, so the fuzzers and the
replay tests never need to run it.  Rerun it after changing the seeds and
commit the result.  One directory per target:

  safetensors/  whole shard files: valid ones of every shape of interest
                (each dtype, scalars, zero-sized dims, metadata, empty
                header, padding, many tensors) and a few malformed ones
  index/        model.safetensors.index.json texts for the fixture of
                fuzz_index.c (shards with tensors a, b and c, plus traps)
  cache/        SVD cache files (format CACHE_VERSION below): header only,
                valid records of both cut sides, an unfinished last record,
                damage in the middle, other format versions, a bad magic
"""
import json
import os
import shutil
import struct
import sys
import zlib

root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "corpus")

BITS = {"BOOL": 8, "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6, "U8": 8, "I8": 8,
        "F8_E5M2": 8, "F8_E4M3": 8, "F8_E8M0": 8, "F8_E4M3FNUZ": 8,
        "F8_E5M2FNUZ": 8, "I16": 16, "U16": 16, "F16": 16, "BF16": 16,
        "I32": 32, "U32": 32, "F32": 32, "C64": 64, "F64": 64, "I64": 64,
        "U64": 64}


def out(target, name, data):
    d = os.path.join(root, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def shard(tensors, meta=None, pad=True, extra=b""):
    """tensors: [(name, dtype, shape)]; data bytes are a simple ramp."""
    header, at, data = {}, 0, b""
    if meta is not None:
        header["__metadata__"] = meta
    for name, dt, shape in tensors:
        n = 1
        for s in shape:
            n *= s
        size = n * BITS[dt] // 8
        header[name] = {"dtype": dt, "shape": shape,
                        "data_offsets": [at, at + size]}
        data += bytes((at + i) * 7 & 0xff for i in range(size))
        at += size
    h = json.dumps(header, separators=(",", ":")).encode()
    if pad:
        h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + data + extra


def raw(header, dlen=0):
    """A shard from a header text as is, with dlen data bytes."""
    return struct.pack("<Q", len(header)) + header + bytes(dlen)


def safetensors_seeds():
    t = "safetensors"
    out(t, "empty_object", shard([]))
    out(t, "one_f32", shard([("w", "F32", [2, 3])]))
    out(t, "bf16_matrix", shard([("model.layers.0.q_proj.weight", "BF16",
                                  [4, 4])], {"format": "pt"}))
    out(t, "scalar", shard([("s", "F64", [])]))
    out(t, "zero_dim", shard([("z", "F16", [0, 5]), ("y", "F32", [1])]))
    out(t, "f4_pair", shard([("f4", "F4", [2, 3])]))
    out(t, "f6", shard([("f6", "F6_E2M3", [4])]))
    out(t, "every_dtype", shard([("t_" + d.lower(), d, [2, 4])
                                 for d in sorted(BITS, key=lambda d:
                                                 -BITS[d])]))
    out(t, "metadata", shard([("a", "U8", [3])],
                             {"format": "pt", "k": "v", "e": ""}))
    out(t, "metadata_null", raw(
        b'{"__metadata__":null,"a":{"dtype":"I8","shape":[1],'
        b'"data_offsets":[0,1]}}', 1))
    out(t, "unpadded", shard([("w", "BF16", [3])], pad=False))
    out(t, "many", shard([("t%03d" % i, "F32", [1, 2]) for i in range(64)]))
    out(t, "unicode_name", shard([("w\u00e9\u4e2d\U0001f600", "F32", [1])]))
    out(t, "escaped_name", shard([("a\"b\\c/d\u0001", "F32", [1])]))
    out(t, "nested_shape", shard([("w", "BF16", [2, 1, 3, 1])]))
    out(t, "big_dims_zero", shard([("w", "F32", [0, 9007199254740991])]))
    # Malformed: each refused for one reason.
    out(t, "bad_trailing", shard([("w", "F32", [1])], extra=b"xx"))
    out(t, "bad_overlap", raw(
        b'{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},'
        b'"b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}', 8))
    out(t, "bad_hole", raw(
        b'{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},'
        b'"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}', 12))
    out(t, "bad_dup", raw(
        b'{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},'
        b'"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', 8))
    out(t, "bad_float_offset", raw(
        b'{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4.0e0]}}', 4))
    out(t, "bad_huge_shape", raw(
        b'{"a":{"dtype":"F64","shape":[4294967296,4294967296],'
        b'"data_offsets":[0,0]}}'))
    out(t, "bad_len", struct.pack("<Q", 2 ** 64 - 1) + b"{}")
    out(t, "bad_short", b"\x02\x00\x00")
    out(t, "bad_utf8", raw(
        b'{"\xc0\xaf":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}}'))
    out(t, "bad_missing_field", raw(
        b'{"a":{"dtype":"F32","data_offsets":[0,0]}}'))


INDEX_SHARDS = {"a": "model-00001-of-00002.safetensors",
                "b": "model-00001-of-00002.safetensors",
                "c": "model-00002-of-00002.safetensors"}


def index_seeds():
    t = "index"

    def idx(name, wm, meta=None, raw=None):
        doc = {"metadata": meta if meta is not None else {"total_size": 30},
               "weight_map": wm}
        out(t, name, raw if raw is not None else
            (json.dumps(doc, indent=2) + "\n").encode())

    idx("valid", INDEX_SHARDS)
    idx("valid_compact", INDEX_SHARDS, {})
    idx("valid_total_parameters", INDEX_SHARDS,
        {"total_size": 30, "total_parameters": 9})
    idx("wrong_shard", dict(INDEX_SHARDS, c="model-00001-of-00002.safetensors"))
    idx("missing_tensor", {"a": INDEX_SHARDS["a"], "c": INDEX_SHARDS["c"]})
    idx("unknown_tensor", dict(INDEX_SHARDS, d=INDEX_SHARDS["c"]))
    idx("dup_shard", dict(INDEX_SHARDS, x="dup.safetensors"))
    idx("bad_shard", dict(INDEX_SHARDS, x="bad.safetensors"))
    idx("fifo", dict(INDEX_SHARDS, x="fifo.safetensors"))
    idx("dangling", dict(INDEX_SHARDS, x="dangling.safetensors"))
    idx("subdir", dict(INDEX_SHARDS, x="sub"))
    idx("config_as_shard", dict(INDEX_SHARDS, x="config.json"))
    idx("index_as_shard", dict(INDEX_SHARDS,
                               x="model.safetensors.index.json"))
    idx("dotdot", dict(INDEX_SHARDS, x=".."))
    idx("slash", dict(INDEX_SHARDS, x="../model/dup.safetensors"))
    idx("nonexistent", dict(INDEX_SHARDS, x="model-00003-of-00003.safetensors"))
    idx("empty_map", {})
    idx("number_value", dict(INDEX_SHARDS, x=3))
    out(t, "not_object", b"[1, 2, 3]\n")
    out(t, "no_map", b'{"metadata": {}}\n')
    out(t, "map_not_object", b'{"weight_map": ["a"]}\n')
    out(t, "dup_key", b'{"weight_map": {"a": "model-00001-of-00002.safetensors",'
        b' "a": "model-00001-of-00002.safetensors", "b": '
        b'"model-00001-of-00002.safetensors", "c": '
        b'"model-00002-of-00002.safetensors"}}')
    out(t, "empty", b"")
    out(t, "truncated", (json.dumps({"weight_map": INDEX_SHARDS}))[:40]
        .encode())


# The cache format these seeds are written in (src/cache.h): its version
# and how a record stores its basis ("<d": float64 since version 2; "<f":
# float32 in version 1); since version 3 each record names its route
# (backend.h: cpu/dsytrd-mrrr is 0x10001).  Keep in step with cache.h and
# regenerate.
CACHE_VERSION = 3
ROUTE = 0x10001
BASIS_FORMAT = "<d"


def cache_header(version=CACHE_VERSION, fingerprint=0x1234abcd, magic=b"TIMBERSV"):
    h = magic + struct.pack("<IIQI", version, 32, fingerprint, 1)
    return h + struct.pack("<I", zlib.crc32(h))


def cache_record(name, shape, rows, cols, k, dtb=14, dti=14,
                 crcb=0x1111, crci=0x2222, tv=1, route=ROUTE):
    S = min(rows, cols)
    side = 1 if S - k <= k else 0
    p = S - k if side else k
    s = [float(S - i) for i in range(S)]
    body = struct.pack("<I", len(name.encode())) + name.encode()
    body += struct.pack("<I", len(shape)) + b"".join(
        struct.pack("<Q", d) for d in shape)
    body += bytes([dtb, dti, 0, 0]) + struct.pack("<IIII", crcb, crci, tv,
                                                            route)
    body += struct.pack("<QQQQ", rows, cols, S, k)
    body += struct.pack("<dd", 1.5, 0.25) + bytes([side]) + bytes(7)
    body += struct.pack("<Q", p)
    body += b"".join(struct.pack("<d", v) for v in s)
    body += b"".join(struct.pack(BASIS_FORMAT, 0.5 if (i % 3) else -0.25)
                     for i in range(S * p))
    rec = struct.pack("<IQ", 0x43455254, len(body)) + body
    return rec + struct.pack("<I", zlib.crc32(rec))


def cache_seeds():
    t = "cache"
    h = cache_header()
    r1 = cache_record("model.layers.0.q_proj.weight", [4, 3], 4, 3, 2)
    r2 = cache_record("w", [2, 5], 2, 5, 1, dtb=17, dti=17)
    r3 = cache_record("head", [3, 6], 3, 6, 1)          # head side, p = 1
    r4 = cache_record("zero", [3, 3], 3, 3, 0)          # D = 0: k = 0, p = 0
    r5 = cache_record("full", [2, 2], 2, 2, 2)          # k = r, p = 0
    r6 = cache_record("t3d", [2, 3, 2], 2, 6, 1)
    out(t, "header_only", h)
    out(t, "one_record", h + r1)
    out(t, "records", h + r1 + r2 + r3 + r4 + r5 + r6)
    out(t, "same_name_twice", h + r2 + cache_record("w", [2, 5], 2, 5, 1,
                                                   crcb=7, crci=8))
    out(t, "unfinished_tail", h + r1 + r2[:len(r2) // 2])
    out(t, "unfinished_head", h + r1 + r2[:7])
    dam = bytearray(r2)
    dam[len(dam) // 2] ^= 0x40
    out(t, "damaged_middle", h + r1 + bytes(dam) + r3)
    out(t, "garbage_between", h + r1 + b"garbage!" + r3)
    out(t, "old_version", cache_header(version=0))
    out(t, "previous_version", cache_header(version=CACHE_VERSION - 1) + r1)
    out(t, "new_version", cache_header(version=CACHE_VERSION + 1) + r1)
    out(t, "bad_magic", cache_header(magic=b"TIMBERSW"))
    bad_crc = bytearray(h)
    bad_crc[20] ^= 1
    out(t, "bad_header_crc", bytes(bad_crc) + r1)
    out(t, "short", h[:20])
    out(t, "empty", b"")
    out(t, "other_transform", h + cache_record("v", [3, 2], 3, 2, 1, tv=7))
    out(t, "other_route", h + cache_record("v", [3, 2], 3, 2, 1,
                                           route=0x20001))
    out(t, "big_length", h + struct.pack("<IQ", 0x43455254, 2 ** 63) +
        bytes(16))


for target in ("safetensors", "index", "cache"):
    shutil.rmtree(os.path.join(root, target), ignore_errors=True)
safetensors_seeds()
index_seeds()
cache_seeds()
for target in ("safetensors", "index", "cache"):
    n = len(os.listdir(os.path.join(root, target)))
    print("%s: %d seeds" % (target, n))
