"""harness.py — what the Python integration tests share: check() and its tally, the real
`strata serve` and `strata broker` processes driven as a user would (HTTP on loopback,
stderr kept in a log), `strata gen` into Kafka, and waiting for a table to hold N rows.

Usage: `from harness import *` after setting harness.init(strata_bin, work_dir). Every
helper raises nothing on a failed expectation: check() counts it and prints it, and
finish() prints "N passed, M failed" and returns the exit status.
"""
import atexit
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

STRATA = None
WORK = None
passed = failed = 0
_children = []  # every process a test started: a test that raises must not leave them running


def track(proc):
    """Registers proc to be killed when the test program exits, whatever happened."""
    _children.append(proc)
    return proc


@atexit.register
def _kill_children():
    for p in _children:
        if p.poll() is None:
            p.kill()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass


def init(strata, work):
    global STRATA, WORK
    STRATA, WORK = strata, work


def check(cond, what):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print("FAIL:", what, file=sys.stderr)
    return cond


def finish():
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


class Broker:
    """`strata broker`: an embedded Kafka-protocol broker; addr is its bootstrap address."""

    def __init__(self, *args):
        self.err = open(os.path.join(WORK, "broker.log"), "ab")
        self.proc = track(subprocess.Popen([STRATA, "broker", "--quiet", *args], stdout=subprocess.PIPE,
                                           stderr=self.err))
        self.addr = self.proc.stdout.readline().decode().strip()
        if not re.match(r"^127\.0\.0\.1:\d+$", self.addr):
            raise RuntimeError("broker did not print its address: %r" % self.addr)

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=30)


class Server:
    """`strata serve --data DATA` on a free loopback port; its stderr goes to
    WORK/server-TAG.log (read it with log())."""

    def __init__(self, data, tag, extra=(), env=None):
        self.logpath = os.path.join(WORK, "server-%s.log" % tag)
        self.logf = open(self.logpath, "ab")
        full_env = dict(os.environ, **(env or {}))
        self.proc = track(subprocess.Popen([STRATA, "serve", "--data", data, "--listen", "127.0.0.1:0", *extra],
                                           stderr=subprocess.PIPE, stdout=self.logf, env=full_env))
        self.port = None
        self.token = None
        deadline = time.time() + 30
        while time.time() < deadline:
            line = self.proc.stderr.readline()
            self.logf.write(line)
            self.logf.flush()
            m = re.search(r"on http://127\.0\.0\.1:(\d+)/", line.decode(errors="replace"))
            if m:
                self.port = int(m.group(1))
                break
            if not line and self.proc.poll() is not None:
                break
        if not self.port:
            raise RuntimeError("server did not start; see " + self.logpath)
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self):
        for line in self.proc.stderr:
            try:
                self.logf.write(line)
                self.logf.flush()
            except ValueError:
                return

    def log(self):
        with open(self.logpath, errors="replace") as f:
            return f.read()

    def req(self, method, path, body=None, headers=None, timeout=120):
        data = body.encode() if isinstance(body, str) else body
        h = dict(headers or {})
        if self.token:
            h["Authorization"] = "Bearer " + self.token
        r = urllib.request.Request("http://127.0.0.1:%d%s" % (self.port, path), data=data, method=method, headers=h)
        try:
            with urllib.request.urlopen(r, timeout=timeout) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def json(self, method, path, body=None, timeout=120):
        if body is not None and not isinstance(body, (str, bytes)):
            body = json.dumps(body)
        st, text = self.req(method, path, body, timeout=timeout)
        try:
            return st, json.loads(text)
        except ValueError:
            return st, {"_raw": text}

    def text(self, path):
        return self.req("GET", path)[1]

    def count(self, table):
        st, r = self.json("POST", "/query", {"table": table, "from": 0, "select": [{"fn": "count"}]})
        return r["rows"][0][0] if st == 200 else -1

    def open_socket(self):
        return socket.create_connection(("127.0.0.1", self.port), timeout=60)

    def stop(self, sig=signal.SIGTERM):
        self.proc.send_signal(sig)
        rc = self.proc.wait(timeout=60)
        time.sleep(0.1)  # let the drain thread write the last lines
        return rc


def wait_for(fn, limit=30, step=0.2):
    """Calls fn until it returns something true or limit seconds pass; returns the last value."""
    deadline = time.time() + limit
    v = fn()
    while not v and time.time() < deadline:
        time.sleep(step)
        v = fn()
    return v


def wait_count(servers, table, want, limit=60):
    """Waits until the servers together hold `want` rows of table, then a second more (a
    duplicate would show then); returns the count seen last."""
    deadline = time.time() + limit
    got = -1
    while time.time() < deadline:
        got = sum(s.count(table) for s in servers)
        if got == want:
            time.sleep(1.0)
            return sum(s.count(table) for s in servers)
        time.sleep(0.2)
    return got


def gen(brokers, topic, totals, *args):
    """`strata gen` into a topic, waited for; returns the totals it wrote."""
    cmd = [STRATA, "gen", "--brokers", brokers, "--topic", topic, "--quiet", "--totals", totals, *args]
    subprocess.run(cmd, stderr=open(os.path.join(WORK, "gen.log"), "ab"), timeout=120, check=True)
    with open(totals) as f:
        return json.load(f)


def order_schema(name, brokers=None, topic=None, **kafka):
    """The reference order events' schema; with a topic, a Kafka table."""
    sc = {
        "name": name,
        "columns": [
            {"name": "ts", "type": "timestamp"}, {"name": "event_id", "type": "uint64"},
            {"name": "user_id", "type": "uint64"}, {"name": "country", "type": "string"},
            {"name": "category", "type": "string"}, {"name": "status", "type": "string"},
            {"name": "device", "type": "string"}, {"name": "amount", "type": "float64"},
            {"name": "quantity", "type": "int32"}, {"name": "version", "type": "uint64"},
        ],
        "time_column": "ts",
        "storage": {"memtable_age": "300ms"},
    }
    if topic:
        sc["kafka"] = dict({"topic": topic}, **kafka)
        if brokers:
            sc["kafka"]["brokers"] = brokers
    return sc


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f)
    return path
