#!/usr/bin/env bash
# The whole GPU check in one call on a bare, lent GPU machine (docs/gpu-runs.md): nvcc, CMake, ninja and the
# NVIDIA tools are there, our Debian libraries are not, so they travel in .device-deps/.
#
#   here:     ../shared/tools/device-deps.sh fetch          # the Debian packages into .device-deps/ (git-ignored)
#   device:   run  command: bash tools/gpu-check.sh   carry: [".device-deps"]   timeout_s: 600
#   no GPU:   tools/bare-check.sh runs it in a bare Debian chroot with GPU_CHECK_ALLOW_NO_GPU=1
#
# Steps, each under its own timeout, all under one deadline (GPU_CHECK_DEADLINE, 540 s) so that the run ends
# inside one 10-minute call; a step that has too little time left is recorded as skipped:
#   unpack .device-deps under $DEPS_ROOT (/opt/deps); configure build-gpu/ for sm_90 (CUDA required) against it;
#   build; start each Catch2 runner with --list-test-names-only (it must start and list > 0 tests); CTest with the
#   [cuda] tests active (its total must be > 0 and cover what the runners list); compute-sanitizer memcheck over
#   the CUDA runner; racecheck over the reduction tests (sum, batch norm, BCE); the cuda/ kernel and training-step
#   benchmarks; bench/compare_pytorch.py --device cuda (ours next to PyTorch); 200 DCGAN steps on the GPU.
#
# What comes back in $OUT (8 files, each under 16 MiB; logs cut to their tail when huge):
#   summary.txt     one line per step (name, status, exit code, seconds, log), test counts, figures; written
#                   as the run goes, so a run killed from outside still returns it
#   build.log ctest.log memcheck.log racecheck.log bench.txt train.log
#   rest.tar.gz     everything else from the scratch dir: every log in full, benchmark JSON, the training
#                   outputs (sample grids, losses, progress.gif; no checkpoints)
# The summary is printed last, also when a step fails or is killed; the exit status is 0 only if nothing failed.
#
# Without a GPU (nvidia-smi -L fails) the run fails, unless GPU_CHECK_ALLOW_NO_GPU=1: then the CUDA tests must be
# reported skipped (their runner exits 77), and memcheck, racecheck, the cuda/ benchmarks, PyTorch and the GPU
# training run are recorded as "skipped: no GPU" (a 10-step CPU training run stands in for the last).
# Other settings: GPU_CHECK_TIME_SCALE (a whole number multiplying every timeout and the deadline, for slow
# machines), GPU_CHECK_ARCH (90), GPU_CHECK_SCRATCH (/tmp/gpu-check), GPU_CHECK_BUILD (build-gpu),
# GPU_CHECK_COMMIT (recorded when there is no git), OUT (/tmp/gpu-check-out when unset).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1

OUT=${OUT:-/tmp/gpu-check-out}
scratch=${GPU_CHECK_SCRATCH:-/tmp/gpu-check}
build=${GPU_CHECK_BUILD:-build-gpu}
arch=${GPU_CHECK_ARCH:-90}
scale=${GPU_CHECK_TIME_SCALE:-1}
allow_no_gpu=${GPU_CHECK_ALLOW_NO_GPU:-0}
root=${DEPS_ROOT:-/opt/deps}
export DEPS_ROOT=$root # unpack.sh reads it too
[[ $scale =~ ^[1-9][0-9]*$ ]] || { echo "gpu-check: GPU_CHECK_TIME_SCALE must be a whole number >= 1" >&2; exit 2; }
deadline=$((SECONDS + ${GPU_CHECK_DEADLINE:-540} * scale))
mkdir -p "$OUT" || exit 1
[[ $(realpath -m "$scratch") != "$(realpath -m "$OUT")" && $(realpath -m "$scratch") != / ]] ||
  { echo "gpu-check: GPU_CHECK_SCRATCH must be a folder of its own" >&2; exit 2; }
