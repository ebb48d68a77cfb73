#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs the Debian 12 packages tokend builds, tests and benchmarks with.
# Idempotent: does nothing when everything is already installed.
set -euo pipefail

PKGS=(
  build-essential cmake pkg-config ca-certificates openssl clang-format
  # man/*.scd -> man pages (cmake/man.cmake); man-db checks them (tests/e2e/test_man.py)
  scdoc man-db groff-base
  # completions/_tokend is tested in a real zsh (tests/e2e/test_completion.py)
  zsh
  libssl-dev libjansson-dev libcurl4-openssl-dev
  libcmocka-dev
  python3 python3-jwt python3-jwcrypto python3-cryptography
  libjwt-dev libcjose-dev
  libmicrohttpd-dev libsqlite3-dev libsodium-dev sqlite3
  # the PostgreSQL store: libpq, and a server the tests start themselves
  # (tests/pg/README.md; the cluster the package may set up is not used)
  libpq-dev postgresql
  nginx-light wrk curl python3-requests python3-requests-oauthlib
  # tests/e2e/test_oidc.py: a relying party with authlib
  python3-authlib
  chromium
  # fuzz/: clang with libFuzzer and the sanitizer runtimes; llvm-symbolizer
  clang libclang-rt-14-dev llvm
)

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# playwright-core drives Debian's chromium in tests/e2e/test_signin_browser.py and
# test_oidc_browser.py; openid-client and oauth4webapi are the relying parties
# of the latter.
# Node.js (>= 20) and npm come with the machine image (see the env notes);
# Debian 12's own nodejs is 18, too old for playwright-core.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ "$ROOT/tests/e2e/browser/package-lock.json" -nt "$ROOT/tests/e2e/browser/node_modules/.package-lock.json" ]; then
  echo "deps: npm ci --prefix tests/e2e/browser"
  npm ci --prefix "$ROOT/tests/e2e/browser" --no-audit --no-fund >/dev/null
fi
