#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_deb.sh SOURCE_DIR — the Debian package, on this machine. Builds it
# (cmake --preset deb, warnings as errors; cpack --preset deb), installs it
# with apt-get, checks what the maintainer scripts made (the tokend system
# user, /var/lib/tokend 0750, the conffile, the ldconfig cache: a program
# built with pkg-config runs without LD_LIBRARY_PATH), starts the service,
# adds a client, gets a token with curl and has /auth accept it, reads
# /metrics from the admin listener, then purges
# the package and checks that nothing of it is left running or installed.
#
# The service: with systemd as PID 1, `systemctl start tokend` (the port
# set by a drop-in in /run). Without (a container), the unit's ExecStart run
# the way the unit would: as its User and Group, in its WorkingDirectory,
# with its UMask; the package's prerm then stops it (start-stop-daemon).
#
# Root on Debian only; else skipped (exit 77). Refuses to run when a tokend
# package is already installed (it would be purged). ctest: install/test_deb
# (label deb), `ctest --preset deb`.
set -euo pipefail

src=$(cd "${1:?usage: test_deb.sh SOURCE_DIR}" && pwd)
if [ "$(id -u)" -ne 0 ] || [ ! -f /etc/debian_version ] || ! command -v apt-get >/dev/null; then
  echo "test_deb: skipped (needs root on Debian)"
  exit 77
