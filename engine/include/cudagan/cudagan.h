// Everything a program using the engine needs: tensors, ops, autograd, nn modules, Adam, random
// numbers, devices and errors. Included separately, as a program needs them: cudagan/cuda.h (GPU
// memory statistics, TF32, synchronisation), data.h (datasets, DataLoader), image_io.h (PNG grids),
// safetensors.h (checkpoints), gif.h, plot.h, and the DCGAN models' dcgan.h / dcgan_checkpoint.h
// (link cudagan::models for those two). docs/api.md is a guided tour.
#pragma once

#include "cudagan/autograd.h"
#include "cudagan/blas_runtime.h"
#include "cudagan/device.h"
#include "cudagan/dtype.h"
#include "cudagan/error.h"
#include "cudagan/nn.h"
#include "cudagan/ops.h"
#include "cudagan/optim.h"
#include "cudagan/random.h"
#include "cudagan/tensor.h"
