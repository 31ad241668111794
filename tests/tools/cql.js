#!/usr/bin/env node
// CQL test client on DataStax's Node.js driver (protocol v4), independent of arca's own
// client and of the Python driver:
//   node cql.js HOST PORT USER PASSWORD dump KEYSPACE
// prints every row of every table of KEYSPACE as one canonical JSON line, by the rules
// tests/tools/cql.py documents (values canonicalised from the column types the server
// reports), so that the two drivers' dumps of the same data compare equal byte for byte.
// Exit 1 with the driver's message on a failure.
'use strict';
const path = require('path');
const cassandra = require(path.join(__dirname, '..', '..', 'node_modules', 'cassandra-driver'));
const { types } = cassandra;
const T = types.dataTypes;

function hexDouble(x) {
  const b = Buffer.alloc(8);
  b.writeDoubleBE(x);
  return b.toString('hex');
}

// sort key of a canonical value: its JSON with object keys sorted
function sortedJson(v) {
  if (Array.isArray(v)) return '[' + v.map(sortedJson).join(',') + ']';
  if (v && typeof v === 'object') {
    return '{' + Object.keys(v).sort().map((k) => JSON.stringify(k) + ':' + sortedJson(v[k])).join(',') + '}';
  }
  return JSON.stringify(v);
}
const byJson = (f) => (a, b) => { const x = sortedJson(f(a)), y = sortedJson(f(b)); return x < y ? -1 : x > y ? 1 : 0; };

function canon(v, t) {
  if (v === null || v === undefined) return null;
  if (v instanceof types.Duration) return `${v.months},${v.days},${v.nanoseconds.toString()}`; // custom type in v4
  switch (t.code) {
    case T.boolean: return v;
    case T.int: case T.smallint: case T.tinyint: case T.bigint: case T.counter: case T.varint:
      return v.toString();
    case T.float: case T.double: return hexDouble(Number(v));
    case T.decimal: { // "unscaled,scale" from the driver's decimal text
      const m = /^(-?)(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/.exec(v.toString());
      if (!m) throw new Error(`decimal ${v.toString()}`);
      const frac = m[3] || '';
      return `${BigInt(m[1] + m[2] + frac)},${frac.length - Number(m[4] || 0)}`;
    }
    case T.blob: return v.toString('hex');
    case T.ascii: case T.text: case T.varchar: return v;
    case T.timestamp: return String(v.getTime());
    case T.uuid: case T.timeuuid: case T.inet: return v.toString();
    case T.date: return String(Math.round(Date.UTC(v.year, v.month - 1, v.day) / 86400000));
    case T.time: return v.getTotalNanoseconds().toString();
    case T.duration: return `${v.months},${v.days},${v.nanoseconds.toString()}`;
    case T.list: return v.map((x) => canon(x, t.info));
    case T.set: return Array.from(v, (x) => canon(x, t.info)).sort(byJson((x) => x));
    case T.map: return Array.from(v.entries(), ([k, x]) => [canon(k, t.info[0]), canon(x, t.info[1])]).sort(byJson((p) => p[0]));
    case T.tuple: return t.info.map((et, i) => canon(v.get(i), et));
    case T.udt: {
      const o = {};
      for (const f of t.info.fields) o[f.name] = canon(v[f.name], f.type);
      return o;
    }
    default: return String(v);
  }
}

const quote = (n) => '"' + n.replace(/"/g, '""') + '"';

async function dump(client, ks) {
  const cols = new Map();
  const rs = await client.execute('SELECT table_name, column_name, kind, type FROM system_schema.columns WHERE keyspace_name = ?', [ks], { prepare: true });
  for (const r of rs.rows) {
    if (!cols.has(r.table_name)) cols.set(r.table_name, []);
    cols.get(r.table_name).push(r);
  }
  const lines = [];
  for (const table of Array.from(cols.keys()).sort()) {
    const names = cols.get(table).map((c) => c.column_name);
    const timed = cols.get(table).filter((c) => (c.kind === 'regular' || c.kind === 'static') && !/^(list|set|map)</.test(c.type) && c.type !== 'counter').map((c) => c.column_name);
    const sel = names.map(quote);
    for (const n of timed) sel.push(`WRITETIME(${quote(n)})`, `TTL(${quote(n)})`);
    const q = `SELECT ${sel.join(', ')} FROM ${quote(ks)}.${quote(table)}`;
    let pageState;
    do {
      const res = await client.execute(q, [], { fetchSize: 1000, pageState });
      for (const row of res.rows) {
        const d = { table };
        for (let i = 0; i < names.length; i++) d[names[i]] = canon(row.get(i), res.columns[i].type);
        for (let k = 0; k < timed.length; k++) {
          d[`writetime(${timed[k]})`] = canon(row.get(names.length + 2 * k), { code: T.bigint });
          d[`ttl(${timed[k]})`] = canon(row.get(names.length + 2 * k + 1), { code: T.int });
        }
        lines.push(sortedJson(d));
      }
      pageState = res.pageState;
    } while (pageState);
  }
  lines.sort();
  for (const l of lines) process.stdout.write(l + '\n');
}

async function main() {
  const [host, port, user, password, cmd, ks] = process.argv.slice(2);
  if (cmd !== 'dump' || !ks) {
    process.stderr.write('usage: node cql.js HOST PORT USER PASSWORD dump KEYSPACE\n');
    process.exit(2);
  }
  const client = new cassandra.Client({
    contactPoints: [`${host}:${port}`], localDataCenter: 'datacenter1',
    authProvider: new cassandra.auth.PlainTextAuthProvider(user, password),
    protocolOptions: { maxVersion: 4 }, encoding: { map: Map, set: Set },
  });
  try {
    await client.connect();
    await dump(client, ks);
  } catch (e) {
    process.stderr.write(`cql.js: ${e.name}: ${String(e.message).split('\n')[0]}\n`);
    process.exitCode = 1;
  } finally {
    await client.shutdown();
  }
}
main();
