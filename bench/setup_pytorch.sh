#!/usr/bin/env bash
# The benchmark anchor: the current PyTorch from PyPI (with torchvision, whose ImageFolder and transforms the
# reference loop of bench/reference_dcgan.py uses), in a virtual environment of its own, for
# bench/compare_pytorch.py. Never needed by the build or by CI.
#
#   bench/setup_pytorch.sh [VENV]        # default build/pytorch-venv; then:
#   build/pytorch-venv/bin/python bench/compare_pytorch.py --device cpu   (and --loop)
#
# PyPI's Linux wheel of torch is the CUDA build: it brings about 3 GB of nvidia-* wheels, and runs on the CPU
# with the same MKL and oneDNN kernels as PyTorch's CPU-only wheel (download.pytorch.org/whl/cpu, same version
# number; CUDAGAN_TORCH_INDEX=https://download.pytorch.org/whl/cpu picks it to save the download).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
venv=${1:-$repo/build/pytorch-venv}
python=${PYTHON:-python3}
"$python" -m venv "$venv"
"$venv/bin/pip" install --quiet --upgrade pip
if [[ -n ${CUDAGAN_TORCH_INDEX:-} ]]; then
  "$venv/bin/pip" install --quiet --index-url "$CUDAGAN_TORCH_INDEX" torch torchvision
  "$venv/bin/pip" install --quiet numpy
else
  "$venv/bin/pip" install --quiet torch torchvision numpy
fi
"$venv/bin/python" -c 'import torch, numpy; print("PyTorch", torch.__version__, "numpy", numpy.__version__, "in", torch.__file__)'
