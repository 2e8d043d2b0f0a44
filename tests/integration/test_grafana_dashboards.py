#!/usr/bin/env python3
"""test_grafana_dashboards.py — the shipped Grafana provisioning works with the real
`strata demo` (embedded broker, live stream, _strata sampled every second):

- provisioning_files: the datasource YAML names the plugin id, a URL ending in /grafana
  and the token header; the dashboard provider points at the folder the dashboards are
  in; every dashboard is valid JSON with a uid, and every target names the strata
  datasource.
- every_panel_answers_with_data: each target of each panel of both dashboards, with its
  variables put in the way Grafana does (a multi-value or All as (a|b|...) in builder
  payloads and as a JSON list in code payloads; the query variable's values from
  /grafana/variable), sent as the plugin sends a panel's request (range now-30m..now,
  the panel's interval) to /grafana/query: 200, a JSON array, at least one frame with a
  non-null value, every frame with the target's refId. Ad hoc filters (status = paid)
  narrow "Orders / min" below the unfiltered count.
"""
import json
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Serving, check  # noqa: E402

STRATA, BUILD, WORK = harness.setup("grafana_dashboards")
SRC = sys.argv[3]
PROV = os.path.join(SRC, "grafana", "provisioning")
DASH = os.path.join(PROV, "dashboards", "strata")


def regex_format(values):
    """Grafana's regex format of a variable's value(s)."""
    esc = [re.sub(r"([\\^$*+?.()|\[\]{}/])", r"\\\1", v) for v in values]
    return esc[0] if len(esc) == 1 else "(" + "|".join(esc) + ")"


def put_variables(text, variables, fmt):
    def one(m):
        name = m.group(1) or m.group(2)
        if name not in variables:
            return m.group(0)
        vals = variables[name]
        return regex_format(vals) if fmt == "regex" else json.dumps(vals if len(vals) > 1 else vals[0])
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", one, text)


def process_target(t, variables):
    """What the plugin's processTargets does to a target before sending it."""
    out = dict(t)
    out["target"] = put_variables(t.get("target", ""), variables, "regex")
    p = t.get("payload")
    if isinstance(p, str):
        try:
            out["payload"] = json.loads(put_variables(p, variables, "json"))
        except ValueError:
            out["payload"] = {}
    elif isinstance(p, dict):
        out["payload"] = {k: (put_variables(v, variables, "regex") if isinstance(v, str) else v) for k, v in p.items()}
    return out


def iso(ms):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + ".%03dZ" % (ms % 1000)


def interval_ms(text):
    n, unit = int(text[:-1]), text[-1]
    return n * {"s": 1000, "m": 60000, "h": 3600000}[unit]


def provisioning_files():
    ds = open(os.path.join(PROV, "datasources", "strata.yaml")).read()
    check("type: simpod-json-datasource" in ds and "uid: strata" in ds, "datasource: plugin id and uid")
    check("url: ${STRATA_URL}" in ds and "/grafana" in ds, "datasource: URL from the environment, /grafana")
    check("httpHeaderName1: Authorization" in ds and "httpHeaderValue1: Bearer ${STRATA_TOKEN}" in ds,
          "datasource: the token header")
    prov = open(os.path.join(PROV, "dashboards", "strata.yaml")).read()
    check("path: /etc/grafana/provisioning/dashboards/strata" in prov, "provider path is where the dashboards are")
    names = sorted(os.listdir(DASH))
    check(names == ["orders-live.json", "strata-health.json"], "two dashboards: %s" % names)
    for n in names:
        d = json.load(open(os.path.join(DASH, n)))
        check(d.get("uid") and d.get("title") and d.get("panels"), "%s: uid, title, panels" % n)
        for p in d["panels"]:
            for t in p["targets"]:
                check(t["datasource"] == {"type": "simpod-json-datasource", "uid": "strata"},
                      "%s / %s: the strata datasource" % (n, p["title"]))


