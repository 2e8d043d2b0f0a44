"""harness.py — the scaffolding every Python integration test shares, so a test file holds
only what it checks.

- setup(name): the test's arguments (STRATA_BIN BUILD_DIR SOURCE_DIR [test names...]) and
  a fresh work directory BUILD_DIR/test-tmp/NAME-PID; finish() prints "N passed, M
  failed", removes the work directory when nothing failed (kept for a look otherwise) and
  returns the exit status.
- check(cond, what): counts an expectation and prints it when it fails; nothing here raises
  on a failed expectation. run_parts(parts) runs a test's functions one by one: one that
  raises is one failed check and the rest still run; names after SOURCE_DIR pick some.
- The real processes, driven as a user would: `strata serve` (Server) and `strata demo`
  (Serving) on a free loopback port with their stderr kept in a log, `strata broker`
  (Broker), `strata gen` into Kafka (gen, gen_start), any other command run to its end
  (strata), the dead-letter topics read back (kafka_tail). Every process started here is
  killed when the test program exits, whatever happened (a test that raised once left a
  demo at 66% CPU for two hours).
- HTTP on loopback (http, Server.req/json/count/metric) and waiting (wait_for, wait_count).
- SLOW: how many times slower than a release build this run may be (STRATA_TEST_SLOWDOWN,
  set by the sanitizer test presets; 1 otherwise). Every wait here is scaled by it, and
  tests scale their own deadlines by it: a deadline says "it never came", not "it was slow".
"""
import atexit
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

SLOW = float(os.environ.get("STRATA_TEST_SLOWDOWN") or 1)
STRATA = None
BUILD = None
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


def setup(name):
    """Reads STRATA_BIN and BUILD_DIR from the command line, makes WORK =
    BUILD_DIR/test-tmp/NAME-PID afresh and returns (STRATA, BUILD, WORK)."""
    global BUILD
    BUILD = sys.argv[2]
    work = os.path.join(BUILD, "test-tmp", "%s-%d" % (name, os.getpid()))
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    init(sys.argv[1], work)
    return STRATA, BUILD, WORK


def check(cond, what):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print("FAIL:", what, file=sys.stderr)
    return cond


def finish():
    """Prints the tally; removes WORK when nothing failed. Returns the exit status."""
    print("%d passed, %d failed" % (passed, failed))
    if failed == 0 and WORK:
        shutil.rmtree(WORK, ignore_errors=True)
    return 1 if failed else 0


def run_parts(parts):
    """Runs each function of parts (only those named on the command line after SOURCE_DIR,
    when some are), printing "ok"/"FAIL" and its time on stderr. A function that raises is
    one failed check, and the next one still runs."""
    only = set(sys.argv[4:])
    for part in parts:
        if only and part.__name__ not in only:
            continue
        before = failed
        t0 = time.time()
        try:
            part()
        except Exception as e:  # a test that cannot go on is one failure, the rest still run
            check(False, "%s raised %r" % (part.__name__, e))
        print("%s %s (%.1f s)" % ("ok  " if failed == before else "FAIL", part.__name__, time.time() - t0),
              file=sys.stderr)
    if only and not any(part.__name__ in only for part in parts):
        check(False, "no test matches %s" % sorted(only))


def strata(*args, timeout=30, **kw):
    """`strata ARGS...` run to its end, output captured: a subprocess.CompletedProcess."""
    return subprocess.run([STRATA, *args], capture_output=True, timeout=timeout, **kw)


def http(method, url, body=None, headers=None, timeout=120):
    """One HTTP request; returns (status, headers, text), also for 4xx and 5xx answers."""
    data = body.encode() if isinstance(body, str) else body
    r = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
    try:
        with urllib.request.urlopen(r, timeout=timeout) as resp:
            return resp.status, resp.headers, resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read().decode()


SERVING = re.compile(r" on (http://\S+:\d+)/")


def read_until_serving(proc, log=None, limit=30):
    """Reads proc's stderr line by line (each copied to the file log, when given) until the
    line saying where it serves ("... on http://HOST:PORT/"); returns that line as text, or
    "" when proc ended or limit (times SLOW) seconds passed first."""
    deadline = time.time() + limit * SLOW
    while time.time() < deadline:
        line = proc.stderr.readline()
        if log:
            log.write(line)
            log.flush()
        text = line.decode(errors="replace")
        if SERVING.search(text):
            return text
        if not line and proc.poll() is not None:
            break
    return ""


