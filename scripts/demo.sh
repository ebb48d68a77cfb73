#!/usr/bin/env bash
# The main job until `tokend serve` exists: build tokend, mint a key and a
# token, and let `tokend inspect` explain a valid token and a broken one.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cmake --preset release >/dev/null
cmake --build --preset release -j"$(nproc 2>/dev/null || echo 2)" --target tokend >/dev/null
bin=build/release/tokend
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$bin" keygen --alg ES256 --kid demo-key --out "$work/demo-key.jwk" > "$work/jwks.json"
token=$("$bin" sign --key "$work/demo-key.jwk" --iss https://auth.example --aud orders-api \
          --sub alice --scope "orders:read" --typ at+jwt --exp 15m)

echo "== A fresh access token, checked against its issuer's JWKS =="
echo "\$ tokend inspect --jwks jwks.json --iss https://auth.example --aud orders-api --typ at+jwt 'Bearer <token>'"
"$bin" inspect --jwks "$work/jwks.json" --iss https://auth.example --aud orders-api --typ at+jwt "Bearer $token" || true

echo
echo "== The same token, an hour later, at an API that needs orders:write =="
later=$(( $(date +%s) + 3600 ))
"$bin" inspect --jwks "$work/jwks.json" --iss https://auth.example --aud orders-api \
  --scope orders:write --now "$later" "$token" || true

echo
echo "Use a token: curl -H \"Authorization: Bearer \$TOKEN\" https://api.example/orders"
echo "Explain one: tokend inspect --jwks https://issuer/.well-known/jwks.json --aud YOUR_API - <<< \"\$TOKEN\""
