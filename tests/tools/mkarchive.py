#!/usr/bin/env python3
"""Builds an arca format-2 archive holding only directory objects, as the backup
engine would lay it out, for tests that need a huge or hostile manifest fast.

  mkarchive.py OUT.arca PIPELINE NAMES [CHUNK_SIZE]
      NAMES: a file with one object name per line, hex-encoded (raw bytes).
      Also writes OUT.manifest.json, the catalogue copy (byte-identical to the
      archive's MANIFEST.json), and prints the backup id.
"""
import io, json, sys, tarfile, time


def enc(raw):
    """arca's canonical percent-encoding (names.h)."""
    out, i = [], 0
    while i < len(raw):
        c = raw[i]
        n = 1 if c < 0x80 else utf8_len(raw, i)
        c1 = n == 2 and c == 0xC2 and raw[i + 1] < 0xA0
        if c == 0x25 or c < 0x20 or c == 0x7F or n == 0 or c1:
            out.append("%%%02X" % c)
            i += 1
            continue
        out.append(raw[i:i + n].decode())
        i += n
    return "".join(out)


def utf8_len(b, i):
    for n in (2, 3, 4):
        try:
            b[i:i + n].decode("utf-8")
            return n
        except UnicodeDecodeError:
            continue
    return 0


def main():
    out, pipeline, names = sys.argv[1], sys.argv[2], sys.argv[3]
    chunk = int(sys.argv[4]) if len(sys.argv) > 4 else 1 << 20
    bid = time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + ".000Z-abcdef"
    header = {"format": "arca", "format_version": 2, "backup_id": bid, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "arca_version": "test", "pipeline": pipeline,
              "source": {"name": "s", "plugin": "files", "plugin_version": "test", "namespace": "files", "mode": "full", "info": {}},
              "compression": "zstd:3", "chunk_size": chunk, "hash": "sha256"}
    recs = []
    for line in open(names):
        raw = bytes.fromhex(line.strip())
        recs.append(json.dumps({"name": enc(raw), "kind": "dir", "size": 0, "chunks": 0, "mode": 0o755, "mtime": 1},
                               separators=(",", ":"), ensure_ascii=True))
    c = lambda o: json.dumps(o, separators=(",", ":"), ensure_ascii=True)
    totals = {"objects": len(recs), "members": 0, "raw_bytes": 0, "stored_bytes": 0}
    text = ('{"format":"arca-manifest","format_version":2,\n"header":%s,\n"totals":%s,\n"objects":[\n%s\n],\n"members":[\n\n]}\n'
            % (c(header), c(totals), ",\n".join(recs))).encode()
    hdr = json.dumps(header, indent=2, ensure_ascii=True).encode()
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as t:
        for name, data in (("arca.json", hdr), ("MANIFEST.json", text)):
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            t.addfile(ti, io.BytesIO(data))
    open(out[:-len(".arca")] + ".manifest.json", "wb").write(text)
    print(bid)


main()
