#!/usr/bin/env bash
# The whole test suite: installs what it needs, builds with AddressSanitizer +
# UndefinedBehaviorSanitizer (warnings are errors) with gcc and with clang,
# runs every unit and end-to-end test (the unit tests on both builds), and
# checks that the release build, benchmarks included, still builds clean.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh

# Layout is checked, not argued about (.clang-format).
if ! clang-format --dry-run --Werror include/tokend/*.h src/*/*.[ch] tests/unit/*.[ch] bench/*.c fuzz/*.[ch]; then
  echo "test.sh: run clang-format -i on the files above" >&2
  exit 1
fi

jobs=$(nproc 2>/dev/null || echo 2)
cmake --preset dev >/dev/null
cmake --build --preset dev -j"$jobs"
cmake --preset dev-clang >/dev/null
cmake --build --preset dev-clang -j"$jobs"
# The release build (what users build, benchmarks included) stays clean.
cmake --preset release >/dev/null
cmake --build --preset release -j"$jobs"

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
ctest --preset dev-clang-unit -j"$jobs"
ctest --preset dev -j"$jobs"
