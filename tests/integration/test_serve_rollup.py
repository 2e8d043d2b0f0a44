#!/usr/bin/env python3
"""test_serve_rollup.py — rollups never change an answer, through the real `strata serve`.

- auto_equals_raw_through_changes: a dedup table (key [id, ts], version, deleted) with a
  1m tier (country, status; count, sum of a float and an int column, min, max, uniq,
  quantile) and a 1h tier (country; count, sums) gets a stream over POST /ingest; then
  late events into sealed buckets (inside and far beyond the lateness), newer versions of
  sealed rows, deletions, a SIGKILL while dirty buckets wait for their rebuild, and a
  SIGTERM restart. After each step, random dashboard queries (dimensions, filters,
  intervals that are and are not multiples of a tier, ranges aligned or not, every
  aggregate) with source auto equal source raw: count, min, max and integer sums
  exactly, float sums within 1e-9 relative, uniq and quantile identical. Enough of them
  must really be served by a tier (stats.source), or the comparison proves nothing.
- source_errors: source "rollup" for a query no tier covers answers 400 naming why; on
  a table without rollups too; an unknown source suggests the right one.
- tiers_show_in_tables_and_metrics: GET /tables/{name} lists the tiers with what they
  sealed and their dirty buckets; /metrics has strata_rollup_* lines.
- tiers_of_one_interval: two 1m tiers (by country and status, by nothing): each query
  reads the covering tier with the fewest rows.
- backfill_reaches_back: rows older than the tiers' start, sent after newer ones: the
  tiers build back to them.
- far_future_first_event: a first event stamped in 2099 seals nothing past the clock,
  and the 2024 events after it are covered within seconds.
- tiers_saved_and_restored: the tiers' buckets are saved as segments under
  data/r/rollup_1m and rollup_1h (GET /tables shows the files); after SIGKILL the
  restarted server serves from the tiers at once, built nothing again, and answers as
  raw rows do; late events, newer versions and deletions sent just before a SIGKILL
  (acknowledged, not yet saved) make their buckets dirty again after the restart (from
  the log replay), and answers stay equal; a damaged tier segment is moved aside with a
  log line, and the tier is built again from raw rows; optimize leaves one segment per
  tier partition, and the answers do not change; after a clean stop (SIGTERM saves)
  nothing is built again.
- sigkill_during_rebuilds_and_saves: late events, newer versions and deletions spread
  over every sealed bucket, then SIGKILL after a random 0-1.5 s (while dirty buckets are
  rebuilt and the tiers saved), eight times over: after each restart auto and rollup
  equal raw at once, and again once the tiers caught up.
- rollups_outlive_raw_rows: with retention raw 30d and tier retention 60d / 1000d, six
  hours of events from 40 days ago go into r, and the same events into k (no retention).
  Retention drops r's raw partitions once the tiers hold them; then random queries on r
  (source auto) equal the same queries on k (source raw), answered by a tier alone with
  stats.raw_expired_before; source raw on r answers nothing for that range and says so.
  After SIGKILL and a restart the saved tiers answer the same; a late event into the
  expired range is dropped with the next sweep and changes no answer.
- late_policy_dead_letter: with late_policy dead-letter and late_bound 1h, an event more
  than an hour before the newest is a rejected line with the reason; the others land.
- late_policy_dead_letter_kafka: the same for a Kafka table (the embedded broker): the
  late events are dead letters with the reason.
Args: STRATA_BIN BUILD_DIR SOURCE_DIR [test names]. Prints "N passed, M failed". ctest runs it
in two halves (tests/CMakeLists.txt names the parts of each): a new part goes in one.
"""
import json
import os
import random
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Broker, Server, check, order_schema, wait_count, wait_for, write_json  # noqa: E402

STRATA, BUILD, WORK = harness.setup("serve_rollup")

T0 = 1704067200000  # 2024-01-01
MIN, HOUR = 60000, 3600000
SPAN = 6 * HOUR
COUNTRIES = ["US", "DE", "FR", "JP", "BR"]
STATUSES = ["ok", "fail", "refund"]
SCHEMA = {
    "columns": [
        {"name": "ts", "type": "timestamp"}, {"name": "id", "type": "string"},
        {"name": "country", "type": "string"}, {"name": "status", "type": "string"},
        {"name": "amount", "type": "float64"}, {"name": "qty", "type": "int64"},
        {"name": "user", "type": "int64"}, {"name": "version", "type": "int64"},
        {"name": "del", "type": "bool"},
    ],
    "time_column": "ts",
    "dedup_key": ["id", "ts"],
    "version": "version",
    "deleted": "del",
    "lateness": "2m",
    "rollups": [
        {"interval": "1m", "dimensions": ["country", "status"],
         "metrics": [{"fn": "count"}, {"fn": "sum", "column": "amount"}, {"fn": "sum", "column": "qty"},
                     {"fn": "min", "column": "amount"}, {"fn": "max", "column": "qty"},
                     {"fn": "uniq", "column": "user"}, {"fn": "quantile", "column": "amount"}]},
        {"interval": "1h", "dimensions": ["country"],
         "metrics": [{"fn": "count"}, {"fn": "sum", "column": "amount"}, {"fn": "sum", "column": "qty"}]},
    ],
    "storage": {"memtable_age": "1s"},
}
AGGS = [{"fn": "count"}, {"fn": "sum", "column": "amount"}, {"fn": "sum", "column": "qty"},
        {"fn": "avg", "column": "amount"}, {"fn": "avg", "column": "qty"}, {"fn": "min", "column": "amount"},
        {"fn": "max", "column": "qty"}, {"fn": "uniq", "column": "user"},
        {"fn": "quantile", "column": "amount", "q": 0.5}, {"fn": "quantile", "column": "amount", "q": 0.99}]
