#!/usr/bin/env python3
"""test_serve.py — `strata serve` as a user drives it over HTTP.

Creates a table with PUT, ingests NDJSON (with bad lines), queries it and checks every
answer against totals computed here, checks the error answers for bad input (each with its
status and a message, the server still serving), /metrics, a clean restart (same answers),
a SIGKILL right after an ingest acknowledgement (every acknowledged row is back after
restart), bearer-token auth, DELETE of a table, fill (empty buckets returned), and the
README's main example query on the reference order events. Args: STRATA_BIN BUILD_DIR SOURCE_DIR.
Prints "N passed, M failed".
"""
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Server, check, write_json  # noqa: E402

STRATA, BUILD, WORK = harness.setup("serve")


SCHEMA = {
    "columns": [
        {"name": "ts", "type": "timestamp"},
        {"name": "event_id", "type": "uint64"},
        {"name": "country", "type": "string"},
        {"name": "device", "type": "string"},
        {"name": "amount", "type": "float64"},
        {"name": "quantity", "type": "int32", "default": 1},
    ],
    "time_column": "ts",
    "storage": {"memtable_age": "200ms"},
}
COUNTRIES = ["US", "DE", "FR", "JP", "BR"]
DEVICES = ["mobile", "desktop", "tablet"]
T0 = 1704067200000  # 2024-01-01


def make_events(rng, n, first_id):
    evs = []
    for i in range(n):
        ev = {"ts": T0 + rng.randrange(3 * 86400000), "event_id": first_id + i,
              "country": rng.choice(COUNTRIES), "device": rng.choice(DEVICES),
              "amount": rng.randrange(1, 100000) / 100}
        if rng.random() < 0.5:
            ev["quantity"] = rng.randrange(1, 11)
        if rng.random() < 0.2:
            ev["ts"] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ev["ts"] // 1000)) + ".%03dZ" % (ev["ts"] % 1000)
        evs.append(ev)
    return evs


def ts_of(ev):
    t = ev["ts"]
    if isinstance(t, int):
        return t
    import calendar
    base = calendar.timegm(time.strptime(t[:19], "%Y-%m-%dT%H:%M:%S"))
    return base * 1000 + int(t[20:23])


def totals(evs):
    out = {"count": len(evs), "by_country": {}, "qty": 0, "us_mobile_by_hour": {}}
    for ev in evs:
        c = out["by_country"].setdefault(ev["country"], [0, 0.0])
        c[0] += 1
        c[1] += ev["amount"]
        out["qty"] += ev.get("quantity", 1)
        if ev["country"] == "US" and ev["device"] in ("mobile", "tablet"):
            h = ts_of(ev) // 3600000 * 3600000
            out["us_mobile_by_hour"][h] = out["us_mobile_by_hour"].get(h, 0) + 1
    return out


def verify_answers(s, evs, label):
    want = totals(evs)
    st, r = s.json("POST", "/query", {"table": "orders", "from": 0, "select": [{"fn": "count", "as": "n"}, {"fn": "sum", "column": "quantity", "as": "q"}]})
    check(st == 200 and r["rows"] == [[want["count"], want["qty"]]], "%s: count and sum(quantity): %s %s want %d %d" % (label, st, r, want["count"], want["qty"]))
    st, r = s.json("POST", "/query", {"table": "orders", "from": "2024-01-01T00:00:00Z", "to": "2024-01-04T00:00:00Z",
                                        "select": [{"fn": "count", "as": "n"}, {"fn": "sum", "column": "amount", "as": "gmv"}],
                                        "group_by": ["country"], "order_by": [{"column": "gmv", "desc": True}]})
    ok = st == 200 and [c["name"] for c in r["columns"]] == ["country", "n", "gmv"]
    if ok:
        got = {row[0]: row for row in r["rows"]}
        for c, (n, gmv) in want["by_country"].items():
            ok = ok and got[c][1] == n and abs(got[c][2] - gmv) <= 1e-9 * gmv
        ok = ok and [row[2] for row in r["rows"]] == sorted([row[2] for row in r["rows"]], reverse=True)
    check(ok, "%s: gmv per country: %s %s" % (label, st, r))
    st, r = s.json("POST", "/query", {"table": "orders", "from": 0, "interval": "1h", "select": [{"fn": "count"}],
                                        "where": [{"column": "country", "op": "=", "value": "US"},
                                                  {"or": [{"column": "device", "op": "=", "value": "mobile"},
                                                          {"column": "device", "op": "in", "values": ["tablet"]}]}]})
    got = {row[0]: row[1] for row in r.get("rows", [])}
    check(st == 200 and r["columns"][0] == {"name": "time", "type": "timestamp"} and got == want["us_mobile_by_hour"],
          "%s: US mobile+tablet per hour: %s (%d buckets vs %d)" % (label, st, len(got), len(want["us_mobile_by_hour"])))


