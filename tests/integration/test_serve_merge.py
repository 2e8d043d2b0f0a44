#!/usr/bin/env python3
"""test_serve_merge.py — merges and retention in `strata serve`, driven over HTTP.

- background_merges_and_optimize: many small flushes into two day partitions; the
  background merge thread lowers the segment count by itself (/metrics counts its merges);
  POST /tables/{name}/optimize then leaves one segment per partition, and every query
  answer (counts, sums, groups, min/max, per-hour buckets) is identical before the merges,
  after them and after a restart; strata inspect shows merged levels; the optimize
  answer and its errors (unknown key, bad or unknown partition, malformed body, unknown
  table).
- retention_drops_old_partitions: a table with retention.raw 1d gets events dated days
  ago and now; the old partitions disappear on their own (directory gone, rows gone from
  queries, counted in /metrics, said in the log), the recent one stays, also after restart.
- expired_before_flush_not_replayed: events posted already past retention.raw, dropped
  while still in memory (memtable_age 1h): the write-ahead log that held them is let go,
  so the next start replays nothing and drops nothing again.
Args: STRATA_BIN BUILD_DIR SOURCE_DIR [test names]. Prints "N passed, M failed".
"""
import json
import os
import random
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Server, check, wait_for  # noqa: E402

STRATA, BUILD, WORK = harness.setup("serve_merge")

SCHEMA = {
    "columns": [
        {"name": "ts", "type": "timestamp"},
        {"name": "event_id", "type": "uint64"},
        {"name": "country", "type": "string"},
        {"name": "device", "type": "string"},
        {"name": "amount", "type": "float64"},
        {"name": "quantity", "type": "int32"},
    ],
    "time_column": "ts",
    "storage": {"memtable_age": "60s"},
}
T0 = 1704067200000  # 2024-01-01
DAY = 86400000


def events(rng, n, first_id, t0, span, countries):
    return [{"ts": t0 + rng.randrange(span), "event_id": first_id + i, "country": rng.choice(countries),
             "device": rng.choice(["mobile", "desktop", "tablet"]), "amount": rng.randrange(-5000, 100000) / 100,
             "quantity": rng.randrange(1, 20)} for i in range(n)]


QUERIES = [
    {"table": "m", "from": 0, "select": [{"fn": "count"}, {"fn": "sum", "column": "quantity"},
                                         {"fn": "min", "column": "amount"}, {"fn": "max", "column": "amount"},
                                         {"fn": "min", "column": "ts"}, {"fn": "max", "column": "ts"}]},
    {"table": "m", "from": 0, "select": [{"fn": "count"}, {"fn": "sum", "column": "quantity"},
                                         {"fn": "uniq", "column": "event_id"}],
     "group_by": ["country", "device"], "order_by": [{"column": "country"}, {"column": "device"}]},
    {"table": "m", "from": 0, "interval": "1h", "select": [{"fn": "count"}, {"fn": "sum", "column": "quantity"}],
     "where": [{"column": "country", "op": "in", "values": ["US", "DE", "ZA"]}]},
    {"table": "m", "from": T0 + DAY, "to": T0 + 2 * DAY, "select": [{"fn": "count"}],
     "where": [{"column": "device", "op": "!=", "value": "mobile"}]},
]


def answers(s):
    out = []
    for q in QUERIES:
        st, r = s.json("POST", "/query", q)
        out.append((st, r.get("rows")))
    return out


def segments(s, table="m"):
    return s.json("GET", "/tables/" + table)[1].get("segments")


