#!/usr/bin/env bash
# install-test-deps.sh — what the tests need beyond scripts/install-deps.sh: Node.js and
# npm (Debian's, unless the machine has its own) and the Grafana test's npm packages,
# pinned by tests/grafana/package-lock.json (Grafana's @grafana/data), installed again
# only when the lock changed. Used by scripts/test.sh; `strata demo` needs none of it.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "installing: nodejs npm" >&2
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi
cd tests/grafana
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "installing the Grafana test's npm packages (tests/grafana)" >&2
  # npm trusts the machine's certificate store (what curl and apt trust), so a registry
  # reached through a proxy with its own certificate authority works as everywhere else.
  ca=()
  [ -f /etc/ssl/certs/ca-certificates.crt ] && ca=(--cafile=/etc/ssl/certs/ca-certificates.crt)
  npm ci --no-audit --no-fund --loglevel=error "${ca[@]}" >/dev/null
fi
