#!/usr/bin/env bash
# install-deps.sh — installs the Debian 12 packages strata builds, tests and benchmarks
# with, and the packages named as arguments (install-test-deps.sh names what the tests
# need more). Safe to run again: only what is missing is installed. Used by README's
# commands and by .ci/run.
set -euo pipefail
PKGS=(
  build-essential cmake pkg-config git ca-certificates
  clang libclang-rt-14-dev           # libFuzzer targets and their sanitizer runtime
  liblz4-dev libzstd-dev libxxhash-dev libroaring-dev
  libjansson-dev librdkafka-dev libmicrohttpd-dev
  python3 curl procps
)
missing=()
for p in "${PKGS[@]}" "$@"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "installing: ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
