#!/usr/bin/env bash
# The CPU test suite under AddressSanitizer (with LeakSanitizer) and UndefinedBehaviorSanitizer, in a build of
# its own: configure SOURCE_DIR into BUILD_DIR with -DCUDAGAN_SANITIZE=address,undefined (CPU only, no
# benchmarks), build, and run every CTest test, the nested install test included. Any report fails the run:
# UBSan and ASan stop at the first error, and a leak at exit fails the test that leaked.
#
#   tools/sanitize-suite.sh [SOURCE_DIR] [BUILD_DIR]      (defaults: this checkout, build-sanitize)
#
# CTest runs it as sanitize.cpu_suite when configured with CUDAGAN_CI_SANITIZE=ON (the default under CI).
set -euo pipefail
src=${1:-$(cd "$(dirname "$0")/.." && pwd)}
build=${2:-$src/build-sanitize}
start=$SECONDS
mkdir -p "$build"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:halt_on_error=1:abort_on_error=0:detect_stack_use_after_return=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# Where a leak is found in a library we do not own (the C library's or OpenBLAS's thread buffers), the
# suppressions file names it; our own code has none.
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$src/tools/lsan.supp:print_suppressions=0}

cmake -S "$src" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCUDAGAN_CUDA=OFF -DCUDAGAN_BENCH=OFF \
  -DCUDAGAN_SANITIZE=address,undefined -DCUDAGAN_CI_SANITIZE=OFF -DCUDAGAN_CI_FUZZ=OFF >"$build/configure.log" 2>&1 ||
  { cat "$build/configure.log"; echo "sanitize-suite: configure failed" >&2; exit 1; }
cmake --build "$build" >"$build/build.log" 2>&1 ||
  { tail -50 "$build/build.log"; echo "sanitize-suite: build failed" >&2; exit 1; }
ctest --test-dir "$build" --output-on-failure --no-tests=error -j "$(nproc)"
echo "sanitize-suite: address,undefined: every test passed in $((SECONDS - start)) s"
