#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_install.sh BUILD_DIR SOURCE_DIR — the install as a program outside the
# tree sees it. Installs BUILD_DIR (a build without sanitizers: the release
# preset) to a temporary prefix with `cmake --install --prefix`, checks the
# layout (nothing written outside the prefix, libtokend.so.0 with its
# SONAME, only tk_* exported, tokend.pc pointing at the prefix), then builds
# tests/install/consumer.c and fetch_consumer.c twice and runs them:
#   - with pkg-config only (pkgconfig-consumer/Makefile, PKG_CONFIG_PATH at the prefix);
#   - with CMake only (cmake-consumer/, find_package(tokend) with CMAKE_PREFIX_PATH).
# ctest: install/test_install (label install), `ctest --preset install`.
set -euo pipefail

build=$(cd "${1:?usage: test_install.sh BUILD_DIR SOURCE_DIR}" && pwd)
src=$(cd "${2:?usage: test_install.sh BUILD_DIR SOURCE_DIR}" && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/tokend-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
prefix="$tmp/prefix"
fail() {
  echo "test_install: FAIL: $*" >&2
  exit 1
}
step() { echo "== $*"; }

step "cmake --install $build --prefix $prefix"
cmake --install "$build" --prefix "$prefix" >"$tmp/install.log" || {
  cat "$tmp/install.log"
  fail "cmake --install failed"
}
while IFS= read -r f; do
  case "$f" in "$prefix"/*) ;; *) fail "installed outside the prefix: $f" ;; esac
done <"$build/install_manifest.txt"
echo "$(wc -l <"$build/install_manifest.txt") files, all under the prefix"

pc=$(find "$prefix" -path '*/pkgconfig/tokend.pc' | head -n 1)
[ -n "$pc" ] || fail "no tokend.pc under $prefix"
pcdir=$(dirname "$pc")
libdir=$(dirname "$pcdir")
for f in bin/tokend include/tokend/tokend.h include/tokend/limits.h include/tokend/fetch.h \
  include/tokend/keycache.h lib/systemd/system/tokend.service etc/tokend/tokend.conf \
  share/doc/tokend/LICENSE; do
  [ -e "$prefix/$f" ] || fail "missing $prefix/$f"
done
for f in libtokend.so libtokend.so.0 libtokend.a libtokend_fetch.a pkgconfig/tokend_fetch.pc \
  cmake/tokend/tokend-config.cmake cmake/tokend/tokend-config-version.cmake cmake/tokend/tokend-targets.cmake; do
  [ -e "$libdir/$f" ] || fail "missing $libdir/$f"
done
grep -q '@[A-Z_]*@' "$prefix/lib/systemd/system/tokend.service" "$prefix/etc/tokend/tokend.conf" &&
  fail "an @VARIABLE@ left in the installed unit or configuration"
grep -q "^ExecStart=$prefix/bin/tokend serve --config $prefix/etc/tokend/tokend.conf\$" \
  "$prefix/lib/systemd/system/tokend.service" || fail "the unit's ExecStart does not name the installed files"

step "libtokend.so: SONAME, exported symbols"
soname=$(readelf -d "$libdir/libtokend.so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[ "$soname" = libtokend.so.0 ] || fail "SONAME is '$soname', not libtokend.so.0"
[ "$(readlink "$libdir/libtokend.so")" = libtokend.so.0 ] || fail "libtokend.so does not point at libtokend.so.0"
real=$(readlink "$libdir/libtokend.so.0")
echo "libtokend.so -> libtokend.so.0 -> $real (SONAME $soname)"
others=$(nm -D --defined-only "$libdir/libtokend.so" | awk '{print $3}' | grep -v '^tk_' || true)
[ -z "$others" ] || fail "libtokend.so exports symbols outside tk_*: $others"
echo "$(nm -D --defined-only "$libdir/libtokend.so" | wc -l) symbols exported, all tk_*"
"$prefix/bin/tokend" --version

step "pkg-config"
export PKG_CONFIG_PATH="$pcdir"
[ "$(pkg-config --variable=prefix tokend)" = "$prefix" ] || fail "tokend.pc prefix is $(pkg-config --variable=prefix tokend)"
[ "$(pkg-config --variable=libdir tokend)" = "$libdir" ] || fail "tokend.pc libdir is $(pkg-config --variable=libdir tokend)"
echo "tokend $(pkg-config --modversion tokend): $(pkg-config --cflags --libs tokend)"
echo "tokend_fetch $(pkg-config --modversion tokend_fetch): $(pkg-config --libs tokend_fetch)"
mkdir "$tmp/pc"
make -s -C "$tmp/pc" -f "$src/tests/install/pkgconfig-consumer/Makefile"
# Linked with -ltokend only: OpenSSL and jansson are libtokend's own business.
needed=$(readelf -d "$tmp/pc/consumer" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' ')
echo "consumer needs: $needed"
case " $needed " in *" libtokend.so.0 "*) ;; *) fail "consumer is not linked to libtokend.so.0" ;; esac
case "$needed" in *libcrypto* | *libjansson*) fail "consumer links OpenSSL or jansson itself: $needed" ;; esac
# Not in a directory ld.so searches: LD_LIBRARY_PATH, as for any private prefix.
LD_LIBRARY_PATH="$libdir" ldd "$tmp/pc/consumer" | grep -q "libtokend.so.0 => $libdir/libtokend.so.0" ||
  fail "consumer does not load $libdir/libtokend.so.0"
LD_LIBRARY_PATH="$libdir" "$tmp/pc/consumer"
LD_LIBRARY_PATH="$libdir" "$tmp/pc/fetch_consumer"
unset PKG_CONFIG_PATH

step "CMake: find_package(tokend COMPONENTS fetch)"
cmake -S "$src/tests/install/cmake-consumer" -B "$tmp/cm" -DCMAKE_PREFIX_PATH="$prefix" \
  -DCMAKE_BUILD_TYPE=Release >"$tmp/cm.log" || {
  cat "$tmp/cm.log"
  fail "configuring cmake-consumer failed"
}
grep 'tokend .* from' "$tmp/cm.log"
cmake --build "$tmp/cm" >"$tmp/cm-build.log" || {
  cat "$tmp/cm-build.log"
  fail "building cmake-consumer failed"
}
# CMake puts the imported library's directory in the build tree's RPATH.
"$tmp/cm/consumer"
"$tmp/cm/consumer_static"
if readelf -d "$tmp/cm/consumer_static" | grep -q 'libtokend\.so'; then
  fail "consumer_static links libtokend.so"
fi
"$tmp/cm/fetch_consumer"
echo "test_install: OK"
