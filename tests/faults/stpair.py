#!/usr/bin/env python3
"""stpair.py — small hand-made Base/Instruct pairs for the fault and
limit tests (tests/faults/*.sh), where timber-gen's realistic pairs do
not have the shape or the values a case needs.

usage: stpair.py CASE DIR [N]

Writes DIR/base/model.safetensors and DIR/instruct/model.safetensors
(plus a config.json in each).  Values are deterministic (seeded), so
every run of a case writes the same bytes.

cases:
  nan-instruct   Instruct's "layer.w" F32 [8, 6] holds a NaN at [2, 3]
  inf-base       Base's "layer.w" BF16 [5, 7] holds +Inf at [4, 1]
  many           N tensors (default 100,000) "t.NNNNNN" F32 [2, 2], every
                 delta non-zero
  zero-dim       "z.rows" F32 [0, 8] and "z.cols" BF16 [8, 0] (empty), and
                 "z.ok" F32 [4, 3]
  thin           "row" BF16 [1, 300], "col" BF16 [300, 1], "row32" F32
                 [1, 5], "col16" F16 [7, 1], "sq" F32 [1, 1]
  single         "w" F32 [40, 30] and "b" BF16 [33, 65]: each delta has a
                 single non-zero entry
  identical      Base and Instruct byte-identical: "w" BF16 [16, 24], "v"
                 F32 [9, 4], "n" F32 [16]
  gamma          a delta of full rank with a spread spectrum: "w" F32
                 [24, 16], "v" BF16 [10, 40], "u" F16 [12, 12]
  f16-overflow   "big" F16 [4, 4] in Instruct (values up to 65000), F32 in
                 Base: at gamma 0 the refined values reach ~1.1e5, beyond
                 F16; and "ok" F32 [4, 4]
  ctrl-names     tensors named with a newline, ESC [31m, a tab and a
                 backslash-x, one of them with a shape differing from
                 Base's (a warning), in layers 0 and 1
  huge-meta      Instruct's metadata holds one value that brings its
                 header to just under the reader's 100,000,000-byte
                 limit: the output's header (timber adds its own keys)
                 would be over it
"""
import json
import math
import os
import random
import struct
import sys

BITS = {"F32": 32, "BF16": 16, "F16": 16, "F64": 64}


def f32_bits(v):
    return struct.unpack("<I", struct.pack("<f", v))[0]


def encode(dt, vals):
    if dt == "F32":
        return b"".join(struct.pack("<f", v) for v in vals)
    if dt == "F64":
        return b"".join(struct.pack("<d", v) for v in vals)
    if dt == "F16":
        return b"".join(struct.pack("<e", v) for v in vals)
    if dt == "BF16":
        out = bytearray()
        for v in vals:
            u = f32_bits(v)
            if (u & 0x7fffffff) > 0x7f800000:
                h = (u >> 16) | 0x40
            else:
                h = (u + 0x7fff + ((u >> 16) & 1)) >> 16
            out += struct.pack("<H", h & 0xffff)
        return bytes(out)
    raise ValueError(dt)


def write_shard(path, tensors, meta=None):
    """tensors: list of (name, dtype, shape, values)."""
    header, blobs, at = {"__metadata__": dict(meta or {"format": "pt"})}, [], 0
    for name, dt, shape, vals in tensors:
        data = encode(dt, vals)
        n = 1
        for d in shape:
            n *= d
        assert len(data) == n * BITS[dt] // 8, (name, len(data))
        header[name] = {"dtype": dt, "shape": shape,
                        "data_offsets": [at, at + len(data)]}
        blobs.append(data)
        at += len(data)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def pair(d, base, inst, inst_meta=None):
    for side, ts in (("base", base), ("instruct", inst)):
        write_shard(os.path.join(d, side, "model.safetensors"), ts,
                    inst_meta if side == "instruct" else None)
        with open(os.path.join(d, side, "config.json"), "w") as f:
            f.write('{"side": "%s"}\n' % side)


def normal(rng, n, scale=0.02):
    return [rng.gauss(0.0, scale) for _ in range(n)]


def delta_pair(rng, name, dt, shape, scale=0.02, dscale=0.003):
    n = 1
    for d in shape:
        n *= d
    b = normal(rng, n, scale)
    i = [x + rng.gauss(0.0, dscale) for x in b]
    return (name, dt, shape, b), (name, dt, shape, i)


