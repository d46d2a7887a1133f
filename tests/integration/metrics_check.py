#!/usr/bin/python3
"""Checks on pglens' HTTP output for the shell integration tests (system python, stdlib only).

  metrics_check.py histograms FILE            every histogram series: buckets cumulative, the +Inf
                                              bucket equal to _count; prints "name count" per
                                              histogram family (summed over its series)
  metrics_check.py value FILE NAME [k=v ...]  sum of the samples named NAME whose labels include
                                              the given ones
  metrics_check.py pgbench FILE CALLS         /api/fingerprints JSON in FILE: each tpcb-like
                                              statement has exactly CALLS calls; prints the total
                                              calls over all fingerprints
"""
import json
import math
import re
import sys

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$')
LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*,?')


def parse(path):
    """Text exposition → (types {family: type}, samples [(name, {labels}, value)])."""
    types, samples = {}, []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            if line.startswith("# TYPE "):
                _, _, name, kind = line.split(maxsplit=3)
                types[name] = kind
                continue
            if line.startswith("#"):
                continue
            m = SAMPLE.match(line)
            if not m:
                raise SystemExit(f"unparseable sample line: {line!r}")
            name, labels_text, value = m.groups()
            labels = {}
            pos = 0
            labels_text = labels_text or ""
            while pos < len(labels_text):
                lm = LABEL.match(labels_text, pos)
                if not lm:
                    raise SystemExit(f"unparseable labels in: {line!r}")
                labels[lm.group(1)] = lm.group(2)
                pos = lm.end()
            samples.append((name, labels, float(value)))
    return types, samples


def check_histograms(path):
    types, samples = parse(path)
    problems = []
    totals = {}
    for family, kind in sorted(types.items()):
        if kind != "histogram":
            continue
        series = {}  # labels without le → {"buckets": [(le, v)], "count": v, "sum": v}
        for name, labels, value in samples:
            if name not in (family + "_bucket", family + "_count", family + "_sum"):
                continue
            key = tuple(sorted((k, v) for k, v in labels.items() if k != "le"))
            s = series.setdefault(key, {"buckets": []})
            if name.endswith("_bucket"):
                le = labels.get("le")
                if le is None:
                    problems.append(f"{family}{dict(key)}: bucket without le")
                    continue
                s["buckets"].append((math.inf if le == "+Inf" else float(le), value))
            elif name.endswith("_count"):
                s["count"] = value
            else:
                s["sum"] = value
        total = 0
        for key, s in series.items():
            where = f"{family}{dict(key)}"
            buckets = sorted(s["buckets"])
            if not buckets or buckets[-1][0] != math.inf:
                problems.append(f"{where}: no +Inf bucket")
                continue
            if "count" not in s or "sum" not in s:
                problems.append(f"{where}: _count or _sum missing")
                continue
            for (le_a, a), (le_b, b) in zip(buckets, buckets[1:]):
                if b < a:
                    problems.append(f"{where}: bucket le={le_b} ({b}) < le={le_a} ({a})")
            if buckets[-1][1] != s["count"]:
                problems.append(f"{where}: +Inf bucket {buckets[-1][1]} != _count {s['count']}")
            total += s["count"]
        totals[family] = total
    for p in problems:
        print("PROBLEM", p)
    for family, total in totals.items():
        print(family, int(total))
    return 1 if problems else 0


def value(path, name, wanted):
    _, samples = parse(path)
    total = 0.0
    found = False
    for n, labels, v in samples:
        if n == name and all(labels.get(k) == val for k, val in wanted.items()):
            total += v
            found = True
    if not found:
        print(f"no sample {name} with {wanted}", file=sys.stderr)
        return 1
    print(int(total) if total == int(total) else total)
    return 0


# The tpcb-like script's statements, as pglens normalizes them (simple, extended and prepared).
TPCB = [
    "BEGIN",
    "UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2",
    "SELECT abalance FROM pgbench_accounts WHERE aid = $1",
    "UPDATE pgbench_tellers SET tbalance = tbalance + $1 WHERE tid = $2",
    "UPDATE pgbench_branches SET bbalance = bbalance + $1 WHERE bid = $2",
    "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES ($1, $2, $3, $4, CURRENT_TIMESTAMP)",
    "END",
]


def pgbench(path, calls):
    with open(path, encoding="utf-8") as f:
        doc = json.load(f)
    rows = doc["fingerprints"]
    by_query = {}
    for r in rows:
        by_query[r["query"]] = by_query.get(r["query"], 0) + r["calls"]
        fp = r["fingerprint"]
        if not re.fullmatch(r"[0-9a-f]{16}", fp):
            print(f"bad fingerprint {fp!r}")
            return 1
    bad = [f"{q!r}: {by_query.get(q)} calls" for q in TPCB if by_query.get(q) != calls]
    if bad:
        for b in bad:
            print("MISMATCH", b)
        return 1
    print(sum(r["calls"] for r in rows))
    return 0


def main(argv):
    if len(argv) >= 3 and argv[1] == "histograms":
        return check_histograms(argv[2])
    if len(argv) >= 4 and argv[1] == "value":
        return value(argv[2], argv[3], dict(a.split("=", 1) for a in argv[4:]))
    if len(argv) == 4 and argv[1] == "pgbench":
        return pgbench(argv[2], int(argv[3]))
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