INTERVALS = [None, "1m", "2m", "5m", "90s", "1h", "3h", "1d", "30s"]


class Stream:
    """The events sent, for making late ones, newer versions and deletions of them."""

    def __init__(self, seed):
        self.rng = random.Random(seed)
        self.sent = []  # (id, ts, version)
        self.n = 0

    def event(self, ts, eid=None, version=0, deleted=False):
        r = self.rng
        if eid is None:
            self.n += 1
            eid = "e%d" % self.n
        self.sent.append((eid, ts, version))
        return {"ts": ts, "id": eid, "country": r.choice(COUNTRIES), "status": r.choice(STATUSES),
                "amount": round(r.uniform(-50, 500), 2), "qty": r.randrange(1, 9),
                "user": r.randrange(3000), "version": version, "del": deleted}


def post(s, evs, what):
    st, r = s.json("POST", "/ingest/r", "\n".join(json.dumps(e) for e in evs))
    check(st == 200 and r.get("ingested") == len(evs), "%s: ingest %d: %s" % (what, len(evs), st if st == 200 else r))


def random_query(rng, t0=T0, table="r"):
    q = {"table": table, "select": [dict(a, **{"as": "a%d" % i}) for i, a in enumerate(rng.sample(AGGS, rng.randrange(1, 5)))]}
    iv = rng.choice(INTERVALS)
    if iv:
        q["interval"] = iv
    if rng.random() < 0.8:
        a = t0 + rng.randrange(SPAN)
        b = a + rng.randrange(1, SPAN)
        if rng.random() < 0.5:  # aligned to minutes or hours
            unit = rng.choice([MIN, HOUR])
            a, b = a - a % unit, b - b % unit + unit
        q["from"], q["to"] = a, b
    dims = rng.sample(["country", "status"], rng.randrange(0, 3))
    if dims:
        q["group_by"] = dims
    if rng.random() < 0.5:
        c = rng.choice(["country", "status"])
        vals = COUNTRIES if c == "country" else STATUSES
        op = rng.choice(["=", "!=", "in", "not_in"])
        if "in" in op:
            q["where"] = [{"column": c, "op": op, "values": rng.sample(vals, 2)}]
        else:
            q["where"] = [{"column": c, "op": op, "value": rng.choice(vals)}]
    return q


def same_cell(fn, a, b):
    if fn in ("sum", "avg") and isinstance(a, float) and isinstance(b, float):
        return abs(a - b) <= 1e-9 * max(abs(a), abs(b), 1e-300)
    return a == b


def compare(s, rng, what, n=60, need_rollup=10):
    """n random queries with source auto and, where a tier covers them, rollup (which takes
    the tier even where auto would read raw rows, as cheaper): each equals source raw."""
    served = 0
    for _ in range(n):
        q = random_query(rng)
        sr, r = s.json("POST", "/query", dict(q, source="raw"))
        for source in ("auto", "rollup"):
            sa, a = s.json("POST", "/query", dict(q, source=source))
            if source == "rollup" and sa == 400 and "no rollup tier" in a.get("error", ""):
                continue
            if sa != 200 or sr != 200:
                check(False, "%s: %s: %s %s %s, raw %s %s" % (what, json.dumps(q), source, sa, a, sr, r))
                return
            src = a["stats"]["source"]
            served += src != "raw"
            names = {"a%d" % i: sel["fn"] for i, sel in enumerate(q["select"])}
            fns = [names.get(c["name"], "") for c in a["columns"]]
            ok = len(a["rows"]) == len(r["rows"]) and all(
                same_cell(f, x, y) for ra, rr in zip(a["rows"], r["rows"]) for f, x, y in zip(fns, ra, rr))
            if not ok:
                bad = [(ra, rr) for ra, rr in zip(a["rows"], r["rows"]) if ra != rr][:2]
                check(False, "%s: %s (source %s: %s): %d rows, raw %d; first differences %s; stats %s" % (
                    what, json.dumps(q), source, src, len(a["rows"]), len(r["rows"]), bad, a["stats"]))
                return
    check(served >= need_rollup, "%s: %d random queries, auto and rollup equal raw; %d answers from a tier" % (
        what, n, served))


