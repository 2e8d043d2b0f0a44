#!/usr/bin/env python3
"""test_serve_dedup.py — every read deduplicated, through the real `strata serve`.

- http_stream_matches_the_reference: a table with dedup_key [id, ts], version and deleted
  gets a random stream over POST /ingest (re-sends, newer, older and equal versions,
  deletes), with flushes, background merges and optimize in between, and a SIGKILL and a
  SIGTERM restart; after each phase random queries (filters, groups, day buckets, time
  ranges) equal the same query over the latest row per key, computed here. GET
  /tables/{name} says the logical rows, the physical rows and the index's memory.
- key_without_time_is_refused: PUT of a dedup_key without the time column answers 400
  with the reason; one with it is accepted.
- kafka_duplicates_count_once: `strata gen --duplicates` into the embedded broker, a Kafka
  table keyed by [event_id, ts] with version: count and sum equal the generator's own
  figures for the latest version of each event, not the events sent.
- kafka_kill_and_restart_mid_stream: the same while the server is killed (-9) in the
  middle of a paced stream and started again.
Args: STRATA_BIN BUILD_DIR SOURCE_DIR [test names]. Prints "N passed, M failed".
"""
import json
import os
import random
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Broker, Server, check, wait_for  # noqa: E402

STRATA, BUILD, WORK = harness.setup("serve_dedup")

T0 = 1704067200000  # 2024-01-01
DAY = 86400000
COUNTRIES = ["US", "DE", "FR", "JP"]
SCHEMA = {
    "columns": [
        {"name": "ts", "type": "timestamp"}, {"name": "id", "type": "string"},
        {"name": "country", "type": "string"}, {"name": "amount", "type": "int64"},
        {"name": "version", "type": "int64"}, {"name": "del", "type": "bool"},
    ],
    "time_column": "ts",
    "dedup_key": ["id", "ts"],
    "version": "version",
    "deleted": "del",
    "storage": {"memtable_age": "60s", "memtable_rows": 300},
}


def key_ts(k):
    return T0 + (k * 2654435761) % (3 * DAY)


class Reference:
    def __init__(self):
        self.rows = {}

    def add(self, e):
        old = self.rows.get(e["id"])
        if old is None or e["version"] >= old["version"]:
            self.rows[e["id"]] = e

    def answer(self, q):
        """The rows of query q (the subset of the language this test uses) over the
        latest live row per key, as strata orders them."""
        groups = {}
        frm, to = q.get("from", 0), q.get("to", 1 << 62)
        for e in self.rows.values():
            if e["del"] or not (frm <= e["ts"] < to):
                continue
            if any(e[w["column"]] != w["value"] for w in q.get("where", [])):
                continue
            key = []
            if "interval" in q:
                key.append(e["ts"] - e["ts"] % DAY)
            key += [e[c] for c in q.get("group_by", [])]
            g = groups.setdefault(tuple(key), [0, 0, None])
            g[0] += 1
            g[1] += e["amount"]
            g[2] = e["version"] if g[2] is None else max(g[2], e["version"])
        if not groups and "interval" not in q and not q.get("group_by"):
            return [[0, 0, None]]
        return [list(k) + v for k, v in sorted(groups.items())]


def random_query(rng):
    q = {"table": "d", "from": 0, "select": [{"fn": "count"}, {"fn": "sum", "column": "amount"},
                                              {"fn": "max", "column": "version"}]}
    if rng.random() < 0.4:
        q["from"] = T0 + rng.randrange(3 * DAY)
        q["to"] = q["from"] + rng.randrange(2 * DAY)
    if rng.random() < 0.4:
        q["interval"] = "1d"
    if rng.random() < 0.5:
        q["group_by"] = ["country"]
    if rng.random() < 0.3:
        q["where"] = [{"column": "country", "op": "=", "value": rng.choice(COUNTRIES)}]
    return q


def check_queries(s, ref, rng, what, n=12):
    for _ in range(n):
        q = random_query(rng)
        st, r = s.json("POST", "/query", q)
        want = ref.answer(q)
        got = r.get("rows") if st == 200 else r
        if got != want:
            check(False, "%s: %s: strata %s, reference %s" % (what, json.dumps(q), got, want))
            return
    check(True, "%s: %d random queries equal the reference" % (what, n))


