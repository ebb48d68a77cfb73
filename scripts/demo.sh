#!/usr/bin/env bash
# The main job: build tokend and run `tokend serve` over HTTPS on the
# embedded SQLite store, with a self-signed development certificate, and a
# demo client whose token commands are printed ready to paste.
# Data (store, master key, certificate) lives in ./tokend-data; Ctrl-C stops.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cmake --preset release >/dev/null
cmake --build --preset release -j"$(nproc 2>/dev/null || echo 2)" --target tokend >/dev/null
bin="$(pwd)/build/release/tokend"
mkdir -p tokend-data
cd tokend-data
export TOKEND_STORE=sqlite://./tokend.db TOKEND_MASTER_KEY_FILE=./tokend.master.key
listen=${TOKEND_LISTEN:-127.0.0.1:8443}
base="https://${listen}"

if ! "$bin" client show demo >/dev/null 2>&1; then
  secret=$("$bin" client add demo --scope 'orders:read orders:write' --aud orders-api --json 2>/dev/null |
           sed -n 's/.*"client_secret": "\(.*\)".*/\1/p')
  cat <<MSG
A demo client was created (its secret is shown once; tokend keeps only a hash):

  TOKEN=\$(curl -s --cacert tokend-data/tokend-dev.crt -u 'demo:${secret}' \\
          -d grant_type=client_credentials -d scope=orders:read ${base}/oauth/token | sed 's/.*"access_token":"\([^"]*\)".*/\1/')
  curl -i --cacert tokend-data/tokend-dev.crt -H "Authorization: Bearer \$TOKEN" '${base}/auth?aud=orders-api&scope=orders:read'
  curl -i --cacert tokend-data/tokend-dev.crt -H "Authorization: Bearer \$TOKEN" '${base}/auth?aud=orders-api&scope=orders:write'   # 403, and why

MSG
else
  echo "The demo client exists (its secret was shown when it was made); add another with:"
  echo "  TOKEND_STORE=sqlite://./tokend-data/tokend.db TOKEND_MASTER_KEY_FILE=./tokend-data/tokend.master.key $bin client add NAME --scope SCOPE --aud AUD"
  echo
fi
exec "$bin" serve --dev --listen "$listen"
