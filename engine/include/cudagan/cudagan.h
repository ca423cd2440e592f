// Everything a program using the engine needs: tensors, ops, autograd, nn modules, Adam, random
// numbers, devices and errors. Included separately, as a program needs them: cudagan/cuda.h (GPU
// memory statistics, TF32, synchronisation), data.h (datasets, DataLoader), image_io.h (PNG grids),
// safetensors.h (checkpoints), gif.h, plot.h, and the DCGAN models' dcgan.h / dcgan_checkpoint.h
// (link cudagan::models for those two). docs/api.md is a guided tour.
#pragma once

#include "cudagan/core/autograd.h"
#include "cudagan/runtime/blas.h"
#include "cudagan/core/device.h"
#include "cudagan/core/dtype.h"
#include "cudagan/core/error.h"
#include "cudagan/nn/modules.h"
#include "cudagan/ops/ops.h"
#include "cudagan/nn/optim.h"
#include "cudagan/core/rng.h"
#include "cudagan/core/tensor.h"