def post(s, rng, ref, nkeys, n):
    evs = []
    for _ in range(n):
        k = rng.randrange(nkeys)
        e = {"ts": key_ts(k), "id": "order-%d" % k, "country": rng.choice(COUNTRIES),
             "amount": rng.randrange(-100, 1000), "version": rng.randrange(6), "del": rng.random() < 0.1}
        evs.append(e)
        ref.add(e)
    st, r = s.json("POST", "/ingest/d", "\n".join(json.dumps(e) for e in evs))
    check(st == 200 and r.get("ingested") == n, "ingest %d events: %s %s" % (n, st, r) if st != 200 else "ingest")


def http_stream_matches_the_reference():
    data = os.path.join(WORK, "data")
    s = Server(data, "stream")
    check(s.json("PUT", "/tables/d", SCHEMA)[0] == 201, "create d")
    rng, ref, nkeys = random.Random(16), Reference(), 2000
    for i in range(40):
        post(s, rng, ref, nkeys, rng.randrange(1, 400))
        if i % 7 == 3:
            check(s.json("POST", "/tables/d/flush")[0] == 200, "flush")
    check_queries(s, ref, rng, "memtables and flushed segments")
    st, t = s.json("GET", "/tables/d")
    live = sum(1 for e in ref.rows.values() if not e["del"])
    check(st == 200 and t.get("rows") == live and t.get("physical_rows", 0) >= t["rows"]
          and t.get("dedup", {}).get("keys") == len(ref.rows)
          and 0 < t["dedup"].get("index_bytes_per_key", 0) <= 20,
          "GET /tables/d: rows %s (want %d), physical %s, dedup %s" % (t.get("rows"), live, t.get("physical_rows"),
                                                                     t.get("dedup")))
    check(s.metric("strata_table_rows", 'table="d"') == live
          and (s.metric("strata_table_physical_rows", 'table="d"') or 0) >= live  # merges may be removing some
          and s.metric("strata_dedup_keys", 'table="d"') == len(ref.rows),
          "/metrics: rows as queries see them, physical rows, keys")
    merged = wait_for(lambda: s.metric("strata_merges_total", 'table="d"'), limit=30, until=lambda v: v and v > 0)
    check(merged and merged > 0, "background merges ran: %s" % merged)
    check_queries(s, ref, rng, "after background merges")

    # SIGKILL: acknowledged rows come back from the log, superseded ones stay superseded.
    for _ in range(5):
        post(s, rng, ref, nkeys, rng.randrange(1, 400))
    s.stop(signal.SIGKILL)
    s = Server(data, "stream2")
    check_queries(s, ref, rng, "after kill -9 and restart")
    st, r = s.json("POST", "/tables/d/optimize")
    check(st == 200 and r.get("rows_dropped", 0) > 0, "optimize drops superseded rows: %s %s" % (st, r))
    st, t = s.json("GET", "/tables/d")
    check(t.get("physical_rows") == len(ref.rows) and t["dedup"]["superseded_rows"] == 0,
          "after optimize one row per key (deleted keys keep theirs): physical %s, keys %d, superseded %s"
          % (t.get("physical_rows"), len(ref.rows), t["dedup"]["superseded_rows"]))
    check_queries(s, ref, rng, "after optimize")
    for _ in range(5):
        post(s, rng, ref, nkeys, rng.randrange(1, 400))
    check(s.stop() == 0, "SIGTERM exits 0")
    s = Server(data, "stream3")
    check_queries(s, ref, rng, "after SIGTERM and restart")
    s.stop()  # inspect reads the files offline: a live server's merges remove segments it listed
    p = harness.strata("inspect", "--verify", "--quiet", os.path.join(data, "d"))
    check(p.returncode == 0, "inspect --verify: %s %s" % (p.stdout.decode()[-300:], p.stderr.decode()[-300:]))


