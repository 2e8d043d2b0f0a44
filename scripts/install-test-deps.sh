#!/usr/bin/env bash
# install-test-deps.sh — what the tests need beyond scripts/install-deps.sh: Node.js and
# npm (Debian's, unless the machine has its own), Debian's Chromium (the console test),
# and the npm packages of the Grafana and console tests, pinned by their package-lock.json
# (@grafana/data and esbuild; puppeteer-core), installed again only when a lock changed.
# Used by scripts/test.sh; `strata demo` needs none of it.
set -euo pipefail
cd "$(dirname "$0")/.."
extra=()
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  extra+=(nodejs npm) # Debian's, unless the machine has a node and npm of its own
fi
command -v chromium >/dev/null || extra+=(chromium)
scripts/install-deps.sh "${extra[@]}"
# npm trusts the machine's certificate store (what curl and apt trust), so a registry
# reached through a proxy with its own certificate authority works as everywhere else.
ca=()
[ -f /etc/ssl/certs/ca-certificates.crt ] && ca=(--cafile=/etc/ssl/certs/ca-certificates.crt)
for dir in tests/grafana tests/console; do
  if [ ! -f "$dir/node_modules/.package-lock.json" ] ||
     [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
    echo "installing the npm packages of $dir" >&2
    # --ignore-scripts: no package's install script runs (esbuild's only places its binary,
    # which it finds in its platform package anyway; Debian's npm 9 failed in it).
    (cd "$dir" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error "${ca[@]}" >/dev/null)
  fi
done
