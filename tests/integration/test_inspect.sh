#!/usr/bin/env bash
# test_inspect.sh — `strata inspect` as a user runs it: on a data directory written by the
# real write path, on one segment (text, --json, --rows, --verify), and on damaged copies,
# which must fail with an error naming the file (and column/granule for block damage),
# never crash. Every figure inspect prints is checked against what was written: the events
# (regenerated with `strata gen`, the same generator and defaults bench_segment uses), the
# files' sizes and the segment footers (read by inspect_expect.py, which says how).
# Args: STRATA_BIN BUILD_DIR SOURCE_DIR. With KEEP=1 in the environment the work directory
# (outputs, events, the check plan) is left in place for a look.
set -u
STRATA=$1 BUILD=$2 SRC=$3
WORK=$BUILD/test-tmp/inspect-$$
rm -rf "$WORK"; mkdir -p "$WORK"
fails=0 passes=0
ok()   { passes=$((passes+1)); }
fail() { echo "FAIL: $*" >&2; fails=$((fails+1)); }
EXPECT="python3 $SRC/tests/integration/inspect_expect.py"

"$BUILD/bench/bench_segment" --rows 60000 --codec both --data "$WORK/data" --keep >"$WORK/bench.out" \
  || { echo "bench_segment failed" >&2; cat "$WORK/bench.out" >&2; exit 1; }

# The events bench_segment wrote, regenerated: same generator, same defaults, same order.
"$STRATA" gen --count 60000 --quiet >"$WORK/events.ndjson" && [ "$(wc -l <"$WORK/events.ndjson")" -eq 60000 ] \
  || { echo "strata gen failed" >&2; exit 1; }
EV=$WORK/events.ndjson

# Every output below is saved and listed in $PLAN with what it must show; inspect_expect.py
# checks them all in one go at the end of this block.
PLAN=$WORK/plan
: >"$PLAN"
plan() { local IFS=$'\t'; echo "$*" >>"$PLAN"; }
# Directory listing: one line per segment with its partition, rows, file bytes, bytes/row,
# time range and level; the total line exact. Also as --json.
for codec in lz4 zstd; do
  "$STRATA" inspect "$WORK/data/$codec" >"$WORK/dir-$codec.txt" 2>"$WORK/dir.err" && ok || fail "inspect $codec dir: exit $?"
  plan dir-text "$WORK/data/$codec" "$WORK/dir-$codec.txt"
  "$STRATA" inspect --json "$WORK/data/$codec" >"$WORK/dir-$codec.json" && ok || fail "inspect $codec dir --json"
  plan dir-json "$WORK/data/$codec" "$WORK/dir-$codec.json"
  # --verify: exit 0, the same listing, every segment verified.
  "$STRATA" inspect --verify --quiet "$WORK/data/$codec" >"$WORK/verify-$codec.txt" 2>&1 && ok || fail "verify $codec dir: $(cat "$WORK/verify-$codec.txt")"
  plan dir-text "$WORK/data/$codec" "$WORK/verify-$codec.txt" ", all verified"
done
# One segment of each codec: the summary, --json and --rows, value by value. --rows N:
# exactly N lines, each the event written with that event_id, in sort order; N beyond the
# segment: every row of it, once.
k=0
for SEG in $(find "$WORK/data/lz4" -name '*.seg' | sort | head -n 1) $(find "$WORK/data/zstd" -name '*.seg' | sort | tail -n 1); do
  k=$((k+1))
  "$STRATA" inspect "$SEG" >"$WORK/seg$k.txt" && ok || fail "inspect $SEG"
  plan seg-text "$SEG" "$WORK/seg$k.txt"
  "$STRATA" inspect --json "$SEG" >"$WORK/seg$k.json" && ok || fail "inspect --json $SEG"
  plan seg-json "$SEG" "$WORK/seg$k.json"
  for n in 5 1 100000; do
    "$STRATA" inspect --rows $n "$SEG" >"$WORK/rows$k-$n.jsonl" && ok || fail "inspect --rows $n $SEG"
    plan rows "$SEG" "$WORK/rows$k-$n.jsonl" $n
  done
  grep -qE '"amount":[0-9]+\.[0-9]{3,}' "$WORK/rows$k-100000.jsonl" && fail "amounts printed with noise digits: $(head -1 "$WORK/rows$k-100000.jsonl")" || ok