def key_without_time_is_refused():
    s = Server(os.path.join(WORK, "data-refuse"), "refuse")
    bad = dict(SCHEMA, dedup_key="id")
    st, text = s.req("PUT", "/tables/x", json.dumps(bad))
    check(st == 400 and "dedup_key: must include the time column 'ts'" in text,
          "dedup_key without the time column: %s %s" % (st, text[:300]))
    st, text = s.req("PUT", "/tables/x", json.dumps(dict(SCHEMA, dedup_key=["id", "nope"])))
    check(st == 400 and "unknown column 'nope'" in text, "unknown key column: %s %s" % (st, text[:200]))
    check(s.json("PUT", "/tables/x", SCHEMA)[0] == 201, "with the time column it is created")
    s.stop()


def kafka_duplicates_count_once():
    b = Broker("--partitions", "3")
    s = Server(os.path.join(WORK, "data-kafka"), "kafka", extra=("--kafka-brokers", b.addr))
    sc = harness.order_schema("orders", topic="orders")
    sc.update({"dedup_key": ["event_id", "ts"], "version": "version"})
    check(s.json("PUT", "/tables/orders", sc)[0] == 201, "create the Kafka table")
    tot = harness.gen(b.addr, "orders", os.path.join(WORK, "totals.json"), "--count", "60000",
                      "--duplicates", "0.05", "--seed", "7")
    check(tot["duplicates"] > 1000, "the stream re-sent %d events" % tot["duplicates"])
    got = wait_for(lambda: s.count("orders"), limit=60, until=lambda v: v == tot["distinct_events"])
    check(got == tot["distinct_events"], "count %s = distinct events %d (events sent %d)"
          % (got, tot["distinct_events"], tot["events"]))
    st, r = s.json("POST", "/query", {"table": "orders", "from": 0, "select": [{"fn": "sum", "column": "amount"}]})
    check(st == 200 and abs(r["rows"][0][0] * 100 - tot["amount_cents_latest"]) < 0.5,
          "sum(amount) %s = the latest versions' %s" % (r.get("rows"), tot["amount_cents_latest"] / 100))
    s.stop()
    b.stop()


def kafka_kill_and_restart_mid_stream():
    """A paced stream with re-sends; the server is killed (-9) in the middle of it and
    started again: what it re-reads from Kafka is marked again, nothing counts twice."""
    b = Broker("--partitions", "3")
    data = os.path.join(WORK, "data-kafka-kill")
    s = Server(data, "kafka-kill", extra=("--kafka-brokers", b.addr))
    sc = harness.order_schema("orders", topic="orders")
    sc.update({"dedup_key": ["event_id", "ts"], "version": "version"})
    check(s.json("PUT", "/tables/orders", sc)[0] == 201, "create the Kafka table")
    totals = os.path.join(WORK, "totals-kill.json")
    g = harness.gen_start(b.addr, "orders", totals, "--count", "40000", "--duplicates", "0.05", "--rate", "10000",
                          "--seed", "9")
    wait_for(lambda: s.count("orders"), limit=20, until=lambda v: v > 10000)
    s.stop(signal.SIGKILL)
    s = Server(data, "kafka-kill2", extra=("--kafka-brokers", b.addr))
    check(g.wait(timeout=120) == 0, "gen finished")
    with open(totals) as f:
        tot = json.load(f)
    got = wait_for(lambda: s.count("orders"), limit=60, until=lambda v: v == tot["distinct_events"])
    check(got == tot["distinct_events"], "after kill -9 mid-stream: count %s = distinct events %d (sent %d, %d re-sends)"
          % (got, tot["distinct_events"], tot["events"], tot["duplicates"]))
    st, r = s.json("POST", "/query", {"table": "orders", "from": 0, "select": [{"fn": "sum", "column": "amount"}]})
    check(st == 200 and abs(r["rows"][0][0] * 100 - tot["amount_cents_latest"]) < 0.5,
          "sum(amount) %s = the latest versions' %s" % (r.get("rows"), tot["amount_cents_latest"] / 100))
    s.stop()
    b.stop()


harness.run_parts([http_stream_matches_the_reference, key_without_time_is_refused, kafka_duplicates_count_once,
                   kafka_kill_and_restart_mid_stream])
sys.exit(harness.finish())