def stream_span(s, st, rng, t0, tables=("r",)):
    """Six hours of events from t0 in time order, in batches of 400, into each table;
    returns how many."""
    t, n = t0, 0
    while t < t0 + SPAN:
        evs = []
        for _ in range(400):
            t += rng.randrange(0, 110)
            evs.append(st.event(t))
        body = "\n".join(json.dumps(e) for e in evs)
        for table in tables:
            code, r = s.json("POST", "/ingest/" + table, body)
            check(code == 200 and r.get("ingested") == len(evs), "stream: ingest %d into %s: %s" % (
                len(evs), table, code if code == 200 else r))
        n += len(evs)
    return n


def tiers(s):
    st, t = s.json("GET", "/tables/r")
    return t.get("rollups", []) if st == 200 else []


def iso(ms):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms / 1000))


def sealed_to(s, want_ms):
    """Waits until each tier sealed its buckets up to want_ms (rounded down to its
    interval) and has no dirty bucket."""
    def ready():
        ts = tiers(s)
        return len(ts) == 2 and all(
            t["sealed_through"] and t["dirty_buckets"] == 0 and
            t["sealed_through"][:19] >= iso(want_ms - want_ms % (MIN if t["interval"] == "1m" else HOUR))
            for t in ts)
    return wait_for(ready, limit=60)


def auto_equals_raw_through_changes():
    data = os.path.join(WORK, "data")
    s = Server(data, "diff")
    check(s.json("PUT", "/tables/r", SCHEMA)[0] == 201, "create r")
    st, rng = Stream(17), random.Random(17)
    # the stream: six hours of events in time order, in batches
    stream_span(s, st, rng, T0)
    check(sealed_to(s, T0 + SPAN - 3 * MIN), "tiers sealed up to the watermark: %s" % tiers(s))
    compare(s, rng, "sealed stream")

    # late events into sealed buckets (within the lateness of the newest, and hours late),
    # newer versions of sealed rows, deletions; compared before the rebuild can run
    late = [st.event(T0 + rng.randrange(SPAN - 10 * MIN)) for _ in range(150)]
    late += [st.event(T0 + SPAN - rng.randrange(MIN, 3 * MIN)) for _ in range(20)]
    olds = rng.sample(st.sent[:4000], 200)
    late += [st.event(ts, eid, v + 1 + rng.randrange(3)) for eid, ts, v in olds[:150]]
    late += [st.event(ts, eid, v + 9, deleted=True) for eid, ts, v in olds[150:]]
    late += [st.event(ts, eid, -1) for eid, ts, v in rng.sample(st.sent[:4000], 30)]  # older: lose
    rng.shuffle(late)
    post(s, late, "late")
    compare(s, rng, "right after late events, updates and deletes", n=30, need_rollup=5)
    check(sealed_to(s, T0 + SPAN - 3 * MIN), "dirty buckets rebuilt: %s" % tiers(s))
    check(any(t["rebuilt_buckets"] > 0 for t in tiers(s)), "GET /tables counts rebuilt buckets")
    compare(s, rng, "after the rebuild")

    # a SIGKILL with dirty buckets waiting: after the restart the tiers are built anew
    post(s, [st.event(T0 + rng.randrange(SPAN - 10 * MIN)) for _ in range(100)], "late before the kill")
    s.stop(signal.SIGKILL)
    s = Server(data, "diff2")
    compare(s, rng, "right after SIGKILL and restart", n=30, need_rollup=0)
    check(sealed_to(s, T0 + SPAN - 3 * MIN), "tiers built again after the restart: %s" % tiers(s))
    compare(s, rng, "after the restart's build")

    # more stream past the old end, then SIGTERM and restart
    t = T0 + SPAN
    evs = []
    for _ in range(1500):
        t += rng.randrange(0, 40)
        evs.append(st.event(t))
    post(s, evs, "stream on")
    post(s, [st.event(T0 + rng.randrange(SPAN)) for _ in range(50)], "late again")
    check(s.stop() == 0, "SIGTERM exits 0")
    s = Server(data, "diff3")
    check(sealed_to(s, t - 3 * MIN), "tiers built after SIGTERM restart: %s" % tiers(s))
    compare(s, rng, "after SIGTERM restart")
    s.stop()


