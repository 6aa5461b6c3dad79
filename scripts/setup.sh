#!/usr/bin/env bash
# Installs every Debian 12 package Lightboat's build and tests need. Idempotent.
set -euo pipefail
packages=(
  build-essential cmake pkg-config git python3
  libgtest-dev libgmock-dev libbenchmark-dev
  libpcre2-dev nlohmann-json3-dev libcli11-dev
  g++-aarch64-linux-gnu qemu-user  # ARM NEON kernels: cross build + tests under qemu
  libboost-dev prometheus wrk  # server: Beast/Asio headers; promtool for /metrics; wrk for load tests
  libcurl4-openssl-dev libssl-dev  # store: lightboat pull (libcurl), SHA-256 (libcrypto)
)
# The server's client tests use node + npm (the official openai package, ws); any node >= 20 will
# do, so Debian's are installed only when none is on the PATH (a NodeSource node bundles npm).
command -v node >/dev/null && command -v npm >/dev/null || packages+=(nodejs npm)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
echo "setup: all packages present"
