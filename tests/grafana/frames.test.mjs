// frames.test.mjs — strata's /grafana answers read by Grafana's own data-frame code
// (@grafana/data 11.2.2 from npm, the version the simpod-json-datasource plugin 0.6.5
// builds against), against the real `strata serve`. The plugin's query() hands every
// element of the /query answer to toDataFrame; this test does the same with the request
// bodies the plugin sends (their shape recorded from the plugin's own code), and checks
// what Grafana would chart: frame and field types, the time field, display names of
// series (legends), labels, and values equal to totals computed here from the events
// posted. Also: the health check's exact 200, errors as Grafana's error parsing reads
// them ({message}), variable and tag answers in the shapes Grafana maps.
//
// usage: node run.mjs STRATA_BINARY WORK_DIR   (bundles this file; label grafana in ctest)
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

// run by run.mjs, which bundles @grafana/data in (and sets globalThis.window first)
import * as gd from '@grafana/data';
const { toDataFrame, isDataFrame, FieldType, getFieldDisplayName, getTimeField, dateTime } = gd;

const [strata, work] = process.argv.slice(2);
if (!strata || !work) {
  console.error('usage: node frames.test.mjs STRATA_BINARY WORK_DIR');
  process.exit(2);
}
let passed = 0, failed = 0;
const check = (ok, what) => { if (ok) passed++; else { failed++; console.error('FAIL: ' + what); } };

const T0 = Date.parse('2024-01-01T00:00:00Z'), H = 3600000;
const C = ['US', 'DE', 'FR', 'a.b'], S = ['paid', 'shipped', 'cancelled'];
let seed = 12345; // mulberry32: deterministic events
const rnd = (n) => {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * n);
};
const events = Array.from({ length: 4000 }, (_, i) => ({
  ts: T0 + rnd(2 * H), event_id: i, user_id: rnd(300), country: C[rnd(4)], status: S[rnd(3)],
  amount: rnd(50000) / 100, quantity: 1 + rnd(8),
}));
const total = (pred, val = () => 1) => events.filter(pred).reduce((a, e) => a + val(e), 0);
const near = (a, b) => Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(b));

fs.rmSync(work, { recursive: true, force: true });
fs.mkdirSync(work, { recursive: true });
fs.writeFileSync(path.join(work, 'orders.json'), JSON.stringify({
  name: 'orders', time_column: 'ts', columns: [
    { name: 'ts', type: 'timestamp' }, { name: 'event_id', type: 'uint64' }, { name: 'user_id', type: 'uint64' },
    { name: 'country', type: 'string' }, { name: 'status', type: 'string' }, { name: 'amount', type: 'float64' },
    { name: 'quantity', type: 'int32' }],
}));
const srv = spawn(strata, ['serve', '--data', path.join(work, 'data'), '--listen', '127.0.0.1:0', '--table',
  path.join(work, 'orders.json'), '--self-metrics', 'off'], { stdio: ['ignore', 'ignore', 'pipe'] });
