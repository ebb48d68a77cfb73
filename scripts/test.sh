#!/usr/bin/env bash
# The whole test suite: installs what it needs, builds with AddressSanitizer +
# UndefinedBehaviorSanitizer (warnings are errors), runs every unit and
# end-to-end test, and checks that the benchmarks still build.
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
# The benchmarks are not tests, but they must keep building.
cmake --preset release >/dev/null
cmake --build --preset release -j"$jobs" --target bench_verify

ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1 \
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --preset dev -j"$jobs"