def every_panel_answers_with_data():
    data = os.path.join(WORK, "demo")
    d = Serving([STRATA, "demo", "--listen", "127.0.0.1:0", "--data", data, "--rate", "2000",
                 "--self-metrics", "1s"], "demo.log")
    try:
        # events land and minutes seal; _strata gets a few samples (rates need two)
        count = lambda: d.json("POST", "/query", {"table": "orders", "from": "now-1h", "select": [{"fn": "count"}]})[1]  # noqa: E731
        got = harness.wait_for(count, limit=60, until=lambda r: r.get("rows") and r["rows"][0][0] > 5000)
        check(got.get("rows") and got["rows"][0][0] > 5000, "the demo's events land: %s" % got)

        def gpost(path, body):
            st, _, text = harness.http("POST", d.url("/grafana" + path), json.dumps(body),
                                       {"Content-Type": "application/json"})
            try:
                return st, json.loads(text)
            except ValueError:
                return st, text
        now = int(time.time() * 1000)
        rng = {"from": iso(now - 1800000), "to": iso(now), "raw": {"from": "now-30m", "to": "now"}}
        st, vals = gpost("/variable", {"payload": {"target": "orders.country"}, "range": rng})
        check(st == 200 and len(vals) >= 3, "the country variable has values: %s %s" % (st, str(vals)[:200]))
        all_countries = [v["__value"] for v in vals] if st == 200 else ["US"]
        variables = {"country": all_countries}  # All: every option, as Grafana expands it

        def every_panel():
            """[(what, has data, frames carry the refId, answer)] for every panel's target."""
            out = []
            for name in sorted(os.listdir(DASH)):
                dash = json.load(open(os.path.join(DASH, name)))
                for p in dash["panels"]:
                    iv = interval_ms(p.get("interval", "1s"))
                    for t in p["targets"]:
                        body = {"app": "dashboard", "requestId": "Q%d" % p["id"], "timezone": "browser",
                                "panelId": p["id"], "dashboardUID": dash["uid"], "range": rng,
                                "rangeRaw": rng["raw"], "interval": p.get("interval", "1s"), "intervalMs": iv,
                                "maxDataPoints": 1000, "startTime": now, "scopedVars": {}, "filters": [],
                                "targets": [process_target(t, variables)]}
                        st, r = gpost("/query", body)
                        frames = r if isinstance(r, list) else []
                        values = [v for f in frames for fld in f.get("fields", [])[1:]
                                  for v in fld.get("values", []) if v is not None]
                        out.append(("%s / %s / %s" % (dash["title"], p["title"], t["refId"]),
                                    bool(st == 200 and frames and values),
                                    all(f.get("refId") == t["refId"] for f in frames), (st, str(r)[:300])))
            return out
        # _strata's rate panels need two samples of a second apart: asked until every panel
        # has data (or the limit passes)
        answers = harness.wait_for(every_panel, 30, step=1, until=lambda a: all(x[1] for x in a))
        for what, has_data, refids, ans in answers:
            check(has_data, "%s answers with data: %s" % (what, ans))
            check(refids, "%s: frames carry the refId" % what)
        # ad hoc filters narrow a panel
        p = json.load(open(os.path.join(DASH, "orders-live.json")))["panels"][0]
        t = process_target(p["targets"][0], variables)
        base = {"range": rng, "intervalMs": 60000, "maxDataPoints": 1000, "targets": [t]}

        def total(extra):
            st, r = gpost("/query", dict(base, **extra))
            return sum(v for f in r for v in f["fields"][1]["values"] if v) if st == 200 else -1
        everything, paid = total({}), total({"filters": [{"key": "status", "operator": "=", "value": "paid"}]})
        check(0 < paid < everything, "an ad hoc filter narrows Orders / min: %d of %d" % (paid, everything))
    finally:
        check(d.stop() == 0, "demo stops cleanly on SIGTERM")


harness.run_parts([provisioning_files, every_panel_answers_with_data])
sys.exit(harness.finish())
