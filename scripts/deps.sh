#!/usr/bin/env bash
# Installs the Debian 12 packages tokend builds, tests and benchmarks with.
# Idempotent: does nothing when everything is already installed.
set -euo pipefail

PKGS=(
  build-essential cmake pkg-config ca-certificates openssl clang-format
  libssl-dev libjansson-dev libcurl4-openssl-dev
  libcmocka-dev
  python3 python3-jwt python3-jwcrypto python3-cryptography
  libjwt-dev libcjose-dev
  libmicrohttpd-dev libsqlite3-dev libsodium-dev sqlite3
  nginx-light wrk curl python3-requests python3-requests-oauthlib
)

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "deps: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
