// The engine's core, all of cudagan::core's API: tensors, ops, autograd, nn modules, Adam, random
// numbers, devices and errors. Included separately, as a program needs them: cudagan/core/cuda.h (GPU
// memory statistics, TF32, synchronisation), cudagan/metrics/swd.h (the sliced Wasserstein distance
// between image sets), cudagan/data/data.h (datasets, DataLoader), cudagan/io/
// (image_io.h PNG grids, safetensors.h checkpoints, gif.h, plot.h, atomic_file.h), the DCGAN models'
// dcgan.h / dcgan_checkpoint.h (link cudagan::models for those), and for a program's main(),
// cudagan/runtime/blas.h (blas::ensure_fast_kernels, which may re-execute the process). docs/api.md is a
// guided tour.
#pragma once

#include "cudagan/core/autograd.h"
#include "cudagan/core/device.h"
#include "cudagan/core/dtype.h"
#include "cudagan/core/error.h"
#include "cudagan/nn/modules.h"
#include "cudagan/ops/ops.h"
#include "cudagan/nn/optim.h"
#include "cudagan/core/rng.h"
#include "cudagan/core/tensor.h"
