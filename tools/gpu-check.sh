#!/usr/bin/env bash
# One call on a lent GPU machine (see the device tool): builds for sm_90 against the Debian packages
# carried in .device-deps/ (made here with ../shared/tools/device-deps.sh fetch), runs the whole CTest
# suite with the CUDA tests active, the CUDA tests under compute-sanitizer memcheck, the benchmarks,
# and a short DCGAN run; writes logs and a summary under $OUT and prints the summary last.
#
#   run: bash tools/gpu-check.sh         (carry: .device-deps)
set -uo pipefail
OUT=${OUT:-/tmp/cudagan-gpu}
mkdir -p "$OUT"
summary="$OUT/summary.txt"
: >"$summary"
note() { echo "$*" | tee -a "$summary"; }
step() {  # step NAME LOG COMMAND...: runs, records the exit code
  local name=$1 log=$2
  shift 2
  local t0=$SECONDS
  "$@" >"$OUT/$log" 2>&1
  local rc=$?
  note "$name: exit $rc ($((SECONDS - t0)) s, log $log)"
  return $rc
}

bash .device-deps/unpack.sh >"$OUT/unpack.log" 2>&1 || { note "unpacking .device-deps failed"; exit 1; }
export LD_LIBRARY_PATH=/opt/deps/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader >"$OUT/gpu.txt" 2>&1
note "date $(date -u +%F) commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown) gpu $(cat "$OUT/gpu.txt")"
note "nvcc $(nvcc --version | tail -1)"

# shellcheck disable=SC2046
step configure configure.log cmake -S . -B build-gpu -G Ninja -DCMAKE_CUDA_ARCHITECTURES=90 \
  $(cat /opt/deps/cmake-flags) || exit 1
step build build.log cmake --build build-gpu -j "$(nproc)" || exit 1
step ctest ctest.log ctest --test-dir build-gpu --output-on-failure -j 4
grep -E "tests passed|tests failed|Skipped|Failed" "$OUT/ctest.log" | tail -15 >>"$summary"
step memcheck memcheck.log compute-sanitizer --tool memcheck --error-exitcode 9 build-gpu/tests/cudagan_cuda_tests
grep -E "ERROR SUMMARY|test cases|assertions" "$OUT/memcheck.log" | tail -3 >>"$summary"
if [ -x build-gpu/bench/bench_kernels ]; then
  step bench_kernels bench_kernels.log build-gpu/bench/bench_kernels --benchmark_filter='cuda/' \
    --benchmark_out="$OUT/bench_kernels.json" --benchmark_out_format=json
fi
if [ -x build-gpu/bench/bench_train_step ]; then
  step bench_train_step bench_train_step.log build-gpu/bench/bench_train_step --benchmark_filter='cuda' \
    --benchmark_out="$OUT/bench_train_step.json" --benchmark_out_format=json
  grep -E "images_per_s" "$OUT/bench_train_step.log" | tail -8 >>"$summary"
fi
step dcgan_synthetic train.log build-gpu/apps/dcgan_train synthetic "$OUT/train" --device cuda \
  --max-steps 200 --log-every 50
tail -4 "$OUT/train.log" >>"$summary"
echo "----- summary -----"
cat "$summary"
