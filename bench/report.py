#!/usr/bin/env python3
"""bench/report.py: turns bench/run's measurements (JSON lines) into the table on
stdout, results.json and, for a full run, RESULTS.md (the notes after the marker
line of an existing RESULTS.md are kept)."""
import argparse
import json
import os
import statistics
import sys

TOOLS = {
    "backup": [("arca", "arca backup (ysql -> nfs path)"),
               ("pg_dump_fc", "pg_dump -Fc"),
               ("pg_dump_fd_j2", "pg_dump -Fd -j 2"),
               ("pg_dump_zstd", "pg_dump | zstd -3 -T2"),
               ("copy_out_seq", "floor: COPY TO /dev/null, 1 session"),
               ("copy_out_par2", "floor: COPY TO /dev/null, 2 sessions")],
    "restore": [("arca", "arca restore --jobs 2"),
                ("pg_restore_fc_j2", "pg_restore -j 2 (-Fc)"),
                ("pg_restore_fd_j2", "pg_restore -j 2 (-Fd)"),
                ("psql_plain", "psql -f plain.sql"),
                ("copy_in_seq", "floor: COPY FROM, 1 session"),
                ("copy_in_par2", "floor: COPY FROM, 2 sessions")],
}
NOTES_MARK = "<!-- notes below this line are kept when bench/run rewrites this file -->"


def label(ds):
    return "wide rows" if ds == "wide" else "pgbench scale %s" % ds


def machine():
    cores = os.cpu_count()
    mem = 0
    model = "?"
    for line in open("/proc/meminfo"):
        if line.startswith("MemTotal:"):
            mem = int(line.split()[1]) / 1048576
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    return {"cores": cores, "memory_gib": round(mem, 1), "cpu": model, "kernel": os.uname().release}


def summarize(rows):
    """dataset -> phase -> tool -> medians (and the raw walls)."""
    out = {}
    info = {}
    for r in rows:
        if r["phase"] == "dataset":
            info[r["dataset"]] = r
            continue
        out.setdefault(r["dataset"], {}).setdefault(r["phase"], {}).setdefault(r["tool"], []).append(r)
    res = {}
    for ds, phases in out.items():
        d = res[ds] = {"info": info.get(ds, {}), "backup": {}, "restore": {}}
        for phase, tools in phases.items():
            for tool, rs in tools.items():
                med = lambda k: statistics.median(x[k] for x in rs)
                d[phase][tool] = {
                    "wall_s": round(med("wall"), 3),
                    "cpu_s": round(med("cpu"), 3),
                    "server_cpu_s": round(med("srv_cpu"), 3),
                    "peak_rss_mib": round(med("rss_kib") / 1024, 1),
                    "output_mib": round(med("bytes") / 1048576, 2),
                    "walls_s": [x["wall"] for x in sorted(rs, key=lambda x: x["rep"])],
                    "reps": len(rs),
                }
    return res


def ratios(d):
    b, r = d["backup"], d["restore"]
    def q(x, y, k="wall_s"):
        return round(x[k] / y[k], 3) if x and y and y[k] else None
    ab, ar = b.get("arca"), r.get("arca")
    prs = [t for t in (r.get("pg_restore_fc_j2"), r.get("pg_restore_fd_j2")) if t]
    best_pr = min(prs, key=lambda t: t["wall_s"]) if prs else None
    return {
        # the keys
        "backup_vs_pg_dump_fc": q(ab, b.get("pg_dump_fc")),
        "backup_vs_copy_floor": q(ab, b.get("copy_out_seq")),
        "size_vs_pg_dump_fc": q(ab, b.get("pg_dump_fc"), "output_mib"),
        "restore_vs_pg_restore_j2": q(ar, best_pr),
        "peak_rss_mib": max(ab["peak_rss_mib"] if ab else 0, ar["peak_rss_mib"] if ar else 0),
        # the rest
        "backup_vs_pg_dump_fd_j2": q(ab, b.get("pg_dump_fd_j2")),
        "backup_vs_pg_dump_zstd": q(ab, b.get("pg_dump_zstd")),
        "backup_vs_copy_floor_par2": q(ab, b.get("copy_out_par2")),
        "size_vs_pg_dump_fd": q(ab, b.get("pg_dump_fd_j2"), "output_mib"),
        "size_vs_pg_dump_zstd": q(ab, b.get("pg_dump_zstd"), "output_mib"),
        "restore_vs_pg_restore_fc_j2": q(ar, r.get("pg_restore_fc_j2")),
        "restore_vs_pg_restore_fd_j2": q(ar, r.get("pg_restore_fd_j2")),
        "restore_vs_psql_plain": q(ar, r.get("psql_plain")),
        "restore_vs_copy_floor": q(ar, r.get("copy_in_seq")),
        "restore_vs_copy_floor_par2": q(ar, r.get("copy_in_par2")),
        "backup_peak_rss_mib": ab["peak_rss_mib"] if ab else None,
        "restore_peak_rss_mib": ar["peak_rss_mib"] if ar else None,
    }