def source_errors():
    data = os.path.join(WORK, "data-err")
    s = Server(data, "err")
    check(s.json("PUT", "/tables/r", SCHEMA)[0] == 201, "create r")
    plain = dict(SCHEMA, rollups=[])
    del plain["rollups"]
    check(s.json("PUT", "/tables/p", plain)[0] == 201, "create p")
    q = {"table": "r", "select": [{"fn": "count"}], "group_by": ["id"], "source": "rollup"}
    st, r = s.json("POST", "/query", q)
    check(st == 400 and "no rollup tier" in r.get("error", "") and "'id'" in r.get("error", ""),
          "rollup for a group_by no tier has: 400 naming it: %s %s" % (st, r))
    q = {"table": "r", "select": [{"fn": "uniq", "column": "user"}], "interval": "1h", "source": "rollup"}
    st, r = s.json("POST", "/query", q)
    check(st == 200, "uniq per hour: the 1m tier covers it (60 divides by 1): %s %s" % (st, r))
    q = {"table": "r", "select": [{"fn": "count"}], "interval": "90s", "source": "rollup"}
    st, r = s.json("POST", "/query", q)
    check(st == 400 and "not a multiple" in r.get("error", ""), "90s interval: 400: %s %s" % (st, r))
    st, r = s.json("POST", "/query", {"table": "p", "select": [{"fn": "count"}], "source": "rollup"})
    check(st == 400 and "has no rollups" in r.get("error", ""), "table without rollups: 400: %s %s" % (st, r))
    st, r = s.json("POST", "/query", {"table": "r", "select": [{"fn": "count"}], "source": "rolup"})
    check(st == 400 and "did you mean 'rollup'" in r.get("error", ""), "unknown source: %s %s" % (st, r))
    bad = dict(SCHEMA, rollups=[{"interval": "90s", "metrics": [{"fn": "count"}]}])
    st, r = s.json("PUT", "/tables/b", bad)
    check(st == 400 and "whole number of minutes" in r.get("error", ""), "90s tier refused: %s %s" % (st, r))
    five = dict(SCHEMA, rollups=[{"interval": "5m", "metrics": [{"fn": "count"}]}])
    check(s.json("PUT", "/tables/f", five)[0] == 201, "a 5m tier is accepted")
    s.stop()


def tiers_show_in_tables_and_metrics():
    data = os.path.join(WORK, "data-show")
    s = Server(data, "show")
    check(s.json("PUT", "/tables/r", SCHEMA)[0] == 201, "create r")
    st = Stream(3)
    post(s, [st.event(T0 + i * 1000) for i in range(3600)], "an hour")
    check(sealed_to(s, T0 + 57 * MIN), "sealed")
    ts = tiers(s)
    one = ts[0] if ts else {}
    check(one.get("interval") == "1m" and one.get("dimensions") == ["country", "status"] and
          one.get("state") == "built" and one.get("built_from") == "2024-01-01T00:00:00.000Z" and
          one.get("sealed_through") == "2024-01-01T00:57:00.000Z" and one.get("buckets") == 57,
          "GET /tables/r shows the 1m tier: %s" % one)
    m = s.text("/metrics")
    check('strata_rollup_buckets{table="r",tier="1m",dimensions="country,status"} 57' in m and
          'strata_rollup_dirty_buckets{table="r",tier="1h",dimensions="country"} 0' in m, "/metrics has the tiers")
    st2, r = s.json("POST", "/query", {"table": "r", "from": T0, "to": T0 + 30 * MIN, "interval": "1m",
                                       "select": [{"fn": "count"}], "source": "rollup"})
    check(st2 == 200 and r["stats"]["source"] == "rollup" and r["stats"]["rollup"]["tier"] == "1m" and
          r["stats"]["rollup"]["buckets"] == 30 and [x[1] for x in r["rows"]] == [60] * 30 and
          r["stats"]["rollup"]["dimensions"] == ["country", "status"],
          "stats.rollup says the 1m tier served 30 buckets: %s" % r.get("stats"))
    s.stop()


def tiers_of_one_interval():
    """Two 1m tiers, by country and status and by nothing: a query without group_by reads
    the one with the fewest rows, one by status the other; both equal raw."""
    data = os.path.join(WORK, "data-two")
    s = Server(data, "two")
    schema = dict(SCHEMA, rollups=[SCHEMA["rollups"][0],
                                   {"interval": "1m", "metrics": [{"fn": "count"}, {"fn": "sum", "column": "qty"}]}])
    check(s.json("PUT", "/tables/r", schema)[0] == 201, "create r with two 1m tiers")
    st = Stream(8)
    post(s, [st.event(T0 + i * 500) for i in range(7200)], "an hour")
    check(wait_for(lambda: all(t["sealed_through"] == "2024-01-01T00:57:00.000Z" for t in tiers(s)), 30),
          "both sealed: %s" % tiers(s))
    for q, dims in (({"select": [{"fn": "count"}, {"fn": "sum", "column": "qty"}]}, []),
                    ({"select": [{"fn": "count"}], "group_by": ["status"]}, ["country", "status"])):
        q = dict(q, table="r", **{"from": T0, "to": T0 + 50 * MIN, "interval": "5m", "source": "rollup"})
        a, r = s.json("POST", "/query", q)[1], s.json("POST", "/query", dict(q, source="raw"))[1]
        check(a.get("stats", {}).get("rollup", {}).get("dimensions") == dims and a.get("rows") == r.get("rows"),
              "%s: the tier by %s, as raw: %s" % (json.dumps(q), dims, a.get("stats")))
    s.stop()


