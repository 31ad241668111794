#!/usr/bin/env python3
"""Compares two dumps of tests/tools/cql.py / cql.js, line by line and value by value.

  cqldiff.py A B [TTL_SLACK]

Equal when both have the same rows with the same values, write times included; a
"ttl(c)" may differ by up to TTL_SLACK seconds (default 120: a TTL counts down between
the two reads). Prints the first differences (at most 10) and exits 1 when they differ.
"""
import json
import sys


def load(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def main():
    if len(sys.argv) not in (3, 4):
        raise SystemExit(__doc__)
    a, b = load(sys.argv[1]), load(sys.argv[2])
    slack = int(sys.argv[3]) if len(sys.argv) == 4 else 120
    out = []
    if len(a) != len(b):
        out.append("%d rows in %s, %d in %s" % (len(a), sys.argv[1], len(b), sys.argv[2]))
    for i, (x, y) in enumerate(zip(a, b)):
        if x.keys() != y.keys():
            out.append("row %d: columns %s vs %s" % (i + 1, sorted(x), sorted(y)))
            continue
        for k in sorted(x):
            u, v = x[k], y[k]
            if k.startswith("ttl(") and u is not None and v is not None and abs(int(u) - int(v)) <= slack:
                continue
            if u != v:
                out.append("row %d (%s) %s: %s vs %s" % (i + 1, x.get("table"), k, json.dumps(u), json.dumps(v)))
    for line in out[:10]:
        print(line)
    sys.exit(1 if out else 0)


if __name__ == "__main__":
    main()
