"""plan_check.py — checks of `timber plan --json` for tests/dist/plan.sh.

  plan_check.py plan PLAN.json INSPECT.json N BOUND
      the plan of N parts covers Instruct's tensors (INSPECT, from
      `timber inspect --json`) exactly once, its per-part totals are the
      sums of its tensors' estimates, the spread of the parts' weights
      (flops + 50 a byte) is at most the largest tensor's; BOUND > 0:
      the largest part's flops and bytes are each <= BOUND x the mean
  plan_check.py shared PLAN.json INSPECT.json
      some shard of Instruct holds tensors of two or more parts (so those
      parts write into that one file)
  plan_check.py followed PLAN.json DIR
      DIR/part-I.json, the report of part I of 3, lists as refined (not
      elsewhere) exactly the tensors the plan gives part I
Exit 0 when all hold; otherwise the failed assertion on stderr.
"""
import json
import sys


def plan(argv):
    plan = json.load(open(argv[0]))
    ins = json.load(open(argv[1]))
    n, bound = int(argv[2]), float(argv[3])
    names = [t["name"] for t in (ins["tensors"] if isinstance(ins, dict) else ins)]
    assert plan["parts"] == n, f"parts {plan['parts']} != {n}"
    pp = plan["per_part"]
    assert [p["part"] for p in pp] == list(range(n)), "per_part is not parts 0..N-1"
    ts = plan["tensors"]
    got = sorted(t["name"] for t in ts)
    assert got == sorted(names), f"the plan's tensors are not Instruct's: {len(got)} against {len(names)}"
    assert len(set(got)) == len(got), "a tensor is in the plan twice"
    for t in ts:
        assert 0 <= t["part"] < n, f"{t['name']}: part {t['part']}"
        if t["action"] != "refined":
            assert t["flops"] == 0, f"{t['name']}: {t['action']} but {t['flops']} flops"
    for p in pp:
        mine = [t for t in ts if t["part"] == p["part"]]
        assert p["tensors"] == len(mine), f"part {p['part']}: {p['tensors']} tensors, {len(mine)} listed"
        assert p["refined"] == sum(t["action"] == "refined" for t in mine), f"part {p['part']}: refined count"
        for k in ("flops", "bytes"):
            assert p[k] == sum(t[k] for t in mine), f"part {p['part']}: {k} is not the sum of its tensors'"
    # The greedy split's bound on every pair: the spread of the weights
    # (flops + 50 a byte) is at most the largest tensor's weight.
    w = lambda x: x["flops"] + 50 * x["bytes"]
    spread = max(w(p) for p in pp) - min(w(p) for p in pp)
    largest = max(w(t) for t in ts)
    assert spread <= largest, f"spread {spread} > the largest tensor {largest}"
    if bound:
        for k in ("flops", "bytes"):
            mean = sum(p[k] for p in pp) / n
            worst = max(p[k] for p in pp)
            assert worst <= bound * mean, f"{k}: the largest part {worst} > {bound} x the mean {mean:.0f}"
            print(f"{k}: max/mean {worst / mean:.3f}", file=sys.stderr)


def shared(argv):
    plan = json.load(open(argv[0]))
    ins = json.load(open(argv[1]))
    shard = {t["name"]: t["shard"] for t in ins["tensors"]}
    writers = {}
    for t in plan["tensors"]:
        writers.setdefault(shard[t["name"]], set()).add(t["part"])
    most = max(len(w) for w in writers.values())
    assert most >= 2, "every shard is written by one part only"
    print(f"up to {most} parts write into one shard", file=sys.stderr)


def followed(argv):
    plan = json.load(open(argv[0]))
    for i in range(3):
        want = sorted(t["name"] for t in plan["tensors"] if t["part"] == i and t["action"] == "refined")
        rep = json.load(open(f"{argv[1]}/part-{i}.json"))
        got = sorted(t["name"] for t in rep["tensors"] if t.get("action") == "refined" and not t.get("elsewhere"))
        assert got == want, f"part {i} refined {got}, the plan says {want}"


if __name__ == "__main__":
    try:
        {"plan": plan, "shared": shared, "followed": followed}[sys.argv[1]](sys.argv[2:])
    except AssertionError as e:
        sys.exit(str(e))