def backfill_reaches_back():
    """Rows older than anything the tiers were built from (an older load after a newer
    one): the tiers build back to them, and answers stay equal."""
    data = os.path.join(WORK, "data-backfill")
    s = Server(data, "backfill")
    check(s.json("PUT", "/tables/r", SCHEMA)[0] == 201, "create r")
    st = Stream(9)
    day2 = T0 + 24 * HOUR
    post(s, [st.event(day2 + i * 2000) for i in range(3600)], "day 2")
    check(wait_for(lambda: tiers(s) and tiers(s)[0]["built_from"] == "2024-01-02T00:00:00.000Z" and
                   tiers(s)[0]["sealed_through"] == "2024-01-02T01:57:00.000Z", 30), "built from day 2: %s" % tiers(s))
    post(s, [st.event(T0 + 20 * HOUR + i * 3000) for i in range(2400)], "day 1, later")
    check(wait_for(lambda: all(t["built_from"] == "2024-01-01T20:00:00.000Z" for t in tiers(s)), 30),
          "the tiers reach back to day 1's rows: %s" % tiers(s))
    q = {"table": "r", "from": T0 + 20 * HOUR, "to": T0 + 22 * HOUR, "interval": "10m",
         "select": [{"fn": "count"}, {"fn": "sum", "column": "qty"}], "group_by": ["country"]}
    a, r = s.json("POST", "/query", dict(q, source="rollup"))[1], s.json("POST", "/query", dict(q, source="raw"))[1]
    check(a.get("stats", {}).get("source") == "rollup" and a.get("rows") == r.get("rows") and len(r.get("rows", [])) > 0,
          "day 1 served by the tier, as raw: %s" % a.get("stats"))
    s.stop()


def far_future_first_event():
    """A table's first event stamped in 2099, then 2024 events: the tiers never seal past
    the clock, and cover 2024 within seconds."""
    data = os.path.join(WORK, "data-future")
    s = Server(data, "future")
    check(s.json("PUT", "/tables/r", SCHEMA)[0] == 201, "create r")
    st = Stream(10)
    post(s, [st.event(4070908800000)], "2099")  # 2099-01-01
    post(s, [st.event(T0 + i * 2000) for i in range(3600)], "2024")
    check(wait_for(lambda: tiers(s) and all(t["built_from"] == "2024-01-01T00:00:00.000Z" and t["state"] == "built"
                                            for t in tiers(s)), 30),
          "the tiers reach back to 2024 within seconds: %s" % tiers(s))
    now = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() + 600))
    check(all(t["sealed_through"] < now for t in tiers(s)), "nothing sealed past the clock: %s" % tiers(s))
    q = {"table": "r", "from": T0, "to": T0 + 2 * HOUR, "interval": "1h", "select": [{"fn": "count"}]}
    a, r = s.json("POST", "/query", dict(q, source="rollup"))[1], s.json("POST", "/query", dict(q, source="raw"))[1]
    check(a.get("stats", {}).get("source") == "rollup" and a.get("rows") == r.get("rows"),
          "2024 served by a tier, as raw: %s" % a.get("stats"))
    s.stop()


def late_policy_dead_letter():
    data = os.path.join(WORK, "data-late")
    s = Server(data, "late")
    schema = dict(SCHEMA, late_policy="dead-letter", late_bound="1h")
    check(s.json("PUT", "/tables/r", schema)[0] == 201, "create r with late_policy dead-letter, late_bound 1h")
    st = Stream(5)
    post(s, [st.event(T0 + 5 * HOUR)], "the newest")
    evs = [st.event(T0 + 4 * HOUR + 30 * MIN), st.event(T0 + 3 * HOUR), st.event(T0 + 5 * HOUR + MIN)]
    code, r = s.json("POST", "/ingest/r", "\n".join(json.dumps(e) for e in evs))
    errs = r.get("errors", [])
    check(code == 200 and r.get("ingested") == 2 and r.get("rejected") == 1 and len(errs) == 1 and
          errs[0].get("line") == 2 and "late event" in errs[0].get("error", errs[0].get("message", "")) and
          "late_bound 1h" in json.dumps(errs[0]),
          "the event 2 h late is refused with the reason, the others land: %s %s" % (code, r))
    check(s.count("r") == 3, "3 events landed")
    s.stop()


def late_policy_dead_letter_kafka():
    """The same policy on a Kafka table: a day-old batch after the newest goes to the
    dead-letter topic, each message with the reason; the rest lands."""
    b = Broker("--partitions", "2")
    sc = order_schema("orders", b.addr, "orders", properties={"session.timeout.ms": "3000"})
    sc.update(late_policy="dead-letter", late_bound="1h",
              rollups=[{"interval": "1m", "metrics": [{"fn": "count"}]}])
    s = Server(os.path.join(WORK, "data-late-kafka"), "latek", ["--table", write_json(os.path.join(WORK, "lk.json"), sc)])
    harness.gen(b.addr, "orders", None, "--count", "2000", "--start", "2024-01-02T00:00:00Z", "--span", "1h",
                "--seed", "3")
    check(wait_count([s], "orders", 2000) == 2000, "the newer 2000 events landed")
    harness.gen(b.addr, "orders", None, "--count", "300", "--start", "2024-01-01T00:00:00Z", "--span", "1h",
                "--seed", "4")

    def dead():
        out = harness.kafka_tail(b.addr, "orders.dlq", "1500")
        return [json.loads(x) for x in out.stdout.decode().split("\n") if x.strip()]
    d = wait_for(dead, limit=30, until=lambda x: len(x) >= 300)
    check(len(d) == 300 and all("late event" in m["headers"].get("strata.error", "") for m in d),
          "the 300 day-old events are dead letters with the reason: %d, first %s" % (
              len(d), d[0]["headers"].get("strata.error") if d else None))
    check(s.count("orders") == 2000, "and none of them landed")
    check(s.stop() == 0, "SIGTERM exits 0")
    b.stop()


