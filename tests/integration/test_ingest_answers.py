#!/usr/bin/env python3
"""test_ingest_answers.py — what ingest tells a user about lines it did not take as they
were, with the real binaries.

1. POST /ingest over HTTP: the exact answer for a body with misspelled and nested fields,
   a wrong type, a misspelled time field and blank lines (counted in "blank"; the unknown
   fields named, with "did you mean"; the row lands without them); 5000 bad lines give
   "rejected": 5000 with 100 errors and "errors_truncated": true; a table with
   "unknown_fields": "reject" refuses such lines naming the field, keeps the setting over
   a restart, and /metrics counts the events that landed with unknown fields per table.
2. Kafka: `strata gen` events into two tables without some of their columns: the one that
   ignores unknown fields lands every event and counts them in /metrics, the one that
   rejects them dead-letters every event with a reason naming the field.
3. Integral numbers over HTTP: {"qty": 2.0}, 1e3, 20e-1, -0.0 (and a time of 1.704067200001e12)
   land in integer columns as the integers they are, and the sums come back exact; 2.5,
   1e19 into int64 and -1.0 into uint64 are refused with messages naming the column.
Args: STRATA_BIN BUILD_DIR SOURCE_DIR. Prints "N passed, M failed".
"""
import gzip
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Broker, Server, check, gen, wait_count, wait_for  # noqa: E402

STRATA, BUILD, WORK = harness.setup("ingest-answers")

T0 = 1704067200000  # 2024-01-01
REJECTS = "; this table rejects events with unknown fields (unknown_fields: reject)"


def schema(**extra):
    return dict({"columns": [{"name": "ts", "type": "timestamp"}, {"name": "amount", "type": "float64"},
                             {"name": "country", "type": "string"}],
                 "time_column": "ts", "storage": {"memtable_age": "300ms"}}, **extra)


def ingest(s, table, lines):
    return s.json("POST", "/ingest/" + table, "\n".join(lines) + "\n")


