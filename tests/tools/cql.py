#!/usr/bin/env python3
"""CQL test client on DataStax's Python driver (protocol v4), independent of arca's own.

  cql.py HOST PORT USER PASSWORD exec FILE      runs FILE's statements (each ends with ';' at
                                                the end of a line; '--' lines are comments)
  cql.py HOST PORT USER PASSWORD ddl KEYSPACE   prints the driver's own DDL of KEYSPACE
                                                (export_as_string: an independent judge of
                                                a schema arca recreated)
  cql.py HOST PORT USER PASSWORD dump KEYSPACE  prints every row of every table of KEYSPACE as
                                                one canonical JSON line (tests/tools/cql.js
                                                prints the same lines from the Node driver)
  cql.py HOST PORT USER PASSWORD rows KEYSPACE:DIR
                                                the same lines from arca's row-format objects
                                                DIR/TABLE.N.rows (docs/YCQL.md), each cell's bytes
                                                decoded by the driver's own type for its column:
                                                equal to `dump` when arca kept every byte

Canonical values (the same rules in cql.js): integers of any size as strings, decimals as "unscaled,scale",
floating point as the hex of its IEEE 754 double, blobs as hex, timestamps as milliseconds,
dates as days since the epoch, times as nanoseconds, uuids and inet as text, durations as
"months,days,nanoseconds", sets as sorted lists, maps as lists of [key, value] sorted by key,
tuples as lists, UDTs as objects. Each regular or static cell that has a write time (not
collections, not counters) adds "writetime(c)" and "ttl(c)" (null without a TTL). Lines are sorted.
Exit 1 with the driver's message on a failure (a wrong password says so).
"""
import datetime
import decimal
import ipaddress
import json
import os
import struct
import sys
import uuid

from cassandra.auth import PlainTextAuthProvider
from cassandra.cluster import Cluster
from cassandra.util import Date, Duration, Time