def tier_files(data, tier):
    out = []
    for root, _, files in os.walk(os.path.join(data, "r", tier)):
        out += [os.path.join(root, f) for f in files if f.endswith(".seg")]
    return sorted(out)


def saved(s):
    """Both tiers saved, with nothing built since (and no dirty bucket)."""
    ts = tiers(s)
    return len(ts) == 2 and all(t["files"]["saves"] > 0 and t["files"]["segments"] > 0 and not t["files"]["unsaved"]
                                and t["dirty_buckets"] == 0 for t in ts)


def sealed_table(name, seed):
    """A server on WORK/data-NAME whose table r (SCHEMA) got six hours of the stream
    Stream(seed), sealed: (data, server, stream, rng)."""
    data = os.path.join(WORK, "data-" + name)
    s = Server(data, name)
    check(s.json("PUT", "/tables/r", SCHEMA)[0] == 201, "create r")
    st, rng = Stream(seed), random.Random(seed)
    stream_span(s, st, rng, T0)
    check(sealed_to(s, T0 + SPAN - 3 * MIN), "tiers sealed")
    return data, s, st, rng


def tiers_saved_and_restored():
    data, s, st, rng = sealed_table("saved", 23)
    check(wait_for(lambda: saved(s), limit=30), "both tiers saved within the save period: %s" % tiers(s))
    m, h = tier_files(data, "rollup_1m"), tier_files(data, "rollup_1h")
    check(m and all("/rollup_1m/2024-01/" in f for f in m), "1m tier segments in a month partition: %s" % m)
    check(h and all("/rollup_1h/2024/" in f for f in h), "1h tier segments in a year partition: %s" % h)
    check(os.path.exists(os.path.join(data, "r", "rollup_1m", "TIER")), "the 1m tier's manifest")
    before = {x["interval"]: x for x in tiers(s)}
    compare(s, rng, "before the kill")

    s.stop(signal.SIGKILL)
    s = Server(data, "saved2")
    now = {x["interval"]: x for x in tiers(s)}
    check(all(now[i]["state"] == "built" and now[i]["sealed_through"] == before[i]["sealed_through"] and
              now[i]["buckets"] == before[i]["buckets"] and now[i]["rows"] == before[i]["rows"] for i in now),
          "right after the restart the tiers are restored as they were: %s" % now)
    compare(s, rng, "right after SIGKILL and restart, from the saved tiers", n=40, need_rollup=15)
    # (raw segments merged since the last save count as new rows, so a few buckets may be
    # rebuilt; after a clean stop, below, none is)

    # changes acknowledged, then a SIGKILL before any save: the replay marks them again
    late = [st.event(T0 + rng.randrange(SPAN - 10 * MIN)) for _ in range(80)]
    olds = rng.sample(st.sent[:4000], 60)
    late += [st.event(ts, eid, v + 1) for eid, ts, v in olds[:40]]
    late += [st.event(ts, eid, v + 9, deleted=True) for eid, ts, v in olds[40:]]
    post(s, late, "late, updates, deletes")
    s.stop(signal.SIGKILL)
    s = Server(data, "saved3")
    compare(s, rng, "after changes then SIGKILL: restored tiers with the replayed changes marked", n=40,
            need_rollup=5)
    check(sealed_to(s, T0 + SPAN - 3 * MIN), "dirty buckets rebuilt")
    compare(s, rng, "after the rebuild")
    check(wait_for(lambda: all(x["files"]["saves"] > 0 for x in tiers(s)), limit=30), "the rebuilt buckets are saved")
    check(s.stop() == 0, "SIGTERM exits 0")

    # strata inspect lists the tiers' segments beside the raw ones, verifies them, reads them
    out = subprocess.run([STRATA, "inspect", "--verify", "--quiet", data], capture_output=True, text=True)
    check(out.returncode == 0 and "rollup_1m/2024-01" in out.stdout and "rollup_1h/2024" in out.stdout and
          "all verified" in out.stdout, "inspect --verify of the data directory lists and checks the tiers: %s%s" % (
              out.stdout[-600:], out.stderr[-300:]))
    first = tier_files(data, "rollup_1m")[0]
    out = subprocess.run([STRATA, "inspect", "--rows", "1", first], capture_output=True, text=True)
    row = json.loads(out.stdout.splitlines()[0]) if out.returncode == 0 and out.stdout else {}
    check(row.get("count.n", 0) > 0 and row.get("uniq(user).sk", {}).get("uniq", 0) > 0 and
          row.get("quantile(amount).sk", {}).get("count") == row.get("quantile(amount).n"),
          "inspect --rows shows a tier row with its sketches read: %s" % out.stdout[:400])

    # a damaged segment of the 1m tier: inspect finds it; the server moves it aside and
    # builds the tier again from raw rows
    victim = tier_files(data, "rollup_1m")[0]
    with open(victim, "r+b") as f:
        f.seek(40)
        b = f.read(1)
        f.seek(40)
        f.write(bytes([b[0] ^ 0xFF]))
    out = subprocess.run([STRATA, "inspect", "--verify", "--quiet", os.path.join(data, "r", "rollup_1m")],
                         capture_output=True, text=True)
    check(out.returncode == 1 and "DAMAGE FOUND" in out.stdout and "checksum mismatch" in out.stderr,
          "inspect --verify of the tier finds the damage: %s %s" % (out.stdout[-300:], out.stderr[-300:]))
    s = Server(data, "saved4")
    check("rollup tier rollup_1m: its files cannot be read" in s.log() and
          os.path.isdir(os.path.join(data, "r", "rollup_1m.damaged")),
          "a damaged tier is moved aside with a log line")
    check(sealed_to(s, T0 + SPAN - 3 * MIN), "and built again from raw rows")
    compare(s, rng, "after the damaged tier was built again")

    # optimize: one segment per tier partition
    check(wait_for(lambda: saved(s), limit=30), "saved again")
    st_, r = s.json("POST", "/tables/r/optimize", {})
    check(st_ == 200 and len(r.get("rollups", [])) == 2 and all(x["segments_after"] == 1 for x in r["rollups"]),
          "optimize merges each tier partition into one segment: %s" % r.get("rollups", r))
    check(len(tier_files(data, "rollup_1m")) == 1 and len(tier_files(data, "rollup_1h")) == 1,
          "one file each on disk")
    compare(s, rng, "after optimize")
    _, hourly = s.json("POST", "/query", {"table": "r", "from": T0, "to": T0 + 2 * SPAN, "interval": "1h",
                                          "group_by": ["country"], "source": "raw", "select": [{"fn": "count"}]})
    hourly = {(r[0], r[1]): r[2] for r in hourly.get("rows", [])}
    out = subprocess.run([STRATA, "inspect", "--rows", "3", tier_files(data, "rollup_1h")[0]],
                         capture_output=True, text=True)  # no sketch in that tier: plain columns
    rows = [json.loads(x) for x in out.stdout.splitlines()] if out.returncode == 0 else []
    check(len(rows) == 3 and all(r["count.n"] == hourly.get((r["start"], r["country"])) for r in rows),
          "inspect --rows of the 1h tier shows each bucket's count as raw rows count it: %s vs %s" % (
              rows, hourly))
    check(s.stop() == 0, "SIGTERM exits 0")
    s = Server(data, "saved5")
    compare(s, rng, "restored from the optimized segments", n=30, need_rollup=10)
    check(all(x["builds"] == 0 and x["dirty_buckets"] == 0 for x in tiers(s)),
          "after a clean stop nothing is built again: %s" % tiers(s))
    s.stop()


