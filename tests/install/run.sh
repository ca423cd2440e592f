#!/usr/bin/env bash
# The install test: an outside project builds and runs against a fresh install of this build.
#
#   run.sh CMAKE BUILD_DIR SOURCE_DIR WORK_DIR GENERATOR CXX CONFIG [CUDA_TOOLKIT_ROOT] [EXTRA_CXX_FLAGS]
#
# EXTRA_CXX_FLAGS: the sanitizer flags of a CUDAGAN_SANITIZE build, which programs linking its libraries need too.
#
#  1. cmake --install BUILD_DIR --prefix WORK_DIR/staged (WORK_DIR is emptied first), then the tree
#     is moved to WORK_DIR/prefix, so nothing may depend on where it was installed (relocatable);
#  2. every installed header compiles alone with only WORK_DIR/prefix/include on the include path,
#     and includes nothing but cudagan headers and the standard library;
#  3. examples/ is configured with -DCMAKE_PREFIX_PATH=WORK_DIR/prefix (find_package(cudagan)) and
#     built with -Werror;
#  4. a program that links only cudagan::core (tensors through optimisers) builds and runs, and its link line
#     names no image, GIF, zlib or JSON library;
#  5. api_tour, mnist_classifier (20 steps, then the t10k accuracy), conditional_gan (20 steps,
#     then its PNG grid) and custom_gan_trainer (20 steps of dcgan::Trainer: its log lines, grid and
#     weights) run on the CPU, and their outputs are checked.
# Any failure stops the script with a non-zero status and a line saying what failed.
set -euo pipefail

