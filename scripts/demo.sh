#!/usr/bin/env bash
# demo.sh — README's run command: installs what is missing, builds strata, and runs the
# main job available at this stage: write a sample of the reference order events into a
# data directory through the real write path (memtables -> segments -> manifests), then
# inspect and verify it with `strata inspect`.
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
