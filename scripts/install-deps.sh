#!/usr/bin/env bash
# install-deps.sh — installs the Debian 12 packages strata builds, tests and benchmarks
# with. Safe to run again: apt-get skips what is installed. Used by README's commands and
# by .ci/run.
set -euo pipefail
PKGS=(
  build-essential cmake pkg-config git ca-certificates
  clang libclang-rt-14-dev           # libFuzzer targets and their sanitizer runtime
  liblz4-dev libzstd-dev libxxhash-dev libroaring-dev
  libjansson-dev librdkafka-dev libmicrohttpd-dev
  python3 curl procps
)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node.js and npm run the Grafana test (Grafana's @grafana/data reading strata's answers):
# Debian's, unless the machine already has a node and npm of its own.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  missing+=(nodejs npm)
fi
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "installing: ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# The test's npm packages, pinned by tests/grafana/package-lock.json; again only when the
# lock changed since the last install.
cd "$(dirname "$0")/../tests/grafana"
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "installing the Grafana test's npm packages (tests/grafana)" >&2
  npm ci --no-audit --no-fund --loglevel=error >/dev/null
fi
