#!/usr/bin/env python3
"""test_broker_gen.py — `strata broker` and `strata gen` as a user runs them.

The broker prints its address as the first line on stdout and runs until SIGTERM/SIGINT
(exit 0); gen writes the same NDJSON bytes for the same seed, with the slot count asked
for and malformed lines at --bad; --rate paces (2000 events at 1000/s take about 2 s);
gen produces 200,000 events to the broker and exits 0 with totals equal to the NDJSON
run's, which are checked here against the NDJSON itself; bad flags exit 2 with a message.
(What lands in the broker, message by message, is checked by tests/unit/test_broker.c,
which consumes it back with librdkafka: Python has no Kafka client.)
Args: STRATA_BIN BUILD_DIR SOURCE_DIR. Prints "N passed, M failed".
"""
import json
import os
import re
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Broker, check  # noqa: E402

STRATA, BUILD, WORK = harness.setup("broker-gen")


def gen(*args, timeout=120):
    return harness.strata("gen", *args, timeout=timeout)


def totals_of_ndjson(data):
    """Totals recomputed from NDJSON text, in gen --totals' terms (all rows, and the latest
    version of each event_id)."""
    t = {"slots": 0, "events": 0, "bad": 0, "duplicates": 0, "amount_cents_all": 0,
         "country_events_all": {}, "country_cents_all": {}, "status_events_all": {}}
    latest = {}
    for line in data.split(b"\n")[:-1]:
        t["slots"] += 1
        try:
            ev = json.loads(line)
            ok = isinstance(ev, dict) and isinstance(ev.get("ts"), int) and \
                isinstance(ev.get("amount"), float) and isinstance(ev.get("country"), str)
        except ValueError:
            ok = False
        if not ok:
            t["bad"] += 1
            continue
        t["events"] += 1
        cents = round(ev["amount"] * 100)
        t["amount_cents_all"] += cents
        c = ev["country"]
        t["country_events_all"][c] = t["country_events_all"].get(c, 0) + 1
        t["country_cents_all"][c] = t["country_cents_all"].get(c, 0) + cents
        t["status_events_all"][ev["status"]] = t["status_events_all"].get(ev["status"], 0) + 1
        if ev["version"] > 1:
            t["duplicates"] += 1
        prev = latest.get(ev["event_id"])
        if prev is None or ev["version"] > prev["version"]:
            latest[ev["event_id"]] = ev
    t["distinct_events"] = len(latest)
    t["amount_cents_latest"] = sum(round(e["amount"] * 100) for e in latest.values())
    return t


