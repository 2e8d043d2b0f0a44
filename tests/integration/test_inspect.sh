#!/usr/bin/env bash
# test_inspect.sh — `strata inspect` as a user runs it: on a data directory written by the
# real write path, on one segment (text, --json, --rows, --verify), and on damaged copies,
# which must fail with an error naming the file (and column/granule for block damage),
# never crash. Args: STRATA_BIN BUILD_DIR SOURCE_DIR.
set -u
STRATA=$1 BUILD=$2 SRC=$3
WORK=$BUILD/test-tmp/inspect-$$
rm -rf "$WORK"; mkdir -p "$WORK"
fails=0 passes=0
ok()   { passes=$((passes+1)); }
fail() { echo "FAIL: $*" >&2; fails=$((fails+1)); }

"$BUILD/bench/bench_segment" --rows 60000 --codec both --data "$WORK/data" --keep >"$WORK/bench.out" \
  || { echo "bench_segment failed" >&2; cat "$WORK/bench.out" >&2; exit 1; }

# Directory listing: every segment, totals equal to the rows written.
"$STRATA" inspect "$WORK/data/lz4" >"$WORK/dir.txt" 2>&1 && ok || fail "inspect dir exit $?"
grep -q "total: .* 60000 rows" "$WORK/dir.txt" && ok || fail "dir totals: $(tail -1 "$WORK/dir.txt")"
"$STRATA" inspect --json "$WORK/data/zstd" >"$WORK/dir.json" && ok || fail "inspect dir --json"
python3 - "$WORK/dir.json" <<'PY' && ok || fail "dir json"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["total"]["rows"] == 60000, d["total"]
assert d["problems"] == 0
assert all(s["table"] == "orders" and s["ok"] for s in d["segments"])
assert len({s["partition"] for s in d["segments"]}) == 7, "7 day partitions"
PY
"$STRATA" inspect --verify --quiet "$WORK/data" >"$WORK/verify.txt" 2>&1 && ok || fail "verify data dir: $(cat "$WORK/verify.txt")"
grep -q "all verified" "$WORK/verify.txt" && ok || fail "verify summary"

SEG=$(find "$WORK/data/lz4" -name '*.seg' | sort | head -n 1)
"$STRATA" inspect "$SEG" >"$WORK/seg.txt" && ok || fail "inspect segment"
for word in "format version  1" "rows" "time range" "amount" "decimal" "bitmaps"; do
  grep -q "$word" "$WORK/seg.txt" && ok || fail "segment summary lacks '$word'"
done
"$STRATA" inspect --json "$SEG" >"$WORK/seg.json" && ok || fail "inspect segment --json"
"$STRATA" inspect --rows 5 "$SEG" >"$WORK/rows.jsonl" && ok || fail "inspect --rows"
python3 - "$WORK/seg.json" "$WORK/rows.jsonl" <<'PY' && ok || fail "segment json"
import json, sys
s = json.load(open(sys.argv[1]))
assert s["format_version"] == 1 and s["rows"] > 0
cols = {c["name"]: c for c in s["columns"]}
assert set(cols) == {"ts","event_id","user_id","country","category","status","device","amount","quantity","version"}
assert cols["country"]["dictionary_size"] <= 50 and cols["country"]["bitmap_index_bytes"] > 0
assert cols["amount"]["encodings"].get("decimal"), cols["amount"]
assert s["min_time"] <= s["max_time"]
rows = [json.loads(l) for l in open(sys.argv[2])]
assert len(rows) == 5
for r in rows:
    assert s["min_time"] <= r["ts"] <= s["max_time"]
    assert round(r["amount"] * 100) == r["amount"] * 100 or abs(round(r["amount"]*100) - r["amount"]*100) < 1e-6
    assert 1 <= r["quantity"] <= 10 and r["event_id"] < 2**63
PY
grep -qE '"amount":[0-9]+\.[0-9]{3,}' "$WORK/rows.jsonl" && fail "amounts printed with noise digits: $(head -1 "$WORK/rows.jsonl")" || ok
"$STRATA" inspect --verify "$SEG" >"$WORK/v1.txt" 2>&1 && ok || fail "verify good segment"

# Damage: a flipped byte in the middle of the data blocks -> exit 1, names column and granule.
cp "$SEG" "$WORK/flip.seg"
python3 - "$WORK/flip.seg" <<'PY'
import sys
p = sys.argv[1]; b = bytearray(open(p, "rb").read()); b[len(b)//3] ^= 0x40; open(p, "wb").write(b)
PY
"$STRATA" inspect --verify "$WORK/flip.seg" >"$WORK/flip.out" 2>&1; rc=$?
[ $rc -eq 1 ] && ok || fail "flipped byte: exit $rc"
grep -q "flip.seg: column '.*' granule [0-9]*: checksum mismatch" "$WORK/flip.out" && ok || fail "flipped byte message: $(cat "$WORK/flip.out")"
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

rm -rf "$WORK"
echo "$passes passed, $fails failed"
[ $fails -eq 0 ]