def main():
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    case, d = sys.argv[1], sys.argv[2]
    count = int(sys.argv[3]) if len(sys.argv) == 4 else 100000
    rng = random.Random(case)
    if case in ("nan-instruct", "inf-base"):
        dt, shape, at = (("F32", [8, 6], (2, 3)) if case == "nan-instruct"
                         else ("BF16", [5, 7], (4, 1)))
        b, i = delta_pair(rng, "layer.w", dt, shape)
        bad = list(i[3] if case == "nan-instruct" else b[3])
        bad[at[0] * shape[1] + at[1]] = (math.nan if case == "nan-instruct"
                                         else math.inf)
        ok_b, ok_i = delta_pair(rng, "layer.ok", "F32", [4, 4])
        if case == "nan-instruct":
            pair(d, [b, ok_b], [(i[0], i[1], i[2], bad), ok_i])
        else:
            pair(d, [(b[0], b[1], b[2], bad), ok_b], [i, ok_i])
    elif case == "many":
        base, inst = [], []
        for k in range(count):
            v = [rng.uniform(-1, 1) for _ in range(4)]
            w = [x + 0.01 * (j + 1) * (1 if (k + j) % 3 else -1)
                 for j, x in enumerate(v)]
            base.append(("t.%06d" % k, "F32", [2, 2], v))
            inst.append(("t.%06d" % k, "F32", [2, 2], w))
        pair(d, base, inst)
    elif case == "zero-dim":
        b, i = delta_pair(rng, "z.ok", "F32", [4, 3])
        empty = [("z.rows", "F32", [0, 8], []), ("z.cols", "BF16", [8, 0], [])]
        pair(d, empty + [b], empty + [i])
    elif case == "thin":
        base, inst = [], []
        for name, dt, shape in (("row", "BF16", [1, 300]),
                                ("col", "BF16", [300, 1]),
                                ("row32", "F32", [1, 5]),
                                ("col16", "F16", [7, 1]),
                                ("sq", "F32", [1, 1])):
            b, i = delta_pair(rng, name, dt, shape)
            base.append(b)
            inst.append(i)
        pair(d, base, inst)
    elif case == "single":
        base, inst = [], []
        for name, dt, shape, at in (("w", "F32", [40, 30], 517),
                                    ("b", "BF16", [33, 65], 1000)):
            n = shape[0] * shape[1]
            v = normal(rng, n)
            w = list(v)
            w[at] += 0.5
            base.append((name, dt, shape, v))
            inst.append((name, dt, shape, w))
        pair(d, base, inst)
    elif case == "identical":
        ts = [("w", "BF16", [16, 24], normal(rng, 16 * 24)),
              ("v", "F32", [9, 4], normal(rng, 36)),
              ("n", "F32", [16], normal(rng, 16))]
        pair(d, ts, ts)
    elif case == "gamma":
        base, inst = [], []
        for name, dt, shape in (("w", "F32", [24, 16]),
                                ("v", "BF16", [10, 40]),
                                ("u", "F16", [12, 12])):
            b, i = delta_pair(rng, name, dt, shape, dscale=0.01)
            base.append(b)
            inst.append(i)
        pair(d, base, inst)
    elif case == "f16-overflow":
        # D = diag(1e6, -6e4, -5e4, -5.5e4): eRank ~1.8, k = 2, the tail
        # holds two of the -5e4-ish components; O = W_I - T reaches about
        # 60000 + 55000 on the diagonal.
        wi = [0.0] * 16
        wb = [0.0] * 16
        for j, (i_, d_) in enumerate(((65000.0, 1e6), (60000.0, -6e4),
                                      (60000.0, -5e4), (60000.0, -5.5e4))):
            wi[5 * j] = i_
            wb[5 * j] = i_ - d_
        ok_b, ok_i = delta_pair(rng, "ok", "F32", [4, 4])
        pair(d, [("big", "F32", [4, 4], wb), ok_b],
             [("big", "F16", [4, 4], wi), ok_i])
    elif case == "ctrl-names":
        base, inst = [], []
        for name, shape in (("model.layers.0.evil\nname.weight", [6, 5]),
                            ("model.layers.0.\x1b[31mred.weight", [6, 5]),
                            ("model.layers.1.tab\there\\x41.weight", [5, 6])):
            b, i = delta_pair(rng, name, "F32", shape)
            base.append(b)
            inst.append(i)
        # a shape mismatch: copied with a warning naming it
        b, _ = delta_pair(rng, "model.layers.1.grown\nvocab.weight", "F32",
                          [4, 4])
        _, i = delta_pair(rng, "model.layers.1.grown\nvocab.weight", "F32",
                          [5, 4])
        pair(d, base + [b], inst + [i])
    elif case == "huge-meta":
        b, i = delta_pair(rng, "w", "F32", [4, 4])
        probe = {"format": "pt", "pad": ""}
        write_shard(os.path.join(d, "probe.safetensors"), [i], probe)
        with open(os.path.join(d, "probe.safetensors"), "rb") as f:
            n = struct.unpack("<Q", f.read(8))[0]
        os.remove(os.path.join(d, "probe.safetensors"))
        # up to 8 bytes of padding: stay 16 below the limit
        pad = 100000000 - n - 16
        pair(d, [b], [i], {"format": "pt", "pad": "x" * pad})
    else:
        sys.exit("stpair.py: unknown case '%s'" % case)


main()
