// The shared main() of the single-process tools (dcgan_eval, dcgan_sample, engine_demo,
// train_digit_classifier): the BLAS's fast kernels first (it may re-execute the process), then the tool's
// run(), whose errors end the program with one line "<tool>: error: <what>" and exit status 1, never an
// uncaught exception. dcgan_train has its own main: its errors must also end the other MPI ranks.
#pragma once

#include <cstdio>
#include <exception>

#include "cudagan/runtime/blas.h"

namespace cudagan::apps {

template <class Run>
int run_tool(const char* name, int argc, char** argv, Run run) {
  blas::ensure_fast_kernels(argc, argv);
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "%s: error: %s\n", name, e.what());
    return 1;
  }
}

}  // namespace cudagan::apps