rm -rf "$scratch" && mkdir -p "$scratch" || exit 1
summary=$OUT/summary.txt
: >"$summary"
failed=()    # the steps that failed
blocked=""   # set when later steps cannot run at all (nothing configured)
child="" current=""  # the step running now: its timeout process, its name
gpu=0
n_cpu_tests=0 n_cuda_tests=0

note() { printf '%s\n' "$*" | tee -a "$summary"; }
# record NAME STATUS EXIT SECONDS LOG [DETAIL]: one summary line; FAIL and TIMEOUT count as failures
record() {
  note "$(printf '%-17s %-8s exit %-4s %4s s  %-20s %s' "$1" "$2" "$3" "$4" "$5" "${6:-}")"
  [[ $2 == ok || $2 == skipped ]] || failed+=("$1")
}
skip() { record "$1" skipped - 0 - "skipped: $2"; }
# step NAME LIMIT LOG COMMAND...: runs COMMAND under `timeout` (LIMIT x GPU_CHECK_TIME_SCALE seconds, cut to the
# time left before the deadline), output in $scratch/LOG. Returns the command's status, 125 when skipped.
step() {
  local name=$1 limit=$(($2 * scale)) log=$3 left=$((deadline - SECONDS)) t0=$SECONDS rc status detail=""
  shift 3
  [[ -z $blocked ]] || { skip "$name" "$blocked"; return 125; }
  if ((left < 10 || left < limit / 3)); then
    skip "$name" "only $left s left before the deadline"
    return 125
  fi
  ((limit > left)) && limit=$left
  # In the background and waited for, so that a signal to this script is handled at once (on_signal), not
  # after the step
  current=$name
  timeout -k 10 "$limit" "$@" >"$scratch/$log" 2>&1 &
  child=$!
  wait "$child"
  rc=$?
  child="" current=""
  case $rc in
  0) status=ok ;;
  124 | 137) status=TIMEOUT detail="killed at its $limit s limit" ;;
  *) status=FAIL ;;
  esac
  record "$name" "$status" "$rc" "$((SECONDS - t0))" "$log" "$detail"
  return "$rc"
}
# indent FILE PATTERN [N]: the last N (10) lines of FILE matching PATTERN, indented, into the summary
indent() { [[ -f $1 ]] && grep -E "$2" "$1" | tail -n "${3:-10}" | sed 's/^/    /' | tee -a "$summary"; }
tool() { # tool NAME: the path of an NVIDIA tool, on PATH or next to nvcc
  command -v "$1" 2>/dev/null && return
  local d
  d=$(dirname "$(command -v nvcc 2>/dev/null || echo /usr/local/cuda/bin/nvcc)")
  [[ -x $d/$1 ]] && echo "$d/$1"
}