if [[ $# -lt 7 ]]; then
  echo "usage: run.sh CMAKE BUILD_DIR SOURCE_DIR WORK_DIR GENERATOR CXX CONFIG [CUDA_TOOLKIT_ROOT]" >&2
  exit 2
fi
cmake=$1 build_dir=$2 source_dir=$3 work=$4 generator=$5 cxx=$6 config=$7 cuda_root=${8:-} extra_flags=${9:-}
cxx_flags="-Werror${extra_flags:+ $extra_flags}"
prefix=$work/prefix
data=$source_dir/data/mnist
start=$SECONDS

fail() {
  echo "install test FAILED: $*" >&2
  exit 1
}
step() { echo "== [$((SECONDS - start))s] $*"; }

rm -rf "$work"
mkdir -p "$work"

step "install $build_dir into $work/staged, then move it to $prefix"
"$cmake" --install "$build_dir" --prefix "$work/staged" --config "$config" >"$work/install.log" ||
  { cat "$work/install.log"; fail "cmake --install"; }
mv "$work/staged" "$prefix"
for f in lib/libcudagan_core.a lib/libcudagan_io.a lib/libcudagan_dist.a lib/libcudagan_kernels.a lib/libcudagan_models.a \
  lib/cmake/cudagan/cudagan-config.cmake \
  lib/cmake/cudagan/cudagan-config-version.cmake lib/cmake/cudagan/cudagan-targets.cmake \
  include/cudagan/cudagan.h include/cudagan/dcgan.h bin/dcgan_train bin/dcgan_sample bin/dcgan_eval; do
  [[ -f $prefix/$f ]] || fail "the install tree lacks $f"
done

step "every installed header stands alone"
headers=$(cd "$prefix/include" && find cudagan -name '*.h' | sort)
for h in $headers; do
  # Only <cudagan/...> / "cudagan/..." and standard headers (no dot, no slash: <vector>, <cstdint>).
  bad=$(grep -E '^[[:space:]]*#[[:space:]]*include' "$prefix/include/$h" |
    grep -Ev '#[[:space:]]*include[[:space:]]*["<]cudagan/([a-z0-9_]+/)?[a-z0-9_]+\.h[">]' |
    grep -Ev '#[[:space:]]*include[[:space:]]*<[a-z0-9_]+>' || true)
  [[ -z $bad ]] || fail "$h includes a header that is not installed or not standard: $bad"
done
mkdir -p "$work/headers"
# shellcheck disable=SC2016
printf '%s\n' $headers | xargs -P "$(nproc)" -I{} sh -c \
  'echo "#include <{}>" | "$0" -std=c++17 -fsyntax-only -Wall -Wextra -Wpedantic -Werror -I "$1" -x c++ - ||
   { echo "install test FAILED: {} does not compile alone" >&2; exit 255; }' "$cxx" "$prefix/include" ||
  fail "a public header does not compile on its own (see above)"

cuda_args=()
[[ -n $cuda_root ]] && cuda_args=(-DCUDAToolkit_ROOT="$cuda_root")

step "a program on cudagan::core alone"
mkdir -p "$work/core_only"
cat >"$work/core_only/CMakeLists.txt" <<'CMAKE'
cmake_minimum_required(VERSION 3.24)
project(core_only LANGUAGES CXX)
find_package(cudagan REQUIRED)
add_executable(core_only main.cpp)
target_link_libraries(core_only PRIVATE cudagan::core)
target_compile_features(core_only PRIVATE cxx_std_17)
CMAKE
cat >"$work/core_only/main.cpp" <<'CPP'
// Fits y = 3x with one parameter: tensors, autograd, an op and Adam, nothing that reads files.
#include <cstdio>
#include "cudagan/core/tensor.h"
#include "cudagan/nn/optim.h"
#include "cudagan/ops/ops.h"
int main() {
  using namespace cudagan;
  Tensor w = Tensor::zeros({1, 1});
  w.requires_grad_(true);
  optim::Adam adam({w}, {0.1, 0.9, 0.999, 1e-8, 0});
  const Tensor x = Tensor::from_vector(std::vector<float>{1, 2, 3, 4}, {4, 1});
  const Tensor y = Tensor::from_vector(std::vector<float>{3, 6, 9, 12}, {4, 1});
  for (int i = 0; i < 300; ++i) {
    adam.zero_grad();
    const Tensor e = linear(x, w) + scale(y, -1);
    mean(e * e).backward();
    adam.step();
  }
  std::printf("w %.3f\n", w.item());
  return w.item() > 2.9 && w.item() < 3.1 ? 0 : 1;
}
CPP
"$cmake" -S "$work/core_only" -B "$work/core_only/build" -G "$generator" -DCMAKE_PREFIX_PATH="$prefix" \
  -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_BUILD_TYPE="$config" -DCMAKE_CXX_FLAGS="$cxx_flags" "${cuda_args[@]}" \
  >"$work/core_only.log" 2>&1 && "$cmake" --build "$work/core_only/build" --config "$config" >>"$work/core_only.log" 2>&1 ||
  { cat "$work/core_only.log"; fail "building a program on cudagan::core"; }
# The link lines CMake generated (build.ninja for Ninja, link.txt for the Makefile generators).
links=$(grep -rhs -e '-o core_only' -e 'LINK_LIBRARIES' "$work/core_only/build/build.ninja" \
  "$work/core_only/build/CMakeFiles/core_only.dir/link.txt" || true)
[[ -n $links ]] || fail "found no link line for core_only"
! grep -Eq 'libz\.|libgif|libstb|nlohmann|libcudagan_io' <<<"$links" ||
  fail "cudagan::core pulls in a file-format library: $links"
core_bin=$work/core_only/build/core_only
[[ -x $core_bin ]] || core_bin=$work/core_only/build/$config/core_only
"$core_bin" || fail "the cudagan::core program did not fit y = 3x"

cuda_args=()
[[ -n $cuda_root ]] && cuda_args=(-DCUDAToolkit_ROOT="$cuda_root")
"$cmake" -S "$source_dir/examples" -B "$work/build" -G "$generator" -DCMAKE_PREFIX_PATH="$prefix" \
  -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_BUILD_TYPE="$config" -DCMAKE_CXX_FLAGS="$cxx_flags" "${cuda_args[@]}" \
  >"$work/configure.log" 2>&1 || { cat "$work/configure.log"; fail "configuring examples/"; }
grep -q "cudagan_DIR-NOTFOUND" "$work/build/CMakeCache.txt" && fail "find_package(cudagan) found nothing"
grep -q "^cudagan_DIR:PATH=$prefix/lib/cmake/cudagan" "$work/build/CMakeCache.txt" ||
  fail "find_package(cudagan) did not use $prefix: $(grep '^cudagan_DIR' "$work/build/CMakeCache.txt")"

step "build examples/"
"$cmake" --build "$work/build" --config "$config" >"$work/build.log" 2>&1 ||
  { cat "$work/build.log"; fail "building examples/"; }
bin() { # the path of an example program, wherever the generator put it
  local p
  for p in "$work/build/$1/$1" "$work/build/$1/$config/$1"; do [[ -x $p ]] && { echo "$p"; return; }; done
  fail "example program $1 was not built"
}

step "run api_tour"
"$(bin api_tour)" --data "$data" --out "$work/run/api_tour" | tee "$work/api_tour.log" || fail "api_tour"
for f in tinynet.safetensors samples.png ramp.png mnist_batch.png; do
  [[ -s $work/run/api_tour/$f ]] || fail "api_tour wrote no $f"
done

step "run mnist_classifier for 20 steps"
"$(bin mnist_classifier)" --data "$data" --steps 20 --device cpu | tee "$work/classifier.log" ||
  fail "mnist_classifier"
accuracy=$(sed -n 's/^test accuracy: \([0-9.]*\)% of 10000 t10k images$/\1/p' "$work/classifier.log")
[[ -n $accuracy ]] || fail "mnist_classifier printed no 'test accuracy: X% of 10000 t10k images' line"
# 20 Adam steps take a seeded run to about 80%; 50% is far above chance (10%) and far below that.
awk -v a="$accuracy" 'BEGIN { exit !(a > 50) }' || fail "mnist_classifier's accuracy $accuracy% is too low"

step "run conditional_gan for 20 steps"
"$(bin conditional_gan)" --data "$data" --out "$work/run/cgan" --steps 20 --device cpu | tee "$work/cgan.log" ||
  fail "conditional_gan"
png=$work/run/cgan/digits.png
[[ -s $png ]] || fail "conditional_gan wrote no $png"
[[ $(head -c 8 "$png" | od -An -tx1 | tr -d ' \n') == 89504e470d0a1a0a ]] || fail "$png is not a PNG"
# The grid: 10 x 10 images of 28 pixels and 11 borders of 2: 302 x 302 (width, height at 16..23).
[[ $(od -An -tu1 -j16 -N8 "$png" | tr -s ' ' | sed 's/^ //') == "0 0 1 46 0 0 1 46" ]] ||
  fail "$png is not the 302x302 grid of 10 rows of 10 digits"

step "run custom_gan_trainer for 20 steps"
"$(bin custom_gan_trainer)" --data "$data" --out "$work/run/custom" --steps 20 --log-every 10 --device cpu |
  tee "$work/custom.log" || fail "custom_gan_trainer"
# The Trainer's schedule: a log line at steps 10 and 20, the sample grid and a checkpoint at the stop.
[[ $(grep -Ec '^\[step (10|20)/20\] Loss_D: [0-9.]+ Loss_G: [0-9.]+ ' "$work/custom.log") == 2 ]] ||
  fail "custom_gan_trainer did not print the log lines of steps 10 and 20"
png=$work/run/custom/samples.png
[[ -s $png && -s $work/run/custom/generator.safetensors ]] || fail "custom_gan_trainer wrote no samples.png or weights"
# 8 x 8 images of 28 pixels and 9 borders of 2: 242 x 242 (0xf2).
[[ $(od -An -tu1 -j16 -N8 "$png" | tr -s ' ' | sed 's/^ //') == "0 0 0 242 0 0 0 242" ]] ||
  fail "$png is not the 242x242 grid of 8 rows of 8 digits"

step "run data_parallel for 20 steps, in one process and, with MPI, on 2 ranks"
"$(bin data_parallel)" --data "$data" --steps 20 --device cpu | tee "$work/dp1.log" || fail "data_parallel"
grep -Eq '^test accuracy: [0-9.]+%' "$work/dp1.log" || fail "data_parallel printed no test accuracy"
if grep -q '^set(CUDAGAN_HAVE_MPI ON)' "$prefix/lib/cmake/cudagan/cudagan-config.cmake" && command -v mpirun >/dev/null; then
  # Leak checks off under a sanitized build: Open MPI's run-time leaves allocations in components it unloads,
  # where LeakSanitizer can neither name nor suppress them (tests/CMakeLists.txt does the same for the MPI tests).
  ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 \
    OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 mpirun --oversubscribe -np 2 \
    "$(bin data_parallel)" --data "$data" --steps 20 --device cpu | tee "$work/dp2.log" || fail "data_parallel on 2 ranks"
  grep -q '2 ranks on 1 host' "$work/dp2.log" || fail "data_parallel on 2 ranks did not run as 2 ranks"
  [[ $(grep -c '^test accuracy' "$work/dp2.log") == 1 ]] || fail "data_parallel on 2 ranks: not rank 0 alone printed"
fi

step "passed in $((SECONDS - start))s"