TARGETS = [  # key, limit, text
    ("backup_vs_pg_dump_fc", 0.8, "backup wall <= 0.8 x pg_dump -Fc"),
    ("backup_vs_copy_floor", 1.25, "backup wall <= 1.25 x COPY-to-/dev/null floor (1 session)"),
    ("size_vs_pg_dump_fc", 1.0, "archive size <= pg_dump -Fc file"),
    ("restore_vs_pg_restore_j2", 0.8, "restore wall <= 0.8 x pg_restore -j 2 (the faster of -Fc, -Fd)"),
    ("peak_rss_mib", 256, "arca peak RSS <= 256 MiB"),
]


def fmt(v, spec="%.2f"):
    return "-" if v is None else spec % v


def text_report(res, order, meta):
    lines = []
    m = meta["machine"]
    lines.append("arca benchmark, %s; %d cores, %.0f GiB; load at start %s, at end %s"
                 % (meta["date"], m["cores"], m["memory_gib"], meta["load_start"], meta["load_end"]))
    for ds in order:
        d = res[ds]
        inf = d["info"]
        reps = max((t["reps"] for t in d["backup"].values()), default=0)
        lines.append("")
        lines.append("== %s: %d MiB database, %s tables, median of %d runs"
                     % (label(ds), inf.get("db_bytes", 0) >> 20, inf.get("tables", "?"), reps))
        lines.append("%-8s %-40s %8s %8s %8s %9s %10s" % ("phase", "tool", "wall s", "cpu s", "srv cpu", "peak MiB",
                                                         "output MiB"))
        for phase in ("backup", "restore"):
            for tool, name in TOOLS[phase]:
                t = d[phase].get(tool)
                if not t:
                    continue
                out = "%10.1f" % t["output_mib"] if t["output_mib"] else "%10s" % "-"
                lines.append("%-8s %-40s %8.2f %8.2f %8.2f %9.1f %s" % (phase, name, t["wall_s"], t["cpu_s"],
                             t["server_cpu_s"], t["peak_rss_mib"], out))
        x = d["ratios"]
        lines.append("ratios (arca / other; < 1 means arca is faster or smaller):")
        lines.append("  backup  wall: /pg_dump -Fc %s  /-Fd -j2 %s  /|zstd %s  /floor %s  /floor-par2 %s"
                     % tuple(fmt(x[k]) for k in ("backup_vs_pg_dump_fc", "backup_vs_pg_dump_fd_j2",
                                                 "backup_vs_pg_dump_zstd", "backup_vs_copy_floor",
                                                 "backup_vs_copy_floor_par2")))
        lines.append("  size       : /pg_dump -Fc %s  /-Fd %s  /|zstd %s"
                     % tuple(fmt(x[k]) for k in ("size_vs_pg_dump_fc", "size_vs_pg_dump_fd", "size_vs_pg_dump_zstd")))
        lines.append("  restore wall: /pg_restore -j2 -Fc %s  /-Fd %s  /psql -f %s  /floor %s  /floor-par2 %s"
                     % tuple(fmt(x[k]) for k in ("restore_vs_pg_restore_fc_j2", "restore_vs_pg_restore_fd_j2",
                                                 "restore_vs_psql_plain", "restore_vs_copy_floor",
                                                 "restore_vs_copy_floor_par2")))
        lines.append("  arca peak RSS: backup %s MiB, restore %s MiB"
                     % (fmt(x["backup_peak_rss_mib"], "%.1f"), fmt(x["restore_peak_rss_mib"], "%.1f")))
    lines.append("")
    lines.append("targets (2 cores, ratios from the same run):")
    lines.append("  %-66s %s" % ("", "  ".join("%8s" % ds for ds in order)))
    for key, limit, text in TARGETS:
        cells = []
        for ds in order:
            v = res[ds]["ratios"].get(key)
            cells.append("%8s" % ("-" if v is None else ("%.2f" % v if key != "peak_rss_mib" else "%.0f" % v)
                                  + (" " if v <= limit else "!")))
        lines.append("  %-66s %s" % (text, "  ".join(cells)))
    lines.append("  (! = target missed)")
    sc = meta.get("scaling")
    if sc:
        lines.append("")
        lines.append("scaling over pgbench scales %s:" % ", ".join(str(s) for s in sc["scales"]))
        for k in ("backup", "restore"):
            lines.append("  arca %-7s wall per scale unit (s): %s; linear fit r^2 = %.4f"
                         % (k, ", ".join("%.3f" % v for v in sc["%s_s_per_scale" % k]), sc["%s_r2" % k]))
        lines.append("  arca peak RSS (MiB): backup %s; restore %s"
                     % (", ".join("%.0f" % v for v in sc["backup_rss_mib"]),
                        ", ".join("%.0f" % v for v in sc["restore_rss_mib"])))
    return "\n".join(lines)


def r2(xs, ys):
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys))
    syy = sum((y - my) ** 2 for y in ys)
    if not sxx or not syy:
        return 1.0
    return sxy * sxy / (sxx * syy)