class Serving:
    """A strata process that serves HTTP on loopback (`strata serve`, `strata demo`): its
    stdout and stderr go to WORK/LOGNAME (read it with log()); port is where it listens,
    None when it never said (with must_serve, that raises RuntimeError instead)."""

    def __init__(self, argv, logname, env=None, must_serve=True):
        self.logpath = os.path.join(WORK, logname)
        self.logf = open(self.logpath, "ab")
        full_env = dict(os.environ, **(env or {}))
        self.proc = track(subprocess.Popen(argv, stderr=subprocess.PIPE, stdout=self.logf, env=full_env))
        self.token = None
        m = re.search(r"on http://127\.0\.0\.1:(\d+)/", read_until_serving(self.proc, self.logf))
        self.port = int(m.group(1)) if m else None
        if not self.port and must_serve:
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

    def url(self, path=""):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def req(self, method, path, body=None, headers=None, timeout=120):
        h = dict(headers or {})
        if self.token:
            h["Authorization"] = "Bearer " + self.token
        st, _, text = http(method, self.url(path), body, h, timeout)
        return st, text

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

    def metric(self, name, labels):
        """The value of the /metrics line `name{labels} N`, or None when there is none."""
        m = re.search(r"^%s\{%s\} (\d+)$" % (re.escape(name), re.escape(labels)), self.text("/metrics"), re.M)
        return int(m.group(1)) if m else None

    def open_socket(self):
        return socket.create_connection(("127.0.0.1", self.port), timeout=60)

    def wait_exit(self, timeout):
        """The exit status, or None when the process still runs after timeout seconds."""
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        self._tell_death(rc)
        return rc

    def stop(self, sig=signal.SIGTERM):
        self.proc.send_signal(sig)
        rc = self.proc.wait(timeout=60)
        self._tell_death(rc)
        return rc

    def _tell_death(self, rc):
        """A death by a signal other than SIGKILL (an abort, a crash) prints the log's tail,
        so a CI log shows why without the work directory."""
        time.sleep(0.1)  # let the drain thread write the last lines
        if rc is not None and rc < 0 and rc != -signal.SIGKILL:
            tail = self.log().splitlines()[-25:]
            sys.stderr.write("%s died of signal %d; the end of %s:\n%s\n" %
                             (os.path.basename(self.proc.args[0]), -rc, self.logpath,
                              "\n".join("  | " + l for l in tail)))


class Server(Serving):
    """`strata serve --data DATA` on a free loopback port; its output goes to
    WORK/server-TAG.log."""

    def __init__(self, data, tag, extra=(), env=None):
        super().__init__([STRATA, "serve", "--data", data, "--listen", "127.0.0.1:0", *extra],
                         "server-%s.log" % tag, env)


class Broker:
    """`strata broker` (--quiet unless quiet=False): an embedded Kafka-protocol broker; addr
    is its bootstrap address, the first line it prints; its stderr goes to WORK/broker.log."""

    def __init__(self, *args, quiet=True):
        self.err = open(os.path.join(WORK, "broker.log"), "ab")
        self.proc = track(subprocess.Popen([STRATA, "broker", *(["--quiet"] if quiet else []), *args],
                                           stdout=subprocess.PIPE, stderr=self.err))
        self.addr = self.proc.stdout.readline().decode().strip()
        if not re.match(r"^127\.0\.0\.1:\d+(,127\.0\.0\.1:\d+)*$", self.addr):
            raise RuntimeError("broker did not print its address: %r" % self.addr)

    def stop(self, sig=signal.SIGTERM):
        """Stops it; returns the exit status. What it printed after its address is in rest."""
        self.proc.send_signal(sig)
        rc = self.proc.wait(timeout=30)
        self.rest = self.proc.stdout.read().decode()
        self.err.close()
        return rc


def wait_for(fn, limit=30, step=0.2, until=bool):
    """Calls fn until until(its value) is true or limit (times SLOW) seconds pass; returns the
    last value."""
    deadline = time.time() + limit * SLOW
    v = fn()
    while not until(v) and time.time() < deadline:
        time.sleep(step)
        v = fn()
    return v


def wait_count(servers, table, want, limit=60):
    """Waits until the servers together hold `want` rows of table (limit times SLOW seconds
    at most), then a second more (a duplicate would show then); returns the count seen
    last."""
    deadline = time.time() + limit * SLOW
    got = -1
    while time.time() < deadline:
        got = sum(s.count(table) for s in servers)
        if got == want:
            time.sleep(1.0)
            return sum(s.count(table) for s in servers)
        time.sleep(0.2)
    return got


def gen_start(brokers, topic, totals, *args):
    """`strata gen` producing into topic, started (its stderr to WORK/gen.log); with totals
    (a path) it writes its totals there at the end. Returns the process."""
    cmd = [STRATA, "gen", "--brokers", brokers, "--topic", topic, "--quiet",
           *(["--totals", totals] if totals else []), *args]
    return track(subprocess.Popen(cmd, stderr=open(os.path.join(WORK, "gen.log"), "ab")))


def gen(brokers, topic, totals, *args):
    """gen_start, waited for; raises when gen fails. Returns the totals it wrote (None
    without a totals path)."""
    p = gen_start(brokers, topic, totals, *args)
    if p.wait(timeout=120) != 0:
        raise subprocess.CalledProcessError(p.returncode, "strata gen")
    if not totals:
        return None
    with open(totals) as f:
        return json.load(f)


def kafka_tail(brokers, topic, idle_ms="3000"):
    """The messages of topic as BUILD/tests/kafka_tail prints them (one JSON object a line:
    value, headers...), read until idle_ms (times SLOW) pass without one: a CompletedProcess. Under the
    tsan preset it gets its own suppressions (tests/tsan-kafka_tail.supp: librdkafka's
    buffer reference counts, which TSAN cannot see, in this test reader only)."""
    env = dict(os.environ)
    if "suppressions=" in env.get("TSAN_OPTIONS", ""):
        supp = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tsan-kafka_tail.supp")
        env["TSAN_OPTIONS"] = "halt_on_error=1:suppressions=" + os.path.abspath(supp)
    idle_ms = str(int(int(idle_ms) * SLOW))
    return subprocess.run([os.path.join(BUILD, "tests", "kafka_tail"), brokers, topic, idle_ms],
                          capture_output=True, timeout=120, env=env)


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