def js(v):
    """The canonical JSON text of a value (cql.js writes the same)."""
    return json.dumps(v, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canon(v):
    if v is None:
        return None
    if isinstance(v, bool):
        return v
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return struct.pack(">d", v).hex()
    if isinstance(v, decimal.Decimal):
        sign, digits, exp = v.as_tuple()
        unscaled = int("".join(map(str, digits)) or "0") * (-1 if sign else 1)
        return "%d,%d" % (unscaled, -exp)
    if isinstance(v, (bytes, bytearray)):
        return bytes(v).hex()
    if isinstance(v, str):
        return v
    if isinstance(v, uuid.UUID):
        return str(v)
    if isinstance(v, datetime.datetime):
        if v.tzinfo is not None:
            v = v.astimezone(datetime.timezone.utc).replace(tzinfo=None)
        return str((v - datetime.datetime(1970, 1, 1)) // datetime.timedelta(milliseconds=1))
    if isinstance(v, Date):
        return str(v.days_from_epoch)
    if isinstance(v, datetime.date):
        return str((v - datetime.date(1970, 1, 1)).days)
    if isinstance(v, Time):
        return str(v.nanosecond_time)
    if isinstance(v, datetime.time):
        return str(((v.hour * 60 + v.minute) * 60 + v.second) * 10**9 + v.microsecond * 1000)
    if isinstance(v, Duration):
        return "%d,%d,%d" % (v.months, v.days, v.nanoseconds)
    if isinstance(v, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
        return str(v)
    if hasattr(v, "_fields"):  # a UDT (a named tuple)
        return {f: canon(getattr(v, f)) for f in v._fields}
    if isinstance(v, tuple):
        return [canon(x) for x in v]
    if isinstance(v, (set, frozenset)) or type(v).__name__ in ("SortedSet",):
        return sorted((canon(x) for x in v), key=js)
    if isinstance(v, dict) or hasattr(v, "items"):
        return sorted(([canon(k), canon(x)] for k, x in v.items()), key=lambda p: js(p[0]))
    if isinstance(v, list):
        return [canon(x) for x in v]
    return str(v)


def quote(name):
    return '"' + name.replace('"', '""') + '"'


def dump(session, ks):
    cols = {}
    for r in session.execute("SELECT table_name, column_name, kind, type FROM system_schema.columns "
                             "WHERE keyspace_name = %s", [ks]):
        cols.setdefault(r.table_name, []).append(r)
    lines = []
    for table in sorted(cols):
        names = [c.column_name for c in cols[table]]
        timed = [c.column_name for c in cols[table] if c.kind in ("regular", "static") and
                 not c.type.startswith(("list<", "set<", "map<")) and c.type != "counter"]
        sel = [quote(n) for n in names]
        for n in timed:
            sel += ["WRITETIME(%s)" % quote(n), "TTL(%s)" % quote(n)]
        q = "SELECT %s FROM %s.%s" % (", ".join(sel), quote(ks), quote(table))
        for row in session.execute(q):
            d = {"table": table}
            for i, n in enumerate(names):
                d[n] = canon(row[i])
            for k, n in enumerate(timed):
                d["writetime(%s)" % n] = canon(row[len(names) + 2 * k])
                d["ttl(%s)" % n] = canon(row[len(names) + 2 * k + 1])
            lines.append(js(d))
    for line in sorted(lines):
        print(line)


def rows(session, arg):
    """Decodes arca's row format (docs/YCQL.md) with this driver's deserializers."""
    ks, d = arg.split(":", 1)
    lines = []
    for fn in sorted(os.listdir(d)):
        if not fn.endswith(".rows"):
            continue
        table = fn.rsplit(".", 2)[0]
        b = open(os.path.join(d, fn), "rb").read()
        off = 0

        def take(n):
            nonlocal off
            if off + n > len(b):
                raise ValueError("%s: cut at %d" % (fn, off))
            v = b[off:off + n]
            off += n
            return v

        def u(fmt):
            f = struct.Struct(">" + fmt)
            return f.unpack(take(f.size))[0]

        def string():
            return take(u("H")).decode()

        if take(4) != b"ARCQ" or u("B") != 1:
            raise ValueError("%s: not a version 1 rows object" % fn)
        u("B")
        cols = []
        for _ in range(u("H")):
            name, typ = string(), string()
            kind, meta = u("B"), u("B")
            cols.append((name, typ, kind, meta))
        types = session.execute("SELECT %s FROM %s.%s LIMIT 1" % (
            ", ".join(quote(c[0]) for c in cols), quote(ks), quote(table))).column_types
        count = 0
        while True:
            tag = take(1)
            if tag == b"E":
                if u("q") != count or off != len(b):
                    raise ValueError("%s: end marker count or trailing bytes" % fn)
                break
            if tag != b"R":
                raise ValueError("%s: bad tag" % fn)
            row = {"table": table}
            for (name, _, _, meta), t in zip(cols, types):
                n = u("i")
                v = None if n < 0 else t.from_binary(take(n), 4)
                row[name] = canon(v)
                if meta:
                    wt, ttl = u("q"), u("i")
                    row["writetime(%s)" % name] = None if wt == -2**63 else str(wt)
                    row["ttl(%s)" % name] = None if ttl == 0 else str(ttl)
            count += 1
            lines.append(js(row))
    for line in sorted(lines):
        print(line)


def run_file(session, path):
    stmt = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not stmt and (not line.strip() or line.lstrip().startswith("--")):
                continue
            stmt.append(line)
            if line.rstrip().endswith(";"):
                session.execute("".join(stmt).rstrip().rstrip(";"), timeout=60)
                stmt = []
    if stmt:
        raise SystemExit("cql.py: %s: the last statement has no ';'" % path)


def main():
    if len(sys.argv) != 7 or sys.argv[5] not in ("exec", "dump", "ddl", "rows"):
        raise SystemExit(__doc__)
    host, port, user, password, cmd, arg = sys.argv[1:]
    cluster = Cluster([host], port=int(port), protocol_version=4, connect_timeout=10,
                      auth_provider=PlainTextAuthProvider(user, password))
    try:
        session = cluster.connect()
        if cmd == "exec":
            run_file(session, arg)
        elif cmd == "ddl":
            cluster.refresh_schema_metadata()
            if arg not in cluster.metadata.keyspaces:
                raise KeyError("no keyspace %s" % arg)
            print(cluster.metadata.keyspaces[arg].export_as_string())
        elif cmd == "rows":
            rows(session, arg)
        else:
            dump(session, arg)
    except Exception as e:  # the driver's message, one line
        print("cql.py: %s: %s" % (type(e).__name__, e), file=sys.stderr)
        sys.exit(1)
    finally:
        cluster.shutdown()


if __name__ == "__main__":
    main()