def background_merges_and_optimize():
    data = os.path.join(WORK, "data")
    s = Server(data, "merge")
    check(s.json("PUT", "/tables/m", SCHEMA)[0] == 201, "create m")
    rng = random.Random(11)
    evs = []
    # 12 flushes of a few hundred rows, two day partitions each, countries drifting so
    # the segments' dictionaries overlap without being equal.
    for i in range(12):
        countries = ["US", "DE", "FR", "JP", "BR", "ZA", "IN", "MX"][i % 4:i % 4 + 4]
        batch = events(rng, 300 + i, len(evs) + 1, T0, 2 * DAY, countries)
        evs += batch
        st, r = s.json("POST", "/ingest/m", "\n".join(json.dumps(e) for e in batch))
        check(st == 200 and r.get("ingested") == len(batch), "ingest %d: %s %s" % (i, st, r))
        check(s.json("POST", "/tables/m/flush")[0] == 200, "flush %d" % i)
    want = answers(s)
    check(all(st == 200 for st, _ in want) and want[0][1][0][0] == len(evs), "answers before: %r" % (want[0],))
    merges = wait_for(lambda: s.metric("strata_merges_total", 'table="m"'), limit=30, until=lambda v: v and v > 0)
    check(merges and merges > 0, "the background thread merged: strata_merges_total %s" % merges)
    check(wait_for(lambda: segments(s), limit=30, until=lambda v: v is not None and v < 24) < 24,
          "fewer segments than the 24 flushed: %s" % segments(s))
    check(answers(s) == want, "answers during background merges are the same")

    st, r = s.json("POST", "/tables/m/optimize", {"partition": "2024-01-02"})
    p = r.get("partitions", [{}])
    check(st == 200 and r.get("table") == "m" and len(p) == 1 and p[0].get("partition") == "2024-01-02"
          and p[0].get("segments_after") == 1 and p[0]["segments_before"] >= 1 and r.get("seconds", -1) >= 0,
          "optimize one partition: %s %s" % (st, r))
    st, r = s.json("POST", "/tables/m/optimize")
    check(st == 200 and [x["partition"] for x in r.get("partitions", [])] == ["2024-01-01", "2024-01-02"]
          and all(x["segments_after"] == 1 for x in r["partitions"]) and r.get("segments_after") == 2,
          "optimize every partition: %s %s" % (st, r))
    check(segments(s) == 2, "one segment per partition: %s" % segments(s))
    check(answers(s) == want, "answers after optimize are the same")
    text = s.text("/metrics")
    for name in ("strata_merges_total", "strata_merge_rows_total", "strata_merge_written_bytes_total",
                 "strata_merge_seconds_total", "strata_table_partition_segments_max",
                 "strata_retention_dropped_partitions_total"):
        check(('%s{table="m"} ' % name) in text, "/metrics has %s" % name)
    check(s.metric("strata_table_partition_segments_max", 'table="m"') == 1, "max segments per partition 1")
    check((s.metric("strata_merge_rows_total", 'table="m"') or 0) >= len(evs), "rows merged counted")

    # Errors: a clear 4xx each.
    for body, want_st, word in (('{"partiton": "2024-01-01"}', 400, "unknown key 'partiton' (did you mean 'partition'?)"),
                                ('{"partition": "2024-1-1"}', 400, "is not a partition name of table 'm' (partitioned by day, names like '2024-01-31')"),
                                ('{"partition": 20240101}', 400, "partition: expected a string"),
                                ('{"partition": "2024-02-01"}', 404, "table 'm' has no partition '2024-02-01'"),
                                ('{"partition": ', 400, "malformed JSON"),
                                ('[1]', 400, "expected an object")):
        st, text = s.req("POST", "/tables/m/optimize", body)
        check(st == want_st and word in text, "optimize %s: %s %s" % (body, st, text))
    st, text = s.req("POST", "/tables/nope/optimize")
    check(st == 404 and "nope" in text, "optimize an unknown table: %s %s" % (st, text))
    st, text = s.req("GET", "/tables/m/optimize")
    check(st == 405, "GET optimize: %s" % st)

    check(s.stop() == 0, "SIGTERM exits 0")
    p = harness.strata("inspect", "--verify", "--quiet", os.path.join(data, "m"))
    lines = [ln.split() for ln in p.stdout.decode().splitlines() if ln.startswith("m ")]
    check(p.returncode == 0 and len(lines) == 2 and all(int(ln[-1]) >= 1 for ln in lines),
          "inspect shows two merged segments with their level: %s" % p.stdout.decode())
    s = Server(data, "merge2")
    check(answers(s) == want, "answers after a restart are the same")
    s.stop()