def sigkill_during_rebuilds_and_saves():
    data, s, st, rng = sealed_table("kill", 41)
    for k in range(8):
        late = [st.event(T0 + rng.randrange(SPAN - 10 * MIN)) for _ in range(300)]
        olds = rng.sample(st.sent[:5000], 200)
        late += [st.event(ts, eid, v + 1) for eid, ts, v in olds[:150]]
        late += [st.event(ts, eid, v + 9, deleted=True) for eid, ts, v in olds[150:]]
        post(s, late, "changes %d" % k)
        time.sleep(rng.uniform(0, 1.5))
        s.stop(signal.SIGKILL)
        s = Server(data, "kill%d" % k)
        compare(s, rng, "kill %d: right after the restart" % k, n=15, need_rollup=0)
    check(sealed_to(s, T0 + SPAN - 3 * MIN), "tiers caught up after the last kill")
    compare(s, rng, "after the kills, tiers caught up", n=40)
    s.stop()


def compare_tables(s, rng, t0, what, n=40):
    """n random queries over [t0, t0 + SPAN): r with source auto equals k with source raw."""
    served = 0
    for _ in range(n):
        # Without raw rows a tier answers whole buckets only: ranges aligned to hours,
        # intervals that are multiples of a tier's
        q = random_query(rng, t0)
        q["interval"] = rng.choice([None, "1m", "2m", "5m", "1h", "3h", "1d"])
        if not q["interval"]:
            del q["interval"]
        a = t0 + rng.randrange(SPAN)
        q["from"] = a - a % HOUR
        q["to"] = q["from"] + HOUR * rng.randrange(1, 8)
        sa, a = s.json("POST", "/query", dict(q, source="auto"))
        sk, k = s.json("POST", "/query", dict(q, table="k", source="raw"))
        if sa != 200 or sk != 200:
            check(False, "%s: %s: %s %s / %s %s" % (what, json.dumps(q), sa, a, sk, k))
            return
        if a["rows"] and a["stats"]["source"] != "rollup":  # (raw ranges in expired time read nothing)
            check(False, "%s: %s answered by %s" % (what, json.dumps(q), a["stats"]))
            return
        served += a["stats"]["source"] == "rollup"
        names = {"a%d" % i: sel["fn"] for i, sel in enumerate(q["select"])}
        fns = [names.get(c["name"], "") for c in a["columns"]]
        ok = len(a["rows"]) == len(k["rows"]) and all(
            same_cell(f, x, y) for ra, rk in zip(a["rows"], k["rows"]) for f, x, y in zip(fns, ra, rk))
        if not ok or "raw_expired_before" not in a["stats"]:
            check(False, "%s: %s: %d rows vs %d; stats %s; first %s vs %s" % (
                what, json.dumps(q), len(a["rows"]), len(k["rows"]), a["stats"], a["rows"][:2], k["rows"][:2]))
            return
    check(served == n, "%s: %d random queries on expired raw rows answered by the tiers alone, equal to a "
          "table that kept its raw rows (%d by a tier)" % (what, n, served))


