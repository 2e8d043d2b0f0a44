"""crash_dedup.py — kill -9 of the real `strata serve` while a dedup table takes updates
over HTTP and merges its segments, 20 rounds: after each restart the logical content is
exactly what was acknowledged (nothing lost, nothing superseded back, no key twice).

The table is keyed by [id, ts] with a version and a deleted column. Each of 12 keep-alive
connections owns 1,000 keys for the whole test and posts batches of 1 to 20 rows of its
keys, each row the key's next version (10% of them deletions, some rows sent twice in a
batch, as retries do); a key's time never changes and spreads the keys over two day
partitions. Memtables are small and young, so segments are cut all the time and the
background merge thread merges them (dropping superseded rows); a thread also asks for
POST /optimize now and then, so kills land inside merges too. After 0.3 to 1.2 s the
server gets SIGKILL.

A connection's requests are serial, so per key the table must hold the version of its
last acknowledged request, or that of the one request that was in flight at the kill
(which may or may not have landed), and exactly that version's values; a deleted version
means the key is absent. After each restart the table is read grouped by id (count,
max(version), sum(amount)); whatever landed becomes the known state, and the next round
goes on from it. At the end the merges counted must be many, and a clean stop and start
leaves the same content.

usage: crash_dedup.py STRATA_BIN BUILD_DIR SOURCE_DIR
"""
import http.client
import json
import os
import random
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import harness  # noqa: E402
from harness import Server, check  # noqa: E402

T0 = 1704067200000  # 2024-01-01
DAY = 86400000
ROUNDS = 20
CONNECTIONS = 12
KEYS = 1000
SCHEMA = {"columns": [{"name": "ts", "type": "timestamp"}, {"name": "id", "type": "int64"},
                      {"name": "amount", "type": "int64"}, {"name": "version", "type": "int64"},
                      {"name": "del", "type": "bool"}],
          "time_column": "ts", "dedup_key": ["id", "ts"], "version": "version", "deleted": "del",
          "storage": {"memtable_age": "100ms", "memtable_rows": 1000}}
ERRORS = []


def key_ts(k):
    return T0 + (k * 7919) % (2 * DAY)


def amount(k, v):
    return k * 7 + v


class Conn:
    """A connection's keys: the known state of each (version, deleted; None: never
    landed), and the one request in flight at the kill."""

    def __init__(self, c):
        self.keys = range(c * KEYS, (c + 1) * KEYS)
        self.known = {k: None for k in self.keys}
        self.next_v = {k: 1 for k in self.keys}
        self.pending = {}

    def post(self, port, stop, rng):
        conn = None
        while not stop.is_set():
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                rows = {}
                for k in rng.sample(self.keys, rng.randint(1, 20)):
                    v = self.next_v[k]
                    self.next_v[k] += 1
                    rows[k] = (v, rng.random() < 0.1)
                body = ""
                for k, (v, d) in rows.items():
                    line = '{"ts": %d, "id": %d, "amount": %d, "version": %d, "del": %s}\n' % (
                        key_ts(k), k, amount(k, v), v, "true" if d else "false")
                    body += line * (2 if rng.random() < 0.05 else 1)  # a retry sends it twice
                self.pending = rows
                conn.request("POST", "/ingest/t", body, {"Content-Type": "application/x-ndjson"})
                resp = conn.getresponse()
                text = resp.read()
                if resp.status != 200:
                    ERRORS.append("ingest answered %d %r" % (resp.status, text[:200]))
                    return
                self.known.update(rows)
                self.pending = {}
            except (OSError, http.client.HTTPException):
                return  # the kill: the request in flight may or may not have landed

    def resolve(self, have, what):
        """Checks the table's rows of these keys against the known state and the request
        in flight; what landed becomes known."""
        bad = []
        for k in self.keys:
            got = have.get(k)
            allowed = [self.known[k]]
            if k in self.pending:
                allowed.append(self.pending[k])
            ok = False
            for st in allowed:
                if st is None or st[1]:
                    ok |= got is None
                else:
                    ok |= got == [1, st[0], amount(k, st[0])]
            if not ok:
                bad.append((k, got, allowed))
            elif k in self.pending and got is not None and got[1] == self.pending[k][0]:
                self.known[k] = self.pending[k]
            elif k in self.pending and got is None and self.pending[k][1] and not (
                    self.known[k] is None or self.known[k][1]):
                self.known[k] = self.pending[k]
            self.next_v[k] = max(self.next_v[k], (self.known[k] or (0,))[0] + 1)
        self.pending = {}
        check(not bad, "%s: every key holds its acknowledged version (%d wrong, e.g. %s)" % (what, len(bad), bad[:3]))


def rows_by_id(s):
    st, r = s.json("POST", "/query", {"table": "t", "from": 0, "group_by": ["id"],
                                      "select": [{"fn": "count"}, {"fn": "max", "column": "version"},
                                                 {"fn": "sum", "column": "amount"}]})
    check(st == 200, "query by id: %s %s" % (st, str(r)[:300]))
    return {row[0]: row[1:] for row in r.get("rows", [])}


def optimizer(port, stop, rng):
    while not stop.wait(rng.uniform(0.1, 0.5)):
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            c.request("POST", "/tables/t/optimize", "")
            c.getresponse().read()
        except (OSError, http.client.HTTPException):
            return


def main():
    harness.setup("crash_dedup")
    rng = random.Random(int(os.environ.get("CRASH_SEED", "16")))
    data = os.path.join(harness.WORK, "data")
    conns = [Conn(c) for c in range(CONNECTIONS)]
    merges = 0
    for rnd in range(ROUNDS):
        s = Server(data, "r%d" % rnd)
        if rnd == 0:
            check(s.json("PUT", "/tables/t", SCHEMA)[0] == 201, "create t")
        else:
            have = rows_by_id(s)
            for c in conns:
                c.resolve(have, "round %d" % rnd)
        stop = threading.Event()
        threads = [threading.Thread(target=c.post, args=(s.port, stop, random.Random(rng.random())))
                   for c in conns]
        threads.append(threading.Thread(target=optimizer, args=(s.port, stop, random.Random(rng.random()))))
        for t in threads:
            t.start()
        time.sleep(rng.uniform(0.3, 1.2))
        merges += s.metric("strata_merges_total", 'table="t"') or 0
        s.proc.send_signal(signal.SIGKILL)
        s.proc.wait()
        stop.set()
        for t in threads:
            t.join()
    check(not ERRORS, "every request answered was answered 200: %s" % ERRORS[:3])
    s = Server(data, "last")
    have = rows_by_id(s)
    for c in conns:
        c.resolve(have, "the end")
    check(merges >= ROUNDS, "merges ran during the rounds: %d" % merges)
    check(s.stop() == 0, "a clean stop")
    s = Server(data, "clean")
    check(rows_by_id(s) == have, "after a clean stop and start the same content")
    s.stop()
    p = harness.strata("inspect", "--verify", "--quiet", os.path.join(data, "t"))
    check(p.returncode == 0, "every segment verifies: %s" % p.stderr.decode()[-300:])
    print("%d keys, %d versions acknowledged in %d rounds, %d merges seen"
          % (len(have), sum(sum(c.next_v.values()) - KEYS for c in conns), ROUNDS, merges))
    return harness.finish()


if __name__ == "__main__":
    sys.exit(main())
