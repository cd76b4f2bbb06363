"""sthelp.py — a minimal safetensors reader for the functional tests, with
no dependency beyond the standard library (so it shares nothing with
timber's own reader).

As a module: tensors(dir) and shard_headers(dir).  As a command:

  python3 sthelp.py same-bytes DIR_A DIR_B NAME...
      exit 0 when every named tensor has the same dtype, shape and bytes in
      both checkpoints (directories or .safetensors files)
  python3 sthelp.py differ DIR_A DIR_B NAME...
      exit 0 when every named tensor's bytes differ between the two
  python3 sthelp.py poison DIR NAME INDEX
      overwrite element INDEX of tensor NAME in place with a quiet NaN of
      its dtype (BF16, F16, F32, F64); the file stays well formed
"""
import json
import os
import struct
import sys

NAN = {
    "BF16": b"\xc0\x7f",
    "F16": b"\x00\x7e",
    "F32": struct.pack("<I", 0x7FC00000),
    "F64": struct.pack("<Q", 0x7FF8000000000000),
}


def shard_files(path):
    if os.path.isfile(path):
        return [path]
    return [os.path.join(path, f) for f in sorted(os.listdir(path))
            if f.endswith(".safetensors")]


def read_header(f):
    with open(f, "rb") as fh:
        n = struct.unpack("<Q", fh.read(8))[0]
        return n, json.loads(fh.read(n))


def shard_headers(path):
    """{shard file name: (header length, header dict)}"""
    return {os.path.basename(f): read_header(f) for f in shard_files(path)}


def tensors(path):
    """{name: {"shard", "dtype", "shape", "start", "end", "data"}} where
    start/end are absolute file offsets and data the bytes."""
    out = {}
    for f in shard_files(path):
        n, h = read_header(f)
        with open(f, "rb") as fh:
            blob = fh.read()
        for name, t in h.items():
            if name == "__metadata__":
                continue
            s, e = t["data_offsets"]
            out[name] = {
                "shard": os.path.basename(f), "file": f,
                "dtype": t["dtype"], "shape": t["shape"],
                "start": 8 + n + s, "end": 8 + n + e,
                "data": blob[8 + n + s:8 + n + e],
            }
    return out


def main(argv):
    cmd = argv[1]
    if cmd in ("same-bytes", "differ"):
        a, b = tensors(argv[2]), tensors(argv[3])
        bad = 0
        for name in argv[4:]:
            if name not in a or name not in b:
                print("%s: missing" % name, file=sys.stderr)
                bad = 1
                continue
            same = (a[name]["data"] == b[name]["data"] and
                    a[name]["dtype"] == b[name]["dtype"] and
                    a[name]["shape"] == b[name]["shape"])
            if same != (cmd == "same-bytes"):
                print("%s: bytes %s" % (name, "differ" if not same
                                        else "are identical"),
                      file=sys.stderr)
                bad = 1
        return bad
    if cmd == "poison":
        t = tensors(argv[2])[argv[3]]
        nan = NAN[t["dtype"]]
        at = t["start"] + int(argv[4]) * len(nan)
        assert at + len(nan) <= t["end"]
        with open(t["file"], "r+b") as fh:
            fh.seek(at)
            fh.write(nan)
        return 0
    print("sthelp.py: unknown command %r" % cmd, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
