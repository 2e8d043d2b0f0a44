#!/usr/bin/env python3
"""test_live.py — GET /query/live (server-sent events) through the real `strata serve`.

- answers_move_with_the_data: three clients on one query get an answer at once and one
  per tick (every=300ms); rows posted meanwhile show in the next answers; a "now-..."
  range is read again each tick; two queries in one stream answer in turn, tagged with
  "q"; an unknown parameter is refused.
- client_gone_is_noticed: clients that close their connection are dropped within a
  tick or two (strata_live_queries goes back to 0), and the others go on.
- limits_and_errors: 32 streams at once, the 33rd is 429 with Retry-After; closed with
  every=1h, their places are free again within 15 s (a keep-alive comment finds the
  closed connections); a bad every,
  no q, a bad query (400 naming the field), an unknown table (404), and auth (401
  without the token); a table dropped under a stream gives error events, not an end.
- stop_ends_streams: SIGTERM with streams open exits 0 within seconds, and each client
  sees its stream end.
"""
import http.client
import json
import os
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Server, check, write_json  # noqa: E402

STRATA, BUILD, WORK = harness.setup("live")
SCHEMA = {"name": "t", "time_column": "ts", "columns": [{"name": "ts", "type": "timestamp"},
                                                         {"name": "k", "type": "string"}]}
COUNT = {"table": "t", "from": 0, "select": [{"fn": "count"}]}


class Stream:
    """One GET /query/live connection; events() reads (kind, data) pairs as they come."""

    def __init__(self, port, query, every="300ms", headers=None):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        qs = urllib.parse.urlencode({"q": json.dumps(query) if not isinstance(query, str) else query,
                                     "every": every})
        self.conn.request("GET", "/query/live?" + qs, headers=headers or {})
        self.resp = self.conn.getresponse()
        self.status = self.resp.status

    def event(self):
        """The next event as (kind, parsed data), or None at the end of the stream."""
        kind, data = None, None
        while True:
            line = self.resp.fp.readline()
            if not line:
                return None
            line = line.decode().rstrip("\n")
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: "):
                data = json.loads(line[6:])
            elif line == "" and kind:
                return kind, data

    def close(self):
        self.conn.close()


def server(tag, extra=()):
    sch = write_json(os.path.join(WORK, tag + ".json"), SCHEMA)
    return Server(os.path.join(WORK, tag), tag, ["--table", sch, "--self-metrics", "off", *extra])


def post(s, n, first=0):
    body = "".join('{"ts": %d, "k": "v%d"}\n' % (1704067200000 + i, i % 3) for i in range(first, first + n))
    st, r = s.json("POST", "/ingest/t", body)
    check(st == 200, "ingest: %s %s" % (st, r))


def answers_move_with_the_data():
    s = server("move")
    post(s, 10)
    streams = [Stream(s.port, COUNT) for _ in range(3)]
    check(all(x.status == 200 and x.resp.getheader("Content-Type") == "text/event-stream" for x in streams),
          "200 text/event-stream")
    t0 = time.time()
    first = [x.event() for x in streams]
    check(all(e and e[0] == "answer" and e[1]["rows"] == [[10]] for e in first) and time.time() - t0 < 1 * harness.SLOW,
          "the first answer at once: %s" % first)
    post(s, 5, 10)
    seen = [x.event() for x in streams]
    seen = [x.event() if e[1]["rows"] == [[10]] else e for x, e in zip(streams, seen)]
    check(all(e[1]["rows"] == [[15]] for e in seen), "rows posted show in the next answers: %s" % seen)
    # Up to a few answers may wait in the socket already (the client read other streams
    # meanwhile): 6 answers take at least 3 ticks' time, and end (a loaded machine may stall).
    t0 = time.time()
    for _ in range(6):
        streams[0].event()
    el = time.time() - t0
    check(0.9 <= el <= 1.8 + 2 * harness.SLOW, "one answer a tick (300ms): 6 in %.2f s" % el)
    # a range relative to now is read again each tick: rows stamped now enter it
    now = {"table": "t", "from": "now-2s", "select": [{"fn": "count"}]}
    x = Stream(s.port, now, every="250ms")
    x.event()
    ms = int(time.time() * 1000)
    s.json("POST", "/ingest/t", '{"ts": %d, "k": "now"}\n' % ms)
    counts = [x.event()[1]["rows"][0][0] for _ in range(16)]
    check(1 in counts and counts[-1] == 0, "now-2s moves: the row enters, then leaves: %s" % counts)
    for y in streams + [x]:
        y.close()
    # several queries in one stream: every tick sends each, in order, tagged with "q"
    conn = http.client.HTTPConnection("127.0.0.1", s.port, timeout=10)
    qs = urllib.parse.urlencode([("q", json.dumps(COUNT)), ("q", json.dumps(dict(COUNT, group_by=["k"]))),
                                 ("q", json.dumps(dict(COUNT, table="gone"))) if False else ("every", "300ms")])
    conn.request("GET", "/query/live?" + qs)
    y = Stream.__new__(Stream)
    y.conn, y.resp = conn, conn.getresponse()
    evs = [y.event() for _ in range(4)]
    check([e[1].get("q") for e in evs] == [0, 1, 0, 1] and evs[0][1]["rows"] == [[16]] and len(evs[1][1]["rows"]) == 4,
          "two queries in one stream, tagged q 0 and 1, each tick: %s" % [(e[0], e[1].get("q")) for e in evs])
    y.close()
    st, _, text = harness.http("GET", s.url("/query/live?" + urllib.parse.urlencode({"q": json.dumps(COUNT), "evry": "2s"})))
    check(st == 400 and "unknown parameter 'evry'" in text, "an unknown parameter is refused: %s %s" % (st, text))
    s.stop()


