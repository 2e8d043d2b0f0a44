"""crash_ingest.py — kill -9 of the real `strata serve` during small-batch HTTP ingest from
many connections, 20 rounds: every acknowledged row must be there exactly once after the
restart.

Each round starts the server on the same data directory, and 16 keep-alive connections
post NDJSON batches of 1 to 20 rows (distinct ids; some batches span two days, so a
request's rows go to two partitions) while memtables are small and young enough that
segments are cut by size and age in the middle of it all. After 0.2 to 1 s the server
gets SIGKILL. A row whose request was answered 200 is acknowledged; a row whose request
had no answer when the kill came may or may not be there. After each restart the table
is read back grouped by id: every acknowledged id must be present once, no id twice, and
no id that was never sent. The server's log must say when it replayed rows from its
write-ahead log, and at the end a clean stop leaves no log records to replay.

usage: crash_ingest.py STRATA_BIN BUILD_DIR SOURCE_DIR
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
CONNECTIONS = 16
SCHEMA = {"columns": [{"name": "ts", "type": "timestamp"}, {"name": "id", "type": "uint64"},
                      {"name": "s", "type": "string"}],
          "time_column": "ts",
          "storage": {"memtable_age": "150ms", "memtable_rows": 2000}}


ERRORS = []


def poster(port, base, stop, acked, pending, rng):
    """Posts batches until stop is set or the server is gone; ids base, base+1, ..."""
    nxt = base
    conn = None
    while not stop.is_set():
        try:
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            n = rng.randint(1, 20)
            ids = list(range(nxt, nxt + n))
            nxt += n
            two_days = rng.random() < 0.3
            body = "".join('{"ts": %d, "id": %d, "s": "v%d"}\n' %
                           (T0 + (DAY if two_days and k % 2 else 0) + i % 86400000, i, i % 13)
                           for k, i in enumerate(ids))
            pending.update(ids)
            conn.request("POST", "/ingest/t", body, {"Content-Type": "application/x-ndjson"})
            resp = conn.getresponse()
            text = resp.read()
            if resp.status == 200 and json.loads(text).get("ingested") == n:
                acked.update(ids)
                pending.difference_update(ids)
            else:
                ERRORS.append("ingest answered %d %r" % (resp.status, text[:200]))
                return  # its rows may or may not be there: they stay pending
        except (OSError, http.client.HTTPException):
            return  # the server is gone (the kill): what was pending stays unknown


def ids_in_table(s):
    st, r = s.json("POST", "/query", {"table": "t", "from": 0, "select": [{"fn": "count"}],
                                      "group_by": ["id"]})
    check(st == 200, "query by id: %s %s" % (st, str(r)[:300]))
    return {row[0]: row[1] for row in r.get("rows", [])}


def main():
    harness.setup("crash_ingest")
    rng = random.Random(int(os.environ.get("CRASH_SEED", "15")))
    data = os.path.join(harness.WORK, "data")
    config = harness.write_json(os.path.join(harness.WORK, "config.json"), {"query_max_groups": 50000000})
    acked, maybe = set(), set()
    replays = 0
    for rnd in range(ROUNDS):
        s = Server(data, "r%d" % rnd, ["--config", config])
        if rnd == 0:
            check(s.json("PUT", "/tables/t", SCHEMA)[0] == 201, "create t")
        else:
            have = ids_in_table(s)
            twice = [i for i, c in have.items() if c != 1]
            missing = [i for i in acked if i not in have]
            unknown = [i for i in have if i not in acked and i not in maybe]
            check(not twice, "round %d: no row twice (%d ids, e.g. %s)" % (rnd, len(twice), twice[:5]))
            check(not missing, "round %d: every acknowledged row is there (%d missing of %d, e.g. %s)"
                  % (rnd, len(missing), len(acked), sorted(missing)[:5]))
            check(not unknown, "round %d: no row that was never sent (%s)" % (rnd, unknown[:5]))
            # What was there is now acknowledged for good; what was not is gone for good.
            acked.update(i for i in have if i in maybe)
            maybe.clear()
            replays += "write-ahead log" in s.log()
        stop = threading.Event()
        round_acked = [set() for _ in range(CONNECTIONS)]
        round_pending = [set() for _ in range(CONNECTIONS)]
        threads = [threading.Thread(target=poster, args=(s.port, (rnd * CONNECTIONS + c) * 10**7, stop,
                                                         round_acked[c], round_pending[c],
                                                         random.Random(rng.random())))
                   for c in range(CONNECTIONS)]
        for t in threads:
            t.start()
        # The kill comes at a random point after the first acknowledgement (a loaded machine
        # may take a while to get there: a round with nothing acknowledged checks nothing).
        harness.wait_for(lambda: any(round_acked), 30, step=0.01)
        time.sleep(rng.uniform(0.0, 0.8))
        s.proc.send_signal(signal.SIGKILL)
        s.proc.wait()
        stop.set()
        for t in threads:
            t.join()
        n = sum(len(a) for a in round_acked)
        check(n > 0, "round %d: some requests were acknowledged before the kill: %d rows" % (rnd, n))
        for c in range(CONNECTIONS):
            acked.update(round_acked[c])
            maybe.update(round_pending[c])
    check(not ERRORS, "every request answered was answered 200: %s" % ERRORS[:3])
    s = Server(data, "last", ["--config", config])
    have = ids_in_table(s)
    check(not [i for i, c in have.items() if c != 1], "at the end no row twice")
    check(all(i in have for i in acked), "at the end every acknowledged row is there")
    replays += "write-ahead log" in s.log()
    check(replays >= ROUNDS // 2, "restarts replayed the log: %d of %d" % (replays, ROUNDS))
    check(s.stop() == 0, "a clean stop")
    s = Server(data, "clean", ["--config", config])
    check("write-ahead log" not in s.log(), "after a clean stop nothing is replayed: %s" % s.log()[-300:])
    check(len(ids_in_table(s)) == len(have), "and every row is still there")
    s.stop()
    print("%d rows acknowledged in %d rounds" % (len(acked), ROUNDS))
    return harness.finish()


if __name__ == "__main__":
    sys.exit(main())
