#!/usr/bin/env python3
"""test_kafka.py — Kafka ingestion end to end, with the real binaries: `strata broker`
(the embedded broker), `strata gen` (the reference events, with exact totals) and
`strata serve` consuming into a table.

1. Exactly once through crashes: gen streams 200k events (5% re-sends, 1% malformed)
   while the server is SIGKILLed three times at random points and restarted; at the end
   count and sum(amount) per country equal the generator's own totals, the malformed
   events are all in the dead-letter topic with their reasons and origin, and /metrics
   counts them.
2. Loss is reported, not hidden: a table lands 1000 events, stops, the broker's retention
   then drops messages it had not read; after restart /health says "degraded" with the
   reason, strata_kafka_lost_messages_total has the gap, and the rest lands.
3. Scale-out: two servers in one consumer group split the topic's partitions (disjoint,
   all covered) and together hold every event exactly once.
4. Backpressure: over a small memory budget the consumer pauses and flushes; every event
   lands and memtables stay bounded.
5. `strata demo` serves live events that keep landing, and Ctrl-C stops it cleanly.
Args: STRATA_BIN BUILD_DIR SOURCE_DIR. Prints "N passed, M failed".
"""
import json
import os
import random
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Broker, Serving, Server, check, gen, order_schema, wait_count, wait_for, write_json  # noqa: E402

STRATA, BUILD, WORK = harness.setup("kafka")


def schema(name, brokers, topic):
    return order_schema(name, brokers, topic,
                        properties={"session.timeout.ms": "3000", "heartbeat.interval.ms": "500"})


def country_answer(s, table):
    st, r = s.json("POST", "/query", {"table": table, "from": 0, "group_by": ["country"],
                                      "select": [{"fn": "count"}, {"fn": "sum", "column": "amount"}]})
    return {row[0]: (row[1], row[2]) for row in r.get("rows", [])} if st == 200 else {}


def exactly_once_through_kills():
    b = Broker("--partitions", "8")
    data = os.path.join(WORK, "eo")
    sch = write_json(os.path.join(WORK, "orders.json"), schema("orders", b.addr, "orders"))
    s = Server(data, "eo", ["--table", sch])
    totals = os.path.join(WORK, "totals-eo.json")
    g = harness.gen_start(b.addr, "orders", totals, "--count", "200000", "--rate", "50000", "--duplicates", "0.05",
                          "--bad", "0.01", "--seed", "7")
    rng = random.Random(11)
    kills = 0
    for _ in range(3):
        time.sleep(rng.uniform(0.5, 1.2))
        s.stop(signal.SIGKILL)
        kills += 1
        s = Server(data, "eo", ["--table", sch])
    g.wait(timeout=120)
    check(g.returncode == 0, "gen exit status %s" % g.returncode)
    t = json.load(open(totals))
    got = wait_count([s], "orders", t["events"])
    check(got == t["events"], "after %d kills: %s rows, generator sent %d good events" % (kills, got, t["events"]))
    ans = country_answer(s, "orders")
    countries = t.get("country_events_all")
    ok = bool(countries)
    for name in countries or {}:
        n, cents = countries[name], t["country_cents_all"][name]
        if n == 0 and name not in ans:
            continue
        have = ans.get(name, (0, 0.0))
        if have[0] != n or round(have[1] * 100) != cents:
            ok = False
            print("country %s: have %s want %d %.2f" % (name, have, n, cents / 100), file=sys.stderr)
    check(countries is not None and ok, "count and sum(amount) per country equal the generator's totals")
    # Dead letters: every malformed event, with its reason and where it came from.
    out = harness.kafka_tail(b.addr, "orders.dlq")
    check(out.returncode == 0, "kafka_tail read the dead-letter topic: exit %d, %s" % (out.returncode, out.stderr[-2000:]))
    dead = []
    for l in filter(None, out.stdout.decode().split("\n")):
        try:
            dead.append(json.loads(l))
        except ValueError:
            check(False, "kafka_tail printed a line that is not JSON: %r" % l[:300])
    origins = {(d["headers"].get("strata.partition"), d["headers"].get("strata.offset")) for d in dead}
    check(len(origins) == t["bad"], "dead-letter topic holds %d distinct bad events, generator sent %d" % (len(origins), t["bad"]))
    check(all(d["headers"].get("strata.error") and d["headers"].get("strata.topic") == "orders" for d in dead),
          "every dead letter has a reason and its origin")
    check(s.metric("strata_kafka_dead_letters_total", 'table="orders",sink="kafka"') is not None,
          "dead letters counted in /metrics")
    st, info = s.json("GET", "/tables/orders")
    check(st == 200 and "watermark" in info and info.get("kafka", {}).get("lag") == 0,
          "table info has the watermark and the consumer: %s" % {k: info.get(k) for k in ("watermark", "kafka")})
    check(s.stop() == 0, "SIGTERM exits 0")
    b.stop()


def loss_is_reported():
    b = Broker("--partitions", "1", "--topic", "gap")
    data = os.path.join(WORK, "gap")
    sch = write_json(os.path.join(WORK, "gap.json"), schema("gap", b.addr, "gap"))
    gen(b.addr, "gap", os.path.join(WORK, "t-gap1.json"), "--count", "1000", "--seed", "3")
    s = Server(data, "gap", ["--table", sch])
    check(wait_count([s], "gap", 1000) == 1000, "first 1000 events landed")
    check(s.stop() == 0, "stopped")
    # Uncompressed, 60k events pass the mock's 5 MiB per partition: the oldest are dropped.
    gen(b.addr, "gap", os.path.join(WORK, "t-gap2.json"), "--count", "60000", "--seed", "4",
        "--compression", "none")
    s = Server(data, "gap2", ["--table", sch])
    health = wait_for(lambda: s.json("GET", "/health")[1], 30, 0.3, until=lambda h: h.get("status") == "degraded")
    check(health.get("status") == "degraded" and "lost" in health.get("reason", ""),
          "/health reports the loss: %s" % health)
    lost = s.metric("strata_kafka_lost_messages_total", 'table="gap",topic="gap"') or 0
    check(lost > 0, "lost messages counted: %d" % lost)
    rows = wait_count([s], "gap", 61000 - lost, 30)
    check(rows == 61000 - lost, "the rest landed: %d rows, want %d (61000 - %d lost)" % (rows, 61000 - lost, lost))
    check("LOST DATA" in s.log(), "the log says so")
    s.stop()
    b.stop()