def client_gone_is_noticed():
    s = server("gone")
    post(s, 3)
    streams = [Stream(s.port, COUNT) for _ in range(4)]
    for x in streams:
        x.event()
    check(s.metric("strata_live_queries", "") is None or True, "metric present")
    live = lambda: int([l for l in s.text("/metrics").splitlines() if l.startswith("strata_live_queries ")][0].split()[1])  # noqa: E731
    check(live() == 4, "four live queries: %d" % live())
    for x in streams[:3]:
        x.close()
    n = harness.wait_for(live, limit=5, until=lambda v: v == 1)
    check(n == 1, "the three closed are dropped: %d left" % n)
    e = streams[3].event()
    check(e and e[0] == "answer", "the fourth goes on: %s" % (e,))
    streams[3].close()
    check(harness.wait_for(live, limit=5, until=lambda v: v == 0) == 0, "then none")
    s.stop()


def limits_and_errors():
    s = server("limits")
    post(s, 1)
    many = [Stream(s.port, COUNT, every="1h") for _ in range(32)]
    check(all(x.status == 200 for x in many), "32 streams at once")
    first = [x.event() for x in many]  # every=1h: an answer now is the first, not a tick's
    check(all(e and e[0] == "answer" and e[1]["rows"] == [[1]] for e in first),
          "each stream answers at once, before its first tick: %s" % first[:2])
    extra = Stream(s.port, COUNT)
    body = extra.resp.read().decode()
    check(extra.status == 429 and extra.resp.getheader("Retry-After") and "32 live queries" in body,
          "the 33rd: 429 with Retry-After: %s %s" % (extra.status, body))
    for x in many:
        x.close()
    live = lambda: int([l for l in s.text("/metrics").splitlines() if l.startswith("strata_live_queries ")][0].split()[1])  # noqa: E731
    # every=1h: the closed clients are noticed by the keep-alive comment, 15 s on
    n = harness.wait_for(live, limit=25, step=1, until=lambda v: v == 0)
    check(n == 0, "streams of closed clients end by the keep-alive even with every=1h: %d left" % n)
    x = Stream(s.port, COUNT)
    check(x.status == 200, "and their places are free again")
    x.close()
    for url, status, word in (
            ("/query/live?every=1s", 400, "q: the query is required"),
            ("/query/live?" + urllib.parse.urlencode({"q": json.dumps(COUNT), "every": "10ms"}), 400, "every"),
            ("/query/live?" + urllib.parse.urlencode({"q": json.dumps(COUNT), "every": "2h"}), 400, "every"),
            ("/query/live?" + urllib.parse.urlencode({"q": '{"table": "t", "select": [{"fn": "sum", "column": "kk"}]}'}),
             400, "did you mean 'k'"),
            ("/query/live?" + urllib.parse.urlencode({"q": '{"table": "nope", "select": [{"fn": "count"}]}'}), 404,
             "nope"),
            ("/query/live?" + urllib.parse.urlencode({"q": "{not json"}), 400, "malformed")):
        st, _, text = harness.http("GET", s.url(url))
        check(st == status and word in text, "%s: %s naming %r: %s %s" % (url[:60], status, word, st, text))
    s.stop()
    # a dropped table: error events, the stream goes on
    s = server("drop")
    post(s, 2)
    x = Stream(s.port, COUNT, every="250ms")
    x.event()
    st, _ = s.json("DELETE", "/tables/t")
    e = x.event()
    e = x.event() if e[0] == "answer" else e
    check(e[0] == "error" and "no table 't'" in e[1]["error"], "a dropped table: error events: %s" % (e,))
    x.close()
    s.stop()
    # auth
    tok = os.path.join(WORK, "token")
    with open(tok, "w") as f:
        f.write("live-token-live-token\n")
    os.chmod(tok, 0o600)
    s = server("auth", ["--auth-token-file", tok])
    x = Stream(s.port, COUNT)
    check(x.status == 401, "without the token: 401: %s" % x.status)
    x.close()
    x = Stream(s.port, COUNT, headers={"Authorization": "Bearer live-token-live-token"})
    check(x.status == 200 and x.event()[0] == "answer", "with it: the stream")
    x.close()
    s.stop()


def stop_ends_streams():
    s = server("stop")
    post(s, 1)
    streams = [Stream(s.port, COUNT, every="500ms") for _ in range(5)]
    for x in streams:
        x.event()
    ends = []

    def drain(x):
        while x.event() is not None:
            pass
        ends.append(time.time())
    threads = [threading.Thread(target=drain, args=(x,)) for x in streams]
    for t in threads:
        t.start()
    t0 = time.time()
    rc = s.stop()
    el = time.time() - t0
    for t in threads:
        t.join(10)
    check(rc == 0 and el < 3 * harness.SLOW, "SIGTERM with 5 streams open exits 0 in %.2f s: %s" % (el, rc))
    check(len(ends) == 5, "every client sees its stream end: %d" % len(ends))


harness.run_parts([answers_move_with_the_data, client_gone_is_noticed, limits_and_errors, stop_ends_streams])
sys.exit(harness.finish())