done
$EXPECT check "$EV" "$PLAN" >"$WORK/expect.out"
grep '^FAIL' "$WORK/expect.out" >&2
last=$(tail -n 1 "$WORK/expect.out")
if [[ $last =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]] &&
   [ $((BASH_REMATCH[1] + BASH_REMATCH[2])) -eq "$(wc -l <"$PLAN")" ]; then
  passes=$((passes + BASH_REMATCH[1])) fails=$((fails + BASH_REMATCH[2]))
else
  fail "inspect_expect did not run every check: $(cat "$WORK/expect.out")"
fi
SEG=$(find "$WORK/data/lz4" -name '*.seg' | sort | head -n 1)
# A flipped byte inside the data block of column amount, granule 1 (located from the
# footer): the segment summary checks above hold the footer's figures to the events.
read -r off nrows ngran <<<"$($EXPECT damage "$SEG" amount 1 "$WORK/flip.seg")"
[ -n "$ngran" ] || fail "no block for amount granule 1 in $SEG"
"$STRATA" inspect --rows 0 "$SEG" >"$WORK/rows.jsonl" && [ ! -s "$WORK/rows.jsonl" ] && ok || fail "--rows 0 printed $(wc -l <"$WORK/rows.jsonl") lines"
# --json with --rows: the summary with the rows in it, one JSON object.
"$STRATA" inspect --json --rows 2 "$SEG" >"$WORK/jr.json" && "$STRATA" inspect --rows 2 "$SEG" >"$WORK/jr.jsonl" &&
  python3 -c "
import json, sys
o = json.load(open(sys.argv[1])); rows = [json.loads(l) for l in open(sys.argv[2])]
sys.exit(0 if o['first_rows'] == rows and len(rows) == 2 and o['rows'] > 2 and o['columns'] else 1)" "$WORK/jr.json" "$WORK/jr.jsonl" \
  && ok || fail "--json --rows 2: $(head -c 300 "$WORK/jr.json")"
"$STRATA" inspect --verify "$SEG" >"$WORK/v1.txt" 2>&1; rc=$?
[ $rc -eq 0 ] && ok || fail "verify good segment: exit $rc: $(cat "$WORK/v1.txt")"
[ "$(cat "$WORK/v1.txt")" = "ok: $SEG: $nrows rows, $ngran granules x 10 columns verified" ] && ok || fail "verify good segment says: $(cat "$WORK/v1.txt")"
# The damaged copy: exit 1, the message names the file, the column and granule, and the
# block's offset.
"$STRATA" inspect --verify "$WORK/flip.seg" >"$WORK/flip.out" 2>&1; rc=$?
[ $rc -eq 1 ] && ok || fail "flipped byte: exit $rc"
grep -q "^strata inspect: $WORK/flip.seg: column 'amount' granule 1: checksum mismatch in block at offset $off " "$WORK/flip.out" \
  && ok || fail "flipped byte message: $(cat "$WORK/flip.out")"
