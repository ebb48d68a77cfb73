#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Builds the libFuzzer targets (cmake preset `fuzz`: clang, ASan + UBSan) and
# runs them, one after another (fuzz/README.md).
#
#   bash scripts/fuzz.sh                    every target for FUZZ_SECONDS (default 30) each
#   bash scripts/fuzz.sh --hours 8          8 hours in all, split evenly across the targets
#   bash scripts/fuzz.sh fuzz_jws cookie    only these targets ("fuzz_" may be left out)
#   bash scripts/fuzz.sh --merge ...        afterwards, merge new coverage into fuzz/corpus/
#
# For each target: every file in fuzz/regressions/<target>/ is run once
# (regression mode; a target whose regressions fail is not fuzzed), then the
# target fuzzes a copy of fuzz/corpus/<target>/ in the work directory
# (FUZZ_WORK, default build/fuzz/work; the checked-in corpus only grows with
# --merge), with fuzz/<target>.dict when there is one. Prints executions,
# exec/s and coverage per target. Exit status 1 when a regression fails or a
# target crashes, times out or runs out of memory; the reproducer's path is
# printed (copy the ones worth keeping to fuzz/regressions/<target>/).
# Extra libFuzzer flags: FUZZ_FLAGS (e.g. "-use_value_profile=1").
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
  sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

seconds="${FUZZ_SECONDS:-30}"
hours=""
merge=0
want=()
while [ $# -gt 0 ]; do
  case "$1" in
    --hours) [ $# -ge 2 ] || usage; hours="$2"; shift 2 ;;
    --merge) merge=1; shift ;;
    -h|--help) usage ;;
    -*) echo "fuzz.sh: unknown option $1" >&2; usage ;;
    *) want+=("fuzz_${1#fuzz_}"); shift ;;
  esac
done

# Inputs longer than a target's parser accepts are refused on the first
# check; these bounds let libFuzzer reach each limit and a little past it.
max_len_of() {
  case "$1" in
    fuzz_authz) echo 8400 ;;     # TK_LIMIT_AUTHZ_LEN 8256
    fuzz_input) echo 8400 ;;     # an Authorization value (TK_LIMIT_AUTHZ_LEN) or a paste of one token
    fuzz_jws) echo 8400 ;;       # TK_LIMIT_TOKEN_LEN 8192 (+ 4 control bytes)
    fuzz_json_flat) echo 6400 ;; # TK_LIMIT_PAYLOAD_LEN 6144
    fuzz_jwk) echo 12288 ;;      # an RSA-4096 private JWK is about 3.2 KiB; JWKS of several
    fuzz_jwks) echo 12288 ;;     # 1 control byte + a provider's JWKS: RSA keys with x5c are about 1.5 KiB each
    fuzz_cookie) echo 8192 ;;
    *) echo 4096 ;;
  esac
}

bash scripts/deps.sh
jobs=$(nproc 2>/dev/null || echo 2)
cmake --preset fuzz >/dev/null
cmake --build --preset fuzz -j"$jobs" >/dev/null

bin=build/fuzz/fuzz
all=()
for src in fuzz/fuzz_*.c; do
  all+=("$(basename "$src" .c)")
