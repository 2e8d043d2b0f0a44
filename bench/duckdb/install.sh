#!/bin/sh
# install.sh — sets up bench/duckdb for `bench_http --duckdb`: `npm ci` installs the pinned
# @duckdb/node-api (package.json, package-lock.json) into bench/duckdb/node_modules; its
# prebuilt DuckDB binary comes from the npm registry (@duckdb/node-bindings-linux-x64).
# Needs node (18 or later) and npm: apt-get install nodejs npm.
set -eu
cd "$(dirname "$0")"
npm ci --no-audit --no-fund
node -e "import('@duckdb/node-api').then(() => console.log('bench/duckdb: @duckdb/node-api ready'))"