def retention_drops_old_partitions():
    data = os.path.join(WORK, "data-ret")
    s = Server(data, "ret")
    sch = dict(SCHEMA, retention={"raw": "1d"})
    check(s.json("PUT", "/tables/r", sch)[0] == 201, "create r")
    now = int(time.time() * 1000)
    rng = random.Random(5)
    old = events(rng, 500, 1, now - 5 * DAY, DAY, ["US", "DE"]) + events(rng, 300, 1000, now - 3 * DAY, 1000, ["FR"])
    new = events(rng, 400, 5000, now - 60000, 1000, ["US", "JP"])
    st, r = s.json("POST", "/ingest/r", "\n".join(json.dumps(e) for e in old + new))
    check(st == 200 and r.get("ingested") == 1200, "ingest: %s %s" % (st, r))
    check(s.json("POST", "/tables/r/flush")[0] == 200, "flush")
    got = wait_for(lambda: s.count("r"), limit=30, until=lambda n: n == 400)
    check(got == 400, "only the recent rows stay: %s" % got)
    # The rows leave the table first; the directories go and the log line comes right after.
    wait_for(lambda: "table r: retention (raw 1d) dropped" in s.log(), limit=10)
    dropped = s.metric("strata_retention_dropped_partitions_total", 'table="r"')
    rows = s.metric("strata_retention_dropped_rows_total", 'table="r"')
    check(dropped is not None and dropped >= 2 and rows == 800, "counted in /metrics: %s partitions, %s rows" % (dropped, rows))
    check("table r: retention (raw 1d) dropped" in s.log(), "the log says so: %s" % s.log()[-600:])
    raw = os.path.join(data, "r", "raw")
    today = time.strftime("%Y-%m-%d", time.gmtime(now / 1000))
    left = sorted(os.listdir(raw))
    check(today in left and all(n >= time.strftime("%Y-%m-%d", time.gmtime((now - DAY) / 1000)) for n in left),
          "only recent partition directories remain: %s" % left)
    st, r = s.json("GET", "/tables/r")
    check(st == 200 and r.get("rows") == 400, "the table says 400 rows: %s" % r.get("rows"))
    s.stop()
    s = Server(data, "ret2")
    check(s.count("r") == 400, "after a restart: %d" % s.count("r"))
    s.stop()


def expired_before_flush_not_replayed():
    data = os.path.join(WORK, "data-ret-mem")
    s = Server(data, "retm")
    sch = dict(SCHEMA, retention={"raw": "1d"}, storage={"memtable_age": "1h"})
    check(s.json("PUT", "/tables/r", sch)[0] == 201, "create r")
    now = int(time.time() * 1000)
    old = events(random.Random(6), 800, 1, now - 5 * DAY, 1000, ["US", "DE"])
    st, r = s.json("POST", "/ingest/r", "\n".join(json.dumps(e) for e in old))
    check(st == 200 and r.get("ingested") == 800, "ingest: %s %s" % (st, r))
    check(wait_for(lambda: "table r: retention (raw 1d) dropped" in s.log(), limit=10), "dropped while in memory")
    check(s.count("r") == 0, "no row left")
    check(s.stop() == 0, "SIGTERM exits 0")
    s = Server(data, "retm2")
    time.sleep(2)  # a retention sweep or more
    check("replayed" not in s.log() and "dropped" not in s.log(),
          "the next start replays nothing and drops nothing: %s" % s.log()[-600:])
    check(s.count("r") == 0, "still no row")
    s.stop()


harness.run_parts([background_merges_and_optimize, retention_drops_old_partitions, expired_before_flush_not_replayed])
sys.exit(harness.finish())
