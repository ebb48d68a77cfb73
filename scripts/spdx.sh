#!/usr/bin/env bash
# spdx.sh [--check] — the SPDX license line on every source file of the tree.
#
# Without arguments it adds "SPDX-License-Identifier: Apache-2.0", in the
# file's own comment syntax, as the first line (after a #! line) of every
# tracked source file that has none in its first lines; it is idempotent
# (a second run changes nothing). With --check it changes nothing, lists
# the files without the line and exits 1 if there is one
# (scripts/test.sh runs it once the tree carries the headers).
#
# Source files: C (.c .h), Python, shell, JavaScript (.mjs .js), Lua, CMake
# (CMakeLists.txt, .cmake, and the .in templates of cmake/ and packaging/),
# Makefiles. Not data (test vectors, fuzz corpora and regressions, JSON,
# dictionaries), not documentation (Markdown), not LICENSE or NOTICE, and
# not packaging/deb/triggers (dpkg reads every line of it).
set -euo pipefail
cd "$(dirname "$0")/.."

check=0
case "${1:-}" in
  --check) check=1 ;;
  "") ;;
  *)
    echo "usage: scripts/spdx.sh [--check]" >&2
    exit 2
    ;;
esac

id="SPDX-License-Identifier: Apache-2.0"

# The comment that carries the line, by file name; empty: not a source file.
comment_for() {
  case "$1" in
    fuzz/corpus/* | fuzz/regressions/* | tests/vectors/* | */node_modules/*) ;;
    packaging/deb/triggers) ;;
    *.c | *.h | *.c.in | *.h.in) echo "/* $id */" ;;
    *.mjs | *.js) echo "// $id" ;;
    *.lua) echo "-- $id" ;;
    *.py | *.sh | *.cmake | */CMakeLists.txt | CMakeLists.txt | *Makefile | .ci/run) echo "# $id" ;;
    cmake/*.in | packaging/*) echo "# $id" ;;
  esac
}

missing=0
while IFS= read -r -d '' f; do
  line=$(comment_for "$f")
  [ -n "$line" ] || continue
  [ -f "$f" ] || continue
  if head -n 3 "$f" | grep -q 'SPDX-License-Identifier:'; then
    continue
  fi
  if [ "$check" = 1 ]; then
    echo "$f"
    missing=$((missing + 1))
    continue
  fi
  tmp=$(mktemp)
  if head -n 1 "$f" | grep -q '^#!'; then
    { head -n 1 "$f"; printf '%s\n' "$line"; tail -n +2 "$f"; } >"$tmp"
  else
    { printf '%s\n' "$line"; cat "$f"; } >"$tmp"
  fi
  # keep the file's mode (scripts stay executable)
  chmod --reference="$f" "$tmp"
  mv "$tmp" "$f"
  echo "spdx: $f"
done < <(git ls-files -z)

if [ "$check" = 1 ] && [ "$missing" -gt 0 ]; then
  echo "spdx: $missing file(s) above have no '$id' line: run bash scripts/spdx.sh" >&2
  exit 1
fi