def scaling(res):
    scales = sorted((int(ds) for ds in res if ds.isdigit()))
    if len(scales) < 2:
        return None
    s = {"scales": scales}
    for k in ("backup", "restore"):
        walls = [res[str(x)][k]["arca"]["wall_s"] for x in scales]
        s["%s_wall_s" % k] = walls
        s["%s_s_per_scale" % k] = [round(w / x, 4) for w, x in zip(walls, scales)]
        s["%s_r2" % k] = round(r2(scales, walls), 4)
        s["%s_rss_mib" % k] = [res[str(x)][k]["arca"]["peak_rss_mib"] for x in scales]
    return s


def md_report(res, order, meta, text):
    m = meta["machine"]
    out = ["# arca benchmark results", "",
           "Latest full `bench/run` (written by it; the notes at the end are kept across runs).", "",
           "- date: %s (UTC start), took %s" % (meta["date"], meta.get("took", "?")),
           "- machine: %d cores (%s), %.1f GiB memory, Linux %s" % (m["cores"], m["cpu"], m["memory_gib"], m["kernel"]),
           "- load average (1, 5, 15 min) at start: %s; at end: %s" % (meta["load_start"], meta["load_end"]),
           "- server: %s, one throwaway instance on 127.0.0.1, the same for every tool; settings: "
           "defaults (fsync, full_page_writes, synchronous_commit on; wal_level replica) plus `%s`"
           % (meta["server"], meta["settings"]),
           "- arca %s: `workers = 2`, `chunk_size = 4M`, `compression = zstd:3`, ysql `jobs = 2`, restore `--jobs 2`, "
           "nfs path destination with `fsync = true`" % meta["arca"],
           "- durability: arca's destination fsyncs the archive on commit; every pg_dump output is fsynced "
           "(`sync FILE`) inside its timing. Restores create their database inside the timing "
           "(`createdb -T template0` for the PostgreSQL tools); the target is dropped and a CHECKPOINT taken "
           "before each restore, outside the timing",
           "- repetitions: %s, after one untimed warm-up backup and restore per dataset (a first restore into the "
           "fresh server also pays for creating WAL segments); tools interleaved round-robin, the order rotated "
           "each repetition; medians quoted"
           % ", ".join("%s: %d" % (label(ds), max(t["reps"] for t in res[ds]["backup"].values())) for ds in order),
           "- floors: `psql -c 'COPY t TO STDOUT' > /dev/null` for every table in one session (1 session), and "
           "tables of 32 MiB or more halved by ctid over two sessions (2 sessions); import: `\\copy t FROM file` "
           "of the same data into tables created beforehand, without indexes (outside the timing). Targets are "
           "against the 1-session floor, as the issue says; the 2-session floor is what arca's `jobs = 2` "
           "could reach at best",
           "- `psql -f plain.sql`: the `pg_dump | zstd` output decompressed beforehand (not timed)",
           "- cpu s: the tool's own user+sys (with its children); srv cpu: the server's CPU seconds over the command",
           "", "```", text, "```", ""]
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--results", required=True)
    ap.add_argument("--json", required=True)
    ap.add_argument("--md", default="-")
    ap.add_argument("--start", required=True)
    ap.add_argument("--load", default="?")
    ap.add_argument("--load-end", default="?")
    ap.add_argument("--settings", default="")
    ap.add_argument("--server", default="")
    ap.add_argument("--arca", default="")
    ap.add_argument("--took", default="")
    a = ap.parse_args()
    rows = [json.loads(l) for l in open(a.results) if l.strip()]
    res = summarize(rows)
    order = [ds for ds in ("10", "30", "50", "100", "wide") if ds in res] + \
            sorted(ds for ds in res if ds not in ("10", "30", "50", "100", "wide"))
    for ds in order:
        res[ds]["ratios"] = ratios(res[ds])
    meta = {"date": a.start, "machine": machine(), "load_start": a.load, "load_end": a.load_end,
            "settings": a.settings, "server": a.server, "arca": a.arca, "took": a.took,
            "scaling": scaling(res)}
    text = text_report(res, order, meta)
    print(text)
    targets = {}
    for key, limit, txt in TARGETS:
        targets[key] = {"limit": limit, "what": txt,
                        "met": {ds: (res[ds]["ratios"][key] is not None and res[ds]["ratios"][key] <= limit)
                                for ds in order}}
    doc = dict(meta)
    doc["targets"] = targets
    doc["datasets"] = {ds: dict(res[ds]["ratios"], dataset=label(ds), db_mib=res[ds]["info"].get("db_bytes", 0) >> 20,
                                gen_s=res[ds]["info"].get("gen_s"), backup=res[ds]["backup"],
                                restore=res[ds]["restore"]) for ds in order}
    with open(a.json, "w") as f:
        json.dump(doc, f, indent=1, sort_keys=False)
        f.write("\n")
    if a.md != "-":
        notes = ""
        if os.path.exists(a.md):
            old = open(a.md).read()
            if NOTES_MARK in old:
                notes = old.split(NOTES_MARK, 1)[1]
        with open(a.md, "w") as f:
            f.write(md_report(res, order, meta, text))
            f.write(NOTES_MARK)
            f.write(notes if notes else "\n")


if __name__ == "__main__":
    sys.exit(main())
