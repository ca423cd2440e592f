// Catch2 runner for the CPU test executable. It first makes sure the BLAS runs its fastest kernels
// (which may re-execute the process once, before any test runs), so tests exercise the same code
// path as the applications.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include "cudagan/runtime/blas.h"

int main(int argc, char** argv) {
  cudagan::blas::ensure_fast_kernels(argc, argv);
  return Catch::Session().run(argc, argv);
}
