#!/usr/bin/env python3
"""inspect_expect.py — what `strata inspect` must print, computed from what was written.

test_inspect.sh writes the reference order events into segments (bench_segment) and
regenerates the very same events as NDJSON (`strata gen` with the same defaults). This
helper derives from those events, from the files on disk (sizes) and from its own reading
of the segment footer (segment_format.h) what each inspect output must say, value by value.

  inspect_expect.py check EVENTS PLAN    runs every check in PLAN, one a line:
      dir-text DATADIR OUT [SUFFIX]      the listing (SUFFIX ends the total line)
      dir-json DATADIR OUT               --json of a data directory
      seg-text SEG OUT                   the summary of one segment
      seg-json SEG OUT                   --json of one segment
      rows SEG OUT N                     --rows N of one segment
    (fields separated by tabs) and prints "FAIL: <line>: <first difference>" for each
    wrong output, then "N passed, M failed"; exits 1 when one failed.
  inspect_expect.py damage SEG COLUMN GRANULE OUT
    writes to OUT a copy of SEG with one byte flipped in the middle of that data block and
    prints "offset nrows ngranules": the block's offset and SEG's footer figures.
(One process for all checks: loading the events is most of the cost.)
"""
import datetime
import json
import os
import struct
import sys

DAY_MS = 86400000
SCHEMA = [("ts", "timestamp"), ("event_id", "uint64"), ("user_id", "uint64"),
          ("country", "string"), ("category", "string"), ("status", "string"),
          ("device", "string"), ("amount", "float64"), ("quantity", "int32"),
          ("version", "uint64")]
WIDTH = {"timestamp": 8, "uint64": 8, "float64": 8, "int32": 4}
ORDER_BY = ["country", "category", "status", "device", "ts"]
HOUR_MS = 3600000
ENCODINGS = {1: "const", 2: "for", 3: "delta", 4: "delta-of-delta", 16: "float-const",
             17: "decimal", 18: "byte-shuffle"}
CODECS = ["none", "lz4", "zstd"]


class Mismatch(Exception):
    pass


def expect(cond, msg):
    if not cond:
        raise Mismatch(msg)