let log = '';
const port = await new Promise((resolve, reject) => {
  srv.stderr.on('data', (d) => { log += d; const m = log.match(/on http:\/\/127\.0\.0\.1:(\d+)\//); if (m) resolve(+m[1]); });
  srv.on('exit', (code) => reject(new Error(`strata exited (${code}) before serving: ${log}`)));
});
const base = `http://127.0.0.1:${port}`;
const post = async (p, body) => {
  const r = await fetch(base + p, { method: 'POST', headers: { 'Content-Type': 'application/json', Accept: 'application/json, text/plain, */*' }, body: JSON.stringify(body) });
  const text = await r.text();
  let data; try { data = JSON.parse(text); } catch { data = text; }
  return { status: r.status, data };
};
// the DataQueryRequest as the plugin sends it: range from dateTime().toJSON()
const request = (targets, extra = {}) => ({
  app: 'dashboard', requestId: 'Q1', timezone: 'browser', panelId: 1,
  range: { from: dateTime(T0), to: dateTime(T0 + 2 * H), raw: { from: 'now-2h', to: 'now' } },
  interval: '1m', intervalMs: 60000, maxDataPoints: 1000, scopedVars: {}, startTime: Date.now(), targets, ...extra,
});
const target = (refId, payload, editorMode = 'builder') => ({ refId, datasource: { type: 'simpod-json-datasource', uid: 'strata' }, editorMode, target: 'orders', payload });
const frames = (data) => data.map((x) => toDataFrame(x)); // the plugin's query(): response.data.map(toDataFrame)

try {
  const ing = await fetch(`${base}/ingest/orders`, { method: 'POST', body: events.map((e) => JSON.stringify(e)).join('\n') });
  check(ing.status === 200, 'ingest: ' + ing.status);

  // "Save & test": only an exact 200 passes
  const h = await fetch(`${base}/grafana`, { headers: { 'Content-Type': 'application/json' } });
  check(h.status === 200, 'health answers exactly 200: ' + h.status);

  // series by country, builder mode
  let r = await post('/grafana/query', request([target('A', { fn: 'sum', column: 'amount', group_by: ['country'] })]));
  check(r.status === 200 && Array.isArray(r.data), 'query answers an array');
  let fr = frames(r.data);
  check(fr.length === 4 && fr.every(isDataFrame), 'four data frames: ' + fr.length);
  for (const f of fr) {
    const tf = getTimeField(f);
    check(tf.timeField && tf.timeField.type === FieldType.time && tf.timeIndex === 0, 'a time field first');
    const t = tf.timeField.values;
    check(t.every((v, i) => i === 0 || v > t[i - 1]) && t.every((v) => v % 60000 === 0), 'time ascending on 1m buckets');
    const v = f.fields[1];
    check(v.type === FieldType.number, 'value field is a number');
    const country = v.labels?.country;
    check(getFieldDisplayName(v, f, fr) === country, `legend is the country: ${getFieldDisplayName(v, f, fr)} vs ${country}`);
    check(near(v.values.reduce((a, x) => a + x, 0), total((e) => e.country === country, (e) => e.amount)), 'sum for ' + country);
    check(f.refId === 'A', 'refId kept');
  }

  // several aggregates, no groups: one frame, fields named after them
  r = await post('/grafana/query', request([target('B', { select: [{ fn: 'count' }, { fn: 'avg', column: 'quantity', as: 'avg_qty' }], interval: '30m' }, 'code')]));
  fr = frames(r.data);
  check(fr.length === 1 && fr[0].fields.map((x) => x.name).join() === 'Time,count,avg_qty', 'code series fields: ' + fr[0]?.fields.map((x) => x.name));
  check(fr[0].fields[1].values.reduce((a, x) => a + x, 0) === events.length, 'count of every event');
  check(fr[0].length === 4, 'four 30m buckets: ' + fr[0].length);

  // a table: status with counts, filtered by a multi-value (JSON list) and an ad hoc filter
  r = await post('/grafana/query', request([target('T', {
    select: [{ fn: 'count' }], where: [{ column: 'country', op: '=', value: ['US', 'a.b'] }], group_by: ['status'], format: 'table',
  }, 'code')], { filters: [{ key: 'quantity', operator: '>', value: '2' }, { key: 'other', operator: '=', value: 'x' }] }));
  fr = frames(r.data);
  check(fr.length === 1 && fr[0].fields.map((x) => `${x.name}:${x.type}`).join() === 'status:string,count:number', 'table field types: ' + fr[0]?.fields.map((x) => `${x.name}:${x.type}`));
  const got = Object.fromEntries(fr[0].fields[0].values.map((s, i) => [s, fr[0].fields[1].values[i]]));
  for (const s of S)
    check(got[s] === total((e) => e.status === s && (e.country === 'US' || e.country === 'a.b') && e.quantity > 2), `table count for ${s}: ${got[s]}`);

  // builder where with Grafana's regex format ((US|a\.b)) and =~
  r = await post('/grafana/query', request([target('W', { fn: 'count', where: 'country = (US|a\\.b), status =~ (paid|shipped)' })]));
  fr = frames(r.data);
  check(fr[0].fields[1].values.reduce((a, x) => a + x, 0) === total((e) => (e.country === 'US' || e.country === 'a.b') && e.status !== 'cancelled'), 'regex-format where');

  // no rows: one frame with no points (Grafana shows "No data")
  r = await post('/grafana/query', request([target('N', { fn: 'count', where: 'country = nowhere' })]));
  fr = frames(r.data);
  check(fr.length === 1 && fr[0].length === 0, 'an empty answer is one empty frame');

  // errors: Grafana shows data.message
  r = await post('/grafana/query', request([target('E', { fn: 'sum', column: 'amout' })]));
  check(r.status === 400 && typeof r.data.message === 'string' && /did you mean 'amount'/.test(r.data.message) && r.data.error, 'error body: ' + JSON.stringify(r.data));

  // editor and variables: the shapes Grafana maps
  r = await post('/grafana/metrics', {});
  check(r.data.some((m) => m.value === 'orders' && m.payloads.every((p) => p.name && ['select', 'multi-select', 'input', 'textarea'].includes(p.type))), 'metrics payload types');
  r = await post('/grafana/variable', { payload: { target: 'orders.status' }, range: { from: dateTime(T0), to: dateTime(T0 + 2 * H) } });
  check(JSON.stringify(r.data) === JSON.stringify([...S].sort().map((s) => ({ __text: s, __value: s }))), 'variable values: ' + JSON.stringify(r.data));
  const vf = toDataFrame(r.data); // Grafana turns the answer into a frame with fields __text and __value
  check(vf.fields.map((x) => x.name).sort().join() === '__text,__value', 'variable frame fields: ' + vf.fields.map((x) => x.name));
  r = await post('/grafana/tag-keys', {});
  check(r.data.every((k) => k.type === 'string' && typeof k.text === 'string') && r.data.length === 2, 'tag keys: ' + JSON.stringify(r.data));
  r = await post('/grafana/tag-values', { key: 'country', timeRange: { from: dateTime(T0), to: dateTime(T0 + 2 * H) } });
  check(r.data.map((x) => x.text).sort().join() === [...C].sort().join(), 'tag values: ' + JSON.stringify(r.data));
} catch (e) {
  check(false, 'the test raised ' + (e.stack || e));
} finally {
  srv.kill('SIGTERM');
  const code = await new Promise((resolve) => srv.on('exit', (c, sig) => resolve(sig || c)));
  check(code === 0, 'strata exits 0 on SIGTERM: ' + code + '\n' + log.split('\n').slice(-10).join('\n'));
}
console.log(`${passed} passed, ${failed} failed`);
if (!failed) fs.rmSync(work, { recursive: true, force: true });
process.exit(failed ? 1 : 0);
