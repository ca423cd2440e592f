#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages cudagan builds with, when they are missing; nothing else.
# Runs apt-get as root (directly, or through sudo). The CUDA toolkit is optional and not installed
# here: with nvcc on PATH the CUDA backend is built as well.
set -euo pipefail
packages=(build-essential cmake ninja-build pkg-config catch2 libopenblas-dev libstb-dev libbenchmark-dev
          libyaml-cpp-dev libcli11-dev libgif-dev zlib1g-dev nlohmann-json3-dev
          clang libomp-dev libclang-rt-dev  # the fuzzers (tools/fuzz-suite.sh)
          libopenmpi-dev openmpi-bin       # data-parallel training (cudagan::dist, mpirun)
          python3-numpy                    # tests/metrics/swd_reference.py (metrics.swd_numpy_agrees)
          chromium)                        # apps.report_page_in_chromium: a screenshot of OUT/index.html
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
as_root=()
[ "$(id -u)" -eq 0 ] || as_root=(sudo)
"${as_root[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