# Everything that comes back: summary.txt is already in $OUT; the rest is copied there now (from the EXIT trap,
# so also after a failure or a signal). At most 8 files, each under 16 MiB.
finish() {
  local f bench=$scratch/bench.txt
  trap - EXIT
  for f in bench_kernels.log bench_train_step.log pytorch.log; do
    [[ -f $scratch/$f ]] && { echo "===== $f"; cat "$scratch/$f"; }
  done >"$bench"
  [[ -f $scratch/build.log ]] && tail -c 1M "$scratch/build.log" >"$OUT/build.log"
  for f in ctest.log memcheck.log racecheck.log bench.txt train.log; do
    [[ -s $scratch/$f ]] && tail -c 8M "$scratch/$f" >"$OUT/$f"
  done
  tar -czf "$OUT/rest.tar.gz" -C "$scratch" --exclude='*.safetensors' . 2>/dev/null
  if (($(stat -c %s "$OUT/rest.tar.gz" 2>/dev/null || echo 0) > 15 * 1024 * 1024)); then
    tar -czf "$OUT/rest.tar.gz" -C "$scratch" --exclude='*.safetensors' --exclude='./train/samples' . 2>/dev/null
    note "rest.tar.gz was over 15 MiB: packed again without train/samples/"
  fi
  if ((${#failed[@]})); then
    note "RESULT: FAIL (${failed[*]})"
  else
    note "RESULT: PASS"
  fi
  note "back in \$OUT: $(find "$OUT" -maxdepth 1 -type f -printf '%f\n' | sort | tr '\n' ' ')"
  echo "----- summary -----"
  cat "$summary"
  ((${#failed[@]} == 0)) && exit 0
  exit 1
}
on_signal() {
  [[ -z $child ]] || kill -TERM "$child" 2>/dev/null
  record signal FAIL - 0 - "interrupted by a signal${current:+ during $current}"
  exit 143
}
trap finish EXIT
trap on_signal TERM INT HUP

# ---------------------------------------------------------------------------------------------- environment
[[ -n $(command -v nvcc) || ! -x /usr/local/cuda/bin/nvcc ]] || export PATH=/usr/local/cuda/bin:$PATH
if ! command -v nvidia-smi >/dev/null; then
  echo "nvidia-smi not found" >"$scratch/gpu.txt"
elif timeout 30 nvidia-smi -L >"$scratch/gpu.txt" 2>&1 && grep -q '^GPU ' "$scratch/gpu.txt"; then
  gpu=1
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader >"$scratch/gpu.txt" 2>&1
fi
commit=${GPU_CHECK_COMMIT:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}
note "gpu-check $(date -u '+%F %T') UTC, commit $commit, $(nproc) cores, time scale $scale, deadline $((deadline - SECONDS)) s"
note "gpu: $( ((gpu)) && cat "$scratch/gpu.txt" || echo "none ($(head -c 200 "$scratch/gpu.txt" | tr '\n' ' '))")"
note "nvcc: $(nvcc --version 2>/dev/null | tail -1 || echo none); $(cmake --version | head -1); c++: $(c++ --version | head -1)"
if ((!gpu)); then
  if [[ $allow_no_gpu == 1 ]]; then
    skip gpu "no GPU (GPU_CHECK_ALLOW_NO_GPU=1): the CUDA tests must be reported skipped"
  else
    record gpu FAIL - 0 - "no GPU visible (nvidia-smi -L); the GPU steps are skipped"
  fi
fi

# ---------------------------------------------------------------------------------------------- build
if [[ -f .device-deps/unpack.sh ]]; then
  step unpack 60 unpack.log bash .device-deps/unpack.sh || blocked="unpacking .device-deps failed"
  indent "$scratch/unpack.log" 'unpacked|dangling' 2
else
  record unpack FAIL - 0 - "no .device-deps/unpack.sh: run ../shared/tools/device-deps.sh fetch, carry .device-deps"
  blocked="no .device-deps"
fi
if [[ -z $blocked ]]; then
  # For this configure (cmake-flags) and for the nested ones too (tests/install/run.sh configures examples/
  # against the installed package): CMake reads these from the environment, the linker and loader LD_LIBRARY_PATH.
  LD_LIBRARY_PATH=$(cat "$root/ld-library-path")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  export LD_LIBRARY_PATH
  export CMAKE_PREFIX_PATH=$root/usr${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}
  export CMAKE_INCLUDE_PATH=$root/usr/include${CMAKE_INCLUDE_PATH:+:$CMAKE_INCLUDE_PATH}
  export CMAKE_LIBRARY_PATH=$root/usr/lib/x86_64-linux-gnu${CMAKE_LIBRARY_PATH:+:$CMAKE_LIBRARY_PATH}
  export CXXFLAGS="-I$root/usr/include${CXXFLAGS:+ $CXXFLAGS}" CUDAFLAGS="-I$root/usr/include${CUDAFLAGS:+ $CUDAFLAGS}"
  read -ra deps_flags <"$root/cmake-flags"
  step configure 60 configure.log cmake -S . -B "$build" -G Ninja -DCUDAGAN_CUDA=ON \
    -DCMAKE_CUDA_ARCHITECTURES="$arch" -DCUDAGAN_CI_SANITIZE=OFF "${deps_flags[@]}"
  case $? in 0) ;; 125) blocked="configure skipped" ;; *) blocked="configure failed" ;; esac
  indent "$scratch/configure.log" 'cudagan [0-9.]+: build|CMake Error' 3
fi
# -k 0: build all that builds, so that one broken target still leaves the others to check
step build 240 build.log cmake --build "$build" -j "$(nproc)" -- -k 0
(($? == 125)) && blocked=${blocked:-the build was skipped}
indent "$scratch/build.log" 'error:|FAILED:' 8

# ---------------------------------------------------------------------------------------------- tests
# list_tests NAME BINARY ALLOW77: the runner must start and list its tests. Catch2 v2 exits with the number of
# tests it listed (at most 255), not 0, so that is what is checked; a runner that cannot start (exit 127, a
# missing library) lists nothing, and Catch's CTest discovery would then register nothing and still "pass".
list_tests() {
  local name=$1 bin=$2 allow77=$3 log=list-$1.txt rc n t0=$SECONDS
  [[ -z $blocked ]] || { skip "$name" "$blocked"; return 1; }
  [[ -x $bin ]] || { record "$name" FAIL - 0 - "$bin was not built"; return 1; }
  timeout -k 5 $((30 * scale)) "$bin" --list-test-names-only >"$scratch/$log" 2>"$scratch/$log.err"
  rc=$?
  n=$(grep -c . "$scratch/$log")
  if ((n > 0 && rc == (n < 255 ? n : 255))); then
    record "$name" ok "$rc" "$((SECONDS - t0))" "$log" "$n tests listed (Catch2 v2 exits with that number)"
  elif [[ $rc == 77 && $allow77 == 1 ]]; then
    record "$name" ok "$rc" "$((SECONDS - t0))" "$log" "exit 77: no GPU"
    n=0
  else
    record "$name" FAIL "$rc" "$((SECONDS - t0))" "$log" "$n tests listed: $(head -c 300 "$scratch/$log.err" | tr '\n' ' ')"
    n=0
  fi
  printf -v "n_${name%_start}_tests" %d "$n"
}
list_tests cpu_start "$build/tests/cudagan_tests" 0
list_tests cuda_start "$build/tests/cudagan_cuda_tests" $((1 - gpu))

ctest_jobs=$(($(nproc) < 8 ? $(nproc) : 8))
step ctest 150 ctest.log ctest --test-dir "$build" --output-on-failure --no-tests=error -j "$ctest_jobs" --timeout 120
if [[ -f $scratch/ctest.log ]]; then
  line=$(grep -E '[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$scratch/ctest.log" | tail -1)
  total=$(sed -nE 's/.* out of ([0-9]+).*/\1/p' <<<"$line")
  nfail=$(sed -nE 's/.* ([0-9]+) tests? failed out of.*/\1/p' <<<"$line")
  nskip=$(grep -cE '^[[:space:]]*[0-9]+ - .*\(Skipped\)$' "$scratch/ctest.log")
  nskip_cuda=$(sed -nE 's/^[[:space:]]*[0-9]+ - (.*) \(Skipped\)$/\1/p' "$scratch/ctest.log" |
    grep -cxFf "$scratch/list-cuda_start.txt" 2>/dev/null)
  expected=$((n_cpu_tests + n_cuda_tests))
  counts="passed $((${total:-0} - ${nfail:-0} - nskip)), failed ${nfail:-?}, skipped $nskip, total ${total:-0}"
  if [[ -z $line || ${total:-0} == 0 ]]; then
    record ctest_counts FAIL - 0 ctest.log "0 tests: no 'N tests failed out of M' line with M > 0 (nothing registered, or CTest killed)"
  elif ((total < expected)); then
    record ctest_counts FAIL - 0 ctest.log "$counts; fewer than the $expected the runners list: discovery lost some"
  elif ((gpu && nskip > 0)); then
    record ctest_counts FAIL - 0 ctest.log "$counts; tests skipped although a GPU is present"
  elif ((!gpu && nskip_cuda < n_cuda_tests)); then
    record ctest_counts FAIL - 0 ctest.log "$counts; only $nskip_cuda of the $n_cuda_tests CUDA tests were skipped"
  else
    record ctest_counts ok - 0 ctest.log "$counts"
  fi
  indent "$scratch/ctest.log" '\*\*\*Failed|\*\*\*Timeout|\*\*\*Exception|Not Run' 15
fi

# ---------------------------------------------------------------------------------------------- GPU only
cuda_tests=$build/tests/cudagan_cuda_tests
sanitizer=$(tool compute-sanitizer)
# gpu_step NAME LIMIT LOG COMMAND...: step, or skipped with the reason when it cannot run here
gpu_step() {
  if ((!gpu)); then
    skip "$1" "no GPU"
  elif [[ ! -x $4 ]]; then
    record "$1" FAIL - 0 - "$4 not found or not built"
  else
    step "$@"
  fi
}
# Some tests provoke CUDA API errors on purpose (cudaSetDevice(-1), a 4 TiB allocation): not reported.
gpu_step memcheck 90 memcheck.log "${sanitizer:-compute-sanitizer}" --tool memcheck --report-api-errors no \
  --error-exitcode 9 "$cuda_tests"
indent "$scratch/memcheck.log" 'ERROR SUMMARY|test cases' 2
# The kernels with shared-memory reductions: the sum, batch norm and BCE tests (tests/cuda/test_cuda_pointwise.cpp,
# test_cuda_batchnorm.cpp); Catch2 v2 test specs, the comma is "or".
gpu_step racecheck 60 racecheck.log "${sanitizer:-compute-sanitizer}" --tool racecheck --report-api-errors no \
  --error-exitcode 9 "$cuda_tests" 'cuda sum*,[batchnorm],[bce]'
indent "$scratch/racecheck.log" 'RACECHECK SUMMARY|ERROR SUMMARY|test cases' 2
# Google Benchmark from .device-deps is Debian 12's 1.7.1: --benchmark_min_time is a plain number of seconds.
gpu_step bench_kernels 60 bench_kernels.log "$build/bench/bench_kernels" --benchmark_filter='cuda/' \
  --benchmark_min_time=0.1 --benchmark_out="$scratch/bench_kernels.json" --benchmark_out_format=json
gpu_step bench_train_step 60 bench_train_step.log "$build/bench/bench_train_step" --benchmark_filter=cuda \
  --benchmark_min_time=0.5 --benchmark_out="$scratch/bench_train_step.json" --benchmark_out_format=json
indent "$scratch/bench_train_step.log" 'images_per_s' 4
# PyTorch side by side: compare_pytorch.py has a GPU mode (TF32 and strict fp32, torch.compile when there).
# One configuration and 20 steps keep it inside its minute (torch.compile compiles for a while).
python=""
for p in python3 python /usr/bin/python3; do
  command -v "$p" >/dev/null && "$p" -c 'import torch' 2>/dev/null && { python=$(command -v "$p"); break; }
done
if ((!gpu)); then
  skip compare_pytorch "no GPU"
elif [[ -z $python ]]; then
  record compare_pytorch FAIL - 0 - "no python with torch found"
else
  step compare_pytorch 90 pytorch.log "$python" bench/compare_pytorch.py --device cuda --config dcgan64_3ch_b128 \
    --steps 20 --warmup 3 --repeat 1 --bench-binary "$build/bench/bench_train_step"
  indent "$scratch/pytorch.log" '^PyTorch|^\| cuda' 4
fi

# ---------------------------------------------------------------------------------------------- training
if ((gpu)); then
  step train 60 train.log "$build/apps/dcgan_train" synthetic "$scratch/train" --device cuda --max-steps 200 \
    --log-every 50 --eval-images 512
else # no GPU: a short CPU run stands in, so that the outputs are still packed and checked
  skip train "no GPU: 10 CPU steps instead (train_cpu)"
  step train_cpu 60 train.log "$build/apps/dcgan_train" synthetic "$scratch/train" --device cpu --max-steps 10 \
    --batch-size 16 --image-size 32 --log-every 5 --eval-images 256
fi
if [[ -f $scratch/train.log ]]; then
  indent "$scratch/train.log" '.' 3
  compgen -G "$scratch/train/samples/step_*.png" >/dev/null ||
    record train_outputs FAIL - 0 train.log "no sample grid in train/samples/"
fi