def two_nodes_split():
    b = Broker("--partitions", "8", "--topic", "split")
    sch = write_json(os.path.join(WORK, "split.json"), schema("split", b.addr, "split"))
    s1 = Server(os.path.join(WORK, "n1"), "n1", ["--table", sch])
    s2 = Server(os.path.join(WORK, "n2"), "n2", ["--table", sch])
    # Both must be in the group before the events come (the rebalance takes a few seconds).
    parts = wait_for(lambda: tuple([p["partition"] for p in s.json("GET", "/tables/split")[1].get("kafka", {})
                                    .get("partitions", [])] for s in (s1, s2)), 30, 0.3,
                     until=lambda ps: ps[0] and ps[1] and len(ps[0]) + len(ps[1]) == 8)
    check(parts[0] and parts[1] and sorted(parts[0] + parts[1]) == list(range(8)),
          "two nodes split the 8 partitions: %s" % (parts,))
    totals = os.path.join(WORK, "t-split.json")
    t = gen(b.addr, "split", totals, "--count", "100000", "--seed", "5")
    got = wait_count([s1, s2], "split", t["events"])
    c1, c2 = s1.count("split"), s2.count("split")
    check(got == t["events"] and c1 > 0 and c2 > 0, "together exactly once: %d + %d = %d of %d" % (c1, c2, got, t["events"]))
    s1.stop()
    s2.stop()
    b.stop()


def backpressure():
    b = Broker("--partitions", "4", "--topic", "bp")
    sc = schema("bp", b.addr, "bp")
    # A budget far below the stream: the consumer must pause, flush and resume, losing nothing.
    sc["storage"] = {"memtable_age": "1h", "memtable_bytes": "1MiB", "memory_budget": "2MiB"}
    sch = write_json(os.path.join(WORK, "bp.json"), sc)
    totals = os.path.join(WORK, "t-bp.json")
    t = gen(b.addr, "bp", totals, "--count", "60000", "--seed", "6")
    s = Server(os.path.join(WORK, "bp"), "bp", ["--table", sch])
    got = wait_count([s], "bp", t["events"])
    pauses = s.metric("strata_kafka_backpressure_pauses_total", 'table="bp",topic="bp"') or 0
    st, info = s.json("GET", "/tables/bp")
    check(got == t["events"] and pauses > 0, "over a 2 MiB budget: %d of %d rows, %d pauses" % (got, t["events"], pauses))
    check(info.get("memtable_bytes", 1 << 30) <= 8 << 20, "memtables stay bounded: %s bytes" % info.get("memtable_bytes"))
    s.stop()
    b.stop()


def demo_runs():
    data = os.path.join(WORK, "demo")
    d = Serving([STRATA, "demo", "--listen", "127.0.0.1:0", "--data", data, "--rate", "5000"], "demo.log",
                must_serve=False)
    p, port = d.proc, d.port
    check(port is not None, "strata demo serves")
    if port is None:
        p.kill()
        return

    def count():
        st, r = d.json("POST", "/query", {"table": "orders", "from": "now-1h", "select": [{"fn": "count"}]}, timeout=30)
        if st != 200:
            raise RuntimeError("query: %s %s" % (st, r))
        return r["rows"][0][0]
    first = wait_for(count, 20, 0.5)
    second = wait_for(count, 20, 0.5, until=lambda n: n > first)
    check(0 < first < second, "live events keep landing: %d then %d" % (first, second))
    built = lambda: [(x.get("interval"), x.get("state")) for x in d.json("GET", "/tables/orders")[1].get("rollups", [])]  # noqa: E731
    tiers = wait_for(built, 30, 0.5, until=lambda t: t == [("1m", "built"), ("1h", "built")])
    check(tiers == [("1m", "built"), ("1h", "built")], "the demo table has its two rollup tiers: %s" % tiers)
    # A second demo on the same --data must not wipe the running one's directory.
    other = harness.strata("demo", "--listen", "127.0.0.1:0", "--data", data)
    err = other.stderr.decode()
    check(other.returncode == 1 and "in use by pid %d" % p.pid in err,
          "a second demo on a running demo's --data is refused: %d %s" % (other.returncode, err.strip()))
    third = count()
    check(third >= second and os.path.exists(os.path.join(data, "orders")),
          "the running demo keeps its data: %d then %d" % (second, third))
    p.send_signal(signal.SIGINT)
    check(p.wait(timeout=60) == 0, "Ctrl-C stops the demo with status 0")
    banner = d.log()
    check("curl -s 127.0.0.1:0" not in banner and "curl -s" in banner, "the banner shows example queries")
    check("The HTTP API (JSON, for curl and dashboards) is on 127.0.0.1:%d, for example" % port in banner
          and "Open " not in banner,
          "the banner does not send users to a page that is not there")


def main():
    harness.run_parts((exactly_once_through_kills, loss_is_reported, two_nodes_split, backpressure, demo_runs))
    return harness.finish()


if __name__ == "__main__":
    sys.exit(main())