def http_answers():
    data = os.path.join(WORK, "http")
    s = Server(data, "http")
    st, r = s.json("PUT", "/tables/orders", schema())
    check(st == 201 and r["schema"].get("unknown_fields") == "ignore", "create orders: %s %s" % (st, r.get("schema")))
    st, r = s.json("PUT", "/tables/strict", schema(unknown_fields="reject"))
    check(st == 201 and r["schema"].get("unknown_fields") == "reject", "create strict: %s %s" % (st, r))
    st, r = s.json("PUT", "/tables/bad", schema(unknown_fields="drop"))
    check(st == 400 and r.get("error") == "unknown_fields: unknown value 'drop' (expected one of ignore, reject)",
          "a bad unknown_fields value: %s %s" % (st, r))

    # Unknown fields, a wrong type, a misspelled time field, blank lines.
    st, r = ingest(s, "orders", [
        '{"ts": %d, "amout": 5, "Country": "US"}' % T0,
        "",
        '{"ts": %d, "amount": "x"}' % (T0 + 1),
        "   \t",
        '{"ts": %d, "amount": 1.5, "country": "DE", "user": {"id": 5}}' % (T0 + 2),
        '{"TS": %d, "amount": 2}' % (T0 + 3),
    ])
    want = {"ingested": 2, "rejected": 2, "blank": 2,
            "errors": [{"line": 3, "error": "amount: expected a number, got a string"},
                       {"line": 6, "error": "ts: the time field is missing (the event has 'TS': did you mean 'ts'?)"}],
            "errors_truncated": False,
            "unknown_fields": {"lines": 2, "first_line": 1, "names": ["Country", "amout", "user"],
                               "names_truncated": False,
                               "did_you_mean": {"Country": "country", "amout": "amount"}}}
    check(st == 200 and r == want, "the answer names unknown fields and counts blank lines:\n got %s\nwant %s" % (r, want))
    st, q = s.json("POST", "/query", {"table": "orders", "from": 0, "group_by": ["country"],
                                      "select": [{"fn": "count"}, {"fn": "sum", "column": "amount"}]})
    check(st == 200 and sorted(q.get("rows", [])) == [["", 1, 0.0], ["DE", 1, 1.5]],
          "the rows landed without their unknown fields: %s %s" % (st, q))
    check(s.metric("strata_ingest_events_with_unknown_fields_total", 'table="orders"') == 2
          and s.metric("strata_ingest_events_with_unknown_fields_total", 'table="strict"') == 0,
          "/metrics counts events with unknown fields per table")
    check(s.metric("strata_table_ingested_rows_total", 'table="orders"') == 2
          and s.metric("strata_table_rejected_rows_total", 'table="orders"') == 2
          and s.metric("strata_table_ingested_rows_total", 'table="strict"') == 0,
          "/metrics counts ingested and rejected rows per table")

    # 5000 bad lines: all counted, 100 shown, and the answer says the list was cut.
    lines = ['{"ts": %d, "amount": %d}' % (T0 + i, i) for i in range(3)] + ["not json %d" % i for i in range(5000)]
    st, r = ingest(s, "orders", lines)
    errs = r.get("errors", [])
    check(st == 200 and r.get("ingested") == 3 and r.get("rejected") == 5000 and len(errs) == 100
          and r.get("errors_truncated") is True and [e["line"] for e in errs] == list(range(4, 104)),
          "5000 bad lines: %s" % {k: r.get(k) for k in ("ingested", "rejected", "errors_truncated")})
    st, r = ingest(s, "orders", ['{"ts": %d}' % T0, "nope"])
    check(st == 200 and r.get("rejected") == 1 and r.get("errors_truncated") is False, "one bad line, not cut: %s" % r)

    # A table that rejects unknown fields.
    strict_lines = ['{"ts": %d, "amout": 5}' % T0, '{"ts": %d, "Country": "US"}' % T0,
                    '{"ts": %d, "amount": 1, "extra": null}' % T0, '{"ts": %d, "amount": 7, "country": "FR"}' % T0]
    strict_want = {"ingested": 1, "rejected": 3, "blank": 0,
                   "errors": [{"line": 1, "error": "amout: unknown field (did you mean 'amount'?)" + REJECTS},
                              {"line": 2, "error": "Country: unknown field (did you mean 'country'?)" + REJECTS},
                              {"line": 3, "error": "extra: unknown field" + REJECTS}],
                   "errors_truncated": False,
                   "unknown_fields": {"lines": 0, "first_line": None, "names": [], "names_truncated": False,
                                      "did_you_mean": {}}}
    st, r = ingest(s, "strict", strict_lines)
    check(st == 200 and r == strict_want, "strict table refuses unknown fields:\n got %s\nwant %s" % (r, strict_want))
    st, r = s.json("PUT", "/tables/strict", schema())
    check(st == 409, "the setting is part of the schema: %s %s" % (st, r))
    s.stop()
    s = Server(data, "http")
    st, r = ingest(s, "strict", strict_lines)
    check(st == 200 and r == strict_want, "after a restart strict still refuses them: %s" % r)
    check(s.count("strict") == 2, "strict holds the 2 good rows: %s" % s.count("strict"))
    # A compressed body is refused as such, not as lines of garbage; a byte order mark is not data.
    body = "\n".join('{"ts": %d, "amount": 1, "country": "US"}' % T0 for _ in range(3)) + "\n"
    st, text = s.req("POST", "/ingest/strict", gzip.compress(body.encode()), headers={"Content-Encoding": "gzip"})
    check(st == 415 and "Content-Encoding 'gzip' is not supported" in text and s.count("strict") == 2,
          "gzip body: %s %s" % (st, text))
    st, r = s.json("POST", "/ingest/strict", b"\xef\xbb\xbf" + body.encode())
    check(st == 200 and r.get("ingested") == 3 and r.get("rejected") == 0 and s.count("strict") == 5,
          "a body starting with a UTF-8 byte order mark: %s %s" % (st, r))
    check(s.stop() == 0, "SIGTERM exits 0")


