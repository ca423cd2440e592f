// Everything a program using the engine needs.
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
