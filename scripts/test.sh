#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The whole test suite: installs what it needs, builds with AddressSanitizer +
# UndefinedBehaviorSanitizer (warnings are errors) with gcc and with clang,
# runs every unit and end-to-end test (the unit tests on both builds), and
# checks that the release builds, gcc's (benchmarks included) and a plain
# Release with clang, still build clean (warnings are errors here, not for
# users: TOKEND_WERROR). Then the install tests on the release build
# (tests/install/: the library from a temporary prefix, with pkg-config and
# with CMake) and, as root on Debian, the Debian package: built, installed
# on this machine, its service run and a token fetched, purged.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh

# Layout is checked, not argued about (.clang-format).
if ! clang-format --dry-run --Werror include/tokend/*.h src/*/*.[ch] tests/unit/*.[ch] tests/install/*.c bench/*.c fuzz/*.[ch]; then
  echo "test.sh: run clang-format -i on the files above" >&2
  exit 1
fi
# Every source file carries its SPDX license line (scripts/spdx.sh), once
# the tree has them: the check turns itself on with the first C file of
# src/ that has one.
if grep -qs 'SPDX-License-Identifier:' src/*/*.c; then
  bash scripts/spdx.sh --check
fi

jobs=$(nproc 2>/dev/null || echo 2)
cmake --preset dev >/dev/null
cmake --build --preset dev -j"$jobs"
cmake --preset dev-clang >/dev/null
cmake --build --preset dev-clang -j"$jobs"
# The release builds stay clean: what users build (benchmarks included),
# and a plain Release with clang. Warnings are errors here only.
cmake --preset release -DTOKEND_WERROR=ON >/dev/null
cmake --build --preset release -j"$jobs"
cmake --preset release-clang -DTOKEND_WERROR=ON >/dev/null
cmake --build --preset release-clang -j"$jobs"

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
ctest --preset dev-clang-unit -j"$jobs"
ctest --preset dev -j"$jobs"
# Installed: libtokend from a temporary prefix, with pkg-config and CMake.
ctest --preset install
# The Debian package, installed on this machine and purged: root on Debian only.
if [ "$(id -u)" -eq 0 ] && [ -f /etc/debian_version ]; then
  ctest --preset deb
fi
