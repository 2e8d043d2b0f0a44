// queries.mjs — the DuckDB side of `bench_http --duckdb`: loads the reference order events
// from the CSV bench_http wrote into an in-memory DuckDB table (ts as TIMESTAMP, in the
// CSV's time order), then runs the SQL forms of bench_http's Q1..Q7 — same time ranges,
// filters and aggregates — one warm-up then 5 timed runs each (performance.now() around
// each runAndReadAll, inside node), and compares every answer with strata's (the JSON
// answers bench_http saved): exact for counts and strings, to a relative tolerance for
// float sums and sketches.
//
// Prints human lines, and for bench_http to parse:
//   VERSION\t<duckdb version>
//   LOAD\t<ms to load the CSV>
//   RESULT\t<Q1..Q7>\t<what DuckDB ran>\t<median ms, -1: untimed>\t<agree>\t<detail>
// with agree 1 when DuckDB's answer agrees with strata's, 0 when not, 2 when DuckDB's is
// an estimate (its distance is shown, not judged).
//
// usage: node queries.mjs --csv FILE --strata ANSWERS.json [--runs 5] [--now EPOCH_MS]
//
// Set up with ./install.sh (npm ci: @duckdb/node-api, pinned in package.json and
// package-lock.json; its prebuilt binary comes from the npm registry).
import { DuckDBInstance } from '@duckdb/node-api';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';

const args = { runs: 5, now: Date.now() };
for (let i = 2; i < process.argv.length; i += 2) {
  const k = process.argv[i].replace(/^--/, '');
  args[k] = process.argv[i + 1];
}
if (!args.csv) {
  console.error('usage: node queries.mjs --csv FILE --strata ANSWERS.json [--runs 5] [--now EPOCH_MS]');
  process.exit(2);
}
const runs = Number(args.runs);
const strata = args.strata ? JSON.parse(readFileSync(args.strata, 'utf8')) : null;

const inst = await DuckDBInstance.create(':memory:');
const con = await inst.connect();
const ver = (await con.runAndReadAll('SELECT version()')).getRows()[0][0];
const threads = (await con.runAndReadAll("SELECT current_setting('threads')")).getRows()[0][0];
console.log(`VERSION\t${ver}`);