def rollups_outlive_raw_rows():
    data = os.path.join(WORK, "data-outlive")
    s = Server(data, "outlive")
    now = int(time.time() * 1000)
    t0 = now - 40 * 86400000
    t0 -= t0 % 86400000 - HOUR  # 01:00 of the day 40 days ago
    keep = dict(SCHEMA)
    keep.pop("dedup_key"), keep.pop("version"), keep.pop("deleted")
    check(s.json("PUT", "/tables/k", keep)[0] == 201, "create k (keeps its raw rows)")
    check(s.json("PUT", "/tables/r", dict(SCHEMA, retention={"raw": "30d", "1m": "60d", "1h": "1000d"}))[0] == 201,
          "create r (a dedup table; raw 30d, tiers 60d and 1000d)")
    bad = s.json("PUT", "/tables/x", dict(keep, retention={"raw": "30d", "1m": "7d"}))
    check(bad[0] == 400 and "retention.1m: shorter than retention.raw" in bad[1].get("error", ""),
          "a tier retention shorter than raw is refused: %s" % (bad,))
    st, rng = Stream(31), random.Random(31)
    total = stream_span(s, st, rng, t0, ("r", "k"))
    raw_r = lambda: s.json("POST", "/query", {"table": "r", "from": 0, "source": "raw", "select": [{"fn": "count"}]})[1]
    check(wait_for(lambda: raw_r()["rows"][0][0] == 0, limit=90),
          "retention drops r's raw rows once the tiers hold them: %s %s" % (raw_r(), tiers(s)))
    r = raw_r()
    check("raw_expired_before" in r["stats"], "source raw says its rows expired: %s" % r["stats"])
    _, tr = s.json("GET", "/tables/r")
    check(tr.get("rows") == 0 and tr.get("physical_rows") == 0 and s.metric("strata_table_rows", 'table="r"') == 0,
          "GET /tables and /metrics count the raw rows left (none), not the tiers' buckets: %s" % {
              k: tr.get(k) for k in ("rows", "physical_rows", "partitions")})
    _, a = s.json("POST", "/query", {"table": "r", "from": t0, "to": t0 + SPAN + HOUR, "select": [{"fn": "count"}]})
    check(a["rows"] == [[total]] and a["stats"]["source"] == "rollup",
          "the tiers still count all %d events: %s" % (total, a))
    compare_tables(s, rng, t0, "after retention")
    _, a = s.json("POST", "/query", {"table": "r", "from": t0 + 30000, "to": t0 + HOUR, "interval": "1m",
                                     "select": [{"fn": "count"}]})
    check(a["stats"]["source"] == "rollup" and "raw_expired_before" in a["stats"] and len(a["rows"]) == 59,
          "a range starting inside an expired bucket: the tier's whole buckets, source rollup (no raw rows "
          "left to read): %s" % a["stats"])

    s.stop(signal.SIGKILL)
    s = Server(data, "outlive2")
    check("table r: replayed" not in s.log(),
          "the write-ahead log of the expired rows is not replayed again: %s" % s.log()[-500:])
    compare_tables(s, rng, t0, "after SIGKILL and restart (the saved tiers)")
    code, r = s.json("POST", "/ingest/r", json.dumps(st.event(t0 + HOUR)))
    check(code == 200, "a late event into the expired range is accepted")
    # a retention sweep drops it (one runs every few seconds: more on a loaded machine)
    whole = lambda: s.json("POST", "/query", {"table": "r", "from": t0, "to": t0 + SPAN + HOUR,  # noqa: E731
                                              "select": [{"fn": "count"}]})[1]
    a = harness.wait_for(whole, 30, until=lambda a: a.get("rows") == [[total]])
    check(a["rows"] == [[total]], "and dropped: it changes no answer: %s" % a)
    compare_tables(s, rng, t0, "after the late event", n=20)
    s.stop()


harness.run_parts([auto_equals_raw_through_changes, tiers_saved_and_restored, sigkill_during_rebuilds_and_saves,
                   rollups_outlive_raw_rows, source_errors, tiers_show_in_tables_and_metrics,
                   tiers_of_one_interval, backfill_reaches_back, far_future_first_event, late_policy_dead_letter,
                   late_policy_dead_letter_kafka])
sys.exit(harness.finish())
