#!/usr/bin/env bash
# demo.sh — README's run command: installs what is missing, builds strata, and runs
# `strata demo`: the embedded Kafka broker, a paced stream of live order events into it,
# and `strata serve` with a demo `orders` table consuming the stream, on
# http://127.0.0.1:8686/ (example queries printed). Ctrl-C stops everything.
# Usage: scripts/demo.sh [strata demo flags, e.g. --rate 5000 --listen 127.0.0.1:9000]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
# Only the strata binary, without -Werror: a newer compiler's new warning must not stop a
# user's first command (the test command builds everything with -Werror).
cmake -S . -B build-run -DCMAKE_BUILD_TYPE=Release -DSTRATA_WERROR=OFF >/dev/null
cmake --build build-run --target strata -j2 >/dev/null
exec build-run/strata demo "$@"