let t0 = performance.now();
const csv = String(args.csv).replace(/'/g, "''");
await con.run(`CREATE TABLE orders AS SELECT epoch_ms(ts) AS ts, event_id, user_id, country, category,
  status, device, amount, quantity, version
  FROM read_csv('${csv}', header = true, columns = {'ts': 'BIGINT', 'event_id': 'UBIGINT',
    'user_id': 'UBIGINT', 'country': 'VARCHAR', 'category': 'VARCHAR', 'status': 'VARCHAR',
    'device': 'VARCHAR', 'amount': 'DOUBLE', 'quantity': 'INTEGER', 'version': 'UBIGINT'})`);
const loadMs = performance.now() - t0;
const nrows = (await con.runAndReadAll('SELECT count(*) FROM orders')).getRows()[0][0];
console.log(`loaded ${nrows} rows in ${(loadMs / 1e3).toFixed(1)} s into an in-memory table (${threads} threads)`);
console.log(`LOAD\t${loadMs.toFixed(1)}`);

// Strata's "from": 0 without "to" is [1970-01-01, now): every row here, but kept as a filter.
const ALL = `ts >= epoch_ms(0) AND ts < epoch_ms(${Number(args.now)})`;
const range = (a, b) => `ts >= TIMESTAMP '${a}' AND ts < TIMESTAMP '${b}'`;
const bucket = (unit) => `epoch_ms(date_trunc('${unit}', ts))`;
const LAST_HOUR = range('2024-01-07 23:00:00', '2024-01-08 00:00:00');
const DAY3 = range('2024-01-03 00:00:00', '2024-01-04 00:00:00');

// tol: per output column, the largest relative difference allowed against strata
// (absent: exact). estimate: DuckDB's answer is itself an estimate; its distance from
// strata's is printed, not judged (agree 2). untimed: a check run once, not timed.
// Sums of 10^5..10^6 doubles in another order differ in the last bits;
// strata's uniq is a HyperLogLog (0.4% standard error: 2% is 5 sigma) and its quantile a
// DDSketch within 0.5% of the value of rank floor(q * (n - 1)).
const queries = [
  { id: 'Q1', what: 'count(*)', sql: `SELECT count(*) AS count FROM orders WHERE ${ALL}` },
  { id: 'Q2', what: 'count, sum per minute',
    sql: `SELECT ${bucket('minute')} AS time, count(*) AS count, sum(amount) AS sum_amount
          FROM orders WHERE ${LAST_HOUR} GROUP BY ALL ORDER BY time`,
    tol: { sum_amount: 1e-9 } },
  { id: 'Q3', what: 'count, sum, avg per hour',
    sql: `SELECT ${bucket('hour')} AS time, count(*) AS count, sum(amount) AS sum_amount,
          avg(amount) AS avg_amount FROM orders WHERE ${ALL} GROUP BY ALL ORDER BY time`,
    tol: { sum_amount: 1e-9, avg_amount: 1e-9 } },
  { id: 'Q4', what: 'sum GROUP BY country ORDER BY LIMIT 10',
    sql: `SELECT country, sum(amount) AS gmv FROM orders WHERE ${DAY3}
          GROUP BY country ORDER BY gmv DESC LIMIT 10`,
    tol: { gmv: 1e-9 } },
  { id: 'Q5', what: 'count per hour, status; 2 filters',
    sql: `SELECT ${bucket('hour')} AS time, status, count(*) AS count FROM orders
          WHERE ${ALL} AND country = 'US' AND device = 'mobile' GROUP BY ALL ORDER BY time, status` },
  // Q6: strata's uniq is a HyperLogLog. DuckDB's approx_count_distinct is one too, but a
  // coarse one (several % off here), so it is timed and its distance shown, not judged;
  // count(DISTINCT) is exact: strata must be within 2% of it.
  { id: 'Q6', what: 'approx_count_distinct per day', estimate: true,
    sql: `SELECT ${bucket('day')} AS time, approx_count_distinct(user_id) AS uniq_user_id
          FROM orders WHERE ${ALL} GROUP BY ALL ORDER BY time`,
    tol: { uniq_user_id: 0 } },
  { id: 'Q6', what: 'count(DISTINCT) per day (exact)',
    sql: `SELECT ${bucket('day')} AS time, count(DISTINCT user_id) AS uniq_user_id
          FROM orders WHERE ${ALL} GROUP BY ALL ORDER BY time`,
    tol: { uniq_user_id: 0.02 } },
  // Q7: approx_quantile (a T-Digest) is timed and shown, not judged. quantile_disc is exact
  // but takes the value of rank ceil(q * n) - 1 (0-based), one above strata's
  // floor(q * (n - 1)): judged to 1%. The untimed check takes strata's own rank: 0.5%.
  { id: 'Q7', what: 'approx_quantile 0.95, 0.99 per hour', estimate: true,
    sql: `SELECT ${bucket('hour')} AS time, approx_quantile(amount, 0.95) AS p95,
          approx_quantile(amount, 0.99) AS p99 FROM orders WHERE ${DAY3} GROUP BY ALL ORDER BY time`,
    tol: { p95: 0, p99: 0 } },
  { id: 'Q7', what: 'quantile_disc 0.95, 0.99 per hour (exact)',
    sql: `SELECT time, q[1] AS p95, q[2] AS p99 FROM (SELECT ${bucket('hour')} AS time,
          quantile_disc(amount, [0.95, 0.99]) AS q FROM orders WHERE ${DAY3} GROUP BY ALL) ORDER BY time`,
    tol: { p95: 0.01, p99: 0.01 } },
  { id: 'Q7', what: 'check: value of rank floor(q*(n-1))', untimed: true,
    sql: `SELECT time, l[CAST(floor(0.95 * (n - 1)) AS BIGINT) + 1] AS p95,
          l[CAST(floor(0.99 * (n - 1)) AS BIGINT) + 1] AS p99 FROM (SELECT ${bucket('hour')} AS time,
          count(*) AS n, list_sort(list(amount)) AS l FROM orders WHERE ${DAY3} GROUP BY ALL) ORDER BY time`,
    tol: { p95: 0.00501, p99: 0.00501 } },
];

const num = (v) => (typeof v === 'bigint' ? Number(v) : v);

// Compares DuckDB's rows (objects by column name) with strata's answer; returns
// [agree, detail]: the largest relative difference per toleranced column, or the first mismatch.
function compare(q, rows, answer) {
  if (!answer) return [0, 'no strata answer'];
  const cols = answer.columns.map((c) => c.name);
  if (answer.rows.length !== rows.length)
    return [0, `${answer.rows.length} rows from strata, ${rows.length} from DuckDB`];
  const worst = {};
  for (let r = 0; r < rows.length; r++) {
    for (let c = 0; c < cols.length; c++) {
      const name = cols[c];
      const s = answer.rows[r][c];
      const d = num(rows[r][name]);
      if (d === undefined) return [0, `DuckDB has no column ${name}`];
      const tol = q.tol?.[name];
      if (tol === undefined) {
        if (s !== d) return [0, `row ${r} ${name}: strata ${s}, DuckDB ${d}`];
        continue;
      }
      const rel = Math.abs(s - d) / Math.max(Math.abs(d), 1e-300);
      worst[name] = Math.max(worst[name] ?? 0, rel);
      if (!(rel <= tol) && !q.estimate) return [0, `row ${r} ${name}: strata ${s}, DuckDB ${d} (${(rel * 100).toPrecision(3)}% apart)`];
    }
  }
  const parts = Object.entries(worst).map(([k, v]) => `${k} within ${(v * 100).toPrecision(2)}%`);
  if (q.estimate) return [2, `DuckDB's estimate: ${parts.join(', ')} of strata's`];
  return [1, `${rows.length} rows` + (parts.length ? '; ' + parts.join(', ') : ', exact')];
}

for (const q of queries) {
  let reader = await con.runAndReadAll(q.sql); // warm-up (or the one run of a check)
  const times = q.untimed ? [-1] : [];
  for (let i = 0; i < runs && !q.untimed; i++) {
    t0 = performance.now();
    reader = await con.runAndReadAll(q.sql);
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  const median = q.untimed ? -1 : runs % 2 ? times[(runs - 1) / 2] : (times[runs / 2 - 1] + times[runs / 2]) / 2;
  const [agree, detail] = compare(q, reader.getRowObjectsJS(), strata?.[q.id]);
  console.log(`RESULT\t${q.id}\t${q.what}\t${median.toFixed(2)}\t${agree}\t${detail}`);
}