fi
if dpkg-query -W -f='${Status}' tokend 2>/dev/null | grep -q 'installed\|config-files'; then
  echo "test_deb: a tokend package is installed already; purge it first (apt-get purge tokend)" >&2
  exit 1
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/tokend-deb.XXXXXX")
chmod 0755 "$tmp"
server_pid=""
installed=0
dropin=/run/systemd/system/tokend.service.d/test-deb.conf
systemd=0
if [ -d /run/systemd/system ]; then systemd=1; fi
cleanup() {
  set +e
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then kill "$server_pid"; fi
  if [ "$installed" = 1 ]; then apt-get purge -y -qq tokend >/dev/null 2>&1; fi
  if [ -f "$dropin" ]; then
    rm -f "$dropin"
    rmdir "$(dirname "$dropin")" 2>/dev/null
    systemctl daemon-reload
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() {
  echo "test_deb: FAIL: $*" >&2
  if [ -f "$tmp/server.log" ]; then sed 's/^/  server: /' "$tmp/server.log" >&2; fi
  exit 1
}
step() { echo "== $*"; }

step "build the package (cmake --preset deb, cpack --preset deb)"
cd "$src"
rm -f build/deb/tokend_*.deb
cmake --preset deb -DTOKEND_WERROR=ON >"$tmp/configure.log" 2>&1 || {
  cat "$tmp/configure.log"
  fail "configure"
}
cmake --build --preset deb -j"$(nproc 2>/dev/null || echo 2)" >"$tmp/build.log" 2>&1 || {
  tail -50 "$tmp/build.log"
  fail "build"
}
cpack --preset deb >"$tmp/cpack.log" 2>&1 || {
  cat "$tmp/cpack.log"
  fail "cpack"
}
deb=$(ls build/deb/tokend_*.deb)
echo "$deb"
dpkg-deb --info "$deb" | sed -n '/Package:/,$p'
dpkg-deb --contents "$deb" | awk '{print $1, $3, $6, $7, $8}'

step "what it holds"
dpkg-deb --contents "$deb" | awk '{print $6}' | sed 's,^\./,/,' >"$tmp/files"
for f in /usr/bin/tokend /usr/include/tokend/tokend.h /usr/lib/systemd/system/tokend.service \
  /etc/tokend/tokend.conf /usr/share/doc/tokend/LICENSE; do
  grep -qx "$f" "$tmp/files" || fail "the package has no $f"
done
grep -q '/libtokend\.so\.0 ' <(dpkg-deb --contents "$deb" | awk '{print $6, $7, $8}') || fail "no libtokend.so.0"
grep -q '/pkgconfig/tokend\.pc$' "$tmp/files" || fail "no tokend.pc"
grep -q '/cmake/tokend/tokend-config\.cmake$' "$tmp/files" || fail "no tokend-config.cmake"
# Every man page of man/*.scd (the deb preset requires scdoc), and the completions.
for scd in "$src"/man/*.scd; do
  page=$(basename "$scd" .scd)
  grep -q "^/usr/share/man/man${page##*.}/${page}\(\.gz\)\?\$" "$tmp/files" || fail "the package has no man page $page"
done
for f in /usr/share/bash-completion/completions/tokend /usr/share/zsh/vendor-completions/_tokend; do
  grep -qx "$f" "$tmp/files" || fail "the package has no $f"
done
dpkg-deb --ctrl-tarfile "$deb" | tar -t | sort | tr '\n' ' '
echo
dpkg-deb --field "$deb" Depends

step "apt-get install $deb"
installed=1
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$src/$deb" >"$tmp/apt.log" 2>&1 || {
  cat "$tmp/apt.log"
  fail "apt-get install"
}
getent passwd tokend | grep -q ':/usr/sbin/nologin$' || fail "no system user tokend with nologin: $(getent passwd tokend)"
uid=$(id -u tokend)
[ "$uid" -lt 1000 ] || fail "tokend is not a system user (uid $uid)"
[ "$(stat -c '%a %U %G' /var/lib/tokend)" = "750 tokend tokend" ] ||
  fail "/var/lib/tokend is $(stat -c '%a %U %G' /var/lib/tokend)"
dpkg-query -W -f='${Conffiles}\n' tokend | grep -q '/etc/tokend/tokend.conf' || fail "tokend.conf is not a conffile"
ldconfig -p | grep -q 'libtokend.so.0 ' || fail "libtokend.so.0 is not in the ldconfig cache"
echo "user tokend (uid $uid), /var/lib/tokend 750 tokend:tokend, conffile /etc/tokend/tokend.conf, libtokend.so.0 in ld.so.cache"

step "a program built with pkg-config against /usr runs as is"
mkdir "$tmp/pc"
make -s -C "$tmp/pc" -f "$src/tests/install/pkgconfig-consumer/Makefile" consumer
env -u LD_LIBRARY_PATH "$tmp/pc/consumer"

step "start the service (systemd: $([ $systemd = 1 ] && echo yes || echo "no, PID 1 is $(ps -p 1 -o comm=)"))"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=$(free_port)
admin_port=$(free_port)
base="https://127.0.0.1:$port"
# The test's settings, as an administrator's drop-in would give them: free
# ports (the admin listener's too, where there is one) and, whatever the
# package's tokend.conf says about TLS, a self-signed certificate for
# localhost in the data directory (dev).
test_env=(TOKEND_LISTEN="127.0.0.1:$port" TOKEND_ADMIN_LISTEN="127.0.0.1:$admin_port" TOKEND_DEV=1)
unit=/usr/lib/systemd/system/tokend.service
if [ "$systemd" = 1 ]; then
  mkdir -p "$(dirname "$dropin")"
  printf '[Service]\nEnvironment=%s\n' "${test_env[@]}" >"$dropin"
  systemctl daemon-reload
  systemctl start tokend.service
  systemctl is-active tokend.service
else
  # The unit, as systemd would run it: its ExecStart as its User and Group,
  # in its WorkingDirectory (systemd's default: /), with its UMask.
  key() { sed -n "s/^$1=//p" "$unit" | tail -n 1; }
  exec_start=$(key ExecStart | sed 's/^[-@+!:]*//')
  user=$(key User)
  group=$(key Group)
  wd=$(key WorkingDirectory)
  wd=${wd:-/}
  umask_=$(key UMask)
  echo "ExecStart=$exec_start (User=$user Group=$group WorkingDirectory=$wd UMask=$umask_)"
  setpriv --reuid="$user" --regid="$group" --init-groups --reset-env \
    env "${test_env[@]}" sh -c "umask ${umask_:-0022} && cd '$wd' && exec $exec_start" \
    >"$tmp/server.log" 2>&1 &
  server_pid=$!
fi
for _ in $(seq 1 100); do
  if [ -s /var/lib/tokend/tokend-dev.crt ] &&
    curl -sf --cacert /var/lib/tokend/tokend-dev.crt "$base/.well-known/jwks.json" >/dev/null 2>&1; then
    break
  fi
  if [ -n "$server_pid" ] && ! kill -0 "$server_pid" 2>/dev/null; then fail "the server exited"; fi
  sleep 0.2
done
curl -sf --cacert /var/lib/tokend/tokend-dev.crt "$base/.well-known/jwks.json" >/dev/null ||
  fail "$base/.well-known/jwks.json does not answer"
pgrep -u tokend -x tokend >/dev/null || fail "no tokend running as the tokend user"
echo "ready at $base, running as $(ps -o user= -p "$(pgrep -u tokend -x tokend | head -n 1)")"
ls -l /var/lib/tokend

step "a client, a token, /auth"
cd /var/lib/tokend
client=$(setpriv --reuid=tokend --regid=tokend --init-groups \
  /usr/bin/tokend client add web --scope orders:read --aud orders-api --json --config /etc/tokend/tokend.conf) ||
  fail "tokend client add"
cd "$src"
id=$(printf '%s' "$client" | python3 -c 'import json,sys; print(json.load(sys.stdin)["client_id"])')
secret=$(printf '%s' "$client" | python3 -c 'import json,sys; print(json.load(sys.stdin)["client_secret"])')
resp=$(curl -sf --cacert /var/lib/tokend/tokend-dev.crt -u "$id:$secret" -d grant_type=client_credentials \
  "$base/oauth/token") || fail "POST /oauth/token"
token=$(printf '%s' "$resp" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
echo "token: ${token:0:24}... ($(printf '%s' "$token" | wc -c) bytes)"
status=$(curl -s -o /dev/null -w '%{http_code}' --cacert /var/lib/tokend/tokend-dev.crt \
  -H "Authorization: Bearer $token" "$base/auth?aud=orders-api&scope=orders:read")
[ "$status" = 200 ] || fail "/auth answered $status for the token"
echo "/auth?aud=orders-api: $status"
/usr/bin/tokend inspect --cacert /var/lib/tokend/tokend-dev.crt --jwks "$base/.well-known/jwks.json" \
  --aud orders-api "$token" >"$tmp/inspect.txt" || {
  cat "$tmp/inspect.txt"
  fail "tokend inspect does not find the token valid"
}
echo "tokend inspect --jwks $base/.well-known/jwks.json: valid"
# The admin listener (plain HTTP): /metrics there, not on the public port.
curl -sf "http://127.0.0.1:$admin_port/metrics" | grep -q '^tokend_' ||
  fail "no metrics on the admin listener http://127.0.0.1:$admin_port/metrics"
status=$(curl -s -o /dev/null -w '%{http_code}' --cacert /var/lib/tokend/tokend-dev.crt "$base/metrics")
[ "$status" = 404 ] || fail "/metrics on the public listener answered $status, not 404"
echo "admin listener 127.0.0.1:$admin_port: /metrics; public /metrics: 404"

step "apt-get purge tokend"
DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq tokend >"$tmp/purge.log" 2>&1 || {
  cat "$tmp/purge.log"
  fail "apt-get purge"
}
installed=0
if [ -n "$server_pid" ]; then
  # prerm stopped it: the process we started must be gone.
  for _ in $(seq 1 50); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$server_pid" 2>/dev/null; then fail "the server still runs after the purge"; fi
  wait "$server_pid" 2>/dev/null || true
  server_pid=""
fi
if pgrep -u tokend >/dev/null; then fail "processes of tokend still run: $(pgrep -a -u tokend)"; fi
if ss -ltn "sport = :$port" | grep -q LISTEN; then fail "port $port still listens"; fi
for f in /usr/bin/tokend /var/lib/tokend /etc/tokend /usr/lib/systemd/system/tokend.service /usr/include/tokend; do
  [ ! -e "$f" ] || fail "$f is left after the purge"
done
if ldconfig -p | grep -q libtokend; then fail "libtokend is left in the ldconfig cache"; fi
if dpkg-query -W -f='${Status}' tokend 2>/dev/null | grep -q 'installed\|config-files'; then
  fail "dpkg still knows tokend: $(dpkg-query -W -f='${Status}' tokend)"
fi
echo "nothing running, nothing left (the system user tokend stays, as Debian policy advises)"
echo "test_deb: OK"