def check_fill(s, evs):
    """fill over HTTP: buckets without rows come back ("zero" and "null") for every country
    the answer has, a limit counts them, and the errors name what is missing."""
    lo, hi, h = T0 + 68 * 3600000, T0 + 76 * 3600000, 3600000  # the last 4 hours are past the data
    want = {}
    for ev in evs:
        t = ts_of(ev)
        if lo <= t < hi and ev["device"] == "tablet":
            w = want.setdefault((t // h * h, ev["country"]), [0, 0.0, None])
            w[0] += 1
            w[1] += ev["amount"]
            w[2] = ev["amount"] if w[2] is None else max(w[2], ev["amount"])
    countries = sorted({c for _, c in want})
    q = {"table": "orders", "from": "2024-01-03T20:00:00Z", "to": "2024-01-04T04:00:00Z", "interval": "1h",
         "select": [{"fn": "count", "as": "n"}, {"fn": "sum", "column": "amount", "as": "gmv"},
                    {"fn": "max", "column": "amount", "as": "top"}],
         "where": [{"column": "device", "op": "=", "value": "tablet"}], "group_by": ["country"]}
    for fill, empty in (("zero", [0, 0, None]), ("null", [None, None, None])):
        st, r = s.json("POST", "/query", dict(q, fill=fill))
        rows = r.get("rows", [])
        ok = st == 200 and [row[:2] for row in rows] == [[t, c] for t in range(lo, hi, h) for c in countries]
        for row in rows if ok else []:
            w = want.get((row[0], row[1]))
            ok = ok and (row[2:] == empty if w is None else
                         row[2] == w[0] and abs(row[3] - w[1]) <= 1e-9 * w[1] and row[4] == w[2])
        check(ok and len(rows) == 8 * len(countries) > len(want),
              "fill %s: every hour for every country: %s %s" % (fill, st, str(r)[:300]))
    st, r = s.json("POST", "/query", dict(q, fill="zero", order_by=[{"column": "time", "desc": True}], limit=len(countries)))
    check(st == 200 and r["rows"] == [[hi - h, c, 0, 0, None] for c in countries],
          "fill: limit counts the filled rows: %s %s" % (st, r))
    cases = [
        (dict(q, fill="zero", **{"from": None}), 400, 'fill: "zero" needs "from"'),
        (dict(q, fill="zero", interval=None), 400, 'fill: "zero" needs "interval"'),
        (dict(q, fill="zeros"), 400, "did you mean 'zero'"),
        (dict(q, fill="zero", **{"from": 0, "interval": "1s"}), 422, "more than the 1000000 groups a query may make; "
         "narrow from and to, widen the interval or raise the limit (the limit is "
         "query_max_groups in the config)"),
        ({"table": "orders", "interval": "1m", "select": [{"fn": "count", "as": "time"}]}, 400,
         "select[0].as: 'time' is the name of the time bucket column that interval adds; choose another name"),
    ]
    for body, want_status, words in cases:
        st, r = s.json("POST", "/query", body)
        check(st == want_status and words in r.get("error", ""), "fill error: %s %s (want %d, %r)" % (st, r, want_status, words))


# The README's main example: an hourly series per status over the last day, every hour
# present. Run as written, on the reference order events of the last 23 hours.
README_QUERY = """{"table": "orders", "from": "now-24h", "interval": "1h", "fill": "zero",
  "select": [{"fn": "count", "as": "orders"}, {"fn": "sum", "column": "amount", "as": "gmv"},
             {"fn": "uniq", "column": "user_id", "as": "users"}, {"fn": "quantile", "column": "amount", "q": 0.99, "as": "p99"}],
  "where": [{"column": "country", "op": "=", "value": "US"},
            {"or": [{"column": "device", "op": "=", "value": "mobile"}, {"column": "amount", "op": ">=", "value": 100}]}],
  "group_by": ["status"]}"""


def check_readme_example():
    data = os.path.join(WORK, "readme")
    s = Server(data, "readme")
    st, r = s.json("PUT", "/tables/orders", harness.order_schema("orders"))
    check(st == 201, "readme: create: %s %s" % (st, r))
    p = harness.strata("gen", "--count", "4000", "--start", "now-23h", "--span", "23h", "--seed", "5", "--quiet",
                       timeout=60, check=True)
    evs = [json.loads(line) for line in p.stdout.decode().splitlines()]
    st, r = s.json("POST", "/ingest/orders", p.stdout.decode())
    check(st == 200 and r.get("ingested") == 4000, "readme: ingest: %s %s" % (st, r))
    t0 = int(time.time() * 1000)
    st, r = s.json("POST", "/query", README_QUERY)
    t1 = int(time.time() * 1000)
    h = 3600000
    want = {}
    for ev in evs:
        if ev["country"] == "US" and (ev["device"] == "mobile" or ev["amount"] >= 100):
            k = (ev["ts"] // h * h, ev["status"])
            want[k] = want.get(k, 0) + 1
    statuses = sorted({st_ for _, st_ in want})
    rows = r.get("rows", [])
    hours = sorted({row[0] for row in rows})
    # from now-24h to now: the hour holding now-24h (before the data) to the hour holding now
    ok = (st == 200 and [c["name"] for c in r["columns"]] == ["time", "status", "orders", "gmv", "users", "p99"]
          and hours and (t0 - 24 * h) // h * h <= hours[0] <= (t1 - 24 * h) // h * h
          and (t0 - 1) // h * h <= hours[-1] <= (t1 - 1) // h * h and len(hours) in (24, 25)
          and hours == list(range(hours[0], hours[-1] + h, h))
          and [row[:2] for row in rows] == [[t, x] for t in hours for x in statuses])
    for row in rows if ok else []:
        n = want.get((row[0], row[1]), 0)
        ok = ok and row[2] == n and ((row[3], row[4], row[5]) == (0, 0, None) if n == 0 else row[3] > 0 and row[4] >= 1)
    check(ok and len(want) < len(rows) and sum(row[2] for row in rows) == sum(want.values()),
          "readme example: %d hours x %s, %d rows, %d of them filled: %s %s" % (
              len(hours), statuses, len(rows), len(rows) - len(want), st, str(r)[:400]))
    s.stop()


def main():
    data = os.path.join(WORK, "data")
    rng = random.Random(7)
    s = Server(data, "serve")

    st, r = s.json("GET", "/health")
    check(st == 200 and r.get("status") == "ok", "health: %s %s" % (st, r))
    st, r = s.json("PUT", "/tables/orders", SCHEMA)
    check(st == 201 and r.get("name") == "orders", "create: %s %s" % (st, r))
    st, r = s.json("PUT", "/tables/orders", SCHEMA)
    check(st == 200, "create again, same schema: %s" % st)
    other = dict(SCHEMA, partition_by="hour")
    st, r = s.json("PUT", "/tables/orders", other)
    check(st == 409 and "different" in r.get("error", ""), "create, other schema: %s %s" % (st, r))
    st, r = s.json("PUT", "/tables/bad", '{"columns": [{"name": "ts", "type": "timestamp"}], "time_column": "ts",}')
    check(st == 400 and "line" in r.get("error", ""), "malformed schema: %s %s" % (st, r))
    st, r = s.json("PUT", "/tables/bad", {"columns": [{"name": "ts", "type": "int128"}], "time_column": "ts"})
    check(st == 400 and "columns[0].type" in r.get("error", ""), "bad type: %s %s" % (st, r))

    evs = make_events(rng, 20000, 1)
    lines = [json.dumps(e) for e in evs]
    bad = ['{"ts": 1704067200000, "amount": "abc"}', "not json", '{"country": "US"}', "[1,2]",
           '{"ts": "2024-13-45T25:61:00Z"}']
    body_lines = lines[:5000] + bad + [""] + lines[5000:]
    st, r = s.json("POST", "/ingest/orders", "\n".join(body_lines) + "\n")
    check(st == 200 and r.get("ingested") == 20000 and r.get("rejected") == 5, "ingest: %s %s" % (st, {k: r.get(k) for k in ("ingested", "rejected")}))
    check([e["line"] for e in r.get("errors", [])] == [5001, 5002, 5003, 5004, 5005], "error line numbers: %s" % r.get("errors"))
    check("amount" in r["errors"][0]["error"] and "ts" in r["errors"][2]["error"], "error reasons: %s" % r.get("errors"))
    verify_answers(s, evs, "after ingest")
    check_fill(s, evs)

    # Bad requests: a clear 4xx each, and the server keeps serving.
    cases = [
        ("POST", "/query", '{"table": "orders", "select": [', 400, "line"),
        ("POST", "/query", {"table": "nope", "select": [{"fn": "count"}]}, 404, "nope"),
        ("POST", "/query", {"table": "orders", "select": [{"fn": "sum", "column": "contry"}]}, 400, "contry"),
        ("POST", "/query", {"table": "orders", "select": [{"fn": "median", "column": "amount"}]}, 400, "median"),
        ("POST", "/query", {"table": "orders", "select": [{"fn": "count"}], "where": [{"column": "amount", "op": "=", "value": "x"}]}, 400, "amount"),
        ("POST", "/query", {"table": "orders", "from": "2024-01-02T00:00:00Z", "to": "2024-01-01T00:00:00Z", "select": [{"fn": "count"}]}, 400, "from"),
        ("POST", "/query", "x" * (2 << 20), 413, "over the limit of 1048576 bytes (strata serve --max-body, or max_body in the config)"),
        ("GET", "/query", None, 405, "GET"),
        ("DELETE", "/health", None, 405, "DELETE"),
        ("GET", "/nowhere", None, 404, "nowhere"),
        ("POST", "/ingest/nope", '{"ts": 1}', 404, "nope"),
        ("GET", "/tables/nope", None, 404, "nope"),
    ]
    for method, path, body, want_status, word in cases:
        st, text = s.req(method, path, json.dumps(body) if isinstance(body, dict) else body)
        try:
            r = json.loads(text)
        except ValueError:
            r = {"_raw": text}
        check(st == want_status and word in r.get("error", "") and text.endswith("}\n"),
              "%s %s: %s %r (want %d, '%s', ending with a newline)" % (method, path, st, text[:200], want_status, word))
    st, r = s.json("GET", "/health")
    check(st == 200, "still serving after bad input")

    st, text = s.req("GET", "/metrics")
    check(st == 200 and "strata_ingested_rows_total 20000" in text and "strata_rejected_rows_total 5" in text
          and 'strata_table_rows{table="orders"} 20000' in text and "strata_query_duration_seconds_bucket" in text,
          "metrics: %s" % text[:300])
    st, r = s.json("GET", "/tables/orders")
    check(st == 200 and r.get("rows") == 20000 and r.get("schema", {}).get("time_column") == "ts", "table info: %s" % r)

    # Clean restart: the same answers.
    check(s.stop() == 0, "SIGTERM exits 0")
    s = Server(data, "serve")
    verify_answers(s, evs, "after restart")

    # kill -9 right after an acknowledgement: every acknowledged row is back.
    more = make_events(rng, 3000, 100000)
    st, r = s.json("POST", "/ingest/orders", "\n".join(json.dumps(e) for e in more))
    check(st == 200 and r.get("ingested") == 3000, "ingest before kill: %s" % st)
    s.stop(signal.SIGKILL)
    s = Server(data, "serve")
    verify_answers(s, evs + more, "after SIGKILL")
    s.stop()

    # Auth: with a token every request needs it.
    tok = os.path.join(WORK, "token")
    with open(tok, "w") as f:
        f.write("\n  s3cret-token-0123456789 \n\n")  # whitespace around the token is not part of it
    os.chmod(tok, 0o644)
    bad_tok = os.path.join(WORK, "token-bad")
    with open(bad_tok, "w") as f:
        f.write("s3cret token 0123456789\n")
    p = harness.strata("serve", "--data", data, "--listen", "127.0.0.1:0", "--auth-token-file", bad_tok)
    check(p.returncode != 0 and b"whitespace inside it" in p.stderr, "a token with a space inside: %s" % p.stderr)
    s = Server(data, "serve", ["--auth-token-file", tok])
    check("can be read by other users" in s.log(), "a world-readable token file is warned about")
    # Without the token /health still answers probes, with the status alone.
    st, r = s.json("GET", "/health")
    check(st == 200 and r == {"status": "ok"}, "liveness without a token: %s %s" % (st, r))
    st, r = s.json("GET", "/tables")
    check(st == 401, "no token: %s" % st)
    st, headers, _ = harness.http("GET", s.url("/tables"), timeout=30)
    www = headers.get("WWW-Authenticate") if st >= 400 else None
    check(www == 'Bearer realm="strata"', "401 says how to authenticate: %r" % www)
    st, text = s.req("GET", "/tables", headers={"Authorization": "bearer s3cret-token-0123456789"})
    check(st == 200, "the scheme in lower case (RFC 7235): %s %s" % (st, text[:100]))
    st, text = s.req("GET", "/tables", headers={"Authorization": "Bearer s3cret-token-0123456789 \t"})
    check(st == 200, "whitespace after the header's value is not part of it: %s %s" % (st, text[:100]))
    for wrong in ("wrong-token-0123456789", "s3cret-token-012345678", "s3cret-token-01234567890", "s3cret"):
        s.token = wrong
        st, r = s.json("POST", "/query", {"table": "orders", "select": [{"fn": "count"}]})
        check(st == 401, "wrong token %r (a prefix, one character more): %s" % (wrong, st))
    s.token = "s3cret-token-0123456789"
    st, r = s.json("POST", "/query", {"table": "orders", "from": 0, "select": [{"fn": "count"}]})
    check(st == 200 and r["rows"] == [[23000]], "right token: %s %s" % (st, r))

    # DELETE /tables/{name}: gone at once, files removed, the name reusable, survives restart.
    st, r = s.json("PUT", "/tables/scratch", SCHEMA)
    check(st == 201, "create scratch: %s %s" % (st, r))
    st, r = s.json("POST", "/ingest/scratch", "\n".join(json.dumps(e) for e in make_events(random.Random(3), 500, 1)))
    check(st == 200 and r.get("ingested") == 500, "ingest scratch: %s %s" % (st, r))
    st, r = s.json("DELETE", "/tables/scratch")
    check(st == 200 and r.get("dropped") == "scratch", "drop: %s %s" % (st, r))
    check(not any(n.startswith("scratch") or n.startswith(".dropped") for n in os.listdir(data)), "drop removed the files: %s" % os.listdir(data))
    st, r = s.json("GET", "/tables/scratch")
    check(st == 404, "dropped table is gone: %s %s" % (st, r))
    st, r = s.json("POST", "/query", {"table": "scratch", "select": [{"fn": "count"}]})
    check(st == 404, "query on a dropped table: %s %s" % (st, r))
    st, r = s.json("DELETE", "/tables/scratch")
    check(st == 404 and "scratch" in r.get("error", ""), "drop again: %s %s" % (st, r))
    st, r = s.json("PUT", "/tables/scratch", SCHEMA)
    check(st == 201 and r.get("rows") == 0, "the name is free again: %s %s" % (st, r))
    st, r = s.json("DELETE", "/tables/scratch")
    check(st == 200, "drop the new one: %s" % st)
    s.stop()
    s = Server(data, "serve", ["--auth-token-file", tok])
    s.token = "s3cret-token-0123456789"
    st, r = s.json("GET", "/tables")
    check(st == 200 and [t["name"] for t in r.get("tables", [])] == ["orders"], "after restart only orders: %s" % r)
    s.stop()
    # The query memory limit stops a query with a clear error; the server keeps serving.
    s = Server(data, "serve", ["--query-memory", "64KiB"])
    big = {"table": "orders", "from": 0, "group_by": ["event_id"], "select": [{"fn": "quantile", "column": "amount", "q": 0.5}]}
    st, r = s.json("POST", "/query", big)
    check(st == 422 and "memory limit of 64KiB" in r.get("error", "") and "--query-memory" in r.get("error", ""),
          "query over the memory limit names the limit and its setting: %s %s" % (st, r))
    st, r = s.json("POST", "/query", {"table": "orders", "from": 0, "select": [{"fn": "count"}]})
    check(st == 200 and r["rows"] == [[23000]], "small query under the limit: %s %s" % (st, r))
    s.stop()
    p = harness.strata("serve", "--data", data, "--listen", "0.0.0.0:0")
    check(p.returncode == 2 and b"auth-token-file" in p.stderr, "0.0.0.0 without a token is refused: %d %s" % (p.returncode, p.stderr))
    p = harness.strata("serve", "--data", data, "--listen", "18820")
    check(p.returncode == 2 and b"is not HOST:PORT (for example 127.0.0.1:8686" in p.stderr,
          "a bare port: %d %s" % (p.returncode, p.stderr))
    for listen, want in (("127.0.0.1:70000", b"a port is a number from 0 to 65535"),
                         ("example.com:8686", b"the host must be an IP address of this machine or localhost")):
        p = harness.strata("serve", "--data", data, "--listen", listen)
        check(p.returncode == 2 and want in p.stderr, "--listen %s: %d %s" % (listen, p.returncode, p.stderr))
    # Loopback is loopback: localhost and [::1] need no token.
    for listen, url_host in (("localhost:0", "127.0.0.1"), ("[::1]:0", "[::1]")):
        proc = harness.track(subprocess.Popen([STRATA, "serve", "--data", data, "--listen", listen], stderr=subprocess.PIPE))
        line = harness.read_until_serving(proc, limit=20)
        m = re.search(r"on (http://\S+:\d+)/", line)
        ok = False
        if m:
            ok = harness.http("GET", m.group(1) + "/health", timeout=30)[0] == 200 and url_host in m.group(1)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        check(ok, "--listen %s serves without a token: %r" % (listen, line))
    # Flags and config files: messages that say what is expected.
    typo = write_json(os.path.join(WORK, "typo.json"), {"query_timout": "5s"})
    empty = write_json(os.path.join(WORK, "empty.json"), {})
    zero = write_json(os.path.join(WORK, "zero-timeout.json"), {"query_timeout": "0s"})
    for args, want in ((["--query-timeout", "5"], b"(a number with a unit: 500ms, 30s, 2m)"),
                       (["--query-timeout", "0s"], b"--query-timeout (query_timeout in a config): give a duration above 0"),
                       (["--config", zero], b"give a duration above 0, e.g. 30s"),
                       (["--query-memory", "1KiB"], b"--query-memory (query_memory in a config): under 64KiB is too little"),
                       (["--query-memory", "0"], b"give at least 64KiB (the default is 1GiB)"),
                       (["--config", typo], b"unknown setting 'query_timout' (did you mean 'query_timeout'?)"),
                       (["--ingest-memory", "1KiB"], b"give at least 64KiB"),
                       (["--config", os.path.join(WORK, "nope.json")], b"nope.json: No such file or directory")):
        p = harness.strata("serve", "--data", data, *args)
        check(p.returncode == 2 and want in p.stderr, "%s: %d %s" % (args, p.returncode, p.stderr))
    # Bad usage is worded one way and exits 2 in every command; `strata help CMD` is its --help.
    for cmd in ("serve", "demo", "inspect", "gen", "broker"):
        p = harness.strata(cmd, "--bogus")
        check(p.returncode == 2 and (b"strata %s: unknown option '--bogus'\n(see strata %s --help)\n" %
                                     (cmd.encode(), cmd.encode())) in p.stderr,
              "%s --bogus: %d %r" % (cmd, p.returncode, p.stderr[:300]))
        p = harness.strata("help", cmd)
        q = harness.strata(cmd, "--help")
        check(p.returncode == 0 and q.returncode == 0 and p.stdout == q.stdout and p.stdout.startswith(b"usage: strata " + cmd.encode()),
              "strata help %s is strata %s --help: %r" % (cmd, cmd, p.stdout[:100]))
    for cmd in ("serve", "inspect", "demo"):
        p = harness.strata(cmd, "--data" if cmd != "inspect" else "--rows")
        check(p.returncode == 2 and b"needs a value\n(see strata %s --help)" % cmd.encode() in p.stderr,
              "%s with a flag missing its value: %d %r" % (cmd, p.returncode, p.stderr[:300]))
    p = harness.strata("serve", "--help")
    check(all(f in p.stdout.split(b"\n\n")[0] for f in (b"--max-body", b"--query-timeout", b"--kafka-brokers")),
          "serve's usage line names every flag: %r" % p.stdout[:400])
    p = harness.strata("serve", "--listen", "127.0.0.1:0", "--config", empty)
    check(p.returncode == 2 and b'--data DIR (or "data" in a --config file) is required' in p.stderr,
          "a config without data: %s" % p.stderr)
    p = harness.strata("demo", "--rate", "0")
    check(p.returncode == 2 and b"above 0 and at most 10000000, e.g. --rate 5000" in p.stderr, "demo --rate 0: %s" % p.stderr)
    # Paths in a config file are relative to the file, wherever strata is started from.
    cdir = os.path.join(WORK, "cfgdir")
    os.makedirs(cdir)
    write_json(os.path.join(cdir, "t.json"), dict(SCHEMA, name="cfgtable"))
    write_json(os.path.join(cdir, "strata.json"), {"data": "cfgdata", "tables": ["t.json"], "listen": "127.0.0.1:0"})
    proc = harness.track(subprocess.Popen([STRATA, "serve", "--config", "cfgdir/strata.json"], cwd=WORK,
                                          stderr=subprocess.PIPE))
    line = harness.read_until_serving(proc, limit=20)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)
    check("serving 1 table(s)" in line and os.path.isfile(os.path.join(cdir, "cfgdata", "cfgtable", "schema.json")),
          "config paths are relative to the config file: %r" % line)
    # strata demo on a port that is taken: no banner of URLs that do not work, one error.
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    p = harness.strata("demo", "--listen", "127.0.0.1:%d" % taken.getsockname()[1], "--data",
                       os.path.join(WORK, "demo-taken"), timeout=60)
    taken.close()
    check(p.returncode == 1 and b"curl" not in p.stdout and b"cannot listen on" in p.stderr and b"--listen HOST:PORT" in p.stderr,
          "demo on a taken port: %d %r %r" % (p.returncode, p.stdout[:200], p.stderr[-300:]))
    # Probes and browsers: HEAD and OPTIONS.
    s = Server(data, "serve")
    st, _ = s.req("HEAD", "/health")
    check(st == 200, "HEAD /health: %s" % st)
    st, headers, _ = harness.http("OPTIONS", s.url("/tables/orders"), timeout=30)
    allow = headers.get("Allow")
    check(st == 204 and allow == "GET, HEAD, PUT, DELETE, OPTIONS", "OPTIONS: %s %s" % (st, allow))
    st, r = s.json("PATCH", "/health")
    check(st == 405 and "allowed: GET, HEAD, OPTIONS" in r.get("error", ""), "405 says what is allowed: %s %s" % (st, r))
    st, r = s.json("PUT", "/tables/orders", dict(SCHEMA, partition_by="hour"))
    check(st == 409 and "partition_by" in r.get("error", "") and "\"hour\" in the request" in r.get("error", ""),
          "409 names the first field that differs: %s" % r)
    s.stop()
    check("strata: http: " not in s.log(), "the log has no libmicrohttpd complaint: %s" %
          [l for l in s.log().splitlines() if "strata: http: " in l][:3])
    check_readme_example()
    return harness.finish()


if __name__ == "__main__":
    sys.exit(main())
