#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The main job: build tokend (build/release/tokend) and run `tokend serve`
# over HTTPS on the embedded SQLite store, with a self-signed development
# certificate, and a demo client whose token commands are printed ready to
# paste into another terminal.
# Data (store tokend.db, master key tokend.master.key, certificate
# tokend-dev.crt) lives in ./tokend-data, which is what the README's "Run the
# server" commands use too; Ctrl-C stops.
#
# TOKEND_LISTEN=HOST:PORT listens elsewhere than 127.0.0.1:8443.
# TOKEND_DEMO_NO_BUILD=1 installs and builds nothing and runs the tokend
# already at build/release/tokend (tests/e2e/test_printed_commands.py runs
# the demo so, in a copy of this layout).
set -euo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)
if [ -z "${TOKEND_DEMO_NO_BUILD:-}" ]; then
  bash scripts/deps.sh
  cmake --preset release >/dev/null
  cmake --build --preset release -j"$(nproc 2>/dev/null || echo 2)" --target tokend >/dev/null
fi
bin="$top/build/release/tokend"
mkdir -p tokend-data
cd tokend-data
# the defaults, relative to tokend-data, whatever the environment says
export TOKEND_STORE=sqlite://./tokend.db TOKEND_MASTER_KEY_FILE=./tokend.master.key TOKEND_DATA_DIR=.
unset TOKEND_CONFIG
listen=${TOKEND_LISTEN:-127.0.0.1:8443}
base="https://${listen}"

# One shell word for a directory (quoted when it must be).
word() {
  case $1 in
    *[!A-Za-z0-9_./:@%+=,-]*) printf "'%s'" "${1//\'/\'\\\'\'}" ;;
    *) printf '%s' "$1" ;;
  esac
}

if ! "$bin" client show demo >/dev/null 2>&1; then
  secret=$("$bin" client add demo --scope 'orders:read orders:write' --aud orders-api --json 2>/dev/null |
           sed -n 's/.*"client_secret": "\(.*\)".*/\1/p')
  cat <<MSG
A demo client was created (its secret is shown once; tokend keeps only a hash).
Try it in another terminal (the server's own commands follow its banner below):

  cd $(word "$top") && export PATH="\$PWD/build/release:\$PATH" && cd tokend-data
  TOKEN=\$(curl -s --cacert tokend-dev.crt -u 'demo:${secret}' -d grant_type=client_credentials -d scope=orders:read ${base}/oauth/token | sed 's/.*"access_token":"\([^"]*\)".*/\1/')
  curl -i --cacert tokend-dev.crt -H "Authorization: Bearer \$TOKEN" '${base}/auth?aud=orders-api&scope=orders:read'
  curl -i --cacert tokend-dev.crt -H "Authorization: Bearer \$TOKEN" '${base}/auth?aud=orders-api&scope=orders:write'   # 403, and why

MSG
else
  echo "The demo client exists (its secret was shown when it was made); the server's banner below says how to"
  echo "make and use another one, in another terminal."
  echo
fi
exec "$bin" serve --dev --listen "$listen"
