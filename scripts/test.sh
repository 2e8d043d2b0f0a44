#!/usr/bin/env bash
# test.sh — README's test command: installs what is missing (install-deps.sh, and
# install-test-deps.sh for Node.js and the Grafana test's npm packages), builds the release and the
# ASan+UBSan configurations with warnings as errors, and runs every test (unit,
# integration, crash, fuzz-replay) in both; then builds the ThreadSanitizer configuration
# and runs the tests whose threads share tables (label concurrent) under it.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/install-test-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release
ctest --preset release
cmake --preset asan >/dev/null
cmake --build --preset asan
ctest --preset asan
cmake --preset tsan >/dev/null
cmake --build --preset tsan
ctest --preset tsan
