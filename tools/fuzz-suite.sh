#!/usr/bin/env bash
# Fuzzes the parsers that read untrusted files: builds the libFuzzer targets of fuzz/ with clang under
# ASan + UBSan in a build of their own, then runs each on a copy of its seed corpus (fuzz/corpus/<name>/) for
# a fixed number of inputs from a fixed seed (-runs, -seed=1), about 30-45 s each on 2 cores: the same inputs
# on every run, so CI's verdict is reproducible (a time limit would test a different number each time). A crash, a sanitizer report, a leak, an uncaught exception or a hang (a unit
# slower than 10 s) fails the run; libFuzzer leaves the input as crash-* / timeout-* in BUILD_DIR/runs/<name>/,
# which becomes a regression seed in fuzz/corpus/<name>/ with the fix. One line per target gives its
# executions per second.
#
#   tools/fuzz-suite.sh [SOURCE_DIR] [BUILD_DIR] [SCALE]    (defaults: this checkout, build-fuzz, 1)
# SCALE multiplies every target's number of inputs (e.g. 20 for a longer hunt).
#
# CTest runs it as fuzz.parsers when configured with CUDAGAN_CI_FUZZ=ON (the default under CI).
set -euo pipefail
src=${1:-$(cd "$(dirname "$0")/.." && pwd)}
build=${2:-$src/build-fuzz}
scale=${3:-1}
start=$SECONDS
mkdir -p "$build"
command -v clang++ >/dev/null || { echo "fuzz-suite: clang++ not found: apt-get install clang libomp-dev" >&2; exit 1; }

cmake -S "$src" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER=clang++ \
  -DCUDAGAN_CUDA=OFF -DCUDAGAN_TESTS=OFF -DCUDAGAN_BENCH=OFF -DCUDAGAN_FUZZ=ON -DCUDAGAN_CI_SANITIZE=OFF \
  -DCUDAGAN_CI_FUZZ=OFF -DCUDAGAN_SANITIZE=fuzzer-no-link,address,undefined >"$build/configure.log" 2>&1 ||
  { cat "$build/configure.log"; echo "fuzz-suite: configure failed" >&2; exit 1; }
cmake --build "$build" --target fuzz_all >"$build/build.log" 2>&1 ||
  { tail -50 "$build/build.log"; echo "fuzz-suite: build failed" >&2; exit 1; }

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:halt_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
failed=0
declare -A runs=([safetensors]=60000 [mnist]=30000 [image]=20000 [config]=20000)  # 2500, 1500, 1000, 650 exec/s here
for name in safetensors mnist image config; do
  run=$build/runs/$name
  n=$((runs[$name] * scale))
  t0=$SECONDS
  rm -rf "$run" && mkdir -p "$run/corpus"
  cp "$src/fuzz/corpus/$name/"* "$run/corpus/"
  # -close_fd_mask=1: the config parser prints usage errors on stdout; libFuzzer's own report is on stderr.
  if (cd "$run" && "$build/fuzz/fuzz_$name" -runs="$n" -seed=1 -timeout=10 -rss_limit_mb=2048 \
      -close_fd_mask=1 -print_final_stats=1 corpus >log.txt 2>&1); then
    status=ok
  else
    status=FAILED
    failed=1
  fi
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$run/log.txt" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$run/log.txt" | tail -1)
  echo "fuzz-suite: $name: $status, ${execs:-?} inputs in $((SECONDS - t0)) s (${rate:-?} exec/s), corpus $(ls "$run/corpus" | wc -l)"
  if [[ $status == FAILED ]]; then
    grep -E "ERROR|SUMMARY|deadly|crash-|timeout-|uncaught" "$run/log.txt" | head -20
    ls "$run" | grep -E '^(crash|timeout|leak|oom)-' || true
  fi
done
echo "fuzz-suite: $([[ $failed == 0 ]] && echo 'nothing found' || echo 'FOUND A BUG (above)') in $((SECONDS - start)) s"
exit $failed