def main():
    # --- broker: address first, up until SIGTERM, exit 0 ---------------------------------
    b = Broker("--partitions", "16")
    check(re.fullmatch(r"127\.0\.0\.1:\d+", b.addr) is not None, "broker address line: %r" % b.addr)
    time.sleep(0.5)
    check(b.proc.poll() is None, "broker stays up")
    rc = b.stop(signal.SIGINT)
    check(rc == 0 and b.rest == "", "broker SIGINT: rc %s, more stdout %r" % (rc, b.rest))
    b3 = Broker("--brokers", "3", "--topic", "a", "--topic", "b", "--partitions", "2", quiet=False)
    check(re.fullmatch(r"127\.0\.0\.1:\d+(,127\.0\.0\.1:\d+){2}", b3.addr) is not None,
          "3 brokers, 3 addresses: %r" % b3.addr)
    check(b3.stop() == 0, "3-broker cluster SIGTERM exit 0")
    with open(os.path.join(WORK, "broker.log"), "rb") as f:
        log = f.read().decode()
    check("3 brokers at" in log and "a, b (2 partitions each)" in log, "broker summary on stderr: %r" % log)

    # --- gen NDJSON: deterministic, counts, bad lines ---------------------------------------
    args = ["--seed", "9", "--count", "20000", "--duplicates", "0.1", "--bad", "0.01", "--late", "0.02"]
    r1 = gen(*args, "--quiet")
    r2 = gen(*args, "--quiet")
    check(r1.returncode == 0 and r1.stdout == r2.stdout and r1.stderr == b"", "same seed, same bytes")
    check(r1.stdout.count(b"\n") == 20000, "20000 lines: %d" % r1.stdout.count(b"\n"))
    r3 = gen("--seed", "10", *args[2:], "--quiet")
    check(r3.stdout != r1.stdout, "another seed, other events")
    mine = totals_of_ndjson(r1.stdout)
    check(150 <= mine["bad"] <= 260, "about 1%% bad lines: %d" % mine["bad"])

    # --- totals JSON agrees with the NDJSON it came with --------------------------------
    tot_file = os.path.join(WORK, "ndjson-totals.json")
    r = gen(*args, "--quiet", "--totals", tot_file)
    with open(tot_file) as f:
        tot = json.load(f)
    check(r.stdout == r1.stdout, "--totals does not change the events")
    for k in ("slots", "events", "bad", "duplicates", "distinct_events", "amount_cents_all", "amount_cents_latest"):
        check(tot.get(k) == mine[k], "totals %s: %s vs NDJSON %s" % (k, tot.get(k), mine[k]))
    nz = lambda d: {k: v for k, v in d.items() if v}
    for k in ("country_events_all", "country_cents_all", "status_events_all"):
        check(nz(tot.get(k, {})) == mine[k], "totals %s agree with the NDJSON" % k)
    check(tot["ts_min"] <= tot["ts_max"], "ts range")
    r = gen(*args, "--quiet", "--totals", "-")
    check(json.loads(r.stderr) == tot, "--totals - writes the same JSON to stderr")
    r = gen("--count", "3")
    check(r.returncode == 0 and b"3 events written" in r.stderr, "summary on stderr: %r" % r.stderr)

    # --- pacing -----------------------------------------------------------------------------
    t0 = time.monotonic()
    r = gen("--count", "2000", "--rate", "1000", "--quiet")
    el = time.monotonic() - t0
    # Not sooner is the pacing; the bound above only says it ends (a loaded machine stalls).
    check(r.returncode == 0 and r.stdout.count(b"\n") == 2000 and 1.8 <= el <= 2.5 + 10 * harness.SLOW,
          "2000 events at 1000/s took %.2f s" % el)
    now_ms = time.time() * 1000
    r = gen("--count", "5", "--rate", "10", "--start", "now", "--quiet")
    ts = [json.loads(l)["ts"] for l in r.stdout.splitlines()]
    check(len(ts) == 5 and all(abs(t - now_ms) < 5000 for t in ts) and ts == sorted(ts) and ts[4] - ts[0] >= 350,
          "--start now with --rate: live times, 100 ms apart: %s (now %d)" % (ts, now_ms))
    p = harness.track(subprocess.Popen([STRATA, "gen", "--rate", "100", "--quiet", "--totals", "-"],
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    first = p.stdout.readline()  # the clock starts at its first event, not at its start
    t0 = time.monotonic()
    time.sleep(1.0)
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=30)
    el = time.monotonic() - t0
    n = (first + out).count(b"\n")
    st = json.loads(err) if err.startswith(b"{") else {}
    check(p.returncode == 0 and 60 <= n <= 100 * el + 10 and st.get("slots") == n,
          "unbounded paced run stopped by SIGTERM: rc %s, %d lines in %.2f s, totals %s" %
          (p.returncode, n, el, st.get("slots")))

    # --- gen to the broker: exit 0, same totals as the NDJSON run ---------------------------
    b = Broker("--partitions", "16", quiet=False)
    kargs = ["--seed", "3", "--count", "200000", "--duplicates", "0.1", "--bad", "0.01"]
    nd_file = os.path.join(WORK, "nd.json")
    k_file = os.path.join(WORK, "kafka.json")
    r_nd = gen(*kargs, "--quiet", "--totals", nd_file)
    t0 = time.monotonic()
    r_k = gen(*kargs, "--brokers", b.addr, "--totals", k_file)
    el = time.monotonic() - t0
    check(r_k.returncode == 0 and r_k.stdout == b"", "gen to broker: rc %s %r" % (r_k.returncode, r_k.stderr[-500:]))
    check(b"200000 events delivered to orders" in r_k.stderr, "delivery summary: %r" % r_k.stderr[-300:])
    with open(nd_file) as f1, open(k_file) as f2:
        check(json.load(f1) == json.load(f2), "Kafka run totals == NDJSON run totals")
    print("gen -> broker: 200000 events in %.2f s" % el, file=sys.stderr)
    # Another topic: auto-created by the broker on first produce.
    r = gen("--count", "1000", "--brokers", b.addr, "--topic", "scratch", "--quiet")
    check(r.returncode == 0, "gen to an auto-created topic: %r" % r.stderr[-300:])
    rc = b.stop()
    check(rc == 0, "broker exit 0 after the load: %s" % rc)

    # A broker that is gone: gen fails within about 10 s, with one clear line, exit 1.
    t0 = time.time()
    r = gen("--count", "10", "--brokers", b.addr)
    took = time.time() - t0
    err = r.stderr.decode()
    check(r.returncode == 1 and "cannot reach Kafka at " + b.addr in err and err.count("\n") == 1 and took < 15 * harness.SLOW,
          "unreachable broker: rc %s after %.1f s: %r" % (r.returncode, took, err[-300:]))

    # --- bad flags: exit 2 with a message ---------------------------------------------------
    for argv, words in [
        (["gen", "--bad", "1.5"], "--bad"),
        (["gen", "--count", "-3"], "--count"),
        (["gen", "--rate", "fast"], "--rate"),
        (["gen", "--span", "1h30m"], "--span"),
        (["gen", "--start", "yesterday"], "--start"),
        (["gen", "--late-max", "0s"], "--late-max"),
        (["gen", "--compression", "brotli", "--brokers", "x:1"], "--compression"),
        (["gen", "--topic", "t"], "--brokers"),
        (["gen", "--nope"], "--nope"),
        (["gen", "--seed"], "--seed"),
        (["gen", "extra"], "extra"),
        (["gen", "--brokers", "127.0.0.1:1", "-X", "no.such=1"], "no.such"),
        (["broker", "--partitions", "0"], "--partitions"),
        (["broker", "--brokers", "99"], "--brokers"),
        (["broker", "--topic", "a/b"], "a/b"),
        (["broker", "--wat"], "--wat"),
    ]:
        r = harness.strata(*argv)
        msg = r.stderr.decode()
        check(r.returncode == 2 and words in msg and r.stdout == b"", "%s: rc %s, %r" % (argv, r.returncode, msg))
    for cmd, flags in [("gen", ["--seed", "--count", "--rate", "--duplicates", "--late", "--late-max", "--bad",
                                "--start", "--span", "--brokers", "--topic", "--compression", "--linger-ms",
                                "--property", "--totals", "--quiet"]),
                       ("broker", ["--partitions", "--topic", "--brokers", "--quiet"])]:
        r = harness.strata(cmd, "--help")
        text = r.stdout.decode()
        missing = [f for f in flags if f not in text]
        check(r.returncode == 0 and not missing, "%s --help documents every flag; missing %s" % (cmd, missing))

    return harness.finish()


if __name__ == "__main__":
    sys.exit(main())