done
if [ ${#want[@]} -eq 0 ]; then
  targets=("${all[@]}")
else
  targets=()
  for t in "${want[@]}"; do
    if [ ! -x "$bin/$t" ]; then
      echo "fuzz.sh: no target $t (have: ${all[*]})" >&2
      exit 2
    fi
    targets+=("$t")
  done
fi
if [ -n "$hours" ]; then
  seconds=$(awk -v h="$hours" -v n="${#targets[@]}" 'BEGIN { s = int(h * 3600 / n); print (s < 1 ? 1 : s) }')
  echo "fuzz.sh: $hours h in all: ${seconds} s for each of ${#targets[@]} targets, one after another"
fi

if [ -n "${TOKEND_FUZZ_KNOWN_BUGS:-}" ]; then
  echo "fuzz.sh: TOKEND_FUZZ_KNOWN_BUGS=$TOKEND_FUZZ_KNOWN_BUGS: the targets look past these known bugs" \
    "(their reproducers in fuzz/regressions/ pass); unset it to have them reported"
fi

work="${FUZZ_WORK:-build/fuzz/work}"
mkdir -p "$work"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1}"

failed=0
summary=()
start_all=$(date +%s)
for t in "${targets[@]}"; do
  tw="$work/$t"
  rm -rf "$tw"
  mkdir -p "$tw/corpus" "$tw/artifacts"
  max_len=$(max_len_of "$t")

  # Regression mode: every kept reproducer, once.
  reg_failed=()
  nreg=0
  if [ -d "fuzz/regressions/$t" ]; then
    for f in "fuzz/regressions/$t"/*; do
      [ -f "$f" ] || continue
      nreg=$((nreg + 1))
      if ! "$bin/$t" -rss_limit_mb=2048 -timeout=10 "$f" >"$tw/regression.log" 2>&1; then
        reg_failed+=("$f")
        echo "---- $t: regression $f fails:"
        grep -E '^==== |^==[0-9]+==ERROR|^SUMMARY|runtime error' "$tw/regression.log" | head -20 || true
      fi
    done
  fi
  if [ ${#reg_failed[@]} -gt 0 ]; then
    failed=1
    summary+=("$(printf '%-15s REGRESSION %d of %d reproducers fail: %s' "$t" "${#reg_failed[@]}" "$nreg" "${reg_failed[*]}")")
    echo "$t: ${#reg_failed[@]} of $nreg regressions fail; not fuzzed"
    continue
  fi

  if [ -d "fuzz/corpus/$t" ]; then
    cp -r "fuzz/corpus/$t/." "$tw/corpus/"
  fi
  dict=()
  if [ -f "fuzz/$t.dict" ]; then
    dict=("-dict=fuzz/$t.dict")
  fi
  echo "== $t: $nreg regressions pass; fuzzing ${seconds} s (max_len $max_len)"
  set +e
  # shellcheck disable=SC2086
  "$bin/$t" "$tw/corpus" "${dict[@]}" -max_total_time="$seconds" -max_len="$max_len" -timeout=10 \
    -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$tw/artifacts/" ${FUZZ_FLAGS:-} >"$tw/fuzz.log" 2>&1
  rc=$?
  set -e
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$tw/fuzz.log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$tw/fuzz.log" | tail -1)
  covft=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$tw/fuzz.log" | tail -1 || true)
  corp=$(grep -oE 'corp: [0-9]+/[0-9]+[a-zA-Z]*' "$tw/fuzz.log" | tail -1 || true)
  line=$(printf '%-15s %-8s execs %10s  exec/s %7s  %-20s %s' "$t" "$([ $rc -eq 0 ] && echo ok || echo FAILED)" \
    "${execs:-?}" "${rate:-?}" "${covft:-cov: ? ft: ?}" "${corp:-}")
  echo "$line"
  if [ $rc -ne 0 ]; then
    failed=1
    artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$tw/fuzz.log" | tail -1)
    echo "---- $t failed (exit $rc); the end of $tw/fuzz.log:"
    grep -vE '^#[0-9]+.*(NEW|REDUCE|pulse)' "$tw/fuzz.log" | tail -60
    echo "---- reproducer: ${artifact:-(none written; see $tw/fuzz.log)}"
    echo "---- replay: $bin/$t ${artifact:-FILE}"
    line="$line  crash: ${artifact:-see $tw/fuzz.log}"
  elif [ $merge -eq 1 ]; then
    mkdir -p "fuzz/corpus/$t"
    before=$(find "fuzz/corpus/$t" -type f | wc -l)
    "$bin/$t" -merge=1 -max_len="$max_len" -rss_limit_mb=2048 -timeout=10 "fuzz/corpus/$t" "$tw/corpus" \
      >"$tw/merge.log" 2>&1
    after=$(find "fuzz/corpus/$t" -type f | wc -l)
    echo "$t: merged $((after - before)) new inputs into fuzz/corpus/$t"
  fi
  summary+=("$line")
done

echo
echo "fuzz.sh: ${#targets[@]} targets, $(($(date +%s) - start_all)) s (work directory $work)"
for s in "${summary[@]}"; do
  echo "  $s"
done
exit $failed