# The same damage inside a data directory: exit 1, that segment marked, the others fine.
cp -r "$WORK/data/lz4" "$WORK/damaged"
DSEG=$WORK/damaged/${SEG#"$WORK/data/lz4/"}
cp "$WORK/flip.seg" "$DSEG"
"$STRATA" inspect --verify --quiet "$WORK/damaged" >"$WORK/dmg.out" 2>"$WORK/dmg.err"; rc=$?
[ $rc -eq 1 ] && ok || fail "damaged data dir: exit $rc"
[ "$(grep -c ' DAMAGED$' "$WORK/dmg.out")" -eq 1 ] && grep -q "^orders .*$(basename "$DSEG" .seg) .* DAMAGED$" "$WORK/dmg.out" \
  && ok || fail "damaged data dir listing: $(cat "$WORK/dmg.out")"
grep -q "DAMAGE FOUND$" "$WORK/dmg.out" && ok || fail "damaged data dir total: $(tail -1 "$WORK/dmg.out")"
grep -q "$DSEG: column 'amount' granule 1: checksum mismatch" "$WORK/dmg.err" && ok || fail "damaged data dir message: $(cat "$WORK/dmg.err")"
# A table whose schema.json cannot be loaded (the server answers 503 "table cannot be
# opened ... inspect it with strata inspect"): inspect loads every table's schema.json
# with the server's parser and names the file and the error, counts it, exits 1 with or
# without --verify; the healthy table beside it is listed and verified as before.
# Regression: inspect never read schema.json and said "all verified".
mkdir -p "$WORK/bs"
cp -r "$WORK/data/lz4/orders" "$WORK/bs/orders"
cp -r "$WORK/data/lz4/orders" "$WORK/bs/good"
sed 's/"name": "orders"/"name": "good"/' "$WORK/data/lz4/orders/schema.json" >"$WORK/bs/good/schema.json"
BSF=$WORK/bs/orders/schema.json
head -c 60 "$WORK/data/lz4/orders/schema.json" >"$BSF"
"$STRATA" inspect --verify --quiet "$WORK/bs" >"$WORK/bs.out" 2>"$WORK/bs.err"; rc=$?
[ $rc -eq 1 ] && ok || fail "truncated schema.json: exit $rc: $(cat "$WORK/bs.out" "$WORK/bs.err")"
grep -q "^strata inspect: $BSF: DAMAGED: malformed JSON at line [0-9]* column [0-9]*: " "$WORK/bs.err" \
  && ok || fail "truncated schema.json message: $(cat "$WORK/bs.err")"
grep -qx "$BSF: DAMAGED" "$WORK/bs.out" && ok || fail "truncated schema.json listing: $(cat "$WORK/bs.out")"
grep -q "^total: .*, 1 schema.json unreadable, DAMAGE FOUND$" "$WORK/bs.out" && ! grep -q "all verified" "$WORK/bs.out" \
  && ok || fail "truncated schema.json total: $(tail -1 "$WORK/bs.out")"
nseg=$(grep -c '^orders ' "$WORK/dir-lz4.txt")
[ "$(grep -c '^good ' "$WORK/bs.out")" -eq "$nseg" ] && [ "$(grep -c '^orders ' "$WORK/bs.out")" -eq "$nseg" ] && \
  ! grep -E -q '^(good|orders) .* DAMAGED$' "$WORK/bs.out" && ok || fail "segments beside a bad schema.json: $(cat "$WORK/bs.out")"
"$STRATA" inspect "$WORK/bs" >/dev/null 2>&1; rc=$?
[ $rc -eq 1 ] && ok || fail "truncated schema.json without --verify: exit $rc"
# --json: the problem is counted, and listed under "schemas" with the file and the error.
"$STRATA" inspect --json --verify --quiet "$WORK/bs" >"$WORK/bs.json" 2>/dev/null; rc=$?
[ $rc -eq 1 ] && python3 -c "
import json, sys
d = json.load(open(sys.argv[1]))
s = d['schemas']
ok = (d['problems'] == 1 and len(s) == 1 and s[0]['table'] == 'orders' and s[0]['file'] == sys.argv[2]
      and s[0]['ok'] is False and s[0]['error'].startswith('malformed JSON at line')
      and all(x['ok'] for x in d['segments']) and len(d['segments']) == 2 * int(sys.argv[3]))
sys.exit(0 if ok else 1)" "$WORK/bs.json" "$BSF" "$nseg" && ok || fail "truncated schema.json --json: exit $rc: $(cat "$WORK/bs.json")"
# The table directory, and its raw folder, stand for the table: the same verdict.
for p in "$WORK/bs/orders" "$WORK/bs/orders/raw" "$WORK/bs/orders/raw/"; do
  "$STRATA" inspect --verify --quiet "$p" >"$WORK/bs1.out" 2>"$WORK/bs1.err"; rc=$?
  [ $rc -eq 1 ] && grep -qx "$BSF: DAMAGED" "$WORK/bs1.out" && grep -q "$BSF: DAMAGED: malformed JSON" "$WORK/bs1.err" \
    && ok || fail "inspect $p with a truncated schema.json: exit $rc: $(cat "$WORK/bs1.out" "$WORK/bs1.err")"
done
for p in "$WORK/bs/good" "$WORK/bs/good/raw"; do
  "$STRATA" inspect --verify --quiet "$p" >"$WORK/bs1.out" 2>&1; rc=$?
  [ $rc -eq 0 ] && [ "$(grep -c '^good ' "$WORK/bs1.out")" -eq "$nseg" ] && grep -q "^total: .*, all verified$" "$WORK/bs1.out" \
    && ok || fail "inspect healthy $p: exit $rc: $(cat "$WORK/bs1.out")"
done
# Garbage, valid JSON that is no schema, a name that is not the directory's, and no
# schema.json at all beside raw/ (the server would not see the table).
printf '\x00\xff garbage' >"$BSF"
"$STRATA" inspect --quiet "$WORK/bs/orders" >/dev/null 2>"$WORK/bs1.err"; rc=$?
[ $rc -eq 1 ] && grep -q "^strata inspect: $BSF: DAMAGED: " "$WORK/bs1.err" && ok || fail "garbage schema.json: exit $rc: $(cat "$WORK/bs1.err")"
echo '{"name": "orders"}' >"$BSF"
"$STRATA" inspect --quiet "$WORK/bs/orders" >/dev/null 2>"$WORK/bs1.err"; rc=$?
[ $rc -eq 1 ] && grep -q "^strata inspect: $BSF: DAMAGED: columns: required" "$WORK/bs1.err" && ok || fail "schema.json without columns: exit $rc: $(cat "$WORK/bs1.err")"
cp "$WORK/data/lz4/orders/schema.json" "$WORK/bs/good/schema.json"
"$STRATA" inspect --quiet "$WORK/bs/good" >/dev/null 2>"$WORK/bs1.err"; rc=$?
[ $rc -eq 1 ] && grep -q "^strata inspect: $WORK/bs/good/schema.json: DAMAGED: names table 'orders' but lives in directory 'good'" "$WORK/bs1.err" \
  && ok || fail "schema.json naming another table: exit $rc: $(cat "$WORK/bs1.err")"
rm "$BSF"
"$STRATA" inspect --verify --quiet "$WORK/bs/orders" >"$WORK/bs1.out" 2>"$WORK/bs1.err"; rc=$?
[ $rc -eq 1 ] && grep -qx "$BSF: MISSING" "$WORK/bs1.out" && grep -q "^strata inspect: $BSF: MISSING" "$WORK/bs1.err" \
  && grep -q "DAMAGE FOUND$" "$WORK/bs1.out" && ok || fail "missing schema.json: exit $rc: $(cat "$WORK/bs1.out" "$WORK/bs1.err")"
# Truncated copies at many offsets: exit 1 with the file named, never a crash (exit > 1).
size=$(stat -c %s "$SEG")
for cut in 0 7 16 100 $((size/2)) $((size-33)) $((size-1)); do
  head -c "$cut" "$SEG" >"$WORK/cut.seg"
  "$STRATA" inspect --verify "$WORK/cut.seg" >"$WORK/cut.out" 2>&1; rc=$?
  [ $rc -eq 1 ] && grep -q "cut.seg" "$WORK/cut.out" && ok || fail "truncated at $cut: exit $rc: $(cat "$WORK/cut.out")"
done
# The replayed corpus of damaged segments, through the binary.
if [ -d "$SRC/tests/corpus/segment" ]; then
  for f in "$SRC"/tests/corpus/segment/*.seg; do
    "$STRATA" inspect --verify "$f" >"$WORK/c.out" 2>&1; rc=$?
    case $(basename "$f") in
      valid*) [ $rc -eq 0 ] && ok || fail "$f: exit $rc: $(cat "$WORK/c.out")" ;;
      *) [ $rc -eq 1 ] && ok || fail "$f: exit $rc (want 1): $(cat "$WORK/c.out")" ;;
    esac
  done
fi
# Usage errors.
"$STRATA" inspect >/dev/null 2>&1; [ $? -eq 2 ] && ok || fail "no path: want exit 2"
"$STRATA" inspect --rows x "$SEG" >/dev/null 2>&1; [ $? -eq 2 ] && ok || fail "bad --rows: want exit 2"
"$STRATA" inspect "$WORK/nope.seg" >"$WORK/n.out" 2>&1; [ $? -eq 1 ] && grep -q "nope.seg" "$WORK/n.out" && ok || fail "missing file"
# A directory holding no table is a wrong path, not "all verified".
mkdir -p "$WORK/empty/notatable"
"$STRATA" inspect --verify --quiet "$WORK/empty" >"$WORK/e.out" 2>&1; rc=$?
[ $rc -eq 1 ] && grep -q "no strata table here" "$WORK/e.out" && ! grep -q "all verified" "$WORK/e.out" \
  && ok || fail "a directory without tables: exit $rc: $(cat "$WORK/e.out")"

[ -n "${KEEP:-}" ] || rm -rf "$WORK"
echo "$passes passed, $fails failed"
[ $fails -eq 0 ]