def load_events(path):
    """Events grouped by day partition name ("2024-01-01")."""
    by_day = {}
    for e in json.loads("[" + ",".join(open(path).read().splitlines()) + "]"):
        by_day.setdefault(e["ts"] // DAY_MS, []).append(e)
    return {partition_name(d * DAY_MS): v for d, v in by_day.items()}


def partition_name(ts):
    day = datetime.datetime.fromtimestamp(ts // DAY_MS * 86400, datetime.timezone.utc)
    return day.strftime("%Y-%m-%d")


def iso(ts):
    s, ms = divmod(ts, 1000)
    t = datetime.datetime.fromtimestamp(s, datetime.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S") + ".%03dZ" % ms


def footer(path):
    """The segment's footer, read per segment_format.h."""
    b = open(path, "rb").read()
    foff, flen, _, version, magic = struct.unpack_from("<QQQI4s", b, len(b) - 32)
    expect(magic == b"SEGE" and version == 2, "%s: not a version 2 segment" % path)
    f, p = b[foff:foff + flen], 0

    def take(fmt):
        nonlocal p
        v = struct.unpack_from("<" + fmt, f, p)
        p += struct.calcsize("<" + fmt)
        return v

    def ref():
        off, stored, raw, codec, enc, _ = take("QIIBBQ")
        return {"offset": off, "stored": stored, "raw": raw, "codec": codec, "encoding": enc}

    nrows, granule_rows, ngranules, min_time, max_time = take("QIIqq")
    ncols, time_col, norder = take("HHH")
    order = take("H" * norder)
    cols = []
    for _ in range(ncols):
        typ, nlen = take("BB")
        cols.append({"type": typ, "name": f[p:p + nlen].decode()})
        p += nlen
    for c in cols:
        (flags,) = take("B")
        c["dict"] = ref() if flags & 1 else None
        c["bitmaps"] = ref() if flags & 1 else None
        c["granules"] = []
        for _ in range(ngranules):
            r = ref()
            take("QQB")
            c["granules"].append(r)
    return {"nrows": nrows, "granule_rows": granule_rows, "ngranules": ngranules,
            "min_time": min_time, "max_time": max_time, "time_col": cols[time_col]["name"],
            "order_by": [cols[i]["name"] for i in order], "cols": cols, "size": len(b)}


def col_expect(events, ft, name, typ):
    """What inspect must report for one column of a segment holding events."""
    c = next(c for c in ft["cols"] if c["name"] == name)
    vals = [e[name] for e in events]
    enc, codecs = {}, {}
    for g in sorted(c["granules"], key=lambda g: g["encoding"]):  # inspect lists by id
        k = ENCODINGS.get(g["encoding"], "unknown")
        enc[k] = enc.get(k, 0) + 1
    for g in sorted(c["granules"], key=lambda g: g["codec"]):
        k = CODECS[g["codec"]]
        codecs[k] = codecs.get(k, 0) + 1
    x = {"stored": sum(g["stored"] for g in c["granules"]), "enc": enc, "codecs": codecs,
         "min": min(vals), "max": max(vals)}
    if typ == "string":
        x["raw"] = sum(len(v) for v in vals)
        x["dict_size"] = len(set(vals))
        x["dict_bytes"] = c["dict"]["stored"]
        x["bitmap_bytes"] = c["bitmaps"]["stored"]
    else:
        x["raw"] = len(vals) * WIDTH[typ]
    return x


def seg_events(days, seg):
    part = os.path.basename(os.path.dirname(seg))
    expect(part in days, "%s: no events were written for partition %s" % (seg, part))
    return days[part]


def check_dir_text(days, datadir, out, suffix=""):
    lines = open(out).read().splitlines()
    expect(lines and lines[0].split()[:4] == ["table", "partition", "segment", "rows"],
           "no header line: %r" % lines[:1])
    segs = [l for l in lines[1:] if not l.startswith("total:")]
    expect(len(segs) == len(days),
           "%d segment lines, %d partitions were written" % (len(segs), len(days)))
    total_bytes = 0
    for line, part in zip(segs, sorted(days)):
        f = line.split()
        expect(len(f) == 9, "segment line has %d fields, want 9: %r" % (len(f), line))
        table, p, seg, rows, nbytes, per_row, tmin, tmax, level = f
        path = os.path.join(datadir, "orders", "raw", part, seg + ".seg")
        expect(table == "orders" and p == part and os.path.exists(path),
               "line %r: want table orders, partition %s, an existing segment" % (line, part))
        ev = days[part]
        size = os.path.getsize(path)
        total_bytes += size
        want = [str(len(ev)), str(size), "%.2f" % (size / len(ev)),
                iso(min(e["ts"] for e in ev)), iso(max(e["ts"] for e in ev)), "0"]
        expect([rows, nbytes, per_row, tmin, tmax, level] == want,
               "partition %s: rows, bytes, bytes/row, min_time, max_time, level are %s, want %s"
               % (part, [rows, nbytes, per_row, tmin, tmax, level], want))
    nrows = sum(len(v) for v in days.values())
    want = "total: %d segment%s, %d rows, %d bytes%s" % (len(days), "" if len(days) == 1 else "s", nrows, total_bytes, suffix)
    expect(lines[-1] == want, "total line %r, want %r" % (lines[-1], want))


def check_dir_json(days, datadir, out):
    d = json.load(open(out))
    expect(d["problems"] == 0, "problems: %r" % d["problems"])
    segs = d["segments"]
    expect([s["partition"] for s in segs] == sorted(days),
           "partitions %r, want %r" % ([s["partition"] for s in segs], sorted(days)))
    total_bytes = 0
    for s in segs:
        ev = days[s["partition"]]
        path = os.path.join(datadir, "orders", "raw", s["partition"], s["segment"] + ".seg")
        expect(os.path.exists(path), "%s: no such segment" % path)
        size = os.path.getsize(path)
        total_bytes += size
        want = {"table": "orders", "partition": s["partition"], "segment": s["segment"],
                "rows": len(ev), "bytes": size, "min_time": min(e["ts"] for e in ev),
                "max_time": max(e["ts"] for e in ev), "level": 0, "ok": True}
        expect(s == want, "segment %r, want %r" % (s, want))
    want = {"segments": len(days), "rows": sum(len(v) for v in days.values()), "superseded": 0, "bytes": total_bytes}
    expect(d["total"] == want, "total %r, want %r" % (d["total"], want))


def text_value(typ, v):
    if typ == "timestamp":
        return iso(v)
    if typ == "string":
        return '"%s"' % v
    return str(v)


def check_seg_text(days, seg, out):
    ev = seg_events(days, seg)
    ft = footer(seg)
    n = len(ev)
    lines = open(out).read().splitlines()
    want_head = [
        "segment         %s" % seg,
        "format version  2",
        "rows            %d" % n,
        "granules        %d of 8192 rows" % ((n + 8191) // 8192),
        "time range      %s .. %s" % (iso(min(e["ts"] for e in ev)), iso(max(e["ts"] for e in ev))),
        "file bytes      %d (%.2f bytes/row)" % (ft["size"], ft["size"] / n),
        "time column     ts",
        "order by        %s" % ", ".join(ORDER_BY),
        "",
    ]
    for got, want in zip(lines, want_head):
        expect(got == want, "line %r, want %r" % (got, want))
    expect(len(lines) == len(want_head) + 1 + len(SCHEMA),
           "%d lines, want %d" % (len(lines), len(want_head) + 1 + len(SCHEMA)))
    expect(lines[len(want_head)].split()[:2] == ["column", "type"], "no column header")
    for line, (name, typ) in zip(lines[len(want_head) + 1:], SCHEMA):
        x = col_expect(ev, ft, name, typ)
        f = line.split()
        enc = ",".join("%s:%d" % kv for kv in list(x["enc"].items()) + list(x["codecs"].items()))
        total = x["stored"] + (x["dict_bytes"] + x["bitmap_bytes"] if typ == "string" else 0)
        want = [name, typ, str(x["stored"]), str(x["raw"]), "%.2f" % (x["raw"] / x["stored"]),
                str(x["dict_size"]) if typ == "string" else "-",
                str(x["bitmap_bytes"]) if typ == "string" else "-",
                "%.3f" % (total / n), text_value(typ, x["min"]), "..", text_value(typ, x["max"]),
                enc]
        if typ == "float64":  # printed with the fewest digits that read back exactly
            expect(len(f) == len(want) and float(f[8]) == x["min"] and float(f[10]) == x["max"],
                   "column %s: range %r, want %r .. %r" % (name, f[8:11], x["min"], x["max"]))
            f[8], f[10] = want[8], want[10]
        expect(f == want, "column line %r, want %r" % (f, want))


def check_seg_json(days, seg, out):
    ev = seg_events(days, seg)
    ft = footer(seg)
    s = json.load(open(out))
    n = len(ev)
    want = {"path": seg, "format_version": 2, "rows": n, "granules": (n + 8191) // 8192,
            "granule_rows": 8192, "file_bytes": ft["size"], "min_time": min(e["ts"] for e in ev),
            "max_time": max(e["ts"] for e in ev), "time_column": "ts", "order_by": ORDER_BY}
    for k, v in want.items():
        expect(s.get(k) == v, "%s is %r, want %r" % (k, s.get(k), v))
    expect([(c["name"], c["type"]) for c in s["columns"]] == SCHEMA,
           "columns %r" % [(c["name"], c["type"]) for c in s["columns"]])
    for c, (name, typ) in zip(s["columns"], SCHEMA):
        x = col_expect(ev, ft, name, typ)
        want = {"name": name, "type": typ, "compressed_bytes": x["stored"], "raw_bytes": x["raw"],
                "encodings": x["enc"], "codecs": x["codecs"], "min": x["min"], "max": x["max"]}
        if typ == "string":
            want.update(dictionary_size=x["dict_size"], dictionary_bytes=x["dict_bytes"],
                        bitmap_index_bytes=x["bitmap_bytes"])
        got = dict(c)
        ratio = got.pop("ratio", None)
        expect(got == want, "column %r, want %r" % (got, want))
        expect(ratio is not None and abs(ratio - x["raw"] / x["stored"]) <= 0.00005 + 1e-9,
               "column %s: ratio %r, want %.4f" % (name, ratio, x["raw"] / x["stored"]))


def check_rows(days, seg, out, limit):
    ev = seg_events(days, seg)
    by_id = {e["event_id"]: e for e in ev}
    rows = [json.loads(l) for l in open(out)]
    want_n = min(limit, len(ev))
    expect(len(rows) == want_n, "%d lines, want %d" % (len(rows), want_n))
    for r in rows:
        e = by_id.get(r.get("event_id"))
        expect(e is not None, "row %r: no event with that event_id was written to %s" % (r, seg))
        # == on int and float is exact: an id printed as a double would differ
        expect(r == e and list(r) == list(e), "row %r was written as %r" % (r, e))
    # segments sort by the hour of ts first (engine/segment.h), then by order_by
    key = lambda e: (e["ts"] // HOUR_MS,) + tuple(e[k] for k in ORDER_BY)
    want_keys = sorted(key(e) for e in ev)[:want_n]
    expect([key(r) for r in rows] == want_keys,
           "rows are not the first %d in order by (hour of ts, %s)" % (want_n, ", ".join(ORDER_BY)))
    if want_n == len(ev):
        expect(len({r["event_id"] for r in rows}) == len(ev), "rows repeat an event")


def damage(seg, column, granule, out):
    ft = footer(seg)
    c = next(c for c in ft["cols"] if c["name"] == column)
    g = c["granules"][granule]
    b = bytearray(open(seg, "rb").read())
    b[g["offset"] + g["stored"] // 2] ^= 0x40
    open(out, "wb").write(b)
    print(g["offset"], ft["nrows"], ft["ngranules"])


CHECKS = {"dir-text": check_dir_text, "dir-json": check_dir_json, "seg-text": check_seg_text,
          "seg-json": check_seg_json,
          "rows": lambda d, seg, out, n: check_rows(d, seg, out, int(n))}


def main(a):
    if len(a) == 5 and a[0] == "damage":
        damage(a[1], a[2], int(a[3]), a[4])
        return 0
    if len(a) != 3 or a[0] != "check":
        print(__doc__, file=sys.stderr)
        return 2
    days = load_events(a[1])
    passed = failed = 0
    for line in open(a[2]).read().splitlines():
        f = line.split("\t")
        try:
            CHECKS[f[0]](days, *f[1:])
            passed += 1
        except Exception as m:  # a Mismatch, or output that does not even parse
            print("FAIL: %s: %s" % (" ".join(f), m if isinstance(m, Mismatch) else repr(m)))
            failed += 1
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
