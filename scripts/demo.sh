#!/usr/bin/env bash
# demo.sh — README's run command: installs what is missing, builds strata, writes a sample
# of the reference order events into a data directory through the real write path
# (memtables -> segments -> manifests), inspects and verifies it with `strata inspect`, then
# serves it with `strata serve` on 127.0.0.1:8686 until Ctrl-C (example queries printed).
# (Kafka ingestion and `strata demo` with its paced stream come with issue 4.)
# Usage: scripts/demo.sh [ROWS] (default 1000000); data goes to ./data/demo.
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${1:-1000000}
scripts/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release >/dev/null
echo "== writing $ROWS reference order events into ./data/demo"
build/bench/bench_segment --rows "$ROWS" --codec lz4 --data data/demo --keep
echo
echo "== strata inspect data/demo (like system.parts)"
build/strata inspect data/demo/lz4
seg=$(find data/demo/lz4 -name '*.seg' | sort | head -n 1)
echo
echo "== strata inspect $seg"
build/strata inspect "$seg"
echo
echo "== strata inspect --rows 3 $seg"
build/strata inspect --rows 3 "$seg"
echo
echo "== strata inspect --verify data/demo/lz4"
build/strata inspect --verify data/demo/lz4 | tail -n 1
echo
PORT=${STRATA_DEMO_PORT:-8686}
cat <<EOT
== serving data/demo/lz4 on http://127.0.0.1:$PORT/ (Ctrl-C stops it). Try:
curl -s 127.0.0.1:$PORT/health
curl -s 127.0.0.1:$PORT/tables
curl -s 127.0.0.1:$PORT/query -d '{"table":"orders","from":0,"select":[{"fn":"count"}]}'
curl -s 127.0.0.1:$PORT/query -d '{"table":"orders","from":"2024-01-01T00:00:00Z","to":"2024-01-02T00:00:00Z","interval":"1h","select":[{"fn":"count","as":"orders"},{"fn":"sum","column":"amount","as":"gmv"},{"fn":"quantile","column":"amount","q":0.99,"as":"p99"}],"where":[{"column":"country","op":"=","value":"US"}]}'
curl -s 127.0.0.1:$PORT/query -d '{"table":"orders","from":0,"select":[{"fn":"sum","column":"amount","as":"gmv"},{"fn":"uniq","column":"user_id","as":"users"}],"group_by":["country"],"order_by":[{"column":"gmv","desc":true}],"limit":5}'
echo '{"ts":"2024-01-01T12:00:00Z","event_id":1,"user_id":7,"country":"US","category":"books","status":"paid","device":"mobile","amount":12.5,"quantity":1,"version":1}' | curl -s 127.0.0.1:$PORT/ingest/orders --data-binary @-
curl -s 127.0.0.1:$PORT/metrics
EOT
exec build/strata serve --data data/demo/lz4 --listen "127.0.0.1:$PORT"