def kafka_unknown_fields():
    b = Broker("--partitions", "2")
    data = os.path.join(WORK, "kafka")
    s = Server(data, "kafka")
    # The generator's events carry user_id, category, status, device, quantity, version too.
    cols = [{"name": "ts", "type": "timestamp"}, {"name": "event_id", "type": "uint64"},
            {"name": "country", "type": "string"}, {"name": "amount", "type": "float64"}]
    props = {"session.timeout.ms": "3000", "heartbeat.interval.ms": "500"}
    for name, mode in (("keep", "ignore"), ("strict", "reject")):
        st, r = s.json("PUT", "/tables/" + name, {
            "columns": cols, "time_column": "ts", "unknown_fields": mode, "storage": {"memtable_age": "300ms"},
            "kafka": {"brokers": b.addr, "topic": "uf", "properties": props}})
        check(st == 201, "create %s: %s %s" % (name, st, r))
    gen(b.addr, "uf", None, "--count", "300")
    got = wait_count([s], "keep", 300)
    check(got == 300, "keep landed %s of 300 events" % got)
    unknown = wait_for(lambda: s.metric("strata_kafka_events_with_unknown_fields_total",
                                      'table="keep",topic="uf"') == 300)
    check(unknown, "/metrics counts 300 Kafka events with unknown fields: %s" %
          s.metric("strata_kafka_events_with_unknown_fields_total", 'table="keep",topic="uf"'))
    dead = wait_for(lambda: s.metric("strata_kafka_dead_letters_total", 'table="strict",sink="kafka"') == 300)
    check(dead and s.count("strict") == 0, "strict dead-lettered every event: %s, %s rows" %
          (s.metric("strata_kafka_dead_letters_total", 'table="strict",sink="kafka"'), s.count("strict")))
    check(s.metric("strata_kafka_events_with_unknown_fields_total", 'table="strict",topic="uf"') == 0,
          "strict counts no landed event with unknown fields")
    out = harness.kafka_tail(b.addr, "uf.dlq")
    letters = [json.loads(line) for line in out.stdout.decode().splitlines() if line.strip()]
    reasons = {d["headers"].get("strata.error") for d in letters}
    check(len(letters) == 300 and reasons == {"user_id: unknown field" + REJECTS},
          "every dead letter names the first unknown field: %d, %s" % (len(letters), reasons))
    check(s.stop() == 0, "SIGTERM exits 0")
    b.stop()


def integral_numbers():
    data = os.path.join(WORK, "integral")
    s = Server(data, "integral")
    st, r = s.json("PUT", "/tables/items", {
        "columns": [{"name": "ts", "type": "timestamp"}, {"name": "qty", "type": "int64"},
                    {"name": "n", "type": "int32"}, {"name": "id", "type": "uint64"}],
        "time_column": "ts", "storage": {"memtable_age": "300ms"}})
    check(st == 201, "create items: %s %s" % (st, r))
    st, r = ingest(s, "items", [
        '{"ts": %d, "qty": 2.0, "n": 1.0E2, "id": 7.0}' % T0,
        '{"ts": %d, "qty": 1e3, "n": -0.0}' % (T0 + 1),
        '{"ts": %d, "qty": 20e-1, "extra": [1.5, {"qty": 2.5}]}' % (T0 + 2),  # the jansson path
        '{"ts": 1.704067200003e12, "qty": -0.0, "n": 2147483647.0}',
        '{"ts": %d, "qty": 2.5}' % (T0 + 4),
        '{"ts": %d, "qty": 1e19}' % (T0 + 5),
        '{"ts": %d, "id": -1.0}' % (T0 + 6),
        '{"ts": %d, "qty": 9223372036854775807.0}' % (T0 + 7),
    ])
    want = {"ingested": 5, "rejected": 3, "blank": 0,
            "errors": [{"line": 5, "error": "qty: 2.5 is not an integer"},
                       {"line": 6, "error": "qty: 1e19 is out of int64 range "
                                            "(-9223372036854775808 to 9223372036854775807)"},
                       {"line": 7, "error": "id: -1.0 is negative, the column is uint64"}],
            "errors_truncated": False,
            "unknown_fields": {"lines": 1, "first_line": 3, "names": ["extra"], "names_truncated": False,
                               "did_you_mean": {}}}
    check(st == 200 and r == want, "integral numbers land, fractions are refused:\n got %s\nwant %s" % (r, want))
    # Without the row holding 2^63-1 the sum is exact: 2 + 1000 + 2 + 0.
    st, q = s.json("POST", "/query", {"table": "items", "from": 0, "to": T0 + 7,
                                      "select": [{"fn": "count"}, {"fn": "sum", "column": "qty"},
                                                 {"fn": "sum", "column": "n"}, {"fn": "max", "column": "id"},
                                                 {"fn": "max", "column": "ts"}]})
    check(st == 200 and q.get("rows") == [[4, 1004, 100 + 2147483647, 7, T0 + 3]],
          "the sums of the integral numbers: %s %s" % (st, q))
    st, q = s.json("POST", "/query", {"table": "items", "from": T0 + 7, "select": [{"fn": "max", "column": "qty"}]})
    check(st == 200 and q.get("rows") == [[9223372036854775807]], "9223372036854775807.0 exactly: %s %s" % (st, q))
    check(s.stop() == 0, "SIGTERM exits 0")


def main():
    harness.run_parts((http_answers, kafka_unknown_fields, integral_numbers))
    return harness.finish()


if __name__ == "__main__":
    sys.exit(main())
